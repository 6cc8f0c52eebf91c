//! The SOQL subset the fake answers: `SELECT f, ... FROM Object [WHERE <datetime field> <op>
//! <datetime literal>] [ORDER BY f [ASC|DESC], ...] [LIMIT n]`. Keywords are case-insensitive,
//! field names too (answers use the field's own spelling), as in SOQL.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::objects::ObjectDef;
use super::{ApiError, api_error, format_datetime, parse_datetime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

/// A parsed query.
pub(super) struct Soql {
    fields: Vec<String>,
    pub(super) object: String,
    /// (field, op, the literal in the records' own dateTime format, which sorts as time does).
    filter: Option<(String, Op, String)>,
    /// (field, ascending).
    order: Vec<(String, bool)>,
    limit: Option<usize>,
}

fn malformed(message: impl Into<String>) -> ApiError {
    api_error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", message)
}

/// Orders JSON values as SOQL orders field values: nulls first, numbers by value, the rest
/// by text (the fake's dateTimes share one fixed-width format, so text order is time order).
pub(super) fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

impl Soql {
    pub(super) fn parse(q: &str) -> Result<Soql, ApiError> {
        let upper = q.to_ascii_uppercase();
        let select = upper
            .trim_start()
            .strip_prefix("SELECT ")
            .ok_or_else(|| malformed("a query starts with SELECT"))?;
        let start = q.len() - select.len();
        let from = upper
            .find(" FROM ")
            .ok_or_else(|| malformed("unexpected token: no FROM"))?;
        let fields: Vec<String> = q[start..from]
            .split(',')
            .map(|f| f.trim().to_owned())
            .collect();
        if fields.iter().any(String::is_empty) {
            return Err(malformed("unexpected token: ','"));
        }
        let spaced = q[from + 6..].replace(',', " , ");
        let mut tokens = spaced.split_whitespace().peekable();
        let object = tokens
            .next()
            .ok_or_else(|| malformed("no object after FROM"))?
            .to_owned();
        let mut soql = Soql {
            fields,
            object,
            filter: None,
            order: Vec::new(),
            limit: None,
        };
        let keyword =
            |token: Option<&&str>, word: &str| token.is_some_and(|t| t.eq_ignore_ascii_case(word));
        if keyword(tokens.peek(), "WHERE") {
            tokens.next();
            let (Some(field), Some(op), Some(literal)) =
                (tokens.next(), tokens.next(), tokens.next())
            else {
                return Err(malformed("unexpected end of WHERE"));
            };
            let op = match op {
                "<" => Op::Lt,
                "<=" => Op::Le,
                "=" => Op::Eq,
                ">=" => Op::Ge,
                ">" => Op::Gt,
                other => return Err(malformed(format!("unexpected token: '{other}'"))),
            };
            let at = parse_datetime(literal)
                .ok_or_else(|| malformed(format!("invalid dateTime literal: {literal}")))?;
            soql.filter = Some((field.to_owned(), op, format_datetime(at)));
        }
        if keyword(tokens.peek(), "ORDER") {
            tokens.next();
            if !keyword(tokens.next().as_ref(), "BY") {
                return Err(malformed("ORDER without BY"));
            }
            loop {
                let field = tokens
                    .next()
                    .ok_or_else(|| malformed("unexpected end of ORDER BY"))?;
                let mut ascending = true;
                if keyword(tokens.peek(), "ASC") {
                    tokens.next();
                } else if keyword(tokens.peek(), "DESC") {
                    tokens.next();
                    ascending = false;
                }
                soql.order.push((field.to_owned(), ascending));
                if tokens.peek() != Some(&",") {
                    break;
                }
                tokens.next();
            }
        }
        if keyword(tokens.peek(), "LIMIT") {
            tokens.next();
            let n = tokens.next().and_then(|n| n.parse().ok());
            soql.limit = Some(n.ok_or_else(|| malformed("LIMIT takes a number"))?);
        }
        if let Some(token) = tokens.next() {
            return Err(malformed(format!("unexpected token: '{token}'")));
        }
        Ok(soql)
    }

    /// The query's records, each with its `attributes` and the selected fields.
    pub(super) fn run(
        &self,
        def: &ObjectDef,
        table: &BTreeMap<String, Map<String, Value>>,
        version: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let resolve = |name: &str| {
            def.field(name).map(|f| f.name).ok_or_else(|| {
                api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    format!("No such column '{name}' on entity '{}'.", def.name),
                )
            })
        };
        let fields = self
            .fields
            .iter()
            .map(|f| resolve(f))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = match &self.filter {
            Some((field, op, literal)) => {
                let field = def
                    .field(field)
                    .filter(|f| f.kind == "datetime")
                    .ok_or_else(|| {
                        malformed(format!(
                            "the fake filters on dateTime fields only, not {field}"
                        ))
                    })?;
                Some((field.name, *op, literal.as_str()))
            }
            None => None,
        };
        let order = self
            .order
            .iter()
            .map(|(f, ascending)| Ok((resolve(f)?, *ascending)))
            .collect::<Result<Vec<_>, ApiError>>()?;
        let mut rows: Vec<&Map<String, Value>> = table
            .values()
            .filter(|record| {
                let Some((field, op, literal)) = filter else {
                    return true;
                };
                let value = record.get(field).and_then(Value::as_str).unwrap_or("");
                let ordering = value.cmp(literal);
                match op {
                    Op::Lt => ordering.is_lt(),
                    Op::Le => ordering.is_le(),
                    Op::Eq => ordering.is_eq(),
                    Op::Ge => ordering.is_ge(),
                    Op::Gt => ordering.is_gt(),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            order
                .iter()
                .fold(Ordering::Equal, |so_far, (field, ascending)| {
                    so_far.then_with(|| {
                        let ordering = compare(
                            a.get(*field).unwrap_or(&Value::Null),
                            b.get(*field).unwrap_or(&Value::Null),
                        );
                        if *ascending {
                            ordering
                        } else {
                            ordering.reverse()
                        }
                    })
                })
        });
        rows.truncate(self.limit.unwrap_or(usize::MAX));
        Ok(rows
            .into_iter()
            .map(|record| {
                let mut out = Map::with_capacity(fields.len() + 1);
                out.insert(
                    "attributes".into(),
                    json!({"type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{}", def.name, record["Id"].as_str().unwrap_or(""))}),
                );
                for field in &fields {
                    out.insert((*field).to_owned(), record.get(*field).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            })
            .collect())
    }
}
