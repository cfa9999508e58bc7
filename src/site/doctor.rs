//! `csmport doctor`: whether a site answers the way csmport expects, one check a line —
//! reachable, the right cloud id, credentials that authenticate and have the permissions the
//! commands need, CSM enabled, the JSM listings, the clock, the run folder — and a shape check
//! that calls every read endpoint csmport uses once and compares its answer with the documented
//! example csmport was built from, and with what csmport's wire types can read. Read-only: it
//! never writes to the site. Used by `cmd::doctor`; uses `client` and `api`.

use std::path::Path;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::api::model::{
    CustomerProfileFetchResponse, DetailFieldsWithConfiguration, EntitlementPage, JsmOrganization,
    JsmPage, JsmServiceDesk, JsmUser, OrganizationFetchResponse, OrganizationProfileFetchResponse,
    PaginatedProducts,
};
use super::api::{self, Entity, paths};
use super::client::{Auth, Client, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, with something worth knowing (members csmport does not know, say).
    Warning,
    Problem,
    /// Not checked: an earlier check failed, or an option it needs was not given.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check: name.to_string(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_string),
    }
}

/// What `doctor` is pointed at.
pub struct Doctor<'a> {
    pub client: &'a Client,
    pub target: &'a Target,
    pub service_desk: Option<&'a str>,
    pub run_folder: &'a Path,
}

/// A 401 that says the token lacks a scope (not that the token is wrong): which one, as a
/// problem with its fix. None for any other answer.
fn scope_problem(name: &str, method: &Method, url: &str, status: u16, body: &str) -> Option<Check> {
    use crate::site::api::scopes;
    if status != 401 || !scopes::is_refusal(body) {
        return None;
    }
    let scope = scopes::needed(method.as_str(), url);
    Some(Check {
        check: name.to_string(),
        status: Status::Problem,
        detail: format!("the credentials lack the scope {scope} (HTTP 401: scope does not match)"),
        fix: Some(format!(
            "add {scope} to the token's or the service account credential's scopes (README.md, \"Scopes\", lists what each command needs)"
        )),
    })
}

/// How the credentials were given, for the fix of a refusal.
fn credential_flags(auth: &Auth) -> &'static str {
    match auth {
        Auth::Bearer(_) => "--access-token / CSM_ACCESS_TOKEN (an OAuth 2.0 access token)",
        Auth::Basic { .. } => {
            "--email and --api-token / CSM_EMAIL and CSM_API_TOKEN (an API token from id.atlassian.com, with the email of its account)"
        }
        Auth::Renewing(_) => {
            "--client-id and the client secret (CSM_CLIENT_ID, --client-secret-file / CSM_CLIENT_SECRET), --access-token-command or --access-token-file"
        }
    }
}

