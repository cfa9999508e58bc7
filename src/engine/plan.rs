//! Plan stage: cuts the row stream into chunks with fixed boundaries. A chunk is a contiguous
//! range of input rows; its valid rows form one bulk batch with an `Idempotency-Key` fixed when
//! the chunk is sealed, before any send. Invalid rows ride along so reports keep input order.
//! Fed by `map`, consumed by `send`; outcomes are defined here and read by `report`.

use crate::read::RawRow;
use crate::site::api::model::{CustomerProfileItem, OrganizationProfileItem};

/// Where a row's failure happened, as written to `_stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Read,
    Validate,
    Send,
    Task,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Validate => "validate",
            Stage::Send => "send",
            Stage::Task => "task",
        }
    }
}

/// The one final outcome every row gets (DESIGN invariant 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not decided yet: the row is in a batch that is still in flight.
    Pending,
    Succeeded {
        id: Option<String>,
    },
    Failed {
        stage: Stage,
        field: String,
        error: String,
    },
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct PlannedRow {
    pub raw: RawRow,
    pub outcome: Outcome,
}

/// One row's bulk item; a chunk holds items of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkItem {
    /// A customer, and the organization names it names (turned into ids before sending).
    Customer(CustomerProfileItem, Vec<String>),
    Organization(OrganizationProfileItem),
}

impl BulkItem {
    /// Every key a task failure may name this item by: its id as is, and its email (customers)
    /// or name (organizations) normalized by `match_key`.
    pub fn keys(&self) -> Vec<String> {
        let (id, natural) = match self {
            BulkItem::Customer(c, _) => (c.payload.customer_id.clone(), c.payload.email.clone()),
            BulkItem::Organization(o) => (o.payload.id.clone(), o.payload.name.clone()),
        };
        id.into_iter()
            .chain(natural.map(|n| match_key(&n)))
            .collect()
    }

    /// The row asks to create the entity (never skipped as unchanged: the site must refuse an
    /// existing one).
    pub fn creates(&self) -> bool {
        use crate::site::api::model::ProfileOperation::Create;
        match self {
            BulkItem::Customer(c, _) => c.operation_type == Create,
            BulkItem::Organization(o) => o.operation_type == Create,
        }
    }

    /// The id the input gave, if any (written to successes.csv).
    pub fn given_id(&self) -> Option<String> {
        match self {
            BulkItem::Customer(c, _) => c.payload.customer_id.clone(),
            BulkItem::Organization(o) => o.payload.id.clone(),
        }
    }
}

/// How emails and organization names are compared: trimmed, lower-cased.
pub fn match_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A sealed chunk: rows in input order, and the batch made of the valid ones.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub seq: u64,
    pub rows: Vec<PlannedRow>,
    pub items: Vec<BulkItem>,
    /// For each item, the index of its row in `rows`.
    pub item_rows: Vec<usize>,
    /// Set when the chunk is sealed, only if it has items.
    pub idempotency_key: Option<String>,
    /// Some row's outcome is not final (unknown, or never sent because the run stopped): the
    /// journal keeps the chunk open so that `resume` finishes it.
    pub unsettled: bool,
    /// The outcomes came from the journal of an earlier attempt at this run.
    pub replayed: bool,
    /// `--verify`: what reading back found, by index in `rows`.
    pub verified: std::collections::HashMap<usize, crate::engine::report::Verdict>,
}

impl Chunk {
    pub fn new(seq: u64) -> Chunk {
        Chunk {
            seq,
            rows: Vec::new(),
            items: Vec::new(),
            item_rows: Vec::new(),
            idempotency_key: None,
            unsettled: false,
            replayed: false,
            verified: Default::default(),
        }
    }

    /// Removes the items whose `keep` is false (their rows stay, with the outcome the caller
    /// gave them); returns how many were removed.
    pub fn retain_items(&mut self, keep: &[bool]) -> usize {
        let mut it = keep.iter();
        self.items.retain(|_| *it.next().unwrap_or(&true));
        let mut it = keep.iter();
        self.item_rows.retain(|_| *it.next().unwrap_or(&true));
        keep.iter().filter(|k| !**k).count()
    }

