//! OIDC verification against a real (local) JWKS endpoint and real RSA, EC and Ed25519 keys
//! ([`idp`]), so caching and rate limiting are observed from the IdP's side.

#[path = "oidc/idp.rs"]
mod idp;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde_json::{Value, json};
use switchyard_contracts::{ErrorCode, Problem};
use switchyard_identity::oidc::OidcVerifier;
use switchyard_spi::tenancy::EgressCeiling;
use tokio::net::TcpListener;

use idp::{
    AUDIENCE, ISSUER, Idp, Keys, RSA_KEY, SigningKey, b64url, claims, claims_with, jwks, loopback,
};

/// Asserts a refusal's code and its 401 status, and that the detail does not echo the token.
async fn refused(verifier: &OidcVerifier, token: &str, code: ErrorCode) -> Problem {
    let problem = verifier
        .verify(token)
        .await
        .expect_err("the token was accepted");
    assert_eq!(problem.code, code, "{}", problem.detail);
    assert_eq!(problem.status(), 401);
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        signature.is_empty() || !problem.detail.contains(signature),
        "the detail echoes the token: {}",
        problem.detail
    );
    problem
}

async fn invalid(verifier: &OidcVerifier, token: &str) -> Problem {
    refused(verifier, token, ErrorCode::TokenInvalid).await
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_into_an_identity() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier();
    for key in [&keys.rsa, &keys.ec, &keys.ed] {
        let identity = verifier.verify(&key.sign(&claims())).await.unwrap();
        assert_eq!(identity.tenant.as_str(), "acme", "{:?}", key.alg);
        assert_eq!(identity.subject, "oidc:alice");
        assert_eq!(identity.scopes.as_list(), ["read", "invoke:db"]);
        assert_eq!(identity.roles, ["admin", "auditor"]);
    }
    assert_eq!(idp.fetches(), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn audience_arrays_scp_and_custom_claim_names_are_understood() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier_with(json!({ "tenant_claim": "org", "roles_claim": "groups" }));
    let token = keys.ec.sign(&claims_with(json!({
        "aud": ["billing", AUDIENCE],
        "tenant": null,
        "org": "globex",
        "scope": null,
        "scp": ["invoke:cache/memory", "read"],
        "roles": null,
        "groups": ["ops"],
    })));
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(identity.tenant.as_str(), "globex");
    assert_eq!(identity.scopes.as_list(), ["invoke:cache/memory", "read"]);
    assert_eq!(identity.roles, ["ops"]);

    let no_roles = keys
        .ec
        .sign(&claims_with(json!({ "tenant": null, "org": "globex" })));
    assert!(verifier.verify(&no_roles).await.unwrap().roles.is_empty());
}

#[tokio::test]
async fn alg_none_is_refused() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let header = b64url(
        json!({ "alg": "none", "kid": keys.rsa.kid })
            .to_string()
            .as_bytes(),
    );
    let payload = b64url(claims().to_string().as_bytes());
    invalid(&idp.verifier(), &format!("{header}.{payload}.")).await;
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let public_pem = RSA_KEY.public_key_to_pem().unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(keys.rsa.kid.clone());
    let token =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&public_pem)).unwrap();
    let problem = invalid(&idp.verifier(), &token).await;
    assert!(problem.detail.contains("alg"), "{}", problem.detail);
}

#[tokio::test]
async fn the_key_decides_the_algorithm_not_the_header() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier();
    // An RSA key published for RS256 does not verify RS384, even with a valid signature.
    invalid(&verifier, &keys.rsa.sign_as(Algorithm::RS384, &claims())).await;
    // An ES256 token that names the RSA key's kid.
    let confused = SigningKey {
        kid: keys.rsa.kid.clone(),
        alg: Algorithm::ES256,
        pkcs8_pem: keys.ec.pkcs8_pem.clone(),
        jwk: Value::Null,
    };
    invalid(&verifier, &confused.sign(&claims())).await;
}

#[tokio::test]
async fn symmetric_keys_in_the_jwks_are_never_trusted() {
    let keys = Keys::new();
    let secret = b"a-shared-secret-of-enough-length";
    let mut document = keys.jwks();
    document["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "kty": "oct", "kid": "oct-1", "alg": "HS256", "k": b64url(secret) }));
    let idp = Idp::start(&document).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("oct-1".to_owned());
    let token =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret)).unwrap();
    let problem = invalid(&idp.verifier(), &token).await;
    assert!(problem.detail.contains("unknown kid"), "{}", problem.detail);
}

