//! What the store's tests share: signed requests through the real layer, DT's bodies.
#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};
use tower_dt_signature::testing::Signer;
use tower_dt_signature::{DtSignature, DtSignatureLayer};
use tower_dt_store::{Backend, DtStore, StoreOutcome, StoreReport};

pub const SECRET: &str = "store-test-secret";

/// DT's example bodies, one per event type: (type, exact bytes).
pub fn dt_events() -> Vec<(String, Bytes)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/dt-events");
    let mut events: Vec<(String, Bytes)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, Bytes::from(std::fs::read(&path).unwrap()))
        })
        .collect();
    events.sort();
    events
}

/// A DT-shaped event body.
pub fn event(id: &str, device: &str, event_type: &str, timestamp: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"event":{{"eventId":"{id}","targetName":"projects/proj1/devices/{device}","eventType":"{event_type}","data":{{"{event_type}":{{"updateTime":"{timestamp}"}}}},"timestamp":"{timestamp}"}},"labels":{{}},"metadata":{{"deviceId":"{device}","projectId":"proj1","deviceType":"touch","productNumber":""}}}}"#
    ))
}

/// A request signed as DT signs it, with the test secret.
pub fn signed(body: &Bytes) -> Request<Full<Bytes>> {
    let token = Signer::new(SECRET).sign(body);
    Request::post("/")
        .header("x-dt-signature", token)
        .body(Full::new(body.clone()))
        .unwrap()
}

/// The store behind the verifying layer, as an app mounts it.
pub fn stack<Bk: Backend>(store: DtStore<Bk>) -> DtSignature<DtStore<Bk>> {
    tower::Layer::layer(&DtSignatureLayer::new(SECRET), store)
}

/// What a request got: status, body text and the store's report.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub text: String,
    pub report: Option<StoreReport>,
}

impl Answer {
    pub fn outcome(&self) -> Option<StoreOutcome> {
        self.report.as_ref().map(|report| report.outcome)
    }
}

pub async fn answer(response: Response<Full<Bytes>>) -> Answer {
    let status = response.status();
    let report = response.extensions().get::<StoreReport>().cloned();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        text: String::from_utf8_lossy(&text).into_owned(),
        report,
    }
}

/// Sends one request through a clone of `service`.
pub async fn send<S>(service: &S, request: Request<Full<Bytes>>) -> Answer
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>> + Clone,
    S::Error: std::fmt::Debug,
{
    answer(service.clone().oneshot(request).await.unwrap()).await
}
