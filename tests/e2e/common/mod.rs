//! Runs the real `switchyard` binary for end-to-end tests: `serve` on a free loopback port
//! with its own data directory, and the CLI for tenants and keys.

pub mod restate;
pub mod vault;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// The repository's Rego policies and data.
pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// The repository's policies built by the CLI into an unsigned bundle of `revision` in `dir`.
pub fn policy_bundle(dir: &Path, revision: &str) -> PathBuf {
    let bundle = dir.join(format!("bundle-{revision}.tar.gz"));
    cli(
        dir,
        &[
            "policy",
            "build",
            "--dir",
            POLICIES,
            "--revision",
            revision,
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    bundle
}

/// The superuser URL of the PostgreSQL server `scripts/test` starts.
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES_URL").expect(
        "SWITCHYARD_TEST_POSTGRES_URL is not set: run the suite with scripts/test (it starts PostgreSQL)",
    )
}

/// A database of its own on the test server, dropped at the end.
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub fn create(purpose: &str) -> Database {
        let admin = postgres_admin_url();
        let name = format!("sy_{purpose}_{}_{}", std::process::id(), free_port());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Database { admin, name, url }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Runs `sql` with psql against `url`, failing the test when psql does; answers its output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

impl Server {
    /// `switchyard serve` on a free port.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// `switchyard serve` with extra arguments (e.g. `--config FILE`).
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--listen", &listen];
        args.extend_from_slice(extra);
        Server::spawn(data_dir, &args, port)
    }

    /// `switchyard serve` with extra arguments and environment variables for the child.
    pub fn start_with_env(
        data_dir: &Path,
        extra: &[&str],
        env: &mut Vec<(&str, String)>,
    ) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--listen", &listen];
        args.extend_from_slice(extra);
        Server::spawn_with_env(data_dir, &args, port, env)
    }

    /// Any `switchyard` command that serves HTTP on `port`; returns once `/healthz` answers 200.
    pub fn spawn(data_dir: &Path, args: &[&str], port: u16) -> Server {
        let server = Server::spawn_unready(data_dir, args, port);
        server.wait_ready();
        server
    }

    /// Like [`Server::spawn`], with extra environment variables for the child; they may
    /// override the defaults (e.g. a louder `SWITCHYARD_LOG`).
    pub fn spawn_with_env(
        data_dir: &Path,
        args: &[&str],
        port: u16,
        env: &mut Vec<(&str, String)>,
    ) -> Server {
        let server = Server::launch(data_dir, args, port, env);
        server.wait_ready();
        server
    }

    /// Like [`Server::spawn`], returning as soon as the port accepts connections, for servers
    /// that are expected not to be healthy.
    pub fn spawn_unready(data_dir: &Path, args: &[&str], port: u16) -> Server {
        Server::launch(data_dir, args, port, &mut Vec::new())
    }

    fn launch(data_dir: &Path, args: &[&str], port: u16, env: &mut Vec<(&str, String)>) -> Server {
        let child = Command::new(BIN)
            .args(args)
            .env("SWITCHYARD_DATA_DIR", data_dir)
            .env("SWITCHYARD_LOG", "warn")
            .envs(env.drain(..))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data_dir.join("server.log")).expect("server log file"))
            .spawn()
            .expect("switchyard starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "switchyard {args:?} never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_owned(),
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if status_of(&format!("{}/healthz", self.base)) == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default();
        panic!(
            "switchyard did not become ready at {}; its log:\n{log}",
            self.base
        );
    }

    /// The child's process id, to read its memory and CPU time from `/proc/<pid>/`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed that was not already durable.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().expect("child reaped");
    }

    /// SIGTERM: the graceful path.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM not delivered");
    }

    /// Waits for the process to exit; true if it did within `within`.
    pub fn exited_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.child.try_wait().expect("child status").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status of a plain blocking GET, or `None` while nothing answers. Readiness polling
