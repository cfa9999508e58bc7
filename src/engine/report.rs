//! Report stage: writes the run folder's `failures.csv` and `successes.csv` row by row, in input
//! order, keeping the input's own columns and cells unchanged so a failure report can be edited
//! and fed back in; and `summary.json` at the end. Rows still open (their outcome not known
//! yet) go to `failures.csv` with `_stage` `open`, counted as skipped: `resume` finishes them.
//! Reads rows as `row` defines them; written by `run`.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use csmport_api::text::one_line;
use serde::Serialize;

use crate::map::normalize;
use crate::read::{RawRow, escape_formula};

use super::reread::{RAW_COLUMN, raw_text};
use crate::row::{Outcome, Row, Stage, State};

pub const FAILURES_FILE: &str = "failures.csv";
pub const SUCCESSES_FILE: &str = "successes.csv";
pub const SUMMARY_FILE: &str = "summary.json";

/// The `_stage` of a row whose outcome is not known yet.
pub const OPEN_STAGE: &str = "open";
/// `_stage` of a row skipped on purpose (a mapping's skip rule, nothing to delete, a run that
/// stopped before it): in the report so it can be looked at or run again.
pub const SKIPPED_STAGE: &str = "skipped";

/// Counts that always satisfy `rows == succeeded + failed + skipped (+ not_read)`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub rows: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Of the skipped rows, those whose outcome is not known yet (not sent, or sent with no
    /// answer that settles them): `csmport resume` finishes them.
    pub open: u64,
    /// Of the skipped rows, those whose every cell is empty: they need nothing and are in no
    /// report, so they are counted here (`blank_lines_skipped` counts lines with no cells).
    #[serde(rename = "blank_rows")]
    pub blank: u64,
    /// Rows of the input not read because the run was interrupted (counted in `rows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_read: Option<u64>,
    pub failed_by_stage: StageCounts,
    /// `--verify`: what reading the succeeded rows back found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<VerifyCounts>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyCounts {
    pub confirmed: u64,
    pub drifted: u64,
    pub missing: u64,
    pub unverifiable: u64,
}

/// What reading a written row back found (`--verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The site has it as sent.
    Confirmed,
    /// The site has it, with other values.
    Drifted,
    /// The site does not have it.
    Missing,
    /// It could not be read back (customers by email without `--service-desk`, a failed read).
    Unverifiable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Drifted => "drifted",
            Verdict::Missing => "missing",
            Verdict::Unverifiable => "unverifiable",
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct StageCounts {
    pub read: u64,
    pub validate: u64,
    /// Only when some row failed there (older summaries have no such key).
    #[serde(skip_serializing_if = "is_zero")]
    pub resolve: u64,
    pub send: u64,
    pub task: u64,
}

pub struct ReportWriter {
    failures: csv::Writer<BufWriter<File>>,
    successes: Option<csv::Writer<BufWriter<File>>>,
    /// `--verify`: successes.csv has a `_verified` column.
    verify: bool,
    /// Indexes of the input columns that are copied (those not starting with `_`).
    keep: Vec<usize>,
    /// An input that is itself a report: its `_raw` column, carried over.
    raw_at: Option<usize>,
    /// An input that is itself a report: its `_row` and `_source` columns, carried over, so
    /// along a retry chain a row keeps its number in the file it first came from.
    row_at: Option<usize>,
    source_at: Option<usize>,
    /// The file rows come from, for `_source` (the input, or the first file of a chain).
    pub source: String,
    header_len: usize,
    pub counts: Counts,
}

pub use crate::error::ReportError;

impl ReportWriter {
    pub fn create(dir: &Path, header: &[String]) -> Result<ReportWriter, ReportError> {
        ReportWriter::with_successes(dir, header, true)
    }

    /// An import's reports; with `verify`, successes.csv says what reading each row back found.
    pub fn create_verified(
        dir: &Path,
        header: &[String],
        verify: bool,
    ) -> Result<ReportWriter, ReportError> {
        let mut w = ReportWriter::with_successes_and(dir, header, true, verify)?;
        w.verify = verify;
        Ok(w)
    }

