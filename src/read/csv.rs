//! CSV reader: detects the encoding (BOM, UTF-8, else Windows-1252), the delimiter (`,` `;`
//! tab `|`) and the line endings, then streams one record at a time through the csv crate.
//! Quoted fields with newlines, CR-only files, blank lines (counted), ragged rows and NUL bytes
//! (row problems) are handled here. Part of the read stage; `map` consumes its rows.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::batch::{BATCH_BYTES, BATCH_ROWS, ByteFill, Filled, RowBatch};
use super::{
    Dialect, Encoding, KEPT_CHARS, MAX_CELL_BYTES, MAX_FIELDS, MAX_ROW_BYTES, RawRow, ReadError,
    ReadOptions, first_chars, oversized_problem, shown_size,
};

/// How much of the file the sniffers look at.
const SNIFF_BYTES: usize = 64 * 1024;
/// Lines the delimiter sniffer compares.
const SNIFF_LINES: usize = 50;
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

pub struct CsvSource {
    path: PathBuf,
    parser: Parser,
    header: Vec<String>,
    /// The last record's cell ends (scratch, reused).
    ends: Vec<usize>,
    next_row: u64,
    size: u64,
    raw_pos: Arc<AtomicU64>,
    lines: Arc<LineStats>,
    /// Lines taken by records so far (each record: 1 + the line breaks inside its fields).
    record_lines: u64,
    /// The last record's fields, with those past `MAX_FIELDS` that were not kept.
    fields: usize,
    /// The last record's cells over the limit, cut: its row problem.
    cut: Option<String>,
    /// The bytes are not decoded, so invalid UTF-8 is possible and is a row problem.
    raw_utf8: bool,
    dialect: Dialect,
    /// Bytes per line in the sniffed sample, to estimate the row count.
    bytes_per_line: u64,
}

/// Line terminators seen in the decoded stream (`\r\n`, `\r` and `\n` each count once).
#[derive(Default)]
struct LineStats {
    terminators: AtomicU64,
    bytes: AtomicU64,
    last: AtomicU64,
}

struct Counting<R> {
    inner: R,
    stats: Arc<LineStats>,
    prev: u8,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        let mut t = 0;
        for i in memchr::memchr2_iter(b'\r', b'\n', chunk) {
            let before = if i == 0 { self.prev } else { chunk[i - 1] };
            if chunk[i] == b'\r' || before != b'\r' {
                t += 1;
            }
        }
        if n > 0 {
            self.prev = chunk[n - 1];
            self.stats.terminators.fetch_add(t, Ordering::Relaxed);
            self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            self.stats
                .last
                .store(u64::from(self.prev), Ordering::Relaxed);
        }
        Ok(n)
    }
}

struct RawCounting {
    file: File,
    pos: Arc<AtomicU64>,
}

impl Read for RawCounting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.pos.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn terminators_in(bytes: &[u8]) -> u64 {
    memchr::memchr2_iter(b'\r', b'\n', bytes)
        .filter(|&i| bytes[i] == b'\r' || i == 0 || bytes[i - 1] != b'\r')
        .count() as u64
}

/// Recognises files that are certainly not text: known binary signatures, or many NUL bytes
/// without a UTF-16 byte-order mark.
pub fn sniff_binary(sample: &[u8]) -> Option<String> {
    const MAGIC: [(&[u8], &str); 7] = [
        (
            b"PK\x03\x04",
            "a ZIP archive (an .xlsx or .ods saved under a .csv name? name it .xlsx, or save it as CSV)",
        ),
        (
            b"\xD0\xCF\x11\xE0",
            "an old Excel (.xls) or other Office file (name it .xls, or save it as CSV)",
        ),
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"\x1F\x8B", "a gzip archive (unpack it first)"),
        (b"GIF8", "a GIF image"),
    ];
    for (magic, what) in MAGIC {
        if sample.starts_with(magic) {
            return Some(format!("it is {what}"));
        }
    }
    let utf16_bom = sample.starts_with(&[0xFF, 0xFE]) || sample.starts_with(&[0xFE, 0xFF]);
    let nuls = sample.iter().filter(|&&b| b == 0).count();
    if !utf16_bom && nuls >= 4 && nuls * 10 > sample.len() {
        return Some(
            "it holds many NUL bytes: a binary file, or UTF-16 text without a byte-order mark (then pass --encoding utf-16le or utf-16be)"
                .into(),
        );
    }
    None
}

