//! Detail-field definitions (columns `entity`, `name`, `type`, `options`). A field already on
//! the site with the same definition is left alone; a clash (another type, other options) is a
//! row error, never a change to the site's field. New customer and organization fields go
//! through `{entity}/details/definitions/bulk` (50 a task, all or nothing: a refused request
//! is split to find the rows it refuses), entitlement fields through `POST entitlement/details`
//! one by one. The kind description for `engine`.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kind::Kind;
use crate::map::{CellError, normalize};
use crate::read::{Cells, RawRow};
use crate::row::{Found, match_key};
use crate::site::api::model::{
    CreateDetailField, DetailDefinitionsBulkRequest, DetailFieldType,
    DetailFieldsWithConfiguration, EditDetailField,
};
use crate::site::api::{
    self, FIELD_TYPES, MAX_DEFINITIONS_BULK, MAX_DETAIL_FIELDS, MAX_FIELD_OPTIONS, paths,
};
use crate::site::client::{ApiError, Client};

use super::columns::find_columns;
use super::deletes;
use super::{Cx, Description, Identity, Method, Request, Setup};

pub use crate::site::api::Entity;

/// The entity an `entity` cell names (plural and British spelling allowed).
fn parse_entity(s: &str) -> Option<Entity> {
    match normalize(s).trim_end_matches('s') {
        "customer" => Some(Entity::Customer),
        "organization" | "organisation" => Some(Entity::Organization),
        "entitlement" => Some(Entity::Entitlement),
        _ => None,
    }
}

/// One valid row: the definition to have on the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub entity: Entity,
    pub name: String,
    pub kind: String,
    pub options: Vec<String>,
    /// The `newName` column: the field is to be renamed to this (`--update-definitions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Filled in by deciding: the site's field this row edits, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

impl Wanted {
    /// The name the field has once the row is applied.
    pub fn target(&self) -> &str {
        self.new_name.as_deref().unwrap_or(&self.name)
    }
}

/// An edit of a field the site has (PUT `{entity}/details/{fieldName}`): its name there, the
/// name it gets, the options it gets (None: left as they are), and the edit in words for the
/// summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub from: String,
    pub to: String,
    pub options: Option<Vec<String>>,
    pub what: String,
}

