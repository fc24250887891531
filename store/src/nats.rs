//! [`NatsStore`]: a NATS JetStream stream that the user's consumers read (feature `nats`).
//!
//! Each verified request is one JetStream message: the body is the exact bytes DT sent,
//! the headers carry what the store read from it, and the subject names the tenant, the
//! event type, the device and the event. The user's consumers read the stream at their
//! own pace, on as many machines as they need (a pull consumer is shown in the README).
//!
//! # Subjects
//!
//! ```text
//! <prefix>.<tenant>.<event type>.<device>.<event id>     a DT event
//! <prefix>.<tenant>._._.<sha256:hex of the body>          a verified body that is not one
//! ```
//!
//! The prefix is `dt` ([`DEFAULT_SUBJECT_PREFIX`]); the tenant is the gateway's
//! `TenantId`, or [`DEFAULT_TENANT`](crate::DEFAULT_TENANT) (`-`) for a layer without a
//! gateway; the device is the device id of `targetName`, or the whole `targetName` when it
//! names no device. A consumer filters on the tokens: `dt.*.temperature.>` (every
//! temperature event), `dt.acme.*.c8k3ak2mc8s6qg3mq1kg.*` (one device of tenant `acme`),
//! `dt.*._._.*` (the bodies that are not events).
//!
//! Every token is encoded by one rule ([`subject_token`]), reversible and the same for
//! subjects and key-value keys:
//! - the ASCII letters, digits and `-` stand for themselves;
//! - every other byte of the UTF-8 text (`.`, `*`, `>`, spaces, `/`, `_`, `=`, `:`, ...)
//!   is `=` and its two upper-case hex digits: `projects/p1/dataconnectors/x` is
//!   `projects=2Fp1=2Fdataconnectors=2Fx`, `sha256:ab` is `sha256=3Aab`;
//! - an empty text is `=`; a token that would be longer than [`MAX_TOKEN_LEN`] (96) is
//!   `==` and the first 40 hex digits of the text's SHA-256, so a subject always fits
//!   NATS's control line. DT's ids are short base32 text and never take this form.
//!
//! So `_` alone, `=` alone and `==...` never come from a plain value: `_` marks "no type,
//! no device" and cannot be confused with an event type.
//!
//! # Headers
//!
//! | header | holds |
//! | --- | --- |
//! | `Dt-Tenant` | the tenant |
//! | `Dt-Event-Key` | `event.eventId`, or `sha256:<hex>` for a body that is not an event |
//! | `Dt-Event-Id`, `Dt-Event-Type`, `Dt-Target-Name`, `Dt-Device`, `Dt-Project` | the event's fields (`Dt-Device` and `Dt-Project` when `targetName` names them) |
//! | `Dt-Event-Timestamp` | `event.timestamp` as sent |
//! | `Dt-Event-Timestamp-Ns` | the same instant in nanoseconds since the Unix epoch |
//! | `Dt-Schemes` | the verified schemes: `hmac`, `asymmetric`, `hmac,asymmetric` |
//! | `Dt-Asymmetric-Signature`, `Dt-Asymmetric-Kid` | DT's ES256 token over this body and its `kid`, when the layer verified it (evidence, as in the SQL stores) |
//! | `Dt-Received-At-Us` | when the store received the request, µs since the Unix epoch |
//! | `Dt-Body-Sha256` | the body's SHA-256, lower-case hex |
//! | `Nats-Msg-Id`, `Nats-Expected-Stream`, `Nats-Expected-Last-Subject-Sequence` | JetStream's own (below) |
//!
//! A header value is the field as read, with `%`, control bytes and non-ASCII bytes
//! percent-encoded (`%0A`); DT's values are plain ASCII and read as sent. A field longer
//! than [`MAX_HEADER_VALUE_LEN`] (512 bytes; 4 KiB for the token) is left out of the
//! headers: the body has it. That bounds the headers, so the largest message is known
//! before the first request ([`HEADER_ALLOWANCE`]).
//!
//! # Consuming
//!
//! A durable pull consumer reads the stream at its own pace, on as many machines as
//! needed (the server spreads the messages among them), and acknowledges each message
//! once it is handled; an unacknowledged message is delivered again after `ack_wait`. So
//! a consumer is at least once: key what it does on `Dt-Event-Key` (or `Dt-Event-Id`).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use async_nats::jetstream::{self, consumer::pull};
//! use futures_util::StreamExt;
//!
//! # async fn handle(_body: &[u8]) -> Result<(), async_nats::Error> { Ok(()) }
//! # async fn consume() -> Result<(), async_nats::Error> {
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let stream = jetstream::new(client).get_stream("DT_EVENTS").await?;
//! let consumer = stream
//!     .get_or_create_consumer(
//!         "temperature-processor",
//!         pull::Config {
//!             durable_name: Some("temperature-processor".into()),
//!             filter_subject: "dt.*.temperature.>".into(),
//!             ack_wait: Duration::from_secs(60),
//!             ..Default::default()
//!         },
//!     )
//!     .await?;
//! let mut messages = consumer.messages().await?;
//! while let Some(message) = messages.next().await {
//!     let message = message?;
//!     // The body, byte for byte as DT sent it; the store's fields are headers.
//!     let event_id = message.headers.as_ref().and_then(|h| h.get("Dt-Event-Id"));
//!     tracing::info!(?event_id, subject = %message.subject, "event");
//!     handle(&message.payload).await?;
//!     // Acknowledged once handled (double_ack waits for the server's confirmation).
//!     message.double_ack().await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Exactly once over DT's whole retry window
//!
//! DT retries an event for up to 12 hours. The store publishes each message with
//! `Nats-Expected-Last-Subject-Sequence: 0`: the server stores it only if its subject
//! holds no message yet. The subject ends with the event id, so the server refuses a
//! second copy of an event for as long as the stream keeps the first, in the same step
//! that would store it: there is no window between recording the id and storing the
//! message, nothing to clean up after a crash, and a restarted server rebuilds the check
//! from the messages it holds. A copy refused this way is answered `200` (duplicate) once
//! the store has read the first copy back from the stream, so never before the first
//! copy was acknowledged. `Nats-Msg-Id` (tenant and key) is set too: within the stream's
//! duplicate window (2 minutes by default) JetStream acknowledges a copy as a duplicate
//! without that check.
//!
//! The stream's `max_age` is therefore the de-duplication horizon: at least
//! [`MIN_MAX_AGE`] (13 hours: DT's 12 hours and one for clocks and slow retries), refused
//! below it; [`DEFAULT_MAX_AGE`] is 24 hours.
//!
//! The other designs, and why not:
//! - a duplicate window as long as DT's retries: JetStream keeps every id of the window
//!   in the server's memory, forgets the ids of deleted messages at a restart, and
//!   cannot be longer than `max_age`; it costs at least as much memory as the subject
//!   index below, for the same guarantee.
//! - a key-value bucket of event ids (create-if-absent, bucket-wide `max_age`): two
//!   writes, the id and the message, that no server on Debian 12 (2.9) can make atomic.
//!   Recording the id first loses the event when the publish then fails (the retry finds
//!   the id and is answered `200`); publishing first doubles it when the receiver dies
//!   between the two and DT's retry comes after the duplicate window.
//!
//! The cost is the server's per-subject index: one entry per message the stream holds,
//! in memory. Measured on nats-server 2.9.10 (file storage): 121-132 bytes of live heap
//! per message, 245-261 bytes resident. At 1,000 events per second, 13 hours (46.8 M
//! messages) is 5.7-6.2 GB of heap, 11.5-12.2 GB resident, twice that for the default
//! 24 h; a restart rebuilds the index before the stream answers (about 2 s per 1.5 M
//! messages). The two other designs cost as much per id for the same 13 hours (130-138
//! bytes for the duplicate window, 122-133 for a bucket of ids), so the choice costs no
//! memory; `max_age` sets it.
//!
//! # The newest per device: `dt_latest`
//!
//! A key-value bucket ([`DEFAULT_LATEST_BUCKET`]), one key per (tenant, event type,
//! device): `<tenant>.<event type>.<device>`, tokens encoded as above. Its value is the
//! body of the newest event, byte for byte. An event replaces it only when it is newer
//! by the SQL stores' rule (the greater `event.timestamp` as an instant, at the same
//! instant the greater event id), with compare-and-set on the key's revision: two
//! replicas never overwrite a newer event with an older one. The key is updated after
//! the message is acknowledged and before the `200`; a receiver that dies between the
//! two never answered `200`, and DT's retry, a duplicate, updates the key from the stored
//! copy. So the bucket is the newest of what the stream holds, whatever the arrival
//! order and whichever replica answered.
//!
//! # The stream
//!
//! Created when missing ([`NatsStoreBuilder`] overrides each setting):
//!
//! | setting | default | why |
//! | --- | --- | --- |
//! | name | `DT_EVENTS` | [`NatsStoreBuilder::stream`] |
//! | subjects | `dt.>` | [`NatsStoreBuilder::subject_prefix`] |
//! | retention | `limits`, for `max_age` 24 h | [`NatsStoreBuilder::max_age`], at least 13 h; `limits` is fixed: with `workqueue` or `interest` a consumed message is deleted and its id forgotten, and DT's retry would be stored again |
//! | storage | `file` | [`NatsStoreBuilder::storage`]; `memory` loses everything when the server stops |
//! | replicas | 1 | [`NatsStoreBuilder::replicas`]; 3 on a cluster, so that an acknowledgement means a quorum stored it |
//! | duplicate window | 2 min (JetStream's) | [`NatsStoreBuilder::duplicate_window`]: only a shortcut, the subject check above is the de-duplication |
//! | discard | `new`, fixed | JetStream's default, `old`, deletes the oldest events when the stream is full, consumed or not; `new` refuses the new one, answered `503`, and DT retries it |
//! | max bytes, max messages | unlimited | [`NatsStoreBuilder::max_bytes`]; when reached, `503` and `/ready` says so |
//! | max message size | unlimited (the server's `max_payload`) | at start the store checks that `max_body_size` plus [`HEADER_ALLOWANCE`] fits the server's `max_payload` (1 MiB by default) |
//!
//! A stream that already exists is never changed: the store reads its settings. Where
//! one breaks a guarantee above (retention other than `limits`, discard `old`, a
//! `max_age` under 13 h, `no_ack`, sealed, a message size too small for the body limit,
//! subjects that do not cover the prefix) the store **refuses** to start
//! ([`StoreErrorKind::Config`], naming each); where it only differs (storage, replicas,
//! duplicate window, `max_age`, limits) it **warns**, naming each difference, and uses
//! it. The `dt_latest` bucket is created the same way (history 1, no `max_age`, the
//! stream's storage and replicas).
//!
//! # Durability
//!
//! A request is answered `200` after JetStream's publish acknowledgement, which the
//! server sends once the stream's leader and a quorum of its replicas stored the
//! message, and after the `dt_latest` update. JetStream's file storage writes each
//! message to the operating system at once but does not fsync it by default (the
//! server's `sync_interval`, 2 minutes):
//! - a crash of `nats-server` (the process) loses nothing answered: the data is in the
//!   kernel's page cache and reaches the disk;
//! - a power cut (or a kernel crash) of a single server can lose the messages of the last
//!   `sync_interval`. With 3 replicas on separate machines, an acknowledged message is on
//!   2 of them; losing it takes both at once. Set `sync_interval: always` in the server's
//!   `jetstream {}` block for an fsync per message on a single server.
//!
//! Concurrent requests publish on one connection without waiting for each other: each
//! request writes its message and waits only for its own acknowledgement (async-nats
//! multiplexes the acknowledgements). A new event then takes one more round trip, the
//! compare-and-set of its `dt_latest` key: the store remembers the revision and version
//! it last saw at each key, so it reads the key first only when the event looks older
//! than that, or when another writer changed the key since (the update is refused). Each write runs on a task of its own: a request that gives up at its
//! deadline (`503`) does not stop a publish that the server may still acknowledge; DT's
//! retry is then a duplicate, answered `200`.
//!
//! # Failures
//!
//! | failure | [`StoreErrorKind`] | answer |
//! | --- | --- | --- |
//! | the server unreachable, the connection lost, no acknowledgement in [`NatsStoreBuilder::ack_timeout`] (5 s), no stream answering the subject | `Unavailable` | `503`; `/ready` names the server and the error |
//! | the stream full (`max_bytes`, `max_messages`), the server out of JetStream storage | `Full` | `503`; `/ready` says the stream is full |
//! | a stream or bucket whose settings break a guarantee; a `max_body_size` that does not fit the server's `max_payload`; bad credentials; a bad URL | `Config` | the store does not start |
//! | anything else the server refuses | `Database` | `503` |
//!
//! [`connect`](NatsStore::connect) does not fail when the server is unreachable: the
//! client keeps reconnecting, `/ready` says why meanwhile, and the stream is created (or
//! checked) on the first write or readiness check that reaches the server. The stream is
//! created again if it is deleted while the store runs.
//!
//! # Credentials and TLS
//!
//! The URL (`DT_STORE` in `dt-signature serve`) takes:
//! - `nats://user:password@host:4222`: a user and password (never logged);
//! - `nats://TOKEN@host:4222`: a token (never logged);
//! - `nats://host:4222?creds=/path/to/user.creds`: a NATS credentials file (JWT and nkey);
//! - `tls://host:4222`, optionally `?ca=/path/to/ca.pem`: TLS, verified against the
//!   platform's roots or that CA;
//! - several servers of a cluster, separated by commas.
//!
//! # rustls: pick the provider your build has
//!
//! async-nats needs a rustls crypto provider and can take `ring` or `aws-lc-rs`. This
//! crate never picks one for you, since a second provider in a build makes rustls refuse
//! to choose (`ClientConfig::builder()` panics): enable `nats-ring` or `nats-aws-lc-rs`,
//! the one your build's rustls already has (rustls's own default is `aws-lc-rs`; a build
//! with no TLS yet can take either). Each implies `nats`; `nats` alone does not build.
//!
//! The store never relies on rustls's process-wide default either: it hands async-nats a
//! TLS configuration with the chosen provider named (even for `nats://`, since a server
//! may ask for TLS), so it connects in a build with both providers too.