/// The encoding: a BOM is definitive; then `--encoding`; then UTF-8 if the sample is valid
/// UTF-8, else Windows-1252 (what Excel on Windows writes). Returns (encoding, has BOM, note).
pub fn detect_encoding(
    sample: &[u8],
    forced: Option<Encoding>,
) -> (Encoding, usize, Option<String>) {
    let bom = if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((Encoding::Utf8, 3))
    } else if sample.starts_with(&[0xFF, 0xFE]) {
        Some((Encoding::Utf16Le, 2))
    } else if sample.starts_with(&[0xFE, 0xFF]) {
        Some((Encoding::Utf16Be, 2))
    } else {
        None
    };
    match (bom, forced) {
        (Some((e, n)), Some(f)) if f != e => (
            e,
            n,
            Some(format!(
                "the file starts with a {} byte-order mark; --encoding {} was overridden",
                e.label(),
                f.label()
            )),
        ),
        (Some((e, n)), _) => (e, n, None),
        (None, Some(f)) => (f, 0, None),
        (None, None) => {
            let valid = match std::str::from_utf8(sample) {
                Ok(_) => true,
                // A multi-byte character cut by the end of the sample is not an error.
                Err(e) => e.error_len().is_none() && sample.len() - e.valid_up_to() < 4,
            };
            if valid {
                (Encoding::Utf8, 0, None)
            } else {
                (Encoding::Windows1252, 0, None)
            }
        }
    }
}

/// Picks the delimiter that splits the first lines into the same number of fields, preferring
/// more fields; quotes are respected. A file with one column gets `,`.
pub fn detect_delimiter(text: &str) -> u8 {
    let lines = split_lines(text, SNIFF_LINES);
    let mut best = (0usize, 0usize, b',');
    for &d in &DELIMITERS {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, d)).collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        if first == 0 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        if (consistent, first) > (best.0, best.1) {
            best = (consistent, first, d);
        }
    }
    best.2
}

/// Up to `max` logical lines (line breaks inside quotes do not end a line), blank ones skipped.
fn split_lines(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' | b'\r' if !in_quotes => {
                let line = &text[start..i];
                if !line.trim().is_empty() {
                    out.push(line);
                    if out.len() >= max {
                        return out;
                    }
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    // The last line may be cut by the end of the sample; use it only if it is all there is.
    if out.is_empty() && !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

fn count_outside_quotes(line: &str, d: u8) -> usize {
    let mut in_quotes = false;
    let mut n = 0;
    for &b in line.as_bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == d && !in_quotes {
            n += 1;
        }
    }
    n
}

/// The record terminators in use; line breaks inside quoted fields do not count.
pub fn line_endings(text: &str) -> &'static str {
    let b = text.as_bytes();
    let (mut crlf, mut lf, mut cr) = (0, 0, 0);
    let mut i = 0;
    let mut in_quotes = false;
    while i < b.len() {
        match b[i] {
            b'"' => in_quotes = !in_quotes,
            _ if in_quotes => {}
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                crlf += 1;
                i += 1;
            }
            b'\r' => cr += 1,
            b'\n' => lf += 1,
            _ => {}
        }
        i += 1;
    }
    match (crlf > 0, lf > 0, cr > 0) {
        (false, false, false) => "none",
        (true, false, false) => "CRLF",
        (false, true, false) => "LF",
        (false, false, true) => "CR",
        _ => "mixed",
    }
}

pub fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        b',' => "','".into(),
        b';' => "';'".into(),
        b'|' => "'|'".into(),
        other => format!("'{}'", other as char),
    }
}

impl CsvSource {
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<CsvSource, ReadError> {
        let open_err = |source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if meta.is_dir() {
            return Err(ReadError::NotCsv {
                path: path.to_path_buf(),
                why: "it is a directory".into(),
            });
        }
        let size = meta.len();
        let mut sample = Vec::with_capacity(SNIFF_BYTES);
        (&mut file)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut sample)
            .map_err(open_err)?;
        if let Some(why) = sniff_binary(&sample) {
            return Err(ReadError::NotCsv {
                path: path.to_path_buf(),
                why,
            });
        }
        let (encoding, bom_len, note) = detect_encoding(&sample, opts.encoding);
        let text = decode_sample(&sample[bom_len..], encoding);
        if sample.len() > bom_len && text.trim_matches(['\r', '\n', ' ', '\t']).is_empty() {
            return Err(ReadError::Empty {
                path: path.to_path_buf(),
            });
        }
        let delimiter = opts.delimiter.unwrap_or_else(|| detect_delimiter(&text));
        let mut dialect = Dialect {
            format: "CSV".into(),
            encoding: Some(format!(
                "{}{}{}",
                encoding.label(),
                if bom_len > 0 { " with BOM" } else { "" },
                if opts.encoding.is_none() && bom_len == 0 {
                    " (detected)"
                } else {
                    ""
                }
            )),
            delimiter: Some(format!(
                "{}{}",
                delimiter_name(delimiter),
                if opts.delimiter.is_none() {
                    " (detected)"
                } else {
                    ""
                }
            )),
            line_endings: Some(line_endings(&text).to_string()),
            header_row: opts.header_row.unwrap_or(1).max(1),
            ..Dialect::default()
        };
        dialect.notes.extend(note);

