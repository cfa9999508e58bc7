//! Sandbox routes: every CSM path of CONTRACT §10.1–§10.7 under
//! `/jsm/csm/cloudid/{cloudId}/api/v1/`, the JSM listing calls export needs, the gate every API
//! request passes (request log, auth, rate limit, experimental header, faults) and the
//! `/_sandbox/` admin API. Item rules live in `store`, background work in `tasks`.

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::faults::{Faults, RequestFault, reset_header};
use super::quirks;
use super::store::{Entity, Store, same_name};
use super::tasks::{self, Job};
use super::{LoggedRequest, REQUEST_LOG_CAP, Sandbox};
use crate::site::api::model::{
    CreateDetailField, CreateEntitlement, Customer as CustomerView, CustomerAccount,
    CustomerBulkRequest, CustomerDetailsBulkRequest, CustomerProfileBulkRequest,
    CustomerProfileFetchRequest, CustomerProfileFetchResponse, CustomerProfileItem,
    CustomerProfilePayload, DetailDefinitionsBulkRequest, DetailFieldsWithConfiguration,
    DisplayName, EditDetailField, EntitlementPage, Entitlements, JsmOrganization, JsmPage, JsmUser,
    Organization as OrganizationView, OrganizationBulkRequest, OrganizationDetailsBulkRequest,
    OrganizationFetchRequest, OrganizationFetchResponse, OrganizationName,
    OrganizationProfileBulkRequest, OrganizationProfileFetchRequest,
    OrganizationProfileFetchResponse, OrganizationProfileItem, OrganizationProfilePayload,
    OrganizationRef, PaginatedProducts, Product, ProductName, ProfileOperation, RestError,
    SearchByDetailFieldRequest, SearchByDetailFieldResponse, SearchHit, TaskSubmitResponse,
    UpdateDetailField,
};
use crate::site::api::{
    ENTITLEMENT_PAGE_MAX, ENTITY_CUSTOMER, EXPERIMENTAL_HEADER, EXPERIMENTAL_VALUE,
    IDEMPOTENCY_HEADER, MAX_ACCOUNT_BULK_ITEMS, MAX_DEFINITIONS_BULK, MAX_DETAIL_OPERATIONS,
    MAX_ORGANIZATION_FETCH, MAX_PROFILE_BULK_ITEMS, MAX_PROFILE_FETCH, MISSING_IDEMPOTENCY_STATUS,
    PRODUCT_PAGE_MAX, SEARCH_PAGE_DEFAULT, SEARCH_PAGE_MAX, TASK_LIMIT_MESSAGE,
};

/// [UNCONFIRMED] status of an accepted bulk submission; third-party fakes use 202 (CONTRACT §6.3).
pub const BULK_ACCEPTED_STATUS: StatusCode = StatusCode::ACCEPTED;
/// The cloud id `/_edge/tenant_info` reports; every cloud id path is served.
pub const SANDBOX_CLOUD_ID: &str = "sandbox";
/// Bodies above this are refused (413).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// JSM listing pages: default and maximum `limit`.
pub const JSM_PAGE_MAX: u64 = 50;
/// [UNCONFIRMED] the PreconditionFailed status for a missing experimental opt-in.
pub const EXPERIMENTAL_MISSING_STATUS: StatusCode = StatusCode::PRECONDITION_FAILED;
/// Methods flagged experimental (CONTRACT §3.1): (method, path pattern under `api/v1/`).
const EXPERIMENTAL: [(&str, &str); 6] = [
    ("POST", "customer/details/bulk"),
    ("POST", "customer/bulk"),
    ("POST", "organization/profile/bulk"),
    ("GET", "tasks/*"),
    ("GET", "entitlements"),
    ("GET", "customer/*/customer-experiences"),
];

type R = Response;

