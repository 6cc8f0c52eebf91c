//! Sends the decision log to the operator's collector in OPA's decision-log format
//! (docs/adr/0042): gzip-compressed JSON arrays of events, POSTed as OPA's agents do, so a
//! collector built for OPA takes Switchyard's decisions unchanged.
//!
//! Nothing is lost and little is repeated: the store numbers every decision in the order its
//! batch committed, and keeps the number of the last one the collector acknowledged (the
//! cursor). A batch is read after the cursor, sent, and only a 2xx moves the cursor past it; a
//! failure leaves it where it was and the same decisions go again after a backoff. A crash
//! between the 2xx and the move repeats that one batch. With several replicas, only the one
//! holding the `decision-upload` lease uploads; the cursor moves only from the value its
//! uploader read, so a replica that lost the lease mid-batch cannot move it back.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_platform_store::{DecisionRecord, PlatformStore, StoreError};
use switchyard_telemetry::metrics::{self, UploadLabels};

/// The lease that makes one replica the uploader.
pub const LEASE: &str = "decision-upload";
/// The bundle name in each event's `bundles`: the gateway runs one bundle.
const BUNDLE: &str = "switchyard";
/// Event labels Switchyard sets itself; the operator's `labels` may not name them.
const RESERVED_LABELS: [&str; 3] = ["id", "version", "tenant"];

/// `[policy.decision_upload]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionUploadConfig {
    /// The collector's endpoint, e.g. `http://collector:8080/logs` (OPA's default resource).
    pub url: String,
    /// Most decisions in one POST.
    #[serde(default = "default_batch_max")]
    pub batch_max: NonZeroU32,
    /// How long the uploader waits when everything is sent; a backlog goes without waiting.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Longest wait after failed attempts; the wait doubles from `interval_ms` up to it.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// How long one POST may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// A file holding the bearer token, read at every attempt (so a rotated token is used
    /// without a restart).
    pub bearer_token_file: Option<PathBuf>,
    /// An environment variable holding the bearer token, read at start.
    pub bearer_token_env: Option<String>,
    /// Labels added to every event (OPA's `labels`), e.g. `{ environment = "prod" }`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_batch_max() -> NonZeroU32 {
    NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN)
}

fn default_interval_ms() -> u64 {
    5_000
}

