//! `csmport import detail-fields FILE`: creates detail-field definitions (columns `entity`,
//! `name`, `type`, `options`) on the site. Existing fields with the same definition are a no-op;
//! a clash (another type, other options) is a row error, never a change to the site's field.
//! New customer and organization fields go through `{entity}/details/definitions/bulk` (50 per
//! task, all or nothing), entitlement fields through `entitlement/details` one by one. Reads
//! with `read`, writes the run folder with `report`; called by `cmd::import`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::model::{
    CreateDetailField, DetailDefinitionsBulkRequest, DetailFieldType,
    DetailFieldsWithConfiguration, TaskStatus, TaskStatusResponse, TaskSubmitResponse,
};
use crate::api::{self, MAX_DEFINITIONS_BULK, MAX_DETAIL_FIELDS, MAX_FIELD_OPTIONS, paths};
use crate::cli::ImportArgs;
use crate::client::{Client, Notify, Target, retry};
use crate::error::{EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, Error};
use crate::intake::read_options;
use crate::map::normalize;
use crate::plan::{Outcome, PlannedRow, Stage, uuid_key};
use crate::progress::RunLog;
use crate::read::{Cells, RawRow, Source};
use crate::report::{self, ReportWriter, Summary};
use crate::track::{self, PollPolicy};

use super::import::{ImportResult, run_dir};

/// The types the API knows (CONTRACT §5.2).
const TYPES: [&str; 8] = [
    "TEXT",
    "SELECT",
    "MULTISELECT",
    "DATE",
    "NUMBER",
    "EMAIL",
    "PHONE",
    "URL",
];

/// The entities that have detail fields, as the `entity` column names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    Customer,
    Organization,
    Entitlement,
}

impl Entity {
    fn parse(s: &str) -> Option<Entity> {
        match normalize(s).trim_end_matches('s') {
            "customer" => Some(Entity::Customer),
            "organization" | "organisation" => Some(Entity::Organization),
            "entitlement" => Some(Entity::Entitlement),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Entity::Customer => "customer",
            Entity::Organization => "organization",
            Entity::Entitlement => "entitlement",
        }
    }

    fn list_path(self) -> String {
        format!("{}/details", self.as_str())
    }
}

/// One valid row: the definition to have on the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub entity: Entity,
    pub name: String,
    pub kind: String,
    pub options: Vec<String>,
}

/// Where each column of the file goes.
struct Columns {
    entity: Option<usize>,
    name: usize,
    kind: usize,
    options: Option<usize>,
}

fn columns(header: &[String], file: &str, ignore_unknown: bool) -> Result<Columns, Error> {
    let find = |n: &str| header.iter().position(|h| normalize(h) == n);
    for (i, h) in header.iter().enumerate() {
        let k = normalize(h);
        let known = ["entity", "name", "type", "options"].contains(&k.as_str());
        if !known && !k.is_empty() && !k.starts_with('_') && !ignore_unknown {
            return Err(Error::Usage(format!(
                "{file}: unknown column '{h}' (column {}): a detail-fields file has the columns entity, name, type, options",
                i + 1
            )));
        }
    }
    let need = |n: &str| {
        find(n).ok_or_else(|| {
            Error::Usage(format!(
                "{file}: no '{n}' column: a detail-fields file has the columns entity, name, type, options (header has: {})",
                header.join(", ")
            ))
        })
    };
    Ok(Columns {
        entity: find("entity"),
        name: need("name")?,
        kind: need("type")?,
        options: find("options"),
    })
}

