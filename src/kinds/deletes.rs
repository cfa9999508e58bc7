//! Deletes (`csmport delete KIND FILE`) as a kind description for `engine`: each row names one
//! thing on the site (a product, organization, customer account, entitlement or detail field)
//! by id or by what the import templates name it by; deciding finds it (a row naming nothing
//! the site has is skipped), and sending is one synchronous `DELETE` per row. A row is only
//! deleted when the run folder's backup (`backup.csv`, written by `cmd::delete` before the run,
//! from `backup_tables`) holds it: `backup.ids` lists what it holds, so a resumed run never
//! deletes something it did not back up. Reading back asks for the thing again: gone is the
//! evidence of a delete.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::export::Table;
use crate::map::CellError;
use crate::read::{Cells, RawRow};
use crate::row::{Found, match_key};
use crate::site::Site;
use crate::site::api::model::{Entitlement, Product};
use crate::site::api::{Entity, paths};
use crate::site::client::ApiError;
use crate::site::refs::{self, Holder, Lookup, list_products};

use super::{Cx, Decision, Description, Identity, Kind, Method, Request, Setup};

/// Starts a lookup failure that no later attempt can mend (the row fails instead of staying
/// open).
const NEEDS_DESK: &str = "cannot be looked up: ";

/// The file in the run folder that lists, one a line, the ids `backup.csv` holds.
pub const BACKUP_IDS: &str = "backup.ids";

/// The kinds `delete` takes by record (detail values are cleared by their own kinds).
pub fn deletable(kind: Kind) -> bool {
    super::delete_spec(kind).is_some()
}

/// How `delete` treats one kind. Each kind `delete` takes defines its own (`DELETE`, in its
/// file); `kinds::delete_spec` picks it.
pub struct Spec {
    pub kind: Kind,
    /// The columns a delete file is read by (others, such as the rest of a backup's or an
    /// export's columns, are left alone)…
    pub columns: &'static [&'static str],
    /// …and those of which one must be there.
    pub one_of: &'static [&'static str],
    /// What a row names when its `id` is empty (`cell` reads a column by name): the thing, or
    /// the column to blame and why not.
    pub named: fn(cell: &dyn Fn(&str) -> String) -> Result<Named, (&'static str, String)>,
    /// The `DELETE` path of an id.
    pub delete_path: fn(&str) -> String,
    /// Where the thing is read: a 404 there means it is gone. None: in the site's product
    /// listing (no GET of one product answers 404).
    pub read_path: Option<fn(&str) -> String>,
    /// Names (`Named::Name`) are products; else organizations.
    pub names_products: bool,
    /// The site's products are read when the run opens (products, entitlements by product).
    pub needs_products: bool,
    /// The site's detail-field names are read when the run opens.
    pub needs_fields: bool,
    /// The backup of the targets found, as an import file of this kind, and how many things
    /// in it cannot be put back as they were (what `cannot_put_back` is told).
    pub backup: for<'a> fn(
        &'a Site,
        &'a [Target],
    ) -> super::BoxFuture<'a, Result<(Table, usize), ApiError>>,
    /// What cannot be put back of `n` things (`values_kept`: a field's values were kept in
    /// files of their own), in words.
    pub cannot_put_back: fn(n: usize, values_kept: bool) -> Option<String>,
}

/// The name of a row's thing from `column`, or why the row names nothing.
pub fn required(
    cell: &dyn Fn(&str) -> String,
    column: &'static str,
    why: &str,
) -> Result<String, (&'static str, String)> {
    match cell(column) {
        v if v.is_empty() => Err((column, why.to_string())),
        v => Ok(v),
    }
}

/// How a row names what it deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Named {
    Id(String),
    /// A product or organization by name.
    Name(String),
    /// A customer by email (found through `--service-desk`).
    Email(String),
    /// An entitlement: its holder and its product (name or id).
    Holding {
        holder: Holder,
        product: String,
    },
    /// A detail field: `customer`, `organization` or `entitlement`, and its name.
    Field {
        entity: String,
        name: String,
    },
}

/// One row's target; `id` is filled when deciding found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub named: Named,
    pub id: Option<String>,
    /// An entitlement's holder as the import template names it (for the backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<(bool, String)>,
}

impl Target {
    pub fn shown(&self) -> String {
        match &self.named {
            Named::Id(i) => format!("id {i}"),
            Named::Name(n) | Named::Email(n) => format!("'{n}'"),
            Named::Holding { holder, product } => format!("{} of {}", product, shown(holder)),
            Named::Field { entity, name } => format!("{entity} field '{name}'"),
        }
    }
}

