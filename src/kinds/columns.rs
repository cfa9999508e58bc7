//! The columns of the profile kinds (customers, organizations and their accounts): the
//! detail-field definitions rows are checked against, an optional mapping file, and the
//! header mapped onto CSM fields (`map`). Shared by those kinds and by `validate`'s intake.

use crate::error::Error;
use crate::kind::Kind;
use crate::map::UnknownColumn;
use crate::map::{self, CellError, Mapping};
use crate::mapfile::{self, Compiled};
use crate::options::{InputOptions, Op};
use crate::read::RawRow;
use crate::schema::Schema;
use crate::site::Site;
use crate::site::api::model::{
    CustomerProfileItem, DetailFieldsWithConfiguration, OrganizationProfileItem, ProfileOperation,
};
use crate::site::api::paths;
use crate::site::client::Client;
use crate::site::external::ExternalIds;
use crate::validate::CellRules;

/// A row's cells as `map` sees them: the input's own, or those a mapping file made of them.
pub enum RowCells<'a> {
    Raw(&'a csv::StringRecord),
    Mapped(Vec<String>),
}

impl crate::read::Cells for RowCells<'_> {
    fn cell(&self, i: usize) -> &str {
        match self {
            RowCells::Raw(r) => r.cell(i),
            RowCells::Mapped(v) => v.cell(i),
        }
    }
}

pub struct Columns {
    /// The input's own header (the reports keep it).
    pub header: Vec<String>,
    /// With a mapping file: the rules, and the header `map` sees.
    compiled: Option<(Compiled, Vec<String>)>,
    pub mapping: Mapping,
    pub schema: Schema,
    pub rules: CellRules,
    pub op: ProfileOperation,
}

/// The detail-field definitions of `kind`'s entity: from `--schema FILE` when given, else from
/// the site (none for the account kinds, which carry no detail values).
pub async fn schema(
    kind: Kind,
    input: &InputOptions,
    client: Option<&Client>,
) -> Result<Schema, Error> {
    if let Some(path) = &input.schema {
        return schema_file(path);
    }
    let path = match kind {
        Kind::Customers => paths::CUSTOMER_DETAILS,
        Kind::Organizations => paths::ORGANIZATION_DETAILS,
        // The account endpoints take no detail values; no other kind is read by columns.
        _ => return Ok(Schema::default()),
    };
    let Some(client) = client else {
        return Err(Error::Usage(
            "no detail-field definitions: pass --schema FILE (the JSON of GET customer/details), or the target options (or --sandbox) to read them from the site"
                .into(),
        ));
    };
    let defs: DetailFieldsWithConfiguration =
        client.get_list(path).await.map_err(Error::from_setup)?;
    Ok(Schema::from_api(&defs))
}

