//! Read stage: turns an input file (CSV in any common dialect, or a spreadsheet) into a header
//! and a stream of raw rows, each carrying where it came from, plus a report of what was
//! detected. Feeds `map`; knows nothing of CSM. One file per format: `csv`, `xlsx` (all
//! spreadsheets, through calamine), with `zipview` (inflating zip members ahead) and `biff`
//! (checking an XLS before calamine opens it) beneath it.

pub mod batch;
mod biff;
mod binguard;
pub mod csv;
pub mod json;
pub mod xlsx;
mod xmlguard;
mod zipview;

pub use batch::{RowBatch, RowRef};

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A data row as read, before mapping. `row` is the 1-based data row (the header is row 0), as
/// written to the reports' `_row`. (No physical line number: with quoted newlines and CRLF it
/// is not what a spreadsheet user counts anyway.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub row: u64,
    /// One buffer for all cells (not a String each): rows are many, cells more.
    pub cells: ::csv::StringRecord,
    /// A row-level read problem (ragged row, bad bytes): the row still flows to the report.
    pub problem: Option<String>,
}

/// The largest cell worth holding: the API's own text limit (`site::api::MAX_TEXT_CHARS`
/// characters, at most four bytes each in UTF-8). A larger cell cannot be sent, so its row
/// fails at the read stage, and the rest of the cell is never held.
pub const MAX_CELL_BYTES: usize = 4 * csmport_api::MAX_TEXT_CHARS;
/// What the report keeps of a cell over the limit.
pub const KEPT_CHARS: usize = 1000;
/// The bytes of one row held at most (a row of many large cells that are each allowed fits).
pub const MAX_ROW_BYTES: usize = 2 << 20;
/// The fields of one row held at most (a spreadsheet has 16,384 columns).
pub const MAX_FIELDS: usize = 65_536;

/// A size for messages: bytes, KiB, MiB or GiB.
pub fn shown_size(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f >= K * K * K {
        format!("{:.1} GiB", f / (K * K * K))
    } else if f >= K * K {
        format!("{:.1} MiB", f / (K * K))
    } else if f >= 10.0 * K {
        format!("{:.1} KiB", f / K)
    } else {
        format!("{n} bytes")
    }
}

/// The first `chars` characters of `bytes` (UTF-8, or bytes not checked yet: a character
/// starts at every byte that is not a continuation byte).
pub fn first_chars(bytes: &[u8], chars: usize) -> usize {
    let mut seen = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b & 0xC0 != 0x80 {
            if seen == chars {
                return i;
            }
            seen += 1;
        }
    }
    bytes.len()
}

/// The row problem of cells over `MAX_CELL_BYTES`: (column name, size) of each, in order.
pub fn oversized_problem(cells: &[(String, u64)]) -> String {
    let (name, size) = &cells[0];
    let more = match cells.len() {
        1 => String::new(),
        n => format!(" (and {} more cells over the limit)", n - 1),
    };
    format!(
        "{name} holds {}{more}; a cell holds at most {MAX_CELL_BYTES} bytes ({} characters, the API's text limit), so the row is not sent; the report keeps the first {KEPT_CHARS} characters of the cell",
        shown_size(*size),
        csmport_api::MAX_TEXT_CHARS
    )
}

