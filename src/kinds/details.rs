//! Detail values of customers or organizations (`{entity}/details/bulk`, up to 1,000
//! operations a task). Two layouts: wide (an identifying column — `id` or `email` for
//! customers, `id` or `name` for organizations — then one column per field, optional
//! `operation` for the whole row) and long (identifying column, `field`, `values`, optional
//! `operation`: one operation per row). Operations that would change nothing (the site's values
//! read first) are not sent, so a re-run is a no-op and says so. A task failure naming an
//! entity fails every row of it in that task (its operations go together). The kind
//! description for `engine`.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::map::{CellError, normalize};
use crate::read::{Cells, RawRow};
use crate::row::{Found, match_key};
use crate::schema::{FieldDef, FieldKind, Schema};
use crate::site::api::model::{
    CustomerDetailOperations, CustomerDetailsBulkRequest, DetailFieldsWithConfiguration,
    DetailOperation, DetailOperationPayload, DetailValue, DetailValueOperation,
    OrganizationDetailOperations, OrganizationDetailsBulkRequest,
};
use crate::site::api::{self, MAX_DETAIL_OPERATIONS, paths};
use crate::site::client::ApiError;
use crate::site::refs::{self, Holder, Lookup, resolve_holders};
use crate::validate::{self, CellRules};

use super::columns::find_columns;
use super::{Cx, Decision, Description, Identity, Request, Setup};

/// Detail values of customers (`CUSTOMERS` true) or of organizations.
pub struct DetailsKind<const CUSTOMERS: bool> {
    cols: Vec<Option<usize>>,
    /// Columns `--ignore-unknown-columns` left out.
    ignored: Vec<crate::map::UnknownColumn>,
    known: Vec<String>,
    header: Vec<String>,
    long: bool,
    schema: Schema,
    /// The other entity's field names, to say a column belongs to it.
    other_fields: Vec<String>,
    rules: CellRules,
    /// The values DELETE operations clear, kept before they are sent.
    backup: Mutex<ValueBackup>,
    /// `csmport delete`: every field a row names is cleared, whatever its `operation`.
    delete_all: bool,
    /// `--organizations-by` (organization details): the `name` column holds values of this
    /// field, read from the site once when the run opens.
    external: Option<crate::site::external::ExternalIds>,
    /// `--customers-by` (customer details): the `email` column holds values of this field.
    customers_by: Option<String>,
}

/// `backup.csv` in the run folder: a long-layout file (`id`, `field`, `values`, `operation`
/// UPDATE) of the values this run's DELETE operations clear, written and synced before they
/// are sent, so importing it puts them back. A resumed run appends to it; what it holds
/// already is not written twice (kept as hashes: 8 bytes a value).
pub struct ValueBackup {
    path: Option<PathBuf>,
    writer: Option<csv::Writer<std::fs::File>>,
    seen: HashSet<u64>,
    rows: u64,
}

pub const VALUE_BACKUP_FILE: &str = "backup.csv";
const VALUE_BACKUP_COLUMNS: [&str; 4] = ["id", "field", "values", "operation"];

fn backup_key(id: &str, field: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    field.to_lowercase().hash(&mut h);
    h.finish()
}

impl ValueBackup {
    fn new(dir: Option<PathBuf>) -> ValueBackup {
        ValueBackup {
            path: dir.map(|d| d.join(VALUE_BACKUP_FILE)),
            writer: None,
            seen: HashSet::new(),
            rows: 0,
        }
    }

    fn open(&mut self) -> Result<&mut csv::Writer<std::fs::File>, String> {
        if self.writer.is_none() {
            let path = self
                .path
                .clone()
                .ok_or_else(|| "the run has no folder to keep a backup in".to_string())?;
            let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let existing = path.exists();
            if existing {
                let mut r = csv::Reader::from_path(&path).map_err(|e| err(&e))?;
                for rec in r.records() {
                    let rec = rec.map_err(|e| err(&e))?;
                    self.seen.insert(backup_key(
                        rec.get(0).unwrap_or(""),
                        rec.get(1).unwrap_or(""),
                    ));
                    self.rows += 1;
                }
            }
            let file = crate::fsx::append_private(&path).map_err(|e| err(&e))?;
            let mut w = csv::Writer::from_writer(file);
            if !existing {
                w.write_record(VALUE_BACKUP_COLUMNS).map_err(|e| err(&e))?;
            }
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("opened"))
    }

