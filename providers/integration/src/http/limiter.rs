//! One connection's outbound limiter. It holds calls back for three reasons, the longest
//! wait wins:
//! - the system asked for a pause: a 429's or 503's `Retry-After` (seconds or an HTTP date)
//!   holds every call of the connection, not only the one that got it;
//! - the system's own usage header says its allowance nears the top: Shopify's
//!   `X-Shopify-Shop-Api-Call-Limit: 39/40` (a leaky bucket of 40 draining 2 a second),
//!   Salesforce's `Sforce-Limit-Info: api-usage=25/15000` (a daily allowance). Above
//!   [`HIGH_WATER`] of the allowance, calls are spaced by the allowance's refill rate, so
//!   the connection rides just under the top instead of running into 429s;
//! - a configured requests/second ceiling (governor's GCRA).

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use super::Headers;

/// The share of the system's allowance above which calls are spaced out.
const HIGH_WATER: f64 = 0.8;

/// The longest pause a `Retry-After` may impose; a longer one is read as this.
const LONGEST_PAUSE: Duration = Duration::from_secs(24 * 60 * 60);

/// The system's reading of the connection's usage, as one response's headers state it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Usage {
    pub(crate) used: f64,
    pub(crate) max: f64,
}

impl Usage {
    /// `used/max`, the shape of Shopify's call limit (`39/40`) and Salesforce's
    /// `api-usage=` value (`25/15000`).
    pub(crate) fn fraction(text: &str) -> Option<Usage> {
        let (used, max) = text.trim().split_once('/')?;
        let usage = Usage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        };
        (usage.used >= 0.0 && usage.max > 0.0).then_some(usage)
    }
}

/// A connector's hook into its system's usage headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateHeaders {
    /// Reads the usage from a response's headers (names lower-cased); `None` when they do
    /// not state it.
    pub(crate) read: fn(&Headers) -> Option<Usage>,
    /// How many calls the allowance regains a second: Shopify's bucket leaks 2 a second
    /// (4 on Plus), a daily allowance of 15,000 regains 15,000 / 86,400.
    pub(crate) refill_per_second: f64,
}

#[derive(Default)]
pub(super) struct Limiter {
    headers: Option<RateHeaders>,
    ceiling: Option<DefaultDirectRateLimiter>,
    state: Mutex<State>,
}

/// The usage as last read, run forward by the calls admitted since and the refill.
#[derive(Debug, Default)]
struct State {
    level: f64,
    max: f64,
    at: Option<Instant>,
    paused_until: Option<Instant>,
}

impl State {
    /// How long a call at `now` waits for the usage to fall under the high-water mark,
    /// counting the call in.
    fn book(&mut self, now: Instant, refill_per_second: f64) -> Duration {
        let Some(at) = self.at else {
            return Duration::ZERO;
        };
        let drained = refill_per_second * now.saturating_duration_since(at).as_secs_f64();
        self.level = (self.level - drained).max(0.0);
        self.at = Some(now);
        let over = self.level + 1.0 - HIGH_WATER * self.max;
        self.level += 1.0;
        if over > 0.0 && refill_per_second > 0.0 {
            Duration::from_secs_f64(over / refill_per_second).min(LONGEST_PAUSE)
        } else {
            Duration::ZERO
        }
    }
}

impl Limiter {
    pub(super) fn follow(&mut self, headers: RateHeaders) {
        self.headers = Some(headers);
    }

    pub(super) fn cap(&mut self, per_second: NonZeroU32) {
        self.ceiling = Some(RateLimiter::direct(Quota::per_second(per_second)));
    }

    /// Waits until a call may go; `Err(wait)` at once, booking nothing, when that would be
    /// later than `deadline`.
    pub(super) async fn admit(&self, deadline: Instant) -> Result<(), Duration> {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let paused = state
                .paused_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
            let mut booked = State {
                paused_until: None,
                ..*state
            };
            let spacing = self
                .headers
                .map_or(Duration::ZERO, |h| booked.book(now, h.refill_per_second));
            let wait = paused.max(spacing);
            if now + wait > deadline {
                return Err(wait);
            }
            booked.paused_until = state.paused_until;
            *state = booked;
            wait
        };
        tokio::time::sleep(wait).await;
        if let Some(ceiling) = &self.ceiling {
            ceiling.until_ready().await;
        }
        Ok(())
    }

    /// Takes the usage a response's headers state as the truth.
    pub(super) fn observe(&self, headers: &Headers) {
        let Some(usage) = self.headers.and_then(|h| (h.read)(headers)) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.level = usage.used;
        state.max = usage.max;
        state.at = Some(Instant::now());
    }

    /// Holds every call of the connection for `after`.
    pub(super) fn pause(&self, after: Duration) {
        let until = Instant::now() + after.min(LONGEST_PAUSE);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
    }
}

/// A `Retry-After` header: delay-seconds (Shopify sends `2.0`) or an HTTP date.
pub(super) fn retry_after(headers: &Headers) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

fn retry_after_at(headers: &Headers, now: SystemTime) -> Option<Duration> {
    let value = headers.get("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(LONGEST_PAUSE.as_secs_f64())));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .min(LONGEST_PAUSE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> Headers {
        [(name.to_owned(), value.to_owned())].into()
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after_at(&headers("retry-after", "2.0"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after_at(&headers("retry-after", "120"), now),
            Some(Duration::from_secs(120))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            retry_after_at(&headers("retry-after", &date), now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(
            retry_after_at(&headers("retry-after", &past), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after_at(&headers("retry-after", "soon"), now), None);
        assert_eq!(retry_after_at(&headers("retry-after", "-1"), now), None);
        assert_eq!(retry_after_at(&Headers::new(), now), None);
    }

    #[test]
    fn usage_reads_used_over_max() {
        assert_eq!(
            Usage::fraction("39/40"),
            Some(Usage {
                used: 39.0,
                max: 40.0
            })
        );
        assert_eq!(Usage::fraction(" 25/15000 ").map(|u| u.max), Some(15000.0));
        assert_eq!(Usage::fraction("39"), None);
        assert_eq!(Usage::fraction("1/0"), None);
    }

    /// Shopify's bucket of 40 leaking 2 a second: under 32 calls go at once; at 39 the next
    /// call waits for 8 to drain (4 s), and each call booked after it 0.5 s more.
    #[test]
    fn calls_near_the_top_of_the_bucket_are_spaced_by_its_refill() {
        let now = Instant::now();
        let mut state = State {
            level: 10.0,
            max: 40.0,
            at: Some(now),
            paused_until: None,
        };
        assert_eq!(state.book(now, 2.0), Duration::ZERO);
        state.level = 39.0;
        assert_eq!(state.book(now, 2.0), Duration::from_secs(4));
        assert_eq!(state.book(now, 2.0), Duration::from_millis(4500));
        // Five seconds later ten calls have drained: 41 - 10 = 31, under the mark again.
        assert_eq!(
            state.book(now + Duration::from_secs(5), 2.0),
            Duration::ZERO
        );
    }

    #[test]
    fn without_a_reading_nothing_waits() {
        let mut state = State::default();
        assert_eq!(state.book(Instant::now(), 2.0), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_pause_past_the_deadline_is_refused_at_once() {
        let limiter = Limiter::default();
        limiter.pause(Duration::from_secs(3600));
        let deadline = Instant::now() + Duration::from_secs(20);
        let wait = limiter.admit(deadline).await.unwrap_err();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
    }
}
