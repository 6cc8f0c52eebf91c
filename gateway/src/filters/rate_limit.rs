//! Rate limiting: request budgets per tenant and per caller (subject), checked once the caller
//! is authenticated, so a budget always belongs to verified credentials.
//!
//! Budgets follow GCRA (the generic cell rate algorithm, a token bucket without a refill timer):
//! a [`Quota`] of `requests` per `per_seconds` frees one request every `per_seconds / requests`
//! and lets up to `burst` requests through back to back.
//!
//! Budgets live in this process ([`governor`]) unless `redis_url` is set; then one Lua script
//! keeps them in Redis, so every gateway replica draws from the same budget.
//!
//! The answer carries the IETF draft `RateLimit-*` headers and, on refusal, `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::NotUntil;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use switchyard_contracts::tenant::TenantIdError;
use switchyard_contracts::{ErrorCode, Problem, TenantId};
use tokio::sync::OnceCell;

/// How long one Redis round trip (connecting included) may take before the store counts as
/// unreachable: the limiter sits on every request, so it must not stall requests for long.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// At most one warning per this interval about an unreachable Redis; an outage under load
/// would otherwise log once per request.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Local mode forgets callers whose budgets are full again every this many checks, so the
/// per-subject map does not grow with every key ever seen.
const PRUNE_EVERY: u64 = 4096;

/// The longest time a full burst may take to refill (one year). It keeps every time in
/// microseconds exact in Redis's Lua numbers and free of overflow here.
const MAX_WINDOW_MICROS: u64 = 366 * 24 * 3600 * 1_000_000;

/// Limits for the gateway; every field is optional and no budget is checked unless configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The budget of one tenant, shared by all of its callers: it protects the platform from
    /// one tenant. `None`: tenants are not limited as a whole (unless listed in `tenants`).
    pub per_tenant: Option<Quota>,
    /// The budget of one caller (an API key, token subject or certificate) within its
    /// tenant: it keeps one runaway client from using up its tenant's shared budget.
    pub per_subject: Option<Quota>,
    /// Tenant id → its own tenant budget, replacing `per_tenant` for that tenant (a tenant
    /// listed here is limited even when `per_tenant` is not set).
    pub tenants: HashMap<String, Quota>,
    /// A `redis://` URL. When set, budgets live in Redis and every gateway replica pointing
    /// at it shares them; otherwise each gateway process keeps its own budgets.
    pub redis_url: Option<String>,
    /// What to do while Redis cannot be reached: `true` (the default) lets requests through
    /// unlimited and logs a warning, since an outage of the limiter should not become an
    /// outage of the API; `false` refuses them with a retryable `internal` problem.
    pub fail_open: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_tenant: None,
            per_subject: None,
            tenants: HashMap::new(),
            redis_url: None,
            fail_open: true,
        }
    }
}

/// A request budget: `requests` per `per_seconds` on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Requests allowed per period; at least 1.
    pub requests: u32,
    /// The period in seconds; at least 1.
    pub per_seconds: u32,
    /// How many requests may arrive back to back after a quiet spell; at least 1. Defaults to
    /// `requests`, i.e. a caller may spend a whole period's budget at once.
    pub burst: Option<u32>,
}

/// Which budget a [`Verdict`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// The budget shared by all callers of the tenant.
    Tenant,
    /// The budget of the one caller (subject).
    Subject,
}

/// The outcome of one check, reported for the tighter of the budgets that apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// The budget the numbers below describe.
    pub budget: Budget,
    /// The budget's capacity: its burst size.
    pub limit: u32,
    /// Requests that may still be sent right now.
    pub remaining: u32,
    /// Seconds until the budget is full again if no further requests come (rounded up to the
    /// next freed request, so possibly slightly more than the exact time).
    pub reset_secs: u64,
    /// On refusal: whole seconds until the next request will be allowed, at least 1.
    pub retry_after_secs: Option<u64>,
}

