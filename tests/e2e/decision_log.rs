//! The decision log for auditors through a real `serve`: its upload to an operator's
//! collector in OPA's decision-log format (every decision exactly once, through failures),
//! the auditors' export (their own tenant's decisions only), and retention per tenant.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Api, Idp, Server, cli, eventually, policy_bundle, tenant_with_key, write_config};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchyard_contracts::TenantId;
use switchyard_runtime::PlatformStore;
use switchyard_runtime::store::{DecisionRecord, TenantLimits};

const TOKEN: &str = "collector-token-e2e-7f3a9c";
const PASSWORD: &str = "hunter2-decision-log-e2e";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// One POST the collector took.
struct Received {
    content_type: Option<String>,
    content_encoding: Option<String>,
    authorization: Option<String>,
    /// The body as it arrived, gunzipped.
    text: String,
    events: Vec<Value>,
}

/// An OPA decision-log collector on a loopback port: answers 503 to the first `fail_first`
/// POSTs, then takes each gzipped JSON array with 200.
#[derive(Clone)]
struct Collector {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// Every POST, refused or taken.
    posts: Arc<AtomicUsize>,
}

impl Collector {
    async fn start(fail_first: usize) -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let collector = Collector {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            posts: Arc::default(),
        };
        let shared = collector.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| shared.clone().take(req, fail_first));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        collector
    }

    async fn take(
        self,
        req: Request<Incoming>,
        fail_first: usize,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, content_encoding, authorization) = (
            header("content-type"),
            header("content-encoding"),
            header("authorization"),
        );
        let path = req.uri().path().to_owned();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        if self.posts.fetch_add(1, Ordering::SeqCst) < fail_first {
            return Ok(Response::builder()
                .status(503)
                .body(Full::new(Bytes::from_static(b"busy")))
                .unwrap());
        }
        assert_eq!(path, "/logs");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .expect("a gzip body");
        let events: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
        self.received.lock().unwrap().push(Received {
            content_type,
            content_encoding,
            authorization,
            text,
            events,
        });
        Ok(Response::new(Full::new(Bytes::new())))
    }

    /// How often each decision id arrived.
    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for received in self.received.lock().unwrap().iter() {
            for event in &received.events {
                let id = event["decision_id"].as_str().unwrap().to_owned();
                *counts.entry(id).or_default() += 1;
            }
        }
        counts
    }

    fn event(&self, id: &str) -> Option<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.events.iter())
            .find(|e| e["decision_id"] == id)
            .cloned()
    }
}

async fn export(api: &Api, query: &str) -> (reqwest::StatusCode, Option<String>, String) {
    let response = api
        .raw()
        .get(format!("{}/policies/decisions/export?{query}", api.base))
        .bearer_auth(api.key())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, content_type, response.text().await.unwrap())
}

