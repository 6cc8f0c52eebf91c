//! The business services' one clock: times and dates in a form the database compares as text.
//!
//! Every time is stored as RFC 3339 in UTC with exactly six fraction digits
//! (`2024-01-31T23:00:00.000000Z`). Fixed width and one offset make text order equal time
//! order, so period guards, `as_of` and `from`/`to` filters are plain string comparisons that
//! SQLite and PostgreSQL evaluate alike, with no engine-specific date type. Dates (an expiry)
//! are `YYYY-MM-DD`, which sorts the same way.

use switchyard_contracts::{ErrorCode, FieldError, Problem};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

fn invalid(raw: &str, why: &str, pointer: &str) -> Problem {
    Problem::new(ErrorCode::ParamsInvalid, format!("{raw:?} {why}")).with_errors(vec![FieldError {
        pointer: pointer.into(),
        detail: format!("{raw:?} {why}"),
    }])
}

/// `raw` (RFC 3339, any offset, at most microsecond precision, years 0000-9999) in the stored
/// form. `pointer` names the field in errors.
pub fn normalize(raw: &str, pointer: &str) -> Result<String, Problem> {
    let parsed = OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| {
            invalid(
                raw,
                "is not an RFC 3339 date-time such as 2024-01-31T23:00:00Z",
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

/// Now, in the stored form (microseconds; finer digits are dropped, not rounded, so now
/// never lies in the future).
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

/// `raw` if it is a calendar date `YYYY-MM-DD` that exists.
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
    fn offsets_and_precision_are_normalised_to_one_sortable_form() {
        assert_eq!(
            normalize("2024-01-31T23:00:00+01:00", "/t").unwrap(),
            "2024-01-31T22:00:00.000000Z"
        );
        assert_eq!(
            normalize("2025-10-15T08:30:00.25Z", "/t").unwrap(),
            "2025-10-15T08:30:00.250000Z"
        );
        let earlier = normalize("2024-02-01T00:59:59.999999+01:00", "/t").unwrap();
        let later = normalize("2024-02-01T00:00:00Z", "/t").unwrap();
        assert!(earlier < later, "{earlier} < {later}");
        assert!(now().ends_with('Z'));
        assert_eq!(now().len(), "2025-10-15T08:30:00.000000Z".len());
        assert_eq!(
            given_or_now(Some("2024-01-31T23:00:00Z"), "/t").unwrap(),
            "2024-01-31T23:00:00.000000Z"
        );
        assert_eq!(given_or_now(None, "/t").unwrap().len(), now().len());
    }

    #[test]
    fn malformed_too_precise_or_out_of_range_times_are_refused_with_a_pointer() {
        for bad in [
            "2024-01-31",
            "yesterday",
            "2024-01-31T22:00:00.0000001Z",
            "2024-13-01T00:00:00Z",
            "0000-01-01T00:00:00+00:01",
        ] {
            let problem = normalize(bad, "/posting_time").unwrap_err();
            assert_eq!(problem.code, ErrorCode::ParamsInvalid, "{bad}");
            assert_eq!(problem.errors[0].pointer, "/posting_time", "{bad}");
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
            let problem = date(bad, "/d").unwrap_err();
            assert_eq!(problem.errors[0].pointer, "/d", "{bad}");
        }
    }
}
