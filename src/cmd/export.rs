//! `csmport export KIND... --out FILE`: reads what the site holds (`export::fetch`), builds
//! tables with the import templates' columns (`export`), and writes them atomically as CSV or
//! XLSX (`export::write`). Any read that fails after its retries fails the export (exit 3, or
//! 2 for a refusal) and nothing is left under the final name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{Cli, ExportArgs};
use crate::error::Error;
use crate::export::ExportKind;
use crate::export::fetch;
use crate::export::reader::{Reader, Settings};
use crate::export::write::{self, CsvOptions, ExportFormat};
use crate::site::client::{Client, Notify, retry};

/// `summary` of an export, printed (or given as JSON with --json).
#[derive(Debug, serde::Serialize)]
pub struct ExportSummary {
    pub out: String,
    pub format: ExportFormat,
    /// Rows per kind.
    pub rows: BTreeMap<String, usize>,
    pub elapsed_s: f64,
    pub sha256: String,
    /// Where customers were found, and how many each source gave (customers and
    /// entitlements without `--ids`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub customer_sources: Vec<fetch::SourceCount>,
    /// Listings that could not be read and were left out (`--allow-partial`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_sources: Vec<String>,
    /// What `--ids` names that the site does not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_ids: Vec<String>,
    pub exit_code: i32,
}

pub async fn run(cli: &Cli, args: &ExportArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let format = match args.format {
        Some(f) => f,
        None => format_of(&args.out)?,
    };
    let mut kinds: Vec<ExportKind> = Vec::new();
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
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Error::Usage(format!(
            "--rate must be a positive number, got {}",
            args.rate
        )));
    }
    let query = fetch::parse_where(&args.where_).map_err(Error::Usage)?;
    if !query.is_empty() && kinds.iter().any(|k| *k != ExportKind::Customers) {
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
    let notify: Arc<dyn Notify> = progress.clone();
    let policy = retry::Policy {
        max_attempts: args.retries.saturating_add(1),
        max_hint: std::time::Duration::from_secs(args.max_wait.max(1)),
        ..retry::Policy::default()
    };
    let client = Client::new(&target, args.rate, policy, notify.clone());
    let reader = Reader {
        client: &client,
        settings: Settings {
            concurrency: args.concurrency.clamp(1, 16),
            service_desk: args.service_desk.clone(),
            allow_partial: args.allow_partial,
        },
        ids: ids.as_deref(),
        query: &query,
        notify: &*notify,
        found: Default::default(),
    };
    let mut tables = Vec::new();
    for kind in &kinds {
        let table = reader.table(*kind).await?;
        notify.note(&format!("{}: {} rows", kind.as_str(), table.rows.len()));
        tables.push(table);
    }
    progress.finish();
    let csv = CsvOptions {
        bom: args.bom,
        delimiter: args.delimiter,
    };
    let out = args.out.clone();
    let tables_for_write = tables.clone();
    let sha256 =
        tokio::task::spawn_blocking(move || write::write(&out, format, &tables_for_write, csv))
            .await
            .map_err(|e| Error::Usage(format!("the writer stopped: {e}")))?
            .map_err(|e| Error::Usage(e.to_string()))?;
    let found = reader.found.into_inner().expect("not poisoned");
    let exit_code = if found.unknown.is_empty() {
        crate::error::EXIT_OK
    } else {
        crate::error::EXIT_ROWS_FAILED
    };
    let summary = ExportSummary {
        out: args.out.display().to_string(),
        format,
        rows: tables
            .iter()
            .map(|t| (t.kind.as_str().to_string(), t.rows.len()))
            .collect(),
        elapsed_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        sha256,
        customer_sources: found.sources,
        skipped_sources: found.skipped,
        unknown_ids: found.unknown,
        exit_code,
    };
    let mut text = format!(
        "exported {} to {} in {:.1}s (sha256 {})",
        tables
            .iter()
            .map(|t| format!(
                "{} ({} {})",
                t.kind.as_str(),
                t.rows.len(),
                rows_word(t.rows.len())
            ))
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
        std::fs::write(path, page).map_err(|e| {
            Error::Usage(format!(
                "{}: the report cannot be written: {e}",
                path.display()
            ))
        })?;
    }
    super::print_summary(cli, &text, &summary);
    if !summary.skipped_sources.is_empty() {
        eprintln!(
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
            eprintln!("  {s}");
        }
    }
    if !summary.unknown_ids.is_empty() {
        eprintln!(
            "csmport: --ids: {} not on the site (the file holds the others): {}",
            summary.unknown_ids.len(),
            summary.unknown_ids.join(", ")
        );
    }
    Ok(exit_code)
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
