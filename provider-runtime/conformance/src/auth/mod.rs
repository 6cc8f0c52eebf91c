//! The `auth` domain suite (`contracts/schemas/domains/auth.json`), one file per action.
//!
//! Engines of the domain serve different parts of it, so every check requires the actions it
//! calls: a token engine (`verify`, `introspect`) gets the token checks, a policy engine
//! (`evaluate`) the policy checks. Two things only a test fixture can give:
//! - `fixture:loopback_egress`: the engine may fetch keys from this host's loopback, where the
//!   checks' identity providers ([`idp`]) listen (an operator who opens `127.0.0.0/8`);
//! - `fixture:policy`: the subject decides with the product bundle at revision
//!   `conformance`, and [`Fixture::policy`] builds the same engine over another policy.
//!
//! Without them — `switchyard conformance`, whose operator opens nothing and whose policy is
//! the running one — those checks are skipped; the refusals that need neither still run.

mod evaluate;
mod idp;
mod introspect;
mod tenancy;
mod verify;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchyard_spi::ProviderFactory;
use switchyard_spi::testkit::TenantInstance;

use crate::{Check, Level, Subject, check};
use evaluate::*;
pub use idp::Idp;
use introspect::*;
use tenancy::*;
use verify::*;

/// What a built-in engine's fixture knows beyond the contract.
pub struct Fixture {
    /// The tenant config that makes a token engine trust `idp`; engines spell it their own
    /// way. Default: `auth/jwt`'s `{issuer, audience, jwks_url}`.
    pub trusting: fn(&Idp) -> Value,
    /// For a policy engine (`fixture:policy`): the same engine deciding, at each call, with
    /// the product bundle built at the revision `running` then names, or with no policy while
    /// it names none.
    pub policy: Option<Deciding>,
}

/// Builds a policy engine over a revision that a check changes as it goes.
pub type Deciding =
    Arc<dyn Fn(Arc<Mutex<Option<String>>>) -> Arc<dyn ProviderFactory> + Send + Sync>;

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            trusting: |idp| json!({"issuer": idp.issuer, "audience": idp.audience, "jwks_url": idp.jwks_url}),
            policy: None,
        }
    }
}

/// `tenant`'s instance, configured to trust `idp`.
async fn trusting_idp(s: &Subject, tenant: &str, idp: &Idp) -> TenantInstance {
    let config = (s.fixture::<Fixture>().trusting)(idp);
    s.tenant_with_config(tenant, config).await
}

/// The subject's policy engine deciding with whatever `running` names (see [`Fixture::policy`]).
fn deciding(s: &Subject, running: Arc<Mutex<Option<String>>>) -> Arc<dyn ProviderFactory> {
    let fixture = s.fixture::<Fixture>();
    let deciding = fixture
        .policy
        .as_ref()
        .expect("a fixture:policy check runs only with a policy fixture");
    deciding(running)
}

/// Every check with its level, in the order reports list them.
pub fn checks() -> Vec<Check> {
    vec![
        // verify
        check!(
            Level::Core,
            a_valid_token_maps_onto_its_identity,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            an_expired_token_is_token_expired,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_tampered_token_is_token_invalid,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_token_for_another_audience_or_issuer_is_token_invalid,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_token_signed_by_a_key_the_idp_does_not_publish_is_token_invalid,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            garbage_is_token_invalid,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            an_empty_token_is_params_invalid,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            an_unconfigured_engine_answers_provider_not_configured,
            requires = ["action:verify", "action:introspect"]
        ),
        check!(
            Level::Core,
            unreachable_keys_are_provider_unavailable_and_retryable,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        // introspect
        check!(
            Level::Core,
            an_active_token_shows_its_claims,
            requires = ["action:introspect", "fixture:loopback_egress"]
        ),
        check!(
            Level::Core,
            a_refused_token_is_only_inactive,
            requires = ["action:introspect", "fixture:loopback_egress"]
        ),
        // evaluate
        check!(
            Level::Core,
            an_allowed_request_is_allowed_with_the_bundle_revision,
            requires = ["action:evaluate", "fixture:policy"]
        ),
        check!(
            Level::Core,
            a_denied_request_is_denied_with_its_reasons,
            requires = ["action:evaluate", "fixture:policy"]
        ),
        check!(
            Level::Core,
            a_reloaded_bundle_answers_from_the_next_call,
            requires = ["action:evaluate", "fixture:policy"]
        ),
        check!(
            Level::Core,
            no_policy_answers_provider_not_configured,
            requires = ["action:evaluate", "fixture:policy"]
        ),
        check!(
            Level::Core,
            input_must_be_an_object,
            requires = ["action:evaluate"]
        ),
        // tenancy
        check!(
            Level::Isolation,
            a_genuine_token_of_another_tenant_is_refused,
            requires = [
                "action:verify",
                "action:introspect",
                "fixture:loopback_egress"
            ]
        ),
        check!(
            Level::Isolation,
            each_tenant_trusts_only_its_own_identity_provider,
            requires = ["action:verify", "fixture:loopback_egress"]
        ),
        check!(
            Level::Isolation,
            a_forged_input_tenant_is_overridden_by_the_calling_tenant,
            requires = ["action:evaluate", "fixture:policy"]
        ),
        check!(
            Level::Isolation,
            an_input_without_tenants_is_asked_in_the_callers_name,
            requires = ["action:evaluate", "fixture:policy"]
        ),
    ]
}
