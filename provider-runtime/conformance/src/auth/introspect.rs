//! `introspect`: RFC 7662. An active token shows its claims; any refused token shows nothing
//! but `active: false`.

use serde_json::json;

use super::idp::{Idp, now, tampered};
use super::trusting_idp;
use crate::Subject;

const ISSUER: &str = "https://idp.acme.test";

pub async fn an_active_token_shows_its_claims(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let (iat, exp) = (now() - 10, now() + 600);
    let token = idp.token(
        &s.tenant_name("acme"),
        json!({"scope": ["read", "invoke:db"], "iat": iat, "exp": exp}),
    );
    let result = acme.ok("introspect", json!({"token": token})).await;
    assert_eq!(
        result,
        json!({
            "active": true, "sub": "ann", "tenant": s.tenant_name("acme"), "scope": "read invoke:db",
            "roles": ["clerk"], "iat": iat, "exp": exp, "iss": ISSUER, "aud": "erp",
        }),
        "{}",
        s.name()
    );
}

pub async fn a_refused_token_is_only_inactive(s: &Subject) {
    let idp = Idp::start(ISSUER).await;
    let acme = trusting_idp(s, "acme", &idp).await;
    let refused = [
        idp.token(&s.tenant_name("acme"), json!({"exp": now() - 3600})),
        idp.token(&s.tenant_name("acme"), json!({"aud": "crm"})),
        tampered(
            &idp.token(&s.tenant_name("acme"), json!({})),
            json!({"sub": "root"}),
        ),
        "not-a-jwt".to_owned(),
    ];
    for token in refused {
        assert_eq!(
            acme.ok("introspect", json!({"token": token})).await,
            json!({"active": false}),
            "{}",
            s.name()
        );
    }
}
