//! Entitlements: a product for a customer (`customer`: id or email) or an organization
//! (`organization`: name or id), with entitlement detail values in columns named like the
//! site's entitlement fields. Products are read from the product list; holders through
//! organization/fetch, profile fetch, or by email through the JSM customers of
//! `--service-desk`. A holder that already has the product keeps that entitlement (its
//! details are set where they differ), so a re-run adds nothing. Each new entitlement is a
//! `POST {customer,organization}/{id}/entitlement` and each changed detail a
//! `PUT entitlement/{id}/details`, synchronous calls. The kind description for `engine`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kind::Kind;
use crate::map::CellError;
use crate::read::{Cells, RawRow};
use crate::row::{Found, match_key};
use crate::schema::Schema;
use crate::site::api::model::{
    CreateEntitlement, DetailFieldsWithConfiguration, DetailValue, Entitlement as SiteEntitlement,
    Product, UpdateDetailField,
};
use crate::site::api::paths;
use crate::site::client::ApiError;
use crate::site::refs::{
    self, Entity, Holder, Lookup, entitlements_of, list_products, resolve_holders,
};
use crate::validate::{self, CellRules};

use super::columns::find_columns;
use super::deletes;
use super::{
    Body, Call, Cx, Decision, Description, Identity, Method, Mode, Request, Setup, same_details,
};

pub struct Entitlements {
    cols: Vec<Option<usize>>,
    /// Columns `--ignore-unknown-columns` left out.
    ignored: Vec<crate::map::UnknownColumn>,
    known: Vec<String>,
    header: Vec<String>,
    schema: Schema,
    rules: CellRules,
    products: Vec<Product>,
    /// `--organizations-by`: the organization column holds values of this field, read from
    /// the site once when the run opens.
    external: Option<crate::site::external::ExternalIds>,
    /// `--customers-by`: the customer column holds values of this customer detail field.
    customers_by: Option<String>,
}

impl Entitlements {
    fn by(&self) -> refs::By<'_> {
        refs::By {
            organizations: self.external.as_ref(),
            customers: self.customers_by.as_deref(),
        }
    }
}

/// One row's entitlement; what deciding found is filled in before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wanted {
    pub holder: Holder,
    pub product: String,
    pub details: Vec<DetailValue>,
    /// The holder as the API knows it, and the product's id.
    #[serde(default)]
    pub entity: Option<Entity>,
    #[serde(default)]
    pub product_id: Option<String>,
    /// The holder's entitlement for the product when it has one, and the details to set on it.
    #[serde(default)]
    pub existing: Option<String>,
    #[serde(default)]
    pub changed: Vec<DetailValue>,
}

/// What a row needs, given the holder's current entitlement for the product (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Unchanged(String),
    /// Set these detail values on the existing entitlement.
    Update(String, Vec<DetailValue>),
}

pub fn decide(existing: Option<&SiteEntitlement>, details: &[DetailValue]) -> Action {
    let Some(e) = existing else {
        return Action::Create;
    };
    let changed: Vec<DetailValue> = details
        .iter()
        .filter(|d| {
            e.details
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(&d.name))
                .is_none_or(|x| x.values != d.values)
        })
        .cloned()
        .collect();
    if changed.is_empty() {
        Action::Unchanged(e.id.clone())
    } else {
        Action::Update(e.id.clone(), changed)
    }
}

fn holder_column(h: &Holder) -> &'static str {
    match h {
        Holder::CustomerId(_) | Holder::CustomerEmail(_) | Holder::CustomerExternal(_) => {
            "customer"
        }
        Holder::OrganizationId(_)
        | Holder::OrganizationName(_)
        | Holder::OrganizationExternal(_) => "organization",
    }
}

impl Entitlements {
    fn column(&self, k: usize) -> String {
        self.cols[k]
            .and_then(|c| self.header.get(c).cloned())
            .unwrap_or_else(|| self.known[k].clone())
    }

    fn product_id(&self, p: &str) -> Option<String> {
        self.products
            .iter()
            .find(|x| x.id == p)
            .or_else(|| {
                self.products
                    .iter()
                    .find(|x| match_key(&x.name) == match_key(p))
            })
            .map(|x| x.id.clone())
    }
}

