//! Read stage, hand-over format: rows read together travel from a reader thread to `intake` as
//! one `RowBatch` — every cell of every row in one text buffer, checked as UTF-8 once — and
//! the buffers go back to the reader to be filled again. Filled by `csv` and `xlsx`; read by
//! `intake` (validate) and `Background::next_row` (import), which makes `RawRow`s of it.

use super::{Cells, RawRow, ReadError};

/// Rows per batch: enough to make the hand-over cheap, few enough to stay in cache.
pub const BATCH_ROWS: usize = 512;
/// A batch is also handed over once its text is this large (a file of huge cells).
pub const BATCH_BYTES: usize = 1 << 20;

/// Consecutive rows of one input, in order.
#[derive(Debug, Default)]
pub struct RowBatch {
    /// The cells of every row, one after another.
    text: String,
    /// A cleared batch's buffer, still initialized, so refilling it writes without zeroing.
    spent: Vec<u8>,
    /// Where each cell ends in `text`, for all rows.
    ends: Vec<usize>,
    rows: Vec<RowMeta>,
    /// A read error after the last row: the input ends here.
    pub error: Option<ReadError>,
}

#[derive(Debug, Clone)]
struct RowMeta {
    row: u64,
    /// Index in `ends` of the row's first cell.
    first: usize,
    cells: usize,
    problem: Option<String>,
}

/// One row of a batch, read in place.
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    batch: &'a RowBatch,
    meta: &'a RowMeta,
}