impl Doctor<'_> {
    pub async fn run(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let base = self.target.base_url.trim_end_matches('/').to_string();
        // 1. The base URL answers at all.
        let reachable = match self
            .client
            .probe(Method::GET, &format!("{base}/"), None)
            .await
        {
            // Any answer shows the address is right; a gateway's root is usually not found.
            Ok((status, _, _)) if status < 500 => {
                out.push(check(
                    "base URL",
                    Status::Ok,
                    format!("{base} answers"),
                    None,
                ));
                true
            }
            Ok((status, _, _)) => {
                out.push(check(
                    "base URL",
                    Status::Warning,
                    format!("{base} answers, but with a server error (HTTP {status})"),
                    Some("the checks below say whether the API itself works"),
                ));
                true
            }
            Err(e) => {
                out.push(check(
                    "base URL",
                    Status::Problem,
                    format!("{base} cannot be reached: {e}"),
                    Some("check --base-url / CSM_BASE_URL, the network and any proxy"),
                ));
                false
            }
        };
        // 2. The cloud id, against the site's own when --site is given.
        out.push(self.cloud_id().await);
        if !reachable {
            out.push(check(
                "credentials",
                Status::Skipped,
                "the base URL cannot be reached",
                None,
            ));
            out.push(self.run_folder());
            return out;
        }
        // 3-5. Credentials, CSM enabled, permissions; the clock from the same answer.
        let details = self
            .client
            .probe(Method::GET, &self.client.url(paths::CUSTOMER_DETAILS), None)
            .await;
        let mut authenticated = false;
        match &details {
            Err(e) => out.push(check(
                "credentials",
                Status::Problem,
                format!("GET {}: {e}", paths::CUSTOMER_DETAILS),
                None,
            )),
            Ok((status, headers, body)) => {
                let url = self.client.url(paths::CUSTOMER_DETAILS);
                match *status {
                    401 if let Some(c) =
                        scope_problem("credentials", &Method::GET, &url, 401, body) =>
                    {
                        // Good credentials without every scope: the other checks say which.
                        authenticated = true;
                        out.push(c);
                    }
                    401 => out.push(check(
                        "credentials",
                        Status::Problem,
                        "the site refuses the credentials (HTTP 401)",
                        Some(credential_flags(&self.target.auth)),
                    )),
                    _ => {
                        authenticated = true;
                        out.push(check(
                            "credentials",
                            Status::Ok,
                            "the site accepts them",
                            None,
                        ));
                    }
                }
                if *status == 404 {
                    out.push(check(
                        "CSM enabled",
                        Status::Problem,
                        format!("GET {} answers 404", paths::CUSTOMER_DETAILS),
                        Some(&format!(
                            "check the cloud id (https://YOUR-SITE.atlassian.net/{}) and that Customer Service Management is enabled on the site",
                            paths::TENANT_INFO
                        )),
                    ));
                } else if authenticated && *status != 401 {
                    out.push(check(
                        "CSM enabled",
                        Status::Ok,
                        "the CSM API answers for this cloud id",
                        None,
                    ));
                }
                out.push(clock(headers));
            }
        }
        if authenticated {
            out.push(self.tasks().await);
            out.extend(self.permissions().await);
            out.extend(self.jsm().await);
            out.extend(self.shapes().await);
        }
        out.push(self.run_folder());
        out
    }

    async fn cloud_id(&self) -> Check {
        let Some(site) = &self.target.site else {
            return check(
                "cloud id",
                Status::Ok,
                format!(
                    "{} (give --site / CSM_SITE to check it against the site)",
                    self.target.cloud_id
                ),
                None,
            );
        };
        let url = format!("{}/{}", site.trim_end_matches('/'), paths::TENANT_INFO);
        match self.client.probe(Method::GET, &url, None).await {
            Ok((200, _, body)) => match serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["cloudId"].as_str().map(str::to_string))
            {
                Some(id) if id == self.target.cloud_id => {
                    check("cloud id", Status::Ok, format!("{id}, the site's"), None)
                }
                Some(id) => Check {
                    check: "cloud id".into(),
                    status: Status::Problem,
                    detail: format!("{site} is cloud {id}, not {}", self.target.cloud_id),
                    fix: Some(format!("set --cloud-id / CSM_CLOUD_ID to {id}")),
                },
                None => check(
                    "cloud id",
                    Status::Warning,
                    format!("{url} does not name a cloud id: {}", head(&body)),
                    None,
                ),
            },
            Ok((status, _, body)) => check(
                "cloud id",
                Status::Warning,
                format!("{url} answers HTTP {status}: {}", head(&body)),
                Some("check --site / CSM_SITE"),
            ),
            Err(e) => check(
                "cloud id",
                Status::Warning,
                format!("{url} cannot be reached: {e}"),
                Some("check --site / CSM_SITE"),
            ),
        }
    }

    /// What each command needs (CONTRACT §2.5, §10; DELTAS §2): a read each, and what a 403
    /// means.
    async fn permissions(&self) -> Vec<Check> {
        let reads: [(&str, String, &str); 3] = [
            (
                "import and export of detail fields, customers and organizations",
                self.client.url(paths::CUSTOMER_DETAILS),
                "Administer Jira (reading detail-field definitions, C1)",
            ),
            (
                "import and export of organization profiles",
                self.client.url(paths::ORGANIZATION_DETAILS),
                "Administer Jira (O1)",
            ),
            (
                "products and entitlements",
                self.client.url(&paths::products_page(1, None)),
                "Jira Service Management agent (P1)",
            ),
        ];
        let mut out = Vec::new();
        for (what, url, permission) in reads {
            let name = format!("permission: {what}");
            match self.client.probe(Method::GET, &url, None).await {
                Ok((s, _, body))
                    if let Some(c) = scope_problem(&name, &Method::GET, &url, s, &body) =>
                {
                    out.push(c)
                }
                Ok((403, _, _)) => out.push(Check {
                    check: name,
                    status: Status::Problem,
                    detail: format!("refused (HTTP 403): it needs {permission}"),
                    fix: Some(format!("give the account {permission}")),
                }),
                Ok((s, _, body)) if !(200..300).contains(&s) => out.push(check(
                    &name,
                    Status::Warning,
                    format!("HTTP {s}: {}", head(&body)),
                    None,
                )),
                Ok(_) => out.push(check(&name, Status::Ok, "allowed", None)),
                Err(e) => out.push(check(&name, Status::Warning, e, None)),
            }
        }
        out
    }

    /// The task API, read without writing: a task that does not exist answers 404 when the
    /// token has `read:task` and the experimental header is taken.
    async fn tasks(&self) -> Check {
        let name = "task API";
        let url = self
            .client
            .url(&paths::at(paths::TASK, &["csmport-doctor-no-such-task"]));
        match self.client.probe(Method::GET, &url, None).await {
            Ok((s, _, body)) if let Some(c) = scope_problem(name, &Method::GET, &url, s, &body) => {
                c
            }
            Ok((404, _, _)) => check(
                name,
                Status::Ok,
                "answers as it should (a made-up task id is not found)",
                None,
            ),
            Ok((412, _, _)) => check(
                name,
                Status::Problem,
                format!(
                    "HTTP 412: the site wants the {} header csmport sends; a proxy may drop it",
                    crate::site::api::EXPERIMENTAL_HEADER
                ),
                Some("let the X-ExperimentalApi header through"),
            ),
            Ok((403, _, _)) => check(
                name,
                Status::Problem,
                "refused (HTTP 403): following bulk tasks needs a CSM or JSM user",
                Some("give the account Jira Service Management access"),
            ),
            Ok((s, _, body)) => check(
                name,
                Status::Warning,
                format!("HTTP {s} where 404 was expected: {}", head(&body)),
                None,
            ),
            Err(e) => check(name, Status::Warning, e, None),
        }
    }

    async fn jsm(&self) -> Vec<Check> {
        let mut out = Vec::new();
        if self.target.site.is_none() && self.service_desk.is_none() {
            out.push(check(
                "JSM listings",
                Status::Skipped,
                "give --site or --service-desk to check the JSM listings export and lookups by email use",
                None,
            ));
            return out;
        }
        let orgs = self
            .client
            .jsm_url(&paths::jsm_page(paths::jsm::ORGANIZATIONS, 0, 1));
        out.push(self.listing("JSM organization listing", &orgs).await);
        let desks = self
            .client
            .jsm_url(&paths::jsm_page(paths::jsm::SERVICE_DESKS, 0, 1));
        out.push(
            self.listing("JSM service desk listing (export customers)", &desks)
                .await,
        );
        if let Some(sd) = self.service_desk {
            let url = self.client.jsm_url(&paths::jsm_page(
                &paths::at(paths::jsm::SERVICE_DESK_CUSTOMERS, &[sd]),
                0,
                1,
            ));
            out.push(
                self.listing(&format!("customers of service project {sd}"), &url)
                    .await,
            );
        }
        out
    }

    async fn listing(&self, name: &str, url: &str) -> Check {
        match self.client.probe(Method::GET, url, None).await {
            Ok((200, _, _)) => check(name, Status::Ok, "answers", None),
            Ok((404, _, _)) => check(
                name,
                Status::Problem,
                "not found (HTTP 404)",
                Some("check --site / CSM_SITE and --service-desk"),
            ),
            Ok((403, _, body)) => check(
                name,
                Status::Problem,
                format!("refused (HTTP 403): {}", head(&body)),
                Some(
                    "give the account Jira Service Management agent access to the service project (JSM lists its customers and organizations to agents), or use credentials that have it",
                ),
            ),
            Ok((s, _, body)) => check(
                name,
                Status::Problem,
                format!("HTTP {s}: {}", head(&body)),
                None,
            ),
            Err(e) => check(name, Status::Problem, e, Some("check --site / CSM_SITE")),
        }
    }

    /// Every read endpoint csmport uses, called once; its answer compared with the documented
    /// example and read with csmport's wire types.
    async fn shapes(&self) -> Vec<Check> {
        let mut out = Vec::new();
        let c = self.client;
        for e in Entity::ALL {
            let documented = match e {
                Entity::Customer => fixture::CUSTOMER_DETAILS,
                Entity::Organization => fixture::ORGANIZATION_DETAILS,
                Entity::Entitlement => fixture::ENTITLEMENT_DETAILS,
            };
            out.push(
                self.shape::<DetailFieldsWithConfiguration>(
                    &format!("GET {}", e.details()),
                    Method::GET,
                    &c.url(e.details()),
                    None,
                    Some(documented),
                )
                .await
                .0,
            );
        }
        out.push(
            self.shape::<PaginatedProducts>(
                &format!("GET {}", paths::PRODUCTS),
                Method::GET,
                &c.url(&paths::products_page(1, None)),
                None,
                Some(fixture::PRODUCTS),
            )
            .await
            .0,
        );
        // Ids to read profiles with come from the listings (read-only all the way).
        let (listed, orgs) = self
            .shape::<JsmPage<JsmOrganization>>(
                "GET JSM organization",
                Method::GET,
                &c.jsm_url(&paths::jsm_page(paths::jsm::ORGANIZATIONS, 0, 1)),
                None,
                None,
            )
            .await;
        out.push(listed);
        out.push(
            self.shape::<JsmPage<JsmServiceDesk>>(
                "GET JSM servicedesk",
                Method::GET,
                &c.jsm_url(&paths::jsm_page(paths::jsm::SERVICE_DESKS, 0, 1)),
                None,
                None,
            )
            .await
            .0,
        );
        if let Some(o) = orgs.and_then(|p| p.values.into_iter().next()) {
            let fetch = serde_json::json!({"organizationNames": [o.name]});
            out.push(
                self.shape::<OrganizationFetchResponse>(
                    &format!("POST {}", paths::ORGANIZATION_FETCH),
                    Method::POST,
                    &c.url(paths::ORGANIZATION_FETCH),
                    Some(&fetch),
                    Some(fixture::ORGANIZATION_FETCH),
                )
                .await
                .0,
            );
            let profiles = serde_json::json!({"organizationIds": [o.id]});
            let documented = format!("{{\"results\": [{}]}}", fixture::ORGANIZATION_PROFILE);
            out.push(
                self.shape::<OrganizationProfileFetchResponse>(
                    &format!("POST {}", paths::ORGANIZATION_PROFILE_FETCH),
                    Method::POST,
                    &c.url(paths::ORGANIZATION_PROFILE_FETCH),
                    Some(&profiles),
                    Some(&documented),
                )
                .await
                .0,
            );
            out.push(
                self.shape::<EntitlementPage>(
                    &format!("GET {}", paths::ENTITLEMENTS),
                    Method::GET,
                    &c.url(&paths::entitlements_page(
                        api::ENTITY_ORGANIZATION,
                        &o.id,
                        0,
                        1,
                    )),
                    None,
                    Some(fixture::ENTITLEMENTS),
                )
                .await
                .0,
            );
        } else {
            out.push(check(
                "organization reads",
                Status::Skipped,
                "the JSM listing gave no organization to read",
                None,
            ));
        }
        if let Some(sd) = self.service_desk {
            let (listed, users) = self
                .shape::<JsmPage<JsmUser>>(
                    &format!("GET JSM customers of service project {sd}"),
                    Method::GET,
                    &c.jsm_url(&paths::jsm_page(
                        &paths::at(paths::jsm::SERVICE_DESK_CUSTOMERS, &[sd]),
                        0,
                        1,
                    )),
                    None,
                    None,
                )
                .await;
            out.push(listed);
            // A listing without emails cannot find customers by email: every row that names
            // one would stay unmatched.
            if let Some(hidden) = users
                .as_ref()
                .filter(|p| p.values.iter().any(|u| u.email_address.is_none()))
            {
                out.push(check(
                    &format!("emails of the customers of service project {sd}"),
                    Status::Problem,
                    format!(
                        "the listing hides customers' emailAddress ({} of {} on its first page): customers named by email (entitlements, deletes, customer-details by email) cannot be found",
                        hidden.values.iter().filter(|u| u.email_address.is_none()).count(),
                        hidden.values.len()
                    ),
                    Some(
                        "let the account see customers' emails (Jira: Settings → System → User privacy, or a JSM agent with the Browse users permission), or name customers by their id",
                    ),
                ));
            }
            if let Some(u) = users.and_then(|p| p.values.into_iter().next()) {
                let fetch = serde_json::json!({"customerIds": [u.account_id]});
                out.push(
                    self.shape::<CustomerProfileFetchResponse>(
                        &format!("POST {}", paths::CUSTOMER_PROFILE_FETCH),
                        Method::POST,
                        &c.url(paths::CUSTOMER_PROFILE_FETCH),
                        Some(&fetch),
                        Some(fixture::CUSTOMER_PROFILE_FETCH),
                    )
                    .await
                    .0,
                );
            }
        }
        out
    }

    /// One read: a problem when csmport's types cannot read it; a warning listing members the
    /// documented example does not have, or has and the answer lacks or types otherwise.
    async fn shape<T: serde::de::DeserializeOwned + crate::site::api::lists::Listing>(
        &self,
        name: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
        documented: Option<&str>,
    ) -> (Check, Option<T>) {
        let name = format!("shape: {name}");
        let (status, text) = match self.client.probe(method.clone(), url, body).await {
            Ok((s, _, t)) => (s, t),
            Err(e) => return (check(&name, Status::Problem, e, None), None),
        };
        if let Some(c) = scope_problem(&name, &method, url, status, &text) {
            return (c, None);
        }
        if !(200..300).contains(&status) {
            let fix = (status == 403).then_some(
                "give the account what this read needs (the permission checks above name it; JSM listings need a JSM agent)",
            );
            return (
                check(
                    &name,
                    Status::Problem,
                    format!("HTTP {status}: {}", head(&text)),
                    fix,
                ),
                None,
            );
        }
        // A listing without its list is a problem, never an empty listing (invariant 10).
        let listed = serde_json::from_str::<Value>(&text).map(|mut v| {
            let found = crate::site::api::lists::find_list(&mut v, T::MEMBERS);
            (v, found)
        });
        if let Ok((_, Err(had))) = &listed {
            return (
                Check {
                    check: name,
                    status: Status::Problem,
                    detail: super::client::list_missing(T::MEMBERS, had),
                    fix: Some(
                        "csmport cannot read this listing: if a proxy or gateway sits between csmport and the site, let the answers through unchanged; else run with --record DIR and attach the file to a bug report".into(),
                    ),
                },
                None,
            );
        }
        let typed = match listed.and_then(|(v, _)| serde_json::from_value::<T>(v)) {
            Ok(t) => t,
            Err(e) => {
                let why = super::client::decode_message(&e, &text);
                return (
                    Check {
                        check: name,
                        status: Status::Problem,
                        detail: why,
                        fix: Some(
                            "run with --record DIR and attach the file to a bug report".into(),
                        ),
                    },
                    None,
                );
            }
        };
        let differences: Vec<String> = match (documented, serde_json::from_str::<Value>(&text)) {
            (Some(d), Ok(actual)) => {
                let d: Value = serde_json::from_str(d).expect("documented examples are JSON");
                compare(&d, &actual, "")
                    .into_iter()
                    .filter(|x| !OPTIONAL.contains(&x.as_str()))
                    .collect()
            }
            _ => Vec::new(),
        };
        let c = if differences.is_empty() {
            check(&name, Status::Ok, "as documented", None)
        } else {
            check(
                &name,
                Status::Warning,
                format!(
                    "readable; differs from the documented example: {}",
                    differences.join("; ")
                ),
                None,
            )
        };
        (c, Some(typed))
    }

    fn run_folder(&self) -> Check {
        let dir = self.run_folder;
        let probe = || -> std::io::Result<()> {
            crate::fsx::private_dir(dir)?;
            tempfile::NamedTempFile::new_in(dir)?;
            Ok(())
        };
        match probe() {
            Ok(()) => check(
                "run folder",
                Status::Ok,
                format!("{} is writable", dir.display()),
                None,
            ),
            Err(e) => check(
                "run folder",
                Status::Problem,
                format!("{} cannot be written: {e}", dir.display()),
                Some("run csmport from a folder you can write to, or pass --out DIR to import"),
            ),
        }
    }
}

