//! The sandbox's HTTP side, a file per resource it serves: `gate` (every API request: log,
//! auth, rate limit, experimental header, faults, quirks), `bulk` (bulk submissions and
//! tasks), `fields`, `organizations`, `customers`, `products`, `entitlements`, `jsm` and
//! `admin`. This file holds the router and the answers they share. Paths and wire types come
//! from `site::api` (never from the client); state and rules from `store`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};

use prelude::*;

#[allow(unused_imports)]
mod prelude {
    pub(super) use std::collections::HashMap;
    pub(super) use std::time::Instant;

    pub(super) use axum::body::{Body, Bytes};
    pub(super) use axum::extract::{Path, Query, Request, State};
    pub(super) use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
    pub(super) use axum::middleware::Next;
    pub(super) use axum::response::{IntoResponse, Response};
    pub(super) use base64::Engine;
    pub(super) use serde::Serialize;
    pub(super) use serde::de::DeserializeOwned;
    pub(super) use serde_json::json;

    pub(super) use crate::faults::{Faults, RequestFault, reset_header};
    pub(super) use crate::quirks;
    pub(super) use crate::store::{Entity, Store, same_name};
    pub(super) use crate::tasks::{self, Job};
    pub(super) use crate::{LoggedRequest, REQUEST_LOG_CAP, Sandbox};
    pub(super) use csmport_api::model::{
        CreateDetailField, CreateEntitlement, Customer as CustomerView, CustomerAccount,
        CustomerBulkRequest, CustomerDetailsBulkRequest, CustomerProfileBulkRequest,
        CustomerProfileFetchRequest, CustomerProfileFetchResponse, CustomerProfileItem,
        CustomerProfilePayload, DetailDefinitionsBulkRequest, DetailFieldsWithConfiguration,
        DisplayName, EditDetailField, EntitlementPage, Entitlements, JsmOrganization, JsmPage,
        JsmServiceDesk, JsmUser, Organization as OrganizationView, OrganizationBulkRequest,
        OrganizationDetailsBulkRequest, OrganizationFetchRequest, OrganizationFetchResponse,
        OrganizationName, OrganizationProfileBulkRequest, OrganizationProfileFetchRequest,
        OrganizationProfileFetchResponse, OrganizationProfileItem, OrganizationProfilePayload,
        OrganizationRef, PaginatedProducts, Product, ProductName, ProfileOperation, RestError,
        SearchByDetailFieldRequest, SearchByDetailFieldResponse, SearchHit, TaskSubmitResponse,
        UpdateDetailField,
    };
    pub(super) use csmport_api::{
        ENTITLEMENT_PAGE_MAX, ENTITY_CUSTOMER, EXPERIMENTAL_HEADER, EXPERIMENTAL_VALUE,
        IDEMPOTENCY_HEADER, MAX_ACCOUNT_BULK_ITEMS, MAX_DEFINITIONS_BULK, MAX_DETAIL_OPERATIONS,
        MAX_ORGANIZATION_FETCH, MAX_PROFILE_BULK_ITEMS, MAX_PROFILE_FETCH,
        MISSING_IDEMPOTENCY_STATUS, PRODUCT_PAGE_MAX, SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX,
        TASK_LIMIT_MESSAGE, paths,
    };

