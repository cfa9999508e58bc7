//! Plan stage: cuts the row stream into chunks with fixed boundaries. A chunk is a contiguous
//! range of input rows, decided against the site and journaled together; its valid rows' items
//! become the chunk's batches, each with an `Idempotency-Key` fixed and journaled before any
//! send. Invalid rows ride along so reports keep input order. Also the whole-file duplicate
//! check (`SeenKeys`, or `KeySpill` for a validation). Fed by `run`'s reader, consumed by
//! `send`.

use std::collections::HashMap;

use super::report::Verdict;
use crate::row::Row;

/// A sealed chunk: rows in input order, and the items of the valid ones.
#[derive(Debug, Clone)]
pub struct Chunk<I> {
    pub seq: u64,
    pub rows: Vec<Row>,
    /// Per row, its item while it has one to decide and send.
    pub items: Vec<Option<I>>,
    /// `--verify`: what reading back found, by index in `rows`.
    pub verified: HashMap<usize, Verdict>,
    /// The outcomes came from the journal of an earlier attempt at this run.
    pub replayed: bool,
    /// When the last of its tasks was seen ended: what it changed on the site is in any
    /// listing begun after this.
    pub changed: Option<std::time::Instant>,
    weight: usize,
}

impl<I> Chunk<I> {
    pub fn new(seq: u64) -> Chunk<I> {
        Chunk {
            seq,
            rows: Vec::new(),
            items: Vec::new(),
            verified: Default::default(),
            replayed: false,
            changed: None,
            weight: 0,
        }
    }

    pub fn first_row(&self) -> u64 {
        self.rows.first().map(|r| r.raw.row).unwrap_or(0)
    }

    pub fn last_row(&self) -> u64 {
        self.rows.last().map(|r| r.raw.row).unwrap_or(0)
    }

    /// Rows with no final outcome yet.
    pub fn open_rows(&self) -> usize {
        self.rows.iter().filter(|r| r.state().is_open()).count()
    }

    /// Index of input row `n` in this chunk.
    pub fn index_of(&self, n: u64) -> Option<usize> {
        let first = self.first_row();
        let i = n.checked_sub(first)? as usize;
        // Rows are consecutive in a chunk: a direct look first, a search if not.
        match self.rows.get(i) {
            Some(r) if r.raw.row == n => Some(i),
            _ => self.rows.iter().position(|r| r.raw.row == n),
        }
    }
}

/// Cuts rows into chunks whose items weigh at most `max_weight` together. A chunk also closes
/// after `max_rows` rows in all, so a long run of invalid rows is reported without being held
/// in memory.
pub struct Chunker<I> {
    max_weight: usize,
    max_rows: usize,
    /// Chunks whose last row is already fixed (by the journal of the run being resumed).
    fixed: HashMap<u64, u64>,
    current: Chunk<I>,
}

impl<I> Chunker<I> {
    pub fn new(max_weight: usize) -> Chunker<I> {
        let max_weight = max_weight.max(1);
        Chunker {
            max_weight,
            max_rows: (max_weight * 10).clamp(1000, 10_000),
            fixed: Default::default(),
            current: Chunk::new(0),
        }
    }

    /// Cuts the chunks named in `last_rows` (sequence number → last input row) exactly there,
    /// whatever their rows weigh now: a resumed run keeps the chunks its journal recorded.
    pub fn with_boundaries(mut self, last_rows: HashMap<u64, u64>) -> Chunker<I> {
        self.fixed = last_rows;
        self
    }

    /// Adds a row; `item` is its item and the item's weight when the row is valid. Returns
    /// the chunks this row sealed (an item that would overflow the chunk starts the next one).
    pub fn push(&mut self, row: Row, item: Option<(I, usize)>) -> Vec<Chunk<I>> {
        let mut sealed = Vec::new();
        if let Some((_, w)) = &item
            && !self.fixed.contains_key(&self.current.seq)
            && self.current.weight > 0
            && self.current.weight + w > self.max_weight
        {
            sealed.push(self.seal());
        }
        let number = row.raw.row;
        self.current.rows.push(row);
        match item {
            Some((it, w)) => {
                self.current.weight += w;
                self.current.items.push(Some(it));
            }
            None => self.current.items.push(None),
        }
        let full = match self.fixed.get(&self.current.seq) {
            Some(&last) => number >= last,
            None => {
                self.current.weight >= self.max_weight || self.current.rows.len() >= self.max_rows
            }
        };
        if full {
            sealed.push(self.seal());
        }
        sealed
    }

