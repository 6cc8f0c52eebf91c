//! Versioned prompt templates: a tenant publishes `support-reply` v3 once, and callers send
//! the template's name and variables instead of the prompt, so the prompt changes without a
//! client release and the audit records which version answered.
//!
//! Templates are Jinja (minijinja). Each message's content is compiled once when the config
//! is built, so a syntax error refuses the config instead of failing a request. Rendering is
//! sandboxed: there is no loader (no filesystem, no `include`/`extends`/`import`, no macros:
//! the workspace builds minijinja without those features), an undefined variable is an error
//! rather than an empty string, fuel bounds the instructions one message may execute (a loop
//! over `range(…)` cannot spin), and the output is refused past [`MAX_OUTPUT_BYTES`].
//!
//! Errors name the template, its version and what failed (a line, a missing variable's name),
//! never a variable's value: variables carry the caller's data.

use std::collections::{BTreeMap, HashMap};
use std::io;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most one render may produce, over all its messages.
pub const MAX_OUTPUT_BYTES: usize = 200_000;
/// Instructions one message's template may execute: generous for loops over a few thousand
/// items, small enough that a runaway loop ends in milliseconds.
const FUEL: u64 = 1_000_000;
/// Nesting depth of blocks and loops; prompts need little.
const RECURSION_LIMIT: usize = 64;
const NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";
const MAX_CONTENT_CHARS: usize = 100_000;

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One published version of a prompt template.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// How callers name the template, e.g. support-reply.
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// The version; callers pin one or get the highest.
    #[schemars(range(min = 1))]
    pub version: u32,
    /// What the template is for, for the console.
    #[serde(default)]
    #[schemars(with = "String", length(max = 1000))]
    pub description: Option<String>,
    /// The messages the template renders, in order.
    #[schemars(length(min = 1, max = 100))]
    pub messages: Vec<TemplateMessage>,
}

/// One message of a template.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateMessage {
    pub role: Role,
    /// The content as a Jinja template, e.g. "Answer {{ customer.name }} about {{ topic }}."
    /// Variables must be given when rendering; `{% if x is defined %}` makes one optional.
    #[schemars(length(max = MAX_CONTENT_CHARS))]
    pub content: String,
}

/// Why a template set could not be built or a template not rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name:?}: version must be at least 1")]
    VersionZero { name: String },
    #[error("template {name:?}: the name must match {NAME_PATTERN}")]
    InvalidName { name: String },
    #[error("template {name:?} v{version} is configured twice")]
    Duplicate { name: String, version: u32 },
    #[error("template {name:?} v{version} has no messages")]
    NoMessages { name: String, version: u32 },
    /// A message's content does not parse.
    #[error("template {name:?} v{version}, message {message}, line {line}: {reason}")]
    Syntax {
        name: String,
        version: u32,
        message: usize,
        line: usize,
        reason: String,
    },
    #[error("no template {name:?}{}", version.map(|v| format!(" v{v}")).unwrap_or_default())]
    NotFound { name: String, version: Option<u32> },
    #[error("template {name:?} v{version}: variables must be a JSON object")]
    VariablesNotObject { name: String, version: u32 },
    #[error("template {name:?} v{version}, message {message}: missing variables: {}", missing.join(", "))]
    MissingVariables {
        name: String,
        version: u32,
        message: usize,
        missing: Vec<String>,
    },
    /// Any other failure while rendering; `what` is the engine's kind of error (an undefined
    /// attribute, an invalid operation, out of fuel), not its detail, which may quote values.
    #[error("template {name:?} v{version}, message {message}{}: {what}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Render {
        name: String,
        version: u32,
        message: usize,
        line: Option<usize>,
        what: String,
    },
    #[error("template {name:?} v{version}: the rendered messages exceed {MAX_OUTPUT_BYTES} bytes")]
    OutputTooLarge { name: String, version: u32 },
}

impl TemplateError {
    /// The contract's error code: config errors are `config_unprocessable` (the schema admits
    /// them), an unknown template is `resource_not_found`, a render the caller's variables
    /// broke is `params_unprocessable`.
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::VersionZero { .. }
            | TemplateError::InvalidName { .. }
            | TemplateError::Duplicate { .. }
            | TemplateError::NoMessages { .. }
            | TemplateError::Syntax { .. } => "config_unprocessable",
            TemplateError::NotFound { .. } => "resource_not_found",
            TemplateError::VariablesNotObject { .. }
            | TemplateError::MissingVariables { .. }
            | TemplateError::Render { .. }
            | TemplateError::OutputTooLarge { .. } => "params_unprocessable",
        }
    }
}