/// The server's clock against ours (X-RateLimit-Reset waits are computed from it).
fn clock(headers: &reqwest::header::HeaderMap) -> Check {
    let Some(date) = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
    else {
        return check(
            "clock",
            Status::Skipped,
            "the answer has no Date header",
            None,
        );
    };
    let Ok(server) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(date) else {
        return check(
            "clock",
            Status::Warning,
            format!("the Date header '{date}' cannot be read"),
            None,
        );
    };
    let off = (jiff::Timestamp::now().as_second() - server.as_second()).abs();
    if off <= 60 {
        check(
            "clock",
            Status::Ok,
            format!("within {off}s of the site's"),
            None,
        )
    } else {
        check(
            "clock",
            Status::Problem,
            format!("{off}s off the site's clock: waits the site asks for would be wrong"),
            Some("set the machine's clock (NTP)"),
        )
    }
}

/// Differences between a documented example and an answer: members the answer has that the
/// example does not (`+path`), members it lacks (`-path`), and members of another type
/// (`path: documented string, got number`). Arrays are compared by their first items.
pub fn compare(documented: &Value, actual: &Value, at: &str) -> Vec<String> {
    use Value::*;
    let name = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    let kind = |v: &Value| match v {
        Null => "null",
        Bool(_) => "boolean",
        Number(_) => "number",
        String(_) => "string",
        Array(_) => "array",
        Object(_) => "object",
    };
    match (documented, actual) {
        (Object(d), Object(a)) => {
            let mut out = Vec::new();
            for (k, dv) in d {
                match a.get(k) {
                    // A field type's options are there for selects only.
                    None if k == "options" && !is_select(a) => {}
                    None => out.push(format!("-{}", name(k))),
                    Some(av) => out.extend(compare(dv, av, &name(k))),
                }
            }
            for k in a.keys().filter(|k| !d.contains_key(*k)) {
                out.push(format!("+{}", name(k)));
            }
            out
        }
        (Array(d), Array(a)) => match (d.first(), a.first()) {
            (Some(dv), Some(av)) => compare(dv, av, &format!("{at}[0]")),
            _ => Vec::new(),
        },
        (d, a) if kind(d) == kind(a) => Vec::new(),
        (d, a) => vec![format!(
            "{}: documented {}, got {}",
            if at.is_empty() { "(answer)" } else { at },
            kind(d),
            kind(a)
        )],
    }
}

