//! Sandbox routes: the CSM paths under `/jsm/csm/cloudid/{cloudId}/api/v1/`, the auth check,
//! envelope validation (limits, headers, idempotency) and the `/_sandbox/` admin API. Item-level
//! rules live in `store`; background work in `tasks`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;

use super::Sandbox;
use super::tasks;
use crate::api::model::{
    CreateDetailField, CustomerProfileBulkRequest, CustomerProfileFetchRequest,
    CustomerProfileFetchResponse, DetailFieldWithConfiguration, DetailFieldsWithConfiguration,
    FieldConfiguration, RestError, TaskSubmitResponse,
};
use crate::api::{
    IDEMPOTENCY_CONFLICT_STATUS, IDEMPOTENCY_HEADER, MAX_PROFILE_BULK_ITEMS, MAX_PROFILE_FETCH,
    MISSING_IDEMPOTENCY_STATUS, TASK_LIMIT_MESSAGE,
};

/// [UNCONFIRMED] status of an accepted bulk submission; third-party fakes use 202 (CONTRACT §6.3).
pub const BULK_ACCEPTED_STATUS: StatusCode = StatusCode::ACCEPTED;
/// The documented cap on detail fields per entity kind.
pub const MAX_DETAIL_FIELDS: usize = 50;
const KNOWN_TYPES: [&str; 8] = [
    "TEXT",
    "SELECT",
    "MULTISELECT",
    "DATE",
    "NUMBER",
    "EMAIL",
    "PHONE",
    "URL",
];

pub fn router(sb: Sandbox) -> Router {
    let api = Router::new()
        .route(
            "/customer/details",
            get(customer_details).post(create_customer_detail),
        )
        .route("/customer/profile/bulk", post(customer_profile_bulk))
        .route("/customer/profile/fetch", post(customer_profile_fetch))
        .route("/tasks/{task_id}", get(task))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sb.clone(), auth));
    Router::new()
        .nest("/jsm/csm/cloudid/{cloud_id}/api/v1", api)
        .route("/_sandbox/state", get(state))
        .fallback(not_found)
        .with_state(sb)
}

/// The contract's error body: `{errorMessage, errors: [CODE], statusCode}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let code = match status.as_u16() {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        412 => "PRECONDITION_FAILED",
        429 => "TOO_MANY_REQUESTS",
        _ => "INTERNAL_ERROR",
    };
    let body = RestError {
        error_message: message.into(),
        errors: vec![code.to_string()],
        status_code: status.as_u16(),
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "No resource at this path")
}

/// Bearer TOKEN, or Basic with any email and TOKEN as the password.
async fn auth(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| credentials_match(v, &sb.config.token));
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        );
    }
    next.run(req).await
}

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

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body: {e}"),
        )
    })
}

async fn customer_details(State(sb): State<Sandbox>) -> Response {
    let store = sb.store.lock().expect("store lock");
    let results = store
        .customer_fields
        .iter()
        .enumerate()
        .map(|(i, f)| DetailFieldWithConfiguration {
            configuration: Some(f.configuration.clone().unwrap_or(FieldConfiguration {
                position: i as i64 + 1,
            })),
            ..f.clone()
        })
        .collect();
    axum::Json(DetailFieldsWithConfiguration { results }).into_response()
}

async fn create_customer_detail(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let req: CreateDetailField = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let name = req.name.trim().to_string();
    let type_name = req.field_type.name.as_str();
    if name.is_empty() {
        return error(StatusCode::BAD_REQUEST, "name must not be empty");
    }
    if !KNOWN_TYPES.contains(&type_name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "Unknown detail field type '{type_name}'; expected one of {}",
                KNOWN_TYPES.join(", ")
            ),
        );
    }
    let is_select = matches!(type_name, "SELECT" | "MULTISELECT");
    if is_select && req.field_type.options.as_ref().is_none_or(|o| o.is_empty()) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{type_name} fields need options"),
        );
    }
    let mut store = sb.store.lock().expect("store lock");
    if store
        .customer_fields
        .iter()
        .any(|f| f.name.trim().eq_ignore_ascii_case(&name))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("A detail field named '{name}' already exists"),
        );
    }
    if store.customer_fields.len() >= MAX_DETAIL_FIELDS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("At most {MAX_DETAIL_FIELDS} detail fields are allowed"),
        );
    }
    let position = store.customer_fields.len() as i64 + 1;
    store.customer_fields.push(DetailFieldWithConfiguration {
        name: name.clone(),
        field_type: req.field_type.clone(),
        configuration: Some(FieldConfiguration { position }),
    });
    axum::Json(CreateDetailField {
        name,
        field_type: req.field_type,
    })
    .into_response()
}

async fn customer_profile_bulk(
    State(sb): State<Sandbox>,
    Path(_cloud_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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
    let req: CustomerProfileBulkRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let n = req.customer_profiles.len();
    if n == 0 || n > MAX_PROFILE_BULK_ITEMS {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "customerProfiles must contain between 1 and {MAX_PROFILE_BULK_ITEMS} items, got {n}"
            ),
        );
    }
    // serde_json's map is ordered, so this is a canonical form of the body.
    let canonical = serde_json::to_value(&req)
        .expect("request serializes")
        .to_string();
    let mut store = sb.store.lock().expect("store lock");
    if let Some((seen_body, task_id)) = store.keys.get(key) {
        if *seen_body == canonical {
            return submitted(task_id);
        }
        return error(
            StatusCode::from_u16(IDEMPOTENCY_CONFLICT_STATUS).expect("valid status"),
            format!("{IDEMPOTENCY_HEADER} '{key}' was already used with a different request body"),
        );
    }
    if store.unfinished_tasks() >= sb.config.max_tasks {
        return error(StatusCode::BAD_REQUEST, TASK_LIMIT_MESSAGE);
    }
    let task = store.new_task(key, canonical, n);
    drop(store);
    tasks::run_customer_profiles(sb.clone(), task.id.clone(), req.customer_profiles);
    submitted(&task.id)
}

fn submitted(task_id: &str) -> Response {
    (
        BULK_ACCEPTED_STATUS,
        axum::Json(TaskSubmitResponse {
            id: task_id.to_string(),
            status_url: format!("/api/v1/tasks/{task_id}"),
        }),
    )
        .into_response()
}

async fn customer_profile_fetch(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let req: CustomerProfileFetchRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if req.customer_ids.len() > MAX_PROFILE_FETCH {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "At most {MAX_PROFILE_FETCH} customerIds per request, got {}",
                req.customer_ids.len()
            ),
        );
    }
    let store = sb.store.lock().expect("store lock");
    // Unknown ids are silently left out, as documented.
    let results = req
        .customer_ids
        .iter()
        .filter_map(|id| store.customers.get(id))
        .map(|c| store.profile(c))
        .collect();
    axum::Json(CustomerProfileFetchResponse { results }).into_response()
}

async fn task(
    State(sb): State<Sandbox>,
    Path((_cloud_id, task_id)): Path<(String, String)>,
) -> Response {
    let store = sb.store.lock().expect("store lock");
    match store.tasks.get(&task_id) {
        Some(t) => axum::Json(t.status.clone()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("Task '{task_id}' was not found"),
        ),
    }
}

async fn state(State(sb): State<Sandbox>) -> Response {
    let store = sb.store.lock().expect("store lock");
    axum::Json(json!({
        "customerDetailFields": store.customer_fields,
        "organizations": store.organizations.values().collect::<Vec<_>>(),
        "customers": store.customers.values().collect::<Vec<_>>(),
        "tasks": store.tasks.values().collect::<Vec<_>>(),
    }))
    .into_response()
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
}
