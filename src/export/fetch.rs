//! Export stage, I/O: finds what to export and reads it. CSM has no list-all call (CONTRACT
//! §11), so organizations are discovered through the JSM listing on `--site`, customers through
//! a service project's customers (`--service-desk`), or else every service project's customers
//! together with every organization's members, or both come from `--ids FILE`; then they are hydrated through the CSM fetch endpoints (profiles 25 a
//! call) a few calls at a time. Every call goes through `client` (paced, retried). Neighbours:
//! `export` (tables), `cmd::export` (orchestration).

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::site::api::model::{
    DetailFieldQuery, DetailFieldWithConfiguration, DetailFieldsWithConfiguration, Entitlement,
    JsmOrganization, JsmServiceDesk, JsmUser,
};
use crate::site::api::paths;
use crate::site::client::{ApiError, Client};
use crate::site::refs::{Entity, jsm_all};
pub use crate::site::refs::{customer_profiles, holds, organization_profiles, search_customers};

/// Detail-field definitions of `customer`, `organization` or `entitlement`.
pub async fn definitions(
    client: &Client,
    entity: &str,
) -> Result<Vec<DetailFieldWithConfiguration>, ApiError> {
    let path = match entity {
        "customer" => paths::CUSTOMER_DETAILS,
        "organization" => paths::ORGANIZATION_DETAILS,
        _ => paths::ENTITLEMENT_DETAILS,
    };
    let defs: DetailFieldsWithConfiguration = client.get_list(path).await?;
    let mut list = defs.results;
    // The site's own order (position), which a person set up on purpose.
    list.sort_by_key(|d| {
        d.configuration
            .as_ref()
            .map(|c| c.position)
            .unwrap_or(i64::MAX)
    });
    Ok(list)
}

/// Every organization of the JSM listing (id, name).
pub async fn list_organizations(client: &Client) -> Result<Vec<JsmOrganization>, ApiError> {
    jsm_all(client, paths::jsm::ORGANIZATIONS).await
}

/// Every service project the credentials can see.
pub async fn list_service_desks(client: &Client) -> Result<Vec<JsmServiceDesk>, ApiError> {
    jsm_all(client, paths::jsm::SERVICE_DESKS).await
}

/// A place customers are listed from, and how many it gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceCount {
    pub source: String,
    pub customers: usize,
}

/// A listing that could not be read: what it is, and why.
#[derive(Debug)]
pub struct Unlisted {
    pub source: String,
    pub error: ApiError,
}

/// Where customers were found. With a service project: its customers. Without: the customers
/// of every service project the credentials see, and the members of every organization (a
/// customer in no organization is only in the first; one in no service project only in the
/// second). A listing that is refused (403) or not there (404) fails the whole, unless
/// `allow_partial`: then it is in `skipped`, and the rest is listed.
#[derive(Debug, Default)]
pub struct Listed {
    pub sources: Vec<SourceCount>,
    pub skipped: Vec<String>,
}

impl Listed {
    /// A listing's error: kept as skipped when it may be, else the error.
    fn skip(
        &mut self,
        source: String,
        error: ApiError,
        allow_partial: bool,
    ) -> Result<(), Unlisted> {
        let refused = matches!(error.status(), Some(403 | 404));
        if allow_partial && refused {
            self.skipped.push(format!("{source}: {error}"));
            Ok(())
        } else {
            Err(Unlisted { source, error })
        }
    }
}

/// Why `list_customers` stopped.
#[derive(Debug)]
pub enum ListFailed {
    Unlisted(Unlisted),
    /// The export's working file could not be written.
    Spool(String),
}

impl From<Unlisted> for ListFailed {
    fn from(u: Unlisted) -> ListFailed {
        ListFailed::Unlisted(u)
    }
}

/// Where listed customers go: each customer once (account id, email), counting for each of
/// `listings` how many were new to it. The export's spool keeps them on disk; `Remembered`
/// keeps them in memory for the short lists of `--ids` and a delete's backup.
pub trait Keep: Sync {
    fn keep(&self, listings: &[&str], users: &[(&str, &str)]) -> Result<Vec<usize>, String>;
}

impl Keep for crate::export::spool::Spool {
    fn keep(&self, listings: &[&str], users: &[(&str, &str)]) -> Result<Vec<usize>, String> {
        self.listed_named(listings, crate::export::Kind::Customers, users)
            .map_err(|e| e.to_string())
    }
}

/// Listed customers in memory: account id → email.
#[derive(Debug, Default)]
pub struct Remembered {
    seen: std::sync::Mutex<Seen>,
}

type Seen = (
    std::collections::HashSet<(String, String)>,
    BTreeMap<String, String>,
);

impl Remembered {
    pub fn into_customers(self) -> BTreeMap<String, String> {
        self.seen.into_inner().expect("not poisoned").1
    }
}

