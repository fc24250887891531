//! [`DtKeys::discover`] and its [`DiscoveryBuilder`] (feature `jwks`): DT's keys through
//! OpenID Connect discovery, kept fresh in the background.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http::Uri;
use rustls::crypto::CryptoProvider;

use super::discovery::discovery_issuer;
use super::fetch::{loggable, FetchJwks, HttpsFetcher, TlsOptions, BUDGET};
use super::probe::{KeyProbe, ProbeFailure};
use super::refresh::Shared;
use super::task::Remote;
use super::{DtKeys, Inner, KeysError, Snapshot};

impl DtKeys {
    /// The keys of the issuer whose OpenID Connect discovery document is at
    /// `discovery_url`, fetched with the default HTTPS client and kept fresh in the
    /// background (feature `jwks`). Same as `DtKeys::discovery(discovery_url).build()`:
    /// see [`DiscoveryBuilder`] for the options and the rules.
    ///
    /// `discovery_url` must end in `/.well-known/openid-configuration`; the issuer is the
    /// URL without that suffix (OpenID Connect Discovery 1.0, 4.3), and the document's
    /// `issuer` must equal it byte for byte, but for one trailing `/` more, which is
    /// accepted with a warning (tokens must then carry the document's `issuer`:
    /// [`issuer`](Self::issuer) follows it). An https document must name an https
    /// `jwks_uri`. For DT:
    /// `https://identity.disruptive-technologies.com/data-connector/.well-known/openid-configuration`.
    ///
    /// Nothing is fetched here: inside a tokio runtime the refresh task starts at once (the
    /// cache warms without blocking), else on the first use inside one.
    /// [`ready`](Self::ready) says when the first key set is in.
    ///
    /// # Errors
    /// The URL is not `https` (plain `http` is accepted for loopback hosts only), lacks the
    /// suffix, has a query, a fragment or credentials, or no rustls crypto provider is at
    /// hand (see [`DiscoveryBuilder::crypto_provider`]).
    ///
    /// ```no_run
    /// use tower_dt_signature::keys::DtKeys;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_dt_signature::keys::KeysError> {
    /// let keys = DtKeys::discover(
    ///     "https://identity.disruptive-technologies.com/data-connector/.well-known/openid-configuration",
    /// )?;
    /// assert_eq!(keys.issuer(), "https://identity.disruptive-technologies.com/data-connector");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn discover(discovery_url: impl Into<String>) -> Result<Self, KeysError> {
        Self::discovery(discovery_url).build()
    }

    /// A builder for [`discover`](Self::discover) with options: your own HTTP client,
    /// extra root certificates, the rustls crypto provider (feature `jwks`).
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub fn discovery(discovery_url: impl Into<String>) -> DiscoveryBuilder {
        DiscoveryBuilder {
            url: discovery_url.into(),
            fetcher: None,
            extra_roots: Vec::new(),
            provider: None,
            budget: BUDGET,
        }
    }
}

/// Options of a discovered key set: built by [`DtKeys::discovery`].
///
/// The default HTTPS client checks certificates against the system's roots
/// (rustls-platform-verifier) plus any [`extra_root_certificate`](Self::extra_root_certificate),
/// honours `HTTPS_PROXY` and `NO_PROXY` (an `http://` proxy, through `CONNECT`; never for
/// loopback hosts), and follows up to 3 redirects (never from https to plain http; plain
/// http only when the discovery URL is loopback http and every hop stays on loopback),
/// each logged at debug level. The 5 s budget and the 64 KiB cap hold for the whole chain.
///
/// ```no_run
/// use tower_dt_signature::keys::DtKeys;
///
/// # fn main() -> Result<(), tower_dt_signature::keys::KeysError> {
/// let keys = DtKeys::discovery("https://identity.example/dc/.well-known/openid-configuration")
///     .extra_root_certificate(std::fs::read("/etc/my-ca.pem").unwrap())
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct DiscoveryBuilder {
    url: String,
    fetcher: Option<Arc<dyn FetchJwks>>,
    extra_roots: Vec<Vec<u8>>,
    provider: Option<Arc<CryptoProvider>>,
    budget: Duration,
}

