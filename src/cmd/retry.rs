//! `csmport retry FAILURES.csv`: imports exactly the rows of an earlier run's failure report
//! again, as a new run with its own folder. The report keeps the input's columns and cells, so
//! rows the user fixed in it go through and the others fail again with their new reason. The
//! kind comes from the run folder's summary.json (or `--kind`); the rest is an ordinary import
//! (`cmd::run_import`).

use std::path::Path;

use clap::{Parser, ValueEnum};

use crate::cli::{Cli, Command, ImportArgs, Kind, RetryArgs};

use crate::engine::report::SUMMARY_FILE;
use crate::error::Error;
use crate::map::normalize;
use crate::read::{ReadOptions, Source};

/// The columns every failure report ends with.
pub const REPORT_COLUMNS: [&str; 4] = ["_row", "_stage", "_field", "_error"];

/// The command line of the import a retry runs: the report as the input, and the options that
/// followed it (global ones such as --sandbox included, wherever they were written).
pub fn import_cli(outer: &Cli, args: &RetryArgs) -> Result<(Cli, ImportArgs), Error> {
    let file = &args.failures;
    let source = Source::open(file, &ReadOptions::default())?;
    check_header(file, source.header())?;
    let kind = match args.kind {
        Some(k) => k,
        None => kind_of_run(file)?,
    };
    let mut argv: Vec<String> = vec![
        "csmport".into(),
        "import".into(),
        kind.as_str().into(),
        file.display().to_string(),
    ];
    argv.extend(args.options.iter().cloned());
    match Cli::try_parse_from(&argv) {
        Ok(inner) => {
            let Command::Import(a) = &inner.command else {
                return Err(Error::Usage("retry runs an import".into()));
            };
            let a = a.clone();
            let t = &inner.target;
            let o = &outer.target;
            let cli = Cli {
                target: crate::cli::TargetArgs {
                    base_url: t.base_url.clone().or(o.base_url.clone()),
                    cloud_id: t.cloud_id.clone().or(o.cloud_id.clone()),
                    access_token: t.access_token.clone().or(o.access_token.clone()),
                    email: t.email.clone().or(o.email.clone()),
                    api_token: t.api_token.clone().or(o.api_token.clone()),
                    site: t.site.clone().or(o.site.clone()),
                },
                sandbox: outer.sandbox || inner.sandbox,
                json: outer.json || inner.json,
                command: inner.command,
            };
            Ok((cli, a))
        }
        Err(e) => Err(Error::Usage(format!(
            "retry {}: {}",
            file.display(),
            e.to_string().lines().next().unwrap_or("bad options")
        ))),
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
    let kind = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["kind"].as_str().map(str::to_string))
        .and_then(|k| Kind::from_str(&k, true).ok());
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