        // Start again from the first byte: the sample was only for sniffing.
        let file = File::open(path).map_err(open_err)?;
        let raw_pos = Arc::new(AtomicU64::new(0));
        let raw = RawCounting {
            file,
            pos: raw_pos.clone(),
        };
        let decoded: Box<dyn Read + Send> = match encoding {
            Encoding::Utf8 => {
                let mut r = BufReader::with_capacity(256 * 1024, raw);
                let mut skip = vec![0u8; bom_len];
                r.read_exact(&mut skip).map_err(open_err)?;
                Box::new(r)
            }
            other => {
                let enc = match other {
                    Encoding::Utf16Le => encoding_rs::UTF_16LE,
                    Encoding::Utf16Be => encoding_rs::UTF_16BE,
                    _ => encoding_rs::WINDOWS_1252,
                };
                Box::new(
                    encoding_rs_io::DecodeReaderBytesBuilder::new()
                        .encoding(Some(enc))
                        .bom_override(true)
                        .strip_bom(true)
                        .build(BufReader::with_capacity(256 * 1024, raw)),
                )
            }
        };
        let lines = Arc::new(LineStats::default());
        let counting: Box<dyn Read + Send> = Box::new(Counting {
            inner: decoded,
            stats: lines.clone(),
            prev: 0,
        });
        let parser = Parser {
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input: counting,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
            eof: false,
            last_byte: 0,
            scratch: vec![0; 64 * 1024],
            scratch_ends: vec![0; 256],
        };
        let mut src = CsvSource {
            path: path.to_path_buf(),
            parser,
            header: Vec::new(),
            ends: Vec::new(),
            next_row: 1,
            size,
            raw_pos,
            lines,
            record_lines: 0,
            fields: 0,
            cut: None,
            raw_utf8: encoding == Encoding::Utf8,
            dialect,
            bytes_per_line: (sample.len() as u64 / (terminators_in(&sample).max(1))).max(1),
        };
        src.read_header()?;
        Ok(src)
    }

    fn read_header(&mut self) -> Result<(), ReadError> {
        let path = self.path.clone();
        let mut scratch = Filled::default();
        for _ in 1..self.dialect.header_row {
            scratch.clear();
            if !self.read_record(&mut scratch)? {
                return Err(ReadError::Header {
                    path,
                    why: format!(
                        "--header-row {} is past the end of the file",
                        self.dialect.header_row
                    ),
                });
            }
        }
        scratch.clear();
        if !self.read_record(&mut scratch)? {
            return Err(ReadError::Empty { path });
        }
        if self.fields > MAX_FIELDS {
            return Err(ReadError::Header {
                path,
                why: format!(
                    "the header row has {} columns; at most {MAX_FIELDS} are read (is this the right file?)",
                    self.fields
                ),
            });
        }
        if self.cut.take().is_some() {
            return Err(ReadError::Header {
                path,
                why: format!(
                    "a cell of the header row is larger than {MAX_CELL_BYTES} bytes (is this the right file?)"
                ),
            });
        }
        let bytes = scratch.as_slice();
        let mut header = Vec::with_capacity(self.ends.len());
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            let cell = &bytes[start..end];
            start = end;
            if cell.contains(&0) {
                return Err(ReadError::NotCsv {
                    path,
                    why: "the header row contains NUL bytes (a binary file, or UTF-16 text without a byte-order mark: try --encoding utf-16le)".into(),
                });
            }
            let text = std::str::from_utf8(cell).map_err(|_| ReadError::NotCsv {
                path: path.clone(),
                why: format!(
                    "header cell {} is not valid UTF-8 text (use --encoding)",
                    i + 1
                ),
            })?;
            let text = if i == 0 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            header.push(text.to_string());
        }
        if header.iter().all(|h| h.trim().is_empty()) {
            return Err(ReadError::Header {
                path,
                why: format!(
                    "row {} is empty; where is the header? (--header-row N)",
                    self.dialect.header_row
                ),
            });
        }
        self.header = header;
        Ok(())
    }

    /// Appends the next record to `out` (its cell ends in `self.ends`), counting the lines it
    /// takes; false at the end of the file. Cells over `MAX_CELL_BYTES` are cut to their first
    /// `KEPT_CHARS` characters here (`self.cut` says so); a quote never closed is an error
    /// naming the line it opened on.
    fn read_record(&mut self, out: &mut Filled) -> Result<bool, ReadError> {
        let start = out.used();
        self.cut = None;
        let rec = match self.parser.read_record(out, &mut self.ends) {
            Ok(None) => return Ok(false),
            Ok(Some(rec)) => rec,
            Err(e) => {
                return Err(ReadError::Broken {
                    path: self.path.clone(),
                    line: self.record_lines + 1,
                    why: e.to_string(),
                });
            }
        };
        self.fields = self.ends.len() + rec.fields_dropped;
        let first_line = self.record_lines + 1;
        // Line breaks inside each field (only quoted fields have them).
        let stored = out.used() - start;
        let bytes = &out.as_slice()[start..];
        let mut breaks_before_last = 0;
        let mut breaks_in_last = rec.dropped_lines;
        if memchr::memchr2(b'\r', b'\n', bytes).is_some() {
            let mut from = 0;
            let last = self.ends.len().saturating_sub(1);
            for (i, &end) in self.ends.iter().enumerate() {
                let (a, b) = (from.min(stored), end.min(stored));
                let n = terminators_in(&bytes[a..b]);
                from = end;
                if i == last {
                    breaks_in_last += n;
                } else {
                    breaks_before_last += n;
                }
            }
        }
        self.record_lines += 1 + breaks_before_last + breaks_in_last;
        if rec.at_eof && breaks_in_last > 0 && self.parser.last_byte != b'"' {
            return Err(ReadError::Broken {
                path: self.path.clone(),
                line: first_line + breaks_before_last,
                why: format!(
                    "a quote opened on line {} is never closed, so the {} lines after it, to the end of the file, read as one cell; close the quote (a quote inside a quoted cell is written twice: \"\")",
                    first_line + breaks_before_last,
                    breaks_in_last
                ),
            });
        }
        // A record no longer than one cell may be has no cell over the limit.
        let oversized = rec.dropped > 0
            || stored > MAX_CELL_BYTES
                && self
                    .ends
                    .iter()
                    .scan(0, |from, &end| {
                        let size = end - *from;
                        *from = end;
                        Some(size)
                    })
                    .any(|size| size > MAX_CELL_BYTES);
        if oversized {
            let (len, over) = cut_cells(&mut out.as_mut_slice()[start..], stored, &mut self.ends);
            out.truncate(start + len);
            self.cut = Some(if over.is_empty() {
                format!(
                    "the row holds {}; at most {} of a row is read, so the row is not sent; the report keeps the first {KEPT_CHARS} characters of each cell",
                    shown_size((stored + rec.dropped) as u64),
                    shown_size(MAX_ROW_BYTES as u64)
                )
            } else {
                let named: Vec<(String, u64)> = over
                    .iter()
                    .map(|&(i, size)| (self.column(i), size as u64))
                    .collect();
                oversized_problem(&named)
            });
        }
        Ok(true)
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes, for progress.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes of the file consumed so far, for progress.
    pub fn position(&self) -> u64 {
        self.raw_pos.load(Ordering::Relaxed)
    }

    /// About how many rows the file holds (from the sample's line length).
    pub fn estimated_rows(&self) -> u64 {
        self.size / self.bytes_per_line
    }

    pub fn dialect(&self) -> Dialect {
        let mut d = self.dialect.clone();
        let terms = self.lines.terminators.load(Ordering::Relaxed);
        let bytes = self.lines.bytes.load(Ordering::Relaxed);
        let last = self.lines.last.load(Ordering::Relaxed) as u8;
        let physical = terms + u64::from(bytes > 0 && last != b'\n' && last != b'\r');
        d.blank_lines_skipped = physical.saturating_sub(self.record_lines);
        d
    }

    /// The next data row, `None` at the end. A broken record (bad quoting that runs into the
    /// end of the file) is a file-level error; ragged rows, NUL and bad bytes are row problems.
    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        let mut batch = RowBatch::default();
        let mut fill = batch.bytes();
        match self.read_record(fill.out()) {
            Ok(false) => return None,
            Err(e) => return Some(Err(e)),
            Ok(true) => self.push_record(&mut fill, &mut batch, 0),
        }
        batch.finish_bytes(fill, &|col| self.bad_utf8(col));
        Some(Ok(batch.row(0).to_raw()))
    }

    /// Reads records into `batch` until it is full or the file ends; false at the end. A broken
    /// record ends the file: the error goes with the batch, after the rows before it.
    pub fn fill_batch(&mut self, batch: &mut RowBatch) -> bool {
        let mut fill = batch.bytes();
        let mut more = true;
        while batch.len() < BATCH_ROWS && fill.len() < BATCH_BYTES {
            let start = fill.len();
            match self.read_record(fill.out()) {
                Ok(true) => self.push_record(&mut fill, batch, start),
                Ok(false) => {
                    more = false;
                    break;
                }
                Err(e) => {
                    batch.error = Some(e);
                    more = false;
                    break;
                }
            }
        }
        batch.finish_bytes(fill, &|col| self.bad_utf8(col));
        more
    }

    /// Adds the record just written to `fill` from `start`, with its ragged-row or NUL problem
    /// (UTF-8 is checked later, for the whole batch at once).
    fn push_record(&mut self, fill: &mut ByteFill, batch: &mut RowBatch, start: usize) {
        let row = self.next_row;
        self.next_row += 1;
        let ends = &self.ends;
        let ragged = self.fields != self.header.len() && !(ends.len() == 1 && ends[0] == 0);
        let problem = if let Some(cut) = self.cut.take() {
            Some(cut)
        } else if ragged {
            Some(format!(
                "expected {} fields (as in the header) but found {}",
                self.header.len(),
                self.fields
            ))
        } else {
            memchr::memchr(0, &fill.out().as_slice()[start..])
                .map(|at| ends.iter().position(|&e| e > at).unwrap_or(0))
                .map(|i| format!("{} contains a NUL byte", self.column(i)))
        };
        fill.push_written(batch, row, start, &self.ends, problem);
    }

    /// The problem of a row whose cell `col` is not UTF-8. Decoded input (UTF-16, Windows-1252)
    /// is always valid text, so only raw UTF-8 input can have it.
    fn bad_utf8(&self, col: usize) -> Option<String> {
        self.raw_utf8.then(|| {
            format!(
                "{} is not valid UTF-8; if the file was saved by Excel on Windows, pass --encoding windows-1252",
                self.column(col)
            )
        })
    }
}

