//! The CSM API surface without I/O: paths, limits, header names and every value CONTRACT.md
//! marks unconfirmed, as named constants in one place. Used by `client` (requests), `sandbox`
//! (routes and limits) and `plan` (batch sizes); `model` holds the JSON shapes.

pub mod model;

/// Default gateway host; the CSM base is `{BASE}/jsm/csm/cloudid/{cloudId}/`.
pub const DEFAULT_BASE_URL: &str = "https://api.atlassian.com";

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
/// [UNCONFIRMED] `entityId` of a failed item that has no id yet: the identifying input
/// (email for customers). The client maps both ids and emails back to rows.
pub const ENTITY_CUSTOMER: &str = "CUSTOMER";
/// [UNCONFIRMED] separator for multi-valued cells (MULTISELECT, organization ids) in our files.
pub const MULTI_VALUE_SEPARATOR: char = ';';

/// The CSM base path for a cloud id, e.g. `/jsm/csm/cloudid/abc/api/v1`.
pub fn api_prefix(cloud_id: &str) -> String {
    format!("/jsm/csm/cloudid/{cloud_id}/api/v1")
}

/// Path of a resource relative to the CSM `api/v1` prefix.
pub mod paths {
    pub const CUSTOMER_DETAILS: &str = "customer/details";
    pub const CUSTOMER_PROFILE_BULK: &str = "customer/profile/bulk";
    pub const CUSTOMER_PROFILE_FETCH: &str = "customer/profile/fetch";
    pub const ORGANIZATION_DETAILS: &str = "organization/details";
    pub const ORGANIZATION_PROFILE_BULK: &str = "organization/profile/bulk";
    pub const ORGANIZATION_FETCH: &str = "organization/fetch";
    pub const CUSTOMER_BULK: &str = "customer/bulk";
    pub const ENTITLEMENT_DETAILS: &str = "entitlement/details";
    pub const CUSTOMER_DETAILS_BULK: &str = "customer/details/bulk";
    pub const ORGANIZATION_DETAILS_BULK: &str = "organization/details/bulk";
    pub const ORGANIZATION_PROFILE_FETCH: &str = "organization/profile/fetch";
    pub const ORGANIZATION_BULK: &str = "organization/bulk";

    pub fn task(id: &str) -> String {
        format!("tasks/{id}")
    }
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
