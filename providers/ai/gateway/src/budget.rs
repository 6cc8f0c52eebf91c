//! Budgets and rate limits that cannot be overspent, on several replicas at once (ADR 37).
//!
//! Before a call, what it may spend at most is reserved in the platform store, in one
//! transaction over every limit that applies: the prompt's token bound
//! ([`crate::tokens::prompt_tokens_upper_bound`]) plus the `max_tokens` the model is held to,
//! one request, and their price at the dearest of the alias's targets. A limit without room
//! refuses the call before anything leaves. After the call the reservation is settled to what
//! the provider reported, so a budget's spend is the sum of reported usage, and at any moment
//! `spent + reserved <= cap`. LiteLLM checks spend after the call and syncs it every 60 s,
//! which lets replicas overspend together; here the store is the one counter.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_platform_store::{Charge, PlatformStore, Reserve};
use switchyard_spi::{CallContext, ErrorCode, ProviderError, TenantId};
use time::OffsetDateTime;

use crate::config::{Alias, LimitFields, PriceFields, Scope, Target, Unit, Window};
use crate::engine::{Gateway, store_error};
use crate::tokens::Usage;

/// Money is counted in millionths of a dollar, so that sums are exact.
const MICROS_PER_USD: f64 = 1_000_000.0;

/// What one call would spend at most, and who is charged.
pub struct Claim<'a> {
    /// The credential's subject (an API key's id, a token's subject).
    pub key: &'a str,
    /// The end user the caller named (OpenAI's `user` field).
    pub user: Option<&'a str>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The dearest price among the targets the call may reach.
    pub price: Option<PriceFields>,
}

/// One limit's part of a call: its bucket in the store and the amount charged to it.
pub struct Part {
    pub bucket: String,
    pub unit: Unit,
    pub window: Window,
    pub cap: i64,
    pub amount: i64,
    pub expires_at_ms: i64,
}

impl Part {
    pub fn charge(&self) -> Charge {
        Charge {
            bucket: self.bucket.clone(),
            cap: self.cap,
            amount: self.amount,
            expires_at_ms: self.expires_at_ms,
        }
    }

    /// What the call spent of this limit, once its usage is known.
    pub fn spent(
        &self,
        prompt_tokens: u64,
        completion_tokens: u64,
        price: Option<PriceFields>,
    ) -> i64 {
        amount(self.unit, prompt_tokens, completion_tokens, price)
    }

    /// A per-minute limit is a rate: its refusal is worth retrying soon (429 `rate_limited`).
    pub fn is_rate(&self) -> bool {
        self.window == Window::Minute
    }

    /// What a refusal tells the caller about this limit: its window and unit, never whose.
    pub fn describe(&self) -> Value {
        json!({"unit": unit_name(self.unit), "window": window_name(self.window)})
    }
}

/// The parts of every limit that applies to `claim` at `now`.
pub fn parts(limits: &[LimitFields], claim: &Claim, now: OffsetDateTime) -> Vec<Part> {
    limits
        .iter()
        .filter_map(|limit| {
            let who = match limit.scope {
                Scope::Tenant => "tenant".to_owned(),
                Scope::Key => format!("key:{}", claim.key),
                Scope::User => format!("user:{}", claim.user?),
            };
            let (start, expires_at_ms) = window_of(limit.window, now);
            let cap = match limit.unit {
                Unit::Usd => (limit.cap * MICROS_PER_USD).floor() as i64,
                Unit::Tokens | Unit::Requests => limit.cap.floor() as i64,
            };
            Some(Part {
                bucket: format!(
                    "{who}|{}|{}|{start}",
                    unit_name(limit.unit),
                    window_name(limit.window)
                ),
                unit: limit.unit,
                window: limit.window,
                cap,
                amount: amount(
                    limit.unit,
                    claim.prompt_tokens,
                    claim.completion_tokens,
                    claim.price,
                ),
                expires_at_ms,
            })
        })
        .collect()
}

