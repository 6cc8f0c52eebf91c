//! A response-normalising shim in front of RustyVault, for tests only.
//!
//! RustyVault speaks the Vault HTTP API, but its replies omit `request_id` (and `warnings`,
//! `wrap_info`), which vaultrs requires, so `kv1::get` fails to parse. The shim forwards every
//! request unchanged and adds those envelope fields, with empty values, to JSON object replies
//! that lack them. It changes nothing else — data, status codes and headers pass through — so
//! what vaultrs reads is exactly what the real server stored. See docs/adr/0007.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// The real Vault behind the shim, from the test command's environment.
pub struct RealVault {
    pub addr: String,
    pub token: String,
}

impl RealVault {
    pub fn from_env() -> RealVault {
        let missing = |name| {
            format!("{name} is not set: run the suite with scripts/test (it starts RustyVault)")
        };
        RealVault {
            addr: std::env::var("SWITCHYARD_TEST_VAULT_ADDR")
                .unwrap_or_else(|_| panic!("{}", missing("SWITCHYARD_TEST_VAULT_ADDR"))),
            token: std::env::var("SWITCHYARD_TEST_VAULT_TOKEN")
                .unwrap_or_else(|_| panic!("{}", missing("SWITCHYARD_TEST_VAULT_TOKEN"))),
        }
    }

    /// Writes a KV v1 secret straight to the server (not through the shim).
    pub async fn put(&self, path: &str, data: serde_json::Value) {
        let status = reqwest::Client::new()
            .post(format!("{}/v1/{path}", self.addr))
            .header("x-vault-token", &self.token)
            .json(&data)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status.is_success(),
            "Vault write to {path} failed: {status}"
        );
    }
}

/// Starts the shim on a loopback port and returns its address.
pub async fn start_shim(upstream: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(client.clone(), upstream.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn forward(
    client: reqwest::Client,
    upstream: String,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let url = format!(
        "{upstream}{}",
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let token = req.headers().get("x-vault-token").cloned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut outgoing = client.request(method, url).body(body);
    if let Some(token) = token {
        outgoing = outgoing.header("x-vault-token", token.as_bytes());
    }
    let (status, bytes) = match outgoing.send().await {
        Ok(answer) => (
            answer.status().as_u16(),
            answer.bytes().await.unwrap_or_default(),
        ),
        Err(_) => (502, Bytes::new()),
    };
    let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut envelope)) => {
            for field in ["request_id", "warnings", "wrap_info"] {
                let empty = if field == "request_id" {
                    serde_json::json!("")
                } else {
                    serde_json::Value::Null
                };
                envelope.entry(field).or_insert(empty);
            }
            Bytes::from(serde_json::Value::Object(envelope).to_string())
        }
        _ => bytes,
    };
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
