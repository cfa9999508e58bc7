//! `csmport validate KIND FILE` (and `import --dry-run`): read, map and validate without sending
//! anything; print the dialect report; write `failures.csv` and `summary.json` as import does.
//! Orchestration only: `intake` does the work.

use std::time::Instant;

use serde::Serialize;

use crate::cli::InputArgs;
use crate::client::Client;
use crate::error::{EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, Error};
use crate::intake::{self, Intake};
use crate::plan::Outcome;
use crate::read::Dialect;
use crate::report::{self, Counts, ReportWriter};

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

/// `client` is used only to read the detail-field definitions when `--schema` is not given.
pub async fn run(input: &InputArgs, client: Option<&Client>) -> Result<ValidateSummary, Error> {
    let started = Instant::now();
    let schema = intake::schema(input, client).await?;
    let mut intake = Intake::open(input, schema)?;
    let dir = super::import::run_dir(
        input.out.as_deref(),
        &format!("validate-{}", input.kind.as_str()),
        jiff::Timestamp::now(),
    )?;
    let mut writer = ReportWriter::with_successes(&dir, &intake.header, false)?;
    let mut valid = 0u64;
    let mut read_error = None;
    let mut reader = intake.reader();
    loop {
        let raw = match reader.next_row() {
            None => break,
            Some(Ok(raw)) => raw,
            Some(Err(e)) => {
                read_error = Some(e.to_string());
                break;
            }
        };
        let mut row = intake.check_row(raw);
        if row.outcome == Outcome::Pending {
            valid += 1;
            row.outcome = Outcome::Succeeded { id: None };
        }
        writer.write(&row, &dir)?;
    }
    let counts = writer.finish(&dir)?;
    let mut dialect = reader.finish();
    dialect.notes.extend(intake.mapping.notes.iter().cloned());
    dialect.notes.extend(
        intake
            .mapping
            .ignored_unknown
            .iter()
            .map(|c| format!("column '{c}' matches no field and is ignored")),
    );
    let exit_code = if read_error.is_some() {
        EXIT_USAGE
    } else if counts.failed > 0 {
        EXIT_ROWS_FAILED
    } else {
        EXIT_OK
    };
    let elapsed = started.elapsed().as_secs_f64();
    let summary = ValidateSummary {
        kind: input.kind.as_str().to_string(),
        input: intake.file_label.clone(),
        run_dir: dir.display().to_string(),
        dialect,
        rows_per_s: if elapsed > 0.0 {
            (counts.rows as f64 / elapsed).round()
        } else {
            0.0
        },
        counts,
        valid,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        read_error,
        exit_code,
    };
    let path = dir.join(report::SUMMARY_FILE);
    let text = serde_json::to_string_pretty(&summary).expect("summary serializes") + "\n";
    std::fs::write(&path, text).map_err(|source| report::ReportError { path, source })?;
    Ok(summary)
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