/// Indexed access to a row's cells, whatever holds them; a missing cell reads as empty. Cells
/// read here have the formula guard of csmport's CSV export taken off (`unescape_formula`).
pub trait Cells {
    fn cell(&self, i: usize) -> &str;
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell that spreadsheets will not run: text starting with a formula character gets a leading
/// `'` (`unescape_formula` takes it off again). Numbers stay as they are (`-5`, `+1.5e3`, a
/// phone number like `+44 20 7946 0000`): they hold nothing a spreadsheet could run, and
/// quoting them would turn numbers into text for every user who opens the file. Used by CSV
/// exports and by the run reports, which exist to be opened in a spreadsheet.
pub fn escape_formula(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(FORMULA_START) && !is_plain_number(s) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A signed number or phone number: a sign, then only digits and the separators numbers and
/// phone numbers are written with (space, `.`, `,`, `-`, `/`, parentheses, an exponent), at
/// least one digit, and no letter, operator or function a formula needs.
fn is_plain_number(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(['+', '-']) else {
        return false;
    };
    let mut digits = false;
    let mut exponent = false;
    for c in rest.chars() {
        match c {
            '0'..='9' => digits = true,
            ' ' | '.' | ',' | '-' | '/' | '(' | ')' => {}
            'e' | 'E' if digits && !exponent => exponent = true,
            '+' if exponent => {}
            _ => return false,
        }
    }
    digits && rest.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '(')
}

/// The value of a cell written by csmport's CSV export: text that a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-`, `@`, tab or CR) is written with a leading `'`, which
/// this takes off again. Anything else is returned as it is.
#[inline]
pub fn unescape_formula(cell: &str) -> &str {
    let b = cell.as_bytes();
    if b.len() >= 2 && b[0] == b'\'' && matches!(b[1], b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') {
        &cell[1..]
    } else {
        cell
    }
}

impl Cells for ::csv::StringRecord {
    fn cell(&self, i: usize) -> &str {
        unescape_formula(self.get(i).unwrap_or(""))
    }
}

impl Cells for [String] {
    fn cell(&self, i: usize) -> &str {
        unescape_formula(self.get(i).map(String::as_str).unwrap_or(""))
    }
}

impl Cells for Vec<String> {
    fn cell(&self, i: usize) -> &str {
        self.as_slice().cell(i)
    }
}

impl RawRow {
    pub fn is_blank(&self) -> bool {
        // All cells share one buffer: a row is blank when that buffer is only whitespace.
        self.cells.as_slice().trim().is_empty()
    }
}

/// File-level read errors: these stop the run before anything is sent (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty (expected a header row such as: email,displayName,...)")]
    Empty { path: PathBuf },
    #[error("{path}: not a CSV text file: {why}")]
    NotCsv { path: PathBuf, why: String },
    #[error("{path}: cannot read the spreadsheet: {why}")]
    Spreadsheet { path: PathBuf, why: String },
    #[error("{path}: near line {line}: {why}")]
    Broken {
        path: PathBuf,
        line: u64,
        why: String,
    },
    #[error("{path}: {why}")]
    Header { path: PathBuf, why: String },
    #[error("{path}: at byte {offset}: {why}")]
    Json {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error("{path}: reading stopped: {why} (a bug in csmport; please report it)")]
    Stopped { path: PathBuf, why: String },
}

/// Character encodings a CSV may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// Also what spreadsheets mean by Latin-1 / ISO-8859-1.
    Windows1252,
}

impl csmport_api::Choice for Encoding {
    const ALL: &'static [Self] = &[
        Encoding::Utf8,
        Encoding::Utf16Le,
        Encoding::Utf16Be,
        Encoding::Windows1252,
    ];
    fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::Windows1252 => "windows-1252",
        }
    }
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Encoding::Utf8 => &["utf8"],
            Encoding::Utf16Le => &["utf16le"],
            Encoding::Utf16Be => &["utf16be"],
            Encoding::Windows1252 => &["cp1252", "latin1", "iso-8859-1"],
        }
    }
    fn help(self) -> &'static str {
        match self {
            Encoding::Windows1252 => "Also what spreadsheets mean by Latin-1 / ISO-8859-1",
            _ => "",
        }
    }
}

impl Encoding {
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Windows1252 => "Windows-1252",
        }
    }
}

/// How to read an input; `None` means detect.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub encoding: Option<Encoding>,
    pub delimiter: Option<u8>,
    /// 1-based row of the header (rows above it are skipped).
    pub header_row: Option<u64>,
    /// Spreadsheet sheet, by name or 1-based index.
    pub sheet: Option<String>,
}

/// What the reader found, for the dialect report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dialect {
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_endings: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    pub header_row: u64,
    pub blank_lines_skipped: u64,
    /// Notes such as "column 7 has no header; its values are ignored".
    pub notes: Vec<String>,
}

