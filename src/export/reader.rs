//! Export stage: what every kind's export reads the site with (`Reader`: `--ids`, `--where`,
//! the customer and organization listings, holders, a few calls at a time); `fetch` does the
//! calls. Each kind's own `export::read` (in `kinds/`) uses it; `kinds::export_table` picks
//! the kind, for `engine::export` and delete's backup pass (`kinds::read_table`).

use std::collections::{BTreeMap, HashMap};

use crate::error::Error;
use crate::export::fetch::{self, Wanted};
use crate::site::api::model::DetailFieldWithConfiguration;
use crate::site::client::{ApiError, Client, Notify};
use crate::site::refs::Entity;

/// What reading found besides the rows: where customers came from, listings left out, and
/// `--ids` entries the site does not have.
#[derive(Debug, Default)]
pub struct Found {
    pub sources: Vec<fetch::SourceCount>,
    pub skipped: Vec<String>,
    pub unknown: Vec<String>,
}

/// How the site is read: calls at once, the service project customers are listed from, and
/// whether a refused listing may be left out.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub concurrency: usize,
    pub service_desk: Option<String>,
    pub allow_partial: bool,
}

/// Reads what the site holds into the export's tables.
pub struct Reader<'a> {
    pub client: &'a Client,
    pub settings: Settings,
    /// `--ids`: the file's text.
    pub ids: Option<&'a str>,
    /// `--where`: customers whose detail fields hold these values.
    pub query: &'a [crate::site::api::model::DetailFieldQuery],
    pub notify: &'a dyn Notify,
    pub found: std::sync::Mutex<Found>,
}

/// A customer listing that could not be read: the export would miss whom it holds.
pub fn unlisted(u: fetch::Unlisted, one_desk: bool) -> Error {
    let refused = matches!(u.error.status(), Some(403 | 404));
    if !refused || one_desk {
        return failed(&u.source, u.error);
    }
    Error::Unlisted(format!(
        "cannot list {}: {}; an export without it would silently miss the customers only it holds. Give the credentials the permission to see it, or pass --allow-partial to export what the other listings give (with a warning)",
        u.source, u.error
    ))
}

/// The ids asked for that the answers do not have.
pub fn not_returned<'a>(asked: &[String], got: impl Iterator<Item = &'a String>) -> Vec<String> {
    let got: std::collections::HashSet<&String> = got.collect();
    asked
        .iter()
        .filter(|id| !got.contains(id))
        .cloned()
        .collect()
}

pub fn failed(what: &str, e: ApiError) -> Error {
    let e = Error::from_setup(e);
    match e {
        Error::Network(m) => Error::Network(format!("{what}: {m}")),
        Error::Site(m) => Error::Site(format!("{what}: {m}")),
        Error::Auth(m) => Error::Auth(m),
        Error::Unlisted(m) => Error::Unlisted(format!("{what}: {m}")),
        other => Error::Api(format!("{what}: {other}")),
    }
}

