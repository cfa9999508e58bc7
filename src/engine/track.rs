//! Track stage: polls a bulk task until it is terminal (FINISHED or FAILED) or a deadline
//! passes. Where each poll goes is planned by `PollPlanner` from the lengths of the run's
//! finished tasks (`Durations`, learned as the run goes), and both are pure; the loop takes
//! the fetch and the plan as closures so tests run it under paused tokio time. Used by `send`;
//! talks to the API only through that closure.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use crate::site::api::model::{TaskStatus, TaskStatusResponse};

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
    /// Where a group of lengths after such a stretch begins (seconds), ascending.
    starts: Vec<f64>,
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
/// A length's weight is spread back over at most this share of it, to where tasks of that
/// length were last seen running.
const SPREAD: f64 = 0.3;
/// Lengths within this share of each other are taken as one stretch of lengths.
const CLUSTER: f64 = 0.02;

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
        self.starts.clear();
        let mut share = 0.0;
        let mut cluster: Option<f64> = None;
        for (j, (&x, &w)) in at.iter().zip(&weight).enumerate() {
            if w < NEGLIGIBLE {
                continue;
            }
            // Lengths close together are one: polls that keep landing at one time (the first
            // poll, where most tasks are seen ended) would otherwise pile the weight of every
            // task they saw ended onto that time, and the first poll would stay there.
            if let Some(first) = cluster
                && x.as_secs_f64() <= first * (1.0 + CLUSTER)
            {
                share += w / total;
                if let Some(last) = self.knots.last_mut() {
                    *last = (x.as_secs_f64(), share.min(1.0));
                }
                continue;
            }
            cluster = Some(x.as_secs_f64());
            let from = match self.knots.last() {
                // A wide bracket (a poll that leapt to the slow tasks) says nothing of the
                // lengths it spans: spread no further back than a share of the length.
                Some(&(prev, _)) => ran_past[j]
                    .as_secs_f64()
                    .max(prev)
                    .max(x.as_secs_f64() * (1.0 - SPREAD)),
                // The shortest: back to the longest any task is known to have run short of it.
                None => self.reached_below(x).as_secs_f64(),
            };
            if let Some(&(prev, _)) = self.knots.last()
                && from > prev * (1.0 + GAP)
            {
                self.ends.push(prev);
                self.starts.push(from);
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
        first_after(&self.ends, lo)
    }

    /// The longest length seen.
    pub fn longest(&self) -> Option<Duration> {
        self.knots.last().map(|&(t, _)| Duration::from_secs_f64(t))
    }

    /// Where the first group of lengths beginning after `lo` begins.
    pub fn group_start_after(&self, lo: Duration) -> Option<Duration> {
        first_after(&self.starts, lo)
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
            if t <= w[1].0 {
                return between(w[0], w[1], t);
            }
        }
        1.0
    }

    /// The integral of the share ended from zero to `t` (seconds).
    fn area_to(&self, t: f64) -> f64 {
        let mut area = 0.0;
        for w in self.knots.windows(2) {
            let ((a, fa), (b, fb)) = (w[0], w[1]);
            if t <= a {
                return area;
            }
            if t < b {
                return area + (t - a) * (fa + between(w[0], w[1], t)) / 2.0;
            }
            area += (b - a) * (fa + fb) / 2.0;
        }
        match self.knots.last() {
            Some(&(last, f)) if t > last => area + (t - last) * f,
            _ => area,
        }
    }

    /// The time tasks that end after `a` and by `b` (seconds) wait from their end to `b`,
    /// summed over a task's chances of ending there.
    fn waited(&self, a: f64, b: f64) -> f64 {
        (self.area_to(b) - self.area_to(a) - (b - a) * self.ended_by(a)).max(0.0)
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

/// The share ended at `t` on the straight line between knots `(a, fa)` and `(b, fb)`.
fn between((a, fa): (f64, f64), (b, fb): (f64, f64), t: f64) -> f64 {
    if b > a {
        fa + (fb - fa) * (t - a) / (b - a)
    } else {
        fb
    }
}

/// The first of `times` (seconds, ascending) after `lo`.
fn first_after(times: &[f64], lo: Duration) -> Option<Duration> {
    let lo = lo.as_secs_f64();
    times
        .iter()
        .find(|&&t| t > lo)
        .map(|&t| Duration::from_secs_f64(t))
}

/// Where each poll of a task goes, from the run's `Durations`. The first poll goes where a
/// share `aim` of tasks have ended; each later one where a share `AIM_NEXT` of those still
/// running at the last poll have, so polls follow the tasks' spread (close together where
/// many end, apart where few do). A later poll is never sooner than `STEP_OF_TIME` of the
/// time the task has run. Polls never leap from one group of lengths to a group far beyond
/// (fast tasks and a few slow ones): they go to the end of the nearer group, once a step past
/// it, then to where the farther group begins (so its tasks' brackets stay narrow and the
/// estimate of them true), and only then among its lengths. Past every length seen, steps
/// double from one a step past the longest, but are never longer than `BEYOND` of the time so
/// far (before any task has ended, steps are the prior or that share of the time, the longer).
/// One task in `PROBE_EVERY` has its first poll sooner, halfway down to the longest length a
/// task is known to have run past and at least `PROBE_DEPTH` sooner: a task seen ended there
/// shows tasks can be that short (they got faster, or the first poll had drifted late), which
/// is how the estimate learns what lies below its first poll.
///
/// Where the first poll aims is chosen from the estimate itself: for each aim from
/// `AIM_LOWEST` to `AIM_HIGHEST`, the planner follows its own polls through the estimate to
/// what a task would wait on average from its end to the poll that sees it ended, and how
/// many polls it would take; it takes the aim that waits least within `POLLS_BUDGET` polls a
/// task. The first poll is where most tasks are seen ended and where most of a slot's idle
/// time is lost; only the estimate says whether polls spent sooner catch tasks (times spread)
/// or only find them running (times alike). The estimate misjudges what polls cost (slow
/// tasks, probes, polls landing late), so the polls tasks really took are kept too: polls
/// over the budget are a debt that lowers the budget until it is paid.
#[derive(Debug, Clone)]
pub struct PollPlanner {
    prior: Duration,
    durations: Durations,
    planned: u64,
    /// Where the first poll aims (a share of tasks ended).
    aim: f64,
    /// Tasks have ended since `aim` was chosen.
    stale: bool,
    /// Polls tasks took over `POLLS_BUDGET` each, less what tasks under it saved (at most
    /// `CREDIT`: a run that saved early does not spend it all at once later).
    debt: f64,
    /// Tasks seen still queued (`NOT_STARTED`) by a poll whose polls bracketed their end
    /// closely: the latest time since submission one saw them queued, and the last it saw
    /// them unfinished. A task still queued when most have started is most likely one of the
    /// slow ones; these say how long such tasks run at least.
    queued: VecDeque<(Duration, Duration)>,
}

/// Where the first poll aims before the estimate has chosen (and when it has no lengths).
const AIM_FIRST: f64 = 0.6;
/// The aims the estimate chooses among, `AIM_STEPS + 1` of them evenly from the lowest to the
/// highest. The first poll never aims later than `AIM_HIGHEST`: the tasks it sees ended all
/// count as ending by then, and an aim near 1 would chase the latest of them (each poll lands
/// a little late) ever later.
const AIM_LOWEST: f64 = 0.3;
const AIM_HIGHEST: f64 = 0.85;
const AIM_STEPS: u32 = 11;
/// The first poll stays within the first group of lengths while it holds this share of tasks.
const MOST: f64 = 0.5;
/// Polls a task, on average (issue 39's budget is 2; slow tasks made last, whose polls no
/// later first poll pays back, take the rest).
const POLLS_BUDGET: f64 = 1.85;
/// A debt is paid over this many tasks' first polls.
const REPAY_OVER: f64 = 32.0;
/// Polls saved that later tasks may spend over the budget before it is lowered.
const CREDIT: f64 = 8.0;
const AIM_NEXT: f64 = 0.4;
const BEYOND: f64 = 0.25;
const PROBE_EVERY: u64 = 16;
/// A probe goes at least this share below where the first poll would: halfway down to a task
/// seen running just below it would learn nothing.
const PROBE_DEPTH: f64 = 0.1;
/// A later poll never comes sooner than this share of the time the task has run.
const STEP_OF_TIME: f64 = 0.06;
/// Tasks seen queued as late that must have ended before a queued task is planned by them.
const QUEUED_KNOWN: usize = 2;
/// The first poll never comes sooner than this.
pub const FIRST_POLL_FLOOR: Duration = Duration::from_millis(25);

impl PollPlanner {
    /// `prior`: the first poll before any task has ended.
    pub fn new(prior: Duration) -> PollPlanner {
        PollPlanner {
            prior,
            durations: Durations::default(),
            planned: 0,
            aim: AIM_FIRST,
            stale: false,
            debt: 0.0,
            queued: VecDeque::new(),
        }
    }

    /// A task ended: last seen unfinished at `lo` (zero if never), seen ended at `hi`, after
    /// `polls` polls, never seen queued.
    #[cfg(test)]
    pub fn record(&mut self, lo: Duration, hi: Duration, polls: u32) {
        self.record_task(lo, hi, polls, Duration::ZERO);
    }

    /// A task ended: last seen unfinished at `lo` (zero if never), seen ended at `hi`, after
    /// `polls` polls; last seen queued at `queued` (zero if never).
    pub fn record_task(&mut self, lo: Duration, hi: Duration, polls: u32, queued: Duration) {
        // One seen ended at the first poll among the slow ones was last seen unfinished when
        // it was queued, which says nothing of how long the slow ones run.
        if !queued.is_zero() && hi <= lo.mul_f64(1.0 + GAP) {
            if self.queued.len() == LEARN_FROM {
                self.queued.pop_front();
            }
            self.queued.push_back((queued, lo));
        }
        self.durations.record(lo, hi);
        self.debt = (self.debt + f64::from(polls) - POLLS_BUDGET).max(-CREDIT);
        self.stale = true;
    }

    /// The first poll for the next task (since its submission), within
    /// `[FIRST_POLL_FLOOR, p.cap]`.
    pub fn first(&mut self, p: &PollPolicy) -> Duration {
        self.planned += 1;
        if self.stale {
            self.stale = false;
            self.aim = self.choose_aim(p, POLLS_BUDGET - self.debt.max(0.0) / REPAY_OVER);
        }
        let Some(at) = self.first_at(self.aim) else {
            return first_within(self.prior, p);
        };
        let at = if self.planned.is_multiple_of(PROBE_EVERY) {
            // `reached_below` gives `at` itself when no task is known to have run short of it.
            let reached = Some(self.durations.reached_below(at))
                .filter(|&r| r < at)
                .unwrap_or_default();
            ((reached + at) / 2)
                .min(at.mul_f64(1.0 - PROBE_DEPTH))
                .max(at / 2)
        } else {
            at
        };
        first_within(at, p)
    }

    /// The first poll aimed at a share `aim` of tasks ended, but never past the end of the
    /// first group of lengths while most tasks are in it (its tasks would wait for the slow
    /// ones).
    fn first_at(&self, aim: f64) -> Option<Duration> {
        let d = &self.durations;
        let at = d.quantile_after(Duration::ZERO, aim)?;
        Some(
            d.group_end_after(Duration::ZERO)
                .filter(|end| d.ended_by(end.as_secs_f64()) >= MOST)
                .map_or(at, |end| at.min(end)),
        )
    }

    /// The aim whose polls, followed through the estimate, leave tasks waiting least from
    /// their end to the poll that sees it, within `budget` polls a task (the one with the
    /// fewest polls when none is within).
    fn choose_aim(&self, p: &PollPolicy, budget: f64) -> f64 {
        let mut best: Option<(f64, f64)> = None;
        let mut cheapest: Option<(f64, f64)> = None;
        for aim in aims() {
            let Some((late, polls)) = self.expected(aim, p) else {
                return AIM_FIRST;
            };
            if cheapest.is_none_or(|(_, c)| polls < c) {
                cheapest = Some((aim, polls));
            }
            if polls <= budget && best.is_none_or(|(_, l)| late < l) {
                best = Some((aim, late));
            }
        }
        best.or(cheapest).map_or(AIM_FIRST, |(aim, _)| aim)
    }

    /// What a first poll aimed at `aim` costs a task on average by the estimate: the time
    /// (seconds) from its end to the poll that sees it ended, and its polls.
    fn expected(&self, aim: f64, p: &PollPolicy) -> Option<(f64, f64)> {
        let d = &self.durations;
        let first = first_within(self.first_at(aim)?, p);
        let (mut late, mut polls) = (0.0, 1.0);
        let (mut lo, mut at) = (0.0, first.as_secs_f64());
        // Bounded: past every length seen, no task is left running.
        for _ in 0..64 {
            late += d.waited(lo, at);
            let running = 1.0 - d.ended_by(at);
            if running < NEGLIGIBLE {
                break;
            }
            polls += running;
            lo = at;
            at = self.next(Duration::from_secs_f64(lo), p).as_secs_f64();
        }
        Some((late, polls))
    }

    /// The next poll of a task last seen unfinished at `lo` (both since its submission).
    pub fn next(&self, lo: Duration, p: &PollPolicy) -> Duration {
        let step = match self.durations.quantile_after(lo, AIM_NEXT) {
            // Never past the end of the lengths at hand to a group far beyond: a task that
            // ends with the nearer group would wait for the farther one.
            // Tasks just past a group's end are caught with one poll a step past it before the
            // jump to the next group.
            Some(at) => {
                // Only a poll that has not yet gone past a group's end goes a step past it:
                // once is enough.
                let past = self
                    .durations
                    .group_end_before(lo)
                    .filter(|end| lo < end.mul_f64(1.0 + STEP_OF_TIME / 2.0))
                    .map(|end| end.mul_f64(1.0 + STEP_OF_TIME));
                // In this order: the nearer group's end, a step past it, the next group's
                // start; each only if sooner than the quantile.
                let sooner = |t: Option<Duration>| t.filter(|&t| t < at);
                let to = sooner(self.durations.group_end_after(lo))
                    .or(sooner(past))
                    .or(sooner(self.durations.group_start_after(lo)))
                    .unwrap_or(at);
                // Where lengths are spread thin, polls are too: a step is a share of the time.
                to.saturating_sub(lo).max(lo.mul_f64(STEP_OF_TIME))
            }
            // Nothing known yet: steps of the prior, or of a share of the time once that is
            // longer (a task far longer than the prior is not polled at every such step).
            None if self.durations.is_empty() => lo.mul_f64(BEYOND).max(self.prior.min(lo)),
            None => {
                // Past every length seen: a task just longer than the longest is caught soon,
                // one far longer within a share of its time.
                let longest = self
                    .durations
                    .longest()
                    .filter(|l| !l.is_zero())
                    .unwrap_or(lo);
                let mut reach = STEP_OF_TIME;
                // Bounded: the reach doubles, and `BEYOND` caps the step anyway.
                for _ in 0..64 {
                    if longest.mul_f64(1.0 + reach) > lo {
                        break;
                    }
                    reach = 2.0 * reach + STEP_OF_TIME;
                }
                let at = longest.mul_f64(1.0 + reach);
                at.saturating_sub(lo)
                    .min(lo.mul_f64(BEYOND))
                    .max(lo.mul_f64(STEP_OF_TIME))
            }
        };
        lo + step.clamp(p.min_step, p.cap.max(p.min_step))
    }

    /// The next poll of a task last seen unfinished at `lo`, and whether then still queued.
    /// A queued one's is as any task's, but no sooner than every task seen queued as late or
    /// later was still running, once `QUEUED_KNOWN` of them have ended (a task not yet
    /// started when the fast ones are nearly done is a slow one, and polls among the fast ones
    /// would find it running).
    pub fn next_seen(&self, lo: Duration, queued: bool, p: &PollPolicy) -> Duration {
        let next = self.next(lo, p);
        if !queued {
            return next;
        }
        let (like, reach) = self
            .queued
            .iter()
            .filter(|&&(q, _)| q >= lo)
            .fold((0, Duration::MAX), |(n, reach), &(_, l)| {
                (n + 1, reach.min(l))
            });
        if like < QUEUED_KNOWN {
            return next;
        }
        next.max(reach.min(lo + p.cap))
    }
}

/// The aims the first poll chooses among: `AIM_STEPS + 1`, evenly from `AIM_LOWEST` to
/// `AIM_HIGHEST`.
fn aims() -> impl Iterator<Item = f64> {
    (0..=AIM_STEPS)
        .map(|k| AIM_LOWEST + (AIM_HIGHEST - AIM_LOWEST) * f64::from(k) / f64::from(AIM_STEPS))
}

/// A first poll at `at`, within `[FIRST_POLL_FLOOR, p.cap]`.
fn first_within(at: Duration, p: &PollPolicy) -> Duration {
    at.clamp(FIRST_POLL_FLOOR, p.cap.max(FIRST_POLL_FLOOR))
}

/// A task seen to its end: its terminal status, when (since submission) it was last seen
/// unfinished, last seen queued (zero if never) and seen ended, and the polls that took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub status: TaskStatusResponse,
    pub pending_at: Duration,
    pub queued_at: Duration,
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
/// one that saw it unfinished at a time and whether still queued (all since the start). Fetch
/// errors end the wait (the client already retried transient ones); the deadline is checked
/// before each sleep, and the last wait is cut to land on it, so the last poll is never
/// skipped.
pub async fn until_terminal<E, F, Fut>(
    p: &PollPolicy,
    first: Duration,
    mut next: impl FnMut(Duration, bool) -> Duration,
    mut fetch: F,
) -> Result<Tracked, TrackError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<TaskStatusResponse, E>>,
{
    let start = tokio::time::Instant::now();
    let mut last = None;
    let mut pending_at = Duration::ZERO;
    let mut queued_at = Duration::ZERO;
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
                queued_at,
                ended_at: asked,
                polls,
            });
        }
        pending_at = asked;
        let queued = status.status == TaskStatus::NotStarted;
        if queued {
            queued_at = asked;
        }
        last = Some(status);
        at = next(asked, queued).max(asked + p.min_step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn first_polls_landing_at_one_time_do_not_pile_every_length_there() {
        let mut d = Durations::default();
        let us = |n: u64| Duration::from_micros(n);
        // Most tasks seen ended at a first poll that keeps landing at 656 ms, the rest still
        // running then; a few probes at 590 ms saw a third of theirs ended.
        for i in 0..60 {
            d.record(Duration::ZERO, us(656_000 + 10 * i));
        }
        for i in 0..40 {
            d.record(us(656_500), ms(700 + i));
        }
        for _ in 0..2 {
            d.record(Duration::ZERO, ms(590));
        }
        for _ in 0..4 {
            d.record(ms(590), us(656_300));
        }
        // Half the tasks have ended somewhere between the probes and the first poll, not all
        // at the first poll.
        let q = d.quantile_after(Duration::ZERO, 0.5).unwrap_or_default();
        assert!(q > ms(600) && q < ms(650), "{q:?}");
    }

    #[test]
    fn a_probe_goes_below_tasks_seen_running_just_under_the_first_poll() {
        let mut p = PollPlanner::new(ms(250));
        for i in 0..30 {
            p.record(Duration::ZERO, ms(650 + i % 3), 1);
            p.record(ms(649), ms(700 + i), 2);
        }
        let policy = PollPolicy::default();
        let firsts: Vec<Duration> = (0..PROBE_EVERY).map(|_| p.first(&policy)).collect();
        let (probe, usual) = (firsts[PROBE_EVERY as usize - 1], firsts[0]);
        assert!(
            probe <= usual.mul_f64(1.0 - PROBE_DEPTH),
            "{probe:?} {usual:?}"
        );
        assert!(
            firsts[1..PROBE_EVERY as usize - 1]
                .iter()
                .all(|&f| f == usual)
        );
    }

    #[test]
    fn a_poll_after_one_that_saw_the_task_running() {
        let p = PollPolicy {
            min_step: ms(10),
            cap: Duration::from_secs(30),
            ..PollPolicy::default()
        };
        // Before any task has ended: steps of the prior, or a quarter of the time once
        // that is longer.
        let planner = PollPlanner::new(ms(250));
        assert_eq!(planner.next(ms(250), &p), ms(500));
        assert_eq!(planner.next(ms(500), &p), ms(750));
        assert_eq!(
            planner.next(Duration::from_secs(20), &p),
            Duration::from_secs(25)
        );
        // Most tasks about half a second, a few ten times that.
        let mut planner = PollPlanner::new(ms(250));
        for i in 0..20 {
            planner.record(ms(480 + i), ms(490 + i), 2);
        }
        planner.record(ms(4980), ms(5000), 2);
        planner.record(ms(5080), ms(5100), 2);
        // Among those still running; never sooner than a share of the time so far.
        let next = planner.next(ms(300), &p);
        assert!(next > ms(480) && next < ms(500), "{next:?}");
        assert_eq!(planner.next(ms(495), &p), ms(495).mul_f64(1.06));
        // At the end of the fast ones: once just past it, then to where the slow ones begin
        // (the slow tasks were last seen running at 4980 and 5080 ms).
        assert_eq!(planner.next(ms(509), &p), ms(509).mul_f64(1.06));
        assert_eq!(planner.next(ms(535), &p), ms(4980));
        assert_eq!(planner.next(ms(4980), &p), ms(4980).mul_f64(1.06));
        // Past every length seen: steps double from one past the longest (5.1 s x 1.06,
        // x 1.18, x 1.42), never longer than a quarter of the time so far, up to the cap.
        assert_eq!(planner.next(ms(5100), &p), ms(5100).mul_f64(1.06));
        assert_eq!(planner.next(ms(5406), &p), ms(5100).mul_f64(1.18));
        assert_eq!(planner.next(ms(6018), &p), ms(5100).mul_f64(1.42));
        assert_eq!(planner.next(ms(60_000), &p), ms(75_000));
        assert_eq!(
            planner.next(Duration::from_secs(600), &p),
            Duration::from_secs(630)
        );
        // The budget's step: at --rate 2, half a second.
        let slow = PollPolicy::at_rate(2.0, p.timeout);
        assert_eq!(planner.next(ms(495), &slow), ms(995));
        assert_eq!(PollPolicy::at_rate(1000.0, p.timeout).min_step, MIN_STEP);
    }

    #[test]
    fn a_task_still_queued_when_the_fast_ones_end_skips_their_polls() {
        let p = PollPolicy::default();
        let mut planner = PollPlanner::new(ms(250));
        // Fast tasks, started by their first poll (some seen queued at 250 ms, in the first
        // polls of a run), and slow ones still queued at 520 ms, running past 4.9 s.
        for i in 0..40 {
            let queued = if i < 5 { ms(250) } else { Duration::ZERO };
            planner.record_task(ms(480 + i), ms(490 + i), 2, queued);
        }
        planner.record_task(ms(4900), ms(5000), 3, ms(520));
        let fast = planner.next(ms(500), &p);
        assert!(fast < ms(600), "{fast:?}");
        // One slow task seen queued is not yet enough to go by.
        assert_eq!(planner.next_seen(ms(500), true, &p), fast);
        planner.record_task(ms(5050), ms(5100), 3, ms(600));
        assert_eq!(planner.next_seen(ms(500), true, &p), ms(4900));
        // Only tasks seen queued as late count: past 520 ms, one.
        assert_eq!(
            planner.next_seen(ms(550), true, &p),
            planner.next(ms(550), &p)
        );
        // Before 250 ms, fast tasks were queued too: no skipping past them.
        let early = planner.next_seen(ms(240), true, &p);
        assert!(early < ms(600), "{early:?}");
        // Never further than the cap.
        let short = PollPolicy { cap: ms(1000), ..p };
        assert_eq!(planner.next_seen(ms(500), true, &short), ms(1500));
        // A slow task seen ended by the first poll among the slow ones (its bracket reaches
        // back to 600 ms, when it was queued) does not undo what the others show.
        planner.record_task(ms(600), ms(4900), 2, ms(600));
        assert_eq!(planner.next_seen(ms(500), true, &p), ms(4900));
    }

    #[test]
    fn a_slow_task_seen_late_does_not_blur_the_gap_between_fast_and_slow_ones() {
        let p = PollPolicy::default();
        let mut planner = PollPlanner::new(ms(250));
        for i in 0..40 {
            planner.record(ms(680 + i), ms(690 + i), 2);
        }
        // A slow task last seen running just past the fast ones, and seen ended 5 s later:
        // where in between it ended is not known, and must not read as tasks ending there.
        planner.record(ms(760), ms(5800), 6);
        planner.record(ms(5500), ms(6000), 6);
        let end = planner.durations.group_end_before(ms(740));
        assert!(end.is_some_and(|e| e >= ms(715) && e <= ms(729)), "{end:?}");
        let end = end.unwrap_or_default();
        // A fast task a little longer than any seen is caught a step past the end...
        assert_eq!(planner.next(end, &p), end.mul_f64(1.06));
        // ...and a task still running then is polled where the slow ones begin, not within
        // the stretch between.
        let next = planner.next(end.mul_f64(1.06), &p);
        assert!(next >= ms(4060), "{next:?}");
        // Once past the end is enough: a poll that already landed past it moves on.
        let next = planner.next(end.mul_f64(1.04), &p);
        assert!(next >= ms(4060), "{next:?}");
    }

    /// Tasks of 500 ms and `extra` ms more spread evenly, each seen within 10 ms of its end.
    fn spread(p: &mut PollPlanner, n: u64, extra: u64, polls: u32) {
        for i in 0..n {
            let at = 500 + extra * (i % 25) / 25;
            p.record(ms(at), ms(at + 10), polls);
        }
    }

    #[test]
    fn the_wait_a_poll_leaves_is_read_from_the_estimate() {
        let mut p = PollPlanner::new(ms(250));
        spread(&mut p, 100, 250, 1);
        let d = &p.durations;
        // Lengths spread evenly over 500-760 ms: polled at 760 ms, tasks wait 130 ms on
        // average; those ending within 600-650 ms (a fifth) wait 25 ms, 5 ms a task.
        let near = |got: f64, want: f64| (got - want).abs() < want * 0.05;
        assert!(near(d.waited(0.0, 0.76), 0.13), "{}", d.waited(0.0, 0.76));
        assert!(near(d.waited(0.6, 0.65), 0.005), "{}", d.waited(0.6, 0.65));
        assert!(d.waited(0.8, 0.9) < 1e-12);
        // Polled once past them all, each task took one poll.
        let policy = PollPolicy::default();
        let (late, polls) = p.expected(1.0, &policy).unwrap_or_default();
        assert!(near(late, 0.13) && polls == 1.0, "{late} {polls}");
    }

    #[test]
    fn the_first_poll_aims_where_tasks_wait_least_within_the_budget() {
        let policy = PollPolicy::default();
        // Where tasks all take the same time, a sooner first poll only finds them running.
        let mut alike = PollPlanner::new(ms(250));
        spread(&mut alike, 100, 5, 1);
        alike.first(&policy);
        assert!((alike.aim - AIM_HIGHEST).abs() < 1e-9, "{}", alike.aim);
        // Where they are spread, polls spent sooner catch them sooner; within the budget.
        let mut spread_out = PollPlanner::new(ms(250));
        spread(&mut spread_out, 100, 250, 1);
        spread_out.first(&policy);
        let aim = spread_out.aim;
        assert!(aim < AIM_FIRST, "{aim}");
        let (late, polls) = spread_out.expected(aim, &policy).unwrap_or_default();
        assert!(polls <= POLLS_BUDGET, "{polls}");
        for other in aims() {
            let (l, n) = spread_out.expected(other, &policy).unwrap_or_default();
            assert!(
                n > POLLS_BUDGET || l >= late,
                "{other}: {l} {n}, {aim}: {late} {polls}"
            );
        }
    }

    #[test]
    fn the_first_poll_stays_with_the_quick_tasks_while_most_are_quick() {
        // Seven tasks in ten take 0.5-0.57 s, three 5-5.7 s, and polls are over the budget:
        // the first poll goes no later than the quick ones' end, however late the aim.
        let mut p = PollPlanner::new(ms(250));
        for i in 0..100u64 {
            let at = if i % 10 < 7 {
                500 + 10 * (i % 7)
            } else {
                5000 + 300 * (i % 3)
            };
            p.record(ms(at), ms(at + 10), 4);
        }
        let first = p.first(&PollPolicy::default());
        assert!(first <= ms(580), "{first:?}");
    }

    #[test]
    fn polls_over_the_budget_are_paid_back_with_later_first_polls() {
        let policy = PollPolicy::default();
        let mut cheap = PollPlanner::new(ms(250));
        spread(&mut cheap, 100, 250, 1);
        let mut dear = PollPlanner::new(ms(250));
        spread(&mut dear, 100, 250, 4);
        let (cheap_first, dear_first) = (cheap.first(&policy), dear.first(&policy));
        assert!(dear_first > cheap_first, "{dear_first:?} {cheap_first:?}");
        // What a run saved early is not all spent at once: a few dear tasks are a debt.
        spread(&mut cheap, 1000, 250, 1);
        assert_eq!(cheap.debt, -CREDIT);
        spread(&mut cheap, 20, 250, 4);
        assert!(cheap.debt > 0.0, "{}", cheap.debt);
    }

    /// Five slots, each making its next task as soon as its last is seen ended, polls landing
    /// up to 5 ms after their time, a task queued for the first third of its time (as the
    /// sandbox's are): returns the share of five slots' time over the run that tasks ran, and
    /// the polls per task.
    fn slots(seed: u64, n: usize, len: impl Fn(usize) -> f64) -> (f64, f64) {
        let policy = PollPolicy::default();
        let mut p = PollPlanner::new(ms(250));
        // Per slot: its task (index, made at, last seen running at, polls, last seen queued
        // at) and its next event.
        let mut task: [Option<(usize, f64, f64, u32, f64)>; 5] = [None; 5];
        let mut at = [0.0f64; 5];
        let (mut made, mut ended, mut polls, mut ran, mut end) = (0, 0, 0u32, 0.0, 0.0f64);
        let drift = |i: usize, k: u32| 0.001 + 0.004 * draw(i * 64 + k as usize, seed);
        while ended < n {
            let k = (0..5)
                .filter(|&k| task[k].is_some() || made < n)
                .min_by(|&a, &b| at[a].total_cmp(&at[b]))
                .expect("a slot with work");
            let now = at[k];
            match task[k] {
                None => {
                    let first = p.first(&policy).as_secs_f64();
                    task[k] = Some((made, now, 0.0, 0, 0.0));
                    at[k] = now + first + drift(made, 0);
                    made += 1;
                }
                Some((i, t0, lo, m, q)) => {
                    let asked = now - t0;
                    if asked >= len(i) {
                        p.record_task(
                            Duration::from_secs_f64(lo),
                            Duration::from_secs_f64(asked),
                            m + 1,
                            Duration::from_secs_f64(q),
                        );
                        (ended, polls, ran) = (ended + 1, polls + m + 1, ran + len(i));
                        end = end.max(t0 + len(i));
                        task[k] = None;
                        // The next task is made a few milliseconds after.
                        at[k] = if made < n { now + 0.007 } else { f64::INFINITY };
                    } else {
                        let queued = asked < len(i) / 3.0;
                        let lo = Duration::from_secs_f64(asked);
                        let next = p.next_seen(lo, queued, &policy);
                        let q = if queued { asked } else { q };
                        task[k] = Some((i, t0, asked, m + 1, q));
                        at[k] = t0 + next.as_secs_f64() + drift(i, m + 1);
                    }
                }
            }
        }
        (ran / (5.0 * end), f64::from(polls) / n as f64)
    }

    #[test]
    fn five_slots_stay_busy_within_two_polls_a_task() {
        // 200 tasks a run, as bench/slots.sh makes; several runs, as one is luck.
        let runs = |len: fn(usize, u64) -> f64| {
            let r: Vec<(f64, f64)> = (1..=6).map(|s| slots(s, 200, |i| len(i, s))).collect();
            let use_ = r.iter().map(|x| x.0).sum::<f64>() / r.len() as f64;
            (use_, r.iter().map(|x| x.1).fold(0.0, f64::max))
        };
        let (use_, polls) = runs(|_, _| 0.5);
        assert!(use_ >= 0.95 && polls <= 1.5, "exact: {use_:.3}, {polls:.2}");
        let (use_, polls) = runs(|i, s| 0.5 * (1.0 + 0.5 * draw(i, s)));
        assert!(
            use_ >= 0.895 && polls <= 2.0,
            "jitter: {use_:.3}, {polls:.2}"
        );
        let (use_, polls) = runs(|i, s| {
            let slow = if draw(i, s + 100) < 0.05 { 10.0 } else { 1.0 };
            0.5 * (1.0 + 0.5 * draw(i, s)) * slow
        });
        assert!(
            use_ >= 0.86 && polls <= 2.0,
            "long tail: {use_:.3}, {polls:.2}"
        );
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
            let planned: Vec<Duration> = batch.iter().map(|_| p.first(&policy)).collect();
            for (&i, first) in batch.iter().zip(planned) {
                let (mut at, mut lo, mut n) = (first, Duration::ZERO, 1);
                while at < len(i) {
                    lo = at;
                    at = p.next(lo, &policy);
                    n += 1;
                }
                polls += n;
                p.record(lo, at, n);
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
        let policy = PollPolicy {
            cap,
            ..PollPolicy::default()
        };
        let mut p = PollPlanner::new(ms(250));
        assert_eq!(p.first(&policy), ms(250));
        for i in 0..100 {
            p.record(Duration::ZERO, ms(1 + i % 9), 1);
        }
        assert_eq!(p.first(&policy), FIRST_POLL_FLOOR);
        let mut p = PollPlanner::new(ms(250));
        p.record(Duration::from_secs(90), Duration::from_secs(120), 1);
        assert_eq!(p.first(&policy), cap);
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
        let mut seen = Vec::new();
        let start = tokio::time::Instant::now();
        // A plan that says "5 ms later" is held to the step.
        let r = until_terminal::<(), _, _>(
            &p,
            ms(100),
            |lo, queued| {
                seen.push((lo, queued));
                if lo < ms(300) { lo * 2 } else { lo + ms(5) }
            },
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
        // The first poll saw it queued, and the plan was told.
        assert_eq!(r.queued_at, ms(100));
        assert_eq!(
            seen,
            vec![(ms(100), true), (ms(200), false), (ms(400), false)]
        );
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
            |lo, _| planner.next(lo, &p),
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
                // Polls at 1, 2, 3, 4 and 5 s (steps of the prior), at 6.25, 7.8 and 9.8 s (a
                // quarter of the time) and at 10 (the last wait is cut to land on the deadline).
                assert_eq!(polls, 9);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(*polls.lock().unwrap(), 9);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
