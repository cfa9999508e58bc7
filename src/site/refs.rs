//! Lookups: turns the names rows use for customers and organizations (emails, names, ids) into
//! the ids the API needs. Organizations through organization/fetch (50 a call), customers by
//! id through profile fetch (25 a call), customers by email through the JSM customers of a
//! service project (CSM has no lookup by email). Also the shared reads: paged JSM listings,
//! profile reads 25 ids a call, the product list and an entity's entitlements. Used by the
//! kinds (deciding and reading back) and `export`; `resolve` does the same for customers'
//! organizations.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::row::match_key;
use crate::site::api::lists;
use crate::site::api::model::{
    CustomerProfile, CustomerProfileFetchRequest, CustomerProfileFetchResponse, DetailFieldQuery,
    DetailValue, Entitlement, EntitlementPage, JsmPage, JsmUser, OrganizationFetchRequest,
    OrganizationFetchResponse, OrganizationProfile, OrganizationProfileFetchRequest,
    OrganizationProfileFetchResponse, PaginatedProducts, Product, SearchByDetailFieldRequest,
    SearchByDetailFieldResponse, SearchHit,
};
use crate::site::api::{
    self, ENTITLEMENT_PAGE_MAX, MAX_ORGANIZATION_FETCH, MAX_PROFILE_FETCH, PRODUCT_PAGE_MAX, paths,
};
use crate::site::client::{ApiError, Client};

/// A customer or organization as a row names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Holder {
    CustomerId(String),
    CustomerEmail(String),
    OrganizationId(String),
    OrganizationName(String),
    /// A value of the organization detail field `--organizations-by` names (a CRM's id).
    OrganizationExternal(String),
    /// A value of the customer detail field `--customers-by` names (a CRM's id).
    CustomerExternal(String),
}

/// How rows name holders besides ids, names and emails: organizations by a CRM id kept in a
/// detail field (the map read once per run), customers by one kept in a customer detail field
/// (searched for each value, C7: CSM lists no customers).
#[derive(Debug, Default, Clone, Copy)]
pub struct By<'a> {
    pub organizations: Option<&'a crate::site::external::ExternalIds>,
    pub customers: Option<&'a str>,
}

impl Holder {
    /// Organization ids are numeric (CONTRACT §4); customers are ids unless they look like an
    /// email address.
    pub fn parse(customer: &str, organization: &str) -> Result<Holder, String> {
        let (c, o) = (customer.trim(), organization.trim());
        match (c.is_empty(), o.is_empty()) {
            (false, false) => {
                Err("give a customer or an organization, not both (one entitlement per row)".into())
            }
            (true, true) => {
                Err("no customer and no organization: who holds the entitlement?".into())
            }
            (false, true) if c.contains('@') => Ok(Holder::CustomerEmail(c.to_lowercase())),
            (false, true) => Ok(Holder::CustomerId(c.to_string())),
            (true, false) if o.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Holder::OrganizationId(o.to_string()))
            }
            (true, false) => Ok(Holder::OrganizationName(o.to_string())),
        }
    }

    /// `parse`, with organizations (`--organizations-by`) or customers (`--customers-by`)
    /// named by a CRM id: as given, numbers too (a Zendesk id is a number).
    pub fn parse_by(customer: &str, organization: &str, by: By<'_>) -> Result<Holder, String> {
        match Holder::parse(customer, organization)? {
            Holder::OrganizationId(v) | Holder::OrganizationName(v)
                if by.organizations.is_some() =>
            {
                Ok(Holder::OrganizationExternal(v))
            }
            Holder::CustomerId(_) | Holder::CustomerEmail(_) if by.customers.is_some() => {
                Ok(Holder::CustomerExternal(customer.trim().to_string()))
            }
            h => Ok(h),
        }
    }

    /// Whether a row names it by a CRM id (a miss fails the row at `resolve`).
    pub fn is_external(&self) -> bool {
        matches!(
            self,
            Holder::OrganizationExternal(_) | Holder::CustomerExternal(_)
        )
    }
}

