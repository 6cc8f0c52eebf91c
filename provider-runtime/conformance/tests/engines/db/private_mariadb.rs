//! A MariaDB server of one subject's own, for db/mysql's +stable check, which restarts it (the
//! shared test server cannot be): a data directory in a temp dir, started as scripts/test-servers
//! starts the shared one but committing every transaction to disk, so a killed server keeps
//! what it acknowledged.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, run};

/// The account the engine administers the server with, as on the shared server.
const ADMIN: &str = "switchyard";

pub struct PrivateMariadb {
    port: u16,
    dir: TempDir,
    process: Mutex<Child>,
}

impl PrivateMariadb {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", dir.path().display()))
            .arg(format!("--user={}", user()))
            .arg("--auth-root-authentication-method=socket"));
        let port = free_port();
        let process = Mutex::new(Self::spawn(port, dir.path()));
        run(Command::new("mariadb")
            .arg("-S")
            .arg(dir.path().join("mysqld.sock"))
            .args(["-u", "root", "-e"])
            .arg(format!(
                "CREATE USER '{ADMIN}'@'127.0.0.1' IDENTIFIED BY '{ADMIN}'; \
                 GRANT ALL PRIVILEGES ON *.* TO '{ADMIN}'@'127.0.0.1' WITH GRANT OPTION;"
            )));
        PrivateMariadb { port, dir, process }
    }

    fn spawn(port: u16, dir: &Path) -> Child {
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--user={}", user()))
            .arg("--skip-log-bin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd runs (scripts/deps.sh --test installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    pub fn url(&self) -> String {
        format!("mysql://{ADMIN}:{ADMIN}@127.0.0.1:{}/mysql", self.port)
    }

    /// Kills the server (no goodbye to clients, crash recovery on start) and starts it again on
    /// the same port and data.
    pub fn restart(&self) {
        let mut process = self.process.lock().expect("not poisoned");
        process.kill().expect("mariadbd stops");
        process.wait().expect("mariadbd is reaped");
        *process = Self::spawn(self.port, self.dir.path());
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let process = self.process.get_mut().expect("not poisoned");
        let _ = process.kill();
        let _ = process.wait();
    }
}

/// The account this runs as, which the server runs as too.
fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
