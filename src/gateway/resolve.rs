//! Per-tenant secrets: [`ResolveSecrets`] picks the [`Tenant`] (an id and its
//! [`Verifier`]) for a request from its head; [`StaticSecrets`] is a fixed map;
//! [`FixedTenant`] is the one tenant of a single-secret layer.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::{ready, Future, Ready};
use std::sync::Arc;

use http::request::Parts;
use http::HeaderName;

use super::decoy::Decoy;
use crate::verify::Verifier;

/// Finds the tenant a request belongs to, and so the secrets its token must be signed
/// with, from the request head alone (method, URI, headers, extensions): the body is not
/// read until the tenant is known. Used by [`DtSignatureLayer::gateway`](crate::DtSignatureLayer::gateway).
///
/// Return `Ok(None)` for a request that belongs to no tenant: it is refused as
/// [`ErrorKind::UnknownTenant`](crate::ErrorKind::UnknownTenant), which answers like a
/// wrong secret. Return `Err` only when the lookup itself failed (a store is down): that
/// is refused with 503 ([`ErrorKind::ResolverFailed`](crate::ErrorKind::ResolverFailed)),
/// so DT retries. Do not fail for unknown tenants only, or the 503 tells which exist.
///
/// The future is named by an associated type, so that the gateway's response future is a
/// named type too; a resolver whose future cannot be named can return a
/// `Pin<Box<dyn Future<Output = ...> + Send>>`. Under hyper or axum the future must be
/// `Send`. Implemented for [`StaticSecrets`] and for closures
/// `Fn(&Parts) -> impl Future<Output = Result<Option<Tenant>, ResolveError>>`: the closure
/// reads what it needs from the head before its `async move` block, which cannot borrow
/// the head.
///
/// ```
/// use http::request::Parts;
/// use tower_dt_signature::gateway::{ResolveError, Tenant};
/// use tower_dt_signature::{DtSignatureLayer, Verifier};
///
/// # async fn lookup_secret(_: &str) -> Result<Option<String>, std::io::Error> { Ok(None) }
/// // Secrets kept in your own store, keyed by a custom header the connector sends.
/// let layer = DtSignatureLayer::gateway(|parts: &Parts| {
///     let connector = parts
///         .headers
///         .get("x-connector")
///         .and_then(|value| value.to_str().ok())
///         .map(str::to_owned);
///     async move {
///         let Some(connector) = connector else { return Ok::<_, ResolveError>(None) };
///         let secret = lookup_secret(&connector).await.map_err(ResolveError::new)?;
///         Ok(secret.map(|secret| Tenant::new(connector, Verifier::new(secret))))
///     }
/// });
/// # let _ = layer;
/// ```
pub trait ResolveSecrets {
    /// The future of [`resolve`](Self::resolve).
    type Future: Future<Output = Result<Option<Tenant>, ResolveError>>;

    /// The tenant of the request with this head, `None` if there is none.
    fn resolve(&self, parts: &Parts) -> Self::Future;

    /// The work the gateway does for a request this resolver finds no tenant for, so
    /// that an unknown tenant answers in the time (and, under a key outage, with the
    /// status) of a known one: a [`Decoy`] of the policy and key set of your tenants
    /// that read `DT-Asymmetric-Signature` ([`Decoy::new`], or [`Decoy::following`] the
    /// verifiers you have). An explicit
    /// [`DtSignatureLayer::decoy`](crate::DtSignatureLayer::decoy) wins over it.
    ///
    /// Asked at every request of the gateway, so return a clone of a decoy built once
    /// (cloning is one `Arc`). Default: `None`, the `hmac` decoy ([`Decoy::hmac`]); a
    /// gateway that then meets a tenant that reads `DT-Asymmetric-Signature` logs a
    /// warning, once. [`StaticSecrets`] names [`Decoy::following`] its tenants.
    ///
    /// ```
    /// # #[cfg(feature = "asymmetric")] {
    /// use std::future::{ready, Ready};
    ///
    /// use http::request::Parts;
    /// use tower_dt_signature::gateway::{Decoy, ResolveError, ResolveSecrets, Tenant};
    /// use tower_dt_signature::keys::DtKeys;
    /// use tower_dt_signature::{verify::Policy, DtSignatureLayer, Verifier};
    ///
    /// /// Tenants from your own store, all `asymmetric` under DT's keys.
    /// #[derive(Clone)]
    /// struct Store {
    ///     keys: DtKeys,
    ///     decoy: Decoy,
    /// }
    ///
    /// impl ResolveSecrets for Store {
    ///     type Future = Ready<Result<Option<Tenant>, ResolveError>>;
    ///
    ///     fn resolve(&self, parts: &Parts) -> Self::Future {
    ///         let org = parts.headers.get("x-org").and_then(|v| v.to_str().ok());
    ///         ready(Ok(org.map(|org| {
    ///             Tenant::new(org, Verifier::asymmetric(self.keys.clone(), org))
    ///         })))
    ///     }
    ///
    ///     fn decoy(&self) -> Option<Decoy> {
    ///         Some(self.decoy.clone())
    ///     }
    /// }
    ///
    /// let keys = DtKeys::from_jwks("https://identity.example", r#"{"keys":[]}"#).unwrap();
    /// let decoy = Decoy::new(Policy::Asymmetric, keys.clone());
    /// let layer = DtSignatureLayer::gateway(Store { keys, decoy });
    /// # let _ = layer;
    /// # }
    /// ```
    fn decoy(&self) -> Option<Decoy> {
        None
    }
}

