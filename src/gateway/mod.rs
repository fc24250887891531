//! Many Data Connectors behind one layer, each verified with its own secrets.
//!
//! [`DtSignatureLayer::gateway`](crate::DtSignatureLayer::gateway) takes a
//! [`ResolveSecrets`]: a closure, your own store, or the fixed [`StaticSecrets`] keyed by a
//! path segment (`/dt/{connector}`), a header or a function. For each request the layer
//! checks what needs no secret (the `X-Dt-Signature` header, the token's shape and `alg`,
//! the `Content-Length`), asks the resolver for the [`Tenant`] from the request head, then
//! verifies with the tenant's [`Verifier`](crate::Verifier) exactly as a single-secret
//! layer does. A forwarded request carries the [`TenantId`] in its extensions, beside the
//! [`DtClaims`](crate::DtClaims).
//!
//! | The resolver returns | Answer (default rejection) | [`ErrorKind`](crate::ErrorKind) |
//! | --- | --- | --- |
//! | a tenant | the same as a single-secret layer with its verifier | as there |
//! | `Ok(None)` | 400 `invalid token signature`, before the body is read (503 `signing keys unavailable` when the [`Decoy`]'s key set cannot check the token, as a known tenant answers then) | `UnknownTenant` |
//! | `Err` | 503 `secret lookup failed`, before the body is read | `ResolverFailed` |
//!
//! The checks that need no secret run before the resolver, so a request for an unknown
//! tenant gets exactly the answer a known tenant gives to a token not signed with its
//! secret: the answers never tell which tenants exist. An unknown tenant also does the
//! crypto work of a known one, the [`Decoy`]'s: a [`StaticSecrets`] whose tenants read
//! `DT-Asymmetric-Signature` picks it from its tenants, with no line to add; a resolver
//! of your own names it ([`ResolveSecrets::decoy`]). Under a key outage the decoy answers
//! as a known tenant of its policy does (503). The error in the response's extensions,
//! the log line (debug) and the metric still say `unknown_tenant`.
//!
//! A single-secret layer ([`DtSignatureLayer::new`](crate::DtSignatureLayer::new)) is the
//! same pipeline with a [`FixedTenant`]: it resolves at once and inserts no `TenantId`.
//!
//! ```
//! use axum::{routing::post, Extension, Router};
//! use tower_dt_signature::gateway::{StaticSecrets, TenantId};
//! use tower_dt_signature::{DtSignatureLayer, Verifier};
//!
//! async fn handler(Extension(tenant): Extension<TenantId>) -> String {
//!     format!("event from {tenant}")
//! }
//!
//! let secrets = StaticSecrets::by_path_segment(1)
//!     .tenant("warehouse", Verifier::new("warehouse secret"))
//!     .tenant("office", Verifier::new("office secret").require_sha256(true));
//! let app: Router = Router::new()
//!     .route("/dt/{connector}", post(handler))
//!     .layer(DtSignatureLayer::gateway(secrets));
//! ```

mod decoy;
mod resolve;

pub use decoy::Decoy;
pub(crate) use decoy::{Decoys, PickedDecoy};
pub use resolve::{FixedTenant, ResolveError, ResolveSecrets, StaticSecrets, Tenant, TenantId};