#[derive(Debug)]
struct CompiledMessage {
    role: Role,
    /// The message's name in the environment.
    key: String,
    /// The top-level variables the content reads and does not set, minus the globals: the
    /// names to report when a render fails on an undefined value.
    reads: Vec<String>,
}

#[derive(Debug)]
struct Compiled {
    description: Option<String>,
    messages: Vec<CompiledMessage>,
}

/// Every template of one instance, compiled.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// By name, then version.
    by_name: HashMap<String, BTreeMap<u32, Compiled>>,
}

impl Templates {
    pub fn new(configs: &[TemplateConfig]) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Prompts are plain text: no HTML escaping whatever a name looks like.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        let globals: Vec<String> = env.globals().map(|(name, _)| name.to_owned()).collect();

        let mut by_name: HashMap<String, BTreeMap<u32, Compiled>> = HashMap::new();
        let mut count = 0usize;
        for config in configs {
            let name = &config.name;
            let version = config.version;
            if !valid_name(name) {
                return Err(TemplateError::InvalidName { name: name.clone() });
            }
            if version == 0 {
                return Err(TemplateError::VersionZero { name: name.clone() });
            }
            if config.messages.is_empty() {
                return Err(TemplateError::NoMessages {
                    name: name.clone(),
                    version,
                });
            }
            let versions = by_name.entry(name.clone()).or_default();
            if versions.contains_key(&version) {
                return Err(TemplateError::Duplicate {
                    name: name.clone(),
                    version,
                });
            }
            let mut messages = Vec::with_capacity(config.messages.len());
            for (index, message) in config.messages.iter().enumerate() {
                // Keys independent of the template's name, so no name can collide.
                let key = format!("m{count}");
                count += 1;
                env.add_template_owned(key.clone(), message.content.clone())
                    .map_err(|err| TemplateError::Syntax {
                        name: name.clone(),
                        version,
                        message: index,
                        line: err.line().unwrap_or(1),
                        reason: err
                            .detail()
                            .map_or_else(|| err.kind().to_string(), str::to_owned),
                    })?;
                let mut reads: Vec<String> = env
                    .get_template(&key)
                    .map(|template| template.undeclared_variables(false))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|variable| !globals.contains(variable))
                    .collect();
                reads.sort_unstable();
                messages.push(CompiledMessage {
                    role: message.role,
                    key,
                    reads,
                });
            }
            versions.insert(
                version,
                Compiled {
                    description: config.description.clone(),
                    messages,
                },
            );
        }
        Ok(Self { env, by_name })
    }

    /// The versions of `name`, lowest first.
    pub fn versions(&self, name: &str) -> impl Iterator<Item = u32> + '_ {
        self.by_name
            .get(name)
            .into_iter()
            .flat_map(|versions| versions.keys().copied())
    }

    /// The description of one version.
    pub fn description(&self, name: &str, version: u32) -> Option<&str> {
        self.by_name
            .get(name)?
            .get(&version)?
            .description
            .as_deref()
    }

    /// Renders `name` at `version` (`None`: the highest) with `variables`, a JSON object.
    /// Returns the version rendered and its messages in order.
    pub fn render(
        &self,
        name: &str,
        version: Option<u32>,
        variables: &Value,
    ) -> Result<(u32, Vec<(Role, String)>), TemplateError> {
        let not_found = || TemplateError::NotFound {
            name: name.to_owned(),
            version,
        };
        let versions = self.by_name.get(name).ok_or_else(not_found)?;
        let (version, compiled) = match version {
            Some(v) => (v, versions.get(&v).ok_or_else(not_found)?),
            None => versions
                .iter()
                .next_back()
                .map(|(v, c)| (*v, c))
                .ok_or_else(not_found)?,
        };
        let Some(given) = variables.as_object() else {
            return Err(TemplateError::VariablesNotObject {
                name: name.to_owned(),
                version,
            });
        };

        let mut remaining = MAX_OUTPUT_BYTES;
        let mut rendered = Vec::with_capacity(compiled.messages.len());
        for (index, message) in compiled.messages.iter().enumerate() {
            let failed = |what: String, line: Option<usize>| TemplateError::Render {
                name: name.to_owned(),
                version,
                message: index,
                line,
                what,
            };
            let template = self
                .env
                .get_template(&message.key)
                .map_err(|err| failed(err.kind().to_string(), None))?;
            let mut out = Bounded {
                bytes: Vec::new(),
                remaining: &mut remaining,
                overflowed: false,
            };
            let result = template.render_captured_to(variables, &mut out);
            if out.overflowed {
                return Err(TemplateError::OutputTooLarge {
                    name: name.to_owned(),
                    version,
                });
            }
            if let Err(err) = result {
                if err.kind() == ErrorKind::UndefinedError {
                    let missing: Vec<String> = message
                        .reads
                        .iter()
                        .filter(|variable| !given.contains_key(*variable))
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        return Err(TemplateError::MissingVariables {
                            name: name.to_owned(),
                            version,
                            message: index,
                            missing,
                        });
                    }
                }
                return Err(failed(err.kind().to_string(), err.line()));
            }
            // minijinja writes whole `str`s, so the bytes are UTF-8.
            let content = String::from_utf8(out.bytes)
                .map_err(|_| failed("output is not UTF-8".to_owned(), None))?;
            rendered.push((message.role, content));
        }
        Ok((version, rendered))
    }
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A writer that refuses to grow past the render's remaining output budget, so an oversized
/// render stops as soon as it crosses the limit instead of building the whole string first.
struct Bounded<'r> {
    bytes: Vec<u8>,
    remaining: &'r mut usize,
    overflowed: bool,
}