impl Holder {
    /// Two rows name the same holder when these are equal (names and emails ignore case).
    pub fn key(&self) -> String {
        match self {
            Holder::CustomerId(i) => format!("c:{i}"),
            Holder::CustomerEmail(e) => format!("e:{}", match_key(e)),
            Holder::OrganizationId(i) => format!("o:{i}"),
            Holder::OrganizationName(n) => format!("n:{}", match_key(n)),
            Holder::OrganizationExternal(v) => format!("x:{v}"),
            Holder::CustomerExternal(v) => format!("cx:{v}"),
        }
    }
}

/// The API's entity for a resolved holder: (entityType, id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Entity {
    pub customer: bool,
    pub id: String,
}

impl Entity {
    pub fn kind(&self) -> &'static str {
        self.entity().entity_type()
    }

    pub fn entity(&self) -> api::Entity {
        if self.customer {
            api::Entity::Customer
        } else {
            api::Entity::Organization
        }
    }

    /// `POST {customer,organization}/{id}/entitlement` (C10, O10).
    pub fn create_path(&self) -> String {
        let template = if self.customer {
            paths::CUSTOMER_ENTITLEMENTS
        } else {
            paths::ORGANIZATION_ENTITLEMENTS
        };
        paths::at(template, &[&self.id])
    }
}

/// What looking a holder up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(Entity),
    /// The site does not have it (or it cannot be looked up at all): the row fails.
    NotFound(String),
    /// The lookup failed: the row cannot be decided now.
    Failed(String),
}