impl Description for Entitlements {
    type Item = Wanted;

    fn opened(&self) -> super::Opened {
        super::Opened {
            ignored_columns: self.ignored.clone(),
            ..Default::default()
        }
    }

    async fn open(s: Setup<'_>) -> Result<Self, Error> {
        let defs: DetailFieldsWithConfiguration = s
            .site
            .client
            .get_list(paths::ENTITLEMENT_DETAILS)
            .await
            .map_err(Error::from_setup)?;
        let schema = Schema::from_api(&defs);
        let mut known: Vec<String> =
            vec!["customer".into(), "organization".into(), "product".into()];
        known.extend(schema.fields.iter().map(|f| f.name.clone()));
        let known_ref: Vec<&str> = known.iter().map(String::as_str).collect();
        let (cols, ignored) = find_columns(
            s.header,
            s.label,
            "entitlements",
            &known_ref,
            &["product"],
            s.opts.input.ignore_unknown_columns,
        )?;
        if cols[0].is_none() && cols[1].is_none() {
            return Err(Error::Usage(format!(
                "{}: no 'customer' or 'organization' column: each row names who holds the entitlement",
                s.label
            )));
        }
        let products = list_products(&s.site.client)
            .await
            .map_err(Error::from_setup)?;
        Ok(Entitlements {
            cols,
            ignored,
            known,
            header: s.header.to_vec(),
            schema,
            rules: CellRules {
                date_format: s.opts.input.date_format.clone(),
            },
            products,
            customers_by: s.opts.input.customers_by.clone(),
            external: super::columns::organizations_by(
                &s,
                s.opts.input.organizations_by.as_deref(),
            )
            .await?,
        })
    }

