//! Mapping files (`--mapping FILE`, TOML): which input columns feed which CSM field, with
//! per-column transforms (trim, lowercase, uppercase, join several columns, split into
//! MULTISELECT values, value maps, constants, skip). Compiled against the input's header, a
//! mapping turns each raw row into the cells `map` expects; the raw cells still go to the
//! reports unchanged. Used by `intake`; the shipped files live in `templates/`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::map::{COL_DISPLAY_NAME, COL_EMAIL, COL_ORGANIZATIONS, ColumnUse, normalize};
use crate::read::Cells;
use crate::schema::Schema;
use crate::site::api::MULTI_VALUE_SEPARATOR;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// The kind of import it is for (`customers`, `organizations`, …).
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// What to do with input columns no rule names: `error` (default) or `ignore`.
    #[serde(default)]
    pub unmapped: Unmapped,
    #[serde(default, rename = "column")]
    pub columns: Vec<ColumnRule>,
    /// Rows to leave out (deleted records, agents): each is skipped with the rule as its
    /// reason, and listed in failures.csv.
    #[serde(default)]
    pub skip: Vec<SkipRule>,
    /// An organizations mapping's key: the detail field (fed by a rule) that holds the CRM's
    /// id, e.g. `key = "External ID"`. A row whose value an organization on the site already
    /// holds updates that organization, renaming it to the row's name, instead of creating one.
    #[serde(default)]
    pub key: Option<String>,
}

/// `{ column = "IsDeleted", equals = "true" }`, `{ column = "role", not_in = ["end-user"] }`:
/// values compared with spaces around them and case ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    pub column: String,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub not_equals: Option<String>,
    #[serde(default, rename = "in")]
    pub is_in: Option<Vec<String>>,
    #[serde(default)]
    pub not_in: Option<Vec<String>>,
    /// Drop the rule when the input has no such column (a template for several exports).
    #[serde(default)]
    pub optional: bool,
}

/// A skip rule bound to the input's header.
#[derive(Debug, Clone)]
struct BoundSkip {
    index: usize,
    column: String,
    /// Normalized values; `skip_if_in` says whether a match skips the row or spares it.
    values: Vec<String>,
    skip_if_in: bool,
}

