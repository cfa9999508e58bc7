//! Track stage: polls a bulk task until it is terminal (FINISHED or FAILED) or a deadline
//! passes. Where each poll goes is planned by `PollPlanner` from the lengths of the run's
//! finished tasks (`Durations`, learned as the run goes), and both are pure; the loop takes
//! the fetch and the plan as closures so tests run it under paused tokio time. Used by `send`;
//! talks to the API only through that closure.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use crate::site::api::model::TaskStatusResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first poll of the run's first task (nothing is known of its tasks yet).
    pub initial: Duration,
    /// The longest wait between two polls of a task.
    pub cap: Duration,
    /// The shortest: two polls of a task are never closer (set from `--rate`, so polling a
    /// task keeps within the request budget).
    pub min_step: Duration,
    /// Give up waiting after this long; the task's outcome is then unknown.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            min_step: MIN_STEP,
            // Non-terminal tasks older than 30 minutes are timed out by the server (CONTRACT §7.3).
            timeout: Duration::from_secs(35 * 60),
        }
    }
}

impl PollPolicy {
    /// The policy under a request budget of `rate` a second: a task is polled again no sooner
    /// than one request's share of it.
    pub fn at_rate(rate: f64, timeout: Duration) -> PollPolicy {
        let share = if rate.is_finite() && rate > 0.0 {
            Duration::from_secs_f64((1.0 / rate).min(60.0))
        } else {
            MIN_STEP
        };
        PollPolicy {
            min_step: share.max(MIN_STEP),
            timeout,
            ..PollPolicy::default()
        }
    }
}

/// Two polls of one task are never closer than this.
pub const MIN_STEP: Duration = Duration::from_millis(10);

/// The lengths of the run's recent tasks, as a distribution learned from what polling saw of
/// each: a task ran longer than the last poll that saw it unfinished (`lo`, zero if none) and
/// no longer than the poll that saw it end (`hi`). A task seen ended at its first poll says
/// only that it was short enough; its length within is inferred from the tasks whose polls
/// bracketed theirs more closely (the self-consistent estimate of interval-censored data:
/// each bracket's weight shared among the lengths inside it as the whole estimate has them).
/// The weight the estimate puts on a length is spread evenly back to where tasks of that
/// length are known to have been still running, so the distribution has no steps where polls
/// happened to land, and polls planned from it move between those points.
#[derive(Debug, Clone, Default)]
pub struct Durations {
    seen: VecDeque<(Duration, Duration)>,
    /// The distribution function as points (seconds, share ended), rising; straight between.
    knots: Vec<(f64, f64)>,
    /// Where a group of lengths ends and a stretch with none follows (seconds), ascending.
    ends: Vec<f64>,
}

/// Tasks remembered, so the estimate follows tasks that get slower or faster.
const LEARN_FROM: usize = 128;
/// Rounds of the estimate per task seen (each round shares every bracket out again).
const ROUNDS: usize = 25;
/// A weight below this is none: one task of the `LEARN_FROM` weighs at least about 1/128.
const NEGLIGIBLE: f64 = 1e-3;
/// A stretch with no lengths in it, this share of the time before it or longer, parts two
/// groups of lengths (fast tasks and slow ones).
const GAP: f64 = 0.25;

impl Durations {
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// A task ran longer than `lo` and no longer than `hi`.
    pub fn record(&mut self, lo: Duration, hi: Duration) {
        if self.seen.len() == LEARN_FROM {
            self.seen.pop_front();
        }
        self.seen.push_back((lo, hi.max(lo)));
        self.fit();
    }

