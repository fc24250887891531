//! One HTTP GET of a discovery document or a JWK Set (feature `jwks`): the [`FetchJwks`]
//! trait, and the default HTTPS client behind it.
//!
//! The default client is hyper + rustls with no crypto provider feature: it uses the
//! application's process-wide rustls provider when one is installed, else a private
//! graviola provider (x86_64 and aarch64), and never installs one itself, so it neither
//! clashes with nor changes the application's choice.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, LOCATION};
use http::{HeaderMap, Uri};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;

use super::status::FailureClass;
use super::KeysError;

/// The largest discovery document or key set read: 64 KiB.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The time a refresh (discovery and key set) may take, and a request may wait for one;
/// also the default client's connect timeout.
pub(crate) const BUDGET: Duration = Duration::from_secs(5);

/// The future of [`FetchJwks::fetch`].
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// One HTTP GET, for [`DtKeys::discovery`](super::DtKeys::discovery): plug in your own HTTP
/// client (a proxy with its own rules, a test double) instead of the default one.
///
/// An implementation answers the body of a `200 OK` and the `max-age` of its
/// `Cache-Control` ([`cache_max_age`] reads it from the headers); any other status is an
/// error. It decides its own redirects (before #16 these docs called every redirect an
/// error): the default client follows up to 3 (never from https to plain http; plain http
/// only when the whole chain stays on loopback), and a client that follows none is fine.
/// One that follows them should keep those rules, since the URL it is given is the only
/// one this crate checked, and report a redirect it refuses with
/// [`FailureClass::RedirectRefused`]. It should refuse bodies over 64 KiB, and give its
/// errors a [`FailureClass`] ([`FetchError::with_class`]) for the status and metrics. The
/// key cache bounds the whole refresh to 5 s, so the fetch needs no timeout of its own.
///
/// ```
/// use tower_dt_signature::keys::{FetchError, FetchFuture, FetchJwks, Fetched};
///
/// /// Serves the same documents whatever the URL (a test double).
/// struct Canned;
///
/// impl FetchJwks for Canned {
///     fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
///         Box::pin(async move {
///             if url.ends_with("/.well-known/openid-configuration") {
///                 Ok(Fetched::new(r#"{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks"}"#, None))
///             } else {
///                 Err(FetchError::new("not found"))
///             }
///         })
///     }
/// }
/// ```
pub trait FetchJwks: Send + Sync + 'static {
    /// GET `url` (an `https` URL, or plain `http` to a loopback host).
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

impl<T: FetchJwks + ?Sized> FetchJwks for Arc<T> {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        (**self).fetch(url)
    }
}

/// What a GET brought back: the body, and how long it may be cached.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Fetched {
    /// The response body.
    pub body: Bytes,
    /// The `max-age` of the response's `Cache-Control`, if any.
    pub max_age: Option<Duration>,
    /// The response's `Cache-Control` headers as received (joined with `, `), for a
    /// report such as [`DtKeys::probe`](super::DtKeys::probe); `None` when there is none
    /// or when a [`FetchJwks`] of your own does not say.
    pub cache_control: Option<String>,
}

impl Fetched {
    /// A fetched `body` that may be cached for `max_age`.
    pub fn new(body: impl Into<Bytes>, max_age: Option<Duration>) -> Self {
        Self {
            body: body.into(),
            max_age,
            cache_control: None,
        }
    }
}