impl BoundSkip {
    fn reason(&self, cells: &(impl Cells + ?Sized)) -> Option<String> {
        let raw = cells.cell(self.index).trim();
        let v = raw.to_lowercase();
        let hit = self.values.contains(&v);
        if hit != self.skip_if_in {
            return None;
        }
        let listed = || {
            self.values
                .iter()
                .map(|v| format!("'{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(match (self.skip_if_in, self.values.len()) {
            (true, 1) => format!("skipped by the mapping: {} is '{raw}'", self.column),
            (true, _) => format!(
                "skipped by the mapping: {} is '{raw}' (one of {})",
                self.column,
                listed()
            ),
            (false, 1) => format!(
                "skipped by the mapping: {} is '{raw}', not {}",
                self.column,
                listed()
            ),
            (false, _) => format!(
                "skipped by the mapping: {} is '{raw}', not one of {}",
                self.column,
                listed()
            ),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    #[default]
    Error,
    Ignore,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Sources {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Input column(s); several are joined with `join`.
    #[serde(default)]
    pub source: Option<Sources>,
    /// The CSM field: `email`, `displayName`, `organizations`, or a detail field's name.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub transform: Vec<Transform>,
    /// Other names the (single) source column has in other exports of the same CRM, e.g.
    /// `Account.Name` beside a report's `Account Name`: the first of `source` and these that
    /// the input has is read.
    #[serde(default)]
    pub also: Vec<String>,
    /// Separator between joined source columns (default one space).
    #[serde(default)]
    pub join: Option<String>,
    /// Split the cell on this separator into several values (MULTISELECT).
    #[serde(default)]
    pub split: Option<String>,
    /// Replace values (matched case-insensitively after the transforms), e.g. `Gold = "Premium"`.
    #[serde(default)]
    pub map: HashMap<String, String>,
    /// A constant for every row, instead of a source column.
    #[serde(default)]
    pub value: Option<String>,
    /// Read nothing from this column.
    #[serde(default)]
    pub skip: bool,
    /// Drop the rule, instead of stopping, when the site has no such field or the input no
    /// such column (templates use it for fields only some sites have). Of several optional
    /// rules feeding one field, the first the input has columns for is used.
    #[serde(default)]
    pub optional: bool,
    /// For `field = "organizations"`: the cells are not names or CSM ids but values of this
    /// organization detail field (the CRM's own account id, kept in `External ID`); each is
    /// resolved to the one organization holding it.
    #[serde(default)]
    pub by: Option<String>,
    /// What an invalid value in this column does: `fail` its row, or `blank` (the row is
    /// imported without it, the cell listed in warnings.csv). Default: `--invalid-values`.
    #[serde(default)]
    pub on_invalid: Option<OnInvalid>,
    /// The value for inputs `map` does not list (e.g. `default = "Other"`).
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    Fail,
    Blank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transform {
    Trim,
    Lowercase,
    Uppercase,
}

/// A mapping bound to one input header.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The header `map` sees: one column per rule.
    pub header: Vec<String>,
    /// Per column of `header`: the rule's `on_invalid`, if it says.
    pub on_invalid: Vec<Option<OnInvalid>>,
    rules: Vec<Bound>,
    /// Input columns read by no rule (only with `unmapped = "ignore"`), and rules dropped.
    pub notes: Vec<String>,
    /// The organization detail field the `organizations` column's values are found by (`by`).
    pub organizations_by: Option<String>,
    /// The mapping's `key`, as the rule feeding it spells the field.
    pub key: Option<String>,
    skips: Vec<BoundSkip>,
    /// What became of each input column.
    pub columns: Vec<ColumnUse>,
}

#[derive(Debug, Clone)]
struct Bound {
    sources: Vec<usize>,
    join: String,
    transform: Vec<Transform>,
    split: Option<String>,
    map: HashMap<String, String>,
    value: Option<String>,
    default: Option<String>,
}

pub fn load(path: &Path) -> Result<MappingFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl MappingFile {
    /// A schema with every detail field the rules feed, as plain text: for reading back what
    /// the mapping made of rows that were imported (the site's own definitions checked them).
    pub fn permissive_schema(&self) -> Schema {
        let base = [COL_EMAIL, COL_DISPLAY_NAME, COL_ORGANIZATIONS, "id", "name"];
        Schema {
            fields: self
                .columns
                .iter()
                .filter_map(|r| r.field.clone())
                .filter(|f| !base.iter().any(|b| normalize(b) == normalize(f)))
                .map(|name| crate::schema::FieldDef {
                    name,
                    kind: crate::schema::FieldKind::Text,
                    options: vec![],
                })
                .collect(),
        }
    }

    /// Binds the rules to the input's columns; every problem names the rule and the fix.
    pub fn compile(
        &self,
        kind: &str,
        input_header: &[String],
        schema: &Schema,
    ) -> Result<Compiled, String> {
        if self.kind != kind {
            return Err(format!("this mapping is for {}, not {kind}", self.kind));
        }
        let index: HashMap<String, usize> = input_header
            .iter()
            .enumerate()
            .map(|(i, h)| (normalize(h), i))
            .rev()
            .collect();
        let base: &[&str] = match kind {
            "organizations" => &["id", "name"],
            _ => &[COL_EMAIL, COL_DISPLAY_NAME, COL_ORGANIZATIONS],
        };
        let known = |f: &str| {
            base.iter().any(|k| normalize(k) == normalize(f))
                || schema
                    .fields
                    .iter()
                    .any(|d| normalize(&d.name) == normalize(f))
        };
        let mut header = Vec::new();
        let mut on_invalid = Vec::new();
        let mut rules = Vec::new();
        let mut notes = Vec::new();
        let mut used = vec![false; input_header.len()];
        let mut organizations_by = None;
        let mut unfed: Vec<(String, String)> = Vec::new();
        // Per input column: the fields it feeds, or why a rule reading it was not used.
        let mut feeds: Vec<Vec<String>> = vec![Vec::new(); input_header.len()];
        let mut unused: Vec<Option<String>> = vec![None; input_header.len()];
        let mut missing_fields: Vec<String> = Vec::new();
        for (n, rule) in self.columns.iter().enumerate() {
            let label = format!("column rule {}", n + 1);
            if let Some(by) = &rule.by {
                let links_orgs = rule
                    .field
                    .as_deref()
                    .is_some_and(|f| normalize(f) == normalize(COL_ORGANIZATIONS));
                if !links_orgs || kind != "customers" {
                    return Err(format!(
                        "{label}: `by = \"{by}\"` finds organizations by a detail field, so it goes with `field = \"organizations\"` in a customers mapping"
                    ));
                }
                if by.trim().is_empty() {
                    return Err(format!(
                        "{label}: `by` is empty; name the organization detail field that holds the CRM's id, e.g. by = \"External ID\""
                    ));
                }
            }
            let names: Vec<String> = match &rule.source {
                None => vec![],
                Some(Sources::One(s)) => {
                    let found = std::iter::once(s)
                        .chain(&rule.also)
                        .find(|n| index.contains_key(&normalize(n)));
                    vec![found.unwrap_or(s).clone()]
                }
                Some(Sources::Many(v)) => v.clone(),
            };
            let mut sources = Vec::new();
            let mut missing = Vec::new();
            for s in &names {
                match index.get(&normalize(s)) {
                    Some(&i) => {
                        sources.push(i);
                        used[i] = true;
                    }
                    None => missing.push(s.clone()),
                }
            }
            if rule.skip {
                for &i in &sources {
                    unused[i] = Some("`skip = true` in the mapping".into());
                }
                continue;
            }
            let Some(field) = &rule.field else {
                return Err(format!(
                    "{label}: no `field` (the CSM field it feeds), and not `skip = true`"
                ));
            };
            if names.is_empty() && rule.value.is_none() {
                return Err(format!(
                    "{label} ({field}): give a `source` column or a constant `value`"
                ));
            }
            if !missing.is_empty() {
                if rule.optional {
                    // Said only if no other rule feeds the field (a template's fallback).
                    unfed.push((
                        field.clone(),
                        format!(
                            "mapping for '{field}' skipped: the input has no column {}",
                            missing.join(", ")
                        ),
                    ));
                    continue;
                }
                let closest = missing
                    .iter()
                    .filter_map(|m| {
                        crate::validate::closest(m, input_header.iter().map(String::as_str))
                    })
                    .next();
                return Err(format!(
                    "{label} ({field}): the input has no column {}{}",
                    missing
                        .iter()
                        .map(|m| format!("'{m}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    closest
                        .map(|c| format!("; did you mean '{c}'?"))
                        .unwrap_or_default()
                ));
            }
            if !known(field) {
                // Never dropped without a word: the run stops, naming every such field.
                if !missing_fields
                    .iter()
                    .any(|m| normalize(m) == normalize(field))
                {
                    missing_fields.push(field.clone());
                }
                continue;
            }
            if header
                .iter()
                .any(|h: &String| normalize(h) == normalize(field))
            {
                if rule.optional {
                    for &i in &sources {
                        unused[i] = Some(format!("an earlier rule of the mapping feeds '{field}'"));
                    }
                    notes.push(format!(
                        "mapping for '{field}' from {} not used: an earlier rule already feeds it",
                        names
                            .iter()
                            .map(|n| format!("'{n}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    continue;
                }
                return Err(format!(
                    "{label}: '{field}' is fed by two rules; join the columns in one rule instead"
                ));
            }
            if rule.by.is_some() {
                organizations_by = rule.by.as_ref().map(|b| b.trim().to_string());
            }
            let fed = match &rule.by {
                Some(by) => format!("{field} (by {})", by.trim()),
                None => field.clone(),
            };
            for &i in &sources {
                if !feeds[i].contains(&fed) {
                    feeds[i].push(fed.clone());
                }
            }
            if rule.on_invalid == Some(OnInvalid::Blank) && is_required(kind, field) {
                return Err(format!(
                    "{label}: '{field}' is required, so its invalid values cannot be left blank (`on_invalid = \"blank\"`); the row fails instead"
                ));
            }
            if rule.default.is_some() && rule.map.is_empty() {
                return Err(format!(
                    "{label} ({field}): `default` is the value for inputs `map` does not list; give a `map` too, or use `value` for a constant"
                ));
            }
            header.push(field.clone());
            on_invalid.push(rule.on_invalid);
            rules.push(Bound {
                sources,
                join: rule.join.clone().unwrap_or_else(|| " ".into()),
                transform: rule.transform.clone(),
                split: rule.split.clone(),
                map: rule
                    .map
                    .iter()
                    .map(|(k, v)| (k.trim().to_lowercase(), v.clone()))
                    .collect(),
                value: rule.value.clone(),
                default: rule.default.clone(),
            });
        }
        if !missing_fields.is_empty() {
            let what = if kind == "organizations" {
                "organizations"
            } else {
                "customers"
            };
            return Err(format!(
                "the mapping feeds {} the site's {what} do not have: {}; add {} first (a detail-fields step before this one: `csmport init` writes one, or `csmport import detail-fields FILE`), or remove the rule",
                if missing_fields.len() == 1 {
                    "a field"
                } else {
                    "fields"
                },
                missing_fields
                    .iter()
                    .map(|f| format!("'{f}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing_fields.len() == 1 {
                    "it"
                } else {
                    "them"
                }
            ));
        }
        let key = match &self.key {
            None => None,
            Some(k) => {
                if kind != "organizations" && kind != "customers" {
                    return Err(format!(
                        "`key = \"{k}\"`: a key finds organizations renamed, or customers whose email changed, in the CRM; it goes in an organizations or customers mapping"
                    ));
                }
                match header.iter().find(|h| normalize(h) == normalize(k)) {
                    Some(field) => Some(field.clone()),
                    None => {
                        return Err(format!(
                            "`key = \"{k}\"`: no rule feeds '{k}'; the key is a detail field a column of the input fills (e.g. source = \"Id\", field = \"{k}\")"
                        ));
                    }
                }
            }
        };
        notes.extend(
            unfed
                .into_iter()
                .filter(|(f, _)| !header.iter().any(|h| normalize(h) == normalize(f)))
                .map(|(_, note)| note),
        );
        let mut skips = Vec::new();
        for (n, rule) in self.skip.iter().enumerate() {
            let label = format!("skip rule {} ({})", n + 1, rule.column);
            let conditions = [
                rule.equals.as_ref().map(|v| (vec![v.clone()], true)),
                rule.not_equals.as_ref().map(|v| (vec![v.clone()], false)),
                rule.is_in.as_ref().map(|v| (v.clone(), true)),
                rule.not_in.as_ref().map(|v| (v.clone(), false)),
            ];
            let mut given = conditions.into_iter().flatten();
            let (Some((values, skip_if_in)), None) = (given.next(), given.next()) else {
                return Err(format!(
                    "{label}: give exactly one of `equals`, `not_equals`, `in`, `not_in`"
                ));
            };
            let Some(&index) = index.get(&normalize(&rule.column)) else {
                if rule.optional {
                    notes.push(format!(
                        "skip rule on '{}' not used: the input has no such column",
                        rule.column
                    ));
                    continue;
                }
                return Err(format!(
                    "{label}: the input has no column '{}' (or set `optional = true`)",
                    rule.column
                ));
            };
            used[index] = true;
            skips.push(BoundSkip {
                index,
                column: input_header[index].clone(),
                values: values.iter().map(|v| v.trim().to_lowercase()).collect(),
                skip_if_in,
            });
        }
        for (i, u) in used.iter().enumerate() {
            let name = &input_header[i];
            if *u || name.trim().is_empty() || name.trim_start().starts_with('_') {
                continue;
            }
            match self.unmapped {
                // Said once for all of them, with the other columns not imported
                // (`map::columns_note`), and listed in summary.json `columns`.
                Unmapped::Ignore => {}
                Unmapped::Error => {
                    return Err(format!(
                        "column '{name}' (column {}) is not in the mapping; add a rule for it (or `skip = true`), or set unmapped = \"ignore\"",
                        i + 1
                    ));
                }
            }
        }
        let columns = input_header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if !feeds[i].is_empty() {
                    ColumnUse::imported(name, feeds[i].join(", "))
                } else if skips.iter().any(|s| s.index == i) {
                    ColumnUse::filter(name)
                } else if let Some(why) = &unused[i] {
                    ColumnUse::not_imported(name, why.clone())
                } else {
                    ColumnUse::unmatched(name, "not in the mapping")
                }
            })
            .collect();
        Ok(Compiled {
            header,
            on_invalid,
            rules,
            notes,
            organizations_by,
            key,
            skips,
            columns,
        })
    }
}

/// The fields a row cannot go without: never left blank for an invalid value.
fn is_required(kind: &str, field: &str) -> bool {
    let f = normalize(field);
    let required: &[&str] = match kind {
        "organizations" => &["name", "id"],
        _ => &[COL_EMAIL, COL_DISPLAY_NAME, COL_ORGANIZATIONS, "id"],
    };
    required.iter().any(|r| normalize(r) == f)
}

impl Compiled {
    /// Input columns that only skip rules read.
    pub fn filter_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|u| u.status == crate::map::FILTER)
            .map(|u| u.column.as_str())
            .collect()
    }

    /// Why a skip rule leaves this row out, if one does.
    pub fn skip_reason(&self, cells: &(impl Cells + ?Sized)) -> Option<String> {
        self.skips.iter().find_map(|s| s.reason(cells))
    }

    /// The cells `map` reads, one per rule, from a raw row.
    pub fn apply(&self, cells: &(impl Cells + ?Sized)) -> Vec<String> {
        self.rules.iter().map(|r| r.apply(cells)).collect()
    }

    /// Column `i` of what `apply` makes, alone (what a check of one column needs).
    pub fn apply_at(&self, i: usize, cells: &(impl Cells + ?Sized)) -> String {
        self.rules
            .get(i)
            .map(|r| r.apply(cells))
            .unwrap_or_default()
    }
}

impl Bound {
    fn apply(&self, cells: &(impl Cells + ?Sized)) -> String {
        let raw = match &self.value {
            Some(v) if self.sources.is_empty() => v.clone(),
            _ => {
                let parts: Vec<&str> = self
                    .sources
                    .iter()
                    .map(|&i| cells.cell(i))
                    .filter(|s| !s.trim().is_empty())
                    .collect();
                match (&self.value, parts.is_empty()) {
                    // A constant with sources is a default for empty cells.
                    (Some(v), true) => v.clone(),
                    _ => parts
                        .iter()
                        .map(|s| s.trim())
                        .collect::<Vec<_>>()
                        .join(&self.join),
                }
            }
        };
        let values: Vec<String> = match &self.split {
            Some(sep) => raw.split(sep.as_str()).map(str::to_string).collect(),
            None => vec![raw],
        };
        let out: Vec<String> = values
            .into_iter()
            .map(|v| {
                let v = self.transform.iter().fold(v, |v, t| match t {
                    Transform::Trim => v.trim().to_string(),
                    Transform::Lowercase => v.to_lowercase(),
                    Transform::Uppercase => v.to_uppercase(),
                });
                match (self.map.get(&v.trim().to_lowercase()), &self.default) {
                    (Some(to), _) => to.clone(),
                    (None, Some(d)) if !self.map.is_empty() && !v.trim().is_empty() => d.clone(),
                    (None, _) => v,
                }
            })
            .filter(|v| self.split.is_none() || !v.trim().is_empty())
            .collect();
        out.join(&MULTI_VALUE_SEPARATOR.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldDef, FieldKind};

    fn schema() -> Schema {
        Schema {
            fields: ["Customer Tier", "Preferred Contact Channels", "Region"]
                .iter()
                .map(|n| FieldDef {
                    name: n.to_string(),
                    kind: FieldKind::Text,
                    options: vec![],
                })
                .collect(),
        }
    }

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// `schema()` and the fields the contact templates feed.
    fn crm_schema() -> Schema {
        let mut s = schema();
        for n in [
            "Phone",
            "External ID",
            "Type",
            "Title",
            "Region",
            "Preferred Language",
        ] {
            s.fields.push(FieldDef {
                name: n.to_string(),
                kind: FieldKind::Text,
                options: vec![],
            });
        }
        s
    }

    const MAPPING: &str = r#"
kind = "customers"
unmapped = "ignore"

[[column]]
source = "E-mail Address"
field = "email"
transform = ["trim", "lowercase"]

[[column]]
source = ["First Name", "Last Name"]
field = "displayName"

[[column]]
source = "Level"
field = "Customer Tier"
map = { Gold = "Premium", silver = "Standard" }
value = "Free"

[[column]]
source = "Channels"
field = "Preferred Contact Channels"
split = ","
transform = ["trim"]

[[column]]
source = "Fax"
skip = true

[[column]]
source = "Title"
field = "Title"
optional = true
"#;

    #[test]
    fn rules_transform_rows() {
        let m: MappingFile = toml::from_str(MAPPING).unwrap();
        let header = h(&[
            "First Name",
            "Last Name",
            "e-mail address",
            "Level",
            "Channels",
            "Fax",
            "Title",
            "Other",
        ]);
        // A field the site does not have is never dropped without a word, optional or not.
        let e = m.compile("customers", &header, &schema()).unwrap_err();
        assert_eq!(
            e,
            "the mapping feeds a field the site's customers do not have: 'Title'; add it first (a detail-fields step before this one: `csmport init` writes one, or `csmport import detail-fields FILE`), or remove the rule"
        );
        // Optional: an input without the column.
        let without: Vec<String> = header.iter().filter(|c| *c != "Title").cloned().collect();
        let c = m.compile("customers", &without, &schema()).unwrap();
        assert_eq!(
            c.notes,
            vec!["mapping for 'Title' skipped: the input has no column Title"]
        );
        let c = m.compile("customers", &header, &crm_schema()).unwrap();
        assert_eq!(
            c.header,
            vec![
                "email",
                "displayName",
                "Customer Tier",
                "Preferred Contact Channels",
                "Title"
            ]
        );
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        // Every input column is accounted for.
        let uses: Vec<(&str, &str, Option<&str>, Option<&str>)> = c
            .columns
            .iter()
            .map(|u| {
                (
                    u.column.as_str(),
                    u.status.as_str(),
                    u.field.as_deref(),
                    u.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            uses,
            [
                ("First Name", "imported", Some("displayName"), None),
                ("Last Name", "imported", Some("displayName"), None),
                ("e-mail address", "imported", Some("email"), None),
                ("Level", "imported", Some("Customer Tier"), None),
                (
                    "Channels",
                    "imported",
                    Some("Preferred Contact Channels"),
                    None
                ),
                (
                    "Fax",
                    "not imported",
                    None,
                    Some("`skip = true` in the mapping")
                ),
                ("Title", "imported", Some("Title"), None),
                ("Other", "not imported", None, Some("not in the mapping")),
            ]
        );
        let row = h(&[
            "Ann",
            " Lee ",
            " ANN@X.IO ",
            "gold",
            "Email, Slack,",
            "123",
            "CEO",
            "x",
        ]);
        assert_eq!(
            c.apply(&row),
            vec!["ann@x.io", "Ann Lee", "Premium", "Email;Slack", "CEO"]
        );
        let row = h(&["", "Lee", "b@x.io", "", "", "", "", ""]);
        assert_eq!(
            c.apply(&row),
            vec!["b@x.io", "Lee", "Free", "", ""],
            "a constant fills empty cells"
        );
    }

    /// Every shipped mapping parses and binds to an export that has its columns, on a site with
    /// CSM's predefined detail fields.
    #[test]
    fn every_shipped_template_loads() {
        let defaults = |names: &[&str]| Schema {
            fields: names
                .iter()
                .map(|n| FieldDef {
                    name: n.to_string(),
                    kind: FieldKind::Text,
                    options: vec![],
                })
                .collect(),
        };
        let customers = defaults(&[
            "Phone",
            "External ID",
            "Type",
            "Title",
            "Region",
            "Preferred Language",
        ]);
        let organizations = defaults(&[
            "Type",
            "Industry",
            "External ID",
            "Address",
            "Website",
            "Customer Segment",
        ]);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let m = load(&path).unwrap_or_else(|e| panic!("{e}"));
            let header: Vec<String> = m
                .columns
                .iter()
                .flat_map(|c| match &c.source {
                    None => vec![],
                    Some(Sources::One(s)) => vec![s.clone()],
                    Some(Sources::Many(v)) => v.clone(),
                })
                .chain(m.skip.iter().map(|r| r.column.clone()))
                .collect();
            let schema = if m.kind == "organizations" {
                &organizations
            } else {
                &customers
            };
            let c = m
                .compile(&m.kind, &header, schema)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // A header with every source column uses the first of two rules for one field.
            assert!(
                c.notes
                    .iter()
                    .all(|n| n.contains("an earlier rule already feeds it")),
                "{}: {:?}",
                path.display(),
                c.notes
            );
            assert!(!m.description.is_empty(), "{}", path.display());
            seen += 1;
        }
        assert_eq!(
            seen, 6,
            "salesforce, hubspot and zendesk, contacts and accounts each"
        );
    }

    #[test]
    fn compile_errors_name_the_rule_and_the_fix() {
        let m: MappingFile = toml::from_str(MAPPING).unwrap();
        let e = m
            .compile("organizations", &h(&["x"]), &schema())
            .unwrap_err();
        assert!(e.contains("this mapping is for customers"), "{e}");
        let e = m
            .compile(
                "customers",
                &h(&["First Name", "Last Name", "Email Adress"]),
                &schema(),
            )
            .unwrap_err();
        assert!(e.contains("column rule 1 (email): the input has no column 'E-mail Address'; did you mean 'Email Adress'?"), "{e}");
        let strict: MappingFile =
            toml::from_str("kind = \"customers\"\n[[column]]\nsource = \"E\"\nfield = \"email\"\n")
                .unwrap();
        let e = strict
            .compile("customers", &h(&["E", "Extra"]), &schema())
            .unwrap_err();
        assert!(
            e.contains("column 'Extra' (column 2) is not in the mapping"),
            "{e}"
        );
        let bad: MappingFile = toml::from_str(
            "kind = \"customers\"\n[[column]]\nsource = \"E\"\nfield = \"Colour\"\n",
        )
        .unwrap();
        let e = bad.compile("customers", &h(&["E"]), &schema()).unwrap_err();
        assert!(
            e.contains("the site's customers do not have: 'Colour'"),
            "{e}"
        );
        assert!(
            toml::from_str::<MappingFile>("kind = \"customers\"\n[[column]]\nsorce = \"E\"\n")
                .is_err()
        );
    }

    #[test]
    fn crm_contact_templates_give_contacts_their_company() {
        let cases = [
            (
                include_str!("../templates/salesforce-contacts.toml"),
                vec!["Email", "First Name", "Last Name", "Account Name"],
            ),
            (
                include_str!("../templates/salesforce-contacts.toml"),
                vec!["EMAIL", "FIRSTNAME", "LASTNAME", "ACCOUNT.NAME"],
            ),
            (
                include_str!("../templates/hubspot-contacts.toml"),
                vec!["Email", "First Name", "Last Name", "Associated Company"],
            ),
            (
                include_str!("../templates/hubspot-contacts.toml"),
                vec!["Email", "First Name", "Last Name", "Company Name"],
            ),
            (
                include_str!("../templates/zendesk-users.toml"),
                vec!["name", "email", "organization"],
            ),
        ];
        for (text, header) in cases {
            let m: MappingFile = toml::from_str(text).unwrap();
            let c = m.compile("customers", &h(&header), &schema()).unwrap();
            let at = c
                .header
                .iter()
                .position(|f| f == "organizations")
                .unwrap_or_else(|| panic!("{header:?}: {:?}", c.header));
            let company = header.len() - 1;
            let mut cells: Vec<String> = header.iter().map(|_| String::new()).collect();
            cells[company] = " Acme Pty Ltd ".into();
            let row = csv::StringRecord::from(cells);
            assert_eq!(c.apply(&row)[at], "Acme Pty Ltd", "{header:?}");
        }
    }

    #[test]
    fn by_links_organizations_by_a_detail_field_and_falls_back_to_names() {
        // (template, header, `by` in use, the column read, its value)
        let cases: [(&str, &[&str], Option<&str>, &str, &str); 5] = [
            // Data Export: the account id, found by External ID.
            (
                include_str!("../templates/salesforce-contacts.toml"),
                &["Id", "AccountId", "FirstName", "LastName", "Email"],
                Some("External ID"),
                "AccountId",
                "0015g00000Xa001AAA",
            ),
            // A report export with no id column: the account's name.
            (
                include_str!("../templates/salesforce-contacts.toml"),
                &["First Name", "Last Name", "Email", "Account Name"],
                None,
                "Account Name",
                "Acme",
            ),
            (
                include_str!("../templates/hubspot-contacts.toml"),
                &[
                    "Record ID",
                    "First Name",
                    "Last Name",
                    "Email",
                    "Associated Company",
                    "Associated Company IDs",
                ],
                Some("External ID"),
                "Associated Company IDs",
                "123;456",
            ),
            (
                include_str!("../templates/zendesk-users.toml"),
                &["id", "name", "email", "organization_id"],
                Some("External ID"),
                "organization_id",
                "360001",
            ),
            (
                include_str!("../templates/zendesk-users.toml"),
                &["name", "email", "organization"],
                None,
                "organization",
                "Acme",
            ),
        ];
        for (text, header, by, column, value) in cases {
            let m: MappingFile = toml::from_str(text).unwrap();
            let c = m.compile("customers", &h(header), &crm_schema()).unwrap();
            assert_eq!(c.organizations_by.as_deref(), by, "{header:?}");
            let at = c.header.iter().position(|f| f == "organizations").unwrap();
            let mut cells: Vec<String> = header.iter().map(|_| String::new()).collect();
            cells[header.iter().position(|h| *h == column).unwrap()] = value.into();
            let row = csv::StringRecord::from(cells);
            assert_eq!(c.apply(&row)[at], value, "{header:?}");
        }
        // `by` belongs to the organizations column of a customers mapping.
        for bad in [
            "kind = \"customers\"\n[[column]]\nsource = \"x\"\nfield = \"email\"\nby = \"External ID\"",
            "kind = \"organizations\"\n[[column]]\nsource = \"x\"\nfield = \"organizations\"\nby = \"External ID\"",
            "kind = \"customers\"\n[[column]]\nsource = \"x\"\nfield = \"organizations\"\nby = \" \"",
        ] {
            let m: MappingFile = toml::from_str(bad).unwrap();
            let err = m.compile(&m.kind, &h(&["x"]), &schema()).unwrap_err();
            assert!(err.contains("column rule 1") && err.contains("by"), "{err}");
        }
        // Two rules for one field that are not both optional are still a mistake.
        let m: MappingFile = toml::from_str(
            "kind = \"customers\"\n[[column]]\nsource = \"a\"\nfield = \"email\"\n[[column]]\nsource = \"b\"\nfield = \"email\"",
        )
        .unwrap();
        assert!(
            m.compile("customers", &h(&["a", "b"]), &schema())
                .unwrap_err()
                .contains("fed by two rules")
        );
    }

    #[test]
    fn skip_rules_leave_rows_out_with_the_rule_as_reason() {
        let m: MappingFile = toml::from_str(
            r#"
kind = "customers"
unmapped = "ignore"
skip = [
  { column = "IsDeleted", equals = "TRUE" },
  { column = "role", not_in = ["end-user"] },
  { column = "Stage", in = ["Lost", "Spam"] },
  { column = "Missing", equals = "x", optional = true },
]
[[column]]
source = "email"
field = "email"
"#,
        )
        .unwrap();
        let header = h(&["email", "IsDeleted", "role", "Stage"]);
        let c = m.compile("customers", &header, &schema()).unwrap();
        assert_eq!(c.filter_columns(), ["IsDeleted", "role", "Stage"]);
        let cases: [(&[&str], Option<&str>); 5] = [
            (&["a@x.io", "false", "end-user", "Won"], None),
            (
                &["a@x.io", " true ", "end-user", ""],
                Some("skipped by the mapping: IsDeleted is 'true'"),
            ),
            (
                &["a@x.io", "", "agent", ""],
                Some("skipped by the mapping: role is 'agent', not 'end-user'"),
            ),
            (
                &["a@x.io", "", "End-User", "spam"],
                Some("skipped by the mapping: Stage is 'spam' (one of 'lost', 'spam')"),
            ),
            // An empty role is not an end user either.
            (
                &["a@x.io", "", "", ""],
                Some("skipped by the mapping: role is '', not 'end-user'"),
            ),
        ];
        for (cells, want) in cases {
            let row = csv::StringRecord::from(cells.to_vec());
            assert_eq!(c.skip_reason(&row).as_deref(), want, "{cells:?}");
        }
        for bad in [
            "kind = \"customers\"\nskip = [{ column = \"email\" }]",
            "kind = \"customers\"\nskip = [{ column = \"email\", equals = \"a\", in = [\"b\"] }]",
            "kind = \"customers\"\nskip = [{ column = \"nope\", equals = \"a\" }]",
        ] {
            let m: MappingFile = toml::from_str(bad).unwrap();
            let err = m
                .compile("customers", &h(&["email"]), &schema())
                .unwrap_err();
            assert!(err.starts_with("skip rule 1"), "{err}");
        }
    }

    #[test]
    fn value_maps_fall_back_to_default_and_required_fields_are_never_blanked() {
        let m: MappingFile = toml::from_str(
            r#"
kind = "customers"
[[column]]
source = "email"
field = "email"
[[column]]
source = "Stage"
field = "Customer Tier"
map = { Won = "Premium" }
default = "Free"
on_invalid = "blank"
"#,
        )
        .unwrap();
        let c = m
            .compile("customers", &h(&["email", "Stage"]), &schema())
            .unwrap();
        assert_eq!(c.on_invalid, [None, Some(OnInvalid::Blank)]);
        for (cell, want) in [("won", "Premium"), ("Trade Show", "Free"), ("", "")] {
            let row = h(&["a@x.io", cell]);
            assert_eq!(c.apply(&row)[1], want, "{cell}");
        }
        for bad in [
            "kind = \"customers\"\n[[column]]\nsource = \"e\"\nfield = \"email\"\non_invalid = \"blank\"",
            "kind = \"customers\"\n[[column]]\nsource = \"e\"\nfield = \"organizations\"\non_invalid = \"blank\"",
            "kind = \"organizations\"\n[[column]]\nsource = \"e\"\nfield = \"name\"\non_invalid = \"blank\"",
        ] {
            let m: MappingFile = toml::from_str(bad).unwrap();
            let e = m.compile(&m.kind, &h(&["e"]), &schema()).unwrap_err();
            assert!(e.contains("is required"), "{e}");
        }
        let m: MappingFile = toml::from_str(
            "kind = \"customers\"\n[[column]]\nsource = \"e\"\nfield = \"email\"\ndefault = \"x\"",
        )
        .unwrap();
        let e = m.compile("customers", &h(&["e"]), &schema()).unwrap_err();
        assert!(e.contains("give a `map` too"), "{e}");
    }

    #[test]
    fn a_key_is_a_field_an_organizations_rule_feeds() {
        let orgs = |extra: &str| -> Result<Compiled, String> {
            let m: MappingFile = toml::from_str(&format!(
                "kind = \"organizations\"\n{extra}\n[[column]]\nsource = \"Name\"\nfield = \"name\"\n[[column]]\nsource = \"Id\"\nfield = \"Region\"\n"
            ))
            .unwrap();
            m.compile("organizations", &h(&["Name", "Id"]), &schema())
        };
        assert_eq!(
            orgs("key = \"region\"").unwrap().key.as_deref(),
            Some("Region")
        );
        assert!(orgs("").unwrap().key.is_none());
        let e = orgs("key = \"External ID\"").unwrap_err();
        assert!(e.contains("no rule feeds 'External ID'"), "{e}");
        let m: MappingFile = toml::from_str(
            "kind = \"customers\"\nkey = \"Region\"\n[[column]]\nsource = \"e\"\nfield = \"email\"\n[[column]]\nsource = \"r\"\nfield = \"Region\"\n",
        )
        .unwrap();
        let c = m.compile("customers", &h(&["e", "r"]), &schema()).unwrap();
        assert_eq!(c.key.as_deref(), Some("Region"));
    }
}
