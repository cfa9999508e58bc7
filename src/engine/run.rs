//! One import run, for every kind the same: a reader thread reads, checks (the kind's row
//! checks and the whole-file duplicate check) and cuts chunks (`plan`); a dispatcher hands
//! each chunk to `send` (decide, journal, send, track, reconcile), at most a window of chunks
//! ahead of the oldest unfinished one so memory stays bounded; an emitter writes the reports in
//! input order and closes finished chunks in the journal. New runs and resumed ones (`resume`)
//! go through the same code. Called by `cmd`; uses the stages around it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

use crate::error::{EXIT_INTERRUPTED, EXIT_USAGE, Error, rows_exit_code};
use crate::kinds::{self, Description, Rules, Setup};
use crate::map::CellError;
use crate::options::ImportOptions;
use crate::read::{Background, Dialect, Source};
use crate::row::{Outcome, Row, Stage};
use crate::site::client::{Notify, Target};

use super::journal::{ChunkRecord, InputIdentity, Journal, RunMeta, sha256_of};
use super::keys::RunKeys;
use super::plan::{Chunk, Chunker};
use super::progress::{Progress, RunLog, Tee};
use super::report::{self, ReportWriter, Summary};
use super::reread::Again;
use super::send::{Engine, closed_outcomes};

/// What a run tells its caller besides the run folder.
pub struct RunResult {
    pub exit_code: i32,
    pub summary: Summary,
    pub read_error: Option<String>,
    /// Why the run stopped sending before the end (authentication, journal, changed input,
    /// back-pressure it could not wait out).
    pub stopped: Option<String>,
    /// A dry run: what `validate` reports.
    pub validated: Option<report::ValidateSummary>,
}

impl RunResult {
    /// Rows `resume` finishes: open ones, and with an interruption the ones not read.
    pub fn unfinished(&self) -> u64 {
        let c = &self.summary.counts;
        c.open + c.not_read.unwrap_or(0)
    }
}

/// A run being finished by `csmport resume`: its journal and the chunks it recorded.
pub struct Resumed {
    pub journal: Arc<Journal>,
    pub chunks: BTreeMap<u64, ChunkRecord>,
    /// The site the run wrote to (base URL, cloud id): a resume goes to that one only.
    pub site: (String, String),
    /// When the run first began (the journal's record).
    pub began: String,
}

impl Resumed {
    /// A run folder's journal, options and chunks, ready to go on: the options as the journal
    /// recorded them (writing into this folder, wherever it is now), and the input checked to
    /// be the very file the run began with.
    pub fn open(dir: &Path) -> Result<(ImportOptions, Resumed), Error> {
        let (journal, meta) = Journal::open(dir)?;
        let mut o = ImportOptions::from_journal(&meta.options).map_err(|e| {
            Error::Usage(format!(
                "{}: the run journal's import options cannot be read ({e}); resume it with the csmport that started it",
                dir.display()
            ))
        })?;
        o.out = Some(dir.to_path_buf());
        o.dry_run = false;
        check_input(dir, &journal, &meta)?;
        let chunks = journal.chunks()?;
        Ok((
            o,
            Resumed {
                journal: Arc::new(journal),
                chunks,
                site: (meta.base_url, meta.cloud_id),
                began: meta.started_at,
            },
        ))
    }

    /// Refuses a `target` other than the site the run wrote to.
    pub fn check_site(&self, dir: &Path, target: &Target) -> Result<(), Error> {
        let (base_url, cloud_id) = &self.site;
        if (target.base_url.as_str(), target.cloud_id.as_str())
            == (base_url.as_str(), cloud_id.as_str())
        {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "{}: the run wrote to {base_url} (cloud {cloud_id}), not {} (cloud {}); resume it against the same site",
            dir.display(),
            target.base_url,
            target.cloud_id
        )))
    }
}

/// The input must be the very file the run began with: the journal's chunks are row ranges of
/// it, and a batch resent under its key must be the batch first sent. A run stopped before
/// its hash was recorded is matched by size and modification time, and the hash recorded now.
fn check_input(dir: &Path, journal: &Journal, meta: &RunMeta) -> Result<(), Error> {
    use super::journal::InputCheck;
    let was = &meta.input;
    let now = InputIdentity::of(&was.path).map_err(|e| {
        Error::Usage(format!(
            "{}: the run's input {} cannot be read ({e}); resume needs that same file",
            dir.display(),
            was.path.display()
        ))
    })?;
    match was.check(&now) {
        InputCheck::Same => Ok(()),
        InputCheck::SameByStat => Ok(journal.record_input_sha256(&now.sha256)?),
        InputCheck::Changed(how) => Err(Error::Usage(format!(
            "{}: the input {} changed since the run began ({how}); resuming would send rows the journal does not describe. Put the original file back, or import the new one as a new run",
            dir.display(),
            was.path.display(),
        ))),
    }
}