/// How the operator's ceiling's bucket begins: no limit of the tenant's is named so (theirs
/// begin with their scope), so its config cannot reach it.
const CEILING: &str = "operator|";

/// The operator's daily token ceiling's part of a call.
fn ceiling_part(cap: u64, claim: &Claim, now: OffsetDateTime) -> Part {
    let (start, expires_at_ms) = window_of(Window::Day, now);
    Part {
        bucket: format!("{CEILING}tokens|day|{start}"),
        unit: Unit::Tokens,
        window: Window::Day,
        cap: i64::try_from(cap).unwrap_or(i64::MAX),
        amount: amount(
            Unit::Tokens,
            claim.prompt_tokens,
            claim.completion_tokens,
            None,
        ),
        expires_at_ms,
    }
}

/// A call's cost in millionths of a dollar, rounded up.
pub fn cost_micros(prompt_tokens: u64, completion_tokens: u64, price: Option<PriceFields>) -> i64 {
    // Dollars per million tokens are millionths of a dollar per token.
    price.map_or(0, |p| {
        (prompt_tokens as f64 * p.input + completion_tokens as f64 * p.output).ceil() as i64
    })
}

fn amount(unit: Unit, prompt: u64, completion: u64, price: Option<PriceFields>) -> i64 {
    match unit {
        Unit::Tokens => i64::try_from(prompt.saturating_add(completion)).unwrap_or(i64::MAX),
        Unit::Requests => 1,
        Unit::Usd => cost_micros(prompt, completion, price),
    }
}

/// The window's name in bucket keys (its UTC start) and when its bucket may be dropped.
fn window_of(window: Window, now: OffsetDateTime) -> (String, i64) {
    let date = now.date();
    let (start, end) = match window {
        Window::Minute => {
            let start = now
                .replace_nanosecond(0)
                .unwrap_or(now)
                .replace_second(0)
                .unwrap_or(now);
            (start, start + time::Duration::MINUTE)
        }
        Window::Hour => {
            let start = date
                .with_hms(now.hour(), 0, 0)
                .map(|t| t.assume_utc())
                .unwrap_or(now);
            (start, start + time::Duration::HOUR)
        }
        Window::Day => {
            let start = date.midnight().assume_utc();
            (start, start + time::Duration::DAY)
        }
        Window::Month => {
            let start = date.replace_day(1).unwrap_or(date).midnight().assume_utc();
            let next = match start.month() {
                time::Month::December => start
                    .replace_year(start.year() + 1)
                    .and_then(|s| s.replace_month(time::Month::January)),
                month => start.replace_month(month.next()),
            }
            .unwrap_or(start + time::Duration::days(31));
            (start, next)
        }
        Window::Total => return ("all".to_owned(), i64::MAX),
    };
    let millis = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
    (millis(start).to_string(), millis(end))
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Tokens => "tokens",
        Unit::Requests => "requests",
        Unit::Usd => "usd",
    }
}

fn window_name(window: Window) -> &'static str {
    match window {
        Window::Minute => "minute",
        Window::Hour => "hour",
        Window::Day => "day",
        Window::Month => "month",
        Window::Total => "total",
    }
}

/// How long a reservation holds when its replica dies mid-call, after which the sweep counts
/// it as spent: longer than any call or stream the gateway lets run.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// How often a replica sweeps the reservations of replicas that died.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// A reservation granted: its id, its parts, to settle after the call.
pub struct Held {
    id: String,
    parts: Vec<Part>,
}

/// Settles a reservation once: after the call with what it spent, or, when the call is
/// dropped before that (its caller went away, the runtime's call timeout cut it), as spent
/// whole, since the target may have been charged. A process that stops before either leaves
/// the lease to run out, and the sweep counts it as spent.
pub struct Settlement {
    store: PlatformStore,
    tenant: TenantId,
    held: Option<Held>,
}