    fn fit(&mut self) {
        let mut at: Vec<Duration> = self.seen.iter().map(|&(_, hi)| hi).collect();
        at.sort();
        at.dedup();
        // Which lengths lie within each bracket (a range of `at`: it is sorted).
        let spans: Vec<(usize, usize)> = self
            .seen
            .iter()
            .map(|&(lo, hi)| {
                (
                    at.partition_point(|&x| x <= lo),
                    at.partition_point(|&x| x <= hi),
                )
            })
            .collect();
        let n = spans.len() as f64;
        let mut weight = vec![1.0 / at.len() as f64; at.len()];
        let mut next = vec![0.0; at.len()];
        for _ in 0..ROUNDS {
            next.iter_mut().for_each(|w| *w = 0.0);
            for &(a, b) in &spans {
                let total: f64 = weight[a..b].iter().sum();
                if total > 0.0 {
                    for j in a..b {
                        next[j] += weight[j] / total;
                    }
                }
            }
            for (w, x) in weight.iter_mut().zip(&next) {
                *w = x / n;
            }
        }
        // What the rounds have all but emptied is empty (they approach it only slowly).
        let total: f64 = weight.iter().filter(|&&w| w >= NEGLIGIBLE).sum();
        // Where tasks ending at each length were last seen running.
        let mut ran_past = vec![Duration::ZERO; at.len()];
        for &(lo, hi) in &self.seen {
            let j = at.partition_point(|&x| x < hi);
            ran_past[j] = ran_past[j].max(lo);
        }
        self.knots.clear();
        self.ends.clear();
        let mut share = 0.0;
        for (j, (&x, &w)) in at.iter().zip(&weight).enumerate() {
            if w < NEGLIGIBLE {
                continue;
            }
            let from = match self.knots.last() {
                Some(&(prev, _)) => ran_past[j].as_secs_f64().max(prev),
                // The shortest: back to the longest any task is known to have run short of it.
                None => self.reached_below(x).as_secs_f64(),
            };
            if let Some(&(prev, _)) = self.knots.last()
                && from > prev * (1.0 + GAP)
            {
                self.ends.push(prev);
            }
            if self.knots.last().is_none_or(|&(prev, _)| from > prev) {
                self.knots.push((from, share));
            }
            share += w / total;
            self.knots.push((x.as_secs_f64(), share.min(1.0)));
        }
        if let Some(&(last, _)) = self.knots.last() {
            self.ends.push(last);
        }
    }

    /// The end of the last group of lengths that ended by `lo`.
    pub fn group_end_before(&self, lo: Duration) -> Option<Duration> {
        let lo = lo.as_secs_f64();
        self.ends
            .iter()
            .rev()
            .find(|&&e| e <= lo)
            .map(|&e| Duration::from_secs_f64(e))
    }

    /// The end of the first group of lengths that ends after `lo`.
    pub fn group_end_after(&self, lo: Duration) -> Option<Duration> {
        let lo = lo.as_secs_f64();
        self.ends
            .iter()
            .find(|&&e| e > lo)
            .map(|&e| Duration::from_secs_f64(e))
    }

    /// The share of tasks ended by `t`.
    fn ended_by(&self, t: f64) -> f64 {
        let Some(&(first, _)) = self.knots.first() else {
            return 0.0;
        };
        if t <= first {
            return 0.0;
        }
        for w in self.knots.windows(2) {
            let ((a, fa), (b, fb)) = (w[0], w[1]);
            if t <= b {
                return if b > a {
                    fa + (fb - fa) * (t - a) / (b - a)
                } else {
                    fb
                };
            }
        }
        1.0
    }

    /// The length by which a share `q` of the tasks still running at `lo` have ended; none
    /// when no task seen ran longer than `lo`.
    pub fn quantile_after(&self, lo: Duration, q: f64) -> Option<Duration> {
        let done = self.ended_by(lo.as_secs_f64());
        if done >= 1.0 - 1e-9 {
            return None;
        }
        let want = done + q * (1.0 - done);
        for w in self.knots.windows(2) {
            let ((a, fa), (b, fb)) = (w[0], w[1]);
            if want <= fb + 1e-12 {
                let t = if fb > fa {
                    a + (b - a) * (want - fa) / (fb - fa)
                } else {
                    b
                };
                return Some(Duration::from_secs_f64(t).max(lo));
            }
        }
        self.knots.last().map(|&(t, _)| Duration::from_secs_f64(t))
    }

