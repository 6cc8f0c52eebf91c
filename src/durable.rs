//! The workflow endpoint `serve` and `runtime` host when a Restate server is configured
//! (docs/adr/0044): the Restate SDK's HTTP endpoint serving `business-services/workflows`,
//! registered at the server's admin API so the server invokes the flows here. Every call a
//! flow makes goes through this process's runtime, bound to the tenant its instance key names.
//!
//! Without `SWITCHYARD_RESTATE_*` nothing here runs: `workflow/restate` is not registered
//! and the embedded defaults stay as they are.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use switchyard_client::ProviderClient;
use switchyard_provider_workflow::RestateUrls;
use switchyard_runtime::Runtime;
use switchyard_runtime::client::RuntimeClient;
use switchyard_workflows::Clients;
use tokio::net::TcpListener;

/// Where the endpoint listens and how the Restate server reaches it.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    pub urls: RestateUrls,
    /// `SWITCHYARD_RESTATE_ENDPOINT_LISTEN`, default `127.0.0.1:9080`.
    pub listen: SocketAddr,
    /// `SWITCHYARD_RESTATE_ENDPOINT_URL`: the address the server calls, e.g. a Service's
    /// name in a cluster; by default `http://` and the address bound.
    pub advertised: Option<String>,
    /// `SWITCHYARD_WORKFLOWS_BUS`: where the flows publish their events; by default the
    /// orders' bus (`SWITCHYARD_ORDERS_BUS`), else `bus/embedded`.
    pub bus: String,
}

impl EndpointSettings {
    /// The settings from the environment, `None` when no Restate server is configured.
    pub fn from_env() -> Result<Option<Self>> {
        let Some(urls) = RestateUrls::from_env().map_err(|e| anyhow::anyhow!("{e}"))? else {
            return Ok(None);
        };
        let listen = std::env::var("SWITCHYARD_RESTATE_ENDPOINT_LISTEN")
            .unwrap_or_else(|_| "127.0.0.1:9080".into());
        let listen = listen
            .parse()
            .with_context(|| format!("SWITCHYARD_RESTATE_ENDPOINT_LISTEN {listen:?}"))?;
        Ok(Some(EndpointSettings {
            urls,
            listen,
            advertised: std::env::var("SWITCHYARD_RESTATE_ENDPOINT_URL").ok(),
            bus: std::env::var("SWITCHYARD_WORKFLOWS_BUS")
                .or_else(|_| std::env::var("SWITCHYARD_ORDERS_BUS"))
                .unwrap_or_else(|_| "bus/embedded".into()),
        }))
    }
}

/// Binds the endpoint, serves it on the current tokio runtime, and registers it at the
/// server (retrying in the background until the server takes it: a Restate server that
/// starts after `serve` still gets the flows).
pub async fn host(runtime: Arc<Runtime>, settings: EndpointSettings) -> Result<SocketAddr> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} for workflows", settings.listen))?;
    let bound = listener.local_addr()?;
    let clients: Clients = Arc::new(move |tenant, subject| {
        Arc::new(RuntimeClient::new(runtime.clone(), tenant, subject)) as Arc<dyn ProviderClient>
    });
    let flows = switchyard_workflows::Settings {
        bus: settings.bus.clone(),
    };
    tokio::spawn(serve_endpoint(
        listener,
        switchyard_workflows::endpoint(clients, flows),
    ));
    let uri = settings
        .advertised
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"));
    tracing::info!(%bound, %uri, "workflow endpoint listening");
    tokio::spawn(register(settings.urls.admin.clone(), uri));
    Ok(bound)
}

/// Serves the endpoint to the Restate server over HTTP/2, like the SDK's own `HttpServer`
/// but with TCP_NODELAY: a journal entry is one small frame each way, and without it Nagle's
/// algorithm held the first step's frame of every instance until a delayed ACK (48 ms, where
/// the other steps took 1 ms; docs/performance.md).
async fn serve_endpoint(listener: TcpListener, endpoint: restate_sdk::endpoint::Endpoint) {
    let service = restate_sdk::hyper::HyperEndpoint::new(endpoint);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "workflow endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "workflow endpoint: TCP_NODELAY not set");
        }
        let service = service.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%remote, error = %e, "workflow endpoint: connection ended");
            }
        });
    }
}

/// Registers `uri` as a deployment, forcing over an earlier registration of the same
/// workflows (a new process, a new version of them).
async fn register(admin: String, uri: String) {
    let client = reqwest::Client::new();
    let mut wait = Duration::from_millis(100);
    loop {
        let answer = client
            .post(format!("{admin}/deployments"))
            .json(&json!({"uri": uri, "force": true}))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                tracing::info!(%uri, "workflows registered at the Restate server");
                return;
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                tracing::warn!(%status, %body, "the Restate server refused the workflows; retrying");
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "the Restate server cannot be reached; retrying");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
