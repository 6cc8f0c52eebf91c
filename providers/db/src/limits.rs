//! The bounds of the engines' integer settings, read by both the config parser and the
//! published JSON Schema so the two cannot drift apart, and the operator's quotas every engine
//! is held to.
//!
//! The runtime validates a tenant's config against the schema before a factory sees it; each
//! engine's `parse` checks the same bounds again so a factory used without the runtime (tests,
//! tools) cannot be started with values the engine would misuse. The schema publishes the
//! engine's own bounds, lowered to the operator's ceilings (`[tenancy.quotas]`, see
//! [`hold_to`], which `switchyard` runs before any descriptor is built), so what the served
//! document accepts is what the engine takes (ADR 23); `parse` refuses a value above them as
//! `config_invalid` at its field: the fix is the tenant's, in that field, and waiting (what a
//! 429 would suggest) never helps.

use std::io;
use std::sync::RwLock;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use switchyard_spi::tenancy::Quotas;
use switchyard_spi::{ErrorCode, ProviderError};

/// The operator's quotas for this process. Process-wide, like the operator's config (one
/// `[tenancy]` section per process), and kept here rather than in each factory so every
/// engine's config check ([`Limit::check`]) and row reader ([`ResultBudget`]) enforce them
/// without each engine threading them through. `None` until [`hold_to`] runs: an engine used
/// outside the `switchyard` binary (its own tests, tools) is held to its published bounds and
/// the default size limits only.
static OPERATOR: RwLock<Option<Quotas>> = RwLock::new(None);

/// Holds every db engine of the process to `quotas`: the ceilings on tenants'
/// `max_connections` and `statement_timeout_ms`, the result bytes per call, and SQLite's
/// length and heap limits. Called once at startup, before any tenant's instance starts.
pub fn hold_to(quotas: &Quotas) {
    crate::sqlite::limit_heap(quotas.sqlite_heap_bytes.get());
    *OPERATOR.write().unwrap_or_else(|e| e.into_inner()) = Some(quotas.clone());
}

