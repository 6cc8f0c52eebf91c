//! `switchyard audit verify --tenant T`: the operator's chain check, straight on the platform
//! store (the data dir's SQLite or `--store-url`), for when no auditor key is at hand or the
//! gateway is down. Prints the check as JSON and exits non-zero when the chain is broken, so a
//! cron job or a CI step fails on tampering.

use anyhow::{Result, bail};
use clap::Subcommand;
use switchyard_contracts::TenantId;
use switchyard_runtime::PlatformStore;
use switchyard_runtime::store::PLATFORM_CHAIN;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute a tenant's audit chain from its first record to its head; exit status 1
    /// when a record was altered, removed or inserted.
    Verify {
        /// The tenant, or `_platform` for the chain of what belongs to no tenant.
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(store: PlatformStore, command: AuditCommand) -> Result<()> {
    let AuditCommand::Verify { tenant } = command;
    if tenant != PLATFORM_CHAIN {
        let id = TenantId::parse(&tenant).map_err(anyhow::Error::msg)?;
        // A typo would otherwise verify as an empty, unbroken chain.
        if !store.tenant_exists(&id).await? {
            bail!("no tenant {tenant}");
        }
    }
    let check = store.verify_audit_chain(&tenant).await?;
    println!("{}", serde_json::to_string(&check)?);
    if !check.ok {
        bail!(
            "the audit chain of {tenant} is broken at record {}: {}",
            check.first_bad_seq.unwrap_or_default(),
            check.why.unwrap_or_default()
        );
    }
    Ok(())
}
