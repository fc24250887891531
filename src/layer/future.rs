//! [`ResponseFuture`]: resolve the tenant, buffer and hash the body, then call the inner
//! service. In report-only mode it forwards a request that failed, with its [`Verdict`].

use std::fmt;
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

use super::body::DtBody;
use super::meter::Meter;
use super::rejection::{reject, report, MakeRejection};
use super::verdict::Verdict;
use crate::claims::DtClaims;
use crate::error::{DtSignatureError, ErrorKind, Scheme};
use crate::gateway::{PickedDecoy, ResolveError, ResolveSecrets, Tenant};
use crate::verify::{BodyVerifier, KeysWait, Start};

pin_project! {
    /// The response future of [`DtSignature`](crate::DtSignature): resolve the tenant,
    /// then buffer and verify the body, then call the inner service.
    pub struct ResponseFuture<S, B, Res, R>
    where
        S: Service<Request<DtBody>>,
        Res: ResolveSecrets,
    {
        #[pin]
        state: State<S, B, Res, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, Res, R>
    where
        S: Service<Request<DtBody>>,
        Res: ResolveSecrets,
    {
        // In the order a request goes through them; `Rejected` ends any of the first three.
        Resolving {
            #[pin]
            future: Res::Future,
            waiting: Option<Waiting<S, B, R>>,
        },
        // The verifier waits on something before it decides (a refresh of its key set).
        WaitingForKeys {
            wait: KeysWait,
            waiting: Option<Waiting<S, B, R>>,
        },
        Buffering {
            #[pin]
            body: B,
            buffered: Buffered,
            pending: Option<Pending<S, R>>,
            max_body_size: usize,
        },
        // The body is in and verified: wait for the inner service's readiness, then call
        // the same service.
        Acquiring {
            service: S,
            request: Option<Request<DtBody>>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, B, Res, R> fmt::Debug for ResponseFuture<S, B, Res, R>
where
    S: Service<Request<DtBody>>,
    Res: ResolveSecrets,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Rejected { .. } => "rejected",
            State::Resolving { .. } => "resolving",
            State::WaitingForKeys { .. } => "waiting_for_keys",
            State::Buffering { .. } => "buffering",
            State::Acquiring { .. } => "acquiring",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

/// The request and what verifying it needs, while the resolver runs.
pub(crate) struct Waiting<S, B, R> {
    pub(crate) parts: Parts,
    pub(crate) body: B,
    pub(crate) service: S,
    pub(crate) rejection: R,
    pub(crate) max_body_size: usize,
    pub(crate) capacity: usize,
    pub(crate) report_only: bool,
    /// The tenant came from a gateway's resolver: every refusal from now on answers with
    /// the wrong-signature text.
    pub(crate) masked: bool,
    pub(crate) meter: Meter,
    /// A gateway's work for an unknown tenant (`None` for a single-secret layer).
    pub(crate) decoy: Option<PickedDecoy>,
}

/// What the buffering state hands on once the body is complete.
struct Pending<S, R> {
    parts: Parts,
    /// The body hasher, or (report-only mode) why the request already failed: then the
    /// body is only buffered, to be forwarded.
    verifier: Result<BodyVerifier, DtSignatureError>,
    service: S,
    rejection: R,
    report_only: bool,
    masked: bool,
    meter: Meter,
}

/// The most buffer reserved ahead of the bytes, whatever `Content-Length` says: a client
/// that declares 1 MiB and trickles two bytes holds 64 KiB, not 1 MiB.
const MAX_PREALLOCATION: usize = 64 * 1024;

impl<S, B, Res, R> ResponseFuture<S, B, Res, R>
where
    S: Service<Request<DtBody>>,
    Res: ResolveSecrets,
{
    /// Refused before the resolver: log, count and answer at once.
    pub(crate) fn rejected<ResBody>(rejection: &R, meter: Meter, error: DtSignatureError) -> Self
    where
        S: Service<Request<DtBody>, Response = Response<ResBody>>,
        R: MakeRejection<ResBody>,
    {
        Self {
            state: refused(rejection, meter, false, error),
        }
    }

    /// Ask the resolver, then verify and buffer; `None`: the request carries no signature
    /// header, refused (or, report-only, forwarded) without asking.
    pub(crate) fn resolving<ResBody>(future: Option<Res::Future>, waiting: Waiting<S, B, R>) -> Self
    where
        S: Service<Request<DtBody>, Response = Response<ResBody>>,
        R: MakeRejection<ResBody>,
    {
        let state = match future {
            Some(future) => State::Resolving {
                future,
                waiting: Some(waiting),
            },
            None => {
                // A gateway's answers all read alike, before the resolver as after it.
                let mut waiting = waiting;
                waiting.masked = true;
                let error =
                    DtSignatureError::new(ErrorKind::MissingHeader).for_scheme(Scheme::Hmac);
                waiting.verify(Err(error))
            }
        };
        Self { state }
    }
}

impl<S, B, R> Waiting<S, B, R> {
    /// The tokens are decided (or the request failed): refuse, or start buffering.
    fn verify<Res, ResBody>(
        self,
        verifier: Result<BodyVerifier, DtSignatureError>,
    ) -> State<S, B, Res, R>
    where
        S: Service<Request<DtBody>, Response = Response<ResBody>>,
        Res: ResolveSecrets,
        R: MakeRejection<ResBody>,
    {
        match verifier {
            Err(error) if !self.report_only => {
                refused(&self.rejection, self.meter, self.masked, error)
            }
            verifier => {
                // Never trust an unverified length for more than a bounded reservation.
                let capacity = self.capacity.min(MAX_PREALLOCATION);
                State::Buffering {
                    body: self.body,
                    buffered: Buffered::new(capacity),
                    max_body_size: self.max_body_size,
                    pending: Some(Pending {
                        parts: self.parts,
                        verifier,
                        service: self.service,
                        rejection: self.rejection,
                        report_only: self.report_only,
                        masked: self.masked,
                        meter: self.meter,
                    }),
                }
            }
        }
    }

    /// Apply the resolver's answer: the tenant's verifier checks the tokens, or a key
    /// refresh is waited for first.
    fn resolved<Res, ResBody>(
        mut self,
        resolved: Result<Option<Tenant>, ResolveError>,
    ) -> State<S, B, Res, R>
    where
        S: Service<Request<DtBody>, Response = Response<ResBody>>,
        Res: ResolveSecrets,
        R: MakeRejection<ResBody>,
    {
        let verifier = match resolved {
            Ok(Some(tenant)) => {
                if let Some(id) = tenant.id() {
                    self.parts.extensions.insert(id.clone());
                    self.masked = true;
                }
                // An `hmac` decoy before an ES256 tenant: warned about, once per layer.
                if let Some(decoy) = &self.decoy {
                    decoy.known(tenant.verifier());
                }
                let headers = &self.parts.headers;
                self.meter.checking_at(tenant.verifier());
                match self.meter.timed(|| tenant.verifier().start(headers, true)) {
                    Start::Done(result) => result,
                    Start::Wait(wait) => {
                        return State::WaitingForKeys {
                            wait,
                            waiting: Some(self),
                        }
                    }
                }
            }
            Ok(None) => {
                // The crypto work of a known tenant's refusal, so the time taken does not
                // tell unknown tenants from known ones; and its 503 under a key outage.
                let error = match &self.decoy {
                    Some(decoy) => decoy.run(&self.parts.headers),
                    None => DtSignatureError::new(ErrorKind::UnknownTenant),
                };
                self.masked = true;
                Err(error)
            }
            Err(error) => {
                // Logged by kind only: a resolver's error text may hold anything.
                tracing::warn!(
                    reason = ErrorKind::ResolverFailed.as_str(),
                    "secret resolver failed"
                );
                Err(DtSignatureError::with_source(
                    ErrorKind::ResolverFailed,
                    error,
                ))
            }
        };
        self.verify(verifier)
    }
}

impl<S, B, Res, R, ResBody> Future for ResponseFuture<S, B, Res, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    Res: ResolveSecrets,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    /// One step per state, in the order a request goes through them, until a state is
    /// pending or the response is ready.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Resolving { future, waiting } => {
                    ready!(Self::poll_resolving(future, waiting, cx))
                }
                StateProj::WaitingForKeys { wait, waiting } => {
                    ready!(Self::poll_waiting_for_keys(wait, waiting, cx))
                }
                StateProj::Buffering {
                    body,
                    buffered,
                    pending,
                    max_body_size,
                } => ready!(Self::poll_buffering(
                    body,
                    buffered,
                    pending,
                    *max_body_size,
                    cx
                )),
                StateProj::Acquiring { service, request } => State::Calling {
                    future: ready!(Self::poll_acquiring(service, request, cx))?,
                },
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response));
                }
            };
            this.state.set(next);
        }
    }
}

