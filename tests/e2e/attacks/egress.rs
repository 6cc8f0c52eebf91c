//! Hole 3 of issue 17: egress was guarded in `integration/webhook` only, and there the tenant
//! could widen the guard itself. A hostile tenant admin now tries every provider that connects
//! out on its behalf — `integration/webhook`, `ai/openai` (with a redirect), `auth/jwt`'s JWKS
//! and a siloed `db/postgres` dsn — against loopback, the metadata address and ports the
//! operator did not open. Each is refused with 403 `egress_forbidden` pointing at the field,
//! the tenant's listeners receive nothing, and errors name a status class, never the remote
//! answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{Api, Server, postgres_admin_url, tenant_with_key, write_config};

/// A listener the tenant owns: counts connections and answers each with `answer`.
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start(answer: String) -> Listener {
        Listener::on("127.0.0.1:0", answer).await.unwrap()
    }

    async fn on(address: &str, answer: String) -> std::io::Result<Listener> {
        let socket = TcpListener::bind(address).await?;
        let port = socket.local_addr()?.port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = socket.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 8192];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Ok(Listener { port, connections })
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn http_answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn completion() -> String {
    http_answer(
        "200 OK",
        &json!({"model": "m", "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).to_string(),
    )
}

/// `serve` with `egress` as its `[tenancy.egress]` section (empty: the safe default) and a
/// tenant `acme` with an admin key.
fn serve(dir: &std::path::Path, egress: &str, env: &mut Vec<(&str, String)>) -> (Server, String) {
    let key = tenant_with_key(dir, "acme", "*");
    let config = write_config(dir, &format!("[tenancy.egress]\n{egress}\n"));
    let server = Server::start_with_env(dir, &["--config", &config], env);
    (server, key)
}

async fn chat(api: &Api) -> (StatusCode, Value) {
    api.post(
        "/providers/ai/openai/chat",
        json!({"params": {"messages": [{"role": "user", "content": "hello"}]}}),
    )
    .await
}

fn assert_forbidden(status: StatusCode, body: &Value, pointer: &str, what: &str) {
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("egress_forbidden")),
        "{what}: {body}"
    );
    assert_eq!(body["errors"][0]["pointer"], pointer, "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_widen_the_operators_egress() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = serve(
        dir.path(),
        "allowed_networks = [\"10.20.0.0/16\"]",
        &mut Vec::new(),
    );
    let api = Api::new(&server, &key);
    for (networks, index) in [
        (json!(["0.0.0.0/0"]), 0),
        (json!(["::/0"]), 0),
        (json!(["10.20.1.0/24", "127.0.0.0/8"]), 1),
        (json!(["10.0.0.0/8"]), 0),
    ] {
        let (status, body) = api
            .post(
                "/providers/integration/webhook/configure",
                json!({"config": {"allowed_networks": networks}}),
            )
            .await;
        assert_forbidden(
            status,
            &body,
            &format!("/allowed_networks/{index}"),
            &networks.to_string(),
        );
    }
    // Narrowing inside the ceiling is the tenant's right.
    let (status, body) = api
        .post(
            "/providers/integration/webhook/configure",
            json!({"config": {"allowed_networks": ["10.20.1.0/24"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_operators_allowance_ai_openai_reaches_no_internal_address() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = serve(dir.path(), "", &mut Vec::new());
    let api = Api::new(&server, &key);
    let v4 = Listener::start(completion()).await;
    let v6 = Listener::on("[::1]:0", completion()).await.ok();
    let v6_port = v6.as_ref().map_or(v4.port, |l| l.port);
    for base_url in [
        format!("http://127.0.0.1:{}/v1", v4.port),
        format!("http://127.1:{}/v1", v4.port),
        format!("http://0.0.0.0:{}/v1", v4.port),
        format!("http://[::1]:{v6_port}/v1"),
        format!("http://[::ffff:127.0.0.1]:{}/v1", v4.port),
        format!("http://localhost:{}/v1", v4.port),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let (status, body) = api
            .post(
                "/providers/ai/openai/configure",
                json!({"config": {"base_url": base_url, "chat_model": "m"}}),
            )
            .await;
        if status == StatusCode::OK {
            // Not refused at configure: the call must be.
            let (status, body) = chat(&api).await;
            assert_forbidden(status, &body, "/base_url", &base_url);
        } else {
            assert_forbidden(status, &body, "/base_url", &base_url);
        }
    }
    assert_eq!(v4.connections(), 0, "the loopback listener was reached");
    assert_eq!(
        v6.map_or(0, |l| l.connections()),
        0,
        "the [::1] listener was reached"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_port_the_operator_did_not_open_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = Listener::start(completion()).await;
    let redirector = Listener::start(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{}/v1/chat/completions\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        elsewhere.port
    ))
    .await;
    let (server, key) = serve(
        dir.path(),
        &format!(
            "allowed_networks = [\"127.0.0.0/8\"]\nallowed_ports = [{}]",
            redirector.port
        ),
        &mut Vec::new(),
    );
    let api = Api::new(&server, &key);
    let (status, body) = api
        .post(
            "/providers/ai/openai/configure",
            json!({"config": {"base_url": format!("http://127.0.0.1:{}/v1", elsewhere.port), "chat_model": "m"}}),
        )
        .await;
    assert_forbidden(
        status,
        &body,
        "/base_url",
        "a port the operator did not open",
    );
    let (status, body) = api
        .post(
            "/providers/ai/openai/configure",
            json!({"config": {"base_url": format!("http://127.0.0.1:{}/v1", redirector.port), "chat_model": "m"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = chat(&api).await;
    assert_forbidden(status, &body, "/base_url", "the redirect");
    assert!(redirector.connections() >= 1);
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(!detail.contains("/chat/completions"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_openai_errors_name_a_status_class_not_the_remote_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = serve(
        dir.path(),
        "allowed_networks = [\"127.0.0.0/8\"]",
        &mut Vec::new(),
    );
    let api = Api::new(&server, &key);
    for status_line in [
        "400 Bad Request",
        "404 Not Found",
        "500 Internal Server Error",
    ] {
        let internal = Listener::start(http_answer(
            status_line,
            r#"{"error": {"message": "db-password=hunter2 at internal-admin.corp"}}"#,
        ))
        .await;
        let (status, body) = api
            .post(
                "/providers/ai/openai/configure",
                json!({"config": {"base_url": format!("http://127.0.0.1:{}/v1", internal.port), "chat_model": "m"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = chat(&api).await;
        assert!(!status.is_success(), "{status_line}: {body}");
        let text = body.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("internal-admin"),
            "{status_line}: {text}"
        );
        let class = format!("{}xx", &status_line[..1]);
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(&class),
            "{status_line}: {body}"
        );
        assert!(!text.contains(status_line), "{status_line}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_jwks_url_on_loopback_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, key) = serve(dir.path(), "", &mut Vec::new());
    let api = Api::new(&server, &key);
    let jwks = Listener::start(http_answer("200 OK", r#"{"keys": []}"#)).await;
    for jwks_url in [
        format!("http://127.0.0.1:{}/jwks", jwks.port),
        format!("http://localhost:{}/jwks", jwks.port),
        "http://169.254.169.254/jwks".to_owned(),
    ] {
        let (status, body) = api
            .post(
                "/providers/auth/jwt/configure",
                json!({"config": {"issuer": "https://idp.example", "audience": "erp", "jwks_url": jwks_url}}),
            )
            .await;
        if status == StatusCode::OK {
            let (status, body) = api
                .post(
                    "/providers/auth/jwt/verify",
                    json!({"params": {"token": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"}}),
                )
                .await;
            assert_forbidden(status, &body, "/jwks_url", &jwks_url);
        } else {
            assert_forbidden(status, &body, "/jwks_url", &jwks_url);
        }
    }
    assert_eq!(jwks.connections(), 0, "the JWKS listener was reached");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_siloed_postgres_dsn_on_loopback_is_refused_unless_the_operator_allows_it() {
    let admin = postgres_admin_url();
    let env = || {
        vec![
            ("SWITCHYARD_POSTGRES_URL", admin.clone()),
            (
                "SWITCHYARD_POSTGRES_APP_PASSWORD",
                "egress-attack-app".to_owned(),
            ),
        ]
    };
    // The dsn holds a credential, so it is a reference into the tenant's own secret directory;
    // what it names is the test server on loopback, by address and by name.
    let secrets = |dir: &std::path::Path| {
        let secrets = dir.join("tenant-secrets");
        std::fs::create_dir_all(secrets.join("acme")).unwrap();
        std::fs::write(secrets.join("acme/by-address"), &admin).unwrap();
        std::fs::write(
            secrets.join("acme/by-name"),
            admin.replace("127.0.0.1", "localhost"),
        )
        .unwrap();
        format!(
            "\n[tenancy.secrets]\nfile_dir = \"{}/{{tenant}}\"",
            secrets.display()
        )
    };
    let configure = |dir: &std::path::Path, which: &str| json!({"config": {"mode": "siloed", "dsn": format!("secret://file{}/acme/{which}", dir.join("tenant-secrets").display())}});

    let closed = tempfile::tempdir().unwrap();
    let (server, key) = serve(closed.path(), &secrets(closed.path()), &mut env());
    let api = Api::new(&server, &key);
    for which in ["by-address", "by-name"] {
        let (status, body) = api
            .post(
                "/providers/db/postgres/configure",
                configure(closed.path(), which),
            )
            .await;
        assert_forbidden(status, &body, "/dsn", which);
        assert!(
            !body.to_string().contains("postgres://"),
            "the dsn was echoed: {body}"
        );
    }
    drop(server);

    let open = tempfile::tempdir().unwrap();
    let (server, key) = serve(
        open.path(),
        &format!(
            "allowed_networks = [\"127.0.0.0/8\"]{}",
            secrets(open.path())
        ),
        &mut env(),
    );
    let api = Api::new(&server, &key);
    let (status, body) = api
        .post(
            "/providers/db/postgres/configure",
            configure(open.path(), "by-address"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = api
        .ok("db/postgres", "query", json!({"sql": "SELECT 1 AS one"}))
        .await;
    assert_eq!(rows["rows"][0]["one"], 1, "{rows}");
}
