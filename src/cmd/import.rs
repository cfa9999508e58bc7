//! `csmport import KIND FILE`: wires the pipeline together — read → map/validate → plan →
//! send (task-slot bounded) → track → reconcile → report — and writes the run folder. Only
//! orchestration lives here; each stage is its own module.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use crate::cli::{ImportArgs, Kind};
use crate::engine::intake::{self, Intake};
use crate::engine::journal::{
    self, Batch, BatchState, InputIdentity, Journal, ResumeAction, RunMeta,
};
use crate::engine::plan::{Chunk, Chunker, uuid_key};
use crate::engine::progress::{Progress, RunLog, Tee};
use crate::engine::report::{self, ReportWriter, Summary};
use crate::engine::send::{self, SendContext};
use crate::engine::track::PollPolicy;
use crate::error::{EXIT_AUTH_NETWORK, EXIT_INTERRUPTED, EXIT_USAGE, Error, rows_exit_code};
use crate::read::Dialect;
use crate::site::api::{MAX_ACCOUNT_BULK_ITEMS, MAX_PROFILE_BULK_ITEMS};
use crate::site::client::{Client, Notify, Target, retry};

/// What the command tells its caller besides the exit code.
pub struct ImportResult {
    pub exit_code: i32,
    pub summary: Summary,
    pub read_error: Option<String>,
    /// Why the run stopped sending before the end (authentication, journal, changed input).
    pub stopped: Option<String>,
    /// Rows whose outcome is not final (not sent, or unknown): `resume` finishes them.
    pub unsettled: u64,
    /// A dry run of a small kind: what `validate` reports.
    pub validated: Option<super::validate::ValidateSummary>,
}

/// A run being finished by `csmport resume`: its journal and what the journal holds.
pub struct Resume {
    pub journal: Arc<Journal>,
    pub batches: HashMap<u64, Batch>,
}

pub async fn run(args: &ImportArgs, target: &Target) -> Result<ImportResult, Error> {
    run_with(args, target, None).await
}

