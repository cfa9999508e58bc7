//! Map stage of the profile kinds: matches the input's header to CSM customer or organization
//! fields (case- and whitespace-insensitive), then turns each raw row into a profile item or a
//! list of cell errors. Used through `kinds::columns` by the kinds and `validate`; `validate`
//! (the module) checks each cell.

use crate::read::Cells;
use crate::schema::{FieldDef, Schema};
use crate::site::api::model::{
    AssociateOrganizations, CustomerProfileItem, CustomerProfilePayload, DetailValue,
    OrganizationProfileItem, OrganizationProfilePayload, ProfileOperation,
};
use crate::validate::{self, CellRules};

pub const COL_EMAIL: &str = "email";
pub const COL_DISPLAY_NAME: &str = "displayName";
pub const COL_ORGANIZATIONS: &str = "organizations";

pub const COL_ID: &str = "id";
pub const COL_NAME: &str = "name";
pub use crate::site::api::MAX_ORGANIZATION_NAME_CHARS;

use crate::kind::Kind;

/// What one input column feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Email,
    DisplayName,
    Organizations,
    /// An organization's id, or its name.
    Id,
    Name,
    /// Index into `Schema::fields`.
    Detail(usize),
    /// Report columns (`_row`, `_error`, ...) and, with `--ignore-unknown-columns`, unknown ones.
    Ignored,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub targets: Vec<Target>,
    /// Columns skipped because they match nothing (only with `--ignore-unknown-columns`).
    pub ignored_unknown: Vec<UnknownColumn>,
    /// Things the user should know about the header (unnamed columns), for the report.
    pub notes: Vec<String>,
    /// A mapping's `by`: the `organizations` cells are values of this organization detail
    /// field (a CRM's own id), not names or CSM ids.
    pub organizations_by: Option<String>,
    /// Per column: an invalid value there is left out of the row (a warning), not a failure.
    /// Only detail fields are ever marked; empty when none is.
    pub blank: Vec<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("{}", unknown_message(.0, .1))]
    UnknownColumns(Vec<UnknownColumn>, &'static str),
    #[error("columns {first} and {second} both map to '{target}'; keep one of them")]
    DuplicateTarget {
        target: String,
        first: String,
        second: String,
    },
    #[error("no 'email' column: customers are identified by email (header has: {0})")]
    MissingEmail(String),
    #[error(
        "no 'name' or 'id' column: organizations are identified by name or id (header has: {0})"
    )]
    MissingIdentifier(String),
    #[error("duplicate column '{name}' (columns {first} and {second}); rename or remove one")]
    DuplicateHeader {
        name: String,
        first: usize,
        second: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownColumn {
    pub index: usize,
    pub name: String,
    pub closest: Option<String>,
}

impl UnknownColumn {
    /// For a note: `'Custmer Tier' (column 2; did you mean 'Customer Tier'?)`.
    pub fn describe(&self) -> String {
        match &self.closest {
            Some(c) => format!(
                "'{}' (column {}; did you mean '{c}'?)",
                shorten(&self.name),
                self.index + 1
            ),
            None => format!("'{}' (column {})", shorten(&self.name), self.index + 1),
        }
    }
}

/// The note a run prints about the columns `--ignore-unknown-columns` left out: the first
/// few, then how many in all.
pub fn ignored_note(cols: &[UnknownColumn]) -> Option<String> {
    if cols.is_empty() {
        return None;
    }
    let mut listed: Vec<String> = cols
        .iter()
        .take(LISTED)
        .map(UnknownColumn::describe)
        .collect();
    if cols.len() > LISTED {
        listed.push(format!("and {} more", cols.len() - LISTED));
    }
    let n = cols.len();
    Some(format!(
        "--ignore-unknown-columns: {n} column{} {} no field and {} not imported: {}",
        if n == 1 { "" } else { "s" },
        if n == 1 { "matches" } else { "match" },
        if n == 1 { "is" } else { "are" },
        listed.join(", ")
    ))
}

/// How many columns a message names before it says how many more there are (a hostile file
/// can have a hundred thousand).
const LISTED: usize = 10;

/// The header for a message: its first columns, then how many more.
pub fn header_list(header: &[String]) -> String {
    let mut s = header
        .iter()
        .take(LISTED)
        .map(|h| shorten(h))
        .collect::<Vec<_>>()
        .join(", ");
    if header.len() > LISTED {
        s.push_str(&format!(", … ({} columns in all)", header.len()));
    }
    s
}

/// A header cell for a message: at most 60 characters.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_string(),
    }
}