pub fn schema_file(path: &std::path::Path) -> Result<Schema, Error> {
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

impl Columns {
    /// Maps `header` onto `kind`'s fields; any problem stops the run before anything is sent.
    pub fn new(
        kind: Kind,
        kind_name: &str,
        input: &InputOptions,
        header: &[String],
        schema: Schema,
        label: &str,
    ) -> Result<Columns, Error> {
        let compiled = match &input.mapping {
            None => None,
            Some(path) => {
                let m = mapfile::load(path).map_err(|e| Error::Usage(format!("--mapping {e}")))?;
                let c = m.compile(kind_name, header, &schema).map_err(|e| {
                    Error::Usage(format!("--mapping {}: {label}: {e}", path.display()))
                })?;
                let mapped = c.header.clone();
                Some((c, mapped))
            }
        };
        let mapped_header = compiled
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| header.to_vec());
        let mut mapping = map::map_header_for(kind, &mapped_header, &schema, input.ignore_unknown_columns).map_err(|source| {
            // A title line above the table looks like a one-column header.
            if header.iter().filter(|h| !h.trim().is_empty()).count() == 1
                && input.header_row.is_none()
                && matches!(source, map::MapError::UnknownColumns(..))
            {
                return Error::Usage(format!(
                    "{label}: the first row ('{}') does not look like a header; if the header is further down, pass --header-row N",
                    header.iter().find(|h| !h.trim().is_empty()).map(String::as_str).unwrap_or("")
                ));
            }
            Error::Map {
                file: label.to_string(),
                source,
            }
        })?;
        if let Some((c, _)) = &compiled {
            mapping.notes.extend(c.notes.iter().cloned());
            mapping.organizations_by = c.organizations_by.clone();
        }
        if mapping.organizations_by.is_none() && kind == Kind::Customers {
            mapping.organizations_by = input.organizations_by.clone();
        }
        let all = input.invalid_values == crate::options::InvalidValues::Blank;
        mapping.set_blank(all, |i| {
            let (c, _) = compiled.as_ref()?;
            c.on_invalid
                .get(i)
                .copied()
                .flatten()
                .map(|o| o == mapfile::OnInvalid::Blank)
        });
        Ok(Columns {
            header: header.to_vec(),
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
        })
    }

    /// Reads the schema (site or file) and maps the header, for a profile kind's set-up.
    pub async fn open(
        kind: Kind,
        kind_name: &str,
        input: &InputOptions,
        site: &Site,
        header: &[String],
        label: &str,
    ) -> Result<Columns, Error> {
        let schema = schema(kind, input, Some(&site.client)).await?;
        Columns::new(kind, kind_name, input, header, schema, label)
    }

    /// What the run log should say about the columns (the ignored ones are the engine's to
    /// say, on the terminal too).
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self.mapping.notes.clone();
        notes.push(format!("{} detail fields", self.schema.fields.len()));
        notes
    }

    /// The header and cells `map` reads for a row: the input's own, or those a mapping file
    /// made of them.
    pub fn view<'a>(&'a self, raw: &'a RawRow) -> (&'a [String], RowCells<'a>) {
        match &self.compiled {
            Some((c, mapped_header)) => (mapped_header, RowCells::Mapped(c.apply(&raw.cells))),
            None => (&self.header, RowCells::Raw(&raw.cells)),
        }
    }

    /// The mapping's `key` (organizations): the detail field that holds the CRM's id.
    pub fn key(&self) -> Option<&str> {
        self.compiled.as_ref()?.0.key.as_deref()
    }

    /// Column `i` of the header `map` sees, for one row: mapped alone, or the row's own cell.
    fn cell_at<'a>(
        &self,
        cells: &'a (impl crate::read::Cells + ?Sized),
        i: usize,
    ) -> std::borrow::Cow<'a, str> {
        match &self.compiled {
            Some((c, _)) => std::borrow::Cow::Owned(c.apply_at(i, cells)),
            None => std::borrow::Cow::Borrowed(cells.cell(i)),
        }
    }

    /// The header `map` sees.
    fn mapped_header(&self) -> &[String] {
        match &self.compiled {
            Some((_, h)) => h,
            None => &self.header,
        }
    }

    /// The values a customer row names its organizations by (with a `by` field), as the
    /// mapping makes them; empty without one.
    pub fn org_refs(&self, cells: &(impl crate::read::Cells + ?Sized)) -> Vec<String> {
        if self.mapping.organizations_by.is_none() {
            return Vec::new();
        }
        let Some(i) = self
            .mapping
            .targets
            .iter()
            .position(|t| *t == map::Target::Organizations)
        else {
            return Vec::new();
        };
        crate::validate::external_refs(&self.cell_at(cells, i)).unwrap_or_default()
    }

    /// What became of each input column.
    pub fn uses(&self) -> Vec<map::ColumnUse> {
        match &self.compiled {
            Some((c, _)) => c.columns.clone(),
            None => self.mapping.uses(&self.header, &self.schema),
        }
    }

    /// The cells of a valid row that were left out for an invalid value: (the column or the
    /// field it feeds, its value, why). Empty at once when no column is marked.
    pub fn warnings(
        &self,
        cells: &(impl crate::read::Cells + ?Sized),
    ) -> Vec<(String, String, String)> {
        if self.mapping.blank.is_empty() {
            return Vec::new();
        }
        // With a mapping, a column is named by the field it feeds, as failures.csv names it.
        self.mapping
            .blanked(self.mapped_header(), &self.schema, &self.rules, |i| {
                self.cell_at(cells, i)
            })
    }

    /// Why the mapping's skip rules leave this row out, if they do.
    pub fn skip(&self, cells: &(impl crate::read::Cells + ?Sized)) -> Option<String> {
        self.compiled.as_ref()?.0.skip_reason(cells)
    }

    /// A customer row's item and the organization names it gives, or its cell errors.
    pub fn customer(
        &self,
        raw: &RawRow,
    ) -> Result<(CustomerProfileItem, Vec<String>), Vec<CellError>> {
        let (header, cells) = self.view(raw);
        map::customer_item(
            &self.mapping,
            header,
            &self.schema,
            &cells,
            self.op,
            &self.rules,
        )
    }

    /// An organization row's item and its identifying key, or its cell errors.
    pub fn organization(
        &self,
        raw: &RawRow,
    ) -> Result<(OrganizationProfileItem, String), Vec<CellError>> {
        let (header, cells) = self.view(raw);
        map::organization_item(
            &self.mapping,
            header,
            &self.schema,
            &cells,
            self.op,
            &self.rules,
        )
    }

    /// Whether a mapping file is in use (validate's fast path reads cells in place without).
    pub fn mapped(&self) -> Option<&(Compiled, Vec<String>)> {
        self.compiled.as_ref()
    }
}

