//! Export, the operation: the kinds asked for read from the site into tables (each kind's own
//! `export::read`, through `kinds::export_table`), then written atomically as CSV or XLSX
//! (`export::write`), with what was found besides the rows.
//! `cmd::export` checks the arguments, sets the site up and prints what this returns.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::error::Error;
use crate::export::reader::{Found, Reader, Settings};
use crate::export::write::{self, CsvOptions, ExportFormat};
use crate::export::{Kind, Table, fetch};
use crate::site::api::model::DetailFieldQuery;
use crate::site::client::{Client, Notify};

/// What an export wrote (summary.json of `--json`, and what is printed).
#[derive(Debug, serde::Serialize)]
pub struct ExportSummary {
    pub out: String,
    pub format: ExportFormat,
    /// Rows per kind.
    pub rows: BTreeMap<String, usize>,
    pub elapsed_s: f64,
    /// When the file was written (UTC, to the second): what the export shows of the site is
    /// as of then.
    pub written_at: String,
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
    /// Kinds and their row counts in the order they were exported (`rows` is by name).
    #[serde(skip)]
    pub tables: Vec<(Kind, usize)>,
}

/// The tables read, and what reading found besides their rows.
pub struct Read {
    tables: Vec<Table>,
    found: Found,
}

/// Reads `kinds` from the site, one after the other, each a few calls at a time.
pub async fn read(
    client: &Client,
    settings: Settings,
    ids: Option<&str>,
    query: &[DetailFieldQuery],
    kinds: &[Kind],
    notify: &dyn Notify,
) -> Result<Read, Error> {
    let reader = Reader {
        client,
        settings,
        ids,
        query,
        notify,
        found: Default::default(),
    };
    let mut tables = Vec::new();
    for kind in kinds {
        let table = crate::kinds::export_table(&reader, *kind).await?;
        notify.note(&format!("{}: {} rows", kind.as_str(), table.rows.len()));
        tables.push(table);
    }
    let found = reader.found.into_inner().expect("not poisoned");
    Ok(Read { tables, found })
}

/// Writes what was read to `out` (under a temporary name, renamed at the end) and says what
/// was written; exit 1 when `--ids` named something the site does not have.
pub async fn write(
    read: Read,
    out: &Path,
    format: ExportFormat,
    csv: CsvOptions,
    started: Instant,
) -> Result<ExportSummary, Error> {
    let Read { tables, found } = read;
    let counts: Vec<(Kind, usize)> = tables.iter().map(|t| (t.kind, t.rows.len())).collect();
    let path = out.to_path_buf();
    let sha256 = tokio::task::spawn_blocking(move || {
        write::write(&path, format, &tables, csv, write::Access::Umask)
    })
    .await
    .map_err(|e| Error::Usage(format!("the writer stopped: {e}")))?
    .map_err(|e| Error::Usage(e.to_string()))?;
    let exit_code = if found.unknown.is_empty() {
        crate::error::EXIT_OK
    } else {
        crate::error::EXIT_ROWS_FAILED
    };
    Ok(ExportSummary {
        written_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        out: out.display().to_string(),
        format,
        rows: counts
            .iter()
            .map(|(k, n)| (k.as_str().to_string(), *n))
            .collect(),
        elapsed_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        sha256,
        customer_sources: found.sources,
        skipped_sources: found.skipped,
        unknown_ids: found.unknown,
        exit_code,
        tables: counts,
    })
}