fn unknown_message(cols: &[UnknownColumn], noun: &str) -> String {
    let mut parts: Vec<String> = cols
        .iter()
        .take(LISTED)
        .map(|c| {
            let mut s = format!(
                "unknown column '{}' (column {})",
                shorten(&c.name),
                c.index + 1
            );
            if let Some(close) = &c.closest {
                s.push_str(&format!(": did you mean '{close}'?"));
            } else {
                s.push_str(&format!(": it matches no {noun} field"));
            }
            s
        })
        .collect();
    if cols.len() > LISTED {
        parts.push(format!("and {} more unknown columns", cols.len() - LISTED));
    }
    format!(
        "{}; rename it to a known field, add the detail field on the site, or pass --ignore-unknown-columns to skip it",
        parts.join("; ")
    )
}

/// Header matching key: case-insensitive, all whitespace (and a stray BOM, and the formula
/// guard csmport's reports and exports put before a header like `=x`) removed.
pub fn normalize(name: &str) -> String {
    crate::read::unescape_formula(name.trim_start_matches('\u{feff}').trim())
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{feff}')
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn map_header(
    header: &[String],
    schema: &Schema,
    ignore_unknown: bool,
) -> Result<Mapping, MapError> {
    map_header_for(Kind::Customers, header, schema, ignore_unknown)
}

pub fn map_header_for(
    kind: Kind,
    header: &[String],
    schema: &Schema,
    ignore_unknown: bool,
) -> Result<Mapping, MapError> {
    let base: &[(&str, Target)] = match kind {
        Kind::Customers => &[
            (COL_EMAIL, Target::Email),
            (COL_DISPLAY_NAME, Target::DisplayName),
            (COL_ORGANIZATIONS, Target::Organizations),
            // An export's last column: the row is that customer.
            (COL_ID, Target::Id),
        ],
        Kind::CustomerAccounts => &[
            (COL_EMAIL, Target::Email),
            (COL_DISPLAY_NAME, Target::DisplayName),
            (COL_ID, Target::Id),
        ],
        // Organizations of either endpoint (only record kinds are mapped by columns).
        _ => &[(COL_ID, Target::Id), (COL_NAME, Target::Name)],
    };
    let mut known: Vec<(String, Target, String)> = base
        .iter()
        .map(|(n, t)| (normalize(n), *t, n.to_string()))
        .collect();
    for (i, f) in schema.fields.iter().enumerate() {
        known.push((normalize(&f.name), Target::Detail(i), f.name.clone()));
    }
    let mut targets = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    let mut ignored_unknown = Vec::new();
    let mut seen: Vec<(Target, &str)> = Vec::new();
    let mut notes = Vec::new();
    let mut names_seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, name) in header.iter().enumerate() {
        let key = normalize(name);
        if key.is_empty() {
            notes.push(format!(
                "column {} has no header; its values are not imported",
                index + 1
            ));
            targets.push(Target::Ignored);
            continue;
        }
        if let Some(first) = names_seen.insert(key.clone(), index + 1) {
            return Err(MapError::DuplicateHeader {
                name: name.trim().to_string(),
                first,
                second: index + 1,
            });
        }
        if name
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('_')
        {
            targets.push(Target::Ignored);
            continue;
        }
        match known.iter().find(|(k, _, _)| *k == key) {
            Some((_, target, canonical)) => {
                if let Some((_, first)) = seen.iter().find(|(t, _)| t == target) {
                    return Err(MapError::DuplicateTarget {
                        target: canonical.clone(),
                        first: format!("'{first}'"),
                        second: format!("'{name}' (column {})", index + 1),
                    });
                }
                seen.push((*target, name));
                targets.push(*target);
            }
            None => {
                let closest = validate::closest(name, known.iter().map(|(_, _, c)| c.as_str()))
                    .map(str::to_string);
                let column = UnknownColumn {
                    index,
                    name: name.clone(),
                    closest,
                };
                if ignore_unknown {
                    ignored_unknown.push(column);
                } else {
                    unknown.push(column);
                }
                targets.push(Target::Ignored);
            }
        }
    }
    if !unknown.is_empty() {
        return Err(MapError::UnknownColumns(unknown, kind.noun()));
    }
    match kind {
        Kind::Customers if !targets.contains(&Target::Email) => {
            return Err(MapError::MissingEmail(header_list(header)));
        }
        Kind::CustomerAccounts
            if !targets.contains(&Target::Email) && !targets.contains(&Target::Id) =>
        {
            return Err(MapError::MissingEmail(header_list(header)));
        }
        Kind::Organizations | Kind::OrganizationAccounts
            if !targets.contains(&Target::Name) && !targets.contains(&Target::Id) =>
        {
            return Err(MapError::MissingIdentifier(header_list(header)));
        }
        _ => {}
    }
    Ok(Mapping {
        targets,
        ignored_unknown,
        notes,
        organizations_by: None,
        blank: Vec::new(),
    })
}

