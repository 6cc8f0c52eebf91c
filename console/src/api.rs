//! The console's one way to the platform: the gateway's public API, called with the signed-in
//! user's own credential. Whatever the console shows or does, the gateway has authenticated,
//! rate-limited and put to the policy engine exactly as if the user had called it with curl —
//! a page can hide a button, but only the server decides.

use serde_json::Value;

/// What the gateway refused, as its problem document says it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub detail: String,
    pub pointers: Vec<(String, String)>,
}

impl Refusal {
    fn unreachable(error: reqwest::Error) -> Self {
        Refusal {
            status: 502,
            code: "provider_unavailable".into(),
            detail: format!("the gateway could not be reached: {error}"),
            pointers: Vec::new(),
        }
    }
}

/// One user's view of the gateway at `base` (the listener the page was requested on).
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub credential: &'a str,
}

impl Api<'_> {
    pub async fn get(&self, path: &str) -> Result<Value, Refusal> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Refusal> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Refusal> {
        let request = self.http.put(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, Refusal> {
        let request = self.http.delete(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// The raw text of a GET (the OpenMetrics of `/providers/{d}/{n}/metrics`, an export).
    pub async fn text(&self, path: &str) -> Result<String, Refusal> {
        self.fetch(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Refusal> {
        let text = self.fetch(request).await?;
        serde_json::from_str(&text).map_err(|e| Refusal {
            status: 502,
            code: "internal".into(),
            detail: format!("the gateway answered something that is not JSON: {e}"),
            pointers: Vec::new(),
        })
    }

    /// The body of a successful answer, or the refusal its problem document describes.
    async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<String, Refusal> {
        let response = request
            .bearer_auth(self.credential)
            .send()
            .await
            .map_err(Refusal::unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(Refusal::unreachable)?;
        if status >= 400 {
            return Err(refusal(status, &text));
        }
        Ok(text)
    }
}

fn refusal(status: u16, body: &str) -> Refusal {
    let problem: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let text = |key: &str| problem[key].as_str().unwrap_or_default().to_owned();
    Refusal {
        status,
        code: text("code"),
        detail: if problem["detail"].is_string() {
            text("detail")
        } else {
            format!("the gateway answered {status}")
        },
        pointers: problem["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["pointer"].as_str().unwrap_or_default().to_owned(),
                            e["detail"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}
