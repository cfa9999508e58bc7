//! Organizations, as profiles (`organization/profile/bulk`: name or id, detail values, 100 a
//! task) or as records only (`organization/bulk`: name, id, 50 a task). A row is its
//! organization by name (case ignored: updated, never duplicated) or by id. A row the site
//! already has as the file gives it is not sent; reading back finds organizations by name
//! (`organization/fetch`) and reads their profiles. The kind description for `engine`.

use std::collections::HashMap;

use crate::error::Error;
use crate::kind::Kind;
use crate::map::{self, CellError};
use crate::read::RawRow;
use crate::row::Stage;
use crate::row::{Found, match_key};
use crate::site::api::model::{
    DetailValue, OrganizationAccountItem, OrganizationAccountPayload, OrganizationBulkRequest,
    OrganizationFetchRequest, OrganizationFetchResponse, OrganizationProfileBulkRequest,
    OrganizationProfileItem, ProfileOperation,
};
use crate::site::api::{MAX_ACCOUNT_BULK_ITEMS, MAX_ORGANIZATION_FETCH, paths};
use crate::site::client::ApiError;
use crate::site::external::{ExternalIds, Match};
use crate::site::refs;

use super::columns::Columns;
use super::deletes;
use super::{Cx, Decision, Description, Identity, Request, Setup, same_details};

/// Organization profiles (`ACCOUNTS` false) or organization records (`ACCOUNTS` true).
pub struct OrganizationKind<const ACCOUNTS: bool> {
    columns: Columns,
    /// With a mapping's `key`: the site's organizations by the CRM id they hold, read once
    /// when the run opens, so a renamed account updates its organization.
    keyed: Option<ExternalIds>,
}

pub type Organizations = OrganizationKind<false>;

impl<const ACCOUNTS: bool> OrganizationKind<ACCOUNTS> {
    fn record_kind() -> Kind {
        if ACCOUNTS {
            Kind::OrganizationAccounts
        } else {
            Kind::Organizations
        }
    }
}

