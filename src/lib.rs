//! Verify Disruptive Technologies (DT) Data Connector requests in any tower stack.
//!
//! A DT Data Connector pushes every sensor event as an HTTPS `POST` with a JSON body and,
//! when the connector has a signature secret, an `X-Dt-Signature` header: a JWT signed
//! with HMAC-SHA256 under that secret, whose claims carry the SHA-1 (`checksum`) and, since
//! 2022, the SHA-256 (`checksum_sha256`) of the raw body, plus `iat`, `exp` (`iat` + 1 h)
//! and `jti`.
//!
//! [`DtSignatureLayer`] checks the token before reading the body, buffers the body while
//! hashing it, and forwards the request, byte for byte, with the verified [`DtClaims`] in
//! its extensions. Everything else is answered with a 400 (413 for a body over the limit,
//! 503 when the request cannot be checked now: see [Responses](#responses)) and never
//! reaches the inner service. [`Verifier`] applies the same rules without tower.
//!
//! An axum app: the layer in front of the route DT pushes to.
//!
//! ```no_run
//! use axum::{body::Bytes, http::StatusCode, routing::post, Extension, Router};
//! use tower_dt_signature::{DtClaims, DtSignatureLayer};
//!
//! /// Runs only for requests DT signed; `body` holds the exact bytes DT sent.
//! async fn receive(Extension(claims): Extension<DtClaims>, body: Bytes) -> StatusCode {
//!     println!("{} bytes, token {:?}", body.len(), claims.jti());
//!     StatusCode::OK
//! }
//!
//! # #[tokio::main]
//! # async fn main() {
//! let secret = std::env::var("DT_SIGNATURE_SECRET").expect("the connector's secret");
//! let app = Router::new()
//!     .route("/", post(receive))
//!     .layer(DtSignatureLayer::new(secret));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! Typed events (feature `axum`, which implies `events`): the `DtPayload` extractor decodes
//! a verified body into `events::Payload`, one enum variant per event type.
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # {
//! use axum::{routing::post, Router};
//! use tower_dt_signature::{events::EventData, extract::DtPayload, DtSignatureLayer};
//!
//! async fn receive(DtPayload(payload): DtPayload) -> &'static str {
//!     if let EventData::Temperature(t) = &payload.event.data {
//!         println!("{:?} is at {} °C", payload.event.device_id(), t.value);
//!     }
//!     "ok"
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", post(receive))
//!     .layer(DtSignatureLayer::new("the connector's secret"));
//! # }
//! ```
//!
//! De-duplication (feature `dedup`): DT delivers at least once, and a captured request can
//! be replayed while its token lives. `dedup::DedupLayer`, inside the signature layer,
//! forwards each `event.eventId` once: a copy of an event already handled is answered
//! `200 done` (`409 in-flight` while the first is being handled) without calling the
//! handler. The `dedup` module has the table of answers.
//!
//! ```
//! # #[cfg(feature = "dedup")]
//! # {
//! use axum::{routing::post, Router};
//! use tower_dt_signature::{dedup::DedupLayer, DtSignatureLayer};
//!
//! let app: Router = Router::new()
//!     .route("/", post(|| async { "ok" }))
//!     .layer(DedupLayer::new()) // in memory; `RedisStore` shares it between replicas
//!     .layer(DtSignatureLayer::new("the connector's secret"));
//! # }
//! ```
//!
//! The same layer, checked with a real request that a DT Data Connector signed:
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use axum::{body::{Body, Bytes}, routing::post, Router};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//! use tower_dt_signature::DtSignatureLayer;
//!
//! // A real request signed by a DT Data Connector with the secret "test-secret".
//! const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1NjdmNTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0.gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo";
//! const BODY: &str = r#"{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}"#;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/", post(|body: Bytes| async move {
//!         assert_eq!(body, BODY); // the exact bytes DT sent
//!         "ok"
//!     }))
//!     // The token expired in 2022: pin the clock to when it was sent.
//!     .layer(DtSignatureLayer::new("test-secret")
//!         .clock(|| UNIX_EPOCH + Duration::from_secs(1_644_496_933)));
//!
//! let signed = Request::post("/")
//!     .header("x-dt-signature", TOKEN)
//!     .body(Body::from(BODY))
//!     .unwrap();
//! assert_eq!(app.clone().oneshot(signed).await.unwrap().status(), StatusCode::OK);
//!
//! let tampered = Request::post("/")
//!     .header("x-dt-signature", TOKEN)
//!     .body(Body::from(BODY.replace("touch", "tauch")))
//!     .unwrap();
//! let response = app.oneshot(tampered).await.unwrap();
//! assert_eq!(response.status(), StatusCode::BAD_REQUEST);
//! let text = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
//! assert_eq!(text, "checksum mismatch");
//! # }
//! ```
//!
//! # The rules
//!
//! 1. Exactly one `X-Dt-Signature` header (any case), visible ASCII, at most 8 KiB.
//! 2. A compact JWS whose header says `"alg": "HS256"` (any other `alg`, `none` included,
//!    is refused; so is a `crit` header), with an HMAC that matches one of the configured
//!    secrets. The secret is used as is, not base64-decoded.
//! 3. `exp` is required and the token is expired when `now >= exp + leeway`; an `iat` (or
//!    `nbf`) more than `leeway` in the future is refused. With a leeway of zero these are
//!    exactly the rules of DT's own Python library.
//! 4. Every checksum claim present must match the raw body bytes, and at least one must
//!    be present (both, with [`require_sha256`](DtSignatureLayer::require_sha256)). Hex in
//!    either case; compared in constant time.
//! 5. Rules 1-3, and a `Content-Length` over the limit, are decided before a single body
//!    byte is read: a forged or expired request costs no buffering.
//!
//! # Responses
//!
//! | When | Status | Body (`text/plain`) | [`ErrorKind`] |
//! | --- | --- | --- | --- |
//! | verified | the inner service's | the inner service's | - |
//! | no `X-Dt-Signature` header | 400 | `missing X-Dt-Signature header` | `MissingHeader` |
//! | more than one `X-Dt-Signature` header | 400 | `more than one X-Dt-Signature header` | `DuplicateHeader` |
//! | `X-Dt-Signature` not visible ASCII | 400 | `X-Dt-Signature header is not visible ASCII` | `InvalidHeader` |
//! | `X-Dt-Signature` over 8 KiB | 400 | `X-Dt-Signature header too large` | `HeaderTooLarge` |
//! | not a compact JWS (either token) | 400 | `malformed token` | `MalformedToken` |
//! | `alg` not the scheme's (`none` included), or a `crit` header | 400 | `unsupported token algorithm` | `UnsupportedAlgorithm` |
//! | signature matches no secret (HMAC) or key (ES256) | 400 | `invalid token signature` | `InvalidSignature` |
//! | claims not a JSON object of the expected shape | 400 | `malformed token claims` | `MalformedClaims` |
//! | no `exp` | 400 | `token has no exp claim` | `MissingExpiry` |
//! | expired: `now >= exp + leeway` | 400 | `token expired` | `Expired` |
//! | `iat` more than the leeway in the future | 400 | `token issued in the future` | `IssuedInFuture` |
//! | `nbf` more than the leeway in the future | 400 | `token not yet valid` | `NotYetValid` |
//! | no checksum claim | 400 | `token has no checksum claim` | `MissingChecksum` |
//! | no `checksum_sha256` with `require_sha256` | 400 | `token has no checksum_sha256 claim` | `MissingSha256` |
//! | a checksum claim not hex of the right length | 400 | `malformed checksum claim` | `MalformedChecksum` |
//! | a checksum claim does not match the body | 400 | `checksum mismatch` | `ChecksumMismatch` |
//! | body over `max_body_size` | 413 | `request body too large` | `BodyTooLarge` |
//! | body read error (the client went away) | 400 | `failed to read request body` | `BodyRead` |
//! | no `DT-Asymmetric-Signature` header | 400 | `missing DT-Asymmetric-Signature header` | `MissingAsymmetricHeader` |
//! | more than one `DT-Asymmetric-Signature` header | 400 | `more than one DT-Asymmetric-Signature header` | `DuplicateAsymmetricHeader` |
//! | `DT-Asymmetric-Signature` not visible ASCII | 400 | `DT-Asymmetric-Signature header is not visible ASCII` | `InvalidAsymmetricHeader` |
//! | `DT-Asymmetric-Signature` over 8 KiB | 400 | `DT-Asymmetric-Signature header too large` | `AsymmetricHeaderTooLarge` |
//! | asymmetric token without `kid`, or with an empty one | 400 | `token has no kid` | `MissingKeyId` |
//! | `kid` not in the key set, which is current | 400 | `unknown signing key` | `UnknownKey` |
//! | no key set yet, or unknown `kid` after a failed refresh | 503 | `signing keys unavailable` | `KeysUnavailable` |
//! | `iss` is not the key set's issuer | 400 | `token issuer mismatch` | `WrongIssuer` |
//! | `sub` is not your DT organization | 400 | `token organization mismatch` | `WrongOrganization` |
//! | unknown tenant (gateway); while the decoy's key set cannot check the token, the 503 `signing keys unavailable` a known tenant answers then (`status()`) | 400 | `invalid token signature` | `UnknownTenant` |
//! | the secret resolver failed (gateway) | 503 | `secret lookup failed` | `ResolverFailed` |
//! | `verify_token` of a `both` or `either` verifier (never the layer) | 400 | `policy reads both headers: use verify(headers, body)` | `PolicyNeedsHeaders` |
//!
//! A gateway ([`DtSignatureLayer::gateway`]) answers every 400 it decides after picking the
//! tenant with `invalid token signature`, so that the answer never tells which tenants
//! exist or how each is configured; the precise kind is in the response's extensions.
//!
//! A refusal is an `Ok` response, so the service's error type is the inner service's and
//! axum needs no `HandleErrorLayer`. The [`DtSignatureError`] is in the response's
//! extensions; [`with_rejection`](DtSignatureLayer::with_rejection) replaces the response.
//! Each refusal is logged with `tracing` at debug level, with its reason only.
//!
//! # Many connectors, rollout, metrics
//!
//! - [`DtSignatureLayer::gateway`] serves many Data Connectors, each with its own secrets:
//!   a [`ResolveSecrets`](gateway::ResolveSecrets) (a closure, your own store, or the fixed
//!   [`StaticSecrets`](gateway::StaticSecrets) keyed by a path segment such as
//!   `/dt/{connector}` or a header) picks the [`Tenant`](gateway::Tenant) from the request
//!   head before the body is read, and the handler gets its
//!   [`TenantId`](gateway::TenantId). See [`gateway`].
//! - [`report_only`](DtSignatureLayer::report_only) verifies and records but forwards every
//!   request with its [`Verdict`]: switch verification on for a live endpoint, watch, then
//!   enforce.
//! - The feature `metrics` counts requests by outcome and [`ErrorKind::code`] and records
//!   body sizes and verification times through the `metrics` facade: see
//!   [Metrics](#metrics).
//!
//! # Metrics
//!
//! With the feature `metrics`, through the [`metrics`](https://docs.rs/metrics) facade:
//! install any recorder (`metrics-exporter-prometheus` renders them for Prometheus).
//! Nothing is measured without the feature.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `dt_signature_requests_total` | counter | `outcome`: `accepted`, `rejected`, `reported` (failed, forwarded in report-only mode); `kind`: [`ErrorKind::code`], or `none` when accepted; `scheme`: the verified schemes when accepted (`hmac`, `asymmetric`, `both`), else the refused token's (`hmac`, `asymmetric`, or `none` for the body or the lookup) |
//! | `dt_signature_jwks_fetches_total` | counter | `outcome` of each key set refresh (feature `jwks`): `ok`, or the failure's class (`keys::FailureClass::code`) |
//! | `dt_signature_jwks_last_success_timestamp_seconds` | gauge | `issuer`; the Unix time of the last successful key refresh (feature `jwks`) |
//! | `dt_dedup_evictions_total` | counter | - (done marks the in-memory store evicted, feature `dedup`) |
//! | `dt_signature_body_bytes` | histogram | - (bodies read to their end) |
//! | `dt_signature_verification_seconds` | histogram | - (checking the token, hashing and comparing; not waiting for body bytes) |
//! | `dt_signature_signing_lag_seconds` | histogram | - (accepted `DT-Asymmetric-Signature` requests: the layer's clock when it checked the token minus the token's `iat`, DT's signing time, in whole seconds; an `iat` ahead within the leeway gives 0) |
//!
//! [`describe_metrics`] gives each its help text and unit (call it once after installing
//! the recorder). The event age, the last accepted event and the store's commits are
//! measured where the body is parsed: by `tower-dt-store` (its own table).
//!
//! # Stacking
//!
//! Put `DtSignatureLayer` innermost, next to the handler, so that tracing and timeouts see
//! every request: outermost `TraceLayer`, then `TimeoutLayer` (cuts off a client that
//! trickles its body), then `DtSignatureLayer`. It has its own body limit, so a
//! `RequestBodyLimitLayer` is not needed; if present, put it outside.
//!
//! # Feature flags
//!
//! The core (the layer, the gateway, [`Verifier`]) is always built. Everything else is a
//! feature, off by default, as tower-http gates each middleware: a one-secret receiver
//! compiles only what it uses.
//!
//! | feature | adds |
//! | --- | --- |
//! | `events` | the `events` module: typed payloads (`events::Payload::from_slice`), 19 event types, unknown-tolerant |
//! | `dedup` | the `dedup` module: the duplicate and replay guard (`dedup::DedupLayer`) with its in-memory store |
//! | `redis` | `dedup::RedisStore`: the guard's store in Redis, shared by several replicas (implies `dedup`; brings `redis` and `tokio`) |
//! | `axum` | `DtPayload`: an axum extractor for the typed payload of a verified request; it answers 500 on a route without `DtSignatureLayer` and never decodes unverified bytes (implies `events`) |
//! | `metrics` | request outcomes, body sizes, verification times, signing lags, key fetches and the duplicate guard's evictions through the [`metrics`](https://docs.rs/metrics) facade (export with any recorder, e.g. `metrics-exporter-prometheus`): see [Metrics](#metrics). Without the feature nothing is measured |
//! | `asymmetric` | `DT-Asymmetric-Signature`: ES256 tokens signed with DT's own key (ring), checked against a pinned `keys::DtKeys` and bound to your DT organization; the policies `hmac`, `asymmetric`, `both`, `either` ([`Policy`](verify::Policy)). No HTTP client, no runtime |
//! | `jwks` | `keys::DtKeys::discover`: DT's keys through OpenID Connect discovery, refreshed by a tokio task (rustls with no provider feature of its own; implies `asymmetric`) |
//! | `test-util` | the `testing` module: `Signer` / `SignOptions` mint `X-Dt-Signature` tokens and signed requests exactly as DT does; `Payload::sample`: a schema-true payload of any event type (tests, and the `dt-signature send` command of the `cli/` tool: a local Data Connector; implies `events`) |
//! | `full` | every feature above but `test-util` |
//!
//! # DT-Asymmetric-Signature
//!
//! DT is retiring the shared secret in favour of `DT-Asymmetric-Signature`: a JWT signed
//! with DT's private key (ES256), checked against the keys DT publishes. With the feature
//! `asymmetric`, [`Verifier::asymmetric`], [`Verifier::both`] and [`Verifier::either`] check
//! it (with [`DtSignatureLayer::from`]); the org id they take is required, because DT signs
//! every customer's events with the same keys. To migrate, use one `either` layer and watch
//! which schemes verify ([`DtClaims::schemes`], the `scheme` metric label), then switch to
//! `asymmetric`.
//!
//! Its warnings (a token for another organization, an unknown `kid`, a failed key
//! refresh) are [`tracing`](https://docs.rs/tracing) events: an application sees them only
//! through a subscriber, such as `tracing_subscriber::fmt().init()`. Without one nothing is
//! printed, whatever `RUST_LOG` says.
//!
//! No feature pulls in a JWT library or a crypto backend switch: HMAC-SHA256 comes from
//! the RustCrypto `hmac` crate, so no feature unification can make a user's
//! `jsonwebtoken` or `rustls` ambiguous.
//!
//! # Security notes
//!
//! - Verification proves a request was signed (with your secret, or DT's key) within the
//!   token's lifetime; it does not stop a captured request from being replayed while the
//!   token lives (1 h for `X-Dt-Signature`, 300 s for DT's ES256
//!   `DT-Asymmetric-Signature`), nor DT's own at-least-once duplicates: de-duplicate on
//!   `event.eventId`, which `dedup::DedupLayer` (feature `dedup`) does for a handler that
//!   acts on each event, and the `tower-dt-store` crate (`store/` in this workspace) does
//!   for a receiver that keeps each event: it stores it durably, once, and answers only
//!   then.
//! - Turn on [`require_sha256`](DtSignatureLayer::require_sha256) unless you must accept
//!   tokens minted before 2022-02-10: it rules out a token that carries SHA-1 alone.
//! - Error messages, `Debug` output and log lines never contain the secret, the token, a
//!   digest or body bytes.
//! - Serve over TLS and set server timeouts: the layer buffers up to the body limit per
//!   request.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

