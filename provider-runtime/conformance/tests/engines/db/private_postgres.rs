//! A PostgreSQL server of one subject's own, for db/postgres's +stable check, which restarts
//! it (the shared test server cannot be): a cluster in a temp dir, trusted on loopback only,
//! run through pg_ctl as scripts/test-servers runs the shared one.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{free_port, run};

pub struct PrivatePostgres {
    port: u16,
    bin: PathBuf,
    /// Holds the cluster in `data/`.
    dir: TempDir,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bin = server_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        if running_as_root() {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres account.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let server = PrivatePostgres {
            port: free_port(),
            bin,
            dir,
        };
        run(server
            .as_postgres("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-U", "postgres", "--auth=trust"]));
        server.pg_ctl_start();
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server the hard way (`immediate`: no goodbye to clients, crash recovery on
    /// start) and starts it again on the same port and data.
    pub fn restart(&self) {
        self.pg_ctl_stop();
        self.pg_ctl_start();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.data().display()
        );
        run(self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.data().join("server.log"))
            .args(["-w", "-o", &options, "start"]));
    }

    fn pg_ctl_stop(&self) {
        run(self.as_postgres("pg_ctl").arg("-D").arg(self.data()).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]));
    }

    /// One of the server's programs, run as the postgres account when this is root.
    fn as_postgres(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            self.pg_ctl_stop();
        }
    }
}

/// The newest installed PostgreSQL's programs.
fn server_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/deps.sh --test)")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|bin| major_version(bin));
    versions
        .pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
}

fn major_version(bin: &Path) -> u32 {
    bin.parent()
        .and_then(|v| v.file_name())
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
