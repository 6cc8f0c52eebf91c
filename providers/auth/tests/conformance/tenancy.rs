//! A tenant verifies only its own tokens, with its own identity provider, and asks the policy
//! only in its own name.

use serde_json::{Value, json};

use crate::evaluate::clerk_invoking;
use crate::idp::Idp;
use crate::{policy_engines, product_policy, token_engines};

#[tokio::test]
async fn a_genuine_token_of_another_tenant_is_refused() {
    // One identity provider serving both tenants: the token verifies, its tenant does not match.
    let idp = Idp::start("https://idp.shared.test").await;
    for engine in token_engines() {
        let acme = engine.trusting_idp("acme", &idp).await;
        let globex = engine.trusting_idp("globex", &idp).await;
        let token = idp.token("globex", json!({}));

        assert_eq!(
            globex.ok("verify", json!({"token": token})).await["valid"],
            true,
            "{}: the token is genuine for its own tenant",
            engine.name
        );
        let result = acme.ok("verify", json!({"token": token})).await;
        assert_eq!(result["valid"], false, "{}", engine.name);
        assert_eq!(result["identity"], Value::Null, "{}", engine.name);
        assert_eq!(
            result["error"]["code"], "tenant_forbidden",
            "{}",
            engine.name
        );
        assert!(
            !result.to_string().contains("globex"),
            "{}: the refusal names the other tenant: {result}",
            engine.name
        );
        assert_eq!(
            acme.ok("introspect", json!({"token": token})).await,
            json!({"active": false}),
            "{}",
            engine.name
        );
    }
}

#[tokio::test]
async fn each_tenant_trusts_only_its_own_identity_provider() {
    let acme_idp = Idp::start("https://idp.acme.test").await;
    let globex_idp = Idp::start("https://idp.globex.test").await;
    for engine in token_engines() {
        let globex = engine.trusting_idp("globex", &globex_idp).await;
        // Acme's identity provider minting a token that claims globex.
        let minted_by_acme = acme_idp.token("globex", json!({}));
        let result = globex.ok("verify", json!({"token": minted_by_acme})).await;
        assert_eq!(result["valid"], false, "{}", engine.name);
        assert_eq!(result["error"]["code"], "token_invalid", "{}", engine.name);

        let own = globex_idp.token("globex", json!({}));
        assert_eq!(
            globex.ok("verify", json!({"token": own})).await["valid"],
            true,
            "{}",
            engine.name
        );
    }
}

#[tokio::test]
async fn a_forged_input_tenant_is_overridden_by_the_calling_tenant() {
    for (engine, h) in policy_engines(product_policy()) {
        let acme = h.tenant("acme").await;
        // Claiming to be globex acting on globex: taken at its word, the policy would allow it.
        let mut forged = clerk_invoking("query");
        forged["tenant"] = json!("globex");
        forged["target_tenant"] = json!("globex");
        let result = acme.ok("evaluate", json!({"input": forged})).await;
        assert_eq!(
            result["decision"],
            json!({"allow": false, "reasons": ["cross-tenant"]}),
            "{engine}: asked as acme acting on globex"
        );
    }
}

#[tokio::test]
async fn an_input_without_tenants_is_asked_in_the_callers_name() {
    for (engine, h) in policy_engines(product_policy()) {
        let acme = h.tenant("acme").await;
        // Without the tenant pinned, the policy would deny this for "missing tenant".
        let result = acme
            .ok("evaluate", json!({"input": clerk_invoking("query")}))
            .await;
        assert_eq!(
            result["decision"],
            json!({"allow": true, "reasons": []}),
            "{engine}"
        );
        let forged_only_tenant = {
            let mut input = clerk_invoking("query");
            input["tenant"] = json!("globex");
            input
        };
        let result = acme
            .ok("evaluate", json!({"input": forged_only_tenant}))
            .await;
        assert_eq!(
            result["decision"],
            json!({"allow": true, "reasons": []}),
            "{engine}: target_tenant defaults to the caller, not to the forged tenant"
        );
    }
}