impl<const ACCOUNTS: bool> Description for OrganizationKind<ACCOUNTS> {
    type Item = OrganizationProfileItem;

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
        let keyed = match columns.key() {
            Some(field) => Some(
                ExternalIds::load(&s.site.client, field)
                    .await
                    .map_err(Error::from_setup)?,
            ),
            None => None,
        };
        Ok(OrganizationKind { columns, keyed })
    }

    fn opened(&self) -> super::Opened {
        let mut notes = self.columns.notes();
        if let Some(x) = &self.keyed {
            notes.push(format!(
                "organizations keyed by {}: {} values on {} organizations read from the site (a row whose value one holds updates it, renaming it to the row's name)",
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

    fn check(&self, row: &RawRow) -> Result<OrganizationProfileItem, Vec<CellError>> {
        self.columns.organization(row).map(|(item, _)| item)
    }

    fn identity(&self, o: &OrganizationProfileItem) -> Vec<Identity> {
        let p = &o.payload;
        let (key, shown, field) = match (&p.name, &p.id) {
            (Some(n), _) => (match_key(n), n.clone(), map::COL_NAME),
            (None, id) => {
                let id = id.clone().unwrap_or_default();
                (format!("#{id}"), id, map::COL_ID)
            }
        };
        vec![Identity::named(key, field, &shown, "an organization")]
    }

    fn chunk_weight(&self, batch_size: usize) -> usize {
        if ACCOUNTS {
            batch_size.min(MAX_ACCOUNT_BULK_ITEMS)
        } else {
            batch_size
        }
    }

    async fn decide<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: Vec<OrganizationProfileItem>,
    ) -> Vec<Decision<OrganizationProfileItem>> {
        let mut refused: Vec<Option<Decision<OrganizationProfileItem>>> = vec![None; items.len()];
        let mut items = items;
        if let Some(x) = &self.keyed {
            // The organization holding the row's CRM id is the one the row updates.
            for (k, o) in items.iter_mut().enumerate() {
                match keyed_id(x, o) {
                    Ok(Some(id)) => o.payload.id = Some(id),
                    Ok(None) => {}
                    Err(why) => {
                        refused[k] = Some(Decision::Refuse {
                            stage: Stage::Resolve,
                            field: x.field.clone(),
                            error: why,
                        })
                    }
                }
            }
        }
        let found = match read(cx, &items).await {
            Ok(f) => f,
            Err(e) => {
                cx.log.note(&format!(
                    "chunk {}: the organizations could not be read to skip unchanged ones ({e}); every row is sent",
                    cx.seq
                ));
                vec![Found::CannotTell; items.len()]
            }
        };
        items
            .into_iter()
            .zip(found)
            .zip(refused)
            .map(|((o, f), refused)| match (f, refused) {
                (_, Some(d)) => d,
                (Found::Same(id), None) if o.operation_type != ProfileOperation::Create => {
                    Decision::Unchanged(id)
                }
                _ => Decision::Send(o),
            })
            .collect()
    }

    fn requests(&self, items: &[OrganizationProfileItem]) -> Vec<Request> {
        let all: Vec<usize> = (0..items.len()).collect();
        if ACCOUNTS {
            let organizations = items
                .iter()
                .map(|o| OrganizationAccountItem {
                    operation_type: o.operation_type,
                    payload: OrganizationAccountPayload {
                        id: o.payload.id.clone(),
                        name: o.payload.name.clone(),
                    },
                })
                .collect();
            let body = OrganizationBulkRequest { organizations };
            return vec![Request::task(paths::ORGANIZATION_BULK, &body, all)];
        }
        let body = OrganizationProfileBulkRequest {
            organization_profiles: items.to_vec(),
        };
        vec![Request::task(paths::ORGANIZATION_PROFILE_BULK, &body, all)]
    }

    fn keys(&self, o: &OrganizationProfileItem) -> Vec<String> {
        o.payload
            .id
            .clone()
            .into_iter()
            .chain(o.payload.name.as_deref().map(match_key))
            .collect()
    }

    async fn failure_keys<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        ids: &'a [String],
    ) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for group in ids.chunks(MAX_ORGANIZATION_FETCH) {
            let req = OrganizationFetchRequest {
                organization_ids: group.to_vec(),
                organization_names: vec![],
            };
            match cx
                .site
                .client
                .post_list::<_, OrganizationFetchResponse>(paths::ORGANIZATION_FETCH, &req)
                .await
            {
                Ok(r) => out.extend(r.results.into_iter().map(|o| (o.id, o.name))),
                Err(e) => cx
                    .log
                    .note(&format!("could not resolve ids {group:?}: {e}")),
            }
        }
        out
    }

    fn id_of(
        &self,
        o: &OrganizationProfileItem,
        _answer: Option<&serde_json::Value>,
    ) -> Option<String> {
        o.payload.id.clone()
    }

    /// The task does not return ids; organization/fetch finds them by name (50 a call).
    async fn fill_ids<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [OrganizationProfileItem],
    ) -> Vec<Option<String>> {
        let names: Vec<String> = items
            .iter()
            .filter_map(|o| o.payload.name.as_deref().map(|n| n.trim().to_string()))
            .collect();
        match refs::fetch_ids(&cx.site.client, &names).await {
            Ok(ids) => items
                .iter()
                .map(|o| ids.get(&match_key(o.payload.name.as_deref()?)).cloned())
                .collect(),
            // Only the report's id column is lost: the rows did succeed.
            Err(e) => {
                cx.log.note(&format!(
                    "chunk {}: could not look up the ids of {} organizations: {e}",
                    cx.seq,
                    items.len()
                ));
                vec![None; items.len()]
            }
        }
    }

    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [OrganizationProfileItem],
    ) -> Result<Vec<Found>, ApiError> {
        read(cx, items).await
    }
}