impl RowBatch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The number of the batch's last row.
    pub fn last_row(&self) -> Option<u64> {
        self.rows.last().map(|m| m.row)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.error.is_none()
    }

    /// Full enough to hand over.
    pub fn is_full(&self) -> bool {
        self.rows.len() >= BATCH_ROWS || self.text.len() >= BATCH_BYTES
    }

    pub fn clear(&mut self) {
        if self.spent.is_empty() {
            self.spent = std::mem::take(&mut self.text).into_bytes();
        }
        self.text.clear();
        self.ends.clear();
        self.rows.clear();
        self.error = None;
    }

    pub fn row(&self, i: usize) -> RowRef<'_> {
        RowRef {
            batch: self,
            meta: &self.rows[i],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> {
        self.rows
            .iter()
            .map(move |meta| RowRef { batch: self, meta })
    }

    /// Keeps only the rows numbered `first..=last` (a trial run's `--limit` or `--rows`), in
    /// place; true when the batch went past `last` (nothing after it is wanted, not even a
    /// read error after the batch).
    pub fn keep_rows(&mut self, first: u64, last: u64) -> bool {
        let past = self.rows.last().is_some_and(|m| m.row > last);
        if past {
            self.error = None;
        }
        let i0 = self.rows.partition_point(|m| m.row < first);
        let i1 = self.rows.partition_point(|m| m.row <= last);
        if i0 == 0 && i1 == self.rows.len() {
            return past;
        }
        if i0 >= i1 {
            self.text.clear();
            self.ends.clear();
            self.rows.clear();
            return past;
        }
        let end_of = |cell: usize| if cell == 0 { 0 } else { self.ends[cell - 1] };
        let cell0 = self.rows[i0].first;
        let cell1 = self.rows[i1 - 1].first + self.rows[i1 - 1].cells;
        let (text0, text1) = (end_of(cell0), end_of(cell1));
        self.text.truncate(text1);
        self.text.drain(..text0);
        self.ends.truncate(cell1);
        self.ends.drain(..cell0);
        for e in &mut self.ends {
            *e -= text0;
        }
        self.rows.truncate(i1);
        self.rows.drain(..i0);
        for m in &mut self.rows {
            m.first -= cell0;
        }
        past
    }

    /// Appends a row of text cells.
    pub fn push<'c>(
        &mut self,
        row: u64,
        cells: impl IntoIterator<Item = &'c str>,
        problem: Option<String>,
    ) {
        let first = self.ends.len();
        for c in cells {
            self.push_cell(c);
        }
        self.end_row(row, self.ends.len() - first, problem);
    }

    /// Appends one cell to the row being built cell by cell; `end_row` closes it.
    pub fn push_cell(&mut self, cell: &str) {
        if self.text.capacity() == 0 && !self.spent.is_empty() {
            // The cleared batch's allocation, rather than growing a new one again.
            let mut spent = std::mem::take(&mut self.spent);
            spent.clear();
            self.text = String::from_utf8(spent).unwrap_or_default();
        }
        self.text.push_str(cell);
        self.ends.push(self.text.len());
    }

    /// Closes the row whose last `cells` cells were appended by `push_cell`.
    pub fn end_row(&mut self, row: u64, cells: usize, problem: Option<String>) {
        self.rows.push(RowMeta {
            row,
            first: self.ends.len() - cells,
            cells,
            problem,
        });
    }

    /// Takes back the last `cells` cells appended by `push_cell` (a row not yet closed).
    pub fn reopen_row(&mut self, cells: usize) -> Vec<String> {
        let first = self.ends.len() - cells;
        let start = if first == 0 { 0 } else { self.ends[first - 1] };
        let mut out = Vec::with_capacity(cells);
        let mut from = start;
        for &end in &self.ends[first..] {
            out.push(self.text[from..end].to_string());
            from = end;
        }
        self.text.truncate(start);
        self.ends.truncate(first);
        out
    }

    /// Starts filling with bytes not yet known to be UTF-8; `finish_bytes` checks them.
    pub fn bytes(&mut self) -> ByteFill {
        let bytes = if self.text.is_empty() && !self.spent.is_empty() {
            Filled {
                buf: std::mem::take(&mut self.spent),
                used: 0,
            }
        } else {
            Filled::from_vec(std::mem::take(&mut self.text).into_bytes())
        };
        ByteFill {
            bytes,
            first_row: self.rows.len(),
        }
    }

    /// Takes back the bytes filled through `push_bytes` and checks them as UTF-8 at once (one
    /// pass over the batch, not one per cell). A row with bad bytes gets `bad_utf8`'s problem
    /// for the first bad cell and its cells decoded lossily; the others are untouched.
    pub fn finish_bytes(&mut self, fill: ByteFill, bad_utf8: &dyn Fn(usize) -> Option<String>) {
        let ByteFill { bytes, first_row } = fill;
        let bytes = bytes.into_vec();
        let bounds_ok = |text: &str, rows: &[RowMeta], ends: &[usize]| {
            rows.iter().all(|m| {
                ends[m.first..m.first + m.cells]
                    .iter()
                    .all(|&e| text.is_char_boundary(e))
            })
        };
        match String::from_utf8(bytes) {
            Ok(text) if bounds_ok(&text, &self.rows[first_row..], &self.ends) => {
                self.text = text;
            }
            Ok(text) => self.repair(text.into_bytes(), first_row, bad_utf8),
            Err(e) => self.repair(e.into_bytes(), first_row, bad_utf8),
        }
    }

    /// The rare path: rebuilds the text row by row, decoding bad cells lossily.
    fn repair(
        &mut self,
        bytes: Vec<u8>,
        first_row: usize,
        bad_utf8: &dyn Fn(usize) -> Option<String>,
    ) {
        let start = |ends: &[usize], i: usize| if i == 0 { 0 } else { ends[i - 1] };
        let mut text = String::with_capacity(bytes.len() + 64);
        let mut ends = Vec::with_capacity(self.ends.len());
        // Rows before `first_row` were text already.
        let done = self
            .rows
            .get(first_row)
            .map_or(self.ends.len(), |m| m.first);
        for i in 0..done {
            text.push_str(
                std::str::from_utf8(&bytes[start(&self.ends, i)..self.ends[i]]).unwrap_or(""),
            );
            ends.push(text.len());
        }
        for m in &mut self.rows[first_row..] {
            let mut bad = None;
            for i in m.first..m.first + m.cells {
                let cell = &bytes[start(&self.ends, i)..self.ends[i]];
                match std::str::from_utf8(cell) {
                    Ok(s) => text.push_str(s),
                    Err(_) => {
                        bad.get_or_insert(i - m.first);
                        text.push_str(&String::from_utf8_lossy(cell));
                    }
                }
                ends.push(text.len());
            }
            if let Some(col) = bad
                && m.problem.is_none()
            {
                m.problem = bad_utf8(col);
            }
        }
        self.text = text;
        self.ends = ends;
    }
}

