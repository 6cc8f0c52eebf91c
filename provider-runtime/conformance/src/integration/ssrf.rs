//! The egress guard: endpoints on loopback, private, link-local or metadata addresses that
//! neither the operator's ceiling nor the tenant's narrower `allowed_networks` open are refused
//! with `egress_forbidden` — IP literals when configured, hostnames when triggered — and
//! nothing is sent or stored. No request ever leaves for the refused addresses: the refusals
//! come before any connection. A tenant's `allowed_networks` outside the operator's ceiling is
//! refused itself.

use serde_json::{Value, json};
use switchyard_spi::{ErrorCode, ProviderError, StartContext, TenantId};

use super::receiver::Receiver;
use super::{config, dead_letter_ids, secret};
use crate::Subject;

/// Starts `tenant` with `config` directly on the factory, to see a refused start.
async fn start(s: &Subject, config: Value) -> Result<(), ProviderError> {
    s.factory
        .start(StartContext {
            tenant: TenantId::parse("acme").unwrap(),
            config,
            client: None,
        })
        .await
        .map(drop)
}

pub async fn internal_ip_literals_are_refused_when_configured(s: &Subject) {
    let name = s.name();
    for (url, address) in [
        ("http://127.0.0.1:8080/t0ken", "127.0.0.1"),
        ("http://10.0.0.1/t0ken", "10.0.0.1"),
        (
            "http://169.254.169.254/latest/meta-data/t0ken",
            "169.254.169.254",
        ),
        ("http://[::1]:8080/t0ken", "::1"),
        ("http://0.0.0.0/t0ken", "0.0.0.0"),
        ("http://192.168.1.20/t0ken", "192.168.1.20"),
        ("http://[fd00:ec2::254]/t0ken", "fd00:ec2::254"),
        ("http://[::ffff:127.0.0.1]/t0ken", "::ffff:127.0.0.1"),
    ] {
        // The tenant narrows the operator's ceiling (which opens loopback) to nothing.
        let unguarded = json!({
            "endpoints": {"hook": {"url": url, "secret": secret(1)}},
            "allowed_networks": []
        });
        let err = start(s, unguarded)
            .await
            .expect_err("an internal address must be refused");
        assert_eq!(err.code, ErrorCode::EgressForbidden, "{name}: {url}");
        assert_eq!(
            err.errors[0].pointer, "/endpoints/hook/url",
            "{name}: {url}"
        );
        assert!(err.detail.contains(address), "{name}: {}", err.detail);
        assert!(
            err.detail.contains("allowed_networks"),
            "{name}: the error says how to allow it: {}",
            err.detail
        );
        assert!(
            !err.detail.contains("t0ken"),
            "{name}: the URL is never quoted"
        );
    }
}

pub async fn allowlisting_is_per_network(s: &Subject) {
    let name = s.name();
    let allowed = json!({
        "endpoints": {"hook": {"url": "http://10.20.0.5/in", "secret": secret(1)}},
        "allowed_networks": ["10.20.0.0/16"]
    });
    assert_eq!(start(s, allowed).await, Ok(()), "{name}");
    let elsewhere = json!({
        "endpoints": {"hook": {"url": "http://10.21.0.5/in", "secret": secret(1)}},
        "allowed_networks": ["10.20.0.0/16"]
    });
    let err = start(s, elsewhere).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::EgressForbidden, "{name}");
    assert_eq!(err.errors[0].pointer, "/endpoints/hook/url", "{name}");
    let metadata = json!({
        "endpoints": {"hook": {"url": "http://169.254.169.254/", "secret": secret(1)}},
        "allowed_networks": ["127.0.0.0/8", "10.0.0.0/8"]
    });
    assert!(start(s, metadata).await.is_err(), "{name}");
    // Without allowed_networks the tenant gets the operator's ceiling: loopback.
    let ceiling =
        json!({"endpoints": {"hook": {"url": "http://127.0.0.1:9/in", "secret": secret(1)}}});
    assert_eq!(start(s, ceiling).await, Ok(()), "{name}");
}

pub async fn a_tenant_cannot_widen_the_operators_ceiling(s: &Subject) {
    let name = s.name();
    for (networks, index) in [
        (json!(["0.0.0.0/0"]), 0),
        (json!(["::/0"]), 0),
        (json!(["10.20.0.0/16", "10.0.0.0/8"]), 1),
        (json!(["169.254.169.254/32"]), 0),
    ] {
        let err = start(s, json!({"allowed_networks": networks}))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::EgressForbidden, "{name}: {networks}");
        assert_eq!(
            err.errors[0].pointer,
            format!("/allowed_networks/{index}"),
            "{name}: {networks}"
        );
    }
}

pub async fn a_hostname_resolving_to_loopback_is_refused_unsent_and_unstored(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    let acme = s
        .tenant_with_config(
            "acme",
            config(&url, &secret(1), json!({"allowed_networks": []})),
        )
        .await;
    let err = acme
        .err(
            "trigger",
            json!({"endpoint": "hook", "event_type": "x", "payload": {}, "idempotency_key": "k"}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::EgressForbidden, "{name}: {err:?}");
    assert_eq!(err.errors[0].pointer, "/endpoints/hook/url", "{name}");
    assert!(err.detail.contains("loopback"), "{name}: {}", err.detail);
    assert!(receiver.requests().is_empty(), "{name}: nothing was sent");
    assert!(
        dead_letter_ids(&acme).await.is_empty(),
        "{name}: nothing was stored"
    );
}

pub async fn an_allowlisted_hostname_is_delivered_to(s: &Subject) {
    let name = s.name();
    let receiver = Receiver::start(&secret(1)).await;
    let url = format!("http://localhost:{}/hook", receiver.addr.port());
    // localhost may resolve to both 127.0.0.1 and ::1: every address must be allowed.
    let acme = s
        .tenant_with_config(
            "acme",
            config(
                &url,
                &secret(1),
                json!({"allowed_networks": ["127.0.0.0/8", "::1/128"]}),
            ),
        )
        .await;
    let answer = super::trigger(&acme, json!({"n": 1})).await;
    assert_eq!(answer["status"], "delivered", "{name}: {answer}");
    assert_eq!(receiver.requests().len(), 1, "{name}");
}
