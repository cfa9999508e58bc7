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
        self.reason().map(|(code, why)| match code {
            EXIT_AUTH_NETWORK => {
                format!("not sent: the run stopped after an authentication error ({why})")
            }
            _ => format!("not sent: the run stopped: {why}"),
        })
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

/// Counts for the summary and the progress line.
#[derive(Default)]
pub struct Stats {
    /// Requests sent (a bulk batch or a call counts once, however often it was attempted).
    pub requests: AtomicU64,
    /// Tasks the site accepted.
    pub tasks: AtomicU64,
    /// Rows found on the site as the file has them (nothing sent).
    pub unchanged: AtomicU64,
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
        let poll = PollPolicy {
            timeout: opts.task_timeout(),
            ..PollPolicy::default()
        };
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
            opts: &self.opts,
            log: &*self.log,
            tasks: self,
            seq,
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

    /// Applies what the journal says of a chunk being resumed: closed rows, and batches that
    /// were on their way (polled again, or sent again under their recorded key; synchronous
    /// calls whose answers were lost are decided again). False when the run must not go on.
    async fn resume_chunk(&self, chunk: &mut Chunk<K::Item>, rec: &ChunkRecord) -> bool {
        let Some(journal) = &self.journal else {
            return true;
        };
        let read = journal
            .outcomes(rec.first_row, rec.last_row)
            .and_then(|o| Ok((o, journal.batches(rec.seq)?)));
        let (outcomes, batches) = match read {
            Ok(x) => x,
            Err(e) => {
                let why = format!("the run journal could not be read: {e}");
                self.stop.set(EXIT_USAGE, why.clone());
                for r in &mut chunk.rows {
                    r.apply_noting(Event::Unsettled, &format!("not reported: {why}"));
                }
                return false;
            }
        };
        for (i, r) in chunk.rows.iter_mut().enumerate() {
            if let Some(o) = outcomes.get(&r.raw.row) {
                r.apply(Event::Recorded(o.clone()));
                chunk.items[i] = None;
            }
        }
        if rec.done {
            let unknown = chunk.rows.iter().filter(|r| r.state().is_open()).count();
            if unknown == 0 {
                chunk.replayed = true;
                return true;
            }
            // Not evidence of anything: those rows stay open and are decided again below from
            // what the site holds now, as every row no live batch carries.
            for r in &mut chunk.rows {
                r.apply_noting(
                    Event::Unsettled,
                    "outcome unknown: the journal closed this row's chunk without its outcome; decided again from what the site holds",
                );
            }
            self.log.note(&format!(
                "chunk {}: the journal closed it without the outcome of {unknown} rows; they are decided again from what the site holds",
                chunk.seq
            ));
        }
        for b in batches.into_iter().filter(|b| b.state.is_live()) {
            if b.purpose == Purpose::Prerequisite {
                self.resume_prerequisite(&b).await;
                continue;
            }
            let rows: Vec<usize> = b.rows.iter().filter_map(|n| chunk.index_of(*n)).collect();
            let items: Option<Vec<K::Item>> = serde_json::from_value(b.items.clone()).ok();
            let call: Option<Call> = serde_json::from_value::<Vec<Call>>(b.calls.clone())
                .ok()
                .and_then(|c| c.into_iter().next());
            match (journal::resume_action(&b), items, call) {
                (ResumeAction::Redecide, items, _) => {
                    if let Err(e) = journal.settle(b.id, b.seq, BatchState::Abandoned, &[]) {
                        self.journal_failed(&e);
                    }
                    if K::READ_BACK_UNANSWERED
                        && let Some(items) = items.filter(|i| i.len() == rows.len())
                    {
                        self.settle_unanswered(chunk, &rows, &items).await;
                    }
                    self.log.note(&format!(
                        "chunk {}: resumed; {} rows whose calls had no answer are decided again from what the site holds now",
                        chunk.seq,
                        rows.len()
                    ));
                }
                (action, Some(items), Some(call))
                    if items.len() == rows.len() && rows.len() == b.rows.len() =>
                {
                    for &i in &rows {
                        chunk.items[i] = None;
                        let r = &mut chunk.rows[i];
                        if r.state().is_open() {
                            r.apply(Event::Planned);
                            r.apply(Event::Sent);
                        }
                    }
                    let live = Live {
                        id: Some(b.id),
                        key: b.key.clone().unwrap_or_else(uuid_key),
                        // A crash may have come mid-attempt: the key is kept whatever happens.
                        uncertain: true,
                        call,
                        rows,
                        items,
                    };
                    match (action, &b.task_id) {
                        (ResumeAction::Poll, Some(task)) => {
                            self.log.note(&format!(
                                "chunk {}: resumed; polling its task {task} again",
                                chunk.seq
                            ));
                            for &i in &live.rows {
                                chunk.rows[i].apply(Event::Accepted);
                            }
                            let submitted = TaskSubmitResponse {
                                id: task.clone(),
                                status_url: b
                                    .status_url
                                    .clone()
                                    .unwrap_or_else(|| paths::task(task)),
                            };
                            let _slot = self.slots.acquire().await;
                            self.track(chunk, &live, submitted).await;
                        }
                        _ => {
                            self.log.note(&format!(
                                "chunk {}: resumed; sending the recorded batch again with its key {}",
                                chunk.seq, live.key
                            ));
                            Box::pin(self.submit_and_track(chunk, live)).await;
                        }
                    }
                }
                _ => {
                    // A record that cannot be read back into a batch cannot be sent again
                    // safely: its rows stay open, and the user checks the site.
                    for &i in &rows {
                        chunk.items[i] = None;
                        chunk.rows[i].apply_noting(
                            Event::Unsettled,
                            "outcome unknown: the journal's record of this row's batch cannot be read; check the site",
                        );
                    }
                }
            }
        }
        true
    }