impl fmt::Debug for DiscoveryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryBuilder")
            .field("url", &self.url.parse::<Uri>().map(|u| loggable(&u)).ok())
            .field("custom_fetcher", &self.fetcher.is_some())
            .field("extra_roots", &self.extra_roots.len())
            .field("crypto_provider", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

impl DiscoveryBuilder {
    /// Fetch with `fetcher` instead of the default HTTPS client (which the TLS options
    /// below then do not concern). Default: the built-in client.
    pub fn fetcher(mut self, fetcher: impl FetchJwks) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Also trust this root certificate (DER, or PEM with one or more certificates), e.g.
    /// a company CA in front of the identity service. Default: the system's roots only.
    pub fn extra_root_certificate(mut self, certificate: impl AsRef<[u8]>) -> Self {
        self.extra_roots.push(certificate.as_ref().to_vec());
        self
    }

    /// The rustls crypto provider for TLS. Default: the process default if the
    /// application installed one (`CryptoProvider::install_default`), else a private
    /// graviola provider on x86_64 and aarch64 CPUs that support it; elsewhere
    /// [`build`](Self::build) fails unless one is installed or given here. This crate
    /// never installs a provider.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The time one refresh, and a request's wait for it, may take (5 s outside tests).
    #[cfg(test)]
    pub(crate) fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The key set: see [`DtKeys::discover`].
    ///
    /// # Errors
    /// See [`DtKeys::discover`]; also an extra root certificate that is neither DER nor
    /// PEM.
    pub fn build(self) -> Result<DtKeys, KeysError> {
        let shared = self.shared()?;
        let issuer = shared.issuer().to_owned();
        let remote = Remote::new(shared);
        let inner = Arc::new(Inner {
            issuer: issuer.into(),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            remote: Some(remote),
        });
        if let Some(remote) = &inner.remote {
            remote.start(&inner);
        }
        Ok(DtKeys::of(inner))
    }
}

impl DiscoveryBuilder {
    /// The refreshes these options describe (for [`build`](Self::build) and
    /// [`probe`](Self::probe)).
    pub(super) fn shared(self) -> Result<Shared, KeysError> {
        let (discovery_url, issuer) = discovery_issuer(&self.url)?;
        let fetcher = match self.fetcher {
            Some(fetcher) => fetcher,
            None => {
                let options = TlsOptions::new(&self.extra_roots, self.provider)?;
                Arc::new(HttpsFetcher::new(options, self.budget)?)
            }
        };
        Ok(Shared::new(discovery_url, issuer, fetcher, self.budget))
    }
}

impl DiscoveryBuilder {
    /// One refresh with these options, reported: see [`DtKeys::probe`]. Needs a tokio
    /// runtime with the I/O and time drivers.
    ///
    /// # Errors
    /// See [`build`](Self::build).
    pub async fn probe(self) -> Result<KeyProbe, KeysError> {
        let shared = self.shared()?;
        let url = loggable(shared.discovery_url());
        let mut probe = KeyProbe::new(shared.issuer().to_owned(), Some(url));
        let started = Instant::now();
        let outcome = shared.refresh_traced(&mut probe).await;
        probe.elapsed = started.elapsed();
        match outcome {
            Ok((_, fresh_for)) => probe.next_refresh = Some(fresh_for),
            Err(failure) => {
                probe.next_refresh = Some(super::refresh::backoff(1));
                probe.failure = Some(ProbeFailure {
                    class: failure.class,
                    reason: failure.reason,
                });
            }
        }
        Ok(probe)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::fake::{Fake, DISCOVERY, ISSUER};
    use super::*;

    #[test]
    fn discovery_urls() {
        let fake = Fake::new(&["k1"]);
        let build = |url: &str| DtKeys::discovery(url).fetcher(Arc::clone(&fake)).build();
        assert_eq!(build(DISCOVERY).unwrap().issuer(), ISSUER);
        for (url, issuer) in [
            (
                "http://127.0.0.1:8080/dc/.well-known/openid-configuration",
                "http://127.0.0.1:8080/dc",
            ),
            (
                "http://localhost/.well-known/openid-configuration",
                "http://localhost",
            ),
            (
                "http://[::1]:9/x/.well-known/openid-configuration",
                "http://[::1]:9/x",
            ),
        ] {
            assert_eq!(build(url).unwrap().issuer(), issuer, "{url}");
        }
        for (url, reason) in [
            (
                "http://id.example/dc/.well-known/openid-configuration",
                "plain http only to a loopback host",
            ),
            ("https://id.example/dc/jwks", "must end in"),
            (
                "https://id.example/dc/.well-known/openid-configuration/",
                "must end in",
            ),
            (
                "https://id.example/dc/.well-known/openid-configuration?x=1",
                "query",
            ),
            (
                "https://u:p@id.example/dc/.well-known/openid-configuration",
                "credentials",
            ),
            ("ftp://id.example/.well-known/openid-configuration", "https"),
            ("not a url", "not a valid URL"),
        ] {
            let error = build(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }
}
