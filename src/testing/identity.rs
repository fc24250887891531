//! [`IdentityServer`]: a local stand-in for DT's identity service, serving an OpenID
//! Connect discovery document and a JWK Set over plain HTTP on 127.0.0.1, with key
//! rotation, request counts and failures on demand (features `test-util` and
//! `asymmetric`).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

use super::asymmetric::AsymmetricSigner;

/// The path of the issuer on the server, as at DT: `/data-connector`.
const ISSUER_PATH: &str = "/data-connector";
/// The discovery document's path.
const DISCOVERY_PATH: &str = "/data-connector/.well-known/openid-configuration";
/// The JWK Set's path.
const JWKS_PATH: &str = "/data-connector/.well-known/jwks.json";

/// A local identity service for tests of key discovery: it serves
/// `GET /data-connector/.well-known/openid-configuration` (`issuer`
/// `http://127.0.0.1:PORT/data-connector`, `jwks_uri`,
/// `id_token_signing_alg_values_supported: ["ES256"]`) and the JWK Set it names, on
/// `127.0.0.1` and a free port (features `test-util` and `asymmetric`).
///
/// Everything a test needs to drive a key cache is a method taking `&self`:
///
/// - keys: [`new_signer`](Self::new_signer), [`add_signer`](Self::add_signer),
///   [`remove_key`](Self::remove_key), [`set_signers`](Self::set_signers),
///   [`add_jwk`](Self::add_jwk) (any JSON, for hostile key sets);
/// - caching: [`set_max_age`](Self::set_max_age), [`set_cache_control`](Self::set_cache_control);
/// - counts: [`fetch_count`](Self::fetch_count), [`discovery_count`](Self::discovery_count),
///   [`request_count`](Self::request_count), [`wait_for_fetches`](Self::wait_for_fetches);
/// - failures, per endpoint: [`set_behavior`](Self::set_behavior) with a [`Behavior`]
///   (a status, a stall, a delay, garbage, an oversized body, a redirect, any body);
///   other paths: [`set_route`](Self::set_route) (redirect chains);
/// - outages: [`go_down`](Self::go_down) (connections refused, open ones closed) and
///   [`come_up`](Self::come_up) (the same port again).
///
/// Dropping the server stops it: the listener and every open connection are closed. Use
/// [`shutdown`](Self::shutdown) to wait until they are.
///
/// ```
/// use tower_dt_signature::testing::IdentityServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = IdentityServer::start().await;
/// let signer = server.new_signer("my-org");
/// assert_eq!(signer.issuer(), server.issuer());
/// assert!(server.issuer().starts_with("http://127.0.0.1:"));
/// assert_eq!(server.kids(), [signer.kid()]);
/// assert_eq!(server.fetch_count(), 0);
/// # }
/// ```
pub struct IdentityServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

/// The accept loop, while the server is up.
struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    abort: AbortHandle,
}

/// What the connections share with the handle.
struct Shared {
    issuer: String,
    jwks_uri: String,
    state: Mutex<State>,
    /// Requests received per path (counted on arrival, whatever the answer).
    counts: watch::Sender<HashMap<String, usize>>,
}

#[derive(Default)]
struct State {
    /// The JWKs served, in order.
    keys: Vec<serde_json::Value>,
    behavior: [Behavior; 2],
    cache_control: [Option<HeaderValue>; 2],
    /// Other paths served ([`IdentityServer::set_route`]).
    routes: HashMap<String, Behavior>,
}

/// One of the two documents the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// The OpenID Connect discovery document,
    /// `/data-connector/.well-known/openid-configuration`.
    Discovery,
    /// The JWK Set, `/data-connector/.well-known/jwks.json` (the discovery document's
    /// `jwks_uri`).
    Jwks,
}

impl Endpoint {
    fn index(self) -> usize {
        match self {
            Self::Discovery => 0,
            Self::Jwks => 1,
        }
    }