/// Checks one row's cells; the definition, or (column, reason).
pub fn check_row(
    entity: Option<&str>,
    name: &str,
    kind: &str,
    options: &str,
) -> Result<Wanted, (&'static str, String)> {
    let entity = match entity.map(str::trim) {
        None | Some("") => Entity::Customer,
        Some(e) => Entity::parse(e).ok_or_else(|| {
            (
                "entity",
                format!("'{e}' is not an entity with detail fields (customer, organization, entitlement)"),
            )
        })?,
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(("name", "name is empty".into()));
    }
    if name.chars().count() > 255 {
        return Err(("name", "a field name is at most 255 characters".into()));
    }
    let k = normalize(kind).replace(['-', '_'], "").to_uppercase();
    let k = match k.as_str() {
        "SINGLESELECT" | "DROPDOWN" => "SELECT".to_string(),
        "MULTISELECTDROPDOWN" => "MULTISELECT".to_string(),
        "PHONENUMBER" => "PHONE".to_string(),
        _ => k,
    };
    if !TYPES.contains(&k.as_str()) {
        return Err((
            "type",
            format!(
                "'{}' is not a detail-field type (one of {})",
                kind.trim(),
                TYPES.join(", ")
            ),
        ));
    }
    let mut opts: Vec<String> = Vec::new();
    for o in options.split(api::MULTI_VALUE_SEPARATOR).map(str::trim) {
        if !o.is_empty() && !opts.iter().any(|x| x.eq_ignore_ascii_case(o)) {
            opts.push(o.to_string());
        }
    }
    let select = k == "SELECT" || k == "MULTISELECT";
    if select && opts.is_empty() {
        return Err((
            "options",
            format!("a {k} field needs options, separated by ';' (e.g. Gold;Silver)"),
        ));
    }
    if select && opts.len() > MAX_FIELD_OPTIONS {
        return Err((
            "options",
            format!(
                "{} options; a field has at most {MAX_FIELD_OPTIONS}",
                opts.len()
            ),
        ));
    }
    if !select && !opts.is_empty() {
        return Err((
            "options",
            format!("a {k} field takes no options (only SELECT and MULTISELECT do)"),
        ));
    }
    Ok(Wanted {
        entity,
        name: name.to_string(),
        kind: k,
        options: opts,
    })
}

/// What to do with a wanted field, given the site's field of that name (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create,
    Unchanged,
    Clash(String),
}