impl io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > *self.remaining {
            self.overflowed = true;
            return Err(io::Error::other("template output limit"));
        }
        *self.remaining -= buf.len();
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template(name: &str, version: u32, messages: &[(Role, &str)]) -> TemplateConfig {
        TemplateConfig {
            name: name.into(),
            version,
            description: None,
            messages: messages
                .iter()
                .map(|(role, content)| TemplateMessage {
                    role: *role,
                    content: (*content).into(),
                })
                .collect(),
        }
    }

    fn set() -> Templates {
        Templates::new(&[
            template(
                "support",
                1,
                &[(Role::System, "v1 for {{ customer }}"), (Role::User, "{{ question }}")],
            ),
            template(
                "support",
                3,
                &[
                    (Role::System, "You help {{ customer | upper }}.{% if tone is defined %} Be {{ tone }}.{% endif %}"),
                    (Role::User, "{% for q in questions %}- {{ q }}\n{% endfor %}"),
                ],
            ),
            template("support", 2, &[(Role::User, "v2 {{ customer }}")]),
        ])
        .unwrap()
    }

    #[test]
    fn the_highest_version_renders_unless_one_is_pinned() {
        let templates = set();
        let (version, messages) = templates
            .render(
                "support",
                None,
                &json!({"customer": "acme", "questions": ["a", "b"]}),
            )
            .unwrap();
        assert_eq!(version, 3);
        assert_eq!(
            messages,
            [
                (Role::System, "You help ACME.".to_owned()),
                (Role::User, "- a\n- b\n".to_owned())
            ]
        );
        let (_, messages) = templates
            .render(
                "support",
                Some(1),
                &json!({"customer": "acme", "question": "why?"}),
            )
            .unwrap();
        assert_eq!(
            messages,
            [
                (Role::System, "v1 for acme".to_owned()),
                (Role::User, "why?".to_owned())
            ]
        );
        assert_eq!(templates.versions("support").collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn optional_variables_are_tested_with_is_defined() {
        let (_, messages) = set()
            .render(
                "support",
                Some(3),
                &json!({"customer": "acme", "tone": "brief", "questions": []}),
            )
            .unwrap();
        assert_eq!(messages[0].1, "You help ACME. Be brief.");
        assert_eq!(messages[1].1, "");
    }

    #[test]
    fn a_missing_variable_is_named_and_no_value_is_echoed() {
        let err = set()
            .render("support", Some(1), &json!({"customer": "s3cr3t-customer"}))
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::MissingVariables {
                name: "support".into(),
                version: 1,
                message: 1,
                missing: vec!["question".into()],
            }
        );
        assert_eq!(err.code(), "params_unprocessable");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn an_undefined_attribute_fails_with_its_line_and_no_value() {
        let templates =
            Templates::new(&[template("t", 1, &[(Role::User, "Hello\n{{ user.nmae }}")])]).unwrap();
        let err = templates
            .render("t", None, &json!({"user": {"name": "Private Person"}}))
            .unwrap_err();
        let TemplateError::Render { line, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*line, Some(2));
        assert!(!err.to_string().contains("Private"), "{err}");
    }

    #[test]
    fn a_failing_filter_does_not_quote_the_value() {
        let templates =
            Templates::new(&[template("t", 1, &[(Role::User, "{{ secret + 1 }}")])]).unwrap();
        let err = templates
            .render("t", None, &json!({"secret": "hunter2"}))
            .unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn unknown_templates_and_versions_are_not_found() {
        let templates = set();
        let err = templates.render("nope", None, &json!({})).unwrap_err();
        assert_eq!(err.code(), "resource_not_found");
        let err = templates
            .render("support", Some(9), &json!({}))
            .unwrap_err();
        assert_eq!(err.to_string(), "no template \"support\" v9");
    }

    #[test]
    fn variables_must_be_an_object() {
        let err = set().render("support", None, &json!(["a"])).unwrap_err();
        assert!(matches!(
            err,
            TemplateError::VariablesNotObject { version: 3, .. }
        ));
    }

    #[test]
    fn a_syntax_error_refuses_the_set_naming_template_version_and_line() {
        let err = Templates::new(&[template(
            "broken",
            4,
            &[
                (Role::System, "fine"),
                (Role::User, "line one\n{% if x %}unclosed"),
            ],
        )])
        .unwrap_err();
        let TemplateError::Syntax {
            name,
            version,
            message,
            line,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (name.as_str(), *version, *message, *line),
            ("broken", 4, 1, 2)
        );
        assert_eq!(err.code(), "config_unprocessable");
    }

    #[test]
    fn includes_and_macros_are_not_available() {
        for source in [
            "{% include 'other' %}",
            "{% extends 'base' %}",
            "{% macro m() %}x{% endmacro %}",
        ] {
            let built = Templates::new(&[template("t", 1, &[(Role::User, source)])]);
            assert!(
                matches!(built, Err(TemplateError::Syntax { .. })),
                "{source}: {built:?}"
            );
        }
    }

    #[test]
    fn duplicates_zero_versions_and_bad_names_are_refused() {
        let one = template("t", 1, &[(Role::User, "x")]);
        assert!(matches!(
            Templates::new(&[one.clone(), one.clone()]),
            Err(TemplateError::Duplicate { version: 1, .. })
        ));
        assert!(matches!(
            Templates::new(&[template("t", 0, &[(Role::User, "x")])]),
            Err(TemplateError::VersionZero { .. })
        ));
        assert!(matches!(
            Templates::new(&[template("has space", 1, &[(Role::User, "x")])]),
            Err(TemplateError::InvalidName { .. })
        ));
        assert!(matches!(
            Templates::new(&[template("t", 1, &[])]),
            Err(TemplateError::NoMessages { .. })
        ));
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let templates = Templates::new(&[template(
            "big",
            1,
            &[(Role::System, "{{ text }}"), (Role::User, "{{ text }}")],
        )])
        .unwrap();
        let half = "x".repeat(MAX_OUTPUT_BYTES / 2);
        assert!(
            templates
                .render("big", None, &json!({"text": half}))
                .is_ok()
        );
        let over = "x".repeat(MAX_OUTPUT_BYTES / 2 + 1);
        let err = templates
            .render("big", None, &json!({"text": over}))
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::OutputTooLarge {
                name: "big".into(),
                version: 1
            },
            "the limit is over all messages"
        );
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let templates = Templates::new(&[template(
            "spin",
            1,
            &[(
                Role::User,
                "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
            )],
        )])
        .unwrap();
        let err = templates.render("spin", None, &json!({})).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Render { what, .. } if what.contains("fuel")),
            "{err:?}"
        );
    }

    #[test]
    fn markup_is_not_escaped() {
        let templates =
            Templates::new(&[template("t.html", 1, &[(Role::User, "{{ v }}")])]).unwrap();
        let (_, messages) = templates
            .render("t.html", None, &json!({"v": "<b>&</b>"}))
            .unwrap();
        assert_eq!(messages[0].1, "<b>&</b>");
    }

    #[test]
    fn the_published_name_pattern_and_the_check_agree() {
        let schema = serde_json::to_value(schemars::schema_for!(TemplateConfig)).unwrap();
        assert_eq!(schema["properties"]["name"]["pattern"], NAME_PATTERN);
        let regex = regex::Regex::new(NAME_PATTERN).unwrap();
        for name in [
            "a",
            "support-reply",
            "v1.2_x",
            "",
            "-x",
            ".x",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert_eq!(regex.is_match(name), valid_name(name), "{name:?}");
        }
    }

    #[test]
    fn the_config_parses_roles_and_refuses_unknown_fields() {
        let config: TemplateConfig = serde_json::from_value(json!({
            "name": "t", "version": 2, "description": "d",
            "messages": [{"role": "assistant", "content": "hi"}]
        }))
        .unwrap();
        assert_eq!(config.messages[0].role, Role::Assistant);
        assert!(
            serde_json::from_value::<TemplateConfig>(json!({
                "name": "t", "version": 1, "messages": [{"role": "tool", "content": "x"}]
            }))
            .is_err()
        );
        assert!(
            serde_json::from_value::<TemplateConfig>(json!({
                "name": "t", "version": 1, "messages": [], "extra": 1
            }))
            .is_err()
        );
        let templates = Templates::new(&[config]).unwrap();
        assert_eq!(templates.description("t", 2), Some("d"));
    }
}
