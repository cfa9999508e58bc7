//! The CSM API surface without I/O: paths, limits, header names and every value CONTRACT.md
//! marks unconfirmed, as named constants in one place. Used by `client` (requests), `sandbox`
//! (routes and limits) and `plan` (batch sizes); `model` holds the JSON shapes.

pub mod choice;
pub mod lists;
pub mod model;
pub mod scopes;
pub mod text;

pub use choice::Choice;
pub use text::cut;

/// Default gateway host; the CSM base is `{BASE}/jsm/csm/cloudid/{cloudId}/`.
pub const DEFAULT_BASE_URL: &str = "https://api.atlassian.com";

/// Where a service account's OAuth 2.0 client credentials get an access token: Atlassian's
/// support page "Create OAuth 2.0 credential for service accounts" (POST with `client_id` and
/// `client_secret`; the token is good for 60 minutes). [UNCONFIRMED] the body's form: the page
/// names the two values only; csmport sends them with `grant_type=client_credentials` as
/// `application/x-www-form-urlencoded`, as RFC 6749 §4.4 has it and third-party scripts do.
pub const DEFAULT_TOKEN_URL: &str = "https://auth.atlassian.com/oauth/token";
/// [UNCONFIRMED] a token's life when the token endpoint does not say (`expires_in`).
pub const DEFAULT_TOKEN_SECS: u64 = 3600;

/// Header that opts in to experimental methods; always sent by the client (CONTRACT §3.1).
pub const EXPERIMENTAL_HEADER: &str = "X-ExperimentalApi";
pub const EXPERIMENTAL_VALUE: &str = "opt-in";
/// Required on every bulk POST (CONTRACT §3.2).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// CB4 / OB2 limit: profiles per bulk request (CONTRACT §10.4).
pub const MAX_PROFILE_BULK_ITEMS: usize = 100;
/// C17 / O15 limit: profiles per fetch call.
pub const MAX_PROFILE_FETCH: usize = 25;
/// O12 limit: organizations per fetch call.
pub const MAX_ORGANIZATION_FETCH: usize = 50;
/// CB3 / OB3 limit: accounts per bulk request.
pub const MAX_ACCOUNT_BULK_ITEMS: usize = 50;
/// CB2 / OB4 limit: detail-field operations summed over all entities of one request.
pub const MAX_DETAIL_OPERATIONS: usize = 1000;
/// CB1 / OB1 limit: definitions per request.
pub const MAX_DEFINITIONS_BULK: usize = 50;
/// Detail fields per entity kind, and options per select field (CONTRACT §5.2).
pub const MAX_DETAIL_FIELDS: usize = 50;
pub const MAX_FIELD_OPTIONS: usize = 50;
/// P1: page size default and maximum (values outside 1..=100 fall back to 100).
pub const PRODUCT_PAGE_MAX: usize = 100;
/// E8: page size default and maximum.
pub const ENTITLEMENT_PAGE_MAX: usize = 25;
/// [UNCONFIRMED] C7: default and maximum `maxResults`.
pub const SEARCH_PAGE_DEFAULT: usize = 50;
pub const SEARCH_PAGE_MAX: usize = 100;
/// Tasks are kept this long after they end (CONTRACT §7.3).
pub const TASK_RETENTION_SECS: u64 = 3 * 24 * 3600;
/// Unfinished tasks older than this are timed out by the server (CONTRACT §7.3).
pub const STALE_TASK_SECS: u64 = 30 * 60;

/// Default number of unfinished bulk tasks per tenant. The docs say 5 in one version and 10 in
/// another (CONTRACT §7.4); 5 is the safe choice.
pub const DEFAULT_MAX_TASKS: usize = 5;
/// The refusal text for the task-slot limit (CONTRACT §7.4).
pub const TASK_LIMIT_MESSAGE: &str = "Maximum number of tasks reached";