impl Dialect {
    pub fn describe(&self, rows: u64) -> String {
        let mut parts = vec![self.format.clone()];
        if let Some(e) = &self.encoding {
            parts.push(format!("encoding {e}"));
        }
        if let Some(d) = &self.delimiter {
            parts.push(format!("delimiter {d}"));
        }
        if let Some(l) = &self.line_endings {
            parts.push(format!("line endings {l}"));
        }
        if let Some(s) = &self.sheet {
            parts.push(format!("sheet '{s}'"));
        }
        // JSON has no header row: its keys are the columns.
        if self.header_row > 0 {
            parts.push(format!("header row {}", self.header_row));
        }
        parts.push(match rows {
            1 => "1 row".to_string(),
            n => format!("{n} rows"),
        });
        parts.push(match self.blank_lines_skipped {
            1 => "1 blank line skipped".to_string(),
            n => format!("{n} blank lines skipped"),
        });
        parts.join(" · ")
    }
}

/// For a trial run (`rows`: first and last data row): the file must have the first of them, or
/// the run would be an empty one that looks like a success. Reads only up to that row.
pub fn check_rows(
    path: &Path,
    options: &ReadOptions,
    rows: Option<(u64, u64)>,
) -> Result<(), String> {
    let Some((first, last)) = rows else {
        return Ok(());
    };
    let Ok(source) = Source::open(path, options) else {
        // The run's own open says why.
        return Ok(());
    };
    let mut reader = Background::spawn(source);
    let mut seen = 0;
    while let Some(batch) = reader.next_batch() {
        seen = batch.last_row().unwrap_or(seen);
        if seen >= first || batch.error.is_some() {
            break;
        }
        reader.recycle(batch);
    }
    if seen >= first {
        return Ok(());
    }
    Err(format!(
        "--rows {first}-{last}: {} has {} data row{}, so no row is in that range",
        path.display(),
        seen,
        if seen == 1 { "" } else { "s" }
    ))
}

/// An open input of any supported format. (One per input file: its size does not matter.)
#[allow(clippy::large_enum_variant)]
pub enum Source {
    Csv(csv::CsvSource),
    Sheet(xlsx::SheetSource),
    Json(json::JsonSource),
}

impl Source {
    /// Opens by extension: .xlsx/.xlsm/.xlsb/.xls/.ods are spreadsheets, anything else CSV.
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<Source, ReadError> {
        if xlsx::EXTENSIONS.contains(&extension(path).as_str()) {
            Ok(Source::Sheet(xlsx::SheetSource::open(path, opts)?))
        } else if json::EXTENSIONS.contains(&extension(path).as_str()) {
            Ok(Source::Json(json::JsonSource::open(path)?))
        } else {
            Ok(Source::Csv(csv::CsvSource::open(path, opts)?))
        }
    }

    pub fn header(&self) -> &[String] {
        match self {
            Source::Csv(s) => s.header(),
            Source::Sheet(s) => s.header(),
            Source::Json(s) => s.header(),
        }
    }

    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        match self {
            Source::Csv(s) => s.next_row(),
            Source::Sheet(s) => s.next_row(),
            Source::Json(s) => s.next_row(),
        }
    }

    /// Progress: (done, total) in the unit the format knows (bytes, or rows).
    pub fn progress(&self) -> (u64, u64) {
        match self {
            Source::Csv(s) => (s.position(), s.size()),
            Source::Sheet(s) => s.progress(),
            Source::Json(s) => (s.position(), s.size()),
        }
    }

    /// About how many data rows the input holds, for sizing.
    pub fn estimated_rows(&self) -> u64 {
        match self {
            Source::Csv(s) => s.estimated_rows(),
            Source::Sheet(s) => s.progress().1,
            Source::Json(s) => s.estimated_rows(),
        }
    }

    /// The dialect report; complete once the rows are read.
    pub fn dialect(&self) -> Dialect {
        match self {
            Source::Csv(s) => s.dialect(),
            Source::Sheet(s) => s.dialect(),
            Source::Json(s) => s.dialect(),
        }
    }
}