impl<F, Fut> ResolveSecrets for F
where
    F: Fn(&Parts) -> Fut,
    Fut: Future<Output = Result<Option<Tenant>, ResolveError>>,
{
    type Future = Fut;

    fn resolve(&self, parts: &Parts) -> Self::Future {
        self(parts)
    }
}

/// One tenant: its id and the [`Verifier`] with its secrets (and its leeway, clock and
/// `require_sha256`).
///
/// A DT project has up to 10 Data Connectors, each with its own secret: make one tenant per
/// connector. For a secret rotation, give the verifier both secrets
/// ([`Verifier::add_secret`]).
#[derive(Clone)]
pub struct Tenant {
    /// `None` only for the [`FixedTenant`] of a single-secret layer.
    id: Option<TenantId>,
    verifier: Verifier,
}

impl Tenant {
    /// A tenant named `id` whose tokens `verifier` checks.
    pub fn new(id: impl Into<TenantId>, verifier: Verifier) -> Self {
        Self {
            id: Some(id.into()),
            verifier,
        }
    }

    /// The tenant's id, inserted into the extensions of its requests. `None` only for the
    /// one tenant of a single-secret layer ([`FixedTenant`]), which inserts no id.
    pub fn id(&self) -> Option<&TenantId> {
        self.id.as_ref()
    }

    /// The verifier for the tenant's tokens.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Verifier`'s own Debug redacts the secrets.
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .field("verifier", &self.verifier)
            .finish()
    }
}

/// The id of the tenant a request was resolved to, inserted into the request extensions
/// by a gateway ([`DtSignatureLayer::gateway`](crate::DtSignatureLayer::gateway); with
/// axum: `Extension<TenantId>`). A single-secret layer inserts none. Cloning is cheap.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TenantId {
    fn from(id: &str) -> Self {
        Self(Arc::from(id))
    }
}

impl From<String> for TenantId {
    fn from(id: String) -> Self {
        Self(Arc::from(id))
    }
}

impl std::borrow::Borrow<str> for TenantId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a [`ResolveSecrets`] lookup failed: wraps the resolver's own error.
///
/// Its `Display` text is fixed (`secret lookup failed`); the wrapped error is its
/// [`source`](StdError::source). The request is refused with
/// [`ErrorKind::ResolverFailed`](crate::ErrorKind::ResolverFailed), whose
/// [`DtSignatureError`](crate::DtSignatureError) has this error as its source.
pub struct ResolveError {
    source: Box<dyn StdError + Send + Sync>,
}

impl ResolveError {
    /// Wrap the resolver's error.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Debug for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveError")
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("secret lookup failed")
    }
}

impl StdError for ResolveError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// A fixed map from tenant key to [`Tenant`], the key read from the request head: a path
/// segment, a header, or your own function. Lookups are synchronous (the future is
/// [`Ready`]); cloning is cheap (two `Arc`s).
///
/// It knows its tenants, so it names the gateway's [`Decoy`]
/// ([`ResolveSecrets::decoy`]) with no line to add: [`Decoy::following`] its tenants'
/// verifiers, in the order of their ids. When any tenant reads `DT-Asymmetric-Signature`,
/// an unknown tenant does the work of such a tenant, under its key set: of the policy and
/// key set most of those tenants share, a tie going to the tenant whose id sorts first.
/// Tenants of another policy or key set stay apart from unknown ones by timing
/// (SECURITY.md, "What still tells tenants apart").
///
/// ```
/// use tower_dt_signature::gateway::StaticSecrets;
/// use tower_dt_signature::{DtSignatureLayer, Verifier};
///
/// // POST /dt/{connector}: segment 1 of the path.
/// let secrets = StaticSecrets::by_path_segment(1)
///     .tenant("warehouse", Verifier::new("secret of the warehouse connector"))
///     .tenant("office", Verifier::new("secret of the office connector"));
/// let layer = DtSignatureLayer::gateway(secrets);
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct StaticSecrets {
    tenants: Arc<HashMap<TenantId, Tenant>>,
    key: TenantKey,
    /// [`Decoy::following`] the tenants, made again at each `tenant` call.
    decoy: Option<Decoy>,
}

