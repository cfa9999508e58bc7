//! `csmport export KIND... --out FILE`: reads what the site holds (`export::fetch`), builds
//! tables with the import templates' columns (`export`), and writes them atomically as CSV or
//! XLSX (`export::write`). Any read that fails after its retries fails the export (exit 3, or
//! 2 for a refusal) and nothing is left under the final name.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{Cli, ExportArgs};
use crate::engine::export as job;
use crate::error::Error;
use crate::export::reader::Settings;
use crate::export::write::{CsvOptions, ExportFormat};
use crate::export::{Kind, fetch};
use crate::site::Site;
use crate::site::client::retry;

pub async fn run(cli: &Cli, args: &ExportArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let mut kinds: Vec<Kind> = Vec::new();
    for k in &args.kinds {
        if !kinds.contains(k) {
            kinds.push(*k);
        }
    }
    let names = job::names(
        &args.out,
        args.changes.as_deref(),
        args.report.as_deref(),
        &kinds,
        args.local_time,
        args.keep,
    )?;
    let out = names.out.as_path();
    let format = match args.format {
        Some(f) => f,
        None => format_of(out)?,
    };
    let changes = match &names.changes {
        Some(file) => Some(job::ChangesPlan {
            format: format_of(file)?,
            file: file.clone(),
            since: args.since.clone(),
            key: args.key.clone(),
        }),
        None => None,
    };
    if args.key.is_some() && !kinds.contains(&Kind::Organizations) {
        return Err(Error::Usage(
            "--key names the column organizations are told apart by: export organizations with it"
                .into(),
        ));
    }
    if let Some(plan) = &changes {
        plan.check(&kinds)?;
    }
    if format == ExportFormat::Csv && kinds.len() > 1 {
        return Err(Error::Usage(format!(
            "{}: a CSV holds one kind; export {} to an .xlsx (one sheet each), or run one export per kind",
            out.display(),
            kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    crate::options::check_rate(args.rate)?;
    let query = fetch::parse_where(&args.where_).map_err(Error::Usage)?;
    if !query.is_empty() && kinds.iter().any(|k| *k != Kind::Customers) {
        return Err(Error::Usage(
            "--where finds customers by a detail field: export only customers with it, the other kinds in another export".into(),
        ));
    }
    let ids = match &args.ids {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("--ids {}: cannot be read: {e}", p.display())))?,
        ),
        None => None,
    };
    // Held to the end: a second export to this file meanwhile is refused (exit 75).
    let (_lock, took_over) = job::lock(out)?;
    if let Some(note) = took_over {
        crate::errln!("csmport: note: {note}");
    }
    let (target, _sandbox) = super::resolve_target(cli).await?;
    let progress = Arc::new(crate::engine::progress::Progress::new(0));
    let policy = retry::Policy {
        max_attempts: args.retries.saturating_add(1),
        max_hint: std::time::Duration::from_secs(args.max_wait.max(1)),
        ..retry::Policy::default()
    };
    let site = Site::connect(&target, args.rate, policy, None, progress.clone());
    let settings = Settings {
        concurrency: args.concurrency.clamp(1, 16),
        service_desk: args.service_desk.clone(),
        allow_partial: args.allow_partial,
    };
    let reading = job::read(
        &site.client,
        settings,
        ids.as_deref(),
        &query,
        &kinds,
        &*progress,
        out,
        args.resume,
    );
    // Ctrl-C stops the reading where it is; what was read stays for --resume.
    crate::engine::interrupt::say_on_first("csmport: interrupted; keeping what was read");
    let read = tokio::select! {
        r = reading => r?,
        _ = crate::engine::interrupt::first() => {
            progress.finish();
            return Err(Error::Interrupted(format!(
                "export of {} interrupted; what was read is kept in {}: the same export with --resume goes on from there",
                out.display(),
                crate::export::spool::path_for(out).display()
            )));
        }
    };
    progress.finish();
    let csv = CsvOptions {
        bom: args.bom,
        delimiter: args.delimiter,
    };
    let mut summary = job::write(read, out, format, csv, changes, started).await?;
    if let Some(path) = &names.report {
        let page = crate::engine::html::render_export(
            &serde_json::to_value(&summary).expect("a summary serializes"),
            &format!("{} (cloud {})", target.base_url, target.cloud_id),
        );
        crate::fsx::replace(path, page.as_bytes()).map_err(|e| {
            Error::Usage(format!(
                "{}: the report cannot be written: {e}",
                path.display()
            ))
        })?;
    }
    if let Some(keep) = args.keep {
        for r in names.keep(keep) {
            match r {
                Ok(p) => summary.removed.push(p.display().to_string()),
                Err(e) => crate::errln!("csmport: --keep: {e}"),
            }
        }
    }
    super::print_summary(cli, &summary.text(), &summary);
    if !summary.skipped_sources.is_empty() {
        crate::errln!(
            "csmport: warning: the export is partial (--allow-partial): {} {} could not be read, so the customers only they hold are missing from {}:",
            summary.skipped_sources.len(),
            if summary.skipped_sources.len() == 1 {
                "listing"
            } else {
                "listings"
            },
            summary.out
        );
        for s in &summary.skipped_sources {
            crate::errln!("  {s}");
        }
    }
    if !summary.unknown_ids.is_empty() {
        crate::errln!(
            "csmport: --ids: {} not on the site (the file holds the others): {}",
            summary.unknown_ids.len(),
            summary.unknown_ids.join(", ")
        );
    }
    Ok(summary.exit_code)
}

fn format_of(out: &Path) -> Result<ExportFormat, Error> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => Ok(ExportFormat::Csv),
        Some("xlsx") => Ok(ExportFormat::Xlsx),
        _ => Err(Error::Usage(format!(
            "--out {}: give a .csv or .xlsx file, or --format csv|xlsx",
            out.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert!(format_of(Path::new("a/b.XLSX")).is_ok());
        assert!(format_of(Path::new("a/b.txt")).is_err());
    }
}
