//! The bus domain's params and results (`contracts/schemas/domains/bus.json`) as Rust types,
//! plus the conventions every engine shares (record times, dead-letter records), so that the
//! engines read and answer exactly the same shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_spi::ProviderError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishParams {
    pub(crate) topic: String,
    pub(crate) messages: Vec<MessageParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageParams {
    pub(crate) key: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) payload: Value,
}

#[derive(Serialize)]
pub(crate) struct Published {
    pub(crate) topic: String,
    pub(crate) offsets: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PollParams {
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) offset: Option<u64>,
    pub(crate) max_records: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommitParams {
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) offset: u64,
}

#[derive(Serialize)]
pub(crate) struct Committed {
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) committed: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayParams {
    pub(crate) topic: String,
    pub(crate) from_offset: Option<u64>,
    pub(crate) from_time: Option<String>,
    pub(crate) max_records: Option<u32>,
}

/// Where `replay` starts, once its params are checked.
pub(crate) enum ReplayFrom {
    Offset(i64),
    /// The first record published at or after this time (Unix milliseconds).
    TimeMs(i64),
}

impl ReplayParams {
    /// Reads the start of a replay: an offset, a time, or (neither given) offset 0.
    pub(crate) fn start(&self) -> Result<ReplayFrom, ProviderError> {
        match (self.from_offset, self.from_time.as_deref()) {
            (Some(_), Some(_)) => Err(ProviderError::invalid_param(
                "/from_time",
                "give from_offset or from_time, not both",
            )),
            (Some(offset), None) => Ok(ReplayFrom::Offset(offset_param(offset, "/from_offset")?)),
            (None, Some(time)) => Ok(ReplayFrom::TimeMs(parse_time_ms(time)?)),
            (None, None) => Ok(ReplayFrom::Offset(0)),
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Records {
    pub(crate) records: Vec<RecordOut>,
    pub(crate) next_offset: i64,
}

#[derive(Serialize)]
pub(crate) struct RecordOut {
    pub(crate) offset: i64,
    pub(crate) key: Option<String>,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) payload: Value,
    pub(crate) published_at: String,
}

/// Offsets are stored as signed 64-bit integers (SQLite's integers, Kafka's offsets); the
/// contract's are unbounded non-negative integers. No topic can reach 2^63 records, so a
/// larger offset is a caller error.
pub(crate) fn offset_param(offset: u64, pointer: &str) -> Result<i64, ProviderError> {
    i64::try_from(offset)
        .map_err(|_| ProviderError::invalid_param(pointer, "offset must be below 2^63"))
}

/// `published_at` as RFC 3339 in UTC with exactly three fractional digits, so every record's
/// time has the same shape and sorts as text.
pub(crate) fn format_time_ms(ms: i64) -> Result<String, ProviderError> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| ProviderError::internal(format!("stored publish time {ms} invalid: {e}")))?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    ))
}

/// Parses a `from_time` to the first whole millisecond at or after it, the resolution
/// records are stamped with; any UTC offset is accepted.
pub(crate) fn parse_time_ms(text: &str) -> Result<i64, ProviderError> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        ProviderError::invalid_param("/from_time", format!("not an RFC 3339 date-time: {e}"))
    })?;
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000)
        + i128::from(t.unix_timestamp_nanos().rem_euclid(1_000_000) != 0);
    i64::try_from(ms).map_err(|_| ProviderError::invalid_param("/from_time", "time out of range"))
}

/// The suffix that names a topic's dead-letter topic: `<topic>.dead-letter`.
const DEAD_LETTER_SUFFIX: &str = ".dead-letter";

/// The longest topic name that can have dead letters: its dead-letter topic's name must itself
/// be a valid topic (at most 249 characters) so that it can be polled and replayed.
pub(crate) const MAX_DEAD_LETTER_SOURCE_LEN: usize = 249 - DEAD_LETTER_SUFFIX.len();

/// The dead-letter topic of `topic`, after checking that `topic` can have one. Called by every
/// poll that counts deliveries, not only the one that dead-letters, so a too-long name fails
/// the same way before and after its first dead letter.
pub(crate) fn dead_letter_topic(topic: &str) -> Result<String, ProviderError> {
    if topic.len() > MAX_DEAD_LETTER_SOURCE_LEN {
        return Err(ProviderError::invalid_param(
            "/topic",
            format!(
                "with max_deliveries set, topic names are limited to \
                 {MAX_DEAD_LETTER_SOURCE_LEN} characters so that <topic>{DEAD_LETTER_SUFFIX} \
                 is a valid topic"
            ),
        ));
    }
    Ok(format!("{topic}{DEAD_LETTER_SUFFIX}"))
}

/// The headers of a dead-lettered record: the original ones plus why, from where, and after how
/// many deliveries. The three added names overwrite same-named original headers (a record that
/// is dead-lettered a second time, from a dead-letter topic, carries the latest values).
pub(crate) fn dead_letter_headers(
    mut headers: BTreeMap<String, String>,
    group: &str,
    original_offset: i64,
    deliveries: u32,
) -> BTreeMap<String, String> {
    headers.insert(
        "dead_letter_reason".into(),
        format!(
            "max_deliveries exceeded: delivered {deliveries} times to group {group:?} without \
             a commit past it"
        ),
    );
    headers.insert("original_offset".into(), original_offset.to_string());
    headers.insert("deliveries".into(), deliveries.to_string());
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_at_millisecond_resolution() {
        let text = format_time_ms(1_700_000_000_123).unwrap();
        assert_eq!(text, "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_time_ms(&text).unwrap(), 1_700_000_000_123);
        assert_eq!(format_time_ms(0).unwrap(), "1970-01-01T00:00:00.000Z");
        // A finer time rounds up: the record stamped .123 was published before .1231.
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.1231Z").unwrap(),
            1_700_000_000_124
        );
        assert_eq!(
            parse_time_ms("2023-11-15T00:13:20.123+02:00").unwrap(),
            1_700_000_000_123
        );
        let err = parse_time_ms("yesterday").unwrap_err();
        assert_eq!(err.errors[0].pointer, "/from_time");
    }

    #[test]
    fn dead_letter_topics_must_stay_valid_topic_names() {
        let longest = "x".repeat(MAX_DEAD_LETTER_SOURCE_LEN);
        assert_eq!(dead_letter_topic(&longest).unwrap().len(), 249);
        assert_eq!(dead_letter_topic("orders").unwrap(), "orders.dead-letter");
        let err = dead_letter_topic(&format!("{longest}x")).unwrap_err();
        assert_eq!(err.errors[0].pointer, "/topic");
    }

    #[test]
    fn dead_letter_headers_keep_the_original_ones() {
        let original = BTreeMap::from([
            ("event_id".to_owned(), "e-1".to_owned()),
            ("deliveries".to_owned(), "1".to_owned()),
        ]);
        let headers = dead_letter_headers(original, "billing", 7, 3);
        assert_eq!(headers["event_id"], "e-1");
        assert_eq!(headers["original_offset"], "7");
        assert_eq!(headers["deliveries"], "3");
        assert!(headers["dead_letter_reason"].contains("\"billing\""));
    }
}
