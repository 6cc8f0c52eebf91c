//! The platform operator's routes, answered by the runtime itself:
//!
//! - `POST /providers/register` with a remote provider's manifest (JSON) → 201 and the
//!   registration, once the domain's core conformance checks passed against it;
//! - `GET /providers/register` → every registration; `GET /providers/register/{d}/{n}` → one;
//! - `DELETE /providers/register/{d}/{n}` → unlisted, every tenant's instance stopped.
//!
//! There is no operator identity in the platform yet, so these routes take one shared secret:
//! `Authorization: Bearer <SWITCHYARD_OPERATOR_TOKEN>`, compared in constant time (by SHA-256
//! digests, so not even the length leaks). Anything else — no token, another token, a tenant's
//! API key, a request the gateway signed for a tenant — is refused; a runtime without the
//! variable refuses every registration. docs/adr/0022-runtime-registration.md says why.
//!
//! These routes skip the gateway's tenant rate limiter (there is no tenant to charge), so the
//! guesses at the token are limited here, per client address ([`Guesses`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_contracts::{ErrorCode, Problem};

use super::{RequestBody, json_response, problem_response, read_body};
use crate::internal_auth::CONTEXT_HEADER;
use crate::runtime::Runtime;

/// The environment variable holding the operator's token.
pub const TOKEN_VARIABLE: &str = "SWITCHYARD_OPERATOR_TOKEN";

/// Shortest token accepted: a guessable one would hand the platform to whoever guesses it.
const MIN_TOKEN_LEN: usize = 16;

/// Largest manifest body; a manifest is a few hundred bytes.
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// Wrong tokens one client address may send before it is refused (the burst); one more is
/// allowed every minute / this much.
const FAILURES_PER_MINUTE: u32 = 10;

/// Addresses with failures counted past which the ones whose budget is whole are forgotten.
const TRACKED_ADDRESSES: usize = 4096;

/// The key of requests that come without a client address (none is known for them).
const UNKNOWN_ADDRESS: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The operator's token, kept as its digest (`None` turns registration off), and the wrong
/// guesses at it.
pub struct OperatorToken {
    digest: Option<[u8; 32]>,
    guesses: Guesses,
}

/// Why a request is not the operator's.
struct Refusal {
    problem: Problem,
    /// A token was given and it was not the operator's: the one refusal that is a guess.
    guess: bool,
}

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Self {
        Refusal {
            problem,
            guess: false,
        }
    }
}

/// Wrong tokens per client address: [`FAILURES_PER_MINUTE`] in a burst, then one per
/// minute / that (governor's GCRA, keyed by address). An address past its budget is refused
/// with 429 `rate_limited` for *every* request until its budget frees one — the right token
/// included, or the answers would still tell a right guess from a wrong one at full speed.
/// Keyed by address so that one guesser never locks the operator out from elsewhere.
///
/// The address is the request's [`IpAddr`] extension: the gateway in this process sets it from
/// its client's connection, [`super::serve`] from the connection it accepted (behind a
/// proxying gateway, the gateway's own address: every client of that gateway shares one budget).
pub(crate) struct Guesses<C: Clock = DefaultClock> {
    failures: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    /// Addresses past their budget, until when. governor counts only the attempts it admits
    /// and cannot be asked without counting one, so a refusal is remembered here to refuse the
    /// address's next request before its token is even compared.
    refused_until: Mutex<HashMap<IpAddr, C::Instant>>,
}

impl Guesses {
    fn new() -> Self {
        Guesses::with_clock(DefaultClock::default())
    }
}

impl<C: Clock> Guesses<C> {
    fn with_clock(clock: C) -> Self {
        let burst = NonZeroU32::new(FAILURES_PER_MINUTE).expect("a positive burst");
        Guesses {
            failures: RateLimiter::new(
                Quota::per_minute(burst),
                DefaultKeyedStateStore::default(),
                clock,
            ),
            refused_until: Mutex::new(HashMap::new()),
        }
    }

    /// How long `address` must still wait, when it is past its budget.
    fn refused(&self, address: IpAddr) -> Option<Duration> {
        let now = self.failures.clock().now();
        let mut refused = self.refused_until.lock().unwrap_or_else(|p| p.into_inner());
        let until = *refused.get(&address)?;
        if until > now {
            return Some(until.duration_since(now).into());
        }
        refused.remove(&address);
        None
    }

    /// Counts a wrong token from `address`; past its budget, how long it must wait.
    fn failed(&self, address: IpAddr) -> Option<Duration> {
        // Addresses whose budget is whole again are forgotten, once there are many of them
        // (guesses sprayed from many addresses, each failing once, must not grow the map).
        if self.failures.len() > TRACKED_ADDRESSES {
            self.failures.retain_recent();
        }
        let not_until = self.failures.check_key(&address).err()?;
        let now = self.failures.clock().now();
        let mut refused = self.refused_until.lock().unwrap_or_else(|p| p.into_inner());
        // Only addresses past their budget are kept, each until it may try again.
        refused.retain(|_, until| *until > now);
        refused.insert(address, not_until.earliest_possible());
        Some(not_until.wait_time_from(now))
    }
}