#[cfg(not(any(feature = "nats-ring", feature = "nats-aws-lc-rs")))]
compile_error!(
    "tower-dt-store's `nats` needs a rustls provider for async-nats: enable `nats-ring` or \
     `nats-aws-lc-rs`, the one your build's rustls already uses (rustls's default is aws-lc-rs)"
);

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{HeaderMap, ServerAddr};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::backend::{Backend, BoxFuture, Put};
use crate::error::{StoreError, StoreErrorKind};
use crate::record::{parse_event, EventFields, EventRecord};

/// The stream's name when none is given.
pub const DEFAULT_STREAM: &str = "DT_EVENTS";
/// The first token of every subject when none is given.
pub const DEFAULT_SUBJECT_PREFIX: &str = "dt";
/// The key-value bucket of the newest event per (tenant, event type, device).
pub const DEFAULT_LATEST_BUCKET: &str = "dt_latest";
/// The stream's `max_age` when none is given: 24 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The least `max_age` accepted: DT's 12 hours of retries and one more. The stream's
/// `max_age` is how long a duplicate is recognised.
pub const MIN_MAX_AGE: Duration = Duration::from_secs(13 * 3600);
/// How long a publish waits for JetStream's acknowledgement by default.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest subject token; a longer one is hashed ([`subject_token`]).
pub const MAX_TOKEN_LEN: usize = 96;
/// The longest header value sent (the ES256 token may be up to 4096 bytes).
pub const MAX_HEADER_VALUE_LEN: usize = 512;
/// The room kept for the subject and headers in a message: the largest body the store
/// takes is the server's `max_payload` minus this.
pub const HEADER_ALLOWANCE: usize = 16 * 1024;
const MAX_TOKEN_HEADER_LEN: usize = 4096;

