//! A tenant's AI gateway: its model aliases and their targets, routing, budgets, prices,
//! guardrails, prompt templates, cache and audit. The derived schema is the published config
//! schema; [`parse`] builds what the instance runs from a config that passed it, refusing what
//! the schema cannot state (a regex that does not compile, a template that does not parse, a
//! target that names the gateway itself) with 422 `config_unprocessable`.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use switchyard_spi::{ErrorCode, ProviderError, parse_config};

use crate::cache::CacheConfig;
use crate::guard::{Guard, GuardConfig};
use crate::pick::{Backoff, CooldownPolicy};
use crate::redact::{RedactionConfig, RedactionRules};
use crate::template::{TemplateConfig, Templates};

/// An alias or model name as OpenAI's clients send it.
const MODEL_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$";
/// A target's provider: one of the tenant's ai engines, by name (`openai`, `anthropic`).
const PROVIDER_PATTERN: &str = r"^[a-z0-9][a-z0-9_-]{0,63}$";

/// The AI gateway of one tenant: nothing (no aliases: every call answers 404 for its model),
/// or its aliases and what governs them.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfigFields {
    /// Model names callers use (`"model": "smart"`), each mapped to targets among the
    /// tenant's ai providers.
    #[serde(default)]
    #[schemars(length(max = 256))]
    aliases: BTreeMap<String, AliasFields>,
    #[serde(default)]
    routing: RoutingFields,
    /// Budgets and rate limits, all enforced together: a call runs only when every one that
    /// applies has room for what it reserves.
    #[serde(default)]
    #[schemars(length(max = 64))]
    limits: Vec<LimitFields>,
    /// Price per million tokens, by target model, for budgets in money and the audit's cost.
    /// A model without a price costs 0.
    #[serde(default)]
    prices: BTreeMap<String, PriceFields>,
    /// The completion tokens reserved (and asked of the model as `max_tokens`) when a call
    /// names none; at most what the domain's `chat` takes (32768).
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1, max = 32_768))]
    default_max_tokens: u32,
    /// PII found in prompts is replaced by placeholders before they leave the platform.
    #[serde(default)]
    redact: RedactionConfig,
    /// Denied phrases and prompt-injection checks on prompts, denied phrases on answers.
    #[serde(default)]
    guard: GuardConfig,
    /// Prompt templates, each name in numbered versions, rendered here before the call.
    #[serde(default)]
    #[schemars(length(max = 256))]
    templates: Vec<TemplateConfig>,
    #[serde(default)]
    cache: CacheConfig,
    #[serde(default)]
    audit: AuditFields,
}

/// One alias: the targets it routes to.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AliasFields {
    /// Tried by weight first, then the others by descending weight when one fails with 429,
    /// 5xx or a timeout.
    #[schemars(length(min = 1, max = 16))]
    targets: Vec<TargetFields>,
    /// `chat` (chat completions) or `embedding` (embeddings).
    #[serde(default)]
    kind: Kind,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    /// The tenant's ai provider that serves it: `openai` for ai/openai, `anthropic`, …
    #[schemars(regex(pattern = PROVIDER_PATTERN))]
    provider: String,
    /// The model that provider is asked for.
    #[schemars(regex(pattern = MODEL_PATTERN))]
    model: String,
    /// The share of first picks this target gets; 0 makes it a fallback only.
    #[serde(default = "default_weight")]
    #[schemars(range(max = 1000))]
    weight: u32,
}

/// What an alias answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Chat,
    Embedding,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RoutingFields {
    /// Tries of one target after a timeout before falling back (a 429 or a 5xx falls back at
    /// once: the runtime has retried a 5xx already).
    #[serde(default = "default_retries")]
    #[schemars(range(max = 5))]
    retries: u32,
    /// The first retry's wait in milliseconds, doubled each retry, with jitter.
    #[serde(default = "default_backoff_ms")]
    #[schemars(range(min = 1, max = 10_000))]
    backoff_ms: u64,
    /// Consecutive failures after which a target cools down.
    #[serde(default = "default_failures")]
    #[schemars(range(min = 1, max = 100))]
    failures_to_cool: u32,
    /// How long a failing target is left out of the picks, in milliseconds.
    #[serde(default = "default_cooldown_ms")]
    #[schemars(range(max = 3_600_000))]
    cooldown_ms: u64,
    /// How long a streamed call waits for its first token before falling back, in
    /// milliseconds.
    #[serde(default = "default_first_token_ms")]
    #[schemars(range(min = 100, max = 120_000))]
    first_token_timeout_ms: u64,
}

impl Default for RoutingFields {
    fn default() -> Self {
        RoutingFields {
            retries: default_retries(),
            backoff_ms: default_backoff_ms(),
            failures_to_cool: default_failures(),
            cooldown_ms: default_cooldown_ms(),
            first_token_timeout_ms: default_first_token_ms(),
        }
    }
}