    fn check(&self, row: &RawRow) -> Result<Wanted, Vec<CellError>> {
        let cell = |c: Option<usize>| c.map(|c| row.cells.cell(c)).unwrap_or("");
        let mut errors = Vec::new();
        let holder = Holder::parse_by(cell(self.cols[0]), cell(self.cols[1]), self.by())
            .map_err(|e| {
                errors.push(CellError {
                    field: self.column(if self.cols[0].is_some() { 0 } else { 1 }),
                    message: e,
                })
            })
            .ok();
        let product = cell(self.cols[2]).trim().to_string();
        if product.is_empty() {
            errors.push(CellError {
                field: self.column(2),
                message: "product is empty (a product name or id)".into(),
            });
        }
        let mut details = Vec::new();
        for (k, def) in self.schema.fields.iter().enumerate() {
            match validate::detail_value(def, cell(self.cols[3 + k]), &self.rules) {
                Ok(Some(values)) => details.push(DetailValue {
                    name: def.name.clone(),
                    values,
                }),
                Ok(None) => {}
                Err(e) => errors.push(CellError {
                    field: self.column(3 + k),
                    message: e,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Wanted {
            holder: holder.expect("no errors"),
            product,
            details,
            entity: None,
            product_id: None,
            existing: None,
            changed: Vec::new(),
        })
    }

    fn identity(&self, w: &Wanted) -> Vec<Identity> {
        vec![Identity {
            key: format!("{}|{}", w.holder.key(), match_key(&w.product)),
            field: self.column(2),
            message: "duplicate: row {first} of this file already gives this entitlement (one row per holder and product)".into(),
        }]
    }

    async fn decide<'a>(&'a self, cx: &'a Cx<'a>, items: Vec<Wanted>) -> Vec<Decision<Wanted>> {
        let holders = resolve_holders(
            &cx.site.client,
            cx.site.service_desk.as_deref(),
            items.iter().map(|w| &w.holder),
            self.by(),
        )
        .await;
        let mut current: HashMap<Entity, Result<Vec<SiteEntitlement>, String>> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        for mut w in items {
            let Some(pid) = self.product_id(&w.product) else {
                out.push(Decision::refuse(
                    "product",
                    format!(
                        "no product '{}' on the site (import products first, or give its id)",
                        w.product
                    ),
                ));
                continue;
            };
            let entity = match holders.get(&w.holder) {
                Some(Lookup::Found(e)) => e.clone(),
                Some(Lookup::NotFound(why)) => {
                    out.push(Decision::Refuse {
                        stage: if w.holder.is_external() {
                            crate::row::Stage::Resolve
                        } else {
                            crate::row::Stage::Validate
                        },
                        field: holder_column(&w.holder).into(),
                        error: why.clone(),
                    });
                    continue;
                }
                Some(Lookup::Failed(why)) => {
                    out.push(Decision::Open(format!("not sent: {why}")));
                    continue;
                }
                None => {
                    out.push(Decision::Open(
                        "not sent: the holder could not be looked up".into(),
                    ));
                    continue;
                }
            };
            if !current.contains_key(&entity) {
                let list = entitlements_of(&cx.site.client, &entity)
                    .await
                    .map_err(|e| e.to_string());
                current.insert(entity.clone(), list);
            }
            let list = match &current[&entity] {
                Ok(l) => l,
                Err(e) => {
                    out.push(Decision::Open(format!(
                        "not sent: the holder's entitlements could not be read: {e}"
                    )));
                    continue;
                }
            };
            let existing = list.iter().find(|e| e.product.id == pid);
            w.entity = Some(entity);
            w.product_id = Some(pid);
            out.push(match decide(existing, &w.details) {
                Action::Unchanged(id) => Decision::Unchanged(Some(id)),
                Action::Create => Decision::Send(w),
                Action::Update(id, changed) => {
                    w.existing = Some(id);
                    w.changed = changed;
                    Decision::Send(w)
                }
            });
        }
        out
    }

    fn requests(&self, items: &[Wanted]) -> Vec<Request> {
        items
            .iter()
            .enumerate()
            .filter_map(|(k, w)| {
                let entity = w.entity.as_ref()?;
                let calls = match &w.existing {
                    None => vec![Call {
                        method: Method::Post,
                        path: entity.create_path(),
                        body: Body::of(&CreateEntitlement {
                            product_id: w.product_id.clone()?,
                            details: w.details.clone(),
                        }),
                    }],
                    Some(id) => w
                        .changed
                        .iter()
                        .map(|d| Call {
                            method: Method::Put,
                            path: paths::entitlement_value(id, &d.name),
                            body: Body::of(&UpdateDetailField {
                                values: d.values.clone(),
                            }),
                        })
                        .collect(),
                };
                Some(Request {
                    mode: Mode::Calls,
                    calls,
                    items: vec![k],
                })
            })
            .collect()
    }

    fn keys(&self, w: &Wanted) -> Vec<String> {
        w.entity.iter().map(|e| e.id.clone()).collect()
    }

    fn id_of(&self, w: &Wanted, answer: Option<&serde_json::Value>) -> Option<String> {
        w.existing.clone().or_else(|| {
            answer
                .and_then(|v| serde_json::from_value::<SiteEntitlement>(v.clone()).ok())
                .map(|e| e.id)
        })
    }

    /// The holder's entitlements again: the product is there with the row's details, or not.
    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Wanted],
    ) -> Result<Vec<Found>, ApiError> {
        let mut out = Vec::with_capacity(items.len());
        for w in items {
            let (Some(entity), Some(pid)) = (&w.entity, &w.product_id) else {
                out.push(Found::CannotTell);
                continue;
            };
            let list = entitlements_of(&cx.site.client, entity).await?;
            out.push(match list.iter().find(|e| &e.product.id == pid) {
                None => Found::Missing,
                Some(e) if same_details(&w.details, &e.details) => Found::Same(Some(e.id.clone())),
                Some(_) => Found::Drifted,
            });
        }
        Ok(out)
    }
}