/// The organization a row updates through the mapping's key: the one holding the row's value
/// of the key field (None when none does, or the row has no value: it is found by name as
/// usual); an error when several hold it.
fn keyed_id(x: &ExternalIds, o: &OrganizationProfileItem) -> Result<Option<String>, String> {
    let value = o
        .payload
        .details
        .iter()
        .flatten()
        .find(|d| map::normalize(&d.name) == map::normalize(&x.field))
        .and_then(|d| d.values.first());
    let Some(value) = value else {
        return Ok(None);
    };
    match x.get(value) {
        Match::One(id) => Ok(Some(id.to_string())),
        Match::None => Ok(None),
        Match::Many(_) => Err(x.problem(value).unwrap_or_default()),
    }
}

/// Reads the organizations back (by name through organization/fetch, 50 a call, then profile
/// fetch, 25 a call) and tells, per item, whether the site has it as given.
async fn read(cx: &Cx<'_>, items: &[OrganizationProfileItem]) -> Result<Vec<Found>, ApiError> {
    let names: Vec<String> = items
        .iter()
        .filter(|o| o.payload.id.is_none())
        .filter_map(|o| o.payload.name.as_deref().map(|n| n.trim().to_string()))
        .collect();
    let by_name = if names.is_empty() {
        HashMap::new()
    } else {
        refs::fetch_ids(&cx.site.client, &names).await?
    };
    let ids: Vec<Option<String>> = items
        .iter()
        .map(|o| {
            o.payload
                .id
                .clone()
                .or_else(|| by_name.get(&match_key(o.payload.name.as_deref()?)).cloned())
        })
        .collect();
    let wanted: Vec<String> = ids.iter().flatten().cloned().collect();
    let profiles: HashMap<String, (String, Vec<DetailValue>)> = if wanted.is_empty() {
        HashMap::new()
    } else {
        refs::organization_profiles(&cx.site.client, &wanted, 1)
            .await?
            .into_iter()
            .map(|p| (p.id, (p.name, p.details)))
            .collect()
    };
    Ok(items
        .iter()
        .zip(ids)
        .map(|(o, id)| {
            let Some(id) = id else {
                return Found::Missing;
            };
            let Some((site_name, site_details)) = profiles.get(&id) else {
                return Found::Missing;
            };
            let same_name = o
                .payload
                .name
                .as_deref()
                .is_none_or(|n| n.trim() == site_name);
            if same_name && same_details(o.payload.details.as_deref().unwrap_or(&[]), site_details)
            {
                Found::Same(Some(id))
            } else {
                Found::Drifted
            }
        })
        .collect())
}

/// How `delete organizations` finds, deletes and backs up an organization (a row names it by
/// id or name).
pub const DELETE: deletes::Spec = deletes::Spec {
    kind: Kind::Organizations,
    columns: &["id", "name"],
    one_of: &["id", "name"],
    named: |cell| {
        deletes::required(cell, "name", "no id and no name: which one to delete?")
            .map(deletes::Named::Name)
    },
    delete_path: |id| paths::at(paths::ORGANIZATION, &[id]),
    read_path: Some(|id| paths::at(paths::ORGANIZATION, &[id])),
    names_products: false,
    needs_products: false,
    needs_fields: false,
    backup: |site, targets| {
        Box::pin(async move {
            let ids = deletes::found_ids(targets);
            let defs = crate::export::fetch::definitions(&site.client, "organization").await?;
            let profiles = crate::site::refs::organization_profiles(&site.client, &ids, 4).await?;
            let n = profiles.len();
            Ok((export::table(&crate::export::schema_of(&defs), profiles), n))
        })
    },
    cannot_put_back: |n, _| {
        (n > 0).then(|| format!(
            "{n} organizations put back from the backup get new ids, and their members and entitlements are not in it"
        ))
    },
};