/// The operator's quotas, if [`hold_to`] ran.
fn operator() -> Option<Quotas> {
    OPERATOR.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The operator's size limits, or their defaults (which, unlike the ceilings on config
/// fields, cannot contradict an engine's published schema).
pub(crate) fn sizes() -> Quotas {
    operator().unwrap_or_default()
}

/// An integer setting of a tenant's config and the values it may take.
pub(crate) struct Limit {
    /// The field's name, also its property in the schema and (after `/`) its error pointer.
    pub name: &'static str,
    pub min: u64,
    pub max: u64,
}

/// How many of a tenant's calls may hold a connection at once; every engine takes 1..=32.
pub(crate) const MAX_CONNECTIONS: Limit = Limit {
    name: "max_connections",
    min: 1,
    max: 32,
};

/// How long a call's statements may run; engines with a statement timeout take 1..=600000.
pub(crate) const STATEMENT_TIMEOUT_MS: Limit = Limit {
    name: "statement_timeout_ms",
    min: 1,
    max: 600_000,
};

/// The most rows one `query` returns; every engine takes 1..=100000.
pub(crate) const MAX_ROWS: Limit = Limit {
    name: "max_rows",
    min: 1,
    max: 100_000,
};

/// An operator ceiling on a config field: its value and the quota that sets it.
type Ceiling = (u64, &'static str);

impl Limit {
    /// Refuses a value outside the bounds, or above the operator's ceiling on the field, as
    /// `config_invalid` pointing at the field.
    pub fn check(&self, value: impl Into<u64>) -> Result<(), ProviderError> {
        self.check_within(value.into(), self.ceiling())
    }

    /// `default`, lowered to the operator's ceiling on the field: a tenant that leaves the
    /// field out gets a value the ceiling allows, so an operator lowering a ceiling does not
    /// break every tenant that never configured the engine.
    pub fn default_within<T>(&self, default: T) -> T
    where
        T: Copy + Into<u64> + TryFrom<u64>,
    {
        lowered(default, self.ceiling())
    }

    /// The operator's ceiling on this field. Fields are matched by name, which every engine
    /// shares for the same setting, so an engine's own `Limit` is held to it too.
    fn ceiling(&self) -> Option<Ceiling> {
        let quotas = operator()?;
        match self.name {
            "max_connections" => {
                Some((quotas.db_max_connections.get().into(), "db_max_connections"))
            }
            "statement_timeout_ms" => Some((
                quotas.db_statement_timeout_ms.get(),
                "db_statement_timeout_ms",
            )),
            _ => None,
        }
    }

    fn check_within(&self, value: u64, ceiling: Option<Ceiling>) -> Result<(), ProviderError> {
        let refuse = |detail: String| {
            Err(ProviderError::field(
                ErrorCode::ConfigInvalid,
                &format!("/{}", self.name),
                detail,
            ))
        };
        if !(self.min..=self.max).contains(&value) {
            return refuse(format!("{value} is outside {}..={}", self.min, self.max));
        }
        match ceiling {
            Some((ceiling, quota)) if value > ceiling => refuse(format!(
                "{value} is above the operator's ceiling of {ceiling} (tenancy.quotas.{quota})"
            )),
            _ => Ok(()),
        }
    }

    /// The field's schema property: an integer within the bounds and the operator's ceiling,
    /// with its default (lowered to the ceiling, as [`Limit::default_within`] does).
    pub fn property(&self, default: impl Into<u64>, description: &str) -> (String, Value) {
        let max = self
            .ceiling()
            .map_or(self.max, |(ceiling, _)| ceiling.min(self.max));
        let property = json!({
            "type": "integer",
            "minimum": self.min, "maximum": max,
            "default": default.into().min(max),
            "description": description,
        });
        (self.name.to_owned(), property)
    }
}

/// The `max_rows` property, described alike by every engine.
pub(crate) fn max_rows_property(default: u32) -> (String, Value) {
    MAX_ROWS.property(
        default,
        "Most rows one query returns; a caller's max_rows may lower it, never raise it.",
    )
}

/// `default`, or the ceiling if that is lower.
fn lowered<T>(default: T, ceiling: Option<Ceiling>) -> T
where
    T: Copy + Into<u64> + TryFrom<u64>,
{
    match ceiling {
        Some((ceiling, _)) if default.into() > ceiling => T::try_from(ceiling).unwrap_or(default),
        _ => default,
    }
}

/// What one `query`'s rows may take, measured as the JSON they are sent as: a result past the
/// operator's `db_result_bytes` is refused while it is read, before it is all in memory.
pub(crate) struct ResultBudget {
    limit: u64,
    used: u64,
}

impl ResultBudget {
    pub fn new() -> Self {
        Self::of(sizes().db_result_bytes.get())
    }

    fn of(limit: u64) -> Self {
        ResultBudget { limit, used: 0 }
    }

    /// Counts one row; `payload_too_large` once the rows so far exceed the budget.
    pub fn charge(&mut self, row: &Map<String, Value>) -> Result<(), ProviderError> {
        let mut counter = Counter(0);
        serde_json::to_writer(&mut counter, row)
            .map_err(|e| ProviderError::internal(format!("cannot measure a row: {e}")))?;
        // The comma between rows.
        self.used = self.used.saturating_add(counter.0).saturating_add(1);
        if self.used > self.limit {
            return Err(ProviderError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the result exceeds {} bytes (tenancy.quotas.db_result_bytes): select fewer \
                     rows (max_rows) or columns",
                    self.limit
                ),
            ));
        }
        Ok(())
    }
}

