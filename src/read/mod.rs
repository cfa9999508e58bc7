//! Read stage: turns an input file into a header and a stream of raw rows, each carrying where
//! it came from. Feeds `map`; knows nothing of CSM. One file per format (`csv` now; XLSX later).

pub mod csv;

use std::path::PathBuf;

/// A data row as read, before mapping. `row` is the 1-based data row (the header is row 0), as
/// written to the reports' `_row`. (No physical line number: with quoted newlines and CRLF it
/// is not what a spreadsheet user counts anyway.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub row: u64,
    pub cells: Vec<String>,
    /// A row-level read problem (ragged row, bad bytes): the row still flows to the report.
    pub problem: Option<String>,
}

impl RawRow {
    pub fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }
}

/// File-level read errors: these stop the run before anything is sent (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the file is empty (expected a header row such as: email,displayName,...)")]
    Empty { path: PathBuf },
    #[error("{path}: not a CSV text file: {why}")]
    NotCsv { path: PathBuf, why: String },
    #[error("{path}: near line {line}: {why}")]
    Broken {
        path: PathBuf,
        line: u64,
        why: String,
    },
}