/// What became of one input column (summary.json `columns`): imported into a field, read by
/// a skip rule, or not imported and why. Every column of the input has one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnUse {
    pub column: String,
    /// `imported`, `filter` or `not imported`.
    pub status: String,
    /// The CSM field(s) it feeds (`organizations (by External ID)` for a link by a CRM id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why it is not imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A few of its values, for a column not imported (so a person can tell what is left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// How many example values a column not imported keeps, and how long each may be.
const EXAMPLES: usize = 3;
const EXAMPLE_CHARS: usize = 40;
/// Examples are looked for in the first rows only: a column empty there is reported without
/// any, rather than every row of a large file paying for the search.
const EXAMPLE_ROWS: u32 = 10_000;

/// Collects a few values of the columns not imported, as rows go by: at most `EXAMPLES` of
/// `EXAMPLE_CHARS` per column, so what it holds does not grow with the file.
pub struct Examples {
    wanted: Vec<(usize, Vec<String>)>,
    open: usize,
    rows_left: u32,
}

impl Examples {
    pub fn new(uses: &[ColumnUse]) -> Examples {
        let wanted: Vec<(usize, Vec<String>)> = uses
            .iter()
            .enumerate()
            .filter(|(_, u)| u.status == NOT_IMPORTED)
            .map(|(i, _)| (i, Vec::new()))
            .collect();
        Examples {
            open: wanted.len(),
            wanted,
            rows_left: EXAMPLE_ROWS,
        }
    }

    pub fn see(&mut self, cells: &(impl Cells + ?Sized)) {
        if self.open == 0 || self.rows_left == 0 {
            return;
        }
        self.rows_left -= 1;
        for (i, got) in &mut self.wanted {
            if got.len() >= EXAMPLES {
                continue;
            }
            let v = cells.cell(*i).trim();
            if v.is_empty() {
                continue;
            }
            let v = match v.char_indices().nth(EXAMPLE_CHARS) {
                Some((at, _)) => format!("{}…", &v[..at]),
                None => v.to_string(),
            };
            if !got.contains(&v) {
                got.push(v);
                if got.len() == EXAMPLES {
                    self.open -= 1;
                }
            }
        }
    }

    pub fn fill(self, uses: &mut [ColumnUse]) {
        for (i, got) in self.wanted {
            if let Some(u) = uses.get_mut(i) {
                u.examples = got;
            }
        }
    }
}

pub const IMPORTED: &str = "imported";
pub const FILTER: &str = "filter";
pub const NOT_IMPORTED: &str = "not imported";
/// Why a column `--ignore-unknown-columns` left out is not imported.
pub const IGNORED_UNKNOWN: &str = "matches no field (--ignore-unknown-columns)";

