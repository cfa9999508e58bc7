//! What a run folder says about its run, read from its journal and reports only (never the
//! site): the kind and input (and whether the input changed since), rows by outcome, rows still
//! open, the tasks and their last known states, what `resume` would do next. Beside the reports
//! that write the folder (`report`, `journal`); `cmd::status` prints it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::journal::{
    BatchView, InputCheck, InputIdentity, JOURNAL_FILE, Journal, ResumeAction, RowTally,
};
use super::report::{FAILURES_FILE, SUCCESSES_FILE, SUMMARY_FILE, count};
use super::run::LOG_FILE;
use crate::error::Error;

/// The run folders under `base` (a plan's counts as one), oldest first, each with when it
/// began; folders that are not runs, and symbolic links, are left out.
pub fn runs(base: &Path) -> std::io::Result<Vec<(PathBuf, Option<jiff::Timestamp>)>> {
    let mut runs: Vec<(PathBuf, Option<jiff::Timestamp>)> = std::fs::read_dir(base)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| is_run(p) || !plan_steps(p).is_empty())
        .map(|p| (started(&p), p))
        .map(|(t, p)| (p, t))
        .collect();
    // By when each began (to the millisecond): two runs begun in the same second have names
    // that sort by kind, not by time.
    runs.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(runs)
}

/// The newest run folder under `base` (names start with the UTC time they were made at).
pub fn latest_run(base: &Path) -> Result<PathBuf, Error> {
    let mut runs: Vec<PathBuf> = runs(base)
        .map_err(|e| {
            Error::Usage(format!(
                "{}: no runs to show ({e}); give a run folder: `csmport status RUN_DIR`",
                base.display()
            ))
        })?
        .into_iter()
        .map(|r| r.0)
        .collect();
    runs.pop().ok_or_else(|| {
        Error::Usage(format!(
            "{}: holds no run folder; give one: `csmport status RUN_DIR`",
            base.display()
        ))
    })
}

/// When the run in `dir` began, as its `run.log` says (or a plan's first step's); the
/// summary's time (to the second) when there is no log.
fn started(dir: &Path) -> Option<jiff::Timestamp> {
    let first_line = |d: &Path| -> Option<jiff::Timestamp> {
        let text = std::fs::read(d.join(LOG_FILE)).ok()?;
        let line = text.split(|b| *b == b'\n').next()?;
        let stamp = std::str::from_utf8(line).ok()?.split(' ').next()?;
        stamp.parse::<jiff::Timestamp>().ok()
    };
    if let Some(t) = first_line(dir) {
        return Some(t);
    }
    if let Some(t) = plan_steps(dir).iter().filter_map(|s| first_line(s)).min() {
        return Some(t);
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(SUMMARY_FILE)).ok()?).ok()?;
    summary["started_at"]
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
}

fn is_run(dir: &Path) -> bool {
    dir.join(JOURNAL_FILE).is_file() || dir.join(SUMMARY_FILE).is_file()
}

/// The step folders of a plan's run folder, in order (none for a run folder of its own).
pub fn plan_steps(dir: &Path) -> Vec<PathBuf> {
    if let Ok(Some(steps)) = super::steps::recorded(dir) {
        return steps
            .into_iter()
            .map(|s| s.dir)
            .filter(|d| is_run(d))
            .collect();
    }
    if is_run(dir) {
        return Vec::new();
    }
    let mut steps: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && is_run(p))
        .collect();
    steps.sort();
    steps
}