/// One budget or rate limit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitFields {
    /// Whose calls it counts: the whole tenant's, each API key's (or token subject's), or
    /// each end user's (the `user` field of OpenAI's request; calls without one are not
    /// counted by a user limit).
    pub scope: Scope,
    pub unit: Unit,
    /// The window the cap applies to, in UTC; `total` never resets.
    pub window: Window,
    /// Tokens, requests, or US dollars (up to six decimals).
    #[schemars(range(min = 0.0))]
    pub cap: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Tenant,
    Key,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Tokens,
    Requests,
    Usd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Minute,
    Hour,
    Day,
    Month,
    Total,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceFields {
    /// US dollars per million prompt tokens.
    #[schemars(range(min = 0.0, max = 10_000.0))]
    pub input: f64,
    /// US dollars per million completion tokens.
    #[schemars(range(min = 0.0, max = 10_000.0))]
    pub output: f64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AuditFields {
    /// Record one audit record per call (redacted prompt and answer, tokens, cost, route).
    #[serde(default = "yes")]
    enabled: bool,
    /// Keep the prompt and answer text in the record; without it only the counts.
    #[serde(default = "yes")]
    text: bool,
    /// Days a record is kept.
    #[serde(default = "default_retention_days")]
    #[schemars(range(min = 1, max = 3650))]
    retention_days: u32,
}

impl Default for AuditFields {
    fn default() -> Self {
        AuditFields {
            enabled: true,
            text: true,
            retention_days: default_retention_days(),
        }
    }
}

fn default_max_tokens() -> u32 {
    1024
}
fn default_weight() -> u32 {
    1
}
fn default_retries() -> u32 {
    1
}
fn default_backoff_ms() -> u64 {
    50
}
fn default_failures() -> u32 {
    1
}
fn default_cooldown_ms() -> u64 {
    30_000
}
fn default_first_token_ms() -> u64 {
    10_000
}
fn default_retention_days() -> u32 {
    30
}
fn yes() -> bool {
    true
}

/// One alias as it runs.
#[derive(Debug, Clone)]
pub struct Alias {
    pub name: String,
    pub kind: Kind,
    pub targets: Vec<Target>,
}

/// One target: `ai/<provider>` asked for `model`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `ai/<provider>`, as the tenant's client names it.
    pub provider: String,
    pub model: String,
    pub weight: u32,
    /// `<provider>/<model>`: what cooldowns and the audit name it by.
    pub id: String,
}

/// The audit settings that run.
#[derive(Debug, Clone, Copy)]
pub struct Audit {
    pub enabled: bool,
    pub text: bool,
    pub retention: Duration,
}

/// A tenant's gateway as it runs.
pub struct GatewayConfig {
    pub aliases: BTreeMap<String, Alias>,
    pub retries: u32,
    pub backoff: Backoff,
    pub cooldown: CooldownPolicy,
    pub first_token_timeout: Duration,
    pub limits: Vec<LimitFields>,
    pub prices: BTreeMap<String, PriceFields>,
    pub default_max_tokens: u32,
    pub redactor: RedactionRules,
    pub guard: Guard,
    pub templates: Templates,
    pub cache: CacheConfig,
    pub audit: Audit,
}

impl GatewayConfig {
    /// The price of a target model, if the tenant set one.
    pub fn price(&self, model: &str) -> Option<PriceFields> {
        self.prices.get(model).copied()
    }
}

fn unprocessable(pointer: &str, detail: impl Into<String>) -> ProviderError {
    ProviderError::field(ErrorCode::ConfigUnprocessable, pointer, detail)
}

/// Reads a config that passed the schema.
pub fn parse(config: Value) -> Result<GatewayConfig, ProviderError> {
    let raw: GatewayConfigFields = parse_config(config)?;
    let mut aliases = BTreeMap::new();
    let alias_name = regex::Regex::new(MODEL_PATTERN)
        .map_err(|e| ProviderError::internal(format!("alias pattern: {e}")))?;
    for (name, alias) in raw.aliases {
        if !alias_name.is_match(&name) {
            return Err(unprocessable(
                &format!("/aliases/{name}"),
                "an alias is 1 to 128 letters, digits and . _ : / @ -, starting with a letter or digit",
            ));
        }
        let mut targets = Vec::with_capacity(alias.targets.len());
        for (i, target) in alias.targets.into_iter().enumerate() {
            if target.provider == "gateway" {
                return Err(unprocessable(
                    &format!("/aliases/{name}/targets/{i}/provider"),
                    "a target cannot be the gateway itself",
                ));
            }
            targets.push(Target {
                id: format!("{}/{}", target.provider, target.model),
                provider: format!("ai/{}", target.provider),
                model: target.model,
                weight: target.weight,
            });
        }
        aliases.insert(
            name.clone(),
            Alias {
                name,
                kind: alias.kind,
                targets,
            },
        );
    }
    for (i, limit) in raw.limits.iter().enumerate() {
        if !limit.cap.is_finite() || limit.cap < 0.0 || limit.cap > 1e15 {
            return Err(unprocessable(
                &format!("/limits/{i}/cap"),
                "a cap is a finite number from 0 to 10^15",
            ));
        }
    }
    let redactor = RedactionRules::new(&raw.redact)
        .map_err(|e| unprocessable(&format!("/redact{}", e.pointer()), e.to_string()))?;
    let guard = Guard::new(&raw.guard).map_err(|e| unprocessable(&e.pointer(), e.to_string()))?;
    let templates =
        Templates::new(&raw.templates).map_err(|e| unprocessable("/templates", e.to_string()))?;
    let routing = raw.routing;
    Ok(GatewayConfig {
        aliases,
        retries: routing.retries,
        backoff: Backoff {
            base: Duration::from_millis(routing.backoff_ms),
            max: Duration::from_millis(routing.backoff_ms.saturating_mul(16)),
        },
        cooldown: CooldownPolicy {
            failures: routing.failures_to_cool,
            cooldown: Duration::from_millis(routing.cooldown_ms),
        },
        first_token_timeout: Duration::from_millis(routing.first_token_timeout_ms),
        limits: raw.limits,
        prices: raw.prices,
        default_max_tokens: raw.default_max_tokens,
        redactor,
        guard,
        templates,
        cache: raw.cache,
        audit: Audit {
            enabled: raw.audit.enabled,
            text: raw.audit.text,
            retention: Duration::from_secs(u64::from(raw.audit.retention_days) * 86_400),
        },
    })
}
