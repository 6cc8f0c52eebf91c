//! One OpenMetrics registry per process (`prometheus-client`), shared by the gateway and the
//! runtime so that `switchyard serve` shows both on one `/metrics`.
//!
//! Every label value comes from a bounded set: tenants (created by an operator), the registered
//! domains, providers and actions, the stable error codes and a few fixed words. Callers must
//! pass only such values; the gateway maps anything it has not verified to [`OTHER`]. Request
//! ids, params and other free text never become labels, so the number of series stays
//! proportional to tenants × actions, not to traffic.
//!
//! Recording is lock-light: a family takes a read lock to find an existing series, and the
//! counters and histograms themselves are atomics.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
/// The handles of one series, for callers that keep them instead of looking them up by labels.
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

/// `SWITCHYARD_METRICS_TOKEN`, hashed, so that comparing it takes the same time whatever the
/// presented token shares with it.
static SCRAPE_TOKEN: LazyLock<Option<[u8; 32]>> = LazyLock::new(|| {
    std::env::var("SWITCHYARD_METRICS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(|t| Sha256::digest(t.as_bytes()).into())
});

/// Whether a scraper's `Authorization` header carries `SWITCHYARD_METRICS_TOKEN` as a bearer
/// token; `None` when no token is configured (each endpoint then decides who may scrape).
pub fn scrape_token_matches(authorization: Option<&str>) -> Option<bool> {
    let expected = SCRAPE_TOKEN.as_ref()?;
    Some(
        authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| Sha256::digest(token.as_bytes()).as_slice() == expected),
    )
}

/// The label value for anything unverified or unknown (an unauthenticated caller, a path that
/// names no registered provider): one series for all of them instead of one per guess.
pub const OTHER: &str = "_other";

/// The `code` of a successful call.
pub const OK: &str = "ok";

/// Latency buckets in seconds: sub-millisecond cache hits up to the default 30 s call timeout.
const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Who called what: the dimensions of every request and provider call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub tenant: String,
    pub domain: String,
    pub provider: String,
    pub action: String,
}

/// [`CallLabels`] plus how it ended: [`OK`] or a stable error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub tenant: String,
    pub domain: String,
    pub provider: String,
    pub action: String,
    pub code: String,
}

/// One tenant's instance of one provider.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub tenant: String,
    pub domain: String,
    pub provider: String,
}

/// A call the resilience layer refused before it reached the instance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    pub tenant: String,
    pub domain: String,
    pub provider: String,
    /// `bulkhead` (too many calls in flight) or `circuit_open`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub tenant: String,
    /// `allow` or `deny`.
    pub result: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

type Durations<L> = Family<L, Histogram, fn() -> Histogram>;