/// Runs an import of `opts.file` as `opts.kind`, new or resumed.
pub async fn run(
    opts: &ImportOptions,
    target: &Target,
    resumed: Option<Resumed>,
) -> Result<RunResult, Error> {
    kinds::describe(
        opts.kind,
        opts.delete,
        Run {
            opts,
            target,
            resumed,
        },
    )
    .await
}

/// An import run, given its kind's description by `kinds::describe`.
struct Run<'a> {
    opts: &'a ImportOptions,
    target: &'a Target,
    resumed: Option<Resumed>,
}

impl<'a> kinds::WithDescription for Run<'a> {
    type Output =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<RunResult, Error>> + 'a>>;

    fn with<K: Description>(self) -> Self::Output {
        Box::pin(run_kind::<K>(self.opts, self.target, self.resumed))
    }
}

/// What the reader thread ends with.
struct ReadEnd {
    error: Option<String>,
    dialect: Dialect,
    /// Rows left unread after an interruption.
    not_read: u64,
    /// A few values of the columns not imported.
    examples: Option<crate::map::Examples>,
    /// Cells rows were imported without (warnings.csv).
    warnings: u64,
}

async fn run_kind<K: Description>(
    opts: &ImportOptions,
    target: &Target,
    resumed: Option<Resumed>,
) -> Result<RunResult, Error> {
    opts.check()?;
    let kind_name = opts.kind.as_str();
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let progress = Arc::new(Progress::new(0));
    Progress::tick(&progress);
    progress
        .counters
        .slots
        .store(opts.max_tasks as u64, Ordering::Relaxed);
    // The log does not exist until the run folder does; notes before that go to the terminal.
    let early: Arc<dyn Notify> = progress.clone();
    let setup = opts.site(target, early);
    let file = opts.file.as_path();
    crate::read::check_rows(file, &opts.input.read_options(), opts.input.rows)
        .map_err(Error::Usage)?;
    let source = Source::open(file, &opts.input.read_options())?;
    let header = source.header().to_vec();
    let label = file.display().to_string();
    progress.set_length(source.estimated_rows());
    let kind = K::open(Setup {
        site: &setup,
        opts: opts.for_kind(),
        header: &header,
        label: &label,
    })
    .await?;
    let folder = if opts.dry_run {
        format!("validate-{kind_name}")
    } else {
        kind_name.to_string()
    };
    let dir = run_dir(opts.out.as_deref(), &folder, started_at)?;
    let resuming = resumed.is_some();
    let began = resumed.as_ref().map(|r| r.began.clone());
    if !resuming && opts.out.is_some() {
        // A new run writes into a folder of its own: files already there (a planted link to
        // somewhere else among them) are not written through. A delete's backup stage put its
        // files there first.
        let ours: &[&str] = if opts.delete {
            super::backup::FILES
        } else {
            &[]
        };
        refuse_used(&dir, ours)?;
    }
    let mut began_size = 0;
    let (journal, recorded) = match resumed {
        Some(r) => (Some(r.journal), r.chunks),
        None if opts.dry_run => (None, BTreeMap::new()),
        None => {
            let meta = RunMeta {
                options: serde_json::to_string(&opts.journaled(&dir)?).expect("serializes"),
                input: InputIdentity::stat(file).map_err(|e| {
                    Error::Usage(format!("{}: cannot be read: {e}", file.display()))
                })?,
                dialect: serde_json::to_string(&source.dialect()).expect("serializes"),
                base_url: target.base_url.clone(),
                cloud_id: target.cloud_id.clone(),
                started_at: started_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            };
            began_size = meta.input.size;
            let journal = Journal::create(&dir, &meta)?;
            keep_mapping(&dir, opts)?;
            (Some(Arc::new(journal)), BTreeMap::new())
        }
    };
    let log = if resuming {
        append_log(&dir)?
    } else {
        open_log(&dir)?
    };
    // The input's hash (what `resume` checks) is read beside the run, not before it: on a
    // large file it would otherwise hold back the first request by the time a pass takes.
    let hashing = match (&journal, resuming) {
        (Some(j), false) => {
            let (j, log, file) = (j.clone(), log.clone(), file.to_path_buf());
            Some(tokio::task::spawn_blocking(move || {
                record_input_hash(&j, &file, began_size, &log)
            }))
        }
        _ => None,
    };
    if resuming {
        let open = recorded.values().filter(|c| !c.done).count();
        log.note(&format!(
            "resumed: the journal has {} chunks, {open} of them unfinished; finished chunks are reported from the journal, unfinished ones polled or sent again under their recorded keys",
            recorded.len()
        ));
    }
    let what = match (opts.dry_run, opts.delete) {
        (true, _) => "dry run: decide",
        (false, true) => "delete",
        (false, false) => "import",
    };
    let from = if opts.delete { "named in" } else { "from" };
    log.note(&format!(
        "{what} {kind_name} {from} {label} on {} (cloud {}); batch size {}, rate {}/s, max tasks {}",
        target.base_url, target.cloud_id, opts.batch_size, opts.rate, opts.max_tasks
    ));
    let opened = kind.opened();
    for note in opts.notes.iter().chain(&opened.notes) {
        log.note(note);
    }
    let ignored_columns: Vec<String> = opened
        .ignored_columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let columns = column_uses(&opened, &header);
    if let Some(note) = crate::map::columns_note(&columns) {
        log.note(&note);
    }
    let ignored_note = crate::map::ignored_note(&opened.ignored_columns);
    if let Some(note) = &ignored_note {
        log.note(note);
        if !resuming && !opts.dry_run {
            progress.say(&format!("csmport: note: {label}: {note}"));
        }
    }
    let alert: Arc<dyn Notify> = Arc::new(Tee(vec![log.clone(), progress.clone()]));
    let site = opts.site(target, alert.clone());
    let estimated = source.estimated_rows();
    let engine = Arc::new(Engine::new(
        kind,
        site,
        ImportOptions {
            out: Some(dir.clone()),
            ..opts.clone()
        },
        journal.clone(),
        log.clone(),
        alert.clone(),
        progress.clone(),
    ));
    spawn_interrupt_watch(engine.clone());

    // Reader: a blocking thread that reads, checks and cuts chunks (where the journal of a
    // resumed run says they end).
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<Chunk<K::Item>>(2);
    let boundaries: HashMap<u64, u64> = recorded.iter().map(|(s, c)| (*s, c.last_row)).collect();
    let reader = {
        let engine = engine.clone();
        let file = file.to_path_buf();
        let header = header.clone();
        let accept_changed = opts.input.accept_changed_cells;
        let examples = crate::map::Examples::new(&columns);
        let warnings = report::WarningsWriter::new(&dir, &header);
        tokio::task::spawn_blocking(move || {
            let again = Again::prepare(&file, &header, &engine.kind, accept_changed);
            read_rows(
                &engine,
                source,
                again,
                estimated,
                boundaries,
                chunk_tx,
                (examples, warnings),
            )
        })
    };

    // Emitter: writes finished chunks in input order. The window bounds how far ahead of the
    // oldest unwritten chunk the dispatcher may run, so memory stays bounded; within it, at
    // most `busy` chunks are being sent at once.
    let mut writer = if opts.dry_run {
        ReportWriter::with_successes(&dir, &header, false)?
    } else {
        ReportWriter::create_verified(&dir, &header, opts.verify)?
    };
    writer.reads(file);
    let window = Arc::new(Semaphore::new(opts.max_tasks * WINDOW_PER_SLOT));
    let busy = Arc::new(Semaphore::new(opts.max_tasks * BUSY_PER_SLOT));
    let (done_tx, done_rx) =
        mpsc::unbounded_channel::<(Chunk<K::Item>, tokio::sync::OwnedSemaphorePermit)>();
    let emitter = tokio::spawn(emit(engine.clone(), writer, dir.clone(), done_rx));

    // Dispatcher: one background job per chunk.
    let mut jobs = tokio::task::JoinSet::new();
    while let Some(chunk) = chunk_rx.recv().await {
        let permit = window
            .clone()
            .acquire_owned()
            .await
            .expect("window semaphore open");
        let sending = busy
            .clone()
            .acquire_owned()
            .await
            .expect("busy semaphore open");
        let record = recorded.get(&chunk.seq).cloned();
        match &record {
            Some(c) if (c.first_row, c.last_row) != (chunk.first_row(), chunk.last_row()) => {
                engine.stop.set(
                    EXIT_USAGE,
                    format!(
                        "the input no longer gives chunk {} the rows the journal recorded (rows {}-{}, now {}-{}); nothing more is sent",
                        chunk.seq,
                        c.first_row,
                        c.last_row,
                        chunk.first_row(),
                        chunk.last_row()
                    ),
                );
            }
            Some(_) => {}
            None => {
                if let Some(j) = &journal
                    && let Err(e) = j.chunk(chunk.seq, chunk.first_row(), chunk.last_row())
                {
                    engine.stop.set(
                        EXIT_USAGE,
                        format!("the run journal could not be written: {e}"),
                    );
                }
            }
        }
        // A finished job's task stays allocated until it is joined: reap as we go, or memory
        // grows with every chunk of the file.
        while let Some(joined) = jobs.try_join_next() {
            job_ended(&engine, joined, &dir);
        }
        let engine = engine.clone();
        let done_tx = done_tx.clone();
        jobs.spawn(async move {
            let chunk = engine.process(chunk, record.as_ref()).await;
            drop(sending);
            let _ = done_tx.send((chunk, permit));
        });
    }
    while let Some(joined) = jobs.join_next().await {
        job_ended(&engine, joined, &dir);
    }
    drop(done_tx);
    let mut end = reader.await.unwrap_or_else(|e| ReadEnd {
        error: Some(format!("reader stopped: {e}")),
        dialect: Dialect::default(),
        not_read: 0,
        examples: None,
        warnings: 0,
    });
    let mut columns = columns;
    if let Some(x) = end.examples.take() {
        x.fill(&mut columns);
    }
    if let Some(h) = hashing {
        // A finished run always has its hash: `resume` then compares bytes, not dates.
        let _ = h.await;
    }
    let read = progress.counters.read.load(Ordering::Relaxed);
    log.note(&format!("input: {}", end.dialect.describe(read)));
    let mut counts = emitter
        .await
        .map_err(|e| Error::Usage(format!("report writer stopped: {e}")))??;
    progress.finish();
    if let Some(why) = unreported(read, counts.rows, &dir) {
        engine.stop.set(EXIT_USAGE, why);
    }
    let interrupted = engine.stop.interrupted();
    if interrupted {
        counts.not_read = Some(end.not_read);
        counts.rows += end.not_read;
    }
    let stopped = engine.stop.reason();
    let exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else if let Some((code, _)) = &stopped {
        *code
    } else if end.error.is_some() {
        rows_exit_code(true, counts.failed)
    } else if counts.open > 0 {
        EXIT_INTERRUPTED
    } else {
        rows_exit_code(false, counts.failed)
    };
    if let Some(e) = &end.error {
        log.note(&format!("reading stopped early: {e}"));
    }
    let unchanged = engine.stats.unchanged.load(Ordering::Relaxed);
    let t = report::timing(started_at, started.elapsed(), counts.rows);
    let mut dialect = end.dialect;
    dialect.notes.extend(opts.notes.iter().cloned());
    if opts.dry_run {
        dialect.notes.extend(ignored_note);
        match unchanged {
            0 => {}
            1 => dialect.notes.push(
                "1 row is on the site as in the file already: importing sends nothing for it"
                    .into(),
            ),
            n => dialect.notes.push(format!(
                "{n} rows are on the site as in the file already: importing sends nothing for them"
            )),
        }
    }
    let did = engine.kind.did().await;
    let backup = did.backup;
    // The whole run's figures: this attempt's, and those of the attempts before it.
    let mut attempts = match &began {
        Some(b) if !opts.dry_run => report::earlier_attempts(&dir, b),
        _ => Vec::new(),
    };
    attempts.push(report::Attempt {
        started_at: t.started_at.clone(),
        finished_at: Some(t.finished_at.clone()),
        elapsed_s: Some(t.elapsed_s),
        batches: engine.stats.requests.load(Ordering::Relaxed),
        tasks: engine.stats.tasks.load(Ordering::Relaxed),
        polls: engine.stats.polls.load(Ordering::Relaxed),
        polled: engine.stats.polled.load(Ordering::Relaxed),
        exit_code: Some(exit_code),
        interrupted,
    });
    let whole = report::whole_run(&attempts, &counts, journal_counts(&engine));
    let summary = Summary {
        attempts: if attempts.len() > 1 {
            attempts
        } else {
            Vec::new()
        },
        kind: kind_name.to_string(),
        operation: opts.delete.then(|| "delete".to_string()),
        input: label.clone(),
        run_dir: dir.display().to_string(),
        target: format!("{} (cloud {})", target.base_url, target.cloud_id),
        started_at: whole.started_at,
        finished_at: t.finished_at,
        rows_per_s: whole.rows_per_s,
        counts: counts.clone(),
        batches: whole.batches,
        tasks: whole.tasks,
        polls_per_task: whole.polls_per_task,
        elapsed_s: whole.elapsed_s,
        interrupted,
        exit_code,
        unchanged: Some(unchanged),
        dialect: Some(dialect.clone()),
        ignored_columns: ignored_columns.clone(),
        columns: columns.clone(),
        warnings: end.warnings,
        created_organizations: did.created_organizations,
        backup: backup.as_ref().map(|b| b.0.clone()),
        backup_rows: backup.as_ref().map(|b| b.1),
        changed_definitions: if opts.dry_run {
            Vec::new()
        } else {
            did.changes.clone()
        },
        row_range: opts.input.rows_label(),
    };
    log.note(&format!(
        "done: {} = {} succeeded + {} failed + {} skipped ({} open{}); exit {exit_code}",
        report::count(counts.rows, "row"),
        counts.succeeded,
        counts.failed,
        counts.skipped,
        counts.open,
        counts
            .not_read
            .map(|n| format!(", {n} not read"))
            .unwrap_or_default()
    ));
    let validated = if opts.dry_run {
        let v = report::ValidateSummary {
            kind: kind_name.into(),
            input: label,
            run_dir: dir.display().to_string(),
            dialect,
            counts: counts.clone(),
            valid: counts.succeeded,
            elapsed_s: t.elapsed_s,
            rows_per_s: t.rows_per_s,
            read_error: end.error.clone(),
            ignored_columns,
            columns,
            warnings: end.warnings,
            row_range: opts.input.rows_label(),
            would_change_definitions: did.changes,
            exit_code,
        };
        report::write_validate_summary(&dir, &v)?;
        Some(v)
    } else {
        report::write_summary(&dir, &summary)?;
        None
    };
    // The workbook and the page for people are views of the reports: one that cannot be
    // written is said, and the run's outcome stands.
    match report::write_failures_xlsx(&dir) {
        Ok(None) => {}
        Ok(Some(why)) => log.note(&why),
        Err(e) => log.note(&format!("{}: {e}", report::FAILURES_XLSX)),
    }
    if let Err(e) = super::html::write(&dir) {
        log.note(&format!("report.html: {e}"));
    }
    Ok(RunResult {
        exit_code,
        summary,
        read_error: end.error,
        stopped: stopped.map(|(_, why)| why),
        validated,
    })
}

