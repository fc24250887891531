//! `DT_STORE`: where `serve` stores and `events` reads.

use std::path::PathBuf;

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
}

impl StoreUrl {
    /// Parses `sqlite:PATH` or `postgres://...`; the error names `DT_STORE` and the forms.
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
        Err(format!(
            "DT_STORE={:?} is not a store: use sqlite:PATH or postgres://USER@HOST/DB",
            redact(text)
        ))
    }

    /// The store's text without a password, for messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite:{}", path.display()),
            Self::Postgres(url) => redact(url),
        }
    }

    /// Opens the store for writing (`serve`).
    pub async fn open(&self) -> Result<Box<dyn Backend>, StoreError> {
        match self {
            Self::Sqlite(path) => Ok(Box::new(SqliteStore::open(path).await?)),
            // An unreachable server is not an error here: the store connects when it can,
            // and `/ready` says why not meanwhile.
            Self::Postgres(url) => Ok(Box::new(PostgresStore::connect(url.as_str()).await?)),
        }
    }
}

/// `scheme://user:password@host/...` without the password.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:<redacted>@{host}{path}"),
            None => text.to_owned(),
        },
        None => text.to_owned(),
    }
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
    }
}
