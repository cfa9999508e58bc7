//! Intake: the front half of the pipeline that `import` and `validate` share — open the input
//! (`read`), get the detail-field schema (the site, or `--schema FILE`), map the header (`map`)
//! and decide each row (read problem, blank, invalid, duplicate, or a batch item for `plan`).

use std::path::Path;

use crate::cli::{InputArgs, Kind, Op};
use crate::engine::plan::{BulkItem, KeyCheck, KeySpill, Outcome, PlannedRow, SeenKeys, Stage};
use crate::error::Error;
use crate::map::{self, Mapping, RecordKind};
use crate::mapfile::{self, Compiled};
use crate::read::{Background, Cells, RawRow, ReadOptions, RowBatch, Source};
use crate::schema::Schema;
use crate::site::api::model::{DetailFieldsWithConfiguration, ProfileOperation};
use crate::site::api::paths;
use crate::site::client::Client;
use crate::validate::CellRules;

pub struct Intake {
    /// The opened input until `reader` takes it to its own thread.
    source: Option<Source>,
    /// The input's own header (the reports keep it).
    pub header: Vec<String>,
    /// With a mapping file: the rules, and the header `map` sees.
    compiled: Option<(Compiled, Vec<String>)>,
    pub mapping: Mapping,
    pub schema: Schema,
    pub rules: CellRules,
    pub op: ProfileOperation,
    pub file_label: String,
    seen: KeyCheck,
    /// The input's rows, estimated from its size.
    source_rows: u64,
    kind: RecordKind,
    /// Per field: values that matched an option only when ignoring case (count, one example).
    pub respelled: std::collections::BTreeMap<String, (u64, String)>,
}

/// The detail-field definitions: from `--schema FILE` when given, else from the site.
pub async fn schema(input: &InputArgs, client: Option<&Client>) -> Result<Schema, Error> {
    if let Some(path) = &input.schema {
        return schema_file(path);
    }
    let Some(client) = client else {
        return Err(Error::Usage(
            "no detail-field definitions: pass --schema FILE (the JSON of GET customer/details), or the target options (or --sandbox) to read them from the site"
                .into(),
        ));
    };
    let path = match input.kind() {
        Kind::Customers => paths::CUSTOMER_DETAILS,
        Kind::Organizations => paths::ORGANIZATION_DETAILS,
        // Accounts carry no detail values, definition files are checked on their own.
        Kind::CustomerAccounts
        | Kind::OrganizationAccounts
        | Kind::DetailFields
        | Kind::Products
        | Kind::Entitlements
        | Kind::CustomerDetails
        | Kind::OrganizationDetails => {
            return Ok(Schema::default());
        }
    };
    let defs: DetailFieldsWithConfiguration =
        client.get_json(path).await.map_err(Error::from_setup)?;
    Ok(Schema::from_api(&defs))
}

pub fn schema_file(path: &Path) -> Result<Schema, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("--schema {}: cannot read: {e}", path.display())))?;
    let defs: DetailFieldsWithConfiguration = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "--schema {}: not the JSON of GET customer/details ({{\"results\": [{{\"name\", \"type\": {{\"name\", \"options\"}}}}]}}): {e}",
            path.display()
        ))
    })?;
    Ok(Schema::from_api(&defs))
}

pub fn read_options(input: &InputArgs) -> ReadOptions {
    ReadOptions {
        encoding: input.encoding,
        delimiter: input.delimiter,
        header_row: input.header_row,
        sheet: input.sheet.clone(),
    }
}

