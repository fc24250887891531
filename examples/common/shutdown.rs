//! Graceful shutdown of the receivers: on SIGTERM (what Kubernetes, Heroku and Docker send
//! to stop a process) or Ctrl-C, stop accepting, let requests in flight finish, exit 0.
//! Shared by `examples/axum_receiver.rs` and `examples/hyper_receiver.rs` through
//! `#[path]`, like `config.rs`.

#![allow(dead_code)] // each receiver uses a part

use std::future::Future;

use tracing::info;

/// A future that ends at the first SIGTERM or Ctrl-C. The handlers are installed when this
/// is called, not when the future is first polled, so a signal that comes meanwhile is
/// not lost.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM: shutting down"),
            _ = ctrl_c => info!("Ctrl-C: shutting down"),
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
            info!("Ctrl-C: shutting down");
        }
    }
}

/// The test of a receiver's shutdown over real HTTP, in a process of its own: the test
/// binary runs itself again (the child runs the receiver's test `child`, which serves until
/// SIGTERM and then returns, so the child exits 0 when it shut down cleanly).
#[cfg(all(test, unix, feature = "test-util"))]
pub mod sigterm_test {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// The variable that tells the child test to serve.
    pub const CHILD: &str = "DT_EXAMPLE_SIGTERM_CHILD";

    /// The line the child prints with its address.
    pub const LISTENING: &str = "sigterm-child listening on ";

    /// The secret the child's layer verifies with.
    pub const SECRET: &str = "sigterm-secret";

    /// Runs the test `child` (its full path, such as `tests::sigterm_child`) in a child
    /// process; sends it a request whose body is held back until the server asked for it
    /// (`Expect: 100-continue`), so the request is in flight; sends SIGTERM; then the rest
    /// of the body. The request is answered 200, and the child exits 0.
    pub fn check(child: &str) {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                child,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the child prints its address").unwrap();
            // The harness may print `test ... ` before it on the same line.
            if let Some((_, addr)) = line.split_once(LISTENING) {
                break addr.trim().to_owned();
            }
        };

        let body = br#"{"event":{"eventId":"in-flight","eventType":"touch"}}"#;
        let token = tower_dt_signature::testing::Signer::new(SECRET).sign(body);
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
             X-Dt-Signature: {token}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .unwrap();
        // The server reads the body only once the request is inside the layer.
        let mut continued = [0u8; 25];
        stream.read_exact(&mut continued).unwrap();
        assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");

        let pid = process.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        // The rest of the request, after the signal: still answered.
        stream.write_all(body).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

        // A bound for a broken test only, not a timing assertion.
        let started = Instant::now();
        let status = loop {
            if let Some(status) = process.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = process.kill();
                panic!("the receiver did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "the receiver exited with {status}");
    }

    /// Whether this process is the child that serves.
    pub fn is_child() -> bool {
        std::env::var_os(CHILD).is_some()
    }
}
