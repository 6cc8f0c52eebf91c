//! The catalog, provider, try-it, schema and tenant-key pages: what a tenant's user does with
//! the providers. Each handler calls the gateway's API as the signed-in user and renders
//! [`pages`] from the answer.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::{Page, Response, chart, form, pages};

impl Page<'_> {
    pub(crate) async fn catalog(&self, query: &[(String, String)]) -> Response {
        let get = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map_or("", |(_, v)| v.as_str())
        };
        match self.api.get("/providers").await {
            Ok(catalog) => Response::html(
                200,
                pages::catalog(&self.ctx(), &catalog, get("q"), get("domain")),
            ),
            Err(refusal) => self.refused("Catalog", &refusal),
        }
    }

    pub(crate) async fn provider(
        &self,
        d: &str,
        n: &str,
        notice: Option<pages::Notice>,
    ) -> Response {
        let descriptor = match self.api.get(&format!("/providers/{d}/{n}")).await {
            Ok(descriptor) => descriptor,
            Err(refusal) => return self.refused(&format!("{d}/{n}"), &refusal),
        };
        let health = self.api.get(&format!("/providers/{d}/{n}/health")).await;
        let status = match &notice {
            Some(pages::Notice::Refused(r)) => r.status,
            _ => 200,
        };
        Response::html(
            status,
            pages::provider(&self.ctx(), &descriptor, health.as_ref(), notice.as_ref()),
        )
    }

    pub(crate) async fn configure(&self, d: &str, n: &str, form: &[(String, String)]) -> Response {
        let descriptor = match self.api.get(&format!("/providers/{d}/{n}")).await {
            Ok(descriptor) => descriptor,
            Err(refusal) => return self.refused(&format!("{d}/{n}"), &refusal),
        };
        let stored = &descriptor["config"]["values"];
        let raw = form
            .iter()
            .find(|(k, _)| k == "__json")
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        let config = if raw.is_empty() {
            form::to_json(&descriptor["config_schema"], form, stored)
        } else {
            serde_json::from_str(raw).map_err(|e| format!("the JSON config: {e}"))
        };
        let notice = match config {
            Err(problem) => pages::Notice::Invalid(problem),
            Ok(config) => match self
                .api
                .post(
                    &format!("/providers/{d}/{n}/configure"),
                    &json!({"config": config}),
                )
                .await
            {
                Ok(saved) => {
                    pages::Notice::Done(format!("Configured: version {}.", saved["version"]))
                }
                Err(refusal) => pages::Notice::Refused(refusal),
            },
        };
        self.provider(d, n, Some(notice)).await
    }

    /// `rotate` re-applies the stored config: its `secret://` references are resolved anew
    /// and the instance is swapped, which is what a rotated secret needs.
    pub(crate) async fn lifecycle(&self, d: &str, n: &str, op: &str) -> Response {
        let answer = if op == "rotate" {
            match self.api.get(&format!("/providers/{d}/{n}")).await {
                Ok(descriptor) => {
                    let config = descriptor["config"]["values"].clone();
                    let config = if config.is_null() { json!({}) } else { config };
                    self.api
                        .post(
                            &format!("/providers/{d}/{n}/configure"),
                            &json!({"config": config}),
                        )
                        .await
                }
                Err(refusal) => Err(refusal),
            }
        } else {
            self.api
                .post(&format!("/providers/{d}/{n}/{op}"), &json!({}))
                .await
        };
        let notice = match answer {
            Ok(_) => pages::Notice::Done(match op {
                "rotate" => "Secrets resolved again and the instance swapped.".into(),
                other => format!("{other}: done."),
            }),
            Err(refusal) => pages::Notice::Refused(refusal),
        };
        self.provider(d, n, Some(notice)).await
    }

    pub(crate) async fn chart(&self, d: &str, n: &str) -> Response {
        let metrics = match self.api.text(&format!("/providers/{d}/{n}/metrics")).await {
            Ok(metrics) => metrics,
            Err(refusal) => {
                return Response {
                    status: refusal.status,
                    headers: vec![("content-type", "text/plain; charset=utf-8".into())],
                    body: Bytes::from(refusal.detail),
                };
            }
        };
        let sample = chart::sample(&metrics, Instant::now());
        let drawn = {
            let mut all = self
                .session
                .samples
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let id = format!("{d}/{n}");
            let position = all.iter().position(|(p, _)| *p == id);
            let index = position.unwrap_or_else(|| {
                all.push((id, VecDeque::new()));
                all.len() - 1
            });
            let samples = &mut all[index].1;
            chart::push(samples, sample);
            chart::svg(samples)
        };
        Response {
            status: 200,
            headers: vec![
                ("content-type", "image/svg+xml".into()),
                ("cache-control", "no-store".into()),
            ],
            body: Bytes::from(drawn),
        }
    }

    pub(crate) async fn try_it(
        &self,
        d: &str,
        n: &str,
        action: &str,
        form: Option<&[(String, String)]>,
    ) -> Response {
        let descriptor = match self.api.get(&format!("/providers/{d}/{n}")).await {
            Ok(descriptor) => descriptor,
            Err(refusal) => return self.refused(&format!("{d}/{n}"), &refusal),
        };
        let Some(spec) = descriptor["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == action))
            .cloned()
        else {
            return Response::html(
                404,
                pages::message(
                    &self.ctx(),
                    "Not found",
                    &format!("{d}/{n} has no action {action}."),
                ),
            );
        };
        let Some(form) = form else {
            return Response::html(
                200,
                pages::try_it(&self.ctx(), d, n, &spec, &json!({}), None),
            );
        };
        let raw = form
            .iter()
            .find(|(k, _)| k == "__json")
            .map(|(_, v)| v.trim())
            .unwrap_or_default();
        let params = if raw.is_empty() {
            form::to_json(&spec["params"], form, &Value::Null)
        } else {
            serde_json::from_str(raw).map_err(|e| format!("the JSON params: {e}"))
        };
        let (status, outcome) = match params {
            Err(problem) => (400, pages::Outcome::Invalid(problem)),
            Ok(params) => {
                let answer = self
                    .api
                    .post(
                        &format!("/providers/{d}/{n}/{action}"),
                        &json!({"params": params}),
                    )
                    .await;
                match answer {
                    Ok(answer) => (200, pages::Outcome::Answer(params, answer)),
                    Err(refusal) => (refusal.status, pages::Outcome::Refused(params, refusal)),
                }
            }
        };
        let shown = match &outcome {
            pages::Outcome::Answer(p, _) | pages::Outcome::Refused(p, _) => p.clone(),
            pages::Outcome::Invalid(_) => json!({}),
        };
        Response::html(
            status,
            pages::try_it(&self.ctx(), d, n, &spec, &shown, Some(&outcome)),
        )
    }

    pub(crate) async fn schemas(&self) -> Response {
        let catalog = match self.api.get("/providers").await {
            Ok(catalog) => catalog,
            Err(refusal) => return self.refused("Schemas", &refusal),
        };
        let mut described = Vec::new();
        for entry in catalog["providers"].as_array().into_iter().flatten() {
            let (d, n) = (
                entry["domain"].as_str().unwrap_or_default(),
                entry["name"].as_str().unwrap_or_default(),
            );
            if let Ok(descriptor) = self.api.get(&format!("/providers/{d}/{n}")).await {
                described.push(descriptor);
            }
        }
        Response::html(200, pages::schemas(&self.ctx(), &described))
    }

    pub(crate) async fn tenant(&self, notice: Option<pages::Notice>) -> Response {
        let keys = self.api.get("/keys").await;
        let revision = self.api.get("/policies/revision").await;
        let decisions = self.api.get("/policies/decisions?limit=20").await;
        let status = match &notice {
            Some(pages::Notice::Refused(r)) => r.status,
            _ => 200,
        };
        Response::html(
            status,
            pages::tenant(&self.ctx(), &keys, &revision, &decisions, notice.as_ref()),
        )
    }

    pub(crate) async fn create_key(&self, form: &[(String, String)]) -> Response {
        let scopes = form
            .iter()
            .find(|(k, _)| k == "scopes")
            .map_or("", |(_, v)| v.as_str());
        let notice = match self.api.post("/keys", &json!({"scopes": scopes})).await {
            Ok(created) => {
                pages::Notice::Created(created["key"].as_str().unwrap_or_default().to_owned())
            }
            Err(refusal) => pages::Notice::Refused(refusal),
        };
        self.tenant(Some(notice)).await
    }

    pub(crate) async fn revoke_key(&self, id: &str) -> Response {
        let notice = match self
            .api
            .post(&format!("/keys/{id}/revoke"), &json!({}))
            .await
        {
            Ok(_) => pages::Notice::Done(format!("Key {id} revoked.")),
            Err(refusal) => pages::Notice::Refused(refusal),
        };
        self.tenant(Some(notice)).await
    }
}
