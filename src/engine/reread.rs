//! Intake of a failure report read back (`retry`, or `import` of a `failures.csv`): a row whose
//! failure is still true fails again with the same reason instead of being sent. Rows are told
//! unedited by the report's `_raw` column (the record as first read, written by `report`); the
//! reader thread in `run` asks `Reread` before checking a row.
//!
//! Two failures stay true until the user fixes them: a read problem, until the row is edited
//! (a ragged row, a cell too large: the report's cells are padded or cut, so sending them would
//! send something the file never said), and a duplicate whose first row is still in the file it
//! came from, until its key is changed (sent alone, it would overwrite the first row's values;
//! a change to another cell, a spreadsheet's `FALSE` for `false`, does not make it another
//! record). Keys are compared as the import makes them (`Description::identity`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::kinds::Description;
use crate::map::normalize;
use crate::read::{RawRow, ReadOptions, Source, escape_formula, unescape_formula};
use crate::row::{Outcome, Stage};

use super::report::SUMMARY_FILE;

/// The report column with the original record (read failures and duplicates only).
pub const RAW_COLUMN: &str = "_raw";

/// Every duplicate message starts so (`kinds::Identity`).
pub const DUPLICATE_PREFIX: &str = "duplicate:";

/// How far `retry` of a retry's report follows run folders back to the original input.
const MAX_CHAIN: usize = 8;

/// The record `_raw` holds: the cells written to the report's input columns, then any cells
/// beyond the header, as one CSV line.
pub fn raw_text<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let cells: Vec<&str> = cells.into_iter().collect();
    // A record of one empty cell would be written as an empty line, which reads back as none.
    if cells.iter().all(|c| c.is_empty()) {
        return String::new();
    }
    w.write_record(&cells).expect("writes to memory");
    let mut bytes = w.into_inner().expect("writes to memory");
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    String::from_utf8(bytes).expect("cells are text")
}

/// The cells of a `_raw` value (`None` when it is not one csmport wrote).
fn parse_raw(text: &str) -> Option<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let record = r.records().next()?.ok()?;
    Some(record.iter().map(str::to_string).collect())
}

/// Why a report row is not sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Still {
    /// Its read problem: it fails again at the read stage.
    Read { field: String, error: String },
    /// A duplicate of row `first` of the original input: it fails again if its key is the
    /// one it had (`was`: the row as first read) and that row is still there with it.
    Duplicate {
        first: u64,
        field: String,
        error: String,
        was: RawRow,
    },
}

/// The columns of a failure report, when the input is one.
#[derive(Debug, Clone)]
pub struct Reread {
    /// The input columns (before the report's own), in order.
    kept: Vec<usize>,
    /// Their names.
    names: Vec<String>,
    stage: usize,
    field: usize,
    error: usize,
    raw: usize,
    /// `_row`: a row's number in the file it first came from.
    row: Option<usize>,
}

impl Reread {
    /// `None` for an ordinary file, or a report from before `_raw`.
    pub fn find(header: &[String]) -> Option<Reread> {
        let at = |name: &str| header.iter().position(|h| normalize(h) == name);
        let kept: Vec<usize> = (0..header.len())
            .filter(|&i| !normalize(&header[i]).starts_with('_'))
            .collect();
        Some(Reread {
            names: kept.iter().map(|&i| header[i].clone()).collect(),
            kept,
            stage: at("_stage")?,
            field: at("_field")?,
            error: at("_error")?,
            raw: at(RAW_COLUMN)?,
            row: at("_row"),
        })
    }

    /// `row`'s number in the file it first came from (its `_row`).
    pub fn origin_row(&self, row: &RawRow) -> Option<u64> {
        row.cells.get(self.row?)?.trim().parse().ok()
    }

    /// Whether `row` fails again without being looked at further: `None` for rows to check
    /// and send as usual (not a read failure or duplicate, or edited since the report).
    pub fn still(&self, row: &RawRow) -> Option<Still> {
        let cell = |i: usize| row.cells.get(i).unwrap_or("");
        let raw = unescape_formula(cell(self.raw));
        if raw.is_empty() {
            return None;
        }
        let field = cell(self.field).to_string();
        let error = unescape_formula(cell(self.error)).to_string();
        if cell(self.stage).trim() == "read" {
            return self
                .unedited(row, raw)
                .then_some(Still::Read { field, error });
        }
        if error.starts_with(DUPLICATE_PREFIX) {
            let first = first_row(&error)?;
            let was = self.as_read(row, raw)?;
            return Some(Still::Duplicate {
                first,
                field,
                error,
                was,
            });
        }
        None
    }

