//! What a bundle's policies can read of the input, derived from their Rego, and the
//! projection of an input onto it: the part of a request a decision can depend on.
//!
//! The gateway caches decisions by projection (see [`crate::PolicyEngine`]). That is sound only
//! if the policy cannot tell two inputs with the same projection apart, so the read set is
//! computed from the compiled modules rather than declared by hand: every reference to `input`
//! is followed as far as its keys are literal (`input.resource.warehouse`,
//! `object.get(input, "roles", [])`), and the subtree under that point is read whole. An
//! `input` used any other way (passed whole to a function, indexed by a variable at the top)
//! reads the whole input, and a policy that calls a built-in whose answer is not a function of
//! its arguments (the clock, randomness, the network) cannot be cached at all: for those
//! bundles every decision is evaluated.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::PolicyError;

/// Built-ins whose result depends on something else than their arguments. A policy calling
/// one could decide two identical inputs differently, so its decisions are never cached.
const NONDETERMINISTIC: &[&str] = &[
    "time.now_ns",
    "rand.intn",
    "http.send",
    "uuid.rfc4122",
    "opa.runtime",
    "net.lookup_ip_addr",
    // Checks `exp`/`nbf` against the clock unless the constraints name a time.
    "io.jwt.decode_verify",
    // Certificate validity is checked against the clock.
    "crypto.x509.parse_and_verify_certificates",
    "crypto.x509.parse_and_verify_certificates_with_options",
];

/// The input paths a bundle's policies read: each a list of object keys from the input's
/// root, read whole below that point. Minimal: no path extends another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSet {
    paths: Vec<Vec<String>>,
}

impl ReadSet {
    /// Derives the read set of every module the engine holds, or says why its decisions may not
    /// be cached.
    pub(crate) fn of(engine: &regorus::Engine) -> Result<Result<ReadSet, String>, PolicyError> {
        let ast = engine
            .get_ast_as_json()
            .map_err(|e| PolicyError::Evaluation(format!("{e:#}")))?;
        let modules: Value = serde_json::from_str(&ast)
            .map_err(|e| PolicyError::Evaluation(format!("the policy AST: {e}")))?;
        let mut walk = Walk::default();
        for module in modules.as_array().into_iter().flatten() {
            walk.visit(&module["ast"]);
        }
        if let Some(builtin) = walk.nondeterministic.into_iter().next() {
            return Ok(Err(format!(
                "the policy calls {builtin}, whose answer is not a function of the input"
            )));
        }
        Ok(ReadSet::from_paths(walk.paths))
    }

    /// The minimal set of `paths`; refused when one of them is the whole input (then every
    /// request, with its id, would be a distinct key).
    pub fn from_paths(paths: BTreeSet<Vec<String>>) -> Result<ReadSet, String> {
        if paths.contains(&Vec::new()) {
            return Err("the policy reads the input as a whole".to_owned());
        }
        // Sorted, a path's prefixes come before it: keep a path only if no kept one prefixes it.
        let mut kept: Vec<Vec<String>> = Vec::new();
        for path in paths {
            if !kept.iter().any(|k| path.starts_with(k)) {
                kept.push(path);
            }
        }
        Ok(ReadSet { paths: kept })
    }

    /// The paths, as `a.b.c` strings (for logs and the auditors' view of a bundle).
    pub fn paths(&self) -> Vec<String> {
        self.paths.iter().map(|p| p.join(".")).collect()
    }

    /// The part of `input` the policy can see: for each path, the value there, or, where the
    /// path stops early, what stopped it. An object on the way is kept (emptied of the keys no
    /// path names) so that "present but without this key" stays distinct from "absent"; a
    /// value that is not an object on the way is kept whole, as a lookup into it can observe
    /// its type.
    pub fn project(&self, input: &Value) -> Value {
        let mut projection = Value::Object(Map::new());
        for path in &self.paths {
            copy_path(input, &mut projection, path);
        }
        projection
    }

    /// A byte string that is equal for two inputs only if their projections are: for each
    /// path, how far it got and the JSON of what it found. Written straight from the input, so
    /// a cache lookup builds no projection.
    pub fn key(&self, input: &Value) -> Vec<u8> {
        let mut key = Vec::with_capacity(256);
        for path in &self.paths {
            let mut at = input;
            let mut depth = 0;
            let found = loop {
                let Some(key) = path.get(depth) else {
                    break Some(at);
                };
                match at {
                    Value::Object(fields) => match fields.get(key) {
                        Some(next) => {
                            at = next;
                            depth += 1;
                        }
                        None => break None,
                    },
                    // Kept whole by the projection; only reachable past the root.
                    other => break Some(other),
                }
            };
            // The depth reached, then the value found there (JSON is self-delimiting).
            key.extend_from_slice(&(depth as u32).to_le_bytes());
            match found {
                Some(value) => {
                    key.push(b'=');
                    // Writing JSON into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut key, value);
                }
                None => key.push(b'-'),
            }
        }
        key
    }
}

