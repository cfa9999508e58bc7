//! CSV reader: streaming, one record at a time, UTF-8 (a leading BOM is dropped), quoted fields
//! with embedded commas and newlines, ragged rows reported per row. Part of the read stage;
//! `map` consumes its header and rows.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::{RawRow, ReadError};

pub struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<BufReader<File>>,
    header: Vec<String>,
    record: csv::ByteRecord,
    next_row: u64,
    size: u64,
}

impl CsvSource {
    pub fn open(path: &Path) -> Result<CsvSource, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(ReadError::NotCsv {
                path: path.to_path_buf(),
                why: "it is a directory".into(),
            });
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(256 * 1024, file));
        let mut first = csv::ByteRecord::new();
        let got = reader
            .read_byte_record(&mut first)
            .map_err(|e| broken(path, &e))?;
        if !got || first.iter().all(|c| c.is_empty()) && first.len() <= 1 {
            return Err(ReadError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut header = Vec::with_capacity(first.len());
        for (i, cell) in first.iter().enumerate() {
            if cell.contains(&0) {
                return Err(ReadError::NotCsv {
                    path: path.to_path_buf(),
                    why: "the header row contains NUL bytes (a binary file, or UTF-16 text)".into(),
                });
            }
            let text = std::str::from_utf8(cell).map_err(|_| ReadError::NotCsv {
                path: path.to_path_buf(),
                why: format!("header cell {} is not valid UTF-8 text", i + 1),
            })?;
            let text = if i == 0 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            header.push(text.to_string());
        }
        Ok(CsvSource {
            path: path.to_path_buf(),
            reader,
            header,
            record: csv::ByteRecord::new(),
            next_row: 1,
            size,
        })
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

    /// Bytes consumed so far, for progress.
    pub fn position(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next data row, `None` at the end. A broken record (bad quoting that runs into the
    /// end of the file) is a file-level error; ragged rows and bad bytes are row problems.
    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Err(e) => Some(Err(broken(&self.path, &e))),
            Ok(true) => {
                let row = self.next_row;
                self.next_row += 1;
                let mut problem = None;
                let mut cells = Vec::with_capacity(self.record.len());
                for (i, cell) in self.record.iter().enumerate() {
                    match std::str::from_utf8(cell) {
                        Ok(s) => cells.push(s.to_string()),
                        Err(_) => {
                            cells.push(String::from_utf8_lossy(cell).into_owned());
                            problem.get_or_insert_with(|| {
                                format!(
                                    "column {} ({}) is not valid UTF-8; save the file as UTF-8",
                                    i + 1,
                                    self.header.get(i).map(String::as_str).unwrap_or("?")
                                )
                            });
                        }
                    }
                }
                if cells.len() != self.header.len() && !(cells.len() == 1 && cells[0].is_empty()) {
                    problem = Some(format!(
                        "expected {} fields (as in the header) but found {}",
                        self.header.len(),
                        cells.len()
                    ));
                }
                Some(Ok(RawRow {
                    row,
                    cells,
                    problem,
                }))
            }
        }
    }
}

fn broken(path: &Path, e: &csv::Error) -> ReadError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    ReadError::Broken {
        path: path.to_path_buf(),
        line,
        why: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn source(bytes: &[u8]) -> (tempfile::NamedTempFile, Result<CsvSource, ReadError>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        let s = CsvSource::open(f.path());
        (f, s)
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
        assert_eq!(r[0].cells, ["a@x.io", "one, two\r\nthree"]);
        assert_eq!((r[0].row, r[1].row), (1, 2));
        assert!(r.iter().all(|r| r.problem.is_none()));
    }

    #[test]
    fn ragged_rows_and_bad_bytes_are_row_problems() {
        let (_f, s) = source(b"email,notes\na@x.io\nb@x.io,\xff\xfe\n");
        let mut s = s.unwrap();
        let r = rows(&mut s);
        assert!(
            r[0].problem
                .as_deref()
                .unwrap()
                .contains("expected 2 fields")
        );
        assert!(r[1].problem.as_deref().unwrap().contains("not valid UTF-8"));
    }

    #[test]
    fn file_level_errors() {
        let (_f, s) = source(b"");
        assert!(matches!(s, Err(ReadError::Empty { .. })));
        let (_f, s) = source(b"\n\n");
        assert!(matches!(s, Err(ReadError::Empty { .. })));
        let (_f, s) = source(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert!(matches!(s, Err(ReadError::NotCsv { .. })), "{:?}", s.err());
        let missing = CsvSource::open(Path::new("/nonexistent/x.csv"));
        assert!(matches!(missing, Err(ReadError::Open { .. })));
    }
}
