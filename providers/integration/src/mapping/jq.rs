//! One mapping expression as a compiled jq program (jaq), and the conversions between
//! serde_json's values, which the rest of the crate holds, and jaq's own.

use std::fmt::Write as _;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader, lex};
use jaq_core::{Compiler, Ctx, Vars, compile};
use jaq_json::{Num, Val};
use serde_json::{Map, Number, Value};

/// Named filters a mapping may not call: `env` would hand a tenant the server's environment
/// (its secrets), `halt` would end the process, and `debug`/`stderr` would write tenant data
/// into the server's log. Both their natives and the standard library's definitions over them
/// are left out, so a call to any of them is an "undefined filter" error when the mapping
/// compiles.
const WITHHELD: [&str; 7] = [
    "env",
    "halt",
    "halt_error",
    "debug",
    "debug_empty",
    "stderr",
    "stderr_empty",
];

type Data = JustLut<Val>;

/// A compiled jq program.
pub(super) struct Program {
    filter: jaq_core::Filter<Data>,
}

/// What running a program on one input gave.
pub(super) enum Outcome {
    /// No output (`empty`, `select(false)`, `.[]` of an empty array).
    Nothing,
    One(Val),
    /// More than one output: the mapping refuses to pick one (see the module's doc).
    Many,
    Failed(String),
}

impl Program {
    /// Parses and compiles `code` with jq's standard library (less [`WITHHELD`]); the error
    /// is the parser's or compiler's message with the place it points at.
    pub(super) fn compile(code: &str) -> Result<Program, String> {
        let arena = Arena::default();
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .filter(|def| !WITHHELD.contains(&def.name));
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| load_errors(code, errors))?;
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .filter(|(name, ..)| !WITHHELD.contains(name));
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| compile_errors(code, errors))?;
        Ok(Program { filter })
    }

    /// Runs the program on `input`, reading at most two outputs.
    pub(super) fn run(&self, input: Val) -> Outcome {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input));
        let first = match outputs.next() {
            None => return Outcome::Nothing,
            Some(Ok(value)) => value,
            Some(Err(exception)) => return Outcome::Failed(exception_message(exception)),
        };
        match outputs.next() {
            None => Outcome::One(first),
            Some(_) => Outcome::Many,
        }
    }
}

fn exception_message(exception: jaq_core::Exn<'_, Val>) -> String {
    match exception.get_err() {
        Ok(error) => error.to_string(),
        // `halt` is withheld and a `break` cannot escape its `label` (the compiler checks):
        // kept as a plain failure rather than trusted never to happen.
        Err(other) => format!("{other:?}"),
    }
}

/// " at column N" where `part` (a slice of `code`) starts in `code`, counted from 1 as jq
/// users count; nothing for a part of the standard library's code.
fn at(code: &str, part: &str) -> String {
    let inside = code.as_ptr() as usize <= part.as_ptr() as usize
        && part.as_ptr() as usize + part.len() <= code.as_ptr() as usize + code.len();
    if inside {
        format!(" at column {}", jaq_core::load::span(code, part).start + 1)
    } else {
        String::new()
    }
}

fn load_errors(code: &str, errors: jaq_core::load::Errors<&str, ()>) -> String {
    let mut message = String::new();
    for (_file, error) in errors {
        match error {
            jaq_core::load::Error::Io(errors) => {
                for (path, why) in errors {
                    push(&mut message, format!("cannot load {path}: {why}"));
                }
            }
            jaq_core::load::Error::Lex(errors) => {
                for (expected, rest) in errors {
                    push(&mut message, lex_error(code, &expected, rest));
                }
            }
            jaq_core::load::Error::Parse(errors) => {
                for (expected, found) in errors {
                    let found = if found.is_empty() {
                        "the end".to_owned()
                    } else {
                        format!("{found:?}{}", at(code, found))
                    };
                    push(
                        &mut message,
                        format!("expected {}, found {found}", expected.as_str()),
                    );
                }
            }
        }
    }
    message
}

fn lex_error(code: &str, expected: &lex::Expect<&str>, rest: &str) -> String {
    format!("expected {}{}", expected.as_str(), at(code, rest))
}

fn compile_errors(code: &str, errors: compile::Errors<&str, ()>) -> String {
    let mut message = String::new();
    for (_file, errors) in errors {
        for (name, undefined) in errors {
            let arity = match undefined {
                compile::Undefined::Filter(arity) => format!("/{arity}"),
                _ => String::new(),
            };
            push(
                &mut message,
                format!(
                    "undefined {} {name}{arity}{}",
                    undefined.as_str(),
                    at(code, name)
                ),
            );
        }
    }
    message
}