/// The decision ids of a JSON-lines export, each line checked to be `tenant`'s.
fn jsonl_ids(text: &str, tenant: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| {
            let d: Value = serde_json::from_str(line).unwrap();
            assert_eq!(d["tenant"], tenant, "{line}");
            d["decision_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `ms` as RFC 3339 in UTC, to the second (days to a civil date: H. Hinnant's algorithm).
fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The ids of the tenant's decisions taken before `before` (RFC 3339), as its auditor lists them.
async fn ids_before(api: &Api, before: &str) -> BTreeSet<String> {
    let (status, page) = api
        .get(&format!("/policies/decisions?to={before}&limit=500"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rfc3339_of_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_767_225_600_123), "2026-01-01T00:00:00Z");
    assert_eq!(
        rfc3339(951_782_400_000 + 86_399_000),
        "2000-02-29T23:59:59Z"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_are_uploaded_once_exported_per_tenant_and_purged_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::start();
    let collector = Collector::start(2).await;
    let bundle = policy_bundle(dir.path(), "r1");
    let token_file = dir.path().join("collector.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    // Every decision evaluated on the whole input, so the logged input is the masked request.
    let config = write_config(
        dir.path(),
        &format!(
            "{}[policy]\nbundle = \"{}\"\ndecision_cache_entries = 0\ndecision_purge_interval_ms = 300\n\
             [policy.decision_upload]\nurl = \"http://{}/logs\"\nbatch_max = 4\ninterval_ms = 100\n\
             max_backoff_ms = 300\nbearer_token_file = \"{}\"\nlabels = {{ environment = \"e2e\" }}\n",
            idp.oidc_config(),
            bundle.display(),
            collector.addr,
            token_file.display()
        ),
    );
    let server = Server::start_with(dir.path(), &["--config", &config]);
    let acme_admin = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));
    let globex_admin = Api::new(&server, &tenant_with_key(dir.path(), "globex", "*"));
    let auditor = |tenant: &str| {
        Api::new(
            &server,
            cli(
                dir.path(),
                &["key", "create", "--tenant", tenant, "--scopes", "audit"],
            )
            .trim(),
        )
    };
    let (acme_auditor, globex_auditor) = (auditor("acme"), auditor("globex"));

    // Allowed and denied calls in both tenants; one carries a password in its params.
    for admin in [&acme_admin, &globex_admin] {
        for _ in 0..3 {
            admin
                .ok("db/sqlite", "query", json!({"sql": "SELECT 1 AS one"}))
                .await;
        }
    }
    acme_admin
        .post(
            "/providers/db/sqlite/query",
            json!({"params": {"sql": "SELECT 1", "password": PASSWORD}}),
        )
        .await;
    let mut denied = BTreeMap::new();
    for tenant in ["acme", "globex"] {
        let clerk = Api::new(
            &server,
            &idp.token("carl", tenant, "read invoke", &["clerk"]),
        );
        let (status, body) = clerk
            .post(
                "/providers/db/sqlite/execute",
                json!({"params": {"sql": "DELETE FROM t"}}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (403, Some("policy_denied")),
            "{body}"
        );
        denied.insert(tenant, body["decision_id"].as_str().unwrap().to_owned());
    }

    // Export: each auditor gets its own tenant's decisions, and never the other's.
    tokio::time::sleep(Duration::from_millis(300)).await; // the log is written in batches
    let (status, content_type, acme_text) = export(&acme_auditor, "format=jsonl").await;
    assert_eq!(status, 200, "{acme_text}");
    assert_eq!(content_type.as_deref(), Some("application/x-ndjson"));
    let acme_ids = jsonl_ids(&acme_text, "acme");
    let (_, _, globex_text) = export(&globex_auditor, "").await;
    let globex_ids = jsonl_ids(&globex_text, "globex");
    assert!(acme_ids.contains(&denied["acme"]) && globex_ids.contains(&denied["globex"]));
    assert!(acme_ids.len() >= 5 && globex_ids.len() >= 4, "{acme_text}");
    assert!(acme_ids.is_disjoint(&globex_ids));
    let (status, content_type, csv) = export(&acme_auditor, "format=csv").await;
    assert_eq!(
        (status.as_u16(), content_type.as_deref()),
        (200, Some("text/csv"))
    );
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("decision_id,at_ms,tenant,subject,allowed,reasons,revision,input")
    );
    let csv_ids: BTreeSet<String> = rows
        .map(|row| {
            let fields: Vec<&str> = row.splitn(4, ',').collect();
            assert_eq!(fields[2], "acme", "{row}");
            fields[0].to_owned()
        })
        .collect();
    assert!(csv_ids.is_superset(&acme_ids) && csv_ids.is_disjoint(&globex_ids));
    assert!(!csv.contains(PASSWORD) && !acme_text.contains(PASSWORD));
    // A window after every decision holds none; the window is the caller's to choose, the
    // tenant is not.
    let later = rfc3339(now_ms() + 3_600_000);
    let (status, _, empty) = export(&acme_auditor, &format!("format=jsonl&from={later}")).await;
    assert_eq!((status.as_u16(), empty.as_str()), (200, ""));
    let (status, _, body) = export(&acme_auditor, "format=xml&tenant=globex").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("/format") && body.contains("/tenant"),
        "{body}"
    );
    let reader = Api::new(
        &server,
        cli(
            dir.path(),
            &["key", "create", "--tenant", "acme", "--scopes", "read"],
        )
        .trim(),
    );
    let (status, _, body) = export(&reader, "format=jsonl").await;
    assert_eq!(status, 403, "{body}");

    // Upload: the collector refused the first two POSTs; still every decision arrives, once.
    let (_, _, settled) = export(&acme_auditor, "").await;
    let mut expected = jsonl_ids(&settled, "acme");
    expected.extend(globex_ids.iter().cloned());
    let counts = eventually("every decision uploaded", Duration::from_secs(20), || {
        let counts = collector.counts();
        let all = expected.iter().all(|id| counts.contains_key(id));
        async move { all.then_some(counts) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts_after = collector.counts();
    let repeated: Vec<_> = counts_after.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "uploaded more than once: {repeated:?}");
    assert!(counts_after.len() >= counts.len());
    assert!(collector.posts.load(Ordering::SeqCst) >= 3);
    {
        let received = collector.received.lock().unwrap();
        assert!(received.iter().all(|r| r.events.len() <= 4), "batch_max");
        for r in received.iter() {
            assert_eq!(r.content_type.as_deref(), Some("application/json"));
            assert_eq!(r.content_encoding.as_deref(), Some("gzip"));
            assert_eq!(
                r.authorization.as_deref(),
                Some(format!("Bearer {TOKEN}").as_str())
            );
            assert!(!r.text.contains(PASSWORD), "an unmasked input was uploaded");
        }
        assert!(
            received
                .iter()
                .any(|r| r.text.contains("\"password\":\"***\"")),
            "the masked input is in the upload"
        );
    }
    for (tenant, id) in &denied {
        let event = collector.event(id).unwrap();
        assert_eq!(event["labels"]["tenant"], *tenant, "{event}");
        assert_eq!(event["labels"]["environment"], "e2e");
        assert!(
            event["labels"]["id"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(event["bundles"]["switchyard"]["revision"], "r1");
        assert_eq!(event["path"], "switchyard/authz/decision");
        assert_eq!(event["result"]["allow"], false, "{event}");
        assert_eq!(event["requested_by"], "oidc:carl");
        assert_eq!(event["input"]["tenant"], *tenant);
        let logged: Value = acme_text
            .lines()
            .chain(globex_text.lines())
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .find(|d| d["decision_id"] == id.as_str())
            .unwrap();
        let at = event["timestamp"].as_str().unwrap();
        let second = rfc3339(logged["at_ms"].as_i64().unwrap());
        assert!(
            at.starts_with(&second[..19]) && at.ends_with('Z'),
            "{at} is not {second}"
        );
    }
    let allowed = acme_ids
        .iter()
        .filter_map(|id| collector.event(id))
        .filter(|e| e["result"]["allow"] == true)
        .count();
    assert!(allowed >= 4);
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchyard_gateway_decision_upload_batches_total{outcome=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_gateway_decision_upload_batches_total{outcome=\"uploaded\"}")
    );
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("decision upload failed"), "{log}");
    assert!(!log.contains(TOKEN) && !log.contains(PASSWORD), "{log}");

    // Retention: acme keeps 1 day (its limit), globex the default 90. Decisions written with
    // old timestamps straight into the store go once the running gateway's purge comes by;
    // younger ones stay.
    let store = PlatformStore::open(dir.path()).await.unwrap();
    store
        .set_tenant_limits(
            &TenantId::parse("acme").unwrap(),
            &TenantLimits {
                decision_retention_days: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let now = now_ms();
    let old = |id: &str, tenant: &str, at_ms: i64| DecisionRecord {
        decision_id: id.into(),
        at_ms,
        tenant: tenant.into(),
        subject: "key:old".into(),
        allowed: true,
        reasons: vec![],
        revision: "r0".into(),
        input: json!({"tenant": tenant}),
        input_digest: None,
    };
    store
        .record_decisions(&[
            old("acme-2d", "acme", now - 2 * DAY_MS),
            old("acme-23h", "acme", now - DAY_MS + 3_600_000),
            old("globex-2d", "globex", now - 2 * DAY_MS),
            old("globex-91d", "globex", now - 91 * DAY_MS),
            old("globex-89d", "globex", now - 89 * DAY_MS),
        ])
        .await
        .unwrap();
    let before = rfc3339(now - 3_600_000);
    let (acme, globex) = (&acme_auditor, &globex_auditor);
    let kept = eventually("the purge", Duration::from_secs(10), || {
        let before = before.clone();
        async move {
            let acme = ids_before(acme, &before).await;
            let globex = ids_before(globex, &before).await;
            (!acme.contains("acme-2d") && !globex.contains("globex-91d")).then_some((acme, globex))
        }
    })
    .await;
    assert_eq!(kept.0, BTreeSet::from(["acme-23h".to_owned()]));
    assert_eq!(
        kept.1,
        BTreeSet::from(["globex-2d".to_owned(), "globex-89d".to_owned()])
    );
    // Today's decisions are all still there.
    let (_, _, today) = export(&acme_auditor, "").await;
    assert!(jsonl_ids(&today, "acme").is_superset(&acme_ids));
}