fn default_max_backoff_ms() -> u64 {
    60_000
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Why the upload's config cannot be used; never holds the token.
#[derive(Debug, thiserror::Error)]
pub enum UploadConfigError {
    #[error("[policy.decision_upload] url must be http:// or https://")]
    Url,
    #[error("[policy.decision_upload] takes bearer_token_file or bearer_token_env, not both")]
    TwoTokens,
    #[error("[policy.decision_upload] bearer_token_env: {0} is not set")]
    MissingEnv(String),
    #[error("[policy.decision_upload] labels: {0} is set by Switchyard")]
    ReservedLabel(String),
    #[error("[policy.decision_upload]: {0}")]
    Client(#[from] reqwest::Error),
}

/// Where the bearer token comes from. Its value is registered with the log redaction and
/// kept out of every message.
enum Token {
    None,
    Value(String),
    File(PathBuf),
}

/// Why one attempt failed. Neither the token nor the URL (which may carry credentials) is in
/// the message.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the bearer token file {}: {source}", path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the collector could not be reached: {0}")]
    Send(reqwest::Error),
    #[error("the collector answered HTTP {0}")]
    Status(reqwest::StatusCode),
}

pub struct DecisionUpload {
    store: PlatformStore,
    config: DecisionUploadConfig,
    client: reqwest::Client,
    token: Token,
    /// This process's name: the lease's holder and each event's `labels.id`, as an OPA
    /// agent's instance id.
    instance: String,
}

impl DecisionUpload {
    /// Checks the config and reads a token from the environment; nothing is sent yet.
    pub fn new(
        store: PlatformStore,
        config: &DecisionUploadConfig,
    ) -> Result<Self, UploadConfigError> {
        let token = check(config)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            // A collector that redirects is misconfigured; following it could carry the token
            // elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(DecisionUpload {
            store,
            config: config.clone(),
            client,
            token,
            instance: uuid::Uuid::now_v7().to_string(),
        })
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.config.interval_ms.max(10))
    }

    /// How long the lease lasts unrenewed: past the longest pause between two renewals (a
    /// backoff, then a POST that times out), so a live uploader never loses it.
    fn ttl_ms(&self) -> i64 {
        let longest =
            self.config.max_backoff_ms.max(self.config.interval_ms) + self.config.timeout_ms;
        i64::try_from(longest + 10_000).unwrap_or(i64::MAX)
    }

    /// Renews the lease, or takes it if free; false while another replica holds it. Renewal
    /// comes first even when the last round lost track of the lease (a store error), since
    /// this process may hold it still and could not take it again until it ran out.
    async fn hold(&self) -> Result<bool, StoreError> {
        let renewed = self
            .store
            .lease_renew(&self.instance, self.ttl_ms())
            .await?;
        if renewed.iter().any(|h| h.name == LEASE) {
            return Ok(true);
        }
        Ok(self
            .store
            .lease_acquire(LEASE, &self.instance, self.ttl_ms())
            .await?
            .is_some())
    }

    /// Sends the next batch after the cursor. `Some(full)`: a batch was acknowledged, and
    /// `full` says more may be waiting; `None`: nothing to send.
    async fn upload_next(&self) -> Result<Option<bool>, UploadError> {
        let cursor = self.store.decision_upload_cursor().await?;
        let batch_max = self.config.batch_max.get();
        let batch = self.store.decisions_after(cursor, batch_max).await?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(None);
        };
        let events: Vec<Value> = batch
            .iter()
            .map(|(_, decision)| opa_event(decision, &self.instance, &self.config.labels))
            .collect();
        let mut request = self
            .client
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gzip(&Value::Array(events)));
        if let Some(token) = self.token().await? {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| UploadError::Send(e.without_url()))?;
        if !response.status().is_success() {
            return Err(UploadError::Status(response.status()));
        }
        let gauges = &metrics::global().gateway;
        gauges
            .decision_upload_batches
            .get_or_create(&UploadLabels {
                outcome: "uploaded".into(),
            })
            .inc();
        gauges.decisions_uploaded.inc_by(batch.len() as u64);
        let missing = (last - cursor) as u64 - batch.len() as u64;
        if missing > 0 {
            gauges.decisions_not_uploaded.inc_by(missing);
            tracing::warn!(
                missing,
                "decisions were deleted (past their retention, or with their tenant) before they were uploaded"
            );
        }
        if !self
            .store
            .advance_decision_upload_cursor(cursor, last)
            .await?
        {
            tracing::info!("another replica moved the decision upload cursor; reading it again");
        }
        Ok(Some(batch.len() == batch_max as usize))
    }

    async fn token(&self) -> Result<Option<String>, UploadError> {
        match &self.token {
            Token::None => Ok(None),
            Token::Value(value) => Ok(Some(value.clone())),
            Token::File(path) => {
                let text = tokio::fs::read_to_string(path).await.map_err(|source| {
                    UploadError::TokenFile {
                        path: path.clone(),
                        source,
                    }
                })?;
                let token = text.trim().to_owned();
                switchyard_telemetry::logs::register_secret(&token);
                Ok(Some(token))
            }
        }
    }
}

#[async_trait]
impl BackgroundService for DecisionUpload {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        tracing::info!(instance = %self.instance, "decision log upload");
        let mut held = false;
        let mut failures: u32 = 0;
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
            held = match self.hold().await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "decision upload: the lease could not be taken or renewed");
                    false
                }
            };
            if !held {
                wait = self.interval();
                continue;
            }
            wait = match self.upload_next().await {
                Ok(Some(true)) => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(_) => {
                    failures = 0;
                    self.interval()
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if !matches!(e, UploadError::Store(_)) {
                        metrics::global()
                            .gateway
                            .decision_upload_batches
                            .get_or_create(&UploadLabels {
                                outcome: "failed".into(),
                            })
                            .inc();
                    }
                    let wait = backoff(
                        self.interval(),
                        Duration::from_millis(self.config.max_backoff_ms),
                        failures,
                    );
                    tracing::warn!(error = %e, attempt = failures, retry_in_ms = wait.as_millis() as u64, "decision upload failed; the batch is kept");
                    wait
                }
            };
        }
        if held
            && let Err(e) = self
                .store
                .lease_release(&self.instance, Some(&[LEASE.to_owned()]))
                .await
        {
            tracing::warn!(error = %e, "decision upload: the lease was not released; it runs out by itself");
        }
    }
}

