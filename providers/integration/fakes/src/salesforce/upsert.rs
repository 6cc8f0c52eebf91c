//! Upsert by external id: one record (`PATCH sobjects/<Object>/<Field>/<value>`) or up to 200
//! (sObject Collections, `PATCH composite/sobjects/<Object>/<Field>`). A record whose external
//! id matches one held (case-insensitively, as Salesforce matches) is updated, and its
//! `SystemModstamp` moves only if a value changed; otherwise a record is created.

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::objects::ObjectDef;
use super::server::Answer;
use super::{ApiError, State, api_error, format_datetime, touch};

/// Most records one sObject Collections request may carry.
const COLLECTION_LIMIT: usize = 200;

/// Why one record cannot be written: (statusCode, message).
type Refusal = (&'static str, String);
/// One record of a collection, checked: its fields and external id value, or why not.
type Checked<'a> = Result<(&'a Map<String, Value>, String), Refusal>;

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    api_error(StatusCode::BAD_REQUEST, code, message)
}

/// The external id field, if `object` has one by that name.
fn external_id_field(def: &ObjectDef, name: &str) -> Result<&'static str, ApiError> {
    def.field(name)
        .filter(|f| ObjectDef::is_external_id(f))
        .map(|f| f.name)
        .ok_or_else(|| {
            api_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {name}"),
            )
        })
}

impl State {
    fn find(&self, def: &ObjectDef, field: &str, value: &str) -> Option<String> {
        self.tables[def.name]
            .values()
            .find(|r| {
                r.get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
            .and_then(|r| r.get("Id")?.as_str().map(str::to_owned))
    }

    /// Whether `fields` may be written (to a new record when `creating`).
    fn check(def: &ObjectDef, fields: &Map<String, Value>, creating: bool) -> Result<(), Refusal> {
        for name in fields.keys().filter(|k| *k != "attributes") {
            match def.field(name) {
                None => {
                    return Err((
                        "INVALID_FIELD",
                        format!("No such column '{name}' on sobject of type {}", def.name),
                    ));
                }
                Some(f) if !f.writable => {
                    return Err((
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        format!("Unable to create/update fields: {name}."),
                    ));
                }
                Some(_) => {}
            }
        }
        let has_required = fields
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(def.required) && !v.is_null());
        if creating && !has_required {
            return Err((
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", def.required),
            ));
        }
        Ok(())
    }

    /// Writes one checked record; answers its id and whether it was created.
    fn write(
        &mut self,
        def: &ObjectDef,
        field: &'static str,
        value: &str,
        fields: &Map<String, Value>,
    ) -> (String, bool) {
        let existing = self.find(def, field, value);
        let created = existing.is_none();
        let id = existing.unwrap_or_else(|| self.new_id(def));
        let stamp = self.stamp();
        let table = self.tables.get_mut(def.name).expect("a table per object");
        let record = table.entry(id.clone()).or_insert_with(|| {
            let mut record = Map::new();
            record.insert("Id".into(), Value::String(id.clone()));
            record.insert("IsDeleted".into(), Value::Bool(false));
            record.insert("CreatedDate".into(), format_datetime(stamp).into());
            record.insert(field.into(), Value::String(value.to_owned()));
            record
        });
        let mut changed = created;
        for (name, new) in fields.iter().filter(|(k, _)| *k != "attributes") {
            let name = def.field(name).map_or(name.as_str(), |f| f.name);
            if record.get(name) != Some(new) {
                record.insert(name.to_owned(), new.clone());
                changed = true;
            }
        }
        if changed {
            touch(record, stamp);
        }
        (id, created)
    }

    pub(super) fn upsert_one(
        &mut self,
        def: &ObjectDef,
        field: &str,
        value: &str,
        body: &[u8],
    ) -> Answer {
        let field = external_id_field(def, field)?;
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return Err(bad_request(
                "JSON_PARSER_ERROR",
                "the body is not a JSON object",
            ));
        };
        let creating = self.find(def, field, value).is_none();
        Self::check(def, &fields, creating)
            .map_err(|(code, message)| bad_request(code, message))?;
        let (id, created) = self.write(def, field, value, &fields);
        if created {
            Ok((
                StatusCode::CREATED,
                json!({"id": id, "success": true, "errors": [], "created": true}),
            ))
        } else {
            Ok((StatusCode::NO_CONTENT, Value::Null))
        }
    }

    pub(super) fn upsert_many(&mut self, def: &ObjectDef, field: &str, body: &[u8]) -> Answer {
        let field = external_id_field(def, field)?;
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| bad_request("JSON_PARSER_ERROR", e.to_string()))?;
        let all_or_none = body["allOrNone"].as_bool().unwrap_or(false);
        let Some(records) = body["records"].as_array() else {
            return Err(bad_request("INVALID_FIELD", "records is missing"));
        };
        if records.len() > COLLECTION_LIMIT {
            return Err(bad_request(
                "EXCEEDED_ID_LIMIT",
                format!(
                    "record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call"
                ),
            ));
        }
        let checked: Vec<Checked<'_>> = records
            .iter()
            .map(|record| {
                let fields = record
                    .as_object()
                    .ok_or(("INVALID_FIELD", "a record is not an object".to_owned()))?;
                let value = match fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(field)) {
                    Some((_, Value::String(v))) => v.clone(),
                    Some((_, Value::Number(n))) => n.to_string(),
                    _ => return Err(("MISSING_ARGUMENT", format!("{field} not specified"))),
                };
                let creating = self.find(def, field, &value).is_none();
                Self::check(def, fields, creating)?;
                Ok((fields, value))
            })
            .collect();
        let refused = |(code, message): &Refusal| json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": []}]});
        let results: Vec<Value> = if all_or_none && checked.iter().any(Result::is_err) {
            let rolled_back = (
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was using AllOrNone header".to_owned(),
            );
            checked
                .iter()
                .map(|c| refused(c.as_ref().err().unwrap_or(&rolled_back)))
                .collect()
        } else {
            checked
                .iter()
                .map(|c| match c {
                    Ok((fields, value)) => {
                        let (id, created) = self.write(def, field, value, fields);
                        json!({"id": id, "success": true, "errors": [], "created": created})
                    }
                    Err(refusal) => refused(refusal),
                })
                .collect()
        };
        Ok((StatusCode::OK, Value::Array(results)))
    }
}