/// How `delete entitlements` finds, deletes and backs up an entitlement (a row names it by id,
/// or by its holder and product).
pub const DELETE: deletes::Spec = deletes::Spec {
    kind: Kind::Entitlements,
    columns: &["id", "customer", "organization", "product"],
    one_of: &["id", "product"],
    named: |cell| {
        let holder =
            Holder::parse(&cell("customer"), &cell("organization")).map_err(|e| ("customer", e))?;
        let product = deletes::required(
            cell,
            "product",
            "no id and no product: which entitlement to delete?",
        )?;
        Ok(deletes::Named::Holding { holder, product })
    },
    delete_path: |id| paths::at(paths::ENTITLEMENT, &[id]),
    read_path: Some(|id| paths::at(paths::ENTITLEMENT, &[id])),
    names_products: true,
    needs_products: true,
    needs_fields: false,
    backup: |site, targets| {
        Box::pin(async move {
            let client = &site.client;
            let defs = crate::export::fetch::definitions(client, "entitlement").await?;
            let mut list = Vec::new();
            let mut no_holder = 0;
            for t in targets.iter().filter(|t| t.id.is_some()) {
                let id = t.id.as_deref().expect("filtered");
                let e: crate::site::api::model::Entitlement = client
                    .get_json(&paths::at(paths::ENTITLEMENT, &[id]))
                    .await?;
                let holder = match &t.holder {
                    Some((true, c)) => crate::export::HolderName::Customer(c.clone()),
                    Some((false, o)) => crate::export::HolderName::Organization(o.clone()),
                    None => {
                        no_holder += 1;
                        crate::export::HolderName::Customer(String::new())
                    }
                };
                list.push((holder, e));
            }
            Ok((
                export::table(&crate::export::schema_of(&defs), list),
                no_holder,
            ))
        })
    },
    cannot_put_back: |n, _| {
        (n > 0).then(|| format!(
            "{n} entitlements named by id alone are in the backup without their holder: fill in customer or organization before importing it"
        ))
    },
};

/// Export of entitlements: `customer, organization, product`, the entitlement detail fields, as the import template names them, so an exported file can be edited
/// and imported back: `read` asks the site (through export's `Reader`), `table` builds the
/// rows (also the backup of a delete).
pub mod export {
    use crate::error::Error;
    use crate::export::reader::{Reader, failed};
    use crate::export::{
        Cell, HolderName, Table, details_cells, fetch, header, schema_of, sort_by_key, text,
    };
    use crate::kind::Kind;
    use crate::schema::Schema;

    use crate::export::spool::{Sheet, Spool, sort_key};
    use crate::site::api::model::Entitlement;
    use crate::site::refs::Entity;

    /// What the site holds (or what `--ids` / `--where` select), as one table.
    pub async fn read(r: &Reader<'_>) -> Result<Table, Error> {
        let defs = fetch::definitions(r.client, "entitlement")
            .await
            .map_err(|e| failed("entitlement detail fields", e))?;
        let (entities, names) = r.holders().await?;
        let found = fetch::entitlements(r.client, entities, r.concurrency())
            .await
            .map_err(|e| failed("entitlements", e))?;
        let list = found
            .into_iter()
            .flat_map(|(e, list)| {
                let who = names.get(&(e.customer, e.id.clone())).cloned();
                let who = match (e.customer, who) {
                    (true, w) => HolderName::Customer(w.unwrap_or(e.id.clone())),
                    (false, w) => HolderName::Organization(w.unwrap_or(e.id.clone())),
                };
                list.into_iter().map(move |x| (who.clone(), x))
            })
            .collect();
        Ok(table(&schema_of(&defs), list))
    }

    /// Holders whose entitlements are read at a time while the spool is filled.
    const SPOOL_PAGE: usize = 500;

