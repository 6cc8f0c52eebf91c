//! A tenant verifies only its own tokens, with its own identity provider, and asks the policy
//! only in its own name.

use serde_json::{Value, json};

use super::evaluate::clerk_invoking;
use super::idp::Idp;
use super::trusting_idp;
use crate::Subject;

pub async fn a_genuine_token_of_another_tenant_is_refused(s: &Subject) {
    // One identity provider serving both tenants: the token verifies, its tenant does not match.
    let idp = Idp::start("https://idp.shared.test").await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let globex = trusting_idp(s, "globex", &idp).await;
    let token = idp.token(&s.tenant_name("globex"), json!({}));

    assert_eq!(
        globex.ok("verify", json!({"token": token})).await["valid"],
        true,
        "{}: the token is genuine for its own tenant",
        s.name()
    );
    let result = acme.ok("verify", json!({"token": token})).await;
    assert_eq!(result["valid"], false, "{}", s.name());
    assert_eq!(result["identity"], Value::Null, "{}", s.name());
    assert_eq!(result["error"]["code"], "tenant_forbidden", "{}", s.name());
    assert!(
        !result.to_string().contains("globex"),
        "{}: the refusal names the other tenant: {result}",
        s.name()
    );
    assert_eq!(
        acme.ok("introspect", json!({"token": token})).await,
        json!({"active": false}),
        "{}",
        s.name()
    );
}

pub async fn each_tenant_trusts_only_its_own_identity_provider(s: &Subject) {
    let acme_idp = Idp::start("https://idp.acme.test").await;
    let globex_idp = Idp::start("https://idp.globex.test").await;
    let globex = trusting_idp(s, "globex", &globex_idp).await;
    // Acme's identity provider minting a token that claims globex.
    let minted_by_acme = acme_idp.token(&s.tenant_name("globex"), json!({}));
    let result = globex.ok("verify", json!({"token": minted_by_acme})).await;
    assert_eq!(result["valid"], false, "{}", s.name());
    assert_eq!(result["error"]["code"], "token_invalid", "{}", s.name());

    let own = globex_idp.token(&s.tenant_name("globex"), json!({}));
    assert_eq!(
        globex.ok("verify", json!({"token": own})).await["valid"],
        true,
        "{}",
        s.name()
    );
}

pub async fn a_forged_input_tenant_is_overridden_by_the_calling_tenant(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
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

pub async fn an_input_without_tenants_is_asked_in_the_callers_name(s: &Subject) {
    let engine = s.name();
    let acme = s.tenant("acme").await;
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