/// Where the stream keeps its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum NatsStorage {
    /// On disk (the default).
    #[default]
    File,
    /// In the server's memory: lost when the server stops.
    Memory,
}

impl NatsStorage {
    fn to_nats(self) -> stream::StorageType {
        match self {
            Self::File => stream::StorageType::File,
            Self::Memory => stream::StorageType::Memory,
        }
    }
}

/// Encodes `value` as one subject token, or one token of a key-value key, by the rule of
/// the [module docs](self#subjects): ASCII letters, digits and `-` as they are, every
/// other byte as `=XX`, an empty value as `=`, a token over [`MAX_TOKEN_LEN`] as `==` and
/// 40 hex digits of its SHA-256.
///
/// ```
/// use tower_dt_store::nats::subject_token;
/// assert_eq!(subject_token("c82gg9catj3vmh4248og"), "c82gg9catj3vmh4248og");
/// assert_eq!(subject_token("a.b *>"), "a=2Eb=20=2A=3E");
/// assert_eq!(subject_token("-"), "-");
/// ```
pub fn subject_token(value: &str) -> String {
    use std::fmt::Write;
    if value.is_empty() {
        return "=".to_owned();
    }
    let mut token = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            token.push(char::from(byte));
        } else {
            let _ = write!(token, "={byte:02X}");
        }
    }
    if token.len() > MAX_TOKEN_LEN {
        let digest = Sha256::digest(value.as_bytes());
        return format!("=={}", &hex::encode(digest)[..40]);
    }
    token
}

/// The subject of `record` under `prefix` (see the [module docs](self#subjects)).
pub fn subject_of(prefix: &str, record: &EventRecord) -> String {
    let tenant = subject_token(&record.tenant);
    let key = subject_token(&record.key);
    match &record.event {
        Some(event) => format!(
            "{prefix}.{tenant}.{}.{}.{key}",
            subject_token(&event.event_type),
            subject_token(event.device_key())
        ),
        None => format!("{prefix}.{tenant}._._.{key}"),
    }
}

/// The `dt_latest` key of an event of `tenant`.
pub fn latest_key(tenant: &str, event: &EventFields) -> String {
    format!(
        "{}.{}.{}",
        subject_token(tenant),
        subject_token(&event.event_type),
        subject_token(event.device_key())
    )
}

/// A header value: printable ASCII as it is, `%` and every other byte as `%XX`.
fn header_value(value: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn headers_of(record: &EventRecord, stream: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut add = |name: &'static str, value: &str, limit: usize| {
        let value = header_value(value);
        if value.len() <= limit {
            headers.insert(name, value.as_str());
        }
    };
    add(
        "Nats-Msg-Id",
        &format!(
            "{}.{}",
            subject_token(&record.tenant),
            subject_token(&record.key)
        ),
        MAX_HEADER_VALUE_LEN,
    );
    add("Nats-Expected-Stream", stream, MAX_HEADER_VALUE_LEN);
    add("Nats-Expected-Last-Subject-Sequence", "0", 8);
    add("Dt-Tenant", &record.tenant, MAX_HEADER_VALUE_LEN);
    add("Dt-Event-Key", &record.key, MAX_HEADER_VALUE_LEN);
    if let Some(event) = &record.event {
        add("Dt-Event-Id", &event.event_id, MAX_HEADER_VALUE_LEN);
        add("Dt-Event-Type", &event.event_type, MAX_HEADER_VALUE_LEN);
        add("Dt-Target-Name", &event.target_name, MAX_HEADER_VALUE_LEN);
        if let Some(device) = &event.device {
            add("Dt-Device", device, MAX_HEADER_VALUE_LEN);
        }
        if let Some(project) = &event.project {
            add("Dt-Project", project, MAX_HEADER_VALUE_LEN);
        }
        add("Dt-Event-Timestamp", &event.timestamp, MAX_HEADER_VALUE_LEN);
        add(
            "Dt-Event-Timestamp-Ns",
            &event.timestamp_ns.to_string(),
            MAX_HEADER_VALUE_LEN,
        );
    }
    add("Dt-Schemes", &record.schemes, MAX_HEADER_VALUE_LEN);
    if let Some(token) = &record.asymmetric_token {
        add("Dt-Asymmetric-Signature", token, MAX_TOKEN_HEADER_LEN);
    }
    if let Some(kid) = &record.asymmetric_kid {
        add("Dt-Asymmetric-Kid", kid, MAX_HEADER_VALUE_LEN);
    }
    add(
        "Dt-Received-At-Us",
        &record.received_at_us.to_string(),
        MAX_HEADER_VALUE_LEN,
    );
    add(
        "Dt-Body-Sha256",
        &hex::encode(record.body_sha256),
        MAX_HEADER_VALUE_LEN,
    );
    headers
}

/// Whether `event` is newer than `seen`: the greater instant, at the same instant the
/// greater event id (bytes).
fn is_newer(event: &EventFields, seen: &Seen) -> bool {
    (event.timestamp_ns, event.event_id.as_bytes()) > (seen.timestamp_ns, seen.event_id.as_bytes())
}

