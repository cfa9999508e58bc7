//! Customers, as profiles (`customer/profile/bulk`: email, display name, organizations, detail
//! values, 100 a task) or as accounts only (`customer/bulk`: email and display name, 50 a
//! task). A row is its customer by email, or by `id` (an export's last column). Organization
//! names become ids first (created when missing, `kinds::resolve`). A row the site already has
//! as the file gives it is not sent; reading back finds customers by id, or by email through
//! `--service-desk` (CSM has no lookup by email). The kind description for `engine`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::deletes;
use super::resolve::{OrgResolver, Resolved};
use crate::error::Error;
use crate::kind::Kind;
use crate::map::{self, CellError};
use crate::read::RawRow;
use crate::row::{Found, Stage};
use crate::site::api::model::{
    AssociateOrganizations, CustomerAccountItem, CustomerAccountPayload, CustomerBulkRequest,
    CustomerProfile, CustomerProfileBulkRequest, CustomerProfileItem, ProfileOperation,
};
use crate::site::api::{MAX_ACCOUNT_BULK_ITEMS, paths};
use crate::site::client::ApiError;
use crate::site::external::ExternalIds;
use crate::site::refs;

use super::columns::Columns;
use super::{Cx, Decision, Description, Identity, Request, Setup, same_details};

/// Customer profiles (`ACCOUNTS` false) or customer accounts (`ACCOUNTS` true).
pub struct CustomerKind<const ACCOUNTS: bool> {
    columns: Columns,
    orgs: OrgResolver,
    /// With a mapping's `by`: the organizations by the detail field the rows name them by,
    /// read once when the run opens.
    external: Option<ExternalIds>,
}

pub type Customers = CustomerKind<false>;

/// One row's customer, and the organization names it gives (ids once decided).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Customer {
    pub profile: CustomerProfileItem,
    #[serde(default)]
    pub organizations: Vec<String>,
}

impl<const ACCOUNTS: bool> CustomerKind<ACCOUNTS> {
    fn record_kind() -> Kind {
        if ACCOUNTS {
            Kind::CustomerAccounts
        } else {
            Kind::Customers
        }
    }
}

impl<const ACCOUNTS: bool> Description for CustomerKind<ACCOUNTS> {
    type Item = Customer;

