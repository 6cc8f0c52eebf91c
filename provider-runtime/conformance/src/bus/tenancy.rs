//! One tenant never sees another's topics or group positions, and a tenant's running and
//! restarted instances share one log.

use serde_json::json;

use super::{payloads, publish, record_offsets};
use crate::Subject;

pub async fn tenants_do_not_see_each_others_topics(s: &Subject) {
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    publish(&acme, "orders", &[json!("a1"), json!("a2"), json!("a3")]).await;

    let polled = globex
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    assert_eq!(
        polled,
        json!({"records": [], "next_offset": 0}),
        "{}: globex polled acme's records",
        s.name()
    );
    if s.has_capability("replay") {
        let replayed = globex.ok("replay", json!({"topic": "orders"})).await;
        assert_eq!(
            replayed,
            json!({"records": [], "next_offset": 0}),
            "{}: globex replayed acme's records",
            s.name()
        );
    }

    let own = publish(&globex, "orders", &[json!("g1")]).await;
    assert_eq!(own, [0], "{}: globex's offsets do not start at 0", s.name());
    let acme_view = acme.ok("replay", json!({"topic": "orders"})).await;
    assert_eq!(
        payloads(&acme_view),
        [json!("a1"), json!("a2"), json!("a3")],
        "{}",
        s.name()
    );
}

pub async fn tenants_do_not_share_group_positions(s: &Subject) {
    let acme = s.tenant("acme").await;
    let globex = s.tenant("globex").await;
    publish(&acme, "orders", &[json!(1), json!(2), json!(3)]).await;
    publish(&globex, "orders", &[json!(1), json!(2), json!(3)]).await;

    acme.ok(
        "commit",
        json!({"topic": "orders", "group": "billing", "offset": 3}),
    )
    .await;
    let globex_billing = globex
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;

    assert_eq!(record_offsets(&globex_billing), [0, 1, 2], "{}", s.name());
}

/// The runtime reconfigures a tenant by starting a second instance while the first still
/// serves in-flight calls; both must work on the same log.
pub async fn a_restarted_tenant_shares_the_log_with_its_running_instance(s: &Subject) {
    let old = s.tenant("acme").await;
    publish(&old, "orders", &[json!("before")]).await;

    let new = s.tenant("acme").await;
    let from_old = publish(&old, "orders", &[json!("in-flight")]).await;
    let from_new = publish(&new, "orders", &[json!("after")]).await;
    old.provider.stop().await;

    let seen = new
        .ok("poll", json!({"topic": "orders", "group": "billing"}))
        .await;
    assert_eq!(from_old, [1], "{}", s.name());
    assert_eq!(from_new, [2], "{}", s.name());
    assert_eq!(
        payloads(&seen),
        [json!("before"), json!("in-flight"), json!("after")],
        "{}",
        s.name()
    );
}
