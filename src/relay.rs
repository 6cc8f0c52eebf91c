//! The per-tenant workers that run beside the services, through a gateway:
//! `switchyard relay` empties one tenant's outboxes onto its bus — the services' outbox in the
//! service books, through `/services/outbox/relay` (the books are not reachable through
//! `/providers/db/*`), and the tenant's own outbox in its database — and
//! `switchyard annotate-orders` annotates the tenant's new orders from that bus.
//!
//! They run as their own processes on purpose: they hold no state of their own (the outbox
//! rows and the consumer group's committed position are the state), so they can be killed at
//! any moment and restarted; what was published but not yet marked is simply published again,
//! and what was read but not committed is read again.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use switchyard_client::{HttpClient, ProviderClient};
use switchyard_contracts::{Problem, TenantId};
use switchyard_orders::Annotator;
use switchyard_outbox::{Dialect, Outbox, Relay};

/// Where a worker reaches its tenant.
pub struct Connection {
    pub gateway: String,
    pub tenant: String,
    pub api_key: String,
}

pub struct RelayArgs {
    pub connection: Connection,
    pub db: String,
    pub bus: String,
    pub batch: usize,
    pub idle: Duration,
}

pub fn run(args: RelayArgs) -> Result<()> {
    let client = client(&args.connection)?;
    let outbox = Outbox::new(&args.db).map_err(|p| anyhow::anyhow!(p.detail))?;
    let relay = Relay::new(outbox.clone(), &args.bus, args.batch);
    on_runtime(async move {
        outbox
            .install(&client)
            .await
            .map_err(|p| anyhow::anyhow!("installing the outbox in {}: {}", args.db, p.detail))?;
        // The services' SQL is for SQLite and PostgreSQL only: elsewhere there are no books.
        let dialect = outbox
            .dialect(&client)
            .await
            .map_err(|p| anyhow::anyhow!(p.detail))?;
        let books = (dialect != Dialect::Mysql).then(
            || json!({"db": args.db, "bus": args.bus, "max_events": args.batch.clamp(1, 500)}),
        );
        tracing::info!(db = %args.db, bus = %args.bus, "relaying the outboxes");
        let stop = until_signal()?;
        tokio::pin!(stop);
        loop {
            // Each outbox on its own: a key the policy refuses one of still relays the other.
            let mut sent = 0;
            for round in [
                services_round(&client, books.as_ref()).await,
                relay.run_once(&client).await,
            ] {
                match round {
                    Ok(n) => sent += n,
                    Err(problem) => {
                        tracing::warn!(code = %problem.code, detail = %problem.detail, "outbox relay round failed; retrying");
                    }
                }
            }
            let wait = if sent == 0 {
                args.idle
            } else {
                tracing::info!(sent, db = %args.db, bus = %args.bus, "outbox relayed");
                Duration::ZERO
            };
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

/// One round of the services' outbox, which runs on the server (see
/// `switchyard_outbox::OutboxService`); answers how many events went.
async fn services_round(client: &HttpClient, books: Option<&Value>) -> Result<usize, Problem> {
    let Some(params) = books else {
        return Ok(0);
    };
    let answer = client
        .invoke("services/outbox", "relay", params.clone())
        .await?;
    Ok(answer["sent"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0))
}

pub struct AnnotatorArgs {
    pub connection: Connection,
    pub bus: String,
    pub idle: Duration,
}

pub fn run_annotator(args: AnnotatorArgs) -> Result<()> {
    let client = client(&args.connection)?;
    let annotator = Annotator::new(&args.bus).map_err(|p| anyhow::anyhow!(p.detail))?;
    on_runtime(async move {
        tracing::info!(bus = %args.bus, "annotating new orders");
        let stop = until_signal()?;
        annotator.run(&client, args.idle, stop).await;
        Ok(())
    })
}

fn client(connection: &Connection) -> Result<HttpClient> {
    let tenant =
        TenantId::parse(&connection.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    Ok(HttpClient::new(
        &connection.gateway,
        tenant,
        &connection.api_key,
    ))
}

fn on_runtime(work: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(work)
}

/// Resolves on Ctrl-C or SIGTERM. Must be called inside the runtime.
fn until_signal() -> Result<impl Future<Output = ()>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    })
}
