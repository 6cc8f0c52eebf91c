//! Hole 1 of issue 17: a tenant admin points its own `ai/openai` at a listener it owns and
//! writes secret references to the platform's files, the `serve` process's environment,
//! another tenant's Vault path or a `..` escape. Each configure is refused with 403
//! `secret_forbidden` naming the field, and after a chat call the listener has received none
//! of the host's secrets. A file inside the tenant's own secret directory still works.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{Api, Server, tenant_with_key, write_config};

/// A value only the `serve` process's environment holds.
const HOST_ENV: &str = "SY_ATTACK_HOST_SECRET";
const HOST_ENV_VALUE: &str = "host-env-value-5d1c0a7e";

/// An OpenAI-compatible server the tenant owns: it keeps every byte it is sent and answers
/// each request with one chat completion.
struct Listener {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Listener {
    async fn start() -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = socket.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let request = read_request(&mut stream).await;
                    sink.lock().unwrap().extend_from_slice(&request);
                    let body = json!({"model": "m", "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}).to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Listener { port, received }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

/// The head and, by its content-length, the body of one HTTP/1.1 request.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    request
}

fn serve(dir: &std::path::Path, extra_toml: &str) -> Server {
    let config = write_config(
        dir,
        &format!("[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n{extra_toml}"),
    );
    Server::start_with_env(
        dir,
        &["--config", &config],
        &mut vec![(HOST_ENV, HOST_ENV_VALUE.to_owned())],
    )
}

async fn chat(api: &Api) -> (StatusCode, Value) {
    api.post(
        "/providers/ai/openai/chat",
        json!({"params": {"messages": [{"role": "user", "content": "hello"}]}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_point_a_secret_reference_at_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let key = tenant_with_key(data, "acme", "*");
    let server = serve(data, "");
    let internal_key = std::fs::read_to_string(data.join("internal.key")).unwrap();
    let listener = Listener::start().await;
    let api = Api::new(&server, &key);
    let d = data
        .display()
        .to_string()
        .trim_start_matches('/')
        .to_owned();

    let attempts = [
        ("api_key", format!("secret://file/{d}/internal.key")),
        ("chat_model", "secret://file/proc/self/environ".to_owned()),
        ("api_key", format!("secret://env/{HOST_ENV}")),
        ("chat_model", format!("secret://env/{HOST_ENV}")),
        (
            "api_key",
            "secret://vault/secret/platform/db#password".to_owned(),
        ),
        (
            "api_key",
            "secret://vault/secret/tenants/globex/ai#key".to_owned(),
        ),
        (
            "api_key",
            "secret://vault/secret/tenants/acme/../globex/ai#key".to_owned(),
        ),
        (
            "api_key",
            format!("secret://file/{d}/tenant-secrets/acme/../../internal.key"),
        ),
        (
            "api_key",
            format!("secret://file/{d}/tenant-secrets/acme/%2e%2e/%2e%2e/internal.key"),
        ),
    ];
    for (field, reference) in &attempts {
        let mut config = json!({"base_url": listener.base_url(), "chat_model": "m"});
        config[*field] = json!(reference);
        let (status, body) = api
            .post("/providers/ai/openai/configure", json!({"config": config}))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("secret_forbidden")),
            "{field} = {reference}: {body}"
        );
        assert_eq!(body["errors"][0]["pointer"], format!("/{field}"), "{body}");
        let text = body.to_string();
        for host in [data.display().to_string(), HOST_ENV_VALUE.to_owned()] {
            assert!(!text.contains(&host), "the refusal names the host: {text}");
        }
        chat(&api).await;
    }

    let received = listener.received();
    assert!(
        !received.contains(internal_key.trim()),
        "the internal key reached the tenant: {received}"
    );
    assert!(
        !received.contains(HOST_ENV_VALUE),
        "an environment variable of serve reached the tenant: {received}"
    );
    assert!(
        !received.contains("PATH="),
        "serve's environment reached the tenant: {received}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_reference_inside_the_tenants_own_directory_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let key = tenant_with_key(data, "acme", "*");
    let secrets = data.join("tenant-secrets");
    std::fs::create_dir_all(secrets.join("acme")).unwrap();
    std::fs::create_dir_all(secrets.join("globex")).unwrap();
    std::fs::write(secrets.join("acme/openai"), "sk-acme-own-key\n").unwrap();
    std::fs::write(secrets.join("globex/openai"), "sk-globex-key\n").unwrap();
    // A link inside acme's directory to a file outside it is an escape too.
    std::os::unix::fs::symlink(data.join("internal.key"), secrets.join("acme/link")).unwrap();
    let server = serve(
        data,
        &format!(
            "[tenancy.secrets]\nfile_dir = \"{}/{{tenant}}\"\n",
            secrets.display()
        ),
    );
    let listener = Listener::start().await;
    let api = Api::new(&server, &key);
    let configure = |reference: String| {
        let api = api.clone();
        let base_url = listener.base_url();
        async move {
            api.post(
                "/providers/ai/openai/configure",
                json!({"config": {"base_url": base_url, "chat_model": "m", "api_key": reference}}),
            )
            .await
        }
    };

    for escape in ["globex/openai", "acme/link", "acme/../globex/openai"] {
        let (status, body) =
            configure(format!("secret://file{}/{escape}", secrets.display())).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("secret_forbidden")),
            "{escape}: {body}"
        );
    }

    let own = format!("secret://file{}/acme/openai", secrets.display());
    let (status, body) = configure(own.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["values"]["api_key"], own, "{body}");
    let (status, body) = chat(&api).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = listener.received();
    assert!(
        received
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-acme-own-key"),
        "{received}"
    );
    assert!(!received.contains("sk-globex-key"), "{received}");
}

/// Defence in depth: a config stored before the scope existed (written straight into the
/// platform store, as an older version kept it) is refused when the instance starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_reference_stored_before_the_scope_is_refused_when_it_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let key = tenant_with_key(data, "acme", "*");
    let listener = Listener::start().await;
    {
        let store = switchyard_runtime::PlatformStore::open(data).await.unwrap();
        store
            .save_config(
                &switchyard_contracts::TenantId::parse("acme").unwrap(),
                "ai",
                "openai",
                &json!({"base_url": listener.base_url(), "chat_model": "m",
                        "api_key": format!("secret://env/{HOST_ENV}")}),
            )
            .await
            .unwrap();
    }
    let server = serve(data, "");
    let api = Api::new(&server, &key);
    let (status, body) = chat(&api).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    let (_, described) = api.get("/providers/ai/openai").await;
    assert_eq!(described["status"], "failed", "{described}");
    assert!(
        !described.to_string().contains(HOST_ENV_VALUE),
        "{described}"
    );
    let received = listener.received();
    assert!(!received.contains(HOST_ENV_VALUE), "{received}");
}
