//! Retry policy of the HTTP client, as pure functions: whether a failed attempt is retried and
//! how long to wait. `client::Client` runs the loop; nothing here sleeps or does I/O, and time
//! and jitter come in as arguments so the table tests are exact.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// No single wait is longer (`--max-wait`): a server hint (`Retry-After`,
    /// `X-RateLimit-Reset`) beyond it is clamped, and the request is tried again then.
    pub max_hint: Duration,
    /// Retries of failures (not of 429s, which the pacing answers) the whole run may spend
    /// (`--retry-budget`): a server that keeps failing is not hammered for hours.
    pub budget: u64,
    /// How long one request may be kept waiting by 429s in all (`--slot-wait`): 429s are the
    /// server pacing us, so they are waited out rather than counted as attempts.
    pub patience: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
            max_hint: Duration::from_secs(300),
            budget: 1000,
            patience: Duration::from_secs(30 * 60),
        }
    }
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    Status {
        status: u16,
        retry_after: Option<&'a str>,
        rate_limit_reset: Option<&'a str>,
    },
    Timeout,
    Connect,
    /// The connection broke after the request may have been sent.
    Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry(Duration),
    GiveUp,
}

/// Transient failures whose outcome is unknown are retried (with the same idempotency key, by
/// the caller); definite refusals (4xx other than 408/429, and 501) are not.
pub fn is_retryable(f: &Failure) -> bool {
    match f {
        Failure::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
        Failure::Timeout | Failure::Connect | Failure::Transport => true,
    }
}

/// A failure after which the request may have been applied: repeating it is only safe with an
/// idempotency key. (No connection, 429 and 503 mean the server did not act on it.)
pub fn maybe_applied(f: &Failure) -> bool {
    match f {
        Failure::Status { status, .. } => matches!(status, 408 | 500 | 502 | 504),
        Failure::Timeout | Failure::Transport => true,
        Failure::Connect => false,
    }
}

/// Whether retrying `f` spends the run's retry budget: a 429 is the server pacing us, answered
/// by waiting and slowing down, not a failure.
pub fn spends_budget(f: &Failure) -> bool {
    !matches!(f, Failure::Status { status: 429, .. })
}

/// A 429: the server pacing us, not a failure. It is waited out (never counted against
/// `--retries` or the budget) for as long as the policy's patience lasts.
pub fn is_back_pressure(f: &Failure) -> bool {
    matches!(f, Failure::Status { status: 429, .. })
}

/// Whether a request that 429s have kept waiting for `waited` in all should stop waiting.
pub fn out_of_patience(policy: &Policy, waited: Duration) -> bool {
    waited >= policy.patience
}

/// `attempt` is the number of attempts made so far that ended this way: failures (1 after the
/// first), or for a 429 the 429s in a row (they never use up `max_attempts`); `jitter` is a
/// uniform draw from [0, 1); `now` is the current time, for `X-RateLimit-Reset`;
/// `budget_left` is what is left of the run's retry budget.
pub fn decide(
    policy: &Policy,
    attempt: u32,
    f: &Failure,
    jitter: f64,
    now: jiff::Timestamp,
    budget_left: u64,
) -> Decision {
    if !is_retryable(f) || (!is_back_pressure(f) && attempt >= policy.max_attempts) {
        return Decision::GiveUp;
    }
    if budget_left == 0 && spends_budget(f) {
        return Decision::GiveUp;
    }
    let backed_off = backoff(policy, attempt, jitter);
    if let Failure::Status {
        retry_after,
        rate_limit_reset,
        ..
    } = f
    {
        // `Retry-After` is the server's own wait.
        if let Some(hint) = server_hint(*retry_after, None, now)
            && !hint.is_zero()
        {
            return Decision::Retry(hint.min(policy.max_hint));
        }
        // `X-RateLimit-Reset` alone has minute precision: it says when the wait ends at the
        // latest, so it bounds the backoff and never stretches it (a 429 one second before the
        // minute turns would otherwise wait a minute). One already due (rounded down) says
        // nothing: back off.
        if let Some(hint) = server_hint(None, *rate_limit_reset, now)
            && !hint.is_zero()
        {
            return Decision::Retry(hint.min(backed_off).min(policy.max_hint));
        }
    }
    Decision::Retry(backed_off.min(policy.max_hint))
}