/// [UNCONFIRMED] HTTP status for a missing `Idempotency-Key` on a bulk call.
pub const MISSING_IDEMPOTENCY_STATUS: u16 = 400;
/// [UNCONFIRMED] HTTP status for a reused key with a different body.
pub const IDEMPOTENCY_CONFLICT_STATUS: u16 = 400;
/// [UNCONFIRMED] task `type` of a customer-profile bulk task (the one documented value).
pub const TASK_TYPE_CUSTOMER_PROFILE: &str = "BULK_CUSTOMER_PROFILE_CREATE_UPDATE";
/// [UNCONFIRMED] `entity` of customer task failures and `entityType` of a customer (E8).
pub const ENTITY_CUSTOMER: &str = "CUSTOMER";
/// [UNCONFIRMED] longest TEXT value and display name we send; the API's limits are not
/// documented, so cells longer than this are refused before they are sent.
pub const MAX_TEXT_CHARS: usize = 4000;
pub const MAX_NAME_CHARS: usize = 255;
/// [UNCONFIRMED] longest organization name we send.
pub const MAX_ORGANIZATION_NAME_CHARS: usize = 255;
/// [UNCONFIRMED] separator for multi-valued cells (MULTISELECT, organization ids) in our files.
pub const MULTI_VALUE_SEPARATOR: char = ';';

/// The CSM base path for a cloud id, e.g. `/jsm/csm/cloudid/abc/api/v1`.
pub fn api_prefix(cloud_id: &str) -> String {
    format!("/{}", paths::at(paths::CSM_BASE, &[cloud_id]))
}

/// The entities that carry detail fields (CONTRACT §5), as paths, files and the API name them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Customer,
    Organization,
    Entitlement,
}

impl Entity {
    pub const ALL: [Entity; 3] = [Entity::Customer, Entity::Organization, Entity::Entitlement];

    /// As paths and files spell it: `customer`, `organization`, `entitlement`.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Customer => "customer",
            Entity::Organization => "organization",
            Entity::Entitlement => "entitlement",
        }
    }

    /// [UNCONFIRMED values] `entityType` of `GET entitlements` and of entitlement holders.
    pub fn entity_type(self) -> &'static str {
        match self {
            Entity::Customer => ENTITY_CUSTOMER,
            Entity::Organization => ENTITY_ORGANIZATION,
            Entity::Entitlement => "ENTITLEMENT",
        }
    }

    /// `GET`/`POST {entity}/details`: its detail-field definitions (O1/O2, C1/C2, E1/E2).
    pub fn details(self) -> &'static str {
        match self {
            Entity::Customer => paths::CUSTOMER_DETAILS,
            Entity::Organization => paths::ORGANIZATION_DETAILS,
            Entity::Entitlement => paths::ENTITLEMENT_DETAILS,
        }
    }

    /// `PUT`/`DELETE {entity}/details/{fieldName}`: one definition (O3/O4, C3/C4, E3/E4).
    pub fn detail(self) -> &'static str {
        match self {
            Entity::Customer => paths::CUSTOMER_DETAIL,
            Entity::Organization => paths::ORGANIZATION_DETAIL,
            Entity::Entitlement => paths::ENTITLEMENT_DETAIL,
        }
    }

    /// `POST {entity}/details/definitions/bulk` (OB1, CB1); entitlements have none.
    pub fn definitions_bulk(self) -> Option<&'static str> {
        match self {
            Entity::Customer => Some(paths::CUSTOMER_DEFINITIONS_BULK),
            Entity::Organization => Some(paths::ORGANIZATION_DEFINITIONS_BULK),
            Entity::Entitlement => None,
        }
    }
}

/// [UNCONFIRMED] `entityType` of an organization (E8, and entitlement holders).
pub const ENTITY_ORGANIZATION: &str = "ORGANIZATION";

/// The detail-field types (CONTRACT §5.2; `BOOLEAN` from third-party documentation, DELTAS
/// D5). A type not listed here is kept as the site names it and passed through unchecked.
pub const FIELD_TYPES: [&str; 9] = [
    "TEXT",
    "SELECT",
    "MULTISELECT",
    "DATE",
    "NUMBER",
    "EMAIL",
    "PHONE",
    "URL",
    "BOOLEAN",
];