/// Credentials from the URL.
#[derive(Clone, PartialEq, Eq)]
enum Auth {
    User(String, String),
    Token(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(name, _) => write!(f, "User({name:?}, <redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// A parsed store URL: servers, credentials, TLS.
struct Target {
    servers: Vec<ServerAddr>,
    /// `nats://host:port,...` without credentials or query, for messages.
    place: String,
    user: Option<Auth>,
    creds: Option<PathBuf>,
    ca: Option<PathBuf>,
    tls: bool,
}

fn config_error(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Config, message)
}

impl Target {
    fn parse(url: &str) -> Result<Self, StoreError> {
        let (addresses, query) = match url.split_once('?') {
            Some((addresses, query)) => (addresses, Some(query)),
            None => (url, None),
        };
        let mut creds = None;
        let mut ca = None;
        for pair in query
            .unwrap_or("")
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            match pair.split_once('=') {
                Some(("creds", path)) if !path.is_empty() => creds = Some(PathBuf::from(path)),
                Some(("ca", path)) if !path.is_empty() => ca = Some(PathBuf::from(path)),
                _ => {
                    return Err(config_error(format!(
                        "NATS URL option {:?} is not known: use ?creds=PATH or ?ca=PATH",
                        pair.split('=').next().unwrap_or("")
                    )))
                }
            }
        }
        let mut servers = Vec::new();
        let mut places = Vec::new();
        let mut user = None;
        let mut tls = false;
        for address in addresses.split(',') {
            let scheme_ok = address.starts_with("nats://") || address.starts_with("tls://");
            if !scheme_ok {
                return Err(config_error(
                    "a NATS URL starts with nats:// or tls://, e.g. nats://127.0.0.1:4222",
                ));
            }
            let server: ServerAddr = address.parse().map_err(|_| {
                config_error(format!(
                    "{} is not a NATS server address",
                    crate::nats::redact(address)
                ))
            })?;
            match (server.username(), server.password()) {
                (Some(name), Some(password)) => {
                    user = Some(Auth::User(name.to_owned(), password.to_owned()))
                }
                // `nats://TOKEN@host`: NATS's token form.
                (Some(token), None) if !token.is_empty() => {
                    user = Some(Auth::Token(token.to_owned()))
                }
                _ => {}
            }
            tls |= server.tls_required();
            let scheme = if server.tls_required() { "tls" } else { "nats" };
            places.push(format!("{scheme}://{}:{}", server.host(), server.port()));
            servers.push(server);
        }
        if ca.is_some() && !tls {
            return Err(config_error("?ca=PATH needs a tls:// URL"));
        }
        Ok(Self {
            servers,
            place: places.join(","),
            user,
            creds,
            ca,
            tls,
        })
    }

    async fn options(
        &self,
        connect_timeout: Duration,
        retry: bool,
    ) -> Result<async_nats::ConnectOptions, StoreError> {
        let mut options = async_nats::ConnectOptions::new()
            .name("dt-signature store")
            .connection_timeout(connect_timeout);
        if retry {
            options = options.retry_on_initial_connect();
        }
        match &self.user {
            Some(Auth::User(name, password)) => {
                options = options.user_and_password(name.clone(), password.clone());
            }
            Some(Auth::Token(token)) => options = options.token(token.clone()),
            None => {}
        }
        if let Some(path) = &self.creds {
            options = options.credentials_file(path).await.map_err(|error| {
                config_error(format!("NATS credentials file {}: {error}", path.display()))
            })?;
        }
        // Always a configuration of ours, even for nats://: a server that asks for TLS
        // would otherwise make async-nats call `ClientConfig::builder()`, which lets
        // rustls install a process-wide provider from its features (or panic with two).
        options = options
            .require_tls(self.tls)
            .tls_client_config(tls_config(self.ca.as_deref())?);
        Ok(options)
    }
}

/// Whether a failed connection is the server (or its certificate) refusing us, which
/// waiting does not mend: refused credentials, a TLS setup or certificate that fails.
fn refuses_us(error: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as Kind;
    if matches!(
        error.kind(),
        Kind::AuthorizationViolation | Kind::Authentication | Kind::Tls
    ) {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let io_rustls = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>());
        if io_rustls || cause.is::<rustls::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A rustls client configuration with the `ring` provider named explicitly (never the
/// process default), trusting the platform's roots or `ca`.
fn tls_config(ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, StoreError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|error| config_error(format!("CA file {}: {error}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(config_error(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    // The provider the build chose for async-nats (aws-lc-rs when both are on, as rustls
    // itself prefers it).
    #[cfg(feature = "nats-aws-lc-rs")]
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(all(feature = "nats-ring", not(feature = "nats-aws-lc-rs")))]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| config_error(format!("TLS: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `scheme://user:password@host` without the password.
fn redact(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:<redacted>@{host}"),
                // A token: all of it is the secret.
                None => format!("{scheme}://<redacted>@{host}"),
            },
            None => text.to_owned(),
        },
        None => text.to_owned(),
    }
}

/// Builds a [`NatsStore`]; every setting is documented in the [module docs](self#the-stream).
#[derive(Clone)]
#[must_use]
pub struct NatsStoreBuilder {
    url: String,
    stream: String,
    prefix: String,
    latest_bucket: String,
    replicas: usize,
    storage: NatsStorage,
    max_age: Duration,
    max_bytes: i64,
    duplicate_window: Option<Duration>,
    max_body_size: Option<usize>,
    ack_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for NatsStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStoreBuilder")
            .field("url", &redact(&self.url))
            .field("stream", &self.stream)
            .field("prefix", &self.prefix)
            .field("latest_bucket", &self.latest_bucket)
            .field("replicas", &self.replicas)
            .field("storage", &self.storage)
            .field("max_age", &self.max_age)
            .field("max_bytes", &self.max_bytes)
            .field("duplicate_window", &self.duplicate_window)
            .field("max_body_size", &self.max_body_size)
            .field("ack_timeout", &self.ack_timeout)
            .finish()
    }
}

impl NatsStoreBuilder {
    /// The stream's name (default [`DEFAULT_STREAM`]).
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The first token of every subject (default [`DEFAULT_SUBJECT_PREFIX`]); the stream
    /// takes `<prefix>.>`. It may hold several tokens (`acme.dt`).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The `dt_latest` bucket's name (default [`DEFAULT_LATEST_BUCKET`]).
    pub fn latest_bucket(mut self, name: impl Into<String>) -> Self {
        self.latest_bucket = name.into();
        self
    }

    /// The replicas of the stream and the bucket (default 1; 3 on a cluster).
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// Where the stream keeps its messages (default [`NatsStorage::File`]).
    pub fn storage(mut self, storage: NatsStorage) -> Self {
        self.storage = storage;
        self
    }

    /// How long the stream keeps a message, and so how long a duplicate is recognised
    /// (default [`DEFAULT_MAX_AGE`]; [`Duration::ZERO`] keeps messages until the limits;
    /// less than [`MIN_MAX_AGE`] is refused).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The stream's size limit in bytes (default unlimited). When it is reached, new
    /// events are refused with `503` (discard `new`), never the old ones deleted.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        self
    }

    /// The stream's duplicate window for `Nats-Msg-Id` (default JetStream's, 2 minutes).
    /// Only a shortcut: the de-duplication holds for `max_age` without it.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = Some(window);
        self
    }

    /// The largest body the layer in front takes (`DtSignatureLayer::max_body_size`).
    /// [`connect`](Self::connect) refuses it when it and [`HEADER_ALLOWANCE`] do not fit
    /// the server's `max_payload`. Unset, the store takes what fits
    /// ([`NatsStore::max_body_size`]): give the layer that value.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = Some(bytes);
        self
    }