pub fn decide(w: &Wanted, existing: Option<&DetailFieldType>) -> Decision {
    let Some(e) = existing else {
        return Decision::Create;
    };
    if !e.name.eq_ignore_ascii_case(&w.kind) {
        return Decision::Clash(format!(
            "the site already has the {} field '{}', of type {}; a field's type cannot be changed (use another name)",
            w.entity.as_str(),
            w.name,
            e.name
        ));
    }
    let site: Vec<&str> = e.options.iter().flatten().map(String::as_str).collect();
    let missing: Vec<&str> = w
        .options
        .iter()
        .map(String::as_str)
        .filter(|o| !site.iter().any(|s| s.eq_ignore_ascii_case(o)))
        .collect();
    let extra: Vec<&str> = site
        .iter()
        .copied()
        .filter(|s| !w.options.iter().any(|o| o.eq_ignore_ascii_case(s)))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Decision::Unchanged;
    }
    let mut why = format!(
        "the site's {} field '{}' has other options",
        w.entity.as_str(),
        w.name
    );
    if !missing.is_empty() {
        why.push_str(&format!("; not on the site: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        why.push_str(&format!("; only on the site: {}", extra.join(", ")));
    }
    why.push_str(" (options of an existing field are edited on the site)");
    Decision::Clash(why)
}

pub async fn run(args: &ImportArgs, target: &Target) -> Result<ImportResult, Error> {
    let input = &args.input;
    let [file] = input.files.as_slice() else {
        return Err(Error::Usage(
            "import takes one file per run for now; run one import per file".into(),
        ));
    };
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let label = file.display().to_string();
    let (header, raws, dialect, read_error) = read_all(file, input)?;
    let cols = columns(&header, &label, input.ignore_unknown_columns)?;
    let dir = run_dir(input.out.as_deref(), "detail-fields", started_at)?;
    let log = Arc::new(RunLog::create(&dir.join("run.log")).map_err(|source| {
        Error::Report(report::ReportError {
            path: dir.join("run.log"),
            source,
        })
    })?);
    log.note(&format!(
        "import detail-fields from {label} into {} (cloud {})",
        target.base_url, target.cloud_id
    ));
    let policy = retry::Policy {
        max_attempts: args.retries.saturating_add(1),
        ..retry::Policy::default()
    };
    let notify: Arc<dyn Notify> = log.clone();
    let client = Client::new(target, args.rate, policy, notify);
    let poll = PollPolicy {
        timeout: Duration::from_secs(args.task_timeout.max(1)),
        ..PollPolicy::default()
    };

    // Decide every row that can be decided without the site.
    let mut rows: Vec<PlannedRow> = Vec::with_capacity(raws.len());
    let mut wanted: Vec<Option<Wanted>> = Vec::with_capacity(raws.len());
    let mut seen: HashMap<(Entity, String), u64> = HashMap::new();
    for raw in raws {
        let (outcome, w) = plan_row(&raw, &cols, &header, &mut seen);
        wanted.push(w);
        rows.push(PlannedRow { raw, outcome });
    }

    // The site's fields, for each entity the file names.
    let mut entities: Vec<Entity> = wanted.iter().flatten().map(|w| w.entity).collect();
    entities.sort();
    entities.dedup();
    let mut site: HashMap<Entity, Vec<(String, DetailFieldType)>> = HashMap::new();
    for e in &entities {
        let defs: DetailFieldsWithConfiguration = client
            .get_json(&e.list_path())
            .await
            .map_err(Error::from_setup)?;
        site.insert(
            *e,
            defs.results
                .into_iter()
                .map(|d| (d.name, d.field_type))
                .collect(),
        );
    }

    // Existing fields: unchanged or a clash; new ones wait for their entity's requests.
    let mut create: HashMap<Entity, Vec<usize>> = HashMap::new();
    let mut unchanged = 0u64;
    for (i, w) in wanted.iter().enumerate() {
        let Some(w) = w else { continue };
        let fields = site.get(&w.entity).map(Vec::as_slice).unwrap_or(&[]);
        let existing = fields
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(&w.name))
            .map(|(_, t)| t);
        match decide(w, existing) {
            Decision::Unchanged => {
                unchanged += 1;
                rows[i].outcome = Outcome::Succeeded { id: None };
            }
            Decision::Clash(why) => {
                rows[i].outcome = Outcome::Failed {
                    stage: Stage::Validate,
                    field: "name".into(),
                    error: why,
                }
            }
            Decision::Create => {
                let queued = create.entry(w.entity).or_default();
                if fields.len() + queued.len() >= MAX_DETAIL_FIELDS {
                    rows[i].outcome = Outcome::Failed {
                        stage: Stage::Validate,
                        field: "name".into(),
                        error: format!(
                            "the site would have more than {MAX_DETAIL_FIELDS} {} detail fields (the API's limit)",
                            w.entity.as_str()
                        ),
                    };
                } else {
                    queued.push(i);
                }
            }
        }
    }

    let mut batches = 0u64;
    let mut tasks = 0u64;
    for e in &entities {
        let Some(idx) = create.get(e) else { continue };
        if *e == Entity::Entitlement {
            // No bulk endpoint for entitlement fields: one request each.
            for &i in idx {
                let w = wanted[i].as_ref().expect("queued rows are valid");
                batches += 1;
                let body = definition(w);
                rows[i].outcome = match client
                    .post_json::<_, serde_json::Value>(paths::ENTITLEMENT_DETAILS, &body, None)
                    .await
                {
                    Ok(_) => Outcome::Succeeded { id: None },
                    Err(err) => Outcome::Failed {
                        stage: Stage::Send,
                        field: "name".into(),
                        error: format!("not created: {err}"),
                    },
                };
            }
            continue;
        }
        for group in idx.chunks(MAX_DEFINITIONS_BULK) {
            batches += 1;
            let fields: Vec<CreateDetailField> = group
                .iter()
                .map(|&i| definition(wanted[i].as_ref().expect("queued rows are valid")))
                .collect();
            let result = create_fields(&client, &poll, &*log, *e, fields).await;
            if result.is_ok() || matches!(result, Err((true, _))) {
                tasks += 1;
            }
            for &i in group {
                rows[i].outcome = match &result {
                    Ok(()) => Outcome::Succeeded { id: None },
                    Err((_, why)) => Outcome::Failed {
                        stage: Stage::Task,
                        field: "name".into(),
                        error: why.clone(),
                    },
                };
            }
        }
    }

    let mut writer = ReportWriter::create(&dir, &header)?;
    for row in &rows {
        writer.write(row, &dir)?;
    }
    let counts = writer.finish(&dir)?;
    let exit_code = if read_error.is_some() {
        EXIT_USAGE
    } else if counts.failed > 0 {
        EXIT_ROWS_FAILED
    } else {
        EXIT_OK
    };
    log.note(&format!(
        "done: {} rows = {} succeeded ({unchanged} already on the site as defined) + {} failed + {} skipped; exit {exit_code}",
        counts.rows, counts.succeeded, counts.failed, counts.skipped
    ));
    let elapsed = started.elapsed().as_secs_f64();
    let summary = Summary {
        kind: "detail-fields".into(),
        input: label,
        run_dir: dir.display().to_string(),
        target: format!("{} (cloud {})", target.base_url, target.cloud_id),
        started_at: started_at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        finished_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        rows_per_s: if elapsed > 0.0 {
            (counts.rows as f64 / elapsed * 10.0).round() / 10.0
        } else {
            0.0
        },
        unchanged: Some(unchanged),
        counts,
        batches,
        tasks,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        interrupted: false,
        exit_code,
        dialect: Some(dialect),
    };
    report::write_summary(&dir, &summary)?;
    Ok(ImportResult {
        exit_code,
        summary,
        read_error,
        auth_error: None,
    })
}

