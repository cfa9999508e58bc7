//! Read stage, beneath the spreadsheet reader (`xlsx`): checks an XLS workbook's sheet-size
//! records before calamine opens it. calamine reserves room for rows × columns as each sheet's
//! DIMENSIONS record states them, so a damaged record would make it ask for terabytes and end
//! the process. The records are walked the way calamine walks them: the globals up to their
//! EOF for the sheets' offsets, then each sheet from its offset, skipping nested substreams.

use std::io::Read;
use std::path::Path;

use super::{le_u16, le_u32};

const BOF: u16 = 0x0809;
const EOF: u16 = 0x000A;
const BOUND_SHEET: u16 = 0x0085;
const DIMENSIONS: u16 = 0x0200;
const CONTINUE: u16 = 0x003C;
/// The largest sheet an XLS file can hold (BIFF8).
const MAX_ROWS: u64 = 65_536;
const MAX_COLUMNS: u64 = 256;

/// Err with what is wrong when a sheet states a size no XLS sheet can have. Anything this
/// cannot read is left for calamine to report.
pub fn check_sheet_sizes(path: &Path) -> Result<(), String> {
    let Ok(mut file) = cfb::open(path) else {
        return Ok(());
    };
    let opened = match file.open_stream("/Workbook") {
        Ok(s) => Ok(s),
        Err(_) => file.open_stream("/Book"),
    };
    let mut stream = Vec::new();
    let Ok(mut s) = opened else {
        return Ok(());
    };
    if s.read_to_end(&mut stream).is_err() {
        return Ok(());
    }
    check_stream(&stream)
}

fn check_stream(stream: &[u8]) -> Result<(), String> {
    let mut sheets = Vec::new();
    for (typ, data) in records(stream, 0) {
        match typ {
            BOUND_SHEET if data.len() >= 4 => sheets.push(le_u32(data, 0) as usize),
            EOF => break,
            _ => {}
        }
    }
    for (n, at) in sheets.into_iter().enumerate() {
        let Some(sheet) = stream.get(at..) else {
            continue;
        };
        let mut nested = 0usize;
        let mut seen_bof = false;
        for (typ, data) in records(sheet, 0) {
            if nested > 0 {
                match typ {
                    BOF => nested += 1,
                    EOF => nested -= 1,
                    _ => {}
                }
                continue;
            }
            match typ {
                BOF if seen_bof => nested += 1,
                BOF => seen_bof = true,
                DIMENSIONS => check_dimensions(data)
                    .map_err(|why| format!("sheet {} {why}; the file is damaged", n + 1))?,
                EOF => break,
                _ => {}
            }
        }
    }
    Ok(())
}

/// A DIMENSIONS record: first row, last row + 1, first column, last column + 1. Short (BIFF5
/// and older) records have 16-bit rows.
fn check_dimensions(d: &[u8]) -> Result<(), String> {
    let (first_row, row_end, mut first_col, col_end) = match d.len() {
        10 => (
            u64::from(le_u16(d, 0)),
            u64::from(le_u16(d, 2)),
            u64::from(le_u16(d, 4)),
            u64::from(le_u16(d, 6)),
        ),
        14 | 16 => (
            u64::from(le_u32(d, 0)),
            u64::from(le_u32(d, 4)),
            u64::from(le_u16(d, 8)),
            u64::from(le_u16(d, 10)),
        ),
        _ => return Ok(()),
    };
    // As calamine reads it: a first column past the last, or past 255, counts as column 0,
    // and an empty range as one cell.
    if first_col > 0xFF || col_end < first_col {
        first_col = 0;
    }
    if row_end == 0 || col_end == 0 {
        return Ok(());
    }
    if row_end - 1 < first_row {
        return Err(format!(
            "states rows {}..{} (its first row after its last)",
            first_row + 1,
            row_end
        ));
    }
    let (rows, cols) = (row_end - first_row, col_end - first_col);
    if rows > MAX_ROWS || cols > MAX_COLUMNS {
        return Err(format!(
            "states {rows} rows and {cols} columns, more than an XLS sheet can have \
             ({MAX_ROWS} × {MAX_COLUMNS})"
        ));
    }
    Ok(())
}