/// Capped exponential backoff with "equal jitter": half the step is fixed, half random, so
/// clients spread out without ever retrying immediately.
pub fn backoff(policy: &Policy, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let step = policy
        .base
        .checked_mul(1u32 << exp)
        .unwrap_or(policy.cap)
        .min(policy.cap);
    let jitter = jitter.clamp(0.0, 1.0);
    step / 2 + step.mul_f64(jitter / 2.0)
}

/// The longest wait a number from a server or a flag becomes: a day. Longer is absurd (and a
/// value past `Duration`'s range would panic), so it is clamped; NaN and negatives are no wait.
pub const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

/// Seconds as a `Duration`, clamped to `[0, LONGEST_WAIT]`: never a panic, whatever `secs` is.
pub fn secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs.min(LONGEST_WAIT.as_secs_f64())).unwrap_or(LONGEST_WAIT)
}

/// The server's own wait: `Retry-After` as seconds or an HTTP date, else `X-RateLimit-Reset`
/// (ISO 8601, minute precision in Atlassian's docs).
pub fn server_hint(
    retry_after: Option<&str>,
    reset: Option<&str>,
    now: jiff::Timestamp,
) -> Option<Duration> {
    if let Some(v) = retry_after.map(str::trim).filter(|v| !v.is_empty()) {
        if let Ok(n) = v.parse::<u64>() {
            return Some(Duration::from_secs(n).min(LONGEST_WAIT));
        }
        // `1e20`, `1.5`, twenty digits: a number still, clamped rather than a panic.
        if let Ok(n) = v.parse::<f64>()
            && n.is_finite()
            && n >= 0.0
        {
            return Some(secs(n));
        }
        if let Ok(at) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(v) {
            return Some(until(now, at));
        }
    }
    let v = reset.map(str::trim).filter(|v| !v.is_empty())?;
    let at = v.parse::<jiff::Timestamp>().ok().or_else(|| {
        // `2026-01-22T10:30Z` has no seconds, which strict RFC 3339 parsers refuse.
        let with_secs = v.strip_suffix('Z').map(|s| format!("{s}:00Z"))?;
        with_secs.parse::<jiff::Timestamp>().ok()
    })?;
    Some(until(now, at))
}

