//! The OAuth 2.0 scopes of the CSM endpoints csmport calls, once: what a sandbox with
//! `--scopes` enforces, what a 401 "scope does not match" is explained with, and what `doctor`
//! and the README name. All end in `:jira-service-management` (CONTRACT §2.4). Those CONTRACT
//! §10 gives per endpoint are [DOC]; the rest follow its naming (`read`/`write` + resource,
//! `.detail-field` for definitions, `.detail` for values, `.profile` for profiles) and the
//! published list's `delete:` scopes for deletes, and are [UNCONFIRMED].

use crate::paths::{self, *};

/// The suffix of every CSM scope.
pub const SUFFIX: &str = ":jira-service-management";

/// The words of a 401 that is about a scope the token lacks, not the token itself.
pub const REFUSAL: &str = "scope does not match";

/// (method, path template, scope without its suffix).
const TABLE: &[(&str, &str, &str)] = &[
    ("GET", CUSTOMER_DETAILS, "read:customer.detail-field"),
    (
        "POST",
        CUSTOMER_DEFINITIONS_BULK,
        "write:customer.detail-field",
    ),
    ("PUT", CUSTOMER_DETAIL, "write:customer.detail-field"),
    ("DELETE", CUSTOMER_DETAIL, "delete:customer.detail-field"),
    (
        "GET",
        ORGANIZATION_DETAILS,
        "read:organization.detail-field",
    ),
    (
        "POST",
        ORGANIZATION_DEFINITIONS_BULK,
        "write:organization.detail-field",
    ),
    (
        "PUT",
        ORGANIZATION_DETAIL,
        "write:organization.detail-field",
    ),
    (
        "DELETE",
        ORGANIZATION_DETAIL,
        "delete:organization.detail-field",
    ),
    ("GET", ENTITLEMENT_DETAILS, "read:entitlement.detail-field"),
    (
        "POST",
        ENTITLEMENT_DETAILS,
        "write:entitlement.detail-field",
    ),
    ("PUT", ENTITLEMENT_DETAIL, "write:entitlement.detail-field"),
    (
        "DELETE",
        ENTITLEMENT_DETAIL,
        "delete:entitlement.detail-field",
    ),
    ("POST", ORGANIZATIONS, "write:organization"),
    ("POST", ORGANIZATION_FETCH, "read:organization"),
    (
        "POST",
        ORGANIZATION_PROFILE_FETCH,
        "read:organization.profile",
    ),
    (
        "POST",
        ORGANIZATION_PROFILE_BULK,
        "write:organization.profile",
    ),
    ("POST", ORGANIZATION_BULK, "write:organization"),
    (
        "POST",
        ORGANIZATION_DETAILS_BULK,
        "write:organization.detail",
    ),
    ("GET", ORGANIZATION_PROFILE, "read:organization.profile"),
    ("GET", ORGANIZATION, "read:organization"),
    ("PUT", ORGANIZATION, "write:organization"),
    ("DELETE", ORGANIZATION, "delete:organization"),
    ("GET", ORGANIZATION_ENTITLEMENTS, "read:entitlement"),
    ("POST", ORGANIZATION_ENTITLEMENTS, "write:entitlement"),
    ("POST", CUSTOMERS, "write:customer"),
    ("POST", CUSTOMER_SEARCH, "read:customer.detail"),
    ("POST", CUSTOMER_PROFILE_FETCH, "read:customer.profile"),
    ("POST", CUSTOMER_PROFILE_BULK, "write:customer.profile"),
    ("POST", CUSTOMER_BULK, "write:customer"),
    ("POST", CUSTOMER_DETAILS_BULK, "write:customer.detail"),
    ("GET", CUSTOMER_PROFILE, "read:customer.profile"),
    ("GET", CUSTOMER_ACCOUNT, "read:customer"),
    ("PUT", CUSTOMER_ACCOUNT, "write:customer"),
    ("DELETE", CUSTOMER_ACCOUNT, "delete:customer"),
    ("GET", CUSTOMER, "read:customer"),
    ("GET", CUSTOMER_ENTITLEMENTS, "read:entitlement"),
    ("POST", CUSTOMER_ENTITLEMENTS, "write:entitlement"),
    ("GET", PRODUCTS, "read:product"),
    ("POST", PRODUCTS, "write:product"),
    ("GET", PRODUCT, "read:product"),
    ("PUT", PRODUCT, "write:product"),
    ("DELETE", PRODUCT, "delete:product"),
    ("GET", ENTITLEMENT, "read:entitlement"),
    ("DELETE", ENTITLEMENT, "delete:entitlement"),
    ("GET", ENTITLEMENTS, "read:entitlement"),
    ("GET", TASK, "read:task"),
];

/// The scope (without its suffix) a CSM call needs: `rel` relative to `api/v1`, query aside.
pub fn of(method: &str, rel: &str) -> Option<&'static str> {
    let path = rel.split('?').next().unwrap_or(rel);
    TABLE
        .iter()
        .find(|(m, t, _)| m.eq_ignore_ascii_case(method) && paths::matches(t, path))
        .map(|(_, _, s)| *s)
}

/// The scope a call needs, as a message names it: `path` relative to `api/v1`, or a full URL.
pub fn needed(method: &str, path: &str) -> String {
    let rel = match crate::relative(path) {
        Some((crate::Api::Csm, rel)) => Some(rel),
        Some(_) => None,
        None => Some(path),
    };
    rel.and_then(|r| of(method, r))
        .map(full)
        .unwrap_or_else(|| "a scope this call needs".to_string())
}

/// Whether a scope given (with or without the suffix) is `needed`.
pub fn same(given: &str, needed: &str) -> bool {
    let g = given.trim();
    g.strip_suffix(SUFFIX).unwrap_or(g) == needed
}

/// A scope as the credentials' settings spell it.
pub fn full(scope: &str) -> String {
    format!("{scope}{SUFFIX}")
}

/// Whether an answer's text says the token lacks a scope.
pub fn is_refusal(message: &str) -> bool {
    message.to_ascii_lowercase().contains(REFUSAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_has_its_scope() {
        let cases = [
            (
                "GET",
                "customer/details",
                Some("read:customer.detail-field"),
            ),
            (
                "POST",
                "customer/profile/bulk",
                Some("write:customer.profile"),
            ),
            ("GET", "tasks/abc", Some("read:task")),
            ("GET", "product?limit=100", Some("read:product")),
            ("DELETE", "customer/account/qm:1", Some("delete:customer")),
            (
                "GET",
                "entitlements?entityType=CUSTOMER",
                Some("read:entitlement"),
            ),
            ("PATCH", "customer/details", None),
            ("GET", "no/such/path", None),
        ];
        for (m, p, want) in cases {
            assert_eq!(of(m, p), want, "{m} {p}");
        }
        assert!(same("read:task:jira-service-management", "read:task"));
        assert!(same(" read:task ", "read:task"));
        assert!(!same("read:tasks", "read:task"));
        assert!(is_refusal("Unauthorized; scope does not match"));
        assert_eq!(
            needed("GET", "http://h/jsm/csm/cloudid/c/api/v1/tasks/x"),
            "read:task:jira-service-management"
        );
        assert_eq!(
            needed("GET", "tasks/x"),
            "read:task:jira-service-management"
        );
        assert_eq!(
            needed("GET", "http://h/rest/servicedeskapi/organization"),
            "a scope this call needs"
        );
    }
}