/// [UNCONFIRMED form] how a `BOOLEAN` value is sent (DELTAS D5: the value format is unknown).
pub const BOOLEAN_TRUE: &str = "true";
pub const BOOLEAN_FALSE: &str = "false";

/// Dates in detail values: ISO 8601 calendar dates (CONTRACT §5.2).
pub const DATE_FORMAT: &str = "%Y-%m-%d";

/// What a detail-value operation leaves in a field that holds `current` (CB2/OB4,
/// CONTRACT §7.5 [UNCONFIRMED semantics]): `UPDATE` replaces the values; `PATCH` adds the
/// given values to a multi-valued field (set union) and replaces a single-valued one;
/// `DELETE` clears the field. The sandbox applies it; the client compares with it to skip
/// operations that would change nothing.
pub fn apply_operation(
    op: model::DetailOperation,
    current: &[String],
    values: &[String],
    multi: bool,
) -> Vec<String> {
    use model::DetailOperation::*;
    match op {
        Delete => Vec::new(),
        Update => values.to_vec(),
        Patch if multi => {
            let mut out = current.to_vec();
            for v in values {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            out
        }
        Patch => values.to_vec(),
    }
}

/// Methods marked experimental in some version of the docs: the bulk calls and the task API
/// whose Jan 2026 pages list `X-ExperimentalApi` as required (CONTRACT §3.1, CB2, CB3, OB2,
/// T1), `GET entitlements` and the customer-experiences list (§0), the help-center access and
/// raise calls (DELTAS C2), and the JSM customer calls that callers send the header to
/// (DELTAS D1). csmport sends `X-ExperimentalApi: opt-in` on every call; the sandbox requires
/// it on these.
pub const EXPERIMENTAL: [(Api, &str, &str); 12] = [
    (Api::Csm, "POST", paths::CUSTOMER_BULK),
    (Api::Csm, "POST", paths::CUSTOMER_DETAILS_BULK),
    (Api::Csm, "POST", paths::ORGANIZATION_PROFILE_BULK),
    (Api::Csm, "GET", paths::TASK),
    (Api::Csm, "GET", paths::ENTITLEMENTS),
    (Api::Csm, "GET", paths::CUSTOMER_EXPERIENCES),
    (Api::Csm, "GET", paths::HELPCENTER_ACCESS),
    (Api::Csm, "POST", paths::HELPCENTER_ACCESS),
    (Api::Csm, "DELETE", paths::HELPCENTER_ACCESS_ONE),
    (Api::Csm, "POST", paths::HELPCENTER_RAISE),
    (Api::Jsm, "GET", paths::jsm::SERVICE_DESK_CUSTOMERS),
    (Api::Jsm, "POST", paths::jsm::CUSTOMERS),
];

/// The bulk submissions (CONTRACT §7.5): each takes an `Idempotency-Key` and answers with a
/// task.
pub const BULK: [&str; 8] = [
    paths::CUSTOMER_PROFILE_BULK,
    paths::CUSTOMER_BULK,
    paths::CUSTOMER_DETAILS_BULK,
    paths::CUSTOMER_DEFINITIONS_BULK,
    paths::ORGANIZATION_PROFILE_BULK,
    paths::ORGANIZATION_BULK,
    paths::ORGANIZATION_DETAILS_BULK,
    paths::ORGANIZATION_DEFINITIONS_BULK,
];

/// Which API a request path is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// CSM, under `…/api/v1/`.
    Csm,
    /// JSM, under `…/rest/servicedeskapi/`.
    Jsm,
}

/// The API of a full request path and the path relative to it (`customer/details`).
pub fn relative(path: &str) -> Option<(Api, &str)> {
    const CSM: &str = "/api/v1/";
    const JSM: &str = "/rest/servicedeskapi/";
    if let Some(i) = path.find(CSM) {
        return Some((Api::Csm, &path[i + CSM.len()..]));
    }
    path.find(JSM).map(|i| (Api::Jsm, &path[i + JSM.len()..]))
}