    /// The path of the endpoint on the server.
    pub fn path(self) -> &'static str {
        match self {
            Self::Discovery => DISCOVERY_PATH,
            Self::Jwks => JWKS_PATH,
        }
    }
}

/// How an [`Endpoint`] answers, set with [`IdentityServer::set_behavior`]. It holds for
/// every request until changed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Behavior {
    /// The document, `200 OK`, `Content-Type: application/json`, with `Content-Length`.
    /// The default.
    #[default]
    Normal,
    /// This status with a short text body.
    Status(StatusCode),
    /// Read the request, never answer (the connection stays open until the client gives
    /// up, the server goes down or is dropped).
    Stall,
    /// The normal answer, after this delay.
    Delay(Duration),
    /// The status line and headers at once (no `Content-Length`), the body after this
    /// delay: for read timeouts that must cover the body too.
    SlowBody(Duration),
    /// `200 OK`, `Content-Type: application/json`, a body that is not JSON.
    Garbage,
    /// The normal document padded with trailing spaces to this many bytes (still valid
    /// JSON), with `Content-Length`: for a size limit on the declared length. A limit of
    /// 64 KiB is exceeded by `64 * 1024 + 1`.
    Oversized(usize),
    /// Like [`Oversized`](Self::Oversized), but chunked, without `Content-Length`, in 8 KiB
    /// chunks: for a size limit enforced while reading.
    OversizedChunked(usize),
    /// `302 Found` with `Location` set to this (any text; see
    /// [`IdentityServer::url`] for a URL on this server).
    Redirect(String),
    /// `200 OK`, `Content-Type: application/json`, exactly this body: a discovery document
    /// with another issuer, a JWK Set with a duplicate `kid`, ...
    Body(Bytes),
}