    /// `successes` false: only the failure report (a validation run sends nothing).
    pub fn with_successes(
        dir: &Path,
        header: &[String],
        successes: bool,
    ) -> Result<ReportWriter, ReportError> {
        ReportWriter::with_successes_and(dir, header, successes, false)
    }

    fn with_successes_and(
        dir: &Path,
        header: &[String],
        successes: bool,
        verify: bool,
    ) -> Result<ReportWriter, ReportError> {
        // Columns of an earlier report (`_row`, `_error`, ...) are dropped: they are ours, and
        // this run writes fresh ones.
        let keep: Vec<usize> = (0..header.len())
            .filter(|&i| !header[i].trim_start_matches('\u{feff}').starts_with('_'))
            .collect();
        let escaped: Vec<_> = keep.iter().map(|&i| escape_formula(&header[i])).collect();
        let base: Vec<&str> = escaped.iter().map(|c| c.as_ref()).collect();
        let open =
            |name: &str, extra: &[&str]| -> Result<csv::Writer<BufWriter<File>>, ReportError> {
                let path = dir.join(name);
                let mut w = csv_writer(&path)?;
                let mut h = base.clone();
                h.extend_from_slice(extra);
                w.write_record(&h).map_err(|e| csv_err(&path, e))?;
                Ok(w)
            };
        Ok(ReportWriter {
            failures: open(
                FAILURES_FILE,
                &[
                    "_row",
                    "_stage",
                    "_field",
                    "_error",
                    RAW_COLUMN,
                    SOURCE_COLUMN,
                ],
            )?,
            successes: if successes && verify {
                Some(open(
                    SUCCESSES_FILE,
                    &["_row", "_id", "_verified", SOURCE_COLUMN],
                )?)
            } else if successes {
                Some(open(SUCCESSES_FILE, &["_row", "_id", SOURCE_COLUMN])?)
            } else {
                None
            },
            verify,
            raw_at: header.iter().position(|h| normalize(h) == RAW_COLUMN),
            row_at: header.iter().position(|h| normalize(h) == "_row"),
            source_at: header.iter().position(|h| normalize(h) == SOURCE_COLUMN),
            source: String::new(),
            keep,
            header_len: header.len(),
            counts: Counts::default(),
        })
    }

    /// The rows come from `file`: `_source` names it, or, for a report's rows, the file they
    /// first came from (as its run folder says).
    pub fn reads(&mut self, file: &Path) {
        let source = if self.row_at.is_some() && self.source_at.is_none() {
            super::reread::origin(file).unwrap_or_else(|| file.to_path_buf())
        } else {
            file.to_path_buf()
        };
        self.source = source.display().to_string();
    }

    /// Counts a succeeded row that is not written anywhere (validate: no successes report).
    pub fn count_success(&mut self) {
        debug_assert!(self.successes.is_none());
        self.counts.rows += 1;
        self.counts.succeeded += 1;
    }

    /// Writes one row with its outcome. Rows must come in input order.
    pub fn write(&mut self, row: &Row, dir: &Path) -> Result<(), ReportError> {
        self.write_verified(row, None, dir)
    }