    /// Writes `values` (entity id, field, values) and syncs them to disk.
    fn keep(&mut self, values: &[(String, String, Vec<String>)]) -> Result<(), String> {
        if values.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let err = |e: &dyn std::fmt::Display| {
            format!(
                "{}: {e}",
                path.as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display()
            )
        };
        self.open()?;
        let mut added = 0;
        for (id, field, vals) in values {
            if !self.seen.insert(backup_key(id, field)) {
                continue;
            }
            let joined = vals.join(&api::MULTI_VALUE_SEPARATOR.to_string());
            let w = self.writer.as_mut().expect("opened");
            w.write_record([
                crate::read::escape_formula(id).as_ref(),
                crate::read::escape_formula(field).as_ref(),
                crate::read::escape_formula(&joined).as_ref(),
                "UPDATE",
            ])
            .map_err(|e| err(&e))?;
            added += 1;
        }
        let w = self.writer.as_mut().expect("opened");
        w.flush().map_err(|e| err(&e))?;
        w.get_ref().sync_data().map_err(|e| err(&e))?;
        self.rows += added;
        Ok(())
    }
}

pub type CustomerDetails = DetailsKind<true>;
pub type OrganizationDetails = DetailsKind<false>;

/// One operation a row asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub kind: DetailOperation,
    pub field: String,
    pub values: Option<Vec<String>>,
}

/// One row's operations on its entity (the entity's id once decided).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub holder: Holder,
    pub ops: Vec<Op>,
    #[serde(default)]
    pub entity: Option<String>,
}

pub fn parse_operation(cell: &str) -> Result<DetailOperation, String> {
    match cell.trim().to_ascii_uppercase().as_str() {
        "" | "UPDATE" => Ok(DetailOperation::Update),
        "PATCH" => Ok(DetailOperation::Patch),
        "DELETE" => Ok(DetailOperation::Delete),
        other => Err(format!(
            "'{other}' is not an operation (UPDATE replaces the values, PATCH adds to them, DELETE clears the field)"
        )),
    }
}

/// Whether `op` would change the field's `current` values (`api::apply_operation`).
pub fn changes(op: &Op, current: Option<&[String]>, multi: bool) -> bool {
    let current = current.unwrap_or(&[]);
    let values = op.values.as_deref().unwrap_or(&[]);
    api::apply_operation(op.kind, current, values, multi) != current
}

impl<const CUSTOMERS: bool> DetailsKind<CUSTOMERS> {
    fn names() -> (&'static str, &'static str, &'static str) {
        if CUSTOMERS {
            ("customer-details", "customer", "organization")
        } else {
            ("organization-details", "organization", "customer")
        }
    }

    /// The API's entity of these rows (`own`), or of the other kind.
    fn api_entity(own: bool) -> api::Entity {
        if CUSTOMERS == own {
            api::Entity::Customer
        } else {
            api::Entity::Organization
        }
    }

    fn ids() -> [&'static str; 2] {
        if CUSTOMERS {
            ["id", "email"]
        } else {
            ["id", "name"]
        }
    }

    fn column(&self, k: usize) -> String {
        self.cols[k]
            .and_then(|c| self.header.get(c).cloned())
            .unwrap_or_else(|| self.known[k].clone())
    }

    fn multi(&self, field: &str) -> bool {
        self.schema
            .fields
            .iter()
            .any(|f| f.name == field && f.kind == FieldKind::MultiSelect)
    }

    fn field_def(&self, name: &str) -> Result<&FieldDef, String> {
        let (_, entity, other) = Self::names();
        self.schema
            .fields
            .iter()
            .find(|f| normalize(&f.name) == normalize(name))
            .ok_or_else(|| {
                if self
                    .other_fields
                    .iter()
                    .any(|f| normalize(f) == normalize(name))
                {
                    format!("'{name}' is a detail field of {other}s, not of {entity}s")
                } else {
                    let close =
                        validate::closest(name, self.schema.fields.iter().map(|f| f.name.as_str()))
                            .map(|c| format!("; did you mean '{c}'?"))
                            .unwrap_or_default();
                    format!("no {entity} detail field '{name}' on the site{close}")
                }
            })
    }

