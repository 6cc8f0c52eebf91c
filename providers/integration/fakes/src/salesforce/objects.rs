//! The fake org's objects: their fields (as describe answers them) and generated records.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::{ApiError, State, api_error, format_datetime, now_ms, touch};

/// A field of a fake sObject: name, describe type, and whether the API lets a write set it.
pub(super) struct FieldDef {
    pub(super) name: &'static str,
    pub(super) kind: &'static str,
    pub(super) writable: bool,
}

const fn field(name: &'static str, kind: &'static str, writable: bool) -> FieldDef {
    FieldDef {
        name,
        kind,
        writable,
    }
}

/// The system fields every object has, first in describe's order.
const SYSTEM_FIELDS: [FieldDef; 5] = [
    field("Id", "id", false),
    field("IsDeleted", "boolean", false),
    field("CreatedDate", "datetime", false),
    field("LastModifiedDate", "datetime", false),
    field("SystemModstamp", "datetime", false),
];

pub(super) struct ObjectDef {
    pub(super) name: &'static str,
    /// The key prefix of the object's ids (`001` for Account).
    pub(super) prefix: &'static str,
    /// The field a create must set.
    pub(super) required: &'static str,
    pub(super) fields: &'static [FieldDef],
}

pub(super) const OBJECTS: [ObjectDef; 3] = [
    ObjectDef {
        name: "Account",
        prefix: "001",
        required: "Name",
        fields: &[
            field("Name", "string", true),
            field("Industry", "picklist", true),
            field("AnnualRevenue", "currency", true),
            field("NumberOfEmployees", "int", true),
            field("BillingCity", "string", true),
            field("Tier__c", "picklist", true),
            field("External_Id__c", "string", true),
        ],
    },
    ObjectDef {
        name: "Contact",
        prefix: "003",
        required: "LastName",
        fields: &[
            field("FirstName", "string", true),
            field("LastName", "string", true),
            field("Email", "email", true),
            field("Phone", "phone", true),
            field("AccountId", "reference", true),
            field("External_Id__c", "string", true),
        ],
    },
    ObjectDef {
        name: "Opportunity",
        prefix: "006",
        required: "Name",
        fields: &[
            field("Name", "string", true),
            field("StageName", "picklist", true),
            field("Amount", "currency", true),
            field("CloseDate", "date", true),
            field("AccountId", "reference", true),
            field("External_Id__c", "string", true),
        ],
    },
];

pub(super) fn object_def(name: &str) -> Option<&'static ObjectDef> {
    OBJECTS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

impl ObjectDef {
    pub(super) fn all_fields(&self) -> impl Iterator<Item = &'static FieldDef> {
        SYSTEM_FIELDS.iter().chain(self.fields.iter())
    }

    pub(super) fn field(&self, name: &str) -> Option<&'static FieldDef> {
        self.all_fields()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub(super) fn is_external_id(field: &FieldDef) -> bool {
        field.name.ends_with("__c") && field.name.contains("External_Id")
    }
}

const INDUSTRIES: [&str; 4] = ["Technology", "Retail", "Manufacturing", "Finance"];
const STAGES: [&str; 3] = ["Prospecting", "Negotiation/Review", "Closed Won"];
const TIERS: [&str; 3] = ["Gold", "Silver", "Bronze"];

impl State {
    /// The next timestamp: now, but never at or before the previous one.
    pub(super) fn stamp(&mut self) -> i64 {
        self.clock = now_ms().max(self.clock + 1);
        self.clock
    }

    pub(super) fn table(
        &mut self,
        object: &str,
    ) -> Option<&mut BTreeMap<String, Map<String, Value>>> {
        self.tables.get_mut(object_def(object)?.name)
    }

    pub(super) fn new_id(&mut self, def: &ObjectDef) -> String {
        self.next_number += 1;
        format!("{}FK{:010}AAA", def.prefix, self.next_number)
    }

    pub(super) fn add(&mut self, object: &str, count: usize) -> Vec<String> {
        let Some(def) = object_def(object) else {
            return Vec::new();
        };
        let accounts: Vec<String> = self.tables["Account"].keys().take(100).cloned().collect();
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.new_id(def);
            let n = self.next_number as usize;
            let account = (!accounts.is_empty()).then(|| accounts[n % accounts.len()].clone());
            let mut record = match def.name {
                "Account" => json!({
                    "Name": format!("Account {n}"),
                    "Industry": INDUSTRIES[n % INDUSTRIES.len()],
                    "AnnualRevenue": (n * 1000) as f64,
                    "NumberOfEmployees": n % 500,
                    "BillingCity": "Springfield",
                    "Tier__c": TIERS[n % TIERS.len()],
                    "External_Id__c": format!("ACC-{n}"),
                }),
                "Contact" => json!({
                    "FirstName": "Pat",
                    "LastName": format!("Contact {n}"),
                    "Email": format!("contact{n}@example.com"),
                    "Phone": "+1 555 0100",
                    "AccountId": account,
                    "External_Id__c": format!("CON-{n}"),
                }),
                _ => json!({
                    "Name": format!("Opportunity {n}"),
                    "StageName": STAGES[n % STAGES.len()],
                    "Amount": (n * 250) as f64,
                    "CloseDate": "2027-03-31",
                    "AccountId": account,
                    "External_Id__c": format!("OPP-{n}"),
                }),
            };
            let stamp = self.stamp();
            let Value::Object(fields) = &mut record else {
                unreachable!("a json! object literal")
            };
            fields.insert("Id".into(), Value::String(id.clone()));
            fields.insert("IsDeleted".into(), Value::Bool(false));
            fields.insert("CreatedDate".into(), format_datetime(stamp).into());
            touch(fields, stamp);
            let fields = std::mem::take(fields);
            self.tables
                .get_mut(def.name)
                .expect("a table per object")
                .insert(id.clone(), fields);
            ids.push(id);
        }
        ids
    }
}

pub(super) fn known(object: &str) -> Result<&'static ObjectDef, ApiError> {
    object_def(object).ok_or_else(|| {
        api_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    })
}

pub(super) fn describe_global() -> Value {
    let sobjects: Vec<Value> = OBJECTS
        .iter()
        .map(|o| json!({"name": o.name, "label": o.name, "custom": false, "queryable": true, "keyPrefix": o.prefix}))
        .collect();
    json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})
}

pub(super) fn describe(def: &ObjectDef) -> Value {
    let fields: Vec<Value> = def
        .all_fields()
        .map(|f| {
            json!({
                "name": f.name,
                "type": f.kind,
                "label": f.name.trim_end_matches("__c").replace('_', " "),
                "custom": f.name.ends_with("__c"),
                "externalId": ObjectDef::is_external_id(f),
                "createable": f.writable,
                "updateable": f.writable,
                "nillable": f.name != def.required && f.writable,
            })
        })
        .collect();
    json!({"name": def.name, "label": def.name, "custom": false, "queryable": true, "keyPrefix": def.prefix, "fields": fields})
}
