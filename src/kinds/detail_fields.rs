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
use crate::map::{CellError, normalize};
use crate::read::{Cells, RawRow};
use crate::row::{Found, match_key};
use crate::site::api::model::{
    CreateDetailField, DetailDefinitionsBulkRequest, DetailFieldType, DetailFieldsWithConfiguration,
};
use crate::site::api::{
    self, FIELD_TYPES, MAX_DEFINITIONS_BULK, MAX_DETAIL_FIELDS, MAX_FIELD_OPTIONS, paths,
};
use crate::site::client::{ApiError, Client};

use super::columns::find_columns;
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

pub struct DetailFields {
    cols: Vec<Option<usize>>,
    /// Columns `--ignore-unknown-columns` left out.
    ignored: Vec<crate::map::UnknownColumn>,
    header: Vec<String>,
    /// The site's fields when the run began, per entity, and how many each entity will have
    /// once the fields this run sends are made (the API allows 50).
    site: HashMap<Entity, Vec<(String, DetailFieldType)>>,
    counts: Mutex<HashMap<Entity, usize>>,
}

impl DetailFields {
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
    let defs: DetailFieldsWithConfiguration = client.get_json(entity.details()).await?;
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

    fn ignored_columns(&self) -> &[crate::map::UnknownColumn] {
        &self.ignored
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
        })
    }

    fn check(&self, row: &RawRow) -> Result<Wanted, Vec<CellError>> {
        let cell = |c: Option<usize>| c.map(|c| row.cells.cell(c));
        check_row(
            cell(self.cols[0]),
            cell(self.cols[1]).unwrap_or(""),
            cell(self.cols[2]).unwrap_or(""),
            cell(self.cols[3]).unwrap_or(""),
        )
        .map_err(|(col, why)| {
            vec![CellError {
                field: self.column(col),
                message: why,
            }]
        })
    }

    fn identity(&self, w: &Wanted) -> Vec<Identity> {
        vec![Identity {
            key: format!("{}:{}", w.entity.as_str(), w.name.to_lowercase()),
            field: self.column("name"),
            message: format!(
                "duplicate: the {} field '{}' is already in row {{first}} of this file",
                w.entity.as_str(),
                w.name
            ),
        }]
    }

    async fn decide<'a>(
        &'a self,
        _cx: &'a Cx<'a>,
        items: Vec<Wanted>,
    ) -> Vec<super::Decision<Wanted>> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        items
            .into_iter()
            .map(|w| {
                let fields = self.site.get(&w.entity).map(Vec::as_slice).unwrap_or(&[]);
                let existing = fields
                    .iter()
                    .find(|(n, _)| n.trim().eq_ignore_ascii_case(&w.name))
                    .map(|(_, t)| t);
                match decide(&w, existing) {
                    Decision::Unchanged => super::Decision::Unchanged(None),
                    Decision::Clash(why) => super::Decision::refuse("name", why),
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

    fn requests(&self, items: &[Wanted]) -> Vec<Request> {
        let mut out = Vec::new();
        for e in Entity::ALL {
            let Some(path) = e.definitions_bulk() else {
                continue;
            };
            let idx: Vec<usize> = (0..items.len()).filter(|&k| items[k].entity == e).collect();
            for group in idx.chunks(MAX_DEFINITIONS_BULK) {
                let body = DetailDefinitionsBulkRequest {
                    detail_fields: group.iter().map(|&k| definition(&items[k])).collect(),
                };
                out.push(Request::task(path, &body, group.to_vec()));
            }
        }
        // No bulk endpoint for entitlement fields: one request each.
        for (k, w) in items.iter().enumerate() {
            if w.entity == Entity::Entitlement {
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

    fn id_of(&self, _w: &Wanted, _answer: Option<&serde_json::Value>) -> Option<String> {
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
            let existing = now[&w.entity]
                .iter()
                .find(|(n, _)| n.trim().eq_ignore_ascii_case(&w.name))
                .map(|(_, t)| t);
            out.push(match (existing, decide(w, existing)) {
                (None, _) => Found::Missing,
                (Some(_), Decision::Unchanged) => Found::Same(None),
                (Some(_), _) => Found::Drifted,
            });
        }
        Ok(out)
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
