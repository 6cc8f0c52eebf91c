//! Servers of one subject's own, for the +stable checks (the shared test servers cannot be
//! restarted under other tests): started on a free loopback port, killed and started again on
//! the same port and data when the check asks, stopped with the subject.

use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server process: `command(port)` started, restarted and stopped.
pub struct Private {
    what: &'static str,
    port: u16,
    command: Box<dyn Fn(u16) -> Command + Send + Sync>,
    process: Mutex<Child>,
}

impl Private {
    /// Starts `command(port)` on a free port and waits until it listens; `what` names it in
    /// failures.
    pub fn start(
        what: &'static str,
        command: impl Fn(u16) -> Command + Send + Sync + 'static,
    ) -> Self {
        let port = free_port();
        let process = Mutex::new(spawn(what, port, &command));
        Private {
            what,
            port,
            command: Box::new(command),
            process,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server the hard way (no chance to say goodbye to clients) and starts it
    /// again on the same port.
    pub fn restart(&self) {
        let mut process = self.process.lock().expect("not poisoned");
        process.kill().expect("the server stops");
        process.wait().expect("the server is reaped");
        *process = spawn(self.what, self.port, &self.command);
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let process = self.process.get_mut().expect("not poisoned");
        let _ = process.kill();
        let _ = process.wait();
    }
}

fn spawn(what: &str, port: u16, command: &dyn Fn(u16) -> Command) -> Child {
    let child = command(port)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} runs (scripts/deps.sh --test installs it): {e}"));
    wait_for(port, what);
    child
}

/// Waits until something listens on `port`.
pub fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nothing listens on now (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The subject's backing-server restart: `restart(server)` off the check's runtime (stopping
/// and starting a server blocks).
pub fn restart_on_a_thread<S: Send + Sync + 'static>(
    server: Arc<S>,
    restart: fn(&S),
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(move || restart(&server))
            .await
            .expect("the restart finishes")
    })
}

/// The credentials of the private s3s-fs servers.
pub const S3S_ACCESS_KEY: &str = "switchyard-test";
pub const S3S_SECRET_KEY: &str = "switchyard-test-secret";

/// An s3s-fs server on `port` over `dir` (an object store of a subject's own).
pub fn s3s_fs(port: u16, dir: &std::path::Path) -> Command {
    let mut command = Command::new("s3s-fs");
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3S_ACCESS_KEY])
        .args(["--secret-key", S3S_SECRET_KEY])
        .arg(dir);
    command
}
