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
    let format = match args.format {
        Some(f) => f,
        None => format_of(&args.out)?,
    };
    let mut kinds: Vec<Kind> = Vec::new();
    for k in &args.kinds {
        if !kinds.contains(k) {
            kinds.push(*k);
        }
    }
    if format == ExportFormat::Csv && kinds.len() > 1 {
        return Err(Error::Usage(format!(
            "{}: a CSV holds one kind; export {} to an .xlsx (one sheet each), or run one export per kind",
            args.out.display(),
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
    let read = job::read(
        &site.client,
        settings,
        ids.as_deref(),
        &query,
        &kinds,
        &*progress,
    )
    .await?;
    progress.finish();
    let csv = CsvOptions {
        bom: args.bom,
        delimiter: args.delimiter,
    };
    let summary = job::write(read, &args.out, format, csv, started).await?;
    let mut text = format!(
        "exported {} to {} in {:.1}s (sha256 {})",
        summary
            .tables
            .iter()
            .map(|(kind, n)| format!("{} ({n} {})", kind.as_str(), rows_word(*n)))
            .collect::<Vec<_>>()
            .join(", "),
        summary.out,
        summary.elapsed_s,
        &summary.sha256[..16]
    );
    if !summary.customer_sources.is_empty() {
        text.push_str("\n  customers found in ");
        text.push_str(
            &summary
                .customer_sources
                .iter()
                .map(|s| format!("{} ({})", s.source, s.customers))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(path) = &args.report {
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
    super::print_summary(cli, &text, &summary);
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

fn rows_word(n: usize) -> &'static str {
    if n == 1 { "row" } else { "rows" }
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