    /// How long a publish waits for its acknowledgement (default [`DEFAULT_ACK_TIMEOUT`]).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long one connection attempt may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects, then creates or checks the stream and the bucket if the server answers
    /// within the connect timeout. An unreachable server is not an error (see the
    /// [module docs](self#failures)); a bad URL, bad credentials, a stream whose settings
    /// break a guarantee, or a body limit that cannot fit, are.
    pub async fn connect(self) -> Result<NatsStore, StoreError> {
        if !self.max_age.is_zero() && self.max_age < MIN_MAX_AGE {
            return Err(config_error(format!(
                "max_age {:?} is under {} h: the stream's max_age is how long a duplicate of DT's (retried for 12 h) is recognised",
                self.max_age,
                MIN_MAX_AGE.as_secs() / 3600
            )));
        }
        if self.prefix.is_empty()
            || self
                .prefix
                .split('.')
                .any(|token| token.is_empty() || token.contains(['*', '>', ' ']))
        {
            return Err(config_error(format!(
                "subject prefix {:?} is not a plain subject",
                self.prefix
            )));
        }
        let target = Target::parse(&self.url)?;
        // One attempt first, so that refused credentials or TLS fail the start; a server
        // that cannot be reached does not: the client then keeps trying in the background.
        let once = target.options(self.connect_timeout, false).await?;
        let client = match once.connect(target.servers.clone()).await {
            Ok(client) => client,
            Err(error) if refuses_us(&error) => {
                return Err(config_error(format!("NATS {}: {error}", target.place)))
            }
            Err(error) => {
                tracing::warn!(store = %target.place, %error, "NATS cannot be reached; the client keeps trying");
                target
                    .options(self.connect_timeout, true)
                    .await?
                    .connect(target.servers.clone())
                    .await
                    .map_err(|error| config_error(format!("NATS {}: {error}", target.place)))?
            }
        };
        let js = jetstream::context::ContextBuilder::new()
            .timeout(self.ack_timeout)
            .ack_timeout(self.ack_timeout)
            .build(client.clone());
        let inner = Arc::new(Inner {
            client,
            js,
            place: target.place,
            settings: self,
            ready: std::sync::RwLock::new(None),
            setup_lock: tokio::sync::Mutex::new(()),
            max_body_size: std::sync::OnceLock::new(),
            latest_seen: std::sync::Mutex::new(std::collections::HashMap::new()),
        });
        // The first setup, if the server answers in time; the rest waits for a write.
        let first = tokio::time::timeout(inner.settings.connect_timeout * 2, inner.setup()).await;
        match first {
            Ok(Err(error)) if error.kind() != StoreErrorKind::Unavailable => return Err(error),
            Ok(Err(error)) => {
                tracing::warn!(store = %inner.place, %error, "NATS not ready yet; the store retries on every write")
            }
            Err(_) => {
                tracing::warn!(store = %inner.place, "NATS did not answer yet; the store retries on every write")
            }
            Ok(Ok(_)) => {}
        }
        Ok(NatsStore { inner })
    }
}

/// A NATS JetStream stream as the store (feature `nats`); see the [module docs](self).
#[derive(Clone)]
pub struct NatsStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStore")
            .field("place", &self.inner.place)
            .field("stream", &self.inner.settings.stream)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    place: String,
    settings: NatsStoreBuilder,
    /// The stream and bucket, once created or checked; `None` until then, and again
    /// after the stream went missing. Read on every write; `setup_lock` makes one
    /// setup at a time.
    ready: std::sync::RwLock<Option<Arc<Ready>>>,
    setup_lock: tokio::sync::Mutex<()>,
    max_body_size: std::sync::OnceLock<usize>,
    /// What this process last saw of each `dt_latest` key: a newer event is written
    /// with compare-and-set on that revision without reading the key first (a stale
    /// entry costs one refused update and a read). Cleared when it grows past
    /// [`LATEST_CACHE_KEYS`].
    latest_seen: std::sync::Mutex<std::collections::HashMap<String, Seen>>,
}

/// The most `dt_latest` keys remembered; past it the memory is cleared.
const LATEST_CACHE_KEYS: usize = 100_000;

/// A `dt_latest` value as this process last saw it.
#[derive(Clone, Debug)]
struct Seen {
    revision: u64,
    timestamp_ns: i64,
    event_id: String,
}

/// A `dt_latest` key on the server.
enum Current {
    /// No value: never written (`None`), or deleted at that revision.
    Absent(Option<u64>),
    Value(Seen),
    /// A value that is not a DT event (written by hand): replaced.
    Other(u64),
}

struct Ready {
    stream: stream::Stream,
    latest: kv::Store,
}

/// What a publish came to.
enum Published {
    New,
    /// The subject (or the message id) already holds a message: its sequence, when the
    /// server said it.
    Copy(Option<u64>),
}

impl NatsStore {
    /// A builder for the server(s) at `url`: `nats://[user:password@]host:port`,
    /// `tls://...`, comma-separated for a cluster, `?creds=PATH`, `?ca=PATH`.
    pub fn builder(url: impl Into<String>) -> NatsStoreBuilder {
        NatsStoreBuilder {
            url: url.into(),
            stream: DEFAULT_STREAM.to_owned(),
            prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            latest_bucket: DEFAULT_LATEST_BUCKET.to_owned(),
            replicas: 1,
            storage: NatsStorage::File,
            max_age: DEFAULT_MAX_AGE,
            max_bytes: -1,
            duplicate_window: None,
            max_body_size: None,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// [`builder`](Self::builder) with every default, connected.
    pub async fn connect(url: impl Into<String>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// The largest body this store takes: the one given to the builder, or, once the
    /// server answered, its `max_payload` minus [`HEADER_ALLOWANCE`]; `None` before
    /// the server ever answered and with none given.
    pub fn max_body_size(&self) -> Option<usize> {
        self.inner
            .settings
            .max_body_size
            .or_else(|| self.inner.max_body_size.get().copied())
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.inner.settings.stream
    }
}

fn unavailable(place: &str, what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("NATS {place}: {what}: {error}"),
    )
}

/// The server's own error in a publish's failure, if it sent one.
fn api_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a jetstream::Error> {
    let mut source = error.source();
    while let Some(error) = source {
        if let Some(api) = error.downcast_ref::<jetstream::Error>() {
            return Some(api);
        }
        source = error.source();
    }
    None
}

impl Inner {
    /// The stream and bucket, created or checked on first use.
    async fn setup(&self) -> Result<Arc<Ready>, StoreError> {
        if let Some(ready) = self.current_ready() {
            return Ok(ready);
        }
        let _one = self.setup_lock.lock().await;
        if let Some(ready) = self.current_ready() {
            return Ok(ready);
        }
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(unavailable(
                &self.place,
                "not connected",
                "the client keeps trying",
            ));
        }
        self.check_body_size()?;
        let stream = self.stream().await?;
        let latest = self.latest_bucket(&stream).await?;
        let made = Arc::new(Ready { stream, latest });
        *self
            .ready
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::clone(&made));
        Ok(made)
    }