/// Export of organizations: `name`, the organization detail fields, then `id`, as the import template names them, so an exported file can be edited
/// and imported back: `read` asks the site (through export's `Reader`), `table` builds the
/// rows (also the backup of a delete).
pub mod export {
    use crate::error::Error;
    use crate::export::reader::{Reader, failed, not_returned};
    use crate::export::spool::{Sheet, Spool, sort_key};
    use crate::export::{Cell, Table, details_cells, fetch, header, schema_of, sort_by_key, text};
    use crate::kind::Kind;
    use crate::schema::Schema;

    use crate::site::api::model::OrganizationProfile;

    /// What the site holds (or what `--ids` / `--where` select), as one table.
    pub async fn read(r: &Reader<'_>) -> Result<Table, Error> {
        let defs = fetch::definitions(r.client, "organization")
            .await
            .map_err(|e| failed("organization detail fields", e))?;
        let ids = r.organization_ids().await?;
        let profiles = fetch::organization_profiles(r.client, &ids, r.concurrency())
            .await
            .map_err(|e| failed("organization profiles", e))?;
        if r.ids.is_some() {
            r.unknown(not_returned(&ids, profiles.iter().map(|p| &p.id)));
        }
        Ok(table(&schema_of(&defs), profiles))
    }

    /// Profiles fetched at a time while the spool is filled.
    const SPOOL_PAGE: usize = 1000;

    /// What the site holds, listed and read a page at a time into `spool`; with `--ids` read
    /// as `read` does.
    pub async fn read_into(r: &Reader<'_>, spool: &Spool) -> Result<Sheet, Error> {
        let spooled = |e: crate::export::spool::SpoolError| Error::Usage(e.to_string());
        if r.ids.is_some() {
            let table = read(r).await?;
            return spool.add_table(&table).map_err(spooled);
        }
        let defs = fetch::definitions(r.client, "organization")
            .await
            .map_err(|e| failed("organization detail fields", e))?;
        let schema = schema_of(&defs);
        let header = organization_header(&schema);
        let (mut sheet, mut after) = match spool.progress(Kind::Organizations).map_err(spooled)? {
            Some((sheet, after)) if sheet.header == header => (sheet, Some(after)),
            Some(_) => {
                spool.reset(Kind::Organizations).map_err(spooled)?;
                (spool.sheet(Kind::Organizations, header), None)
            }
            None => (spool.sheet(Kind::Organizations, header), None),
        };
        r.organizations_into(spool).await?;
        loop {
            let ids = spool
                .ids_after(Kind::Organizations, after.as_deref(), SPOOL_PAGE)
                .map_err(spooled)?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            let profiles = fetch::organization_profiles(r.client, &ids, r.concurrency())
                .await
                .map_err(|e| failed("organization profiles", e))?;
            let rows: Vec<(Vec<u8>, Vec<Cell>)> = profiles
                .iter()
                .map(|p| {
                    let row = row(&schema, p);
                    sheet.count(&row);
                    (sort_key(&p.name, &p.id), row)
                })
                .collect();
            spool.add_page(&sheet, &rows, &last).map_err(spooled)?;
            after = Some(last);
        }
        spool.done(&sheet).map_err(spooled)?;
        Ok(sheet)
    }

    fn organization_header(schema: &Schema) -> Vec<String> {
        header(&["name"], schema, &["id"])
    }

    fn row(schema: &Schema, p: &OrganizationProfile) -> Vec<Cell> {
        let mut row = vec![text(&p.name)];
        row.extend(details_cells(schema, &p.details));
        row.push(text(&p.id));
        row
    }

    /// Organizations: `name, <organization detail fields>, id`.
    pub fn table(schema: &Schema, mut profiles: Vec<OrganizationProfile>) -> Table {
        sort_by_key(&mut profiles, |p| (p.name.clone(), p.id.clone()));
        let rows = profiles.iter().map(|p| row(schema, p)).collect();
        Table {
            kind: Kind::Organizations,
            header: organization_header(schema),
            rows,
        }
    }
}