impl Verdict {
    /// Headers to put on the response, allowed or refused: `RateLimit-Limit`,
    /// `RateLimit-Remaining`, `RateLimit-Reset` (IETF draft rate limit headers), and
    /// `Retry-After` on refusal.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", self.reset_secs.to_string()),
        ];
        if let Some(secs) = self.retry_after_secs {
            headers.push(("Retry-After", secs.to_string()));
        }
        headers
    }

    /// The 429 `rate_limited` problem to answer with; `None` when the request is allowed.
    pub fn problem(&self) -> Option<Problem> {
        if self.allowed {
            return None;
        }
        let whose = match self.budget {
            Budget::Tenant => "the tenant's shared request budget",
            Budget::Subject => "the request budget of these credentials",
        };
        let retry = self.retry_after_secs.unwrap_or(1);
        Some(Problem::new(
            ErrorCode::RateLimited,
            format!("{whose} is used up; retry in {retry} s"),
        ))
    }

    /// Of two verdicts, the one to report: a refusal over an allowance (the longer wait of two
    /// refusals), else the budget with fewer requests left.
    fn tighter(self, other: Verdict) -> Verdict {
        match (self.allowed, other.allowed) {
            (false, true) => self,
            (true, false) => other,
            (false, false) if self.retry_after_secs >= other.retry_after_secs => self,
            (false, false) => other,
            (true, true)
                if (self.remaining, other.reset_secs) <= (other.remaining, self.reset_secs) =>
            {
                self
            }
            (true, true) => other,
        }
    }
}

/// A validated [`Quota`] in the units both stores compute with.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    burst: u32,
    /// Time to free one request (the GCRA emission interval), in microseconds.
    interval_micros: u64,
    /// The same budget for the local store.
    quota: governor::Quota,
}

/// Why a `[rate_limit]` section is refused; each names the quota or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitConfigError {
    #[error("rate limit {0}: requests, per_seconds and burst must each be at least 1")]
    TooSmall(String),
    #[error("rate limit {0}: at most 1000000 requests per second are supported")]
    TooFast(String),
    #[error("rate limit {0}: a full burst must refill within a year")]
    RefillTooSlow(String),
    #[error("rate limit tenants: {0}")]
    Tenant(#[from] TenantIdError),
    #[error("rate limit redis_url {url:?}: {source}")]
    RedisUrl {
        url: String,
        #[source]
        source: redis::RedisError,
    },
}

impl Rate {
    fn parse(quota: &Quota, name: &str) -> Result<Rate, RateLimitConfigError> {
        let too_small = || RateLimitConfigError::TooSmall(name.to_owned());
        if quota.requests == 0 || quota.per_seconds == 0 {
            return Err(too_small());
        }
        let burst = NonZeroU32::new(quota.burst.unwrap_or(quota.requests)).ok_or_else(too_small)?;
        let interval_micros = u64::from(quota.per_seconds) * 1_000_000 / u64::from(quota.requests);
        let too_fast = || RateLimitConfigError::TooFast(name.to_owned());
        let one_per_interval = governor::Quota::with_period(Duration::from_micros(interval_micros))
            .ok_or_else(too_fast)?;
        match interval_micros.checked_mul(u64::from(burst.get())) {
            Some(window) if window <= MAX_WINDOW_MICROS => Ok(Rate {
                burst: burst.get(),
                interval_micros,
                quota: one_per_interval.allow_burst(burst),
            }),
            _ => Err(RateLimitConfigError::RefillTooSlow(name.to_owned())),
        }
    }

    fn allowed(self, budget: Budget, remaining: u32) -> Verdict {
        let remaining = remaining.min(self.burst);
        let refill = u64::from(self.burst - remaining) * self.interval_micros;
        Verdict {
            allowed: true,
            budget,
            limit: self.burst,
            remaining,
            reset_secs: ceil_secs(refill),
            retry_after_secs: None,
        }
    }

    fn refused(self, budget: Budget, wait_micros: u64) -> Verdict {
        let wait_micros = wait_micros.min(MAX_WINDOW_MICROS);
        let refill = wait_micros + u64::from(self.burst - 1) * self.interval_micros;
        Verdict {
            allowed: false,
            budget,
            limit: self.burst,
            remaining: 0,
            reset_secs: ceil_secs(refill).max(1),
            retry_after_secs: Some(ceil_secs(wait_micros).max(1)),
        }
    }
}

fn ceil_secs(micros: u64) -> u64 {
    micros.div_ceil(1_000_000)
}

/// Checks requests against the configured budgets; built once, shared by all requests.
pub struct RateLimiter {
    per_tenant: Option<Rate>,
    per_subject: Option<Rate>,
    tenants: HashMap<TenantId, Rate>,
    /// Budgets the platform operator set per tenant through `/admin` (its limits), over the
    /// file's: read from the store every second, so every replica follows a change.
    overrides: arc_swap::ArcSwap<HashMap<TenantId, Rate>>,
    store: Store,
}

