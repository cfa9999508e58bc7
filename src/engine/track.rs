//! Track stage: polls a bulk task until it is terminal (FINISHED or FAILED) or a deadline
//! passes. The schedule and where its first poll goes (`PollPlanner`, learned from the run's
//! finished tasks) are pure; the loop takes the fetch as a closure so tests run it under
//! paused tokio time. Used by `send`; talks to the API only through that closure.

use std::future::Future;
use std::time::Duration;

use crate::site::api::model::TaskStatusResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub initial: Duration,
    /// Where the second poll goes when the first saw the task unfinished (after `initial`,
    /// at most twice it), the schedule then doubling from it; `None`: from `initial`.
    pub second: Option<Duration>,
    pub cap: Duration,
    /// Give up waiting after this long; the task's outcome is then unknown.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(250),
            second: None,
            cap: Duration::from_secs(30),
            // Non-terminal tasks older than 30 minutes are timed out by the server (CONTRACT §7.3).
            timeout: Duration::from_secs(35 * 60),
        }
    }
}

/// Delay before poll number `n` (0-based): `initial`, then as long as the task has run so far
/// (polls at `initial`, 2×, 4×, … after submission), each wait capped. A task of length `L`
/// is polled at most 1 + ⌈log2(L ÷ initial)⌉ times (before the cap). With a `second` poll
/// (`initial` < second ≤ 2 × `initial`), polls at `initial`, second, 2 × second, …: a task
/// just longer than the first poll is seen at the second instead of at twice the first, at the
/// cost of one poll more for a task longer than the second.
pub fn poll_delay(p: &PollPolicy, n: u32) -> Duration {
    let (base, steps) = match p.second {
        Some(b) if b > p.initial && n >= 1 => {
            if n == 1 {
                return (b - p.initial).min(p.cap);
            }
            (b, n - 2)
        }
        _ => (p.initial, n.saturating_sub(1)),
    };
    base.checked_mul(1u32 << steps.min(20))
        .unwrap_or(p.cap)
        .min(p.cap)
}

/// Where the first poll of the next task goes, learned from the run's finished tasks of its
/// kind (a run imports one kind). Each task brackets its own length: longer than the last poll
/// that saw it unfinished (`lo`, zero if none), no longer than the poll that saw it end (`hi`).
/// A first poll that comes too soon costs a whole doubled wait, one that comes late only the
/// difference: so the first poll goes to the shortest recent `hi` (a length tasks are known to
/// end within), but never below the longest `lo` seen plus a margin (a length tasks are known
/// to reach). Before any task was seen unfinished, it comes down from the prior. After a long
/// run of tasks all seen at their first poll, one task tries a first poll lower (tasks may have
/// got faster): seen ended, the lower poll stays; seen unfinished, nothing changes.
#[derive(Debug, Clone)]
pub struct PollPlanner {
    prior: Duration,
    /// The longest `lo` that counts.
    lo: Duration,
    /// Tasks in a row seen at their first poll, and whether a try lower is due or out.
    hits: u32,
    try_due: bool,
    try_out: bool,
    /// The recent `hi`s, and whether each of the last few tasks was seen unfinished.
    recent: std::collections::VecDeque<Duration>,
    missed: std::collections::VecDeque<bool>,
}

/// A first poll as planned: its delay, and whether it is the try lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPoll {
    pub delay: Duration,
    /// The second poll, if the first sees the task unfinished: the longest recent length
    /// (or, for the try lower, the first poll as it would have been).
    pub second: Option<Duration>,
    pub trying: bool,
}

/// `hi`s remembered, so an old slow task stops holding the first poll up.
const PLANNED_FROM: usize = 32;
/// The first poll never comes sooner than this.
pub const FIRST_POLL_FLOOR: Duration = Duration::from_millis(25);
/// The margin above the longest `lo`, and how fast the first poll comes down before any task
/// was seen unfinished.
const ABOVE_LO: f64 = 1.03;
const ABOVE_LO_MIN: Duration = Duration::from_millis(5);
/// Tasks seen unfinished among the last `MISSES_OVER` widen that margin this much each: the
/// lengths spread more than the longest `lo` shows.
const MISSES_OVER: usize = 8;
const ABOVE_LO_PER_MISS: f64 = 0.06;
const DOWN_FROM_PRIOR: f64 = 0.7;
/// After this many tasks in a row seen at their first poll, try a first poll this much lower.
const TRY_LOWER_AFTER: u32 = 32;
const TRY_LOWER: f64 = 0.9;