pub fn router(sb: Sandbox) -> Router {
    use Entity::*;
    let api = Router::new()
        // Detail-field definitions (O1–O4, C1–C4, E1–E4) and their bulk creation (OB1, CB1).
        .route(
            "/organization/details",
            get(|s: State<Sandbox>| async move { list_fields(s, Organization) }).post(
                |s: State<Sandbox>, b: Bytes| async move { create_field(s, Organization, b) },
            ),
        )
        .route(
            "/customer/details",
            get(|s: State<Sandbox>| async move { list_fields(s, Customer) })
                .post(|s: State<Sandbox>, b: Bytes| async move { create_field(s, Customer, b) }),
        )
        .route(
            "/entitlement/details",
            get(|s: State<Sandbox>| async move { list_fields(s, Entitlement) })
                .post(|s: State<Sandbox>, b: Bytes| async move { create_field(s, Entitlement, b) }),
        )
        .route(
            "/organization/details/{field}",
            put(
                |s: State<Sandbox>, p: Path<(String, String)>, b: Bytes| async move {
                    edit_field(s, Organization, p, b)
                },
            )
            .delete(|s: State<Sandbox>, p: Path<(String, String)>| async move {
                delete_field(s, Organization, p)
            }),
        )
        .route(
            "/customer/details/{field}",
            put(
                |s: State<Sandbox>, p: Path<(String, String)>, b: Bytes| async move {
                    edit_field(s, Customer, p, b)
                },
            )
            .delete(|s: State<Sandbox>, p: Path<(String, String)>| async move {
                delete_field(s, Customer, p)
            }),
        )
        .route(
            "/entitlement/details/{field}",
            put(
                |s: State<Sandbox>, p: Path<(String, String)>, b: Bytes| async move {
                    edit_field(s, Entitlement, p, b)
                },
            )
            .delete(|s: State<Sandbox>, p: Path<(String, String)>| async move {
                delete_field(s, Entitlement, p)
            }),
        )
        .route(
            "/organization/details/definitions/bulk",
            post(
                |s: State<Sandbox>, p: Path<String>, h: HeaderMap, b: Bytes| async move {
                    definitions_bulk(s, p, h, b, Organization)
                },
            ),
        )
        .route(
            "/customer/details/definitions/bulk",
            post(
                |s: State<Sandbox>, p: Path<String>, h: HeaderMap, b: Bytes| async move {
                    definitions_bulk(s, p, h, b, Customer)
                },
            ),
        )
        // Organizations (O5–O15) and their bulk operations (OB2–OB4).
        .route("/organization", post(organization_create))
        .route("/organization/fetch", post(organization_fetch))
        .route("/organization/profile", post(organization_profile_create))
        .route(
            "/organization/profile/fetch",
            post(organization_profile_fetch),
        )
        .route(
            "/organization/profile/bulk",
            post(organization_profile_bulk),
        )
        .route("/organization/bulk", post(organization_bulk))
        .route(
            "/organization/details/bulk",
            post(organization_details_bulk),
        )
        .route("/organization/profile/{id}", get(organization_profile))
        .route(
            "/organization/{id}",
            get(organization_get)
                .put(organization_rename)
                .delete(organization_delete),
        )
        .route("/organization/{id}/details", put(organization_set_value))
        .route(
            "/organization/{id}/entitlement",
            get(organization_entitlements).post(organization_entitlement_create),
        )
        // Customers (C5–C17) and their bulk operations (CB2–CB4).
        .route("/customer", post(customer_create))
        .route("/customer/search-by-detail-field", post(customer_search))
        .route("/customer/profile", post(customer_profile_create))
        .route("/customer/profile/fetch", post(customer_profile_fetch))
        .route("/customer/profile/bulk", post(customer_profile_bulk))
        .route("/customer/bulk", post(customer_bulk))
        .route("/customer/details/bulk", post(customer_details_bulk))
        .route("/customer/profile/{id}", get(customer_profile))
        .route(
            "/customer/account/{id}",
            get(customer_account)
                .put(customer_account_rename)
                .delete(customer_delete),
        )
        .route("/customer/{id}", get(customer_get))
        .route("/customer/{id}/details", put(customer_set_value))
        .route(
            "/customer/{id}/customer-experiences",
            get(customer_experiences),
        )
        .route(
            "/customer/{id}/entitlement",
            get(customer_entitlements).post(customer_entitlement_create),
        )
        // Products (P1–P5), entitlements (E5–E8), tasks (T1).
        .route("/product", get(product_list).post(product_create))
        .route(
            "/product/{id}",
            get(product_get).put(product_rename).delete(product_delete),
        )
        .route(
            "/entitlement/{id}",
            get(entitlement_get).delete(entitlement_delete),
        )
        .route("/entitlement/{id}/details", put(entitlement_set_value))
        .route("/entitlements", get(entitlement_list))
        .route("/tasks/{task_id}", get(task))
        .fallback(not_found);
    let jsm = Router::new()
        .route("/organization", get(jsm_organizations))
        .route("/organization/{id}/user", get(jsm_organization_users))
        .route(
            "/servicedesk/{id}/customer",
            get(jsm_service_desk_customers),
        )
        .fallback(not_found);
    let gated = Router::new()
        .nest("/jsm/csm/cloudid/{cloud_id}/api/v1", api)
        // The site's own path, and the API gateway's route to it (as OAuth apps call it).
        .nest("/rest/servicedeskapi", jsm.clone())
        .nest("/ex/jira/{cloud_id}/rest/servicedeskapi", jsm)
        .layer(middleware::from_fn_with_state(sb.clone(), gate));
    Router::new()
        .merge(gated)
        .route("/_edge/tenant_info", get(tenant_info))
        .route("/_sandbox/state", get(admin_state))
        .route("/_sandbox/requests", get(admin_requests))
        .route(
            "/_sandbox/faults",
            get(admin_faults_get).put(admin_faults_put),
        )
        .route("/_sandbox/reset", post(admin_reset))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(sb)
}

// ---------------------------------------------------------------------------------------------
// Responses

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

fn bad(msg: impl Into<String>) -> R {
    error(StatusCode::BAD_REQUEST, msg)
}

fn missing(what: &str, id: &str) -> R {
    error(
        StatusCode::NOT_FOUND,
        format!("{what} '{id}' was not found"),
    )
}

fn ok<T: Serialize>(v: T) -> R {
    axum::Json(v).into_response()
}

fn no_content() -> R {
    StatusCode::NO_CONTENT.into_response()
}