fn copy_path(from: &Value, to: &mut Value, path: &[String]) {
    let (Some((key, rest)), Value::Object(source), Value::Object(target)) =
        (path.split_first(), from, to)
    else {
        return;
    };
    let Some(value) = source.get(key) else {
        return;
    };
    if rest.is_empty() || !value.is_object() {
        target.insert(key.clone(), value.clone());
        return;
    }
    let slot = target
        .entry(key.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    copy_path(value, slot, rest);
}

/// Collects input paths and non-deterministic calls from the serialized AST of a module.
#[derive(Default)]
struct Walk {
    paths: BTreeSet<Vec<String>>,
    nondeterministic: BTreeSet<String>,
}

impl Walk {
    fn visit(&mut self, node: &Value) {
        match node {
            Value::Array(items) => items.iter().for_each(|item| self.visit(item)),
            Value::Object(fields) => {
                if let Some((path, rest)) = input_reference(node) {
                    self.paths.insert(path);
                    rest.into_iter().for_each(|expr| self.visit(expr));
                    return;
                }
                if let Some(call) = fields.get("Call")
                    && let Some(name) = static_name(&call["fcn"])
                    && NONDETERMINISTIC.contains(&name.as_str())
                {
                    self.nondeterministic.insert(name);
                }
                for (key, value) in fields {
                    if key == "with_mods" {
                        self.visit_with_modifiers(value);
                    } else {
                        self.visit(value);
                    }
                }
            }
            _ => {}
        }
    }

    /// `… with input.x as v`: the target is written, not read (what the rules evaluated under it
    /// read is found in those rules); its value is an expression like any other.
    fn visit_with_modifiers(&mut self, modifiers: &Value) {
        for modifier in modifiers.as_array().into_iter().flatten() {
            self.visit(&modifier["as"]);
            if input_reference(&modifier["refr"]).is_none() {
                self.visit(&modifier["refr"]);
            }
        }
    }
}

/// When `expr` reads from `input`: the literal path it reaches, and the expressions inside it
/// that are not part of that path (dynamic indexes, `object.get` defaults), to visit on their own.
fn input_reference(expr: &Value) -> Option<(Vec<String>, Vec<&Value>)> {
    let reference = follow(expr)?;
    Some((reference.path, reference.rest))
}

/// A reference into `input` being followed outward from the `input` variable.
struct Reference<'a> {
    path: Vec<String>,
    rest: Vec<&'a Value>,
    /// False once a key was computed: what lies beyond it was read whole.
    literal: bool,
}

impl<'a> Reference<'a> {
    /// Extends the path by `key` while every key so far was literal; a computed key ends it
    /// and is visited on its own.
    fn then(mut self, key: &'a Value, literal: Option<String>) -> Reference<'a> {
        match literal {
            Some(key) if self.literal => self.path.push(key),
            Some(_) => {}
            None => {
                self.literal = false;
                self.rest.push(key);
            }
        }
        self
    }
}

fn follow(expr: &Value) -> Option<Reference<'_>> {
    let (kind, node) = single(expr)?;
    match kind {
        "Var" => (node["value"].as_str() == Some("input")).then(|| Reference {
            path: Vec::new(),
            rest: Vec::new(),
            literal: true,
        }),
        "RefDot" => {
            let field = node["field"][1].as_str()?.to_owned();
            Some(follow(&node["refr"])?.then(&node["field"], Some(field)))
        }
        "RefBrack" => {
            let index = &node["index"];
            Some(follow(&node["refr"])?.then(index, literal_string(index)))
        }
        "Call" if static_name(&node["fcn"]).as_deref() == Some("object.get") => {
            let params = node["params"].as_array()?;
            let [object, key, default] = params.as_slice() else {
                return None;
            };
            let mut reference = follow(object)?.then(key, literal_string(key));
            reference.rest.push(default);
            Some(reference)
        }
        _ => None,
    }
}

