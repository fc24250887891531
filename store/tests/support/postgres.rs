//! A throwaway PostgreSQL cluster per test: Debian's `initdb` and `pg_ctl` (from the
//! `postgresql` package, in `/usr/lib/postgresql/<version>/bin`), a temp directory that
//! belongs to `postgres`, the server run as `postgres` when the test runs as root (as CI
//! does: PostgreSQL refuses to run as root), on 127.0.0.1 and a free port, its Unix socket
//! in the temp directory. The package's own cluster (port 5432) is left alone. Dropping the
//! cluster stops the server and removes the directory.
#![allow(dead_code)] // the test binary uses a part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser's password (TCP connections use scram-sha-256; the socket trusts).
pub const PASSWORD: &str = "pg-test-password-b7e1";

/// A running (or stopped) throwaway cluster.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
    mounts: Vec<PathBuf>,
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error}: install Debian's postgresql package (./scripts/test does)",
                root.display()
            )
        })
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("no initdb under {}/<version>/bin", root.display()))
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check(what: &str, output: Output) -> Output {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl PgCluster {
    /// `initdb` in a fresh temp directory, then start the server.
    pub fn start() -> Self {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("dt-store-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
            running: false,
            mounts: Vec::new(),
        };
        std::fs::write(cluster.dir.join("pwfile"), PASSWORD).unwrap();
        cluster.chown(&cluster.dir);
        let data = cluster.data();
        let pwfile = cluster.dir.join("pwfile");
        check(
            "initdb",
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--no-locale", "-E", "UTF8", "-N"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display()))
                .output()
                .expect("initdb"),
        );
        // A port taken between free_port and the server's bind: try another.
        for attempt in 0.. {
            cluster.port = free_port();
            let conf = format!(
                "\n# dt-store test cluster\nport = {}\nlisten_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{}'\nshared_buffers = 16MB\nmax_connections = 150\n\
                 fsync = on\nsynchronous_commit = on\n",
                cluster.port,
                cluster.dir.display()
            );
            let auto = data.join("postgresql.auto.conf");
            std::fs::write(&auto, conf).unwrap();
            cluster.chown(&auto);
            match cluster.try_start() {
                Ok(()) => break,
                Err(error) if attempt < 3 => eprintln!("pg_ctl start: {error}; another port"),
                Err(error) => panic!("pg_ctl start: {error}"),
            }
        }
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command of PostgreSQL's bin directory, run as `postgres` when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn chown(&self, path: &Path) {
        if self.as_postgres {
            check(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(path)
                    .output()
                    .unwrap(),
            );
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        if output.status.success() {
            self.running = true;
            Ok(())
        } else {
            Err(format!(
                "{}: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr),
                self.log()
            ))
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, as a shutdown does).
    pub fn stop(&mut self) {
        check(
            "pg_ctl stop",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "-m", "fast", "stop"])
                .output()
                .unwrap(),
        );
        self.running = false;
    }

    /// SIGKILLs the server: the postmaster and every process it started, no shutdown, no
    /// checkpoint (a crash; `start_again` recovers from the WAL).
    pub fn kill(&mut self) {
        let pid_file = self.data().join("postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned))
            .expect("a running server has a postmaster.pid");
        let children = Command::new("pgrep").args(["-P", &pid]).output().unwrap();
        let mut pids = vec![pid];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
        let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        // Wait until every one is gone (their shared memory too) before a restart.
        for _ in 0..200 {
            // A zombie (state Z, waiting for a parent that may never reap it) is gone.
            let alive = pids.iter().any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit(')')
                        .next()
                        .and_then(|rest| rest.split_whitespace().next())
                        != Some("Z")
                })
            });
            if !alive {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        // The postmaster may stay a zombie (no process here reaps it), which PostgreSQL's
        // lock check takes for a live server: every process is dead, so the lock file is
        // stale, as after a power cut.
        let _ = std::fs::remove_file(&pid_file);
        for stale in [".s.PGSQL.{port}.lock", ".s.PGSQL.{port}"] {
            let name = stale.replace("{port}", &self.port.to_string());
            let _ = std::fs::remove_file(self.dir.join(name));
        }
        self.running = false;
    }

    /// Starts the stopped server again, on the same port and data.
    pub fn start_again(&mut self) {
        self.try_start().unwrap();
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `db` as the superuser, with the password, over TCP.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// A client of `db` for the test's own SQL (reading back what the store wrote).
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| panic!("connect to {db}: {error}\n{}", self.log()));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// (event_key, body) of every row of `dt_event` in `db`, in id order.
    pub async fn rows(&self, db: &str) -> Vec<(String, Vec<u8>)> {
        rows(&self.client(db).await).await
    }

    /// A new database, and its URL.
    pub async fn database(&self, name: &str) -> String {
        self.client("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        self.url(name)
    }

    /// A tablespace on a tmpfs of `size` (e.g. `1m`) mounted in the cluster's directory,
    /// made the default tablespace of database `db`: the tables the store creates there
    /// live on a disk that fills up, while the WAL and the catalogs stay on the real one.
    /// Needs root (to mount).
    pub async fn tiny_tablespace(&mut self, db: &str, size: &str) -> PathBuf {
        let mount = self.dir.join("tiny");
        std::fs::create_dir(&mount).unwrap();
        let (uid, gid) = if self.as_postgres {
            let id = |flag: &str| {
                let output = check(
                    "id",
                    Command::new("id")
                        .args([flag, "postgres"])
                        .output()
                        .unwrap(),
                );
                String::from_utf8_lossy(&output.stdout).trim().to_owned()
            };
            (id("-u"), id("-g"))
        } else {
            let id = |flag: &str| {
                let output = Command::new("id").arg(flag).output().unwrap();
                String::from_utf8_lossy(&output.stdout).trim().to_owned()
            };
            (id("-u"), id("-g"))
        };
        check(
            "mount -t tmpfs (the full-disk test needs root and CAP_SYS_ADMIN)",
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size},mode=0700,uid={uid},gid={gid}"))
                .arg("tmpfs")
                .arg(&mount)
                .output()
                .unwrap(),
        );
        self.mounts.push(mount.clone());
        let admin = self.client("postgres").await;
        // One statement each: CREATE TABLESPACE runs outside a transaction block.
        admin
            .batch_execute(&format!(
                "CREATE TABLESPACE tiny LOCATION '{}'",
                mount.display()
            ))
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {db} SET default_tablespace = tiny"
            ))
            .await
            .unwrap();
        mount
    }

    /// Resizes the tmpfs of [`tiny_tablespace`](Self::tiny_tablespace).
    pub fn resize_tiny(&self, size: &str) {
        let mount = self.mounts.first().expect("a tiny tablespace");
        check(
            "mount -o remount",
            Command::new("mount")
                .args(["-o"])
                .arg(format!("remount,size={size}"))
                .arg(mount)
                .output()
                .unwrap(),
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "-m", "immediate", "stop"])
                .output();
        }
        for mount in self.mounts.drain(..) {
            let _ = Command::new("umount").arg(&mount).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (event_key, body) of every row of `dt_event`, in id order, read back with SQL.
pub async fn rows(client: &tokio_postgres::Client) -> Vec<(String, Vec<u8>)> {
    client
        .query("SELECT event_key, body FROM dt_event ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Runs `future` to its end on a runtime of its own: the harness's async helpers from a
/// test that runs on plain threads (the command-line tool's tests).
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}