async fn not_found(method: Method) -> R {
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

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, R> {
    if body.is_empty() {
        return Err(bad("Invalid request body: a JSON body is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error(de).map_err(|e| bad(format!("Invalid request body: {e}")))
}

/// serde errors with the JSON path (`customerProfiles[3].payload.email: invalid type ...`).
fn serde_path_to_error<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, String> {
    let v = T::deserialize(&mut *de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// A field name from a path or query: refuse empty, overlong or control-character names before
/// they reach a lookup.
fn field_name(name: &str) -> Result<&str, R> {
    if name.trim().is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(bad("fieldName must be 1 to 255 printable characters"));
    }
    Ok(name)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The gate every API request passes: log, auth, rate limit, experimental header, faults.

async fn gate(State(sb): State<Sandbox>, req: Request, next: Next) -> R {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let key = req
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (resp, fault) = gate_inner(&sb, req, next).await;
    let quirks = sb.faults.lock().expect("faults lock").faults.quirks.clone();
    let resp = if quirks::rewrites(&quirks) && resp.status().is_success() {
        with_quirks(resp, &quirks, &path).await
    } else {
        resp
    };
    let mut log = sb.requests.lock().expect("requests lock");
    if log.len() >= REQUEST_LOG_CAP {
        log.pop_front();
    }
    log.push_back(LoggedRequest {
        method,
        path,
        idempotency_key: key,
        status: resp.status().as_u16(),
        fault,
        time: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    });
    resp
}

/// A JSON answer rewritten as the quirks say; anything else as it is.
async fn with_quirks(resp: R, quirks: &[quirks::Quirk], path: &str) -> R {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * MAX_BODY_BYTES).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "answer too large to rewrite",
        );
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    quirks::rewrite(quirks, path, &mut v);
    let out = serde_json::to_vec(&v).expect("json serializes");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

async fn gate_inner(sb: &Sandbox, req: Request, next: Next) -> (R, Option<String>) {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !credentials_match(&auth, &sb.config.token) {
        let r = error(
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        );
        return (r, None);
    }
    if let Some(r) = rate_limit(sb, &auth) {
        return (r, Some("rate-limited".into()));
    }
    if sb.config.require_experimental && is_experimental(req.method(), req.uri().path()) {
        let opted_in = req
            .headers()
            .get(EXPERIMENTAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(EXPERIMENTAL_VALUE));
        if !opted_in {
            let r = error(
                EXPERIMENTAL_MISSING_STATUS,
                format!(
                    "This method is experimental: send the header {EXPERIMENTAL_HEADER}: {EXPERIMENTAL_VALUE} to use it"
                ),
            );
            return (r, None);
        }
    }
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        // Read (a bounded amount of) the body first: answering while the client is still
        // writing makes it see a broken pipe instead of the 413.
        let _ = axum::body::to_bytes(req.into_body(), 8 * MAX_BODY_BYTES).await;
        let r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {MAX_BODY_BYTES} bytes"),
        );
        return (r, None);
    }
    let bulk = req.method() == axum::http::Method::POST && req.uri().path().ends_with("/bulk");
    let (fault, slow) = {
        let mut f = sb.faults.lock().expect("faults lock");
        if f.faults.bulk_only && !bulk {
            (RequestFault::None, None)
        } else {
            f.request()
        }
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    let slow_note = slow.map(|d| format!("slow {}ms", d.as_millis()));
    match fault {
        RequestFault::None => {
            let r = next.run(req).await;
            // The router's own 405 (a known path, another method) has no body; give it the
            // contract's error shape, as for `GET api/v1/organization` (CONTRACT §1).
            if r.status() == StatusCode::METHOD_NOT_ALLOWED {
                return (
                    error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "Method not allowed on this resource",
                    ),
                    slow_note,
                );
            }
            (r, slow_note)
        }
        RequestFault::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).expect("valid status");
            let mut r = error(code, "Injected server error (sandbox fault)");
            if retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            (
                r,
                Some(format!(
                    "{status}{}",
                    if retry_after { " with Retry-After" } else { "" }
                )),
            )
        }
        RequestFault::DropBefore => (dropped(), Some("dropped before applying".into())),
        RequestFault::DropAfter => {
            let applied = next.run(req).await;
            let note = format!(
                "dropped after applying (status {})",
                applied.status().as_u16()
            );
            // Read the answer to its end so the work is complete, then cut the connection.
            let _ = axum::body::to_bytes(applied.into_body(), usize::MAX).await;
            (dropped(), Some(note))
        }
    }
}

/// A response whose body fails at once: the client sees the connection break.
fn dropped() -> R {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection dropped",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from_stream(stream))
        .expect("static response")
}

fn rate_limit(sb: &Sandbox, credential: &str) -> Option<R> {
    let mut guard = sb.rate.lock().expect("rate lock");
    let rl = guard.as_mut()?;
    match rl.take(credential, Instant::now()) {
        Ok(remaining) => {
            // Headers on successful answers are not needed by clients; the 429 carries them.
            let _ = remaining;
            None
        }
        Err(limited) => {
            let mut r = if sb.config.html_429 {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>Rate limited. Please try again later.</body></html>",
                )
                    .into_response()
            } else {
                error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
            };
            let h = r.headers_mut();
            if !rl.omit_retry_after {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(limited.retry_after_secs),
                );
            }
            h.insert("X-RateLimit-Limit", HeaderValue::from(limited.limit));
            h.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
            if let Ok(v) = HeaderValue::from_str(&reset_header(limited.retry_after_secs)) {
                h.insert("X-RateLimit-Reset", v);
            }
            h.insert(
                "RateLimit-Reason",
                HeaderValue::from_static("jira-burst-based"),
            );
            Some(r)
        }
    }
}

fn is_experimental(method: &Method, path: &str) -> bool {
    let Some(idx) = path.find("/api/v1/") else {
        return false;
    };
    let rest: Vec<&str> = path[idx + "/api/v1/".len()..].split('/').collect();
    EXPERIMENTAL.iter().any(|(m, pattern)| {
        let parts: Vec<&str> = pattern.split('/').collect();
        *m == method.as_str()
            && parts.len() == rest.len()
            && parts.iter().zip(&rest).all(|(p, r)| *p == "*" || p == r)
    })
}