    fn did(&self) -> super::BoxFuture<'_, super::Did> {
        Box::pin(async {
            super::Did {
                created_organizations: self.orgs.created().await,
                ..Default::default()
            }
        })
    }

    async fn open(s: Setup<'_>) -> Result<Self, Error> {
        let name = s.opts.kind.as_str();
        let columns = Columns::open(
            Self::record_kind(),
            name,
            s.opts.input,
            s.site,
            s.header,
            s.label,
        )
        .await?;
        let external =
            super::columns::organizations_by(&s, columns.mapping.organizations_by.as_deref())
                .await?;
        Ok(CustomerKind {
            columns,
            orgs: OrgResolver::new(s.opts.create_organizations),
            external,
        })
    }

    fn opened(&self) -> super::Opened {
        let mut notes = self.columns.notes();
        if let Some(x) = &self.external {
            notes.push(format!(
                "organizations found by {}: {} values on {} organizations read from the site",
                x.field,
                x.len(),
                x.organizations
            ));
        }
        super::Opened {
            notes,
            ignored_columns: self.columns.mapping.ignored_unknown.clone(),
            columns: self.columns.uses(),
        }
    }

    fn rules(&self, row: &RawRow) -> super::Rules {
        match self.columns.skip(&row.cells) {
            Some(reason) => super::Rules::Skip(reason),
            None => super::Rules::Keep(self.columns.warnings(&row.cells)),
        }
    }

    fn check(&self, row: &RawRow) -> Result<Customer, Vec<CellError>> {
        let (profile, organizations) = self.columns.customer(row)?;
        Ok(Customer {
            profile,
            organizations,
        })
    }

    fn identity(&self, c: &Customer) -> Vec<Identity> {
        let p = &c.profile.payload;
        vec![match (&p.email, &p.customer_id) {
            (Some(email), _) => {
                Identity::named(email.to_lowercase(), map::COL_EMAIL, email, "a customer")
            }
            (None, id) => {
                let id = id.clone().unwrap_or_default();
                Identity::named(format!("id:{id}"), map::COL_ID, &id, "a customer")
            }
        }]
    }

    fn chunk_weight(&self, batch_size: usize) -> usize {
        if ACCOUNTS {
            batch_size.min(MAX_ACCOUNT_BULK_ITEMS)
        } else {
            batch_size
        }
    }

    async fn decide<'a>(&'a self, cx: &'a Cx<'a>, items: Vec<Customer>) -> Vec<Decision<Customer>> {
        let mut out: Vec<Option<Decision<Customer>>> = vec![None; items.len()];
        let mut items: Vec<Customer> = items;
        if let Some(x) = &self.external {
            // The CRM's ids → organization ids; a value no organization (or several) holds
            // fails its row, naming the value.
            for (k, c) in items.iter_mut().enumerate() {
                let (ids, problems) = by_external_id(x, &std::mem::take(&mut c.organizations));
                if !problems.is_empty() {
                    out[k] = Some(Decision::Refuse {
                        stage: Stage::Resolve,
                        field: map::COL_ORGANIZATIONS.into(),
                        error: problems.join(" | "),
                    });
                    continue;
                }
                for id in ids {
                    associate(c, id);
                }
            }
        }
        // Organization names → ids (created first when missing).
        let names: Vec<String> = items.iter().flat_map(|c| c.organizations.clone()).collect();
        if !names.is_empty() {
            let resolved = self.orgs.resolve(cx, &names).await;
            for (k, c) in items.iter_mut().enumerate() {
                let mut refused = Vec::new();
                let mut open = Vec::new();
                for n in std::mem::take(&mut c.organizations) {
                    match resolved.get(&crate::row::match_key(&n)) {
                        Some(Resolved::Id(id)) => associate(c, id.clone()),
                        Some(Resolved::Refused(why)) => refused.push(why.clone()),
                        Some(Resolved::Open(why)) => open.push(why.clone()),
                        None => open.push(format!("organization '{n}' could not be resolved")),
                    }
                }
                if !refused.is_empty() {
                    out[k] = Some(Decision::Refuse {
                        stage: Stage::Send,
                        field: map::COL_ORGANIZATIONS.into(),
                        error: format!("not sent: {}", refused.join(" | ")),
                    });
                } else if !open.is_empty() {
                    out[k] = Some(Decision::Open(format!(
                        "not sent: {}; `csmport resume` sends it once the organization is there",
                        open.join(" | ")
                    )));
                }
            }
        }
        if let Some(field) = self.columns.key() {
            // The customer the CRM id names on the site must be the one the email names: CSM
            // finds customers by email, so a changed email would make a second customer.
            for (k, c) in items.iter().enumerate() {
                if out[k].is_some() {
                    continue;
                }
                if let Some(d) = email_changed(cx, field, c).await {
                    out[k] = Some(d);
                }
            }
        }
        // Rows the site already has as the file gives them are not sent.
        let candidates: Vec<usize> = (0..items.len())
            .filter(|&k| {
                out[k].is_none() && items[k].profile.operation_type != ProfileOperation::Create
            })
            .collect();
        if !candidates.is_empty() {
            let these: Vec<Customer> = candidates.iter().map(|&k| items[k].clone()).collect();
            match self.read(cx, &these, false).await {
                Ok(found) => {
                    for (&k, f) in candidates.iter().zip(found) {
                        if let Found::Same(id) = f {
                            out[k] = Some(Decision::Unchanged(id));
                        }
                    }
                }
                // Without the site's state everything is sent: UPSERT leaves it the same.
                Err(e) => cx.log.note(&format!(
                    "chunk {}: the customers could not be read to skip unchanged ones ({e}); every row is sent",
                    cx.seq
                )),
            }
        }
        out.into_iter()
            .zip(items)
            .map(|(d, c)| d.unwrap_or(Decision::Send(c)))
            .collect()
    }

    fn requests(&self, items: &[Customer]) -> Vec<Request> {
        let all: Vec<usize> = (0..items.len()).collect();
        if ACCOUNTS {
            let customers = items
                .iter()
                .map(|c| CustomerAccountItem {
                    operation_type: c.profile.operation_type,
                    payload: CustomerAccountPayload {
                        customer_id: c.profile.payload.customer_id.clone(),
                        email: c.profile.payload.email.clone(),
                        display_name: c.profile.payload.display_name.clone(),
                    },
                })
                .collect();
            let body = CustomerBulkRequest { customers };
            return vec![Request::task(paths::CUSTOMER_BULK, &body, all)];
        }
        let body = CustomerProfileBulkRequest {
            customer_profiles: items.iter().map(|c| c.profile.clone()).collect(),
        };
        vec![Request::task(paths::CUSTOMER_PROFILE_BULK, &body, all)]
    }

    fn keys(&self, c: &Customer) -> Vec<String> {
        let p = &c.profile.payload;
        p.customer_id
            .clone()
            .into_iter()
            .chain(p.email.as_deref().map(crate::row::match_key))
            .collect()
    }

    async fn failure_keys<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        ids: &'a [String],
    ) -> HashMap<String, String> {
        match refs::customer_profiles(&cx.site.client, ids, 1).await {
            Ok(profiles) => profiles
                .into_iter()
                .filter_map(|p| Some((p.id, p.email?)))
                .collect(),
            Err(e) => {
                cx.log.note(&format!("could not resolve ids {ids:?}: {e}"));
                HashMap::new()
            }
        }
    }

    fn id_of(&self, c: &Customer, _answer: Option<&serde_json::Value>) -> Option<String> {
        c.profile.payload.customer_id.clone()
    }

    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Customer],
    ) -> Result<Vec<Found>, ApiError> {
        self.read(cx, items, true).await
    }
}

