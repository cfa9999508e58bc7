//! Scaffolding for the kinds whose files are small and whose rows are decided against the site
//! as a whole (detail fields, products, entitlements, details): read every row first, then the
//! kind's own module decides and sends, and `finish` writes the run folder as `import` does.
//! In a dry run (`validate`, `import --dry-run`) the kind reads the site, decides every row and
//! stops before its first write; `finish` then writes what `validate` writes. Used by
//! `cmd::fields`, `cmd::products`, `cmd::entitlements` and `cmd::details`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{ImportArgs, InputArgs};
use crate::engine::intake::read_options;
use crate::engine::plan::{Outcome, PlannedRow, Stage};
use crate::engine::progress::RunLog;
use crate::engine::report::{self, ReportWriter, Summary};
use crate::engine::track::PollPolicy;
use crate::error::{Error, rows_exit_code};
use crate::read::{Dialect, RawRow, Source};
use crate::site::client::{Client, Notify, Target};

use super::import::{ImportResult, open_log, run_dir};

/// One run of a small kind: its input, run folder, log and client.
pub struct SmallRun {
    pub kind: &'static str,
    pub label: String,
    pub header: Vec<String>,
    pub rows: Vec<PlannedRow>,
    pub dialect: Dialect,
    pub read_error: Option<String>,
    pub dir: PathBuf,
    pub log: Arc<RunLog>,
    pub client: Client,
    pub poll: PollPolicy,
    pub target: Target,
    started: Instant,
    started_at: jiff::Timestamp,
    /// Requests (or tasks) sent, for the summary.
    pub batches: u64,
    pub tasks: u64,
    /// Rows already on the site as the file has them.
    pub unchanged: u64,
    /// Decide every row, send nothing.
    pub dry_run: bool,
}

impl SmallRun {
    /// Reads the whole file (rows start `Pending`), makes the run folder and its log.
    pub fn start(
        kind: &'static str,
        args: &ImportArgs,
        target: &Target,
    ) -> Result<SmallRun, Error> {
        let input = &args.input;
        let file = one_file(input)?;
        let started = Instant::now();
        let started_at = jiff::Timestamp::now();
        let label = file.display().to_string();
        let (header, raws, dialect, read_error) = read_all(file, input)?;
        let dry_run = args.dry_run;
        let folder = if dry_run {
            format!("validate-{kind}")
        } else {
            kind.to_string()
        };
        let dir = run_dir(input.out.as_deref(), &folder, started_at)?;
        let log = open_log(&dir)?;
        let what = if dry_run { "dry run: decide" } else { "import" };
        log.note(&format!(
            "{what} {kind} from {label} into {} (cloud {})",
            target.base_url, target.cloud_id
        ));
        let policy = super::import::policy(args);
        let notify: Arc<dyn Notify> = log.clone();
        let client = Client::new(target, args.rate, policy, notify);
        let poll = PollPolicy {
            timeout: Duration::from_secs(args.task_timeout.max(1)),
            ..PollPolicy::default()
        };
        let rows = raws
            .into_iter()
            .map(|raw| PlannedRow {
                raw,
                outcome: Outcome::Pending,
            })
            .collect();
        Ok(SmallRun {
            kind,
            label,
            header,
            rows,
            dialect,
            read_error,
            dir,
            log,
            client,
            poll,
            target: target.clone(),
            started,
            started_at,
            batches: 0,
            tasks: 0,
            unchanged: 0,
            dry_run,
        })
    }

    /// Read problems and blank rows, decided before any cell is looked at; true for the rest.
    pub fn precheck(&mut self) -> Vec<bool> {
        self.rows
            .iter_mut()
            .map(|r| {
                if let Some(p) = &r.raw.problem {
                    r.outcome = Outcome::Failed {
                        stage: Stage::Read,
                        field: String::new(),
                        error: p.clone(),
                    };
                    false
                } else if r.raw.is_blank() {
                    r.outcome = Outcome::Skipped {
                        reason: "blank row".into(),
                    };
                    false
                } else {
                    true
                }
            })
            .collect()
    }

    pub fn fail(&mut self, i: usize, stage: Stage, field: &str, error: String) {
        self.rows[i].outcome = Outcome::Failed {
            stage,
            field: field.to_string(),
            error,
        };
    }

    /// Fails row `i` with every (column, reason) found in it, so a user fixes a row once.
    pub fn fail_cells(&mut self, i: usize, errors: &[(String, String)]) {
        let field = errors
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let error = errors
            .iter()
            .map(|(c, e)| format!("{c}: {e}"))
            .collect::<Vec<_>>()
            .join(" | ");
        self.fail(i, Stage::Validate, &field, error);
    }

    pub fn succeed(&mut self, i: usize, id: Option<String>) {
        self.rows[i].outcome = Outcome::Succeeded { id };
    }

    /// Writes failures.csv, successes.csv and summary.json; the exit code follows the rows.
    /// A dry run writes failures.csv and `validate`'s summary.json instead.
    pub fn finish(self) -> Result<ImportResult, Error> {
        if self.dry_run {
            return self.finish_dry_run();
        }
        let mut writer = ReportWriter::create(&self.dir, &self.header)?;
        for row in &self.rows {
            writer.write(row, &self.dir)?;
        }
        let counts = writer.finish(&self.dir)?;
        let exit_code = rows_exit_code(self.read_error.is_some(), counts.failed);
        self.log.note(&format!(
            "done: {} rows = {} succeeded ({} already on the site as in the file) + {} failed + {} skipped; exit {exit_code}",
            counts.rows, counts.succeeded, self.unchanged, counts.failed, counts.skipped
        ));
        let result = self.result(counts, exit_code);
        report::write_summary(Path::new(&result.summary.run_dir), &result.summary)?;
        Ok(result)
    }