fn shown(h: &Holder) -> String {
    match h {
        Holder::CustomerId(i) => format!("customer {i}"),
        Holder::CustomerEmail(e) => format!("customer {e}"),
        Holder::OrganizationId(i) => format!("organization {i}"),
        Holder::OrganizationName(n) => format!("organization '{n}'"),
        Holder::OrganizationExternal(v) => format!("organization with CRM id '{v}'"),
        Holder::CustomerExternal(v) => format!("customer with CRM id '{v}'"),
    }
}

/// The `DELETE` path of an id of `kind` (detail fields: `entity:name`).
pub fn delete_path(kind: Kind, id: &str) -> String {
    let spec = super::delete_spec(kind).expect("a kind delete takes");
    (spec.delete_path)(id)
}

/// The `DELETE` and read path of a detail field, by `entity:name`.
pub fn field_path(id: &str) -> String {
    let (entity, name) = id.split_once(':').unwrap_or(("customer", id));
    let template = match entity {
        "organization" => Entity::Organization,
        "entitlement" => Entity::Entitlement,
        _ => Entity::Customer,
    }
    .detail();
    paths::at(template, &[name])
}

pub struct Deletes {
    spec: &'static Spec,
    /// Column index of each of `spec.columns`.
    cols: Vec<Option<usize>>,
    header: Vec<String>,
    /// The site's products when the run began (products, and entitlements by product).
    products: Vec<Product>,
    /// Detail-field names by entity when the run began.
    fields: HashMap<String, Vec<String>>,
    /// What the run folder's backup holds (None: the backup pass itself).
    backed_up: Option<HashSet<String>>,
}

impl Deletes {
    fn col(&self, name: &str) -> Option<usize> {
        self.spec
            .columns
            .iter()
            .position(|k| *k == name)
            .and_then(|i| self.cols[i])
    }