/// Why a GET failed. The message says what went wrong without the URL's credentials or
/// the body, and carries a [`FailureClass`] ([`FailureClass::Other`] unless set with
/// [`with_class`](Self::with_class)): the class shows in
/// [`DtKeys::status`](super::DtKeys::status) and the metrics.
///
/// ```
/// use tower_dt_signature::keys::{FailureClass, FetchError};
///
/// let error = FetchError::new("the server answered 503").with_class(FailureClass::HttpStatus);
/// assert_eq!(error.class(), FailureClass::HttpStatus);
/// assert_eq!(FetchError::new("?").class(), FailureClass::Other);
/// ```
#[derive(Debug)]
pub struct FetchError {
    message: String,
    class: FailureClass,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl FetchError {
    /// An error with this message, of class [`FailureClass::Other`].
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            class: FailureClass::Other,
            source: None,
        }
    }

    /// This error, of this class.
    #[must_use]
    pub fn with_class(mut self, class: FailureClass) -> Self {
        self.class = class;
        self
    }

    /// The error's class.
    pub fn class(&self) -> FailureClass {
        self.class
    }

    /// An error of this class with this message.
    pub(crate) fn of(class: FailureClass, message: impl Into<String>) -> Self {
        Self::new(message).with_class(class)
    }

    /// An error with this message, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            class: FailureClass::Other,
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // The chain, for a log line: hyper's errors say little on their own.
        let mut source = self.source.as_deref().map(|s| s as &dyn StdError);
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

impl StdError for FetchError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// The first valid `max-age` directive of the `Cache-Control` headers, if any (`no-cache`
/// and `no-store` count as 0). Its argument is delta-seconds (RFC 9111, 1.2.2): digits,
/// bare or quoted, a value too large for a `u64` read as `u64::MAX`.
pub fn cache_max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in directives(value) {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim())),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                return Some(Duration::ZERO);
            }
            if max_age.is_none() && name.eq_ignore_ascii_case("max-age") {
                max_age = argument.and_then(delta_seconds).map(Duration::from_secs);
            }
        }
    }
    max_age
}

/// The `Cache-Control` headers as text (those that are visible ASCII), joined with `, `.
fn cache_control(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The directives of a `Cache-Control` value: split at the commas outside quoted strings.
fn directives(value: &str) -> std::str::Split<'_, impl FnMut(char) -> bool> {
    let (mut quoted, mut escaped) = (false, false);
    value.split(move |c| {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' => return !quoted,
            _ => {}
        }
        false
    })
}

/// delta-seconds, bare or quoted: digits only.
fn delta_seconds(argument: &str) -> Option<u64> {
    let digits = argument
        .strip_prefix('"')
        .and_then(|quoted| quoted.strip_suffix('"'))
        .unwrap_or(argument);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Only an overflow fails: RFC 9111 reads it as the greatest value.
    Some(digits.parse().unwrap_or(u64::MAX))
}

/// Whether `uri` may be fetched: `https`, or plain `http` to a loopback host. Also refuses
/// credentials in the URL.
pub(crate) fn check_url(uri: &Uri) -> Result<(), KeysError> {
    let Some(authority) = uri.authority() else {
        return Err(KeysError::new("the URL has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(KeysError::new("the URL must not carry credentials"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(authority.host()) => Ok(()),
        Some("http") => Err(KeysError::new(
            "the URL must be https (plain http only to a loopback host)",
        )),
        _ => Err(KeysError::new("the URL must be https")),
    }
}

/// 127.0.0.0/8, ::1 and `localhost`.
pub(crate) fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

/// `uri` for a log line: scheme, host and path; no credentials, no query.
pub(crate) fn loggable(uri: &Uri) -> String {
    let host = uri.authority().map_or("", |a| {
        let a = a.as_str();
        a.rsplit_once('@').map_or(a, |(_, host)| host)
    });
    format!("{}://{host}{}", uri.scheme_str().unwrap_or(""), uri.path())
}

/// Options of the default HTTPS client.
#[derive(Default)]
pub(crate) struct TlsOptions {
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
    pub(crate) provider: Option<Arc<CryptoProvider>>,
}

impl TlsOptions {
    /// The options with these extra roots (each DER, or PEM with one or more
    /// certificates) and this provider (`None`: see [`crypto_provider`]).
    pub(crate) fn new(
        extra_roots: &[Vec<u8>],
        provider: Option<Arc<CryptoProvider>>,
    ) -> Result<Self, KeysError> {
        let mut roots = Vec::new();
        for certificate in extra_roots {
            roots.extend(certificates(certificate)?);
        }
        Ok(Self {
            extra_roots: roots,
            provider,
        })
    }
}

/// The certificates of one extra root: PEM, or else DER.
fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, KeysError> {
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(vec![CertificateDer::from(bytes.to_vec())]);
    }
    let certificates = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeysError::new(format!("an extra root certificate is not valid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(KeysError::new(
            "an extra root certificate holds no CERTIFICATE",
        ));
    }
    Ok(certificates)
}

