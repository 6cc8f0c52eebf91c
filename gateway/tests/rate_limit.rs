//! Rate limiting against real budgets: in this process, and in a real `redis-server` that two
//! limiters (standing for two gateway replicas) share.
//!
//! The Redis tests need `redis-server` on the PATH (`scripts/test` installs it); without it they
//! fail rather than pass unchecked.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_contracts::{ErrorCode, TenantId};
use switchyard_gateway::filters::rate_limit::{
    Budget, Quota, RateLimitConfig, RateLimiter, Verdict,
};

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

fn quota(requests: u32, per_seconds: u32) -> Quota {
    Quota {
        requests,
        per_seconds,
        burst: None,
    }
}

fn limiter(config: RateLimitConfig) -> RateLimiter {
    RateLimiter::new(config).unwrap()
}

/// One check that some budget applies to.
async fn check(limiter: &RateLimiter, tenant_id: &str, subject: &str) -> Verdict {
    limiter
        .check(&tenant(tenant_id), subject)
        .await
        .unwrap()
        .expect("a budget applies")
}

/// A loopback port nobody listens on (at the moment of asking).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway `redis-server` on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        // A port found free may be taken before the server binds it: then try another.
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start redis-server ({e}): the Redis rate limit tests need it on \
                         the PATH (scripts/test installs it; or apt-get install redis-server)"
                    )
                });
            let mut server = RedisServer { child, port };
            if server.wait_until_ready() {
                return server;
            }
        }
        panic!("redis-server did not answer PING on three different ports");
    }

    fn wait_until_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

// Scenarios run against both stores, from a config that only names the store.

async fn tenant_budget_counts_down_then_refuses(store: RateLimitConfig) {
    let limiter = limiter(RateLimitConfig {
        per_tenant: Some(quota(3, 10)),
        ..store
    });
    for remaining in [2, 1, 0] {
        let verdict = check(&limiter, "acme", "key:a").await;
        assert!(verdict.allowed);
        assert_eq!((verdict.budget, verdict.limit), (Budget::Tenant, 3));
        assert_eq!(verdict.remaining, remaining);
        assert_eq!(verdict.retry_after_secs, None);
        assert!(verdict.problem().is_none());
        assert!(
            !verdict
                .headers()
                .iter()
                .any(|(name, _)| *name == "Retry-After")
        );
    }
    // Another caller of the same tenant shares the tenant's budget.
    let refused = check(&limiter, "acme", "key:b").await;
    assert!(!refused.allowed);
    assert_eq!((refused.budget, refused.remaining), (Budget::Tenant, 0));
    let retry_after = refused
        .retry_after_secs
        .expect("a refusal says when to retry");
    assert!(retry_after >= 1);
    assert!(refused.reset_secs >= retry_after);
    let headers: HashMap<_, _> = refused.headers().into_iter().collect();
    assert_eq!(headers["RateLimit-Limit"], "3");
    assert_eq!(headers["RateLimit-Remaining"], "0");
    assert_eq!(headers["RateLimit-Reset"], refused.reset_secs.to_string());
    assert_eq!(headers["Retry-After"], retry_after.to_string());
    let problem = refused.problem().expect("a refusal is a problem");
    assert_eq!(
        (problem.code, problem.status()),
        (ErrorCode::RateLimited, 429)
    );
    assert!(problem.retryable);
    assert!(problem.detail.contains("tenant"), "{}", problem.detail);
}

async fn tenants_are_independent_and_overrides_apply(store: RateLimitConfig) {
    let limiter = limiter(RateLimitConfig {
        per_tenant: Some(quota(2, 10)),
        tenants: HashMap::from([("big".to_owned(), quota(5, 10))]),
        ..store
    });
    for _ in 0..2 {
        assert!(check(&limiter, "acme", "key:a").await.allowed);
    }
    assert!(!check(&limiter, "acme", "key:a").await.allowed);
    let other = check(&limiter, "globex", "key:g").await;
    assert!(other.allowed);
    assert_eq!((other.limit, other.remaining), (2, 1));
    for remaining in (0..5).rev() {
        let verdict = check(&limiter, "big", "key:b").await;
        assert!(verdict.allowed);
        assert_eq!((verdict.limit, verdict.remaining), (5, remaining));
    }
    assert!(!check(&limiter, "big", "key:b").await.allowed);
}

