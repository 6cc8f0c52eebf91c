//! Posting times, normalised so the database can compare them as text.
//!
//! Every time is stored as RFC 3339 in UTC with exactly six fraction digits
//! (`2024-01-31T23:00:00.000000Z`). Fixed width and one offset make text order equal time
//! order, so the period guard and the `as_of` filters are plain string comparisons that
//! SQLite and PostgreSQL evaluate alike, with no engine-specific date type.

use switchyard_contracts::{ErrorCode, FieldError, Problem};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// `raw` (RFC 3339, any offset, at most microsecond precision) in the stored form.
pub fn normalize(raw: &str, pointer: &str) -> Result<String, Problem> {
    let invalid = |why: &str| {
        Problem::new(ErrorCode::ParamsInvalid, format!("{raw:?} {why}")).with_errors(vec![
            FieldError {
                pointer: pointer.into(),
                detail: format!("{raw:?} {why}"),
            },
        ])
    };
    let parsed = OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| invalid("is not an RFC 3339 date-time such as 2024-01-31T23:00:00Z"))?
        .to_offset(UtcOffset::UTC);
    if parsed.nanosecond() % 1_000 != 0 {
        return Err(invalid("is more precise than a microsecond"));
    }
    if !(0..=9999).contains(&parsed.year()) {
        return Err(invalid("falls outside the years 0000-9999"));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        parsed.year(),
        u8::from(parsed.month()),
        parsed.day(),
        parsed.hour(),
        parsed.minute(),
        parsed.second(),
        parsed.microsecond()
    ))
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
            normalize("2024-01-31T22:00:00.5Z", "/t").unwrap(),
            "2024-01-31T22:00:00.500000Z"
        );
        let earlier = normalize("2024-02-01T00:59:59.999999+01:00", "/t").unwrap();
        let later = normalize("2024-02-01T00:00:00Z", "/t").unwrap();
        assert!(earlier < later, "{earlier} < {later}");
    }

    #[test]
    fn malformed_or_too_precise_times_are_refused_with_a_pointer() {
        for bad in [
            "2024-01-31",
            "yesterday",
            "2024-01-31T22:00:00.0000001Z",
            "2024-13-01T00:00:00Z",
        ] {
            let problem = normalize(bad, "/posting_time").unwrap_err();
            assert_eq!(problem.code, ErrorCode::ParamsInvalid, "{bad}");
            assert_eq!(problem.errors[0].pointer, "/posting_time");
        }
    }
}