    /// What the site holds, read a page of holders at a time into `spool` (organizations,
    /// then customers); with `--ids` read as `read` does.
    pub async fn read_into(r: &Reader<'_>, spool: &Spool) -> Result<Sheet, Error> {
        let spooled = |e: crate::export::spool::SpoolError| Error::Usage(e.to_string());
        if r.ids.is_some() {
            let table = read(r).await?;
            return spool.add_table(&table).map_err(spooled);
        }
        let defs = fetch::definitions(r.client, "entitlement")
            .await
            .map_err(|e| failed("entitlement detail fields", e))?;
        let schema = schema_of(&defs);
        let header = entitlement_header(&schema);
        // Where an export that stopped got to: "organizations|ID" or "customers|ID".
        let (mut sheet, mut at) = match spool.progress(Kind::Entitlements).map_err(spooled)? {
            Some((sheet, at)) if sheet.header == header => (sheet, Some(at)),
            Some(_) => {
                spool.reset(Kind::Entitlements).map_err(spooled)?;
                (spool.sheet(Kind::Entitlements, header), None)
            }
            None => (spool.sheet(Kind::Entitlements, header), None),
        };
        r.holders_into(spool).await?;
        for (holders, customer) in [(Kind::Organizations, false), (Kind::Customers, true)] {
            let phase = holders.as_str();
            let mut after: Option<String> = match &at {
                Some(a) => match a.split_once('|') {
                    Some((p, id)) if p == phase => Some(id.to_string()),
                    // Organizations were all read before the export stopped in customers.
                    Some(("customers", _)) if !customer => continue,
                    _ => None,
                },
                None => None,
            };
            loop {
                let page = spool
                    .named_after(holders, after.as_deref(), SPOOL_PAGE)
                    .map_err(spooled)?;
                let Some((last, _)) = page.last().cloned() else {
                    break;
                };
                let entities: Vec<Entity> = page
                    .iter()
                    .map(|(id, _)| Entity {
                        customer,
                        id: id.clone(),
                    })
                    .collect();
                let found = fetch::entitlements(r.client, entities, r.concurrency())
                    .await
                    .map_err(|e| failed("entitlements", e))?;
                let names: std::collections::HashMap<&str, &str> = page
                    .iter()
                    .map(|(id, name)| (id.as_str(), name.as_str()))
                    .collect();
                let mut rows = Vec::new();
                for (e, list) in found {
                    let shown = match names.get(e.id.as_str()) {
                        Some(name) if !name.is_empty() => name.to_string(),
                        _ => e.id.clone(),
                    };
                    let who = if customer {
                        HolderName::Customer(shown)
                    } else {
                        HolderName::Organization(shown)
                    };
                    for x in list {
                        let (key, id) = sort_key_of(&who, &x);
                        let row = row(&schema, &who, &x);
                        sheet.count(&row);
                        rows.push((sort_key(&key, &id), row));
                    }
                }
                spool
                    .add_page(&sheet, &rows, &format!("{phase}|{last}"))
                    .map_err(spooled)?;
                after = Some(last);
            }
            at = None;
        }
        spool.done(&sheet).map_err(spooled)?;
        Ok(sheet)
    }

    fn entitlement_header(schema: &Schema) -> Vec<String> {
        header(&["customer", "organization", "product"], schema, &[])
    }

    /// The order entitlements come in: by holder (customers first, by email; then
    /// organizations, by name), then product, then id.
    fn sort_key_of(h: &HolderName, e: &Entitlement) -> (String, String) {
        let who = match h {
            HolderName::Customer(c) => format!("c {c}"),
            HolderName::Organization(o) => format!("o {o}"),
        };
        (format!("{who}\u{0} {}", e.product.name), e.id.clone())
    }

    fn row(schema: &Schema, h: &HolderName, e: &Entitlement) -> Vec<Cell> {
        let (c, o) = match h {
            HolderName::Customer(c) => (text(c), Cell::Empty),
            HolderName::Organization(o) => (Cell::Empty, text(o)),
        };
        let mut row = vec![c, o, text(&e.product.name)];
        row.extend(details_cells(schema, &e.details));
        row
    }

    /// Entitlements: `customer, organization, product, <entitlement detail fields>`.
    pub fn table(schema: &Schema, mut list: Vec<(HolderName, Entitlement)>) -> Table {
        sort_by_key(&mut list, |(h, e)| sort_key_of(h, e));
        let rows = list.iter().map(|(h, e)| row(schema, h, e)).collect();
        Table {
            kind: Kind::Entitlements,
            header: entitlement_header(schema),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_entitlement_is_kept_and_only_changed_details_are_set() {
        let v = |n: &str, x: &str| DetailValue {
            name: n.into(),
            values: vec![x.into()],
        };
        let e = SiteEntitlement {
            id: "e1".into(),
            product: Product {
                id: "p".into(),
                name: "P".into(),
            },
            details: vec![v("Seats", "10"), v("Level", "Gold")],
        };
        assert_eq!(decide(None, &[]), Action::Create);
        assert_eq!(
            decide(Some(&e), &[v("Seats", "10")]),
            Action::Unchanged("e1".into())
        );
        assert_eq!(
            decide(Some(&e), &[v("Seats", "20"), v("Level", "Gold")]),
            Action::Update("e1".into(), vec![v("Seats", "20")])
        );
    }
}