/// The default [`FetchJwks`]: hyper + rustls, system roots through
/// rustls-platform-verifier, `HTTPS_PROXY` / `NO_PROXY`, up to 3 redirects (never from
/// https to http; plain http only on loopback), 64 KiB and 5 s at most for the whole chain.
pub(crate) struct HttpsFetcher {
    tls: ClientConfig,
    proxies: Matcher,
    connect_timeout: Duration,
}

impl fmt::Debug for HttpsFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsFetcher").finish_non_exhaustive()
    }
}

impl HttpsFetcher {
    pub(crate) fn new(options: TlsOptions, connect_timeout: Duration) -> Result<Self, KeysError> {
        let provider = match options.provider {
            Some(provider) => provider,
            None => crypto_provider()?,
        };
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            options.extra_roots,
            Arc::clone(&provider),
        )
        .map_err(|error| {
            KeysError::new(format!("cannot set up TLS certificate checks: {error}"))
        })?;
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| KeysError::new(format!("the rustls crypto provider: {error}")))?
            // The API's name only: this is the platform's (or webpki's) certificate check.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Self {
            tls,
            proxies: Matcher::from_env(),
            connect_timeout,
        })
    }

    fn http(&self) -> HttpConnector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        http
    }

    fn https<C>(&self, inner: C) -> hyper_rustls::HttpsConnector<C> {
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_only()
            .enable_http1()
            .wrap_connector(inner)
    }

    /// GET `url`, following up to [`MAX_REDIRECTS`] redirects, all within the budget and
    /// the 64 KiB cap.
    async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(self.connect_timeout, self.follow(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::of(
                FailureClass::Timeout,
                format!("no answer within {:?}", self.connect_timeout),
            )),
        }
    }

    async fn follow(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut uri: Uri = url
            .parse()
            .map_err(|_| FetchError::new("not a valid URL"))?;
        check_url(&uri).map_err(|error| FetchError::new(error.to_string()))?;
        let plain_start = uri.scheme_str() == Some("http");
        let mut left = MAX_BODY;
        let mut hop = 0;
        loop {
            let location = match self.get_one(uri.clone(), left).await? {
                Answer::Done(fetched) => return Ok(fetched),
                Answer::Redirect { location, read } => {
                    left -= read;
                    location
                }
            };
            let refused = |why: &str| {
                FetchError::of(
                    FailureClass::RedirectRefused,
                    format!("redirect from {} refused: {why}", loggable(&uri)),
                )
            };
            if hop == MAX_REDIRECTS {
                return Err(refused("more than 3 redirects"));
            }
            let next = resolve(&uri, &location).ok_or_else(|| refused("not a URL"))?;
            check_url(&next).map_err(|error| refused(&error.to_string()))?;
            if uri.scheme_str() == Some("https") && next.scheme_str() != Some("https") {
                return Err(refused("from https to plain http"));
            }
            if plain_start && !next.host().is_some_and(is_loopback) {
                return Err(refused("a plain-http fetch must stay on loopback"));
            }
            hop += 1;
            tracing::debug!(from = %loggable(&uri), to = %loggable(&next), hop, "following a redirect");
            uri = next;
        }
    }

    /// One GET of `uri`, reading `left` bytes at most.
    async fn get_one(&self, uri: Uri, left: usize) -> Result<Answer, FetchError> {
        let host = uri.host().unwrap_or_default();
        if uri.scheme_str() == Some("http") {
            // Loopback only (check_url): direct, never through a proxy.
            let mut http = self.http();
            http.enforce_http(true);
            return get(http, uri, left).await;
        }
        match self.proxies.intercept(&uri) {
            Some(proxy) if !is_loopback(host) => {
                if proxy.uri().scheme_str() != Some("http") {
                    return Err(FetchError::new(
                        "only http:// proxies are supported (HTTPS_PROXY)",
                    ));
                }
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.http());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                get(self.https(tunnel), uri, left).await
            }
            _ => get(self.https(self.http()), uri, left).await,
        }
    }
}

