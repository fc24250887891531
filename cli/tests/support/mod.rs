//! Helpers shared by `send.rs` (the engine in-process) and `cli.rs` (the built binary):
//! receivers on 127.0.0.1:0 and temporary folders.

#![allow(dead_code)] // each test binary uses a part

pub mod bin;
pub mod serve;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Router;
use http::StatusCode;
use tower_dt_signature::events::Payload;
use tower_dt_signature::{extract::DtPayload, DtSignatureLayer};

/// Serves `app` on a free loopback port until the test ends; returns its URL.
pub async fn serve(app: Router) -> http::Uri {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/").parse().unwrap()
}

/// The payloads a receiver decoded, in arrival order.
pub type Seen = Arc<Mutex<Vec<Payload>>>;

/// A receiver behind `layer` that records every typed payload it gets.
pub async fn recording_receiver(layer: DtSignatureLayer) -> (http::Uri, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/",
            post(move |DtPayload(payload): DtPayload| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(payload);
                    StatusCode::OK
                }
            }),
        )
        .layer(layer);
    (serve(app).await, seen)
}

/// A fresh folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "dt-signature-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A key file in a folder that does not exist yet: `load_key` makes it.
    pub fn key_file(&self) -> PathBuf {
        self.0.join("keys/es256-key.p8")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