impl IdentityServer {
    /// Start a server on `127.0.0.1` and a free port, with no keys. Needs a tokio runtime
    /// (with the I/O and time drivers: `#[tokio::test]` gives one).
    ///
    /// # Panics
    ///
    /// If no port can be bound. Use [`try_start`](Self::try_start) to get the error.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(server) => server,
            Err(error) => panic!("tower-dt-signature: cannot start the identity server: {error}"),
        }
    }

    /// Like [`start`](Self::start), but returns the error if no port can be bound.
    pub async fn try_start() -> io::Result<Self> {
        Self::try_start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Like [`try_start`](Self::try_start), on the IPv4 address `addr` (such as
    /// `127.0.0.1:8090`) instead of a free port: a server whose issuer and discovery URL stay the same from one run
    /// to the next, so that a receiver configured with them keeps working (a local Data
    /// Connector). The issuer is `http://ADDR/data-connector`, `ADDR` as bound (port `0`
    /// picks a free one). Fails if `addr` cannot be bound (taken, or IPv6).
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_dt_signature::testing::IdentityServer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    /// let server = IdentityServer::try_start_on(addr).await?;
    /// assert_eq!(server.issuer(), format!("http://{}/data-connector", server.addr()));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn try_start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}{ISSUER_PATH}");
        let (counts, _) = watch::channel(HashMap::new());
        let shared = Arc::new(Shared {
            jwks_uri: format!("http://{addr}{JWKS_PATH}"),
            issuer,
            state: Mutex::new(State::default()),
            counts,
        });
        let running = Running::spawn(listener, Arc::clone(&shared));
        Ok(Self {
            addr,
            shared,
            running: Mutex::new(Some(running)),
        })
    }

    /// The address the server listens on (the same after [`come_up`](Self::come_up)).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The issuer: `http://127.0.0.1:PORT/data-connector`, the discovery document's
    /// `issuer`, byte for byte (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The discovery document's URL: the issuer + `/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.url(DISCOVERY_PATH)
    }

    /// The JWK Set's URL: the discovery document's `jwks_uri`.
    pub fn jwks_url(&self) -> &str {
        &self.shared.jwks_uri
    }

    /// The discovery document served by [`Behavior::Normal`]: change it and serve it with
    /// [`Behavior::Body`] to test a document with another issuer or `alg` list.
    pub fn discovery_document(&self) -> serde_json::Value {
        self.shared.discovery_document()
    }

    /// The JWK Set served now by [`Behavior::Normal`] (JSON text).
    pub fn jwks(&self) -> String {
        self.shared.jwks()
    }

    /// A fresh key for this issuer and the organization `org_id`, added to the JWK Set.
    pub fn new_signer(&self, org_id: impl Into<String>) -> AsymmetricSigner {
        let signer = AsymmetricSigner::generate()
            .with_issuer(self.issuer())
            .with_org_id(org_id);
        self.add_signer(&signer);
        signer
    }

    /// Serve `signer`'s public key too (at the end of the set), replacing any key with its
    /// `kid`. The signer's issuer is not checked: a signer for another issuer makes tokens
    /// this server's issuer refuses.
    pub fn add_signer(&self, signer: &AsymmetricSigner) {
        let mut state = self.shared.lock();
        state
            .keys
            .retain(|jwk| jwk.get("kid").and_then(|kid| kid.as_str()) != Some(signer.kid()));
        state.keys.push(signer.jwk());
    }

    /// Serve exactly the keys of `signers`, in that order (a rotation in one step).
    pub fn set_signers(&self, signers: &[&AsymmetricSigner]) {
        self.shared.lock().keys = signers.iter().map(|signer| signer.jwk()).collect();
    }

    /// Serve `jwk` too, as given, at the end of the set: any JSON value (an RSA key, a key
    /// with `use` `enc`, a second key with a `kid` already served, ...).
    pub fn add_jwk(&self, jwk: serde_json::Value) {
        self.shared.lock().keys.push(jwk);
    }

    /// Stop serving every key whose `kid` is `kid`; whether there was one.
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut state = self.shared.lock();
        let before = state.keys.len();
        state
            .keys
            .retain(|jwk| jwk.get("kid").and_then(|k| k.as_str()) != Some(kid));
        state.keys.len() != before
    }

    /// Serve an empty key set.
    pub fn clear_keys(&self) {
        self.shared.lock().keys.clear();
    }

    /// The `kid`s served, in order (keys without a string `kid` left out).
    pub fn kids(&self) -> Vec<String> {
        self.shared
            .lock()
            .keys
            .iter()
            .filter_map(|jwk| {
                jwk.get("kid")
                    .and_then(|kid| kid.as_str())
                    .map(str::to_owned)
            })
            .collect()
    }

    /// How `endpoint` answers from now on. Default: [`Behavior::Normal`].
    pub fn set_behavior(&self, endpoint: Endpoint, behavior: Behavior) {
        self.shared.lock().behavior[endpoint.index()] = behavior;
    }

    /// Serve another `path` (such as `/hop/1`) with `behavior`, for redirect chains and
    /// misplaced documents: [`Behavior::Normal`] (or a behavior that serves "the
    /// document") serves the discovery document there. Requests to it are counted as any
    /// ([`request_count`](Self::request_count)).
    ///
    /// ```
    /// use tower_dt_signature::testing::{Behavior, Endpoint, IdentityServer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = IdentityServer::start().await;
    /// // Discovery → /hop/1 → the discovery document, served at /hop/2.
    /// server.set_behavior(Endpoint::Discovery, Behavior::Redirect(server.url("/hop/1")));
    /// server.set_route("/hop/1", Behavior::Redirect("/hop/2".into()));
    /// server.set_route("/hop/2", Behavior::Normal);
    /// # }
    /// ```
    pub fn set_route(&self, path: impl Into<String>, behavior: Behavior) {
        self.shared.lock().routes.insert(path.into(), behavior);
    }

    /// The `Cache-Control` header of `endpoint`'s answers (any text, such as `no-store` or
    /// a malformed value), `None` for none. Default: none on both.
    ///
    /// # Panics
    ///
    /// If `value` is not a valid header value.
    pub fn set_cache_control(&self, endpoint: Endpoint, value: Option<&str>) {
        let value = value.map(|value| {
            HeaderValue::from_str(value).expect("tower-dt-signature: invalid Cache-Control value")
        });
        self.shared.lock().cache_control[endpoint.index()] = value;
    }

    /// `Cache-Control: max-age=<secs>` on the JWK Set (`None`: no header). Default: none.
    pub fn set_max_age(&self, secs: Option<u64>) {
        let value = secs.map(|secs| format!("max-age={secs}"));
        self.set_cache_control(Endpoint::Jwks, value.as_deref());
    }

    /// How many requests for the JWK Set arrived (whatever the answer).
    pub fn fetch_count(&self) -> usize {
        self.request_count(JWKS_PATH)
    }

    /// How many requests for the discovery document arrived (whatever the answer).
    pub fn discovery_count(&self) -> usize {
        self.request_count(DISCOVERY_PATH)
    }

    /// How many requests for `path` (without the query) arrived, any method, any answer.
    pub fn request_count(&self, path: &str) -> usize {
        self.shared.counts.borrow().get(path).copied().unwrap_or(0)
    }

    /// Every request count back to zero.
    pub fn reset_counts(&self) {
        self.shared.counts.send_modify(HashMap::clear);
    }

    /// Wait until at least `count` requests for the JWK Set have arrived (for a background
    /// refresh). Wrap it in `tokio::time::timeout`: it waits forever otherwise.
    pub async fn wait_for_fetches(&self, count: usize) {
        self.wait_for_requests(JWKS_PATH, count).await;
    }

    /// Wait until at least `count` requests for `path` have arrived.
    pub async fn wait_for_requests(&self, path: &str, count: usize) {
        let mut counts = self.shared.counts.subscribe();
        // The sender lives as long as `self`: this cannot fail while we borrow it.
        let _ = counts
            .wait_for(|counts| counts.get(path).copied().unwrap_or(0) >= count)
            .await;
    }

    /// Whether the server accepts connections now.
    pub fn is_up(&self) -> bool {
        self.lock_running().is_some()
    }

    /// The running accept loop, if up (a poisoned lock is taken as it is).
    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take the running accept loop out: from here on the server is down.
    fn take_running(&self) -> Option<Running> {
        self.lock_running().take()
    }

    /// Go down: stop accepting connections (they are refused) and close every open one,
    /// stalled requests and idle keep-alive connections included. Returns once they are
    /// closed. Does nothing if the server is down.
    pub async fn go_down(&self) {
        if let Some(running) = self.take_running() {
            running.stop().await;
        }
    }

    /// Come back up on the same port, with the same keys, behaviors and counts. Does
    /// nothing if the server is up. Fails if the port was taken meanwhile.
    pub async fn come_up(&self) -> io::Result<()> {
        let mut running = self.lock_running();
        if running.is_none() {
            let listener = bind(self.addr)?;
            *running = Some(Running::spawn(listener, Arc::clone(&self.shared)));
        }
        Ok(())
    }

    /// Stop the server and wait until the listener and every connection are closed.
    pub async fn shutdown(self) {
        self.go_down().await;
    }
}