    /// `write`, with what `--verify` found for a succeeded row.
    pub fn write_verified(
        &mut self,
        row: &Row,
        verdict: Option<Verdict>,
        dir: &Path,
    ) -> Result<(), ReportError> {
        self.counts.rows += 1;
        // Reports are opened in spreadsheets to be fixed: a cell that would run as a formula
        // gets the export's leading `'`, which reading the report back takes off.
        let cells: Vec<std::borrow::Cow<str>> = self
            .keep
            .iter()
            .map(|&i| escape_formula(row.raw.cells.get(i).unwrap_or("")))
            .collect();
        let mut record: Vec<&str> = cells.iter().map(|c| c.as_ref()).collect();
        let carried = |at: Option<usize>| {
            at.and_then(|i| row.raw.cells.get(i))
                .map(str::trim)
                .filter(|c| !c.is_empty())
        };
        let row_no = carried(self.row_at)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .unwrap_or_else(|| row.raw.row.to_string());
        let source = carried(self.source_at).unwrap_or(self.source.as_str());
        record.push(&row_no);
        let outcome = match &row.state() {
            State::Closed(o) => o,
            _ => {
                self.counts.skipped += 1;
                self.counts.open += 1;
                let why = if row.note.is_empty() {
                    "outcome unknown; `csmport resume` on this run folder finishes it"
                } else {
                    row.note.as_str()
                };
                record.extend([OPEN_STAGE, "", why, "", source]);
                return self
                    .failures
                    .write_record(&record)
                    .map_err(|e| csv_err(&dir.join(FAILURES_FILE), e));
            }
        };
        match outcome {
            Outcome::Succeeded { id } => {
                self.counts.succeeded += 1;
                record.push(id.as_deref().unwrap_or(""));
                if self.verify {
                    let v = self.counts.verified.get_or_insert_with(Default::default);
                    *match verdict {
                        Some(Verdict::Confirmed) => &mut v.confirmed,
                        Some(Verdict::Drifted) => &mut v.drifted,
                        Some(Verdict::Missing) => &mut v.missing,
                        Some(Verdict::Unverifiable) | None => &mut v.unverifiable,
                    } += 1;
                    record.push(verdict.map(Verdict::as_str).unwrap_or("not verified"));
                }
                record.push(source);
                if let Some(w) = &mut self.successes {
                    w.write_record(&record)
                        .map_err(|e| csv_err(&dir.join(SUCCESSES_FILE), e))?;
                }
            }
            Outcome::Failed {
                stage,
                field,
                error,
            } => {
                self.counts.failed += 1;
                let c = &mut self.counts.failed_by_stage;
                *match stage {
                    Stage::Read => &mut c.read,
                    Stage::Validate => &mut c.validate,
                    Stage::Resolve => &mut c.resolve,
                    Stage::Send => &mut c.send,
                    Stage::Task => &mut c.task,
                } += 1;
                let extra = self.extra_cells(row);
                let error = match extra {
                    Some(x) => format!("{error}; extra cells beyond the header: {x}"),
                    None => error.clone(),
                };
                // Every failed row keeps its record as read: a retry tells a spreadsheet's
                // changes to its cells from the user's edits by it.
                let raw = self.raw_of(row);
                // Our reason on one line (a server's text in it shows its controls); the row's
                // own cells stay as they were read.
                let (field, error) = (one_line(field), one_line(&error));
                let (field, error, raw) = (
                    escape_formula(&field),
                    escape_formula(&error),
                    escape_formula(&raw),
                );
                record.extend([stage.as_str(), &field, &error, &raw, source]);
                self.failures
                    .write_record(&record)
                    .map_err(|e| csv_err(&dir.join(FAILURES_FILE), e))?;
            }
            Outcome::Skipped { reason } => {
                self.counts.skipped += 1;
                // Blank rows need nothing; rows skipped because the run stopped must be re-run,
                // so they go to the failure report too.
                if row.raw.is_blank() {
                    self.counts.blank += 1;
                } else {
                    let reason = one_line(reason);
                    let raw = escape_formula(&self.raw_of(row)).into_owned();
                    record.extend([SKIPPED_STAGE, "", &reason, &raw, source]);
                    self.failures
                        .write_record(&record)
                        .map_err(|e| csv_err(&dir.join(FAILURES_FILE), e))?;
                }
            }
        }
        Ok(())
    }

    /// The row's `_raw`: carried over from an input report (the record as first read), or the
    /// input cells the report writes and the cells beyond the header.
    fn raw_of(&self, row: &Row) -> String {
        let carried = self
            .raw_at
            .and_then(|i| row.raw.cells.get(i))
            .map(crate::read::unescape_formula)
            .filter(|c| !c.is_empty());
        if let Some(c) = carried {
            return c.to_string();
        }
        let cells = &row.raw.cells;
        raw_text(
            self.keep
                .iter()
                .map(|&i| cells.get(i).unwrap_or(""))
                .chain(cells.iter().skip(self.header_len)),
        )
    }

