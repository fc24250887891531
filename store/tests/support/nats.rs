//! A throwaway `nats-server -js` per test: Debian's `nats-server` (./scripts/test installs
//! the package), on 127.0.0.1 and a free port, its JetStream store in a temp directory,
//! configured by a file written there. Dropping it kills the server and removes the
//! directory. Readers of what the server holds, for the tests' assertions.
#![allow(dead_code)] // each test binary uses a part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;

/// A user and password the tests' servers require when asked to.
pub const USER: &str = "dt-receiver";
pub const PASSWORD: &str = "nats-test-password-5c2f";

/// How a test wants its server.
#[derive(Clone, Debug, Default)]
pub struct NatsOptions {
    /// Require [`USER`] and [`PASSWORD`].
    pub auth: bool,
    /// The server's `max_payload`, when not its default (1 MiB).
    pub max_payload: Option<usize>,
    /// More of the server's configuration file (e.g. a `tls { ... }` block).
    pub extra_config: String,
}

pub struct NatsServer {
    dir: PathBuf,
    port: u16,
    options: NatsOptions,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with(NatsOptions::default())
    }

    pub fn start_with(options: NatsOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dt-store-nats-")
            .tempdir()
            .unwrap()
            .keep();
        let mut server = Self {
            dir,
            port: 0,
            options,
            child: None,
        };
        for attempt in 0.. {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => break,
                Err(error) if attempt < 3 => eprintln!("nats-server: {error}; another port"),
                Err(error) => panic!("nats-server: {error}"),
            }
        }
        server
    }

    fn write_config(&self) -> PathBuf {
        let mut config = format!(
            "host: 127.0.0.1\nport: {}\njetstream {{\n  store_dir: \"{}\"\n}}\n",
            self.port,
            self.dir.join("js").display()
        );
        if let Some(max_payload) = self.options.max_payload {
            config.push_str(&format!("max_payload: {max_payload}\n"));
        }
        config.push_str(&self.options.extra_config);
        config.push('\n');
        if self.options.auth {
            config.push_str(&format!(
                "authorization {{\n  user: \"{USER}\"\n  password: \"{PASSWORD}\"\n}}\n"
            ));
        }
        let path = self.dir.join("nats.conf");
        std::fs::write(&path, config).unwrap();
        path
    }

    fn try_start(&mut self) -> Result<(), String> {
        let config = self.write_config();
        // The log is appended to: only this start's lines say it is ready.
        let earlier = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))
            .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|error| {
                format!("{error}: install Debian's nats-server package (./scripts/test does)")
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited {status}: {}", self.log()));
            }
            if self
                .log()
                .get(earlier..)
                .unwrap_or("")
                .contains("Server is ready")
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("not ready in 20 s: {}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`, with the credentials when the server asks for them.
    pub fn url(&self) -> String {
        if self.options.auth {
            format!("nats://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
        } else {
            format!("nats://127.0.0.1:{}", self.port)
        }
    }

    /// Stops the server as an operator does (SIGTERM), and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL, as a crash does.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        let mut last = String::new();
        // The port may take a moment to be free after a kill.
        for _ in 0..50 {
            match self.try_start() {
                Ok(()) => return,
                Err(error) => last = error,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nats-server did not start again: {last}");
    }

    /// A plain client of this server.
    pub async fn client(&self) -> async_nats::Client {
        let mut options = async_nats::ConnectOptions::new();
        if self.options.auth {
            options = options.user_and_password(USER.into(), PASSWORD.into());
        }
        options
            .connect(format!("127.0.0.1:{}", self.port))
            .await
            .unwrap()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message as the stream holds it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub sequence: u64,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Every message of `stream`, read back one by one by sequence from the server.
pub async fn messages(client: &async_nats::Client, stream: &str) -> Vec<Stored> {
    let js = jetstream::new(client.clone());
    let mut handle = js.get_stream(stream).await.unwrap();
    let info = handle.info().await.unwrap().clone();
    let mut out = Vec::new();
    if info.state.messages == 0 {
        return out;
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let Ok(message) = handle.get_raw_message(sequence).await else {
            continue; // deleted
        };
        let mut headers: Vec<(String, String)> = message
            .headers
            .iter()
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |value| (name.to_string(), value.as_str().to_owned()))
            })
            .collect();
        headers.sort();
        out.push(Stored {
            sequence,
            subject: message.subject.to_string(),
            headers,
            payload: message.payload,
        });
    }
    out
}

/// The value of `key` in the bucket `bucket`, read back from the server.
pub async fn kv_value(client: &async_nats::Client, bucket: &str, key: &str) -> Option<Bytes> {
    let js = jetstream::new(client.clone());
    let store = js.get_key_value(bucket).await.unwrap();
    store.get(key).await.unwrap()
}

/// The keys of `bucket`.
pub async fn kv_keys(client: &async_nats::Client, bucket: &str) -> Vec<String> {
    use futures_util::StreamExt;
    let js = jetstream::new(client.clone());
    let store = js.get_key_value(bucket).await.unwrap();
    let mut keys: Vec<String> = store
        .keys()
        .await
        .unwrap()
        .map(|key| key.unwrap())
        .collect()
        .await;
    keys.sort();
    keys
}
