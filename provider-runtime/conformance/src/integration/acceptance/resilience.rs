//! The system's rate limits and credentials: a 429 waits for its Retry-After and is sent
//! again; an expired access token is refreshed once and the sync goes on.

use std::time::Instant;

use super::{connected, held, source, sync};
use crate::Subject;

pub async fn a_429_is_replayed_after_its_retry_after(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(15).await;
    let tenant = connected(s, "acme").await;
    let throttled_before = source.throttled();
    source.throttle(2).await;
    let started = Instant::now();
    let run = sync(s, &tenant, "full", "throttled").await;
    assert_eq!(
        run["status"], "completed",
        "{name}: two 429s end the sync: {run}"
    );
    assert_eq!(
        source.throttled() - throttled_before,
        2,
        "{name}: the 429s were not sent"
    );
    // Two answers of `Retry-After: 1`, each waited for before the call is sent again.
    assert!(
        started.elapsed().as_millis() >= 1_900,
        "{name}: the sync retried sooner than Retry-After said ({:?})",
        started.elapsed()
    );
    let held = held(s, &tenant, "throttled").await;
    assert!(
        created.iter().all(|k| held.contains_key(k)),
        "{name}: {run}"
    );
}

pub async fn an_expired_token_is_refreshed_and_the_sync_completes(s: &Subject) {
    let name = s.name();
    let source = source(s);
    let created = source.create(12).await;
    let tenant = connected(s, "acme").await;
    sync(s, &tenant, "full", "refreshed_token").await;
    let issued = source.tokens_issued();
    source.expire_tokens().await;
    source.update(&created[0]).await;
    let run = sync(s, &tenant, "incremental", "refreshed_token").await;
    assert_eq!(
        run["status"], "completed",
        "{name}: an expired token ended the sync: {run}"
    );
    assert!(
        source.tokens_issued() > issued,
        "{name}: no token was refreshed after the old one expired"
    );
    assert!(
        format!("{run}").len() < 10_000 && !format!("{run}").contains("access_token"),
        "{name}: the run shows a token: {run}"
    );
}