/// Chunks being sent (deciding, waiting for a slot, or followed to their task's end) per task
/// slot: two keep the slots busy in `bench/slots.sh` (one chunk waits ready for each slot
/// while the others run).
const BUSY_PER_SLOT: usize = 2;
/// Chunks in flight per task slot: those being sent, and those done and waiting for an earlier
/// one to be written. Each holds its rows, so this sets most of an import's peak memory; it
/// is this many because one slow task holds every later chunk back from the reports while
/// the other slots go on: a task ten times as long as the rest (up to 7.5 s among tasks of
/// 0.5-0.75 s) holds back 4 slots × 11 chunks and those being sent. With 8 a slot, every
/// slot stood idle for up to a second at the end of such a task in `bench/slots.sh`.
const WINDOW_PER_SLOT: usize = 16;

/// A send job that panicked leaves its rows' outcome unknown: the run stops and says so.
fn job_ended<K: Description>(
    engine: &Engine<K>,
    joined: Result<(), tokio::task::JoinError>,
    dir: &Path,
) {
    if let Err(e) = joined {
        engine.stop.set(
            EXIT_USAGE,
            format!(
                "a send job stopped unexpectedly ({e}); the outcome of its rows is unknown: \
                 `csmport resume {}` finishes them",
                dir.display()
            ),
        );
    }
}

