//! Export stage, output: tables into a CSV (UTF-8, optional BOM, any delimiter, text that a
//! spreadsheet would run as a formula defused) or an XLSX (rust_xlsxwriter in constant-memory
//! mode, one sheet per table, typed cells, bold frozen header, autofilter, column widths).
//! Written to a temporary file in the target folder and renamed at the end, so a crash never
//! leaves half an export under the final name. Neighbours: `export` (tables), `cmd::export`.

use std::io::{Read, Write};
use std::path::Path;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};
use sha2::{Digest, Sha256};

use super::spool::{Sheet, Spool};
use super::{Cell, Table};
use crate::read::escape_formula;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

impl crate::site::api::Choice for ExportFormat {
    const ALL: &'static [Self] = &[ExportFormat::Csv, ExportFormat::Xlsx];
    fn name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    pub bom: bool,
    pub delimiter: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: cannot write: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot write the workbook: {source}")]
    Xlsx { path: String, source: XlsxError },
}

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An export for the user: the mode of the file it replaces, or what the umask gives.
    Umask,
    /// A file of a run folder (a delete's backup): the user alone (0600).
    Private,
}

/// Rows given one at a time to `sink` (so a million of them are never held together).
pub type Rows<'a> =
    &'a dyn Fn(&mut dyn FnMut(Vec<String>) -> Result<(), String>) -> Result<(), String>;

/// A sheet of text cells after the tables (the export's `Changes`).
pub struct Extra<'a> {
    pub name: &'a str,
    pub header: &'a [String],
    pub rows: Rows<'a>,
}

/// Where the rows of the sheets come from: tables in memory, or an export's spool.
pub trait Source {
    /// Each sheet's kind, header, row count and widest cells.
    fn sheets(&self) -> Vec<Sheet>;
    /// The rows of sheet `i`, in order, handed to `f`.
    fn each_row(
        &self,
        i: usize,
        f: &mut dyn FnMut(&[Cell]) -> Result<(), String>,
    ) -> Result<(), String>;
}

/// Tables read whole, in memory.
pub struct Tables<'a>(pub &'a [Table]);

impl Source for Tables<'_> {
    fn sheets(&self) -> Vec<Sheet> {
        self.0
            .iter()
            .map(|t| {
                let mut sheet = Sheet {
                    kind: t.kind,
                    widths: t.header.iter().map(|h| h.chars().count() + 2).collect(),
                    header: t.header.clone(),
                    rows: 0,
                };
                for r in &t.rows {
                    sheet.count(r);
                }
                sheet
            })
            .collect()
    }

    fn each_row(
        &self,
        i: usize,
        f: &mut dyn FnMut(&[Cell]) -> Result<(), String>,
    ) -> Result<(), String> {
        for r in &self.0[i].rows {
            f(r)?;
        }
        Ok(())
    }
}

/// An export's rows, kept on disk.
pub struct Spooled<'a> {
    pub spool: &'a Spool,
    pub sheets: &'a [Sheet],
}

impl Source for Spooled<'_> {
    fn sheets(&self) -> Vec<Sheet> {
        self.sheets.to_vec()
    }

    fn each_row(
        &self,
        i: usize,
        f: &mut dyn FnMut(&[Cell]) -> Result<(), String>,
    ) -> Result<(), String> {
        self.spool.each_row(self.sheets[i].kind, f)
    }
}

/// Writes `tables` to `path` atomically; returns the SHA-256 of what was written.
pub fn write(
    path: &Path,
    format: ExportFormat,
    tables: &[Table],
    csv: CsvOptions,
    access: Access,
) -> Result<String, WriteError> {
    write_with(path, format, &Tables(tables), None, csv, access)
}

/// `write`, with `extra` as one more sheet of an XLSX (a CSV holds one table: no extra).
pub fn write_with(
    path: &Path,
    format: ExportFormat,
    tables: &dyn Source,
    extra: Option<&Extra<'_>>,
    csv: CsvOptions,
    access: Access,
) -> Result<String, WriteError> {
    let shown = path.display().to_string();
    let io = |source| WriteError::Io {
        path: shown.clone(),
        source,
    };
    let mut tmp = temporary(path).map_err(io)?;
    match format {
        ExportFormat::Csv => {
            let sheets = tables.sheets();
            let [sheet] = sheets.as_slice() else {
                return Err(io(std::io::Error::other(
                    "a CSV holds one kind; export several kinds to an .xlsx (one sheet each)",
                )));
            };
            write_csv(tmp.as_file_mut(), tables, sheet, csv).map_err(io)?;
        }
        ExportFormat::Xlsx => {
            let mut book = workbook(tables, extra).map_err(|source| WriteError::Xlsx {
                path: shown.clone(),
                source,
            })?;
            book.save_to_writer(tmp.as_file_mut())
                .map_err(|source| WriteError::Xlsx {
                    path: shown.clone(),
                    source,
                })?;
        }
    }
    finish(tmp, path, access).map_err(io)?;
    sha256_of(path).map_err(io)
}