/// What [`DecisionUpload::new`] refuses, and the token source it reads.
fn check(config: &DecisionUploadConfig) -> Result<Token, UploadConfigError> {
    if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
        return Err(UploadConfigError::Url);
    }
    if let Some(label) = config
        .labels
        .keys()
        .find(|k| RESERVED_LABELS.contains(&k.as_str()))
    {
        return Err(UploadConfigError::ReservedLabel(label.clone()));
    }
    match (&config.bearer_token_file, &config.bearer_token_env) {
        (Some(_), Some(_)) => Err(UploadConfigError::TwoTokens),
        (Some(path), None) => Ok(Token::File(path.clone())),
        (None, Some(name)) => {
            let value = std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| UploadConfigError::MissingEnv(name.clone()))?;
            switchyard_telemetry::logs::register_secret(&value);
            Ok(Token::Value(value))
        }
        (None, None) => Ok(Token::None),
    }
}

/// `interval` doubled per failure after the first, at most `longest`.
fn backoff(interval: Duration, longest: Duration, failures: u32) -> Duration {
    let doubled = interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(longest.max(interval))
}

/// One decision as an OPA decision-log event. `path` is the rule the gateway asks
/// ([`switchyard_policy::DECISION_RULE`] as OPA writes it), `result` that rule's value,
/// `requested_by` the credential that asked, and `labels.tenant` the tenant decided for. The
/// input is the one the decision log holds: masked before it was stored, and for a cached
/// decision the projection the policy read.
pub fn opa_event(
    decision: &DecisionRecord,
    instance: &str,
    extra_labels: &BTreeMap<String, String>,
) -> Value {
    let mut labels: Map<String, Value> = extra_labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    labels.insert("id".into(), instance.into());
    labels.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    labels.insert("tenant".into(), decision.tenant.as_str().into());
    let path = switchyard_policy::DECISION_RULE
        .trim_start_matches("data.")
        .replace('.', "/");
    json!({
        "labels": labels,
        "decision_id": decision.decision_id,
        "bundles": {BUNDLE: {"revision": decision.revision}},
        "path": path,
        "input": decision.input,
        "result": {"allow": decision.allowed, "reasons": decision.reasons},
        "requested_by": decision.subject,
        "timestamp": rfc3339_nanos(decision.at_ms),
    })
}