/// Counts the bytes written to it, so a row is measured without building its text.
struct Counter(u64);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a config struct (`#[serde(deny_unknown_fields)]`); what it cannot read is
/// `config_invalid` at the root.
pub(crate) fn parse<T: DeserializeOwned>(config: Value) -> Result<T, ProviderError> {
    serde_json::from_value(config)
        .map_err(|e| ProviderError::field(ErrorCode::ConfigInvalid, "", e.to_string()))
}

/// The schema of a config object with exactly these properties.
pub(crate) fn schema(properties: impl IntoIterator<Item = (String, Value)>) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties.into_iter().collect::<Map<String, Value>>(),
    })
}

/// Asserts that an engine's published `schema` and its `parse` agree on each config of
/// `cases` (the config and whether it is valid), and that `parse` refuses as `config_invalid`.
#[cfg(test)]
pub(crate) fn assert_schema_agrees_with_parse<T>(
    schema: &Value,
    parse: fn(Value) -> Result<T, ProviderError>,
    cases: &[(Value, bool)],
) {
    let schema = switchyard_contracts::schema::Compiled::new(schema, "db#config").unwrap();
    for (config, valid) in cases {
        assert_eq!(
            schema.check(config).is_empty(),
            *valid,
            "schema on {config}"
        );
        let parsed = parse(config.clone());
        assert_eq!(parsed.is_ok(), *valid, "parser on {config}");
        if let Err(err) = parsed {
            assert_eq!(err.code, ErrorCode::ConfigInvalid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_out_of_bounds_is_refused_at_its_field() {
        assert!(MAX_ROWS.check(1u32).is_ok());
        assert!(MAX_ROWS.check(100_000u32).is_ok());
        for value in [0u32, 100_001] {
            let err = MAX_ROWS.check(value).unwrap_err();
            assert_eq!(err.code, ErrorCode::ConfigInvalid);
            assert_eq!(err.errors[0].pointer, "/max_rows");
            assert_eq!(err.detail, format!("{value} is outside 1..=100000"));
        }
    }

    #[test]
    fn a_value_above_the_operators_ceiling_is_refused_at_its_field() {
        let ceiling = Some((8, "db_max_connections"));
        assert!(MAX_CONNECTIONS.check_within(8, ceiling).is_ok());
        let err = MAX_CONNECTIONS.check_within(9, ceiling).unwrap_err();
        assert_eq!(err.code, ErrorCode::ConfigInvalid);
        assert_eq!(err.errors[0].pointer, "/max_connections");
        assert_eq!(
            err.detail,
            "9 is above the operator's ceiling of 8 (tenancy.quotas.db_max_connections)"
        );
        // The engine's own bounds still apply under a higher ceiling.
        let err = MAX_CONNECTIONS
            .check_within(33, Some((64, "db_max_connections")))
            .unwrap_err();
        assert_eq!(err.detail, "33 is outside 1..=32");
    }

    #[test]
    fn a_default_above_the_ceiling_is_lowered_to_it() {
        assert_eq!(lowered(4u32, Some((2, "db_max_connections"))), 2);
        assert_eq!(lowered(4u32, Some((8, "db_max_connections"))), 4);
        assert_eq!(lowered(30_000u64, None), 30_000);
    }

    #[test]
    fn a_result_is_refused_once_its_rows_exceed_the_budget() {
        let row: Map<String, Value> = json!({"a": "xyz"}).as_object().unwrap().clone();
        // {"a":"xyz"} is 11 bytes, plus a comma.
        let mut budget = ResultBudget::of(24);
        budget.charge(&row).unwrap();
        budget.charge(&row).unwrap();
        let err = budget.charge(&row).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        assert!(err.detail.contains("24 bytes"), "{}", err.detail);
    }

    #[test]
    fn a_property_publishes_the_bounds_the_parser_checks() {
        let (name, property) = MAX_CONNECTIONS.property(4u32, "Pool size.");
        assert_eq!(name, "max_connections");
        assert_eq!(
            property,
            json!({"type": "integer", "minimum": 1, "maximum": 32, "default": 4,
                   "description": "Pool size."})
        );
    }
}
