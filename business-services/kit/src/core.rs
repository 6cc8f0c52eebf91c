//! What every event-writing service holds beside its domain: its descriptor, its database,
//! its outbox and bus when one is configured, and which tenants' tables exist.

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_client::ProviderClient;
use switchyard_contracts::{ErrorCode, Problem, ServiceDescriptor};
use switchyard_outbox::{Dialect, Outbox, Relay};

use crate::{Db, Installs, descriptor, expect_domain};

pub struct ServiceCore {
    pub descriptor: ServiceDescriptor,
    pub db: Db,
    /// The outbox, and the bus this process relays it to when one is configured.
    outbox: Option<(Outbox, Option<String>)>,
    /// Tenants whose tables this process has already created.
    installs: Installs,
}

impl ServiceCore {
    /// Service `name` keeping its data in db provider `db` and, with `bus`, writing its events
    /// to the outbox for that bus. Refuses ids that name no db or no bus provider; a db
    /// provider declaring no dialect the SQL is written for is refused on the first call,
    /// when it is asked ([`Db::dialect`]).
    pub fn new(
        name: &'static str,
        version: &str,
        summary: &str,
        db: &str,
        bus: Option<String>,
    ) -> Result<Self, Problem> {
        let outbox = match bus {
            Some(bus) => {
                expect_domain(&bus, "bus")?;
                Some((Outbox::new(db)?, Some(bus)))
            }
            None => None,
        };
        Ok(ServiceCore {
            descriptor: descriptor(name, version, summary),
            db: Db::new(db, name)?,
            outbox,
            installs: Installs::default(),
        })
    }

    /// Like [`ServiceCore::new`], but events go to the outbox even without a bus: a relay
    /// outside the process (`switchyard relay`, through the `outbox` service) carries them then.
    pub fn with_outbox(
        name: &'static str,
        version: &str,
        summary: &str,
        db: &str,
        bus: Option<String>,
    ) -> Result<Self, Problem> {
        let mut core = Self::new(name, version, summary, db, bus)?;
        if core.outbox.is_none() {
            core.outbox = Some((Outbox::new(db)?, None));
        }
        Ok(core)
    }

    /// The outbox events go to: when a bus is configured, or always when built
    /// [`ServiceCore::with_outbox`].
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref().map(|(outbox, _)| outbox)
    }

    /// The relay that publishes the outbox to the bus, one per tenant client; `None` without
    /// a bus. Run it beside the service (`Relay::run`).
    pub fn relay(&self) -> Option<Relay> {
        let (outbox, bus) = self.outbox.as_ref()?;
        Some(Relay::new(outbox.clone(), bus.as_deref()?, 100))
    }

    /// Creates the tenant's `tables` (built for this database's dialect) and the outbox, once
    /// per process.
    pub async fn install(
        &self,
        client: &dyn ProviderClient,
        tables: fn(Dialect) -> Vec<String>,
    ) -> Result<(), Problem> {
        self.installs
            .once(client.tenant(), || async {
                self.db
                    .create(client, &tables(self.db.dialect(client).await?))
                    .await?;
                if let Some(outbox) = self.outbox() {
                    outbox.install(client).await?;
                }
                Ok(())
            })
            .await
    }
}

/// Typed params, or `params_invalid`. The runtime has checked them against the action's
/// schema already; this catches a caller that skipped it.
pub fn params<T: DeserializeOwned>(params: Value) -> Result<T, Problem> {
    serde_json::from_value(params).map_err(|e| {
        Problem::new(
            ErrorCode::ParamsInvalid,
            format!("params do not match the action's schema: {e}"),
        )
    })
}