    /// Rows still pending would be sent, and rows already on the site need nothing: both are
    /// valid (counted as succeeded, as `validate` counts them). The others are in
    /// failures.csv, as `validate` writes it.
    fn finish_dry_run(mut self) -> Result<ImportResult, Error> {
        let mut writer = ReportWriter::with_successes(&self.dir, &self.header, false)?;
        for row in &self.rows {
            match row.outcome {
                Outcome::Pending | Outcome::Succeeded { .. } => writer.count_success(),
                _ => writer.write(row, &self.dir)?,
            }
        }
        let counts = writer.finish(&self.dir)?;
        let exit_code = rows_exit_code(self.read_error.is_some(), counts.failed);
        self.log.note(&format!(
            "dry run done: {} rows = {} valid ({} would be sent, {} already on the site as in the file) + {} invalid + {} skipped; nothing sent; exit {exit_code}",
            counts.rows,
            counts.succeeded,
            counts.succeeded - self.unchanged,
            self.unchanged,
            counts.failed,
            counts.skipped
        ));
        match self.unchanged {
            0 => {}
            1 => self.dialect.notes.push(
                "1 row is on the site as in the file already: importing sends nothing for it"
                    .into(),
            ),
            n => self.dialect.notes.push(format!(
                "{n} rows are on the site as in the file already: importing sends nothing for them"
            )),
        }
        let result = self.result(counts, exit_code);
        let v = result.validated.as_ref().expect("a dry run's result");
        super::validate::write_summary(Path::new(&v.run_dir), v)?;
        Ok(result)
    }

    /// The run's summary; in a dry run, also what `validate` reports of it.
    fn result(self, counts: report::Counts, exit_code: i32) -> ImportResult {
        let t = report::timing(self.started_at, self.started.elapsed(), counts.rows);
        let validated = self.dry_run.then(|| super::validate::ValidateSummary {
            kind: self.kind.into(),
            input: self.label.clone(),
            run_dir: self.dir.display().to_string(),
            dialect: self.dialect.clone(),
            counts: counts.clone(),
            valid: counts.succeeded,
            elapsed_s: t.elapsed_s,
            rows_per_s: t.rows_per_s,
            read_error: self.read_error.clone(),
            exit_code,
        });
        let summary = Summary {
            kind: self.kind.into(),
            input: self.label,
            run_dir: self.dir.display().to_string(),
            target: format!("{} (cloud {})", self.target.base_url, self.target.cloud_id),
            started_at: t.started_at,
            finished_at: t.finished_at,
            rows_per_s: t.rows_per_s,
            unchanged: Some(self.unchanged),
            counts,
            batches: self.batches,
            tasks: self.tasks,
            elapsed_s: t.elapsed_s,
            interrupted: false,
            exit_code,
            dialect: Some(self.dialect),
        };
        ImportResult {
            exit_code,
            summary,
            read_error: self.read_error,
            stopped: None,
            unsettled: 0,
            validated,
        }
    }
}

pub fn one_file(input: &InputArgs) -> Result<&Path, Error> {
    match input.files.as_slice() {
        [file] => Ok(file),
        _ => Err(Error::Usage(
            "import takes one file per run for now; run one import per file".into(),
        )),
    }
}

/// All rows of a file, and how reading ended.
#[allow(clippy::type_complexity)]
fn read_all(
    file: &Path,
    input: &InputArgs,
) -> Result<(Vec<String>, Vec<RawRow>, Dialect, Option<String>), Error> {
    let mut source = Source::open(file, &read_options(input))?;
    let header = source.header().to_vec();
    let mut rows = Vec::new();
    let mut read_error = None;
    while let Some(r) = source.next_row() {
        match r {
            Ok(raw) => rows.push(raw),
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
    }
    Ok((header, rows, source.dialect(), read_error))
}

/// Where each named column is (matched like every header: case and spaces ignored). Unknown
/// columns are refused unless `ignore_unknown`; `required` ones must be there.
pub fn find_columns(
    header: &[String],
    file: &str,
    kind: &str,
    known: &[&str],
    required: &[&str],
    ignore_unknown: bool,
) -> Result<Vec<Option<usize>>, Error> {
    use crate::map::normalize;
    for (i, h) in header.iter().enumerate() {
        let k = normalize(h);
        let is_known = known.iter().any(|n| normalize(n) == k);
        if !is_known && !k.is_empty() && !k.starts_with('_') && !ignore_unknown {
            let closest = crate::validate::closest(h, known.iter().copied())
                .map(|c| format!(": did you mean '{c}'?"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "{file}: unknown column '{h}' (column {}){closest} A {kind} file has the columns {} (or pass --ignore-unknown-columns)",
                i + 1,
                known.join(", ")
            )));
        }
    }
    let cols: Vec<Option<usize>> = known
        .iter()
        .map(|n| header.iter().position(|h| normalize(h) == normalize(n)))
        .collect();
    for r in required {
        let i = known
            .iter()
            .position(|k| k == r)
            .expect("required is known");
        if cols[i].is_none() {
            return Err(Error::Usage(format!(
                "{file}: no '{r}' column: a {kind} file has the columns {} (header has: {})",
                known.join(", "),
                header.join(", ")
            )));
        }
    }
    Ok(cols)
}
