//! `csmport retry FAILURES.csv`: imports exactly the rows of an earlier run's failure report
//! again, as a new run with its own folder. The report keeps the input's columns and cells, so
//! rows the user fixed in it go through and the others fail again with their new reason. The
//! kind comes from the run folder's summary.json (or `--kind`); the rest is an ordinary import
//! (`engine::run`), with the run's options (its mapping, the copy in its folder) where the
//! line gives none. A report with rows still open (their outcome not known yet) is refused:
//! `resume` settles them without sending anything twice.

use std::path::Path;

use crate::site::api::Choice;

use crate::cli::{self, Cli, Kind, RetryArgs};
use crate::engine::report::{OPEN_STAGE, SUMMARY_FILE};
use crate::engine::run;
use crate::error::Error;
use crate::map::normalize;
use crate::read::{Cells, ReadOptions, Source};

/// The columns every failure report ends with.
pub const REPORT_COLUMNS: [&str; 4] = ["_row", "_stage", "_field", "_error"];

pub async fn run(cli: &Cli, args: &RetryArgs) -> Result<i32, Error> {
    let file = &args.failures;
    let kind = check(file, args.kind)?;
    let (target, sandbox) = super::resolve_target(cli).await?;
    let mut opts = cli::import_options(kind, file, &args.read, &args.run);
    if let Some(run) = remembered(file) {
        let dir = file.parent().unwrap_or(Path::new("."));
        let copy = Some(dir.join(run::MAPPING_FILE)).filter(|p| p.is_file());
        opts.remembering(&run, copy);
    }
    let result = run::run(&opts, &target, None).await?;
    super::output::print_result(cli, &result, sandbox.as_ref());
    Ok(result.exit_code)
}

/// The kind of the report's rows, once the report is known to be one csmport wrote and to hold
/// no open rows.
fn check(file: &Path, kind: Option<Kind>) -> Result<Kind, Error> {
    let mut source = Source::open(file, &ReadOptions::default())?;
    check_header(file, source.header())?;
    let stage = source
        .header()
        .iter()
        .position(|h| normalize(h) == "_stage")
        .expect("checked");
    let number = source.header().iter().position(|h| normalize(h) == "_row");
    let mut open = Vec::new();
    while let Some(Ok(row)) = source.next_row() {
        if row.cells.cell(stage).trim() == OPEN_STAGE {
            // The row's number in its run's input (`_row`), not its line in the report.
            let n = number
                .and_then(|i| row.cells.cell(i).trim().parse::<u64>().ok())
                .unwrap_or(row.row);
            open.push(n);
        }
    }
    if !open.is_empty() {
        let run = file.parent().unwrap_or(Path::new("."));
        let shown: Vec<String> = open.iter().take(10).map(u64::to_string).collect();
        return Err(Error::Usage(format!(
            "{}: {} no outcome yet in their run (_stage {OPEN_STAGE}: rows {}{} of its input); they may be on the site already, and retrying could send them twice. Finish that run with `csmport resume {}` (it rewrites this report), or delete those rows from the report",
            file.display(),
            if open.len() == 1 {
                "1 row has".to_string()
            } else {
                format!("{} rows have", open.len())
            },
            shown.join(", "),
            if open.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            run.display()
        )));
    }
    match kind {
        Some(k) => Ok(k),
        None => kind_of_run(file),
    }
}

/// A failure report has csmport's four columns; a report whose header was edited is refused
/// rather than read as something else.
pub fn check_header(file: &Path, header: &[String]) -> Result<(), Error> {
    let names: Vec<String> = header.iter().map(|h| normalize(h)).collect();
    let missing: Vec<&str> = REPORT_COLUMNS
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{}: not a csmport failure report, or its header was edited: no {} column{} (a report ends with {}; import an ordinary file with `csmport import`)",
        file.display(),
        missing.join(", "),
        if missing.len() > 1 { "s" } else { "" },
        REPORT_COLUMNS.join(", ")
    )))
}

/// The options of the run that wrote the report, from the journal beside it (none for a
/// validation's report, or a report moved away from its run folder).
fn remembered(file: &Path) -> Option<crate::options::ImportOptions> {
    let dir = file.parent().unwrap_or(Path::new("."));
    if !dir.join(crate::engine::journal::JOURNAL_FILE).is_file() {
        return None;
    }
    let (_, meta) = crate::engine::journal::Journal::open(dir).ok()?;
    crate::options::ImportOptions::from_journal(&meta.options).ok()
}

/// The kind of the run that wrote the report, from the summary.json beside it.
fn kind_of_run(file: &Path) -> Result<Kind, Error> {
    let summary = file.parent().unwrap_or(Path::new(".")).join(SUMMARY_FILE);
    let text = std::fs::read_to_string(&summary).map_err(|_| {
        Error::Usage(format!(
            "{}: no {} beside it to say what the rows are; pass --kind KIND",
            file.display(),
            summary.display()
        ))
    })?;
    let v = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
    if v["operation"] == "delete" {
        return Err(Error::Usage(format!(
            "{}: is the report of a delete; retry imports rows, so it would put them back: run `csmport delete {} {}` on it instead",
            file.display(),
            v["kind"].as_str().unwrap_or("KIND"),
            file.display()
        )));
    }
    let kind = Some(&v)
        .and_then(|v| v["kind"].as_str().map(str::to_string))
        .and_then(|k| Kind::named(&k, true));
    kind.ok_or_else(|| {
        Error::Usage(format!(
            "{}: does not name the kind of its run; pass --kind KIND",
            summary.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_told_from_other_files() {
        let h = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let p = Path::new("f.csv");
        assert!(check_header(p, &h(&["email", "_row", "_stage", "_field", "_error"])).is_ok());
        let e = check_header(p, &h(&["email", "_row", "stage", "_field", "error"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no _stage, _error columns"), "{e}");
    }
}