/// A source read on its own thread, so parsing and decoding run beside mapping and validation
/// (two cores: about twice the rows per second). Rows arrive in order, in batches whose
/// buffers go back to the reader to be filled again; at most a few batches are in flight.
pub struct Background {
    /// Spreadsheets are already read on their own thread: no second hop for them.
    inline: Option<xlsx::SheetSource>,
    rx: std::sync::mpsc::Receiver<RowBatch>,
    recycle: Option<std::sync::mpsc::SyncSender<RowBatch>>,
    /// For `next_row`.
    cursor: batch::RowCursor,
    handle: Option<std::thread::JoinHandle<Dialect>>,
    progress: std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    /// Only these data rows (first, last), for a trial run; and whether reading went past them.
    rows: Option<(u64, u64)>,
    past: bool,
}

impl batch::Batches for Background {
    fn next_batch(&mut self) -> Option<RowBatch> {
        Background::next_batch(self)
    }

    fn recycle(&mut self, batch: RowBatch) {
        Background::recycle(self, batch)
    }
}

/// A source read on the background thread.
trait Threaded: Send {
    fn path(&self) -> &Path;
    fn fill_batch(&mut self, batch: &mut RowBatch) -> bool;
    fn position(&self) -> u64;
    fn size(&self) -> u64;
    fn dialect(&self) -> Dialect;
}

impl Threaded for csv::CsvSource {
    fn path(&self) -> &Path {
        csv::CsvSource::path(self)
    }
    fn fill_batch(&mut self, batch: &mut RowBatch) -> bool {
        csv::CsvSource::fill_batch(self, batch)
    }
    fn position(&self) -> u64 {
        csv::CsvSource::position(self)
    }
    fn size(&self) -> u64 {
        csv::CsvSource::size(self)
    }
    fn dialect(&self) -> Dialect {
        csv::CsvSource::dialect(self)
    }
}

impl Threaded for json::JsonSource {
    fn path(&self) -> &Path {
        json::JsonSource::path(self)
    }
    fn fill_batch(&mut self, batch: &mut RowBatch) -> bool {
        json::JsonSource::fill_batch(self, batch)
    }
    fn position(&self) -> u64 {
        json::JsonSource::position(self)
    }
    fn size(&self) -> u64 {
        json::JsonSource::size(self)
    }
    fn dialect(&self) -> Dialect {
        json::JsonSource::dialect(self)
    }
}

/// Batches in flight each way.
const IN_FLIGHT: usize = 4;

/// A file's extension in lower case ("" when it has none): formats are chosen by it.
fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// Little-endian integers at `at` in a binary format's record.
fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}

/// What a caught panic said.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The reader thread's loop: fills batches (reusing those that came back) and sends them
/// until `fill` says there is no more or no one reads. A panic while filling (a bug) is sent
/// as the error of a last batch: the receiving side would otherwise see the channel close as
/// the end of the file, and the rows after it would be lost without a word.
fn send_batches(
    path: &Path,
    tx: &std::sync::mpsc::SyncSender<RowBatch>,
    recycled: &std::sync::mpsc::Receiver<RowBatch>,
    mut fill: impl FnMut(&mut RowBatch) -> bool,
) {
    loop {
        let mut batch = recycled.try_recv().unwrap_or_default();
        batch.clear();
        let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fill(&mut batch)));
        let more = match filled {
            Ok(more) => more,
            Err(panic) => {
                let why = panic_text(panic.as_ref());
                // The rows of the batch being filled are dropped with it: the error says the
                // file was not read to its end, and the run stops on it.
                let mut last = RowBatch::default();
                last.error = Some(ReadError::Stopped {
                    path: path.to_path_buf(),
                    why,
                });
                let _ = tx.send(last);
                return;
            }
        };
        if (!batch.is_empty() && tx.send(batch).is_err()) || !more {
            return;
        }
    }
}