/// A temporary file in `path`'s folder (made if need be), to be renamed over `path`.
fn temporary(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    tempfile::Builder::new()
        .prefix(".csmport-export-")
        .suffix(".part")
        .tempfile_in(&dir)
}

/// Synced, given its mode, and renamed over `path`.
fn finish(mut tmp: tempfile::NamedTempFile, path: &Path, access: Access) -> std::io::Result<()> {
    tmp.as_file_mut().sync_all()?;
    // A temporary file is private (0600); the export gets the mode of the file it replaces,
    // or what the user's umask gives a new file.
    #[cfg(unix)]
    if access == Access::Umask {
        use std::os::unix::fs::PermissionsExt;
        let mode = crate::fsx::mode_for(path)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes one sheet of text rows to `path` atomically, as CSV or as an XLSX whose one sheet is
/// named `extra.name` (the change file).
pub fn write_rows(
    path: &Path,
    format: ExportFormat,
    extra: &Extra<'_>,
    csv: CsvOptions,
) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    let io = |source| WriteError::Io {
        path: shown.clone(),
        source,
    };
    let mut tmp = temporary(path).map_err(io)?;
    match format {
        ExportFormat::Csv => {
            let mut buf = std::io::BufWriter::new(tmp.as_file_mut());
            if csv.bom {
                buf.write_all("\u{feff}".as_bytes()).map_err(io)?;
            }
            let mut w = csv::WriterBuilder::new()
                .delimiter(csv.delimiter)
                .from_writer(buf);
            let err = |e: csv::Error| e.to_string();
            w.write_record(extra.header.iter().map(|h| escape_formula(h).into_owned()))
                .map_err(|e| io(std::io::Error::other(err(e))))?;
            (extra.rows)(&mut |cells| {
                w.write_record(cells.iter().map(|c| escape_formula(c).into_owned()))
                    .map_err(err)
            })
            .map_err(|e| io(std::io::Error::other(e)))?;
            w.flush().map_err(io)?;
        }
        ExportFormat::Xlsx => {
            let mut book =
                workbook(&Tables(&[]), Some(extra)).map_err(|source| WriteError::Xlsx {
                    path: shown.clone(),
                    source,
                })?;
            book.save_to_writer(tmp.as_file_mut())
                .map_err(|source| WriteError::Xlsx {
                    path: shown.clone(),
                    source,
                })?;
        }
    }
    finish(tmp, path, Access::Umask).map_err(io)
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn write_csv(
    out: &mut std::fs::File,
    source: &dyn Source,
    sheet: &Sheet,
    opts: CsvOptions,
) -> std::io::Result<()> {
    let mut buf = std::io::BufWriter::new(out);
    if opts.bom {
        buf.write_all("\u{feff}".as_bytes())?;
    }
    let mut w = csv::WriterBuilder::new()
        .delimiter(opts.delimiter)
        .from_writer(buf);
    let err = |e: csv::Error| std::io::Error::other(e.to_string());
    w.write_record(sheet.header.iter().map(|h| escape_formula(h).into_owned()))
        .map_err(err)?;
    source
        .each_row(0, &mut |row| {
            w.write_record(row.iter().map(|c| escape_formula(&c.text()).into_owned()))
                .map_err(|e| e.to_string())
        })
        .map_err(std::io::Error::other)?;
    w.flush()?;
    Ok(())
}

/// The widest a column gets (characters), and the narrowest.
const MAX_WIDTH: usize = 60;
const MIN_WIDTH: usize = 8;

fn workbook(tables: &dyn Source, extra: Option<&Extra<'_>>) -> Result<Workbook, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (i, t) in tables.sheets().into_iter().enumerate() {
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name(sheet_name(t.kind.as_str()))?;
        // Widths first: a constant-memory sheet writes rows as they come.
        for (c, w) in t.widths.iter().enumerate() {
            sheet.set_column_width(c as u16, (*w).clamp(MIN_WIDTH, MAX_WIDTH) as f64)?;
        }
        for (c, h) in t.header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        let last_col = t.header.len().saturating_sub(1) as u16;
        sheet.autofilter(0, 0, t.rows as u32, last_col)?;
        put_rows(
            |f| tables.each_row(i, f),
            |r, c, cell| write_cell(sheet, r, c, cell, &date),
        )?;
    }
    if let Some(extra) = extra {
        let sheet = book.add_worksheet_with_constant_memory()?;
        sheet.set_name(sheet_name(extra.name))?;
        for (c, h) in extra.header.iter().enumerate() {
            sheet.set_column_width(
                c as u16,
                (h.chars().count() + 10).clamp(MIN_WIDTH, 30) as f64,
            )?;
            sheet.write_string_with_format(0, c as u16, h, &bold)?;
        }
        sheet.set_freeze_panes(1, 0)?;
        let r = put_rows(
            |f| (extra.rows)(&mut |cells: Vec<String>| f(&cells)),
            // Text as text: the old and new values are shown as the files had them.
            |r, c, cell: &String| {
                if cell.is_empty() {
                    Ok(())
                } else {
                    sheet.write_string(r, c, cell).map(|_| ())
                }
            },
        )?;
        let last_col = extra.header.len().saturating_sub(1) as u16;
        sheet.autofilter(0, 0, r, last_col)?;
    }
    Ok(book)
}

/// One typed cell: strings as strings (never as formulas, whatever they start with), numbers,
/// yes/no and dates as Excel has them.
/// Hands each row `send` gives to `put`, cell by cell with its sheet row (from 1) and column;
/// the first error `put` gives ends the sending and is returned as it was. The rows put.
fn put_rows<T>(
    send: impl FnOnce(&mut dyn FnMut(&[T]) -> Result<(), String>) -> Result<(), String>,
    mut put: impl FnMut(u32, u16, &T) -> Result<(), XlsxError>,
) -> Result<u32, XlsxError> {
    let mut r = 0u32;
    let mut failed = None;
    let sent = send(&mut |row| {
        r += 1;
        for (c, cell) in row.iter().enumerate() {
            if let Err(e) = put(r, c as u16, cell) {
                let text = e.to_string();
                failed = Some(e);
                return Err(text);
            }
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    sent.map_err(XlsxError::CustomError)?;
    Ok(r)
}

fn write_cell(
    sheet: &mut rust_xlsxwriter::Worksheet,
    r: u32,
    c: u16,
    cell: &Cell,
    date: &Format,
) -> Result<(), XlsxError> {
    match cell {
        Cell::Empty => {}
        Cell::Text(s) => {
            sheet.write_string(r, c, s)?;
        }
        Cell::Number(n, _) => {
            sheet.write_number(r, c, *n)?;
        }
        Cell::Bool(b) => {
            sheet.write_boolean(r, c, *b)?;
        }
        Cell::Date(d) => {
            let dt = ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)?;
            sheet.write_datetime_with_format(r, c, &dt, date)?;
        }
    }
    Ok(())
}

/// The name of a kind's sheet (an earlier export's sheet is read back by it).
pub fn sheet_of(kind: &str) -> String {
    sheet_name(kind)
}

/// Excel sheet names: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(kind: &str) -> String {
    kind.chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::unescape_formula;

    #[test]
    fn formula_text_is_defused_and_restored() {
        let cases = [
            ("=1+1", "'=1+1"),
            ("+44 20 7946 0000", "+44 20 7946 0000"),
            ("-5", "-5"),
            ("-0.5", "-0.5"),
            ("+1.5e+3", "+1.5e+3"),
            ("+1 (555) 010-0199", "+1 (555) 010-0199"),
            ("-5+cmd|' /C calc'!A0", "'-5+cmd|' /C calc'!A0"),
            ("+SUM(1)", "'+SUM(1)"),
            ("-", "'-"),
            ("- 5", "'- 5"),
            ("-2*3", "'-2*3"),
            ("+e5", "'+e5"),
            ("=5", "'=5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("'quoted", "'quoted"),
            ("", ""),
        ];
        for (value, written) in cases {
            assert_eq!(escape_formula(value), written, "{value:?}");
            assert_eq!(unescape_formula(written), value, "{written:?}");
        }
    }
}