/// Holders → API entities. Organizations by name or id (organization/fetch, 50 a call),
/// customers by id (profile fetch, 25 a call) or by email (the JSM customers of the service
/// project given, since CSM cannot look customers up by email).
pub async fn resolve_holders<'a>(
    client: &Client,
    service_desk: Option<&str>,
    holders: impl Iterator<Item = &'a Holder>,
    by: By<'_>,
) -> HashMap<Holder, Lookup> {
    let mut out = HashMap::new();
    let mut org_names = Vec::new();
    let mut org_ids = Vec::new();
    let mut customer_ids = Vec::new();
    let mut emails = Vec::new();
    let mut customer_values = Vec::new();
    for h in holders {
        if out.contains_key(h) {
            continue;
        }
        out.insert(h.clone(), Lookup::Failed(String::new()));
        match h {
            Holder::OrganizationName(n) => org_names.push(n.clone()),
            Holder::OrganizationId(i) => org_ids.push(i.clone()),
            Holder::CustomerId(i) => customer_ids.push(i.clone()),
            Holder::CustomerEmail(e) => emails.push(e.clone()),
            Holder::CustomerExternal(v) => customer_values.push(v.clone()),
            Holder::OrganizationExternal(v) => {
                use crate::site::external::Match;
                let r = match by.organizations {
                    None => Lookup::NotFound(format!(
                        "organization '{v}' is named by a CRM id, but no --organizations-by field was read"
                    )),
                    Some(x) => match x.get(v) {
                        Match::One(id) => Lookup::Found(Entity {
                            customer: false,
                            id: id.to_string(),
                        }),
                        _ => Lookup::NotFound(x.problem(v).unwrap_or_default()),
                    },
                };
                out.insert(h.clone(), r);
            }
        }
    }
    for (names, ids) in org_names
        .chunks(MAX_ORGANIZATION_FETCH)
        .map(|c| (c.to_vec(), vec![]))
        .chain(
            org_ids
                .chunks(MAX_ORGANIZATION_FETCH)
                .map(|c| (vec![], c.to_vec())),
        )
    {
        let req = OrganizationFetchRequest {
            organization_ids: ids.clone(),
            organization_names: names.clone(),
        };
        let found = client
            .post_list::<_, OrganizationFetchResponse>(paths::ORGANIZATION_FETCH, &req)
            .await;
        for n in &names {
            let r = match &found {
                Ok(f) => f
                    .results
                    .iter()
                    .find(|o| match_key(&o.name) == match_key(n))
                    .map(|o| {
                        Lookup::Found(Entity {
                            customer: false,
                            id: o.id.clone(),
                        })
                    })
                    .unwrap_or_else(|| {
                        Lookup::NotFound(format!(
                            "no organization '{n}' on the site (import organizations first)"
                        ))
                    }),
                Err(e) => Lookup::Failed(format!("organization '{n}' could not be looked up: {e}")),
            };
            out.insert(Holder::OrganizationName(n.clone()), r);
        }
        for i in &ids {
            let r = match &found {
                Ok(f) if f.results.iter().any(|o| &o.id == i) => Lookup::Found(Entity {
                    customer: false,
                    id: i.clone(),
                }),
                Ok(_) => Lookup::NotFound(format!("no organization with id {i} on the site")),
                Err(e) => Lookup::Failed(format!("organization {i} could not be looked up: {e}")),
            };
            out.insert(Holder::OrganizationId(i.clone()), r);
        }
    }
    for group in customer_ids.chunks(MAX_PROFILE_FETCH) {
        let req = CustomerProfileFetchRequest {
            customer_ids: group.to_vec(),
        };
        let found = client
            .post_list::<_, CustomerProfileFetchResponse>(paths::CUSTOMER_PROFILE_FETCH, &req)
            .await;
        for i in group {
            let r = match &found {
                Ok(f) if f.results.iter().any(|p| &p.id == i) => Lookup::Found(Entity {
                    customer: true,
                    id: i.clone(),
                }),
                Ok(_) => Lookup::NotFound(format!("no customer with id '{i}' on the site")),
                Err(e) => Lookup::Failed(format!("customer '{i}' could not be looked up: {e}")),
            };
            out.insert(Holder::CustomerId(i.clone()), r);
        }
    }
    for v in customer_values {
        let r = match by.customers {
            None => Lookup::NotFound(format!(
                "customer '{v}' is named by a CRM id, but no --customers-by field was given"
            )),
            Some(field) => customer_by(client, field, &v).await,
        };
        out.insert(Holder::CustomerExternal(v), r);
    }
    if !emails.is_empty() {
        let by_email = match service_desk {
            None => Err(Lookup::NotFound(
                "CSM cannot look a customer up by email: give the customer's id, or pass --service-desk ID (a service project the customers belong to) so csmport can find them through JSM".to_string(),
            )),
            Some(sd) => service_desk_customers(client, sd).await.map_err(|e| {
                Lookup::Failed(format!(
                    "the customers of service project {sd} could not be listed: {e}"
                ))
            }),
        };
        for e in emails {
            let r = match &by_email {
                Ok(map) => map
                    .get(&e)
                    .map(|id| {
                        Lookup::Found(Entity {
                            customer: true,
                            id: id.clone(),
                        })
                    })
                    .unwrap_or_else(|| Lookup::NotFound(map.not_listed(&e))),
                Err(why) => why.clone(),
            };
            out.insert(Holder::CustomerEmail(e), r);
        }
    }
    out
}

/// The customers whose detail field `field` holds `value` (exactly, spaces around it aside):
/// searched (C7), each hit's profile read to check it, since the search's matching rules are
/// not documented.
pub async fn customers_holding(
    client: &Client,
    field: &str,
    value: &str,
) -> Result<Vec<CustomerProfile>, ApiError> {
    let query = [DetailFieldQuery {
        name: field.to_string(),
        value: value.to_string(),
    }];
    let ids: Vec<String> = search_customers(client, &query)
        .await?
        .into_iter()
        .map(|h| h.id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(customer_profiles(client, &ids, 1)
        .await?
        .into_iter()
        .filter(|p| {
            p.details.iter().any(|d| {
                d.name.trim().eq_ignore_ascii_case(field.trim())
                    && d.values.iter().any(|v| v.trim() == value.trim())
            })
        })
        .collect())
}

/// The one customer whose detail field `field` holds `value`, as a holder lookup.
async fn customer_by(client: &Client, field: &str, value: &str) -> Lookup {
    let holding: Vec<String> = match customers_holding(client, field, value).await {
        Ok(p) => p.into_iter().map(|p| p.id).collect(),
        Err(e) => {
            return Lookup::Failed(format!(
                "customers with {field} '{value}' could not be looked up: {e}"
            ));
        }
    };
    match holding.as_slice() {
        [one] => Lookup::Found(Entity {
            customer: true,
            id: one.clone(),
        }),
        [] => Lookup::NotFound(format!(
            "no customer on the site has {field} '{value}' (import that customer first, with its {field})"
        )),
        many => Lookup::NotFound(format!(
            "customers {} all have {field} '{value}'; keep the value on one of them",
            many.join(", ")
        )),
    }
}

/// The customers of a JSM service project by email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// email (lower case) → customer id.
    pub by_email: HashMap<String, String>,
    /// Customers listed without an email (JSM hides it from callers not allowed to see it):
    /// when there are any, an email not in `by_email` proves nothing.
    pub hidden: usize,
}