/// Bearer TOKEN, or Basic with any email and TOKEN as the password.
fn credentials_match(value: &str, token: &str) -> bool {
    if let Some(t) = value.strip_prefix("Bearer ") {
        return t.trim() == token;
    }
    if let Some(b) = value.strip_prefix("Basic ") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(raw) else {
            return false;
        };
        return text
            .split_once(':')
            .is_some_and(|(email, pass)| !email.is_empty() && pass == token);
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Bulk submission: one path for every bulk endpoint.

fn submit(sb: &Sandbox, cloud_id: &str, headers: &HeaderMap, canonical: String, job: Job) -> R {
    let Some(key) = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return error(
            StatusCode::from_u16(MISSING_IDEMPOTENCY_STATUS).expect("valid status"),
            format!("The {IDEMPOTENCY_HEADER} header is required for bulk operations"),
        );
    };
    if key.len() > 255 {
        return bad(format!(
            "{IDEMPOTENCY_HEADER} must be at most 255 characters"
        ));
    }
    // A request-level refusal of the whole batch for one item (`--fault-refuse-item`), as a
    // real site refuses an envelope it finds invalid.
    let refuse = sb
        .faults
        .lock()
        .expect("faults lock")
        .faults
        .refuse_item
        .clone();
    if let Some(text) = refuse.filter(|t| !t.is_empty())
        && let Some(i) = job.item_json().iter().position(|j| j.contains(&text))
    {
        return bad(format!(
            "item {i} of the request is invalid: it contains '{text}' (sandbox fault)"
        ));
    }
    let (task_fault, jitter, quirks) = {
        let mut f = sb.faults.lock().expect("faults lock");
        (f.task(), f.draw(), f.faults.quirks.clone())
    };
    let c = &sb.config;
    let outcome = sb.with_store(|store| {
        tasks::expire(store, c.task_retention, c.stale_task);
        if c.slots_before_keys && store.unfinished_tasks(cloud_id) >= c.max_tasks {
            return Err(bad(TASK_LIMIT_MESSAGE));
        }
        if let Some((seen_body, task_id)) = store.keys.get(key) {
            if *seen_body == canonical {
                return Ok((task_id.clone(), false));
            }
            return Err(error(
                StatusCode::from_u16(c.idempotency_conflict_status)
                    .unwrap_or(StatusCode::BAD_REQUEST),
                format!(
                    "{IDEMPOTENCY_HEADER} '{key}' was already used with a different request body"
                ),
            ));
        }
        // The slot refusal is not remembered under the key: a later retry may succeed.
        if store.unfinished_tasks(cloud_id) >= c.max_tasks {
            return Err(bad(TASK_LIMIT_MESSAGE));
        }
        let first = if quirks.contains(&quirks::Quirk::UnknownStatus) {
            crate::site::api::model::TaskStatus::Other(quirks::UNKNOWN_STATUS.into())
        } else {
            crate::site::api::model::TaskStatus::NotStarted
        };
        Ok((
            tasks::create(store, cloud_id, key, canonical, &job, first),
            true,
        ))
    });
    match outcome {
        Err(r) => r,
        Ok((task_id, fresh)) => {
            if fresh {
                tasks::run(sb.clone(), task_id.clone(), job, task_fault, jitter);
            }
            (
                BULK_ACCEPTED_STATUS,
                axum::Json(TaskSubmitResponse {
                    status_url: format!("/api/v1/tasks/{task_id}"),
                    id: task_id,
                }),
            )
                .into_response()
        }
    }
}

/// Parses a bulk body and returns it with its canonical form (serde_json maps are ordered).
fn parse_bulk<T: DeserializeOwned + Serialize>(body: &[u8]) -> Result<(T, String), R> {
    let v: T = parse(body)?;
    let canonical = serde_json::to_value(&v)
        .expect("request serializes")
        .to_string();
    Ok((v, canonical))
}

fn check_count(what: &str, n: usize, max: usize) -> Result<(), R> {
    if n == 0 || n > max {
        return Err(bad(format!(
            "{what} must contain between 1 and {max} items, got {n}"
        )));
    }
    Ok(())
}

async fn customer_profile_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<CustomerProfileBulkRequest>(&body));
    tri!(check_count(
        "customerProfiles",
        req.customer_profiles.len(),
        MAX_PROFILE_BULK_ITEMS
    ));
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::CustomerProfiles(req.customer_profiles),
    )
}

async fn customer_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<CustomerBulkRequest>(&body));
    tri!(check_count(
        "customers",
        req.customers.len(),
        MAX_ACCOUNT_BULK_ITEMS
    ));
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::CustomerAccounts(req.customers),
    )
}

async fn customer_details_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<CustomerDetailsBulkRequest>(&body));
    let ops: usize = req.customers.iter().map(|c| c.operations.len()).sum();
    tri!(check_count(
        "customers",
        req.customers.len(),
        MAX_DETAIL_OPERATIONS
    ));
    tri!(check_count(
        "detail-field operations",
        ops,
        MAX_DETAIL_OPERATIONS
    ));
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::CustomerDetails(req.customers),
    )
}

async fn organization_profile_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<OrganizationProfileBulkRequest>(&body));
    tri!(check_count(
        "organizationProfiles",
        req.organization_profiles.len(),
        MAX_PROFILE_BULK_ITEMS
    ));
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::OrganizationProfiles(req.organization_profiles),
    )
}

async fn organization_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<OrganizationBulkRequest>(&body));
    tri!(check_count(
        "organizations",
        req.organizations.len(),
        MAX_ACCOUNT_BULK_ITEMS
    ));
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::OrganizationAccounts(req.organizations),
    )
}

async fn organization_details_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<OrganizationDetailsBulkRequest>(&body));
    let ops: usize = req.organizations.iter().map(|c| c.operations.len()).sum();
    tri!(check_count(
        "organizations",
        req.organizations.len(),
        MAX_DETAIL_OPERATIONS
    ));
    tri!(check_count(
        "detail-field operations",
        ops,
        MAX_DETAIL_OPERATIONS
    ));
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::OrganizationDetails(req.organizations),
    )
}

fn definitions_bulk(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
    entity: Entity,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<DetailDefinitionsBulkRequest>(&body));
    tri!(check_count(
        "detailFields",
        req.detail_fields.len(),
        MAX_DEFINITIONS_BULK
    ));
    // Envelope rule: any clash refuses the whole request at once, nothing is created.
    if let Err(e) = sb
        .store
        .lock()
        .expect("store lock")
        .check_new_fields(entity, &req.detail_fields)
    {
        return bad(e);
    }
    submit(
        &sb,
        &cloud,
        &h,
        canonical,
        Job::Definitions(entity, req.detail_fields),
    )
}

// ---------------------------------------------------------------------------------------------
// Detail-field definitions.

fn list_fields(State(sb): State<Sandbox>, entity: Entity) -> R {
    let store = sb.store.lock().expect("store lock");
    ok(DetailFieldsWithConfiguration {
        results: store
            .field_list(entity)
            .iter()
            .map(|f| f.def.clone())
            .collect(),
    })
}