enum Store {
    Local(LocalStore),
    Redis(RedisStore),
}

impl RateLimiter {
    /// Validates the quotas (and the Redis URL; no connection is made until the first check).
    pub fn new(config: RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        let per_tenant = config
            .per_tenant
            .map(|q| Rate::parse(&q, "per_tenant"))
            .transpose()?;
        let per_subject = config
            .per_subject
            .map(|q| Rate::parse(&q, "per_subject"))
            .transpose()?;
        let mut tenants = HashMap::new();
        for (tenant, quota) in &config.tenants {
            let id = TenantId::parse(tenant).map_err(RateLimitConfigError::Tenant)?;
            tenants.insert(id, Rate::parse(quota, &format!("tenants.{tenant}"))?);
        }
        let store = match config.redis_url {
            Some(url) => Store::Redis(RedisStore::new(&url, config.fail_open)?),
            None => Store::Local(LocalStore::new(per_tenant, per_subject, &tenants)),
        };
        Ok(RateLimiter {
            per_tenant,
            per_subject,
            tenants,
            overrides: Default::default(),
            store,
        })
    }

    /// Replaces the operator's per-tenant budgets; one that cannot be a budget (too fast,
    /// refilling too slowly) is left out with a warning and the file's budget applies.
    pub fn set_overrides(&self, budgets: impl IntoIterator<Item = (TenantId, Quota)>) {
        let overrides = budgets
            .into_iter()
            .filter_map(|(tenant, quota)| {
                let name = format!("limits of {tenant}");
                match Rate::parse(&quota, &name) {
                    Ok(rate) => Some((tenant, rate)),
                    Err(e) => {
                        tracing::warn!(error = %e, "a tenant's rate limit is not usable; the configured one applies");
                        None
                    }
                }
            })
            .collect();
        self.overrides.store(std::sync::Arc::new(overrides));
    }