    fn extra_cells(&self, row: &Row) -> Option<String> {
        (row.raw.cells.len() > self.header_len).then(|| {
            row.raw
                .cells
                .iter()
                .skip(self.header_len)
                .collect::<Vec<_>>()
                .join(" | ")
        })
    }

    pub fn finish(mut self, dir: &Path) -> Result<Counts, ReportError> {
        self.failures.flush().map_err(|source| ReportError {
            path: dir.join(FAILURES_FILE),
            source,
        })?;
        if let Some(w) = &mut self.successes {
            w.flush().map_err(|source| ReportError {
                path: dir.join(SUCCESSES_FILE),
                source,
            })?;
        }
        Ok(self.counts)
    }
}

/// The report column naming the file a row's `_row` counts in.
pub const SOURCE_COLUMN: &str = "_source";

/// The workbook beside failures.csv.
pub const FAILURES_XLSX: &str = "failures.xlsx";

/// Writes `failures.xlsx` beside the folder's failures.csv: the same rows with every cell as
/// text, so a spreadsheet keeps leading zeros, long digit strings and dates as typed, and
/// `retry` takes it as it takes the CSV. No failures: no workbook (an old one goes). Returns
/// why there is none when the rows do not fit a sheet.
pub fn write_failures_xlsx(dir: &Path) -> Result<Option<String>, ReportError> {
    let csv_path = dir.join(FAILURES_FILE);
    let path = dir.join(FAILURES_XLSX);
    let err = |source| ReportError {
        path: path.clone(),
        source,
    };
    let _ = std::fs::remove_file(&path);
    let Ok(file) = crate::fsx::open_text(&csv_path) else {
        return Ok(None);
    };
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let mut book = rust_xlsxwriter::Workbook::new();
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    let xlsx = |e: rust_xlsxwriter::XlsxError| err(std::io::Error::other(e.to_string()));
    let sheet = book.add_worksheet_with_constant_memory().map_err(xlsx)?;
    sheet.set_name("failures").map_err(xlsx)?;
    let header = r
        .headers()
        .map_err(|e| err(std::io::Error::other(e)))?
        .clone();
    for (c, h) in header.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, h, &text)
            .map_err(xlsx)?;
    }
    let mut rows = 0u32;
    for rec in r.records() {
        let rec = rec.map_err(|e| err(std::io::Error::other(e)))?;
        rows += 1;
        if rows >= 1_048_576 {
            return Ok(Some(format!(
                "{FAILURES_XLSX} not written: more failed rows than a sheet holds (failures.csv has them all)"
            )));
        }
        for (c, cell) in rec.iter().enumerate() {
            if cell.chars().count() > 32_767 {
                return Ok(Some(format!(
                    "{FAILURES_XLSX} not written: row {rows} has a cell longer than a spreadsheet cell holds (failures.csv has it whole)"
                )));
            }
            if !cell.is_empty() {
                sheet
                    .write_string_with_format(rows, c as u16, cell, &text)
                    .map_err(xlsx)?;
            }
        }
    }
    if rows == 0 {
        return Ok(None);
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    book.save_to_writer(tmp.as_file_mut()).map_err(xlsx)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(None)
}