/// The redirects the default client follows in one fetch.
const MAX_REDIRECTS: usize = 3;

/// What one GET brought back.
enum Answer {
    /// `200 OK`.
    Done(Fetched),
    /// A redirect to `location`, after reading `read` bytes of its body.
    Redirect { location: String, read: usize },
}

/// `location` (absolute, scheme-relative, absolute path or relative path) resolved
/// against `base`, without its fragment.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.split('#').next().unwrap_or_default();
    let scheme = base.scheme_str()?;
    let authority = base.authority()?;
    let absolute = if location.starts_with("//") {
        format!("{scheme}:{location}")
    } else if location.contains("://") {
        location.to_owned()
    } else {
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let directory = base.path().rsplit_once('/').map_or("", |(d, _)| d);
            format!("{directory}/{location}")
        };
        format!("{scheme}://{authority}{}", without_dot_segments(&path))
    };
    absolute.parse().ok()
}

/// `path` (with its query, if any) without `.` and `..` segments (RFC 3986, 5.2.4).
fn without_dot_segments(path: &str) -> String {
    let (path, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    for (index, segment) in parts.iter().enumerate() {
        let last = index + 1 == parts.len();
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    segments.pop();
                }
                if last {
                    segments.push("");
                }
            }
            segment => segments.push(segment),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl FetchJwks for HttpsFetcher {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(self.get(url))
    }
}

/// The rustls provider: the application's process default if it installed one, else our
/// private graviola provider where the CPU has what graviola needs. Never installs one.
fn crypto_provider() -> Result<Arc<CryptoProvider>, KeysError> {
    if let Some(provider) = CryptoProvider::get_default() {
        return Ok(Arc::clone(provider));
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // graviola asserts its CPU features at first use: ask first, to fail, not panic.
    if graviola::util::is_cpu_supported() {
        return Ok(Arc::new(rustls_graviola::default_provider()));
    }
    Err(KeysError::new(
        "no rustls crypto provider: install one at start-up (e.g. \
         `rustls::crypto::aws_lc_rs::default_provider().install_default()`) or pass one \
         with `DiscoveryBuilder::crypto_provider`",
    ))
}

/// One GET of `uri` through `connector`, reading `left` bytes at most.
async fn get<C>(connector: C, uri: Uri, left: usize) -> Result<Answer, FetchError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client: Client<C, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let request = http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("tower-dt-signature/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::new())
        .map_err(|error| FetchError::with_source("cannot build the request", error))?;
    let response = client.request(request).await.map_err(|error| {
        let class = request_failure(&error);
        FetchError::with_source("request failed", error).with_class(class)
    })?;
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let redirect = match (status.as_u16(), location) {
        (301 | 302 | 303 | 307 | 308, Some(location)) => Some(location),
        (200, _) => None,
        _ => {
            return Err(FetchError::of(
                FailureClass::HttpStatus,
                format!("the server answered {status}"),
            ))
        }
    };
    let too_large = || FetchError::of(FailureClass::TooLarge, "the body is over 64 KiB");
    let length = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|length| length > left as u64) {
        return Err(too_large());
    }
    let max_age = cache_max_age(response.headers());
    let cache_control = cache_control(response.headers());
    let body = Limited::new(response.into_body(), left)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                FetchError::with_source("cannot read the body", error)
            }
        })?
        .to_bytes();
    Ok(match redirect {
        Some(location) => Answer::Redirect {
            location,
            read: body.len(),
        },
        None => Answer::Done(Fetched {
            body,
            max_age,
            cache_control,
        }),
    })
}