/// 429 `rate_limited` with the whole seconds to wait in `Retry-After`.
fn too_many_guesses(wait: Duration, request_id: &str) -> Response<Full<Bytes>> {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let problem = Problem::new(
        ErrorCode::RateLimited,
        format!(
            "too many wrong operator tokens from this address ({FAILURES_PER_MINUTE} a minute); \
             try again in {seconds} s"
        ),
    );
    let mut response = problem_response(problem, request_id);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

impl OperatorToken {
    /// From [`TOKEN_VARIABLE`]; unset, empty or too short, registration is off (said once
    /// in the log, since an operator who set a short token expects it to work).
    pub fn from_env() -> Self {
        match std::env::var(TOKEN_VARIABLE) {
            Ok(token) if token.len() >= MIN_TOKEN_LEN => OperatorToken::new(&token),
            Ok(token) if !token.is_empty() => {
                tracing::warn!(
                    "{TOKEN_VARIABLE} is shorter than {MIN_TOKEN_LEN} characters; runtime registration is off"
                );
                OperatorToken::off()
            }
            _ => OperatorToken::off(),
        }
    }

    pub fn new(token: &str) -> Self {
        OperatorToken {
            digest: Some(Sha256::digest(token.as_bytes()).into()),
            guesses: Guesses::new(),
        }
    }

    fn off() -> Self {
        OperatorToken {
            digest: None,
            guesses: Guesses::new(),
        }
    }

    /// Whether the request is the operator's. `tenant` is set when the request carries a
    /// tenant's verified context (in-process, or signed by the gateway).
    fn admit(&self, headers: &HeaderMap, tenant: bool) -> Result<(), Refusal> {
        let refused = |why: &str| {
            Problem::new(
                ErrorCode::OperatorOnly,
                format!(
                    "/providers/register is the platform operator's (Authorization: Bearer \
                     <{TOKEN_VARIABLE}>), not a tenant's; {why}"
                ),
            )
        };
        let Some(expected) = &self.digest else {
            return Err(refused(&format!(
                "this runtime has no {TOKEN_VARIABLE}, so runtime registration is off"
            ))
            .into());
        };
        if tenant || headers.contains_key(CONTEXT_HEADER) {
            return Err(refused("the request comes with a tenant's credentials").into());
        }
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|token| !token.trim().is_empty())
        else {
            return Err(Problem::new(
                ErrorCode::Unauthenticated,
                format!("/providers/register needs Authorization: Bearer <{TOKEN_VARIABLE}>"),
            )
            .into());
        };
        let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        if bool::from(given.ct_eq(expected)) {
            Ok(())
        } else {
            Err(Refusal {
                problem: refused("the credentials given are not the operator's token"),
                guess: true,
            })
        }
    }
}

/// Answers one request under `/providers/register` (`split` is its path, split). The client's
/// address is the request's [`IpAddr`] extension, when it has one.
pub(super) async fn answer(
    runtime: &Runtime,
    token: &OperatorToken,
    req: Request<RequestBody>,
    split: &[&str],
    tenant: bool,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, Problem> {
    let address = req
        .extensions()
        .get::<IpAddr>()
        .copied()
        .unwrap_or(UNKNOWN_ADDRESS);
    if let Some(wait) = token.guesses.refused(address) {
        return Ok(too_many_guesses(wait, request_id));
    }
    if let Err(Refusal { problem, guess }) = token.admit(req.headers(), tenant) {
        if guess && let Some(wait) = token.guesses.failed(address) {
            tracing::warn!(%address, "operator token guesses from this address are rate limited");
            return Ok(too_many_guesses(wait, request_id));
        }
        return Err(problem);
    }
    let (parts, body) = req.into_parts();
    let (status, answer) = match (&parts.method, split) {
        (&Method::GET, [_, _]) => (StatusCode::OK, runtime.registrations()),
        (&Method::POST, [_, _]) => {
            let manifest = manifest(&parts.headers, body).await?;
            (
                StatusCode::CREATED,
                runtime.register_remote(manifest).await?,
            )
        }
        (&Method::GET, [_, _, domain, name]) => {
            (StatusCode::OK, runtime.registration(domain, name)?)
        }
        (&Method::DELETE, [_, _, domain, name]) => {
            (StatusCode::OK, runtime.unregister(domain, name).await?)
        }
        (_, [_, _] | [_, _, _, _]) => {
            return Err(Problem::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here", parts.method),
            ));
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::RouteNotFound,
                "no such route under /providers/register",
            ));
        }
    };
    Ok(json_response(
        status,
        Bytes::from(answer.to_string()),
        Some(request_id),
    ))
}