impl PollPlanner {
    /// `prior`: the first poll before any task has ended.
    pub fn new(prior: Duration) -> PollPlanner {
        PollPlanner {
            prior,
            lo: Duration::ZERO,
            hits: 0,
            try_due: false,
            try_out: false,
            recent: std::collections::VecDeque::new(),
            missed: std::collections::VecDeque::new(),
        }
    }

    /// A task ended: last seen unfinished at `lo` (zero if never), seen ended at `hi`; `first`
    /// is how its first poll was planned.
    pub fn record(&mut self, first: FirstPoll, lo: Duration, hi: Duration) {
        if self.recent.len() == PLANNED_FROM {
            self.recent.pop_front();
        }
        self.recent.push_back(hi.max(lo));
        if self.missed.len() == MISSES_OVER {
            self.missed.pop_front();
        }
        self.missed.push_back(!lo.is_zero() && !first.trying);
        if first.trying {
            self.try_out = false;
            if lo.is_zero() {
                // Tasks got faster: what was known of their length no longer holds.
                self.lo = self.lo.mul_f64(TRY_LOWER);
            }
            return;
        }
        if lo.is_zero() {
            self.hits += 1;
            if self.hits >= TRY_LOWER_AFTER && !self.lo.is_zero() {
                self.try_due = true;
                self.hits = 0;
            }
        } else {
            self.lo = self.lo.max(lo);
            self.hits = 0;
        }
    }

    /// The first poll for the next task, its delay within `[FIRST_POLL_FLOOR, cap]`.
    pub fn first(&mut self, cap: Duration) -> FirstPoll {
        let cap = cap.max(FIRST_POLL_FLOOR);
        let Some(hi) = self.recent.iter().min().copied() else {
            return FirstPoll {
                delay: self.prior.clamp(FIRST_POLL_FLOOR, cap),
                second: None,
                trying: false,
            };
        };
        let lo = self.lo;
        let mut at = if lo.is_zero() {
            hi.mul_f64(DOWN_FROM_PRIOR)
        } else {
            let misses = self.missed.iter().filter(|&&m| m).count() as f64;
            let margin = ABOVE_LO + ABOVE_LO_PER_MISS * misses;
            hi.max(lo.mul_f64(margin)).max(lo + ABOVE_LO_MIN)
        };
        let longest = self.recent.iter().max().copied().unwrap_or(hi);
        let mut second = longest;
        let trying = self.try_due && !self.try_out;
        if trying {
            self.try_due = false;
            self.try_out = true;
            second = at;
            at = at.mul_f64(TRY_LOWER);
        }
        let delay = at.clamp(FIRST_POLL_FLOOR, cap);
        let second = second.min(delay * 2).min(cap);
        FirstPoll {
            delay,
            second: (second > delay).then_some(second),
            trying,
        }
    }
}

/// A task seen to its end: its terminal status, and when (since submission) it was last seen
/// unfinished and seen ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub status: TaskStatusResponse,
    pub pending_at: Duration,
    pub ended_at: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TrackError<E> {
    /// The task was not terminal by the deadline; `last` is the last status seen.
    TimedOut {
        last: Option<TaskStatusResponse>,
    },
    Fetch(E),
}

