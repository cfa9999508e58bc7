//! Read stage, beneath `zipview` beside `xmlguard`: a watch over an XLSB part's inflated
//! records (BIFF12) that refuses what calamine would hold too much of. calamine reads a
//! record whole into a buffer as long as its header says (up to 256 MiB), and an XLSB's
//! shared strings all at once: a record longer than `RECORD_LIMIT`, or shared strings past
//! `xmlguard::STRINGS_BUDGET`, fail the part with an error naming it. The bytes pass unchanged.

use std::io;
use std::sync::Arc;

use super::xmlguard::{Cuts, STRINGS_BUDGET};

/// The longest record read: far more than any cell (32,767 UTF-16 characters) needs.
pub const RECORD_LIMIT: u64 = 1 << 20;
/// BrtSSTItem: one shared string.
const SST_ITEM: u32 = 19;
/// What a shared string costs calamine beyond its text (as in `xmlguard`).
const STRING_OVERHEAD: u64 = 56;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the record type (`n` bytes so far).
    Type { value: u32, n: u8 },
    /// Reading the record size.
    Size { kind: u32, value: u64, n: u8 },
    /// Inside a record's data: bytes left.
    Data { left: u64 },
}

pub struct BinGuard {
    part: String,
    size: u64,
    cuts: Arc<Cuts>,
    state: State,
    pos: u64,
    /// Shared strings: what calamine's table takes so far (`None` for other parts).
    strings: Option<u64>,
}

impl BinGuard {
    pub fn new(part: &str, size: u64, cuts: Arc<Cuts>) -> BinGuard {
        BinGuard {
            part: part.to_string(),
            size,
            cuts,
            state: State::Type { value: 0, n: 0 },
            pos: 0,
            strings: part.ends_with("sharedStrings.bin").then_some(0),
        }
    }

    fn refuse(&self, why: String) -> io::Error {
        self.cuts.refuse_part(&self.part, self.size, &why)
    }

    /// Watches the part's next bytes (which go on unchanged).
    pub fn feed(&mut self, input: &[u8]) -> io::Result<()> {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Data { left } => {
                    let n = (*left).min((input.len() - i) as u64);
                    *left -= n;
                    i += n as usize;
                    if *left == 0 {
                        self.state = State::Type { value: 0, n: 0 };
                    }
                }
                State::Type { value, n } => {
                    let b = input[i];
                    i += 1;
                    *value |= u32::from(b & 0x7f) << (7 * *n);
                    *n += 1;
                    if b & 0x80 == 0 || *n == 2 {
                        self.state = State::Size {
                            kind: *value,
                            value: 0,
                            n: 0,
                        };
                    }
                }
                State::Size { kind, value, n } => {
                    let b = input[i];
                    i += 1;
                    *value |= u64::from(b & 0x7f) << (7 * *n);
                    *n += 1;
                    if b & 0x80 == 0 || *n == 4 {
                        let (kind, len) = (*kind, *value);
                        let at = self.pos + i as u64;
                        if len > RECORD_LIMIT {
                            return Err(self.refuse(format!(
                                "a record at byte {at} is {} long, more than csmport reads of one ({}); this is not a workbook csmport can read safely: save it as XLSX or CSV",
                                super::shown_size(len),
                                super::shown_size(RECORD_LIMIT)
                            )));
                        }
                        if kind == SST_ITEM
                            && let Some(used) = &mut self.strings
                        {
                            // UTF-16 in the file, about half as many bytes as UTF-8 in memory
                            // at most (each unit becomes at most 3 bytes for 2).
                            *used += STRING_OVERHEAD + len * 3 / 2;
                            if *used > STRINGS_BUDGET {
                                return Err(self.refuse(format!(
                                    "its shared strings take more than {}, which is more than csmport holds of a workbook; save the sheet as CSV and import that",
                                    super::shown_size(STRINGS_BUDGET)
                                )));
                            }
                        }
                        self.state = if len == 0 {
                            State::Type { value: 0, n: 0 }
                        } else {
                            State::Data { left: len }
                        };
                    }
                }
            }
        }
        self.pos += input.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record: its type and size as BIFF12 writes them (7 bits a byte), then `len` bytes.
    fn record(kind: u32, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |mut v: u64, max: usize| {
            for _ in 0..max {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(b);
                    return;
                }
                out.push(b | 0x80);
            }
        };
        push(u64::from(kind), 2);
        push(len as u64, 4);
        out.extend(std::iter::repeat_n(0x41, len));
        out
    }

    fn watch(part: &str, bytes: &[u8], piece: usize) -> io::Result<()> {
        let mut g = BinGuard::new(part, bytes.len() as u64, Arc::new(Cuts::default()));
        for chunk in bytes.chunks(piece) {
            g.feed(chunk)?;
        }
        Ok(())
    }

    #[test]
    fn ordinary_records_pass_and_a_huge_one_is_refused() {
        let mut ok = record(0x0191, 0); // BrtBeginSheetData, two type bytes
        ok.extend(record(0x0000, 30)); // BrtRowHdr
        ok.extend(record(0x0007, 20_000)); // a long cell (two size bytes)
        ok.extend(record(0x0192, 0));
        for piece in [1, 3, 4096] {
            watch("xl/worksheets/sheet1.bin", &ok, piece).unwrap();
        }
        let mut bad = ok.clone();
        bad.extend(record(0x0007, (RECORD_LIMIT + 1) as usize));
        let e = watch("xl/worksheets/sheet1.bin", &bad, 65536)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("xl/worksheets/sheet1.bin (")
                && e.contains("is 1.0 MiB long, more than csmport reads of one"),
            "{e}"
        );
    }

    #[test]
    fn too_many_shared_strings_are_refused() {
        let one = record(SST_ITEM, 10);
        let n = (STRINGS_BUDGET / (STRING_OVERHEAD + 15)) as usize + 10;
        let many = one.repeat(n);
        let e = watch("xl/sharedStrings.bin", &many, 1 << 16)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("its shared strings take more than 40.0 MiB"),
            "{e}"
        );
        // The same records elsewhere are not strings.
        watch("xl/worksheets/sheet1.bin", &many, 1 << 16).unwrap();
    }
}