impl Listing {
    pub fn get(&self, email: &str) -> Option<&String> {
        self.by_email.get(&email.to_lowercase())
    }

    /// Whether an email not in the listing means the customer is not in the project.
    pub fn complete(&self) -> bool {
        self.hidden == 0
    }

    /// Why an email that is not listed cannot be found.
    pub fn not_listed(&self, email: &str) -> String {
        if self.complete() {
            format!(
                "no customer '{email}' among the customers of the service project (import customers first)"
            )
        } else {
            format!(
                "customer '{email}' cannot be found by email: the service project lists {} customers without their email (the credentials may not be allowed to see emails); give the customer's id",
                self.hidden
            )
        }
    }
}

/// Every customer of a JSM service project (paged), by email.
pub async fn service_desk_customers(
    client: &Client,
    service_desk: &str,
) -> Result<Listing, ApiError> {
    let users: Vec<JsmUser> = jsm_all(
        client,
        &paths::at(paths::jsm::SERVICE_DESK_CUSTOMERS, &[service_desk]),
    )
    .await?;
    let mut listing = Listing::default();
    for u in users {
        match u.email_address.filter(|e| !e.trim().is_empty()) {
            Some(e) => {
                listing.by_email.insert(e.to_lowercase(), u.account_id);
            }
            None => listing.hidden += 1,
        }
    }
    Ok(listing)
}

/// The id of the customer of `service_desk` whose email is `email` (in any case), looked up
/// through the listing's query: none when it lists no such customer.
pub async fn service_desk_customer(
    client: &Client,
    service_desk: &str,
    email: &str,
) -> Result<Option<String>, ApiError> {
    let path = paths::query(
        &paths::at(paths::jsm::SERVICE_DESK_CUSTOMERS, &[service_desk]),
        &[(paths::jsm::CUSTOMER_QUERY, email)],
    );
    let users: Vec<JsmUser> = jsm_all(client, &path).await?;
    Ok(users
        .into_iter()
        .find(|u| {
            u.email_address
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
        })
        .map(|u| u.account_id))
}

/// Customer profiles of `ids`, 25 a call, `concurrency` calls at a time.
pub async fn customer_profiles(
    client: &Client,
    ids: &[String],
    concurrency: usize,
) -> Result<Vec<CustomerProfile>, ApiError> {
    fetch_in_groups(
        client,
        paths::CUSTOMER_PROFILE_FETCH,
        ids,
        concurrency,
        |customer_ids| CustomerProfileFetchRequest { customer_ids },
        |r: CustomerProfileFetchResponse| r.results,
    )
    .await
}

/// Organization profiles of `ids`, 25 a call, `concurrency` calls at a time.
pub async fn organization_profiles(
    client: &Client,
    ids: &[String],
    concurrency: usize,
) -> Result<Vec<OrganizationProfile>, ApiError> {
    fetch_in_groups(
        client,
        paths::ORGANIZATION_PROFILE_FETCH,
        ids,
        concurrency,
        |organization_ids| OrganizationProfileFetchRequest { organization_ids },
        |r: OrganizationProfileFetchResponse| r.results,
    )
    .await
}