/// A byte buffer filled from its end, for parsers that write into a slice: all of `buf` is
/// initialized (zeroed once), `used` of it holds data.
#[derive(Debug, Default)]
pub struct Filled {
    buf: Vec<u8>,
    used: usize,
}

impl Filled {
    /// Takes over `v` (its bytes are the data) and its allocation.
    pub fn from_vec(v: Vec<u8>) -> Filled {
        let used = v.len();
        Filled { buf: v, used }
    }

    pub fn used(&self) -> usize {
        self.used
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.used]
    }

    /// The free bytes after `used + skip`, at least `min` of them.
    pub fn spare(&mut self, skip: usize, min: usize) -> &mut [u8] {
        let need = self.used + skip + min;
        if self.buf.len() < need {
            // Grow into the allocation first, and by doubling beyond it.
            let target = need.max(self.buf.capacity()).max(self.buf.len() * 2);
            self.buf.resize(target, 0);
        }
        &mut self.buf[self.used + skip..]
    }

    /// Marks `n` more bytes (written through `spare`) as data.
    pub fn commit(&mut self, n: usize) {
        self.used += n;
    }

    pub fn extend_from_slice(&mut self, b: &[u8]) {
        self.spare(0, b.len())[..b.len()].copy_from_slice(b);
        self.commit(b.len());
    }

    pub fn clear(&mut self) {
        self.used = 0;
    }

    /// Drops the data after the first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.used = self.used.min(len);
    }

    /// The data, to rewrite in place.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.used]
    }

    pub fn into_vec(mut self) -> Vec<u8> {
        self.buf.truncate(self.used);
        self.buf
    }
}

/// A batch being filled with raw bytes (see `RowBatch::bytes`).
pub struct ByteFill {
    bytes: Filled,
    first_row: usize,
}

impl ByteFill {
    /// Appends a row of byte cells the way a parser does (tests).
    #[cfg(test)]
    pub fn push<'c>(
        &mut self,
        batch: &mut RowBatch,
        row: u64,
        cells: impl IntoIterator<Item = &'c [u8]>,
        problem: Option<String>,
    ) {
        let start = self.bytes.used();
        let mut ends = Vec::new();
        for c in cells {
            self.bytes.extend_from_slice(c);
            ends.push(self.bytes.used() - start);
        }
        self.push_written(batch, row, start, &ends, problem);
    }

    /// Where a parser writes the next row's bytes.
    pub fn out(&mut self) -> &mut Filled {
        &mut self.bytes
    }

    /// Adds a row whose bytes a parser wrote from `start`; `ends` are its cells' ends counted
    /// from there.
    pub fn push_written(
        &mut self,
        batch: &mut RowBatch,
        row: u64,
        start: usize,
        ends: &[usize],
        problem: Option<String>,
    ) {
        let first = batch.ends.len();
        batch.ends.extend(ends.iter().map(|e| start + e));
        batch.rows.push(RowMeta {
            row,
            first,
            cells: ends.len(),
            problem,
        });
    }

    pub fn len(&self) -> usize {
        self.bytes.used()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.used() == 0
    }
}

impl<'a> RowRef<'a> {
    /// 1-based data row, as `RawRow::row`.
    pub fn row(&self) -> u64 {
        self.meta.row
    }

