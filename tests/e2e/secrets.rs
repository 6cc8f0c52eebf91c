//! Secret references against a real Vault-API server (RustyVault, started by the test command),
//! through vaultrs — the same client the runtime uses in production.

use crate::common;

use common::vault::{RealVault, start_shim};
use serde_json::json;
use switchyard_runtime::secrets::{Secret, SecretResolver, VaultSettings};

fn settings(addr: std::net::SocketAddr, vault: &RealVault) -> VaultSettings {
    VaultSettings {
        address: format!("http://{addr}"),
        token: Secret::from(vault.token.clone()),
        kv_version: 1,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_reference_resolves_and_follows_rotation_without_showing_the_value() {
    let vault = RealVault::from_env();
    let shim = start_shim(vault.addr.clone()).await;
    let path = format!("secret/tests/{}", std::process::id());
    vault.put(&path, json!({"password": "first-Pa55"})).await;

    let resolver = SecretResolver::new(Some(settings(shim, &vault))).unwrap();
    let config = json!({"mode": "siloed", "password": format!("secret://vault/{path}#password")});
    let (resolved, before) = resolver.resolve_config(&config).await.unwrap();
    assert_eq!(resolved["password"], "first-Pa55");

    vault.put(&path, json!({"password": "second-Pa55"})).await;
    let (resolved, after) = resolver.resolve_config(&config).await.unwrap();
    assert_eq!(resolved["password"], "second-Pa55");
    assert_ne!(
        before, after,
        "a rotation changes the fingerprint the runtime watches"
    );

    let missing_key = json!({"p": format!("secret://vault/{path}#nope")});
    let err = resolver
        .resolve_config(&missing_key)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("#nope") && !err.contains("second-Pa55"),
        "{err}"
    );
    let bad_token = SecretResolver::new(Some(VaultSettings {
        token: Secret::from("wrong".to_owned()),
        ..settings(shim, &vault)
    }))
    .unwrap();
    let err = bad_token
        .resolve_config(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("wrong") && !err.contains("Pa55"), "{err}");
}