/// Checks one row's cells; the definition, or (column, reason).
pub fn check_row(
    entity: Option<&str>,
    name: &str,
    kind: &str,
    options: &str,
    new_name: Option<&str>,
) -> Result<Wanted, (&'static str, String)> {
    let entity = match entity.map(str::trim) {
        None | Some("") => Entity::Customer,
        Some(e) => parse_entity(e).ok_or_else(|| {
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
    let new_name = match new_name.map(str::trim) {
        None | Some("") => None,
        Some(n) if n == name => None,
        Some(n) if n.chars().count() > 255 => {
            return Err(("newName", "a field name is at most 255 characters".into()));
        }
        Some(n) => Some(n.to_string()),
    };
    let k = normalize(kind).replace(['-', '_'], "").to_uppercase();
    let k = match k.as_str() {
        "SINGLESELECT" | "DROPDOWN" => "SELECT".to_string(),
        "MULTISELECTDROPDOWN" => "MULTISELECT".to_string(),
        "PHONENUMBER" => "PHONE".to_string(),
        "BOOL" | "CHECKBOX" | "YESNO" => "BOOLEAN".to_string(),
        _ => k,
    };
    if !FIELD_TYPES.contains(&k.as_str()) {
        return Err((
            "type",
            format!(
                "'{}' is not a detail-field type (one of {})",
                kind.trim(),
                FIELD_TYPES.join(", ")
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
        new_name,
        change: None,
    })
}

/// What to do with a wanted field, given the site's fields of its entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Make it (under its new name, when the row renames a field the site does not have).
    Create,
    Unchanged,
    /// Edit the site's field (`--update-definitions`).
    Update(Change),
    Clash(String),
}

/// The options only the row has, and those only the site has (case ignored).
fn option_differences<'a>(
    w: &'a Wanted,
    site: &'a DetailFieldType,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let site: Vec<&str> = site.options.iter().flatten().map(String::as_str).collect();
    let missing = w
        .options
        .iter()
        .map(String::as_str)
        .filter(|o| !site.iter().any(|s| s.eq_ignore_ascii_case(o)))
        .collect();
    let extra = site
        .iter()
        .copied()
        .filter(|s| !w.options.iter().any(|o| o.eq_ignore_ascii_case(s)))
        .collect();
    (missing, extra)
}

/// Decides a row against the site's fields of its entity. Without `update`, a field the site
/// has with another definition is a clash (the site's field is never changed); with it, its
/// name and options are edited. A type is never changed: the API edits only names and options.
pub fn decide(w: &Wanted, fields: &[(String, DetailFieldType)], update: bool) -> Decision {
    let find = |n: &str| {
        fields
            .iter()
            .find(|(f, _)| f.trim().eq_ignore_ascii_case(n))
    };
    let what = format!("the {} field '{}'", w.entity.as_str(), w.name);
    if w.new_name.is_some() && !update {
        return Decision::Clash(format!(
            "the row renames {what} (newName): pass --update-definitions to edit fields the site has"
        ));
    }
    let old = find(&w.name);
    let renamed = w
        .new_name
        .as_deref()
        .filter(|n| !n.eq_ignore_ascii_case(&w.name))
        .and_then(find);
    let (site_name, site_type) = match (old, renamed) {
        (None, None) => return Decision::Create,
        (Some(_), Some((n, _))) => {
            return Decision::Clash(format!(
                "the site has both {what} and '{n}': renaming one onto the other would give two fields one name"
            ));
        }
        // Renamed already (an earlier run, or by hand): the row is checked against it.
        (None, Some((n, t))) | (Some((n, t)), None) => (n.trim(), t),
    };
    if !site_type.name.eq_ignore_ascii_case(&w.kind) {
        return Decision::Clash(format!(
            "the site already has the {} field '{site_name}', of type {}; a field's type cannot be changed through the API (`csmport delete detail-fields` removes the field and every value of it, then import it anew, or use another name)",
            w.entity.as_str(),
            site_type.name
        ));
    }
    let (missing, extra) = option_differences(w, site_type);
    let options_differ = !missing.is_empty() || !extra.is_empty();
    let to = w.target();
    // Without a newName, case differences in the name are the same field (as everywhere).
    let rename = w.new_name.is_some() && site_name != to;
    if !options_differ && !rename {
        return Decision::Unchanged;
    }
    if !update {
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
        why.push_str(" (--update-definitions makes the site's options the file's)");
        return Decision::Clash(why);
    }
    let mut edits = Vec::new();
    if rename {
        edits.push(format!("renamed to '{to}'"));
    }
    if !missing.is_empty() {
        edits.push(format!("options added: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        edits.push(format!("options removed: {}", extra.join(", ")));
    }
    Decision::Update(Change {
        from: site_name.to_string(),
        to: to.to_string(),
        options: options_differ.then(|| w.options.clone()),
        what: format!(
            "{} field '{site_name}': {}",
            w.entity.as_str(),
            edits.join("; ")
        ),
    })
}

/// The columns of a definitions file, in this order.
const COLUMNS: [&str; 5] = ["entity", "name", "type", "options", "newName"];

pub struct DetailFields {
    cols: Vec<Option<usize>>,
    /// Columns `--ignore-unknown-columns` left out.
    ignored: Vec<crate::map::UnknownColumn>,
    header: Vec<String>,
    /// The site's fields when the run began, per entity, and how many each entity will have
    /// once the fields this run sends are made (the API allows 50).
    site: HashMap<Entity, Vec<(String, DetailFieldType)>>,
    counts: Mutex<HashMap<Entity, usize>>,
    /// `--update-definitions`: fields the site has are edited to the file's definition.
    update: bool,
    dry_run: bool,
    /// Edits the site confirmed (or, in a dry run, would make), for the summary.
    changes: Mutex<Vec<String>>,
}

impl DetailFields {
    fn record(&self, what: &str) {
        let mut c = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if !c.iter().any(|x| x == what) {
            c.push(what.to_string());
        }
    }

    fn column(&self, name: &str) -> String {
        COLUMNS
            .iter()
            .position(|c| *c == name)
            .and_then(|k| self.cols[k])
            .and_then(|c| self.header.get(c).cloned())
            .unwrap_or_else(|| name.to_string())
    }
}

/// The site's fields of `entity`.
async fn fields_of(
    client: &Client,
    entity: Entity,
) -> Result<Vec<(String, DetailFieldType)>, ApiError> {
    let defs: DetailFieldsWithConfiguration = client.get_list(entity.details()).await?;
    Ok(defs
        .results
        .into_iter()
        .map(|d| (d.name, d.field_type))
        .collect())
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

impl Description for DetailFields {
    type Item = Wanted;

    fn opened(&self) -> super::Opened {
        super::Opened {
            ignored_columns: self.ignored.clone(),
            ..Default::default()
        }
    }

    async fn open(s: Setup<'_>) -> Result<Self, Error> {
        let (cols, ignored) = find_columns(
            s.header,
            s.label,
            "detail-fields",
            &COLUMNS,
            &["name", "type"],
            s.opts.input.ignore_unknown_columns,
        )?;
        let mut site = HashMap::new();
        let mut counts = HashMap::new();
        for e in Entity::ALL {
            let fields = fields_of(&s.site.client, e)
                .await
                .map_err(Error::from_setup)?;
            counts.insert(e, fields.len());
            site.insert(e, fields);
        }
        Ok(DetailFields {
            cols,
            ignored,
            header: s.header.to_vec(),
            site,
            counts: Mutex::new(counts),
            update: s.opts.input.update_definitions,
            dry_run: s.opts.dry_run,
            changes: Mutex::new(Vec::new()),
        })
    }

    fn check(&self, row: &RawRow) -> Result<Wanted, Vec<CellError>> {
        let cell = |c: Option<usize>| c.map(|c| row.cells.cell(c));
        check_row(
            cell(self.cols[0]),
            cell(self.cols[1]).unwrap_or(""),
            cell(self.cols[2]).unwrap_or(""),
            cell(self.cols[3]).unwrap_or(""),
            cell(self.cols[4]),
        )
        .map_err(|(col, why)| {
            vec![CellError {
                field: self.column(col),
                message: why,
            }]
        })
    }

    fn identity(&self, w: &Wanted) -> Vec<Identity> {
        let mut names = vec![("name", w.name.as_str())];
        if let Some(n) = &w.new_name {
            names.push(("newName", n));
        }
        names
            .into_iter()
            .map(|(col, n)| Identity {
                key: format!("{}:{}", w.entity.as_str(), n.to_lowercase()),
                field: self.column(col),
                message: format!(
                    "duplicate: the {} field '{n}' is already in row {{first}} of this file",
                    w.entity.as_str(),
                ),
            })
            .collect()
    }

    async fn decide<'a>(
        &'a self,
        _cx: &'a Cx<'a>,
        items: Vec<Wanted>,
    ) -> Vec<super::Decision<Wanted>> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        items
            .into_iter()
            .map(|mut w| {
                let fields = self.site.get(&w.entity).map(Vec::as_slice).unwrap_or(&[]);
                match decide(&w, fields, self.update) {
                    Decision::Unchanged => super::Decision::Unchanged(None),
                    Decision::Clash(why) => super::Decision::refuse(
                        if w.new_name.is_some() { "newName" } else { "name" },
                        why,
                    ),
                    Decision::Update(c) => {
                        if self.dry_run {
                            self.record(&c.what);
                        }
                        w.change = Some(c);
                        super::Decision::Send(w)
                    }
                    Decision::Create => {
                        let n = counts.entry(w.entity).or_default();
                        if *n >= MAX_DETAIL_FIELDS {
                            super::Decision::refuse(
                                "name",
                                format!(
                                    "the site would have more than {MAX_DETAIL_FIELDS} {} detail fields (the API's limit)",
                                    w.entity.as_str()
                                ),
                            )
                        } else {
                            *n += 1;
                            super::Decision::Send(w)
                        }
                    }
                }
            })
            .collect()
    }

    fn did(&self) -> super::BoxFuture<'_, super::Did> {
        let changes = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Box::pin(async {
            super::Did {
                changes,
                ..Default::default()
            }
        })
    }

    fn requests(&self, items: &[Wanted]) -> Vec<Request> {
        let mut out = Vec::new();
        for e in Entity::ALL {
            let Some(path) = e.definitions_bulk() else {
                continue;
            };
            let idx: Vec<usize> = (0..items.len())
                .filter(|&k| items[k].entity == e && items[k].change.is_none())
                .collect();
            for group in idx.chunks(MAX_DEFINITIONS_BULK) {
                let body = DetailDefinitionsBulkRequest {
                    detail_fields: group.iter().map(|&k| definition(&items[k])).collect(),
                };
                out.push(Request::task(path, &body, group.to_vec()));
            }
        }
        // No bulk endpoint for entitlement fields, nor for edits: one request each.
        for (k, w) in items.iter().enumerate() {
            if let Some(c) = &w.change {
                // Renamed by its old name: a second attempt would be a 404.
                out.push(Request::call(
                    Method::PutOnce,
                    paths::at(w.entity.detail(), &[&c.from]),
                    &EditDetailField {
                        name: c.to.clone(),
                        options: c.options.clone(),
                    },
                    k,
                ));
            } else if w.entity == Entity::Entitlement {
                out.push(Request::call(
                    Method::Post,
                    paths::ENTITLEMENT_DETAILS.into(),
                    &definition(w),
                    k,
                ));
            }
        }
        out
    }

    fn keys(&self, w: &Wanted) -> Vec<String> {
        vec![match_key(&w.name)]
    }

    /// Called once the site answered the row's request: an edit is then on the site.
    fn id_of(&self, w: &Wanted, _answer: Option<&serde_json::Value>) -> Option<String> {
        if let Some(c) = &w.change {
            self.record(&c.what);
        }
        None
    }

    /// The site's fields again: the field is there with the row's definition, or not.
    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Wanted],
    ) -> Result<Vec<Found>, ApiError> {
        let mut now: HashMap<Entity, Vec<(String, DetailFieldType)>> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        for w in items {
            if let std::collections::hash_map::Entry::Vacant(v) = now.entry(w.entity) {
                v.insert(fields_of(&cx.site.client, w.entity).await?);
            }
            let fields = &now[&w.entity];
            let there = fields
                .iter()
                .any(|(n, _)| n.trim().eq_ignore_ascii_case(w.target()));
            out.push(match decide(w, fields, true) {
                Decision::Unchanged => {
                    if let Some(c) = &w.change {
                        self.record(&c.what);
                    }
                    Found::Same(None)
                }
                _ if there => Found::Drifted,
                _ => Found::Missing,
            });
        }
        Ok(out)
    }
}

/// How `delete detail-fields` finds, deletes and backs up a definition (a row names it by
/// entity and name; its id is `entity:name`).
pub const DELETE: deletes::Spec = deletes::Spec {
    kind: Kind::DetailFields,
    columns: &["entity", "name"],
    one_of: &["name"],
    named: |cell| {
        let entity = match cell("entity").to_ascii_lowercase().as_str() {
            "" | "customer" => "customer",
            "organization" => "organization",
            "entitlement" => "entitlement",
            other => {
                return Err((
                    "entity",
                    format!("'{other}' is not customer, organization or entitlement"),
                ));
            }
        };
        let name = deletes::required(cell, "name", "no field name: which field to delete?")?;
        Ok(deletes::Named::Field {
            entity: entity.into(),
            name,
        })
    },
    delete_path: deletes::field_path,
    read_path: Some(deletes::field_path),
    names_products: false,
    needs_products: false,
    needs_fields: true,
    backup: |site, targets| {
        Box::pin(async move {
            let ids = deletes::found_ids(targets);
            let mut by_entity: Vec<(
                &str,
                Vec<crate::site::api::model::DetailFieldWithConfiguration>,
            )> = Vec::new();
            for entity in ["customer", "organization", "entitlement"] {
                let defs = crate::export::fetch::definitions(&site.client, entity).await?;
                let keep: Vec<_> = defs
                    .into_iter()
                    .filter(|d| ids.contains(&format!("{entity}:{}", d.name)))
                    .collect();
                by_entity.push((entity, keep));
            }
            let n = by_entity.iter().map(|(_, d)| d.len()).sum();
            Ok((export::table(&by_entity), n))
        })
    },
    cannot_put_back: |n, values_kept| match (n, values_kept) {
        (0, _) => None,
        (n, true) => Some(format!(
            "deleting a detail field deletes its values: those of the customer and organization fields are in backup-values-customer.csv and backup-values-organization.csv (import them as customer-details and organization-details after the {n} definitions, which come back last in the site's order of fields); entitlement fields' values are not in the backup"
        )),
        (n, false) => Some(format!(
            "deleting a detail field deletes its values on every customer, organization or entitlement: the backup puts back the {n} definitions, not the values (export the customers or organizations first to keep them)"
        )),
    },
};

/// Export of detail-field definitions: `entity, name, type, options`, as the import template names them, so an exported file can be edited
/// and imported back: `read` asks the site (through export's `Reader`), `table` builds the
/// rows (also the backup of a delete).
pub mod export {
    use crate::error::Error;
    use crate::export::reader::{Reader, failed};
    use crate::export::{Cell, Table, fetch, text};
    use crate::kind::Kind;

    use crate::site::api::MULTI_VALUE_SEPARATOR;
    use crate::site::api::model::DetailFieldWithConfiguration;

    /// What the site holds (or what `--ids` / `--where` select), as one table.
    pub async fn read(r: &Reader<'_>) -> Result<Table, Error> {
        let mut defs = Vec::new();
        for entity in ["customer", "organization", "entitlement"] {
            let list = fetch::definitions(r.client, entity)
                .await
                .map_err(|e| failed(&format!("{entity} detail fields"), e))?;
            defs.push((entity, list));
        }
        Ok(table(&defs))
    }

    /// Detail-field definitions: `entity, name, type, options`, as the detail-fields template.
    pub fn table(defs: &[(&str, Vec<DetailFieldWithConfiguration>)]) -> Table {
        let mut rows: Vec<(String, String, Vec<Cell>)> = Vec::new();
        for (entity, list) in defs {
            for d in list {
                rows.push((
                    entity.to_string(),
                    d.name.to_lowercase(),
                    vec![
                        text(entity),
                        text(&d.name),
                        text(&d.field_type.name),
                        text(
                            &d.field_type
                                .options
                                .clone()
                                .unwrap_or_default()
                                .join(&MULTI_VALUE_SEPARATOR.to_string()),
                        ),
                    ],
                ));
            }
        }
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        Table {
            kind: Kind::DetailFields,
            header: ["entity", "name", "type", "options"]
                .map(String::from)
                .to_vec(),
            rows: rows.into_iter().map(|r| r.2).collect(),
        }
    }
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
            Some(" Tier "),
        )
        .unwrap();
        assert_eq!(
            ok,
            Wanted {
                entity: Entity::Organization,
                name: "Tier".into(),
                kind: "SELECT".into(),
                options: vec!["Gold".into(), "Silver".into()],
                new_name: None,
                change: None,
            }
        );
        assert_eq!(
            check_row(None, "Notes", "text", "", None).unwrap().entity,
            Entity::Customer
        );
        assert_eq!(
            check_row(None, "Notes", "text", "", Some("Remarks"))
                .unwrap()
                .target(),
            "Remarks"
        );
        let long = "x".repeat(256);
        let cases = [
            (Some("ticket"), "X", "TEXT", "", None, "entity"),
            (None, " ", "TEXT", "", None, "name"),
            (None, "X", "colour", "", None, "type"),
            (None, "X", "MULTISELECT", "", None, "options"),
            (None, "X", "DATE", "a;b", None, "options"),
            (None, "X", "DATE", "", Some(long.as_str()), "newName"),
        ];
        for (e, n, t, o, r, col) in cases {
            assert_eq!(check_row(e, n, t, o, r).unwrap_err().0, col, "{n} {t} {o}");
        }
    }

    fn site(fields: &[(&str, &str, Option<&[&str]>)]) -> Vec<(String, DetailFieldType)> {
        fields
            .iter()
            .map(|(n, t, o)| {
                (
                    n.to_string(),
                    DetailFieldType {
                        name: t.to_string(),
                        options: o.map(|o| o.iter().map(|s| s.to_string()).collect()),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn existing_fields_are_kept_or_named_as_clashes() {
        let w = check_row(None, "Tier", "SELECT", "Gold;Silver", None).unwrap();
        assert_eq!(decide(&w, &[], false), Decision::Create);
        assert_eq!(
            decide(
                &w,
                &site(&[("tier", "SELECT", Some(&["silver", "Gold"]))]),
                false
            ),
            Decision::Unchanged
        );
        let Decision::Clash(why) = decide(&w, &site(&[("Tier", "TEXT", None)]), false) else {
            panic!()
        };
        assert!(why.contains("of type TEXT"), "{why}");
        let Decision::Clash(why) = decide(
            &w,
            &site(&[("Tier", "SELECT", Some(&["Gold", "Bronze"]))]),
            false,
        ) else {
            panic!()
        };
        assert!(
            why.contains("not on the site: Silver")
                && why.contains("only on the site: Bronze")
                && why.contains("--update-definitions"),
            "{why}"
        );
    }

    /// `--update-definitions`: every case of a row against the site's fields.
    #[test]
    fn updates_edit_names_and_options_never_types() {
        let row = |name: &str, new: Option<&str>| {
            check_row(None, name, "SELECT", "Gold;Silver", new).unwrap()
        };
        let gold_bronze: Option<&[&str]> = Some(&["Gold", "Bronze"]);
        let gold_silver: Option<&[&str]> = Some(&["Gold", "Silver"]);
        // (row name, newName, site, update) → Create / Unchanged / Update(from, to, options?) / Clash(contains)
        enum Want {
            Create,
            Unchanged,
            Update(&'static str, &'static str, bool, &'static str),
            Clash(&'static str),
        }
        let cases: Vec<(
            &str,
            Option<&str>,
            Vec<(String, DetailFieldType)>,
            bool,
            Want,
        )> = vec![
            ("Tier", None, site(&[]), true, Want::Create),
            ("Tier", Some("Level"), site(&[]), true, Want::Create),
            (
                "Tier",
                None,
                site(&[("Tier", "SELECT", gold_silver)]),
                true,
                Want::Unchanged,
            ),
            (
                "Tier",
                None,
                site(&[("Tier", "SELECT", gold_bronze)]),
                true,
                Want::Update(
                    "Tier",
                    "Tier",
                    true,
                    "options added: Silver; options removed: Bronze",
                ),
            ),
            (
                "Tier",
                Some("Level"),
                site(&[("Tier", "SELECT", gold_silver)]),
                true,
                Want::Update("Tier", "Level", false, "renamed to 'Level'"),
            ),
            (
                "Tier",
                Some("Level"),
                site(&[("Tier", "SELECT", gold_bronze)]),
                true,
                Want::Update(
                    "Tier",
                    "Level",
                    true,
                    "renamed to 'Level'; options added: Silver; options removed: Bronze",
                ),
            ),
            // Renamed already: the row is checked against the field under its new name.
            (
                "Tier",
                Some("Level"),
                site(&[("Level", "SELECT", gold_silver)]),
                true,
                Want::Unchanged,
            ),
            (
                "Tier",
                Some("Level"),
                site(&[("Level", "SELECT", gold_bronze)]),
                true,
                Want::Update("Level", "Level", true, "options removed: Bronze"),
            ),
            // A case-only rename is a rename.
            (
                "tier",
                Some("Tier"),
                site(&[("tier", "SELECT", gold_silver)]),
                true,
                Want::Update("tier", "Tier", false, "renamed to 'Tier'"),
            ),
            (
                "Tier",
                Some("Level"),
                site(&[("Tier", "SELECT", gold_silver), ("Level", "TEXT", None)]),
                true,
                Want::Clash("both"),
            ),
            (
                "Tier",
                None,
                site(&[("Tier", "TEXT", None)]),
                true,
                Want::Clash("cannot be changed"),
            ),
            (
                "Tier",
                Some("Level"),
                site(&[("Tier", "SELECT", gold_silver)]),
                false,
                Want::Clash("--update-definitions"),
            ),
            (
                "Tier",
                Some("Level"),
                site(&[]),
                false,
                Want::Clash("--update-definitions"),
            ),
        ];
        for (name, new, fields, update, want) in cases {
            let got = decide(&row(name, new), &fields, update);
            let case = format!("{name} -> {new:?}, update {update}: {got:?}");
            match (want, got) {
                (Want::Create, Decision::Create) | (Want::Unchanged, Decision::Unchanged) => {}
                (Want::Update(from, to, options, what), Decision::Update(c)) => {
                    assert_eq!((c.from.as_str(), c.to.as_str()), (from, to), "{case}");
                    assert_eq!(c.options.is_some(), options, "{case}");
                    assert!(c.what.ends_with(what), "{case}");
                }
                (Want::Clash(part), Decision::Clash(why)) => assert!(why.contains(part), "{case}"),
                _ => panic!("{case}"),
            }
        }
    }
}