    /// The longest length a task is known to have run past, short of `t`.
    fn reached_below(&self, t: Duration) -> Duration {
        self.seen
            .iter()
            .map(|&(lo, _)| lo)
            .filter(|&lo| !lo.is_zero() && lo < t)
            .max()
            .unwrap_or(t)
    }
}

/// Where each poll of a task goes, from the run's `Durations`. The first poll goes where a
/// share `AIM_FIRST` of tasks have ended; each later one where a share `AIM_NEXT` of those
/// still running at the last poll have, so polls follow the tasks' spread (close together
/// where many end, apart where few do). Two limits keep the polls of a task few: a later poll
/// is never sooner than `STEP_OF_TIME` of the time the task has run, and a poll never leaps
/// from one group of lengths to a group far beyond (fast tasks and a few slow ones): it goes
/// to the end of the nearer group, once a step past it, and only then on. Past every length
/// seen, polls space out by `BEYOND` of the time so far (doubling before any task has ended).
/// One task in `PROBE_EVERY` has its first poll sooner, halfway down to the longest length a
/// task is known to have run past: a task seen ended there shows tasks can be that short (they
/// got faster, or the first poll had drifted late), which is how the estimate learns what
/// lies below its first poll.
#[derive(Debug, Clone)]
pub struct PollPlanner {
    prior: Duration,
    durations: Durations,
    planned: u64,
}

const AIM_FIRST: f64 = 0.6;
const AIM_NEXT: f64 = 0.4;
const BEYOND: f64 = 0.25;
const PROBE_EVERY: u64 = 16;
/// A later poll never comes sooner than this share of the time the task has run.
const STEP_OF_TIME: f64 = 0.06;
/// The first poll never comes sooner than this.
pub const FIRST_POLL_FLOOR: Duration = Duration::from_millis(25);

impl PollPlanner {
    /// `prior`: the first poll before any task has ended.
    pub fn new(prior: Duration) -> PollPlanner {
        PollPlanner {
            prior,
            durations: Durations::default(),
            planned: 0,
        }
    }

    /// A task ended: last seen unfinished at `lo` (zero if never), seen ended at `hi`.
    pub fn record(&mut self, lo: Duration, hi: Duration) {
        self.durations.record(lo, hi);
    }

    /// The first poll for the next task (since its submission), within
    /// `[FIRST_POLL_FLOOR, cap]`.
    pub fn first(&mut self, cap: Duration) -> Duration {
        let cap = cap.max(FIRST_POLL_FLOOR);
        self.planned += 1;
        let Some(at) = self.durations.quantile_after(Duration::ZERO, AIM_FIRST) else {
            return self.prior.clamp(FIRST_POLL_FLOOR, cap);
        };
        let at = if self.planned.is_multiple_of(PROBE_EVERY) {
            let reached = self.durations.reached_below(at).min(at);
            let reached = if reached == at {
                Duration::ZERO
            } else {
                reached
            };
            ((reached + at) / 2).max(at / 2)
        } else {
            at
        };
        at.clamp(FIRST_POLL_FLOOR, cap)
    }

    /// The next poll of a task last seen unfinished at `lo` (both since its submission).
    pub fn next(&self, lo: Duration, p: &PollPolicy) -> Duration {
        let step = match self.durations.quantile_after(lo, AIM_NEXT) {
            // Never past the end of the lengths at hand to a group far beyond: a task that
            // ends with the nearer group would wait for the farther one.
            // Tasks just past a group's end are caught with one poll a step past it before the
            // jump to the next group.
            Some(at) => {
                let past = self
                    .durations
                    .group_end_before(lo)
                    .map(|end| end.mul_f64(1.0 + STEP_OF_TIME));
                let to = match (self.durations.group_end_after(lo), past) {
                    (Some(end), _) if end < at => end,
                    (_, Some(past)) if lo < past && past < at => past,
                    _ => at,
                };
                // Where lengths are spread thin, polls are too: a step is a share of the time.
                to.saturating_sub(lo).max(lo.mul_f64(STEP_OF_TIME))
            }
            None if self.durations.is_empty() => lo.max(self.prior),
            None => lo.mul_f64(BEYOND),
        };
        lo + step.clamp(p.min_step, p.cap.max(p.min_step))
    }
}

