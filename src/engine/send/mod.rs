//! Send stage, with track and reconcile around it: one chunk of rows goes from decided to
//! closed or left open. Its items are decided against the site by the kind; the requests the
//! kind builds are journaled before their first attempt and sent. A bulk request waits for a
//! free task slot and for the rate limit (back-pressure, never a row failure) and keeps its
//! `Idempotency-Key` whenever an attempt may have been applied; a batch refused as a whole is
//! split, each part a batch of its own. Its task is polled to a terminal status, whose
//! failures close the rows they name; what a status cannot settle is read back once the task
//! has ended, or stays open for `resume`. Synchronous calls are settled by their answers, or by
//! reading the site when an answer is lost. Every row change goes through `row::step`. Used by
//! `run`; uses `site`, `journal`, `track` and `reconcile`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{EXIT_AUTH_NETWORK, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::kinds::{BoxFuture, Call, Cx, Decision, Description, Method, Mode, Prerequisites};
use crate::options::ImportOptions;
use crate::row::{Event, Found, Outcome, Row, State};
use crate::site::Site;
use crate::site::api::model::{TaskStatus, TaskStatusResponse, TaskSubmitResponse};
use crate::site::api::{self, paths};
use crate::site::client::{Notify, retry};

use super::journal::{
    self, BatchState, ChunkRecord, Journal, JournalError, NewBatch, Purpose, ResumeAction,
};
use super::plan::{Chunk, uuid_key};
use super::progress::Progress;
use super::reconcile;
use super::report;
use super::track::{self, PollPlanner, PollPolicy, TrackError};

mod calls;
mod prereq;
mod resume;
mod settle;
mod submit;

/// Why the run stops sending, and whether it was interrupted. The first reason wins.
#[derive(Default)]
pub struct Stop {
    interrupted: AtomicBool,
    reason: std::sync::Mutex<Option<(i32, String)>>,
    wake: tokio::sync::Notify,
}

impl Stop {
    /// Ctrl-C: no new request goes out; what is in flight is followed to its end.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// The run cannot go on: no new request goes out, and the run ends with `code`.
    pub fn set(&self, code: i32, why: String) {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((code, why));
        self.wake.notify_waiters();
    }

    /// Stops the run if `e` says no later request can fare better: a token that could not be
    /// renewed is an interruption (exit 4: rows open, `resume` once a token can be had again);
    /// a refusal of the credentials, or a site that redirects, is exit 3. Whether it stopped.
    pub fn for_fatal(&self, e: &crate::site::client::ApiError) -> bool {
        if e.is_renewal() {
            self.set(
                crate::error::EXIT_INTERRUPTED,
                format!("{e}; `csmport resume` goes on once a token can be had"),
            );
            true
        } else if e.is_auth() || matches!(e, crate::site::client::ApiError::Redirect { .. }) {
            // A refusal of the credentials, or a site that redirects every request elsewhere:
            // the site's fault, and no later request would fare better.
            let why = if e.is_auth() {
                format!("authentication failed: {}", e.explained())
            } else {
                e.explained()
            };
            self.set(EXIT_AUTH_NETWORK, why);
            true
        } else {
            false
        }
    }

    pub fn reason(&self) -> Option<(i32, String)> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Why no new request may go out, if so (as the rows left open say it).
    pub fn halted(&self) -> Option<String> {
        if self.interrupted() {
            return Some("not sent: the run was interrupted before this row was sent".into());
        }
        self.reason()
            .map(|(_, why)| format!("not sent: the run stopped: {why}"))
    }

    /// Sleeps `d`, or less when the run is told to stop; false then.
    async fn sleep(&self, d: Duration) -> bool {
        let woken = self.wake.notified();
        if self.halted().is_some() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => self.halted().is_none(),
            _ = woken => false,
        }
    }
}

/// The key a batch is sent again under after the site refused it for want of a task slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    /// No attempt can have been applied: a new key, since the site may remember the refusal
    /// under the old one (CONTRACT §7.4).
    New,
    /// Some attempt may have been applied: the same key, always, so the site answers with the
    /// task it may already have made instead of making a second one.
    Same,
}

pub fn key_after_slot_refusal(uncertain: bool) -> KeyChoice {
    if uncertain {
        KeyChoice::Same
    } else {
        KeyChoice::New
    }
}

/// How long to wait before asking again for a task slot (`refusals` so far, from 1).
pub fn slot_backoff(refusals: u32, jitter: f64) -> Duration {
    retry::backoff(
        &retry::Policy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            ..retry::Policy::default()
        },
        refusals,
        jitter,
    )
}

