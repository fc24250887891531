//! A running `dt-signature serve` and plain HTTP/1.1 exchanges with it, for `serve.rs` and
//! `crash_soak.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_dt_signature::testing::Signer;

use super::bin::BIN;

pub const SECRET: &str = "serve-test-secret";

/// A running `dt-signature serve`, its log collected, killed when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Serve {
    pub fn start(store: &str, env: &[(&str, &str)]) -> Self {
        Self::start_on("0", store, env)
    }

    /// On a given port (a restart takes the port it had).
    pub fn start_on(port: &str, store: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--host")
            .arg("127.0.0.1")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("PORT", port)
            .env("DT_STORE", store)
            .env("DT_SIGNATURE_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // `env` adds variables; an empty value removes one (the test secret, say).
        for (name, value) in env {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
        }
        let mut child = command.spawn().expect("serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, addr) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr: SocketAddr = rest.split(',').next().unwrap().parse().unwrap();
                    let _ = found.send(addr);
                }
                collected.lock().unwrap().push_str(&line);
                collected.lock().unwrap().push('\n');
            }
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("serve did not start: {stderr}\n{}", log.lock().unwrap())
            });
        Self { child, addr, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.log())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange on a new connection: (status, body).
pub fn exchange(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    read_response(&mut stream)
}

pub fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

pub fn post_head(body: &[u8], token: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Dt-Signature: {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
}

pub fn post(addr: SocketAddr, body: &[u8], secret: &str) -> (u16, String) {
    let token = Signer::new(secret).sign(body);
    let mut request = post_head(body, &token).into_bytes();
    request.extend_from_slice(body);
    exchange(addr, &request)
}

pub fn event(id: &str, device: &str, timestamp: &str) -> Vec<u8> {
    format!(
        r#"{{"event":{{"eventId":"{id}","targetName":"projects/p1/devices/{device}","eventType":"temperature","data":{{"temperature":{{"value":21.5,"updateTime":"{timestamp}"}}}},"timestamp":"{timestamp}"}},"labels":{{}}}}"#
    )
    .into_bytes()
}

pub fn bodies(path: &Path) -> Vec<(String, Vec<u8>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT event_key, body FROM dt_event ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