    pub(super) use super::admin::*;
    pub(super) use super::customers::*;
    pub(super) use super::entitlements::*;
    pub(super) use super::fields::query_field;
    pub(super) use super::jsm::*;
    pub(super) use super::organizations::*;
    pub(super) use super::products::*;
    pub(super) use super::{
        BULK_ACCEPTED_STATUS, EXPERIMENTAL_MISSING_STATUS, JSM_PAGE_MAX, MAX_BODY_BYTES, R,
        SANDBOX_CLOUD_ID, bad, error, field_name, missing, no_content, not_found, num, ok, page,
        page_of, parse,
    };
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

mod admin;
mod bulk;
mod customers;
mod entitlements;
mod fields;
mod gate;
mod jsm;
mod oauth;
mod organizations;
mod products;

/// [UNCONFIRMED] status of an accepted bulk submission; third-party fakes use 202 (CONTRACT §6.3).
pub const BULK_ACCEPTED_STATUS: StatusCode = StatusCode::ACCEPTED;
/// The cloud id `/_edge/tenant_info` reports unless the sandbox is started with `--cloud-id`;
/// every cloud id path is served.
pub const SANDBOX_CLOUD_ID: &str = "sandbox";
/// Bodies above this are refused (413).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// JSM listing pages: default and maximum `limit`.
pub const JSM_PAGE_MAX: u64 = 50;
/// [UNCONFIRMED] the PreconditionFailed status for a missing experimental opt-in.
pub const EXPERIMENTAL_MISSING_STATUS: StatusCode = StatusCode::PRECONDITION_FAILED;
type R = Response;

/// The sandbox's routes: the CSM API under `jsm/csm/cloudid/{cloudId}/api/v1/`, the JSM
/// listings on the site's path and the gateway's, behind the gate; the admin API beside them.
/// Every path is `site::api::paths`'s template, the one the client fills.
pub fn router(sb: Sandbox) -> Router {
    use Entity::*;
    use paths::*;
    let r = |t: &str| format!("/{t}");
    let api = Router::new()
        // Detail-field definitions (O1–O4, C1–C4, E1–E4) and their bulk creation (OB1, CB1).
        .route(&r(ORGANIZATION_DETAILS), fields::routes(Organization))
        .route(&r(CUSTOMER_DETAILS), fields::routes(Customer))
        .route(&r(ENTITLEMENT_DETAILS), fields::routes(Entitlement))
        .route(&r(ORGANIZATION_DETAIL), fields::one_routes(Organization))
        .route(&r(CUSTOMER_DETAIL), fields::one_routes(Customer))
        .route(&r(ENTITLEMENT_DETAIL), fields::one_routes(Entitlement))
        .route(
            &r(ORGANIZATION_DEFINITIONS_BULK),
            bulk::definitions(Organization),
        )
        .route(&r(CUSTOMER_DEFINITIONS_BULK), bulk::definitions(Customer))
        // Organizations (O5–O15) and their bulk operations (OB2–OB4).
        .route(&r(ORGANIZATIONS), post(organization_create))
        .route(&r(ORGANIZATION_FETCH), post(organization_fetch))
        .route(&r(ORGANIZATION_PROFILES), post(organization_profile_create))
        .route(
            &r(ORGANIZATION_PROFILE_FETCH),
            post(organization_profile_fetch),
        )
        .route(
            &r(ORGANIZATION_PROFILE_BULK),
            post(bulk::organization_profiles),
        )
        .route(&r(ORGANIZATION_BULK), post(bulk::organizations))
        .route(
            &r(ORGANIZATION_DETAILS_BULK),
            post(bulk::organization_details),
        )
        .route(&r(ORGANIZATION_PROFILE), get(organization_profile))
        .route(
            &r(ORGANIZATION),
            get(organization_get)
                .put(organization_rename)
                .delete(organization_delete),
        )
        .route(&r(ORGANIZATION_VALUE), put(organization_set_value))
        .route(
            &r(ORGANIZATION_ENTITLEMENTS),
            get(organization_entitlements).post(organization_entitlement_create),
        )
        // Customers (C5–C17) and their bulk operations (CB2–CB4).
        .route(&r(CUSTOMERS), post(customer_create))
        .route(&r(CUSTOMER_SEARCH), post(customer_search))
        .route(&r(CUSTOMER_PROFILES), post(customer_profile_create))
        .route(&r(CUSTOMER_PROFILE_FETCH), post(customer_profile_fetch))
        .route(&r(CUSTOMER_PROFILE_BULK), post(bulk::customer_profiles))
        .route(&r(CUSTOMER_BULK), post(bulk::customers))
        .route(&r(CUSTOMER_DETAILS_BULK), post(bulk::customer_details))
        .route(&r(CUSTOMER_PROFILE), get(customer_profile))
        .route(
            &r(CUSTOMER_ACCOUNT),
            get(customer_account)
                .put(customer_account_rename)
                .delete(customer_delete),
        )
        .route(&r(CUSTOMER), get(customer_get))
        .route(&r(CUSTOMER_VALUE), put(customer_set_value))
        .route(&r(CUSTOMER_EXPERIENCES), get(customer_experiences))
        .route(
            &r(CUSTOMER_ENTITLEMENTS),
            get(customer_entitlements).post(customer_entitlement_create),
        )
        // Products (P1–P5), entitlements (E5–E8), tasks (T1).
        .route(&r(PRODUCTS), get(product_list).post(product_create))
        .route(
            &r(PRODUCT),
            get(product_get).put(product_rename).delete(product_delete),
        )
        .route(
            &r(ENTITLEMENT),
            get(entitlement_get).delete(entitlement_delete),
        )
        .route(&r(ENTITLEMENT_VALUE), put(entitlement_set_value))
        .route(&r(ENTITLEMENTS), get(entitlement_list))
        .route(&r(TASK), get(bulk::task))
        .fallback(not_found);
    let jsm = Router::new()
        .route(&r(jsm::ORGANIZATIONS), get(jsm_organizations))
        .route(&r(jsm::ORGANIZATION_USERS), get(jsm_organization_users))
        .route(&r(jsm::SERVICE_DESKS), get(jsm_service_desks))
        .route(
            &r(jsm::SERVICE_DESK_CUSTOMERS),
            get(jsm_service_desk_customers),
        )
        .fallback(not_found);
    let gated = Router::new()
        .nest(&r(CSM_BASE), api)
        // The site's own path, and the API gateway's route to it (as OAuth apps call it).
        .nest(&r(jsm::ON_SITE), jsm.clone())
        .nest(&r(jsm::VIA_GATEWAY), jsm)
        .layer(middleware::from_fn_with_state(sb.clone(), gate::gate));
    Router::new()
        .merge(gated)
        .route(&r(TENANT_INFO), get(tenant_info))
        .route("/_sandbox/state", get(admin_state))
        .route("/_sandbox/requests", get(admin_requests))
        .route(
            "/_sandbox/faults",
            get(admin_faults_get).put(admin_faults_put),
        )
        .route("/_sandbox/reset", post(admin_reset))
        .route(paths::OAUTH_TOKEN_PATH, post(oauth::token))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(sb.clone(), gate::guard))
        .with_state(sb)
}