    /// The first cell of `row` a spreadsheet changed from what `_raw` holds (`damage`): its
    /// column and what to say.
    pub fn damaged(&self, row: &RawRow) -> Option<(String, String)> {
        let raw = unescape_formula(row.cells.get(self.raw).unwrap_or(""));
        if raw.is_empty() {
            return None;
        }
        let original = parse_raw(raw)?;
        self.kept.iter().enumerate().find_map(|(n, &i)| {
            let now = unescape_formula(row.cells.get(i).unwrap_or(""));
            let then = original.get(n).map(String::as_str).unwrap_or("");
            let why = super::damage::of(then, now)?;
            let name = self.names[n].clone();
            Some((
                name.clone(),
                format!(
                    "{name}: '{now}' {why}: the report had '{then}'. A spreadsheet changed it when the report was saved: put the value back (failures.xlsx keeps every cell as text), or pass --accept-changed-cells to send it as it is now"
                ),
            ))
        })
    }

    /// `row` with its input cells as `_raw` holds them (the row as first read).
    fn as_read(&self, row: &RawRow, raw: &str) -> Option<RawRow> {
        let original = parse_raw(raw)?;
        let mut cells: Vec<&str> = row.cells.iter().collect();
        for (n, &i) in self.kept.iter().enumerate() {
            if let Some(c) = cells.get_mut(i) {
                *c = original.get(n).map(String::as_str).unwrap_or("");
            }
        }
        Some(RawRow {
            row: row.row,
            cells: csv::StringRecord::from(cells),
            problem: None,
        })
    }

    /// The row's input cells are what the report wrote from `_raw`.
    fn unedited(&self, row: &RawRow, raw: &str) -> bool {
        let Some(original) = parse_raw(raw) else {
            return false;
        };
        self.kept.iter().enumerate().all(|(n, &i)| {
            let now = row.cells.get(i).unwrap_or("");
            let then = original.get(n).map(String::as_str).unwrap_or("");
            now == escape_formula(then)
        })
    }
}

