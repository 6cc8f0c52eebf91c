//! Parallel issues against one bin: the database's CHECK lets exactly as many through as there
//! is stock, whatever the interleaving, on both engines.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use switchyard_contracts::ErrorCode;
use tokio::task::JoinSet;

use crate::support::{Engine, Platform};

const CALLERS: usize = 32;

on_both_engines!(thirty_two_issues_of_one_against_ten_let_exactly_ten_through);

async fn thirty_two_issues_of_one_against_ten_let_exactly_ten_through(engine: Engine) {
    let platform = Platform::new(engine).await;
    let acme = Arc::new(platform.tenant("acme"));
    acme.basics().await;
    acme.ok(
        "receive",
        json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "10", "unit_cost": "3"}),
    )
    .await;
    let started = Instant::now();
    let mut callers = JoinSet::new();
    for _ in 0..CALLERS {
        let acme = acme.clone();
        callers.spawn(async move {
            acme.call(
                "issue",
                json!({"item": "paper", "warehouse": "main", "bin": "A1", "quantity": "1"}),
            )
            .await
        });
    }
    let mut issued = 0;
    let mut short = 0;
    while let Some(outcome) = callers.join_next().await {
        match outcome.unwrap() {
            Ok(answer) => {
                assert_eq!(answer["cost"], "3.0000");
                issued += 1;
            }
            Err(problem) if problem.code == ErrorCode::InsufficientStock => short += 1,
            Err(problem) => panic!("an issue failed otherwise: {problem:?}"),
        }
    }
    eprintln!(
        "{engine:?}: {CALLERS} concurrent issues in {:.1?}",
        started.elapsed()
    );
    assert_eq!((issued, short), (10, CALLERS - 10));
    assert_eq!(acme.bin("paper", "main", "A1", None).await, ["0", "0", "0"]);
    assert_eq!(
        acme.valued("paper", "main").await,
        ["0", "0.0000", "0.0000"]
    );
    let verified = acme.assert_replays().await;
    assert_eq!(verified["events"], 11);
}