/// An import, new (`resume` = None: a new journal in a new run folder) or resumed.
pub async fn run_with(
    args: &ImportArgs,
    target: &Target,
    resume: Option<Resume>,
) -> Result<ImportResult, Error> {
    let input = &args.input;
    let kind_max = match input.kind() {
        Kind::CustomerAccounts | Kind::OrganizationAccounts => MAX_ACCOUNT_BULK_ITEMS,
        // The small kinds never come here (`cmd::small`).
        _ => MAX_PROFILE_BULK_ITEMS,
    };
    // The default suits the profile endpoints; the account endpoints take fewer per request.
    let batch_size = args.batch_size.min(kind_max);
    if args.batch_size == 0 || args.batch_size > MAX_PROFILE_BULK_ITEMS {
        return Err(Error::Usage(format!(
            "--batch-size must be between 1 and {MAX_PROFILE_BULK_ITEMS} (the API's limit), got {}",
            args.batch_size
        )));
    }
    if args.max_tasks == 0 {
        return Err(Error::Usage("--max-tasks must be at least 1".into()));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Error::Usage(format!(
            "--rate must be a positive number, got {}",
            args.rate
        )));
    }
    let policy = policy(args);
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let progress = Arc::new(Progress::new(0));
    progress
        .counters
        .slots
        .store(args.max_tasks as u64, Ordering::Relaxed);
    // The log does not exist until the run folder does; notes before that go to the terminal.
    let early: Arc<dyn Notify> = progress.clone();
    let setup_client = Client::new(target, args.rate, policy, early);
    let [file] = input.files.as_slice() else {
        return Err(Error::Usage(
            "import takes one file per run for now; run one import per file (validate takes several)".into(),
        ));
    };
    let schema = intake::schema(input, Some(&setup_client)).await?;
    let mut intake = Intake::open(input, file, schema)?;
    progress.set_length(intake.progress().1);
    let file_label = intake.file_label.clone();
    let header = intake.header.clone();

    let dir = run_dir(input.out.as_deref(), input.kind().as_str(), started_at)?;
    let resuming = resume.is_some();
    let (journal, recorded) = match resume {
        Some(r) => (r.journal, r.batches),
        None => {
            let meta = RunMeta {
                args: serde_json::to_string(&journaled_args(args, &dir)?).expect("serializes"),
                input: InputIdentity::of(file).map_err(|e| {
                    Error::Usage(format!("{}: cannot be read: {e}", file.display()))
                })?,
                dialect: serde_json::to_string(&intake.dialect()).expect("serializes"),
                base_url: target.base_url.clone(),
                cloud_id: target.cloud_id.clone(),
                started_at: started_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            };
            (Arc::new(Journal::create(&dir, &meta)?), HashMap::new())
        }
    };
    let log = if resuming {
        append_log(&dir)?
    } else {
        open_log(&dir)?
    };
    if resuming {
        let open = recorded
            .values()
            .filter(|b| b.state != BatchState::Done)
            .count();
        log.note(&format!(
            "resumed: the journal has {} chunks, {open} of them unfinished; finished chunks are reported from the journal, unfinished ones polled or sent again under their recorded keys",
            recorded.len()
        ));
    }
    log.note(&format!(
        "import {} from {} into {} (cloud {}); {} detail fields; batch size {}, rate {}/s, max tasks {}",
        input.kind().as_str(),
        file_label,
        target.base_url,
        target.cloud_id,
        intake.schema.fields.len(),
        batch_size,
        args.rate,
        args.max_tasks
    ));
    for col in &intake.mapping.ignored_unknown {
        log.note(&format!(
            "column '{col}' matches no field and is ignored (--ignore-unknown-columns)"
        ));
    }
    for note in &intake.mapping.notes {
        log.note(note);
    }
    let notify: Arc<dyn Notify> = Arc::new(Tee(vec![log.clone(), progress.clone()]));
    let client = Arc::new(Client::new(target, args.rate, policy, notify.clone()));
    let ctx = Arc::new(SendContext {
        client,
        poll: PollPolicy {
            timeout: Duration::from_secs(args.task_timeout.max(1)),
            ..PollPolicy::default()
        },
        log: log.clone(),
        alert: notify.clone(),
        slot_wait: Duration::from_secs(30 * 60),
        orgs: crate::site::resolve::OrgResolver::new(!args.no_create_organizations),
        kind: intake::record_kind(input.kind()),
        unchanged: Default::default(),
        service_desk: args.service_desk.clone(),
        emails: Default::default(),
        journal: Some(journal.clone()),
        verify_emails: Default::default(),
    });

    let interrupted = Arc::new(AtomicBool::new(false));
    spawn_interrupt_watch(interrupted.clone(), notify.clone());
    let abort: Arc<Abort> = Default::default();

    // Reader: a blocking thread that reads, maps, validates and cuts chunks (where the journal
    // of a resumed run says they end).
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk>(2);
    let boundaries: HashMap<u64, u64> = recorded.iter().map(|(s, b)| (*s, b.last_row)).collect();
    let reader = {
        let progress = progress.clone();
        let interrupted = interrupted.clone();
        tokio::task::spawn_blocking(move || -> (Option<String>, Dialect) {
            let mut chunker =
                Chunker::new(batch_size, Box::new(uuid_key)).with_boundaries(boundaries);
            let mut read_error = None;
            let mut reader = intake.reader();
            while !interrupted.load(Ordering::Relaxed) {
                let raw = match reader.next_row() {
                    None => break,
                    Some(Ok(raw)) => raw,
                    Some(Err(e)) => {
                        read_error = Some(e.to_string());
                        break;
                    }
                };
                progress.counters.read.fetch_add(1, Ordering::Relaxed);
                let (row, item) = intake.plan_row(raw);
                if let Some(chunk) = chunker.push(row, item) {
                    progress.set_position(reader.progress().0);
                    progress.refresh();
                    if chunk_tx.blocking_send(chunk).is_err() {
                        return (read_error, reader.finish());
                    }
                }
            }
            if let Some(chunk) = chunker.finish() {
                let _ = chunk_tx.blocking_send(chunk);
            }
            progress.set_position(reader.progress().0);
            (read_error, reader.finish())
        })
    };

    // Emitter: writes finished chunks in input order. The window bounds how far ahead of the
    // oldest unfinished chunk the dispatcher may run, so memory stays bounded.
    let mut writer = ReportWriter::create_verified(&dir, &header, args.verify)?;
    let window = Arc::new(Semaphore::new(args.max_tasks * 4));
    let (done_tx, mut done_rx) =
        mpsc::unbounded_channel::<(Chunk, tokio::sync::OwnedSemaphorePermit)>();
    let unsettled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let emitter = {
        let dir = dir.clone();
        let progress = progress.clone();
        let journal = journal.clone();
        let abort = abort.clone();
        let unsettled = unsettled.clone();
        tokio::spawn(async move {
            let mut next = 0u64;
            let mut pending: BTreeMap<u64, (Chunk, tokio::sync::OwnedSemaphorePermit)> =
                BTreeMap::new();
            while let Some((chunk, permit)) = done_rx.recv().await {
                pending.insert(chunk.seq, (chunk, permit));
                while let Some((chunk, permit)) = pending.remove(&next) {
                    for (i, row) in chunk.rows.iter().enumerate() {
                        writer.write_verified(row, chunk.verified.get(&i).copied(), &dir)?;
                    }
                    // Only final outcomes close a chunk in the journal; `resume` finishes the rest.
                    if chunk.unsettled {
                        unsettled.fetch_add(chunk.item_rows.len() as u64, Ordering::Relaxed);
                    } else if !chunk.replayed {
                        let outcomes: Vec<(u64, &crate::engine::plan::Outcome)> =
                            chunk.rows.iter().map(|r| (r.raw.row, &r.outcome)).collect();
                        let range = (chunk.first_row(), chunk.last_row());
                        if let Err(e) = journal.done(chunk.seq, range, &outcomes) {
                            abort.local(format!("the run journal could not be written: {e}"));
                        }
                    }
                    let c = &writer.counts;
                    progress
                        .counters
                        .confirmed
                        .store(c.succeeded, Ordering::Relaxed);
                    progress.counters.failed.store(c.failed, Ordering::Relaxed);
                    progress.refresh();
                    drop(permit);
                    next += 1;
                }
            }
            writer.finish(&dir)
        })
    };

    // Dispatcher: one background job per chunk, at most `max_tasks` holding a task slot.
    let slots = Arc::new(Semaphore::new(args.max_tasks));
    let mut batches = 0u64;
    let tasks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut jobs = tokio::task::JoinSet::new();
    while let Some(mut chunk) = chunk_rx.recv().await {
        let permit = window
            .clone()
            .acquire_owned()
            .await
            .expect("window semaphore open");
        let record = recorded.get(&chunk.seq).cloned();
        if let Some(b) = &record
            && (b.first_row, b.last_row) != (chunk.first_row(), chunk.last_row())
        {
            abort.local(format!(
                "the input no longer gives chunk {} the rows the journal recorded (rows {}-{}, now {}-{}); nothing more is sent",
                chunk.seq,
                b.first_row,
                b.last_row,
                chunk.first_row(),
                chunk.last_row()
            ));
        }
        let action = journal::resume_action(record.as_ref());
        if action == ResumeAction::Replay {
            replay(&journal, &mut chunk, &abort);
            let _ = done_tx.send((chunk, permit));
            continue;
        }
        if chunk.items.is_empty() && action == ResumeAction::Send {
            let _ = done_tx.send((chunk, permit));
            continue;
        }
        batches += 1;
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("slot semaphore open");
        let stop = stop_reason(&interrupted, &abort);
        if let Some(reason) = stop {
            send::skip_items(&mut chunk, &reason);
            let _ = done_tx.send((chunk, permit));
            continue;
        }
        progress.counters.tasks.fetch_add(1, Ordering::Relaxed);
        progress
            .counters
            .sent
            .fetch_add(chunk.items.len() as u64, Ordering::Relaxed);
        progress.refresh();
        let ctx = ctx.clone();
        let done_tx = done_tx.clone();
        let abort = abort.clone();
        let tasks = tasks.clone();
        let progress = progress.clone();
        let verify = args.verify;
        jobs.spawn(async move {
            let r = match (action, &record) {
                (ResumeAction::Poll | ResumeAction::Resend, Some(b)) => {
                    send::resume(&ctx, &mut chunk, b).await
                }
                _ => send::process(&ctx, &mut chunk).await,
            };
            if verify {
                send::verify(&ctx, &mut chunk).await;
            }
            drop(slot);
            progress.counters.tasks.fetch_sub(1, Ordering::Relaxed);
            progress.refresh();
            if r.task_id.is_some() {
                tasks.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(e) = r.auth_error {
                abort.auth(e);
            }
            if let Some(e) = r.journal_error {
                abort.local(format!("the run journal could not be written: {e}"));
            }
            let _ = done_tx.send((chunk, permit));
        });
    }
    while let Some(joined) = jobs.join_next().await {
        if let Err(e) = joined {
            abort.local(format!(
                "a send job stopped unexpectedly ({e}); the outcome of its rows is unknown: \
                 `csmport resume {}` finishes them",
                dir.display()
            ));
        }
    }
    drop(done_tx);
    let (read_error, dialect) = reader
        .await
        .unwrap_or_else(|e| (Some(format!("reader stopped: {e}")), Dialect::default()));
    log.note(&format!(
        "input: {}",
        dialect.describe(read_rows(&progress))
    ));
    let counts = emitter
        .await
        .map_err(|e| Error::Usage(format!("report writer stopped: {e}")))??;
    progress.finish();
    if let Some(why) = unreported(read_rows(&progress), counts.rows, &dir) {
        abort.local(why);
    }

    let was_interrupted = interrupted.load(Ordering::Relaxed);
    let stopped = abort.get();
    let exit_code = if was_interrupted {
        EXIT_INTERRUPTED
    } else if let Some((code, _)) = &stopped {
        *code
    } else {
        rows_exit_code(read_error.is_some(), counts.failed)
    };
    if let Some(e) = &read_error {
        log.note(&format!("reading stopped early: {e}"));
    }
    let t = report::timing(started_at, started.elapsed(), counts.rows);
    let summary = Summary {
        kind: input.kind().as_str().to_string(),
        input: file_label,
        run_dir: dir.display().to_string(),
        target: format!("{} (cloud {})", target.base_url, target.cloud_id),
        started_at: t.started_at,
        finished_at: t.finished_at,
        rows_per_s: t.rows_per_s,
        counts,
        batches,
        tasks: tasks.load(Ordering::Relaxed),
        elapsed_s: t.elapsed_s,
        interrupted: was_interrupted,
        exit_code,
        unchanged: Some(ctx.unchanged.load(Ordering::Relaxed)),
        dialect: Some(dialect),
    };
    report::write_summary(&dir, &summary)?;
    log.note(&format!(
        "done: {} rows = {} succeeded + {} failed + {} skipped; exit {exit_code}",
        summary.counts.rows,
        summary.counts.succeeded,
        summary.counts.failed,
        summary.counts.skipped
    ));
    Ok(ImportResult {
        exit_code,
        summary,
        read_error,
        stopped: stopped.map(|(_, why)| why),
        unsettled: unsettled.load(Ordering::Relaxed),
        validated: None,
    })
}