/// A task slot held: given back (`Engine::free`) as soon as its task is seen to end, before
/// its rows are settled. `counted`: its task is on the progress line's count.
pub(super) struct Slot<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    counted: bool,
}

/// Counts for the summary and the progress line.
#[derive(Default)]
pub struct Stats {
    /// Requests sent (a bulk batch or a call counts once, however often it was attempted).
    pub requests: AtomicU64,
    /// Tasks the site accepted.
    pub tasks: AtomicU64,
    /// Rows found on the site as the file has them (nothing sent).
    pub unchanged: AtomicU64,
    /// Polls of task status, and the tasks polled.
    pub polls: AtomicU64,
    pub polled: AtomicU64,
}

/// Everything a run shares between its chunks.
pub struct Engine<K: Description> {
    pub kind: K,
    pub site: Site,
    pub opts: ImportOptions,
    pub journal: Option<Arc<Journal>>,
    /// The run log.
    pub log: Arc<dyn Notify>,
    /// Waits the user should see as they happen (the log and the progress line).
    pub alert: Arc<dyn Notify>,
    pub progress: Arc<Progress>,
    pub poll: PollPolicy,
    /// Where the first poll of a task goes: learned from the kind's own tasks, and apart from
    /// them from the prerequisite tasks (organizations made first), which take their own time.
    planner: std::sync::Mutex<PollPlanner>,
    prerequisite_planner: std::sync::Mutex<PollPlanner>,
    /// The run's own unfinished tasks, at most `--max-tasks`.
    slots: Semaphore,
    /// Synchronous calls in flight.
    calls: Semaphore,
    pub stop: Stop,
    pub stats: Stats,
}

/// A batch of rows on its way: what the journal holds of it, and where its rows are in the
/// chunk.
struct Live<I> {
    id: Option<i64>,
    key: String,
    uncertain: bool,
    call: Call,
    /// Indexes in the chunk's rows, in body order.
    rows: Vec<usize>,
    items: Vec<I>,
}

/// How a submission ended.
enum Submitted {
    Task(TaskSubmitResponse),
    /// A 400 (or 409/413/422) for what the batch holds.
    Refused(String),
    /// Not taken, or not known to be: the rows stay open with this note.
    Open(String),
}