impl Drop for IdentityServer {
    fn drop(&mut self) {
        if let Some(running) = self.take_running() {
            // Dropping the accept loop drops its connections: every socket is closed.
            let _ = running.stop.send(true);
            running.abort.abort();
        }
    }
}

impl fmt::Debug for IdentityServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityServer")
            .field("issuer", &self.issuer())
            .field("kids", &self.kids())
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// A listener on `addr`, with `SO_REUSEADDR` so that the port can be bound again at once
/// after [`IdentityServer::go_down`].
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

impl Running {
    fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|stop| *stop) => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let shared = Arc::clone(&shared);
                        connections.spawn(serve(stream, shared));
                    }
                    // Reap finished connections so the set does not grow.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            drop(listener);
            connections.shutdown().await;
        });
        let abort = task.abort_handle();
        Self { stop, task, abort }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(shared.answer(request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn discovery_document(&self) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    fn jwks(&self) -> String {
        serde_json::json!({ "keys": self.lock().keys }).to_string()
    }

    async fn answer<B>(&self, request: Request<B>) -> Response<ServerBody> {
        let path = request.uri().path().to_owned();
        self.counts
            .send_modify(|counts| *counts.entry(path.clone()).or_default() += 1);
        let route = self.lock().routes.get(&path).cloned();
        let endpoint = match path.as_str() {
            DISCOVERY_PATH => Endpoint::Discovery,
            JWKS_PATH => Endpoint::Jwks,
            _ if route.is_some() => Endpoint::Discovery,
            _ => return text(StatusCode::NOT_FOUND, "not found"),
        };
        if request.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let (behavior, cache_control) = {
            let state = self.lock();
            (
                route.unwrap_or_else(|| state.behavior[endpoint.index()].clone()),
                state.cache_control[endpoint.index()].clone(),
            )
        };
        let document = || match endpoint {
            Endpoint::Discovery => self.discovery_document().to_string(),
            Endpoint::Jwks => self.jwks(),
        };
        let mut response = match behavior {
            Behavior::Normal => json(ServerBody::full(document())),
            Behavior::Status(status) => text(status, "failure on demand"),
            Behavior::Stall => std::future::pending().await,
            Behavior::Delay(delay) => {
                tokio::time::sleep(delay).await;
                json(ServerBody::full(document()))
            }
            Behavior::SlowBody(delay) => json(ServerBody::delayed(delay, document())),
            Behavior::Garbage => json(ServerBody::full("<html>not json\u{0}{{{")),
            Behavior::Oversized(len) => json(ServerBody::full(padded(document(), len))),
            Behavior::OversizedChunked(len) => {
                json(ServerBody::chunked(padded(document(), len), 8 * 1024))
            }
            Behavior::Redirect(location) => {
                let mut response = text(StatusCode::FOUND, "moved");
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            Behavior::Body(body) => json(ServerBody::full(body)),
        };
        if let Some(value) = cache_control {
            response.headers_mut().insert(CACHE_CONTROL, value);
        }
        response
    }
}

/// `document` followed by spaces up to `len` bytes.
fn padded(document: String, len: usize) -> Bytes {
    let mut bytes = document.into_bytes();
    if bytes.len() < len {
        bytes.resize(len, b' ');
    }
    bytes.into()
}

fn json(body: ServerBody) -> Response<ServerBody> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, message: &'static str) -> Response<ServerBody> {
    let mut response = Response::new(ServerBody::full(message));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The server's response body: chunks, after an optional delay; with an exact length
/// (so hyper sends `Content-Length`) or not (chunked).
struct ServerBody {
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
    chunks: VecDeque<Bytes>,
    exact: bool,
}

impl ServerBody {
    fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            delay: None,
            chunks: VecDeque::from([bytes.into()]),
            exact: true,
        }
    }

    fn delayed(delay: Duration, bytes: impl Into<Bytes>) -> Self {
        Self {
            delay: Some(Box::pin(tokio::time::sleep(delay))),
            chunks: VecDeque::from([bytes.into()]),
            exact: false,
        }
    }

    fn chunked(bytes: Bytes, chunk: usize) -> Self {
        let mut chunks = VecDeque::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            chunks.push_back(rest.split_to(chunk.min(rest.len())));
        }
        Self {
            delay: None,
            chunks,
            exact: false,
        }
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(delay) = &mut self.delay {
            std::task::ready!(delay.as_mut().poll(cx));
            self.delay = None;
        }
        Poll::Ready(self.chunks.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.delay.is_none() && self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum())
        } else {
            SizeHint::default()
        }
    }
}
