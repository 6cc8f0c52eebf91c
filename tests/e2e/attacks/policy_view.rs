//! Issue 17, point 2: the policy judges what runs. With the repository's policy bundle a
//! developer key (scope `invoke`) may post journals up to the approval threshold (10,000) and
//! no further. Before the fix the gateway showed the policy the query string of any body sent
//! as `application/octet-stream`, while the runtime parsed the same body as JSON: a 50,000
//! journal sent that way with `?amount=1` was allowed and booked. Every content-type variant of
//! that posting is now refused (415 before the policy, or `policy_denied`) and the books do not
//! change — in process and with the runtime behind its own listener (`--dispatch http`); the
//! same holds for `configure`. Raw bytes still stream where an action takes them.

use crate::common::{Api, Server, cli, decode, policy_bundle, tenant_with_key, write_config};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// `serve` with the repository's policy, in process or with the runtime on its own listener.
fn serve(dir: &std::path::Path, http_dispatch: bool) -> Server {
    let bundle = policy_bundle(dir, "r1");
    let config = write_config(
        dir,
        &format!("[policy]\nbundle = \"{}\"\n", bundle.display()),
    );
    let mut args = vec!["--config", config.as_str()];
    if http_dispatch {
        args.extend(["--dispatch", "http", "--runtime-listen", "127.0.0.1:0"]);
    }
    Server::start_with(dir, &args)
}

/// The tenant's admin (scope `*`) and a developer (scope `invoke`).
fn keys(dir: &std::path::Path, server: &Server) -> (Api, Api) {
    let admin = Api::new(server, &tenant_with_key(dir, "acme", "*"));
    let developer = cli(
        dir,
        &["key", "create", "--tenant", "acme", "--scopes", "invoke"],
    );
    (admin, Api::new(server, developer.trim()))
}

fn journal(id: &str, amount: &str) -> Value {
    json!({"params": {
        "journal_id": id,
        "posting_time": "2026-03-01T09:00:00Z",
        "lines": [
            {"account": "1000", "debit": amount, "currency": "EUR"},
            {"account": "4000", "credit": amount, "currency": "EUR"},
        ],
    }})
}

async fn ledger_ok(api: &Api, action: &str, params: Value) -> Value {
    api.service_ok("ledger", action, params).await
}

/// The same JSON text dressed as each body a client could send, with the Content-Type it
/// declares (`None`: no header at all).
fn variants(json_text: &str) -> Vec<(Option<&'static str>, Vec<u8>)> {
    let multipart = format!(
        "--b\r\nContent-Disposition: form-data; name=\"envelope\"\r\nContent-Type: application/json\r\n\r\n{json_text}\r\n--b--\r\n"
    );
    let encoded: String = json_text
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let form = format!("envelope={encoded}");
    let text = json_text.as_bytes().to_vec();
    vec![
        (Some("application/octet-stream"), text.clone()),
        (Some("text/plain"), text.clone()),
        (Some("application/x-www-form-urlencoded"), text.clone()),
        (Some("application/x-www-form-urlencoded"), form.into_bytes()),
        (None, text.clone()),
        (Some("application/json; charset=utf-8"), text.clone()),
        (Some("APPLICATION/JSON"), text.clone()),
        (Some("application/vnd.acme+json"), text.clone()),
        (Some("application/json; charset=utf-16"), text.clone()),
        (Some("text/json"), text.clone()),
        (
            Some("multipart/form-data; boundary=b"),
            multipart.into_bytes(),
        ),
        (Some("application/octet-stream; charset=utf-8"), text),
    ]
}

/// Sends `body` to `path` with `content_type`; answers the status and the problem's code.
async fn send(
    api: &Api,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    idempotency_key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = api
        .raw()
        .post(format!("{}{path}", api.base))
        .bearer_auth(api.key())
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    decode(request.send().await.unwrap()).await
}

fn refused_before_running(status: StatusCode, body: &Value) -> bool {
    matches!(
        (status.as_u16(), body["code"].as_str()),
        (415, Some("unsupported_media_type")) | (403, Some("policy_denied"))
    )
}