impl<K: Description> Engine<K> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: K,
        site: Site,
        opts: ImportOptions,
        journal: Option<Arc<Journal>>,
        log: Arc<dyn Notify>,
        alert: Arc<dyn Notify>,
        progress: Arc<Progress>,
    ) -> Engine<K> {
        let poll = PollPolicy::at_rate(opts.rate, opts.task_timeout());
        let n = opts.max_tasks.max(1);
        Engine {
            kind,
            site,
            journal,
            log,
            alert,
            progress,
            planner: std::sync::Mutex::new(PollPlanner::new(poll.initial)),
            prerequisite_planner: std::sync::Mutex::new(PollPlanner::new(poll.initial)),
            poll,
            slots: Semaphore::new(n),
            calls: Semaphore::new(n),
            stop: Stop::default(),
            stats: Stats::default(),
            opts,
        }
    }

    fn cx(&self, seq: u64) -> Cx<'_> {
        Cx {
            site: &self.site,
            opts: self.opts.for_kind(),
            log: &*self.log,
            tasks: self,
            seq,
            changed: None,
        }
    }

    /// The context for reading a chunk's rows back after its tasks.
    fn cx_after(&self, chunk: &Chunk<K::Item>) -> Cx<'_> {
        Cx {
            changed: chunk.changed,
            ..self.cx(chunk.seq)
        }
    }

    /// A journal write that failed stops the run: nothing is sent that the journal does not
    /// know.
    fn journal_failed(&self, e: &JournalError) -> String {
        let why = format!("the run journal could not be written: {e}");
        self.stop.set(EXIT_USAGE, why.clone());
        format!("not sent: {why}")
    }

    /// Takes a chunk from read to closed (or open for `resume`): what the journal says of it
    /// first, then the rows still to decide.
    pub async fn process(
        &self,
        mut chunk: Chunk<K::Item>,
        record: Option<&ChunkRecord>,
    ) -> Chunk<K::Item> {
        if let Some(rec) = record
            && !self.resume_chunk(&mut chunk, rec).await
        {
            return chunk;
        }
        let mut pending: Vec<(usize, K::Item)> = Vec::new();
        for (i, item) in chunk.items.iter_mut().enumerate() {
            if *chunk.rows[i].state() == State::Pending
                && let Some(it) = item.take()
            {
                pending.push((i, it));
            }
        }
        if pending.is_empty() {
            return chunk;
        }
        if let Some(why) = self.stop.halted() {
            for (i, _) in &pending {
                chunk.rows[*i].apply_noting(Event::Unsettled, &why);
            }
            return chunk;
        }
        let cx = self.cx(chunk.seq);
        let (rows, items): (Vec<usize>, Vec<K::Item>) = pending.into_iter().unzip();
        let decisions = self.kind.decide(&cx, items).await;
        let mut sending: Vec<(usize, K::Item)> = Vec::new();
        for (i, d) in rows.into_iter().zip(decisions) {
            let row = &mut chunk.rows[i];
            match d {
                Decision::Send(item) if self.opts.dry_run => {
                    let _ = item;
                    row.close(Outcome::Succeeded { id: None });
                }
                Decision::Send(item) => sending.push((i, item)),
                Decision::Unchanged(id) => {
                    self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
                    row.close(Outcome::Succeeded { id });
                    if self.opts.verify {
                        chunk.verified.insert(i, report::Verdict::Confirmed);
                    }
                }
                Decision::Refuse {
                    stage,
                    field,
                    error,
                } => row.close(Outcome::Failed {
                    stage,
                    field,
                    error,
                }),
                Decision::Open(why) => row.apply_noting(Event::Unsettled, &why),
                Decision::Skip(reason) => row.close(Outcome::Skipped { reason }),
            }
        }
        if sending.is_empty() {
            return chunk;
        }
        let items: Vec<K::Item> = sending.iter().map(|(_, it)| it.clone()).collect();
        for req in self.kind.requests(&items) {
            let rows: Vec<usize> = req.items.iter().map(|&k| sending[k].0).collect();
            let its: Vec<K::Item> = req.items.iter().map(|&k| items[k].clone()).collect();
            match req.mode {
                Mode::Task => {
                    let call = req
                        .calls
                        .into_iter()
                        .next()
                        .expect("a task request has a call");
                    self.task_batch(&mut chunk, call, rows, its).await;
                }
                Mode::Calls => self.call_batch(&mut chunk, req.calls, rows, its).await,
            }
        }
        if self.opts.verify {
            self.verify(&mut chunk, &sending).await;
        }
        chunk
    }
}

/// Leaves `rows` open, saying why.
fn leave_open<I>(chunk: &mut Chunk<I>, rows: &[usize], why: &str) {
    for &i in rows {
        chunk.rows[i].apply_noting(Event::Unsettled, why);
    }
}

/// The closed rows of a chunk with their outcomes, for the journal.
pub fn closed_outcomes(rows: &[Row]) -> Vec<(u64, &Outcome)> {
    rows.iter()
        .filter_map(|r| match &r.state() {
            State::Closed(o) => Some((r.raw.row, o)),
            _ => None,
        })
        .collect()
}

fn range_of<I>(chunk: &Chunk<I>, rows: &[usize]) -> String {
    match (rows.first(), rows.last()) {
        (Some(&a), Some(&b)) => format!("rows {}-{}", chunk.rows[a].raw.row, chunk.rows[b].raw.row),
        _ => "no rows".into(),
    }
}

/// A uniform draw in [0, 1) for spreading waits out; not cryptographic.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 cases 1 and 10: a batch any attempt of which may have been applied keeps its
    /// key through every slot refusal; only a batch nothing of which was taken gets a new one.
    #[test]
    fn keys_after_a_slot_refusal() {
        assert_eq!(key_after_slot_refusal(false), KeyChoice::New);
        assert_eq!(key_after_slot_refusal(true), KeyChoice::Same);
    }

    #[test]
    fn slot_waits_grow_and_are_capped() {
        let secs: Vec<f64> = (1..=8)
            .map(|n| slot_backoff(n, 0.0).as_secs_f64())
            .collect();
        assert_eq!(secs, vec![0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]);
        assert_eq!(slot_backoff(3, 1.0), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_wakes_every_wait() {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        let waiter = tokio::spawn(async move { s.sleep(Duration::from_secs(3600)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.set(EXIT_INTERRUPTED, "no slot".into());
        assert!(!waiter.await.unwrap());
        assert_eq!(
            stop.halted().as_deref(),
            Some("not sent: the run stopped: no slot")
        );
        assert!(!stop.sleep(Duration::from_secs(1)).await);
    }
}