    pub fn first_row(&self) -> u64 {
        self.rows.first().map(|r| r.raw.row).unwrap_or(0)
    }

    pub fn last_row(&self) -> u64 {
        self.rows.last().map(|r| r.raw.row).unwrap_or(0)
    }
}

/// Cuts rows into chunks of at most `batch_size` items. A chunk also closes after `max_rows`
/// rows in total, so a long run of invalid rows is reported without being held in memory.
pub struct Chunker {
    batch_size: usize,
    max_rows: usize,
    /// Chunks whose last row is already fixed (by the journal of the run being resumed).
    fixed: std::collections::HashMap<u64, u64>,
    current: Chunk,
    key: Box<dyn FnMut() -> String + Send>,
}

impl Chunker {
    pub fn new(batch_size: usize, key: Box<dyn FnMut() -> String + Send>) -> Chunker {
        let batch_size = batch_size.max(1);
        Chunker {
            batch_size,
            max_rows: (batch_size * 10).max(1000),
            fixed: Default::default(),
            current: Chunk::new(0),
            key,
        }
    }

    /// Cuts the chunks named in `last_rows` (sequence number → last input row) exactly there,
    /// whatever their rows weigh now: a resumed run keeps the chunks its journal recorded.
    pub fn with_boundaries(mut self, last_rows: std::collections::HashMap<u64, u64>) -> Chunker {
        self.fixed = last_rows;
        self
    }

    /// Adds a row; `item` is its batch item when the row is valid. Returns a sealed chunk when
    /// this row filled one.
    pub fn push(&mut self, row: PlannedRow, item: Option<BulkItem>) -> Option<Chunk> {
        let idx = self.current.rows.len();
        let number = row.raw.row;
        self.current.rows.push(row);
        if let Some(item) = item {
            self.current.items.push(item);
            self.current.item_rows.push(idx);
        }
        if let Some(&last) = self.fixed.get(&self.current.seq) {
            return (number >= last).then(|| self.seal());
        }
        if self.current.items.len() >= self.batch_size || self.current.rows.len() >= self.max_rows {
            return Some(self.seal());
        }
        None
    }

    /// Seals what is left, if anything.
    pub fn finish(&mut self) -> Option<Chunk> {
        (!self.current.rows.is_empty()).then(|| self.seal())
    }

    fn seal(&mut self) -> Chunk {
        let next = Chunk::new(self.current.seq + 1);
        let mut chunk = std::mem::replace(&mut self.current, next);
        if !chunk.items.is_empty() {
            chunk.idempotency_key = Some((self.key)());
        }
        chunk
    }
}

/// A fresh random UUID key, as the docs recommend.
pub fn uuid_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Remembers identifying keys (lower-cased emails) across the whole file to reject later
/// duplicates: two rows for one customer in a run would race each other on the server and make
/// failures impossible to attribute. Keeps a 64-bit fingerprint and the row number per key (12
/// bytes, one slot) in an open-addressing table at most 4/5 full, so a million rows cost about
/// 16 MB and an insert touches one or two cache lines. An import needs it whole (it decides a
/// row before sending it); a validation spills its keys instead (`KeySpill`).
#[derive(Default)]
pub struct SeenKeys {
    /// `[fingerprint low, fingerprint high, row]`: one array, so a probe is one memory access.
    slots: Vec<[u32; 3]>,
    len: usize,
}

/// Marks an empty slot; a real fingerprint of 0 is stored as 1 (one more collision in 2^64).
const EMPTY: u64 = 0;

/// How a run finds its duplicate keys.
pub enum KeyCheck {
    /// Exactly, as rows come: an import decides each row before it sends it.
    Table(SeenKeys),
    /// A validation's first pass: keys go to disk, and `KeySpill::finish` finds the
    /// duplicates after it, in memory that does not grow with the file.
    Spill(KeySpill),
    /// A validation's second pass over the rows `KeySpill::finish` named: row → first row.
    Found(std::collections::HashMap<u64, u64>),
}

