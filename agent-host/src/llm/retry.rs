//! Backoff arithmetic and `retry-after` parsing, kept apart from the I/O so they can be tested exactly.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use reqwest::header::HeaderMap;

use super::config::RetryPolicy;

/// What to do after attempt number `attempt` (0-based) failed with a retryable error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Wait(Duration),
    GiveUp,
}

/// Honours the server's `retry-after` when it gave one (a server that asks for 2 s means it), otherwise
/// exponential backoff with "equal jitter" (half fixed, half random) so that many clients that failed at
/// the same moment do not come back at the same moment.
pub(crate) fn decide(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Decision {
    if attempt + 1 >= policy.max_attempts {
        return Decision::GiveUp;
    }
    if let Some(wait) = retry_after {
        return if wait <= Duration::from_millis(policy.max_retry_after_ms) {
            Decision::Wait(wait)
        } else {
            Decision::GiveUp
        };
    }
    let exp = policy.base_delay_ms.saturating_mul(1u64 << attempt.min(20));
    let capped = exp.min(policy.max_delay_ms);
    let half = capped / 2;
    let jitter = if half == 0 { 0 } else { random_u64() % (half + 1) };
    Decision::Wait(Duration::from_millis(half + jitter))
}

/// A random number from the standard library's per-process random hash keys; good enough for jitter and
/// saves a dependency.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// Reads `retry-after-ms` (OpenAI) or `retry-after` in seconds, fractional accepted. The HTTP-date form is
/// ignored (no provider we talk to sends it); the backoff then applies.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| -> Option<f64> {
        let v = headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok()?;
        (v.is_finite() && v >= 0.0).then_some(v)
    };
    if let Some(ms) = num("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    num("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 4, base_delay_ms: 100, max_delay_ms: 1000, max_retry_after_ms: 5000 }
    }

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_stops_at_the_cap() {
        for (attempt, full) in [(0u32, 100u64), (1, 200), (2, 400)] {
            for _ in 0..50 {
                let Decision::Wait(d) = decide(&policy(), attempt, None) else { panic!("should retry") };
                let ms = d.as_millis() as u64;
                assert!(ms >= full / 2 && ms <= full, "attempt {attempt}: {ms} ms not in [{}, {full}]", full / 2);
            }
        }
        let big = RetryPolicy { max_attempts: 50, ..policy() };
        let Decision::Wait(d) = decide(&big, 30, None) else { panic!("should retry") };
        assert!(d <= Duration::from_millis(1000));
    }

    #[test]
    fn attempts_are_bounded() {
        assert_eq!(decide(&policy(), 3, None), Decision::GiveUp);
        let once = RetryPolicy { max_attempts: 1, ..policy() };
        assert_eq!(decide(&once, 0, Some(Duration::from_millis(1))), Decision::GiveUp);
    }

    #[test]
    fn retry_after_is_honoured_exactly_but_not_when_longer_than_the_cap() {
        assert_eq!(decide(&policy(), 0, Some(Duration::from_secs(2))), Decision::Wait(Duration::from_secs(2)));
        assert_eq!(decide(&policy(), 0, Some(Duration::from_secs(60))), Decision::GiveUp);
    }

    #[test]
    fn retry_after_headers_in_ms_seconds_and_fractions_are_understood() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", HeaderValue::from_static("0.25"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.insert("retry-after-ms", HeaderValue::from_static("40"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(40)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), None);
    }
}
