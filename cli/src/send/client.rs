//! The HTTP client of `dt-signature send`: plain `http://`, or `https://` with the key
//! client's TLS choices (the library's `src/keys/fetch.rs`): the platform's certificate
//! check (rustls-platform-verifier) plus any `--ca-cert` roots, and the process default
//! rustls provider, else a private graviola one. It never installs a provider and the CLI
//! switches on no rustls provider feature (`.ci/run` checks it).
//!
//! Its errors are one line each, for the report's reasons: `connection refused to
//! 127.0.0.1:8080`, `TLS to 127.0.0.1:8443: invalid peer certificate: UnknownIssuer ...`.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;

/// The TLS settings of an `https://` run: the roots to trust beyond the platform's.
#[derive(Clone, Default)]
pub struct Tls {
    /// Extra roots (`--ca-cert`), each a DER certificate.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

impl Tls {
    /// The platform's roots plus the certificates of `bytes` (PEM with one or more
    /// certificates, or one DER certificate), as `--ca-cert FILE` gives them.
    pub fn with_ca_cert(mut self, bytes: &[u8]) -> Result<Self, String> {
        if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            if bytes.is_empty() {
                return Err("the file is empty: give a PEM or DER certificate".into());
            }
            self.extra_roots.push(CertificateDer::from(bytes.to_vec()));
            return Ok(self);
        }
        let certificates = CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("not a valid PEM certificate ({error})"))?;
        if certificates.is_empty() {
            return Err("the PEM file holds no CERTIFICATE".into());
        }
        self.extra_roots.extend(certificates);
        Ok(self)
    }

    /// The rustls client configuration: the platform verifier with the extra roots, on
    /// the process default provider, else graviola.
    fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = crypto_provider()?;
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            self.extra_roots.clone(),
            Arc::clone(&provider),
        )
        .map_err(|error| format!("cannot set up TLS certificate checks: {error}"))?;
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("the rustls crypto provider: {error}"))?
            // The API's name only: this is the platform's certificate check.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth())
    }
}

/// The rustls provider: the process default if one is installed, else a private graviola
/// provider where the CPU has what graviola needs. Never installs one.
fn crypto_provider() -> Result<Arc<CryptoProvider>, String> {
    if let Some(provider) = CryptoProvider::get_default() {
        return Ok(Arc::clone(provider));
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if graviola::util::is_cpu_supported() {
        return Ok(Arc::new(rustls_graviola::default_provider()));
    }
    Err("no rustls crypto provider for https:// on this CPU: use an http:// URL".into())
}

/// A client for `http://` or `https://` URLs.
#[derive(Clone)]
pub(crate) enum HttpClient {
    Http(Client<HttpConnector, Full<Bytes>>),
    Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl HttpClient {
    /// The client for `url`: TLS (with `tls`) for `https://`, plain otherwise.
    pub(crate) fn new(url: &Uri, tls: &Tls) -> Result<Self, String> {
        let builder = Client::builder(TokioExecutor::new());
        if url.scheme_str() != Some("https") {
            return Ok(Self::Http(builder.build_http()));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.client_config()?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self::Https(builder.build(https)))
    }

    /// One request; the error is one line (see [`describe`]).
    pub(crate) async fn request(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        let uri = request.uri().clone();
        let result = match self {
            Self::Http(client) => client.request(request).await,
            Self::Https(client) => client.request(request).await,
        };
        result.map_err(|error| describe(&error, &uri))
    }
}

/// The address of `uri` as `host:port`.
fn authority(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    format!("{host}:{port}")
}

/// A client error in one line: what failed, where, and for a certificate what to do.
fn describe(error: &hyper_util::client::legacy::Error, uri: &Uri) -> String {
    let to = authority(uri);
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return tls_error(tls, &to);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("connection refused to {to}")
                }
                std::io::ErrorKind::ConnectionReset => return format!("connection reset by {to}"),
                _ => {}
            }
            // An io::Error's source skips the error it wraps: step into it (hyper-rustls
            // wraps tokio-rustls' io::Error, which wraps rustls' error).
            if let Some(inner) = io.get_ref() {
                source = Some(inner);
                continue;
            }
        }
        source = cause.source();
    }
    // The chain, for a line of its own: hyper's errors say little alone.
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    format!("{text} ({to})")
}

fn tls_error(error: &rustls::Error, to: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(_) => format!(
            "TLS to {to}: {error}: the receiver's certificate does not verify (a private or \
             test CA: give it with --ca-cert FILE)"
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "TLS to {to}: {error} (does the receiver speak plain http://? then use an \
             http:// URL)"
        ),
        _ => format!("TLS to {to}: {error}"),
    }
}

/// How long a request may take, shown in a reason.
pub(crate) fn no_answer_within(timeout: Duration) -> String {
    format!("no answer within {} ms (--timeout-ms)", timeout.as_millis())
}
