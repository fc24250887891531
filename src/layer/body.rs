//! The body type the inner service receives.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body of a verified request: exactly the bytes DT sent, already in memory.
///
/// [`DtSignature`](crate::DtSignature) hands the inner service a `Request<DtBody>`. It
/// yields the buffered bytes as one frame, without copying them, reports its exact size,
/// and cannot fail. Extractors such as axum's `Bytes`, `String` or `Json` read it as they
/// read any body; plain tower or hyper code takes the bytes with
/// [`into_bytes`](Self::into_bytes).
#[derive(Clone, Default)]
pub struct DtBody {
    bytes: Option<Bytes>,
}

impl DtBody {
    /// A body that yields `bytes`. Handy for calling an inner service directly in tests.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            bytes: (!bytes.is_empty()).then_some(bytes),
        }
    }

    /// The bytes not yet read from this body: all of them, unless it was polled.
    pub fn into_bytes(self) -> Bytes {
        self.bytes.unwrap_or_default()
    }
}

impl std::fmt::Debug for DtBody {
    /// The length only: the crate never prints body bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtBody")
            .field("len", &self.bytes.as_ref().map_or(0, Bytes::len))
            .finish()
    }
}

impl From<Bytes> for DtBody {
    fn from(bytes: Bytes) -> Self {
        Self::new(bytes)
    }
}

impl From<DtBody> for Bytes {
    fn from(body: DtBody) -> Self {
        body.into_bytes()
    }
}

impl Body for DtBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(
            self.get_mut()
                .bytes
                .take()
                .map(|bytes| Ok(Frame::data(bytes))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::future::Future;

    #[test]
    fn yields_the_bytes_once_with_an_exact_size() {
        let mut body = DtBody::new(Bytes::from_static(b"hello"));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let frame = match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap(),
            _ => panic!("expected one data frame"),
        };
        assert_eq!(frame, "hello");
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn debug_prints_no_body_bytes() {
        let body = DtBody::new(Bytes::from_static(b"{\"secret-ish\":1}"));
        let debug = format!("{body:?}");
        assert_eq!(debug, "DtBody { len: 16 }");
    }

    #[test]
    fn empty_and_into_bytes() {
        let empty = DtBody::new(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.into_bytes(), Bytes::new());
        let body = DtBody::from(Bytes::from_static(b"abc"));
        assert_eq!(Bytes::from(body.clone()), "abc");
        let collected = futures_executor_free_collect(body);
        assert_eq!(collected, "abc");
    }

    fn futures_executor_free_collect(body: DtBody) -> Bytes {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut collect = std::pin::pin!(body.collect());
        match collect.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(collected)) => collected.to_bytes(),
            _ => panic!("a DtBody is always ready"),
        }
    }
}