/// Reads the whole input and records its SHA-256 in the journal; a file that changed size
/// since the run began is said in the log (a resume will refuse it).
fn record_input_hash(journal: &Journal, file: &Path, began: u64, log: &RunLog) {
    match sha256_of(file) {
        Ok((size, sha)) => {
            if began != size {
                log.note(&format!(
                    "{}: the file changed while the run read it ({began} bytes at the start, {size} now); `resume` will refuse it",
                    file.display(),
                ));
            }
            if let Err(e) = journal.record_input_sha256(&sha) {
                log.note(&format!("the input's hash was not recorded ({e}); `resume` will compare its size and modification time"));
            }
        }
        Err(e) => log.note(&format!(
            "{}: cannot be read for its hash ({e}); `resume` will compare its size and modification time",
            file.display()
        )),
    }
}

/// What became of each input column: the kind's account, or (for kinds whose columns are
/// all their own) every column imported as itself, those `--ignore-unknown-columns` left out
/// and report columns aside.
fn column_uses(opened: &crate::kinds::Opened, header: &[String]) -> Vec<crate::map::ColumnUse> {
    use crate::map::ColumnUse;
    if !opened.columns.is_empty() {
        return opened.columns.clone();
    }
    let ignored = &opened.ignored_columns;
    header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if ignored.iter().any(|u| u.index == i) {
                ColumnUse::not_imported(name, crate::map::IGNORED_UNKNOWN)
            } else {
                ColumnUse::by_header(name).unwrap_or_else(|| ColumnUse::imported(name, name.trim()))
            }
        })
        .collect()
}