#[tokio::test]
async fn a_token_without_kid_is_refused() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let key = EncodingKey::from_rsa_pem(&keys.rsa.pkcs8_pem).unwrap();
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &key).unwrap();
    let problem = invalid(&idp.verifier(), &token).await;
    assert!(problem.detail.contains("kid"), "{}", problem.detail);
    assert_eq!(idp.fetches(), 0, "no kid, no reason to ask the IdP");
}

#[tokio::test]
async fn expiry_is_checked_with_leeway() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier_with(json!({ "leeway_secs": 30 }));
    let now = get_current_timestamp();
    let expired = keys.rsa.sign(&claims_with(json!({ "exp": now - 120 })));
    refused(&verifier, &expired, ErrorCode::TokenExpired).await;
    let within_leeway = keys.rsa.sign(&claims_with(json!({ "exp": now - 5 })));
    verifier.verify(&within_leeway).await.unwrap();
    let no_exp = keys.rsa.sign(&claims_with(json!({ "exp": null })));
    invalid(&verifier, &no_exp).await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier();
    let now = get_current_timestamp();
    let future = keys.ed.sign(&claims_with(json!({ "nbf": now + 600 })));
    let problem = invalid(&verifier, &future).await;
    assert!(
        problem.detail.contains("not yet valid"),
        "{}",
        problem.detail
    );
    let within_leeway = keys.ed.sign(&claims_with(json!({ "nbf": now + 5 })));
    verifier.verify(&within_leeway).await.unwrap();
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier();
    for changes in [
        json!({ "iss": "https://evil.example.test" }),
        json!({ "iss": null }),
        json!({ "aud": "billing" }),
        json!({ "aud": ["billing", "crm"] }),
        json!({ "aud": null }),
        json!({ "sub": null }),
    ] {
        let problem = invalid(&verifier, &keys.rsa.sign(&claims_with(changes.clone()))).await;
        assert!(!problem.detail.is_empty(), "{changes}");
    }
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier();
    for key in [&keys.rsa, &keys.ec, &keys.ed] {
        let genuine = key.sign(&claims());
        let other = key.sign(&claims_with(json!({ "tenant": "globex", "scope": "*" })));
        let parts: Vec<&str> = genuine.split('.').collect();
        let other_payload = other.split('.').nth(1).unwrap();
        let swapped = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
        let problem = invalid(&verifier, &swapped).await;
        assert!(problem.detail.contains("signature"), "{}", problem.detail);

        // The first character carries six signature bits (the last may carry padding bits).
        let mut signature = parts[2].to_owned();
        let first = if signature.starts_with('A') { "B" } else { "A" };
        signature.replace_range(..1, first);
        invalid(
            &verifier,
            &format!("{}.{}.{}", parts[0], parts[1], signature),
        )
        .await;
    }
    invalid(&verifier, "not-a-jwt").await;
}