/// N in "… row N of this file …".
fn first_row(error: &str) -> Option<u64> {
    let at = error.find("row ")? + 4;
    let digits: String = error[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The file a report's rows first came from: the input of the run that wrote the report,
/// followed back while that input is itself a report.
pub fn origin(report: &Path) -> Option<PathBuf> {
    let mut at = report.to_path_buf();
    for _ in 0..MAX_CHAIN {
        let summary = at.parent()?.join(SUMMARY_FILE);
        let text = std::fs::read_to_string(summary).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let input = PathBuf::from(v["input"].as_str()?);
        let is_report = Source::open(&input, &ReadOptions::default())
            .ok()
            .is_some_and(|s| s.header().iter().any(|h| normalize(h) == "_stage"));
        if !is_report {
            return Some(input);
        }
        at = input;
    }
    None
}

/// The input cells of the given rows of `file` (its own `_` columns left out, as reports do),
/// so their keys can be compared with the report's duplicates. `None` when it cannot be read.
pub fn rows_of(file: &Path, wanted: &HashSet<u64>) -> Option<HashMap<u64, RawRow>> {
    let mut source = Source::open(file, &ReadOptions::default()).ok()?;
    let kept: Vec<usize> = (0..source.header().len())
        .filter(|&i| !normalize(&source.header()[i]).starts_with('_'))
        .collect();
    let mut found = HashMap::new();
    let last = wanted.iter().copied().max().unwrap_or(0);
    while let Some(row) = source.next_row() {
        let row = row.ok()?;
        if row.row > last {
            break;
        }
        if wanted.contains(&row.row) {
            let cells: Vec<&str> = kept
                .iter()
                .map(|&i| row.cells.get(i).unwrap_or(""))
                .collect();
            found.insert(
                row.row,
                RawRow {
                    row: row.row,
                    cells: csv::StringRecord::from(cells),
                    problem: row.problem.clone(),
                },
            );
        }
    }
    Some(found)
}

/// What a run over a failure report needs to fail rows again: the report's columns, and the
/// keys of the original rows its unedited duplicates point at.
pub struct Again {
    reread: Reread,
    /// `--accept-changed-cells`: cells a spreadsheet changed are sent as they are.
    accept_changed: bool,
    /// Row → keys, for the first rows that are still in the original input.
    firsts: HashMap<u64, HashSet<String>>,
    /// Why the original input could not be looked at, when it could not.
    unseen: Option<String>,
    /// The file the report's rows first came from, as its run folder says.
    origin: Option<String>,
}

impl Again {
    /// `None` unless `file` is a failure report with `_raw`. Reads the report once more for
    /// its unedited duplicates, then the rows they point at in the original input.
    pub fn prepare<K: Description>(
        file: &Path,
        header: &[String],
        kind: &K,
        accept_changed: bool,
    ) -> Option<Again> {
        let reread = Reread::find(header)?;
        // The first rows of every duplicate, edited or not: whether an edit changed the key
        // is decided row by row.
        let mut wanted = HashSet::new();
        if let Ok(mut source) = Source::open(file, &ReadOptions::default()) {
            while let Some(Ok(row)) = source.next_row() {
                if let Some(Still::Duplicate { first, .. }) = reread.still(&row) {
                    wanted.insert(first);
                }
            }
        }
        let mut again = Again {
            origin: origin(file).map(|p| p.display().to_string()),
            reread,
            accept_changed,
            firsts: HashMap::new(),
            unseen: None,
        };
        if wanted.is_empty() {
            return Some(again);
        }
        let Some(origin) = origin(file) else {
            again.unseen = Some(format!(
                "no run folder beside {} says which file its rows came from",
                file.display()
            ));
            return Some(again);
        };
        let Some(rows) = rows_of(&origin, &wanted) else {
            again.unseen = Some(format!("{} cannot be read", origin.display()));
            return Some(again);
        };
        for (n, row) in rows {
            if row.problem.is_some() {
                continue;
            }
            if let Ok(item) = kind.check(&row) {
                let keys = kind.identity(&item).into_iter().map(|i| i.key).collect();
                again.firsts.insert(n, keys);
            }
        }
        Some(again)
    }

    /// `row`'s number in the file it first came from.
    pub fn origin_row(&self, row: &RawRow) -> Option<u64> {
        self.reread.origin_row(row)
    }

    /// The file the rows first came from (for messages naming a row of it).
    pub fn source(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The outcome of a report row whose failure is still true; `None` for rows to check and
    /// send as usual.
    pub fn outcome<K: Description>(&self, kind: &K, row: &RawRow) -> Option<Outcome> {
        if !self.accept_changed
            && let Some((field, error)) = self.reread.damaged(row)
        {
            return Some(Outcome::failed(Stage::Validate, field, error));
        }
        match self.reread.still(row)? {
            Still::Read { field, error } => Some(Outcome::failed(Stage::Read, field, error)),
            Still::Duplicate {
                first,
                field,
                error,
                was,
            } => {
                let keys_of = |r: &RawRow| -> HashSet<String> {
                    kind.check(r)
                        .map(|item| kind.identity(&item).into_iter().map(|i| i.key).collect())
                        .unwrap_or_default()
                };
                let now = keys_of(row);
                if now.is_empty() || now.is_disjoint(&keys_of(&was)) {
                    // Its key was changed (or it no longer reads as a record): checked and
                    // sent as any row.
                    return None;
                }
                if let Some(why) = &self.unseen {
                    return Some(Outcome::failed(
                        Stage::Validate,
                        field,
                        format!(
                            "{error} (not sent again: {why}, so whether row {first} is still there is not known; change this row's key to send it anyway)"
                        ),
                    ));
                }
                let keys = self.firsts.get(&first)?;
                (!now.is_disjoint(keys)).then(|| Outcome::failed(Stage::Validate, field, error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn row(cells: &[&str]) -> RawRow {
        RawRow {
            row: 2,
            cells: csv::StringRecord::from(cells.to_vec()),
            problem: None,
        }
    }

    #[test]
    fn raw_records_round_trip() {
        for cells in [
            vec!["a@x.io", "A, \"the\" one", "", "=1+1"],
            vec!["", "", "x"],
            vec!["one"],
        ] {
            let text = raw_text(cells.iter().copied());
            assert_eq!(parse_raw(&text).unwrap(), cells, "{text}");
        }
        assert_eq!(raw_text(["", ""]), "");
    }

    #[test]
    fn unedited_read_failures_and_duplicates_fail_again() {
        let h = header(&[
            "email", "name", "_row", "_stage", "_field", "_error", "_raw",
        ]);
        let r = Reread::find(&h).unwrap();
        let ragged = raw_text(["a@x.io", "A", "extra"]);
        let cases: Vec<(Vec<&str>, Option<Still>)> = vec![
            // A ragged row as the report wrote it: fails again.
            (
                vec![
                    "a@x.io",
                    "A",
                    "4",
                    "read",
                    "",
                    "3 fields, header 2",
                    &ragged,
                ],
                Some(Still::Read {
                    field: "".into(),
                    error: "3 fields, header 2".into(),
                }),
            ),
            // The same row edited: sent as usual.
            (
                vec![
                    "a@x.io",
                    "Ann",
                    "4",
                    "read",
                    "",
                    "3 fields, header 2",
                    &ragged,
                ],
                None,
            ),
            // `_raw` cleared: the user says the cells are right.
            (
                vec!["a@x.io", "A", "4", "read", "", "3 fields, header 2", ""],
                None,
            ),
            (
                vec![
                    "b@x.io",
                    "B",
                    "5",
                    "validate",
                    "email",
                    "duplicate: 'b@x.io' is already in row 3 of this file",
                    "b@x.io,B",
                ],
                Some(Still::Duplicate {
                    first: 3,
                    field: "email".into(),
                    error: "duplicate: 'b@x.io' is already in row 3 of this file".into(),
                    was: row(&[
                        "b@x.io",
                        "B",
                        "5",
                        "validate",
                        "email",
                        "duplicate: 'b@x.io' is already in row 3 of this file",
                        "b@x.io,B",
                    ]),
                }),
            ),
            // Edited in a cell that is not its key: still the duplicate it was (the key is
            // compared by `Again`, as the import makes it).
            (
                vec![
                    "b@x.io",
                    "Bee",
                    "5",
                    "validate",
                    "email",
                    "duplicate: 'b@x.io' is already in row 3 of this file",
                    "b@x.io,B",
                ],
                Some(Still::Duplicate {
                    first: 3,
                    field: "email".into(),
                    error: "duplicate: 'b@x.io' is already in row 3 of this file".into(),
                    was: row(&[
                        "b@x.io",
                        "B",
                        "5",
                        "validate",
                        "email",
                        "duplicate: 'b@x.io' is already in row 3 of this file",
                        "b@x.io,B",
                    ]),
                }),
            ),
            // Other validation failures are checked again as usual.
            (
                vec![
                    "bad",
                    "B",
                    "6",
                    "validate",
                    "email",
                    "not an email",
                    "bad,B",
                ],
                None,
            ),
            // Formula cells are compared as the report wrote them.
            (
                vec!["'=x", "y", "8", "read", "", "why", "'=x,y"],
                Some(Still::Read {
                    field: "".into(),
                    error: "why".into(),
                }),
            ),
            (
                vec!["c@x.io", "'=1+1", "7", "read", "", "why", "c@x.io,=1+1"],
                Some(Still::Read {
                    field: "".into(),
                    error: "why".into(),
                }),
            ),
        ];
        for (cells, want) in cases {
            assert_eq!(r.still(&row(&cells)), want, "{cells:?}");
        }
        assert!(Reread::find(&header(&["email", "_row", "_stage", "_field", "_error"])).is_none());
    }

    #[test]
    fn the_first_row_is_read_from_duplicate_messages() {
        assert_eq!(
            first_row("duplicate: 'a' is already in row 12 of this file; only"),
            Some(12)
        );
        assert_eq!(
            first_row("duplicate: row 7 of this file already gives this entitlement"),
            Some(7)
        );
        assert_eq!(first_row("duplicate: no number"), None);
    }
}