#[cfg(feature = "__fuzz")]
#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod __fuzz;
mod claims;
pub mod consts;
#[cfg(feature = "dedup")]
#[cfg_attr(docsrs, doc(cfg(feature = "dedup")))]
pub mod dedup;
mod error;
#[cfg(feature = "events")]
#[cfg_attr(docsrs, doc(cfg(feature = "events")))]
pub mod events;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;
pub mod gateway;
#[cfg(feature = "asymmetric")]
#[cfg_attr(docsrs, doc(cfg(feature = "asymmetric")))]
pub mod keys;
mod layer;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
pub mod verify;

/// The response futures of the services.
pub mod future {
    pub use crate::layer::future::ResponseFuture;
}

/// The response of a refusal: [`DefaultRejection`](rejection::DefaultRejection) (the
/// status and public text of the [`ErrorKind`]), or your own through
/// [`MakeRejection`](rejection::MakeRejection) and
/// [`DtSignatureLayer::with_rejection`].
pub mod rejection {
    pub use crate::layer::rejection::{DefaultRejection, MakeRejection};
}

pub use claims::DtClaims;
pub use error::{ConfigError, DtSignatureError, ErrorKind, Scheme};
pub use layer::body::DtBody;
pub use layer::verdict::Verdict;
pub use layer::{DtSignature, DtSignatureLayer};
pub use verify::Verifier;

/// Describes every metric of this crate to the installed recorder: its unit and help text
/// (the `# HELP` line of `metrics-exporter-prometheus`, without which `promtool check
/// metrics` fails). Call it once, after installing the recorder. See [Metrics](#metrics).
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe_metrics() {
    layer::meter::describe();
}