impl Intake {
    /// Opens the input and maps its header; any problem here stops the run (exit 2).
    pub fn open(input: &InputArgs, file: &Path, schema: Schema) -> Result<Intake, Error> {
        if let Some(fmt) = &input.date_format {
            check_date_format(fmt)?;
        }
        let kind = record_kind(input.kind());
        let source = Source::open(file, &read_options(input))?;
        let file_label = file.display().to_string();
        let header = source.header().to_vec();
        let source_rows = source.estimated_rows();
        let compiled = match &input.mapping {
            None => None,
            Some(path) => {
                let m = mapfile::load(path).map_err(|e| Error::Usage(format!("--mapping {e}")))?;
                let c = m
                    .compile(input.kind().as_str(), &header, &schema)
                    .map_err(|e| {
                        Error::Usage(format!("--mapping {}: {file_label}: {e}", path.display()))
                    })?;
                let mapped = c.header.clone();
                Some((c, mapped))
            }
        };
        let mapped_header = compiled
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| header.clone());
        let mut mapping = map::map_header_for(kind, &mapped_header, &schema, input.ignore_unknown_columns).map_err(|source| {
            // A title line above the table looks like a one-column header.
            if header.iter().filter(|h| !h.trim().is_empty()).count() == 1
                && input.header_row.is_none()
                && matches!(source, map::MapError::UnknownColumns(..))
            {
                return Error::Usage(format!(
                    "{file_label}: the first row ('{}') does not look like a header; if the header is further down, pass --header-row N",
                    header.iter().find(|h| !h.trim().is_empty()).map(String::as_str).unwrap_or("")
                ));
            }
            Error::Map {
                file: file_label.clone(),
                source,
            }
        })?;
        if let Some((c, _)) = &compiled {
            mapping.notes.extend(c.notes.iter().cloned());
        }
        Ok(Intake {
            source: Some(source),
            header,
            compiled,
            mapping,
            schema,
            rules: CellRules {
                date_format: input.date_format.clone(),
            },
            op: match input.op {
                Op::Create => ProfileOperation::Create,
                Op::Update => ProfileOperation::Update,
                Op::Upsert => ProfileOperation::Upsert,
            },
            seen: KeyCheck::Table(SeenKeys::with_capacity(source_rows)),
            source_rows,
            kind,
            respelled: Default::default(),
            file_label,
        })
    }

    /// Progress units of the input: (done, total).
    pub fn progress(&self) -> (u64, u64) {
        self.source.as_ref().map(Source::progress).unwrap_or((0, 0))
    }

    /// What the reader detected on opening the input (blank lines are counted as it reads).
    pub fn dialect(&self) -> Option<crate::read::Dialect> {
        self.source.as_ref().map(Source::dialect)
    }

    /// For a validation: duplicate keys are spilled to temporary files and found after the
    /// pass (`duplicates`), so memory does not grow with the file. Their rows pass as valid
    /// until then.
    pub fn defer_duplicates(&mut self) -> Result<(), Error> {
        let spill = KeySpill::new(self.source_rows).map_err(spill_error)?;
        self.seen = KeyCheck::Spill(spill);
        Ok(())
    }

    /// After a pass with `defer_duplicates`: every later row whose key an earlier valid row
    /// had, as (row, first row), by row.
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
        Background::spawn(self.source.take().expect("the input is read once"))
    }

    /// Like `plan_row` for a batch of rows, without building batch items: one outcome per row,
    /// valid rows `Pending`. This is what `validate` runs, reading cells in place, at no
    /// allocation per valid row; duplicates are looked up for the whole batch at once, so the
    /// table's cache misses overlap.
    pub fn check_batch(&mut self, batch: &RowBatch) -> Vec<Outcome> {
        if self.kind != RecordKind::Customers {
            return batch
                .iter()
                .map(|r| self.plan_row(r.to_raw()).0.outcome)
                .collect();
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        // (index in the batch, row, email as shown)
        let mut keys: Vec<(usize, u64, std::borrow::Cow<'_, str>)> =
            Vec::with_capacity(batch.len());
        let email_col = self
            .mapping
            .targets
            .iter()
            .position(|t| *t == map::Target::Email)
            .unwrap_or(usize::MAX);
        for (i, row) in batch.iter().enumerate() {
            if let Some(early) = pre_check(row.problem(), || row.is_blank()) {
                outcomes.push(early);
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
            let checked = match &self.compiled {
                Some((c, mapped_header)) => {
                    let mapped = c.apply(&row);
                    map::check_customer(
                        &self.mapping,
                        mapped_header,
                        &self.schema,
                        &mapped,
                        &self.rules,
                        &mut note,
                    )
                    .map(|e| std::borrow::Cow::Owned(e.to_string()))
                }
                None => map::check_customer(
                    &self.mapping,
                    &self.header,
                    &self.schema,
                    &row,
                    &self.rules,
                    &mut note,
                )
                // The same cell, borrowed from the batch rather than from `row`.
                .map(|_| {
                    std::borrow::Cow::Borrowed(crate::validate::trim(
                        crate::read::unescape_formula(row.get(email_col).unwrap_or("")),
                    ))
                }),
            };
            match checked {
                Err(errors) => outcomes.push(cell_errors(errors)),
                Ok(email) => {
                    keys.push((i, row.row(), email));
                    outcomes.push(Outcome::Pending);
                }
            }
        }
        let lookups: Vec<(std::borrow::Cow<'_, str>, u64)> = keys
            .iter()
            .map(|(_, row, email)| (email_key(email), *row))
            .collect();
        let firsts = self.seen.check_many(&lookups);
        for ((i, _, email), first) in keys.iter().zip(firsts) {
            if let Some(first) = first {
                outcomes[*i] = duplicate_outcome(first, email, map::COL_EMAIL, "a customer");
            }
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

    /// Decides one row: a read problem, a blank row, invalid cells, a duplicate, or a batch item.
    pub fn plan_row(&mut self, raw: RawRow) -> (PlannedRow, Option<BulkItem>) {
        if let Some(early) = pre_check(raw.problem.as_deref(), || raw.is_blank()) {
            return (
                PlannedRow {
                    raw,
                    outcome: early,
                },
                None,
            );
        }
        let (header, cells) = view(&self.compiled, &self.header, &raw);
        // The item, and how a later duplicate of this row is recognised and named.
        let built = match self.kind {
            RecordKind::Customers | RecordKind::CustomerAccounts => map::customer_item(
                &self.mapping,
                header,
                &self.schema,
                &cells,
                self.op,
                &self.rules,
            )
            .map(|(item, names)| {
                let dup = match (&item.payload.email, &item.payload.customer_id) {
                    (Some(email), _) => (email.to_lowercase(), email.clone(), map::COL_EMAIL),
                    (None, id) => {
                        let id = id.clone().unwrap_or_default();
                        (format!("id:{id}"), id, map::COL_ID)
                    }
                };
                let (key, shown, field) = dup;
                (
                    (key, shown, field, "a customer"),
                    BulkItem::Customer(item, names),
                )
            }),
            RecordKind::Organizations | RecordKind::OrganizationAccounts => map::organization_item(
                &self.mapping,
                header,
                &self.schema,
                &cells,
                self.op,
                &self.rules,
            )
            .map(|(item, key)| {
                let p = &item.payload;
                let shown = p.name.clone().or(p.id.clone()).unwrap_or_default();
                let field = if p.name.is_some() {
                    map::COL_NAME
                } else {
                    map::COL_ID
                };
                (
                    (key, shown, field, "an organization"),
                    BulkItem::Organization(item),
                )
            }),
        };
        match built {
            Err(errors) => (
                PlannedRow {
                    raw,
                    outcome: cell_errors(errors),
                },
                None,
            ),
            Ok(((key, shown, field, noun), item)) => {
                if let Some(outcome) = self.duplicate_key(&key, &shown, field, noun, raw.row) {
                    return (PlannedRow { raw, outcome }, None);
                }
                (
                    PlannedRow {
                        raw,
                        outcome: Outcome::Pending,
                    },
                    Some(item),
                )
            }
        }
    }
}

/// A row's cells as `map` sees them: the input's own, or those a mapping file made of them.
enum RowCells<'a> {
    Raw(&'a csv::StringRecord),
    Mapped(Vec<String>),
}

impl Cells for RowCells<'_> {
    fn cell(&self, i: usize) -> &str {
        match self {
            RowCells::Raw(r) => r.cell(i),
            RowCells::Mapped(v) => v.cell(i),
        }
    }
}

/// The header and cells `map` reads for a row.
fn view<'a>(
    compiled: &'a Option<(Compiled, Vec<String>)>,
    header: &'a [String],
    raw: &'a RawRow,
) -> (&'a [String], RowCells<'a>) {
    match compiled {
        Some((c, mapped_header)) => (mapped_header, RowCells::Mapped(c.apply(&raw.cells))),
        None => (header, RowCells::Raw(&raw.cells)),
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

/// The map stage's view of the command-line kind.
pub fn record_kind(kind: Kind) -> RecordKind {
    match kind {
        Kind::Customers => RecordKind::Customers,
        Kind::Organizations => RecordKind::Organizations,
        Kind::CustomerAccounts => RecordKind::CustomerAccounts,
        Kind::OrganizationAccounts => RecordKind::OrganizationAccounts,
        // Never mapped row by row (`cmd::fields` reads its own columns); closest shape.
        _ => RecordKind::OrganizationAccounts,
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

/// A format that reads no date at all is a usage error, caught before any row is read.
fn check_date_format(fmt: &str) -> Result<(), Error> {
    let has_day = fmt.contains("%d") || fmt.contains("%e") || fmt.contains("%j");
    let has_month = ["%m", "%b", "%B", "%h"].iter().any(|m| fmt.contains(m));
    let has_year = fmt.contains("%Y") || fmt.contains("%y");
    if !(has_day && has_month && has_year) {
        return Err(Error::Usage(format!(
            "--date-format '{fmt}' must name a day, a month and a year (e.g. %d/%m/%Y or %m/%d/%Y)"
        )));
    }
    Ok(())
}