/// The contract's error body: `{errorMessage, errors: [CODE], statusCode}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> R {
    let code = match status.as_u16() {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 => "CONFLICT",
        412 => "PRECONDITION_FAILED",
        413 => "PAYLOAD_TOO_LARGE",
        422 => "UNPROCESSABLE_ENTITY",
        429 => "TOO_MANY_REQUESTS",
        501 => "NOT_IMPLEMENTED",
        _ => "INTERNAL_ERROR",
    };
    let body = RestError {
        error_message: message.into(),
        errors: vec![code.to_string()],
        status_code: status.as_u16(),
    };
    (status, axum::Json(body)).into_response()
}

pub(crate) fn bad(msg: impl Into<String>) -> R {
    error(StatusCode::BAD_REQUEST, msg)
}

pub(crate) fn missing(what: &str, id: &str) -> R {
    error(
        StatusCode::NOT_FOUND,
        format!("{what} '{id}' was not found"),
    )
}

pub(crate) fn ok<T: Serialize>(v: T) -> R {
    axum::Json(v).into_response()
}

pub(crate) fn no_content() -> R {
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn not_found(method: Method) -> R {
    if method == Method::GET
        || method == Method::POST
        || method == Method::PUT
        || method == Method::DELETE
    {
        error(StatusCode::NOT_FOUND, "No resource at this path")
    } else {
        error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    }
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, R> {
    if body.is_empty() {
        return Err(bad("Invalid request body: a JSON body is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error(de).map_err(|e| bad(format!("Invalid request body: {e}")))
}

/// serde errors with the JSON path (`customerProfiles[3].payload.email: invalid type ...`).
pub(crate) fn serde_path_to_error<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, String> {
    let v = T::deserialize(&mut *de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// A field name from a path or query: refuse empty, overlong or control-character names before
/// they reach a lookup.
pub(crate) fn field_name(name: &str) -> Result<&str, R> {
    if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(bad("fieldName must be 1 to 255 printable characters"));
    }
    Ok(name)
}

pub(crate) fn num(q: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, R> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| {
            bad(format!(
                "{key} must be a non-negative whole number, got '{v}'"
            ))
        }),
    }
}

/// A page of `ids` (an order kept by the store), each made into what the listing shows: the
/// cost is the page's, whatever the store holds.
pub(crate) fn page_of<T>(
    q: &HashMap<String, String>,
    ids: &[String],
    show: impl Fn(&String) -> Option<T>,
) -> Result<JsmPage<T>, R> {
    let start = num(q, "start", 0)?;
    let limit = num(q, "limit", JSM_PAGE_MAX)?.clamp(1, JSM_PAGE_MAX);
    let from = (start as usize).min(ids.len());
    let to = from.saturating_add(limit as usize).min(ids.len());
    let values: Vec<T> = ids[from..to].iter().filter_map(show).collect();
    Ok(JsmPage {
        start,
        limit,
        size: values.len() as u64,
        is_last_page: to >= ids.len(),
        values,
    })
}

pub(crate) fn page<T: Clone>(q: &HashMap<String, String>, all: &[T]) -> Result<JsmPage<T>, R> {
    let start = num(q, "start", 0)?;
    let limit = num(q, "limit", JSM_PAGE_MAX)?.clamp(1, JSM_PAGE_MAX);
    let values: Vec<T> = all
        .iter()
        .skip(start as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    Ok(JsmPage {
        start,
        limit,
        size: values.len() as u64,
        is_last_page: start as usize + values.len() >= all.len(),
        values,
    })
}
