//! Intake for `validate`: read, map and check each row without the site, as fast as the
//! reader allows: rows are checked in the reader's batches, cells read in place, and duplicate
//! keys looked up a batch at a time (or spilled to disk, so memory does not grow with the
//! file). The columns come from `kinds::columns`, the same as an import's.

use std::path::Path;

use crate::error::Error;
use crate::kind::Kind;
use crate::kinds::columns::Columns;
use crate::map;
use crate::options::InputOptions;
use crate::read::{Background, RawRow, RowBatch, Source};
use crate::row::{Outcome, Stage};
use crate::schema::Schema;

use super::plan::{KeyCheck, KeySpill};

pub struct Intake {
    /// The opened input until `reader` takes it to its own thread.
    source: Option<Source>,
    pub columns: Columns,
    pub file_label: String,
    seen: KeyCheck,
    /// Only these data rows (a trial run).
    rows: Option<(u64, u64)>,
    kind: Kind,
    /// Per field: values that matched an option only when ignoring case (count, one example).
    pub respelled: std::collections::BTreeMap<String, (u64, String)>,
}

impl Intake {
    /// Opens the input and maps its header; any problem here stops the run (exit 2).
    pub fn open(
        kind: Kind,
        kind_name: &str,
        input: &InputOptions,
        file: &Path,
        schema: Schema,
    ) -> Result<Intake, Error> {
        if let Some(fmt) = &input.date_format {
            crate::options::check_date_format(fmt)?;
        }
        let source = Source::open(file, &input.read_options())?;
        let file_label = file.display().to_string();
        let source_rows = source.estimated_rows();
        let columns = Columns::new(kind, kind_name, input, source.header(), schema, &file_label)?;
        Ok(Intake {
            source: Some(source),
            columns,
            seen: KeyCheck::Spill(KeySpill::new(source_rows).map_err(spill_error)?),
            rows: input.rows,
            kind,
            respelled: Default::default(),
            file_label,
        })
    }

    pub fn header(&self) -> &[String] {
        &self.columns.header
    }

    /// Progress units of the input: (done, total).
    pub fn progress(&self) -> (u64, u64) {
        self.source.as_ref().map(Source::progress).unwrap_or((0, 0))
    }

    /// What the reader detected on opening the input (blank lines are counted as it reads).
    pub fn dialect(&self) -> Option<crate::read::Dialect> {
        self.source.as_ref().map(Source::dialect)
    }

    /// After a pass: every later row whose key an earlier valid row had, as (row, first row),
    /// by row. Keys are spilled to temporary files during the pass and compared here, so
    /// memory does not grow with the file; their rows pass as valid until then.
    pub fn duplicates(&mut self) -> Result<Vec<(u64, u64)>, Error> {
        match std::mem::replace(&mut self.seen, KeyCheck::Found(Default::default())) {
            KeyCheck::Spill(spill) => spill.finish().map_err(spill_error),
            other => {
                self.seen = other;
                Ok(Vec::new())
            }
        }
    }

    /// For a second pass over the same input: the duplicates `duplicates` found are the only
    /// ones, so their rows get the outcome a single pass would have given them.
    pub fn replay_duplicates(&mut self, found: &[(u64, u64)]) {
        self.seen = KeyCheck::Found(found.iter().copied().collect());
    }

    /// Starts reading rows on a background thread (once).
    pub fn reader(&mut self) -> Background {
        Background::spawn(self.source.take().expect("the input is read once")).with_rows(self.rows)
    }