impl Settlement {
    /// Moves each part from reserved to what the call spent: the reported usage at the price
    /// of the target that answered. Without a report (the target gave none) the reservation
    /// is spent whole: a budget never under-counts.
    pub async fn settle(mut self, usage: Option<Usage>, price: Option<PriceFields>) {
        if let Some(held) = self.held.take() {
            write(&self.store, &self.tenant, held, usage, price).await;
        }
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let (store, tenant) = (self.store.clone(), self.tenant.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { write(&store, &tenant, held, None, None).await });
        }
    }
}

async fn write(
    store: &PlatformStore,
    tenant: &TenantId,
    held: Held,
    usage: Option<Usage>,
    price: Option<PriceFields>,
) {
    let actual: Vec<(String, i64)> = held
        .parts
        .iter()
        .map(|part| {
            let spent = usage.map_or(part.amount, |u| {
                part.spent(u.prompt_tokens, u.completion_tokens, price)
            });
            (part.bucket.clone(), spent)
        })
        .collect();
    if let Err(e) = store.ai_settle(tenant, &held.id, &actual).await {
        tracing::error!(error = %e, tenant = %tenant, "ai budget reservation not settled; the sweep will count it as spent");
    }
}

/// Sweeps, on this replica, the reservations whose replica died, every [`SWEEP_EVERY`].
pub fn start_sweeper(store: PlatformStore) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_EVERY);
        loop {
            ticks.tick().await;
            if let Err(e) = store.ai_expire_reservations(crate::audit::now_ms()).await {
                tracing::warn!(error = %e, "ai budget sweep failed");
            }
        }
    });
}

impl Gateway {
    /// Reserves `prompt` + `completion` tokens, one request and their price at the dearest
    /// of `alias`'s targets in every limit that applies, or refuses the call: 429
    /// `rate_limited` for a per-minute limit (retry soon), 429 `budget_exceeded` otherwise.
    pub(crate) async fn reserve_tokens(
        &self,
        ctx: &CallContext,
        user: Option<&str>,
        alias: &Alias,
        prompt: u64,
        completion: u64,
    ) -> Result<Settlement, ProviderError> {
        let settlement = |held| Settlement {
            store: self.store.clone(),
            tenant: self.tenant.clone(),
            held,
        };
        // The operator may set this tenant's ceiling through /admin (its limits), read per
        // call so a change applies to the next call without restarting anything.
        let ceiling = self
            .store
            .tenant_limits(&self.tenant)
            .await
            .map_err(store_error)?
            .ai_tokens_per_day
            .or(self.ceiling);
        if self.config.limits.is_empty() && ceiling.is_none() {
            return Ok(settlement(None));
        }
        let price = alias
            .targets
            .iter()
            .filter_map(|t| self.config.price(&t.model))
            .max_by(|a, b| (a.input + a.output).total_cmp(&(b.input + b.output)));
        let claim = Claim {
            key: ctx.subject.as_deref().unwrap_or("anonymous"),
            user,
            prompt_tokens: prompt,
            completion_tokens: completion,
            price,
        };
        let now = OffsetDateTime::now_utc();
        let mut parts = parts(&self.config.limits, &claim, now);
        if let Some(cap) = ceiling {
            parts.push(ceiling_part(cap, &claim, now));
        }
        let charges: Vec<Charge> = parts.iter().map(Part::charge).collect();
        let id = uuid::Uuid::now_v7().to_string();
        let lease_until = crate::audit::now_ms() + LEASE.as_millis() as i64;
        let answer = self
            .store
            .ai_reserve(&self.tenant, &id, &charges, lease_until)
            .await
            .map_err(store_error)?;
        match answer {
            Reserve::Granted => Ok(settlement(Some(Held { id, parts }))),
            Reserve::Refused {
                bucket,
                cap,
                spent,
                reserved,
            } => {
                let part = parts.iter().find(|p| p.bucket == bucket);
                let (code, retryable) = match part {
                    Some(part) if part.bucket.starts_with(CEILING) => {
                        (ErrorCode::QuotaExceeded, false)
                    }
                    Some(part) if part.is_rate() => (ErrorCode::RateLimited, true),
                    _ => (ErrorCode::BudgetExceeded, false),
                };
                let what = part.map_or(json!({}), Part::describe);
                Err(ProviderError::new(
                    code,
                    format!(
                        "this call needs up to {} of a limit ({} per {}) with {} of {} spent and {} held by calls in flight",
                        part.map_or(0, |p| p.amount),
                        what["unit"].as_str().unwrap_or_default(),
                        what["window"].as_str().unwrap_or_default(),
                        spent,
                        cap,
                        reserved
                    ),
                )
                .with_retryable(retryable))
            }
        }
    }