#[derive(Clone)]
enum TenantKey {
    PathSegment(usize),
    Header(HeaderName),
    Custom(KeyFn),
}

type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

impl StaticSecrets {
    /// Tenants keyed by the `index`-th segment of the path (from 0, empty segments
    /// skipped, not percent-decoded): 1 for `/dt/{connector}`. Inside an axum `nest`, the
    /// path is the one the nested router sees.
    pub fn by_path_segment(index: usize) -> Self {
        Self::with_key(TenantKey::PathSegment(index))
    }

    /// Tenants keyed by the value of the header `name` (a fixed custom header set on the
    /// connector in DT Studio). A request with none, or more than one, has no tenant.
    pub fn by_header(name: HeaderName) -> Self {
        Self::with_key(TenantKey::Header(name))
    }

    /// Tenants keyed by what `key` reads from the request head; `None` means no tenant.
    pub fn by_key(key: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        Self::with_key(TenantKey::Custom(Arc::new(key)))
    }

    fn with_key(key: TenantKey) -> Self {
        Self {
            tenants: Arc::default(),
            key,
            decoy: None,
        }
    }

    /// Add (or replace) the tenant whose key is `id`, checked by `verifier`.
    pub fn tenant(mut self, id: impl Into<TenantId>, verifier: Verifier) -> Self {
        let id = id.into();
        let tenant = Tenant::new(id.clone(), verifier);
        Arc::make_mut(&mut self.tenants).insert(id, tenant);
        let mut ids: Vec<&TenantId> = self.tenants.keys().collect();
        ids.sort_unstable();
        self.decoy = Decoy::following(ids.into_iter().map(|id| self.tenants[id].verifier()));
        self
    }

    /// How many tenants there are.
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// Whether there are no tenants.
    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    fn lookup(&self, parts: &Parts) -> Option<Tenant> {
        let found = |key: &str| self.tenants.get(key).cloned();
        match &self.key {
            TenantKey::PathSegment(index) => parts
                .uri
                .path()
                .split('/')
                .filter(|segment| !segment.is_empty())
                .nth(*index)
                .and_then(found),
            TenantKey::Header(name) => {
                let mut values = parts.headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (Some(value), None) => value.to_str().ok().and_then(found),
                    _ => None,
                }
            }
            TenantKey::Custom(key) => key(parts).as_deref().and_then(found),
        }
    }
}

impl ResolveSecrets for StaticSecrets {
    type Future = Ready<Result<Option<Tenant>, ResolveError>>;

    fn resolve(&self, parts: &Parts) -> Self::Future {
        ready(Ok(self.lookup(parts)))
    }

    /// [`Decoy::following`] the tenants (see [`StaticSecrets`]).
    fn decoy(&self) -> Option<Decoy> {
        self.decoy.clone()
    }
}

impl fmt::Debug for StaticSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.tenants.keys().map(TenantId::as_str).collect();
        ids.sort_unstable();
        let key = match &self.key {
            TenantKey::PathSegment(index) => format!("path segment {index}"),
            TenantKey::Header(name) => format!("header {name}"),
            TenantKey::Custom(_) => "custom".to_owned(),
        };
        f.debug_struct("StaticSecrets")
            .field("tenants", &ids)
            .field("key", &key)
            .field("decoy", &self.decoy.as_ref().map(Decoy::policy))
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// The one tenant of a single-secret layer ([`DtSignatureLayer::new`]): every request is
/// checked by its [`Verifier`], and no [`TenantId`] is inserted. Resolves at once.
///
/// [`DtSignatureLayer::new`]: crate::DtSignatureLayer::new
#[derive(Clone)]
pub struct FixedTenant {
    verifier: Verifier,
}

impl FixedTenant {
    /// Every request is checked by `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Unwrap the verifier.
    pub fn into_verifier(self) -> Verifier {
        self.verifier
    }
}

impl ResolveSecrets for FixedTenant {
    type Future = Ready<Result<Option<Tenant>, ResolveError>>;

    fn resolve(&self, _parts: &Parts) -> Self::Future {
        ready(Ok(Some(Tenant {
            id: None,
            verifier: self.verifier.clone(),
        })))
    }
}

impl fmt::Debug for FixedTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Verifier`'s own Debug redacts the secrets.
        f.debug_tuple("FixedTenant").field(&self.verifier).finish()
    }
}