/// A task seen to its end: its terminal status, when (since submission) it was last seen
/// unfinished and seen ended, and the polls that took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub status: TaskStatusResponse,
    pub pending_at: Duration,
    pub ended_at: Duration,
    pub polls: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TrackError<E> {
    /// The task was not terminal by the deadline; `last` is the last status seen.
    TimedOut {
        last: Option<TaskStatusResponse>,
        polls: u32,
    },
    Fetch(E),
}

/// Polls until the task is terminal: first at `first`, then where `next` puts the poll after
/// one that saw it unfinished at a time (all since the start). Fetch errors end the wait (the
/// client already retried transient ones); the deadline is checked before each sleep, and the
/// last wait is cut to land on it, so the last poll is never skipped.
pub async fn until_terminal<E, F, Fut>(
    p: &PollPolicy,
    first: Duration,
    mut next: impl FnMut(Duration) -> Duration,
    mut fetch: F,
) -> Result<Tracked, TrackError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<TaskStatusResponse, E>>,
{
    let start = tokio::time::Instant::now();
    let mut last = None;
    let mut pending_at = Duration::ZERO;
    let mut at = first;
    let mut polls = 0;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= p.timeout {
            return Err(TrackError::TimedOut { last, polls });
        }
        tokio::time::sleep(at.min(p.timeout).saturating_sub(elapsed)).await;
        // The task's state as of when the poll was sent.
        let asked = start.elapsed();
        let status = fetch().await.map_err(TrackError::Fetch)?;
        polls += 1;
        if status.status.is_terminal() {
            return Ok(Tracked {
                status,
                pending_at,
                ended_at: asked,
                polls,
            });
        }
        pending_at = asked;
        last = Some(status);
        at = next(asked).max(asked + p.min_step);
    }
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Within a millisecond.
    fn near(got: Option<Duration>, want: u64) -> bool {
        got.is_some_and(|g| {
            g.as_secs_f64() * 1000.0 - want as f64 <= 1.0
                && want as f64 - g.as_secs_f64() * 1000.0 <= 1.0
        })
    }

    #[test]
    fn lengths_are_learned_from_the_brackets_polls_put_them_in() {
        let mut d = Durations::default();
        assert_eq!(d.quantile_after(Duration::ZERO, 0.5), None);
        // Three tasks seen ended at a first poll at 600 ms: nothing says they were shorter.
        for _ in 0..3 {
            d.record(Duration::ZERO, ms(600));
        }
        assert_eq!(d.quantile_after(Duration::ZERO, 0.33), Some(ms(600)));
        // One bracketed between 480 and 500 ms: the first three may as well have been that
        // long, and the lengths are spread over what is known of them.
        d.record(ms(480), ms(500));
        let q = d.quantile_after(Duration::ZERO, 0.5);
        assert!(near(q, 490), "{q:?}");
        assert_eq!(d.quantile_after(Duration::ZERO, 1.0), Some(ms(500)));
        assert_eq!(d.quantile_after(ms(500), 0.5), None);
        // Spread lengths: the quantiles among those still running follow them.
        let mut d = Durations::default();
        for l in (510..=750).step_by(10) {
            d.record(ms(l - 10), ms(l));
        }
        assert!(near(d.quantile_after(Duration::ZERO, 0.5), 625));
        assert!(near(d.quantile_after(ms(700), 0.5), 725));
        assert_eq!(d.quantile_after(ms(750), 0.5), None);
        assert_eq!(d.group_end_after(ms(600)), Some(ms(750)));
        // Only the last `LEARN_FROM` tasks count.
        for _ in 0..LEARN_FROM {
            d.record(ms(90), ms(100));
        }
        assert_eq!(d.quantile_after(Duration::ZERO, 1.0), Some(ms(100)));
    }

    #[test]
    fn a_poll_after_one_that_saw_the_task_running() {
        let p = PollPolicy {
            min_step: ms(10),
            cap: Duration::from_secs(30),
            ..PollPolicy::default()
        };
        // Before any task has ended: as long again as it has run (doubling), up to the cap.
        let planner = PollPlanner::new(ms(250));
        assert_eq!(planner.next(ms(250), &p), ms(500));
        assert_eq!(
            planner.next(Duration::from_secs(20), &p),
            Duration::from_secs(40)
        );
        // Most tasks about half a second, a few ten times that.
        let mut planner = PollPlanner::new(ms(250));
        for i in 0..20 {
            planner.record(ms(480 + i), ms(490 + i));
        }
        planner.record(ms(4980), ms(5000));
        planner.record(ms(5080), ms(5100));
        // Among those still running; never sooner than a share of the time so far.
        let next = planner.next(ms(300), &p);
        assert!(next > ms(480) && next < ms(500), "{next:?}");
        assert_eq!(planner.next(ms(495), &p), ms(495).mul_f64(1.06));
        // At the end of the fast ones: once just past it, then on to the slow ones.
        assert_eq!(planner.next(ms(509), &p), ms(509).mul_f64(1.06));
        assert!(planner.next(ms(535), &p) >= ms(4980));
        // Past every length seen: a quarter of the time so far.
        assert_eq!(planner.next(ms(5100), &p), ms(6375));
        assert_eq!(
            planner.next(Duration::from_secs(600), &p),
            Duration::from_secs(630)
        );
        // The budget's step: at --rate 2, half a second.
        let slow = PollPolicy::at_rate(2.0, p.timeout);
        assert_eq!(planner.next(ms(495), &slow), ms(995));
        assert_eq!(PollPolicy::at_rate(1000.0, p.timeout).min_step, MIN_STEP);
    }

    /// Runs `n` tasks of the lengths `len(i)` through a planner, `slots` at a time (each
    /// batch of `slots` planned before any of them ends, as the engine does); returns the
    /// share of the time from each submission to its task seen ended that the task ran, and
    /// the polls per task.
    fn simulate(
        p: &mut PollPlanner,
        n: usize,
        slots: usize,
        len: impl Fn(usize) -> Duration,
    ) -> (f64, f64) {
        let policy = PollPolicy::default();
        let (mut ran, mut waited, mut polls) = (Duration::ZERO, Duration::ZERO, 0u32);
        for batch in (0..n).collect::<Vec<_>>().chunks(slots) {
            let planned: Vec<Duration> = batch.iter().map(|_| p.first(policy.cap)).collect();
            for (&i, first) in batch.iter().zip(planned) {
                let (mut at, mut lo) = (first, Duration::ZERO);
                polls += 1;
                while at < len(i) {
                    lo = at;
                    at = p.next(lo, &policy);
                    polls += 1;
                }
                p.record(lo, at);
                ran += len(i);
                waited += at;
            }
        }
        (
            ran.as_secs_f64() / waited.as_secs_f64(),
            f64::from(polls) / n as f64,
        )
    }

    /// A uniform draw in [0, 1) for task `i`: the same every run.
    fn draw(i: usize, salt: u64) -> f64 {
        let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        (x % 10_000) as f64 / 10_000.0
    }

    #[test]
    fn polls_follow_the_spread_of_the_run_s_tasks() {
        // Exact 500 ms tasks: seen within a few percent of their end, about one poll each.
        let (use_, polls) = simulate(&mut PollPlanner::new(ms(250)), 400, 5, |_| ms(500));
        assert!(use_ >= 0.96 && polls <= 1.5, "exact: {use_:.3}, {polls:.2}");
        // 500-750 ms (the sandbox's default jitter).
        let jitter = |i| ms(500).mul_f64(1.0 + 0.5 * draw(i, 1));
        let (use_, polls) = simulate(&mut PollPlanner::new(ms(250)), 400, 5, jitter);
        assert!(
            use_ >= 0.91 && polls <= 2.0,
            "jitter: {use_:.3}, {polls:.2}"
        );
        // Most tasks fast, one in twenty ten times slower.
        let tail = |i| jitter(i).mul_f64(if draw(i, 2) < 0.05 { 10.0 } else { 1.0 });
        let (use_, polls) = simulate(&mut PollPlanner::new(ms(250)), 400, 5, tail);
        assert!(
            use_ >= 0.88 && polls <= 2.0,
            "long tail: {use_:.3}, {polls:.2}"
        );
        // Tasks that get faster: the probes find it.
        let mut p = PollPlanner::new(ms(250));
        simulate(&mut p, 100, 5, |_| ms(1000));
        simulate(&mut p, 300, 5, |_| ms(400));
        let (use_, _) = simulate(&mut p, 100, 5, |_| ms(400));
        assert!(use_ >= 0.9, "faster: {use_:.3}");
        // And slower: past every length seen, the polls follow.
        let (use_, polls) = simulate(&mut p, 100, 5, |_| ms(2000));
        assert!(use_ >= 0.9 && polls <= 3.5, "slower: {use_:.3}, {polls:.2}");
    }

    #[test]
    fn the_first_poll_stays_within_its_floor_and_cap() {
        let cap = Duration::from_secs(30);
        let mut p = PollPlanner::new(ms(250));
        assert_eq!(p.first(cap), ms(250));
        simulate(&mut p, 100, 1, |_| Duration::ZERO);
        assert_eq!(p.first(cap), FIRST_POLL_FLOOR);
        let mut p = PollPlanner::new(ms(250));
        p.record(Duration::from_secs(90), Duration::from_secs(120));
        assert_eq!(p.first(cap), cap);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_where_planned_until_terminal() {
        let p = PollPolicy {
            initial: ms(100),
            cap: ms(400),
            min_step: ms(10),
            timeout: Duration::from_secs(60),
        };
        let seq = Arc::new(Mutex::new(vec![
            TaskStatus::NotStarted,
            TaskStatus::InProgress,
            TaskStatus::InProgress,
            TaskStatus::Finished,
        ]));
        let times = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        // A plan that says "5 ms later" is held to the step.
        let r = until_terminal::<(), _, _>(
            &p,
            ms(100),
            |lo| if lo < ms(300) { lo * 2 } else { lo + ms(5) },
            || {
                let seq = seq.clone();
                let times = times.clone();
                async move {
                    times
                        .lock()
                        .unwrap()
                        .push(start.elapsed().as_millis() as u64);
                    Ok(status(seq.lock().unwrap().remove(0)))
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(r.status.status, TaskStatus::Finished);
        assert_eq!(*times.lock().unwrap(), vec![100, 200, 400, 410]);
        assert_eq!((r.pending_at, r.ended_at, r.polls), (ms(400), ms(410), 4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_ends_times_out_with_the_last_status() {
        let p = PollPolicy {
            initial: Duration::from_secs(1),
            cap: Duration::from_secs(4),
            min_step: ms(10),
            timeout: Duration::from_secs(10),
        };
        let polls = Arc::new(Mutex::new(0u32));
        let start = tokio::time::Instant::now();
        let planner = PollPlanner::new(p.initial);
        let r = until_terminal::<(), _, _>(
            &p,
            p.initial,
            |lo| planner.next(lo, &p),
            || {
                let polls = polls.clone();
                async move {
                    *polls.lock().unwrap() += 1;
                    Ok(status(TaskStatus::InProgress))
                }
            },
        )
        .await;
        match r {
            Err(TrackError::TimedOut {
                last: Some(l),
                polls,
            }) => {
                assert_eq!(l.status, TaskStatus::InProgress);
                // Polls at 1, 2, 4, 8 and 10 (the last wait is cut to land on the deadline).
                assert_eq!(polls, 5);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*polls.lock().unwrap(), 5);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