/// Subject budget 2, tenant budget 4: each subject is held to its own budget, the verdict names
/// the tighter budget, and requests refused by a subject's budget leave the tenant's untouched.
async fn subjects_are_isolated_and_refusals_spend_nothing_shared(store: RateLimitConfig) {
    let limiter = limiter(RateLimitConfig {
        per_tenant: Some(quota(4, 10)),
        per_subject: Some(quota(2, 10)),
        ..store
    });
    let first = check(&limiter, "acme", "key:a").await;
    assert_eq!(
        (first.budget, first.limit, first.remaining),
        (Budget::Subject, 2, 1)
    );
    assert!(check(&limiter, "acme", "key:a").await.allowed);
    for _ in 0..3 {
        let refused = check(&limiter, "acme", "key:a").await;
        assert!(!refused.allowed);
        assert_eq!(refused.budget, Budget::Subject);
        let problem = refused.problem().unwrap();
        assert!(problem.detail.contains("credentials"), "{}", problem.detail);
    }
    // The tenant has spent 2 of 4: key:b gets both of its own requests...
    let second_subject = check(&limiter, "acme", "key:b").await;
    assert!(second_subject.allowed);
    assert_eq!(second_subject.remaining, 1);
    let last = check(&limiter, "acme", "key:b").await;
    assert!(last.allowed);
    assert_eq!(last.remaining, 0);
    // ...and then the tenant's budget is the one that refuses a fresh subject.
    let refused = check(&limiter, "acme", "key:c").await;
    assert!(!refused.allowed);
    assert_eq!(refused.budget, Budget::Tenant);
    // Another tenant's subject of the same name has its own budget.
    assert!(check(&limiter, "globex", "key:a").await.allowed);
}

async fn budget_refills_after_its_period(store: RateLimitConfig) {
    let limiter = limiter(RateLimitConfig {
        per_tenant: Some(quota(2, 1)),
        ..store
    });
    for _ in 0..2 {
        assert!(check(&limiter, "acme", "key:a").await.allowed);
    }
    let refused = check(&limiter, "acme", "key:a").await;
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, Some(1));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let again = check(&limiter, "acme", "key:a").await;
    assert!(again.allowed);
    assert_eq!(again.remaining, 1);
}

fn local() -> RateLimitConfig {
    RateLimitConfig::default()
}

fn in_redis(server: &RedisServer) -> RateLimitConfig {
    RateLimitConfig {
        redis_url: Some(server.url()),
        ..RateLimitConfig::default()
    }
}

#[tokio::test]
async fn local_tenant_budget_counts_down_then_refuses() {
    tenant_budget_counts_down_then_refuses(local()).await;
}

#[tokio::test]
async fn local_tenants_are_independent_and_overrides_apply() {
    tenants_are_independent_and_overrides_apply(local()).await;
}

#[tokio::test]
async fn local_subjects_are_isolated_and_refusals_spend_nothing_shared() {
    subjects_are_isolated_and_refusals_spend_nothing_shared(local()).await;
}

#[tokio::test]
async fn local_budget_refills_after_its_period() {
    budget_refills_after_its_period(local()).await;
}

#[tokio::test]
async fn no_configured_budget_means_no_verdict() {
    let unlimited = limiter(RateLimitConfig::default());
    assert_eq!(unlimited.check(&tenant("acme"), "key:a").await, Ok(None));
    // An override alone limits only the tenant it names.
    let one_tenant = limiter(RateLimitConfig {
        tenants: HashMap::from([("big".to_owned(), quota(1, 10))]),
        ..RateLimitConfig::default()
    });
    assert_eq!(one_tenant.check(&tenant("acme"), "key:a").await, Ok(None));
    assert!(check(&one_tenant, "big", "key:b").await.allowed);
    assert!(!check(&one_tenant, "big", "key:b").await.allowed);
}

#[tokio::test]
async fn redis_tenant_budget_counts_down_then_refuses() {
    let server = RedisServer::start();
    tenant_budget_counts_down_then_refuses(in_redis(&server)).await;
}

#[tokio::test]
async fn redis_tenants_are_independent_and_overrides_apply() {
    let server = RedisServer::start();
    tenants_are_independent_and_overrides_apply(in_redis(&server)).await;
}

#[tokio::test]
async fn redis_subjects_are_isolated_and_refusals_spend_nothing_shared() {
    let server = RedisServer::start();
    subjects_are_isolated_and_refusals_spend_nothing_shared(in_redis(&server)).await;
}

#[tokio::test]
async fn redis_budget_refills_after_its_period() {
    let server = RedisServer::start();
    budget_refills_after_its_period(in_redis(&server)).await;
}

