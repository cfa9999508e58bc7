//! Spreadsheet reader (XLSX/XLSM and XLSB by streaming calamine's cell reader; XLS and ODS
//! through calamine's range, which those formats require). A sheet thread owns the workbook and
//! does only what must happen there: it copies each cell's text, or keeps its number, date or
//! error as it is, and sends the cells in batches whose buffers come back to it. The reading
//! side turns values into the text a user sees (integers without `.0`, dates as ISO dates in
//! the 1900 and 1904 systems, formulas as their cached values) and assembles cells into rows
//! under the header (error cells and cells outside the header become row problems), so the
//! sheet thread — the slow one, as unzipping and XML take most of the time — does as little as
//! it can. Part of the read stage; `map` consumes its rows.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use calamine::{CellErrorType, Data, DataRef, ExcelDateTime, Ods, Reader, Sheets, Xls, Xlsb, Xlsx};

use super::xmlguard::{Cuts, find_mark};
use super::zipview::Archive;
use super::{
    Dialect, KEPT_CHARS, MAX_CELL_BYTES, MAX_ROW_BYTES, RawRow, ReadError, ReadOptions, RowBatch,
    oversized_problem, shown_size,
};
use std::sync::Arc;

pub const EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];
/// The largest XLS file read: calamine holds the whole workbook stream, its strings and the
/// sheet's cells, a few times the file's size in all.
const XLS_MAX_BYTES: u64 = 8 << 20;
/// Cell batches in flight each way between the sheet thread and the reading side.
const CHANNEL_BATCHES: usize = 4;
/// Cells per batch sent by the sheet thread.
const BATCH_CELLS: usize = 8192;
/// Row batches kept for reuse once the caller is done with them.
const SPARE_ROW_BATCHES: usize = 4;

/// Cells as the sheet thread sends them: their texts one after another, and per cell its
/// position and where its text ends. Cells that are not text (numbers, dates, booleans,
/// errors) have no text there and are listed apart with their value.
#[derive(Default)]
struct CellBatch {
    /// Set in the first batch: the workbook's format, the sheet's name, its row count.
    start: Option<(&'static str, String, u64)>,
    text: String,
    cells: Vec<CellAt>,
    /// (index in `cells`, its value).
    values: Vec<(usize, Scalar)>,
    /// (index in `cells`, its size): text cells over `MAX_CELL_BYTES`, of which `text` holds
    /// only the first `KEPT_CHARS` characters.
    cut: Vec<(usize, u64)>,
    /// The sheet could not be read (further): the cells end here.
    error: Option<ReadError>,
}

#[derive(Clone, Copy)]
struct CellAt {
    row: u32,
    col: u32,
    end: u32,
}

impl CellBatch {
    fn clear(&mut self) {
        self.start = None;
        self.text.clear();
        self.cells.clear();
        self.values.clear();
        self.cut.clear();
        self.error = None;
    }

    fn is_full(&self) -> bool {
        self.cells.len() >= BATCH_CELLS || self.text.len() >= super::batch::BATCH_BYTES
    }
}

pub struct SheetSource {
    header: Vec<String>,
    cells: Receiver<CellBatch>,
    recycle: SyncSender<CellBatch>,
    /// The cell batch being assembled into rows, and the next cell in it.
    pending: Option<(CellBatch, usize)>,
    rows: RowBuilder,
    /// The sheet thread has finished (or failed) and every cell it sent is assembled.
    ended: bool,
    /// A value cell's text, while it is assembled.
    scratch: String,
    /// For `next_row`.
    cursor: super::batch::RowCursor,
}

impl SheetSource {
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<SheetSource, ReadError> {
        // The workbook is opened here, not in the sheet thread: opening reads the shared
        // strings, often most of the file, and this thread's allocator grows its heap in large
        // steps where a new thread's grows a page at a time (a system call each).
        let (mut wb, name, format, cuts) = guarded(path, || open_sheet(path, opts))?;
        let (tx, cells) = sync_channel(CHANNEL_BATCHES);
        let (recycle, recycled) = sync_channel(CHANNEL_BATCHES + 1);
        let p = path.to_path_buf();
        std::thread::Builder::new()
            .name("sheet-reader".into())
            .spawn(move || {
                let mut out = CellSink {
                    tx,
                    recycled,
                    batch: CellBatch::default(),
                    cuts,
                };
                // The cells sent before a failure stay sent; the error ends them.
                if let Err(e) = guarded(&p, || stream(&mut wb, &name, format, &p, &mut out)) {
                    out.batch.error = Some(e);
                }
                out.send();
            })
            .map_err(|source| ReadError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let mut s = SheetSource {
            header: Vec::new(),
            cells,
            recycle,
            pending: None,
            rows: RowBuilder::new(opts),
            ended: false,
            scratch: String::new(),
            cursor: Default::default(),
        };
        // Assemble until the header row is complete; the rows after it wait in `pending`.
        while s.rows.header.is_none() && !s.ended {
            s.assemble();
        }
        if let Some(e) = s.rows.batch.error.take() {
            if s.rows.header.is_none() {
                return Err(e);
            }
            s.rows.batch.error = Some(e);
        }
        match &s.rows.header {
            Some((h, _)) => s.header = h.clone(),
            None => {
                return Err(match s.rows.header_row {
                    Some(h) => ReadError::Header {
                        path: path.to_path_buf(),
                        why: format!("--header-row {} is past the last row with cells", h + 1),
                    },
                    None => ReadError::Empty {
                        path: path.to_path_buf(),
                    },
                });
            }
        }
        Ok(s)
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Feeds cells to the row builder until a row batch is full or the cells run out.
    fn assemble(&mut self) {
        loop {
            let (mut batch, mut i) = match self.pending.take() {
                Some(p) => p,
                None => match self.cells.recv() {
                    Ok(b) => (b, 0),
                    Err(_) => {
                        self.rows.finish(None);
                        self.ended = true;
                        return;
                    }
                },
            };
            if let Some((format, sheet, total)) = batch.start.take() {
                self.rows.dialect.format = format.into();
                self.rows.dialect.sheet = Some(sheet);
                self.rows.total = total;
            }
            let mut values = batch.values.iter().peekable();
            while values.peek().is_some_and(|(at, _)| *at < i) {
                values.next();
            }
            let mut cut = batch.cut.iter().peekable();
            while cut.peek().is_some_and(|(at, _)| *at < i) {
                cut.next();
            }
            let mut start = if i == 0 {
                0
            } else {
                batch.cells[i - 1].end as usize
            };
            while i < batch.cells.len() {
                let c = batch.cells[i];
                if self.rows.boundary(c.row) {
                    self.pending = Some((batch, i));
                    return;
                }
                let (text, error) = match values.peek() {
                    Some((at, v)) if *at == i => {
                        values.next();
                        self.scratch.clear();
                        let error = write_value(v.as_value(), &mut self.scratch);
                        (self.scratch.as_str(), error)
                    }
                    _ => (&batch.text[start..c.end as usize], None),
                };
                let size = match cut.peek() {
                    Some((at, size)) if *at == i => {
                        cut.next();
                        Some(*size)
                    }
                    _ => None,
                };
                start = c.end as usize;
                i += 1;
                self.rows.cell(c.row, c.col, text, error.as_deref(), size);
            }
            if let Some(e) = batch.error.take() {
                self.rows.finish(Some(e));
                self.ended = true;
                return;
            }
            batch.clear();
            // A full channel means the sheet thread has spares enough.
            let _ = self.recycle.try_send(batch);
        }
    }

    /// The next rows, in order; a read error comes in the last batch's `error`.
    pub fn next_batch(&mut self) -> Option<RowBatch> {
        while !self.rows.batch.is_full() && !self.ended {
            self.assemble();
        }
        if self.rows.batch.is_empty() {
            return None;
        }
        let next = self.rows.spares.pop().unwrap_or_default();
        Some(std::mem::replace(&mut self.rows.batch, next))
    }

    /// Gives a finished batch's buffers back, to be filled again.
    pub fn recycle(&mut self, mut batch: RowBatch) {
        if self.rows.spares.len() < SPARE_ROW_BATCHES {
            batch.clear();
            self.rows.spares.push(batch);
        }
    }

    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        let mut cursor = std::mem::take(&mut self.cursor);
        let row = cursor.next_row(self);
        self.cursor = cursor;
        row
    }

    pub fn progress(&self) -> (u64, u64) {
        (self.rows.done, self.rows.total)
    }

    pub fn dialect(&self) -> Dialect {
        let mut d = self.rows.dialect.clone();
        d.blank_lines_skipped = self.rows.blanks;
        d
    }
}

impl super::batch::Batches for SheetSource {
    fn next_batch(&mut self) -> Option<RowBatch> {
        SheetSource::next_batch(self)
    }

