//! The processes a bench run starts (runtimes, gateways, nginx, `serve`, wrk): spawned into the
//! run's work directory, waited for, and stopped the way each expects — also when the bench is
//! interrupted — so that no run leaves one behind.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How a child is stopped when the bench is done with it.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Stop {
    /// SIGKILL: the runtimes, the gateway, `serve` and wrk keep nothing that must be flushed.
    Kill,
    /// SIGQUIT to nginx's master, which stops its workers and reaps them before it exits.
    /// SIGKILL would orphan the workers to PID 1, still listening: every run used to leave two.
    Quit,
    /// SIGTERM to a uvicorn supervisor (LiteLLM's proxy), which stops its worker processes:
    /// to it SIGQUIT is a plain termination that would orphan them, as SIGKILL would.
    Term,
}

impl Stop {
    /// The signal that asks for a graceful stop (`None`: there is none, SIGKILL at once).
    fn graceful(self) -> Option<&'static str> {
        match self {
            Stop::Kill => None,
            Stop::Quit => Some("QUIT"),
            Stop::Term => Some("TERM"),
        }
    }
}

/// How long nginx (or LiteLLM) may take to stop gracefully before it and its workers are killed.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// The children running now, for [`stop_all`] on Ctrl-C or SIGTERM: then the process exits
/// without unwinding, so no [`Proc`] is dropped.
static RUNNING: Mutex<Vec<(u32, Stop)>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<(u32, Stop)>> {
    RUNNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `signal` (`KILL`, `QUIT`) with kill(1): std sends only SIGKILL, and a dependency on
/// libc for one call is not worth it.
fn send(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` runs (exists and is no zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// The direct children of `pid` (nginx's workers), from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Stops every child still running and waits until they are gone: for the signal handler,
/// which then exits. Children stay in the bench's process group, so a Ctrl-C at a terminal
/// reaches them too (nginx's master stops its workers on SIGINT); this covers a signal sent to
/// the bench alone (`kill`, `timeout`, a CI runner).
pub fn stop_all() {
    let children = running().clone();
    let deadline = Instant::now() + QUIT_GRACE;
    for &(pid, stop) in &children {
        send(pid, stop.graceful().unwrap_or("KILL"));
    }
    for &(pid, stop) in &children {
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if alive(pid) && stop.graceful().is_some() {
            for worker in children_of(pid) {
                send(worker, "KILL");
            }
            send(pid, "KILL");
        }
    }
}

/// A child process stopped and reaped when dropped (on success, on error and on panic), so
/// that a run leaves nothing running or listening.
pub struct Proc {
    child: Child,
    name: String,
    stop: Stop,
}

impl Proc {
    pub(super) fn new(child: Child, name: &str, stop: Stop) -> Proc {
        running().push((child.id(), stop));
        Proc {
            child,
            name: name.to_owned(),
            stop,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to exit by itself (wrk).
    pub(super) fn wait(mut self) -> Result<ExitStatus> {
        Ok(self.child.wait()?)
    }

    /// `signal`, then the grace period, then SIGKILL for the master and its workers.
    fn quit(&mut self, signal: &str) {
        let pid = self.pid();
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        send(pid, signal);
        let deadline = Instant::now() + QUIT_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "bench: {} did not stop within {QUIT_GRACE:?} of SIG{signal}; killing it and its workers",
            self.name
        );
        for worker in children_of(pid) {
            send(worker, "KILL");
        }
        let _ = self.child.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        match self.stop.graceful() {
            None => {
                let _ = self.child.kill();
            }
            Some(signal) => self.quit(signal),
        }
        let _ = self.child.wait();
        let pid = self.pid();
        running().retain(|&(running, _)| running != pid);
    }
}

/// Spawns `program` with its output in `<work>/<name>.log`.
pub fn spawn(work: &Path, name: &str, program: &Path, args: &[&str]) -> Result<Proc> {
    spawn_stopped_by(work, name, program, args, Stop::Kill)
}

pub(super) fn spawn_stopped_by(
    work: &Path,
    name: &str,
    program: &Path,
    args: &[&str],
    stop: Stop,
) -> Result<Proc> {
    spawn_with(work, name, program, args, &[], stop)
}

/// [`spawn_stopped_by`] with `env` set for the child (LiteLLM's offline settings).
pub(super) fn spawn_with(
    work: &Path,
    name: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stop: Stop,
) -> Result<Proc> {
    let log = std::fs::File::create(work.join(format!("{name}.log")))?;
    // The logging a user runs by default (`info`, an access log line for every request),
    // whatever the bench's own environment says: a quieter level or a sampled access log would
    // measure a path nobody runs.
    let child = Command::new(program)
        .args(args)
        .env_remove("SWITCHYARD_LOG")
        .env_remove("SWITCHYARD_ACCESS_LOG_SAMPLE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok(Proc::new(child, name, stop))
}

pub fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until `GET /healthz` answers 200; the time it took.
pub async fn wait_ready(
    proc: &mut Proc,
    addr: SocketAddr,
    client: &reqwest::Client,
) -> Result<Duration> {
    wait_ready_at(
        proc,
        &format!("http://{addr}/healthz"),
        client,
        Duration::from_secs(60),
    )
    .await
}

/// Waits until `GET url` answers 2xx, at most `limit`; the time it took.
pub async fn wait_ready_at(
    proc: &mut Proc,
    url: &str,
    client: &reqwest::Client,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = proc.child.try_wait()? {
            bail!("{} exited with {status} before it was ready", proc.name);
        }
        if let Ok(answer) = client.get(url).send().await
            && answer.status().is_success()
        {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("{} was not ready at {url} within {limit:?}", proc.name)
}
