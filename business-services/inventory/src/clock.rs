//! Times and dates, normalised so the database compares them as text.
//!
//! Every time is stored as RFC 3339 in UTC with exactly six fraction digits
//! (`2025-10-15T08:30:00.000000Z`), the ledger's form: fixed width and one offset make text
//! order equal time order, so period filters are plain string comparisons that SQLite and
//! PostgreSQL evaluate alike. Dates (expiry) are `YYYY-MM-DD`, which sorts the same way.

use switchyard_contracts::{ErrorCode, FieldError, Problem};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

fn invalid(raw: &str, why: &str, pointer: &str) -> Problem {
    Problem::new(ErrorCode::ParamsInvalid, format!("{raw:?} {why}")).with_errors(vec![FieldError {
        pointer: pointer.into(),
        detail: format!("{raw:?} {why}"),
    }])
}

/// `raw` (RFC 3339, any offset, at most microsecond precision) in the stored form.
pub fn normalize(raw: &str, pointer: &str) -> Result<String, Problem> {
    let parsed = OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| {
            invalid(
                raw,
                "is not an RFC 3339 date-time such as 2025-10-15T08:30:00Z",
                pointer,
            )
        })?
        .to_offset(UtcOffset::UTC);
    if parsed.nanosecond() % 1_000 != 0 {
        return Err(invalid(raw, "is more precise than a microsecond", pointer));
    }
    if !(0..=9999).contains(&parsed.year()) {
        return Err(invalid(raw, "falls outside the years 0000-9999", pointer));
    }
    Ok(stored(parsed))
}

/// `raw` if given, else now; both in the stored form.
pub fn given_or_now(raw: Option<&str>, pointer: &str) -> Result<String, Problem> {
    raw.map_or_else(|| Ok(now()), |raw| normalize(raw, pointer))
}

pub fn now() -> String {
    stored(OffsetDateTime::now_utc())
}

fn stored(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// A calendar date `YYYY-MM-DD` that exists.
pub fn date(raw: &str, pointer: &str) -> Result<String, Problem> {
    let bad = || invalid(raw, "is not a calendar date such as 2026-03-31", pointer);
    let parts: Vec<&str> = raw.split('-').collect();
    let [year, month, day] = parts[..] else {
        return Err(bad());
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u8 = month.parse().map_err(|_| bad())?;
    let day: u8 = day.parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_normalised_to_one_sortable_utc_form() {
        assert_eq!(
            normalize("2025-10-15T10:30:00+02:00", "/t").unwrap(),
            "2025-10-15T08:30:00.000000Z"
        );
        assert_eq!(
            normalize("2025-10-15T08:30:00.25Z", "/t").unwrap(),
            "2025-10-15T08:30:00.250000Z"
        );
        assert!(now().ends_with('Z'));
        assert_eq!(now().len(), "2025-10-15T08:30:00.000000Z".len());
        for bad in ["2025-10-15", "soon", "2025-10-15T08:30:00.0000001Z"] {
            assert_eq!(normalize(bad, "/t").unwrap_err().errors[0].pointer, "/t");
        }
    }

    #[test]
    fn only_real_calendar_dates_pass() {
        assert_eq!(date("2024-02-29", "/d").unwrap(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "24-01-01",
            "2024-1-01",
            "2024-01-01T00:00",
        ] {
            assert!(date(bad, "/d").is_err(), "{bad}");
        }
    }
}