    fn recycle(&mut self, batch: RowBatch) {
        SheetSource::recycle(self, batch)
    }
}

impl Drop for SheetSource {
    fn drop(&mut self) {
        // Let a sheet thread blocked on a full channel see that no one reads any more.
        drop(std::mem::replace(&mut self.cells, sync_channel(1).1));
    }
}

/// Runs calamine's part of reading, turning a panic in it (damaged files have made it index
/// past the end of a record, or overflow arithmetic) into an error for the file: a panic on
/// the sheet thread would otherwise end the cells early with no error, and rows would be lost
/// without a word.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, ReadError>) -> Result<T, ReadError> {
    let outer = GUARDED.replace(true);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.set(outer);
    result.unwrap_or_else(|panic| {
        let what = super::panic_text(panic.as_ref());
        Err(sheet_err(
            path,
            format!(
                "the spreadsheet reader failed ({what}); the file looks damaged: open it in \
                 Excel or LibreOffice and save it again"
            ),
        ))
    })
}

thread_local! {
    /// This thread is in `guarded`: a panic here is reported as the file's error.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps the panic message (with its source location in a library) off the terminal for
/// panics that `guarded` turns into an error for the file; every other panic is printed as
/// before. Called once by `main`.
pub fn quiet_guarded_panics() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.get() {
            print(info);
        }
    }));
}

