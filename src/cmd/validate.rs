//! `csmport validate KIND FILE` (and `import --dry-run`): read, map and validate without sending
//! anything; print the dialect report; write `failures.csv` and `summary.json` as import does.
//! Orchestration only: `intake` does the work.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::cli::InputArgs;
use crate::engine::intake::{self, Intake};
use crate::engine::plan::{Outcome, PlannedRow};
use crate::engine::report::{self, Counts, ReportWriter};
use crate::error::{Error, rows_exit_code};
use crate::read::Dialect;
use crate::schema::Schema;
use crate::site::client::Client;

#[derive(Debug, Clone, Serialize)]
pub struct ValidateSummary {
    pub kind: String,
    pub input: String,
    pub run_dir: String,
    pub dialect: Dialect,
    #[serde(flatten)]
    pub counts: Counts,
    /// Rows that would be sent.
    pub valid: u64,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_error: Option<String>,
    pub exit_code: i32,
}

/// Validates every file; with several, each gets its own folder inside the run folder.
/// `client` is used only to read the detail-field definitions when `--schema` is not given.
pub async fn run(
    input: &InputArgs,
    client: Option<&Client>,
) -> Result<Vec<Result<ValidateSummary, Error>>, Error> {
    let schema = intake::schema(input, client).await?;
    let dir = super::import::run_dir(
        input.out.as_deref(),
        &format!("validate-{}", input.kind().as_str()),
        jiff::Timestamp::now(),
    )?;
    let mut out = Vec::new();
    for (n, file) in input.files.iter().enumerate() {
        let sub = if input.files.len() == 1 {
            dir.clone()
        } else {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("input");
            let d = dir.join(format!("{}-{stem}", n + 1));
            std::fs::create_dir_all(&d).map_err(|source| report::ReportError {
                path: d.clone(),
                source,
            })?;
            d
        };
        let result = validate_file(input, file, schema.clone(), &sub);
        // One file: its error is the command's. Several: report it and go on with the others.
        if input.files.len() == 1 {
            out.push(Ok(result?));
        } else {
            out.push(result);
        }
    }
    Ok(out)
}

fn validate_file(
    input: &InputArgs,
    file: &Path,
    schema: Schema,
    dir: &Path,
) -> Result<ValidateSummary, Error> {
    let started = Instant::now();
    let mut intake = Intake::open(input, file, schema.clone())?;
    intake.defer_duplicates()?;
    let dir = dir.to_path_buf();
    let mut writer = ReportWriter::with_successes(&dir, &intake.header, false)?;
    let mut read_error = None;
    let mut reader = intake.reader();
    while let Some(mut batch) = reader.next_batch() {
        let outcomes = intake.check_batch(&batch);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            if outcome == Outcome::Pending {
                writer.count_success();
            } else {
                let raw = batch.row(i).to_raw();
                writer.write(&PlannedRow { raw, outcome }, &dir)?;
            }
        }
        if let Some(e) = batch.error.take() {
            read_error = Some(e.to_string());
            break;
        }
        reader.recycle(batch);
    }
    let mut counts = writer.finish(&dir)?;
    let mut dialect = reader.finish();
    let found = intake.duplicates()?;
    if !found.is_empty() {
        // These rows passed as valid in the first pass.
        let n = add_duplicates(input, file, schema, &found, &dir)?;
        counts.succeeded = counts.succeeded.saturating_sub(n);
        counts.failed += n;
        counts.failed_by_stage.validate += n;
    }
    dialect.notes.extend(intake.mapping.notes.iter().cloned());
    dialect.notes.extend(
        intake
            .mapping
            .ignored_unknown
            .iter()
            .map(|c| format!("column '{c}' matches no field and is ignored")),
    );
    for (field, (n, example)) in &intake.respelled {
        dialect.notes.push(format!(
            "{field}: {n} values match an option only when case is ignored; they are sent as the site spells them (e.g. {example})"
        ));
    }
    let exit_code = rows_exit_code(read_error.is_some(), counts.failed);
    let elapsed = started.elapsed().as_secs_f64();
    let summary = ValidateSummary {
        kind: input.kind().as_str().to_string(),
        input: intake.file_label.clone(),
        run_dir: dir.display().to_string(),
        dialect,
        rows_per_s: if elapsed > 0.0 {
            (counts.rows as f64 / elapsed).round()
        } else {
            0.0
        },
        // Valid rows are the ones counted as succeeded: a validation sends nothing.
        valid: counts.succeeded,
        counts,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        read_error,
        exit_code,
    };
    write_summary(&dir, &summary)?;
    Ok(summary)
}

/// The second pass, run only when the first found duplicate keys: the input is read again and
/// the duplicates' rows (with the reason naming the first row) join the others in failures.csv,
/// in row order. Returns how many rows it added.
fn add_duplicates(
    input: &InputArgs,
    file: &Path,
    schema: Schema,
    found: &[(u64, u64)],
    dir: &Path,
) -> Result<u64, Error> {
    let mut intake = Intake::open(input, file, schema)?;
    intake.replay_duplicates(found);
    let part = tempfile::tempdir_in(dir).map_err(|source| report::ReportError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut writer = ReportWriter::with_successes(part.path(), &intake.header, false)?;
    let mut added = 0u64;
    let mut reader = intake.reader();
    while let Some(batch) = reader.next_batch() {
        let outcomes = intake.check_batch(&batch);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let row = batch.row(i);
            let named = found.binary_search_by_key(&row.row(), |f| f.0).is_ok();
            if named && matches!(outcome, Outcome::Failed { .. }) {
                let raw = row.to_raw();
                writer.write(&PlannedRow { raw, outcome }, part.path())?;
                added += 1;
            }
        }
        if batch.error.is_some() {
            break;
        }
        reader.recycle(batch);
    }
    writer.finish(part.path())?;
    report::merge_failures(dir, part.path())?;
    Ok(added)
}

/// The run folder's summary.json of a validation.
pub fn write_summary(dir: &Path, summary: &ValidateSummary) -> Result<(), Error> {
    let path = dir.join(report::SUMMARY_FILE);
    let text = serde_json::to_string_pretty(summary).expect("summary serializes") + "\n";
    std::fs::write(&path, text).map_err(|source| report::ReportError { path, source })?;
    Ok(())
}

/// The human summary: the dialect report, then the counts.
pub fn describe(s: &ValidateSummary) -> String {
    let c = &s.counts;
    let mut lines = vec![
        format!("validated {} from {}", s.kind, s.input),
        format!("  read      {}", s.dialect.describe(c.rows)),
    ];
    for n in &s.dialect.notes {
        lines.push(format!("  note      {n}"));
    }
    lines.push(format!(
        "  rows      {} = {} valid + {} invalid + {} skipped",
        c.rows, s.valid, c.failed, c.skipped
    ));
    if c.failed > 0 {
        lines.push(format!(
            "  invalid   {} read, {} validate",
            c.failed_by_stage.read, c.failed_by_stage.validate
        ));
        lines.push(format!("  failures  {}/failures.csv", s.run_dir));
    }
    if let Some(e) = &s.read_error {
        lines.push(format!("  stopped   reading failed: {e}"));
    }
    lines.push(format!("  run folder {}", s.run_dir));
    lines.join("\n")
}
