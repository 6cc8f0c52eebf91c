//! Hole 7 of issue 17: stored config is echoed. A literal credential where a `secret://`
//! reference belongs is refused (400 `secret_required`); a literal stored before that rule is
//! shown masked to `read` keys and in the console, references are shown as written; the
//! decision log masks every secret-bearing field; an auditor downloads only its own tenant's
//! part of the policy bundle.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_contracts::TenantId;
use switchyard_runtime::PlatformStore;

use crate::common::{
    Api, POLICIES, Server, cli, free_port, postgres_admin_url, tenant_with_key, write_config,
};

const LOOPBACK: &str = "[tenancy.egress]\nallowed_networks = [\"127.0.0.0/8\"]\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_literal_credential_is_refused_where_a_reference_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let admin = postgres_admin_url();
    let host = admin
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap()
        .to_owned();
    let key = tenant_with_key(dir.path(), "acme", "*");
    let reader = cli(
        dir.path(),
        &["key", "create", "--tenant", "acme", "--scopes", "read"],
    );
    let config = write_config(dir.path(), LOOPBACK);
    let port = free_port();
    let server = Server::spawn_with_env(
        dir.path(),
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
            &config,
        ],
        port,
        &mut vec![
            ("SWITCHYARD_POSTGRES_URL", admin.clone()),
            (
                "SWITCHYARD_POSTGRES_APP_PASSWORD",
                "config-echo-app".to_owned(),
            ),
        ],
    );
    let api = Api::new(&server, &key);

    let literals = [
        (
            "db/postgres",
            json!({"mode": "siloed", "dsn": format!("postgres://postgres:hunter2-literal@{host}/postgres")}),
            "/dsn",
        ),
        (
            "ai/openai",
            json!({"base_url": "http://127.0.0.1:1/v1", "api_key": "sk-literal-key"}),
            "/api_key",
        ),
        (
            "ai/openai",
            json!({"base_url": "http://ann:url-pw-literal@127.0.0.1:1/v1"}),
            "/base_url",
        ),
        (
            "integration/webhook",
            json!({"endpoints": {"erp": {"url": "https://ann:hook-pw-literal@hooks.example/in",
                                         "secret": "secret://vault/secret/tenants/acme/erp#whsec"}}}),
            "/endpoints/erp/url",
        ),
    ];
    for (provider, config, pointer) in &literals {
        let (status, body) = api
            .post(
                &format!("/providers/{provider}/configure"),
                json!({"config": config}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("secret_required")),
            "{provider} {config}: {body}"
        );
        assert_eq!(body["errors"][0]["pointer"], *pointer, "{body}");
    }
    let read = Api::new(&server, reader.trim());
    for provider in ["db/postgres", "ai/openai", "integration/webhook"] {
        let (status, body) = read.get(&format!("/providers/{provider}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = body.to_string();
        for literal in [
            "hunter2-literal",
            "sk-literal-key",
            "url-pw-literal",
            "hook-pw-literal",
        ] {
            assert!(
                !text.contains(literal),
                "{provider} echoes {literal}: {text}"
            );
        }
    }
}

/// A config written before the rule (straight into the platform store, as an older version
/// would have kept it): its literals are masked wherever it is read back, its references shown.
#[tokio::test(flavor = "multi_thread")]
async fn read_back_shows_references_and_masks_literals_stored_before() {
    let dir = tempfile::tempdir().unwrap();
    let reader = tenant_with_key(dir.path(), "acme", "read");
    let reference = "secret://vault/secret/tenants/acme/erp#whsec";
    {
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let acme = TenantId::parse("acme").unwrap();
        store
            .save_config(
                &acme,
                "ai",
                "openai",
                &json!({"base_url": "http://ann:url-pw-stored@127.0.0.1:1/v1",
                        "api_key": "sk-stored-literal", "chat_model": "m"}),
            )
            .await
            .unwrap();
        store
            .save_config(
                &acme,
                "integration",
                "webhook",
                &json!({"endpoints": {"erp": {"url": "https://ann:hook-pw-stored@hooks.example/in",
                                              "secret": reference}}}),
            )
            .await
            .unwrap();
    }
    let server = Server::start_with(
        dir.path(),
        &["--config", &write_config(dir.path(), LOOPBACK)],
    );
    let read = Api::new(&server, &reader);
    let stored = ["url-pw-stored", "sk-stored-literal", "hook-pw-stored"];

    let (status, openai) = read.get("/providers/ai/openai").await;
    assert_eq!(status, StatusCode::OK, "{openai}");
    let (status, webhook) = read.get("/providers/integration/webhook").await;
    assert_eq!(status, StatusCode::OK, "{webhook}");
    for body in [&openai, &webhook] {
        let text = body.to_string();
        for literal in stored {
            assert!(!text.contains(literal), "{literal} echoed: {text}");
        }
    }
    assert_eq!(
        webhook["config"]["values"]["endpoints"]["erp"]["secret"],
        reference
    );
    assert_eq!(openai["config"]["values"]["chat_model"], "m");

    // The console, signed in with the same read key, shows the same.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = browser
        .post(format!("{}/console/sign-in", server.base))
        .form(&[("credential", reader.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for provider in ["ai/openai", "integration/webhook"] {
        let page = browser
            .get(format!("{}/console/providers/{provider}", server.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        for literal in stored {
            assert!(
                !page.contains(literal),
                "the console shows {literal}: {page}"
            );
        }
        if provider == "integration/webhook" {
            assert!(page.contains(reference), "{page}");
        }
    }
}

/// The repository's policies with overrides for two tenants, built into a bundle.
fn bundle_with_overrides(dir: &Path) -> String {
    let source = dir.join("policies");
    std::fs::create_dir_all(source.join("switchyard")).unwrap();
    for file in ["authz.rego", "authz_test.rego"] {
        std::fs::copy(
            Path::new(POLICIES).join("switchyard").join(file),
            source.join("switchyard").join(file),
        )
        .unwrap();
    }
    let mut data: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(POLICIES).join("data.json")).unwrap(),
    )
    .unwrap();
    data["switchyard"]["tenants"] = json!({
        "acme": {"deny_actions": ["cache/memory/delete"]},
        "globex": {"deny_actions": ["db/sqlite/execute"], "roles": {"globex_night_shift": []}},
    });
    std::fs::write(source.join("data.json"), data.to_string()).unwrap();
    let out = dir.join("bundle.tar.gz");
    cli(
        dir,
        &[
            "policy",
            "build",
            "--dir",
            source.to_str().unwrap(),
            "--revision",
            "echo-r1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    out.to_str().unwrap().to_owned()
}

/// Every `data.json` of a downloaded bundle, merged by path.
fn bundle_data(bytes: &[u8]) -> Vec<Value> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut data = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with("data.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            data.push(serde_json::from_str(&text).unwrap());
        }
    }
    data
}

#[tokio::test(flavor = "multi_thread")]
async fn auditors_see_only_their_tenant_and_the_decision_log_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = bundle_with_overrides(dir.path());
    let config = write_config(
        dir.path(),
        &format!("{LOOPBACK}[policy]\nbundle = \"{bundle}\"\npoll_interval_ms = 200\n"),
    );
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let acme_admin = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let acme_auditor = Api::new(
        &server,
        cli(
            dir.path(),
            &["key", "create", "--tenant", "acme", "--scopes", "audit"],
        )
        .trim(),
    );
    let globex_auditor = Api::new(&server, &tenant_with_key(dir.path(), "globex", "audit"));

    for (auditor, own, other) in [
        (&globex_auditor, "globex", "acme"),
        (&acme_auditor, "acme", "globex"),
    ] {
        let served = auditor
            .raw()
            .get(format!("{}/policies/bundle", server.base))
            .bearer_auth(auditor.key())
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.headers()["x-bundle-revision"], "echo-r1");
        let bytes = served.bytes().await.unwrap();
        let data = bundle_data(&bytes);
        assert!(!data.is_empty());
        let text = serde_json::to_string(&data).unwrap();
        assert!(
            !text.contains(other),
            "{own}'s auditor sees {other}: {text}"
        );
        let tenants: Vec<&Value> = data
            .iter()
            .map(|d| &d["switchyard"]["tenants"])
            .filter(|t| !t.is_null())
            .collect();
        assert!(
            tenants.iter().any(|t| t[own].is_object()),
            "{own}'s own overrides are missing: {text}"
        );
    }

    // A careless admin posts credentials in a configure body; the policy judges it and the
    // decision log keeps what the policy read of it, masked.
    // Each field with its value and the part of it that must not be kept.
    let literals = [
        (
            "dsn",
            "postgres://u:dsn-pw-literal@db.example/x",
            "dsn-pw-literal",
        ),
        ("api_key", "sk-decision-literal", "sk-decision-literal"),
        (
            "client_secret",
            "client-secret-literal",
            "client-secret-literal",
        ),
        (
            "secret_access_key",
            "s3-secret-literal",
            "s3-secret-literal",
        ),
        (
            "base_url",
            "http://ann:url-pw-decision@127.0.0.1:1/v1",
            "url-pw-decision",
        ),
    ];
    let config: serde_json::Map<String, Value> = literals
        .iter()
        .map(|(k, v, _)| ((*k).to_owned(), json!(v)))
        .collect();
    let (status, _) = acme_admin
        .post("/providers/ai/openai/configure", json!({"config": config}))
        .await;
    assert!(status.is_client_error());
    let deadline = Instant::now() + Duration::from_secs(10);
    let decisions = loop {
        let (status, body) = acme_auditor.get("/policies/decisions?limit=500").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let logged = body["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["input"]["provider"] == "openai" && d["input"]["action"] == "configure");
        if logged || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = decisions.to_string();
    assert!(text.contains(r#""action":"configure""#), "{text}");
    for (field, _, secret) in literals {
        assert!(
            !text.contains(secret),
            "the decision log keeps {field}: {text}"
        );
    }
}

/// Every field a built-in provider's config schema marks secret-bearing is one the decision
/// log masks by name, or sits inside one it masks whole (integration/rest's
/// `auth.api_key.key`), so a configure body that carries one is never logged in clear.
#[test]
fn every_secret_bearing_config_field_is_masked_in_the_decision_log() {
    let masked = switchyard_gateway::filters::policy::SECRET_FIELDS;
    /// Pushes the secret-bearing property names not masked by an enclosing property.
    fn marked(schema: &Value, masked: &[&str], found: &mut Vec<String>) {
        if !schema.is_object() {
            return;
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, property) in properties {
                if property["x-secret"] == json!(true) {
                    found.push(name.clone());
                }
                // A masked property is logged as "***", whatever it holds.
                if !masked.contains(&name.as_str()) {
                    marked(property, masked, found);
                }
            }
        }
        for child in schema["$defs"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            marked(child, masked, found);
        }
        for variants in ["oneOf", "anyOf", "allOf"] {
            for child in schema[variants].as_array().into_iter().flatten() {
                marked(child, masked, found);
            }
        }
        for child in ["additionalProperties", "items"] {
            marked(&schema[child], masked, found);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut found = Vec::new();
    for d in switchyard::builtin_registry(
        dir.path(),
        switchyard::no_policy(),
        &Default::default(),
        None,
    )
    .unwrap()
    .descriptors()
    {
        marked(&d.config_schema, masked, &mut found);
    }
    assert!(found.len() >= 2, "{found:?}");
    for field in found {
        assert!(masked.contains(&field.as_str()), "{field} is not masked");
    }
}