/// A chunk the journal has every outcome of: those outcomes, nothing sent.
fn replay(journal: &Journal, chunk: &mut Chunk, abort: &Abort) {
    chunk.replayed = true;
    match journal.outcomes(chunk.first_row(), chunk.last_row()) {
        Ok(outcomes) => {
            for r in &mut chunk.rows {
                r.outcome = outcomes.get(&r.raw.row).cloned().unwrap_or_else(|| {
                    crate::engine::plan::Outcome::Failed {
                        stage: crate::engine::plan::Stage::Send,
                        field: String::new(),
                        error: "outcome unknown: the journal closed this row's chunk without its outcome; check the site".into(),
                    }
                });
            }
        }
        Err(e) => {
            abort.local(format!("the run journal could not be read: {e}"));
            send::skip_items(chunk, "not reported: the run journal could not be read");
        }
    }
}

/// The options a journal keeps: the import's own (no credentials: those are target options),
/// with paths made absolute so `resume` works from any folder, and the run folder fixed.
fn journaled_args(args: &ImportArgs, dir: &Path) -> Result<ImportArgs, Error> {
    let abs = |p: &Path| {
        std::path::absolute(p)
            .map_err(|e| Error::Usage(format!("{}: cannot be resolved: {e}", p.display())))
    };
    let mut a = args.clone();
    a.input.files = a
        .input
        .files
        .iter()
        .map(|f| abs(f))
        .collect::<Result<_, _>>()?;
    a.input.mapping = a.input.mapping.as_deref().map(abs).transpose()?;
    a.input.schema = a.input.schema.as_deref().map(abs).transpose()?;
    a.input.out = Some(abs(dir)?);
    a.input.plan = None;
    Ok(a)
}