/// The site's organizations by `field` (a mapping's `by`, `--organizations-by`): the field must be one of the site's
/// organization detail fields, and some organization must hold a value of it, or the run stops
/// before anything is sent.
pub async fn external_ids(
    site: &crate::site::Site,
    field: &str,
    label: &str,
    known: Option<&std::path::Path>,
    dry_run: bool,
) -> Result<ExternalIds, Error> {
    let defs: crate::site::api::model::DetailFieldsWithConfiguration = site
        .client
        .get_list(paths::ORGANIZATION_DETAILS)
        .await
        .map_err(Error::from_setup)?;
    let def = defs
        .results
        .iter()
        .find(|d| map::normalize(&d.name) == map::normalize(field));
    // A dry run of a plan's later step: earlier steps make the field and its values, and a
    // value found nowhere fails its row at resolve, as the import would.
    if def.is_none() && dry_run {
        return organizations_known(None, field, known, true).await;
    }
    let Some(def) = def else {
        let names: Vec<&str> = defs.results.iter().map(|d| d.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "{label}: organizations are found by '{field}' (a mapping's `by`, or --organizations-by), but the site's organizations have no detail field '{field}'{}; add it first (a detail-fields step: `csmport init`, or `csmport import detail-fields`)",
            match names.is_empty() {
                true => " (they have none)".to_string(),
                false => format!(
                    " (they have: {})",
                    map::header_list(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                ),
            }
        )));
    };
    let x = organizations_known(Some(&site.client), &def.name, known, dry_run).await?;
    if x.is_empty() && !dry_run {
        return Err(Error::Usage(format!(
            "{label}: organizations are found by '{}' (a mapping's `by`, or --organizations-by), but none of the site's {} organizations has a value in it; import the organizations first with their {} (a plan runs them before customers)",
            def.name, x.organizations, def.name
        )));
    }
    Ok(x)
}

/// The organizations by `field`: the site's (when there is a `client` to ask), and those a
/// plan's earlier steps make (`known`, `known-organizations.csv`): an import's with the ids they
/// were given, or a validation's (`promised`: rows, not ids, added only for values no
/// organization on the site holds).
pub async fn organizations_known(
    client: Option<&Client>,
    field: &str,
    known: Option<&std::path::Path>,
    promised: bool,
) -> Result<ExternalIds, Error> {
    let mut x = match client {
        Some(c) => ExternalIds::load(c, field)
            .await
            .map_err(Error::from_setup)?,
        None => ExternalIds::new(field),
    };
    if let Some(path) = known.filter(|p| p.exists()) {
        add_known(&mut x, path, promised).map_err(Error::Usage)?;
    }
    Ok(x)
}

/// A kind's set-up when rows name organizations by `field` (a mapping's `by`,
/// `--organizations-by`): the map of the site's organizations by it, with those earlier steps
/// of a plan made; None without a field.
pub async fn organizations_by(
    s: &super::Setup<'_>,
    field: Option<&str>,
) -> Result<Option<ExternalIds>, Error> {
    match field {
        None => Ok(None),
        Some(field) => Ok(Some(
            external_ids(
                s.site,
                field,
                s.label,
                s.opts.known_organizations,
                s.opts.dry_run,
            )
            .await?,
        )),
    }
}

/// Adds the values of `x`'s field that `path` (`known-organizations.csv`) holds. `promised`:
/// the file is a validation's (rows that will make organizations, not their ids), so only
/// values no organization on the site holds are added: a row that updates an organization
/// holding its value is that organization, not a second one.
fn add_known(x: &mut ExternalIds, path: &std::path::Path, promised: bool) -> Result<u64, String> {
    let mut r = ::csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let (field, value, id) = (
            rec.get(0).unwrap_or(""),
            rec.get(1).unwrap_or(""),
            rec.get(2).unwrap_or(""),
        );
        if map::normalize(field) != map::normalize(&x.field) || id.is_empty() {
            continue;
        }
        if promised && x.get(value) != crate::site::external::Match::None {
            continue;
        }
        x.add(value, id);
        n += 1;
    }
    Ok(n)
}