impl ColumnUse {
    pub fn imported(column: &str, field: impl Into<String>) -> ColumnUse {
        ColumnUse {
            column: column.to_string(),
            status: IMPORTED.into(),
            field: Some(field.into()),
            reason: None,
            examples: Vec::new(),
        }
    }

    pub fn filter(column: &str) -> ColumnUse {
        ColumnUse {
            column: column.to_string(),
            status: FILTER.into(),
            field: None,
            reason: Some("read by a skip rule of the mapping".into()),
            examples: Vec::new(),
        }
    }

    /// A column that is no field by its header alone: none, or a report column csmport writes.
    pub fn by_header(column: &str) -> Option<ColumnUse> {
        let reason = if column.trim().is_empty() {
            "the column has no header"
        } else if column
            .trim_start_matches('\u{feff}')
            .trim_start()
            .starts_with('_')
        {
            "a report column (csmport writes it)"
        } else {
            return None;
        };
        Some(ColumnUse::not_imported(column, reason))
    }

    /// A column no field takes: by its header, or else for the reason `otherwise`.
    pub fn unmatched(column: &str, otherwise: &str) -> ColumnUse {
        ColumnUse::by_header(column).unwrap_or_else(|| ColumnUse::not_imported(column, otherwise))
    }

    pub fn not_imported(column: &str, reason: impl Into<String>) -> ColumnUse {
        ColumnUse {
            column: column.to_string(),
            status: NOT_IMPORTED.into(),
            field: None,
            reason: Some(reason.into()),
            examples: Vec::new(),
        }
    }
}

/// The one-line account of the columns for the terminal: how many are not imported, the first
/// few named.
pub fn columns_note(uses: &[ColumnUse]) -> Option<String> {
    let left: Vec<&ColumnUse> = uses.iter().filter(|u| u.status == NOT_IMPORTED).collect();
    if left.is_empty() {
        return None;
    }
    let mut names: Vec<String> = left
        .iter()
        .take(LISTED)
        .map(|u| format!("'{}'", shorten(&u.column)))
        .collect();
    if left.len() > LISTED {
        names.push(format!("and {} more", left.len() - LISTED));
    }
    Some(format!(
        "{} of {} columns not imported: {} (summary.json `columns` says why for each)",
        left.len(),
        uses.len(),
        names.join(", ")
    ))
}

impl Mapping {
    /// Whether an invalid value in column `i` is left out of its row instead of failing it.
    pub fn blanks(&self, i: usize) -> bool {
        self.blank.get(i).copied().unwrap_or(false)
    }

    /// Marks the detail-field columns whose invalid values are left out: `choice(i)` is a
    /// mapping rule's `on_invalid` for column `i`, else `all` (`--invalid-values blank`).
    pub fn set_blank(&mut self, all: bool, choice: impl Fn(usize) -> Option<bool>) {
        let blank: Vec<bool> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| matches!(t, Target::Detail(_)) && choice(i).unwrap_or(all))
            .collect();
        // Empty when nothing is marked: the per-row check is then one length test.
        self.blank = if blank.contains(&true) {
            blank
        } else {
            Vec::new()
        };
    }

    /// The cells whose invalid values are left out of the row: (column, value, why). `cell`
    /// gives column `i`'s cell as `map` sees it; only the marked columns are asked for.
    pub fn blanked<'c>(
        &self,
        header: &[String],
        schema: &Schema,
        rules: &CellRules,
        cell: impl Fn(usize) -> std::borrow::Cow<'c, str>,
    ) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for (i, t) in self.targets.iter().enumerate() {
            let Target::Detail(fi) = t else { continue };
            if !self.blanks(i) {
                continue;
            }
            let cell = cell(i);
            if let Err(why) =
                validate::detail_check(&schema.fields[*fi], &cell, rules, &mut |_, _| {})
            {
                out.push((
                    header.get(i).cloned().unwrap_or_default(),
                    cell.into_owned(),
                    format!("{why}; imported without it"),
                ));
            }
        }
        out
    }

    /// What became of each column of `header` (mapped without a mapping file).
    pub fn uses(&self, header: &[String], schema: &Schema) -> Vec<ColumnUse> {
        header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let target = self.targets.get(i).copied().unwrap_or(Target::Ignored);
                let field = match target {
                    Target::Email => COL_EMAIL.to_string(),
                    Target::DisplayName => COL_DISPLAY_NAME.to_string(),
                    Target::Organizations => COL_ORGANIZATIONS.to_string(),
                    Target::Id => COL_ID.to_string(),
                    Target::Name => COL_NAME.to_string(),
                    Target::Detail(d) => schema.fields[d].name.clone(),
                    Target::Ignored => return ColumnUse::unmatched(name, IGNORED_UNKNOWN),
                };
                ColumnUse::imported(name, field)
            })
            .collect()
    }
}