#[tokio::test]
async fn redis_replicas_share_one_budget() {
    let server = RedisServer::start();
    let config = RateLimitConfig {
        per_tenant: Some(quota(4, 10)),
        ..in_redis(&server)
    };
    let replicas = [limiter(config.clone()), limiter(config)];
    for (n, remaining) in (0..4).rev().enumerate() {
        let verdict = check(&replicas[n % 2], "acme", "key:a").await;
        assert!(verdict.allowed, "request {n}");
        assert_eq!(verdict.remaining, remaining, "request {n}");
    }
    for replica in &replicas {
        assert!(!check(replica, "acme", "key:a").await.allowed);
    }
}

#[tokio::test]
async fn unreachable_redis_fails_open_or_closed_as_configured() {
    let nobody = format!("redis://127.0.0.1:{}/", free_port());
    let budget = RateLimitConfig {
        per_tenant: Some(quota(1, 10)),
        redis_url: Some(nobody),
        ..RateLimitConfig::default()
    };
    let open = limiter(budget.clone());
    for _ in 0..3 {
        assert_eq!(open.check(&tenant("acme"), "key:a").await, Ok(None));
    }
    let closed = limiter(RateLimitConfig {
        fail_open: false,
        ..budget
    });
    let problem = closed.check(&tenant("acme"), "key:a").await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::Internal);
    assert!(problem.retryable);
}

#[tokio::test]
async fn redis_going_away_after_use_fails_open_or_closed_as_configured() {
    let server = RedisServer::start();
    let budget = RateLimitConfig {
        per_tenant: Some(quota(5, 10)),
        ..in_redis(&server)
    };
    let open = limiter(budget.clone());
    let closed = limiter(RateLimitConfig {
        fail_open: false,
        ..budget
    });
    assert!(check(&open, "acme", "key:a").await.allowed);
    assert!(check(&closed, "acme", "key:a").await.allowed);
    drop(server);
    assert_eq!(open.check(&tenant("acme"), "key:a").await, Ok(None));
    let problem = closed.check(&tenant("acme"), "key:a").await.unwrap_err();
    assert_eq!(problem.code, ErrorCode::Internal);
}

#[test]
fn invalid_quotas_and_urls_are_refused() {
    for bad in [
        Quota {
            requests: 0,
            per_seconds: 1,
            burst: None,
        },
        Quota {
            requests: 1,
            per_seconds: 0,
            burst: None,
        },
        Quota {
            requests: 1,
            per_seconds: 1,
            burst: Some(0),
        },
        Quota {
            requests: u32::MAX,
            per_seconds: 1,
            burst: None,
        },
        Quota {
            requests: 1,
            per_seconds: u32::MAX,
            burst: None,
        },
    ] {
        for config in [
            RateLimitConfig {
                per_tenant: Some(bad),
                ..RateLimitConfig::default()
            },
            RateLimitConfig {
                per_subject: Some(bad),
                ..RateLimitConfig::default()
            },
            RateLimitConfig {
                tenants: HashMap::from([("acme".to_owned(), bad)]),
                ..RateLimitConfig::default()
            },
        ] {
            assert!(RateLimiter::new(config).is_err(), "{bad:?} accepted");
        }
    }
    let bad_tenant = RateLimitConfig {
        tenants: HashMap::from([("Not A Tenant".to_owned(), quota(1, 1))]),
        ..RateLimitConfig::default()
    };
    assert!(RateLimiter::new(bad_tenant).is_err());
    let bad_url = RateLimitConfig {
        redis_url: Some("http://example.com".to_owned()),
        ..RateLimitConfig::default()
    };
    assert!(RateLimiter::new(bad_url).is_err());
    assert!(
        RateLimiter::new(RateLimitConfig {
            per_tenant: Some(Quota {
                requests: 10,
                per_seconds: 60,
                burst: Some(1)
            }),
            ..RateLimitConfig::default()
        })
        .is_ok()
    );
}

#[test]
fn config_defaults_and_unknown_fields() {
    let config: RateLimitConfig =
        serde_json::from_str(r#"{"per_subject": {"requests": 5, "per_seconds": 1}}"#).unwrap();
    assert!(config.fail_open);
    assert_eq!(config.per_subject, Some(quota(5, 1)));
    assert_eq!((config.per_tenant, config.redis_url), (None, None));
    assert!(config.tenants.is_empty());
    assert!(serde_json::from_str::<RateLimitConfig>(r#"{"per_tenat": null}"#).is_err());
    assert!(
        serde_json::from_str::<RateLimitConfig>(
            r#"{"per_tenant": {"requests": 5, "per_seconds": 1, "brust": 9}}"#
        )
        .is_err()
    );
}