/// runs outside any async runtime, hence a bare socket.
pub fn status_of(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let (host, path) = url.strip_prefix("http://")?.split_once('/')?;
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `probe` until it answers `Some`, for up to `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a gateway config file into the test's directory and returns its path.
pub fn write_config(dir: &Path, toml: &str) -> String {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs a CLI subcommand against the data directory and returns its stdout.
pub fn cli(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("SWITCHYARD_DATA_DIR", data_dir)
        .output()
        .expect("cli runs");
    assert!(
        out.status.success(),
        "switchyard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates a tenant and a key with the given scopes; returns the key.
pub fn tenant_with_key(data_dir: &Path, tenant: &str, scopes: &str) -> String {
    cli(data_dir, &["tenant", "create", tenant]);
    cli(
        data_dir,
        &["key", "create", "--tenant", tenant, "--scopes", scopes],
    )
    .trim()
    .to_owned()
}

/// An HTTP client holding one tenant's key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    key: String,
}

impl Api {
    pub fn new(server: &Server, key: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            key: key.to_owned(),
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    /// Like [`Api::post`], `None` when nothing answers (a server being restarted).
    pub async fn try_post(&self, path: &str, body: Value) -> Option<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .timeout(std::time::Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .ok()?;
        Some(decode(response).await)
    }

    /// Invokes an action and returns `data`, panicking with the problem if it failed.
    pub async fn ok(&self, provider: &str, action: &str, params: Value) -> Value {
        let (status, body) = self
            .post(
                &format!("/providers/{provider}/{action}"),
                serde_json::json!({"params": params}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{provider}/{action} failed: {body}");
        body["data"].clone()
    }

    /// Calls a business service's action and returns `data`, panicking with the problem if
    /// it failed.
    pub async fn service_ok(&self, service: &str, action: &str, params: Value) -> Value {
        let (status, body) = self
            .post(
                &format!("/services/{service}/{action}"),
                serde_json::json!({"params": params}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{service}/{action} failed: {body}");
        body["data"].clone()
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

pub async fn decode(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// A test identity provider: an RSA key generated here, its JWKS served over HTTP on
/// loopback, and RS256 tokens minted for any tenant, subject, scopes and roles.
pub struct Idp {
    pub jwks_port: u16,
    key: jsonwebtoken::EncodingKey,
}

impl Idp {
    pub const ISSUER: &'static str = "https://idp.test";
    pub const AUDIENCE: &'static str = "switchyard";

    pub fn start() -> Idp {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use std::io::{Read, Write};
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()), "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec())}]})
        .to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let jwks_port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; 2048];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                    jwks.len()
                );
            }
        });
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(&rsa.private_key_to_pem().unwrap()).unwrap();
        Idp { jwks_port, key }
    }

    /// The `[oidc]` section of a gateway config trusting this IdP, and the operator's egress
    /// ceiling opening loopback, where its JWKS listens (the gateway's key fetches go through
    /// the egress guard too).
    pub fn oidc_config(&self) -> String {
        format!(
            "[oidc]\nissuer = \"{}\"\naudience = \"{}\"\njwks_url = \"http://127.0.0.1:{}/jwks\"\n\
             [tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n",
            Idp::ISSUER,
            Idp::AUDIENCE,
            self.jwks_port
        )
    }

    pub fn token(&self, subject: &str, tenant: &str, scope: &str, roles: &[&str]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({"iss": Idp::ISSUER, "aud": Idp::AUDIENCE, "sub": subject, "tenant": tenant,
            "scope": scope, "roles": roles, "exp": now + 600, "iat": now});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// A throwaway `redis-server` on loopback; killed and reaped when dropped. With a directory it
/// keeps an append-only file fsynced at every write, so a restart keeps what it acknowledged.
pub struct RedisServer(std::process::Child);

impl RedisServer {
    pub fn start(port: u16, durable_dir: Option<&Path>) -> RedisServer {
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match durable_dir {
            Some(dir) => command.args([
                "--dir",
                dir.to_str().unwrap(),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ]),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer(child)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