/// The gateway's view: every request, whatever answered it.
pub struct GatewayMetrics {
    pub requests: Family<OutcomeLabels, Counter>,
    pub duration: Durations<CallLabels>,
    pub rate_limited: Family<TenantLabels, Counter>,
    pub idempotency_replays: Family<TenantLabels, Counter>,
    pub policy_decisions: Family<DecisionLabels, Counter>,
    /// The decision log's upload to the operator's collector: batches by `outcome`
    /// (`uploaded`, `failed`), the decisions they carried, and those retention removed first.
    pub decision_upload_batches: Family<UploadLabels, Counter>,
    pub decisions_uploaded: Counter,
    pub decisions_not_uploaded: Counter,
    /// Decisions the retention purge deleted.
    pub decisions_purged: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UploadLabels {
    /// `uploaded` or `failed`.
    pub outcome: String,
}

/// The runtime's view: calls that reached a provider instance, and the resilience around them.
pub struct ProviderMetrics {
    pub calls: Family<OutcomeLabels, Counter>,
    pub duration: Durations<CallLabels>,
    /// 0 closed, 1 open (a half-open probe shows as open until it closes the circuit).
    pub circuit_state: Family<InstanceLabels, Gauge>,
    pub bulkhead_in_flight: Family<InstanceLabels, Gauge>,
    /// Attempts after the first (only `provider_unavailable` is retried).
    pub retries: Family<CallLabels, Counter>,
    pub rejected: Family<RejectionLabels, Counter>,
}

/// The hosted workers' view: which tenants this replica works for, and what their workers do.
pub struct WorkerMetrics {
    /// Tenants whose workers run on this replica (leases held).
    pub tenants_held: Gauge,
    /// Business events the hosted relays published.
    pub events_relayed: Family<TenantLabels, Counter>,
    /// Worker rounds that failed and will be tried again, by worker (`relay`, `annotator`).
    pub failed_rounds: Family<WorkerLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub tenant: String,
    pub worker: String,
}

pub struct Metrics {
    registry: Registry,
    pub gateway: GatewayMetrics,
    pub provider: ProviderMetrics,
    pub workers: WorkerMetrics,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let gateway = GatewayMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            rate_limited: Family::default(),
            idempotency_replays: Family::default(),
            policy_decisions: Family::default(),
            decision_upload_batches: Family::default(),
            decisions_uploaded: Counter::default(),
            decisions_not_uploaded: Counter::default(),
            decisions_purged: Counter::default(),
        };
        let provider = ProviderMetrics {
            calls: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            circuit_state: Family::default(),
            bulkhead_in_flight: Family::default(),
            retries: Family::default(),
            rejected: Family::default(),
        };
        let mut registry = Registry::with_prefix("switchyard");
        let g = registry.sub_registry_with_prefix("gateway");
        g.register(
            "requests",
            "Requests answered by the gateway, by tenant, target and outcome code",
            gateway.requests.clone(),
        );
        g.register(
            "request_duration_seconds",
            "Time from the first byte of a request to the end of its response",
            gateway.duration.clone(),
        );
        g.register(
            "rate_limited",
            "Requests refused with 429 by a tenant or credential budget",
            gateway.rate_limited.clone(),
        );
        g.register(
            "idempotency_replays",
            "Responses replayed for a repeated Idempotency-Key",
            gateway.idempotency_replays.clone(),
        );
        g.register(
            "policy_decisions",
            "Policy decisions by result",
            gateway.policy_decisions.clone(),
        );
        g.register(
            "decision_upload_batches",
            "Batches of the decision log POSTed to the operator's collector, by outcome",
            gateway.decision_upload_batches.clone(),
        );
        g.register(
            "decisions_uploaded",
            "Decisions the operator's collector acknowledged",
            gateway.decisions_uploaded.clone(),
        );
        g.register(
            "decisions_not_uploaded",
            "Decisions deleted (by retention, or with their tenant) before they were uploaded",
            gateway.decisions_not_uploaded.clone(),
        );
        g.register(
            "decisions_purged",
            "Decisions deleted past their tenant's retention",
            gateway.decisions_purged.clone(),
        );
        let p = registry.sub_registry_with_prefix("provider");
        p.register(
            "calls",
            "Provider calls by tenant, provider, action and outcome code",
            provider.calls.clone(),
        );
        p.register(
            "call_duration_seconds",
            "Time of a provider call, retries included",
            provider.duration.clone(),
        );
        p.register(
            "circuit_state",
            "Circuit breaker of a tenant's instance: 0 closed, 1 open",
            provider.circuit_state.clone(),
        );
        p.register(
            "bulkhead_in_flight",
            "Calls running in a tenant instance's bulkhead",
            provider.bulkhead_in_flight.clone(),
        );
        p.register(
            "retries",
            "Extra attempts of provider calls after provider_unavailable",
            provider.retries.clone(),
        );
        p.register(
            "rejected",
            "Provider calls refused by a full bulkhead or an open circuit, before any attempt",
            provider.rejected.clone(),
        );
        let workers = WorkerMetrics {
            tenants_held: Gauge::default(),
            events_relayed: Family::default(),
            failed_rounds: Family::default(),
        };
        let w = registry.sub_registry_with_prefix("workers");
        w.register(
            "tenants_held",
            "Tenants whose hosted workers run on this replica (their leases are held here)",
            workers.tenants_held.clone(),
        );
        w.register(
            "events_relayed",
            "Business events the hosted outbox relays published to the tenant's bus",
            workers.events_relayed.clone(),
        );
        w.register(
            "failed_rounds",
            "Hosted worker rounds that failed and will be tried again",
            workers.failed_rounds.clone(),
        );
        registry.register_collector(Box::new(DroppedLogLines));
        Metrics {
            registry,
            gateway,
            provider,
            workers,
        }
    }

    /// The whole registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Only the provider series of `domain/provider`, and only `tenant`'s when one is given:
    /// what `GET /providers/{domain}/{name}/metrics` shows a tenant. Metadata lines stay, so the
    /// answer is still valid OpenMetrics.
    pub fn encode_provider(&self, domain: &str, provider: &str, tenant: Option<&str>) -> String {
        let domain = format!("domain=\"{domain}\"");
        let provider = format!("provider=\"{provider}\"");
        let tenant = tenant.map(|t| format!("tenant=\"{t}\""));
        let mut out = String::new();
        for line in self.encode().lines() {
            let keep = if line.starts_with('#') {
                line.starts_with("# EOF")
                    || line
                        .split_whitespace()
                        .nth(2)
                        .is_some_and(|name| name.starts_with("switchyard_provider_"))
            } else {
                let labels = line.split_once('{').map_or("", |(_, rest)| rest);
                line.starts_with("switchyard_provider_")
                    && has_label(labels, &domain)
                    && has_label(labels, &provider)
                    && tenant.as_deref().is_none_or(|t| has_label(labels, t))
            };
            if keep {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// `switchyard_log_lines_dropped`: log lines the writer thread's full queue turned away
/// ([`crate::logs`]), read from its counter at each scrape.
#[derive(Debug)]
struct DroppedLogLines;

impl Collector for DroppedLogLines {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(crate::logs::dropped_lines());
        let metric = encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines dropped because the log writer could not keep up",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

/// The content type of [`Format::OpenMetrics`].
pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`Format::Prometheus`].
pub const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The two exposition formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0, what Prometheus asks for first.
    OpenMetrics,
    /// The classic text format 0.0.4, for clients that do not ask for OpenMetrics
    /// (`curl`, `promtool check metrics`).
    Prometheus,
}

impl Format {
    /// OpenMetrics when the `Accept` header names it, else the classic text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_TYPE,
            Format::Prometheus => PROMETHEUS_TYPE,
        }
    }

    /// `openmetrics` (as [`Metrics::encode`] writes it) in this format. The classic format
    /// names a counter's metadata after its `_total` samples and has no `# UNIT` or `# EOF`.
    pub fn render(self, openmetrics: String) -> String {
        if self == Format::OpenMetrics {
            return openmetrics;
        }
        let counters: Vec<&str> = openmetrics
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.strip_suffix(" counter"))
            .collect();
        let mut out = String::with_capacity(openmetrics.len());
        for line in openmetrics.lines() {
            if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
                continue;
            }
            let meta = ["# HELP ", "# TYPE "]
                .into_iter()
                .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
            match meta {
                Some((prefix, rest)) => {
                    let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                    out.push_str(prefix);
                    out.push_str(name);
                    if counters.contains(&name) {
                        out.push_str("_total");
                    }
                    out.push(' ');
                    out.push_str(tail);
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }
}

/// Whether `pair` (`name="value"`) is one of the comma-separated labels; a plain substring test
/// would let `tenant="acme"` match inside `xtenant="acme"` or `tenant="acme2"`'s neighbours.
fn has_label(labels: &str, pair: &str) -> bool {
    labels.match_indices(pair).any(|(at, _)| {
        let before = labels[..at].chars().last();
        let after = labels[at + pair.len()..].chars().next();
        matches!(before, None | Some(',')) && matches!(after, Some(',' | '}'))
    })
}

/// One provider call being timed; [`finish`](Self::finish) records its outcome. Holds the
/// instance's bulkhead gauge up while the call runs.
pub struct ProviderCall {
    labels: CallLabels,
    started: Instant,
    in_flight: Gauge,
    attempts: AtomicU32,
}

impl ProviderCall {
    pub fn begin(tenant: &str, domain: &str, provider: &str, action: &str) -> Self {
        let metrics = &global().provider;
        let in_flight = metrics
            .bulkhead_in_flight
            .get_or_create(&InstanceLabels {
                tenant: tenant.to_owned(),
                domain: domain.to_owned(),
                provider: provider.to_owned(),
            })
            .clone();
        in_flight.inc();
        ProviderCall {
            labels: CallLabels {
                tenant: tenant.to_owned(),
                domain: domain.to_owned(),
                provider: provider.to_owned(),
                action: action.to_owned(),
            },
            started: Instant::now(),
            in_flight,
            attempts: AtomicU32::new(0),
        }
    }

    /// Notes one attempt on the instance (the resilience layer may make several, or none).
    pub fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// `code` is `None` for a success, else the error's stable code; `circuit_open` tells why
    /// a call that never reached the instance was refused.
    pub fn finish(self, code: Option<&str>, circuit_open: bool) {
        let metrics = &global().provider;
        let attempts = self.attempts.load(Ordering::Relaxed);
        if attempts > 1 {
            metrics
                .retries
                .get_or_create(&self.labels)
                .inc_by(u64::from(attempts - 1));
        }
        if attempts == 0 && code.is_some() {
            metrics
                .rejected
                .get_or_create(&RejectionLabels {
                    tenant: self.labels.tenant.clone(),
                    domain: self.labels.domain.clone(),
                    provider: self.labels.provider.clone(),
                    reason: if circuit_open {
                        "circuit_open"
                    } else {
                        "bulkhead"
                    }
                    .to_owned(),
                })
                .inc();
        }
        metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
        let CallLabels {
            tenant,
            domain,
            provider,
            action,
        } = self.labels.clone();
        metrics
            .calls
            .get_or_create(&OutcomeLabels {
                tenant,
                domain,
                provider,
                action,
                code: code.unwrap_or(OK).to_owned(),
            })
            .inc();
    }
}

impl Drop for ProviderCall {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

/// Sets a tenant instance's circuit gauge (the runtime's breaker observer calls this).
pub fn circuit_state(tenant: &str, domain: &str, provider: &str, open: bool) {
    global()
        .provider
        .circuit_state
        .get_or_create(&InstanceLabels {
            tenant: tenant.to_owned(),
            domain: domain.to_owned(),
            provider: provider.to_owned(),
        })
        .set(i64::from(open));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_call_is_counted_timed_and_leaves_the_bulkhead() {
        let call = ProviderCall::begin("t-metrics", "cache", "memory", "get");
        for _ in 0..3 {
            call.attempt();
        }
        let gauge = InstanceLabels {
            tenant: "t-metrics".into(),
            domain: "cache".into(),
            provider: "memory".into(),
        };
        assert_eq!(
            global()
                .provider
                .bulkhead_in_flight
                .get_or_create(&gauge)
                .get(),
            1
        );
        call.finish(Some("timeout"), false);
        assert_eq!(
            global()
                .provider
                .bulkhead_in_flight
                .get_or_create(&gauge)
                .get(),
            0
        );
        let text = global().encode();
        assert!(text.contains(
            "switchyard_provider_calls_total{tenant=\"t-metrics\",domain=\"cache\",provider=\"memory\",action=\"get\",code=\"timeout\"} 1"
        ), "{text}");
        assert!(text.contains("switchyard_provider_call_duration_seconds_bucket{"));
        assert!(text.contains(
            "switchyard_provider_retries_total{tenant=\"t-metrics\",domain=\"cache\",provider=\"memory\",action=\"get\"} 2"
        ), "{text}");
        ProviderCall::begin("t-metrics", "cache", "memory", "get")
            .finish(Some("provider_unavailable"), true);
        assert!(global().encode().contains(
            "switchyard_provider_rejected_total{tenant=\"t-metrics\",domain=\"cache\",provider=\"memory\",reason=\"circuit_open\"} 1"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn the_provider_view_shows_one_provider_and_one_tenant() {
        ProviderCall::begin("t-view-a", "db", "sqlite", "query").finish(None, false);
        ProviderCall::begin("t-view-b", "db", "sqlite", "query").finish(None, false);
        ProviderCall::begin("t-view-a", "cache", "memory", "get").finish(None, false);
        let view = global().encode_provider("db", "sqlite", Some("t-view-a"));
        assert!(view.contains("tenant=\"t-view-a\",domain=\"db\",provider=\"sqlite\""));
        assert!(!view.contains("t-view-b"), "{view}");
        assert!(!view.contains("provider=\"memory\""), "{view}");
        assert!(!view.contains("switchyard_gateway_"), "{view}");
        assert!(view.contains("# TYPE switchyard_provider_calls counter"));
        assert!(view.ends_with("# EOF\n"));
    }

    #[test]
    fn dropped_log_lines_are_a_counter_of_the_registry() {
        let encoded = global().encode();
        assert!(
            encoded.contains("# TYPE switchyard_log_lines_dropped counter\n"),
            "{encoded}"
        );
        assert!(
            encoded.contains("\nswitchyard_log_lines_dropped_total 0\n"),
            "{encoded}"
        );
    }

    #[test]
    fn the_classic_format_names_counters_after_their_samples() {
        let om = "# HELP a_calls Calls.\n# TYPE a_calls counter\na_calls_total{x=\"1\"} 2\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n# EOF\n";
        assert_eq!(
            Format::Prometheus.render(om.to_owned()),
            "# HELP a_calls_total Calls.\n# TYPE a_calls_total counter\na_calls_total{x=\"1\"} 2\n# HELP b Gauge.\n# TYPE b gauge\nb 1\n"
        );
        assert_eq!(Format::OpenMetrics.render(om.to_owned()), om);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::negotiate(None), Format::Prometheus);
    }

    #[test]
    fn a_label_matches_whole_pairs_only() {
        let labels = "tenant=\"acme2\",domain=\"db\"}";
        assert!(!has_label(labels, "tenant=\"acme\""));
        assert!(has_label(labels, "tenant=\"acme2\""));
        assert!(has_label(labels, "domain=\"db\""));
        assert!(!has_label("xtenant=\"acme\"}", "tenant=\"acme\""));
    }
}
