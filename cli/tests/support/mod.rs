//! Helpers shared by `send.rs` (the engine in-process) and `cli.rs` (the built binary):
//! receivers on 127.0.0.1:0 and temporary folders.

#![allow(dead_code)] // each test binary uses a part

pub mod bin;
pub mod promtool;
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

/// A test CA (its certificate in PEM, to give `--ca-cert`) and a TLS front on 127.0.0.1
/// with a certificate for `127.0.0.1` that this CA signed, forwarding every connection to
/// the plain receiver at `backend`: the front's `https://` URL and the CA's PEM.
pub async fn tls_front(backend: &http::Uri) -> (http::Uri, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dt-signature test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = std::sync::Arc::new(rustls_graviola::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = format!(
        "{}:{}",
        backend.host().unwrap(),
        backend.port_u16().unwrap()
    );
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (format!("https://{addr}/").parse().unwrap(), ca.pem())
}

/// The bodies a receiver got, byte for byte, in arrival order.
pub type Bodies = Arc<Mutex<Vec<axum::body::Bytes>>>;

/// A receiver behind `layer` that records every body it gets and answers 200.
pub async fn body_receiver(layer: DtSignatureLayer) -> (http::Uri, Bodies) {
    let bodies: Bodies = Arc::default();
    let record = bodies.clone();
    let app = Router::new()
        .route(
            "/",
            post(move |body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(body);
                    StatusCode::OK
                }
            }),
        )
        .layer(layer);
    (serve(app).await, bodies)
}