    /// Calls a killed run may have made, without an answer: rows the site shows done are
    /// closed so (with a note); the others stay open to be decided again. A failed read
    /// leaves them all to deciding, which reads the site itself.
    async fn settle_unanswered(
        &self,
        chunk: &mut Chunk<K::Item>,
        rows: &[usize],
        items: &[K::Item],
    ) {
        let cx = self.cx(chunk.seq);
        let Ok(found) = self.kind.read_back(&cx, items).await else {
            return;
        };
        for (&i, f) in rows.iter().zip(found) {
            if !matches!(f, Found::Same(_)) || !chunk.rows[i].state().is_open() {
                continue;
            }
            chunk.items[i] = None;
            let r = &mut chunk.rows[i];
            r.apply(Event::Planned);
            r.apply(Event::Sent);
            r.apply(Event::ReadBack {
                found: f,
                settled: true,
            });
        }
    }

    /// Plans a bulk batch (journaled with its key before any attempt) and sends it.
    async fn task_batch(
        &self,
        chunk: &mut Chunk<K::Item>,
        call: Call,
        rows: Vec<usize>,
        items: Vec<K::Item>,
    ) {
        if let Some(why) = self.stop.halted() {
            leave_open(chunk, &rows, &why);
            return;
        }
        let key = uuid_key();
        let id = match self.plan(
            chunk,
            Purpose::Rows,
            std::slice::from_ref(&call),
            Some(&key),
            &rows,
            &items,
        ) {
            Ok(id) => id,
            Err(why) => {
                leave_open(chunk, &rows, &why);
                return;
            }
        };
        for &i in &rows {
            chunk.rows[i].apply(Event::Planned);
        }
        let live = Live {
            id,
            key,
            uncertain: false,
            call,
            rows,
            items,
        };
        Box::pin(self.submit_and_track(chunk, live)).await;
    }

    /// Commits a batch to the journal (with the chunk's closed rows) before its first attempt.
    fn plan(
        &self,
        chunk: &Chunk<K::Item>,
        purpose: Purpose,
        calls: &[Call],
        key: Option<&str>,
        rows: &[usize],
        items: &[K::Item],
    ) -> Result<Option<i64>, String> {
        let Some(j) = &self.journal else {
            return Ok(None);
        };
        let numbers: Vec<u64> = rows.iter().map(|&i| chunk.rows[i].raw.row).collect();
        // Straight to text: a tree of each would be built only to be printed.
        let calls = serde_json::to_string(calls).expect("calls serialize");
        let items = serde_json::to_string(items).expect("items serialize");
        let closed = closed_outcomes(&chunk.rows);
        j.plan(
            &NewBatch {
                seq: chunk.seq,
                purpose,
                calls: &calls,
                key,
                rows: &numbers,
                items: &items,
            },
            &closed,
        )
        .map(Some)
        .map_err(|e| self.journal_failed(&e))
    }

