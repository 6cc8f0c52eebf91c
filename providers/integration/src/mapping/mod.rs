//! Field mappings: how a system's raw record becomes the record a destination receives.
//!
//! A mapping is a set of output fields, each given by one jq expression over the raw record
//! (jq through jaq: docs/adr/0032-mapping-language-jq-through-jaq.md), compiled once per config version (an
//! instance is built per config version) and applied to every record of a sync, a webhook or
//! a re-map:
//!
//! ```text
//! {"order_id": ".id", "email": ".customer.email | ascii_downcase",
//!  "total": ".total_price | tonumber", "name": "\"\\(.first_name) \\(.last_name)\"",
//!  "skus": "[.line_items[].sku]"}
//! ```
//!
//! Each field's expression runs on the whole raw record, and gives the field's value:
//! - one output: that value;
//! - no output (`empty`, `select(..)` that drops it, `.[]` of an empty array): null, as a
//!   missing key reads as null;
//! - more than one output (`.line_items[].sku`): an error naming the field. Taking the first
//!   would drop data silently and an array only when there are several would change the field's
//!   type from record to record; `[ ... ]` collects them all, `first(...)` picks one;
//! - an error (`"abc" | tonumber`, `.a.b` where `.a` is a number): an error naming the field
//!   (`config_unprocessable` at the field's config pointer) with jq's message.
//!
//! A field that is a plain path (`.a.b`, `.a[0]`) is read off the record directly
//! ([`path`]); the rest converts the record into jaq's values once per record, shared by all
//! its jq fields. The tests check that both ways agree.
//!
//! Not every jq filter is offered: `env` (the server's environment), `halt` and the ones
//! that write to the server's log (`debug`, `stderr`) do not compile in a mapping.

mod jq;
mod path;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_spi::{ErrorCode, ProviderError};

use jq::{Outcome, Program};
use path::Step;

/// The longest jq message an error carries: jq quotes the offending value, which can be a
/// whole nested object of the tenant's record.
const MESSAGE_LIMIT: usize = 300;

/// A compiled mapping.
#[derive(Clone)]
pub struct Mapping {
    fields: Vec<Field>,
}

#[derive(Clone)]
struct Field {
    name: String,
    /// `<mapping pointer>/<name>`, for errors.
    pointer: String,
    /// Set when the expression is a plain path: read without the interpreter.
    path: Option<Vec<Step>>,
    /// Always compiled: it validates the expression, and a plain path that jq would refuse
    /// (a key into an array) runs here for jq's own error. Shared by the mapping's copies.
    program: Arc<Program>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.fields.iter().map(|field| &field.name))
            .finish()
    }
}

impl Mapping {
    /// Compiles `fields` (output name → expression); `pointer` is where the mapping sits in
    /// the config, for errors: a bad expression is `config_unprocessable` at
    /// `<pointer>/<field>` with the parser's message.
    pub fn compile(
        fields: &BTreeMap<String, String>,
        pointer: &str,
    ) -> Result<Self, ProviderError> {
        let mut compiled = Vec::with_capacity(fields.len());
        for (name, expression) in fields {
            let pointer = format!("{pointer}/{}", escape_pointer(name));
            let program = Program::compile(expression).map_err(|why| {
                ProviderError::field(
                    ErrorCode::ConfigUnprocessable,
                    &pointer,
                    format!("mapping field {name:?}: {why}"),
                )
            })?;
            compiled.push(Field {
                name: name.clone(),
                pointer,
                path: path::parse(expression),
                program: Arc::new(program),
            });
        }
        Ok(Mapping { fields: compiled })
    }

    /// The mapped record of `raw`: an object with one key per field.
    pub fn apply(&self, raw: &Value) -> Result<Value, ProviderError> {
        let mut out = Map::new();
        // jaq's copy of the record, made on the first field that needs it.
        let mut input = None;
        for field in &self.fields {
            let fast = field.path.as_ref().and_then(|steps| path::read(steps, raw));
            let value = match fast {
                Some(found) => found.cloned().unwrap_or(Value::Null),
                None => {
                    let input = input.get_or_insert_with(|| jq::to_jaq(raw)).clone();
                    match field.program.run(input) {
                        Outcome::One(value) => jq::from_jaq(value),
                        Outcome::Nothing => Value::Null,
                        Outcome::Many => {
                            return Err(field.error(
                                "gave more than one value; collect them with [ ... ] or pick one with first(...)",
                            ));
                        }
                        Outcome::Failed(why) => return Err(field.error(&shorten(why))),
                    }
                }
            };
            out.insert(field.name.clone(), value);
        }
        Ok(Value::Object(out))
    }
}

impl Field {
    fn error(&self, why: &str) -> ProviderError {
        ProviderError::field(
            ErrorCode::ConfigUnprocessable,
            &self.pointer,
            format!("mapping field {:?} failed on a record: {why}", self.name),
        )
    }
}

/// A field name as one JSON pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`).
fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn shorten(mut message: String) -> String {
    if message.len() > MESSAGE_LIMIT {
        let mut end = MESSAGE_LIMIT;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

// Instances holding a mapping are shared across the runtime's tasks.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Mapping>();
};

#[cfg(test)]
mod tests;