fn sheet_err(path: &Path, why: impl std::fmt::Display) -> ReadError {
    ReadError::Spreadsheet {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// The sheet thread's side: fills cell batches and sends them.
struct CellSink {
    tx: SyncSender<CellBatch>,
    recycled: Receiver<CellBatch>,
    batch: CellBatch,
    /// The sizes of text nodes the zip view's guard cut (`xmlguard`).
    cuts: Option<Arc<Cuts>>,
}

impl CellSink {
    /// Takes one cell; false when the reading side has gone (stop reading).
    fn cell(&mut self, row: u32, col: u32, v: Value<'_>) -> bool {
        let b = &mut self.batch;
        match v {
            Value::Empty => return true,
            Value::Text("") => return true,
            Value::Text(t) if t.len() > MAX_CELL_BYTES => {
                // Cut by the guard (its marker names the cut, whose size it knows) or only
                // large: either way the row fails, and only the cell's start is kept.
                let (kept, size) = match find_mark(t) {
                    Some((before, n)) => {
                        let size = self.cuts.as_ref().and_then(|c| c.size(n));
                        (before, size.unwrap_or(before.len() as u64))
                    }
                    None => (t, t.len() as u64),
                };
                let end = super::first_chars(kept.as_bytes(), KEPT_CHARS);
                b.text.push_str(&kept[..end]);
                b.cut.push((b.cells.len(), size));
            }
            Value::Text(t) => b.text.push_str(t),
            Value::Int(i) => b.values.push((b.cells.len(), Scalar::Int(i))),
            Value::Float(f) => b.values.push((b.cells.len(), Scalar::Float(f))),
            Value::Bool(x) => b.values.push((b.cells.len(), Scalar::Bool(x))),
            Value::Date(d) => b.values.push((b.cells.len(), Scalar::Date(d))),
            Value::Error(e) => b.values.push((b.cells.len(), Scalar::Error(e.clone()))),
        }
        b.cells.push(CellAt {
            row,
            col,
            end: b.text.len() as u32,
        });
        !b.is_full() || self.send()
    }

    /// Hands the batch over (the error, if any, goes with it); false when no one reads.
    fn send(&mut self) -> bool {
        let mut next = self.recycled.try_recv().unwrap_or_default();
        next.clear();
        let batch = std::mem::replace(&mut self.batch, next);
        self.tx.send(batch).is_ok()
    }
}

type Workbook = Sheets<Archive>;

/// Opens a workbook by its (lower-case) extension. The zip-based formats are read through a
/// view that inflates their large parts ahead on another thread.
/// Errors are why the workbook cannot be opened, in words for the user.
fn open_workbook(path: &Path, ext: &str) -> Result<(Workbook, Option<Arc<Cuts>>), String> {
    let damaged = |e: calamine::Error| format!("{e} (is it a complete, unprotected workbook?)");
    if ext == "xls" {
        let file = Archive::plain(path).map_err(|e| e.to_string())?;
        let wb = Sheets::Xls(Xls::new(file).map_err(|e| damaged(calamine::Error::Xls(e)))?);
        return Ok((wb, None));
    }
    let archive = Archive::open(path).map_err(|e| e.to_string())?;
    let cuts = archive.cuts();
    let opened = match ext {
        "xlsb" => Xlsb::new(archive)
            .map(Sheets::Xlsb)
            .map_err(calamine::Error::Xlsb),
        "ods" => Ods::new(archive)
            .map(Sheets::Ods)
            .map_err(calamine::Error::Ods),
        _ => Xlsx::new(archive)
            .map(Sheets::Xlsx)
            .map_err(calamine::Error::Xlsx),
    };
    match opened {
        Ok(wb) => Ok((wb, cuts)),
        Err(e) => Err(refusal(&cuts).unwrap_or_else(|| damaged(e))),
    }
}

/// The guard's own words when it refused a part (calamine's error would bury them).
fn refusal(cuts: &Option<Arc<Cuts>>) -> Option<String> {
    cuts.as_ref().and_then(|c| c.refused())
}

/// Opens the workbook and picks the sheet: the workbook, the sheet's name, the format's name,
/// and the sizes of the text nodes its guard cuts.
#[allow(clippy::type_complexity)]
fn open_sheet(
    path: &Path,
    opts: &ReadOptions,
) -> Result<(Workbook, String, &'static str, Option<Arc<Cuts>>), ReadError> {
    std::fs::metadata(path).map_err(|source| ReadError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let ext = super::extension(path);
    if ext == "xls" {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len > XLS_MAX_BYTES {
            return Err(sheet_err(
                path,
                format!(
                    "an XLS workbook is loaded whole (the format requires it), and this one is {}: csmport reads XLS files of up to {}; open it in a spreadsheet and save it as XLSX or CSV, which csmport streams",
                    super::shown_size(len),
                    super::shown_size(XLS_MAX_BYTES)
                ),
            ));
        }
        super::biff::check_sheet_sizes(path).map_err(|why| sheet_err(path, why))?;
    }
    let (mut wb, cuts) = open_workbook(path, &ext).map_err(|why| sheet_err(path, why))?;
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
    Ok((wb, name, format, cuts))
}

/// Feeds every cell of the sheet to `out`, in row-major order.
fn stream(
    wb: &mut Workbook,
    name: &str,
    format: &'static str,
    path: &Path,
    out: &mut CellSink,
) -> Result<(), ReadError> {
    let cuts = out.cuts.clone();
    let err = |e: &dyn std::fmt::Display| {
        sheet_err(path, refusal(&cuts).unwrap_or_else(|| e.to_string()))
    };
    // XLSX and XLSB have the same streaming cell reader, under two types.
    macro_rules! stream_cells {
        ($book:expr) => {{
            let mut cells = $book.worksheet_cells_reader(name).map_err(|e| err(&e))?;
            let d = cells.dimensions();
            let total = u64::from(d.end.0.saturating_sub(d.start.0)) + 1;
            out.batch.start = Some((format, name.to_string(), total));
            while let Some(c) = cells.next_cell().map_err(|e| err(&e))? {
                let (r, col) = c.get_position();
                if !out.cell(r, col, Value::from_ref(c.get_value())) {
                    return Ok(());
                }
            }
        }};
    }
    match wb {
        Sheets::Xlsx(x) => stream_cells!(x),
        Sheets::Xlsb(x) => stream_cells!(x),
        other => {
            let range = other.worksheet_range(name).map_err(|e| err(&e))?;
            out.batch.start = Some((format, name.to_string(), range.height() as u64));
            let (r0, c0) = range.start().unwrap_or((0, 0));
            for (r, c, v) in range.used_cells() {
                if !out.cell(r0 + r as u32, c0 + c as u32, Value::from_data(v)) {
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

fn first_non_empty(wb: &mut Workbook, names: &[String]) -> Option<String> {
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

/// Assembles cells (in row-major order) into rows under the header. A data row's cells are
/// written straight into the batch being filled, as they come; the rare cells that do not fit
/// that (outside the header's columns, or out of column order) are kept apart until the row
/// ends.
struct RowBuilder {
    batch: RowBatch,
    spares: Vec<RowBatch>,
    /// Rows of the sheet passed, and its row count, for progress.
    done: u64,
    total: u64,
    /// Empty rows inside the table, counted like blank lines.
    blanks: u64,
    header_row: Option<u32>,
    dialect: Dialect,
    /// The header's names and its first column, once found.
    header: Option<(Vec<String>, u32)>,
    /// The sheet row being assembled.
    current: Option<u32>,
    /// While no header is found: the candidate header row's cells.
    head: Vec<(u32, String)>,
    /// Header columns of the open data row written to the batch so far.
    filled: usize,
    problem: Option<String>,
    /// Cells outside the header's columns, and cells that came after a cell to their right.
    outside: Vec<(u32, String)>,
    late: Vec<(usize, String)>,
    /// Cells of the open row over `MAX_CELL_BYTES`: (name, size).
    cut: Vec<(String, u64)>,
    /// Text of the open row so far; past `MAX_ROW_BYTES` cells are left empty.
    row_bytes: usize,
    last_row: Option<u32>,
    next_data_row: u64,
}

impl RowBuilder {
    fn new(opts: &ReadOptions) -> Self {
        RowBuilder {
            batch: RowBatch::default(),
            spares: Vec::new(),
            done: 0,
            total: 0,
            blanks: 0,
            header_row: opts.header_row.map(|h| h.saturating_sub(1) as u32),
            dialect: Dialect::default(),
            header: None,
            current: None,
            head: Vec::new(),
            filled: 0,
            problem: None,
            outside: Vec::new(),
            late: Vec::new(),
            cut: Vec::new(),
            row_bytes: 0,
            last_row: None,
            next_data_row: 1,
        }
    }

    /// Call before each cell: ends the open row when the cell starts another. True when that
    /// filled the batch or found the header: hand over before taking the cell.
    fn boundary(&mut self, row: u32) -> bool {
        if self.current == Some(row) {
            return false;
        }
        let had_header = self.header.is_some();
        self.flush();
        self.batch.is_full() || had_header != self.header.is_some()
    }

    /// Takes one non-empty cell of the row `boundary` was last called for (`cut`: the size of
    /// a cell of which only the start is given).
    fn cell(&mut self, row: u32, col: u32, text: &str, error: Option<&str>, cut: Option<u64>) {
        self.row_bytes += text.len();
        let text = if self.row_bytes > MAX_ROW_BYTES {
            self.problem.get_or_insert_with(|| {
                format!(
                    "the row holds more than {}; at most that much of a row is read, so the row is not sent (the cells after cell {}{} are left out of the report)",
                    shown_size(MAX_ROW_BYTES as u64),
                    column_name(col),
                    row + 1
                )
            });
            ""
        } else {
            text
        };
        if let Some(size) = cut {
            let name = match &self.header {
                Some((h, first)) => h
                    .get(col.wrapping_sub(*first) as usize)
                    .map(|n| format!("cell {}{} ({n})", column_name(col), row + 1)),
                None => None,
            };
            self.cut.push((
                name.unwrap_or_else(|| format!("cell {}{}", column_name(col), row + 1)),
                size,
            ));
        }
        if self.current.is_none() {
            self.current = Some(row);
            if let Some(last) = self.last_row.filter(|_| self.header.is_some()) {
                self.blanks += u64::from(row.saturating_sub(last + 1));
            }
        }
        let Some((header, first)) = &self.header else {
            if self.header_row.is_none_or(|h| row >= h) {
                self.head.push((col, text.to_string()));
            }
            return;
        };
        if let Some(e) = error {
            self.problem.get_or_insert_with(|| {
                format!(
                    "cell {}{} is an error cell ({e})",
                    column_name(col),
                    row + 1
                )
            });
        }
        let at = col.wrapping_sub(*first) as usize;
        if col < *first || at >= header.len() {
            self.outside.push((col, text.to_string()));
        } else if at < self.filled {
            self.late.push((at, text.to_string()));
        } else {
            for _ in self.filled..at {
                self.batch.push_cell("");
            }
            self.batch.push_cell(text);
            self.filled = at + 1;
        }
    }

    /// Ends the open row: it becomes the header, a data row, or is skipped.
    fn flush(&mut self) {
        let Some(row) = self.current.take() else {
            return;
        };
        self.row_bytes = 0;
        let cut = std::mem::take(&mut self.cut);
        self.done = u64::from(row) + 1;
        self.last_row = Some(row);
        let Some((header, first)) = &self.header else {
            self.problem = None;
            self.take_header(row);
            return;
        };
        let (first, width) = (*first, header.len());
        if !self.late.is_empty() {
            self.place_late(row, first);
        }
        for _ in self.filled..width {
            self.batch.push_cell("");
        }
        let mut problem = self.problem.take();
        if !cut.is_empty() {
            problem = Some(oversized_problem(&cut));
        }
        let outside = std::mem::take(&mut self.outside);
        if !outside.is_empty() {
            let listed: Vec<String> = outside
                .iter()
                .map(|(c, t)| format!("{}{}={t}", column_name(*c), row + 1))
                .collect();
            problem = Some(format!(
                "cells outside the header's columns: {} (expected {width} columns)",
                listed.join(", ")
            ));
            // They stay in the row, after its columns and named by their place, so the
            // failure report keeps them.
            for cell in &listed {
                self.batch.push_cell(cell);
            }
        }
        self.batch
            .end_row(self.next_data_row, width + outside.len(), problem);
        self.outside = outside;
        self.outside.clear();
        self.filled = 0;
        self.next_data_row += 1;
    }

    /// The rare path: cells that came after a cell to their right are put in their columns.
    fn place_late(&mut self, row: u32, first: u32) {
        let mut cells = self.batch.reopen_row(self.filled);
        for (at, text) in std::mem::take(&mut self.late) {
            if at >= cells.len() {
                cells.resize(at + 1, String::new());
            }
            if cells[at].is_empty() {
                cells[at] = text;
            } else {
                let kept = &cells[at];
                self.problem.get_or_insert_with(|| {
                    let c = column_name(first + at as u32);
                    format!(
                        "cell {c}{} is given twice ('{kept}' and '{text}'); keep one",
                        row + 1
                    )
                });
            }
        }
        for c in &cells {
            self.batch.push_cell(c);
        }
        self.filled = cells.len();
    }

    /// The first row with cells (at or after `--header-row`) is the header.
    fn take_header(&mut self, row: u32) {
        let cells = std::mem::take(&mut self.head);
        if cells.is_empty() {
            return;
        }
        let first = cells.iter().map(|c| c.0).min().unwrap_or(0);
        let last = cells.iter().map(|c| c.0).max().unwrap_or(0);
        let mut header = vec![String::new(); (last - first + 1) as usize];
        for (c, t) in cells {
            header[(c - first) as usize] = t;
        }
        self.dialect.header_row = u64::from(row) + 1;
        if first > 0 {
            self.dialect
                .notes
                .push(format!("the table starts in column {}", column_name(first)));
        }
        self.header = Some((header, first));
    }

    /// The cells have ended, after an error when `error` is set (it goes with the last rows).
    fn finish(&mut self, error: Option<ReadError>) {
        self.flush();
        if error.is_some() {
            self.batch.error = error;
        }
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

/// A cell that is not text, as the sheet thread hands it over.
#[derive(Clone)]
enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(ExcelDateTime),
    Error(CellErrorType),
}

impl Scalar {
    fn as_value(&self) -> Value<'_> {
        match self {
            Scalar::Int(i) => Value::Int(*i),
            Scalar::Float(f) => Value::Float(*f),
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Date(d) => Value::Date(*d),
            Scalar::Error(e) => Value::Error(e),
        }
    }
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
        Value::Int(i) => write_int(i, out),
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

/// Whole numbers without `.0` (a phone `4155550100` stays that), others in their shortest form.
fn write_number(f: f64, out: &mut String) {
    use std::fmt::Write;
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        write_int(f as i64, out);
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Decimal digits of `i`, without the formatting machinery: most numeric cells are whole.
fn write_int(i: i64, out: &mut String) {
    out.push_str(itoa::Buffer::new().format(i));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_text(f: f64) -> String {
        let mut out = String::new();
        write_number(f, &mut out);
        out
    }

    #[test]
    fn numbers_and_columns() {
        let cases = [
            (4155550100.0, "4155550100"),
            (42.0, "42"),
            (0.1, "0.1"),
            (-3.25, "-3.25"),
            (1e20, "100000000000000000000"),
            (0.0, "0"),
            (-0.0, "0"),
            (-7.0, "-7"),
            (9.007_199_254_740_991e15, "9007199254740991"),
        ];
        for (f, want) in cases {
            assert_eq!(number_text(f), want, "{f}");
        }
        for i in [0, 5, -5, 10, i64::MAX, i64::MIN] {
            let mut s = String::new();
            write_int(i, &mut s);
            assert_eq!(s, i.to_string());
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

    /// A zip file of these parts, named with this extension.
    fn zip_file<B: AsRef<[u8]>>(ext: &str, parts: &[(&str, B)]) -> tempfile::NamedTempFile {
        use std::io::Write;
        let f = tempfile::Builder::new()
            .suffix(&format!(".{ext}"))
            .tempfile()
            .unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for (name, body) in parts {
            z.start_file(*name, opts).unwrap();
            z.write_all(body.as_ref()).unwrap();
        }
        z.finish().unwrap();
        f
    }

    /// A one-sheet workbook with the given `<sheetData>` rows, as a file.
    fn workbook(rows: &str) -> tempfile::NamedTempFile {
        let ns = "http://schemas.openxmlformats.org";
        zip_file(
            "xlsx",
            &[
                (
                    "[Content_Types].xml",
                    format!(
                        r#"<Types xmlns="{ns}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
                    ),
                ),
                (
                    "_rels/.rels",
                    format!(
                        r#"<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
                    ),
                ),
                (
                    "xl/workbook.xml",
                    format!(
                        r#"<workbook xmlns="{ns}/spreadsheetml/2006/main" xmlns:r="{ns}/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>"#
                    ),
                ),
                (
                    "xl/_rels/workbook.xml.rels",
                    format!(
                        r#"<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
                    ),
                ),
                (
                    "xl/worksheets/sheet1.xml",
                    format!(
                        r#"<worksheet xmlns="{ns}/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
                    ),
                ),
            ],
        )
    }

    /// Every row of a sheet: (row, cells, problem).
    fn all_rows(path: &Path) -> (SheetSource, Vec<(u64, Vec<String>, Option<String>)>) {
        let mut s = SheetSource::open(path, &ReadOptions::default()).unwrap();
        let mut got = Vec::new();
        while let Some(r) = s.next_row() {
            let r = r.unwrap();
            let cells: Vec<String> = r.cells.iter().map(str::to_string).collect();
            got.push((r.row, cells, r.problem));
        }
        (s, got)
    }

    fn want(row: u64, cells: &[&str], problem: Option<&str>) -> (u64, Vec<String>, Option<String>) {
        (
            row,
            cells.iter().map(|c| c.to_string()).collect(),
            problem.map(str::to_string),
        )
    }

    #[test]
    fn ods_sheets_are_read_through_the_range() {
        let text = |v: &str| {
            format!(
                r#"<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>"#
            )
        };
        let row =
            |cells: &[String]| format!("<table:table-row>{}</table:table-row>", cells.concat());
        let number = |v: &str| {
            format!(
                r#"<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>"#
            )
        };
        let date = r#"<table:table-cell office:value-type="date" office:date-value="2026-01-31"><text:p>31/01/2026</text:p></table:table-cell>"#;
        let empty = "<table:table-cell/>".to_string();
        let rows = [
            row(&[text("email"), text("seats"), text("renewal")]),
            row(&[text("a@x.com"), number("42"), date.to_string()]),
            row(&[text("b@x.com"), number("2.5"), empty.clone()]),
            row(&[text("c@x.com"), empty, text("soon")]),
        ]
        .concat();
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="People">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
        );
        let manifest = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
        let f = zip_file(
            "ods",
            &[
                (
                    "mimetype",
                    "application/vnd.oasis.opendocument.spreadsheet".to_string(),
                ),
                ("META-INF/manifest.xml", manifest.to_string()),
                ("content.xml", content),
            ],
        );
        let (s, got) = all_rows(f.path());
        assert_eq!(s.header(), ["email", "seats", "renewal"]);
        assert_eq!(
            got,
            vec![
                want(1, &["a@x.com", "42", "2026-01-31"], None),
                want(2, &["b@x.com", "2.5", ""], None),
                want(3, &["c@x.com", "", "soon"], None),
            ]
        );
        let d = s.dialect();
        assert_eq!(
            (d.format.as_str(), d.sheet.as_deref()),
            ("ODS", Some("People"))
        );
    }

    fn text(at: &str, v: &str) -> String {
        format!(r#"<c r="{at}" t="inlineStr"><is><t>{v}</t></is></c>"#)
    }

    #[test]
    fn cells_out_of_order_twice_or_outside_the_header_are_kept_and_named() {
        let row = |n: u32, cells: &[(&str, &str)]| {
            let c: String = cells.iter().map(|(at, v)| text(at, v)).collect();
            format!(r#"<row r="{n}">{c}</row>"#)
        };
        let rows = [
            row(1, &[("A1", "email"), ("B1", "name"), ("C1", "tier")]),
            row(2, &[("C2", "Gold"), ("A2", "a@x.com"), ("B2", "Ann")]),
            row(3, &[("A3", "b@x.com"), ("A3", "again")]),
            row(4, &[("B4", "Cy"), ("E4", "stray")]),
            // Row 5 is empty: counted like a blank line.
            format!(
                r#"<row r="6"><c r="A6"><v>42</v></c>{}</row>"#,
                text("C6", "x")
            ),
        ]
        .concat();
        let f = workbook(&rows);
        let (s, got) = all_rows(f.path());
        assert_eq!(s.header(), ["email", "name", "tier"]);
        assert_eq!(
            got,
            vec![
                want(1, &["a@x.com", "Ann", "Gold"], None),
                want(
                    2,
                    &["b@x.com", "", ""],
                    Some("cell A3 is given twice ('b@x.com' and 'again'); keep one")
                ),
                want(
                    3,
                    &["", "Cy", "", "E4=stray"],
                    Some("cells outside the header's columns: E4=stray (expected 3 columns)")
                ),
                want(4, &["42", "", "x"], None),
            ]
        );
        assert_eq!(s.dialect().blank_lines_skipped, 1);
        assert_eq!(s.dialect().sheet.as_deref(), Some("Data"));
    }

    #[test]
    fn huge_cells_and_whitespace_are_cut_in_the_stream_and_fail_their_row() {
        let huge = "x".repeat(3 << 20);
        let medium = "y".repeat(20_000);
        let ws = " ".repeat(2 << 20);
        let rows = format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c><c r="B1" t="inlineStr"><is><t>notes</t></is></c></row>{ws}<row r="2"><c r="A2" t="inlineStr"><is><t>a@x.io</t></is></c><c r="B2" t="inlineStr"><is><t>{huge}</t></is></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>b@x.io</t></is></c><c r="B3" t="inlineStr"><is><t>{medium}</t></is></c></row><row r="4"><c r="A4" t="inlineStr"><is><t>c@x.io</t></is></c><c r="B4" t="inlineStr"><is><t>fine</t></is></c></row>"#
        );
        let f = workbook(&rows);
        assert!(matches!(Archive::open(f.path()).unwrap(), Archive::View(_)));
        let (s, got) = all_rows(f.path());
        assert_eq!(s.header(), ["email", "notes"]);
        assert_eq!(got.len(), 3);
        let p = got[0].2.as_deref().unwrap();
        assert!(
            p.starts_with("cell B2 (notes) holds 3.0 MiB; a cell holds at most 16000 bytes"),
            "{p}"
        );
        assert_eq!(got[0].1, ["a@x.io".to_string(), "x".repeat(KEPT_CHARS)]);
        let p = got[1].2.as_deref().unwrap();
        assert!(p.starts_with("cell B3 (notes) holds 19.5 KiB"), "{p}");
        assert_eq!(got[1].1[1].len(), KEPT_CHARS);
        assert_eq!(got[2], want(3, &["c@x.io", "fine"], None));
    }

    #[test]
    fn a_large_sheet_is_read_whole_through_the_inflating_view() {
        let f = tempfile::Builder::new().suffix(".xlsx").tempfile().unwrap();
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "email").unwrap();
        ws.write_string(0, 1, "n").unwrap();
        let rows = 40_000u32;
        for r in 1..=rows {
            ws.write_string(r, 0, format!("user{r}@example.com"))
                .unwrap();
            ws.write_number(r, 1, f64::from(r)).unwrap();
        }
        wb.save(f.path()).unwrap();
        // The sheet and its shared strings are both over the size that is inflated ahead.
        assert!(matches!(Archive::open(f.path()).unwrap(), Archive::View(_)));
        let (s, got) = all_rows(f.path());
        assert_eq!(s.header(), ["email", "n"]);
        assert_eq!(got.len(), rows as usize);
        for (i, (row, cells, problem)) in got.into_iter().enumerate() {
            let r = i as u64 + 1;
            assert_eq!(row, r);
            assert_eq!(cells, [format!("user{r}@example.com"), r.to_string()]);
            assert_eq!(problem, None);
        }
    }

    /// A cell of a hand-built XLS sheet.
    #[derive(Clone)]
    enum Biff<'a> {
        Text(&'a str),
        /// A shared string by its index, whether or not there is one.
        SharedString(u32),
        Number(f64),
        Date(f64),
        Rk(i32),
        Bool(bool),
        Error(u8),
    }

    /// An XLS (BIFF8) workbook of these sheets, each a list of (row, column, cell), in a
    /// compound file as Excel writes it: the globals (date system, two cell formats: General
    /// and the built-in date format 14, the sheets, the shared strings), then each sheet.
    fn xls_file(
        date_1904: bool,
        sheets: &[(&str, Vec<(u16, u16, Biff)>)],
    ) -> tempfile::NamedTempFile {
        xls_container(&xls_stream(date_1904, sheets))
    }

    /// The workbook stream of `xls_file`.
    fn xls_stream(date_1904: bool, sheets: &[(&str, Vec<(u16, u16, Biff)>)]) -> Vec<u8> {
        fn rec(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
            out.extend_from_slice(&typ.to_le_bytes());
            out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            out.extend_from_slice(data);
        }
        fn bof(out: &mut Vec<u8>, kind: u16) {
            let mut d = vec![0x00, 0x06];
            d.extend_from_slice(&kind.to_le_bytes());
            d.extend_from_slice(&[0xbb, 0x0d, 0xcc, 0x07, 0, 0, 0, 0, 0x06, 0, 0, 0]);
            rec(out, 0x0809, &d);
        }
        let mut strings: Vec<&str> = Vec::new();
        for (_, cells) in sheets {
            for (_, _, c) in cells {
                if let Biff::Text(t) = c
                    && !strings.contains(t)
                {
                    strings.push(t);
                }
            }
        }
        let mut globals = Vec::new();
        bof(&mut globals, 0x0005);
        rec(&mut globals, 0x0022, &[u8::from(date_1904), 0]);
        for ifmt in [0u16, 14] {
            let mut xf = vec![0; 20];
            xf[2..4].copy_from_slice(&ifmt.to_le_bytes());
            rec(&mut globals, 0x00E0, &xf);
        }
        let mut sheet_at = Vec::new();
        for (name, _) in sheets {
            sheet_at.push(globals.len() + 4);
            let mut d = vec![0; 6];
            d.extend_from_slice(&[name.len() as u8, 0]);
            d.extend_from_slice(name.as_bytes());
            rec(&mut globals, 0x0085, &d);
        }
        let mut sst = Vec::new();
        sst.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        sst.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        for t in &strings {
            let utf16: Vec<u16> = t.encode_utf16().collect();
            sst.extend_from_slice(&(utf16.len() as u16).to_le_bytes());
            sst.push(1);
            sst.extend(utf16.iter().flat_map(|u| u.to_le_bytes()));
        }
        rec(&mut globals, 0x00FC, &sst);
        rec(&mut globals, 0x000A, &[]);
        let mut stream = globals;
        for (i, (_, cells)) in sheets.iter().enumerate() {
            let at = stream.len() as u32;
            stream[sheet_at[i]..sheet_at[i] + 4].copy_from_slice(&at.to_le_bytes());
            bof(&mut stream, 0x0010);
            let rows = cells.iter().map(|c| u32::from(c.0) + 1).max().unwrap_or(0);
            let cols = cells.iter().map(|c| c.1 + 1).max().unwrap_or(0);
            let mut dim = vec![0; 4];
            dim.extend_from_slice(&rows.to_le_bytes());
            dim.extend_from_slice(&[0, 0]);
            dim.extend_from_slice(&cols.to_le_bytes());
            dim.extend_from_slice(&[0, 0]);
            rec(&mut stream, 0x0200, &dim);
            for (r, c, cell) in cells {
                let mut d = Vec::new();
                d.extend_from_slice(&r.to_le_bytes());
                d.extend_from_slice(&c.to_le_bytes());
                let xf: u16 = u16::from(matches!(cell, Biff::Date(_)));
                d.extend_from_slice(&xf.to_le_bytes());
                let typ = match cell {
                    Biff::Text(t) => {
                        let i = strings.iter().position(|s| s == t).unwrap() as u32;
                        d.extend_from_slice(&i.to_le_bytes());
                        0x00FD
                    }
                    Biff::SharedString(i) => {
                        d.extend_from_slice(&i.to_le_bytes());
                        0x00FD
                    }
                    Biff::Number(f) | Biff::Date(f) => {
                        d.extend_from_slice(&f.to_le_bytes());
                        0x0203
                    }
                    Biff::Rk(i) => {
                        // An integer RK: the value shifted left by two, with the integer bit.
                        d.extend_from_slice(&((i << 2) | 2).to_le_bytes());
                        0x027E
                    }
                    Biff::Bool(b) => {
                        d.extend_from_slice(&[u8::from(*b), 0]);
                        0x0205
                    }
                    Biff::Error(e) => {
                        d.extend_from_slice(&[*e, 1]);
                        0x0205
                    }
                };
                rec(&mut stream, typ, &d);
            }
            rec(&mut stream, 0x000A, &[]);
        }
        stream
    }

    /// An XLS file: a compound file holding this workbook stream.
    fn xls_container(stream: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".xls").tempfile().unwrap();
        let mut cfb =
            cfb::CompoundFile::create_with_version(cfb::Version::V3, f.reopen().unwrap()).unwrap();
        {
            use std::io::Write;
            let mut w = cfb.create_stream("/Workbook").unwrap();
            w.write_all(stream).unwrap();
        }
        cfb.flush().unwrap();
        f
    }

    /// The table the binary formats are tested with, its header on the 0-based `head_row`:
    /// a phone number, a date-formatted number, an RK integer, a boolean, text that looks like
    /// a number, a missing cell and an error cell.
    fn binary_table(head_row: u32) -> Vec<(u32, u32, Biff<'static>)> {
        use Biff::*;
        let mut cells = Vec::new();
        for (c, name) in ["email", "phone", "joined", "score", "vip"]
            .into_iter()
            .enumerate()
        {
            cells.push((head_row, c as u32, Text(name)));
        }
        let (a, b) = (head_row + 1, head_row + 2);
        cells.extend([
            (a, 0, Text("zoë@example.com")),
            (a, 1, Number(4_155_550_100.0)),
            (a, 2, Date(45_000.0)),
            (a, 3, Rk(42)),
            (a, 4, Bool(true)),
            (b, 0, Text("bob@example.com")),
            (b, 1, Text("0042")),
            (b, 3, Number(2.5)),
            (b, 4, Error(0x2A)),
        ]);
        cells
    }

    /// Reads a workbook of `binary_table` and checks every cell as a user sees it.
    fn check_binary_table(path: &Path, head_row: u32, format: &str, joined: &str) {
        let (s, got) = all_rows(path);
        assert_eq!(s.header(), ["email", "phone", "joined", "score", "vip"]);
        let error = format!("cell E{} is an error cell (#N/A)", head_row + 3);
        assert_eq!(
            got,
            vec![
                want(
                    1,
                    &["zoë@example.com", "4155550100", joined, "42", "TRUE"],
                    None
                ),
                want(
                    2,
                    &["bob@example.com", "0042", "", "2.5", "#N/A"],
                    Some(&error)
                ),
            ]
        );
        let d = s.dialect();
        assert_eq!(
            (d.format.as_str(), d.sheet.as_deref()),
            (format, Some("Data"))
        );
    }

    #[test]
    fn xls_sheets_are_read_through_the_range() {
        // The first sheet has no cells; the table starts on row 2.
        let cells: Vec<(u16, u16, Biff)> = binary_table(1)
            .into_iter()
            .map(|(r, c, v)| (r as u16, c as u16, v))
            .collect();
        for (date_1904, joined) in [(false, "2023-03-15"), (true, "2027-03-16")] {
            let f = xls_file(date_1904, &[("Empty", Vec::new()), ("Data", cells.clone())]);
            check_binary_table(f.path(), 1, "XLS", joined);
        }
    }

    /// Opens and reads a workbook to the end: its rows, or the first error.
    fn read_all(path: &Path) -> Result<Vec<(u64, Vec<String>, Option<String>)>, String> {
        let mut s = SheetSource::open(path, &ReadOptions::default()).map_err(|e| e.to_string())?;
        let mut got = Vec::new();
        while let Some(r) = s.next_row() {
            let r = r.map_err(|e| e.to_string())?;
            got.push((
                r.row,
                r.cells.iter().map(str::to_string).collect(),
                r.problem,
            ));
        }
        Ok(got)
    }

    #[test]
    fn damaged_xls_files_are_errors_not_panics_or_aborts() {
        use Biff::*;
        let cells = vec![
            (0, 0, Text("email")),
            (0, 1, Text("n")),
            (1, 0, Text("a@x.com")),
            (1, 1, Number(1.5)),
            (2, 0, Text("b@x.com")),
            (2, 1, Rk(7)),
        ];
        let good = xls_stream(false, &[("Data", cells)]);
        assert_eq!(
            read_all(xls_container(&good).path()).unwrap(),
            vec![
                want(1, &["a@x.com", "1.5"], None),
                want(2, &["b@x.com", "7"], None)
            ]
        );
        // Every cut, and every byte set to 0x00, 0x7f or 0xff.
        let mut damaged: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        for i in 0..good.len() {
            for b in [0x00, 0x7f, 0xff] {
                let mut v = good.clone();
                v[i] = b;
                damaged.push(v);
            }
        }
        let mut errors = std::collections::BTreeMap::<String, usize>::new();
        for v in damaged {
            let f = xls_container(&v);
            let got = std::panic::catch_unwind(|| read_all(f.path()));
            let Ok(got) = got else {
                panic!("a panic escaped for {v:?}");
            };
            if let Err(e) = got {
                let kind = if e.contains("the spreadsheet reader failed") {
                    "reader failed"
                } else if e.contains("more than an XLS sheet can have") {
                    "sheet size"
                } else {
                    "other"
                };
                *errors.entry(kind.into()).or_default() += 1;
            }
        }
        // calamine's panics were caught, and the sizes that would have ended the process
        // were refused before it read them.
        assert!(errors.get("reader failed") > Some(&0), "{errors:?}");
        assert!(errors.get("sheet size") > Some(&0), "{errors:?}");
    }

    #[test]
    fn damaged_xlsx_sheets_are_errors_or_rows_never_panics() {
        let rows = concat!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>email</t></is></c>"#,
            r#"<c r="B1" t="inlineStr"><is><t>n</t></is></c></row>"#,
            r#"<row r="2"><c r="A2" t="inlineStr"><is><t>a@x.com</t></is></c><c r="B2"><v>1.5</v></c></row>"#,
            r#"<row r="3"><c r="A3" t="b"><v>1</v></c><c r="B3" t="e"><v>#N/A</v></c></row>"#,
        );
        assert_eq!(read_all(workbook(rows).path()).unwrap().len(), 2);
        let mut damaged: Vec<String> = (0..rows.len()).map(|n| rows[..n].to_string()).collect();
        for i in 0..rows.len() {
            for b in ['0', '9', '<', '"', 'Z', '-', ' '] {
                let mut v = rows.as_bytes().to_vec();
                v[i] = b as u8;
                damaged.push(String::from_utf8(v).unwrap());
            }
        }
        for v in damaged {
            let f = workbook(&v);
            assert!(
                std::panic::catch_unwind(|| read_all(f.path())).is_ok(),
                "{v}"
            );
        }
    }

    /// An XLSB workbook with one sheet, "Data", of these cells (row, column, cell): the
    /// workbook (date system, the sheet), its relationships, styles (General and the built-in
    /// date format 14), the shared strings and the sheet, as BIFF12 records.
    fn xlsb_file(date_1904: bool, cells: &[(u32, u32, Biff)]) -> tempfile::NamedTempFile {
        fn rec(out: &mut Vec<u8>, typ: u16, data: &[u8]) {
            if typ < 0x80 {
                out.push(typ as u8);
            } else {
                out.extend_from_slice(&[(typ & 0x7f) as u8 | 0x80, (typ >> 7) as u8]);
            }
            let mut len = data.len();
            loop {
                let b = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
            out.extend_from_slice(data);
        }
        fn wide(out: &mut Vec<u8>, text: &str) {
            let units: Vec<u16> = text.encode_utf16().collect();
            out.extend_from_slice(&(units.len() as u32).to_le_bytes());
            out.extend(units.iter().flat_map(|u| u.to_le_bytes()));
        }
        let mut workbook = Vec::new();
        rec(&mut workbook, 0x0099, &u32::from(date_1904).to_le_bytes());
        let mut sheet = vec![0; 8];
        wide(&mut sheet, "rId1");
        wide(&mut sheet, "Data");
        rec(&mut workbook, 0x009C, &sheet);
        rec(&mut workbook, 0x0090, &[]);
        rec(&mut workbook, 0x009D, &[0; 4]);

        let mut styles = Vec::new();
        rec(&mut styles, 0x0267, &0u32.to_le_bytes());
        rec(&mut styles, 0x0269, &2u32.to_le_bytes());
        for ifmt in [0u16, 14] {
            let mut xf = vec![0; 16];
            xf[2..4].copy_from_slice(&ifmt.to_le_bytes());
            rec(&mut styles, 0x002F, &xf);
        }

        let mut strings: Vec<&str> = Vec::new();
        for (_, _, c) in cells {
            if let Biff::Text(t) = c
                && !strings.contains(t)
            {
                strings.push(t);
            }
        }
        let mut sst = Vec::new();
        let count = (strings.len() as u32).to_le_bytes();
        rec(&mut sst, 0x009F, &[count, count].concat());
        for t in &strings {
            let mut item = vec![0];
            wide(&mut item, t);
            rec(&mut sst, 0x0013, &item);
        }

        let mut ws = Vec::new();
        let last_row = cells.iter().map(|c| c.0).max().unwrap_or(0);
        let last_col = cells.iter().map(|c| c.1).max().unwrap_or(0);
        let dim = [0u32, last_row, 0, last_col].map(u32::to_le_bytes).concat();
        rec(&mut ws, 0x0094, &dim);
        rec(&mut ws, 0x0091, &[]);
        let mut row = None;
        for (r, c, cell) in cells {
            if row != Some(*r) {
                row = Some(*r);
                rec(
                    &mut ws,
                    0x0000,
                    &[r.to_le_bytes().as_slice(), &[0; 13]].concat(),
                );
            }
            let style: u32 = u32::from(matches!(cell, Biff::Date(_)));
            let mut d = [c.to_le_bytes(), style.to_le_bytes()].concat();
            let typ = match cell {
                Biff::Text(t) => {
                    let i = strings.iter().position(|s| s == t).unwrap() as u32;
                    d.extend_from_slice(&i.to_le_bytes());
                    0x0007
                }
                Biff::SharedString(i) => {
                    d.extend_from_slice(&i.to_le_bytes());
                    0x0007
                }
                Biff::Number(f) | Biff::Date(f) => {
                    d.extend_from_slice(&f.to_le_bytes());
                    0x0005
                }
                Biff::Rk(i) => {
                    d.extend_from_slice(&((i << 2) | 2).to_le_bytes());
                    0x0002
                }
                Biff::Bool(b) => {
                    d.push(u8::from(*b));
                    0x0004
                }
                Biff::Error(e) => {
                    d.push(*e);
                    0x0003
                }
            };
            rec(&mut ws, typ, &d);
        }
        rec(&mut ws, 0x0092, &[]);

        let ns = "http://schemas.openxmlformats.org";
        let rels = format!(
            r#"<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.bin"/></Relationships>"#
        );
        zip_file(
            "xlsb",
            &[
                ("xl/workbook.bin", workbook),
                ("xl/_rels/workbook.bin.rels", rels.into_bytes()),
                ("xl/styles.bin", styles),
                ("xl/sharedStrings.bin", sst),
                ("xl/worksheets/sheet1.bin", ws),
            ],
        )
    }

    #[test]
    fn xlsb_sheets_are_streamed() {
        let cells = binary_table(2);
        for (date_1904, joined) in [(false, "2023-03-15"), (true, "2027-03-16")] {
            check_binary_table(xlsb_file(date_1904, &cells).path(), 2, "XLSB", joined);
        }
        // A cell naming a shared string that is not there: calamine panics, the row before
        // it is read, and the error ends the rows.
        let mut bad = cells.clone();
        bad.push((5, 0, Biff::SharedString(99)));
        let mut s =
            SheetSource::open(xlsb_file(false, &bad).path(), &ReadOptions::default()).unwrap();
        assert_eq!(s.next_row().unwrap().unwrap().row, 1);
        assert_eq!(s.next_row().unwrap().unwrap().row, 2);
        let e = s.next_row().unwrap().unwrap_err().to_string();
        assert!(e.contains("the file looks damaged"), "{e}");
        assert!(s.next_row().is_none());
    }

    #[test]
    fn an_xlsb_record_too_long_to_hold_is_refused_naming_the_part() {
        let long = "x".repeat(600_000);
        let cells = [
            (0, 0, Biff::Text("email")),
            (1, 0, Biff::Text(long.as_str())),
        ];
        let e = SheetSource::open(xlsb_file(false, &cells).path(), &ReadOptions::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("cannot read the spreadsheet: xl/sharedStrings.bin (1.1 MiB inflated): a record at byte"),
            "{e}"
        );
    }

    #[test]
    fn an_xls_file_too_large_to_load_is_refused() {
        let f = tempfile::Builder::new().suffix(".xls").tempfile().unwrap();
        f.as_file().set_len(XLS_MAX_BYTES + 1).unwrap();
        let e = SheetSource::open(f.path(), &ReadOptions::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("an XLS workbook is loaded whole (the format requires it), and this one is 8.0 MiB: csmport reads XLS files of up to 8.0 MiB"),
            "{e}"
        );
    }
}