impl Keep for Remembered {
    fn keep(&self, listings: &[&str], users: &[(&str, &str)]) -> Result<Vec<usize>, String> {
        let mut guard = self.seen.lock().expect("not poisoned");
        let (seen, customers) = &mut *guard;
        let mut new = vec![0; listings.len()];
        for (id, email) in users {
            for (n, listing) in new.iter_mut().zip(listings) {
                *n += usize::from(seen.insert((listing.to_string(), id.to_string())));
            }
            customers
                .entry(id.to_string())
                .or_insert_with(|| email.to_string());
        }
        Ok(new)
    }
}

/// Lists customers (see `Listed`) into `kept`, page by page, and says how many each listing
/// gave. A `kept` that cannot take a page ends that listing (nothing new) and then the whole.
pub async fn list_customers(
    client: &Client,
    kept: &impl Keep,
    service_desk: Option<&str>,
    concurrency: usize,
    allow_partial: bool,
) -> Result<Listed, ListFailed> {
    let failed = std::sync::Mutex::new(None::<String>);
    let keep = |listings: &[&str], users: Vec<JsmUser>| -> Vec<usize> {
        let ids: Vec<(&str, &str)> = users
            .iter()
            .map(|u| {
                (
                    u.account_id.as_str(),
                    u.email_address.as_deref().unwrap_or(""),
                )
            })
            .collect();
        match kept.keep(listings, &ids) {
            Ok(n) => n,
            Err(e) => {
                failed.lock().expect("not poisoned").get_or_insert(e);
                vec![0; listings.len()]
            }
        }
    };
    let check = || match failed.lock().expect("not poisoned").take() {
        Some(m) => Err(ListFailed::Spool(m)),
        None => Ok(()),
    };
    let desk = |id: String| {
        let keep = &keep;
        async move {
            let listing = format!("desk:{id}");
            let mut count = 0;
            let r = crate::site::refs::jsm_each(
                client,
                &paths::at(paths::jsm::SERVICE_DESK_CUSTOMERS, &[&id]),
                |users: Vec<JsmUser>| {
                    let n = keep(&[&listing], users)[0];
                    count += n;
                    n
                },
            )
            .await;
            (id, r.map(|_| count))
        }
    };
    let mut listed = Listed::default();
    if let Some(sd) = service_desk {
        let (_, count) = desk(sd.to_string()).await;
        check()?;
        let source = format!("service desk {sd}");
        match count {
            Ok(customers) => listed.sources.push(SourceCount { source, customers }),
            Err(error) => return Err(Unlisted { source, error }.into()),
        }
        return Ok(listed);
    }
    match list_service_desks(client).await {
        Ok(desks) => {
            let names: BTreeMap<String, String> = desks
                .iter()
                .map(|d| (d.id.clone(), d.project_name.clone()))
                .collect();
            let found: Vec<_> = stream::iter(desks.into_iter().map(|d| d.id))
                .map(desk)
                .buffered(concurrency.max(1))
                .collect()
                .await;
            check()?;
            for (id, count) in found {
                let source = match names.get(&id).filter(|n| !n.is_empty()) {
                    Some(name) => format!("service desk {id} ({name})"),
                    None => format!("service desk {id}"),
                };
                match count {
                    Ok(customers) => listed.sources.push(SourceCount { source, customers }),
                    Err(e) => listed.skip(source, e, allow_partial)?,
                }
            }
        }
        Err(e) => listed.skip("the service desk listing".into(), e, allow_partial)?,
    }
    match list_organizations(client).await {
        Ok(orgs) => {
            let count = orgs.len();
            let members = std::sync::atomic::AtomicUsize::new(0);
            let found: Vec<_> = stream::iter(orgs)
                .map(|o| {
                    let (keep, members) = (&keep, &members);
                    async move {
                        let listing = format!("organization:{}", o.id);
                        let r = crate::site::refs::jsm_each(
                            client,
                            &paths::at(paths::jsm::ORGANIZATION_USERS, &[&o.id]),
                            |users: Vec<JsmUser>| {
                                let n = keep(&[&listing, "members"], users);
                                members.fetch_add(n[1], std::sync::atomic::Ordering::Relaxed);
                                n[0]
                            },
                        )
                        .await;
                        (o, r)
                    }
                })
                .buffered(concurrency.max(1))
                .collect()
                .await;
            check()?;
            for (o, r) in found {
                if let Err(e) = r {
                    listed.skip(
                        format!("the members of organization {} ({})", o.id, o.name),
                        e,
                        allow_partial,
                    )?;
                }
            }
            let plural = if count == 1 { "" } else { "s" };
            listed.sources.push(SourceCount {
                source: format!("the members of {count} organization{plural}"),
                customers: members.into_inner(),
            });
        }
        Err(e) => listed.skip("the organization listing".into(), e, allow_partial)?,
    }
    Ok(listed)
}