/// `status --json`: the run's state.
#[derive(Debug, Serialize)]
pub struct Status {
    pub run_dir: String,
    pub kind: String,
    pub input: String,
    /// `unchanged`, `changed`, `unreadable`, or `unknown` (a validation's folder keeps no
    /// identity of its input).
    pub input_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_change: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub rows: Rows,
    pub tasks: Tasks,
    /// The end of the last run in this folder (summary.json), when one ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    pub resume: Resume,
    pub reports: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Rows {
    pub succeeded: u64,
    pub failed: u64,
    pub failed_by_stage: BTreeMap<String, u64>,
    pub skipped: u64,
    /// Rows read and planned whose outcome is not known yet.
    pub open: u64,
    /// Rows read and planned so far (up to this row of the input).
    pub planned: u64,
    pub chunks: u64,
    pub chunks_done: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Tasks {
    pub submitted: u64,
    /// Batches by state (`planned`, `submitted`, `done`, `split`, `abandoned`).
    pub batches_by_state: BTreeMap<String, u64>,
    /// Tasks whose end the journal has not recorded.
    pub live: Vec<LiveTask>,
}

#[derive(Debug, Serialize)]
pub struct LiveTask {
    pub task_id: String,
    pub rows: u64,
    pub first_row: u64,
    pub last_row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_known: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Ended {
    pub finished_at: String,
    pub exit_code: i64,
    pub interrupted: bool,
    pub rows: u64,
    pub not_read: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Resume {
    /// Tasks to poll (never sent again).
    pub poll: u64,
    /// Batches to send again under their recorded key.
    pub resend: u64,
    /// Batches of calls whose answers were lost: their rows are decided again.
    pub redecide: u64,
    /// Unfinished chunks with no live batch: their open rows are decided and sent as new.
    pub chunks_to_send: u64,
    /// The input row resume reads on from, when the run did not read it to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_from_row: Option<u64>,
    /// False when resume would refuse (a changed input, a validation's folder).
    pub possible: bool,
    pub next: String,
}

pub fn status_of(dir: &Path) -> Result<Status, Error> {
    let summary = read_summary(dir);
    let reports = [
        FAILURES_FILE,
        SUCCESSES_FILE,
        SUMMARY_FILE,
        crate::engine::html::HTML_FILE,
        LOG_FILE,
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.is_file())
    .map(|p| p.display().to_string())
    .collect();
    let ended = summary.as_ref().and_then(ended_of);
    if !dir.join(JOURNAL_FILE).is_file() {
        return validation_status(dir, summary, ended, reports);
    }
    let (journal, meta) = Journal::open(dir)?;
    let opts = crate::options::ImportOptions::from_journal(&meta.options).ok();
    let kind = opts
        .as_ref()
        .map(|o| o.kind.as_str().to_string())
        .or_else(|| text_of(&summary, "kind"))
        .unwrap_or_default();
    let (input_state, input_change) = input_state(&meta.input);
    let tally = journal.tally()?;
    let batches = journal.batch_views()?;
    let rows = rows_of(&tally);
    let tasks = tasks_of(&batches);
    let resume = resume_of(&tally, &batches, ended.as_ref(), input_state == "unchanged");
    Ok(Status {
        run_dir: dir.display().to_string(),
        kind,
        input: meta.input.path.display().to_string(),
        input_state,
        input_change,
        target: Some(format!("{} (cloud {})", meta.base_url, meta.cloud_id)),
        started_at: Some(meta.started_at),
        rows,
        tasks,
        ended,
        resume,
        reports,
    })
}

/// A folder with a summary and no journal: a validation (or a dry run), which resume has
/// nothing to finish in.
fn validation_status(
    dir: &Path,
    summary: Option<serde_json::Value>,
    ended: Option<Ended>,
    reports: Vec<String>,
) -> Result<Status, Error> {
    let Some(sum) = summary else {
        return Err(Error::Usage(format!(
            "{}: not a run folder (it has no {JOURNAL_FILE} and no {SUMMARY_FILE})",
            dir.display()
        )));
    };
    let n = |k: &str| sum.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    let failed_by_stage = sum
        .get("failed_by_stage")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Status {
        run_dir: dir.display().to_string(),
        kind: text_of(&Some(sum.clone()), "kind").unwrap_or_default(),
        input: text_of(&Some(sum.clone()), "input").unwrap_or_default(),
        input_state: "unknown".into(),
        input_change: None,
        target: None,
        started_at: text_of(&Some(sum.clone()), "started_at"),
        rows: Rows {
            // A validation's rows are valid rather than succeeded (its summary may give both,
            // counting the same rows).
            succeeded: if sum.get("valid").is_some() {
                n("valid")
            } else {
                n("succeeded")
            },
            failed: n("failed"),
            failed_by_stage,
            skipped: n("skipped"),
            open: 0,
            planned: n("rows"),
            chunks: 0,
            chunks_done: 0,
        },
        tasks: Tasks::default(),
        ended,
        resume: Resume {
            possible: false,
            next: "nothing: this folder has no journal (a validation or a dry run sends nothing); import the file to send it".into(),
            ..Resume::default()
        },
        reports,
    })
}

fn read_summary(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(SUMMARY_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn text_of(v: &Option<serde_json::Value>, key: &str) -> Option<String> {
    v.as_ref()?.get(key)?.as_str().map(str::to_string)
}

fn ended_of(v: &serde_json::Value) -> Option<Ended> {
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Some(Ended {
        finished_at: v.get("finished_at")?.as_str()?.to_string(),
        exit_code: v
            .get("exit_code")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0),
        interrupted: v
            .get("interrupted")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        rows: n("rows"),
        not_read: n("not_read"),
    })
}

/// Whether the input is still the file the run began with (what resume checks).
fn input_state(was: &InputIdentity) -> (String, Option<String>) {
    match InputIdentity::of(&was.path) {
        Err(e) => ("unreadable".into(), Some(e.to_string())),
        Ok(now) => match was.check(&now) {
            InputCheck::Same | InputCheck::SameByStat => ("unchanged".into(), None),
            InputCheck::Changed(how) => ("changed".into(), Some(how)),
        },
    }
}

fn rows_of(t: &RowTally) -> Rows {
    Rows {
        succeeded: t.succeeded,
        failed: t.failed.values().sum(),
        failed_by_stage: t.failed.clone(),
        skipped: t.skipped,
        open: t.open,
        planned: t.last_row,
        chunks: t.chunks,
        chunks_done: t.chunks_done,
    }
}

fn tasks_of(batches: &[BatchView]) -> Tasks {
    let mut t = Tasks::default();
    for b in batches {
        *t.batches_by_state
            .entry(b.state.as_str().to_string())
            .or_default() += 1;
        if let Some(id) = &b.task_id {
            t.submitted += 1;
            if b.state.is_live() {
                t.live.push(LiveTask {
                    task_id: id.clone(),
                    rows: b.rows,
                    first_row: b.first_row,
                    last_row: b.last_row,
                    last_known: b.last_attempt.clone(),
                });
            }
        }
    }
    // In input order (chunks are planned side by side, so plan order is not it).
    t.live.sort_by_key(|l| l.first_row);
    t
}

/// What `resume` would do, from the journal's live batches and unfinished chunks (the same
/// decisions `journal::resume_action` makes for it).
fn resume_of(
    t: &RowTally,
    batches: &[BatchView],
    ended: Option<&Ended>,
    input_unchanged: bool,
) -> Resume {
    let mut r = Resume::default();
    let mut live_chunks = std::collections::BTreeSet::new();
    for b in batches {
        match b.resume_action() {
            Some(ResumeAction::Poll) => r.poll += 1,
            Some(ResumeAction::Resend) => r.resend += 1,
            Some(ResumeAction::Redecide) => r.redecide += 1,
            None => continue,
        }
        live_chunks.insert(b.seq);
    }
    let unfinished = t.chunks - t.chunks_done;
    r.chunks_to_send = unfinished.saturating_sub(live_chunks.len() as u64);
    // Without a summary the run did not end (killed, or still going): what it did not plan
    // may not have been read. A run that ended says how many rows it did not read.
    let read_all = ended.is_some_and(|e| e.not_read == 0 && !e.interrupted && e.rows <= t.last_row);
    if !read_all {
        r.read_from_row = Some(t.last_row + 1);
    }
    let mut todo = Vec::new();
    if r.poll > 0 {
        todo.push(format!("poll {} (never send again)", count(r.poll, "task")));
    }
    if r.resend > 0 {
        todo.push(format!(
            "send {} again under the recorded key",
            count(r.resend, "batch")
        ));
    }
    if r.redecide > 0 {
        todo.push(format!(
            "decide the rows of {} again against the site (their answers were lost)",
            count(r.redecide, "batch")
        ));
    }
    if r.chunks_to_send > 0 {
        todo.push(format!(
            "decide and send the open rows of {}",
            count(r.chunks_to_send, "chunk")
        ));
    }
    if let Some(from) = r.read_from_row {
        todo.push(format!("read the input on from row {from}"));
    }
    r.possible = input_unchanged;
    r.next = if !input_unchanged {
        "resume would refuse: the input is not the file the run began with (put it back to resume)"
            .into()
    } else if todo.is_empty() {
        "nothing to do: every row has its outcome".into()
    } else {
        todo.join(", ")
    };
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_run_is_the_one_begun_last_to_the_millisecond() {
        let base = tempfile::tempdir().unwrap();
        // Begun in the same second: by name the organizations run sorts last, by its log's
        // first line the customers run began last.
        for (name, stamp) in [
            ("20261206T101010Z-customers", "2026-12-06T10:10:10.900Z"),
            ("20261206T101010Z-organizations", "2026-12-06T10:10:10.100Z"),
        ] {
            let dir = base.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join(SUMMARY_FILE), "{}").unwrap();
            std::fs::write(dir.join(LOG_FILE), format!("{stamp} import …\n")).unwrap();
        }
        let latest = latest_run(base.path()).unwrap();
        assert!(
            latest.ends_with("20261206T101010Z-customers"),
            "{}",
            latest.display()
        );
    }
    use crate::engine::journal::{BatchState, Purpose};

    fn batch(seq: u64, state: BatchState, task: bool, key: bool) -> BatchView {
        BatchView {
            seq,
            purpose: Purpose::Rows,
            state,
            task_id: task.then(|| format!("t{seq}")),
            has_key: key,
            rows: 2,
            first_row: seq * 2 + 1,
            last_row: seq * 2 + 2,
            last_attempt: None,
        }
    }

    fn ended(not_read: u64, interrupted: bool, rows: u64) -> Ended {
        Ended {
            finished_at: "2026-12-03T00:00:00Z".into(),
            exit_code: 0,
            interrupted,
            rows,
            not_read,
        }
    }

    #[test]
    fn what_resume_would_do() {
        use BatchState::*;
        let tally = |chunks, done, last| RowTally {
            chunks,
            chunks_done: done,
            last_row: last,
            ..RowTally::default()
        };
        let cases: Vec<(RowTally, Vec<BatchView>, Option<Ended>, bool, &str)> = vec![
            (
                tally(2, 2, 4),
                vec![batch(0, Done, true, true), batch(1, Done, true, true)],
                Some(ended(0, false, 4)),
                true,
                "nothing to do: every row has its outcome",
            ),
            (
                tally(3, 0, 6),
                vec![
                    batch(0, Submitted, true, true),
                    batch(1, Planned, false, true),
                    batch(2, Planned, false, false),
                ],
                Some(ended(0, false, 6)),
                true,
                "poll 1 task (never send again), send 1 batch again under the recorded key, decide the rows of 1 batch again against the site (their answers were lost)",
            ),
            // Killed: no summary, and a chunk whose batches were never planned.
            (
                tally(2, 1, 4),
                vec![batch(0, Done, true, true)],
                None,
                true,
                "decide and send the open rows of 1 chunk, read the input on from row 5",
            ),
            // Interrupted after reading stopped.
            (
                tally(1, 1, 2),
                vec![batch(0, Done, true, true)],
                Some(ended(8, true, 10)),
                true,
                "read the input on from row 3",
            ),
            (
                tally(1, 0, 2),
                vec![batch(0, Submitted, true, true)],
                None,
                false,
                "resume would refuse: the input is not the file the run began with (put it back to resume)",
            ),
        ];
        for (i, (t, b, e, same, want)) in cases.into_iter().enumerate() {
            let r = resume_of(&t, &b, e.as_ref(), same);
            assert_eq!(r.next, want, "case {i}");
            assert_eq!(r.possible, same, "case {i}");
        }
    }

    #[test]
    fn plurals() {
        assert_eq!(count(1, "task"), "1 task");
        assert_eq!(count(2, "batch"), "2 batches");
        assert_eq!(count(0, "chunk"), "0 chunks");
    }
}

/// A plan's step as `status` shows it.
#[derive(serde::Serialize)]
pub struct StepStatus {
    pub kind: String,
    pub file: String,
    pub run_dir: String,
    /// `done`, `unfinished` (rows open: `resume` goes on), `refused` (could not start:
    /// nothing sent) or `not_started`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why a refused step could not start, as the plan's summary recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Each step of the plan in `dir`, in the order the plan runs them, started or not.
pub fn plan_status(
    dir: &Path,
    steps: Vec<super::steps::Planned>,
) -> Result<Vec<StepStatus>, Error> {
    // What the plan's own summary says of steps that have no journal (refused ones).
    let recorded: Vec<serde_json::Value> = std::fs::read(dir.join(super::report::SUMMARY_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("steps").and_then(|s| s.as_array()).cloned())
        .unwrap_or_default();
    let refusal = |run_dir: &Path| {
        recorded.iter().find_map(|s| {
            (s.get("run_dir").and_then(|d| d.as_str()) == Some(&*run_dir.to_string_lossy())
                && s.get("state").and_then(|d| d.as_str()) == Some("refused"))
            .then(|| {
                s.get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or("no reason recorded")
                    .to_string()
            })
        })
    };
    let mut all = Vec::new();
    for step in steps {
        let status = if step.dir.join(super::journal::JOURNAL_FILE).is_file() {
            Some(status_of(&step.dir)?)
        } else {
            None
        };
        let refused = status.is_none().then(|| refusal(&step.dir)).flatten();
        let state = match &status {
            None if refused.is_some() => "refused",
            None => "not_started",
            Some(s)
                if s.rows.open > 0
                    || s.resume.read_from_row.is_some()
                    || s.ended.as_ref().is_none_or(|e| e.interrupted) =>
            {
                "unfinished"
            }
            Some(_) => "done",
        };
        all.push(StepStatus {
            kind: step.kind.as_str().into(),
            file: step.file.display().to_string(),
            run_dir: step.dir.display().to_string(),
            state,
            status,
            refused,
        });
    }
    Ok(all)
}