/// One problem with one cell of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    pub field: String,
    pub message: String,
}

/// Builds the bulk item for one row, or every cell error in it (not just the first, so a user
/// fixes a row once). Also returns the organization names the row names, which `resolve` turns
/// into ids before the batch is sent (with `organizations_by`, the values of that field the
/// organizations are found by).
pub fn customer_item(
    mapping: &Mapping,
    header: &[String],
    schema: &Schema,
    cells: &(impl Cells + ?Sized),
    op: ProfileOperation,
    rules: &CellRules,
) -> Result<(CustomerProfileItem, Vec<String>), Vec<CellError>> {
    let mut payload = CustomerProfilePayload::default();
    let mut details = Vec::new();
    let mut errors = Vec::new();
    let mut org_names = Vec::new();
    let mut email_col = None;
    for (i, target) in mapping.targets.iter().enumerate() {
        let cell = cells.cell(i);
        let column = || header.get(i).cloned().unwrap_or_default();
        match target {
            Target::Ignored | Target::Name => {}
            // Only customer accounts take an id column: the customer to update.
            Target::Id => {
                let v = validate::trim(cell);
                if !v.is_empty() {
                    payload.customer_id = Some(v.to_string());
                }
            }
            Target::Email => {
                let v = validate::trim(cell);
                if v.is_empty() {
                    // Decided after the row: an account may be named by its id instead.
                    email_col = Some(i);
                } else {
                    match validate::email(v) {
                        Ok(v) => payload.email = Some(v),
                        Err(message) => errors.push(CellError {
                            field: column(),
                            message,
                        }),
                    }
                }
            }
            Target::DisplayName => {
                let v = validate::trim(cell);
                if !v.is_empty() {
                    match validate::text(v, validate::MAX_NAME_CHARS) {
                        Ok(v) => payload.display_name = Some(v),
                        Err(message) => errors.push(CellError {
                            field: column(),
                            message,
                        }),
                    }
                }
            }
            Target::Organizations if mapping.organizations_by.is_some() => {
                match validate::external_refs(cell) {
                    Ok(values) => org_names = values,
                    Err(message) => errors.push(CellError {
                        field: column(),
                        message,
                    }),
                }
            }
            Target::Organizations => match validate::organization_refs(cell) {
                Ok((ids, names)) => {
                    org_names = names;
                    if !ids.is_empty() {
                        payload.associate_organizations = Some(AssociateOrganizations {
                            organization_ids: ids,
                        })
                    }
                }
                Err(message) => errors.push(CellError {
                    field: column(),
                    message,
                }),
            },
            Target::Detail(fi) => {
                if let Err(message) = detail_cell(&schema.fields[*fi], cell, rules, &mut details)
                    && !mapping.blanks(i)
                {
                    errors.push(CellError {
                        field: column(),
                        message,
                    });
                }
            }
        }
    }
    if let (Some(i), None) = (email_col, &payload.customer_id) {
        errors.insert(
            0,
            CellError {
                field: header.get(i).cloned().unwrap_or_default(),
                message: "email is empty; every customer needs an email address".into(),
            },
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !details.is_empty() {
        payload.details = Some(details);
    }
    Ok((
        CustomerProfileItem {
            operation_type: op,
            payload,
        },
        org_names,
    ))
}

/// The checks of `customer_item` without building the item (for `validate`): returns the
/// row's email, borrowed from the cells, or every cell error.
pub fn check_customer<'c>(
    mapping: &Mapping,
    header: &[String],
    schema: &Schema,
    cells: &'c (impl Cells + ?Sized),
    rules: &CellRules,
    respelled: &mut dyn FnMut(&str, &str, &str),
) -> Result<&'c str, Vec<CellError>> {
    let mut email = "";
    let mut errors = Vec::new();
    for (i, target) in mapping.targets.iter().enumerate() {
        let cell = cells.cell(i);
        let fail = |message: String| CellError {
            field: header.get(i).cloned().unwrap_or_default(),
            message,
        };
        let result = match target {
            Target::Ignored | Target::Id | Target::Name => Ok(()),
            Target::Email => {
                email = validate::trim(cell);
                if email.is_empty() {
                    Err("email is empty; every customer needs an email address".to_string())
                } else {
                    validate::email_ok(email)
                }
            }
            Target::DisplayName => {
                let v = validate::trim(cell);
                if v.len() > validate::MAX_NAME_CHARS {
                    validate::text(v, validate::MAX_NAME_CHARS).map(|_| ())
                } else {
                    Ok(())
                }
            }
            Target::Organizations if mapping.organizations_by.is_some() => {
                validate::external_refs(cell).map(|_| ())
            }
            Target::Organizations => validate::organization_refs_ok(cell),
            Target::Detail(fi) => {
                let def = &schema.fields[*fi];
                validate::detail_check(def, cell, rules, &mut |from, to| {
                    respelled(&def.name, from, to)
                })
                .or_else(|m| if mapping.blanks(i) { Ok(()) } else { Err(m) })
            }
        };
        if let Err(m) = result {
            errors.push(fail(m));
        }
    }
    if errors.is_empty() {
        Ok(email)
    } else {
        Err(errors)
    }
}