impl Reader<'_> {
    pub fn concurrency(&self) -> usize {
        self.settings.concurrency.clamp(1, 16)
    }

    /// The organizations to export: those `--ids` names, or every one the JSM listing has.
    pub async fn organization_ids(&self) -> Result<Vec<String>, Error> {
        match self.ids {
            Some(text) => {
                self.named_organizations(&fetch::parse_ids(text, true))
                    .await
            }
            None => Ok(fetch::list_organizations(self.client)
                .await
                .map_err(|e| failed("the JSM organization listing (--site)", e))?
                .into_iter()
                .map(|o| o.id)
                .collect()),
        }
    }

    pub fn unknown(&self, ids: impl IntoIterator<Item = String>) {
        let mut f = self.found.lock().expect("not poisoned");
        for id in ids {
            if !f.unknown.contains(&id) {
                f.unknown.push(id);
            }
        }
    }

    async fn named_organizations(&self, w: &Wanted) -> Result<Vec<String>, Error> {
        let mut ids = w.ids.clone();
        if !w.names.is_empty() {
            let found = crate::site::refs::fetch_ids(self.client, &w.names)
                .await
                .map_err(|e| failed("organizations by name", e))?;
            self.unknown(
                w.names
                    .iter()
                    .filter(|n| !found.contains_key(&crate::row::match_key(n)))
                    .cloned(),
            );
            ids.extend(found.into_values());
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The customers to export: those `--ids` names (emails through `--service-desk`), or the
    /// service project's customers, or every organization's members.
    pub async fn customer_ids(&self) -> Result<Vec<String>, Error> {
        match self.ids {
            Some(text) => self.named_customers(&fetch::parse_ids(text, false)).await,
            None => Ok(self.all_customers().await?.into_keys().collect()),
        }
    }

    /// `--where`: the customers the site's search by detail field finds, each field checked
    /// against the definitions first so a misspelt one is named with the ones there are.
    pub async fn searched_customers(
        &self,
        defs: &[DetailFieldWithConfiguration],
    ) -> Result<Vec<String>, Error> {
        let query = fetch::on_site(self.query, defs).map_err(Error::Usage)?;
        let hits = fetch::search_customers(self.client, &query)
            .await
            .map_err(|e| failed("the customer search by detail field", e))?;
        let shown: Vec<String> = query
            .iter()
            .map(|q| format!("{}={}", q.name, q.value))
            .collect();
        self.found
            .lock()
            .expect("not poisoned")
            .sources
            .push(fetch::SourceCount {
                source: format!("search by detail field: {}", shown.join(" and ")),
                customers: hits.len(),
            });
        Ok(hits.into_iter().map(|h| h.id).collect())
    }

    /// Every customer the JSM listings give, kept in `spool` (each id once), noting how many
    /// each listing gave (once per export). A resumed export that listed them all before
    /// takes what its listing found from the spool instead.
    pub async fn customers_into(&self, spool: &crate::export::spool::Spool) -> Result<(), Error> {
        let spooled = |e: crate::export::spool::SpoolError| Error::Usage(e.to_string());
        let kind = crate::export::Kind::Customers;
        if self.listed_before(spool)? {
            return Ok(());
        }
        spool.relist().map_err(spooled)?;
        let listed = self.list_customers(spool).await?;
        spool
            .set_listing(
                kind,
                &serde_json::to_string(&(&listed.sources, &listed.skipped))
                    .expect("counts serialize"),
            )
            .map_err(spooled)?;
        let mut f = self.found.lock().expect("not poisoned");
        if f.sources.is_empty() {
            f.sources = listed.sources;
            f.skipped = listed.skipped;
        }
        Ok(())
    }

    /// Where customers were found, as an earlier attempt of this export kept it in `spool`
    /// (a resumed export lists nothing again); false when it listed none.
    pub fn listed_before(&self, spool: &crate::export::spool::Spool) -> Result<bool, Error> {
        let listing = spool
            .listing(crate::export::Kind::Customers)
            .map_err(|e| Error::Usage(e.to_string()))?;
        let Some(text) = listing else {
            return Ok(false);
        };
        let (sources, skipped): (Vec<fetch::SourceCount>, Vec<String>) =
            serde_json::from_str(&text).unwrap_or_default();
        let mut f = self.found.lock().expect("not poisoned");
        if f.sources.is_empty() {
            f.sources = sources;
            f.skipped = skipped;
        }
        Ok(true)
    }

    /// Everyone who may hold entitlements, kept in `spool` with the names a file shows them
    /// by: every organization of the JSM listing (`Kind::Organizations`), every customer the
    /// listings give (`Kind::Customers`). Once listed, a resumed export does not list again.
    pub async fn holders_into(&self, spool: &crate::export::spool::Spool) -> Result<(), Error> {
        self.organizations_into(spool).await?;
        self.customers_into(spool).await
    }

    /// Every organization of the JSM listing, kept in `spool` page by page with its name
    /// (`Kind::Organizations`); once listed, a resumed export does not list again.
    pub async fn organizations_into(
        &self,
        spool: &crate::export::spool::Spool,
    ) -> Result<(), Error> {
        let spooled = |e: crate::export::spool::SpoolError| Error::Usage(e.to_string());
        let orgs = crate::export::Kind::Organizations;
        if spool.listing(orgs).map_err(spooled)?.is_some() {
            return Ok(());
        }
        spool.relist().map_err(spooled)?;
        let mut failed_write = None;
        crate::site::refs::jsm_each(
            self.client,
            crate::site::api::paths::jsm::ORGANIZATIONS,
            |page: Vec<crate::site::api::model::JsmOrganization>| {
                let named: Vec<(&str, &str)> = page
                    .iter()
                    .map(|o| (o.id.as_str(), o.name.as_str()))
                    .collect();
                match spool.listed_named(&["organizations"], orgs, &named) {
                    Ok(n) => n[0],
                    Err(e) => {
                        failed_write.get_or_insert(e);
                        0
                    }
                }
            },
        )
        .await
        .map_err(|e| failed("the JSM organization listing (--site)", e))?;
        if let Some(e) = failed_write {
            return Err(spooled(e));
        }
        spool.set_listing(orgs, "{}").map_err(spooled)
    }

    /// Lists customers into `kept` (see `fetch::list_customers`).
    async fn list_customers(&self, kept: &impl fetch::Keep) -> Result<fetch::Listed, Error> {
        fetch::list_customers(
            self.client,
            kept,
            self.settings.service_desk.as_deref(),
            self.concurrency(),
            self.settings.allow_partial,
        )
        .await
        .map_err(|f| match f {
            fetch::ListFailed::Unlisted(u) => unlisted(u, self.settings.service_desk.is_some()),
            fetch::ListFailed::Spool(m) => Error::Usage(m),
        })
    }

    /// Every customer the JSM listings give (account id → email), in memory, noting how many
    /// each listing gave (once per export).
    async fn all_customers(&self) -> Result<BTreeMap<String, String>, Error> {
        let kept = fetch::Remembered::default();
        let listed = self.list_customers(&kept).await?;
        let mut f = self.found.lock().expect("not poisoned");
        if f.sources.is_empty() {
            f.sources = listed.sources;
            f.skipped = listed.skipped;
        }
        Ok(kept.into_customers())
    }

    async fn named_customers(&self, w: &Wanted) -> Result<Vec<String>, Error> {
        let mut ids = w.ids.clone();
        if !w.emails.is_empty() {
            let Some(sd) = &self.settings.service_desk else {
                return Err(Error::Usage(
                    "--ids names customers by email: add --service-desk ID so csmport can find them (CSM has no lookup by email)".into(),
                ));
            };
            let (found, missing) = fetch::ids_of_emails(self.client, sd, &w.emails)
                .await
                .map_err(|e| failed("customers by email", e))?;
            self.unknown(missing);
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Who may hold entitlements, and how the file names them (customers by email,
    /// organizations by name).
    pub async fn holders(&self) -> Result<(Vec<Entity>, HashMap<(bool, String), String>), Error> {
        let mut entities = Vec::new();
        let mut names = HashMap::new();
        let (org_ids, customer_ids) = match self.ids {
            Some(text) => {
                let (orgs, customers) = split_holders(text);
                (
                    self.named_organizations(&orgs).await?,
                    self.named_customers(&customers).await?,
                )
            }
            None => {
                let orgs = fetch::list_organizations(self.client)
                    .await
                    .map_err(|e| failed("the JSM organization listing (--site)", e))?;
                let customers = self.all_customers().await?;
                for o in &orgs {
                    names.insert((false, o.id.clone()), o.name.clone());
                }
                for (id, email) in &customers {
                    names.insert((true, id.clone()), email.clone());
                }
                (
                    orgs.into_iter().map(|o| o.id).collect(),
                    customers.into_keys().collect(),
                )
            }
        };
        // Names of holders given by id: read once, for the file's customer/organization columns.
        let unnamed_orgs: Vec<String> = org_ids
            .iter()
            .filter(|id| !names.contains_key(&(false, (*id).clone())))
            .cloned()
            .collect();
        if !unnamed_orgs.is_empty() {
            for p in fetch::organization_profiles(self.client, &unnamed_orgs, self.concurrency())
                .await
                .map_err(|e| failed("organization profiles", e))?
            {
                names.insert((false, p.id), p.name);
            }
        }
        // Holders `--ids` names that the site does not have hold nothing to export.
        let (org_ids, gone): (Vec<String>, Vec<String>) = org_ids
            .into_iter()
            .partition(|id| names.contains_key(&(false, id.clone())));
        self.unknown(gone);
        let unnamed_customers: Vec<String> = customer_ids
            .iter()
            .filter(|id| !names.contains_key(&(true, (*id).clone())))
            .cloned()
            .collect();
        if !unnamed_customers.is_empty() {
            for p in fetch::customer_profiles(self.client, &unnamed_customers, self.concurrency())
                .await
                .map_err(|e| failed("customer profiles", e))?
            {
                names.insert((true, p.id.clone()), p.email.unwrap_or(p.id));
            }
        }
        let (customer_ids, gone): (Vec<String>, Vec<String>) = customer_ids
            .into_iter()
            .partition(|id| names.contains_key(&(true, id.clone())));
        self.unknown(gone);
        entities.extend(org_ids.into_iter().map(|id| Entity {
            customer: false,
            id,
        }));
        entities.extend(
            customer_ids
                .into_iter()
                .map(|id| Entity { customer: true, id }),
        );
        self.notify.note(&format!(
            "entitlements: reading those of {} holders",
            entities.len()
        ));
        Ok((entities, names))
    }
}

/// `--ids` for entitlements names both kinds of holder: emails and `qm:…`-style ids (with a
/// `:`) are customers; digits and other text are organizations (ids, names).
fn split_holders(text: &str) -> (Wanted, Wanted) {
    let all = fetch::parse_ids(text, false);
    let mut orgs = Wanted::default();
    let mut customers = Wanted {
        emails: all.emails,
        ..Wanted::default()
    };
    for v in all.ids {
        if v.contains(':') {
            customers.ids.push(v);
        } else if v.bytes().all(|b| b.is_ascii_digit()) {
            orgs.ids.push(v);
        } else {
            orgs.names.push(v);
        }
    }
    (orgs, customers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_in_an_ids_file_are_told_apart() {
        let (o, c) = split_holders("ann@x.com\nqm:1\n10001\nAcme Pty Ltd\n");
        assert_eq!(
            (o.ids, o.names),
            (vec!["10001".into()], vec!["Acme Pty Ltd".into()])
        );
        assert_eq!(
            (c.ids, c.emails),
            (vec!["qm:1".into()], vec!["ann@x.com".into()])
        );
    }
}