/// Merges the failure rows of `other`'s failures.csv (same columns) into `dir`'s, both in row
/// order, so the report reads as one pass would have written it.
pub fn merge_failures(dir: &Path, other: &Path) -> Result<(), ReportError> {
    let target = dir.join(FAILURES_FILE);
    let open = |path: &Path| {
        crate::fsx::open_text(path)
            .map(|f| csv::ReaderBuilder::new().from_reader(f))
            .map_err(|source| ReportError {
                path: path.to_path_buf(),
                source,
            })
    };
    let extra_path = other.join(FAILURES_FILE);
    let mut a = open(&target)?;
    let mut b = open(&extra_path)?;
    let header = a.byte_headers().map_err(|e| csv_err(&target, e))?.clone();
    let at = header
        .iter()
        .position(|h| h == b"_row")
        .ok_or_else(|| ReportError {
            path: target.clone(),
            source: std::io::Error::other("no _row column"),
        })?;
    let row_of = |r: &csv::ByteRecord| {
        std::str::from_utf8(r.get(at).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    };
    let merged_path = dir.join(format!("{FAILURES_FILE}.merging"));
    let mut w = csv_writer(&merged_path)?;
    w.write_byte_record(&header)
        .map_err(|e| csv_err(&merged_path, e))?;
    let next = |r: &mut csv::Reader<std::io::BufReader<File>>,
                path: &Path|
     -> Result<Option<csv::ByteRecord>, ReportError> {
        let mut rec = csv::ByteRecord::new();
        match r.read_byte_record(&mut rec) {
            Ok(true) => Ok(Some(rec)),
            Ok(false) => Ok(None),
            Err(e) => Err(csv_err(path, e)),
        }
    };
    let (mut x, mut y) = (next(&mut a, &target)?, next(&mut b, &extra_path)?);
    loop {
        let take_x = match (&x, &y) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(p), Some(q)) => row_of(p) <= row_of(q),
        };
        let rec = if take_x {
            std::mem::replace(&mut x, next(&mut a, &target)?)
        } else {
            std::mem::replace(&mut y, next(&mut b, &extra_path)?)
        };
        w.write_byte_record(&rec.expect("one side has a record"))
            .map_err(|e| csv_err(&merged_path, e))?;
    }
    w.flush().map_err(|source| ReportError {
        path: merged_path.clone(),
        source,
    })?;
    drop(w);
    std::fs::rename(&merged_path, &target).map_err(|source| ReportError {
        path: target.clone(),
        source,
    })
}