    /// Spends one request of the caller's budgets. `Ok(None)` when no budget applies to this
    /// caller (or Redis is unreachable and `fail_open` is set); `Ok(Some(verdict))` otherwise,
    /// whose [`Verdict::problem`] is the refusal if it is one; `Err` only when Redis is
    /// unreachable and `fail_open` is off.
    ///
    /// A refused request spends nothing in Redis mode (both budgets are checked and updated in
    /// one atomic script). In local mode the caller's own budget is checked first, so a caller
    /// over its budget never drains the tenant's shared one; a request that the tenant budget
    /// refuses has still spent one request of the caller's own budget (`governor` cannot hand
    /// it back), which costs only that caller.
    pub async fn check(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Option<Verdict>, Problem> {
        let overrides = self.overrides.load();
        let operator_rate = overrides.get(tenant).copied();
        let tenant_rate = operator_rate
            .or_else(|| self.tenants.get(tenant).copied())
            .or(self.per_tenant);
        if tenant_rate.is_none() && self.per_subject.is_none() {
            return Ok(None);
        }
        match &self.store {
            Store::Local(local) => Ok(match operator_rate {
                Some(rate) => local.check_operator_budget(tenant, subject, rate, self.per_subject),
                None => local.check(tenant, subject, tenant_rate, self.per_subject),
            }),
            Store::Redis(redis) => {
                redis
                    .check(tenant, subject, tenant_rate, self.per_subject)
                    .await
            }
        }
    }
}

type KeyedLimiter<K> =
    governor::RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;
type DirectLimiter =
    governor::RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;
type Outcome = Result<StateSnapshot, NotUntil<<DefaultClock as Clock>::Instant>>;

/// Budgets in this process. Tenants with their own quota get a limiter of their own, since
/// one keyed `governor` limiter applies one quota to all its keys.
struct LocalStore {
    per_tenant: Option<KeyedLimiter<TenantId>>,
    tenants: HashMap<TenantId, DirectLimiter>,
    /// Limiters of the operator's per-tenant budgets, made on a tenant's first request and
    /// made again when its budget changes.
    operator: std::sync::Mutex<HashMap<TenantId, (Rate, std::sync::Arc<DirectLimiter>)>>,
    per_subject: Option<KeyedLimiter<(TenantId, String)>>,
    checks: AtomicU64,
}

impl LocalStore {
    fn new(
        per_tenant: Option<Rate>,
        per_subject: Option<Rate>,
        tenants: &HashMap<TenantId, Rate>,
    ) -> LocalStore {
        LocalStore {
            per_tenant: per_tenant
                .map(|rate| governor::RateLimiter::keyed(rate.quota).with_middleware()),
            tenants: tenants
                .iter()
                .map(|(tenant, rate)| {
                    let limiter = governor::RateLimiter::direct(rate.quota).with_middleware();
                    (tenant.clone(), limiter)
                })
                .collect(),
            per_subject: per_subject
                .map(|rate| governor::RateLimiter::keyed(rate.quota).with_middleware()),
            operator: Default::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// [`LocalStore::check`] with the operator's budget for the tenant.
    fn check_operator_budget(
        &self,
        tenant: &TenantId,
        subject: &str,
        rate: Rate,
        subject_rate: Option<Rate>,
    ) -> Option<Verdict> {
        let subject_verdict = self.check(tenant, subject, None, subject_rate);
        if subject_verdict.as_ref().is_some_and(|v| !v.allowed) {
            return subject_verdict;
        }
        let limiter = {
            let mut operator = self.operator.lock().unwrap_or_else(|e| e.into_inner());
            match operator.get(tenant) {
                Some((held, limiter)) if *held == rate => limiter.clone(),
                _ => {
                    let limiter = std::sync::Arc::new(
                        governor::RateLimiter::direct(rate.quota).with_middleware(),
                    );
                    operator.insert(tenant.clone(), (rate, limiter.clone()));
                    limiter
                }
            }
        };
        let tenant_verdict = verdict(rate, Budget::Tenant, limiter.check(), limiter.clock());
        Some(match subject_verdict {
            Some(s) => s.tighter(tenant_verdict),
            None => tenant_verdict,
        })
    }

    fn check(
        &self,
        tenant: &TenantId,
        subject: &str,
        tenant_rate: Option<Rate>,
        subject_rate: Option<Rate>,
    ) -> Option<Verdict> {
        self.prune_now_and_then();
        let subject_verdict = match (&self.per_subject, subject_rate) {
            (Some(limiter), Some(rate)) => {
                let outcome = limiter.check_key(&(tenant.clone(), subject.to_owned()));
                Some(verdict(rate, Budget::Subject, outcome, limiter.clock()))
            }
            _ => None,
        };
        if let Some(refused) = &subject_verdict
            && !refused.allowed
        {
            return subject_verdict;
        }
        let tenant_verdict = match (self.tenants.get(tenant), &self.per_tenant, tenant_rate) {
            (Some(limiter), _, Some(rate)) => Some(verdict(
                rate,
                Budget::Tenant,
                limiter.check(),
                limiter.clock(),
            )),
            (None, Some(limiter), Some(rate)) => {
                let outcome = limiter.check_key(tenant);
                Some(verdict(rate, Budget::Tenant, outcome, limiter.clock()))
            }
            _ => None,
        };
        match (subject_verdict, tenant_verdict) {
            (Some(s), Some(t)) => Some(s.tighter(t)),
            (s, t) => s.or(t),
        }
    }

    fn prune_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY != PRUNE_EVERY - 1 {
            return;
        }
        if let Some(limiter) = &self.per_tenant {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_subject {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn verdict(rate: Rate, budget: Budget, outcome: Outcome, clock: &DefaultClock) -> Verdict {
    match outcome {
        Ok(snapshot) => rate.allowed(budget, snapshot.remaining_burst_capacity()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(clock.now());
            let wait_micros = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
            // Round up so that waiting the reported time is always enough.
            let wait_micros =
                wait_micros.saturating_add(u64::from(wait.subsec_nanos() % 1000 != 0));
            rate.refused(budget, wait_micros)
        }
    }
}

/// GCRA over any number of budgets at once, atomically: every budget is tested, and only if all
/// allow the request are their new states written. Time comes from Redis, so replicas with
/// skewed clocks agree.
///
/// KEYS[i] is budget i; ARGV[2i-1] its emission interval and ARGV[2i] its burst. A budget's
/// state is its theoretical arrival time (TAT) in microseconds, kept only until the budget is
/// full again: an absent key is a full budget, so idle keys simply expire.
/// Answers one triple per budget: allowed (1/0), remaining requests, microseconds to wait.
const GCRA_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local answer = {}
local next_tats = {}
local all_allowed = true
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now) or now
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allowed_at = next_tat - burst * interval
  if now < allowed_at then
    all_allowed = false
    answer[i] = {0, 0, allowed_at - now}
  else
    next_tats[i] = next_tat
    answer[i] = {1, math.floor((now + burst * interval - next_tat) / interval), 0}
  end
end
if all_allowed then
  for i, key in ipairs(KEYS) do
    local ttl = math.ceil((next_tats[i] - now) / 1000)
    redis.call('SET', key, string.format('%.0f', next_tats[i]), 'PX', ttl)
  end
end
return answer
";

/// Budgets in Redis. The connection is made on first use (it needs the runtime) and then
/// reconnects by itself; until it is made, every check tries again.
struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    script: redis::Script,
    fail_open: bool,
    warnings: WarnThrottle,
}

impl RedisStore {
    fn new(url: &str, fail_open: bool) -> Result<RedisStore, RateLimitConfigError> {
        let client = redis::Client::open(url).map_err(|source| RateLimitConfigError::RedisUrl {
            url: url.to_owned(),
            source,
        })?;
        Ok(RedisStore {
            client,
            connection: OnceCell::new(),
            script: redis::Script::new(GCRA_SCRIPT),
            fail_open,
            warnings: WarnThrottle::new(),
        })
    }

    async fn check(
        &self,
        tenant: &TenantId,
        subject: &str,
        tenant_rate: Option<Rate>,
        subject_rate: Option<Rate>,
    ) -> Result<Option<Verdict>, Problem> {
        // `{tenant}` is a Redis Cluster hash tag: both keys of a check land on one node, as a
        // script touching several keys requires.
        let budgets: Vec<(Budget, Rate, String)> = [
            subject_rate.map(|rate| {
                let key = format!("switchyard:rl:{{{tenant}}}:subject:{subject}");
                (Budget::Subject, rate, key)
            }),
            tenant_rate.map(|rate| {
                (
                    Budget::Tenant,
                    rate,
                    format!("switchyard:rl:{{{tenant}}}:tenant"),
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        let answer = match tokio::time::timeout(REDIS_TIMEOUT, self.run_script(&budgets)).await {
            Ok(Ok(answer)) if answer.len() == budgets.len() => answer,
            Ok(Ok(answer)) => {
                return self.unavailable(&format!("unexpected script answer {answer:?}"));
            }
            Ok(Err(e)) => return self.unavailable(&e.to_string()),
            Err(_) => return self.unavailable("timed out"),
        };
        let verdicts =
            budgets
                .iter()
                .zip(answer)
                .map(|((budget, rate, _), (allowed, remaining, wait))| {
                    if allowed == 1 {
                        rate.allowed(*budget, u32::try_from(remaining).unwrap_or(0))
                    } else {
                        rate.refused(*budget, u64::try_from(wait).unwrap_or(0))
                    }
                });
        Ok(verdicts.reduce(Verdict::tighter))
    }

    async fn run_script(
        &self,
        budgets: &[(Budget, Rate, String)],
    ) -> redis::RedisResult<Vec<(i64, i64, i64)>> {
        let mut connection = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(REDIS_TIMEOUT)
                    .set_response_timeout(REDIS_TIMEOUT)
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await?
            .clone();
        let mut invocation = self.script.prepare_invoke();
        for (_, rate, key) in budgets {
            invocation
                .key(key)
                .arg(rate.interval_micros)
                .arg(rate.burst);
        }
        invocation.invoke_async(&mut connection).await
    }

    fn unavailable(&self, error: &str) -> Result<Option<Verdict>, Problem> {
        self.warnings.warn(error, self.fail_open);
        if self.fail_open {
            Ok(None)
        } else {
            Err(Problem::new(
                ErrorCode::Internal,
                "request budgets cannot be checked right now; retry shortly",
            )
            .with_retryable(true))
        }
    }
}

/// Logs at most one warning per [`WARN_EVERY`], counting the failures it kept quiet about.
struct WarnThrottle {
    started: Instant,
    next_warn_millis: AtomicU64,
    suppressed: AtomicU64,
}

impl WarnThrottle {
    fn new() -> WarnThrottle {
        WarnThrottle {
            started: Instant::now(),
            next_warn_millis: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    fn warn(&self, error: &str, fail_open: bool) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_warn_millis.load(Ordering::Relaxed);
        let next = now.saturating_add(u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX));
        let mine = now >= due
            && self
                .next_warn_millis
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if mine {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(
                error,
                fail_open,
                suppressed,
                "rate limit store (Redis) unreachable; {}",
                if fail_open {
                    "allowing requests unlimited"
                } else {
                    "refusing requests"
                }
            );
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