fn create_field(State(sb): State<Sandbox>, entity: Entity, body: Bytes) -> R {
    let req: CreateDetailField = tri!(parse(&body));
    sb.with_store(
        |store| match store.check_new_fields(entity, std::slice::from_ref(&req)) {
            Err(e) => bad(e),
            Ok(()) => {
                store.add_field(entity, req.name.clone(), req.field_type.clone());
                ok(CreateDetailField {
                    name: req.name.trim().to_string(),
                    field_type: req.field_type,
                })
            }
        },
    )
}

fn edit_field(
    State(sb): State<Sandbox>,
    entity: Entity,
    Path((_, name)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let name = tri!(field_name(&name));
    let req: EditDetailField = tri!(parse(&body));
    sb.with_store(|store| {
        if store.field(entity, name).is_none() {
            return missing("Detail field", name);
        }
        match store.edit_field(entity, name, &req.name, req.options) {
            Ok(f) => ok(CreateDetailField {
                name: f.def.name,
                field_type: f.def.field_type,
            }),
            Err(e) => bad(e),
        }
    })
}

fn delete_field(
    State(sb): State<Sandbox>,
    entity: Entity,
    Path((_, name)): Path<(String, String)>,
) -> R {
    let name = tri!(field_name(&name));
    sb.with_store(|store| {
        if store.delete_field(entity, name) {
            no_content()
        } else {
            missing("Detail field", name)
        }
    })
}

fn query_field(q: &HashMap<String, String>) -> Result<String, R> {
    let name = q
        .get("fieldName")
        .ok_or_else(|| bad("The fieldName query parameter is required"))?;
    field_name(name).map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// Organizations.

async fn organization_get(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.organizations.get(&id) {
        Some(o) => ok(OrganizationView {
            id: o.id.clone(),
            name: o.name.clone(),
            details: store.detail_fields(Entity::Organization, &o.details),
        }),
        None => missing("Organization", &id),
    }
}

async fn organization_rename(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: OrganizationName = tri!(parse(&body));
    if req.name.trim().is_empty() {
        return bad("name must not be empty");
    }
    sb.with_store(|store| {
        let Some(mut o) = store.organizations.get(&id).cloned() else {
            return missing("Organization", &id);
        };
        if store
            .organization_by_name(&req.name)
            .is_some_and(|other| other.id != id)
        {
            return bad(format!(
                "An organization named '{}' already exists",
                req.name.trim()
            ));
        }
        o.name = req.name.trim().to_string();
        store.put_organization(o.clone());
        ok(OrganizationRef {
            id: o.id,
            name: o.name,
        })
    })
}

async fn organization_delete(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    sb.with_store(|store| match store.remove_organization(&id) {
        Some(_) => no_content(),
        None => missing("Organization", &id),
    })
}

async fn organization_set_value(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> R {
    let name = tri!(query_field(&q));
    let req: UpdateDetailField = tri!(parse(&body));
    sb.with_store(|store| {
        let Some(mut o) = store.organizations.get(&id).cloned() else {
            return missing("Organization", &id);
        };
        match store.set_value(Entity::Organization, &mut o.details, &name, req.values) {
            Ok(f) => {
                store.put_organization(o);
                ok(f)
            }
            Err(e) => bad(e),
        }
    })
}

async fn organization_entitlements(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    if !store.organizations.contains_key(&id) {
        return missing("Organization", &id);
    }
    ok(Entitlements {
        results: store.entitlements_of(
            super::store::ENTITY_ORGANIZATION,
            &id,
            q.get("product").map(String::as_str),
            false,
        ),
    })
}

async fn organization_entitlement_create(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: CreateEntitlement = tri!(parse(&body));
    sb.with_store(|store| {
        if !store.organizations.contains_key(&id) {
            return missing("Organization", &id);
        }
        create_entitlement(store, super::store::ENTITY_ORGANIZATION, &id, req)
    })
}

fn create_entitlement(store: &mut Store, entity_type: &str, id: &str, req: CreateEntitlement) -> R {
    if !store.products.contains_key(&req.product_id) {
        return bad(format!("Product '{}' was not found", req.product_id));
    }
    let details = match store.check_details(Entity::Entitlement, &req.details) {
        Ok(d) => d,
        Err((unknown, invalid)) => {
            return bad(format!(
                "Invalid entitlement details: unknown fields [{}], invalid values [{}]",
                unknown.join(", "),
                invalid.join(", ")
            ));
        }
    };
    let e = store.new_entitlement(entity_type, id, &req.product_id, details);
    ok(store.entitlement_view(&e))
}

async fn organization_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: OrganizationName = tri!(parse(&body));
    if req.name.trim().is_empty() {
        return bad("name must not be empty");
    }
    sb.with_store(|store| {
        if store.organization_by_name(&req.name).is_some() {
            return bad(format!(
                "An organization named '{}' already exists",
                req.name.trim()
            ));
        }
        let o = store.new_organization(&req.name);
        ok(OrganizationRef {
            id: o.id,
            name: o.name,
        })
    })
}

async fn organization_fetch(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: OrganizationFetchRequest = tri!(parse(&body));
    let n = req.organization_ids.len() + req.organization_names.len();
    if n > MAX_ORGANIZATION_FETCH {
        return bad(format!(
            "At most {MAX_ORGANIZATION_FETCH} organizations per request, got {n}"
        ));
    }
    let store = sb.store.lock().expect("store lock");
    let mut results: Vec<OrganizationRef> = Vec::new();
    let by_id = req
        .organization_ids
        .iter()
        .filter_map(|id| store.organizations.get(id));
    let by_name = req
        .organization_names
        .iter()
        .filter_map(|n| store.organization_by_name(n));
    for o in by_id.chain(by_name) {
        if !results.iter().any(|r| r.id == o.id) {
            results.push(OrganizationRef {
                id: o.id.clone(),
                name: o.name.clone(),
            });
        }
    }
    ok(OrganizationFetchResponse { results })
}

async fn organization_profile(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.organizations.get(&id) {
        Some(o) => ok(store.organization_profile(o)),
        None => missing("Organization", &id),
    }
}

async fn organization_profile_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let payload: OrganizationProfilePayload = tri!(parse(&body));
    let name = payload.name.clone().unwrap_or_default();
    sb.with_store(|store| {
        let item = OrganizationProfileItem {
            operation_type: ProfileOperation::Create,
            payload,
        };
        match store.apply_organization_profile(&item) {
            Err(f) => bad(format!(
                "{} ({}: {})",
                f.error,
                f.operated_on,
                f.operated_on_ids.join(", ")
            )),
            Ok(()) => {
                let o = store
                    .organization_by_name(&name)
                    .cloned()
                    .expect("just created");
                ok(store.organization_profile(&o))
            }
        }
    })
}

async fn organization_profile_fetch(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: OrganizationProfileFetchRequest = tri!(parse(&body));
    if req.organization_ids.len() > MAX_PROFILE_FETCH {
        return bad(format!(
            "At most {MAX_PROFILE_FETCH} organizationIds per request, got {}",
            req.organization_ids.len()
        ));
    }
    let store = sb.store.lock().expect("store lock");
    ok(OrganizationProfileFetchResponse {
        results: req
            .organization_ids
            .iter()
            .filter_map(|id| store.organizations.get(id))
            .map(|o| store.organization_profile(o))
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Customers.

async fn customer_get(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.customers.get(&id) {
        Some(c) => {
            let p = store.profile(c);
            ok(CustomerView {
                id: c.id.clone(),
                name: c.display_name.clone(),
                details: store.detail_fields(Entity::Customer, &c.details),
                organizations: p.organizations,
            })
        }
        None => missing("Customer", &id),
    }
}

async fn customer_set_value(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> R {
    let name = tri!(query_field(&q));
    let req: UpdateDetailField = tri!(parse(&body));
    sb.with_store(|store| {
        let Some(mut c) = store.customers.get(&id).cloned() else {
            return missing("Customer", &id);
        };
        match store.set_value(Entity::Customer, &mut c.details, &name, req.values) {
            Ok(f) => {
                store.put_customer(c);
                ok(f)
            }
            Err(e) => bad(e),
        }
    })
}

async fn customer_experiences(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    if !store.customers.contains_key(&id) {
        return missing("Customer", &id);
    }
    // [UNCONFIRMED] shape; the sandbox has no help centers.
    ok(json!({ "results": [] }))
}

async fn customer_entitlements(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    if !store.customers.contains_key(&id) {
        return missing("Customer", &id);
    }
    ok(Entitlements {
        results: store.entitlements_of(
            ENTITY_CUSTOMER,
            &id,
            q.get("product").map(String::as_str),
            true,
        ),
    })
}

async fn customer_entitlement_create(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: CreateEntitlement = tri!(parse(&body));
    sb.with_store(|store| {
        if !store.customers.contains_key(&id) {
            return missing("Customer", &id);
        }
        create_entitlement(store, ENTITY_CUSTOMER, &id, req)
    })
}

async fn customer_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: CustomerAccount = tri!(parse(&body));
    let payload = CustomerProfilePayload {
        email: Some(req.email.clone()),
        display_name: Some(req.display_name.clone()),
        ..Default::default()
    };
    create_customer_profile(&sb, payload, |store, c| {
        let c = store.customers.get(c).expect("just created");
        ok(CustomerAccount {
            id: Some(c.id.clone()),
            email: c.email.clone(),
            display_name: c.display_name.clone(),
        })
    })
}

fn create_customer_profile(
    sb: &Sandbox,
    payload: CustomerProfilePayload,
    answer: impl FnOnce(&Store, &str) -> R,
) -> R {
    if payload.email.is_none() {
        return bad("email is required to create a customer");
    }
    let email = payload.email.clone().unwrap_or_default();
    sb.with_store(|store| {
        let item = CustomerProfileItem {
            operation_type: ProfileOperation::Create,
            payload,
        };
        match store.apply_customer_profile(&item) {
            Err(f) => bad(format!(
                "{} ({}: {})",
                f.error,
                f.operated_on,
                f.operated_on_ids.join(", ")
            )),
            Ok(()) => {
                let id = store
                    .customer_by_email(&email)
                    .expect("just created")
                    .id
                    .clone();
                answer(store, &id)
            }
        }
    })
}

async fn customer_account(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.customers.get(&id) {
        Some(c) => ok(CustomerAccount {
            id: Some(c.id.clone()),
            email: c.email.clone(),
            display_name: c.display_name.clone(),
        }),
        None => missing("Customer account", &id),
    }
}

async fn customer_account_rename(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: DisplayName = tri!(parse(&body));
    if req.display_name.trim().is_empty() {
        return bad("displayName must not be empty");
    }
    sb.with_store(|store| {
        let Some(mut c) = store.customers.get(&id).cloned() else {
            return missing("Customer account", &id);
        };
        c.display_name = req.display_name.trim().to_string();
        store.put_customer(c.clone());
        ok(CustomerAccount {
            id: Some(c.id),
            email: c.email,
            display_name: c.display_name,
        })
    })
}

async fn customer_delete(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    sb.with_store(|store| match store.remove_customer(&id) {
        Some(_) => no_content(),
        None => missing("Customer account", &id),
    })
}

async fn customer_profile(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.customers.get(&id) {
        Some(c) => ok(store.profile(c)),
        None => missing("Customer", &id),
    }
}

async fn customer_profile_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let payload: CustomerProfilePayload = tri!(parse(&body));
    create_customer_profile(&sb, payload, |store, id| {
        ok(store.profile(&store.customers[id]))
    })
}

async fn customer_profile_fetch(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: CustomerProfileFetchRequest = tri!(parse(&body));
    if req.customer_ids.len() > MAX_PROFILE_FETCH {
        return bad(format!(
            "At most {MAX_PROFILE_FETCH} customerIds per request, got {}",
            req.customer_ids.len()
        ));
    }
    let store = sb.store.lock().expect("store lock");
    // Unknown ids are silently left out, as documented.
    ok(CustomerProfileFetchResponse {
        results: req
            .customer_ids
            .iter()
            .filter_map(|id| store.customers.get(id))
            // Described as "detail fields and any organizations" (DELTAS A7): no entitlements.
            .map(|c| crate::site::api::model::CustomerProfile {
                entitlements: None,
                ..store.profile(c)
            })
            .collect(),
    })
}

async fn customer_search(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> R {
    let req: SearchByDetailFieldRequest = tri!(parse(&body));
    if req.detail_fields.is_empty() {
        return bad("detailFields must name at least one field and value");
    }
    let page = tri!(num(&q, "page", 0));
    let max =
        tri!(num(&q, "maxResults", SEARCH_PAGE_DEFAULT as u64)).clamp(1, SEARCH_PAGE_MAX as u64);
    let store = sb.store.lock().expect("store lock");
    for d in &req.detail_fields {
        if store.field(Entity::Customer, &d.name).is_none() {
            return bad(format!("No customer detail field named '{}'", d.name));
        }
    }
    // [UNCONFIRMED] matching: every given field must hold the value (case-insensitive, exact).
    let hits: Vec<SearchHit> = store
        .customers
        .values()
        .filter(|c| {
            req.detail_fields.iter().all(|q| {
                c.details
                    .iter()
                    .any(|d| d.name == q.name && d.values.iter().any(|v| same_name(v, &q.value)))
            })
        })
        // E-mail addresses need Administer Jira (CONTRACT C7); the documented shape has none.
        .map(|c| SearchHit {
            id: c.id.clone(),
            name: c.display_name.clone(),
            email: None,
        })
        .collect();
    let start = (page * max) as usize;
    let results: Vec<SearchHit> = hits
        .iter()
        .skip(start)
        .take(max as usize)
        .cloned()
        .collect();
    ok(SearchByDetailFieldResponse {
        is_last: start + results.len() >= hits.len(),
        results,
        page,
        max_results: max,
    })
}

fn num(q: &HashMap<String, String>, key: &str, default: u64) -> Result<u64, R> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.parse::<u64>().map_err(|_| {
            bad(format!(
                "{key} must be a non-negative whole number, got '{v}'"
            ))
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Products.

async fn product_list(State(sb): State<Sandbox>, Query(q): Query<HashMap<String, String>>) -> R {
    // Values below 1 or above 100 fall back to 100 (CONTRACT P1).
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|l| (1..=PRODUCT_PAGE_MAX as i64).contains(l))
        .unwrap_or(PRODUCT_PAGE_MAX as i64) as usize;
    let start = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match decode_cursor(c) {
            Some(n) => n,
            None => return bad(format!("Invalid cursor '{c}'")),
        },
    };
    let store = sb.store.lock().expect("store lock");
    let mut all: Vec<&Product> = store.products.values().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let results: Vec<Product> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|p| (*p).clone())
        .collect();
    let next = start + results.len();
    ok(PaginatedProducts {
        next_page_cursor: (next < all.len()).then(|| encode_cursor(next)),
        results,
    })
}

fn encode_cursor(n: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{n}"))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

async fn product_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: ProductName = tri!(parse(&body));
    if req.name.trim().is_empty() {
        return bad("name must not be empty");
    }
    sb.with_store(|store| {
        let p = Product {
            id: uuid::Uuid::new_v4().to_string(),
            name: req.name.trim().to_string(),
        };
        store.put_product(p.clone());
        ok(p)
    })
}

async fn product_get(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    match sb.store.lock().expect("store lock").products.get(&id) {
        Some(p) => ok(p.clone()),
        None => missing("Product", &id),
    }
}

async fn product_rename(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: ProductName = tri!(parse(&body));
    if req.name.trim().is_empty() {
        return bad("name must not be empty");
    }
    sb.with_store(|store| {
        let Some(mut p) = store.products.get(&id).cloned() else {
            return missing("Product", &id);
        };
        p.name = req.name.trim().to_string();
        store.put_product(p.clone());
        ok(p)
    })
}

async fn product_delete(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    sb.with_store(|store| match store.remove_product(&id) {
        Some(_) => no_content(),
        None => missing("Product", &id),
    })
}

// ---------------------------------------------------------------------------------------------
// Entitlements and tasks.

async fn entitlement_get(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.entitlements.get(&id) {
        Some(e) => ok(store.entitlement_view(e)),
        None => missing("Entitlement", &id),
    }
}

async fn entitlement_delete(State(sb): State<Sandbox>, Path((_, id)): Path<(String, String)>) -> R {
    sb.with_store(|store| match store.remove_entitlement(&id) {
        Some(_) => no_content(),
        None => missing("Entitlement", &id),
    })
}

async fn entitlement_set_value(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> R {
    let name = tri!(query_field(&q));
    let req: UpdateDetailField = tri!(parse(&body));
    sb.with_store(|store| {
        let Some(mut e) = store.entitlements.get(&id).cloned() else {
            return missing("Entitlement", &id);
        };
        match store.set_value(Entity::Entitlement, &mut e.details, &name, req.values) {
            Ok(f) => {
                store.put_entitlement(e);
                ok(f)
            }
            Err(e) => bad(e),
        }
    })
}

async fn entitlement_list(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let Some(entity_type) = q.get("entityType").map(|t| t.to_uppercase()) else {
        return bad("entityType is required (CUSTOMER or ORGANIZATION)");
    };
    if entity_type != ENTITY_CUSTOMER && entity_type != super::store::ENTITY_ORGANIZATION {
        return bad(format!(
            "entityType must be CUSTOMER or ORGANIZATION, got '{entity_type}'"
        ));
    }
    let Some(id) = q.get("entityId").filter(|s| !s.is_empty()) else {
        return bad("entityId is required");
    };
    let start = tri!(num(&q, "start", 0));
    let limit =
        tri!(num(&q, "limit", ENTITLEMENT_PAGE_MAX as u64)).clamp(1, ENTITLEMENT_PAGE_MAX as u64);
    let store = sb.store.lock().expect("store lock");
    let exists = if entity_type == ENTITY_CUSTOMER {
        store.customers.contains_key(id)
    } else {
        store.organizations.contains_key(id)
    };
    if !exists {
        return missing(&entity_type.to_lowercase(), id);
    }
    let all = store.entitlements_of(
        &entity_type,
        id,
        q.get("productId").map(String::as_str),
        false,
    );
    let results: Vec<_> = all
        .iter()
        .skip(start as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    ok(EntitlementPage {
        is_last_page: start as usize + results.len() >= all.len(),
        results,
        start,
        limit,
    })
}

async fn task(State(sb): State<Sandbox>, Path((_, task_id)): Path<(String, String)>) -> R {
    let c = &sb.config;
    sb.with_store(|store| {
        tasks::expire(store, c.task_retention, c.stale_task);
        match store.tasks.get(&task_id) {
            Some(t) => ok(t.status.clone()),
            None => missing("Task", &task_id),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// JSM listing calls (outside CSM; export uses them to discover ids).

fn page<T: Clone>(q: &HashMap<String, String>, all: &[T]) -> Result<JsmPage<T>, R> {
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

async fn jsm_organizations(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    let mut all: Vec<JsmOrganization> = store
        .organizations
        .values()
        .map(|o| JsmOrganization {
            id: o.id.clone(),
            name: o.name.clone(),
        })
        .collect();
    all.sort_by(|a, b| super::store::id_order(&a.id, &b.id));
    ok(tri!(page(&q, &all)))
}

fn jsm_user(c: &super::store::Customer) -> JsmUser {
    JsmUser {
        account_id: c.id.clone(),
        email_address: Some(c.email.clone()),
        display_name: c.display_name.clone(),
    }
}

async fn jsm_organization_users(
    State(sb): State<Sandbox>,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    // Also served under the gateway's /ex/jira/{cloud_id}: the id is the named one.
    let id = params.get("id").cloned().unwrap_or_default();
    let store = sb.store.lock().expect("store lock");
    if !store.organizations.contains_key(&id) {
        return missing("Organization", &id);
    }
    let all: Vec<JsmUser> = store
        .customers
        .values()
        .filter(|c| c.organization_ids.contains(&id))
        .map(jsm_user)
        .collect();
    ok(tri!(page(&q, &all)))
}

/// [Sandbox simplification] every customer belongs to every service project.
async fn jsm_service_desk_customers(
    State(sb): State<Sandbox>,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    // Also served under the gateway's /ex/jira/{cloud_id}: the id is the named one.
    let id = params.get("id").cloned().unwrap_or_default();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return missing("Service desk", &id);
    }
    let store = sb.store.lock().expect("store lock");
    let all: Vec<JsmUser> = store.customers.values().map(jsm_user).collect();
    ok(tri!(page(&q, &all)))
}

// ---------------------------------------------------------------------------------------------
// Admin API.

/// The site's cloud id lookup (CONTRACT §2.3); the sandbox answers for any cloud id.
async fn tenant_info() -> R {
    ok(json!({ "cloudId": SANDBOX_CLOUD_ID }))
}

async fn admin_state(State(sb): State<Sandbox>) -> R {
    let store = sb.store.lock().expect("store lock");
    let fields = |e: Entity| {
        store
            .field_list(e)
            .iter()
            .map(|f| f.def.clone())
            .collect::<Vec<_>>()
    };
    ok(json!({
        "customerDetailFields": fields(Entity::Customer),
        "organizationDetailFields": fields(Entity::Organization),
        "entitlementDetailFields": fields(Entity::Entitlement),
        "organizations": store.organizations.values().collect::<Vec<_>>(),
        "customers": store.customers.values().collect::<Vec<_>>(),
        "products": store.products.values().collect::<Vec<_>>(),
        "entitlements": store.entitlements.values().collect::<Vec<_>>(),
        "tasks": store.tasks.values().collect::<Vec<_>>(),
    }))
}

async fn admin_requests(State(sb): State<Sandbox>) -> R {
    let log = sb.requests.lock().expect("requests lock");
    ok(json!({ "requests": log.iter().collect::<Vec<_>>() }))
}

async fn admin_faults_get(State(sb): State<Sandbox>) -> R {
    ok(sb.faults.lock().expect("faults lock").faults.clone())
}

async fn admin_faults_put(State(sb): State<Sandbox>, body: Bytes) -> R {
    let faults: Faults = tri!(parse(&body));
    if let Err(e) = faults.validate() {
        return bad(e);
    }
    sb.faults.lock().expect("faults lock").set(faults.clone());
    ok(faults)
}

async fn admin_reset(State(sb): State<Sandbox>) -> R {
    match sb.reset() {
        Ok(()) => no_content(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let b = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let cases = [
            ("Bearer sandbox-token".to_string(), true),
            ("Bearer wrong".to_string(), false),
            (b("me@x.io:sandbox-token"), true),
            (b("me@x.io:wrong"), false),
            (b(":sandbox-token"), false),
            ("Basic !!!".to_string(), false),
            ("sandbox-token".to_string(), false),
        ];
        for (v, want) in cases {
            assert_eq!(credentials_match(&v, "sandbox-token"), want, "{v}");
        }
    }

    #[test]
    fn experimental_routes() {
        let p = |s: &str| format!("/jsm/csm/cloudid/c/api/v1/{s}");
        let cases = [
            (Method::GET, p("tasks/abc"), true),
            (Method::POST, p("customer/details/bulk"), true),
            (Method::POST, p("customer/profile/bulk"), false),
            (Method::GET, p("customer/qm:1/customer-experiences"), true),
            (Method::GET, p("customer/details"), false),
            (Method::GET, p("entitlements"), true),
        ];
        for (m, path, want) in cases {
            assert_eq!(is_experimental(&m, &path), want, "{m} {path}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(250)), Some(250));
        assert_eq!(decode_cursor("nope"), None);
    }
}
