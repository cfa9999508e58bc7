//! Client-side pacing: a governor (GCRA) limiter that every attempt waits on, retries included
//! (DESIGN invariant 6), slowed down when the server answers 429 and brought back toward
//! `--rate` while answers are good (`adapt`, a pure function). Used only by `client::Client`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
    period: Duration,
    /// How many times slower than `--rate` requests go now, in thousandths (1000 = full rate).
    slowdown: AtomicU32,
}

/// What an answer says about the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// 429: too fast.
    Throttled,
    /// Any answer that is not a 429.
    Answered,
}

/// Slowest pace: 1/64 of `--rate`.
pub const MAX_SLOWDOWN: u32 = 64_000;

/// The next slowdown (thousandths): a 429 halves the rate, each good answer wins back 2% of
/// the way, so a burst of 429s backs off fast and a long good stretch returns to `--rate`.
pub fn adapt(slowdown: u32, signal: Signal) -> u32 {
    match signal {
        Signal::Throttled => (slowdown.max(1000) * 2).min(MAX_SLOWDOWN),
        Signal::Answered if slowdown <= 1000 => 1000,
        Signal::Answered => (slowdown - (slowdown - 1000) / 50 - 1).max(1000),
    }
}

impl Pacer {
    /// `rate` in requests per second; fractions allowed (0.5 = one request every 2 s). Bursts are
    /// not allowed: the API's burst budget is better left for retries of other clients.
    pub fn new(rate: f64) -> Pacer {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            10.0
        };
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_micros(1));
        let quota = Quota::with_period(period)
            .expect("period is positive")
            .allow_burst(NonZeroU32::MIN);
        Pacer {
            limiter: RateLimiter::direct(quota),
            period,
            slowdown: AtomicU32::new(1000),
        }
    }

    pub async fn wait(&self) {
        self.limiter.until_ready().await;
        let s = self.slowdown.load(Ordering::Relaxed);
        if s > 1000 {
            // The limiter keeps `--rate`; the extra wait makes it `--rate / slowdown`.
            tokio::time::sleep(self.period.mul_f64(f64::from(s - 1000) / 1000.0)).await;
        }
    }

    /// Feeds an answer to the pace; returns the new rate (requests per second) when it changed
    /// by a step worth reporting.
    pub fn observe(&self, signal: Signal) -> Option<f64> {
        let before = self.slowdown.load(Ordering::Relaxed);
        let after = adapt(before, signal);
        if after == before {
            return None;
        }
        self.slowdown.store(after, Ordering::Relaxed);
        let rate = |s: u32| 1000.0 / f64::from(s) / self.period.as_secs_f64();
        let reported = signal == Signal::Throttled || (after == 1000 && before > 1000);
        reported.then(|| rate(after))
    }

    /// Requests per second now.
    pub fn current_rate(&self) -> f64 {
        1000.0 / f64::from(self.slowdown.load(Ordering::Relaxed)) / self.period.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_halves_the_rate_and_good_answers_bring_it_back() {
        use Signal::*;
        let cases = [
            (1000, Throttled, 2000),
            (2000, Throttled, 4000),
            (MAX_SLOWDOWN, Throttled, MAX_SLOWDOWN),
            (1000, Answered, 1000),
            (2000, Answered, 1979),
            (1001, Answered, 1000),
        ];
        for (from, s, to) in cases {
            assert_eq!(adapt(from, s), to, "{from} {s:?}");
        }
        // A long good stretch returns to full rate.
        let mut s = MAX_SLOWDOWN;
        for _ in 0..1000 {
            s = adapt(s, Answered);
        }
        assert_eq!(s, 1000);
    }

    #[test]
    fn the_pacer_reports_cuts_and_the_return_to_full_rate() {
        let p = Pacer::new(10.0);
        assert_eq!(p.observe(Signal::Answered), None);
        let cut = p.observe(Signal::Throttled).unwrap();
        assert!((cut - 5.0).abs() < 1e-9, "{cut}");
        let mut back = None;
        for _ in 0..1000 {
            if let Some(r) = p.observe(Signal::Answered) {
                back = Some(r);
            }
        }
        assert!((back.unwrap() - 10.0).abs() < 1e-9);
        assert!((p.current_rate() - 10.0).abs() < 1e-9);
    }
}