/// The entitlements each entity holds, `concurrency` entities at a time.
pub async fn entitlements(
    client: &Client,
    entities: Vec<Entity>,
    concurrency: usize,
) -> Result<Vec<(Entity, Vec<Entitlement>)>, ApiError> {
    stream::iter(entities)
        .map(|e| async move {
            let list = crate::site::refs::entitlements_of(client, &e).await?;
            Ok::<_, ApiError>((e, list))
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// What `--ids FILE` names, sorted out per kind: customer ids (`qm:…` or any id without `@`)
/// and emails; organization ids (digits) and names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub ids: Vec<String>,
    pub emails: Vec<String>,
    pub names: Vec<String>,
}

/// Reads `--ids FILE`: one id, email or name a line (blank lines and `#` comments skipped), or
/// a CSV (when the first line has a comma) whose first column is used. A first line that is
/// just `id`, `email` or `name` is a header.
pub fn parse_ids(text: &str, organizations: bool) -> Wanted {
    let is_csv = text.lines().next().unwrap_or("").contains(',');
    let values: Vec<String> = if is_csv {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes())
            .records()
            .filter_map(|r| r.ok()?.get(0).map(str::to_string))
            .collect()
    } else {
        text.lines().map(str::to_string).collect()
    };
    let mut w = Wanted::default();
    for (n, v) in values.iter().enumerate() {
        let v = v.trim().trim_start_matches('\u{feff}').trim();
        if v.is_empty() || v.starts_with('#') {
            continue;
        }
        if n == 0 && ["id", "email", "name"].contains(&v.to_lowercase().as_str()) {
            continue;
        }
        let v = v.to_string();
        if organizations {
            if v.bytes().all(|b| b.is_ascii_digit()) {
                w.ids.push(v);
            } else {
                w.names.push(v);
            }
        } else if v.contains('@') {
            w.emails.push(v);
        } else {
            w.ids.push(v);
        }
    }
    w
}

/// `--where FIELD=VALUE` (repeatable, all must hold): the `FIELD` and `VALUE` of each, or what
/// is wrong with one.
pub fn parse_where(conditions: &[String]) -> Result<Vec<DetailFieldQuery>, String> {
    conditions
        .iter()
        .map(|c| match c.split_once('=') {
            Some((f, v)) if !f.trim().is_empty() && !v.trim().is_empty() => Ok(DetailFieldQuery {
                name: f.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!(
                "--where '{c}': give FIELD=VALUE, a customer detail field and the value it holds, e.g. --where 'Customer Tier=Gold'"
            )),
        })
        .collect()
}

/// The query with each field spelt as the site spells it, or a message naming the fields the
/// site has when one is not among them.
pub fn on_site(
    query: &[DetailFieldQuery],
    defs: &[crate::site::api::model::DetailFieldWithConfiguration],
) -> Result<Vec<DetailFieldQuery>, String> {
    query
        .iter()
        .map(
            |q| match defs.iter().find(|d| d.name.eq_ignore_ascii_case(&q.name)) {
                Some(d) => Ok(DetailFieldQuery {
                    name: d.name.clone(),
                    value: q.value.clone(),
                }),
                None => Err(format!(
                    "--where {}={}: the site has no customer detail field '{}'; it has: {}",
                    q.name,
                    q.value,
                    q.name,
                    defs.iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        )
        .collect()
}

/// Emails → account ids through a service project's customers.
pub async fn ids_of_emails(
    client: &Client,
    service_desk: &str,
    emails: &[String],
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let listed = crate::site::refs::service_desk_customers(client, service_desk).await?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for e in emails {
        match listed.get(e) {
            Some(id) => found.push(id.clone()),
            None => missing.push(e.clone()),
        }
    }
    Ok((found, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_conditions_are_field_and_value() {
        let q = parse_where(&["Customer Tier=Gold".into(), " Region = EU=West ".into()]).unwrap();
        assert_eq!(
            (q[0].name.as_str(), q[0].value.as_str()),
            ("Customer Tier", "Gold")
        );
        assert_eq!(
            (q[1].name.as_str(), q[1].value.as_str()),
            ("Region", "EU=West")
        );
        for bad in ["Gold", "=Gold", "Tier=", " = "] {
            assert!(
                parse_where(&[bad.into()]).unwrap_err().contains(bad),
                "{bad}"
            );
        }
        let d = |n: &str, v: &[&str]| crate::site::api::model::DetailValue {
            name: n.into(),
            values: v.iter().map(|s| s.to_string()).collect(),
        };
        let details = [
            d("Customer Tier", &["gold"]),
            d("Region", &["EU=West", "US"]),
        ];
        assert!(holds(&details, &q));
        assert!(!holds(&details[..1], &q));
        assert!(!holds(&[d("Customer Tier", &["Silver"])], &q[..1]));
    }

    #[test]
    fn ids_files_are_sorted_out_per_kind() {
        let text = "email,displayName\nqm:1,Q\n\n# a comment\nann@x.com,Ann\n\"bob@x.com\",Bob\n";
        let w = parse_ids(text, false);
        assert_eq!(w.ids, ["qm:1"]);
        assert_eq!(w.emails, ["ann@x.com", "bob@x.com"]);
        let w = parse_ids("name\n10001\nAcme, Inc.\n", true);
        assert_eq!(
            (w.ids, w.names),
            (vec!["10001".to_string()], vec!["Acme, Inc.".to_string()])
        );
    }
}