    /// Seals what is left, if anything.
    pub fn finish(&mut self) -> Option<Chunk<I>> {
        (!self.current.rows.is_empty()).then(|| self.seal())
    }

    fn seal(&mut self) -> Chunk<I> {
        let next = Chunk::new(self.current.seq + 1);
        std::mem::replace(&mut self.current, next)
    }
}

/// A fresh random UUID key, as the docs recommend.
pub fn uuid_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Remembers identifying keys (lower-cased emails) to reject later duplicates: two rows for
/// one customer in a run would race each other on the server and make failures impossible to
/// attribute. Keeps a 64-bit fingerprint and the row number per key in a std `HashMap`: the
/// open-addressing table that was here read a validation of 1,000,000 rows 3.4% faster than
/// this map (0.765 against 0.791 s, 11 alternating runs), under the 10% that speed code must
/// gain to stay. An import holds its first keys here (`keys::RunKeys`); a validation's spill
/// checks one part of its keys at a time here (`KeySpill`).
#[derive(Default)]
pub struct SeenKeys {
    rows: HashMap<u64, u64, PrintHasher>,
}

/// Fingerprints are hashes already: foldhash's fast hasher mixes them once more, cheaply. With
/// the default SipHash the same validation took 0.860 s.
type PrintHasher = foldhash::fast::FixedState;

/// How a validation finds its duplicate keys.
pub enum KeyCheck {
    /// The first pass: keys go to disk, and `KeySpill::finish` finds the duplicates after it,
    /// in memory that does not grow with the file.
    Spill(KeySpill),
    /// The second pass over the rows `KeySpill::finish` named: row → first row.
    Found(HashMap<u64, u64>),
}

impl KeyCheck {
    /// Records `key` for `row`; the first row that used it, when known now.
    pub fn check(&mut self, key: &str, row: u64) -> Option<u64> {
        match self {
            KeyCheck::Spill(s) => {
                s.push(fingerprint(key).max(1), row);
                None
            }
            KeyCheck::Found(f) => f.get(&row).copied(),
        }
    }
}

/// Keys spilled to temporary files, split by fingerprint into parts small enough to check one
/// at a time: (fingerprint, row) pairs, 16 bytes each, in row order within each part.
pub struct KeySpill {
    parts: Vec<std::io::BufWriter<std::fs::File>>,
    lens: Vec<usize>,
    error: Option<std::io::Error>,
}

/// Keys per part, about: its table (a `HashMap` of 16-byte entries) stays near 4 MiB.
const SPILL_PART_KEYS: u64 = 128 * 1024;
const SPILL_MAX_PARTS: u64 = 64;

impl KeySpill {
    /// Sized for about `rows` keys (a guess from the file's size; more only make parts larger).
    pub fn new(rows: u64) -> std::io::Result<KeySpill> {
        let n = (rows / SPILL_PART_KEYS + 1).min(SPILL_MAX_PARTS) as usize;
        let parts = (0..n)
            .map(|_| tempfile::tempfile().map(|f| std::io::BufWriter::with_capacity(8192, f)))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(KeySpill {
            lens: vec![0; n],
            parts,
            error: None,
        })
    }

    fn push(&mut self, fp: u64, row: u64) {
        use std::io::Write;
        // By the fingerprint's low half: a part's table places keys by the high half.
        let p = slot(fp.rotate_left(32), self.parts.len());
        let mut rec = [0u8; 16];
        rec[..8].copy_from_slice(&fp.to_le_bytes());
        rec[8..].copy_from_slice(&row.to_le_bytes());
        if let Err(e) = self.parts[p].write_all(&rec) {
            self.error.get_or_insert(e);
        }
        self.lens[p] += 1;
    }