    fn cell<'r>(&self, row: &'r RawRow, name: &str) -> &'r str {
        self.col(name)
            .map(|c| row.cells.cell(c).trim())
            .unwrap_or("")
    }

    fn column_name(&self, name: &str) -> String {
        self.col(name)
            .map(|c| self.header[c].clone())
            .unwrap_or_else(|| name.to_string())
    }

    /// Sets the kind up for the backup pass (`backed_up` None) or the run.
    pub async fn open_for(
        site: &Site,
        kind: Kind,
        header: &[String],
        label: &str,
        backed_up: Option<HashSet<String>>,
    ) -> Result<Deletes, Error> {
        let Some(spec) = super::delete_spec(kind) else {
            return Err(Error::Usage(format!(
                "csmport delete takes products, organizations, customers, entitlements or detail-fields; {} are deleted by importing them with operation DELETE",
                kind.as_str()
            )));
        };
        let (known, one_of) = (spec.columns, spec.one_of);
        let cols: Vec<Option<usize>> = known
            .iter()
            .map(|n| {
                header
                    .iter()
                    .position(|h| crate::map::normalize(h) == crate::map::normalize(n))
            })
            .collect();
        let has = |n: &str| {
            known
                .iter()
                .position(|k| *k == n)
                .is_some_and(|i| cols[i].is_some())
        };
        if !one_of.iter().any(|n| has(n)) {
            return Err(Error::Usage(format!(
                "{label}: a file of {} to delete needs a column {} (it has: {})",
                kind.as_str(),
                one_of.join(" or "),
                crate::map::header_list(header)
            )));
        }
        let client = &site.client;
        let products = if spec.needs_products {
            list_products(client).await.map_err(Error::from_setup)?
        } else {
            Vec::new()
        };
        let mut fields = HashMap::new();
        if spec.needs_fields {
            for entity in ["customer", "organization", "entitlement"] {
                let defs = crate::export::fetch::definitions(client, entity)
                    .await
                    .map_err(Error::from_setup)?;
                fields.insert(
                    entity.to_string(),
                    defs.into_iter().map(|d| d.name).collect(),
                );
            }
        }
        Ok(Deletes {
            spec,
            cols,
            header: header.to_vec(),
            products,
            fields,
            backed_up,
        })
    }

    /// The product a row names (by id or name), among the site's.
    fn product(&self, named: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == named).or_else(|| {
            self.products
                .iter()
                .find(|p| match_key(&p.name) == match_key(named))
        })
    }

    /// Finds each target on the site (filling in its id): whether the site has it, or Err
    /// when that cannot be told now. The backup pass and `decide` both ask this.
    pub async fn find(&self, site: &Site, items: &mut [Target]) -> Vec<Result<bool, String>> {
        let mut out = Vec::with_capacity(items.len());
        // Names and emails are looked up together; ids are asked for one by one.
        let names: Vec<String> = items
            .iter()
            .filter_map(|t| match &t.named {
                Named::Name(n) if !self.spec.names_products => Some(n.clone()),
                _ => None,
            })
            .collect();
        let org_ids = if names.is_empty() {
            Ok(HashMap::new())
        } else {
            crate::site::refs::fetch_ids(&site.client, &names)
                .await
                .map_err(|e| format!("the organizations could not be looked up: {e}"))
        };
        let emails: Vec<String> = items
            .iter()
            .filter_map(|t| match &t.named {
                Named::Email(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let listing = if emails.is_empty() {
            Ok(None)
        } else {
            site.customers_by_email(&emails, None)
                .await
                .map_err(|e| format!("the customers could not be looked up by email: {e}"))
        };
        let holders: Vec<Holder> = items
            .iter()
            .filter_map(|t| match &t.named {
                Named::Holding { holder, .. } => Some(holder.clone()),
                _ => None,
            })
            .collect();
        let holders = if holders.is_empty() {
            HashMap::new()
        } else {
            refs::resolve_holders(
                &site.client,
                site.service_desk.as_deref(),
                holders.iter(),
                refs::By::default(),
            )
            .await
        };
        let mut held: HashMap<refs::Entity, Result<Vec<Entitlement>, String>> = HashMap::new();
        for t in items.iter_mut() {
            let found: Result<Option<String>, String> = match t.named.clone() {
                Named::Id(id) => self.exists(site, &id).await.map(|e| e.then_some(id)),
                Named::Name(n) if self.spec.names_products => {
                    Ok(self.product(&n).map(|p| p.id.clone()))
                }
                Named::Name(n) => org_ids
                    .as_ref()
                    .map(|m| m.get(&match_key(&n)).cloned())
                    .map_err(Clone::clone),
                Named::Email(e) => match &listing {
                    Err(why) => Err(why.clone()),
                    Ok(None) => Err(format!(
                        "{NEEDS_DESK}customer '{e}' is named by email: give --service-desk ID so csmport can find it (CSM has no lookup by email), or give its id"
                    )),
                    Ok(Some(l)) => match l.get(&e) {
                        Some(id) => Ok(Some(id.clone())),
                        None if l.complete() => Ok(None),
                        None => Err(format!(
                            "customer '{e}' is not in the service project's listing, which hides {} emails: give its id",
                            l.hidden
                        )),
                    },
                },
                Named::Holding { holder, product } => match holders.get(&holder) {
                    Some(Lookup::Found(entity)) => {
                        t.holder = Some(match &holder {
                            Holder::CustomerEmail(e) => (true, e.clone()),
                            Holder::CustomerId(i) => (true, i.clone()),
                            Holder::OrganizationName(n) => (false, n.clone()),
                            Holder::OrganizationId(i) => (false, i.clone()),
                            Holder::OrganizationExternal(v) => (false, v.clone()),
                            Holder::CustomerExternal(v) => (true, v.clone()),
                        });
                        let list = match held.get(entity) {
                            Some(l) => l.clone(),
                            None => {
                                let l = refs::entitlements_of(&site.client, entity).await.map_err(
                                    |e| {
                                        format!(
                                            "the entitlements of {} could not be read: {e}",
                                            shown(&holder)
                                        )
                                    },
                                );
                                held.insert(entity.clone(), l.clone());
                                l
                            }
                        };
                        let wanted = self.product(&product).map(|p| p.id.clone());
                        list.map(|l| {
                            l.into_iter()
                                .find(|e| Some(&e.product.id) == wanted.as_ref())
                                .map(|e| e.id)
                        })
                    }
                    Some(Lookup::NotFound(_)) => Ok(None),
                    Some(Lookup::Failed(why)) => Err(why.clone()),
                    None => Err(format!("{} was not looked up", shown(&holder))),
                },
                Named::Field { entity, name } => Ok(self
                    .fields
                    .get(&entity)
                    .and_then(|names| names.iter().find(|f| f.eq_ignore_ascii_case(&name)))
                    .map(|f| format!("{entity}:{f}"))),
            };
            out.push(found.map(|id| {
                let there = id.is_some();
                t.id = id;
                there
            }));
        }
        out
    }

    /// Whether the site has the thing with this id (a 404 says it does not).
    async fn exists(&self, site: &Site, id: &str) -> Result<bool, String> {
        let Some(read_path) = self.spec.read_path else {
            return Ok(self.products.iter().any(|p| p.id == id));
        };
        match site
            .client
            .get_json::<serde_json::Value>(&read_path(id))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(format!("id {id} could not be read: {e}")),
        }
    }
}

impl Description for Deletes {
    type Item = Target;

    async fn open(s: Setup<'_>) -> Result<Self, Error> {
        let dir = s.opts.out.unwrap_or(Path::new("."));
        let ids = std::fs::read_to_string(dir.join(BACKUP_IDS)).map_err(|e| {
            Error::Usage(format!(
                "{}: the backup's list of ids cannot be read ({e}); csmport deletes only what it backed up first",
                dir.join(BACKUP_IDS).display()
            ))
        })?;
        let backed_up = ids
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        Deletes::open_for(s.site, s.opts.kind, s.header, s.label, Some(backed_up)).await
    }

    fn check(&self, row: &RawRow) -> Result<Target, Vec<CellError>> {
        let fail = |col: &str, message: String| {
            vec![CellError {
                field: self.column_name(col),
                message,
            }]
        };
        let id = self.cell(row, "id");
        let named = if id.is_empty() {
            let cell = |c: &str| self.cell(row, c).to_string();
            (self.spec.named)(&cell).map_err(|(col, why)| fail(col, why))?
        } else {
            Named::Id(id.into())
        };
        Ok(Target {
            named,
            id: None,
            holder: None,
        })
    }

    fn identity(&self, t: &Target) -> Vec<Identity> {
        let (key, field) = match &t.named {
            Named::Id(i) => (format!("i:{i}"), "id"),
            Named::Name(n) => (format!("n:{}", match_key(n)), "name"),
            Named::Email(e) => (format!("e:{}", match_key(e)), "email"),
            Named::Holding { holder, product } => (
                format!("h:{}:{}", holder.key(), match_key(product)),
                "product",
            ),
            Named::Field { entity, name } => (format!("f:{entity}:{}", match_key(name)), "name"),
        };
        vec![Identity {
            key,
            field: self.column_name(field),
            message: format!(
                "duplicate: {} is already in row {{first}} of this file (it is deleted once)",
                t.shown()
            ),
        }]
    }

    async fn decide<'a>(&'a self, cx: &'a Cx<'a>, mut items: Vec<Target>) -> Vec<Decision<Target>> {
        let found = self.find(cx.site, &mut items).await;
        items
            .into_iter()
            .zip(found)
            .map(|(t, f)| match f {
                Err(why) if why.starts_with(NEEDS_DESK) => {
                    Decision::refuse(self.column_name("email"), why)
                }
                Err(why) => Decision::Open(why),
                Ok(false) => Decision::Skip(format!("not on the site: {} (nothing to delete)", t.shown())),
                Ok(true) => {
                    let id = t.id.clone().expect("found has an id");
                    match &self.backed_up {
                        Some(ids) if !ids.contains(&id) => Decision::refuse(
                            self.column_name("id"),
                            format!(
                                "{} ({id}) is not in this run's backup (it was not on the site when the backup was taken): not deleted; run csmport delete again for it",
                                t.shown()
                            ),
                        ),
                        _ => Decision::Send(t),
                    }
                }
            })
            .collect()
    }

    fn requests(&self, items: &[Target]) -> Vec<Request> {
        items
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let id = t.id.as_deref().expect("decided");
                Request::call(
                    Method::Delete,
                    (self.spec.delete_path)(id),
                    &serde_json::Value::Null,
                    k,
                )
            })
            .collect()
    }

    fn keys(&self, t: &Target) -> Vec<String> {
        t.id.clone().into_iter().collect()
    }

    fn id_of(&self, t: &Target, _answer: Option<&serde_json::Value>) -> Option<String> {
        t.id.clone()
    }

    const READ_BACK_UNANSWERED: bool = true;

    /// Asks for each again: gone is the row done (`Same`), still there is not (`Missing`:
    /// the site does not have the row's outcome).
    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Target],
    ) -> Result<Vec<Found>, ApiError> {
        let mut out = Vec::with_capacity(items.len());
        // Products are read as one list (there is no GET of one product by id that 404s).
        let mut products: Option<Vec<Product>> = None;
        for t in items {
            let Some(id) = &t.id else {
                out.push(Found::CannotTell);
                continue;
            };
            let there = if let Some(read_path) = self.spec.read_path {
                match cx
                    .site
                    .client
                    .get_json::<serde_json::Value>(&read_path(id))
                    .await
                {
                    Ok(_) => true,
                    Err(e) if e.status() == Some(404) => false,
                    Err(e) => return Err(e),
                }
            } else {
                if products.is_none() {
                    products = Some(list_products(&cx.site.client).await?);
                }
                products.iter().flatten().any(|p| p.id == *id)
            };
            out.push(if there {
                Found::Missing
            } else {
                Found::Same(Some(id.clone()))
            });
        }
        Ok(out)
    }
}