fn push(message: &mut String, line: String) {
    if !message.is_empty() {
        message.push_str("; ");
    }
    message.push_str(&line);
}

/// jaq's value of a JSON value.
pub(super) fn to_jaq(value: &Value) -> Val {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(if let Some(i) = n.as_i64() {
            Num::from_integral(i)
        } else if let Some(u) = n.as_u64() {
            Num::from_integral(u)
        } else {
            Num::Float(n.as_f64().unwrap_or(f64::NAN))
        }),
        Value::String(s) => Val::from(s.clone()),
        Value::Array(items) => items.iter().map(to_jaq).collect(),
        Value::Object(fields) => Val::obj(
            fields
                .iter()
                .map(|(k, v)| (Val::from(k.clone()), to_jaq(v)))
                .collect(),
        ),
    }
}

/// The JSON value of jaq's value. What JSON cannot hold becomes what jq prints for it: a
/// non-finite number is null, a byte string is its bytes read as UTF-8 (lossy), an object key
/// that is not a string is its JSON text.
pub(super) fn from_jaq(value: Val) -> Value {
    match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(b),
        Val::Num(n) => number(n),
        Val::TStr(bytes) | Val::BStr(bytes) => Value::String(utf8(&bytes)),
        Val::Arr(items) => Value::Array(items.iter().cloned().map(from_jaq).collect()),
        Val::Obj(fields) => {
            let mut out = Map::new();
            for (k, v) in fields.iter() {
                let key = match k {
                    Val::TStr(bytes) | Val::BStr(bytes) => utf8(bytes),
                    other => {
                        let mut text = String::new();
                        let _ = write!(text, "{other}");
                        text
                    }
                };
                out.insert(key, from_jaq(v.clone()));
            }
            Value::Object(out)
        }
    }
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number(n: Num) -> Value {
    // Too big for a JSON integer (i64/u64), a big integer or decimal becomes a float, as jq
    // prints it.
    let exact_or_float = |text: &str| {
        text.parse::<Number>()
            .ok()
            .or_else(|| text.parse::<f64>().ok().and_then(Number::from_f64))
    };
    let json = match n {
        Num::Int(i) => Some(Number::from(i as i64)),
        Num::BigInt(i) => exact_or_float(&i.to_string()),
        Num::Float(f) => Number::from_f64(f),
        Num::Dec(text) => exact_or_float(&text),
    };
    json.map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(code: &str, input: Value) -> Result<Option<Value>, String> {
        match Program::compile(code)?.run(to_jaq(&input)) {
            Outcome::Nothing => Ok(None),
            Outcome::One(value) => Ok(Some(from_jaq(value))),
            Outcome::Many => Err("many".into()),
            Outcome::Failed(why) => Err(why),
        }
    }

    #[test]
    fn values_cross_between_serde_and_jaq_unchanged() {
        let value = json!({
            "null": null, "t": true, "i": -7, "big": u64::MAX, "f": 1.5, "whole_float": 10.0,
            "s": "héllo", "a": [1, "two", [3]], "o": {"nested": {"deep": [null]}}
        });
        assert_eq!(from_jaq(to_jaq(&value)), value);
    }

    #[test]
    fn standard_library_and_string_interpolation_work() {
        let order = json!({"total": "12.50", "email": "A@B.COM", "first": "Ada", "last": "L"});
        assert_eq!(
            run(".total | tonumber", order.clone()),
            Ok(Some(json!(12.5)))
        );
        assert_eq!(
            run(".email | ascii_downcase", order.clone()),
            Ok(Some(json!("a@b.com")))
        );
        assert_eq!(
            run(r#""\(.first) \(.last)""#, order),
            Ok(Some(json!("Ada L")))
        );
    }

    #[test]
    fn withheld_filters_do_not_compile() {
        for code in ["env", "$ENV", "halt", "halt_error", ". | debug", "stderr"] {
            let error = Program::compile(code).err();
            assert!(
                error.as_deref().is_some_and(|e| e.contains("undefined")),
                "{code}: {error:?}"
            );
        }
    }

    #[test]
    fn parse_errors_say_what_was_expected_and_where() {
        let error = Program::compile(".a | ").err().unwrap_or_default();
        assert_eq!(error, "expected term, found the end");
        let error = Program::compile(".a + )").err().unwrap_or_default();
        assert!(error.contains("column 6"), "{error}");
        let error = Program::compile("nosuchfn(1)").err().unwrap_or_default();
        assert_eq!(error, "undefined filter nosuchfn/1 at column 1");
    }
}
