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

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime, Reader, Sheets, open_workbook_auto};

use super::{Dialect, RawRow, ReadError, ReadOptions, RowBatch};

pub const EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];
/// Batches of rows buffered between the sheet's thread and its reader.
const CHANNEL_BATCHES: usize = 4;

/// What the sheet's thread sends first: the header, or why there is none.
struct Start {
    header: Vec<String>,
    dialect: Dialect,
    total_rows: u64,
}

pub struct SheetSource {
    header: Vec<String>,
    rows: Receiver<RowBatch>,
    /// For `next_row`: the batch being handed out row by row, and the next row in it.
    current: Option<(RowBatch, usize)>,
    dialect: Dialect,
    rows_done: Arc<AtomicU64>,
    /// Empty rows inside the table, counted like blank lines.
    blanks: Arc<AtomicU64>,
    total_rows: u64,
}

impl SheetSource {
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<SheetSource, ReadError> {
        let (start_tx, start_rx) = sync_channel::<Result<Start, ReadError>>(1);
        let (tx, rows) = sync_channel(CHANNEL_BATCHES);
        let rows_done = Arc::new(AtomicU64::new(0));
        let blanks = Arc::new(AtomicU64::new(0));
        let (p, o) = (path.to_path_buf(), opts.clone());
        let (done, b) = (rows_done.clone(), blanks.clone());
        std::thread::Builder::new()
            .name("sheet-reader".into())
            .spawn(move || {
                let mut out = Sink {
                    start: Some(start_tx),
                    rows: tx,
                };
                if let Err(e) = read_sheet(&p, &o, &mut out, &done, &b) {
                    out.fail(e);
                }
            })
            .map_err(|source| ReadError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        match start_rx.recv() {
            Ok(Ok(Start {
                header,
                dialect,
                total_rows,
            })) => Ok(SheetSource {
                header,
                rows,
                current: None,
                dialect,
                rows_done,
                blanks,
                total_rows,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ReadError::Spreadsheet {
                path: path.to_path_buf(),
                why: "the reader stopped before the header".into(),
            }),
        }
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The next rows, in order; a read error comes in the last batch's `error`.
    pub fn next_batch(&mut self) -> Option<RowBatch> {
        self.rows.recv().ok()
    }

    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        loop {
            if let Some((batch, i)) = &mut self.current {
                if *i < batch.len() {
                    *i += 1;
                    return Some(Ok(batch.row(*i - 1).to_raw()));
                }
                let (mut batch, _) = self.current.take().expect("a batch is current");
                if let Some(e) = batch.error.take() {
                    return Some(Err(e));
                }
            }
            self.current = Some((self.rows.recv().ok()?, 0));
        }
    }

    pub fn progress(&self) -> (u64, u64) {
        (self.rows_done.load(Ordering::Relaxed), self.total_rows)
    }

    pub fn dialect(&self) -> Dialect {
        let mut d = self.dialect.clone();
        d.blank_lines_skipped = self.blanks.load(Ordering::Relaxed);
        d
    }
}

fn sheet_err(path: &Path, why: impl std::fmt::Display) -> ReadError {
    ReadError::Spreadsheet {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Where the sheet's thread sends: the header (once), then batches of rows.
struct Sink {
    start: Option<SyncSender<Result<Start, ReadError>>>,
    rows: SyncSender<RowBatch>,
}

impl Sink {
    /// An error before the header fails the open; after it, it ends the rows.
    fn fail(&mut self, e: ReadError) {
        match self.start.take() {
            Some(tx) => {
                let _ = tx.send(Err(e));
            }
            None => {
                let mut batch = RowBatch::default();
                batch.error = Some(e);
                let _ = self.rows.send(batch);
            }
        }
    }
}

/// Runs in the reader thread: picks the sheet, then streams its cells into rows.
fn read_sheet(
    path: &Path,
    opts: &ReadOptions,
    out: &mut Sink,
    done: &AtomicU64,
    blanks: &AtomicU64,
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
    let mut rows = RowBuilder::new(path, opts, &name, format, out, done, blanks);
    // A failure after the header ends the rows, after those read before it.
    let streamed = stream(&mut wb, &name, path, &mut rows);
    rows.finish(streamed)
}

/// Feeds every cell of the sheet to `rows`, in row-major order.
fn stream(
    wb: &mut Sheets<std::io::BufReader<std::fs::File>>,
    name: &str,
    path: &Path,
    rows: &mut RowBuilder<'_>,
) -> Result<(), ReadError> {
    // XLSX and XLSB have the same streaming cell reader, under two types.
    macro_rules! stream_cells {
        ($book:expr) => {{
            let mut cells = $book
                .worksheet_cells_reader(name)
                .map_err(|e| sheet_err(path, e))?;
            let d = cells.dimensions();
            rows.total = u64::from(d.end.0.saturating_sub(d.start.0)) + 1;
            while let Some(c) = cells.next_cell().map_err(|e| sheet_err(path, e))? {
                let (r, col) = c.get_position();
                if !rows.cell(r, col, Value::from_ref(c.get_value()))? {
                    return Ok(());
                }
            }
        }};
    }
    match wb {
        Sheets::Xlsx(x) => stream_cells!(x),
        Sheets::Xlsb(x) => stream_cells!(x),
        other => {
            let range = other
                .worksheet_range(name)
                .map_err(|e| sheet_err(path, e))?;
            rows.total = range.height() as u64;
            let (r0, c0) = range.start().unwrap_or((0, 0));
            for (r, c, v) in range.used_cells() {
                if !rows.cell(r0 + r as u32, c0 + c as u32, Value::from_data(v))? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
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

/// Assembles cells (in row-major order) into rows under the header, written straight into
/// the batch being filled: a cell's text is copied once, from the sheet to the batch.
struct RowBuilder<'a> {
    path: PathBuf,
    out: &'a mut Sink,
    batch: RowBatch,
    done: &'a AtomicU64,
    blanks: &'a AtomicU64,
    header_row: Option<u32>,
    dialect: Dialect,
    total: u64,
    header: Option<(Vec<String>, u32)>,
    current: Option<u32>,
    /// The current row's texts, one after another, and per non-empty cell: its column, where
    /// its text ends, and its error.
    text: String,
    cells: Vec<(u32, usize, Option<String>)>,
    last_row: Option<u32>,
    next_data_row: u64,
}

impl<'a> RowBuilder<'a> {
    fn new(
        path: &Path,
        opts: &ReadOptions,
        sheet: &str,
        format: &str,
        out: &'a mut Sink,
        done: &'a AtomicU64,
        blanks: &'a AtomicU64,
    ) -> Self {
        RowBuilder {
            path: path.to_path_buf(),
            out,
            batch: RowBatch::default(),
            done,
            blanks,
            header_row: opts.header_row.map(|h| h.saturating_sub(1) as u32),
            dialect: Dialect {
                format: format.into(),
                sheet: Some(sheet.to_string()),
                ..Dialect::default()
            },
            total: 0,
            header: None,
            current: None,
            text: String::new(),
            cells: Vec::new(),
            last_row: None,
            next_data_row: 1,
        }
    }

    /// Takes one cell; returns false when the receiver has gone (stop reading).
    fn cell(&mut self, row: u32, col: u32, v: Value<'_>) -> Result<bool, ReadError> {
        if self.current != Some(row) {
            if !self.flush()? {
                return Ok(false);
            }
            self.current = Some(row);
        }
        let before = self.text.len();
        let error = write_value(v, &mut self.text);
        if self.text.len() > before || error.is_some() {
            self.cells.push((col, self.text.len(), error));
        }
        Ok(true)
    }

    /// Ends the current row: it becomes the header, a data row, or is skipped.
    fn flush(&mut self) -> Result<bool, ReadError> {
        let Some(row) = self.current.take() else {
            return Ok(true);
        };
        if self.cells.is_empty() {
            self.text.clear();
            return Ok(true);
        }
        self.done.store(u64::from(row) + 1, Ordering::Relaxed);
        let text = std::mem::take(&mut self.text);
        let cells = std::mem::take(&mut self.cells);
        let result = self.flush_row(row, &text, &cells);
        // The row's buffers are reused for the next row.
        self.text = text;
        self.text.clear();
        self.cells = cells;
        self.cells.clear();
        result
    }

    fn flush_row(
        &mut self,
        row: u32,
        text: &str,
        cells: &[(u32, usize, Option<String>)],
    ) -> Result<bool, ReadError> {
        let spans = || {
            let mut start = 0;
            cells.iter().map(move |(c, end, e)| {
                let t = &text[start..*end];
                start = *end;
                (*c, t, e)
            })
        };
        let Some((header, first)) = &self.header else {
            if self.header_row.is_some_and(|h| row < h) {
                return Ok(true);
            }
            let first = cells.iter().map(|c| c.0).min().unwrap_or(0);
            let last = cells.iter().map(|c| c.0).max().unwrap_or(0);
            let mut header = vec![String::new(); (last - first + 1) as usize];
            for (c, t, _) in spans() {
                header[(c - first) as usize] = t.to_string();
            }
            self.dialect.header_row = u64::from(row) + 1;
            if first > 0 {
                self.dialect
                    .notes
                    .push(format!("the table starts in column {}", column_name(first)));
            }
            self.header = Some((header.clone(), first));
            self.last_row = Some(row);
            let start = Start {
                header,
                dialect: self.dialect.clone(),
                total_rows: self.total,
            };
            let tx = self.out.start.take().expect("the header is sent once");
            return Ok(tx.send(Ok(start)).is_ok());
        };
        let (first, width) = (*first, header.len());
        // Empty rows inside the table are counted like blank lines.
        let gap = row.saturating_sub(self.last_row.unwrap_or(row) + 1);
        self.blanks.fetch_add(u64::from(gap), Ordering::Relaxed);
        self.last_row = Some(row);
        let mut problem = None;
        for (c, _, e) in spans() {
            if let Some(e) = e {
                problem.get_or_insert_with(|| {
                    format!("cell {}{} is an error cell ({e})", column_name(c), row + 1)
                });
            }
        }
        let inside = |c: u32| c >= first && ((c - first) as usize) < width;
        let extra: Vec<String> = spans()
            .filter(|(c, _, _)| !inside(*c))
            .map(|(c, t, _)| format!("{}{}={t}", column_name(c), row + 1))
            .collect();
        if !extra.is_empty() {
            problem = Some(format!(
                "cells outside the header's columns: {} (expected {width} columns)",
                extra.join(", ")
            ));
        }
        // Cells arrive in column order: walk the header's columns, taking each cell in turn.
        let mut it = spans().filter(|(c, _, _)| inside(*c)).peekable();
        let row_cells = (0..width as u32)
            .map(|i| match it.peek() {
                Some((c, t, _)) if *c == first + i => {
                    let t = *t;
                    it.next();
                    t
                }
                _ => "",
            })
            .chain(extra.iter().map(String::as_str));
        self.batch.push(self.next_data_row, row_cells, problem);
        self.next_data_row += 1;
        Ok(!self.batch.is_full() || self.send())
    }

    /// Hands the filled batch over; false when the receiver has gone.
    fn send(&mut self) -> bool {
        let batch = std::mem::take(&mut self.batch);
        self.out.rows.send(batch).is_ok()
    }

    /// Sends what is left; `streamed` is how the cells ended (an error after the header goes
    /// with the last rows).
    fn finish(mut self, streamed: Result<(), ReadError>) -> Result<(), ReadError> {
        let flushed = self.flush();
        let ended = streamed.and(flushed.map(|_| ()));
        if let Err(e) = ended {
            if self.header.is_none() {
                return Err(e);
            }
            self.batch.error = Some(e);
            self.send();
            return Ok(());
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
        if !self.batch.is_empty() {
            self.send();
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

/// A cell's value, whether it came from the streaming reader (borrowed) or a range.
pub enum Value<'a> {
    Empty,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(ExcelDateTime),
    Error(&'a CellErrorType),
}

impl<'a> Value<'a> {
    fn from_ref(v: &'a DataRef<'_>) -> Value<'a> {
        match v {
            DataRef::Empty => Value::Empty,
            DataRef::SharedString(s) => Value::Text(s),
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                Value::Text(s)
            }
            DataRef::Int(i) => Value::Int(*i),
            DataRef::Float(f) => Value::Float(*f),
            DataRef::Bool(b) => Value::Bool(*b),
            DataRef::DateTime(d) => Value::Date(*d),
            DataRef::Error(e) => Value::Error(e),
        }
    }

    fn from_data(v: &'a Data) -> Value<'a> {
        match v {
            Data::Empty => Value::Empty,
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Value::Text(s),
            Data::Int(i) => Value::Int(*i),
            Data::Float(f) => Value::Float(*f),
            Data::Bool(b) => Value::Bool(*b),
            Data::DateTime(d) => Value::Date(*d),
            Data::Error(e) => Value::Error(e),
        }
    }
}

/// Appends a cell as the text a user sees; returns the error text of an error cell.
pub fn write_value(v: Value<'_>, out: &mut String) -> Option<String> {
    use std::fmt::Write;
    match v {
        Value::Empty => {}
        Value::Text(s) => out.push_str(s),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_number(f, out),
        Value::Bool(b) => out.push_str(if b { "TRUE" } else { "FALSE" }),
        Value::Date(d) => {
            if d.is_duration() {
                let secs = (d.as_f64() * 86_400.0).round() as i64;
                let _ = write!(
                    out,
                    "{}:{:02}:{:02}",
                    secs / 3600,
                    secs % 3600 / 60,
                    secs % 60
                );
            } else {
                let (y, m, day, h, min, s, _) = d.to_ymd_hms_milli();
                let _ = write!(out, "{y:04}-{m:02}-{day:02}");
                if (h, min, s) != (0, 0, 0) {
                    let _ = write!(out, "T{h:02}:{min:02}:{s:02}");
                }
            }
        }
        Value::Error(e) => {
            let text = e.to_string();
            out.push_str(&text);
            return Some(text);
        }
    }
    None
}

/// A cell as the text a user sees, and the error text for error cells.
pub fn cell_text(v: &Data) -> (String, Option<String>) {
    let mut out = String::new();
    let error = write_value(Value::from_data(v), &mut out);
    (out, error)
}

/// Whole numbers without `.0` (a phone `4155550100` stays that), others in their shortest form.
pub fn number_text(f: f64) -> String {
    let mut out = String::new();
    write_number(f, &mut out);
    out
}

fn write_number(f: f64, out: &mut String) {
    use std::fmt::Write;
    let _ = if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        write!(out, "{}", f as i64)
    } else {
        write!(out, "{f}")
    };
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