/// What the backup holds, as import files: the main table in `kind`'s template columns, and
/// what a delete takes with it (a product's entitlements), each a table of its own kind; and
/// what cannot be put back. The backup pass adds one group of targets at a time.
#[derive(Default)]
pub struct Backup {
    pub tables: Vec<Table>,
    /// Things in it that cannot be put back as they were.
    lost: usize,
    cannot_put_back: Option<fn(usize, bool) -> Option<String>>,
    /// The values of deleted customer and organization fields are in files of their own.
    pub values_kept: bool,
}

impl Backup {
    /// What the backup cannot put back, in words.
    pub fn not_restorable(&self) -> Vec<String> {
        self.cannot_put_back
            .and_then(|f| f(self.lost, self.values_kept))
            .into_iter()
            .collect()
    }
}

/// Adds the targets found (each with its id) to `into`, read from the site.
pub async fn back_up(
    site: &Site,
    kind: Kind,
    targets: &[Target],
    into: &mut Backup,
) -> Result<(), ApiError> {
    let spec = super::delete_spec(kind).expect("a kind delete takes");
    let (table, lost) = (spec.backup)(site, targets).await?;
    // What is put back is made anew, with a new id: an id column would make the import
    // look for the deleted one and refuse the row.
    let table = without_ids(table);
    match into.tables.first_mut() {
        Some(t) => t.rows.extend(table.rows),
        None => into.tables.push(table),
    }
    into.lost += lost;
    into.cannot_put_back = Some(spec.cannot_put_back);
    Ok(())
}