/// Whether `method` on a full request path is a bulk submission.
pub fn is_bulk(method: &str, path: &str) -> bool {
    method == "POST"
        && matches!(relative(path), Some((Api::Csm, rel)) if BULK.iter().any(|b| paths::matches(b, rel)))
}

/// The `statusUrl` a submission answers with (CONTRACT §7.1: relative to the CSM base).
pub fn status_url(task_id: &str) -> String {
    format!("/api/v1/{}", paths::task(task_id))
}

/// Whether `method path` of `api` (a path under `api/v1/` or `rest/servicedeskapi/`) is one
/// of `EXPERIMENTAL`: CSM's `POST customer` is not JSM's.
pub fn is_experimental(api: Api, method: &str, path: &str) -> bool {
    EXPERIMENTAL
        .iter()
        .any(|(a, m, t)| *a == api && *m == method && paths::matches(t, path))
}

/// Every path csmport and the sandbox use, relative to the CSM `api/v1/` prefix (and, in
/// `jsm`, to `rest/servicedeskapi/`), with `{name}` where an id goes. The client fills the
/// templates (`at`); the sandbox routes on them as they are. The ids (O1…P5, C1…CB4, E1…E8,
/// T1) are CONTRACT §10's.
pub mod paths {
    /// The token endpoint's path on the sandbox (the real one is `DEFAULT_TOKEN_URL`).
    pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";
    pub const ORGANIZATION_DETAILS: &str = "organization/details"; // O1, O2
    pub const ORGANIZATION_DETAIL: &str = "organization/details/{fieldName}"; // O3, O4
    pub const ORGANIZATION_DEFINITIONS_BULK: &str = "organization/details/definitions/bulk"; // OB1
    pub const CUSTOMER_DETAILS: &str = "customer/details"; // C1, C2
    pub const CUSTOMER_DETAIL: &str = "customer/details/{fieldName}"; // C3, C4
    pub const CUSTOMER_DEFINITIONS_BULK: &str = "customer/details/definitions/bulk"; // CB1
    pub const ENTITLEMENT_DETAILS: &str = "entitlement/details"; // E1, E2
    pub const ENTITLEMENT_DETAIL: &str = "entitlement/details/{fieldName}"; // E3, E4

    pub const ORGANIZATIONS: &str = "organization"; // O11
    pub const ORGANIZATION_FETCH: &str = "organization/fetch"; // O12
    pub const ORGANIZATION_PROFILES: &str = "organization/profile"; // O14
    pub const ORGANIZATION_PROFILE_FETCH: &str = "organization/profile/fetch"; // O15
    pub const ORGANIZATION_PROFILE_BULK: &str = "organization/profile/bulk"; // OB2
    pub const ORGANIZATION_BULK: &str = "organization/bulk"; // OB3
    pub const ORGANIZATION_DETAILS_BULK: &str = "organization/details/bulk"; // OB4
    pub const ORGANIZATION_PROFILE: &str = "organization/profile/{organizationId}"; // O13
    pub const ORGANIZATION: &str = "organization/{organizationId}"; // O5, O6, O7
    pub const ORGANIZATION_VALUE: &str = "organization/{organizationId}/details"; // O8
    pub const ORGANIZATION_ENTITLEMENTS: &str = "organization/{organizationId}/entitlement"; // O9, O10

    pub const CUSTOMERS: &str = "customer"; // C11
    pub const CUSTOMER_SEARCH: &str = "customer/search-by-detail-field"; // C7
    pub const CUSTOMER_PROFILES: &str = "customer/profile"; // C16
    pub const CUSTOMER_PROFILE_FETCH: &str = "customer/profile/fetch"; // C17
    pub const CUSTOMER_PROFILE_BULK: &str = "customer/profile/bulk"; // CB4
    pub const CUSTOMER_BULK: &str = "customer/bulk"; // CB3
    pub const CUSTOMER_DETAILS_BULK: &str = "customer/details/bulk"; // CB2
    pub const CUSTOMER_PROFILE: &str = "customer/profile/{customerId}"; // C15
    pub const CUSTOMER_ACCOUNT: &str = "customer/account/{customerId}"; // C12, C13, C14
    pub const CUSTOMER: &str = "customer/{customerId}"; // C5
    pub const CUSTOMER_VALUE: &str = "customer/{customerId}/details"; // C8
    pub const CUSTOMER_EXPERIENCES: &str = "customer/{customerId}/customer-experiences"; // C6
    pub const CUSTOMER_ENTITLEMENTS: &str = "customer/{customerId}/entitlement"; // C9, C10