fn until(now: jiff::Timestamp, at: jiff::Timestamp) -> Duration {
    let d = at.as_duration().saturating_sub(now.as_duration());
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_a_server_never_panic_and_are_clamped_to_a_day() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let day = Some(LONGEST_WAIT);
        let cases = [
            ("1e20", day),
            ("99999999999999999999", day),
            ("18446744073709551615", day),
            ("1.5", Some(Duration::from_millis(1500))),
            ("-3", None),
            ("NaN", None),
            ("inf", None),
            ("30", Some(Duration::from_secs(30))),
        ];
        for (v, want) in cases {
            assert_eq!(server_hint(Some(v), None, now), want, "{v}");
        }
        assert_eq!(secs(f64::MAX), LONGEST_WAIT);
        assert_eq!(secs(1e30), LONGEST_WAIT);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
    }

    #[test]
    fn unknown_outcomes_are_told_from_refusals() {
        let st = |status| Failure::Status {
            status,
            retry_after: None,
            rate_limit_reset: None,
        };
        let cases = [
            (Failure::Timeout, true),
            (Failure::Transport, true),
            (Failure::Connect, false),
            (st(500), true),
            (st(502), true),
            (st(504), true),
            (st(429), false),
            (st(503), false),
            (st(400), false),
        ];
        for (f, want) in cases {
            assert_eq!(maybe_applied(&f), want, "{f:?}");
        }
    }

    fn now() -> jiff::Timestamp {
        "2026-01-22T10:29:30Z".parse().unwrap()
    }

    fn status(s: u16) -> Failure<'static> {
        Failure::Status {
            status: s,
            retry_after: None,
            rate_limit_reset: None,
        }
    }

    #[test]
    fn decisions() {
        let p = Policy::default();
        let ms = Duration::from_millis;
        let cases: Vec<(u32, Failure, f64, Decision)> = vec![
            (1, status(400), 0.5, Decision::GiveUp),
            (1, status(401), 0.5, Decision::GiveUp),
            (1, status(404), 0.5, Decision::GiveUp),
            (1, status(501), 0.5, Decision::GiveUp),
            (1, status(500), 0.0, Decision::Retry(ms(250))),
            (1, status(503), 1.0, Decision::Retry(ms(500))),
            (2, status(502), 0.0, Decision::Retry(ms(500))),
            (3, Failure::Timeout, 0.0, Decision::Retry(ms(1000))),
            (4, Failure::Connect, 0.5, Decision::Retry(ms(3000))),
            (7, Failure::Transport, 0.0, Decision::Retry(ms(16000))),
            (8, Failure::Transport, 0.0, Decision::GiveUp),
            // The 20th 429 in a row is still waited out: back-pressure is not an attempt.
            (
                20,
                Failure::Status {
                    status: 429,
                    retry_after: Some("2"),
                    rate_limit_reset: None,
                },
                0.0,
                Decision::Retry(ms(2000)),
            ),
            (
                1,
                Failure::Status {
                    status: 429,
                    retry_after: Some("7"),
                    rate_limit_reset: None,
                },
                0.9,
                Decision::Retry(ms(7000)),
            ),
            // A reset alone (minute precision) bounds the backoff, never stretches it.
            (
                1,
                Failure::Status {
                    status: 429,
                    retry_after: None,
                    rate_limit_reset: Some("2026-01-22T10:30Z"),
                },
                0.9,
                Decision::Retry(ms(475)),
            ),
            (
                8,
                Failure::Status {
                    status: 429,
                    retry_after: None,
                    rate_limit_reset: Some("2026-01-22T10:30Z"),
                },
                0.9,
                Decision::Retry(ms(30_000)),
            ),
            (
                1,
                Failure::Status {
                    status: 503,
                    retry_after: Some("Thu, 22 Jan 2026 10:29:40 GMT"),
                    rate_limit_reset: None,
                },
                0.9,
                Decision::Retry(ms(10_000)),
            ),
            (
                1,
                Failure::Status {
                    status: 429,
                    retry_after: Some("86400"),
                    rate_limit_reset: None,
                },
                0.0,
                Decision::Retry(ms(300_000)),
            ),
            (
                1,
                Failure::Status {
                    status: 429,
                    retry_after: Some("soon"),
                    rate_limit_reset: None,
                },
                0.0,
                Decision::Retry(ms(250)),
            ),
            (
                2,
                Failure::Status {
                    status: 429,
                    retry_after: None,
                    rate_limit_reset: Some("2026-01-22T10:29Z"),
                },
                0.0,
                Decision::Retry(ms(500)),
            ),
        ];
        for (attempt, f, jitter, want) in cases {
            assert_eq!(
                decide(&p, attempt, &f, jitter, now(), 10),
                want,
                "{attempt} {f:?}"
            );
        }
    }

    #[test]
    fn the_budget_and_max_wait_bound_retries() {
        let p = Policy {
            max_hint: Duration::from_secs(10),
            ..Policy::default()
        };
        let ms = Duration::from_millis;
        let limited = |ra| Failure::Status {
            status: 429,
            retry_after: Some(ra),
            rate_limit_reset: None,
        };
        // (attempt, failure, budget left) -> decision
        let cases: Vec<(u32, Failure, u64, Decision)> = vec![
            (1, status(503), 0, Decision::GiveUp),
            (1, Failure::Timeout, 0, Decision::GiveUp),
            (1, status(503), 1, Decision::Retry(ms(250))),
            // 429s are paced, not failures: they do not need budget.
            (1, limited("3"), 0, Decision::Retry(ms(3000))),
            // No wait is longer than --max-wait, server hint or backoff.
            (1, limited("3600"), 5, Decision::Retry(ms(10_000))),
            (7, Failure::Transport, 5, Decision::Retry(ms(10_000))),
        ];
        for (attempt, f, left, want) in cases {
            assert_eq!(
                decide(&p, attempt, &f, 0.0, now(), left),
                want,
                "{f:?} {left}"
            );
        }
        assert!(!spends_budget(&limited("1")));
        assert!(spends_budget(&status(500)));
    }

    #[test]
    fn patience_bounds_the_waits_for_the_rate_limit() {
        let p = Policy {
            patience: Duration::from_secs(60),
            ..Policy::default()
        };
        assert!(!out_of_patience(&p, Duration::from_secs(59)));
        assert!(out_of_patience(&p, Duration::from_secs(60)));
        assert!(is_back_pressure(&status(429)));
        assert!(!is_back_pressure(&status(503)));
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let p = Policy::default();
        assert_eq!(backoff(&p, 30, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&p, u32::MAX, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(&p, 0, 0.0), Duration::from_millis(250));
    }

    #[test]
    fn hints_in_the_past_mean_no_wait() {
        let h = server_hint(None, Some("2026-01-22T10:00Z"), now());
        assert_eq!(h, Some(Duration::ZERO));
    }
}
