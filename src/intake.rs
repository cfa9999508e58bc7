//! Intake: the front half of the pipeline that `import` and `validate` share — open the input
//! (`read`), get the detail-field schema (the site, or `--schema FILE`), map the header (`map`)
//! and decide each row (read problem, blank, invalid, duplicate, or a batch item for `plan`).

use std::path::Path;

use crate::api::model::{CustomerProfileItem, DetailFieldsWithConfiguration, ProfileOperation};
use crate::api::paths;
use crate::cli::{InputArgs, Op};
use crate::client::Client;
use crate::error::Error;
use crate::map::{self, Mapping};
use crate::mapfile::{self, Compiled};
use crate::plan::{Outcome, PlannedRow, SeenKeys, Stage};
use crate::read::{RawRow, ReadOptions, Source};
use crate::schema::Schema;
use crate::validate::CellRules;

pub struct Intake {
    pub source: Source,
    /// The input's own header (the reports keep it).
    pub header: Vec<String>,
    /// With a mapping file: the rules, and the header `map` sees.
    compiled: Option<(Compiled, Vec<String>)>,
    pub mapping: Mapping,
    pub schema: Schema,
    pub rules: CellRules,
    pub op: ProfileOperation,
    pub file_label: String,
    seen: SeenKeys,
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
    let defs: DetailFieldsWithConfiguration = client
        .get_json(paths::CUSTOMER_DETAILS)
        .await
        .map_err(Error::from_setup)?;
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
    pub fn open(input: &InputArgs, schema: Schema) -> Result<Intake, Error> {
        if let Some(fmt) = &input.date_format {
            check_date_format(fmt)?;
        }
        let source = Source::open(&input.file, &read_options(input))?;
        let file_label = input.file.display().to_string();
        let header = source.header().to_vec();
        let compiled = match &input.mapping {
            None => None,
            Some(path) => {
                let m = mapfile::load(path).map_err(|e| Error::Usage(format!("--mapping {e}")))?;
                let c = m
                    .compile(input.kind.as_str(), &header, &schema)
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
        let mut mapping = map::map_header(&mapped_header, &schema, input.ignore_unknown_columns).map_err(|source| {
            // A title line above the table looks like a one-column header.
            if header.iter().filter(|h| !h.trim().is_empty()).count() == 1
                && input.header_row.is_none()
                && matches!(source, map::MapError::UnknownColumns(_) | map::MapError::MissingEmail(_))
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
            source,
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
            file_label,
            seen: SeenKeys::default(),
        })
    }

    /// Decides one row: a read problem, a blank row, invalid cells, a duplicate, or a batch item.
    pub fn plan_row(&mut self, raw: RawRow) -> (PlannedRow, Option<CustomerProfileItem>) {
        let failed = |raw: RawRow, stage: Stage, field: String, error: String| PlannedRow {
            raw,
            outcome: Outcome::Failed {
                stage,
                field,
                error,
            },
        };
        if let Some(problem) = raw.problem.clone() {
            return (failed(raw, Stage::Read, String::new(), problem), None);
        }
        if raw.is_blank() {
            let outcome = Outcome::Skipped {
                reason: "blank row".into(),
            };
            return (PlannedRow { raw, outcome }, None);
        }
        let item = match &self.compiled {
            Some((c, mapped_header)) => {
                let cells = c.apply(&raw.cells);
                map::customer_item(
                    &self.mapping,
                    mapped_header,
                    &self.schema,
                    &cells,
                    self.op,
                    &self.rules,
                )
            }
            None => map::customer_item(
                &self.mapping,
                &self.header,
                &self.schema,
                &raw.cells,
                self.op,
                &self.rules,
            ),
        };
        match item {
            Err(errors) => {
                let field = errors
                    .iter()
                    .map(|e| e.field.as_str())
                    .collect::<Vec<_>>()
                    .join(";");
                let error = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join(" | ");
                (failed(raw, Stage::Validate, field, error), None)
            }
            Ok(item) => {
                let email = item.payload.email.clone().unwrap_or_default();
                if let Some(first) = self.seen.check(&email.to_lowercase(), raw.row) {
                    let msg = format!(
                        "duplicate: '{email}' is already in row {first} of this file; only the first row for a customer is sent (merge the rows)"
                    );
                    return (
                        failed(raw, Stage::Validate, map::COL_EMAIL.into(), msg),
                        None,
                    );
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
