//! Spreadsheet reader (XLSX/XLSM and XLSB by streaming calamine's cell reader; XLS and ODS
//! through calamine's range, which those formats require). A reader thread owns the workbook
//! and sends finished rows through a small bounded channel, so memory holds the shared strings
//! and a few rows, not the sheet. Cells become text the way a user sees them: integers without
//! `.0`, dates as ISO dates (1900 and 1904 systems), formulas as their cached values, error
//! cells as row problems. Part of the read stage; `map` consumes its rows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{Data, Reader, Sheets, open_workbook_auto};

use super::{Dialect, RawRow, ReadError, ReadOptions};

pub const EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];
/// Messages sent together (one channel hand-over per batch, not per row), and batches buffered.
const BATCH: usize = 256;
const CHANNEL_BATCHES: usize = 4;

enum Msg {
    Header {
        header: Vec<String>,
        dialect: Dialect,
        total_rows: u64,
    },
    Row(RawRow),
    Blank,
    Error(ReadError),
}

pub struct SheetSource {
    header: Vec<String>,
    rx: Receiver<Vec<Msg>>,
    current: std::vec::IntoIter<Msg>,
    dialect: Dialect,
    rows_done: Arc<AtomicU64>,
    total_rows: u64,
}

impl SheetSource {
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<SheetSource, ReadError> {
        let (tx, rx) = sync_channel(CHANNEL_BATCHES);
        let rows_done = Arc::new(AtomicU64::new(0));
        let (p, o, done) = (path.to_path_buf(), opts.clone(), rows_done.clone());
        std::thread::Builder::new()
            .name("sheet-reader".into())
            .spawn(move || {
                if let Err(e) = read_sheet(&p, &o, &tx, &done) {
                    let _ = tx.send(vec![Msg::Error(e)]);
                }
            })
            .map_err(|source| ReadError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let mut first = rx.recv().map(Vec::into_iter);
        match first.as_mut().ok().and_then(Iterator::next) {
            Some(Msg::Header {
                header,
                dialect,
                total_rows,
            }) => Ok(SheetSource {
                header,
                rx,
                current: first.expect("received").collect::<Vec<_>>().into_iter(),
                dialect,
                rows_done,
                total_rows,
            }),
            Some(Msg::Error(e)) => Err(e),
            _ => Err(ReadError::Spreadsheet {
                path: path.to_path_buf(),
                why: "the reader stopped before the header".into(),
            }),
        }
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        loop {
            let msg = match self.current.next() {
                Some(m) => m,
                None => {
                    self.current = self.rx.recv().ok()?.into_iter();
                    continue;
                }
            };
            return match msg {
                Msg::Row(r) => Some(Ok(r)),
                Msg::Blank => {
                    self.dialect.blank_lines_skipped += 1;
                    continue;
                }
                Msg::Error(e) => Some(Err(e)),
                Msg::Header { .. } => None,
            };
        }
    }

    pub fn progress(&self) -> (u64, u64) {
        (self.rows_done.load(Ordering::Relaxed), self.total_rows)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect.clone()
    }
}

fn sheet_err(path: &Path, why: impl std::fmt::Display) -> ReadError {
    ReadError::Spreadsheet {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Runs in the reader thread: picks the sheet, then streams its cells into rows.
fn read_sheet(
    path: &Path,
    opts: &ReadOptions,
    tx: &SyncSender<Vec<Msg>>,
    done: &AtomicU64,
) -> Result<(), ReadError> {
    std::fs::metadata(path).map_err(|source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut wb = open_workbook_auto(path).map_err(|e| {
        sheet_err(
            path,
            format!("{e} (is it a complete, unprotected workbook?)"),
        )
    })?;
    let names = wb.sheet_names();
    if names.is_empty() {
        return Err(sheet_err(path, "the workbook has no sheets"));
    }
    let name = match &opts.sheet {
        Some(s) => pick_sheet(&names, s).ok_or_else(|| {
            sheet_err(
                path,
                format!(
                    "no sheet '{s}'; the sheets are: {} (give a name or a 1-based number)",
                    names.join(", ")
                ),
            )
        })?,
        None => first_non_empty(&mut wb, &names).ok_or_else(|| ReadError::Empty {
            path: path.to_path_buf(),
        })?,
    };
    let format = match &wb {
        Sheets::Xlsx(_) => "XLSX",
        Sheets::Xlsb(_) => "XLSB",
        Sheets::Xls(_) => "XLS",
        Sheets::Ods(_) => "ODS",
    };
    let mut rows = RowBuilder::new(path, opts, &name, format, tx, done);
    // XLSX and XLSB have the same streaming cell reader, under two types.
    macro_rules! stream_cells {
        ($book:expr) => {{
            let mut cells = $book
                .worksheet_cells_reader(&name)
                .map_err(|e| sheet_err(path, e))?;
            let d = cells.dimensions();
            rows.total = u64::from(d.end.0.saturating_sub(d.start.0)) + 1;
            while let Some(c) = cells.next_cell().map_err(|e| sheet_err(path, e))? {
                let (r, col) = c.get_position();
                if !rows.cell(r, col, Data::from(c.get_value().clone()))? {
                    return Ok(());
                }
            }
        }};
    }
    match &mut wb {
        Sheets::Xlsx(x) => stream_cells!(x),
        Sheets::Xlsb(x) => stream_cells!(x),
        other => {
            let range = other
                .worksheet_range(&name)
                .map_err(|e| sheet_err(path, e))?;
            rows.total = range.height() as u64;
            let (r0, c0) = range.start().unwrap_or((0, 0));
            for (r, c, v) in range.used_cells() {
                if !rows.cell(r0 + r as u32, c0 + c as u32, v.clone())? {
                    return Ok(());
                }
            }
        }
    }
    rows.finish()
}

fn pick_sheet(names: &[String], wanted: &str) -> Option<String> {
    if let Some(n) = names.iter().find(|n| n.as_str() == wanted) {
        return Some(n.clone());
    }
    if let Some(n) = names.iter().find(|n| n.eq_ignore_ascii_case(wanted.trim())) {
        return Some(n.clone());
    }
    let i: usize = wanted.trim().parse().ok()?;
    names.get(i.checked_sub(1)?).cloned()
}

fn first_non_empty(
    wb: &mut Sheets<std::io::BufReader<std::fs::File>>,
    names: &[String],
) -> Option<String> {
    for n in names {
        let has_cells = match &mut *wb {
            Sheets::Xlsx(x) => x
                .worksheet_cells_reader(n)
                .ok()
                .and_then(|mut c| c.next_cell().ok().flatten())
                .is_some(),
            Sheets::Xlsb(x) => x
                .worksheet_cells_reader(n)
                .ok()
                .and_then(|mut c| c.next_cell().ok().flatten())
                .is_some(),
            other => other
                .worksheet_range(n)
                .map(|r| !r.is_empty())
                .unwrap_or(false),
        };
        if has_cells {
            return Some(n.clone());
        }
    }
    None
}

/// Assembles cells (in row-major order) into rows under the header.
struct RowBuilder<'a> {
    path: PathBuf,
    tx: &'a SyncSender<Vec<Msg>>,
    out: Vec<Msg>,
    done: &'a AtomicU64,
    header_row: Option<u32>,
    dialect: Dialect,
    total: u64,
    header: Option<(Vec<String>, u32)>,
    current: Option<u32>,
    cells: Vec<(u32, String, Option<String>)>,
    last_row: Option<u32>,
    next_data_row: u64,
}

impl<'a> RowBuilder<'a> {
    fn new(
        path: &Path,
        opts: &ReadOptions,
        sheet: &str,
        format: &str,
        tx: &'a SyncSender<Vec<Msg>>,
        done: &'a AtomicU64,
    ) -> Self {
        RowBuilder {
            path: path.to_path_buf(),
            tx,
            out: Vec::with_capacity(BATCH),
            done,
            header_row: opts.header_row.map(|h| h.saturating_sub(1) as u32),
            dialect: Dialect {
                format: format.into(),
                sheet: Some(sheet.to_string()),
                ..Dialect::default()
            },
            total: 0,
            header: None,
            current: None,
            cells: Vec::new(),
            last_row: None,
            next_data_row: 1,
        }
    }

    /// Takes one cell; returns false when the receiver has gone (stop reading).
    fn cell(&mut self, row: u32, col: u32, v: Data) -> Result<bool, ReadError> {
        if self.current != Some(row) {
            if !self.flush()? {
                return Ok(false);
            }
            self.current = Some(row);
        }
        let (text, error) = cell_text(v);
        if !text.is_empty() || error.is_some() {
            self.cells.push((col, text, error));
        }
        Ok(true)
    }

    /// Ends the current row: it becomes the header, a data row, or is skipped.
    fn flush(&mut self) -> Result<bool, ReadError> {
        let Some(row) = self.current.take() else {
            return Ok(true);
        };
        let cells = std::mem::take(&mut self.cells);
        if cells.is_empty() {
            return Ok(true);
        }
        self.done.store(u64::from(row) + 1, Ordering::Relaxed);
        match &self.header {
            None => {
                if self.header_row.is_some_and(|h| row < h) {
                    return Ok(true);
                }
                let first = cells.iter().map(|c| c.0).min().unwrap_or(0);
                let last = cells.iter().map(|c| c.0).max().unwrap_or(0);
                let mut header = vec![String::new(); (last - first + 1) as usize];
                for (c, text, _) in cells {
                    header[(c - first) as usize] = text;
                }
                self.dialect.header_row = u64::from(row) + 1;
                if first > 0 {
                    self.dialect
                        .notes
                        .push(format!("the table starts in column {}", column_name(first)));
                }
                self.header = Some((header.clone(), first));
                self.last_row = Some(row);
                let msg = Msg::Header {
                    header,
                    dialect: self.dialect.clone(),
                    total_rows: self.total,
                };
                Ok(self.send(msg, true))
            }
            Some((header, first)) => {
                let first = *first;
                let width = header.len();
                // Empty rows inside the table are counted like blank lines.
                let gap = row.saturating_sub(self.last_row.unwrap_or(row) + 1);
                for _ in 0..gap {
                    if !self.send(Msg::Blank, false) {
                        return Ok(false);
                    }
                }
                self.last_row = Some(row);
                let mut out = vec![String::new(); width];
                let mut problem = None;
                let mut extra = Vec::new();
                for (c, text, error) in cells {
                    let name = column_name(c);
                    if let Some(e) = error {
                        problem.get_or_insert_with(|| {
                            format!("cell {name}{} is an error cell ({e})", row + 1)
                        });
                    }
                    if c < first || (c - first) as usize >= width {
                        extra.push(format!("{name}{}={text}", row + 1));
                    } else {
                        out[(c - first) as usize] = text;
                    }
                }
                if !extra.is_empty() {
                    problem = Some(format!(
                        "cells outside the header's columns: {} (expected {width} columns)",
                        extra.join(", ")
                    ));
                    out.extend(extra);
                }
                let r = RawRow {
                    row: self.next_data_row,
                    cells: csv::StringRecord::from(out),
                    problem,
                };
                self.next_data_row += 1;
                Ok(self.send(Msg::Row(r), false))
            }
        }
    }

    /// Queues a message; hands the batch over when it is full (or at once, with `now`).
    /// Returns false when the receiver has gone.
    fn send(&mut self, msg: Msg, now: bool) -> bool {
        self.out.push(msg);
        if now || self.out.len() >= BATCH {
            let batch = std::mem::replace(&mut self.out, Vec::with_capacity(BATCH));
            return self.tx.send(batch).is_ok();
        }
        true
    }

    fn finish(mut self) -> Result<(), ReadError> {
        self.flush()?;
        if !self.out.is_empty() {
            let batch = std::mem::take(&mut self.out);
            let _ = self.tx.send(batch);
        }
        if self.header.is_none() {
            return Err(match self.header_row {
                Some(h) => ReadError::Header {
                    path: self.path,
                    why: format!("--header-row {} is past the last row with cells", h + 1),
                },
                None => ReadError::Empty { path: self.path },
            });
        }
        Ok(())
    }
}

/// `A`, `B`, …, `Z`, `AA`, … for 0-based column indexes.
pub fn column_name(mut c: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII letters")
}

/// A cell as the text a user sees, and the error text for error cells.
pub fn cell_text(v: Data) -> (String, Option<String>) {
    match v {
        Data::Empty => (String::new(), None),
        Data::String(s) => (s, None),
        Data::Int(i) => (i.to_string(), None),
        Data::Float(f) => (number_text(f), None),
        Data::Bool(b) => ((if b { "TRUE" } else { "FALSE" }).to_string(), None),
        Data::DateTimeIso(s) | Data::DurationIso(s) => (s, None),
        Data::DateTime(d) => {
            if d.is_duration() {
                let secs = (d.as_f64() * 86_400.0).round() as i64;
                (
                    format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60),
                    None,
                )
            } else {
                let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
                if (h, min, s) == (0, 0, 0) {
                    (format!("{y:04}-{m:02}-{day:02}"), None)
                } else {
                    (
                        format!("{y:04}-{m:02}-{day:02}T{h:02}:{min:02}:{s:02}"),
                        None,
                    )
                }
            }
        }
        Data::Error(e) => (e.to_string(), Some(e.to_string())),
    }
}

/// Whole numbers without `.0` (a phone `4155550100` stays that), others in their shortest form.
pub fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_columns() {
        let cases = [
            (4155550100.0, "4155550100"),
            (42.0, "42"),
            (0.1, "0.1"),
            (-3.25, "-3.25"),
            (1e20, "100000000000000000000"),
        ];
        for (f, want) in cases {
            assert_eq!(number_text(f), want, "{f}");
        }
        let cols = [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (701, "ZZ"),
            (702, "AAA"),
        ];
        for (c, want) in cols {
            assert_eq!(column_name(c), want);
        }
        assert_eq!(
            pick_sheet(&["Data".into(), "Notes".into()], "2").as_deref(),
            Some("Notes")
        );
        assert_eq!(
            pick_sheet(&["Data".into()], "data").as_deref(),
            Some("Data")
        );
        assert_eq!(pick_sheet(&["Data".into()], "3"), None);
    }
}