#[tokio::test]
async fn tenant_and_scope_claims_are_required_and_checked() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier();
    for changes in [
        json!({ "tenant": null }),
        json!({ "tenant": "../other" }),
        json!({ "tenant": "Acme" }),
        json!({ "scope": null }),
        json!({ "scope": "read write" }),
        json!({ "roles": "admin" }),
    ] {
        invalid(&verifier, &keys.ec.sign(&claims_with(changes))).await;
    }
    let problem = invalid(
        &verifier,
        &keys.ec.sign(&claims_with(json!({ "scope": null }))),
    )
    .await;
    assert!(problem.detail.contains("no scopes"), "{}", problem.detail);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier_with(json!({ "jwks_refresh_min_interval_secs": 1 }));
    verifier.verify(&keys.rsa.sign(&claims())).await.unwrap();
    assert_eq!(idp.fetches(), 1);

    // Right after a fetch, an unknown kid does not reach the IdP.
    let stranger = SigningKey::ec("never-published-1");
    invalid(&verifier, &stranger.sign(&claims())).await;
    assert_eq!(idp.fetches(), 1);

    // Later, the cache is still fresh, but an unknown kid may be a rotated key: ask once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let problem = invalid(&verifier, &stranger.sign(&claims())).await;
    assert!(problem.detail.contains("unknown kid"), "{}", problem.detail);
    assert_eq!(idp.fetches(), 2);

    // Other made-up kids within the interval do not reach the IdP.
    for i in 0..5 {
        let sprayed = SigningKey::ec(&format!("sprayed-{i}"));
        invalid(&verifier, &sprayed.sign(&claims())).await;
    }
    assert_eq!(idp.fetches(), 2);
    // Known keys keep verifying from the cache meanwhile.
    verifier.verify(&keys.ed.sign(&claims())).await.unwrap();
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_the_automatic_refetch() {
    let keys = Keys::new();
    let idp = Idp::start(&jwks(&[&keys.ec])).await;
    let verifier = idp.verifier_with(json!({ "jwks_refresh_min_interval_secs": 1 }));
    verifier.verify(&keys.ec.sign(&claims())).await.unwrap();

    let rotated = SigningKey::ec("ec-2");
    idp.publish(&jwks(&[&rotated]));
    // Too soon after the last fetch: refused without asking the IdP.
    invalid(&verifier, &rotated.sign(&claims())).await;
    assert_eq!(idp.fetches(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let identity = verifier.verify(&rotated.sign(&claims())).await.unwrap();
    assert_eq!(identity.subject, "oidc:alice");
    assert_eq!(idp.fetches(), 2);
    // The withdrawn key went with the old set.
    let problem = invalid(&verifier, &keys.ec.sign(&claims())).await;
    assert!(problem.detail.contains("unknown kid"), "{}", problem.detail);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn the_key_set_is_refetched_after_its_ttl() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier_with(json!({ "jwks_cache_ttl_secs": 1 }));
    verifier.verify(&keys.ed.sign(&claims())).await.unwrap();
    verifier.verify(&keys.ed.sign(&claims())).await.unwrap();
    assert_eq!(idp.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verifier.verify(&keys.ed.sign(&claims())).await.unwrap();
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_share_one_fetch() {
    let keys = Keys::new();
    let idp = Idp::start_with_delay(&keys.jwks(), Duration::from_millis(200)).await;
    let verifier = Arc::new(idp.verifier());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let key = [&keys.rsa, &keys.ec, &keys.ed][i % 3];
        let token = key.sign(&claims());
        let verifier = Arc::clone(&verifier);
        tasks.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        outcome.unwrap().unwrap();
    }
    assert_eq!(idp.fetches(), 1);
}

async fn assert_keys_unavailable(verifier: &OidcVerifier, token: &str) {
    let problem = verifier.verify(token).await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::Internal, "{}", problem.detail);
    assert_eq!(problem.status(), 500);
    assert!(problem.retryable);
    assert_eq!(
        problem.detail,
        "identity provider keys could not be fetched"
    );
}

#[tokio::test]
async fn an_unreachable_idp_is_a_retryable_internal_error() {
    let keys = Keys::new();
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    let verifier = OidcVerifier::new(
        serde_json::from_value(json!({ "issuer": ISSUER, "audience": AUDIENCE, "jwks_url": url }))
            .unwrap(),
        &loopback(),
    )
    .unwrap();
    assert_keys_unavailable(&verifier, &keys.rsa.sign(&claims())).await;
}

#[tokio::test]
async fn a_jwks_url_the_operator_did_not_open_is_never_fetched() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let port = idp
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    for url in [idp.url.clone(), format!("http://localhost:{port}/jwks")] {
        let verifier = OidcVerifier::new(
            serde_json::from_value(
                json!({ "issuer": ISSUER, "audience": AUDIENCE, "jwks_url": url }),
            )
            .unwrap(),
            &EgressCeiling::default(),
        )
        .unwrap();
        let problem = verifier
            .verify(&keys.rsa.sign(&claims()))
            .await
            .unwrap_err();
        assert_eq!(
            problem.code,
            ErrorCode::EgressForbidden,
            "{url}: {problem:?}"
        );
        assert!(!problem.retryable);
        assert_eq!(problem.errors[0].pointer, "/jwks_url");
        assert!(!problem.detail.contains("/jwks"), "{}", problem.detail);
    }
    assert_eq!(idp.fetches(), 0);
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_retryable_and_not_hammered() {
    let keys = Keys::new();
    let idp = Idp::start(&keys.jwks()).await;
    let verifier = idp.verifier_with(json!({ "jwks_refresh_min_interval_secs": 1 }));
    let token = keys.rsa.sign(&claims());

    idp.status.store(503, Ordering::SeqCst);
    assert_keys_unavailable(&verifier, &token).await;
    assert_eq!(idp.fetches(), 1);
    // Within the interval a failed fetch is not retried.
    assert_keys_unavailable(&verifier, &token).await;
    assert_eq!(idp.fetches(), 1);

    idp.status.store(200, Ordering::SeqCst);
    idp.publish(&json!("not a key set"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_keys_unavailable(&verifier, &token).await;
    assert_eq!(idp.fetches(), 2);

    idp.publish(&keys.jwks());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verifier.verify(&token).await.unwrap();
    assert_eq!(idp.fetches(), 3);
}