/// A detail-field type (`{name, options}`) that has options: a select.
fn is_select(t: &serde_json::Map<String, Value>) -> bool {
    t.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case("SELECT") || n.eq_ignore_ascii_case("MULTISELECT"))
}

/// Members of the documented examples an answer may leave out: the cursor on the last page
/// of products (CONTRACT §9).
const OPTIONAL: [&str; 1] = ["-nextPageCursor"];

fn head(body: &str) -> String {
    let t: String = body.trim().chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

/// The documented examples csmport was built from (`tests/fixtures/api/`).
mod fixture {
    pub const CUSTOMER_DETAILS: &str =
        include_str!("../../tests/fixtures/api/customer-details.get.response.json");
    pub const ORGANIZATION_DETAILS: &str =
        include_str!("../../tests/fixtures/api/organization-details.get.response.json");
    pub const ENTITLEMENT_DETAILS: &str =
        include_str!("../../tests/fixtures/api/entitlement-details.get.response.json");
    pub const PRODUCTS: &str = include_str!("../../tests/fixtures/api/product-list.response.json");
    pub const ORGANIZATION_FETCH: &str =
        include_str!("../../tests/fixtures/api/organization-fetch.response.json");
    pub const ORGANIZATION_PROFILE: &str =
        include_str!("../../tests/fixtures/api/organization-profile.get.response.json");
    pub const ENTITLEMENTS: &str =
        include_str!("../../tests/fixtures/api/entitlements-list.response.json");
    pub const CUSTOMER_PROFILE_FETCH: &str =
        include_str!("../../tests/fixtures/api/customer-profile-fetch.response.json");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_type_without_options_is_a_difference_only_for_a_select() {
        let documented: Value = serde_json::from_str(
            r#"{"results":[{"name":"R","type":{"name":"SELECT","options":["a"]}}]}"#,
        )
        .unwrap();
        let text: Value =
            serde_json::from_str(r#"{"results":[{"name":"N","type":{"name":"TEXT"}}]}"#).unwrap();
        assert!(compare(&documented, &text, "").is_empty());
        let select: Value =
            serde_json::from_str(r#"{"results":[{"name":"N","type":{"name":"MULTISELECT"}}]}"#)
                .unwrap();
        assert_eq!(
            compare(&documented, &select, ""),
            ["-results[0].type.options"]
        );
    }

    #[test]
    fn answers_are_compared_with_the_documented_examples() {
        let d = serde_json::json!({"results": [{"id": "1", "name": "A", "configuration": {"position": 1}}]});
        let same = serde_json::json!({"results": [{"id": "9", "name": "B", "configuration": {"position": 2}}]});
        assert!(compare(&d, &same, "").is_empty());
        let other =
            serde_json::json!({"results": [{"id": 9, "name": "B", "extra": true}], "more": 1});
        assert_eq!(
            compare(&d, &other, ""),
            vec![
                "-results[0].configuration",
                "results[0].id: documented string, got number",
                "+results[0].extra",
                "+more"
            ]
        );
        for f in [
            fixture::CUSTOMER_DETAILS,
            fixture::ORGANIZATION_DETAILS,
            fixture::ENTITLEMENT_DETAILS,
            fixture::PRODUCTS,
            fixture::ORGANIZATION_FETCH,
            fixture::ORGANIZATION_PROFILE,
            fixture::ENTITLEMENTS,
            fixture::CUSTOMER_PROFILE_FETCH,
        ] {
            serde_json::from_str::<Value>(f).unwrap();
        }
    }
}