/// POSTs `ids` to a fetch endpoint in groups of 25, `concurrency` at a time, in order.
async fn fetch_in_groups<B, R, T>(
    client: &Client,
    path: &str,
    ids: &[String],
    concurrency: usize,
    body: impl Fn(Vec<String>) -> B,
    results: impl Fn(R) -> Vec<T>,
) -> Result<Vec<T>, ApiError>
where
    B: serde::Serialize,
    R: serde::de::DeserializeOwned + crate::site::api::lists::Listing,
{
    let bodies: Vec<B> = ids
        .chunks(MAX_PROFILE_FETCH)
        .map(|g| body(g.to_vec()))
        .collect();
    let pages: Vec<R> = stream::iter(bodies)
        .map(|b| async move { client.post_list(path, &b).await })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(pages.into_iter().flat_map(results).collect())
}

/// Every product on the site (cursor-paged, 100 a page).
pub async fn list_products(client: &Client) -> Result<Vec<Product>, ApiError> {
    let mut all: Vec<Product> = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    for pages in 1.. {
        let path = paths::products_page(PRODUCT_PAGE_MAX, cursor.as_deref());
        let page: PaginatedProducts = client.get_list(&path).await?;
        let got = page.results.len();
        let fresh: Vec<Product> = page
            .results
            .into_iter()
            .filter(|p| seen.insert(p.id.clone()))
            .collect();
        let new = fresh.len();
        all.extend(fresh);
        let next = page.next_page_cursor.filter(|c| !c.is_empty());
        let more = Client::next_page(
            "GET",
            &path,
            lists::Page {
                pages,
                // The cursor, not the size, says whether there is more.
                asked: 0,
                got,
                new,
                last: Some(next.is_none() || next == cursor),
            },
        )?;
        if !more {
            break;
        }
        cursor = next;
    }
    Ok(all)
}

/// Every entitlement the entity holds itself (E8, 25 a page).
pub async fn entitlements_of(client: &Client, e: &Entity) -> Result<Vec<Entitlement>, ApiError> {
    let mut all: Vec<Entitlement> = Vec::new();
    let mut seen = HashSet::new();
    let mut start = 0u64;
    for pages in 1.. {
        let path = paths::entitlements_page(e.kind(), &e.id, start, ENTITLEMENT_PAGE_MAX);
        let page: EntitlementPage = client.get_list(&path).await?;
        let got = page.results.len();
        let new: Vec<Entitlement> = page
            .results
            .into_iter()
            .filter(|x| seen.insert(x.id.clone()))
            .collect();
        let page_size = if page.limit > 0 {
            page.limit as usize
        } else {
            ENTITLEMENT_PAGE_MAX
        };
        let info = lists::Page {
            pages,
            asked: page_size,
            got,
            new: new.len(),
            last: Some(page.is_last_page).filter(|l| *l),
        };
        all.extend(new);
        if !Client::next_page("GET", &path, info)? {
            break;
        }
        start += got as u64;
    }
    Ok(all)
}