    pub const PRODUCTS: &str = "product"; // P1, P2
    pub const PRODUCT: &str = "product/{productId}"; // P3, P4, P5
    pub const ENTITLEMENT: &str = "entitlement/{entitlementId}"; // E5, E6
    pub const ENTITLEMENT_VALUE: &str = "entitlement/{entitlementId}/details"; // E7
    pub const ENTITLEMENTS: &str = "entitlements"; // E8
    pub const TASK: &str = "tasks/{taskId}"; // T1

    pub const HELPCENTER_ACCESS: &str = "helpcenter/{helpCenterId}/access/organization"; // H1, H2
    pub const HELPCENTER_ACCESS_ONE: &str =
        "helpcenter/{helpCenterId}/access/organization/{organizationId}"; // H3
    pub const HELPCENTER_RAISE: &str = "helpcenter/{helpCenterId}/issue/{issueIdOrKey}/raise"; // H4

    /// The JSM REST API (`rest/servicedeskapi/`), for what CSM cannot list (CONTRACT §11).
    pub mod jsm {
        pub const ORGANIZATIONS: &str = "organization";
        pub const ORGANIZATION_USERS: &str = "organization/{organizationId}/user";
        /// Every service project the caller can see (paged); export finds customers in no
        /// organization through them.
        pub const SERVICE_DESKS: &str = "servicedesk";
        pub const SERVICE_DESK_CUSTOMERS: &str = "servicedesk/{serviceDeskId}/customer";
        /// The query parameter that filters a service project's customers: matched against
        /// their display name, name or email (JSM's published description). [UNCONFIRMED] how
        /// it matches (the sandbox: any part, in any case); csmport keeps only exact emails.
        pub const CUSTOMER_QUERY: &str = "query";
        pub const CUSTOMERS: &str = "customer";
        /// Under the site: `https://SITE.atlassian.net/rest/servicedeskapi`.
        pub const ON_SITE: &str = "rest/servicedeskapi";
        /// Through the API gateway for a cloud id: `{base}/ex/jira/{cloudId}/rest/servicedeskapi`.
        pub const VIA_GATEWAY: &str = "ex/jira/{cloudId}/rest/servicedeskapi";
    }

    /// The CSM base for a cloud id (CONTRACT §1).
    pub const CSM_BASE: &str = "jsm/csm/cloudid/{cloudId}/api/v1";
    /// The site's cloud id lookup (CONTRACT §2.3).
    pub const TENANT_INFO: &str = "_edge/tenant_info";

    /// `template` with its `{…}` filled by `values` in order, each escaped for a path segment.
    pub fn at(template: &str, values: &[&str]) -> String {
        let mut out = String::with_capacity(template.len() + 16);
        let mut values = values.iter();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .unwrap_or(rest.len() - 1);
            out.push_str(&segment(values.next().copied().unwrap_or("")));
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `path?k=v&…`, each value escaped.
    pub fn query(path: &str, params: &[(&str, &str)]) -> String {
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", super::escape(v)))
            .collect();
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", q.join("&"))
        }
    }

    /// Whether `path` (no query) is an instance of `template`.
    pub fn matches(template: &str, path: &str) -> bool {
        let t: Vec<&str> = template.split('/').collect();
        let p: Vec<&str> = path.trim_matches('/').split('/').collect();
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
    }

    /// A path segment: ids may hold `:` (customer ids) which stays; anything that would end
    /// or split the segment is escaped.
    fn segment(v: &str) -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'_'
                | b'.'
                | b'~'
                | b':'
                | b'@' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    pub fn task(id: &str) -> String {
        at(TASK, &[id])
    }