/// `{"Kind": {...}}`, the serialized form of one AST enum value.
fn single(expr: &Value) -> Option<(&str, &Value)> {
    let fields = expr.as_object()?;
    if fields.len() != 1 {
        return None;
    }
    fields.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn literal_string(expr: &Value) -> Option<String> {
    match single(expr)? {
        ("String" | "RawString", node) => node["value"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// `time.now_ns` for the reference `time.now_ns`; `None` for anything not a dotted name.
fn static_name(expr: &Value) -> Option<String> {
    match single(expr)? {
        ("Var", node) => node["value"].as_str().map(str::to_owned),
        ("RefDot", node) => {
            let base = static_name(&node["refr"])?;
            Some(format!("{base}.{}", node["field"][1].as_str()?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reads(rego: &str) -> Result<ReadSet, String> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("p.rego".into(), format!("package p\n{rego}"))
            .unwrap();
        ReadSet::of(&engine).unwrap()
    }

    fn paths(rego: &str) -> Vec<String> {
        reads(rego).unwrap().paths()
    }

    #[test]
    fn literal_references_and_object_get_are_followed_to_their_last_literal_key() {
        assert_eq!(
            paths(
                r#"x if input.resource.warehouse == "a"
                   y := object.get(input, "roles", [])
                   z := object.get(object.get(input, "resource", {}), "amount", 0)
                   w if input["target_tenant"] == input.tenant"#
            ),
            [
                "resource.amount",
                "resource.warehouse",
                "roles",
                "target_tenant",
                "tenant"
            ]
        );
    }

    #[test]
    fn a_computed_index_reads_the_whole_subtree_and_its_own_references() {
        assert_eq!(
            paths("x if input.resource.lines[input.pick].debit > 0"),
            ["pick", "resource.lines"]
        );
        assert_eq!(paths("x if input.a[0].b"), ["a"]);
        assert_eq!(
            paths("x := object.keys(object.get(input, \"resource\", {}))\ny if input.resource.a"),
            ["resource"]
        );
    }

    #[test]
    fn the_whole_input_or_a_nondeterministic_builtin_refuses_caching() {
        assert!(reads("x := json.marshal(input)").is_err());
        assert!(reads("x if { some k; input[k] }").is_err());
        let clock = reads("x if time.now_ns() > input.deadline").unwrap_err();
        assert!(clock.contains("time.now_ns"), "{clock}");
        assert!(reads("x := http.send({\"method\": \"GET\", \"url\": input.u})").is_err());
    }

    #[test]
    fn a_with_target_is_not_a_read_but_its_value_is() {
        assert_eq!(
            paths("x := v if { v := y with input.roles as input.scopes }\ny if input.tenant"),
            ["scopes", "tenant"]
        );
    }

    #[test]
    fn the_projection_keeps_what_a_lookup_can_observe() {
        let set = ReadSet::from_paths(
            [vec!["resource", "warehouse"], vec!["roles"], vec!["absent"]]
                .into_iter()
                .map(|p| p.into_iter().map(str::to_owned).collect())
                .collect(),
        )
        .unwrap();
        let input =
            json!({"roles": ["a"], "subject": "s", "resource": {"sql": "x", "warehouse": "w"}});
        assert_eq!(
            set.project(&input),
            json!({"roles": ["a"], "resource": {"warehouse": "w"}})
        );
        // An object without the key stays an object; a non-object on the way is kept whole.
        assert_eq!(
            set.project(&json!({"resource": {"sql": "x"}})),
            json!({"resource": {}})
        );
        assert_eq!(
            set.project(&json!({"resource": "text"})),
            json!({"resource": "text"})
        );
    }

    #[test]
    fn keys_are_equal_exactly_when_the_read_fields_are() {
        let set = ReadSet::from_paths(
            [vec!["resource", "warehouse"], vec!["roles"]]
                .into_iter()
                .map(|p| p.into_iter().map(str::to_owned).collect())
                .collect(),
        )
        .unwrap();
        let inputs = [
            json!({}),
            json!({"resource": {}}),
            json!({"resource": {"warehouse": null}}),
            json!({"resource": null}),
            json!({"resource": "w"}),
            json!({"resource": {"warehouse": "w"}}),
            json!({"roles": []}),
            json!({"roles": ["a"]}),
            json!({"roles": ["a"], "resource": {"warehouse": "w"}}),
        ];
        for (i, a) in inputs.iter().enumerate() {
            for (j, b) in inputs.iter().enumerate() {
                assert_eq!(set.key(a) == set.key(b), i == j, "{a} vs {b}");
                assert_eq!(set.project(a) == set.project(b), i == j, "{a} vs {b}");
            }
        }
        // Fields the policy does not read leave the key alone.
        let mut other = inputs[8].clone();
        other["subject"] = json!("s");
        other["resource"]["sql"] = json!("select 1");
        assert_eq!(set.key(&other), set.key(&inputs[8]));
    }
}