/// The reader thread: reads rows, closes those a local check settles (read problems, blank
/// rows, invalid cells, duplicates) and cuts the rest into chunks. After an interruption it
/// only counts the rows it does not read.
fn read_rows<K: Description>(
    engine: &Engine<K>,
    source: Source,
    again: Option<Again>,
    estimated: u64,
    boundaries: HashMap<u64, u64>,
    chunks: mpsc::Sender<Chunk<K::Item>>,
    (mut examples, mut warnings): (crate::map::Examples, report::WarningsWriter),
) -> ReadEnd {
    let kind = &engine.kind;
    let progress = &engine.progress;
    let mut chunker =
        Chunker::new(kind.chunk_weight(engine.opts.batch_size)).with_boundaries(boundaries);
    let mut seen = RunKeys::new(estimated);
    let mut reader = Background::spawn(source).with_rows(engine.opts.input.rows);
    let mut error = None;
    let mut not_read = 0u64;
    let send = |c: Chunk<K::Item>| chunks.blocking_send(c).is_ok();
    loop {
        let raw = match reader.next_row() {
            None => break,
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
        };
        if engine.stop.interrupted() {
            not_read += 1;
            continue;
        }
        progress.counters.read.fetch_add(1, Ordering::Relaxed);
        examples.see(&raw.cells);
        let mut row = Row::new(raw);
        let mut item = None;
        let unchanged = again.as_ref().and_then(|a| a.outcome(kind, &row.raw));
        if let Some(problem) = &row.raw.problem {
            let problem = problem.clone();
            row.close(Outcome::failed(Stage::Read, "", problem));
        } else if let Some(outcome) = unchanged {
            row.close(outcome);
        } else if row.raw.is_blank() {
            row.close(Outcome::Skipped {
                reason: "blank row".into(),
            });
        } else {
            match kind.rules(&row.raw) {
                Rules::Skip(reason) => row.close(Outcome::Skipped { reason }),
                Rules::Keep(left_out) => match kind.check(&row.raw) {
                    Err(errors) => row.close(cell_errors(errors)),
                    Ok(it) => {
                        let mut dup = None;
                        // A report's row counts by its number in the file it came from.
                        let number = again
                            .as_ref()
                            .and_then(|a| a.origin_row(&row.raw))
                            .unwrap_or(row.raw.row);
                        for id in kind.identity(&it) {
                            match seen.check(&id.key, number) {
                                Ok(None) => {}
                                Ok(Some(first)) => {
                                    dup = Some((id, first));
                                    break;
                                }
                                Err(e) => {
                                    error = Some(format!(
                                        "the duplicate-key check's temporary file failed at row {} ({e}); rows from there on were not sent",
                                        row.raw.row
                                    ));
                                    break;
                                }
                            }
                        }
                        if error.is_some() {
                            break;
                        }
                        match dup {
                            Some((id, first)) => row.close(Outcome::failed(
                                Stage::Validate,
                                id.field,
                                match again.as_ref().and_then(Again::source) {
                                    Some(file) => id
                                        .message
                                        .replace("of this file", &format!("of {file}"))
                                        .replace("{first}", &first.to_string()),
                                    None => id.message.replace("{first}", &first.to_string()),
                                },
                            )),
                            None => {
                                for (field, value, why) in &left_out {
                                    if let Err(e) = warnings.write(&row.raw, field, value, why) {
                                        // This row goes on (its warning is the one lost); reading
                                        // stops after it.
                                        error = Some(format!(
                                            "{e}; rows after {} were not sent",
                                            row.raw.row
                                        ));
                                    }
                                }
                                let w = kind.weight(&it);
                                item = Some((it, w));
                            }
                        }
                    }
                },
            }
        }
        for chunk in chunker.push(row, item) {
            progress.refresh();
            if !send(chunk) {
                return ReadEnd {
                    warnings: warnings.finish().unwrap_or(0),
                    error,
                    dialect: reader.finish(),
                    not_read,
                    examples: Some(examples),
                };
            }
        }
        if error.is_some() {
            break;
        }
    }
    if let Some(chunk) = chunker.finish() {
        send(chunk);
    }
    progress.rows_known(
        progress.counters.read.load(Ordering::Relaxed),
        error.is_none() && !engine.stop.interrupted(),
    );
    let warned = warnings.finish();
    if let Err(e) = &warned {
        error.get_or_insert_with(|| e.to_string());
    }
    ReadEnd {
        warnings: warned.unwrap_or(0),
        error,
        dialect: reader.finish(),
        not_read,
        examples: Some(examples),
    }
}