/// With a customers mapping's `key`: why `c` must not be sent (the customer holding its CRM id
/// has another email, or several hold it), or None when it may.
async fn email_changed(cx: &Cx<'_>, field: &str, c: &Customer) -> Option<Decision<Customer>> {
    let p = &c.profile.payload;
    let value = p
        .details
        .iter()
        .flatten()
        .find(|d| map::normalize(&d.name) == map::normalize(field))?
        .values
        .first()?;
    let email = p.email.as_deref()?;
    let holding = match refs::customers_holding(&cx.site.client, field, value).await {
        Ok(h) => h,
        Err(e) => {
            return Some(Decision::Open(format!(
                "not sent: the customers with {field} '{value}' could not be looked up ({e}); `csmport resume` asks again"
            )));
        }
    };
    let refuse = |error: String| {
        Some(Decision::Refuse {
            stage: Stage::Resolve,
            field: field.to_string(),
            error,
        })
    };
    match holding.as_slice() {
        [] => None,
        [one] => match &one.email {
            Some(e) if e.eq_ignore_ascii_case(email) => None,
            Some(e) => refuse(format!(
                "{field} '{value}' is customer {} on the site, whose email is {e}, not {email}: CSM finds customers by email and csmport does not change one, so sending this row would make a second customer; change the email on the site (or in the row) and run again",
                one.id
            )),
            None => Some(Decision::Open(format!(
                "not sent: {field} '{value}' is customer {} on the site, whose email these credentials cannot see, so whether it is {email} cannot be told",
                one.id
            ))),
        },
        many => refuse(format!(
            "customers {} all have {field} '{value}'; keep the value on one of them",
            many.iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Puts the customer in organization `id` (once).
fn associate(c: &mut Customer, id: String) {
    let assoc = c
        .profile
        .payload
        .associate_organizations
        .get_or_insert_with(|| AssociateOrganizations {
            organization_ids: vec![],
        });
    if !assoc.organization_ids.contains(&id) {
        assoc.organization_ids.push(id);
    }
}

/// The organization ids `values` name through `x`, or why some cannot be had.
fn by_external_id(x: &ExternalIds, values: &[String]) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    for v in values {
        match x.get(v) {
            crate::site::external::Match::One(id) => ids.push(id.to_string()),
            _ => problems.extend(x.problem(v)),
        }
    }
    (ids, problems)
}

impl<const ACCOUNTS: bool> CustomerKind<ACCOUNTS> {
    /// Reads the customers back (profile fetch by id, 25 a call; ids given, or found by email
    /// through `--service-desk`) and tells, per item, whether the site has it as given.
    /// `again_if_missing`: when an email is not in the last listing, one begun after the
    /// chunk's tasks were seen ended is needed (they may have created it).
    async fn read(
        &self,
        cx: &Cx<'_>,
        items: &[Customer],
        again_if_missing: bool,
    ) -> Result<Vec<Found>, ApiError> {
        let emails: Vec<String> = items
            .iter()
            .filter(|c| c.profile.payload.customer_id.is_none())
            .filter_map(|c| c.profile.payload.email.clone())
            .collect();
        let by_email = if emails.is_empty() {
            None
        } else {
            // After a task that may have made them: a listing begun since it was seen ended.
            let fresh =
                again_if_missing.then(|| cx.changed.unwrap_or_else(std::time::Instant::now));
            cx.site.customers_by_email(&emails, fresh).await?
        };
        let ids: Vec<Option<String>> = items
            .iter()
            .map(|c| {
                c.profile.payload.customer_id.clone().or_else(|| {
                    let email = c.profile.payload.email.as_deref()?;
                    by_email.as_ref()?.get(email).cloned()
                })
            })
            .collect();
        let wanted: Vec<String> = ids.iter().flatten().cloned().collect();
        let profiles: HashMap<String, CustomerProfile> = if wanted.is_empty() {
            HashMap::new()
        } else {
            refs::customer_profiles(&cx.site.client, &wanted, 1)
                .await?
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect()
        };
        Ok(items
            .iter()
            .zip(ids)
            .map(|(c, id)| {
                let Some(id) = id else {
                    // An email the listing does not have: not there, when the listing shows
                    // every email; else (or without a listing) nothing can be told.
                    return match &by_email {
                        Some(l) if l.complete() => Found::Missing,
                        _ => Found::CannotTell,
                    };
                };
                let Some(site) = profiles.get(&id) else {
                    return Found::Missing;
                };
                let p = &c.profile.payload;
                let same = c.organizations.is_empty()
                    && p.display_name
                        .as_ref()
                        .is_none_or(|n| *n == site.display_name)
                    && same_details(p.details.as_deref().unwrap_or(&[]), &site.details)
                    && p.associate_organizations
                        .iter()
                        .flat_map(|a| &a.organization_ids)
                        .all(|o| site.organizations.iter().any(|s| &s.id == o));
                if same {
                    Found::Same(Some(id))
                } else {
                    Found::Drifted
                }
            })
            .collect())
    }
}

/// How `delete customers` finds, deletes and backs up a customer account (a row names it by
/// id, or by email with `--service-desk`).
pub const DELETE: deletes::Spec = deletes::Spec {
    kind: Kind::Customers,
    columns: &["id", "email"],
    one_of: &["id", "email"],
    named: |cell| {
        deletes::required(
            cell,
            "email",
            "no id and no email: which customer to delete?",
        )
        .map(|e| deletes::Named::Email(e.to_lowercase()))
    },
    delete_path: |id| paths::at(paths::CUSTOMER_ACCOUNT, &[id]),
    read_path: Some(|id| paths::at(paths::CUSTOMER, &[id])),
    names_products: false,
    needs_products: false,
    needs_fields: false,
    backup: |site, targets| {
        Box::pin(async move {
            let ids = deletes::found_ids(targets);
            let defs = crate::export::fetch::definitions(&site.client, "customer").await?;
            let profiles = crate::site::refs::customer_profiles(&site.client, &ids, 4).await?;
            let n = profiles.len();
            Ok((export::table(&crate::export::schema_of(&defs), profiles), n))
        })
    },
    cannot_put_back: |n, _| {
        (n > 0).then(|| format!(
            "{n} customer accounts put back from the backup come back as new accounts with new ids (requests and history stay with the deleted ones); their entitlements are not in it"
        ))
    },
};

/// Export of customers: `email, displayName, organizations`, the customer detail fields, then `id`, as the import template names them, so an exported file can be edited
/// and imported back: `read` asks the site (through export's `Reader`), `table` builds the
/// rows (also the backup of a delete).
pub mod export {
    use crate::error::Error;
    use crate::export::reader::{Reader, failed, not_returned};
    use crate::export::spool::{Sheet, Spool, sort_key};
    use crate::export::{Cell, Table, details_cells, fetch, header, schema_of, sort_by_key, text};
    use crate::kind::Kind;
    use crate::schema::Schema;
    use crate::site::api::MULTI_VALUE_SEPARATOR;
    use crate::site::api::model::CustomerProfile;

    /// What the site holds (or what `--ids` / `--where` select), as one table.
    pub async fn read(r: &Reader<'_>) -> Result<Table, Error> {
        let defs = fetch::definitions(r.client, "customer")
            .await
            .map_err(|e| failed("customer detail fields", e))?;
        let ids = if r.query.is_empty() {
            r.customer_ids().await?
        } else {
            r.searched_customers(&defs).await?
        };
        let mut profiles = fetch::customer_profiles(r.client, &ids, r.concurrency())
            .await
            .map_err(|e| failed("customer profiles", e))?;
        if !r.query.is_empty() {
            // The search's matching rules are not documented: what it found is kept
            // only where the profile holds the value.
            let before = profiles.len();
            profiles.retain(|p| fetch::holds(&p.details, r.query));
            if profiles.len() < before {
                r.notify.note(&format!(
                    "--where: {} of the {before} customers the search gave do not hold the value on their profile; left out",
                    before - profiles.len()
                ));
            }
        }
        if r.ids.is_some() {
            r.unknown(not_returned(&ids, profiles.iter().map(|p| &p.id)));
        }
        Ok(table(&schema_of(&defs), profiles))
    }

    /// Profiles fetched at a time while the spool is filled: a few calls' worth, so memory
    /// holds a page, never the site.
    const SPOOL_PAGE: usize = 1000;

    /// What the site holds, read a page of profiles at a time into `spool`; with `--ids` or
    /// `--where` (a selection the user named) read as `read` does.
    pub async fn read_into(r: &Reader<'_>, spool: &Spool) -> Result<Sheet, Error> {
        if r.ids.is_some() || !r.query.is_empty() {
            let table = read(r).await?;
            return spool.add_table(&table).map_err(spooled);
        }
        let defs = fetch::definitions(r.client, "customer")
            .await
            .map_err(|e| failed("customer detail fields", e))?;
        let schema = schema_of(&defs);
        let header = customer_header(&schema);
        // Where an export that stopped got to, if it read the same columns.
        let (mut sheet, mut after) = match spool.progress(Kind::Customers).map_err(spooled)? {
            Some((sheet, after)) if sheet.header == header => (sheet, Some(after)),
            Some(_) => {
                r.notify.note(
                    "customers: the site's customer fields changed since the export stopped; reading them again",
                );
                spool.reset(Kind::Customers).map_err(spooled)?;
                (spool.sheet(Kind::Customers, header), None)
            }
            None => (spool.sheet(Kind::Customers, header), None),
        };
        r.customers_into(spool).await?;
        loop {
            let ids = spool
                .ids_after(Kind::Customers, after.as_deref(), SPOOL_PAGE)
                .map_err(spooled)?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            let profiles = fetch::customer_profiles(r.client, &ids, r.concurrency())
                .await
                .map_err(|e| failed("customer profiles", e))?;
            let rows: Vec<(Vec<u8>, Vec<Cell>)> = profiles
                .iter()
                .map(|p| {
                    let row = row(&schema, p);
                    sheet.count(&row);
                    (sort_key(p.email.as_deref().unwrap_or(""), &p.id), row)
                })
                .collect();
            spool.add_page(&sheet, &rows, &last).map_err(spooled)?;
            after = Some(last);
        }
        spool.done(&sheet).map_err(spooled)?;
        Ok(sheet)
    }

    fn spooled(e: crate::export::spool::SpoolError) -> Error {
        Error::Usage(e.to_string())
    }

    fn customer_header(schema: &Schema) -> Vec<String> {
        header(&["email", "displayName", "organizations"], schema, &["id"])
    }

    /// A customer's row: `email, displayName, organizations, <customer detail fields>, id`.
    fn row(schema: &Schema, p: &CustomerProfile) -> Vec<Cell> {
        let mut orgs: Vec<&str> = p.organizations.iter().map(|o| o.name.as_str()).collect();
        orgs.sort_by_key(|n| n.to_lowercase());
        let mut row = vec![
            text(p.email.as_deref().unwrap_or("")),
            text(&p.display_name),
            text(&orgs.join(&MULTI_VALUE_SEPARATOR.to_string())),
        ];
        row.extend(details_cells(schema, &p.details));
        row.push(text(&p.id));
        row
    }

    /// Customers: `email, displayName, organizations, <customer detail fields>, id`, as the
    /// customers template (`id` last, so a re-import matches each row to its customer).
    pub fn table(schema: &Schema, mut profiles: Vec<CustomerProfile>) -> Table {
        sort_by_key(&mut profiles, |p| {
            (p.email.clone().unwrap_or_default(), p.id.clone())
        });
        let rows = profiles.iter().map(|p| row(schema, p)).collect();
        Table {
            kind: Kind::Customers,
            header: customer_header(schema),
            rows,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::export::Cell;
        use crate::schema::{FieldDef, FieldKind};
        use crate::site::api::model::{DetailValue, OrganizationRef};

        #[test]
        fn customers_are_sorted_by_email_then_id_with_the_template_columns() {
            let schema = Schema {
                fields: vec![FieldDef {
                    name: "Seats".into(),
                    kind: FieldKind::Number,
                    options: vec![],
                }],
            };
            let p = |id: &str, email: &str, orgs: &[&str]| CustomerProfile {
                id: id.into(),
                display_name: format!("N {id}"),
                email: Some(email.into()),
                details: vec![DetailValue {
                    name: "seats".into(),
                    values: vec!["3".into()],
                }],
                organizations: orgs
                    .iter()
                    .map(|o| OrganizationRef {
                        id: format!("id-{o}"),
                        name: o.to_string(),
                    })
                    .collect(),
                entitlements: None,
            };
            let t = table(
                &schema,
                vec![
                    p("qm:2", "b@x.com", &[]),
                    p("qm:9", "A@x.com", &["Zeta", "acme"]),
                    p("qm:1", "a@x.com", &[]),
                ],
            );
            assert_eq!(
                t.header,
                ["email", "displayName", "organizations", "Seats", "id"]
            );
            let col = |i: usize| t.rows.iter().map(|r| r[i].text()).collect::<Vec<_>>();
            assert_eq!(col(4), ["qm:9", "qm:1", "qm:2"]);
            assert_eq!(col(2), ["acme;Zeta", "", ""]);
            assert_eq!(t.rows[0][3], Cell::Number(3.0, "3".into()));
        }
    }
}