/// (type, data) of each record from `at`, a CONTINUE record's data not included, up to the
/// first record that does not fit.
fn records(stream: &[u8], mut at: usize) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        loop {
            let head = stream.get(at..at + 4)?;
            let typ = le_u16(head, 0);
            let len = usize::from(le_u16(head, 2));
            let data = stream.get(at + 4..at + 4 + len)?;
            at += 4 + len;
            if typ != CONTINUE {
                return Some((typ, data));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(first_row: u32, row_end: u32, first_col: u16, col_end: u16) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&first_row.to_le_bytes());
        d.extend_from_slice(&row_end.to_le_bytes());
        d.extend_from_slice(&first_col.to_le_bytes());
        d.extend_from_slice(&col_end.to_le_bytes());
        d.extend_from_slice(&[0, 0]);
        d
    }

    #[test]
    fn sheet_sizes_no_xls_sheet_can_have_are_refused() {
        let cases: &[(Vec<u8>, Result<(), &str>)] = &[
            (dims(0, 3, 0, 5), Ok(())),
            (dims(0, 65_536, 0, 256), Ok(())),
            (dims(0, 0, 0, 0), Ok(())),
            // A first column past the last is read as column 0.
            (dims(0, 10, 300, 20), Ok(())),
            (
                dims(0, 65_537, 0, 1),
                Err(
                    "states 65537 rows and 1 columns, more than an XLS sheet can have (65536 × 256)",
                ),
            ),
            (
                dims(0, 100_000_000, 0, 200),
                Err(
                    "states 100000000 rows and 200 columns, more than an XLS sheet can have (65536 × 256)",
                ),
            ),
            (
                dims(0, 10, 0, 257),
                Err(
                    "states 10 rows and 257 columns, more than an XLS sheet can have (65536 × 256)",
                ),
            ),
            (
                dims(9, 5, 0, 1),
                Err("states rows 10..5 (its first row after its last)"),
            ),
            // Lengths calamine refuses itself are left to it.
            (vec![0xff; 12], Ok(())),
        ];
        for (d, want) in cases {
            assert_eq!(check_dimensions(d), want.map_err(str::to_string), "{d:?}");
        }
        let short = [0u8, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        assert_eq!(check_dimensions(&short), Ok(()));
    }

    #[test]
    fn records_are_walked_as_calamine_walks_them() {
        fn rec(typ: u16, data: &[u8]) -> Vec<u8> {
            let mut r = typ.to_le_bytes().to_vec();
            r.extend_from_slice(&(data.len() as u16).to_le_bytes());
            r.extend_from_slice(data);
            r
        }
        let bad = dims(0, 1 << 30, 0, 10);
        let globals_len = 3 * 4 + 8 + 4 + 2;
        let sheet = |inner: Vec<u8>| -> Vec<u8> {
            let mut s = rec(BOUND_SHEET, &(globals_len as u32).to_le_bytes());
            s.extend(rec(BOF, &[0; 4]));
            s.extend(rec(0x0022, &[0, 0]));
            s.extend(rec(EOF, &[]));
            assert_eq!(s.len(), globals_len);
            s.extend(rec(BOF, &[0; 4]));
            s.extend(inner);
            s.extend(rec(EOF, &[]));
            s
        };
        // In the sheet: refused.
        let e = check_stream(&sheet(rec(DIMENSIONS, &bad))).unwrap_err();
        assert!(e.starts_with("sheet 1 states 1073741824 rows"), "{e}");
        // In a chart embedded in the sheet, or in a CONTINUE record: calamine skips it.
        let mut chart = rec(BOF, &[0; 4]);
        chart.extend(rec(DIMENSIONS, &bad));
        chart.extend(rec(EOF, &[]));
        assert_eq!(check_stream(&sheet(chart)), Ok(()));
        let mut cont = rec(0x0006, &[0; 4]);
        cont.extend(rec(CONTINUE, &bad));
        assert_eq!(check_stream(&sheet(cont)), Ok(()));
        // A record cut short ends the walk.
        let mut cut = rec(DIMENSIONS, &bad);
        cut.truncate(10);
        assert_eq!(check_stream(&sheet(cut)), Ok(()));
    }
}
