//! Sandbox faults and rate limiting: deterministic (seeded) injection of 5xx answers, dropped
//! connections, slow answers, stuck tasks and FAILED-with-empty-failures tasks, plus a token
//! bucket per credential that answers 429 the way Atlassian documents. `http` asks here
//! before and after each request; `tasks` gets its task fault from here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Fault probabilities (0.0 to 1.0), settable by flags or `PUT /_sandbox/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Faults {
    /// Reseeds the generator when given, so a test can replay the same sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub error500: f64,
    pub error502: f64,
    /// 503 without `Retry-After`.
    pub error503: f64,
    /// 503 with `Retry-After: 1`.
    pub error503_retry_after: f64,
    /// The connection is cut before the request is applied.
    pub drop_before: f64,
    /// The request is applied, then the connection is cut: the client sees an error although
    /// the work was done (the case idempotency keys exist for).
    pub drop_after: f64,
    /// The request is not applied; the answer is a 307 redirect to `redirectTo` (a site or a
    /// proxy that sends the client elsewhere).
    pub redirect: f64,
    /// Where a redirect points; default `http://127.0.0.1:9/elsewhere` (nothing listens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
    /// The answer is delayed by `slowMs`.
    pub slow: f64,
    pub slow_ms: u64,
    /// A slow answer is delayed after the request is applied (else before).
    pub slow_after_applying: bool,
    /// A new task never finishes (until the stale-task rule fails it).
    pub stuck_task: f64,
    /// A new task writes its data, then ends FAILED with an empty `failures` list.
    pub failed_empty: f64,
    /// A new task applies the first half of its items, then ends FAILED listing only that
    /// half's failures.
    pub failed_half: f64,
    /// A bulk request with an item whose JSON contains this text is refused as a whole (400
    /// naming the item), the way a site refuses an invalid envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_item: Option<String>,
    /// The request faults (5xx, drops, slow answers) hit bulk submissions only.
    pub bulk_only: bool,
    /// The request faults hit only requests of these methods (e.g. `["DELETE"]`, to lose the
    /// answer of every delete and nothing else); empty: every method.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Paths (templates relative to the API, as in `site::api::paths`, e.g. `servicedesk` or
    /// `organization/{organizationId}/user`) that answer 403, as for credentials without the
    /// permission to list them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forbid: Vec<String>,
    /// Answers shaped the ways the docs leave open (`quirks`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quirks: Vec<super::quirks::Quirk>,
}

impl Faults {
    pub fn validate(&self) -> Result<(), String> {
        let ps = [
            ("error500", self.error500),
            ("error502", self.error502),
            ("error503", self.error503),
            ("error503RetryAfter", self.error503_retry_after),
            ("dropBefore", self.drop_before),
            ("dropAfter", self.drop_after),
            ("slow", self.slow),
            ("stuckTask", self.stuck_task),
            ("failedEmpty", self.failed_empty),
            ("failedHalf", self.failed_half),
        ];
        for (name, p) in ps {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "{name} must be a probability between 0 and 1, got {p}"
                ));
            }
        }
        let exclusive = self.error500
            + self.error502
            + self.error503
            + self.error503_retry_after
            + self.drop_before
            + self.drop_after;
        if exclusive > 1.0 + 1e-9 {
            return Err("error500 + error502 + error503 + error503RetryAfter + dropBefore + dropAfter must not exceed 1".into());
        }
        if self.stuck_task + self.failed_empty + self.failed_half > 1.0 + 1e-9 {
            return Err("stuckTask + failedEmpty + failedHalf must not exceed 1".into());
        }
        Ok(())
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    None,
    Status { status: u16, retry_after: bool },
    DropBefore,
    DropAfter,
    Redirect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFault {
    None,
    Stuck,
    FailedEmpty,
    FailedHalf,
}

/// The seeded source of every random decision, so a run with the same seed and the same
/// request order behaves the same.
pub struct FaultState {
    pub faults: Faults,
    rng: u64,
    /// Which tasks are slow (`--task-tail`) has a generator of its own, drawn once a task: the
    /// n-th task made is slow or not by the seed alone, however many polls and other requests
    /// came between (a benchmark compares builds on the same tasks).
    tail_rng: u64,
}

/// Seeds a xorshift state (never zero).
fn seeded(seed: u64, salt: u64) -> u64 {
    seed ^ salt | 1
}

const SALT: u64 = 0x9e37_79b9_7f4a_7c15;
const TAIL_SALT: u64 = 0xd1b5_4a32_d192_ed03;

impl FaultState {
    pub fn new(faults: Faults, seed: u64) -> FaultState {
        FaultState {
            faults,
            rng: seeded(seed, SALT),
            tail_rng: seeded(seed, TAIL_SALT),
        }
    }

    pub fn set(&mut self, faults: Faults) {
        if let Some(seed) = faults.seed {
            self.rng = seeded(seed, SALT);
            self.tail_rng = seeded(seed, TAIL_SALT);
        }
        self.faults = faults;
    }

    /// A uniform draw in [0, 1).
    pub fn draw(&mut self) -> f64 {
        uniform(&mut self.rng)
    }

    /// The draw that says whether the task being made is one of the slow ones.
    pub fn draw_tail(&mut self) -> f64 {
        uniform(&mut self.tail_rng)
    }

