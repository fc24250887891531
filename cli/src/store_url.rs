//! `DT_STORE`: where `serve` stores and `events` reads.

use std::path::PathBuf;

use tower_dt_store::nats::NatsStore;
use tower_dt_store::postgres::PostgresStore;
use tower_dt_store::{Backend, SqliteStore, StoreError};

/// The store when `DT_STORE` is unset: a SQLite file in the working directory.
pub const DEFAULT: &str = "sqlite:dt-events.db";

/// A parsed `DT_STORE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH`.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...` (the password, if any, inside).
    Postgres(String),
    /// `nats://...` or `tls://...`: a NATS JetStream stream, as
    /// [`NatsStore::builder`] takes it (credentials, several servers, `?creds=`, `?ca=`).
    Nats(String),
}

/// A store opened for writing, and the largest body it can keep.
pub struct Opened {
    /// The store.
    pub backend: Box<dyn Backend>,
    /// The largest body the store itself can keep, when it has a limit of its own and
    /// knows it (NATS, once its server answered: `max_payload` minus the headers); `None`
    /// for the databases.
    pub max_body_size: Option<usize>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("backend", &self.backend.describe())
            .field("max_body_size", &self.max_body_size)
            .finish()
    }
}

impl StoreUrl {
    /// Parses `sqlite:PATH`, `postgres://...`, `nats://...` or `tls://...`; the error
    /// names `DT_STORE` and the forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(
                    "DT_STORE=\"sqlite:\" has no path: use sqlite:PATH, e.g. sqlite:dt-events.db"
                        .into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Postgres(text.to_owned()));
        }
        if text.starts_with("nats://") || text.starts_with("tls://") {
            return Ok(Self::Nats(text.to_owned()));
        }
        Err(format!(
            "DT_STORE={:?} is not a store: use sqlite:PATH, postgres://USER@HOST/DB or nats://HOST:4222",
            redact_nats(text)
        ))
    }

    /// The store's text without a password, for messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite:{}", path.display()),
            Self::Postgres(url) => redact(url),
            Self::Nats(url) => redact_nats(url),
        }
    }

    /// Whether this is a queue (NATS), whose events a consumer reads, rather than a
    /// database that `events` can list.
    pub fn is_queue(&self) -> bool {
        matches!(self, Self::Nats(_))
    }

    /// Opens the store for writing (`serve`). `max_body_size` is the body limit the user
    /// set, if any: a store with a limit of its own (NATS's `max_payload`) refuses one
    /// that does not fit ([`StoreErrorKind::Config`](tower_dt_store::StoreErrorKind)).
    pub async fn open(&self, max_body_size: Option<usize>) -> Result<Opened, StoreError> {
        let database = |backend: Box<dyn Backend>| Opened {
            backend,
            max_body_size: None,
        };
        match self {
            Self::Sqlite(path) => Ok(database(Box::new(SqliteStore::open(path).await?))),
            // An unreachable server is not an error here: the store connects when it can,
            // and `/ready` says why not meanwhile.
            Self::Postgres(url) => Ok(database(Box::new(
                PostgresStore::connect(url.as_str()).await?,
            ))),
            Self::Nats(url) => {
                let mut builder = NatsStore::builder(url.as_str());
                if let Some(bytes) = max_body_size {
                    builder = builder.max_body_size(bytes);
                }
                let store = builder.connect().await?;
                Ok(Opened {
                    max_body_size: store.max_body_size(),
                    backend: Box::new(store),
                })
            }
        }
    }
}

/// `scheme://user:password@host/...` without the password.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:<redacted>@{host}{path}"),
            None => text.to_owned(),
        },
        None => text.to_owned(),
    }
}

/// A NATS URL without its secrets: each server of a comma-separated list redacted, and a
/// user without a password (`nats://TOKEN@host`, NATS's token form) hidden whole.
fn redact_nats(text: &str) -> String {
    text.split(',')
        .map(|address| match redact(address) {
            same if same == address => match address.split_once("://") {
                Some((scheme, rest)) => {
                    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                    match rest[..end].rsplit_once('@') {
                        Some((_token, host)) => {
                            format!("{scheme}://<redacted>@{host}{}", &rest[end..])
                        }
                        None => same,
                    }
                }
                None => same,
            },
            redacted => redacted,
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            StoreUrl::parse("sqlite:dt.db").unwrap(),
            StoreUrl::Sqlite("dt.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/dt.db").unwrap(),
            StoreUrl::Sqlite("/var/lib/dt.db".into())
        );
        assert!(StoreUrl::parse("sqlite:").unwrap_err().contains("DT_STORE"));
        assert_eq!(
            StoreUrl::parse("postgres://dt:pw@h/db").unwrap().redacted(),
            "postgres://dt:<redacted>@h/db"
        );
        let error = StoreUrl::parse("mysql://u:hunter2@h/db").unwrap_err();
        assert!(error.contains("DT_STORE"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://dt:hunter2@127.0.0.1:5432/dt"),
            "postgres://dt:<redacted>@127.0.0.1:5432/dt"
        );
        assert_eq!(redact("postgres://dt@h/db"), "postgres://dt@h/db");
        assert_eq!(
            redact("postgres://dt:hunter2@h?sslmode=disable"),
            "postgres://dt:<redacted>@h?sslmode=disable"
        );
    }

    #[test]
    fn nats_forms() {
        for url in [
            "nats://127.0.0.1:4222",
            "nats://dt:hunter2@127.0.0.1:4222",
            "tls://nats.example.com:4222?ca=/etc/dt/ca.pem",
            "nats://a:4222,nats://b:4222?creds=/etc/dt/dt.creds",
        ] {
            let parsed = StoreUrl::parse(url).unwrap();
            assert_eq!(parsed, StoreUrl::Nats(url.into()), "{url}");
            assert!(parsed.is_queue(), "{url}");
        }
        assert!(!StoreUrl::parse("sqlite:dt.db").unwrap().is_queue());
        // The error names the NATS form too.
        let error = StoreUrl::parse("redis://h:6379").unwrap_err();
        assert!(error.contains("nats://"), "{error}");
    }

    #[test]
    fn nats_passwords_are_redacted() {
        let cases = [
            (
                "nats://dt:hunter2@127.0.0.1:4222",
                "nats://dt:<redacted>@127.0.0.1:4222",
            ),
            (
                "tls://dt:hunter2@h:4222?ca=/etc/ca.pem",
                "tls://dt:<redacted>@h:4222?ca=/etc/ca.pem",
            ),
            // every server of a cluster, not only the first
            (
                "nats://dt:hunter2@a:4222,nats://dt:hunter2@b:4222",
                "nats://dt:<redacted>@a:4222,nats://dt:<redacted>@b:4222",
            ),
            // a user alone is NATS's token: hidden whole
            ("nats://hunter2@h:4222", "nats://<redacted>@h:4222"),
            // nothing secret: as it is
            (
                "nats://h:4222?creds=/etc/dt/dt.creds",
                "nats://h:4222?creds=/etc/dt/dt.creds",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(StoreUrl::parse(url).unwrap().redacted(), shown, "{url}");
        }
        let error = StoreUrl::parse("nat://dt:hunter2@h:4222").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