    fn current_ready(&self) -> Option<Arc<Ready>> {
        self.ready
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn check_body_size(&self) -> Result<(), StoreError> {
        let max_payload = self.client.server_info().max_payload;
        let fits = max_payload.saturating_sub(HEADER_ALLOWANCE);
        if fits < 1024 {
            return Err(config_error(format!(
                "NATS {}'s max_payload ({max_payload} bytes) leaves no room for a body beside {HEADER_ALLOWANCE} bytes of headers: raise max_payload in nats-server.conf (1 MiB by default)",
                self.place
            )));
        }
        match self.settings.max_body_size {
            Some(body) if body > fits => Err(config_error(format!(
                "max_body_size {body} bytes and {HEADER_ALLOWANCE} bytes of headers do not fit NATS {}'s max_payload ({max_payload} bytes): raise max_payload in nats-server.conf or lower the body limit to {fits}",
                self.place
            ))),
            _ => {
                let _ = self.max_body_size.set(fits);
                Ok(())
            }
        }
    }

    fn wanted(&self) -> stream::Config {
        let settings = &self.settings;
        let mut config = stream::Config {
            name: settings.stream.clone(),
            description: Some("Disruptive Technologies events, verified (tower-dt-store)".into()),
            subjects: vec![format!("{}.>", settings.prefix)],
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::New,
            storage: settings.storage.to_nats(),
            num_replicas: settings.replicas,
            max_age: settings.max_age,
            max_bytes: settings.max_bytes,
            max_messages: -1,
            max_messages_per_subject: -1,
            max_message_size: -1,
            max_consumers: -1,
            ..Default::default()
        };
        if let Some(window) = settings.duplicate_window {
            config.duplicate_window = window;
        }
        config
    }

    async fn stream(&self) -> Result<stream::Stream, StoreError> {
        let wanted = self.wanted();
        for _ in 0..3 {
            match self.js.get_stream(&wanted.name).await {
                Ok(mut stream) => {
                    let info = stream
                        .info()
                        .await
                        .map_err(|error| unavailable(&self.place, "stream info", error))?;
                    self.check_stream(&wanted, &info.config)?;
                    return Ok(stream);
                }
                Err(error)
                    if matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(api)
                        if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
                {
                    match self.js.create_stream(wanted.clone()).await {
                        Ok(stream) => {
                            tracing::info!(store = %self.place, stream = %wanted.name, subjects = ?wanted.subjects, "created the JetStream stream");
                            return Ok(stream);
                        }
                        // Another replica created it first: read it again.
                        Err(error) if error.to_string().contains("already in use") => continue,
                        Err(error) => {
                            return Err(StoreError::new(
                                StoreErrorKind::Config,
                                format!(
                                    "NATS {}: creating stream {}: {error}",
                                    self.place, wanted.name
                                ),
                            ))
                        }
                    }
                }
                Err(error) => return Err(unavailable(&self.place, "stream", error)),
            }
        }
        Err(unavailable(&self.place, "stream", "created and gone again"))
    }

    /// Refuses a stream whose settings break a guarantee; warns about each other
    /// difference.
    fn check_stream(
        &self,
        wanted: &stream::Config,
        found: &stream::Config,
    ) -> Result<(), StoreError> {
        let mut refusals = Vec::new();
        let mut differences = Vec::new();
        if found.retention != stream::RetentionPolicy::Limits {
            refusals.push(format!(
                "retention is {:?}, not limits (a consumed message's id would be forgotten)",
                found.retention
            ));
        }
        if found.discard != stream::DiscardPolicy::New {
            refusals
                .push("discard is old (a full stream would delete the oldest events)".to_owned());
        }
        if !found.max_age.is_zero() && found.max_age < MIN_MAX_AGE {
            refusals.push(format!(
                "max_age {:?} is under 13 h (DT retries for 12 h)",
                found.max_age
            ));
        }
        if found.no_ack {
            refusals.push("no_ack is set (publishes would not be acknowledged)".to_owned());
        }
        if found.sealed {
            refusals.push("the stream is sealed".to_owned());
        }
        let needed = self.max_body_size.get().copied().unwrap_or(0) + HEADER_ALLOWANCE;
        if found.max_message_size > 0
            && usize::try_from(found.max_message_size).unwrap_or(0) < needed
        {
            refusals.push(format!(
                "max_msg_size {} is under {needed} (the body limit and headers)",
                found.max_message_size
            ));
        }
        let ours = &wanted.subjects[0];
        let prefix = &self.settings.prefix;
        let covered = found.subjects.iter().any(|subject| {
            subject == ours || subject == ">" || {
                // a wider wildcard: `a.>` covers `a.b.>`
                subject
                    .strip_suffix(".>")
                    .is_some_and(|wider| prefix.starts_with(&format!("{wider}.")))
            }
        });
        if !covered {
            refusals.push(format!("subjects {:?} do not cover {ours}", found.subjects));
        }
        if found.storage != wanted.storage {
            differences.push(format!(
                "storage {:?} (wanted {:?})",
                found.storage, wanted.storage
            ));
        }
        if found.num_replicas != wanted.num_replicas {
            differences.push(format!(
                "replicas {} (wanted {})",
                found.num_replicas, wanted.num_replicas
            ));
        }
        if found.max_age != wanted.max_age {
            differences.push(format!(
                "max_age {:?} (wanted {:?})",
                found.max_age, wanted.max_age
            ));
        }
        if found.max_bytes != wanted.max_bytes {
            differences.push(format!(
                "max_bytes {} (wanted {})",
                found.max_bytes, wanted.max_bytes
            ));
        }
        if found.max_messages != wanted.max_messages {
            differences.push(format!(
                "max_msgs {} (wanted {})",
                found.max_messages, wanted.max_messages
            ));
        }
        if self.settings.duplicate_window.is_some()
            && found.duplicate_window != wanted.duplicate_window
        {
            differences.push(format!(
                "duplicate_window {:?} (wanted {:?})",
                found.duplicate_window, wanted.duplicate_window
            ));
        }
        if !refusals.is_empty() {
            return Err(config_error(format!(
                "NATS {}: stream {} exists with settings the store cannot keep its guarantees with: {}; change them (nats stream edit) or name another stream",
                self.place,
                wanted.name,
                refusals.join("; ")
            )));
        }
        for difference in differences {
            tracing::warn!(store = %self.place, stream = %wanted.name, %difference, "the existing stream differs from the store's settings; using it as it is");
        }
        Ok(())
    }

    async fn latest_bucket(&self, stream: &stream::Stream) -> Result<kv::Store, StoreError> {
        let bucket = &self.settings.latest_bucket;
        match self.js.get_key_value(bucket.as_str()).await {
            Ok(store) => return Ok(store),
            Err(error) if error.kind() == jetstream::context::KeyValueErrorKind::GetBucket => {}
            Err(error) => return Err(unavailable(&self.place, "dt_latest bucket", error)),
        }
        let info = stream.cached_info();
        // The bucket's stream, made as async-nats's `create_key_value` makes it (history 1,
        // rollups, direct gets, discard new): that call first reads the account's info,
        // which async-nats 0.52 cannot parse from a 2.9 server.
        let config = stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(
                "the newest DT event per (tenant, event type, device) (tower-dt-store)".into(),
            ),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_message_size: i32::try_from(self.client.server_info().max_payload)
                .unwrap_or(i32::MAX),
            storage: info.config.storage,
            num_replicas: info.config.num_replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        match self.js.create_stream(config).await {
            Ok(_) => self
                .js
                .get_key_value(bucket.as_str())
                .await
                .map_err(|error| unavailable(&self.place, "dt_latest bucket", error)),
            Err(error) => {
                tracing::debug!(%error, "creating the dt_latest bucket; reading it again (another replica may have made it)");
                self.js
                    .get_key_value(bucket.as_str())
                    .await
                    .map_err(|again| {
                        unavailable(&self.place, "dt_latest bucket", format!("{error}; {again}"))
                    })
            }
        }
    }

    /// Publishes `record` and waits for the acknowledgement.
    async fn publish(&self, ready: &Ready, record: &EventRecord) -> Result<Published, StoreError> {
        let subject = subject_of(&self.settings.prefix, record);
        let headers = headers_of(record, &self.settings.stream);
        let start = std::time::Instant::now();
        let ack = self
            .js
            .publish_with_headers(subject, headers, record.body.clone())
            .await
            .map_err(|error| unavailable(&self.place, "publish", error))?;
        match ack.await {
            Ok(ack) if ack.duplicate => Ok(Published::Copy(Some(ack.sequence))),
            Ok(_) => {
                // The publish up to its acknowledgement: JetStream's "commit".
                crate::meter::committed("nats", 1, start.elapsed());
                Ok(Published::New)
            }
            Err(error) => {
                use jetstream::context::PublishErrorKind as Kind;
                match error.kind() {
                    Kind::WrongLastSequence => Ok(Published::Copy(None)),
                    Kind::TimedOut | Kind::BrokenPipe => Err(unavailable(
                        &self.place,
                        "no publish acknowledgement",
                        error,
                    )),
                    Kind::StreamNotFound => {
                        // Deleted under us: make it again at the next write.
                        *self
                            .ready
                            .write()
                            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                        let _ = ready;
                        Err(unavailable(&self.place, "no stream for the subject", error))
                    }
                    _ => Err(self.refused(&error)),
                }
            }
        }
    }

    fn refused(&self, error: &jetstream::context::PublishError) -> StoreError {
        let text = api_error(error).map_or_else(|| error.to_string(), |api| api.to_string());
        let full = text.contains("maximum bytes")
            || text.contains("maximum messages")
            || text.contains("insufficient resources")
            || text.contains("resource limits exceeded");
        if full {
            StoreError::new(
                StoreErrorKind::Full,
                format!(
                    "NATS {}: stream {} is full: {text}",
                    self.place, self.settings.stream
                ),
            )
        } else {
            StoreError::new(
                StoreErrorKind::Database,
                format!("NATS {}: publish refused: {text}", self.place),
            )
        }
    }

    /// The stored copy of `record`'s subject (or sequence).
    async fn stored_copy(
        &self,
        ready: &Ready,
        record: &EventRecord,
        sequence: Option<u64>,
    ) -> Result<Bytes, StoreError> {
        let message = match sequence {
            Some(sequence) => ready
                .stream
                .get_raw_message(sequence)
                .await
                .map_err(|error| unavailable(&self.place, "reading the stored copy", error))?,
            None => ready
                .stream
                .get_last_raw_message_by_subject(&subject_of(&self.settings.prefix, record))
                .await
                .map_err(|error| unavailable(&self.place, "reading the stored copy", error))?,
        };
        Ok(message.payload)
    }

    /// The key as the server holds it now; remembered.
    async fn read_latest(&self, ready: &Ready, key: &str) -> Result<Current, StoreError> {
        let entry = ready
            .latest
            .entry(key)
            .await
            .map_err(|error| unavailable(&self.place, "dt_latest", error))?;
        let current = match entry {
            None => Current::Absent(None),
            Some(entry) if entry.operation != kv::Operation::Put => {
                Current::Absent(Some(entry.revision))
            }
            Some(entry) => match parse_event(&entry.value) {
                Some(event) => Current::Value(Seen {
                    revision: entry.revision,
                    timestamp_ns: event.timestamp_ns,
                    event_id: event.event_id,
                }),
                None => Current::Other(entry.revision),
            },
        };
        match &current {
            Current::Value(seen) => self.remember(key, seen.clone()),
            _ => self.forget(key),
        }
        Ok(current)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Seen>> {
        self.latest_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, key: &str, seen: Seen) {
        let mut memory = self.seen();
        if memory.len() >= LATEST_CACHE_KEYS && !memory.contains_key(key) {
            memory.clear();
        }
        memory.insert(key.to_owned(), seen);
    }

    fn forget(&self, key: &str) {
        self.seen().remove(key);
    }

    /// Makes `body` the `dt_latest` value of its key if it is newer; whether it did.
    ///
    /// A newer event than the one this process last saw at the key is written with
    /// compare-and-set on that revision, without a read; an event that looks older, or a
    /// refused update, reads the key from the server and compares again. So the memory
    /// only saves reads: every decision to leave the key is made on the server's value.
    async fn update_latest(
        &self,
        ready: &Ready,
        key: &str,
        event: &EventFields,
        body: &Bytes,
    ) -> Result<bool, StoreError> {
        let newer = |seen: &Seen| is_newer(event, seen);
        let remembered = self.seen().get(key).cloned();
        let mut current = match remembered {
            Some(seen) if newer(&seen) => Current::Value(seen),
            _ => self.read_latest(ready, key).await?,
        };
        for _ in 0..64 {
            let revision = match &current {
                Current::Value(seen) if !newer(seen) => return Ok(false),
                Current::Value(seen) => Some(seen.revision),
                Current::Absent(revision) => *revision,
                Current::Other(revision) => Some(*revision),
            };
            let attempt = match revision {
                Some(revision) => ready
                    .latest
                    .update(key, body.clone(), revision)
                    .await
                    .map_err(|error| {
                        (
                            error.kind() == kv::UpdateErrorKind::WrongLastRevision,
                            error.to_string(),
                        )
                    }),
                None => ready
                    .latest
                    .create(key, body.clone())
                    .await
                    .map_err(|error| {
                        (
                            error.kind() == kv::CreateErrorKind::AlreadyExists,
                            error.to_string(),
                        )
                    }),
            };
            match attempt {
                Ok(revision) => {
                    self.remember(
                        key,
                        Seen {
                            revision,
                            timestamp_ns: event.timestamp_ns,
                            event_id: event.event_id.clone(),
                        },
                    );
                    return Ok(true);
                }
                // Another writer got there first: read again and compare again.
                Err((true, _)) => current = self.read_latest(ready, key).await?,
                Err((false, error)) => {
                    self.forget(key);
                    return Err(unavailable(&self.place, "dt_latest", error));
                }
            }
        }
        Err(unavailable(
            &self.place,
            "dt_latest",
            "the key kept changing under 64 attempts",
        ))
    }

    async fn write(&self, record: EventRecord) -> Result<Put, StoreError> {
        let ready = self.setup().await?;
        let latest_key = record
            .event
            .as_ref()
            .map(|event| latest_key(&record.tenant, event));
        let published = self.publish(&ready, &record).await?;
        let (body, same_bytes) = match published {
            Published::New => (record.body.clone(), None),
            Published::Copy(sequence) => {
                let stored = self.stored_copy(&ready, &record, sequence).await?;
                let same = Sha256::digest(&stored).as_slice() == record.body_sha256;
                (stored, Some(same))
            }
        };
        let (Some(key), Some(_)) = (&latest_key, &record.event) else {
            return Ok(match same_bytes {
                Some(same_bytes) => Put::Duplicate { same_bytes },
                None => Put::NotAnEvent,
            });
        };
        // The first copy's fields order it: a copy with other bytes is not the event.
        let Some(event) = parse_event(&body) else {
            return Ok(Put::Duplicate { same_bytes: false });
        };
        let newest = self.update_latest(&ready, key, &event, &body).await?;
        Ok(match same_bytes {
            Some(same_bytes) => Put::Duplicate { same_bytes },
            None if newest => Put::Stored,
            None => Put::StoredNotLatest,
        })
    }

    async fn ready_check(&self) -> Result<(), StoreError> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(unavailable(
                &self.place,
                "not connected",
                "the client keeps reconnecting",
            ));
        }
        let ready = self.setup().await?;
        let info = ready
            .stream
            .get_info()
            .await
            .map_err(|error| unavailable(&self.place, "stream info", error))?;
        let config = &info.config;
        let room = self.max_body_size.get().copied().unwrap_or(0) + HEADER_ALLOWANCE;
        let bytes_full = config.max_bytes > 0
            && info.state.bytes + room as u64 > u64::try_from(config.max_bytes).unwrap_or(u64::MAX);
        let messages_full = config.max_messages > 0
            && info.state.messages >= u64::try_from(config.max_messages).unwrap_or(u64::MAX);
        if bytes_full || messages_full {
            return Err(StoreError::new(
                StoreErrorKind::Full,
                format!(
                    "NATS {}: stream {} is full: {} messages, {} of {} bytes (discard new: new events are refused until consumers or max_age make room)",
                    self.place, config.name, info.state.messages, info.state.bytes, config.max_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl Backend for NatsStore {
    fn put(&self, record: EventRecord) -> BoxFuture<'_, Result<Put, StoreError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            // A task of its own: a caller that gives up at its deadline does not stop a
            // publish the server may still acknowledge, nor its dt_latest update.
            tokio::spawn(async move { inner.write(record).await })
                .await
                .unwrap_or_else(|error| {
                    Err(StoreError::new(
                        StoreErrorKind::Database,
                        format!("the NATS write task failed: {error}"),
                    ))
                })
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.inner.ready_check())
    }

    fn describe(&self) -> String {
        format!("{} stream {}", self.inner.place, self.inner.settings.stream)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            let _ = self.inner.client.flush().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(subject_token("-"), "-");
        assert_eq!(subject_token(""), "=");
        assert_eq!(subject_token("a_b"), "a=5Fb");
        assert_eq!(subject_token("="), "=3D");
        assert_eq!(subject_token("é"), "=C3=A9");
        assert_eq!(subject_token("sha256:ab"), "sha256=3Aab");
        assert_eq!(
            subject_token("projects/p1/dataconnectors/x"),
            "projects=2Fp1=2Fdataconnectors=2Fx"
        );
        let long = "x.".repeat(40);
        let token = subject_token(&long);
        assert!(token.starts_with("==") && token.len() == 42, "{token}");
        assert_ne!(token, subject_token(&"y.".repeat(40)));
        for value in ["a.b", "*", ">", "a b", "\t", "_"] {
            let token = subject_token(value);
            assert!(
                !token.contains(['.', '*', '>', ' ', '\t', '_']),
                "{value:?} -> {token:?}"
            );
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(
            header_value("2022-02-10T12:42:13.313949Z"),
            "2022-02-10T12:42:13.313949Z"
        );
        assert_eq!(header_value("a\r\nb%"), "a%0D%0Ab%25");
        assert_eq!(header_value("é"), "%C3%A9");
    }

    #[test]
    fn urls() {
        let target = Target::parse("nats://dt:hunter2@127.0.0.1:4222").unwrap();
        assert_eq!(target.place, "nats://127.0.0.1:4222");
        assert_eq!(target.user, Some(Auth::User("dt".into(), "hunter2".into())));
        let target = Target::parse("nats://s3cr3t-token@127.0.0.1:4222").unwrap();
        assert_eq!(target.user, Some(Auth::Token("s3cr3t-token".into())));
        assert!(!format!("{:?}", target.user).contains("s3cr3t"));
        assert_eq!(redact("nats://s3cr3t-token@h:1"), "nats://<redacted>@h:1");
        assert!(!target.tls);
        let target = Target::parse("tls://a:1,tls://b:2?ca=/tmp/ca.pem").unwrap();
        assert_eq!(target.place, "tls://a:1,tls://b:2");
        assert!(target.tls);
        assert_eq!(target.ca, Some(PathBuf::from("/tmp/ca.pem")));
        let target = Target::parse("nats://h:4222?creds=/etc/dt.creds").unwrap();
        assert_eq!(target.creds, Some(PathBuf::from("/etc/dt.creds")));
        for bad in ["http://h:1", "nats://h:1?password=x", "nats://h:1?ca=/x"] {
            let error = Target::parse(bad).err().unwrap();
            assert_eq!(error.kind(), StoreErrorKind::Config, "{bad}");
        }
        let error = Target::parse("nats://dt:hunter2@h:1?x=1").err().unwrap();
        assert!(!error.message().contains("hunter2"), "{error}");
        assert_eq!(redact("nats://dt:hunter2@h:1"), "nats://dt:<redacted>@h:1");
    }

    #[test]
    fn newer() {
        let event = |id: &str, ts: &str| {
            parse_event(format!(r#"{{"event":{{"eventId":"{id}","targetName":"projects/p/devices/d","eventType":"touch","timestamp":"{ts}"}}}}"#).as_bytes()).unwrap()
        };
        let seen = |id: &str, ts: &str| {
            let fields = event(id, ts);
            Seen {
                revision: 1,
                timestamp_ns: fields.timestamp_ns,
                event_id: fields.event_id,
            }
        };
        let new = event("b", "2022-02-10T12:00:01Z");
        assert!(is_newer(&new, &seen("a", "2022-02-10T12:00:00Z")));
        assert!(!is_newer(&new, &seen("a", "2022-02-10T12:00:02Z")));
        // the same instant: the greater id
        assert!(is_newer(&new, &seen("a", "2022-02-10T12:00:01Z")));
        assert!(!is_newer(&new, &seen("c", "2022-02-10T12:00:01Z")));
        // the same event is not newer than itself
        assert!(!is_newer(&new, &seen("b", "2022-02-10T12:00:01Z")));
        // offsets are instants
        assert!(!is_newer(&new, &seen("c", "2022-02-10T13:00:01+01:00")));
        assert!(is_newer(&new, &seen("a", "2022-02-10T13:00:00+01:00")));
    }
}