    pub fn problem(&self) -> Option<&'a str> {
        self.meta.problem.as_deref()
    }

    pub fn len(&self) -> usize {
        self.meta.cells
    }

    pub fn is_empty(&self) -> bool {
        self.meta.cells == 0
    }

    fn span(&self) -> (usize, usize) {
        let ends = &self.batch.ends;
        let m = self.meta;
        let start = if m.first == 0 { 0 } else { ends[m.first - 1] };
        let end = if m.cells == 0 {
            start
        } else {
            ends[m.first + m.cells - 1]
        };
        (start, end)
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        if i >= self.meta.cells {
            return None;
        }
        let ends = &self.batch.ends;
        let k = self.meta.first + i;
        let start = if k == 0 { 0 } else { ends[k - 1] };
        Some(&self.batch.text[start..ends[k]])
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let me = *self;
        (0..me.meta.cells).map(move |i| me.get(i).unwrap_or(""))
    }

    /// Blank when all its text is whitespace (cells are stored back to back).
    pub fn is_blank(&self) -> bool {
        let (start, end) = self.span();
        self.batch.text[start..end].trim().is_empty()
    }

    /// The row as an owned `RawRow`, for reports and batch items.
    pub fn to_raw(&self) -> RawRow {
        let mut cells =
            ::csv::StringRecord::with_capacity(self.span().1 - self.span().0, self.len());
        for c in self.iter() {
            cells.push_field(c);
        }
        RawRow {
            row: self.meta.row,
            cells,
            problem: self.meta.problem.clone(),
        }
    }
}

/// Where batches of rows come from, and go back to once read.
pub trait Batches {
    fn next_batch(&mut self) -> Option<RowBatch>;
    fn recycle(&mut self, batch: RowBatch);
}

/// Hands the rows of successive batches out one at a time, as `RawRow`s (for callers that
/// keep rows); a read error comes after the rows before it.
#[derive(Default)]
pub struct RowCursor {
    current: Option<(RowBatch, usize)>,
}

impl RowCursor {
    pub fn next_row(&mut self, from: &mut impl Batches) -> Option<Result<RawRow, ReadError>> {
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
                from.recycle(batch);
            }
            self.current = Some((from.next_batch()?, 0));
        }
    }
}

