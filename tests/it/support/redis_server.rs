//! A `redis-server` of our own on a loopback port, killed on drop: started on a free port
//! or a given one, with or without persistence, and killed (SIGKILL) and restarted on the
//! same port with the same options and directory. Without `redis-server` it panics (the
//! tests never skip): `apt-get install redis-server`; `./scripts/test` installs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A `redis-server` child process, killed on drop (its directory, if it has one, removed).
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    dir: Option<PathBuf>,
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// No persistence (`--save "" --appendonly no`), on a free port.
    pub fn start() -> Self {
        Self::start_any_port(Vec::new(), None)
    }

    /// No persistence, on `port` (for a store made before its Redis runs).
    pub fn start_on(port: u16) -> Self {
        let mut server = Self::new(port, Vec::new(), None);
        server
            .spawn()
            .unwrap_or_else(|why| panic!("redis-server did not start: {why}"));
        server
    }

    /// Every write on disk before it is answered (`--appendonly yes --appendfsync
    /// always`), in a fresh directory of its own, on a free port: what survives a SIGKILL
    /// is everything Redis acknowledged.
    pub fn start_persistent() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("tower-dt-redis-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let args = ["--appendonly", "yes", "--appendfsync", "always"]
            .map(String::from)
            .to_vec();
        Self::start_any_port(args, Some(dir))
    }

    fn new(port: u16, persistence: Vec<String>, dir: Option<PathBuf>) -> Self {
        let mut args = vec!["--save".to_owned(), String::new()];
        if persistence.is_empty() {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        args.extend(persistence);
        if let Some(dir) = &dir {
            args.extend(["--dir".to_owned(), dir.display().to_string()]);
        }
        Self {
            child: None,
            port,
            args,
            dir,
        }
    }

    fn start_any_port(persistence: Vec<String>, dir: Option<PathBuf>) -> Self {
        let mut last = String::new();
        // A free port can be taken between our probe and redis' bind: try a few.
        for _ in 0..5 {
            let mut server = Self::new(free_port(), persistence.clone(), dir.clone());
            match server.spawn() {
                Ok(()) => return server,
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// Start the process and PING until PONG; Err with redis' own output if it exited.
    fn spawn(&mut self) -> Result<(), String> {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed, and the Redis store tests need it: \
                 apt-get install redis-server (./scripts/test installs it)"
            ),
            Err(error) => panic!("could not start redis-server: {error}"),
        };
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                let mut output = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    let _ = stdout.read_to_string(&mut output);
                }
                self.child = None;
                return Err(format!("exited with {status}: {output}"));
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                // While it loads its append-only file Redis answers -LOADING: not up yet.
                if (&stream).write_all(b"PING\r\n").is_ok()
                    && reader.read_line(&mut line).is_ok()
                    && line == "+PONG\r\n"
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("no PONG within 10 s".into())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL it (no shutdown, no last save) and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, with the same options and directory (so a
    /// persistent one reloads its append-only file). Retries for a while: the port may
    /// still be held for a moment after the kill.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a killed server only");
        let mut last = String::new();
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                Err(why) => last = why,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not restart on port {}: {last}", self.port);
    }

    /// A plain connection, to look at the keys.
    pub async fn inspect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