/// The customers whose detail fields hold every value asked for (C7, page by page). The
/// search's matching rules are not documented, so each hit is checked again by the caller on
/// its profile (`holds`).
pub async fn search_customers(
    client: &Client,
    query: &[DetailFieldQuery],
) -> Result<Vec<SearchHit>, ApiError> {
    let body = SearchByDetailFieldRequest {
        detail_fields: query.to_vec(),
    };
    let max = api::SEARCH_PAGE_MAX as u64;
    let mut out: Vec<SearchHit> = Vec::new();
    let mut seen = HashSet::new();
    for page in 0u64.. {
        let path = format!("{}?page={page}&maxResults={max}", paths::CUSTOMER_SEARCH);
        let answer: SearchByDetailFieldResponse = client.post_list(&path, &body).await?;
        let got = answer.customers.len();
        let new = answer
            .customers
            .iter()
            .filter(|h| seen.insert(h.id.clone()))
            .count();
        out.extend(answer.customers);
        // A site that pages by its own size (maxResults in the answer) is followed to the end.
        let size = if answer.max_results > 0 {
            answer.max_results.min(max)
        } else {
            max
        };
        let info = lists::Page {
            pages: page as usize + 1,
            asked: size as usize,
            got,
            new,
            last: answer.is_last.filter(|l| *l),
        };
        if !Client::next_page("POST", &path, info)? {
            break;
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

/// Whether a customer's profile holds every value asked for: the field named (case ignored)
/// has the value among its values (case ignored, as the site compares names).
pub fn holds(details: &[DetailValue], query: &[DetailFieldQuery]) -> bool {
    query.iter().all(|q| {
        details.iter().any(|d| {
            d.name.eq_ignore_ascii_case(&q.name)
                && d.values
                    .iter()
                    .any(|v| v.trim().eq_ignore_ascii_case(q.value.trim()))
        })
    })
}

/// Looks organization names up, 50 per call; returns normalized name (`match_key`) → id for
/// those that exist.
pub async fn fetch_ids(
    client: &Client,
    names: &[String],
) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for group in names.chunks(MAX_ORGANIZATION_FETCH) {
        let req = OrganizationFetchRequest {
            organization_ids: vec![],
            organization_names: group.to_vec(),
        };
        let resp: OrganizationFetchResponse =
            client.post_list(paths::ORGANIZATION_FETCH, &req).await?;
        for o in resp.results {
            out.insert(match_key(&o.name), o.id);
        }
    }
    Ok(out)
}
/// JSM listing page size.
pub const JSM_PAGE: u64 = 50;

/// Every page of a JSM listing (`path` relative to `/rest/servicedeskapi/`, without
/// `start`/`limit`).
/// What a JSM listing page says of the next: its own size when it gives one, else `JSM_PAGE`.
pub fn jsm_page_info<T>(pages: usize, page: &JsmPage<T>, got: usize, new: usize) -> lists::Page {
    lists::Page {
        pages,
        asked: if page.limit > 0 {
            page.limit as usize
        } else {
            JSM_PAGE as usize
        },
        got,
        new,
        last: Some(page.is_last_page).filter(|l| *l),
    }
}

pub async fn jsm_all<T: serde::de::DeserializeOwned + lists::Keyed>(
    client: &Client,
    path: &str,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    jsm_each(client, path, |page: Vec<T>| {
        let new: Vec<T> = page
            .into_iter()
            .filter(|x| seen.insert(x.key().to_string()))
            .collect();
        let n = new.len();
        out.extend(new);
        n
    })
    .await?;
    Ok(out)
}

/// Every page of a JSM listing, each handed to `on_page` as it comes, which says how many of
/// its items it had not seen before (a page with nothing new ends a listing that ignores its
/// offset). What is kept of the pages is `on_page`'s business: an export keeps them on disk.
pub async fn jsm_each<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    mut on_page: impl FnMut(Vec<T>) -> usize,
) -> Result<(), ApiError> {
    let mut start = 0u64;
    for pages in 1.. {
        let page_path = paths::jsm_page(path, start, JSM_PAGE);
        let mut page: JsmPage<T> = client.jsm_get_list(&page_path).await?;
        let got = page.values.len();
        let new = on_page(std::mem::take(&mut page.values));
        let info = jsm_page_info(pages, &page, got, new);
        if !Client::next_page("GET", &page_path, info)? {
            break;
        }
        start += got as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_told_apart() {
        let cases = [
            ("a@x.io", "", Ok(Holder::CustomerEmail("a@x.io".into()))),
            ("qm:1:2", "", Ok(Holder::CustomerId("qm:1:2".into()))),
            ("", "101", Ok(Holder::OrganizationId("101".into()))),
            ("", "Acme", Ok(Holder::OrganizationName("Acme".into()))),
        ];
        for (c, o, want) in cases {
            assert_eq!(Holder::parse(c, o), want);
        }
        assert!(Holder::parse("a@x.io", "Acme").is_err());
        assert!(Holder::parse(" ", "").is_err());
    }
}