impl KeyCheck {
    /// Records `key` for `row`; the first row that used it, when known now.
    pub fn check(&mut self, key: &str, row: u64) -> Option<u64> {
        match self {
            KeyCheck::Table(t) => t.check(key, row),
            KeyCheck::Spill(s) => {
                s.push(fingerprint(key).max(1), row);
                None
            }
            KeyCheck::Found(f) => f.get(&row).copied(),
        }
    }

    /// `check` for many keys in order.
    pub fn check_many<K: AsRef<str>>(&mut self, keys: &[(K, u64)]) -> Vec<Option<u64>> {
        match self {
            KeyCheck::Table(t) => t.check_many(keys),
            _ => keys
                .iter()
                .map(|(k, row)| self.check(k.as_ref(), *row))
                .collect(),
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

/// Keys per part, about: its table (16 bytes a slot) stays near 2 MiB.
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
    /// Sized for about `rows` keys up front, so a large file does not pay for the table's
    /// growth (old and new table side by side) at its peak.
    pub fn with_capacity(rows: u64) -> SeenKeys {
        let cap = (rows.min(50_000_000) as usize * 4 / 3).max(1024);
        SeenKeys {
            slots: vec![[0; 3]; cap],
            len: 0,
        }
    }

    /// Records `key` for `row`; returns the first row that used it, if any.
    pub fn check(&mut self, key: &str, row: u64) -> Option<u64> {
        self.check_print(fingerprint(key).max(1), row)
    }

    /// `check` of a key's fingerprint (never `EMPTY`).
    fn check_print(&mut self, fp: u64, row: u64) -> Option<u64> {
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        self.insert(fp, row)
    }

    /// Empties the table, keeping its memory.
    fn clear(&mut self) {
        self.slots.fill([0; 3]);
        self.len = 0;
    }

    /// `check` for many keys in order. The slots are touched first, all of them, so their
    /// cache misses are waited for together rather than one after another.
    pub fn check_many<K: AsRef<str>>(&mut self, keys: &[(K, u64)]) -> Vec<Option<u64>> {
        while (self.len + keys.len() + 1) * 5 > self.slots.len() * 4 {
            self.grow();
        }
        let cap = self.slots.len();
        let prints: Vec<u64> = keys
            .iter()
            .map(|(k, _)| fingerprint(k.as_ref()).max(1))
            .collect();
        let touched = prints
            .iter()
            .fold(0u32, |acc, &fp| acc ^ self.slots[slot(fp, cap)][0]);
        std::hint::black_box(touched);
        prints
            .iter()
            .zip(keys)
            .map(|(&fp, (_, row))| self.insert(fp, *row))
            .collect()
    }

    fn insert(&mut self, fp: u64, row: u64) -> Option<u64> {
        let cap = self.slots.len();
        let mut i = slot(fp, cap);
        loop {
            let s = &mut self.slots[i];
            match print_of(s) {
                EMPTY => {
                    *s = [
                        fp as u32,
                        (fp >> 32) as u32,
                        u32::try_from(row).unwrap_or(u32::MAX),
                    ];
                    self.len += 1;
                    return None;
                }
                p if p == fp => return Some(u64::from(s[2])),
                _ => i = if i + 1 == cap { 0 } else { i + 1 },
            }
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 3 / 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![[0; 3]; cap]);
        for s in old {
            let fp = print_of(&s);
            if fp == EMPTY {
                continue;
            }
            let mut i = slot(fp, cap);
            while print_of(&self.slots[i]) != EMPTY {
                i = if i + 1 == cap { 0 } else { i + 1 };
            }
            self.slots[i] = s;
        }
    }
}

fn print_of(s: &[u32; 3]) -> u64 {
    u64::from(s[0]) | (u64::from(s[1]) << 32)
}

/// Maps a fingerprint onto `0..cap` without a power-of-two capacity.
fn slot(fp: u64, cap: usize) -> usize {
    ((u128::from(fp) * cap as u128) >> 64) as usize
}

/// A fixed seed: fingerprints are compared only within one run, but a stable function keeps
/// runs reproducible.
fn fingerprint(key: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x9e37_79b9).hash_one(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::api::model::{CustomerProfilePayload, ProfileOperation};

    fn row(n: u64) -> PlannedRow {
        PlannedRow {
            raw: RawRow {
                row: n,
                cells: csv::StringRecord::new(),
                problem: None,
            },
            outcome: Outcome::Pending,
        }
    }

    fn item() -> BulkItem {
        BulkItem::Customer(
            CustomerProfileItem {
                operation_type: ProfileOperation::Upsert,
                payload: CustomerProfilePayload::default(),
            },
            vec![],
        )
    }

    fn counter_key() -> Box<dyn FnMut() -> String + Send> {
        let mut n = 0;
        Box::new(move || {
            n += 1;
            format!("k{n}")
        })
    }

    #[test]
    fn chunks_keep_order_counts_and_fixed_keys() {
        // (batch_size, valid pattern of 7 rows) -> (rows per chunk, items per chunk, keys)
        type Want = (Vec<usize>, Vec<usize>, Vec<Option<&'static str>>);
        let cases: Vec<(usize, [bool; 7], Want)> = vec![
            (
                3,
                [true; 7],
                (
                    vec![3, 3, 1],
                    vec![3, 3, 1],
                    vec![Some("k1"), Some("k2"), Some("k3")],
                ),
            ),
            (
                2,
                [true, false, true, false, false, true, false],
                (vec![3, 4], vec![2, 1], vec![Some("k1"), Some("k2")]),
            ),
            (10, [false; 7], (vec![7], vec![0], vec![None])),
        ];
        for (batch, valid, (rows, items, keys)) in cases {
            let mut c = Chunker::new(batch, counter_key());
            let mut out = Vec::new();
            for (i, v) in valid.iter().enumerate() {
                out.extend(c.push(row(i as u64 + 1), v.then(item)));
            }
            out.extend(c.finish());
            assert_eq!(out.iter().map(|c| c.rows.len()).collect::<Vec<_>>(), rows);
            assert_eq!(out.iter().map(|c| c.items.len()).collect::<Vec<_>>(), items);
            assert_eq!(
                out.iter()
                    .map(|c| c.idempotency_key.as_deref())
                    .collect::<Vec<_>>(),
                keys
            );
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
    fn recorded_boundaries_win_over_batch_size() {
        // Chunks 0 and 1 were recorded as rows 1-2 and 3-6; later chunks are cut as usual.
        let fixed = [(0, 2), (1, 6)].into_iter().collect();
        let mut c = Chunker::new(3, counter_key()).with_boundaries(fixed);
        let mut out = Vec::new();
        for i in 1..=10 {
            out.extend(c.push(row(i), Some(item())));
        }
        out.extend(c.finish());
        let ranges: Vec<(u64, u64)> = out.iter().map(|c| (c.first_row(), c.last_row())).collect();
        assert_eq!(ranges, vec![(1, 2), (3, 6), (7, 9), (10, 10)]);
    }

    #[test]
    fn long_runs_of_invalid_rows_are_bounded() {
        let mut c = Chunker::new(1, counter_key());
        let sealed = (1..=1000).filter_map(|i| c.push(row(i), None)).count();
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
        assert!(s.slots.len() * 12 < 50_000 * 24, "at most 24 bytes a key");
    }

    #[test]
    fn spilled_keys_find_the_duplicates_the_table_finds() {
        // Three parts; every 7th row repeats a key of an earlier row, some of them twice.
        let rows: u64 = 2 * SPILL_PART_KEYS + 1000;
        let key = |row: u64| {
            let n = if row.is_multiple_of(7) { row / 7 } else { row };
            format!("customer{n}@example.com")
        };
        let mut table = KeyCheck::Table(SeenKeys::default());
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