/// Checks one detail-field cell and, when it holds a value, adds it to `details`.
fn detail_cell(
    def: &FieldDef,
    cell: &str,
    rules: &CellRules,
    details: &mut Vec<DetailValue>,
) -> Result<(), String> {
    if let Some(values) = validate::detail_value(def, cell, rules)? {
        details.push(DetailValue {
            name: def.name.clone(),
            values,
        });
    }
    Ok(())
}

/// Builds the organization bulk item for one row, or every cell error in it; also returns the
/// row's identifying key (its name normalized, else its id) for duplicate detection.
pub fn organization_item(
    mapping: &Mapping,
    header: &[String],
    schema: &Schema,
    cells: &(impl Cells + ?Sized),
    op: ProfileOperation,
    rules: &CellRules,
) -> Result<(OrganizationProfileItem, String), Vec<CellError>> {
    let mut payload = OrganizationProfilePayload::default();
    let mut details = Vec::new();
    let mut errors = Vec::new();
    for (i, target) in mapping.targets.iter().enumerate() {
        let cell = cells.cell(i);
        let mut fail = |message: String| {
            errors.push(CellError {
                field: header.get(i).cloned().unwrap_or_default(),
                message,
            })
        };
        match target {
            Target::Id => {
                let v = validate::trim(cell);
                if v.is_empty() {
                } else if v.bytes().all(|b| b.is_ascii_digit()) {
                    payload.id = Some(v.to_string());
                } else {
                    fail(format!(
                        "'{v}' is not an organization id (ids are numbers such as 123)"
                    ));
                }
            }
            Target::Name => {
                let v = validate::trim(cell);
                if !v.is_empty() {
                    match validate::text(v, MAX_ORGANIZATION_NAME_CHARS) {
                        Ok(v) => payload.name = Some(v),
                        Err(m) => fail(m),
                    }
                }
            }
            Target::Detail(fi) => {
                if let Err(m) = detail_cell(&schema.fields[*fi], cell, rules, &mut details)
                    && !mapping.blanks(i)
                {
                    fail(m);
                }
            }
            Target::Ignored | Target::Email | Target::DisplayName | Target::Organizations => {}
        }
    }
    if payload.id.is_none() && payload.name.is_none() && errors.is_empty() {
        errors.push(CellError {
            field: COL_NAME.into(),
            message: "name is empty; every organization needs a name (or an id)".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let key = payload
        .name
        .as_deref()
        .map(crate::row::match_key)
        .or_else(|| payload.id.as_ref().map(|id| format!("#{id}")))
        .unwrap_or_default();
    if !details.is_empty() {
        payload.details = Some(details);
    }
    Ok((
        OrganizationProfileItem {
            operation_type: op,
            payload,
        },
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldDef, FieldKind};

    fn schema() -> Schema {
        Schema {
            fields: vec![
                FieldDef {
                    name: "Customer Tier".into(),
                    kind: FieldKind::Select,
                    options: vec!["Free".into(), "Premium".into()],
                },
                FieldDef {
                    name: "Renewal Date".into(),
                    kind: FieldKind::Date,
                    options: vec![],
                },
            ],
        }
    }

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_matching_is_case_and_whitespace_insensitive() {
        let m = map_header(
            &h(&[
                "\u{feff}Email",
                " display name ",
                "customertier",
                "RENEWAL  DATE",
                "_row",
            ]),
            &schema(),
            false,
        )
        .unwrap();
        assert_eq!(
            m.targets,
            vec![
                Target::Email,
                Target::DisplayName,
                Target::Detail(0),
                Target::Detail(1),
                Target::Ignored
            ]
        );
    }

    #[test]
    fn unknown_columns_name_the_closest_field() {
        let err = map_header(
            &h(&["email", "Custmer Tier", "zzzzzzzzzz"]),
            &schema(),
            false,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("unknown column 'Custmer Tier' (column 2): did you mean 'Customer Tier'?"),
            "{msg}"
        );
        assert!(
            msg.contains("'zzzzzzzzzz' (column 3): it matches no customer field"),
            "{msg}"
        );
        let m = map_header(&h(&["email", "Custmer Tier"]), &schema(), true).unwrap();
        assert_eq!(
            m.ignored_unknown,
            vec![UnknownColumn {
                index: 1,
                name: "Custmer Tier".into(),
                closest: Some("Customer Tier".into())
            }]
        );
    }

    #[test]
    fn missing_email_and_duplicates() {
        assert!(matches!(
            map_header(&h(&["displayName"]), &schema(), false),
            Err(MapError::MissingEmail(_))
        ));
        assert!(matches!(
            map_header(&h(&["email", "E mail"]), &schema(), false),
            Err(MapError::DuplicateHeader { .. })
        ));
        assert!(matches!(
            map_header(&h(&["email", "Notes", "notes"]), &schema(), true),
            Err(MapError::DuplicateHeader {
                first: 2,
                second: 3,
                ..
            })
        ));
        let m = map_header(&h(&["email", "", " "]), &schema(), false).unwrap();
        assert_eq!(
            m.notes,
            vec![
                "column 2 has no header; its values are not imported",
                "column 3 has no header; its values are not imported"
            ]
        );
    }

    #[test]
    fn rows_become_items_or_all_their_errors() {
        let header = h(&[
            "email",
            "displayName",
            "organizations",
            "Customer Tier",
            "Renewal Date",
        ]);
        let m = map_header(&header, &schema(), false).unwrap();
        let (ok, names) = customer_item(
            &m,
            &header,
            &schema(),
            &h(&[" A@x.io ", "Ann", "1;Acme;2", "premium", ""]),
            ProfileOperation::Upsert,
            &CellRules::default(),
        )
        .unwrap();
        assert_eq!(names, vec!["Acme"], "names are resolved on the site later");
        assert_eq!(ok.payload.email.as_deref(), Some("A@x.io"));
        assert_eq!(
            ok.payload.associate_organizations.unwrap().organization_ids,
            vec!["1", "2"]
        );
        assert_eq!(
            ok.payload.details.unwrap(),
            vec![DetailValue {
                name: "Customer Tier".into(),
                values: vec!["Premium".into()]
            }]
        );
        let errs = customer_item(
            &m,
            &header,
            &schema(),
            &h(&["", "Bo", &"x".repeat(300), "Gold", "31/12/2026"]),
            ProfileOperation::Upsert,
            &CellRules::default(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["email", "organizations", "Customer Tier", "Renewal Date"]
        );
    }
}