    /// One page of the product list (P1, cursor-paged).
    pub fn products_page(limit: usize, cursor: Option<&str>) -> String {
        let limit = limit.to_string();
        let mut q = vec![("limit", limit.as_str())];
        if let Some(c) = cursor {
            q.push(("cursor", c));
        }
        query(PRODUCTS, &q)
    }

    /// One page of an entity's entitlements (E8, `start`/`limit`).
    pub fn entitlements_page(entity_type: &str, id: &str, start: u64, limit: usize) -> String {
        let (start, limit) = (start.to_string(), limit.to_string());
        query(
            ENTITLEMENTS,
            &[
                ("entityType", entity_type),
                ("entityId", id),
                ("start", &start),
                ("limit", &limit),
            ],
        )
    }

    /// Sets one detail field of an entitlement (E7: `fieldName` in the query).
    pub fn entitlement_value(entitlement: &str, field: &str) -> String {
        query(
            &at(ENTITLEMENT_VALUE, &[entitlement]),
            &[("fieldName", field)],
        )
    }

    /// A JSM listing page (`start`/`limit`).
    pub fn jsm_page(path: &str, start: u64, limit: u64) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}start={start}&limit={limit}")
    }
}

/// A query value, escaped.
pub fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Turns a `statusUrl` (relative to the CSM base, e.g. `/api/v1/tasks/ID`) into a path relative
/// to the `api/v1` prefix. Absolute URLs are accepted too, since nothing promises relative ones.
pub fn status_url_to_path(status_url: &str) -> Option<String> {
    let idx = status_url.find("api/v1/")?;
    let rest = &status_url[idx + "api/v1/".len()..];
    (!rest.is_empty()).then(|| rest.to_string())
}

/// Best-effort human text of an error body: the RestError shape is unconfirmed, so take the
/// first present of `errorMessage`, `message`, `errorMessages`, `errors`, else the raw text.
pub fn error_text(body: &str) -> String {
    text::one_line(&cut(&whole_error_text(body), MAX_ERROR_CHARS)).into_owned()
}

/// A server's error text kept at most: a 5 MB message would fill reports, the journal and
/// the log with one row's reason.
pub const MAX_ERROR_CHARS: usize = 1000;

/// The largest answer read: a listing page of profiles with their details is well under it;
/// past it the answer is refused (an error naming the endpoint) rather than held in memory.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// The largest task status read: a hundred failures with a cut error text each are far less.
pub const MAX_TASK_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The largest answer to anything else: a bulk submission answers a task id, a write one
/// record.
pub const MAX_SMALL_ANSWER_BYTES: usize = 1024 * 1024;

/// The largest answer `method` on `path` (relative to the API prefix, or whole) may have:
/// listing pages (a GET, a `fetch`, a search) `MAX_ANSWER_BYTES`, a task's status
/// `MAX_TASK_ANSWER_BYTES`, anything else `MAX_SMALL_ANSWER_BYTES`.
pub fn answer_cap(method: &str, path: &str) -> usize {
    let rel = relative(path).map_or(path, |(_, r)| r);
    let rel = rel.split('?').next().unwrap_or(rel).trim_start_matches('/');
    if rel.starts_with("tasks/") {
        MAX_TASK_ANSWER_BYTES
    } else if method.eq_ignore_ascii_case("GET")
        || rel.ends_with("/fetch")
        || rel == paths::CUSTOMER_SEARCH
    {
        MAX_ANSWER_BYTES
    } else {
        MAX_SMALL_ANSWER_BYTES
    }
}

