//! `switchyard relay`: empties one tenant's outbox onto its bus, through a gateway.
//!
//! It runs as its own process on purpose: it holds no state of its own (the outbox rows are
//! the state), so it can be killed at any moment and restarted, and what it had published but
//! not yet marked is simply published again.

use std::time::Duration;

use anyhow::{Context, Result};
use switchyard_client::HttpClient;
use switchyard_contracts::TenantId;
use switchyard_outbox::{Outbox, Relay};

pub struct RelayArgs {
    pub gateway: String,
    pub tenant: String,
    pub api_key: String,
    pub db: String,
    pub bus: String,
    pub batch: usize,
    pub idle: Duration,
}

pub fn run(args: RelayArgs) -> Result<()> {
    let tenant = TenantId::parse(&args.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let client = HttpClient::new(&args.gateway, tenant, &args.api_key);
    let outbox = Outbox::new(&args.db).map_err(|p| anyhow::anyhow!(p.detail))?;
    let relay = Relay::new(outbox.clone(), &args.bus, args.batch);
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(async move {
            outbox.install(&client).await.map_err(|p| {
                anyhow::anyhow!("installing the outbox in {}: {}", args.db, p.detail)
            })?;
            tracing::info!(db = %args.db, bus = %args.bus, "relaying the outbox");
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("installing the SIGTERM handler")?;
            relay
                .run(&client, args.idle, async {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = terminate.recv() => {}
                    }
                })
                .await;
            Ok(())
        })
}
