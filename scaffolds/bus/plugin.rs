//! `bus/__NAME__`: a bus provider plugin (publish, poll, commit, replay) on an in-memory log per tenant
//! and topic. Records are numbered from 0 in the order published; a group's position is the
//! offset it committed last. The engine owns the logs, so a tenant's new instance (a
//! reconfigure) keeps them; nothing survives the process: replace `Logs` with a durable store
//! (and declare "durable") for production. The runtime checks params and results against the
//! bus contract, so only what the schemas cannot say is checked here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use switchyard_plugin_abi::{Call, Instance, Plugin, PluginError, export_plugin};

#[derive(Default)]
struct Logs {
    /// (tenant, topic) → records, each a contract `record`.
    topics: HashMap<(String, String), Vec<Value>>,
    /// (tenant, topic, group) → committed offset.
    committed: HashMap<(String, String, String), u64>,
}

pub struct Engine {
    logs: Arc<Mutex<Logs>>,
}

impl Plugin for Engine {
    type Instance = Tenant;

    fn new() -> Self {
        Engine {
            logs: Arc::default(),
        }
    }

    fn descriptor(&self) -> Value {
        json!({
            "domain": "bus",
            "name": "__NAME__",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "bus/__NAME__: an in-memory log per tenant and topic (a plugin skeleton)",
            "capabilities": ["ordering", "replay"],
            "actions": ["publish", "poll", "commit", "replay"],
            "config_schema": {"type": "object", "additionalProperties": false, "properties": {}}
        })
    }

    fn start(&self, tenant: &str, _config: Value) -> Result<Tenant, PluginError> {
        Ok(Tenant {
            tenant: tenant.to_owned(),
            logs: self.logs.clone(),
        })
    }
}

/// One tenant's view of the shared logs: every key carries the tenant.
pub struct Tenant {
    tenant: String,
    logs: Arc<Mutex<Logs>>,
}

/// Now as RFC 3339 in UTC (`2026-01-31T12:00:00.123Z`), from the days-to-civil algorithm of
/// Howard Hinnant's date library, so the skeleton needs no date crate.
fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days from 1970-01-01 to a civil date (the inverse of the algorithm above).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time (`2026-01-31T12:00:00.5+02:00`) as nanoseconds since 1970 UTC, or `None`
/// when it is not one.
fn instant(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| digits_of(text.get(range)?);
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = (1..=12).contains(&month)
        && (1..=month_days[(month - 1).clamp(0, 11) as usize]).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    if !valid {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i128 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..length.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &fraction[length..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (digits_of(&rest[1..3])?, digits_of(&rest[4..6])?);
            sign * (h * 3_600 + m * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

fn digits_of(part: &str) -> Option<i64> {
    part.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| part.parse().ok())?
}

impl Tenant {
    fn lock(&self) -> MutexGuard<'_, Logs> {
        // A panic while holding the lock left whole records behind: the logs are still usable.
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn text<'a>(params: &'a Value, field: &str) -> &'a str {
    params[field].as_str().unwrap_or_default()
}

impl Instance for Tenant {
    fn invoke(&self, call: Call) -> Result<Value, PluginError> {
        let p = &call.params;
        let topic = (self.tenant.clone(), text(p, "topic").to_owned());
        let mut logs = self.lock();
        match call.action.as_str() {
            "publish" => {
                let log = logs.topics.entry(topic).or_default();
                let published_at = now_rfc3339();
                let mut offsets = Vec::new();
                for message in p["messages"].as_array().into_iter().flatten() {
                    let offset = log.len();
                    log.push(json!({
                        "offset": offset,
                        "key": message.get("key").cloned().unwrap_or(Value::Null),
                        "headers": message.get("headers").cloned().unwrap_or_else(|| json!({})),
                        "payload": message.get("payload").cloned().unwrap_or(Value::Null),
                        "published_at": published_at,
                    }));
                    offsets.push(offset);
                }
                Ok(json!({"topic": p["topic"], "offsets": offsets}))
            }
            "poll" => {
                let group = (
                    topic.0.clone(),
                    topic.1.clone(),
                    text(p, "group").to_owned(),
                );
                let committed = logs.committed.get(&group).copied().unwrap_or(0);
                let start = p["offset"].as_u64().unwrap_or(committed) as usize;
                let max = p["max_records"].as_u64().unwrap_or(100) as usize;
                let records: Vec<Value> = logs
                    .topics
                    .get(&topic)
                    .map(|log| log.iter().skip(start).take(max).cloned().collect())
                    .unwrap_or_default();
                Ok(json!({"next_offset": start + records.len(), "records": records}))
            }
            "commit" => {
                let end = logs.topics.get(&topic).map_or(0, Vec::len) as u64;
                let offset = p["offset"].as_u64().unwrap_or_default();
                if offset > end {
                    return Err(PluginError::field(
                        "conflict",
                        "/offset",
                        format!("offset {offset} is past the end of the topic ({end})"),
                    ));
                }
                let group = (topic.0, topic.1, text(p, "group").to_owned());
                logs.committed.insert(group, offset);
                Ok(json!({"topic": p["topic"], "group": p["group"], "committed": offset}))
            }
            "replay" => {
                if p.get("from_offset").is_some() && p.get("from_time").is_some() {
                    return Err(PluginError::field(
                        "params_invalid",
                        "/from_time",
                        "give from_offset or from_time, not both",
                    ));
                }
                let log = logs
                    .topics
                    .get(&topic)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let mut start = p["from_offset"].as_u64().unwrap_or(0) as usize;
                if let Some(text) = p["from_time"].as_str() {
                    let since = instant(text).ok_or_else(|| {
                        PluginError::field(
                            "params_invalid",
                            "/from_time",
                            "from_time is not an RFC 3339 time",
                        )
                    })?;
                    start = log
                        .iter()
                        .position(|r| {
                            r["published_at"]
                                .as_str()
                                .and_then(instant)
                                .is_some_and(|at| at >= since)
                        })
                        .unwrap_or(log.len());
                }
                let max = p["max_records"].as_u64().unwrap_or(100) as usize;
                let records: Vec<Value> = log.iter().skip(start).take(max).cloned().collect();
                Ok(json!({"next_offset": start + records.len(), "records": records}))
            }
            other => Err(PluginError::new(
                "action_not_found",
                format!("bus/__NAME__ has no action {other:?}"),
            )),
        }
    }
}

export_plugin!(Engine);