async fn an_over_threshold_posting_is_refused_in_every_dress(http_dispatch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), http_dispatch);
    let (admin, developer) = keys(dir.path(), &server);
    for (code, kind) in [("1000", "asset"), ("4000", "income")] {
        ledger_ok(
            &admin,
            "create_account",
            json!({"code": code, "name": code, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
    // The developer may post below the threshold: the refusals below are about the amount.
    let (status, small) = developer
        .post("/services/ledger/post_journal", journal("SMALL", "250.00"))
        .await;
    assert_eq!(status, StatusCode::OK, "{small}");
    let books = ledger_ok(&admin, "trial_balance", json!({})).await;

    let mut attempts = Vec::new();
    for (n, (content_type, body)) in variants(&journal("ATTACK-N", "50000.00").to_string())
        .into_iter()
        .enumerate()
    {
        let id = format!("ATTACK-{n}");
        let body = String::from_utf8(body)
            .unwrap()
            .replace("ATTACK-N", &id)
            .into_bytes();
        for query in ["?amount=1", ""] {
            let path = format!("/services/ledger/post_journal{query}");
            let (status, answer) = send(&developer, &path, content_type, body.clone(), None).await;
            assert!(
                refused_before_running(status, &answer),
                "{content_type:?}{query} was not refused: {status} {answer}"
            );
        }
        attempts.push(id);
    }
    // An idempotency key makes the gateway read the body anyway; it changes nothing.
    let (status, answer) = send(
        &developer,
        "/services/ledger/post_journal?amount=1",
        Some("application/octet-stream"),
        journal("ATTACK-IDEM", "50000.00").to_string().into_bytes(),
        Some("attack-idem"),
    )
    .await;
    assert!(refused_before_running(status, &answer), "{status} {answer}");
    attempts.push("ATTACK-IDEM".into());
    // Malformed JSON is refused before the policy too, as the runtime would refuse it.
    let (status, answer) = send(
        &developer,
        "/services/ledger/post_journal",
        Some("application/json"),
        b"{\"params\": {".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (400, Some("request_invalid")),
        "{answer}"
    );

    assert_eq!(
        ledger_ok(&admin, "trial_balance", json!({})).await,
        books,
        "the books changed"
    );
    for id in attempts {
        let (status, found) = admin
            .post(
                "/services/ledger/get_journal",
                json!({"params": {"journal_id": id}}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id} was booked: {found}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_threshold_posting_is_refused_in_every_dress_in_process() {
    an_over_threshold_posting_is_refused_in_every_dress(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_threshold_posting_is_refused_in_every_dress_over_http_dispatch() {
    an_over_threshold_posting_is_refused_in_every_dress(true).await;
}

async fn configure_takes_json_only(http_dispatch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), http_dispatch);
    let (admin, _) = keys(dir.path(), &server);
    let path = "/providers/cache/memory/configure";
    let (status, body) = admin
        .post(path, json!({"config": {"max_value_bytes": 1000}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = || async {
        let (status, described) = admin.get("/providers/cache/memory").await;
        assert_eq!(status, StatusCode::OK, "{described}");
        described["config"].clone()
    };
    let before = stored().await;
    assert_eq!(before["values"]["max_value_bytes"], 1000, "{before}");
    let other = json!({"config": {"max_value_bytes": 2000}}).to_string();
    for (content_type, body) in variants(&other) {
        let json_type = content_type.is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            (ct.starts_with("application/json") || ct.starts_with("application/vnd.acme+json"))
                && !ct.contains("utf-16")
        });
        if json_type {
            continue;
        }
        let (status, answer) = send(&admin, path, content_type, body, None).await;
        assert_eq!(
            (status.as_u16(), answer["code"].as_str()),
            (415, Some("unsupported_media_type")),
            "{content_type:?}: {answer}"
        );
    }
    assert_eq!(stored().await, before, "the config changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn configure_takes_json_only_in_process() {
    configure_takes_json_only(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configure_takes_json_only_over_http_dispatch() {
    configure_takes_json_only(true).await;
}

/// Raw bytes still stream where the action takes them, judged by the query the runtime uses,
/// and arrive unchanged — also past the size the gateway reads whole, where the runtime checks
/// the gateway's tag on the streamed body (`--dispatch http`).
async fn raw_uploads_arrive_unchanged(http_dispatch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), http_dispatch);
    let (_, developer) = keys(dir.path(), &server);
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (status, put) = send(
        &developer,
        "/providers/storage/fs/put?key=big.bin",
        Some("application/octet-stream"),
        content.clone(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["data"]["size"], content.len(), "{put}");
    let (status, got) = developer
        .post(
            "/providers/storage/fs/get",
            json!({"params": {"key": "big.bin"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(got["data"]["content_base64"].as_str().unwrap())
        .unwrap();
    assert!(
        stored == content,
        "the stored object differs from the upload"
    );
    // Raw bytes are for actions that take bytes only.
    let (status, answer) = send(
        &developer,
        "/providers/storage/fs/get?key=big.bin",
        Some("application/octet-stream"),
        Vec::new(),
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), answer["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{}",
        answer["code"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_uploads_arrive_unchanged_in_process() {
    raw_uploads_arrive_unchanged(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_uploads_arrive_unchanged_over_http_dispatch() {
    raw_uploads_arrive_unchanged(true).await;
}