    /// The price of the target that answered, if any did.
    pub(crate) fn price_of(&self, target: Option<&Target>) -> Option<PriceFields> {
        target.and_then(|t| self.config.price(&t.model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(scope: Scope, unit: Unit, window: Window, cap: f64) -> LimitFields {
        LimitFields {
            scope,
            unit,
            window,
            cap,
        }
    }

    #[test]
    fn each_limit_charges_its_own_bucket_and_unit() {
        let now = time::macros::datetime!(2026-12-07 10:42:17.5 UTC);
        let limits = [
            limit(Scope::Tenant, Unit::Tokens, Window::Day, 1000.0),
            limit(Scope::Key, Unit::Requests, Window::Minute, 60.0),
            limit(Scope::User, Unit::Usd, Window::Month, 2.5),
        ];
        let claim = Claim {
            key: "k1",
            user: Some("ann"),
            prompt_tokens: 30,
            completion_tokens: 100,
            price: Some(PriceFields {
                input: 1.0,
                output: 4.0,
            }),
        };
        let parts = parts(&limits, &claim, now);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].bucket, "tenant|tokens|day|1796601600000");
        assert_eq!((parts[0].cap, parts[0].amount), (1000, 130));
        assert_eq!(parts[1].bucket, "key:k1|requests|minute|1796640120000");
        assert_eq!(parts[1].expires_at_ms, 1796640180000);
        assert!(parts[1].is_rate());
        assert_eq!(parts[2].bucket, "user:ann|usd|month|1796083200000");
        assert_eq!((parts[2].cap, parts[2].amount), (2_500_000, 430));
        assert_eq!(parts[2].spent(10, 5, claim.price), 30);
        // No user named: user limits do not count the call.
        let anonymous = Claim {
            user: None,
            ..claim
        };
        assert_eq!(super::parts(&limits, &anonymous, now).len(), 2);
    }

    #[test]
    fn the_operator_s_ceiling_is_a_daily_token_bucket_no_tenant_limit_can_name() {
        let now = time::macros::datetime!(2026-12-07 10:42 UTC);
        let claim = Claim {
            key: "k1",
            user: None,
            prompt_tokens: 30,
            completion_tokens: 100,
            price: None,
        };
        let part = ceiling_part(5000, &claim, now);
        assert_eq!(part.bucket, "operator|tokens|day|1796601600000");
        assert_eq!((part.cap, part.amount), (5000, 130));
        assert!(!part.is_rate());
        // A tenant's limits begin with their scope, never with the operator's prefix.
        let limits = [
            limit(Scope::Tenant, Unit::Tokens, Window::Day, 1.0),
            limit(Scope::Key, Unit::Tokens, Window::Day, 1.0),
            limit(Scope::User, Unit::Tokens, Window::Day, 1.0),
        ];
        let named = Claim {
            key: "operator",
            user: Some("operator"),
            ..claim
        };
        assert!(
            parts(&limits, &named, now)
                .iter()
                .all(|p| !p.bucket.starts_with(CEILING))
        );
    }

    #[test]
    fn december_s_month_ends_in_january() {
        let (start, end) = window_of(Window::Month, time::macros::datetime!(2026-12-31 23:59 UTC));
        assert_eq!(start, "1796083200000");
        assert_eq!(end, 1798761600000);
        assert_eq!(
            window_of(Window::Total, OffsetDateTime::UNIX_EPOCH).1,
            i64::MAX
        );
    }
}