    /// Every later row whose key an earlier row had: (row, first row), by row.
    pub fn finish(self) -> std::io::Result<Vec<(u64, u64)>> {
        use std::io::{Read, Seek};
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut found = Vec::new();
        // One table for every part, sized for the largest: no second table beside the first.
        let largest = self.lens.iter().copied().max().unwrap_or(0);
        let mut table = SeenKeys::with_capacity(largest as u64);
        for (part, len) in self.parts.into_iter().zip(self.lens) {
            let mut file = part.into_inner().map_err(|e| e.into_error())?;
            file.seek(std::io::SeekFrom::Start(0))?;
            table.clear();
            let mut r = std::io::BufReader::with_capacity(64 * 1024, file);
            let mut rec = [0u8; 16];
            for _ in 0..len {
                r.read_exact(&mut rec)?;
                let fp = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
                let row = u64::from_le_bytes(rec[8..].try_into().expect("8 bytes"));
                if let Some(first) = table.check_print(fp, row) {
                    found.push((row, first));
                }
            }
        }
        found.sort_unstable();
        Ok(found)
    }
}

impl SeenKeys {
    /// Sized for about `rows` keys up front, so a large part does not pay for the table's
    /// growth (old and new table side by side) at its peak.
    pub fn with_capacity(rows: u64) -> SeenKeys {
        SeenKeys {
            rows: HashMap::with_capacity_and_hasher(
                rows.min(50_000_000) as usize,
                PrintHasher::default(),
            ),
        }
    }

    /// Records `key` for `row`; returns the first row that used it, if any.
    pub fn check(&mut self, key: &str, row: u64) -> Option<u64> {
        self.check_print(fingerprint(key).max(1), row)
    }

    /// Keys held.
    pub fn held(&self) -> usize {
        self.rows.len()
    }

    /// Every (fingerprint, row) held, in no order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.rows.iter().map(|(&fp, &row)| (fp, row))
    }

    /// `check` of a key's fingerprint.
    pub fn check_print(&mut self, fp: u64, row: u64) -> Option<u64> {
        match self.rows.entry(fp) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(row);
                None
            }
        }
    }

    /// Empties the table, keeping its memory.
    fn clear(&mut self) {
        self.rows.clear();
    }
}

/// Maps a fingerprint onto `0..cap` without a power-of-two capacity.
fn slot(fp: u64, cap: usize) -> usize {
    ((u128::from(fp) * cap as u128) >> 64) as usize
}

