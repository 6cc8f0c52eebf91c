//! The fast path: an expression that is a plain path (`.`, `.a.b`, `.a[0]`, `.["x y"]`,
//! `."x y"`, `.items[-1]`) is read straight off the serde_json record, without converting the
//! record into jaq's values or running the interpreter. Most mapping fields are such paths.
//!
//! Only the cases jaq answers with a value are taken here: indexing an object by a key, an
//! array by a number, null by either (null), and an object by a number (null: jaq's objects
//! may have keys of any type, JSON's never have number keys; jq 1.7 would fail). Anything else
//! (a key into an array, a number into a string) is an error, and the caller then runs the
//! expression's compiled program for jaq's own message, so both ways always give the same
//! answer.

use serde_json::Value;

/// One step of a plain path.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Key(String),
    Index(i64),
}

/// A plain path, or `None` when `code` is anything else (which then runs through jaq).
pub(super) fn parse(code: &str) -> Option<Vec<Step>> {
    let mut rest = code.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "." {
        return Some(Vec::new());
    }
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            // `.a[0]`: a bracket straight after a step (jq's `.a[0]` is `.a | .[0]`).
            if steps.is_empty() {
                return None;
            }
            rest = bracket(after, &mut steps)?;
            continue;
        }
        rest = rest.strip_prefix('.')?;
        if let Some(after) = rest.strip_prefix('[') {
            rest = bracket(after, &mut steps)?;
        } else if let Some(after) = rest.strip_prefix('"') {
            let (key, after) = quoted(after)?;
            steps.push(Step::Key(key));
            rest = after;
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let ident = &rest[..end];
            if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            steps.push(Step::Key(ident.to_owned()));
            rest = &rest[end..];
        }
    }
    Some(steps)
}

/// After a `[`: a (possibly negative) integer or a plain string, then `]`.
fn bracket<'a>(after: &'a str, steps: &mut Vec<Step>) -> Option<&'a str> {
    if let Some(inner) = after.strip_prefix('"') {
        let (key, rest) = quoted(inner)?;
        steps.push(Step::Key(key));
        return rest.strip_prefix(']');
    }
    let end = after.find(']')?;
    let digits = &after[..end];
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    steps.push(Step::Index(digits.parse().ok()?));
    Some(&after[end + 1..])
}

/// A string without escapes or interpolation (those go to jaq), up to its closing quote.
fn quoted(after: &str) -> Option<(String, &str)> {
    let end = after.find('"')?;
    let key = &after[..end];
    if key.contains('\\') {
        return None;
    }
    Some((key.to_owned(), &after[end + 1..]))
}

/// What the path reads from `record`: `Some(None)` is null (a missing key, an index past
/// the end, a step through null), `None` means jq would fail here.
pub(super) fn read<'a>(steps: &[Step], record: &'a Value) -> Option<Option<&'a Value>> {
    let mut at = record;
    for step in steps {
        let next = match (step, at) {
            (_, Value::Null) => None,
            (Step::Key(key), Value::Object(fields)) => fields.get(key),
            (Step::Index(_), Value::Object(_)) => None,
            (Step::Index(index), Value::Array(items)) => {
                let len = items.len() as i64;
                let index = if *index < 0 { len + index } else { *index };
                usize::try_from(index).ok().and_then(|i| items.get(i))
            }
            _ => return None,
        };
        match next {
            Some(value) => at = value,
            None => return Some(None),
        }
    }
    Some(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Step {
        Step::Key(k.into())
    }

    #[test]
    fn plain_paths_parse_into_steps() {
        assert_eq!(parse("."), Some(vec![]));
        assert_eq!(parse(".a.b_2"), Some(vec![key("a"), key("b_2")]));
        assert_eq!(
            parse(".items[0].sku"),
            Some(vec![key("items"), Step::Index(0), key("sku")])
        );
        assert_eq!(parse(".[-1]"), Some(vec![Step::Index(-1)]));
        assert_eq!(parse(r#".["x y"]."z""#), Some(vec![key("x y"), key("z")]));
        assert_eq!(parse(" .a "), Some(vec![key("a")]));
    }

    #[test]
    fn everything_else_is_left_to_jaq() {
        for code in [
            "",
            "a",
            ".a | ascii_downcase",
            ".a?",
            ".[]",
            ".a[]",
            ".[1:2]",
            ".[0.5]",
            ".1",
            r#"."a\"b""#,
            r#"."\(.x)""#,
            ".a + 1",
            "[0]",
            ".a.",
            ". a",
            "..",
        ] {
            assert_eq!(parse(code), None, "{code:?}");
        }
    }
}