impl CsvSource {
    fn column(&self, i: usize) -> String {
        format!(
            "column {} ({})",
            i + 1,
            self.header
                .get(i)
                .map(String::as_str)
                .unwrap_or("no header")
        )
    }
}

fn decode_sample(bytes: &[u8], e: Encoding) -> String {
    match e {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Utf16Le => encoding_rs::UTF_16LE
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
        Encoding::Utf16Be => encoding_rs::UTF_16BE
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// csv-core driven straight into our buffers: a record's cells land where they stay, with no
/// intermediate record to copy them from (the csv crate's reader would add one copy per row).
struct Parser {
    core: csv_core::Reader,
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The file's last byte so far (a record ended by the end of the file inside a quote
    /// leaves no closing quote there).
    last_byte: u8,
    /// Where the bytes of an oversized record go, to be counted and dropped (and the ends of
    /// the fields past `MAX_FIELDS`): kept here, not made per record.
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
}

/// Cuts the cells of a record (its kept bytes `bytes[..stored]`, its cells' ends `ends`
/// counting the bytes not kept too) that are over `MAX_CELL_BYTES` or not wholly kept, to
/// their first `KEPT_CHARS` characters, in place. Returns the record's new length, with `ends`
/// rewritten to match, and the (index, size) of each cell over the limit.
fn cut_cells(bytes: &mut [u8], stored: usize, ends: &mut [usize]) -> (usize, Vec<(usize, usize)>) {
    let (mut from, mut write) = (0, 0);
    let mut over = Vec::new();
    for (i, end) in ends.iter_mut().enumerate() {
        let size = *end - from;
        let (a, b) = (from.min(stored), (*end).min(stored));
        let keep = if size > MAX_CELL_BYTES || *end > stored {
            if size > MAX_CELL_BYTES {
                over.push((i, size));
            }
            first_chars(&bytes[a..b], KEPT_CHARS)
        } else {
            b - a
        };
        bytes.copy_within(a..a + keep, write);
        write += keep;
        from = *end;
        *end = write;
    }
    (write, over)
}

/// What reading one record found beyond its cells.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RecordEnd {
    /// Bytes of the record not kept (past `MAX_ROW_BYTES`): `ends` still count them, so the
    /// cells' sizes are known, but the bytes were never held.
    dropped: usize,
    /// Fields past `MAX_FIELDS`, counted and not kept.
    fields_dropped: usize,
    /// Line breaks in the dropped bytes.
    dropped_lines: u64,
    /// The record was ended by the end of the file, not by a line break.
    at_eof: bool,
}

impl Parser {
    /// Appends the next record's cells to `out`; `ends` gets where each cell ends, counted from
    /// the record's start. `None` at the end of the input. Memory is bounded whatever the
    /// record holds: past `MAX_ROW_BYTES` its bytes are parsed into a scratch buffer and only
    /// counted, and past `MAX_FIELDS` its fields too.
    fn read_record(
        &mut self,
        out: &mut Filled,
        ends: &mut Vec<usize>,
    ) -> std::io::Result<Option<RecordEnd>> {
        use csv_core::ReadRecordResult::*;
        if ends.len() < 64 {
            ends.resize(64, 0);
        }
        let (mut outlen, mut nends, mut room) = (0, 0, 1024);
        let mut rec = RecordEnd::default();
        loop {
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = loop {
                    match self.input.read(&mut self.buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.eof = self.end == 0;
                if !self.eof {
                    self.last_byte = self.buf[self.end - 1];
                }
            }
            let input = &self.buf[self.start..self.end];
            let keep_bytes = outlen < MAX_ROW_BYTES;
            let keep_ends = nends < MAX_FIELDS;
            let output: &mut [u8] = if keep_bytes {
                let spare = out.spare(outlen, room);
                let n = spare.len().min(MAX_ROW_BYTES - outlen).max(1);
                &mut spare[..n]
            } else {
                &mut self.scratch[..]
            };
            let ends_out: &mut [usize] = if keep_ends {
                &mut ends[nends..]
            } else {
                &mut self.scratch_ends[..]
            };
            let (res, nin, nout, nend) = self.core.read_record(input, output, ends_out);
            if keep_bytes {
                outlen += nout;
            } else {
                rec.dropped += nout;
                rec.dropped_lines += terminators_in(&self.scratch[..nout]);
            }
            if keep_ends {
                nends += nend;
            } else {
                rec.fields_dropped += nend;
            }
            self.start += nin;
            match res {
                InputEmpty => {}
                OutputFull => {
                    if keep_bytes && room < MAX_ROW_BYTES {
                        room *= 2;
                    }
                }
                OutputEndsFull => {
                    if keep_ends {
                        let n = ends.len();
                        ends.resize((n * 2).min(MAX_FIELDS.max(n + 1)), 0);
                    }
                }
                Record => {
                    rec.at_eof = input.is_empty();
                    out.commit(outlen);
                    ends.truncate(nends);
                    return Ok(Some(rec));
                }
                End => {
                    ends.clear();
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn source_with(
        bytes: &[u8],
        opts: &ReadOptions,
    ) -> (tempfile::NamedTempFile, Result<CsvSource, ReadError>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let s = CsvSource::open(f.path(), opts);
        (f, s)
    }

    fn source(bytes: &[u8]) -> (tempfile::NamedTempFile, Result<CsvSource, ReadError>) {
        source_with(bytes, &ReadOptions::default())
    }

    fn rows(s: &mut CsvSource) -> Vec<RawRow> {
        std::iter::from_fn(|| s.next_row())
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn bom_quotes_newlines_and_crlf() {
        let (_f, s) =
            source(b"\xEF\xBB\xBFemail,notes\r\na@x.io,\"one, two\r\nthree\"\r\nb@x.io,plain\r\n");
        let mut s = s.unwrap();
        assert_eq!(s.header(), ["email", "notes"]);
        let r = rows(&mut s);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].cells, vec!["a@x.io", "one, two\r\nthree"]);
        assert_eq!((r[0].row, r[1].row), (1, 2));
        assert!(r.iter().all(|r| r.problem.is_none()));
        let d = s.dialect();
        assert_eq!(d.encoding.as_deref(), Some("UTF-8 with BOM"));
        assert_eq!(d.line_endings.as_deref(), Some("CRLF"));
        assert_eq!(d.blank_lines_skipped, 0);
    }

    #[test]
    fn cells_over_the_limit_are_cut_and_fail_their_row() {
        let big = "é".repeat(MAX_CELL_BYTES); // twice the limit in bytes
        let huge = "x".repeat(3 * MAX_ROW_BYTES); // past what a row holds
        let text = format!(
            "email,notes,tier\na@x.io,{big},Gold\nb@x.io,\"{huge}\nsecond line\",Free\nc@x.io,ok,Free\n"
        );
        let (_f, s) = source(text.as_bytes());
        let mut s = s.unwrap();
        let r = rows(&mut s);
        assert_eq!(r.len(), 3);
        let p = r[0].problem.as_deref().unwrap();
        assert!(
            p.starts_with("column 2 (notes) holds 31.2 KiB; a cell holds at most 16000 bytes"),
            "{p}"
        );
        assert!(p.contains("keeps the first 1000 characters"), "{p}");
        assert_eq!(r[0].cells.get(1).unwrap(), "é".repeat(KEPT_CHARS));
        assert_eq!(
            r[0].cells.get(2).unwrap(),
            "Gold",
            "cells after it are kept"
        );
        let p = r[1].problem.as_deref().unwrap();
        assert!(p.starts_with("column 2 (notes) holds 6.0 MiB"), "{p}");
        assert_eq!(r[1].cells.get(1).unwrap().len(), KEPT_CHARS);
        assert_eq!(r[1].cells.get(2).unwrap(), "", "past the bytes a row holds");
        assert!(r[2].problem.is_none());
        assert_eq!(r[2].row, 3);
        // Lines are still counted through the dropped bytes.
        assert_eq!(s.dialect().blank_lines_skipped, 0);
    }

    #[test]
    fn many_fields_are_counted_not_kept() {
        let row = ",".repeat(MAX_FIELDS + 10);
        let text = format!("email,notes\na@x.io{row}\nb@x.io,ok\n");
        let (_f, s) = source(text.as_bytes());
        let mut s = s.unwrap();
        let r = rows(&mut s);
        let p = r[0].problem.as_deref().unwrap();
        assert_eq!(
            p,
            format!(
                "expected 2 fields (as in the header) but found {}",
                MAX_FIELDS + 11
            )
        );
        assert!(r[1].problem.is_none());
        let header = format!("email{}\n", ",x".repeat(MAX_FIELDS));
        let (_f, s) = source(header.as_bytes());
        let e = s.err().unwrap().to_string();
        assert!(e.contains("the header row has 65537 columns"), "{e}");
    }

    #[test]
    fn an_unclosed_quote_names_the_line_it_opened_on() {
        let (_f, s) = source(
            b"email,notes\na@x.io,fine\nb@x.io,\"two\nlines\"\nc@x.io,\"never closed\nd@x.io,x\ne@x.io,y\n",
        );
        let mut s = s.unwrap();
        let mut got = Vec::new();
        let err = loop {
            match s.next_row() {
                Some(Ok(r)) => got.push(r),
                Some(Err(e)) => break e.to_string(),
                None => panic!("no error"),
            }
        };
        assert_eq!(got.len(), 2);
        assert!(
            err.contains(
                "near line 5: a quote opened on line 5 is never closed, so the 3 lines after it"
            ),
            "{err}"
        );
        // A closed quote on the last line, with no line break after it, is fine.
        let (_f, s) = source(b"email,notes\na@x.io,\"two\nlines\"");
        let mut s = s.unwrap();
        let r = rows(&mut s);
        assert_eq!(r[0].cells.get(1).unwrap(), "two\nlines");
    }

    #[test]
    fn ragged_rows_nul_and_bad_bytes_are_row_problems() {
        let (_f, s) = source(b"email,notes\na@x.io\nb@x.io,ok\n\0,x\n");
        let mut s = s.unwrap();
        let r = rows(&mut s);
        assert!(
            r[0].problem
                .as_deref()
                .unwrap()
                .contains("expected 2 fields")
        );
        assert!(r[1].problem.is_none());
        assert!(r[2].problem.as_deref().unwrap().contains("NUL byte"));
        // Mostly UTF-8 with one bad byte later: detected UTF-8, that row is flagged.
        let mut big = b"email,notes\n".to_vec();
        for i in 0..6000 {
            big.extend_from_slice(format!("u{i}@x.io,café\n").as_bytes());
        }
        big.extend_from_slice(b"z@x.io,\xE9t\xE9\n");
        let (_f, s) = source(&big);
        let mut s = s.unwrap();
        let r = rows(&mut s);
        assert!(
            r.last()
                .unwrap()
                .problem
                .as_deref()
                .unwrap()
                .contains("--encoding windows-1252")
        );
    }

    #[test]
    fn encodings_are_detected_and_decoded() {
        // Windows-1252 only bytes: € ’ “ ” –.
        let (_f, s) = source(b"email,notes\na@x.io,\x80 5 \x93quoted\x94 \x92s \x96 ok\n");
        let mut s = s.unwrap();
        assert_eq!(&rows(&mut s)[0].cells[1], "€ 5 “quoted” ’s – ok");
        assert_eq!(
            s.dialect().encoding.as_deref(),
            Some("Windows-1252 (detected)")
        );
        // UTF-16 LE and BE with BOM.
        let text = "email;notes\r\na@x.io;ʤ €\r\n";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        for (bytes, label) in [(le, "UTF-16LE with BOM"), (be, "UTF-16BE with BOM")] {
            let (_f, s) = source(&bytes);
            let mut s = s.unwrap();
            assert_eq!(s.header(), ["email", "notes"]);
            assert_eq!(rows(&mut s)[0].cells, vec!["a@x.io", "ʤ €"]);
            let d = s.dialect();
            assert_eq!(d.encoding.as_deref(), Some(label));
            assert_eq!(d.delimiter.as_deref(), Some("';' (detected)"));
        }
        // Forced encoding.
        let (_f, s) = source_with(
            b"email\n\xA9@x.io\n",
            &ReadOptions {
                encoding: Some(Encoding::Windows1252),
                ..ReadOptions::default()
            },
        );
        assert_eq!(rows(&mut s.unwrap())[0].cells, vec!["©@x.io"]);
    }

    #[test]
    fn delimiters() {
        let cases: [(&str, u8); 6] = [
            ("a,b,c\n1,2,3\n", b','),
            ("a;b;c\n1;2;3\n", b';'),
            ("a\tb\tc\n1\t2\t3\n", b'\t'),
            ("a|b\n1|2\n", b'|'),
            // Commas inside quotes do not count; semicolons split every line.
            ("name;note\n\"Acme, Inc\";\"x, y, z\"\nB;c\n", b';'),
            ("email\nx@y.io\n", b','),
        ];
        for (text, want) in cases {
            assert_eq!(detect_delimiter(text), want, "{text:?}");
        }
    }

    #[test]
    fn line_endings_and_blank_lines_are_counted() {
        let cases: [(&[u8], &str, u64, usize); 5] = [
            (b"a,b\n\n1,2\n\n\n3,\"x\ny\"\n", "LF", 3, 2),
            (b"a,b\r\n\r\n1,2\r\n\r\n\r\n3,\"x\r\ny\"\r\n", "CRLF", 3, 2),
            (b"a,b\r\r1,2\r\r\r3,\"x\ry\"\r", "CR", 3, 2),
            (b"\n\n\na,b\n1,2", "LF", 3, 1),
            (b"a,b\n1,2\n3,4\n", "LF", 0, 2),
        ];
        for (bytes, endings, blank, n) in cases {
            let (_f, s) = source(bytes);
            let mut s = s.unwrap();
            assert_eq!(s.header(), ["a", "b"]);
            assert_eq!(rows(&mut s).len(), n, "{bytes:?}");
            let d = s.dialect();
            assert_eq!(
                (d.line_endings.as_deref(), d.blank_lines_skipped),
                (Some(endings), blank),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn header_row_option() {
        let (_f, s) = source_with(
            b"Report of 2026\nexported by CRM\nemail,x\na@x.io,1\n",
            &ReadOptions {
                header_row: Some(3),
                ..ReadOptions::default()
            },
        );
        let mut s = s.unwrap();
        assert_eq!(s.header(), ["email", "x"]);
        assert_eq!(rows(&mut s)[0].row, 1);
    }

    #[test]
    fn file_level_errors() {
        let (_f, s) = source(b"");
        assert!(matches!(s, Err(ReadError::Empty { .. })));
        let (_f, s) = source(b"\n\n");
        assert!(matches!(s, Err(ReadError::Empty { .. })), "{:?}", s.err());
        let (_f, s) = source(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert!(matches!(s, Err(ReadError::NotCsv { .. })), "{:?}", s.err());
        let missing = CsvSource::open(Path::new("/nonexistent/x.csv"), &ReadOptions::default());
        assert!(matches!(missing, Err(ReadError::Open { .. })));
    }
}
