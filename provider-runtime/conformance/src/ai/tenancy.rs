//! The `ai` engines keep nothing between calls, so tenant isolation is about configs: the
//! same text gives every tenant the same answer under the same config, and one tenant's
//! config changes only its own answers.

use serde_json::json;

use super::{tenant, vectors};
use crate::Subject;

pub async fn every_tenant_gets_the_same_vectors_under_the_same_config(s: &Subject) {
    let acme = tenant(s, "acme").await;
    let globex = tenant(s, "globex").await;
    let params = json!({"texts": ["invoice overdue"]});
    assert_eq!(
        acme.ok("embed", params.clone()).await,
        globex.ok("embed", params).await,
        "{}",
        s.name()
    );
}

pub async fn a_tenants_config_changes_only_its_own_vectors(s: &Subject) {
    // Engine-specific: the config fields are ai/local's (hence `fixture:hashed_ngrams`).
    let acme = s
        .tenant_with_config("acme", json!({"dimensions": 64, "min_n": 2, "max_n": 3}))
        .await;
    let globex = s.tenant("globex").await;
    let params = json!({"texts": ["invoice overdue"]});
    let a = acme.ok("embed", params.clone()).await;
    let g = globex.ok("embed", params).await;
    assert_eq!(a["dimensions"], 64);
    assert_eq!(vectors(&a)[0].len(), 64);
    assert_eq!(a["model"], "hashed-char-ngram-v1/d64/n2-3");
    assert_eq!(g["dimensions"], 256);
    assert_eq!(g["model"], "hashed-char-ngram-v1/d256/n3-5");
}