/// The ids of the targets found.
pub fn found_ids(targets: &[Target]) -> Vec<String> {
    targets.iter().filter_map(|t| t.id.clone()).collect()
}

fn without_ids(mut t: Table) -> Table {
    if let Some(i) = t.header.iter().position(|h| h == "id") {
        t.header.remove(i);
        for row in &mut t.rows {
            if i < row.len() {
                row.remove(i);
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::api::Choice;

    #[test]
    fn every_kind_deletes_where_the_contract_says() {
        let cases = [
            (Kind::Products, "p1", "product/p1"),
            (Kind::Organizations, "101", "organization/101"),
            (Kind::Customers, "qm:1", "customer/account/qm:1"),
            (Kind::Entitlements, "e7", "entitlement/e7"),
            (
                Kind::DetailFields,
                "organization:Tier",
                "organization/details/Tier",
            ),
            (
                Kind::DetailFields,
                "customer:Renewal Date",
                "customer/details/Renewal%20Date",
            ),
        ];
        for (kind, id, path) in cases {
            assert_eq!(delete_path(kind, id), path, "{kind:?} {id}");
        }
        let read = |k: Kind, id: &str| {
            super::super::delete_spec(k)
                .unwrap()
                .read_path
                .map(|p| p(id))
        };
        assert_eq!(read(Kind::Customers, "c1").as_deref(), Some("customer/c1"));
        // Products are looked for in the site's listing: no GET of one answers 404.
        assert_eq!(read(Kind::Products, "p1"), None);
        // Every kind delete takes names its own spec, and only those kinds.
        for k in Kind::ALL {
            let spec = super::super::delete_spec(*k);
            assert_eq!(spec.is_some(), deletable(*k), "{k:?}");
            assert!(spec.is_none_or(|s| s.kind == *k), "{k:?}");
        }
        assert!(!deletable(Kind::CustomerDetails));
    }
}