/// Writes finished chunks in input order; a chunk all of whose rows are closed is closed in
/// the journal, the others stay open for `resume`.
async fn emit<K: Description>(
    engine: Arc<Engine<K>>,
    mut writer: ReportWriter,
    dir: PathBuf,
    mut done: mpsc::UnboundedReceiver<(Chunk<K::Item>, tokio::sync::OwnedSemaphorePermit)>,
) -> Result<report::Counts, Error> {
    let mut next = 0u64;
    let mut pending: BTreeMap<u64, (Chunk<K::Item>, tokio::sync::OwnedSemaphorePermit)> =
        BTreeMap::new();
    while let Some((chunk, permit)) = done.recv().await {
        pending.insert(chunk.seq, (chunk, permit));
        while let Some((chunk, permit)) = pending.remove(&next) {
            for (i, row) in chunk.rows.iter().enumerate() {
                if engine.opts.dry_run {
                    if row.state().succeeded() {
                        writer.count_success();
                    } else {
                        writer.write(row, &dir)?;
                    }
                } else {
                    writer.write_verified(row, chunk.verified.get(&i).copied(), &dir)?;
                }
            }
            if chunk.replayed {
                engine
                    .progress
                    .counters
                    .replayed
                    .fetch_add(chunk.rows.len() as u64, Ordering::Relaxed);
            }
            if !chunk.replayed
                && let Some(j) = &engine.journal
            {
                let outcomes = closed_outcomes(&chunk.rows);
                let recorded = if chunk.open_rows() == 0 {
                    j.done(chunk.seq, (chunk.first_row(), chunk.last_row()), &outcomes)
                } else {
                    j.closed(chunk.seq, &outcomes)
                };
                if let Err(e) = recorded {
                    engine.stop.set(
                        EXIT_USAGE,
                        format!("the run journal could not be written: {e}"),
                    );
                }
            }
            let c = &writer.counts;
            let p = &engine.progress.counters;
            p.failed.store(c.failed, Ordering::Relaxed);
            // Final outcomes only: a row still open is not done.
            engine
                .progress
                .set_done(c.succeeded + c.failed + c.skipped.saturating_sub(c.open));
            engine.progress.refresh();
            drop(permit);
            next += 1;
        }
    }
    Ok(writer.finish(&dir)?)
}