/// A definition file is small: all rows are read first, so each is decided against the site.
fn read_all(
    file: &Path,
    input: &crate::cli::InputArgs,
) -> Result<
    (
        Vec<String>,
        Vec<RawRow>,
        crate::read::Dialect,
        Option<String>,
    ),
    Error,
> {
    let mut source = Source::open(file, &read_options(input))?;
    let header = source.header().to_vec();
    let mut rows = Vec::new();
    let mut read_error = None;
    while let Some(r) = source.next_row() {
        match r {
            Ok(raw) => rows.push(raw),
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
    }
    Ok((header, rows, source.dialect(), read_error))
}

fn plan_row(
    raw: &RawRow,
    cols: &Columns,
    header: &[String],
    seen: &mut HashMap<(Entity, String), u64>,
) -> (Outcome, Option<Wanted>) {
    if let Some(p) = &raw.problem {
        let outcome = Outcome::Failed {
            stage: Stage::Read,
            field: String::new(),
            error: p.clone(),
        };
        return (outcome, None);
    }
    if raw.is_blank() {
        let outcome = Outcome::Skipped {
            reason: "blank row".into(),
        };
        return (outcome, None);
    }
    let cell = |i: Option<usize>| i.map(|i| raw.cells.cell(i));
    let checked = check_row(
        cell(cols.entity),
        raw.cells.cell(cols.name),
        raw.cells.cell(cols.kind),
        cell(cols.options).unwrap_or(""),
    );
    let w = match checked {
        Ok(w) => w,
        Err((col, why)) => {
            let field = match col {
                "entity" => cols.entity,
                "type" => Some(cols.kind),
                "options" => cols.options,
                _ => Some(cols.name),
            }
            .and_then(|i| header.get(i).cloned())
            .unwrap_or_else(|| col.to_string());
            let outcome = Outcome::Failed {
                stage: Stage::Validate,
                field: field.clone(),
                error: format!("{field}: {why}"),
            };
            return (outcome, None);
        }
    };
    let key = (w.entity, w.name.to_lowercase());
    if let Some(first) = seen.get(&key) {
        let outcome = Outcome::Failed {
            stage: Stage::Validate,
            field: header.get(cols.name).cloned().unwrap_or_default(),
            error: format!(
                "duplicate: the {} field '{}' is already in row {first} of this file",
                w.entity.as_str(),
                w.name
            ),
        };
        return (outcome, None);
    }
    seen.insert(key, raw.row);
    (Outcome::Pending, Some(w))
}

fn definition(w: &Wanted) -> CreateDetailField {
    CreateDetailField {
        name: w.name.clone(),
        field_type: DetailFieldType {
            name: w.kind.clone(),
            options: (!w.options.is_empty()).then(|| w.options.clone()),
        },
    }
}

/// One definitions task, waited for. Err((task was created, why)).
async fn create_fields(
    client: &Client,
    poll: &PollPolicy,
    log: &dyn Notify,
    entity: Entity,
    fields: Vec<CreateDetailField>,
) -> Result<(), (bool, String)> {
    let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
    let key = uuid_key();
    let path = format!("{}/details/definitions/bulk", entity.as_str());
    let body = DetailDefinitionsBulkRequest {
        detail_fields: fields,
    };
    let submitted: TaskSubmitResponse = client
        .post_json(&path, &body, Some(&key))
        .await
        .map_err(|e| (false, format!("not created: the request was refused: {e}")))?;
    log.note(&format!(
        "creating {} {} fields ({}): task {} with key {key}",
        names.len(),
        entity.as_str(),
        names.join(", "),
        submitted.id
    ));
    let status_path = api::status_url_to_path(&submitted.status_url)
        .unwrap_or_else(|| paths::task(&submitted.id));
    let status = track::until_terminal(poll, || async {
        client.get_json::<TaskStatusResponse>(&status_path).await
    })
    .await
    .map_err(|e| match e {
        track::TrackError::TimedOut { .. } => (
            true,
            format!(
                "outcome unknown: task {} did not finish; check the site's fields before retrying",
                submitted.id
            ),
        ),
        track::TrackError::Fetch(e) => (
            true,
            format!(
                "outcome unknown: task {} could not be followed: {e}",
                submitted.id
            ),
        ),
    })?;
    if status.status == TaskStatus::Finished && status.failures.is_empty() {
        return Ok(());
    }
    let why = status
        .failures
        .iter()
        .map(|f| f.error.clone())
        .collect::<Vec<_>>()
        .join(" | ");
    Err((
        true,
        format!(
            "not created: task {} ended {} (all fields of one request are created together or not at all){}",
            submitted.id,
            status.status.as_str(),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_before_the_site_is_asked() {
        let ok = check_row(
            Some("Organizations"),
            " Tier ",
            "single-select",
            "Gold; Silver;gold",
        )
        .unwrap();
        assert_eq!(
            ok,
            Wanted {
                entity: Entity::Organization,
                name: "Tier".into(),
                kind: "SELECT".into(),
                options: vec!["Gold".into(), "Silver".into()],
            }
        );
        assert_eq!(
            check_row(None, "Notes", "text", "").unwrap().entity,
            Entity::Customer
        );
        let cases = [
            (Some("ticket"), "X", "TEXT", "", "entity"),
            (None, " ", "TEXT", "", "name"),
            (None, "X", "colour", "", "type"),
            (None, "X", "MULTISELECT", "", "options"),
            (None, "X", "DATE", "a;b", "options"),
        ];
        for (e, n, t, o, col) in cases {
            assert_eq!(check_row(e, n, t, o).unwrap_err().0, col, "{n} {t} {o}");
        }
    }

    #[test]
    fn existing_fields_are_kept_or_named_as_clashes() {
        let w = check_row(None, "Tier", "SELECT", "Gold;Silver").unwrap();
        let site = |t: &str, o: Option<&[&str]>| DetailFieldType {
            name: t.into(),
            options: o.map(|o| o.iter().map(|s| s.to_string()).collect()),
        };
        assert_eq!(decide(&w, None), Decision::Create);
        assert_eq!(
            decide(&w, Some(&site("SELECT", Some(&["silver", "Gold"])))),
            Decision::Unchanged
        );
        let Decision::Clash(why) = decide(&w, Some(&site("TEXT", None))) else {
            panic!()
        };
        assert!(why.contains("of type TEXT"), "{why}");
        let Decision::Clash(why) = decide(&w, Some(&site("SELECT", Some(&["Gold", "Bronze"]))))
        else {
            panic!()
        };
        assert!(
            why.contains("not on the site: Silver") && why.contains("only on the site: Bronze"),
            "{why}"
        );
    }
}