/// Polls until the task is terminal. Fetch errors end the wait (the client already retried
/// transient ones); the deadline is checked before each sleep, so the last poll is never skipped.
pub async fn until_terminal<E, F, Fut>(
    p: &PollPolicy,
    mut fetch: F,
) -> Result<Tracked, TrackError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<TaskStatusResponse, E>>,
{
    let start = tokio::time::Instant::now();
    let mut last = None;
    let mut pending_at = Duration::ZERO;
    for n in 0.. {
        let elapsed = start.elapsed();
        if elapsed >= p.timeout {
            return Err(TrackError::TimedOut { last });
        }
        // Stretch or cut the last wait so the final poll lands on the deadline.
        let wait = poll_delay(p, n).min(p.timeout - elapsed);
        tokio::time::sleep(wait).await;
        // The task's state as of when the poll was sent.
        let asked = start.elapsed();
        let status = fetch().await.map_err(TrackError::Fetch)?;
        if status.status.is_terminal() {
            return Ok(Tracked {
                status,
                pending_at,
                ended_at: asked,
            });
        }
        pending_at = asked;
        last = Some(status);
    }
    unreachable!("the poll loop only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::api::model::TaskStatus;
    use std::sync::{Arc, Mutex};

    fn status(s: TaskStatus) -> TaskStatusResponse {
        TaskStatusResponse {
            id: "t".into(),
            task_type: String::new(),
            status: s,
            failures: vec![],
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn schedule_doubles_and_caps() {
        let p = PollPolicy {
            initial: Duration::from_millis(250),
            second: None,
            cap: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
        };
        let got: Vec<u64> = (0..7)
            .map(|n| poll_delay(&p, n).as_millis() as u64)
            .collect();
        // Polls at 250, 500, 1000, 2000, 4000 ms: each waits as long as the task has run.
        assert_eq!(got, vec![250, 250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(poll_delay(&p, u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn a_second_poll_goes_where_planned_then_doubles() {
        let p = PollPolicy {
            initial: Duration::from_millis(450),
            second: Some(Duration::from_millis(500)),
            cap: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
        };
        let got: Vec<u64> = (0..4)
            .map(|n| poll_delay(&p, n).as_millis() as u64)
            .collect();
        // Polls at 450, 500, 1000, 2000 ms.
        assert_eq!(got, vec![450, 50, 500, 1000]);
        // A second no later than the first is ignored.
        let p = PollPolicy {
            second: Some(Duration::from_millis(400)),
            ..p
        };
        assert_eq!(poll_delay(&p, 1), Duration::from_millis(450));
    }

    /// Polls a task of length `l` gets with first poll `f` (the schedule, uncapped).
    fn polls_for(l: Duration, f: Duration) -> u32 {
        let p = PollPolicy {
            initial: f,
            second: None,
            cap: Duration::from_secs(3600),
            timeout: Duration::from_secs(3600),
        };
        let mut at = Duration::ZERO;
        for n in 0.. {
            at += poll_delay(&p, n);
            if at >= l {
                return n + 1;
            }
        }
        unreachable!()
    }

    #[test]
    fn polls_per_task_stay_within_one_plus_log2_of_length_over_first_poll() {
        let ms = Duration::from_millis;
        for (l, f) in [
            (500, 500),
            (500, 510),
            (501, 500),
            (750, 500),
            (8000, 250),
            (60_000, 1000),
        ] {
            let n = polls_for(ms(l), ms(f));
            let bound = 1.0 + (l as f64 / f as f64).log2().max(0.0).ceil();
            assert!(
                f64::from(n) <= bound,
                "L {l} f {f}: {n} polls, bound {bound}"
            );
        }
    }

    /// Runs `n` tasks of the lengths `len(i)` through a planner, `slots` at a time (each
    /// batch of `slots` planned before any of them ends, as the engine does); returns when
    /// each was seen ended.
    fn simulate(
        p: &mut PollPlanner,
        n: usize,
        slots: usize,
        len: impl Fn(usize) -> Duration,
    ) -> Vec<Duration> {
        let cap = Duration::from_secs(30);
        let mut seen = Vec::new();
        for batch in (0..n).collect::<Vec<_>>().chunks(slots) {
            let planned: Vec<FirstPoll> = batch.iter().map(|_| p.first(cap)).collect();
            for (&i, first) in batch.iter().zip(planned) {
                let pol = PollPolicy {
                    initial: first.delay,
                    second: first.second,
                    cap,
                    timeout: cap,
                };
                let (mut at, mut lo, mut k) = (Duration::ZERO, Duration::ZERO, 0);
                loop {
                    at += poll_delay(&pol, k);
                    k += 1;
                    if at >= len(i) {
                        break;
                    }
                    lo = at;
                }
                p.record(first, lo, at);
                seen.push(at);
            }
        }
        seen
    }

    #[test]
    fn the_first_poll_learns_the_length_of_the_run_s_tasks() {
        let ms = Duration::from_millis;
        let cap = Duration::from_secs(30);
        // Before any task: the prior.
        let mut p = PollPlanner::new(ms(250));
        assert_eq!(p.first(cap).delay, ms(250));
        // 200 tasks of exactly 500 ms, 5 at a time: after the first round (seen at the second
        // poll) every task is seen at its first, bar the rare try lower.
        let mut p = PollPlanner::new(ms(250));
        let seen = simulate(&mut p, 200, 5, |_| ms(500));
        assert!(seen[..5].iter().all(|&t| t == ms(500)), "{:?}", &seen[..5]);
        let late = seen[5..].iter().filter(|&&t| t > ms(520)).count();
        assert!(late <= 200 / TRY_LOWER_AFTER as usize, "{late} late");
        let busy: Duration = seen.iter().sum();
        let use_ = ms(500).as_secs_f64() * 200.0 / busy.as_secs_f64();
        assert!(use_ >= 0.95, "slot use {use_:.3}");
        // Lengths spread from 500 to 750 ms: first polls climb to just above the longest
        // (doubling, the best a first poll can then do is the longest length: 0.83 here).
        let mut p = PollPlanner::new(ms(250));
        let len = |i: usize| ms(500 + (i as u64 * 37) % 250);
        let seen = simulate(&mut p, 200, 5, len);
        let ran: Duration = (0..200).map(len).sum();
        let use_ = ran.as_secs_f64() / seen.iter().sum::<Duration>().as_secs_f64();
        assert!(use_ >= 0.75, "slot use {use_:.3}");
        // Tasks that get faster: the try lower finds it.
        let mut p = PollPlanner::new(ms(250));
        simulate(&mut p, 50, 5, |_| ms(1000));
        let seen = simulate(&mut p, 300, 5, |_| ms(400));
        assert!(*seen.last().unwrap() < ms(700), "{:?}", seen.last());
        // Short tasks: the first poll comes down to its floor; and never past the cap.
        let mut p = PollPlanner::new(ms(250));
        simulate(&mut p, 20, 1, |_| Duration::ZERO);
        assert_eq!(p.first(cap).delay, FIRST_POLL_FLOOR);
        let mut p = PollPlanner::new(ms(250));
        p.record(
            FirstPoll {
                delay: ms(250),
                second: None,
                trying: false,
            },
            Duration::from_secs(90),
            Duration::from_secs(120),
        );
        assert_eq!(p.first(cap).delay, cap);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_on_schedule_until_terminal() {
        let p = PollPolicy {
            initial: Duration::from_millis(100),
            second: None,
            cap: Duration::from_millis(400),
            timeout: Duration::from_secs(60),
        };
        let seq = Arc::new(Mutex::new(vec![
            TaskStatus::NotStarted,
            TaskStatus::InProgress,
            TaskStatus::InProgress,
            TaskStatus::InProgress,
            TaskStatus::Finished,
        ]));
        let times = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let r = until_terminal::<(), _, _>(&p, || {
            let seq = seq.clone();
            let times = times.clone();
            async move {
                times
                    .lock()
                    .unwrap()
                    .push(start.elapsed().as_millis() as u64);
                Ok(status(seq.lock().unwrap().remove(0)))
            }
        })
        .await
        .unwrap();
        assert_eq!(r.status.status, TaskStatus::Finished);
        assert_eq!(*times.lock().unwrap(), vec![100, 200, 400, 800, 1200]);
        assert_eq!(
            (r.pending_at, r.ended_at),
            (Duration::from_millis(800), Duration::from_millis(1200))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_last_status() {
        let p = PollPolicy {
            initial: Duration::from_secs(1),
            second: None,
            cap: Duration::from_secs(4),
            timeout: Duration::from_secs(10),
        };
        let polls = Arc::new(Mutex::new(0u32));
        let start = tokio::time::Instant::now();
        let r = until_terminal::<(), _, _>(&p, || {
            let polls = polls.clone();
            async move {
                *polls.lock().unwrap() += 1;
                Ok(status(TaskStatus::InProgress))
            }
        })
        .await;
        match r {
            Err(TrackError::TimedOut { last: Some(l) }) => {
                assert_eq!(l.status, TaskStatus::InProgress)
            }
            other => panic!("{other:?}"),
        }
        // Polls at 1, 2, 4, 8 and 10 (the last wait is cut to land on the deadline).
        assert_eq!(*polls.lock().unwrap(), 5);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