fn whole_error_text(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["errorMessage", "message"] {
            if let Some(s) = v.get(key).and_then(|m| m.as_str()) {
                return s.to_string();
            }
        }
        for key in ["errorMessages", "errors"] {
            match v.get(key) {
                Some(serde_json::Value::Array(a)) if !a.is_empty() => {
                    return a
                        .iter()
                        .map(|e| {
                            e.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| e.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                }
                Some(serde_json::Value::Object(m)) if !m.is_empty() => {
                    return m
                        .iter()
                        .map(|(k, e)| format!("{k}: {}", e.as_str().unwrap_or(&e.to_string())))
                        .collect::<Vec<_>>()
                        .join("; ");
                }
                _ => {}
            }
        }
    }
    let t = body.trim();
    if t.is_empty() {
        "(empty response body)".to_string()
    } else {
        t.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_text_is_cut_saying_how_much() {
        let long = format!(r#"{{"errorMessage":"{}"}}"#, "x".repeat(5000));
        let t = error_text(&long);
        assert!(t.starts_with(&"x".repeat(MAX_ERROR_CHARS)), "{t}");
        assert!(t.ends_with("… 4000 more bytes"), "{t}");
        assert_eq!(cut("héllo", 2), "hé… 3 more bytes");
        assert_eq!(cut("short", 10), "short");
    }

    #[test]
    fn templates_are_filled_matched_and_escaped() {
        assert_eq!(paths::at(paths::PRODUCT, &["p 1/2"]), "product/p%201%2F2");
        assert_eq!(
            paths::at(paths::CUSTOMER_PROFILE, &["qm:1:a"]),
            "customer/profile/qm:1:a"
        );
        assert_eq!(
            paths::entitlement_value("e1", "Seats & Level"),
            "entitlement/e1/details?fieldName=Seats%20%26%20Level"
        );
        assert_eq!(
            paths::entitlements_page("CUSTOMER", "qm:1", 25, 25),
            "entitlements?entityType=CUSTOMER&entityId=qm%3A1&start=25&limit=25"
        );
        assert_eq!(
            paths::products_page(100, Some("a b")),
            "product?limit=100&cursor=a%20b"
        );
        assert_eq!(
            paths::jsm_page("organization", 50, 50),
            "organization?start=50&limit=50"
        );
        assert_eq!(api_prefix("c"), "/jsm/csm/cloudid/c/api/v1");
        assert!(paths::matches(paths::TASK, "tasks/abc"));
        assert!(!paths::matches(paths::TASK, "tasks"));
        let csm = |m, p| is_experimental(Api::Csm, m, p);
        assert!(csm("GET", "customer/qm:1/customer-experiences"));
        assert!(csm("POST", "customer/details/bulk"));
        assert!(!csm("POST", "customer/profile/bulk"));
        assert!(!csm("GET", "customer/details"));
        assert!(!csm("POST", "customer/details/definitions/bulk"));
        // JSM's POST customer is; CSM's (C11) is not.
        assert!(is_experimental(Api::Jsm, "POST", "customer"));
        assert!(!csm("POST", "customer"));
        assert_eq!(
            relative("/jsm/csm/cloudid/c/api/v1/tasks/t"),
            Some((Api::Csm, "tasks/t"))
        );
        assert_eq!(
            relative("/ex/jira/c/rest/servicedeskapi/organization"),
            Some((Api::Jsm, "organization"))
        );
        assert!(is_bulk(
            "POST",
            "/jsm/csm/cloudid/c/api/v1/customer/details/bulk"
        ));
        assert!(!is_bulk(
            "POST",
            "/jsm/csm/cloudid/c/api/v1/customer/profile/fetch"
        ));
        assert_eq!(status_url("t1"), "/api/v1/tasks/t1");
    }

    #[test]
    fn detail_operations_leave_what_the_contract_says() {
        use model::DetailOperation::*;
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (Update, v(&["a", "b"]), v(&["c"]), true, v(&["c"])),
            (
                Patch,
                v(&["a", "b"]),
                v(&["b", "c"]),
                true,
                v(&["a", "b", "c"]),
            ),
            (Patch, v(&["a"]), v(&["c"]), false, v(&["c"])),
            (Delete, v(&["a"]), v(&[]), true, v(&[])),
        ];
        for (op, cur, new, multi, want) in cases {
            assert_eq!(apply_operation(op, &cur, &new, multi), want, "{op:?}");
        }
    }

    /// Every API path lives in `paths`: no path literal appears anywhere else in `src/`.
    #[test]
    fn no_path_literal_outside_the_api_module() {
        let heads = [
            "\"customer/",
            "\"organization/",
            "\"product/",
            "\"product?",
            "\"entitlement/",
            "\"entitlements?",
            "\"tasks/",
            "\"servicedesk/",
            "/details\"",
            "/details/",
            "/bulk\"",
            "/fetch\"",
            "/entitlement\"",
            "api/v1",
            "servicedeskapi",
            "/_edge/",
        ];
        // The whole workspace but this crate: the main crate's src and the other crates.
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = here.join("../..");
        let mut found = Vec::new();
        let mut files = 0;
        let mut stack = vec![workspace.join("src"), workspace.join("crates")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    if !p.ends_with("crates/api") && !p.ends_with("target") {
                        stack.push(p);
                    }
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                files += 1;
                let text = std::fs::read_to_string(&p).unwrap();
                // Tests spell requests out as a site sees them.
                let code = text.split("#[cfg(test)]").next().unwrap_or("");
                for (n, line) in code.lines().enumerate() {
                    let t = line.trim_start();
                    // Help text may name an endpoint for people, saying so.
                    if t.starts_with("//") || line.ends_with("// help, not a request") {
                        continue;
                    }
                    if heads.iter().any(|h| line.contains(h)) {
                        found.push(format!("{}:{}: {}", p.display(), n + 1, t));
                    }
                }
            }
        }
        assert!(files > 80, "read {files} files");
        assert!(
            found.is_empty(),
            "path literals outside the api crate:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn status_url_forms() {
        let cases = [
            ("/api/v1/tasks/abc", Some("tasks/abc")),
            ("api/v1/tasks/abc", Some("tasks/abc")),
            (
                "https://api.atlassian.com/jsm/csm/cloudid/x/api/v1/tasks/abc",
                Some("tasks/abc"),
            ),
            ("/tasks/abc", None),
            ("/api/v1/", None),
        ];
        for (input, want) in cases {
            assert_eq!(status_url_to_path(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn each_endpoint_has_its_answer_cap() {
        let cases = [
            ("GET", "customer/details", MAX_ANSWER_BYTES),
            (
                "GET",
                "/jsm/csm/cloudid/c/api/v1/product?limit=100",
                MAX_ANSWER_BYTES,
            ),
            (
                "GET",
                "/rest/servicedeskapi/servicedesk/1/customer?start=0",
                MAX_ANSWER_BYTES,
            ),
            ("POST", "customer/profile/fetch", MAX_ANSWER_BYTES),
            ("POST", "organization/fetch", MAX_ANSWER_BYTES),
            (
                "POST",
                "customer/search-by-detail-field?page=0&maxResults=100",
                MAX_ANSWER_BYTES,
            ),
            ("GET", "tasks/abc", MAX_TASK_ANSWER_BYTES),
            (
                "GET",
                "/jsm/csm/cloudid/c/api/v1/tasks/abc",
                MAX_TASK_ANSWER_BYTES,
            ),
            ("POST", "customer/profile/bulk", MAX_SMALL_ANSWER_BYTES),
            ("PUT", "customer/details/Tier", MAX_SMALL_ANSWER_BYTES),
            ("DELETE", "organization/123", MAX_SMALL_ANSWER_BYTES),
        ];
        for (method, path, want) in cases {
            assert_eq!(answer_cap(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn error_text_shapes() {
        let cases = [
            (
                r#"{"errorMessage":"Maximum number of tasks reached","errors":["BAD_REQUEST"],"statusCode":400}"#,
                "Maximum number of tasks reached",
            ),
            (r#"{"message":"nope"}"#, "nope"),
            (r#"{"errorMessages":["a","b"]}"#, "a; b"),
            (r#"{"errors":{"email":"bad"}}"#, "email: bad"),
            ("<html>rate limited</html>", "<html>rate limited</html>"),
            ("", "(empty response body)"),
        ];
        for (body, want) in cases {
            assert_eq!(error_text(body), want, "{body}");
        }
    }
}
