//! A backend outage under load: Redis stops for 10 s while clients keep calling cache/redis.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, RedisServer, Server, decode, free_port, tenant_with_key};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_ten_second_redis_outage_gives_only_retryable_503s_and_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let redis_dir = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let redis = RedisServer::start(redis_port, Some(redis_dir.path()));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = {
        let mut command_env = vec![(
            "SWITCHYARD_REDIS_URL",
            format!("redis://127.0.0.1:{redis_port}"),
        )];
        Server::spawn_with_env(
            dir.path(),
            &["serve", "--listen", &listen],
            port,
            &mut command_env,
        )
    };
    let api = Api::new(&server, &tenant_with_key(dir.path(), "acme", "*"));

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(Vec::<(u16, Option<String>, bool)>::new()));
    let stop_at = Instant::now() + Duration::from_secs(17);
    let mut workers = Vec::new();
    for w in 0..4 {
        let (api, acknowledged, statuses) = (api.clone(), acknowledged.clone(), statuses.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < stop_at {
                let key = format!("w{w}-{n}");
                n += 1;
                let response = api
                    .raw()
                    .post(format!("{}/providers/cache/redis/set", api.base))
                    .bearer_auth(api.key())
                    .json(&json!({"params": {"key": key, "value": n}}))
                    .send()
                    .await
                    .unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                let (status, body) = decode(response).await;
                if status == 200 {
                    acknowledged.lock().unwrap().push(key);
                }
                statuses.lock().unwrap().push((
                    status.as_u16(),
                    body["code"].as_str().map(str::to_owned),
                    retry_after,
                ));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(redis);
    let mut saw_open = false;
    let outage_ends = Instant::now() + Duration::from_secs(10);
    while Instant::now() < outage_ends {
        let (_, health) = api.get("/providers/cache/redis/health").await;
        saw_open |= health["circuit"] == "open";
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _restarted = RedisServer::start(redis_port, Some(redis_dir.path()));
    let back = Instant::now();
    let mut recovered_after = None;
    while back.elapsed() < Duration::from_secs(5) {
        if api
            .post(
                "/providers/cache/redis/get",
                json!({"params": {"key": "probe"}}),
            )
            .await
            .0
            == 200
        {
            recovered_after = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in workers {
        w.await.unwrap();
    }

    let statuses = statuses.lock().unwrap().clone();
    assert!(
        statuses.iter().any(|(s, _, _)| *s == 503),
        "the outage was not noticed"
    );
    for (status, code, retry_after) in statuses.iter() {
        match status {
            200 => {}
            503 => {
                assert!(
                    matches!(
                        code.as_deref(),
                        Some("provider_unavailable" | "upstream_unavailable")
                    ),
                    "{code:?}"
                );
                assert!(*retry_after, "a 503 without Retry-After");
            }
            other => {
                panic!("status {other} ({code:?}) during the outage: only 200 or 503 may happen")
            }
        }
    }
    assert!(
        saw_open,
        "the circuit breaker never opened during a 10 s outage"
    );
    let recovered_after =
        recovered_after.expect("calls did not succeed within 5 s of Redis coming back");
    println!(
        "recovered {recovered_after:?} after Redis returned; {} calls, {} acknowledged",
        statuses.len(),
        acknowledged.lock().unwrap().len()
    );
    let keys = acknowledged.lock().unwrap().clone();
    for chunk in keys.chunks(500) {
        let got = api.ok("cache/redis", "mget", json!({"keys": chunk})).await;
        let missing: Vec<&serde_json::Value> = got["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["found"] != true)
            .collect();
        assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    }
}