impl Background {
    pub fn spawn(source: Source) -> Background {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::sync_channel(IN_FLIGHT);
        let mut source: Box<dyn Threaded> = match source {
            Source::Csv(csv) => Box::new(csv),
            Source::Json(json) => Box::new(json),
            Source::Sheet(sheet) => {
                return Background {
                    inline: Some(sheet),
                    rx,
                    recycle: None,
                    cursor: Default::default(),
                    handle: None,
                    progress: Default::default(),
                    rows: None,
                    past: false,
                };
            }
        };
        let progress = std::sync::Arc::new((
            std::sync::atomic::AtomicU64::new(source.position()),
            std::sync::atomic::AtomicU64::new(source.size()),
        ));
        let p = progress.clone();
        let (recycle, recycled) = std::sync::mpsc::sync_channel::<RowBatch>(IN_FLIGHT + 1);
        let handle = std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let path = source.path().to_path_buf();
                send_batches(&path, &tx, &recycled, |batch| {
                    let more = source.fill_batch(batch);
                    p.0.store(source.position(), Ordering::Relaxed);
                    more
                });
                source.dialect()
            })
            .expect("a thread can be started");
        Background {
            inline: None,
            rx,
            recycle: Some(recycle),
            cursor: Default::default(),
            handle: Some(handle),
            progress,
            rows: None,
            past: false,
        }
    }

    /// Only the data rows `first..=last` come out (`--limit`, `--rows`); reading stops after
    /// them.
    pub fn with_rows(mut self, rows: Option<(u64, u64)>) -> Background {
        self.rows = rows;
        self
    }

    /// The next rows, in order (`None` at the end). A read error comes in `error` of the last
    /// batch, after the rows before it.
    pub fn next_batch(&mut self) -> Option<RowBatch> {
        if self.past {
            return None;
        }
        let mut batch = match &mut self.inline {
            None => self.rx.recv().ok(),
            Some(s) => s.next_batch(),
        }?;
        if let Some((first, last)) = self.rows {
            self.past = batch.keep_rows(first, last);
        }
        Some(batch)
    }

    /// Gives a finished batch's buffers back to the reader.
    pub fn recycle(&mut self, batch: RowBatch) {
        if let Some(s) = &mut self.inline {
            return s.recycle(batch);
        }
        if let Some(tx) = &self.recycle {
            // A full channel means the reader has spares enough: this one is simply dropped.
            let _ = tx.try_send(batch);
        }
    }

    /// The next row on its own, for callers that keep rows (import).
    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        let mut cursor = std::mem::take(&mut self.cursor);
        let row = cursor.next_row(self);
        self.cursor = cursor;
        row
    }

    /// (done, total), as `Source::progress`.
    pub fn progress(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        if let Some(s) = &self.inline {
            return s.progress();
        }
        (
            self.progress.0.load(Ordering::Relaxed),
            self.progress.1.load(Ordering::Relaxed),
        )
    }

    /// Stops reading (if not at the end) and returns the dialect report.
    pub fn finish(mut self) -> Dialect {
        if let Some(s) = &self.inline {
            return s.dialect();
        }
        drop(std::mem::replace(
            &mut self.rx,
            std::sync::mpsc::sync_channel(1).1,
        ));
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_reading_ends_the_rows_with_an_error_not_silently() {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (_spare, recycled) = std::sync::mpsc::sync_channel(1);
        let mut n = 0;
        let reader = std::thread::spawn(move || {
            send_batches(Path::new("in.csv"), &tx, &recycled, |batch| {
                n += 1;
                batch.push(n, ["a@x.com"], None);
                assert!(n < 3, "row {n} cannot be parsed");
                true
            });
        });
        let got: Vec<RowBatch> = rx.iter().collect();
        reader.join().unwrap();
        let rows: Vec<u64> = got.iter().flat_map(|b| b.iter().map(|r| r.row())).collect();
        assert_eq!(rows, [1, 2]);
        let last = got.last().unwrap();
        assert_eq!(last.len(), 0);
        assert_eq!(
            last.error.as_ref().map(ToString::to_string).as_deref(),
            Some(
                "in.csv: reading stopped: row 3 cannot be parsed (a bug in csmport; please \
                 report it)"
            )
        );
    }
}