/// The step of each state but `Calling` and `Rejected`, which `poll` takes in place.
impl<S, B, Res, R, ResBody> ResponseFuture<S, B, Res, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    Res: ResolveSecrets,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: MakeRejection<ResBody>,
{
    /// `Resolving`: the resolver's answer, then the tokens (or a wait first).
    fn poll_resolving(
        future: Pin<&mut Res::Future>,
        waiting: &mut Option<Waiting<S, B, R>>,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, B, Res, R>> {
        let resolved = ready!(future.poll(cx));
        let waiting = waiting.take().expect("polled after completion");
        Poll::Ready(waiting.resolved(resolved))
    }

    /// `WaitingForKeys`: the verifier's wait, then its decision.
    fn poll_waiting_for_keys(
        wait: &mut KeysWait,
        waiting: &mut Option<Waiting<S, B, R>>,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, B, Res, R>> {
        ready!(Pin::new(&mut *wait).poll(cx));
        let mut waiting = waiting.take().expect("polled after completion");
        // The wait is over: the verifier decides now.
        let headers = &waiting.parts.headers;
        let result = waiting.meter.timed(|| wait.resume(headers));
        Poll::Ready(waiting.verify(result))
    }

    /// `Buffering`: the body's frames, hashed as they come, until its end (or the limit, or
    /// a read error); then the verdict.
    fn poll_buffering(
        mut body: Pin<&mut B>,
        buffered: &mut Buffered,
        pending: &mut Option<Pending<S, R>>,
        max_body_size: usize,
        cx: &mut Context<'_>,
    ) -> Poll<State<S, B, Res, R>> {
        let outcome = loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers are not forwarded: DT sends none.
                    let Ok(mut data) = frame.into_data() else {
                        continue;
                    };
                    // The limit is checked before anything is copied.
                    if buffered.len + data.remaining() > max_body_size {
                        break Err(DtSignatureError::new(ErrorKind::BodyTooLarge));
                    }
                    // Zero-copy for `Bytes`, the data type of hyper and axum.
                    let chunk = data.copy_to_bytes(data.remaining());
                    let pending = pending.as_mut().expect("polled after completion");
                    if let Ok(verifier) = &mut pending.verifier {
                        pending.meter.timed(|| verifier.update(&chunk));
                    }
                    buffered.push(chunk);
                }
                Some(Err(error)) => break Err(DtSignatureError::from_body_error(error.into())),
                None => break Ok(()),
            }
        };
        let pending = pending.take().expect("polled after completion");
        Poll::Ready(Self::finish(pending, outcome, std::mem::take(buffered)))
    }

    /// `Acquiring`: the inner service's readiness, then the call on that same service.
    fn poll_acquiring(
        service: &mut S,
        request: &mut Option<Request<DtBody>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<S::Future, S::Error>> {
        ready!(service.poll_ready(cx))?;
        let request = request.take().expect("polled after completion");
        Poll::Ready(Ok(service.call(request)))
    }

    /// The end of `Buffering`: the body is in (`outcome`: or why it could not be read).
    /// The verdict, then the request forwarded with the same bytes, or the refusal.
    fn finish(
        pending: Pending<S, R>,
        outcome: Result<(), DtSignatureError>,
        buffered: Buffered,
    ) -> State<S, B, Res, R> {
        let Pending {
            mut parts,
            verifier,
            service,
            rejection,
            report_only,
            masked,
            mut meter,
        } = pending;
        // A body over the limit or broken cannot be forwarded intact: refused in
        // report-only mode too.
        let verdict = match outcome {
            Ok(()) => {
                meter.body_size(buffered.len);
                verifier.and_then(|verifier| meter.timed(|| verifier.finish()))
            }
            Err(error) => Err(error),
        };
        match verdict {
            Ok(claims) => {
                meter.accepted(&claims);
                parts.extensions.insert(Verdict::Verified(claims.clone()));
                parts.extensions.insert(claims);
            }
            Err(error)
                if report_only
                    && !matches!(error.kind(), ErrorKind::BodyTooLarge | ErrorKind::BodyRead) =>
            {
                report(&error);
                meter.reported(&error);
                // Claims of an outer layer must not vouch for this request.
                parts.extensions.remove::<DtClaims>();
                parts.extensions.insert(Verdict::Refused(error));
            }
            Err(error) => return refused(&rejection, meter, masked, error),
        }
        let bytes = buffered.into_bytes();
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        State::Acquiring {
            service,
            request: Some(Request::from_parts(parts, DtBody::new(bytes))),
        }
    }
}

/// A refusal: logged and counted, then answered (with a gateway's one text when
/// `masked`).
fn refused<S, B, Res, R, ResBody>(
    rejection: &R,
    meter: Meter,
    masked: bool,
    error: DtSignatureError,
) -> State<S, B, Res, R>
where
    S: Service<Request<DtBody>, Response = Response<ResBody>>,
    Res: ResolveSecrets,
    R: MakeRejection<ResBody>,
{
    let error = if masked { error.masked() } else { error };
    meter.rejected(&error);
    State::Rejected {
        response: Some(reject(rejection, error)),
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