/// A report file, created (or emptied) at `path`.
/// `n noun`, with the plural when n is not 1 (summaries, status).
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if noun.ends_with("ch") || noun.ends_with('s') {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

pub const WARNINGS_FILE: &str = "warnings.csv";

/// `warnings.csv`: every cell a row was imported without (an invalid value of a column marked
/// `blank`), with the row's input columns, `_row`, `_field`, `_value` and `_warning`. Made
/// when the first warning comes; a resumed run reads every row again, so it starts afresh.
pub struct WarningsWriter {
    path: std::path::PathBuf,
    header: Vec<String>,
    keep: Vec<usize>,
    w: Option<csv::Writer<BufWriter<File>>>,
    pub count: u64,
}

impl WarningsWriter {
    pub fn new(dir: &Path, header: &[String]) -> WarningsWriter {
        let path = dir.join(WARNINGS_FILE);
        let _ = std::fs::remove_file(&path);
        WarningsWriter {
            path,
            keep: (0..header.len())
                .filter(|&i| !header[i].trim_start_matches('\u{feff}').starts_with('_'))
                .collect(),
            header: header.to_vec(),
            w: None,
            count: 0,
        }
    }

    pub fn write(
        &mut self,
        row: &RawRow,
        field: &str,
        value: &str,
        warning: &str,
    ) -> Result<(), ReportError> {
        if self.w.is_none() {
            let mut w = csv_writer(&self.path)?;
            let mut h: Vec<std::borrow::Cow<str>> = self
                .keep
                .iter()
                .map(|&i| escape_formula(&self.header[i]))
                .collect();
            h.extend(["_row", "_field", "_value", "_warning"].map(std::borrow::Cow::from));
            w.write_record(h.iter().map(|c| c.as_ref()))
                .map_err(|e| csv_err(&self.path, e))?;
            self.w = Some(w);
        }
        let w = self.w.as_mut().expect("opened above");
        let mut record: Vec<std::borrow::Cow<str>> = self
            .keep
            .iter()
            .map(|&i| escape_formula(row.cells.get(i).unwrap_or("")))
            .collect();
        let n = row.row.to_string();
        record.push(std::borrow::Cow::Owned(n));
        record.push(escape_formula(field));
        record.push(escape_formula(value));
        record.push(escape_formula(warning));
        w.write_record(record.iter().map(|c| c.as_ref()))
            .map_err(|e| csv_err(&self.path, e))?;
        self.count += 1;
        Ok(())
    }

    /// Flushes the file; how many warnings it holds.
    pub fn finish(self) -> Result<u64, ReportError> {
        if let Some(mut w) = self.w {
            w.flush().map_err(|source| ReportError {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(self.count)
    }
}

/// A report's writer: a new private file that starts with a UTF-8 byte-order mark, so a
/// spreadsheet's default open reads it as UTF-8 (not `NÃºÃ±ez` for `Núñez`).
fn csv_writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>, ReportError> {
    use std::io::Write;
    let err = |source| ReportError {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufWriter::new(crate::fsx::create_private(path).map_err(err)?);
    file.write_all(crate::fsx::UTF8_BOM).map_err(err)?;
    Ok(csv::WriterBuilder::new().flexible(false).from_writer(file))
}

fn csv_err(path: &Path, e: csv::Error) -> ReportError {
    ReportError {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Each time the run was run (the first, then every `resume`), in order; the figures above
    /// (`started_at`, `batches`, `tasks`, `elapsed_s`, `rows_per_s`) are the whole run's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    pub kind: String,
    /// `delete` for `csmport delete` (an import has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    pub input: String,
    pub run_dir: String,
    pub target: String,
    pub started_at: String,
    pub finished_at: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub batches: u64,
    pub tasks: u64,
    /// Task status polls per task followed (0 when none was).
    pub polls_per_task: f64,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    pub interrupted: bool,
    pub exit_code: i32,
    /// Rows already on the site as the file has them (nothing was sent for them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<u64>,
    /// What the reader detected (encoding, delimiter, sheet, header row, blank lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<crate::read::Dialect>,
    /// The data rows a trial run took (`--limit`, `--rows`), e.g. "1-10".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_range: Option<String>,
    /// Organizations the run created because rows named them (customers), in order.
    pub created_organizations: Vec<String>,
    /// The file in the run folder that keeps what the run removed (detail values its DELETE
    /// operations cleared), to import to put them back; and how many rows it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_rows: Option<u64>,
    /// Detail-field definitions the run edited (`--update-definitions`), in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_definitions: Vec<String>,
    /// Columns that matched no field and were left out (`--ignore-unknown-columns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_columns: Vec<String>,
    /// Cells rows were imported without (invalid values of columns marked `blank`), listed in
    /// warnings.csv.
    pub warnings: u64,
    /// Every input column and what became of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<crate::map::ColumnUse>,
}

/// `summary.json` of a validation (or a dry run): what the rows would do.
#[derive(Debug, Clone, Serialize)]
pub struct ValidateSummary {
    pub kind: String,
    pub input: String,
    pub run_dir: String,
    pub dialect: crate::read::Dialect,
    #[serde(flatten)]
    pub counts: Counts,
    /// Rows that would be sent.
    pub valid: u64,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_error: Option<String>,
    /// Columns that matched no field and were left out (`--ignore-unknown-columns`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_columns: Vec<String>,
    /// Cells valid rows would be imported without (warnings.csv).
    #[serde(default)]
    pub warnings: u64,
    /// Every input column and what became of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<crate::map::ColumnUse>,
    /// The data rows a trial run took (`--limit`, `--rows`), e.g. "1-10".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_range: Option<String>,
    /// Detail-field definitions an import would edit (`--update-definitions`), in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_change_definitions: Vec<String>,
    pub exit_code: i32,
}

pub fn write_validate_summary(dir: &Path, summary: &ValidateSummary) -> Result<(), ReportError> {
    let path = dir.join(SUMMARY_FILE);
    let text = serde_json::to_string_pretty(summary).expect("summary serializes") + "\n";
    crate::fsx::write_private(&path, text.as_bytes()).map_err(|source| ReportError { path, source })
}

/// One time a run was run: its start and end, time spent and what it sent. An attempt that
/// ended without a summary (killed) has no end, time or figures.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Attempt {
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
    #[serde(default)]
    pub batches: u64,
    #[serde(default)]
    pub tasks: u64,
    /// Task status polls, and the tasks they followed.
    #[serde(default)]
    pub polls: u64,
    #[serde(default)]
    pub polled: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub interrupted: bool,
}

/// The attempts before this one, as the folder's summary.json tells them (its `attempts`, or
/// the one it describes); none when there is no summary: then the run began at `began` and
/// ended unrecorded (killed).
pub fn earlier_attempts(dir: &Path, began: &str) -> Vec<Attempt> {
    let Ok(text) = std::fs::read_to_string(dir.join(SUMMARY_FILE)) else {
        return vec![Attempt {
            started_at: began.to_string(),
            finished_at: None,
            elapsed_s: None,
            batches: 0,
            tasks: 0,
            polls: 0,
            polled: 0,
            exit_code: None,
            interrupted: false,
        }];
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if let Some(a) = v.get("attempts").cloned()
        && let Ok(list) = serde_json::from_value::<Vec<Attempt>>(a)
        && !list.is_empty()
    {
        return list;
    }
    vec![Attempt {
        started_at: v["started_at"].as_str().unwrap_or(began).to_string(),
        finished_at: v["finished_at"].as_str().map(str::to_string),
        elapsed_s: v["elapsed_s"].as_f64(),
        batches: v["batches"].as_u64().unwrap_or(0),
        tasks: v["tasks"].as_u64().unwrap_or(0),
        polls: 0,
        polled: 0,
        exit_code: v["exit_code"].as_i64().map(|c| c as i32),
        interrupted: v["interrupted"].as_bool().unwrap_or(false),
    }]
}

/// A run's figures over all its attempts.
pub struct Whole {
    pub started_at: String,
    pub batches: u64,
    pub tasks: u64,
    pub polls_per_task: f64,
    pub elapsed_s: f64,
    /// Rows with an outcome per second of time spent.
    pub rows_per_s: f64,
}

/// The figures of `attempts` together; `journal`: (batches sent, tasks) as the journal has
/// them, the floor when an attempt ended unrecorded (killed).
pub fn whole_run(attempts: &[Attempt], counts: &Counts, journal: Option<(u64, u64)>) -> Whole {
    let mut batches: u64 = attempts.iter().map(|a| a.batches).sum();
    let mut tasks: u64 = attempts.iter().map(|a| a.tasks).sum();
    if let Some((b, t)) = journal.filter(|_| attempts.iter().any(|a| a.finished_at.is_none())) {
        batches = batches.max(b);
        tasks = tasks.max(t);
    }
    let elapsed: f64 = attempts.iter().filter_map(|a| a.elapsed_s).sum();
    let closed = (counts.succeeded + counts.failed + counts.skipped).saturating_sub(counts.open);
    let polls: u64 = attempts.iter().map(|a| a.polls).sum();
    let polled: u64 = attempts.iter().map(|a| a.polled).sum();
    let polls_per_task = if polled == 0 {
        0.0
    } else {
        (polls as f64 / polled as f64 * 100.0).round() / 100.0
    };
    Whole {
        started_at: attempts
            .first()
            .map(|a| a.started_at.clone())
            .unwrap_or_default(),
        polls_per_task,
        batches,
        tasks,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        rows_per_s: if elapsed > 0.0 {
            (closed as f64 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
    }
}

/// The summary's times: start and end (UTC, to the second), run time and pace.
pub struct Timing {
    pub started_at: String,
    pub finished_at: String,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
}

pub fn timing(started_at: jiff::Timestamp, elapsed: std::time::Duration, rows: u64) -> Timing {
    let secs = elapsed.as_secs_f64();
    let stamp = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    Timing {
        started_at: stamp(started_at),
        finished_at: stamp(jiff::Timestamp::now()),
        elapsed_s: (secs * 1000.0).round() / 1000.0,
        rows_per_s: if secs > 0.0 {
            (rows as f64 / secs * 10.0).round() / 10.0
        } else {
            0.0
        },
    }
}

pub fn write_summary(dir: &Path, s: &Summary) -> Result<(), ReportError> {
    let path = dir.join(SUMMARY_FILE);
    let mut text = serde_json::to_string_pretty(s).expect("summary serializes");
    text.push('\n');
    crate::fsx::write_private(&path, text.as_bytes()).map_err(|source| ReportError { path, source })
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report's text, once it is known to start with a byte-order mark.
    fn report_text(path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap();
        text.strip_prefix('\u{feff}')
            .unwrap_or_else(|| panic!("{}: no byte-order mark", path.display()))
            .to_string()
    }
    use crate::read::RawRow;

    fn row(n: u64, cells: &[&str], outcome: Option<Outcome>) -> Row {
        let mut r = Row::new(RawRow {
            row: n,
            cells: csv::StringRecord::from(cells.to_vec()),
            problem: None,
        });
        match outcome {
            Some(o) => r.close(o),
            None => {
                r.apply(crate::row::Event::Planned);
                r.note = "not sent: the run was interrupted before this row was sent".into();
            }
        }
        r
    }

    #[test]
    fn reports_keep_input_cells_and_drop_old_status_columns() {
        let dir = tempfile::tempdir().unwrap();
        let header: Vec<String> = ["email", "notes", "_row", "_error"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut w = ReportWriter::create(dir.path(), &header).unwrap();
        let rows = [
            row(
                1,
                &["a@x.io", "hi, \"there\"\nyou", "9", "old"],
                Some(Outcome::Succeeded { id: None }),
            ),
            row(
                2,
                &["bad", "n", "", ""],
                Some(Outcome::Failed {
                    stage: Stage::Validate,
                    field: "email".into(),
                    error: "not valid".into(),
                }),
            ),
            row(
                3,
                &["", "", "", ""],
                Some(Outcome::Skipped {
                    reason: "blank row".into(),
                }),
            ),
            row(4, &["c@x.io", "", "", "", "extra"], None),
        ];
        for r in &rows {
            w.write(r, dir.path()).unwrap();
        }
        let counts = w.finish(dir.path()).unwrap();
        assert_eq!(
            (
                counts.rows,
                counts.succeeded,
                counts.failed,
                counts.skipped,
                counts.open
            ),
            (4, 1, 1, 2, 1)
        );
        let failures = report_text(&dir.path().join(FAILURES_FILE));
        insta::assert_snapshot!(failures, @r#"
        email,notes,_row,_stage,_field,_error,_raw,_source
        bad,n,2,validate,email,not valid,"bad,n",
        c@x.io,,4,open,,not sent: the run was interrupted before this row was sent,,
        "#);
        let successes = report_text(&dir.path().join(SUCCESSES_FILE));
        insta::assert_snapshot!(successes, @r#"
        email,notes,_row,_id,_source
        a@x.io,"hi, ""there""
        you",9,,
        "#);
    }

    #[test]
    fn report_cells_a_spreadsheet_would_run_are_defused() {
        let dir = tempfile::tempdir().unwrap();
        let header: Vec<String> = ["email", "=notes", "phone"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut w = ReportWriter::create(dir.path(), &header).unwrap();
        let rows = [
            row(
                1,
                &["a@x.io", "=HYPERLINK(\"http://x\")", "+44 20 7946 0000"],
                Some(Outcome::Succeeded {
                    id: Some("7".into()),
                }),
            ),
            row(
                2,
                &["@bad", "-5", "'=already"],
                Some(Outcome::Failed {
                    stage: Stage::Validate,
                    field: "email".into(),
                    error: "not valid".into(),
                }),
            ),
        ];
        for r in &rows {
            w.write(r, dir.path()).unwrap();
        }
        w.finish(dir.path()).unwrap();
        let failures = report_text(&dir.path().join(FAILURES_FILE));
        insta::assert_snapshot!(failures, @r#"
        email,'=notes,phone,_row,_stage,_field,_error,_raw,_source
        '@bad,-5,'=already,2,validate,email,not valid,"'@bad,-5,'=already",
        "#);
        let successes = report_text(&dir.path().join(SUCCESSES_FILE));
        insta::assert_snapshot!(successes, @r#"
        email,'=notes,phone,_row,_id,_source
        a@x.io,"'=HYPERLINK(""http://x"")",+44 20 7946 0000,1,7,
        "#);
    }
}
