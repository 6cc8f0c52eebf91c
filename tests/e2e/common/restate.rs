//! A Restate server of the test's own (`restate-server` from npm, installed by
//! scripts/test-servers as `SWITCHYARD_TEST_RESTATE_SERVER`), on free loopback ports with its
//! data in a temporary directory. One per test: a Restate server routes a workflow's name to
//! the deployment registered last, and the tests run side by side, each with its own `serve`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, status_of};

pub struct Restate {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: [u16; 3],
    pub ingress: String,
    pub admin: String,
}

impl Restate {
    /// Starts the server and waits until its admin API and ingress answer.
    pub fn start() -> Restate {
        let ports = [free_port(), free_port(), free_port()];
        let dir = tempfile::tempdir().unwrap();
        let mut restate = Restate {
            child: None,
            ingress: format!("http://127.0.0.1:{}", ports[0]),
            admin: format!("http://127.0.0.1:{}", ports[1]),
            dir,
            ports,
        };
        restate.launch();
        restate
    }

    fn binary() -> PathBuf {
        std::env::var_os("SWITCHYARD_TEST_RESTATE_SERVER")
            .map(PathBuf::from)
            .expect("SWITCHYARD_TEST_RESTATE_SERVER: run the tests through scripts/test (it installs restate-server)")
    }

    fn launch(&mut self) {
        let [ingress, admin, node] = self.ports;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("restate.log"))
            .unwrap();
        let child = Command::new(Restate::binary())
            .args([
                "--base-dir",
                &self.dir.path().join("data").to_string_lossy(),
                "--no-logo",
            ])
            .env("RESTATE_LISTEN_MODE", "tcp")
            .env("RESTATE_BIND_IP", "127.0.0.1")
            .env("RESTATE_BIND_PORT", node.to_string())
            .env("RESTATE_ADMIN__BIND_ADDRESS", format!("127.0.0.1:{admin}"))
            .env(
                "RESTATE_INGRESS__BIND_ADDRESS",
                format!("127.0.0.1:{ingress}"),
            )
            .env("RESTATE_LOG_FILTER", "warn")
            .env("RESTATE_LOG_FORMAT", "compact")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("restate-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = |url: String| status_of(&url) == Some(200);
            if up(format!("{}/health", self.admin))
                && up(format!("{}/restate/health", self.ingress))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "restate-server did not start; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment `serve` needs to reach this server and host its workflow endpoint on a
    /// free port.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SWITCHYARD_RESTATE_INGRESS_URL", self.ingress.clone()),
            ("SWITCHYARD_RESTATE_ADMIN_URL", self.admin.clone()),
            (
                "SWITCHYARD_RESTATE_ENDPOINT_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
        ]
    }

    /// Waits until the server knows workflow `name` (the endpoint registered itself).
    pub async fn wait_for_workflow(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = reqwest::get(format!("{}/services/{name}", self.admin)).await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "workflow {name} never registered; restate's log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, then start again on the same ports and data: what it journaled survives.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL delivered");
            child.wait().expect("restate reaped");
        }
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("restate.log")).unwrap_or_default()
    }
}

impl Drop for Restate {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