impl Cells for RowRef<'_> {
    fn cell(&self, i: usize) -> &str {
        super::unescape_formula(self.get(i).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8_problem(col: usize) -> Option<String> {
        Some(format!("column {} is not valid UTF-8", col + 1))
    }

    #[test]
    fn rows_read_back_as_pushed() {
        let mut b = RowBatch::default();
        b.push(1, ["a", "bé", ""], None);
        b.push(2, [], None);
        b.push(3, ["  ", "\t"], Some("ragged".into()));
        assert_eq!(b.len(), 3);
        let r: Vec<Vec<&str>> = b.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(r, vec![vec!["a", "bé", ""], vec![], vec!["  ", "\t"]]);
        assert!(!b.row(0).is_blank());
        assert!(b.row(1).is_blank());
        assert!(b.row(2).is_blank());
        assert_eq!(b.row(2).problem(), Some("ragged"));
        assert_eq!(b.row(0).cell(7), "");
        let raw = b.row(0).to_raw();
        assert_eq!(raw.row, 1);
        assert_eq!(raw.cells, ::csv::StringRecord::from(vec!["a", "bé", ""]));
    }

    #[test]
    fn a_trial_keeps_its_rows_only() {
        let batch = || {
            let mut b = RowBatch::default();
            b.push(4, ["d", "dd"], None);
            b.push(5, [], None);
            b.push(6, ["f", "ffé"], Some("ragged".into()));
            b.push(7, ["g"], None);
            b.error = Some(ReadError::Stopped {
                path: "x.csv".into(),
                why: "later".into(),
            });
            b
        };
        let cells = |b: &RowBatch| -> Vec<(u64, Vec<String>)> {
            b.iter()
                .map(|r| (r.row(), r.iter().map(str::to_string).collect()))
                .collect()
        };
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        // (first, last) → rows kept, past the end, error kept
        let cases: [((u64, u64), Vec<(u64, Vec<String>)>, bool, bool); 5] = [
            ((1, 100), cells(&batch()), false, true),
            (
                (5, 6),
                vec![(5, vec![]), (6, s(&["f", "ffé"]))],
                true,
                false,
            ),
            (
                (6, 100),
                vec![(6, s(&["f", "ffé"])), (7, s(&["g"]))],
                false,
                true,
            ),
            ((1, 4), vec![(4, s(&["d", "dd"]))], true, false),
            ((8, 9), vec![], false, true),
        ];
        for (i, ((first, last), want, past, error)) in cases.into_iter().enumerate() {
            let mut b = batch();
            assert_eq!(b.keep_rows(first, last), past, "case {i}");
            assert_eq!(cells(&b), want, "case {i}");
            assert_eq!(b.error.is_some(), error, "case {i}");
        }
        let mut b = batch();
        b.keep_rows(6, 6);
        assert_eq!(b.row(0).problem(), Some("ragged"));
    }

    #[test]
    fn rows_built_cell_by_cell_can_be_reopened() {
        let mut b = RowBatch::default();
        b.push(1, ["first"], None);
        b.push_cell("a");
        b.push_cell("");
        assert_eq!(b.reopen_row(2), vec!["a".to_string(), String::new()]);
        for c in ["x", "y", "zé"] {
            b.push_cell(c);
        }
        b.end_row(2, 3, Some("late cell".into()));
        let rows: Vec<Vec<&str>> = b.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(rows, vec![vec!["first"], vec!["x", "y", "zé"]]);
        assert_eq!(b.row(1).problem(), Some("late cell"));
        // A cleared batch fills its old allocation again.
        b.clear();
        b.push_cell("again");
        b.end_row(3, 1, None);
        assert_eq!(b.row(0).iter().collect::<Vec<_>>(), vec!["again"]);
    }

    #[test]
    fn bytes_are_checked_once_and_bad_rows_named() {
        let mut b = RowBatch::default();
        b.push(1, ["text"], None);
        let mut fill = b.bytes();
        fill.push(&mut b, 2, [&b"caf\xc3\xa9"[..], b"ok"], None);
        fill.push(&mut b, 3, [&b"ok"[..], b"caf\xe9"], None);
        // A character cut between two cells is as bad as a bad byte.
        fill.push(&mut b, 4, [&b"x\xc3"[..], b"\xa9y"], None);
        b.finish_bytes(fill, &utf8_problem);
        let rows: Vec<Vec<&str>> = b.iter().map(|r| r.iter().collect()).collect();
        assert_eq!(rows[0], vec!["text"]);
        assert_eq!(rows[1], vec!["café", "ok"]);
        assert_eq!(rows[2], vec!["ok", "caf\u{fffd}"]);
        assert_eq!(rows[3], vec!["x\u{fffd}", "\u{fffd}y"]);
        assert_eq!(b.row(1).problem(), None);
        assert_eq!(b.row(2).problem(), Some("column 2 is not valid UTF-8"));
        assert_eq!(b.row(3).problem(), Some("column 1 is not valid UTF-8"));
    }

    #[test]
    fn a_cleared_batch_is_reused() {
        let mut b = RowBatch::default();
        let mut fill = b.bytes();
        fill.push(&mut b, 1, [&b"abc"[..]], None);
        b.finish_bytes(fill, &utf8_problem);
        b.clear();
        assert!(b.is_empty());
        let mut fill = b.bytes();
        fill.push(&mut b, 2, [&b"de"[..]], None);
        b.finish_bytes(fill, &utf8_problem);
        assert_eq!(b.row(0).iter().collect::<Vec<_>>(), vec!["de"]);
    }
}