/// The retry policy of an import's options.
pub fn policy(args: &ImportArgs) -> retry::Policy {
    let max_wait = Duration::from_secs(args.max_wait.max(1));
    let default = retry::Policy::default();
    retry::Policy {
        max_attempts: args.retries.saturating_add(1),
        max_hint: max_wait,
        cap: default.cap.min(max_wait),
        budget: args.retry_budget,
        ..default
    }
}

/// Every row read must reach the report with an outcome. If some did not (a bug: a send job
/// that panicked takes its chunk with it, and the chunks after it wait for it), the run must
/// not look complete: this says so, and the journal still has those rows open for `resume`.
fn unreported(read: u64, reported: u64, dir: &std::path::Path) -> Option<String> {
    (reported < read).then(|| {
        format!(
            "{} of the {read} rows read have no outcome in the report (an internal error); \
             `csmport resume {}` finishes them",
            read - reported,
            dir.display()
        )
    })
}

fn read_rows(p: &Progress) -> u64 {
    p.counters.read.load(Ordering::Relaxed)
}

fn stop_reason(interrupted: &AtomicBool, abort: &Abort) -> Option<String> {
    if interrupted.load(Ordering::Relaxed) {
        return Some("not sent: the run was interrupted before this row's batch was sent".into());
    }
    abort.get().map(|(code, why)| {
        if code == EXIT_AUTH_NETWORK {
            format!("not sent: the run stopped after an authentication error ({why})")
        } else {
            format!("not sent: the run stopped: {why}")
        }
    })
}