    pub fn request(&mut self) -> (RequestFault, Option<Duration>) {
        let f = self.faults.clone();
        let slow = (f.slow > 0.0 && self.draw() < f.slow).then(|| Duration::from_millis(f.slow_ms));
        let u = self.draw();
        let table = [
            (
                f.error500,
                RequestFault::Status {
                    status: 500,
                    retry_after: false,
                },
            ),
            (
                f.error502,
                RequestFault::Status {
                    status: 502,
                    retry_after: false,
                },
            ),
            (
                f.error503,
                RequestFault::Status {
                    status: 503,
                    retry_after: false,
                },
            ),
            (
                f.error503_retry_after,
                RequestFault::Status {
                    status: 503,
                    retry_after: true,
                },
            ),
            (f.drop_before, RequestFault::DropBefore),
            (f.drop_after, RequestFault::DropAfter),
            (f.redirect, RequestFault::Redirect),
        ];
        (pick(u, &table).unwrap_or(RequestFault::None), slow)
    }

    pub fn task(&mut self) -> TaskFault {
        let f = self.faults.clone();
        let u = self.draw();
        pick(
            u,
            &[
                (f.stuck_task, TaskFault::Stuck),
                (f.failed_empty, TaskFault::FailedEmpty),
                (f.failed_half, TaskFault::FailedHalf),
            ],
        )
        .unwrap_or(TaskFault::None)
    }
}

/// A uniform draw in [0, 1) from the state `x` (xorshift64*).
fn uniform(x: &mut u64) -> f64 {
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

fn pick<T: Copy>(u: f64, table: &[(f64, T)]) -> Option<T> {
    let mut acc = 0.0;
    for (p, v) in table {
        acc += p;
        if u < acc {
            return Some(*v);
        }
    }
    None
}

/// Token bucket per credential: `rate` requests per second, `burst` at once.
pub struct RateLimit {
    pub rate: f64,
    pub burst: f64,
    pub omit_retry_after: bool,
    buckets: HashMap<String, (f64, Instant)>,
}

/// A 429 decision with what the headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
    pub limit: u64,
}

impl RateLimit {
    pub fn new(rate: f64, burst: u32, omit_retry_after: bool) -> RateLimit {
        RateLimit {
            rate,
            burst: f64::from(burst.max(1)),
            omit_retry_after,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `credential`; returns the tokens left, or how long until one is back.
    pub fn take(&mut self, credential: &str, now: Instant) -> Result<u64, Limited> {
        let (tokens, last) = self
            .buckets
            .entry(credential.to_string())
            .or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(tokens.floor() as u64)
        } else {
            let wait = (1.0 - *tokens) / self.rate;
            Err(Limited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
                limit: self.burst as u64,
            })
        }
    }
}

/// `X-RateLimit-Reset` in Atlassian's documented form `yyyy-MM-ddTHH:mmZ`, rounded up to the
/// next minute so that a client waiting for it never comes back too early.
pub fn reset_header(retry_after_secs: u64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(retry_after_secs as i64 + 59);
    at.strftime("%Y-%m-%dT%H:%MZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_decisions() {
        let f = Faults {
            error500: 0.2,
            drop_after: 0.2,
            slow: 0.5,
            slow_ms: 10,
            ..Faults::default()
        };
        let run = |seed| {
            let mut s = FaultState::new(f.clone(), seed);
            (0..50).map(|_| s.request()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7)
            .iter()
            .filter(|(r, _)| *r != RequestFault::None)
            .count();
        assert!((8..=32).contains(&hits), "{hits}");
    }

    #[test]
    fn which_tasks_are_slow_does_not_depend_on_the_requests_between() {
        let tails = |requests_between: usize| {
            let mut s = FaultState::new(Faults::default(), 3);
            (0..40)
                .map(|_| {
                    for _ in 0..requests_between {
                        s.request();
                    }
                    s.draw_tail()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(tails(0), tails(5));
        let mut other = FaultState::new(Faults::default(), 4);
        assert_ne!(tails(0)[0], other.draw_tail());
    }

    #[test]
    fn probabilities_are_validated() {
        assert!(
            Faults {
                error500: 1.5,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Faults {
                error500: 0.6,
                drop_before: 0.6,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Faults {
                error500: 1.0,
                ..Faults::default()
            }
            .validate()
            .is_ok()
        );
        let mut s = FaultState::new(
            Faults {
                error503_retry_after: 1.0,
                ..Faults::default()
            },
            1,
        );
        assert_eq!(
            s.request().0,
            RequestFault::Status {
                status: 503,
                retry_after: true
            }
        );
        let mut s = FaultState::new(
            Faults {
                failed_empty: 1.0,
                ..Faults::default()
            },
            1,
        );
        assert_eq!(s.task(), TaskFault::FailedEmpty);
    }

    #[test]
    fn token_bucket() {
        let mut r = RateLimit::new(2.0, 3, false);
        let t0 = Instant::now();
        assert_eq!(r.take("a", t0), Ok(2));
        assert_eq!(r.take("a", t0), Ok(1));
        assert_eq!(r.take("a", t0), Ok(0));
        assert_eq!(
            r.take("a", t0),
            Err(Limited {
                retry_after_secs: 1,
                limit: 3
            })
        );
        assert_eq!(r.take("b", t0), Ok(2), "buckets are per credential");
        assert_eq!(r.take("a", t0 + Duration::from_millis(500)), Ok(0));
    }
}
