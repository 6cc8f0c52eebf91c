//! Step 6: the tenant is the one the credentials belong to. A caller may state it in
//! `X-Tenant-Id` (useful as an assertion), but never choose another one. A tenant the operator
//! suspended is refused here ([`TenantGate`]).

use http::HeaderValue;
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_identity::Identity;
use switchyard_platform_store::{PlatformStore, StoreError, TenantStatus};

pub fn resolve(identity: &Identity, claimed: Option<&HeaderValue>) -> Result<(), Problem> {
    match claimed {
        None => Ok(()),
        Some(value) if value.to_str().ok() == Some(identity.tenant.as_str()) => Ok(()),
        Some(_) => Err(Problem::new(
            ErrorCode::TenantForbidden,
            "X-Tenant-Id names a tenant these credentials do not belong to",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_contracts::{Scopes, TenantId};

    #[test]
    fn a_claimed_tenant_must_be_the_credentials_tenant() {
        let identity = Identity {
            tenant: TenantId::parse("acme").unwrap(),
            subject: "key:1".into(),
            scopes: Scopes::parse("*").unwrap(),
            roles: vec![],
        };
        assert!(resolve(&identity, None).is_ok());
        assert!(resolve(&identity, Some(&HeaderValue::from_static("acme"))).is_ok());
        let err = resolve(&identity, Some(&HeaderValue::from_static("globex"))).unwrap_err();
        assert_eq!((err.code, err.status()), (ErrorCode::TenantForbidden, 403));
    }

    #[test]
    fn the_gate_refuses_suspended_and_deleting_tenants_only_until_they_are_active_again() {
        let gate = TenantGate::default();
        assert!(gate.check("acme").is_ok());
        gate.set("acme", TenantStatus::Suspended);
        gate.set("globex", TenantStatus::Deleting);
        for tenant in ["acme", "globex"] {
            let err = gate.check(tenant).unwrap_err();
            assert_eq!((err.code, err.status()), (ErrorCode::TenantSuspended, 403));
        }
        assert!(gate.check("initech").is_ok());
        gate.set("acme", TenantStatus::Active);
        assert!(gate.check("acme").is_ok());
        assert!(gate.check("globex").is_err());
    }
}

/// The tenants whose calls are refused (suspended or being deleted), as this gateway last
/// read them from the platform store. Every replica refreshes it every [`TenantGate::EVERY`];
/// the replica that answers an operator's change updates it at once, so the very next call
/// there is refused.
#[derive(Default)]
pub struct TenantGate {
    refused: arc_swap::ArcSwap<std::collections::HashMap<String, TenantStatus>>,
}

impl TenantGate {
    /// How stale another replica's view of a suspension may be.
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// `tenant_suspended` for a tenant that is not active. One map lookup: the map holds only
    /// the few refused tenants.
    pub fn check(&self, tenant: &str) -> Result<(), Problem> {
        match self.refused.load().get(tenant) {
            None => Ok(()),
            Some(TenantStatus::Deleting) => Err(Problem::new(
                ErrorCode::TenantSuspended,
                "this tenant is being deleted by the platform operator",
            )),
            Some(_) => Err(Problem::new(
                ErrorCode::TenantSuspended,
                "this tenant is suspended by the platform operator",
            )),
        }
    }

    /// Records one tenant's new status in this gateway at once.
    pub fn set(&self, tenant: &str, status: TenantStatus) {
        self.refused.rcu(|refused| {
            let mut refused = (**refused).clone();
            if status == TenantStatus::Active {
                refused.remove(tenant);
            } else {
                refused.insert(tenant.to_owned(), status);
            }
            refused
        });
    }

    /// Replaces the view with the store's. A tenant that was being deleted and is gone from
    /// the store was purged: it stays refused here, since the authenticator may still hold
    /// one of its keys for a few seconds (unless a tenant of that id was created again).
    pub async fn refresh(&self, store: &PlatformStore) -> Result<(), StoreError> {
        let mut refused: std::collections::HashMap<String, TenantStatus> =
            store.inactive_tenants().await?.into_iter().collect();
        let before = self.refused.load_full();
        for (tenant, status) in before.iter() {
            if *status == TenantStatus::Deleting && !refused.contains_key(tenant) {
                let gone = match switchyard_contracts::TenantId::parse(tenant) {
                    Ok(id) => !store.tenant_exists(&id).await?,
                    Err(_) => true,
                };
                if gone {
                    refused.insert(tenant.clone(), TenantStatus::Deleting);
                }
            }
        }
        self.refused.store(std::sync::Arc::new(refused));
        Ok(())
    }
}

/// Keeps a [`TenantGate`], and the operator's per-tenant request budgets, in step with the
/// platform store.
pub struct TenantGateRefresh {
    pub gate: std::sync::Arc<TenantGate>,
    pub limiter: std::sync::Arc<super::rate_limit::RateLimiter>,
    pub store: PlatformStore,
}

/// Hands the operator's per-tenant budgets (from the tenants' limits) to the rate limiter.
pub fn apply_budgets(
    limiter: &super::rate_limit::RateLimiter,
    limits: &std::collections::BTreeMap<String, switchyard_platform_store::TenantLimits>,
) {
    limiter.set_overrides(limits.iter().filter_map(|(tenant, limits)| {
        let budget = limits.rate_limit?;
        let tenant = switchyard_contracts::TenantId::parse(tenant).ok()?;
        Some((
            tenant,
            super::rate_limit::Quota {
                requests: budget.requests,
                per_seconds: budget.per_seconds,
                burst: Some(budget.burst),
            },
        ))
    }));
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for TenantGateRefresh {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut ticks = tokio::time::interval(TenantGate::EVERY);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.gate.refresh(&self.store).await {
                tracing::warn!(error = %e, "the suspended tenants could not be read; keeping the last view");
            }
            match self.store.all_tenant_limits().await {
                Ok(limits) => apply_budgets(&self.limiter, &limits),
                Err(e) => {
                    tracing::warn!(error = %e, "the tenants' limits could not be read; keeping the last budgets")
                }
            }
        }
    }
}
