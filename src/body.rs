//! The body type the inner service receives.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

/// The body of a verified request: exactly the bytes DT sent, already in memory.
///
/// [`DtSignature`](crate::DtSignature) hands the inner service a `Request<DtBody>`. It
/// yields the buffered bytes as one frame, without copying them, reports its exact size,
/// and cannot fail. Extractors such as axum's `Bytes`, `String` or `Json` read it as
/// they read any body.
#[derive(Debug, Clone, Default)]
pub struct DtBody {
    inner: Full<Bytes>,
}

impl DtBody {
    /// A body that yields `bytes`. Handy for calling an inner service directly in tests.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            inner: Full::new(bytes),
        }
    }
}

impl From<Bytes> for DtBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(bytes)
    }
}

impl Body for DtBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