/// The manifest: a JSON object sent as `application/json`.
async fn manifest(headers: &HeaderMap, body: RequestBody) -> Result<Value, Problem> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "application/json");
    if !json {
        return Err(Problem::new(
            ErrorCode::UnsupportedMediaType,
            "a manifest is sent as Content-Type: application/json",
        ));
    }
    let body = read_body(body, MAX_MANIFEST_BYTES).await?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(manifest @ Value::Object(_)) => Ok(manifest),
        Ok(_) => Err(Problem::new(
            ErrorCode::ManifestInvalid,
            "the manifest must be a JSON object",
        )),
        Err(e) => Err(Problem::new(
            ErrorCode::RequestInvalid,
            format!("the body is not JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn only_the_operators_token_is_admitted() {
        let token = OperatorToken::new("operator-token-0123456789");
        assert!(
            token
                .admit(&bearer("operator-token-0123456789"), false)
                .is_ok()
        );
        let code = |r: Result<(), Refusal>| r.unwrap_err().problem.code;
        assert_eq!(
            code(token.admit(&bearer("sk_acme_tenantkey"), false)),
            ErrorCode::OperatorOnly
        );
        assert_eq!(
            code(token.admit(&HeaderMap::new(), false)),
            ErrorCode::Unauthenticated
        );
        // The right token beside a tenant's verified context is still a tenant's request.
        assert_eq!(
            code(token.admit(&bearer("operator-token-0123456789"), true)),
            ErrorCode::OperatorOnly
        );
        assert_eq!(
            code(OperatorToken::off().admit(&bearer("operator-token-0123456789"), false)),
            ErrorCode::OperatorOnly
        );
    }

    #[test]
    fn only_a_wrong_token_is_a_guess() {
        let token = OperatorToken::new("operator-token-0123456789");
        let guess = |r: Result<(), Refusal>| r.unwrap_err().guess;
        assert!(guess(token.admit(&bearer("operator-token-wrong"), false)));
        assert!(!guess(token.admit(&HeaderMap::new(), false)));
        assert!(!guess(
            token.admit(&bearer("operator-token-0123456789"), true)
        ));
        assert!(!guess(
            OperatorToken::off().admit(&bearer("operator-token-wrong"), false)
        ));
    }

    /// Past its budget an address waits (whatever it sends), another address does not, and
    /// the budget frees one guess a minute / FAILURES_PER_MINUTE later. A fake clock, no sleep.
    #[test]
    fn guesses_are_limited_per_address_and_freed_with_time() {
        let clock = governor::clock::FakeRelativeClock::default();
        let guesses = Guesses::with_clock(clock.clone());
        let guesser: IpAddr = "203.0.113.7".parse().unwrap();
        let operator: IpAddr = "198.51.100.1".parse().unwrap();
        for attempt in 0..FAILURES_PER_MINUTE {
            assert_eq!(guesses.failed(guesser), None, "attempt {attempt}");
            assert_eq!(guesses.refused(guesser), None, "attempt {attempt}");
        }
        let interval = Duration::from_secs(60) / FAILURES_PER_MINUTE;
        assert_eq!(guesses.failed(guesser), Some(interval));
        assert_eq!(guesses.refused(guesser), Some(interval));
        assert_eq!(guesses.refused(operator), None);
        assert_eq!(guesses.failed(operator), None);

        clock.advance(interval / 2);
        assert_eq!(guesses.refused(guesser), Some(interval / 2));
        clock.advance(interval / 2);
        assert_eq!(guesses.refused(guesser), None);
        assert_eq!(guesses.failed(guesser), None, "one guess freed");
        assert_eq!(guesses.failed(guesser), Some(interval));
    }

    /// Guesses sprayed from many addresses, each failing once, are forgotten once their
    /// budgets are whole again instead of growing the map for good.
    #[test]
    fn addresses_whose_budget_is_whole_are_forgotten() {
        let clock = governor::clock::FakeRelativeClock::default();
        let guesses = Guesses::with_clock(clock.clone());
        let address = |n: usize| IpAddr::from([10, 0, (n / 256) as u8, (n % 256) as u8]);
        for n in 0..=TRACKED_ADDRESSES {
            assert_eq!(guesses.failed(address(n)), None);
        }
        assert_eq!(guesses.failures.len(), TRACKED_ADDRESSES + 1);
        clock.advance(Duration::from_secs(60));
        assert_eq!(guesses.failed(address(0)), None);
        assert_eq!(guesses.failures.len(), 1);
    }

    #[test]
    fn a_limited_address_is_told_when_to_come_back() {
        let response = too_many_guesses(Duration::from_millis(5_500), "r");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "6");
        let response = too_many_guesses(Duration::ZERO, "r");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
