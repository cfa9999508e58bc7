//! Raw read baselines for the reader benchmark (not a test): how fast the csv crate reads a
//! file as ByteRecords, and calamine streams an XLSX's cells, on this machine, so
//! `bench/validate.sh` can compare `csmport validate` with them in the same run; and how fast
//! rust_xlsxwriter alone writes a CSV's cells as a constant-memory sheet, for `bench/run`'s
//! export row.
//! Usage: read_baseline csv|xlsx|xlsx-text FILE, or read_baseline write-xlsx IN.csv OUT.xlsx

use std::time::Instant;

use calamine::{Reader, Xlsx, open_workbook};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, path) = match (args.get(1), args.get(2)) {
        (Some(m), Some(p)) if !p.starts_with("--") => (m.clone(), p.clone()),
        _ => {
            eprintln!("usage: read_baseline csv|xlsx FILE");
            return;
        }
    };
    let start = Instant::now();
    let rows = match mode.as_str() {
        "csv" => {
            let mut r = csv::ReaderBuilder::new()
                .from_path(&path)
                .expect("csv opens");
            let mut rec = csv::ByteRecord::new();
            let mut n = 0u64;
            while r.read_byte_record(&mut rec).expect("csv reads") {
                n += 1;
            }
            n
        }
        "xlsx" => {
            let mut wb: Xlsx<_> = open_workbook(&path).expect("xlsx opens");
            let name = wb.sheet_names()[0].clone();
            let mut cells = wb.worksheet_cells_reader(&name).expect("sheet opens");
            let mut last_row = None;
            let mut n = 0u64;
            while let Some(c) = cells.next_cell().expect("cell reads") {
                let r = c.get_position().0;
                if last_row != Some(r) {
                    n += 1;
                    last_row = Some(r);
                }
            }
            n.saturating_sub(1)
        }
        // The baseline plus turning every cell into text, as csmport's sheet thread does: how
        // much of the gap is that work rather than threads and hand-over.
        "xlsx-text" => {
            use std::fmt::Write;
            let mut wb: Xlsx<_> = open_workbook(&path).expect("xlsx opens");
            let name = wb.sheet_names()[0].clone();
            let mut cells = wb.worksheet_cells_reader(&name).expect("sheet opens");
            let mut last_row = None;
            let mut n = 0u64;
            let mut text = String::new();
            let mut ends: Vec<(u32, u32, u32)> = Vec::new();
            while let Some(c) = cells.next_cell().expect("cell reads") {
                let (r, col) = c.get_position();
                match c.get_value() {
                    calamine::DataRef::SharedString(s) => text.push_str(s),
                    calamine::DataRef::String(s) => text.push_str(s),
                    calamine::DataRef::Float(f) => {
                        let _ = write!(text, "{f}");
                    }
                    calamine::DataRef::Int(i) => {
                        let _ = write!(text, "{i}");
                    }
                    _ => {}
                }
                ends.push((r, col, text.len() as u32));
                if ends.len() >= 8192 {
                    ends.clear();
                    text.clear();
                }
                if last_row != Some(r) {
                    n += 1;
                    last_row = Some(r);
                }
            }
            n.saturating_sub(1)
        }
        // Every cell a string, as an export of text fields writes them.
        "write-xlsx" => {
            let out = args.get(3).expect("write-xlsx IN.csv OUT.xlsx");
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_path(&path)
                .expect("csv opens");
            let mut book = rust_xlsxwriter::Workbook::new();
            let sheet = book
                .add_worksheet_with_constant_memory()
                .expect("sheet adds");
            let mut rec = csv::StringRecord::new();
            let mut n = 0u32;
            while r.read_record(&mut rec).expect("csv reads") {
                for (c, v) in rec.iter().enumerate() {
                    if !v.is_empty() {
                        sheet.write_string(n, c as u16, v).expect("cell writes");
                    }
                }
                n += 1;
            }
            book.save(out).expect("xlsx saves");
            u64::from(n.saturating_sub(1))
        }
        other => panic!("unknown mode {other}"),
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode} baseline: {rows} rows in {secs:.3}s = {:.0} rows/s",
        rows as f64 / secs
    );
}
