//! Inbound webhooks, `POST /inbound/{tenant}/integration/{name}`: the one route a third party
//! calls without a Switchyard API key. The gateway takes the tenant from the path and runs the
//! engine's `receive` with the sender's headers as params and the raw body as its payload; the
//! engine verifies the sender's signature. A tenant that does not exist, an engine that takes
//! no webhooks or that the tenant has not configured, and a signature that does not verify all
//! answer 401 `signature_invalid`, so the route tells a sender no tenant's name. One path per integration engine serving
//! `receive`, with that action's result.

use serde_json::{Map, Value, json};

use crate::descriptor::ProviderDescriptor;

use super::problem_response;

/// The paths of the engines in `providers` that take webhooks.
pub fn paths(providers: &[ProviderDescriptor]) -> Map<String, Value> {
    let mut paths = Map::new();
    for provider in providers.iter().filter(|p| p.domain == "integration") {
        let Some(receive) = provider.actions.iter().find(|a| a.name == "receive") else {
            continue;
        };
        let tag = format!("{}/{}", provider.domain, provider.name);
        let answer = json!({
            "type": "object", "required": ["data", "meta"], "additionalProperties": false,
            "properties": {"data": receive.result, "meta": {"$ref": "#/components/schemas/ResponseMeta"}}
        });
        paths.insert(
            format!("/inbound/{{tenant}}/integration/{}", provider.name),
            json!({
                "parameters": [{"name": "tenant", "in": "path", "required": true,
                                "schema": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
                                "description": "The tenant the webhook is for; the sender is given this URL."}],
                "post": {
                    "operationId": format!("inbound_integration_{}", provider.name),
                    "summary": format!("A webhook from the system behind {tag}, for the tenant in the path: no API key, the sender's own signature verified by the engine ({}).", receive.summary),
                    "tags": [tag],
                    "security": [],
                    "requestBody": {
                        "required": false,
                        "description": "The sender's payload, byte for byte as it was signed, of any content type. Every header but Authorization, Cookie and the connection's own reaches the engine as `headers` (names lower-cased); the gateway's body limit and the tenant's rate limit apply.",
                        "content": {
                            "application/json": {"schema": {}},
                            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                        }
                    },
                    "responses": {
                        "200": {"description": "Received: its records written to the stream's destination, or a repeated delivery dropped.",
                                "content": {"application/json": {"schema": answer}}},
                        "401": problem_response("The signature does not verify, or the path names no tenant, no engine that takes webhooks or one the tenant has not configured (signature_invalid)."),
                        "default": {"$ref": "#/components/responses/Problem"}
                    }
                }
            }),
        );
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::ActionDescriptor;

    fn engine(domain: &str, name: &str, actions: &[&str]) -> ProviderDescriptor {
        ProviderDescriptor {
            domain: domain.into(),
            name: name.into(),
            version: "0".into(),
            summary: String::new(),
            capabilities: vec![],
            config_schema: json!({"type": "object"}),
            actions: actions
                .iter()
                .map(|a| ActionDescriptor {
                    name: (*a).into(),
                    summary: format!("{a} summary"),
                    params: json!({"type": "object"}),
                    result: json!({"type": "object", "title": *a}),
                })
                .collect(),
        }
    }

    #[test]
    fn only_integration_engines_that_receive_get_a_keyless_inbound_path() {
        let paths = paths(&[
            engine("integration", "shopify", &["sync", "receive"]),
            engine("integration", "webhook", &["trigger"]),
            engine("db", "sqlite", &["receive"]),
        ]);
        let names: Vec<&String> = paths.keys().collect();
        assert_eq!(names, ["/inbound/{tenant}/integration/shopify"]);
        let post = &paths["/inbound/{tenant}/integration/shopify"]["post"];
        assert_eq!(post["security"], json!([]));
        assert_eq!(
            post["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
                ["title"],
            "receive"
        );
    }
}