/// `known-organizations.csv`, opened to add to (its header written when it is new).
pub fn known_writer(out: &std::path::Path) -> Result<::csv::Writer<std::fs::File>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", out.display());
    let exists = out.exists();
    let file = crate::fsx::append_private(out).map_err(|e| err(&e))?;
    let mut w = ::csv::Writer::from_writer(file);
    if !exists {
        w.write_record(["field", "value", "id"])
            .map_err(|e| err(&e))?;
    }
    Ok(w)
}

/// In a plan's run folder: the organizations its steps made or updated (`field,value,id`).
pub const KNOWN_ORGANIZATIONS_FILE: &str = "known-organizations.csv";

/// In a plan: what an organizations step's successes.csv says of the organizations it made or
/// updated (each `_id`, with the detail values its row gave, through the step's mapping),
/// appended to `out` as `field,value,id`. Later steps that name organizations by a CRM id find
/// them there without the site, which may list a new organization only a while after the task
/// that made it. Returns how many values were written.
pub fn record_known_organizations(
    opts: crate::options::KindOptions<'_>,
    successes: &std::path::Path,
    out: &std::path::Path,
) -> Result<u64, String> {
    let err = |p: &std::path::Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    let mut r = ::csv::Reader::from_reader(
        crate::fsx::open_text(successes).map_err(|e| err(successes, &e))?,
    );
    let header: Vec<String> = r
        .headers()
        .map_err(|e| err(successes, &e))?
        .iter()
        .map(|h| crate::read::unescape_formula(h).to_string())
        .collect();
    let Some(id_at) = header.iter().position(|h| h == "_id") else {
        return Ok(0);
    };
    let compiled = match &opts.input.mapping {
        None => None,
        Some(path) => {
            let m = mapfile::load(path)?;
            Some(m.compile(opts.kind.as_str(), &header, &m.permissive_schema())?)
        }
    };
    let base = [map::COL_ID, map::COL_NAME];
    let mut w = known_writer(out)?;
    let mut n = 0;
    for rec in r.records() {
        let rec = rec.map_err(|e| err(successes, &e))?;
        let id = crate::read::Cells::cell(&rec, id_at).trim().to_string();
        if id.is_empty() {
            continue;
        }
        let pairs: Vec<(String, String)> = match &compiled {
            Some(c) => c.header.iter().cloned().zip(c.apply(&rec)).collect(),
            None => header
                .iter()
                .enumerate()
                .filter(|(_, h)| !h.starts_with('_'))
                .map(|(i, h)| (h.clone(), crate::read::Cells::cell(&rec, i).to_string()))
                .collect(),
        };
        for (field, value) in pairs {
            let value = value.trim();
            if value.is_empty()
                || base
                    .iter()
                    .any(|b| map::normalize(b) == map::normalize(&field))
            {
                continue;
            }
            w.write_record([field.as_str(), value, id.as_str()])
                .map_err(|e| err(out, &e))?;
            n += 1;
        }
    }
    w.flush().map_err(|e| err(out, &e))?;
    Ok(n)
}

/// Where each named column is (matched like every header: case and spaces ignored), and the
/// columns left out. Unknown columns are refused unless `ignore_unknown`; `required` ones must
/// be there.
pub fn find_columns(
    header: &[String],
    file: &str,
    kind: &str,
    known: &[&str],
    required: &[&str],
    ignore_unknown: bool,
) -> Result<(Vec<Option<usize>>, Vec<UnknownColumn>), Error> {
    use crate::map::normalize;
    let mut ignored = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let k = normalize(h);
        let is_known = known.iter().any(|n| normalize(n) == k);
        if is_known || k.is_empty() || k.starts_with('_') {
            continue;
        }
        let closest = crate::validate::closest(h, known.iter().copied()).map(str::to_string);
        if ignore_unknown {
            ignored.push(UnknownColumn {
                index: i,
                name: h.clone(),
                closest,
            });
            continue;
        }
        let closest = closest
            .map(|c| format!(": did you mean '{c}'?"))
            .unwrap_or_default();
        return Err(Error::Usage(format!(
            "{file}: unknown column '{}' (column {}){closest}; a {kind} file has the columns {} (or pass --ignore-unknown-columns)",
            crate::map::header_list(std::slice::from_ref(h)),
            i + 1,
            known.join(", ")
        )));
    }
    let cols: Vec<Option<usize>> = known
        .iter()
        .map(|n| header.iter().position(|h| normalize(h) == normalize(n)))
        .collect();
    for r in required {
        let i = known
            .iter()
            .position(|k| k == r)
            .expect("required is known");
        if cols[i].is_none() {
            return Err(Error::Usage(format!(
                "{file}: no '{r}' column: a {kind} file has the columns {} (header has: {})",
                known.join(", "),
                crate::map::header_list(header)
            )));
        }
    }
    Ok((cols, ignored))
}
