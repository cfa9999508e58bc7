//! Plan stage, for an import's reader (`run::read_rows`): the run's duplicate-key check in
//! memory that does not grow with the file. The first keys live in `plan::SeenKeys`; past
//! `MEMORY_KEYS` they move to an open-addressing table in a temporary file, read and written a
//! slot at a time, so the process holds a few kilobytes for it whatever the input holds and
//! the operating system's page cache holds the rest. An import decides each row before it
//! sends it, so it cannot use the validation's two-pass spill (`plan::KeySpill`), and the
//! site, not this lookup, sets an import's pace.

use std::fs::File;
use std::io;

use super::plan::{SeenKeys, fingerprint};

/// Keys kept in memory before the table moves to disk: about 1 MiB of `SeenKeys`.
pub const MEMORY_KEYS: usize = 32 * 1024;

/// A run's keys, by fingerprint: the first row that used each.
pub struct RunKeys {
    memory: SeenKeys,
    disk: Option<DiskKeys>,
    /// Keys in memory before moving to disk (`MEMORY_KEYS`, smaller in tests).
    limit: usize,
    /// What the input's size says the run will hold, to size the disk table once.
    expected: u64,
}

impl RunKeys {
    pub fn new(expected: u64) -> RunKeys {
        RunKeys::with_limit(expected, MEMORY_KEYS)
    }

    pub fn with_limit(expected: u64, limit: usize) -> RunKeys {
        RunKeys {
            memory: SeenKeys::with_capacity(expected.min(limit as u64)),
            disk: None,
            limit,
            expected,
        }
    }

    /// Records `key` for `row`; the first row that used it, if any. An error means the
    /// temporary file failed: the run cannot tell duplicates apart and must stop reading.
    pub fn check(&mut self, key: &str, row: u64) -> io::Result<Option<u64>> {
        let fp = fingerprint(key).max(1);
        if let Some(d) = &mut self.disk {
            return d.check(fp, row);
        }
        if self.memory.held() < self.limit {
            return Ok(self.memory.check_print(fp, row));
        }
        let mut d = DiskKeys::create(self.expected.max(self.limit as u64 * 4))?;
        for (p, r) in self.memory.entries() {
            d.check(p, r)?;
        }
        self.memory = SeenKeys::default();
        let found = d.check(fp, row);
        self.disk = Some(d);
        found
    }

    pub fn on_disk(&self) -> bool {
        self.disk.is_some()
    }
}

/// Slots are 16 bytes: fingerprint (0 = empty) and row, little-endian.
const SLOT: usize = 16;
/// Slots read per probe: a linear probe at half load rarely goes past the first.
const PROBE: usize = 32;

/// An open-addressing table in a temporary file, at most half full (disk is cheap, probes
/// are system calls).
struct DiskKeys {
    file: File,
    cap: u64,
    len: u64,
}

impl DiskKeys {
    fn create(keys: u64) -> io::Result<DiskKeys> {
        let cap = (keys.saturating_mul(2)).max(1024);
        let file = tempfile::tempfile()?;
        // A sparse file of zeros: every slot empty, no bytes written.
        file.set_len(cap * SLOT as u64)?;
        Ok(DiskKeys { file, cap, len: 0 })
    }

    fn check(&mut self, fp: u64, row: u64) -> io::Result<Option<u64>> {
        if (self.len + 1) * 2 > self.cap {
            self.grow()?;
        }
        self.insert(fp, row)
    }

    fn insert(&mut self, fp: u64, row: u64) -> io::Result<Option<u64>> {
        let mut buf = [0u8; SLOT * PROBE];
        let mut i = slot(fp, self.cap);
        loop {
            let n = (PROBE as u64).min(self.cap - i) as usize;
            let block = &mut buf[..n * SLOT];
            read_at(&self.file, block, i * SLOT as u64)?;
            for (k, s) in block.chunks_exact(SLOT).enumerate() {
                let (p, r) = decode(s);
                if p == 0 {
                    let mut rec = [0u8; SLOT];
                    rec[..8].copy_from_slice(&fp.to_le_bytes());
                    rec[8..].copy_from_slice(&row.to_le_bytes());
                    write_at(&self.file, &rec, (i + k as u64) * SLOT as u64)?;
                    self.len += 1;
                    return Ok(None);
                }
                if p == fp {
                    return Ok(Some(r));
                }
            }
            i = (i + n as u64) % self.cap;
        }
    }

    /// Twice the slots, in a new file, filled by reading the old one straight through.
    fn grow(&mut self) -> io::Result<()> {
        let mut bigger = DiskKeys::create(self.cap)?;
        let mut buf = vec![0u8; SLOT * 4096];
        let mut at = 0u64;
        let end = self.cap * SLOT as u64;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            read_at(&self.file, &mut buf[..n], at)?;
            for s in buf[..n].chunks_exact(SLOT) {
                let (p, r) = decode(s);
                if p != 0 {
                    bigger.insert(p, r)?;
                }
            }
            at += n as u64;
        }
        *self = bigger;
        Ok(())
    }
}

fn decode(s: &[u8]) -> (u64, u64) {
    (
        u64::from_le_bytes(s[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(s[8..16].try_into().expect("8 bytes")),
    )
}

/// Maps a fingerprint onto `0..cap` (the high bits, as `SeenKeys` does).
fn slot(fp: u64, cap: u64) -> u64 {
    ((u128::from(fp) * u128::from(cap)) >> 64) as u64
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(unix)]
fn write_at(f: &File, buf: &[u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, at)
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_at(f: &File, mut buf: &[u8], mut at: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_write(buf, at)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The first row of each key, as a plain map finds it.
    fn expected(keys: &[String]) -> Vec<Option<u64>> {
        let mut first = HashMap::new();
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                let row = i as u64 + 2;
                match first.get(k) {
                    Some(&r) => Some(r),
                    None => {
                        first.insert(k.clone(), row);
                        None
                    }
                }
            })
            .collect()
    }

    #[test]
    fn finds_every_duplicate_in_memory_on_disk_and_across_the_move() {
        // Keys repeat every 7,001 rows: duplicates cross the move to disk and its growth.
        let keys: Vec<String> = (0..30_000u64)
            .map(|i| format!("user{}@example.com", i % 7_001 + (i / 21_003) * 100_000))
            .collect();
        let want = expected(&keys);
        // (limit in memory, expected rows): all in memory; moved early with a disk table
        // sized too small, so it grows several times; moved with a table sized right.
        for (limit, expect) in [(1_000_000, 30_000), (500, 10), (5_000, 30_000)] {
            let mut t = RunKeys::with_limit(expect, limit);
            let got: Vec<Option<u64>> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| t.check(k, i as u64 + 2).unwrap())
                .collect();
            assert_eq!(got, want, "limit {limit}, expected {expect}");
            assert_eq!(t.on_disk(), limit < 30_000, "limit {limit}");
        }
    }

    #[test]
    fn a_disk_table_wraps_its_probe_at_the_end_of_the_file() {
        let mut d = DiskKeys::create(512).unwrap();
        // Fingerprints that all land in the last slot.
        let last = u64::MAX;
        for k in 0..100u64 {
            assert_eq!(d.insert(last - k, k).unwrap(), None);
        }
        for k in 0..100u64 {
            assert_eq!(d.insert(last - k, 1_000 + k).unwrap(), Some(k));
        }
        assert_eq!(d.len, 100);
    }
}