/// The class of a request that got no response: TLS when rustls refused, timeout when the
/// connection timed out, connect when there was none.
fn request_failure(error: &hyper_util::client::legacy::Error) -> FailureClass {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(cause) = source {
        // io::Error hides its inner error from source(): look inside.
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref().map(|e| e as &(dyn StdError + 'static)));
        if cause.is::<rustls::Error>() || inner.is_some_and(|e| e.is::<rustls::Error>()) {
            return FailureClass::Tls;
        }
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return FailureClass::Timeout;
        }
        source = inner.or_else(|| cause.source());
    }
    if error.is_connect() {
        FailureClass::Connect
    } else {
        FailureClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CACHE_CONTROL, v.parse().unwrap());
            h
        };
        assert_eq!(
            cache_max_age(&headers("public, max-age=300")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            cache_max_age(&headers("Max-Age=\"7\"")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(cache_max_age(&headers("no-store")), Some(Duration::ZERO));
        assert_eq!(cache_max_age(&headers("public")), None);
        assert_eq!(cache_max_age(&headers("max-age=x")), None);
        assert_eq!(cache_max_age(&HeaderMap::new()), None);
    }

    /// The argument of `max-age` is delta-seconds (RFC 9111, 1.2.2), and a comma inside a
    /// quoted string does not start a directive (found by the `cache_control` fuzz target).
    #[test]
    fn max_age_is_delta_seconds_of_a_directive() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CACHE_CONTROL, v.parse().unwrap());
            h
        };
        for (value, want) in [
            ("max-age=99999999999999999999999", Some(u64::MAX)),
            ("max-age=+5", None),
            ("max-age=+5, max-age=9", Some(9)),
            ("max-age=\"5", None),
            ("max-age=\"\"5\"\"", None),
            ("private=\"a, max-age=5\", max-age=9", Some(9)),
            ("private=\"a, no-store\", max-age=9", Some(9)),
            ("private=\"\\\", max-age=5\", max-age=9", Some(9)),
            ("max-age = 45 ,private", Some(45)),
        ] {
            assert_eq!(
                cache_max_age(&headers(value)),
                want.map(Duration::from_secs),
                "{value}"
            );
        }
    }

    #[test]
    fn urls() {
        let ok = |u: &str| check_url(&u.parse().unwrap()).is_ok();
        assert!(ok("https://id.example/x"));
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(ok("http://127.8.9.1/x"));
        assert!(ok("http://[::1]:9/x"));
        assert!(ok("http://LocalHost/x"));
        assert!(!ok("http://id.example/x"));
        assert!(!ok("http://128.0.0.1/x"));
        assert!(!ok("http://localhost.evil.example/x"));
        assert!(!ok("ftp://id.example/x"));
        assert!(!ok("https://user:pw@id.example/x"));
        assert_eq!(
            loggable(&"https://id.example:8443/a/b?token=1".parse().unwrap()),
            "https://id.example:8443/a/b"
        );
        let base: Uri = "https://id.example/a/b/c?q".parse().unwrap();
        for (location, resolved) in [
            ("https://other.example/x", "https://other.example/x"),
            ("//other.example/x#f", "https://other.example/x"),
            ("/x/./y/../z?k=v", "https://id.example/x/z?k=v"),
            ("d", "https://id.example/a/b/d"),
            ("../d", "https://id.example/a/d"),
            ("../../../../d", "https://id.example/d"),
            ("..", "https://id.example/a/"),
        ] {
            assert_eq!(
                resolve(&base, location).unwrap().to_string(),
                resolved,
                "{location}"
            );
        }
    }

    /// A tiny HTTP server on 127.0.0.1 with one case per path prefix.
    mod server {
        use std::convert::Infallible;
        use std::net::SocketAddr;

        use bytes::Bytes;
        use http::{Request, Response};
        use http_body_util::combinators::BoxBody;
        use http_body_util::{BodyExt as _, Full, StreamBody};
        use hyper::body::{Frame, Incoming};
        use hyper::service::service_fn;
        use hyper_util::rt::TokioIo;

        pub(super) const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;

        type Body = BoxBody<Bytes, Infallible>;

        fn full(body: impl Into<Bytes>) -> Body {
            Full::new(body.into()).boxed()
        }

        async fn answer(addr: SocketAddr, request: Request<Incoming>) -> Response<Body> {
            let path = request.uri().path().to_owned();
            let (case, rest) = path[1..].split_once('/').unwrap_or((&path[1..], ""));
            let base = format!("http://{addr}/{case}");
            let response = Response::builder();
            match (case, rest) {
                ("redirect", _) => response
                    .status(302)
                    .header("location", format!("http://{addr}/ok/{rest}"))
                    .body(full("")),
                // hops/N/...: N redirects (relative, absolute path, absolute URL in turn)
                // before the ok case.
                ("hops", _) => {
                    let (n, rest) = rest.split_once('/').unwrap_or((rest, ""));
                    let n: usize = n.parse().unwrap_or(0);
                    let location = match n {
                        0 => format!("http://{addr}/ok/{rest}"),
                        n if n % 3 == 1 => format!("/hops/{}/{rest}", n - 1),
                        n if n % 3 == 2 => format!("../{}/{rest}", n - 1),
                        n => format!("http://{addr}/hops/{}/{rest}", n - 1),
                    };
                    response
                        .status(307)
                        .header("location", location)
                        .body(full(""))
                }
                // slowhops/N/...: N + 1 redirects, each answered after 400 ms.
                // fathops/N/...: N + 1 redirects, each with a body of 30 KiB.
                ("slowhops" | "fathops", _) => {
                    let (n, rest) = rest.split_once('/').unwrap_or((rest, ""));
                    let location = match n.parse::<usize>().unwrap_or(0) {
                        0 => format!("/ok/{rest}"),
                        n => format!("/{case}/{}/{rest}", n - 1),
                    };
                    let body = if case == "slowhops" {
                        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                        Vec::new()
                    } else {
                        vec![b' '; 30 * 1024]
                    };
                    response
                        .status(302)
                        .header("location", location)
                        .body(full(body))
                }
                ("away", _) => response
                    .status(301)
                    .header("location", "http://192.0.2.1/jwks")
                    .body(full("")),
                ("awayhttps", _) => response
                    .status(302)
                    .header("location", "https://192.0.2.1/jwks")
                    .body(full("")),
                ("tohttps", _) => response
                    .status(302)
                    .header("location", format!("https://{addr}/ok/{rest}"))
                    .body(full("")),
                (_, ".well-known/openid-configuration") => response.body(full(format!(
                    r#"{{"issuer":"{base}","jwks_uri":"{base}/jwks"}}"#
                ))),
                ("ok", "jwks") => response
                    .header("cache-control", "public, max-age=120")
                    .body(full(JWKS)),
                ("big", "jwks") => response.body(full(vec![b' '; 65 * 1024])),
                ("chunked", "jwks") => {
                    // No Content-Length: the limit must hold while reading.
                    let chunks = (0..20).map(|_| Ok(Frame::data(Bytes::from(vec![b' '; 4096]))));
                    response.body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
                }
                ("slow", "jwks") => {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    response.body(full(JWKS))
                }
                ("garbage", "jwks") => response.body(full("{\"keys\": [nope")),
                _ => response.status(404).body(full("")),
            }
            .unwrap()
        }

        /// Serve until the runtime ends; the address.
        pub(super) async fn start() -> SocketAddr {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |request| async move {
                            Ok::<_, Infallible>(answer(addr, request).await)
                        }),
                    ));
                }
            });
            addr
        }
    }

    fn fetcher() -> HttpsFetcher {
        HttpsFetcher::new(TlsOptions::default(), BUDGET).unwrap()
    }

    #[tokio::test]
    async fn default_fetcher_over_loopback_http() {
        let addr = server::start().await;
        let fetcher = fetcher();
        let ok = fetcher
            .get(&format!("http://{addr}/ok/jwks"))
            .await
            .unwrap();
        assert_eq!(ok.body, server::JWKS);
        assert_eq!(ok.max_age, Some(Duration::from_secs(120)));

        // Changed by #16: a redirect used to be refused ("302 Found"); up to 3 are
        // followed now (here relative, absolute-path and absolute locations).
        for case in ["redirect/jwks", "hops/0/jwks", "hops/1/jwks", "hops/2/jwks"] {
            let ok = fetcher.get(&format!("http://{addr}/{case}")).await;
            assert_eq!(ok.unwrap().body, server::JWKS, "{case}");
        }
        for (case, reason, class) in [
            ("big/jwks", "over 64 KiB", FailureClass::TooLarge),
            ("chunked/jwks", "over 64 KiB", FailureClass::TooLarge),
            (
                "hops/3/jwks",
                "more than 3 redirects",
                FailureClass::RedirectRefused,
            ),
            ("away/jwks", "loopback", FailureClass::RedirectRefused),
            // A plain-http chain stays on loopback, even towards https.
            (
                "awayhttps/jwks",
                "must stay on loopback",
                FailureClass::RedirectRefused,
            ),
            // From loopback http to https on a server that speaks http: the handshake fails.
            ("tohttps/jwks", "request failed", FailureClass::Tls),
            ("nothing", "404", FailureClass::HttpStatus),
        ] {
            let error = fetcher
                .get(&format!("http://{addr}/{case}"))
                .await
                .unwrap_err();
            assert_eq!(error.class(), class, "{case}: {error}");
            let error = error.to_string();
            assert!(error.contains(reason), "{case}: {error}");
        }
        let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = refused.local_addr().unwrap();
        drop(refused);
        let error = fetcher
            .get(&format!("http://{closed}/x"))
            .await
            .unwrap_err();
        assert_eq!(error.class(), FailureClass::Connect, "{error}");
        let error = fetcher
            .get("http://192.0.2.1/jwks")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("loopback"), "{error}");
    }

    /// The 5 s budget and the 64 KiB cap hold for the whole redirect chain, not per hop:
    /// here a 1 s budget, hops of 400 ms each, and redirect bodies of 30 KiB each.
    #[tokio::test]
    async fn one_budget_and_one_cap_for_the_whole_chain() {
        let addr = server::start().await;
        let fetcher = HttpsFetcher::new(TlsOptions::default(), Duration::from_secs(1)).unwrap();
        let url = |case: &str| format!("http://{addr}/{case}/jwks");
        // One slow hop, two bodies of 30 KiB: within the budget and the cap.
        let ok = fetcher.get(&url("slowhops/0")).await.unwrap();
        assert_eq!(ok.body, server::JWKS);
        let ok = fetcher.get(&url("fathops/1")).await.unwrap();
        assert_eq!(ok.body, server::JWKS);
        // Three slow hops (1.2 s), three bodies (90 KiB): each hop alone would pass.
        for (case, class, reason) in [
            ("slowhops/2", FailureClass::Timeout, "no answer within 1s"),
            ("fathops/2", FailureClass::TooLarge, "over 64 KiB"),
        ] {
            let error = fetcher.get(&url(case)).await.unwrap_err();
            assert_eq!(error.class(), class, "{case}: {error}");
            assert!(error.to_string().contains(reason), "{case}: {error}");
        }
    }

    /// The default fetcher under the key cache: a good set loads; a body too large, a
    /// redirect, a slow server and garbage each fail the refresh, without panic.
    #[tokio::test]
    async fn key_cache_over_loopback_http() {
        let addr = server::start().await;
        let discover = |case: &str| {
            super::super::DtKeys::discovery(format!(
                "http://{addr}/{case}/.well-known/openid-configuration"
            ))
            .budget(Duration::from_secs(1))
            .build()
            .unwrap()
        };
        let keys = discover("ok");
        keys.refresh_for_unknown_kid().unwrap().await;
        assert!(keys.ready());
        assert_eq!(keys.kids(), ["k1"]);

        for case in ["big", "chunked", "hops/3", "slow", "garbage"] {
            let keys = discover(case);
            // The slow server answers after 30 s: this wait ends with the 1 s budget.
            keys.refresh_for_unknown_kid().unwrap().await;
            assert!(!keys.ready(), "{case}");
            assert!(
                matches!(keys.lookup("k1"), super::super::Lookup::Unavailable),
                "{case}"
            );
        }
    }
}