fn cell_errors(errors: Vec<CellError>) -> Outcome {
    Outcome::failed(
        Stage::Validate,
        errors
            .iter()
            .map(|e| e.field.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join(" | "),
    )
}

/// Every row read must reach the report with an outcome. If some did not (a bug: a send job
/// that panicked takes its chunk with it, and the chunks after it wait for it), the run must
/// not look complete: this says so, and the journal still has those rows open for `resume`.
fn unreported(read: u64, reported: u64, dir: &Path) -> Option<String> {
    (reported < read).then(|| {
        format!(
            "{} of the {read} rows read have no outcome in the report (an internal error); \
             `csmport resume {}` finishes them",
            read - reported,
            dir.display()
        )
    })
}

/// First Ctrl-C: stop reading and sending, let submitted tasks finish, write reports (exit 4).
/// Second Ctrl-C: leave at once (`interrupt` prints the one message of each).
fn spawn_interrupt_watch<K: Description>(engine: Arc<Engine<K>>) {
    let engine = Arc::downgrade(&engine);
    super::interrupt::on_signal(move |signal| {
        let Some(engine) = engine.upgrade() else {
            return;
        };
        match signal {
            super::interrupt::Signal::First => {
                engine.stop.interrupt();
                engine.log.note("interrupted: no new batches will be sent; waiting for submitted tasks to finish (Ctrl-C again to quit now)");
            }
            super::interrupt::Signal::Second => {
                engine.log.note("interrupted again: exiting without waiting; outcomes of in-flight batches are unknown");
            }
        }
    });
}

/// What the run's journal says was sent over every attempt: (batches, tasks).
fn journal_counts<K: Description>(engine: &Engine<K>) -> Option<(u64, u64)> {
    engine.journal.as_ref()?.sent_counts().ok()
}

pub const LOG_FILE: &str = "run.log";

/// The run's copy of its mapping: `retry` of its report reads the rows as the run did, even
/// after the mapping file was edited or moved.
pub const MAPPING_FILE: &str = "mapping.toml";

fn keep_mapping(dir: &Path, opts: &ImportOptions) -> Result<(), Error> {
    let Some(mapping) = &opts.input.mapping else {
        return Ok(());
    };
    let path = dir.join(MAPPING_FILE);
    let text = std::fs::read(mapping)
        .map_err(|e| Error::Usage(format!("--mapping {}: cannot read: {e}", mapping.display())))?;
    crate::fsx::write_private(&path, &text)
        .map_err(|source| Error::Report(report::ReportError { path, source }))
}

/// The run folder's `run.log`, continued by a resumed run.
fn append_log(dir: &Path) -> Result<Arc<RunLog>, Error> {
    let path = dir.join(LOG_FILE);
    RunLog::append(&path)
        .map(Arc::new)
        .map_err(|source| Error::Report(report::ReportError { path, source }))
}

/// The run folder's `run.log`.
pub fn open_log(dir: &Path) -> Result<Arc<RunLog>, Error> {
    let path = dir.join(LOG_FILE);
    RunLog::create(&path)
        .map(Arc::new)
        .map_err(|source| Error::Report(report::ReportError { path, source }))
}

/// `csmport-runs/<UTC time>-<kind>/`, or `--out`. Never reuses a folder of another run.
/// `--out` for a new run: a folder that holds anything but `ours` is refused (exit 2), so no
/// report is written through a link or over a file csmport did not make.
pub fn refuse_used(dir: &Path, ours: &[&str]) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| {
        Error::Report(report::ReportError {
            path: dir.to_path_buf(),
            source,
        })
    })?;
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // A run's folder is refused by its journal, which names `resume`.
    if names.iter().any(|n| n == "journal.sqlite") {
        return Ok(());
    }
    let mut foreign: Vec<String> = names
        .into_iter()
        .filter(|n| !ours.contains(&n.as_str()))
        // What a kill while the journal was being made leaves behind is csmport's own.
        // (SQLite's side files of it among them).
        .filter(|n| !n.starts_with("journal.sqlite.new"))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    let shown: Vec<String> = foreign.iter().take(5).cloned().collect();
    Err(Error::Usage(format!(
        "--out {}: the folder is not empty ({}{}); a run writes into a new or empty folder (`csmport resume` continues a run in its own)",
        dir.display(),
        shown.join(", "),
        if foreign.len() > 5 {
            format!(" and {} more", foreign.len() - 5)
        } else {
            String::new()
        }
    )))
}

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
    crate::fsx::private_dir(&dir).map_err(|source| {
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