/// Why the run stops sending (the first reason wins), and the exit code it means.
#[derive(Default)]
struct Abort(Mutex<Option<(i32, String)>>);

impl Abort {
    fn set(&self, code: i32, why: String) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert((code, why));
    }

    /// The site refused our credentials.
    fn auth(&self, why: String) {
        self.set(EXIT_AUTH_NETWORK, why);
    }

    /// Something here went wrong (the journal, a changed input): exit 2.
    fn local(&self, why: String) {
        self.set(EXIT_USAGE, why);
    }

    fn get(&self) -> Option<(i32, String)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// First Ctrl-C: stop reading and sending, let submitted tasks finish, write reports (exit 4).
/// Second Ctrl-C: leave at once.
fn spawn_interrupt_watch(flag: Arc<AtomicBool>, notify: Arc<dyn Notify>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
            notify.note("interrupted: no new batches will be sent; waiting for submitted tasks to finish (Ctrl-C again to quit now)");
            eprintln!(
                "csmport: interrupted; finishing submitted batches and writing reports (Ctrl-C again to quit now)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                notify.note("interrupted again: exiting without waiting; outcomes of in-flight batches are unknown");
                eprintln!(
                    "csmport: interrupted again; exiting now. Rows of batches in flight have no outcome in the reports; see run.log."
                );
                std::process::exit(EXIT_INTERRUPTED);
            }
        }
    });
}

/// The run folder's `run.log`, continued by a resumed run.
fn append_log(dir: &Path) -> Result<Arc<RunLog>, Error> {
    let path = dir.join("run.log");
    RunLog::append(&path)
        .map(Arc::new)
        .map_err(|source| Error::Report(report::ReportError { path, source }))
}

/// The run folder's `run.log`.
pub fn open_log(dir: &Path) -> Result<Arc<RunLog>, Error> {
    let path = dir.join("run.log");
    RunLog::create(&path)
        .map(Arc::new)
        .map_err(|source| Error::Report(report::ReportError { path, source }))
}

/// `csmport-runs/<UTC time>-<kind>/`, or `--out`. Never reuses a folder of another run.
pub fn run_dir(out: Option<&Path>, kind: &str, at: jiff::Timestamp) -> Result<PathBuf, Error> {
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None => {
            let base = PathBuf::from("csmport-runs");
            let stamp = at.strftime("%Y%m%dT%H%M%SZ").to_string();
            let mut dir = base.join(format!("{stamp}-{kind}"));
            let mut n = 2;
            while dir.exists() {
                dir = base.join(format!("{stamp}-{kind}-{n}"));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).map_err(|source| {
        Error::Report(report::ReportError {
            path: dir.clone(),
            source,
        })
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_but_not_reported_stop_the_run_with_a_reason() {
        let dir = std::path::Path::new("runs/r1");
        assert_eq!(unreported(0, 0, dir), None);
        assert_eq!(unreported(1000, 1000, dir), None);
        assert_eq!(
            unreported(1000, 900, dir).as_deref(),
            Some(
                "100 of the 1000 rows read have no outcome in the report (an internal error); \
                 `csmport resume runs/r1` finishes them"
            )
        );
    }
}