/// A fixed seed: fingerprints are compared only within one run, but a stable function keeps
/// runs reproducible.
pub fn fingerprint(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x9e37_79b9).hash_one(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::RawRow;

    fn row(n: u64) -> Row {
        Row::new(RawRow {
            row: n,
            cells: csv::StringRecord::new(),
            problem: None,
        })
    }

    fn items(c: &Chunk<u32>) -> usize {
        c.items.iter().flatten().count()
    }

    #[test]
    fn chunks_keep_order_and_counts() {
        // (max weight, valid pattern of 7 rows) -> (rows per chunk, items per chunk)
        let cases: Vec<(usize, [bool; 7], (Vec<usize>, Vec<usize>))> = vec![
            (3, [true; 7], (vec![3, 3, 1], vec![3, 3, 1])),
            (
                2,
                [true, false, true, false, false, true, false],
                (vec![3, 4], vec![2, 1]),
            ),
            (10, [false; 7], (vec![7], vec![0])),
        ];
        for (batch, valid, (rows, want_items)) in cases {
            let mut c = Chunker::new(batch);
            let mut out = Vec::new();
            for (i, v) in valid.iter().enumerate() {
                out.extend(c.push(row(i as u64 + 1), v.then_some((7u32, 1))));
            }
            out.extend(c.finish());
            assert_eq!(out.iter().map(|c| c.rows.len()).collect::<Vec<_>>(), rows);
            assert_eq!(out.iter().map(items).collect::<Vec<_>>(), want_items);
            let seqs: Vec<u64> = out.iter().map(|c| c.seq).collect();
            assert_eq!(seqs, (0..out.len() as u64).collect::<Vec<_>>());
            let all: Vec<u64> = out
                .iter()
                .flat_map(|c| c.rows.iter().map(|r| r.raw.row))
                .collect();
            assert_eq!(all, (1..=7).collect::<Vec<_>>());
        }
    }

    #[test]
    fn heavy_items_start_the_next_chunk() {
        // Weights 400, 400, 400, 1000, 1 under 1000: [400, 400] [400] [1000] [1].
        let mut c = Chunker::new(1000);
        let mut out = Vec::new();
        for (i, w) in [400, 400, 400, 1000, 1].into_iter().enumerate() {
            out.extend(c.push(row(i as u64 + 1), Some((0u32, w))));
        }
        out.extend(c.finish());
        let ranges: Vec<(u64, u64)> = out.iter().map(|c| (c.first_row(), c.last_row())).collect();
        assert_eq!(ranges, vec![(1, 2), (3, 3), (4, 4), (5, 5)]);
        assert_eq!(out[2].index_of(4), Some(0));
        assert_eq!(out[0].index_of(2), Some(1));
        assert_eq!(out[0].index_of(9), None);
    }

    #[test]
    fn recorded_boundaries_win_over_batch_size() {
        // Chunks 0 and 1 were recorded as rows 1-2 and 3-6; later chunks are cut as usual.
        let fixed = [(0, 2), (1, 6)].into_iter().collect();
        let mut c = Chunker::new(3).with_boundaries(fixed);
        let mut out = Vec::new();
        for i in 1..=10 {
            out.extend(c.push(row(i), Some((0u32, 1))));
        }
        out.extend(c.finish());
        let ranges: Vec<(u64, u64)> = out.iter().map(|c| (c.first_row(), c.last_row())).collect();
        assert_eq!(ranges, vec![(1, 2), (3, 6), (7, 9), (10, 10)]);
    }

    #[test]
    fn long_runs_of_invalid_rows_are_bounded() {
        let mut c = Chunker::<u32>::new(1);
        let sealed: usize = (1..=1000).map(|i| c.push(row(i), None).len()).sum();
        assert_eq!(sealed, 1);
    }

    #[test]
    fn duplicate_keys_point_at_the_first_row() {
        let mut s = SeenKeys::default();
        assert_eq!(s.check("a@x.io", 1), None);
        assert_eq!(s.check("b@x.io", 2), None);
        assert_eq!(s.check("a@x.io", 3), Some(1));
        assert_eq!(s.check("a@x.io", 4), Some(1));
        // Through several growths, every key is found again with its first row.
        for i in 0..50_000u64 {
            assert_eq!(s.check(&format!("user{i}@x.io"), i + 10), None);
        }
        for i in (0..50_000u64).step_by(997) {
            assert_eq!(s.check(&format!("user{i}@x.io"), 999_999), Some(i + 10));
        }
    }

    #[test]
    fn spilled_keys_find_the_duplicates_the_table_finds() {
        // Three parts; every 7th row repeats a key of an earlier row, some of them twice.
        let rows: u64 = 2 * SPILL_PART_KEYS + 1000;
        let key = |row: u64| {
            let n = if row.is_multiple_of(7) { row / 7 } else { row };
            format!("customer{n}@example.com")
        };
        let mut table = SeenKeys::default();
        let mut spill = KeyCheck::Spill(KeySpill::new(rows).unwrap());
        let mut want = Vec::new();
        for row in 1..=rows {
            if let Some(first) = table.check(&key(row), row) {
                want.push((row, first));
            }
            assert_eq!(spill.check(&key(row), row), None);
        }
        let KeyCheck::Spill(s) = spill else {
            unreachable!()
        };
        assert_eq!(s.parts.len(), 3);
        let found = s.finish().unwrap();
        assert!(found.len() > rows as usize / 10, "{}", found.len());
        assert_eq!(found, want);
        // The second pass answers for exactly those rows.
        let mut again = KeyCheck::Found(found.iter().copied().collect());
        assert_eq!(again.check("anything", want[0].0), Some(want[0].1));
        assert_eq!(again.check("customer1@example.com", 1), None);
    }
}
