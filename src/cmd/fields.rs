//! `csmport import detail-fields FILE`: creates detail-field definitions (columns `entity`,
//! `name`, `type`, `options`) on the site. Existing fields with the same definition are a no-op;
//! a clash (another type, other options) is a row error, never a change to the site's field.
//! New customer and organization fields go through `{entity}/details/definitions/bulk` (50 per
//! task, all or nothing), entitlement fields through `entitlement/details` one by one. Reads
//! with `read`, writes the run folder with `report`; called by `cmd::import`.

use std::collections::HashMap;

use crate::cli::ImportArgs;
use crate::engine::plan::{Stage, uuid_key};
use crate::engine::track::{self, PollPolicy};
use crate::error::Error;
use crate::map::normalize;
use crate::read::Cells;
use crate::site::api::model::{
    CreateDetailField, DetailDefinitionsBulkRequest, DetailFieldType,
    DetailFieldsWithConfiguration, TaskStatus, TaskStatusResponse, TaskSubmitResponse,
};
use crate::site::api::{self, MAX_DEFINITIONS_BULK, MAX_DETAIL_FIELDS, MAX_FIELD_OPTIONS, paths};
use crate::site::client::{Client, Notify, Target};

use super::import::ImportResult;
use super::small::{SmallRun, find_columns};

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

/// The columns of a definitions file, in this order.
const COLUMNS: [&str; 4] = ["entity", "name", "type", "options"];

pub async fn run(args: &ImportArgs, target: &Target) -> Result<ImportResult, Error> {
    let mut run = SmallRun::start("detail-fields", args, target)?;
    let cols = find_columns(
        &run.header,
        &run.label,
        "detail-fields",
        &COLUMNS,
        &["name", "type"],
        args.input.ignore_unknown_columns,
    )?;
    let live = run.precheck();

    // Decide every row that can be decided without the site.
    let mut wanted: Vec<Option<Wanted>> = vec![None; run.rows.len()];
    let mut seen: HashMap<(Entity, String), u64> = HashMap::new();
    for i in (0..run.rows.len()).filter(|&i| live[i]) {
        let raw = &run.rows[i].raw;
        let cell = |c: Option<usize>| c.map(|c| raw.cells.cell(c));
        let checked = check_row(
            cell(cols[0]),
            cell(cols[1]).unwrap_or(""),
            cell(cols[2]).unwrap_or(""),
            cell(cols[3]).unwrap_or(""),
        );
        let column = |name: &str| {
            COLUMNS
                .iter()
                .position(|c| *c == name)
                .and_then(|k| cols[k])
                .and_then(|c| run.header.get(c).cloned())
                .unwrap_or_else(|| name.to_string())
        };
        match checked {
            Err((col, why)) => {
                let field = column(col);
                let error = format!("{field}: {why}");
                run.fail(i, Stage::Validate, &field, error);
            }
            Ok(w) => {
                let key = (w.entity, w.name.to_lowercase());
                if let Some(first) = seen.get(&key) {
                    let error = format!(
                        "duplicate: the {} field '{}' is already in row {first} of this file",
                        w.entity.as_str(),
                        w.name
                    );
                    run.fail(i, Stage::Validate, &column("name"), error);
                } else {
                    seen.insert(key, run.rows[i].raw.row);
                    wanted[i] = Some(w);
                }
            }
        }
    }

    // The site's fields, for each entity the file names.
    let mut entities: Vec<Entity> = wanted.iter().flatten().map(|w| w.entity).collect();
    entities.sort();
    entities.dedup();
    let mut site: HashMap<Entity, Vec<(String, DetailFieldType)>> = HashMap::new();
    for e in &entities {
        let defs: DetailFieldsWithConfiguration = run
            .client
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
    for (i, w) in wanted.iter().enumerate() {
        let Some(w) = w else { continue };
        let fields = site.get(&w.entity).map(Vec::as_slice).unwrap_or(&[]);
        let existing = fields
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(&w.name))
            .map(|(_, t)| t);
        match decide(w, existing) {
            Decision::Unchanged => {
                run.unchanged += 1;
                run.succeed(i, None);
            }
            Decision::Clash(why) => run.fail(i, Stage::Validate, "name", why),
            Decision::Create => {
                let queued = create.entry(w.entity).or_default();
                if fields.len() + queued.len() >= MAX_DETAIL_FIELDS {
                    let error = format!(
                        "the site would have more than {MAX_DETAIL_FIELDS} {} detail fields (the API's limit)",
                        w.entity.as_str()
                    );
                    run.fail(i, Stage::Validate, "name", error);
                } else {
                    queued.push(i);
                }
            }
        }
    }

    if run.dry_run {
        return run.finish();
    }
    for e in &entities {
        let Some(idx) = create.get(e) else { continue };
        if *e == Entity::Entitlement {
            // No bulk endpoint for entitlement fields: one request each.
            for &i in idx {
                let w = wanted[i].as_ref().expect("queued rows are valid");
                run.batches += 1;
                let body = definition(w);
                match run
                    .client
                    .post_json::<_, serde_json::Value>(paths::ENTITLEMENT_DETAILS, &body, None)
                    .await
                {
                    Ok(_) => run.succeed(i, None),
                    Err(err) => run.fail(i, Stage::Send, "name", format!("not created: {err}")),
                }
            }
            continue;
        }
        for group in idx.chunks(MAX_DEFINITIONS_BULK) {
            run.batches += 1;
            let fields: Vec<CreateDetailField> = group
                .iter()
                .map(|&i| definition(wanted[i].as_ref().expect("queued rows are valid")))
                .collect();
            let result = create_fields(&run.client, &run.poll, &*run.log, *e, fields).await;
            if result.is_ok() || matches!(result, Err((true, _))) {
                run.tasks += 1;
            }
            for &i in group {
                match &result {
                    Ok(()) => run.succeed(i, None),
                    Err((_, why)) => run.fail(i, Stage::Task, "name", why.clone()),
                }
            }
        }
    }
    run.finish()
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