    /// The current values of `ids` (profile fetch, 25 a call). An id missing here could not be
    /// read: its operations are all sent.
    async fn current(
        cx: &Cx<'_>,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<DetailValue>>, ApiError> {
        Ok(if CUSTOMERS {
            refs::customer_profiles(&cx.site.client, ids, 1)
                .await?
                .into_iter()
                .map(|p| (p.id, p.details))
                .collect()
        } else {
            refs::organization_profiles(&cx.site.client, ids, 1)
                .await?
                .into_iter()
                .map(|p| (p.id, p.details))
                .collect()
        })
    }
}

/// Where a row whose target is not found fails: `resolve` for a CRM id, else `validate`.
fn resolve_stage(h: &Holder) -> crate::row::Stage {
    match h {
        h if h.is_external() => crate::row::Stage::Resolve,
        _ => crate::row::Stage::Validate,
    }
}

fn column_of(h: &Holder) -> &'static str {
    match h {
        Holder::CustomerId(_) | Holder::OrganizationId(_) => "id",
        Holder::CustomerEmail(_) | Holder::CustomerExternal(_) => "email",
        Holder::OrganizationName(_) | Holder::OrganizationExternal(_) => "name",
    }
}

impl<const CUSTOMERS: bool> Description for DetailsKind<CUSTOMERS> {
    type Item = Change;

    fn opened(&self) -> super::Opened {
        super::Opened {
            ignored_columns: self.ignored.clone(),
            ..Default::default()
        }
    }

