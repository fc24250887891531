//! [`ResponseFuture`]: buffer and hash the body, then call the inner service.
//! In report-only mode it forwards a request that failed, with its [`Verdict`].

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::DtBody;
use crate::error::{DtSignatureError, ErrorKind};
use crate::meter::Meter;
use crate::rejection::{reject, report, MakeRejection};
use crate::verdict::Verdict;
use crate::verify::BodyVerifier;

pin_project! {
    /// The response future of [`DtSignature`](crate::DtSignature).
    pub struct ResponseFuture<S, B, R>
    where
        S: Service<Request<DtBody>>,
    {
        #[pin]
        state: State<S, B, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, R>
    where
        S: Service<Request<DtBody>>,
    {
        Rejected {
            response: Option<S::Response>,
        },
        Buffering {
            #[pin]
            body: B,
            buffered: Buffered,
            pending: Option<Pending<S, R>>,
            max_body_size: usize,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

/// What the buffering state hands on once the body is complete.
pub(crate) struct Pending<S, R> {
    pub(crate) parts: Parts,
    /// The body hasher, or (report-only mode) why the request already failed: then the
    /// body is only buffered, to be forwarded.
    pub(crate) verifier: Result<BodyVerifier, DtSignatureError>,
    pub(crate) service: S,
    pub(crate) rejection: R,
    pub(crate) report_only: bool,
    pub(crate) meter: Meter,
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<DtBody>>,
{
    pub(crate) fn rejected(response: S::Response) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn buffering(
        body: B,
        pending: Pending<S, R>,
        max_body_size: usize,
        capacity: usize,
    ) -> Self {
        Self {
            state: State::Buffering {
                body,
                buffered: Buffered::new(capacity),
                pending: Some(pending),
                max_body_size,
            },
        }
    }
}

impl<S, B, R, ResBody> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let (service, request) = match this.state.as_mut().project() {
                StateProj::Rejected { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response));
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Buffering {
                    mut body,
                    buffered,
                    pending,
                    max_body_size,
                } => {
                    let outcome = match ready!(body.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            // Trailers are not forwarded: DT sends none.
                            let Ok(mut data) = frame.into_data() else {
                                continue;
                            };
                            // Zero-copy for `Bytes`, the data type of hyper and axum.
                            let chunk = data.copy_to_bytes(data.remaining());
                            if buffered.len + chunk.len() > *max_body_size {
                                Err(DtSignatureError::new(ErrorKind::BodyTooLarge))
                            } else {
                                let pending = pending.as_mut().expect("polled after completion");
                                if let Ok(verifier) = &mut pending.verifier {
                                    pending.meter.timed(|| verifier.update(&chunk));
                                }
                                buffered.push(chunk);
                                continue;
                            }
                        }
                        Some(Err(error)) => Err(DtSignatureError::from_body_error(error.into())),
                        None => Ok(()),
                    };
                    let Pending {
                        mut parts,
                        verifier,
                        service,
                        rejection,
                        report_only,
                        mut meter,
                    } = pending.take().expect("polled after completion");
                    // A body over the limit or broken cannot be forwarded intact: refused
                    // in report-only mode too.
                    let verdict = match outcome {
                        Ok(()) => {
                            meter.body_size(buffered.len);
                            verifier.and_then(|verifier| meter.timed(|| verifier.finish()))
                        }
                        Err(error) => Err(error),
                    };
                    match verdict {
                        Ok(claims) => {
                            meter.accepted();
                            if report_only {
                                parts.extensions.insert(Verdict::Verified(claims.clone()));
                            }
                            parts.extensions.insert(claims);
                        }
                        Err(error)
                            if report_only
                                && !matches!(
                                    error.kind(),
                                    ErrorKind::BodyTooLarge | ErrorKind::BodyRead
                                ) =>
                        {
                            report(&error);
                            meter.reported(error.kind());
                            parts.extensions.insert(Verdict::Refused(error));
                        }
                        Err(error) => {
                            meter.rejected(error.kind());
                            let response = reject(&rejection, error);
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response));
                        }
                    }
                    let bytes = std::mem::take(buffered).into_bytes();
                    parts.headers.remove(TRANSFER_ENCODING);
                    parts
                        .headers
                        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                    (service, Request::from_parts(parts, DtBody::new(bytes)))
                }
            };
            let mut service = service;
            let future = service.call(request);
            this.state.set(State::Calling { future });
        }
    }
}

/// The body so far: a lone chunk is kept as it came (no copy); several are gathered
/// into one buffer, sized from `Content-Length` when there is one.
#[derive(Default)]
struct Buffered {
    first: Bytes,
    rest: Option<BytesMut>,
    len: usize,
    capacity: usize,
}

impl Buffered {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.len += chunk.len();
        if let Some(rest) = &mut self.rest {
            rest.extend_from_slice(&chunk);
        } else if self.first.is_empty() {
            self.first = chunk;
        } else {
            let mut rest = BytesMut::with_capacity(self.capacity.max(self.len));
            rest.extend_from_slice(&self.first);
            rest.extend_from_slice(&chunk);
            self.first = Bytes::new();
            self.rest = Some(rest);
        }
    }

    fn into_bytes(self) -> Bytes {
        match self.rest {
            Some(rest) => rest.freeze(),
            None => self.first,
        }
    }
}
