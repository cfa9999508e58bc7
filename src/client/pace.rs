//! Client-side pacing: a governor (GCRA) limiter that every attempt waits on, retries included
//! (DESIGN invariant 6). Used only by `client::Client`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

pub struct Pacer {
    limiter: DefaultDirectRateLimiter,
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
        }
    }

    pub async fn wait(&self) {
        self.limiter.until_ready().await;
    }
}