/// RFC 3339 with the fraction of a second (nanoseconds at most, trailing zeros left out), as
/// OPA writes its timestamps.
fn rfc3339_nanos(at_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn gzip(body: &Value) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut encoder, body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    fn decision() -> DecisionRecord {
        DecisionRecord {
            decision_id: "0190a8a0-0000-7000-8000-000000000001".into(),
            at_ms: 1_767_225_600_123,
            tenant: "acme".into(),
            subject: "key:k1".into(),
            allowed: false,
            reasons: vec!["no role grants invoke".into()],
            revision: "r7".into(),
            input: json!({"tenant": "acme", "resource": {"password": "***"}}),
            input_digest: None,
        }
    }

    #[test]
    fn a_decision_becomes_an_opa_event() {
        let labels = BTreeMap::from([("environment".to_owned(), "prod".to_owned())]);
        let event = opa_event(&decision(), "instance-1", &labels);
        assert_eq!(
            event,
            json!({
                "labels": {"id": "instance-1", "version": env!("CARGO_PKG_VERSION"),
                           "tenant": "acme", "environment": "prod"},
                "decision_id": "0190a8a0-0000-7000-8000-000000000001",
                "bundles": {"switchyard": {"revision": "r7"}},
                "path": "switchyard/authz/decision",
                "input": {"tenant": "acme", "resource": {"password": "***"}},
                "result": {"allow": false, "reasons": ["no role grants invoke"]},
                "requested_by": "key:k1",
                "timestamp": "2026-01-01T00:00:00.123Z"
            })
        );
        // OPA parses it as Go's RFC3339Nano: the fraction may have any digits.
        let whole_second = DecisionRecord {
            at_ms: 1_767_225_600_000,
            ..decision()
        };
        assert_eq!(
            opa_event(&whole_second, "i", &BTreeMap::new())["timestamp"],
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn a_batch_is_a_gzipped_json_array() {
        let events = Value::Array(vec![opa_event(&decision(), "i", &BTreeMap::new())]);
        let mut text = String::new();
        flate2::read::GzDecoder::new(gzip(&events).as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), events);
    }

    #[test]
    fn the_wait_doubles_after_each_failure_up_to_the_longest() {
        let waits: Vec<u64> = (1..=6)
            .map(|n| backoff(Duration::from_secs(5), Duration::from_secs(60), n).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(
            backoff(Duration::from_secs(5), Duration::from_secs(60), u32::MAX),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_config_refuses_two_tokens_reserved_labels_and_other_schemes() {
        let parse = |toml: &str| toml::from_str::<DecisionUploadConfig>(toml).unwrap();
        let two =
            parse("url = \"http://c/logs\"\nbearer_token_file = \"/t\"\nbearer_token_env = \"T\"");
        assert!(matches!(check(&two), Err(UploadConfigError::TwoTokens)));
        let reserved = parse("url = \"http://c/logs\"\nlabels = { tenant = \"x\" }");
        assert!(matches!(
            check(&reserved),
            Err(UploadConfigError::ReservedLabel(l)) if l == "tenant"
        ));
        assert!(matches!(
            check(&parse("url = \"ftp://c/logs\"")),
            Err(UploadConfigError::Url)
        ));
        let unset =
            parse("url = \"http://c/logs\"\nbearer_token_env = \"SWITCHYARD_TEST_UNSET_TOKEN\"");
        assert!(matches!(
            check(&unset),
            Err(UploadConfigError::MissingEnv(_))
        ));
        let defaults = parse("url = \"http://c/logs\"");
        assert_eq!(
            (
                defaults.batch_max.get(),
                defaults.interval_ms,
                defaults.timeout_ms
            ),
            (500, 5_000, 10_000)
        );
        assert!(
            toml::from_str::<DecisionUploadConfig>("url = \"http://c\"\nbatch_max = 0").is_err()
        );
    }

    /// A loopback collector: 503 to the first POST, then each gzipped array kept.
    async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
        use http_body_util::{BodyExt, Full};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/logs", listener.local_addr().unwrap());
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let posts = Arc::new(AtomicUsize::new(0));
        let kept = events.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (kept, posts) = (kept.clone(), posts.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (kept, posts) = (kept.clone(), posts.clone());
                            async move {
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let status = if posts.fetch_add(1, Ordering::SeqCst) == 0 {
                                    503
                                } else {
                                    let mut text = String::new();
                                    flate2::read::GzDecoder::new(&body[..])
                                        .read_to_string(&mut text)
                                        .unwrap();
                                    let batch: Vec<Value> = serde_json::from_str(&text).unwrap();
                                    kept.lock().unwrap().extend(batch);
                                    200
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(bytes::Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, events)
    }

    /// Two replicas on one store: one holds the lease and uploads, through a refused first
    /// POST, every decision exactly once; stopping gives the lease back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_replicas_one_uploads_and_every_decision_arrives_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = PlatformStore::open(dir.path()).await.unwrap();
        let (url, events) = collector().await;
        let config: DecisionUploadConfig = toml::from_str(&format!(
            "url = \"{url}\"\nbatch_max = 3\ninterval_ms = 20\nmax_backoff_ms = 50\n"
        ))
        .unwrap();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let replicas: Vec<_> = (0..2)
            .map(|_| {
                let upload = DecisionUpload::new(store.clone(), &config).unwrap();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { upload.start(shutdown).await })
            })
            .collect();
        let mut ids = BTreeSet::new();
        for batch in 0..5 {
            let records: Vec<DecisionRecord> = (0..2)
                .map(|i| DecisionRecord {
                    decision_id: format!("d{batch}-{i}"),
                    at_ms: 1_000 + batch,
                    ..decision()
                })
                .collect();
            ids.extend(records.iter().map(|r| r.decision_id.clone()));
            store.record_decisions(&records).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while events.lock().unwrap().len() < ids.len() {
            assert!(std::time::Instant::now() < deadline, "not all uploaded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let events = events.lock().unwrap().clone();
        let got: Vec<&str> = events
            .iter()
            .map(|e| e["decision_id"].as_str().unwrap())
            .collect();
        assert_eq!(got.len(), ids.len(), "uploaded more than once: {got:?}");
        assert_eq!(
            got.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            ids
        );
        let uploaders: BTreeSet<&str> = events
            .iter()
            .map(|e| e["labels"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(uploaders.len(), 1, "{uploaders:?}");
        assert_eq!(store.decision_upload_cursor().await.unwrap(), 10);
        stop.send(true).unwrap();
        for replica in replicas {
            replica.await.unwrap();
        }
        assert!(store.lease_holders(LEASE).await.unwrap().is_empty());
    }
}