    async fn open(s: Setup<'_>) -> Result<Self, Error> {
        let (kind, entity, other) = Self::names();
        let defs: DetailFieldsWithConfiguration = s
            .site
            .client
            .get_list(Self::api_entity(true).details())
            .await
            .map_err(Error::from_setup)?;
        let schema = Schema::from_api(&defs);
        let other_fields: Vec<String> = s
            .site
            .client
            .get_list::<DetailFieldsWithConfiguration>(Self::api_entity(false).details())
            .await
            .map(|d| d.results.into_iter().map(|f| f.name).collect())
            .unwrap_or_default();
        let ids = Self::ids();
        let long = s.header.iter().any(|h| normalize(h) == "field");
        let mut known: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        known.push("operation".into());
        if long {
            known.extend(["field".to_string(), "values".to_string()]);
        } else {
            known.extend(schema.fields.iter().map(|f| f.name.clone()));
            for h in s.header {
                if other_fields.iter().any(|f| normalize(f) == normalize(h))
                    && !known.iter().any(|k| normalize(k) == normalize(h))
                {
                    return Err(Error::Usage(format!(
                        "{}: column '{h}' is a detail field of {other}s; a {kind} file takes the fields of {entity}s ({})",
                        s.label,
                        schema
                            .fields
                            .iter()
                            .map(|f| f.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let required: &[&str] = if long { &["field"] } else { &[] };
        let known_ref: Vec<&str> = known.iter().map(String::as_str).collect();
        let (cols, ignored) = find_columns(
            s.header,
            s.label,
            kind,
            &known_ref,
            required,
            s.opts.input.ignore_unknown_columns,
        )?;
        if cols[0].is_none() && cols[1].is_none() {
            return Err(Error::Usage(format!(
                "{}: no '{}' or '{}' column: each row names the {entity} it changes",
                s.label, ids[0], ids[1]
            )));
        }
        Ok(DetailsKind {
            cols,
            ignored,
            known,
            header: s.header.to_vec(),
            long,
            schema,
            other_fields,
            rules: CellRules {
                date_format: s.opts.input.date_format.clone(),
            },
            backup: Mutex::new(ValueBackup::new(None)),
            delete_all: s.opts.delete,
            customers_by: s.opts.input.customers_by.clone().filter(|_| CUSTOMERS),
            // Customers are named by email or id: the flag is about organizations.
            external: super::columns::organizations_by(
                &s,
                s.opts
                    .input
                    .organizations_by
                    .as_deref()
                    .filter(|_| !CUSTOMERS),
            )
            .await?,
        })
    }

    fn did(&self) -> super::BoxFuture<'_, super::Did> {
        let b = self.backup.lock().unwrap_or_else(|p| p.into_inner());
        let backup = b
            .path
            .as_ref()
            .filter(|_| b.rows > 0)
            .map(|p| (p.display().to_string(), b.rows));
        Box::pin(async {
            super::Did {
                backup,
                ..Default::default()
            }
        })
    }

    fn check(&self, row: &RawRow) -> Result<Change, Vec<CellError>> {
        let (_, entity, _) = Self::names();
        let ids = Self::ids();
        let cell = |c: Option<usize>| c.map(|c| row.cells.cell(c)).unwrap_or("");
        let mut errors: Vec<CellError> = Vec::new();
        let mut fail = |field: String, message: String| errors.push(CellError { field, message });
        let (id, natural) = (cell(self.cols[0]).trim(), cell(self.cols[1]).trim());
        let holder = match (id.is_empty(), natural.is_empty(), CUSTOMERS) {
            (false, _, true) => Some(Holder::CustomerId(id.to_string())),
            (false, _, false) => Some(Holder::OrganizationId(id.to_string())),
            (true, false, true) if self.customers_by.is_some() => {
                Some(Holder::CustomerExternal(natural.to_string()))
            }
            (true, false, true) => match validate::email(natural) {
                Ok(e) => Some(Holder::CustomerEmail(e.to_lowercase())),
                Err(e) => {
                    fail(self.column(1), e);
                    None
                }
            },
            (true, false, false) if self.external.is_some() => {
                Some(Holder::OrganizationExternal(natural.to_string()))
            }
            (true, false, false) => Some(Holder::OrganizationName(natural.to_string())),
            (true, true, _) => {
                fail(
                    self.column(if self.cols[0].is_some() { 0 } else { 1 }),
                    format!(
                        "no {} and no {}: which {entity} does this row change?",
                        ids[0], ids[1]
                    ),
                );
                None
            }
        };
        let op_kind = match parse_operation(cell(self.cols[2])) {
            _ if self.delete_all => DetailOperation::Delete,
            Ok(k) => k,
            Err(e) => {
                fail(self.column(2), e);
                DetailOperation::Update
            }
        };
        let mut ops = Vec::new();
        let mut op_for = |def: &FieldDef,
                          values_cell: &str,
                          col: String,
                          fail: &mut dyn FnMut(String, String)| {
            if op_kind == DetailOperation::Delete {
                ops.push(Op {
                    kind: op_kind,
                    field: def.name.clone(),
                    values: None,
                });
                return;
            }
            match validate::detail_value(def, values_cell, &self.rules) {
                Ok(Some(values)) => ops.push(Op {
                    kind: op_kind,
                    field: def.name.clone(),
                    values: Some(values),
                }),
                Ok(None) => fail(
                    col,
                    format!(
                        "no values for {}: use operation DELETE to clear a field",
                        def.name
                    ),
                ),
                Err(e) => fail(col, e),
            }
        };
        if self.long {
            let name = cell(self.cols[3]).trim();
            if name.is_empty() {
                fail(self.column(3), "field is empty".into());
            } else {
                match self.field_def(name) {
                    Ok(def) => op_for(def, cell(self.cols[4]), self.column(4), &mut fail),
                    Err(e) => fail(self.column(3), e),
                }
            }
        } else {
            for (k, def) in self.schema.fields.iter().enumerate() {
                if !cell(self.cols[3 + k]).trim().is_empty() {
                    op_for(def, cell(self.cols[3 + k]), self.column(3 + k), &mut fail);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Change {
            holder: holder.expect("no errors"),
            ops,
            entity: None,
        })
    }

    fn identity(&self, c: &Change) -> Vec<Identity> {
        let (_, entity, _) = Self::names();
        c.ops
            .iter()
            .map(|op| Identity {
                key: format!("{}|{}", c.holder.key(), match_key(&op.field)),
                field: op.field.clone(),
                message: format!(
                    "duplicate: row {{first}} of this file already changes {} of this {entity} (one operation per field)",
                    op.field
                ),
            })
            .collect()
    }

    fn weight(&self, c: &Change) -> usize {
        c.ops.len().max(1)
    }

    fn chunk_weight(&self, _batch_size: usize) -> usize {
        MAX_DETAIL_OPERATIONS
    }

    async fn decide<'a>(&'a self, cx: &'a Cx<'a>, items: Vec<Change>) -> Vec<Decision<Change>> {
        let holders = resolve_holders(
            &cx.site.client,
            cx.site.service_desk.as_deref(),
            items.iter().map(|c| &c.holder),
            refs::By {
                organizations: self.external.as_ref(),
                customers: self.customers_by.as_deref(),
            },
        )
        .await;
        let mut ids: Vec<String> = holders
            .values()
            .filter_map(|l| match l {
                Lookup::Found(e) => Some(e.id.clone()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        let current = match Self::current(cx, &ids).await {
            Ok(c) => c,
            Err(e) => {
                cx.log.note(&format!(
                    "chunk {}: the current values could not be read ({e}); every operation is sent",
                    cx.seq
                ));
                HashMap::new()
            }
        };
        let mut cleared: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut decisions: Vec<Decision<Change>> = items
            .into_iter()
            .map(|mut c| {
                let id = match holders.get(&c.holder) {
                    Some(Lookup::Found(e)) => e.id.clone(),
                    Some(Lookup::NotFound(why)) => {
                        return Decision::Refuse {
                            stage: resolve_stage(&c.holder),
                            field: column_of(&c.holder).into(),
                            error: why.clone(),
                        };
                    }
                    Some(Lookup::Failed(why)) => return Decision::Open(format!("not sent: {why}")),
                    None => return Decision::Open("not sent: not looked up".into()),
                };
                let now = current.get(&id);
                let deletes = c.ops.iter().any(|op| op.kind == DetailOperation::Delete);
                if now.is_none() && deletes {
                    // Nothing is cleared that was not backed up first.
                    return Decision::Open(format!(
                        "not sent: the {}'s current values could not be read, and values are cleared only once backed up",
                        Self::names().1
                    ));
                }
                c.ops.retain(|op| {
                    let values = now.and_then(|d| {
                        d.iter()
                            .find(|v| v.name.eq_ignore_ascii_case(&op.field))
                            .map(|v| v.values.as_slice())
                    });
                    // Without the current values (a failed read), send everything.
                    let send = now.is_none() || changes(op, values, self.multi(&op.field));
                    if send && op.kind == DetailOperation::Delete {
                        cleared.push((
                            id.clone(),
                            op.field.clone(),
                            values.unwrap_or_default().to_vec(),
                        ));
                    }
                    send
                });
                if c.ops.is_empty() {
                    return Decision::Unchanged(Some(id));
                }
                c.entity = Some(id);
                Decision::Send(c)
            })
            .collect();
        if !cleared.is_empty() {
            let mut b = self.backup.lock().unwrap_or_else(|p| p.into_inner());
            if b.path.is_none() {
                *b = ValueBackup::new(cx.opts.out.map(std::path::Path::to_path_buf));
            }
            if let Err(e) = b.keep(&cleared) {
                let why =
                    format!("not sent: the values it clears could not be backed up first ({e})");
                for d in &mut decisions {
                    let clears = matches!(d, Decision::Send(c) if c.ops.iter().any(|op| op.kind == DetailOperation::Delete));
                    if clears {
                        *d = Decision::Open(why.clone());
                    }
                }
            }
        }
        decisions
    }

    fn requests(&self, items: &[Change]) -> Vec<Request> {
        // Entities in first-row order, each with every operation its rows give.
        let mut order: Vec<String> = Vec::new();
        let mut by_entity: HashMap<String, Vec<DetailValueOperation>> = HashMap::new();
        for c in items {
            let Some(id) = &c.entity else { continue };
            let ops = by_entity.entry(id.clone()).or_insert_with(|| {
                order.push(id.clone());
                Vec::new()
            });
            ops.extend(c.ops.iter().map(|op| DetailValueOperation {
                operation_type: op.kind,
                payload: DetailOperationPayload {
                    name: op.field.clone(),
                    values: op.values.clone(),
                },
            }));
        }
        let all: Vec<usize> = (0..items.len())
            .filter(|&k| items[k].entity.is_some())
            .collect();
        let body = if CUSTOMERS {
            serde_json::to_value(CustomerDetailsBulkRequest {
                customers: order
                    .iter()
                    .map(|id| CustomerDetailOperations {
                        customer_id: id.clone(),
                        operations: by_entity[id].clone(),
                    })
                    .collect(),
            })
        } else {
            serde_json::to_value(OrganizationDetailsBulkRequest {
                organizations: order
                    .iter()
                    .map(|id| OrganizationDetailOperations {
                        organization_id: id.clone(),
                        operations: by_entity[id].clone(),
                    })
                    .collect(),
            })
        };
        let path = if CUSTOMERS {
            paths::CUSTOMER_DETAILS_BULK
        } else {
            paths::ORGANIZATION_DETAILS_BULK
        };
        vec![Request::task(path, &body.expect("serializes"), all)]
    }

    fn keys(&self, c: &Change) -> Vec<String> {
        c.entity.iter().cloned().collect()
    }

    fn id_of(&self, c: &Change, _answer: Option<&serde_json::Value>) -> Option<String> {
        c.entity.clone()
    }

    /// The entities' values again: every operation of the row is in effect, or not.
    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Change],
    ) -> Result<Vec<Found>, ApiError> {
        let mut ids: Vec<String> = items.iter().filter_map(|c| c.entity.clone()).collect();
        ids.sort();
        ids.dedup();
        let current = Self::current(cx, &ids).await?;
        Ok(items
            .iter()
            .map(|c| {
                let Some(id) = &c.entity else {
                    return Found::CannotTell;
                };
                let Some(now) = current.get(id) else {
                    return Found::Missing;
                };
                let applied = c.ops.iter().all(|op| {
                    let values = now
                        .iter()
                        .find(|v| v.name.eq_ignore_ascii_case(&op.field))
                        .map(|v| v.values.as_slice());
                    // In effect: doing it again would change nothing.
                    !changes(op, values, self.multi(&op.field))
                });
                if applied {
                    Found::Same(Some(id.clone()))
                } else {
                    Found::Drifted
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod backup_tests {
    use super::*;

    #[test]
    fn cleared_values_are_kept_once_even_across_a_resume() {
        let dir = tempfile::tempdir().unwrap();
        let v = |id: &str, f: &str, vals: &[&str]| {
            (
                id.to_string(),
                f.to_string(),
                vals.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        let mut b = ValueBackup::new(Some(dir.path().to_path_buf()));
        b.keep(&[
            v("1", "Tier", &["Gold"]),
            v("1", "Channels", &["Email", "Phone"]),
        ])
        .unwrap();
        b.keep(&[v("1", "tier", &["Gold"])]).unwrap();
        assert_eq!(b.rows, 2);
        // A resumed run opens the file again and adds only what it does not hold.
        let mut again = ValueBackup::new(Some(dir.path().to_path_buf()));
        again
            .keep(&[v("1", "Tier", &["Gold"]), v("2", "Notes", &["=cmd()"])])
            .unwrap();
        assert_eq!(again.rows, 3);
        let text = std::fs::read_to_string(dir.path().join(VALUE_BACKUP_FILE)).unwrap();
        assert_eq!(
            text,
            "id,field,values,operation\n1,Tier,Gold,UPDATE\n1,Channels,Email;Phone,UPDATE\n2,Notes,'=cmd(),UPDATE\n"
        );
        assert!(ValueBackup::new(None).keep(&[v("1", "X", &[])]).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_operations_that_change_something_are_sent() {
        let op = |kind, values: &[&str]| Op {
            kind,
            field: "F".into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        };
        let now: Vec<String> = vec!["a".into(), "b".into()];
        use DetailOperation::*;
        let cases = [
            (op(Update, &["a", "b"]), Some(now.as_slice()), true, false),
            (op(Update, &["a"]), Some(now.as_slice()), true, true),
            (op(Patch, &["b"]), Some(now.as_slice()), true, false),
            (op(Patch, &["c"]), Some(now.as_slice()), true, true),
            (op(Delete, &[]), Some(now.as_slice()), false, true),
            (op(Delete, &[]), None, false, false),
            (op(Update, &["x"]), None, false, true),
        ];
        for (o, cur, multi, want) in cases {
            assert_eq!(changes(&o, cur, multi), want, "{o:?} {cur:?}");
        }
        assert_eq!(parse_operation(" patch ").unwrap(), Patch);
        assert!(
            parse_operation("REMOVE")
                .unwrap_err()
                .contains("not an operation")
        );
    }
}