    /// One outcome per row of a batch (None: valid), reading cells in place, at no allocation
    /// per valid row.
    pub fn check_batch(&mut self, batch: &RowBatch) -> Vec<Option<Outcome>> {
        if self.kind != Kind::Customers {
            return batch.iter().map(|r| self.check_row(&r.to_raw())).collect();
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let cols = &self.columns;
        let email_col = cols
            .mapping
            .targets
            .iter()
            .position(|t| *t == map::Target::Email)
            .unwrap_or(usize::MAX);
        for row in batch.iter() {
            if let Some(early) = pre_check(row.problem(), || row.is_blank()) {
                outcomes.push(Some(early));
                continue;
            }
            if let Some(reason) = cols.skip(&row) {
                outcomes.push(Some(Outcome::Skipped { reason }));
                continue;
            }
            let respelled = &mut self.respelled;
            let mut note = |field: &str, from: &str, to: &str| {
                let e = respelled
                    .entry(field.to_string())
                    .or_insert_with(|| (0, format!("'{from}' → '{to}'")));
                e.0 += 1;
            };
            // Two calls rather than a `dyn Cells`: the cell reads are the inner loop.
            let checked = match cols.mapped() {
                Some((c, mapped_header)) => {
                    let mapped = c.apply(&row);
                    map::check_customer(
                        &cols.mapping,
                        mapped_header,
                        &cols.schema,
                        &mapped,
                        &cols.rules,
                        &mut note,
                    )
                    .map(|e| std::borrow::Cow::Owned(e.to_string()))
                }
                None => map::check_customer(
                    &cols.mapping,
                    &cols.header,
                    &cols.schema,
                    &row,
                    &cols.rules,
                    &mut note,
                )
                // The same cell, borrowed from the batch rather than from `row`.
                .map(|_| {
                    std::borrow::Cow::Borrowed(crate::validate::trim(
                        crate::read::unescape_formula(row.get(email_col).unwrap_or("")),
                    ))
                }),
            };
            outcomes.push(match checked {
                Err(errors) => Some(cell_errors(errors)),
                Ok(email) => self
                    .seen
                    .check(&email_key(&email), row.row())
                    .map(|first| duplicate_outcome(first, &email, map::COL_EMAIL, "a customer")),
            });
        }
        outcomes
    }

    /// The outcome of a later row whose identifying `key` was seen before.
    fn duplicate_key(
        &mut self,
        key: &str,
        shown: &str,
        field: &str,
        noun: &str,
        row: u64,
    ) -> Option<Outcome> {
        let first = self.seen.check(key, row)?;
        Some(duplicate_outcome(first, shown, field, noun))
    }

    /// Checks one row: a read problem, a blank row, invalid cells or a duplicate; None when
    /// it is valid.
    pub fn check_row(&mut self, raw: &RawRow) -> Option<Outcome> {
        if let Some(early) = pre_check(raw.problem.as_deref(), || raw.is_blank()) {
            return Some(early);
        }
        if let Some(reason) = self.columns.skip(&raw.cells) {
            return Some(Outcome::Skipped { reason });
        }
        let cols = &self.columns;
        // How a later duplicate of this row is recognised and named.
        let built =
            match self.kind {
                Kind::Customers | Kind::CustomerAccounts => cols.customer(raw).map(|(item, _)| {
                    match (&item.payload.email, &item.payload.customer_id) {
                        (Some(email), _) => (
                            email.to_lowercase(),
                            email.clone(),
                            map::COL_EMAIL,
                            "a customer",
                        ),
                        (None, id) => {
                            let id = id.clone().unwrap_or_default();
                            (format!("id:{id}"), id, map::COL_ID, "a customer")
                        }
                    }
                }),
                _ => cols.organization(raw).map(|(item, key)| {
                    let p = &item.payload;
                    let shown = p.name.clone().or(p.id.clone()).unwrap_or_default();
                    let field = if p.name.is_some() {
                        map::COL_NAME
                    } else {
                        map::COL_ID
                    };
                    (key, shown, field, "an organization")
                }),
            };
        match built {
            Err(errors) => Some(cell_errors(errors)),
            Ok((key, shown, field, noun)) => self.duplicate_key(&key, &shown, field, noun, raw.row),
        }
    }
}

/// Read problems and blank rows are decided before any cell is looked at.
fn pre_check(problem: Option<&str>, is_blank: impl FnOnce() -> bool) -> Option<Outcome> {
    if let Some(problem) = problem {
        return Some(Outcome::Failed {
            stage: Stage::Read,
            field: String::new(),
            error: problem.to_string(),
        });
    }
    is_blank().then(|| Outcome::Skipped {
        reason: "blank row".into(),
    })
}

/// Emails are compared case-insensitively; most are lower case already and are not copied.
fn email_key(email: &str) -> std::borrow::Cow<'_, str> {
    if email
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        std::borrow::Cow::Owned(email.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(email)
    }
}

fn spill_error(source: std::io::Error) -> Error {
    Error::Report(crate::engine::report::ReportError {
        path: std::env::temp_dir(),
        source,
    })
}

fn duplicate_outcome(first: u64, shown: &str, field: &str, noun: &str) -> Outcome {
    Outcome::Failed {
        stage: Stage::Validate,
        field: field.into(),
        error: format!(
            "duplicate: '{shown}' is already in row {first} of this file; only the first row for {noun} is sent (merge the rows)"
        ),
    }
}

fn cell_errors(errors: Vec<map::CellError>) -> Outcome {
    Outcome::Failed {
        stage: Stage::Validate,
        field: errors
            .iter()
            .map(|e| e.field.as_str())
            .collect::<Vec<_>>()
            .join(";"),
        error: errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join(" | "),
    }
}