    /// Submits a planned bulk batch and follows its task; a batch refused as a whole is split
    /// and each part planned and sent as a batch of its own.
    async fn submit_and_track(&self, chunk: &mut Chunk<K::Item>, mut b: Live<K::Item>) {
        let slot = self.slots.acquire().await.expect("slots stay open");
        let range = range_of(chunk, &b.rows);
        for &i in &b.rows {
            chunk.rows[i].apply(Event::Sent);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.task_started(b.rows.len());
        let label = format!("chunk {} ({range})", chunk.seq);
        let answer = self
            .submit(&label, &mut b.key, &mut b.uncertain, b.id, &b.call)
            .await;
        match answer {
            Submitted::Task(t) => {
                for &i in &b.rows {
                    chunk.rows[i].apply(Event::Accepted);
                }
                self.record_submission(b.id, &t);
                self.log.note(&format!(
                    "{label}: task {} submitted with key {} ({} items)",
                    t.id,
                    b.key,
                    b.rows.len()
                ));
                self.track(chunk, &b, t).await;
                drop(slot);
                self.task_ended();
            }
            Submitted::Refused(why) if b.rows.len() > 1 => {
                drop(slot);
                self.task_ended();
                self.log.note(&format!(
                    "{label}: the server refused the whole batch ({why}); splitting it to find the rows it refuses"
                ));
                if let Some(id) = b.id
                    && let Some(j) = &self.journal
                    && let Err(e) = j.settle(id, chunk.seq, BatchState::Split, &[])
                {
                    let why = self.journal_failed(&e);
                    leave_open(chunk, &b.rows, &why);
                    return;
                }
                for &i in &b.rows {
                    chunk.rows[i].apply(Event::BatchRefused);
                }
                let mid = b.rows.len().div_ceil(2);
                let (rows, items) = (b.rows, b.items);
                for (rows, items) in [
                    (rows[..mid].to_vec(), items[..mid].to_vec()),
                    (rows[mid..].to_vec(), items[mid..].to_vec()),
                ] {
                    for req in self.kind.requests(&items) {
                        let r: Vec<usize> = req.items.iter().map(|&k| rows[k]).collect();
                        let its: Vec<K::Item> =
                            req.items.iter().map(|&k| items[k].clone()).collect();
                        let call = req
                            .calls
                            .into_iter()
                            .next()
                            .expect("a task request has a call");
                        Box::pin(self.task_batch(chunk, call, r, its)).await;
                    }
                }
            }
            Submitted::Refused(why) => {
                drop(slot);
                self.task_ended();
                for &i in &b.rows {
                    chunk.rows[i].apply(Event::Refused(why.clone()));
                }
                self.settle(chunk, b.id, &b.rows);
            }
            Submitted::Open(why) => {
                drop(slot);
                self.task_ended();
                leave_open(chunk, &b.rows, &why);
                self.log.note(&format!("{label}: {why}"));
            }
        }
    }

    fn task_started(&self, rows: usize) {
        let c = &self.progress.counters;
        c.tasks.fetch_add(1, Ordering::Relaxed);
        c.sent.fetch_add(rows as u64, Ordering::Relaxed);
        self.progress.refresh();
    }

    fn task_ended(&self) {
        self.progress.counters.tasks.fetch_sub(1, Ordering::Relaxed);
        self.progress.refresh();
    }

    fn record_submission(&self, id: Option<i64>, t: &TaskSubmitResponse) {
        self.stats.tasks.fetch_add(1, Ordering::Relaxed);
        if let (Some(id), Some(j)) = (id, &self.journal)
            && let Err(e) = j.submitted(id, &t.id, &t.status_url)
        {
            self.journal_failed(&e);
        }
    }

    /// POSTs a bulk request under `key` until the site takes it, refuses it, or the run cannot
    /// wait any more. A full set of task slots is waited out (a new key only while no attempt
    /// can have been applied); 429s are waited out inside the client. Every attempt is
    /// journaled.
    async fn submit(
        &self,
        label: &str,
        key: &mut String,
        uncertain: &mut bool,
        id: Option<i64>,
        call: &Call,
    ) -> Submitted {
        let started = tokio::time::Instant::now();
        let slot_wait = self.opts.slot_wait();
        let mut refusals = 0u32;
        loop {
            let answer = self
                .site
                .client
                .post_json::<_, TaskSubmitResponse>(&call.path, &call.body, Some(key))
                .await;
            if let (Some(id), Some(j)) = (id, &self.journal) {
                let outcome = match &answer {
                    Ok(t) => format!("accepted as task {}", t.id),
                    Err(e) => e.to_string(),
                };
                if let Err(e) = j.attempt(id, Some(key), &outcome) {
                    self.alert.note(&format!("{label}: {e}"));
                }
            }
            let e = match answer {
                Ok(t) => return Submitted::Task(t),
                Err(e) => e,
            };
            if e.uncertain() && !*uncertain {
                *uncertain = true;
                if let (Some(id), Some(j)) = (id, &self.journal)
                    && let Err(e) = j.uncertain(id)
                {
                    return Submitted::Open(self.journal_failed(&e));
                }
            }
            if e.is_slot_refusal() {
                refusals += 1;
                let waited = started.elapsed();
                if waited >= slot_wait {
                    let why = format!(
                        "no task slot came free on the site within --slot-wait {}s",
                        slot_wait.as_secs()
                    );
                    self.stop.set(EXIT_INTERRUPTED, why.clone());
                    return Submitted::Open(format!(
                        "not sent: {why}; `csmport resume` sends it{}",
                        if *uncertain {
                            " again under the same key"
                        } else {
                            ""
                        }
                    ));
                }
                let wait = slot_backoff(refusals, jitter()).min(slot_wait - waited);
                match key_after_slot_refusal(*uncertain) {
                    KeyChoice::New => {
                        let new_key = uuid_key();
                        if let (Some(id), Some(j)) = (id, &self.journal)
                            && let Err(e) = j.rekey(id, &new_key)
                        {
                            return Submitted::Open(self.journal_failed(&e));
                        }
                        self.alert.note(&format!(
                            "{label}: server task slots full; waiting {:.1}s, then resubmitting with new key {new_key} (was {key})",
                            wait.as_secs_f64()
                        ));
                        *key = new_key;
                    }
                    KeyChoice::Same => self.alert.note(&format!(
                        "{label}: server task slots full; waiting {:.1}s, then resubmitting under the same key {key} (an earlier attempt may have been applied)",
                        wait.as_secs_f64()
                    )),
                }
                if !self.stop.sleep(wait).await {
                    let why = self.stop.halted().unwrap_or_default();
                    return Submitted::Open(if *uncertain {
                        format!(
                            "not confirmed: an earlier attempt may have been applied, and {}; `csmport resume` sends it again under the same key",
                            why.trim_start_matches("not sent: ")
                        )
                    } else {
                        why
                    });
                }
                continue;
            }
            if e.is_auth() {
                self.stop.set(EXIT_AUTH_NETWORK, e.to_string());
                return Submitted::Open(format!("not sent: authentication failed: {e}"));
            }
            if e.is_rate_limited() {
                let why = format!(
                    "the site kept answering 429 (rate limit) for --slot-wait {}s",
                    slot_wait.as_secs()
                );
                self.stop.set(EXIT_INTERRUPTED, why.clone());
                return Submitted::Open(format!("not sent: {why}; `csmport resume` sends it"));
            }
            return match e.status() {
                Some(400 | 409 | 413 | 422) => Submitted::Refused(e.message().to_string()),
                Some(s) if (400..500).contains(&s) => {
                    self.stop
                        .set(EXIT_USAGE, format!("the site refused a request: {e}"));
                    Submitted::Open(format!("not sent: the site refused the request: {e}"))
                }
                _ if *uncertain => Submitted::Open(format!(
                    "not confirmed: {e}; the batch may or may not have been applied: `csmport resume` on this run folder sends it again safely (same idempotency key)"
                )),
                _ => Submitted::Open(format!(
                    "not sent: {e}; `csmport resume` on this run folder sends it"
                )),
            };
        }
    }

    /// Polls a task until it is terminal or `--task-timeout` has passed, its first poll where
    /// `planner` puts it (and what the task took, taught to it).
    async fn poll(
        &self,
        t: &TaskSubmitResponse,
        planner: &std::sync::Mutex<PollPlanner>,
    ) -> Result<TaskStatusResponse, TrackError<crate::site::client::ApiError>> {
        let path = api::status_url_to_path(&t.status_url).unwrap_or_else(|| paths::task(&t.id));
        let client = &self.site.client;
        let noted = std::sync::atomic::AtomicBool::new(false);
        let first = planner.lock().expect("planner lock").first(self.poll.cap);
        let policy = PollPolicy {
            initial: first.delay,
            second: first.second,
            ..self.poll
        };
        let tracked = track::until_terminal(&policy, || async {
            let r = client.get_json::<TaskStatusResponse>(&path).await;
            if let Ok(s) = &r
                && let TaskStatus::Other(v) = &s.status
                && !noted.swap(true, Ordering::Relaxed)
            {
                self.alert.note(&format!(
                    "task {}: the site reports the status '{v}', which csmport does not know; it is taken as not finished (--task-timeout bounds the wait)",
                    t.id
                ));
            }
            r
        })
        .await?;
        planner
            .lock()
            .expect("planner lock")
            .record(first, tracked.pending_at, tracked.ended_at);
        Ok(tracked.status)
    }

    /// Polls a batch's task to a terminal status and settles its rows from it.
    async fn track(&self, chunk: &mut Chunk<K::Item>, b: &Live<K::Item>, t: TaskSubmitResponse) {
        match self.poll(&t, &self.planner).await {
            Ok(status) => self.reconcile(chunk, b, &status).await,
            Err(TrackError::TimedOut { last }) => {
                let state = last
                    .map(|l| l.status.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into());
                let why = format!(
                    "outcome unknown: task {} was still {state} after {}s (--task-timeout); `csmport resume` on this run folder polls it again",
                    t.id,
                    self.poll.timeout.as_secs()
                );
                self.log.note(&format!("chunk {}: {why}", chunk.seq));
                leave_open(chunk, &b.rows, &why);
            }
            Err(TrackError::Fetch(e)) if e.status() == Some(404) => {
                // Ended tasks are kept a few days: one the site no longer knows ended long
                // ago, and only the entities themselves can say what it did.
                let why = format!("task {} is no longer known to the site", t.id);
                self.log.note(&format!(
                    "chunk {}: {why}; reading its rows back",
                    chunk.seq
                ));
                let all: Vec<usize> = (0..b.rows.len()).collect();
                let note = format!(
                    "outcome unknown: {why}, and the row could not be read back; check the site"
                );
                self.read_back_settled(chunk, b, &all, &note).await;
            }
            Err(TrackError::Fetch(e)) => {
                if e.is_auth() {
                    self.stop.set(EXIT_AUTH_NETWORK, e.to_string());
                }
                let why = format!(
                    "outcome unknown: polling task {} failed: {e}; `csmport resume` on this run folder polls it again",
                    t.id
                );
                leave_open(chunk, &b.rows, &why);
            }
        }
        self.settle(chunk, b.id, &b.rows);
    }

    /// Settles a batch's rows from its task's terminal status: failures close the rows they
    /// name; rows the status cannot settle are read back (the task has ended).
    async fn reconcile(
        &self,
        chunk: &mut Chunk<K::Item>,
        b: &Live<K::Item>,
        status: &TaskStatusResponse,
    ) {
        self.log.note(&format!(
            "chunk {}: task {} {} with {} failures",
            chunk.seq,
            status.id,
            status.status.as_str(),
            status.failures.len()
        ));
        let cx = self.cx(chunk.seq);
        let keys: Vec<Vec<String>> = b.items.iter().map(|i| self.kind.keys(i)).collect();
        let unmatched = reconcile::unmatched_ids(&keys, &status.failures);
        let resolved = if unmatched.is_empty() {
            HashMap::new()
        } else {
            self.kind.failure_keys(&cx, &unmatched).await
        };
        let placed = reconcile::place(&keys, &status.failures, &resolved);
        for f in &placed.unplaced {
            self.log.note(&format!(
                "chunk {}: task {} failure for '{}' matches no row: {}",
                chunk.seq,
                status.id,
                f.entity_id,
                reconcile::describe(f)
            ));
        }
        let mut unsure = Vec::new();
        for (k, &i) in b.rows.iter().enumerate() {
            let v = reconcile::verdict(&status.status, &placed.per_item[k], placed.unplaced.len());
            match v.event(self.kind.id_of(&b.items[k], None)) {
                Some(e) => chunk.rows[i].apply(e),
                None => unsure.push(k),
            }
        }
        if !unsure.is_empty() {
            let note = reconcile::unsettled_note(&status.id, &status.status, &placed.unplaced);
            self.read_back_settled(chunk, b, &unsure, &note).await;
        }
        self.fill_ids(chunk, b).await;
    }

    /// Reads back items (by index in the batch) whose task has ended, and settles their rows.
    async fn read_back_settled(
        &self,
        chunk: &mut Chunk<K::Item>,
        b: &Live<K::Item>,
        which: &[usize],
        note: &str,
    ) {
        let items: Vec<K::Item> = which.iter().map(|&k| b.items[k].clone()).collect();
        let cx = self.cx(chunk.seq);
        let found = match self.kind.read_back(&cx, &items).await {
            Ok(f) if f.len() == items.len() => f,
            Ok(_) => vec![Found::CannotTell; items.len()],
            Err(e) => {
                self.log.note(&format!(
                    "chunk {}: reading {} rows back failed ({e}); they stay open",
                    chunk.seq,
                    items.len()
                ));
                vec![Found::CannotTell; items.len()]
            }
        };
        let applied = found.iter().filter(|f| matches!(f, Found::Same(_))).count();
        let unknown = found.iter().filter(|f| **f == Found::CannotTell).count();
        self.log.note(&format!(
            "chunk {}: read back: {applied} of {} rows are on the site as sent{}",
            chunk.seq,
            items.len(),
            if unknown > 0 {
                format!(", {unknown} cannot be told (they stay open)")
            } else {
                String::new()
            }
        ));
        for (k, f) in which.iter().zip(found) {
            let i = b.rows[*k];
            chunk.rows[i].apply_noting(
                Event::ReadBack {
                    found: f,
                    settled: true,
                },
                note,
            );
        }
    }

    /// Ids for succeeded rows that have none (organizations by name).
    async fn fill_ids(&self, chunk: &mut Chunk<K::Item>, b: &Live<K::Item>) {
        let wanted: Vec<usize> = (0..b.rows.len())
            .filter(|&k| {
                matches!(
                    chunk.rows[b.rows[k]].state(),
                    State::Closed(Outcome::Succeeded { id: None })
                )
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let items: Vec<K::Item> = wanted.iter().map(|&k| b.items[k].clone()).collect();
        let cx = self.cx(chunk.seq);
        let ids = self.kind.fill_ids(&cx, &items).await;
        for (k, id) in wanted.into_iter().zip(ids) {
            if let Some(id) = id {
                chunk.rows[b.rows[k]].apply(Event::Identified(id));
            }
        }
    }

    /// Records the rows a batch closed; the batch is done once all of them are.
    fn settle(&self, chunk: &Chunk<K::Item>, id: Option<i64>, rows: &[usize]) {
        let (Some(id), Some(j)) = (id, &self.journal) else {
            return;
        };
        let closed: Vec<(u64, &Outcome)> = rows
            .iter()
            .filter_map(|&i| match &chunk.rows[i].state() {
                State::Closed(o) => Some((chunk.rows[i].raw.row, o)),
                _ => None,
            })
            .collect();
        let state = if closed.len() == rows.len() {
            BatchState::Done
        } else if rows
            .iter()
            .any(|&i| *chunk.rows[i].state() == State::InTask)
        {
            BatchState::Submitted
        } else {
            BatchState::Planned
        };
        if let Err(e) = j.settle(id, chunk.seq, state, &closed) {
            self.journal_failed(&e);
        }
    }

    /// Synchronous calls for one batch of rows (usually one row), made in order. A call whose
    /// answer is lost is settled by reading the site back, never by sending it again blindly.
    async fn call_batch(
        &self,
        chunk: &mut Chunk<K::Item>,
        calls: Vec<Call>,
        rows: Vec<usize>,
        items: Vec<K::Item>,
    ) {
        if let Some(why) = self.stop.halted() {
            leave_open(chunk, &rows, &why);
            return;
        }
        let id = match self.plan(chunk, Purpose::Rows, &calls, None, &rows, &items) {
            Ok(id) => id,
            Err(why) => {
                leave_open(chunk, &rows, &why);
                return;
            }
        };
        let _permit = self.calls.acquire().await.expect("calls stay open");
        for &i in &rows {
            chunk.rows[i].apply(Event::Planned);
            chunk.rows[i].apply(Event::Sent);
        }
        self.stats
            .requests
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        self.progress
            .counters
            .sent
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        let mut answer = None;
        for call in &calls {
            let r = match call.method {
                Method::Post => {
                    self.site
                        .client
                        .post_json_once::<_, serde_json::Value>(&call.path, &call.body)
                        .await
                }
                Method::Put => {
                    self.site
                        .client
                        .put_json::<_, serde_json::Value>(&call.path, &call.body)
                        .await
                }
                Method::PutOnce => {
                    self.site
                        .client
                        .put_json_once::<_, serde_json::Value>(&call.path, &call.body)
                        .await
                }
                Method::Delete => self.site.client.delete_once(&call.path).await,
            };
            if let (Some(id), Some(j)) = (id, &self.journal) {
                let outcome = match &r {
                    Ok(_) => "answered".to_string(),
                    Err(e) => e.to_string(),
                };
                if let Err(e) = j.attempt(id, None, &outcome) {
                    self.alert.note(&format!("chunk {}: {e}", chunk.seq));
                }
            }
            let e = match r {
                Ok(v) => {
                    answer = Some(v);
                    continue;
                }
                Err(e) => e,
            };
            if e.is_auth() {
                self.stop.set(EXIT_AUTH_NETWORK, e.to_string());
            } else if e.is_rate_limited() {
                self.stop.set(
                    EXIT_INTERRUPTED,
                    format!(
                        "the site kept answering 429 (rate limit) for --slot-wait {}s",
                        self.opts.slot_wait().as_secs()
                    ),
                );
            }
            match e.status() {
                Some(s) if (400..500).contains(&s) && !matches!(s, 401 | 403 | 408 | 429) => {
                    for &i in &rows {
                        chunk.rows[i].apply(Event::Refused(e.message().to_string()));
                    }
                }
                _ if e.uncertain() => {
                    // The call may have been applied: what the site holds now says.
                    let cx = self.cx(chunk.seq);
                    let found = self
                        .kind
                        .read_back(&cx, &items)
                        .await
                        .unwrap_or_else(|_| vec![Found::CannotTell; items.len()]);
                    let note = format!(
                        "not confirmed: {e}; the site does not show this row as sent (yet): `csmport resume` checks it again and sends it only if it is not there"
                    );
                    for (&i, f) in rows.iter().zip(found) {
                        chunk.rows[i].apply_noting(
                            Event::ReadBack {
                                found: f,
                                settled: false,
                            },
                            &note,
                        );
                    }
                }
                _ => {
                    let note =
                        format!("not sent: {e}; `csmport resume` on this run folder sends it");
                    leave_open(chunk, &rows, &note);
                }
            }
            self.settle(chunk, id, &rows);
            return;
        }
        for (&i, item) in rows.iter().zip(&items) {
            let id = self.kind.id_of(item, answer.as_ref());
            chunk.rows[i].apply(Event::Answered(id));
        }
        self.settle(chunk, id, &rows);
    }

    /// `--verify`: reads the rows this chunk sent back and records per row whether the site
    /// has them as sent.
    async fn verify(&self, chunk: &mut Chunk<K::Item>, sent: &[(usize, K::Item)]) {
        let done: Vec<&(usize, K::Item)> = sent
            .iter()
            .filter(|(i, _)| chunk.rows[*i].state().succeeded())
            .collect();
        if done.is_empty() {
            return;
        }
        let items: Vec<K::Item> = done.iter().map(|(_, it)| it.clone()).collect();
        let cx = self.cx(chunk.seq);
        let found = match self.kind.read_back(&cx, &items).await {
            Ok(f) if f.len() == items.len() => f,
            Ok(_) => vec![Found::CannotTell; items.len()],
            Err(e) => {
                self.log.note(&format!(
                    "chunk {}: verify could not read the rows back ({e})",
                    chunk.seq
                ));
                vec![Found::CannotTell; items.len()]
            }
        };
        for ((i, _), f) in done.into_iter().zip(found) {
            let v = match f {
                Found::Same(_) => report::Verdict::Confirmed,
                Found::Drifted => report::Verdict::Drifted,
                Found::Missing => report::Verdict::Missing,
                Found::CannotTell => report::Verdict::Unverifiable,
            };
            chunk.verified.insert(*i, v);
        }
    }

    /// Finishes a prerequisite task a resumed chunk had started: poll it, or send its recorded
    /// body again under its key, to its end.
    async fn resume_prerequisite(&self, b: &journal::Batch) {
        let call: Option<Call> = serde_json::from_value::<Vec<Call>>(b.calls.clone())
            .ok()
            .and_then(|c| c.into_iter().next());
        let (Some(call), Some(key)) = (call, b.key.clone()) else {
            return;
        };
        let what = format!("chunk {}: resumed prerequisite", b.seq);
        let _ = self
            .prerequisite(
                b.seq,
                &what,
                call,
                Some((b.id, key, b.task_id.clone(), b.status_url.clone())),
            )
            .await;
    }

    /// Runs a prerequisite bulk task (journaled with chunk `seq`) to its end, under the same
    /// slot limit, pacing and key rules as every batch.
    async fn prerequisite(
        &self,
        seq: u64,
        what: &str,
        call: Call,
        recorded: Option<(i64, String, Option<String>, Option<String>)>,
    ) -> Result<TaskStatusResponse, String> {
        if let Some(why) = self.stop.halted() {
            return Err(why);
        }
        let (id, mut key, task, status_url, mut uncertain) = match recorded {
            Some((id, key, task, url)) => (Some(id), key, task, url, true),
            None => {
                let key = uuid_key();
                let id = match &self.journal {
                    Some(j) => {
                        let calls = serde_json::to_string(&[&call]).expect("serializes");
                        Some(
                            j.plan(
                                &NewBatch {
                                    seq,
                                    purpose: Purpose::Prerequisite,
                                    calls: &calls,
                                    key: Some(&key),
                                    rows: &[],
                                    items: "[]",
                                },
                                &[],
                            )
                            .map_err(|e| self.journal_failed(&e))?,
                        )
                    }
                    None => None,
                };
                (id, key, None, None, false)
            }
        };
        let _slot = self.slots.acquire().await.expect("slots stay open");
        let submitted = match task {
            Some(task) => TaskSubmitResponse {
                status_url: status_url.unwrap_or_else(|| paths::task(&task)),
                id: task,
            },
            None => {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                match self.submit(what, &mut key, &mut uncertain, id, &call).await {
                    Submitted::Task(t) => {
                        self.record_submission(id, &t);
                        self.log
                            .note(&format!("{what}: task {} with key {key}", t.id));
                        t
                    }
                    Submitted::Refused(why) => {
                        self.settle_prerequisite(id, seq);
                        return Err(format!("the site refused it: {why}"));
                    }
                    Submitted::Open(why) => return Err(why),
                }
            }
        };
        match self.poll(&submitted, &self.prerequisite_planner).await {
            Ok(s) => {
                self.settle_prerequisite(id, seq);
                Ok(s)
            }
            Err(TrackError::TimedOut { .. }) => Err(format!(
                "task {} was still running after {}s; `csmport resume` waits for it",
                submitted.id,
                self.poll.timeout.as_secs()
            )),
            Err(TrackError::Fetch(e)) => {
                if e.is_auth() {
                    self.stop.set(EXIT_AUTH_NETWORK, e.to_string());
                }
                Err(format!("task {} could not be followed: {e}", submitted.id))
            }
        }
    }

    fn settle_prerequisite(&self, id: Option<i64>, seq: u64) {
        if let (Some(id), Some(j)) = (id, &self.journal)
            && let Err(e) = j.settle(id, seq, BatchState::Done, &[])
        {
            self.journal_failed(&e);
        }
    }
}

impl<K: Description> Prerequisites for Engine<K> {
    fn run_task<'a>(
        &'a self,
        seq: u64,
        what: String,
        call: Call,
    ) -> BoxFuture<'a, Result<TaskStatusResponse, String>> {
        Box::pin(async move { self.prerequisite(seq, &what, call, None).await })
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
