//! The admin API under `/_sandbox/` (state, request log, faults, reset) and the site's cloud id
//! lookup. Handlers of `http`'s router; no auth.

use super::prelude::*;

/// The site's cloud id lookup (CONTRACT §2.3): the id the sandbox was started with; it
/// answers for any cloud id in a path.
pub(super) async fn tenant_info(State(sb): State<Sandbox>) -> R {
    ok(json!({ "cloudId": sb.config.cloud_id }))
}

pub(super) async fn admin_state(State(sb): State<Sandbox>) -> R {
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
        // A running task's work is kept for a restart, not shown.
        "tasks": store.tasks.values().map(|t| {
            let mut v = serde_json::to_value(t).expect("tasks serialize");
            if let Some(o) = v.as_object_mut() {
                o.remove("job");
            }
            v
        }).collect::<Vec<_>>(),
        "tokensIssued": sb.tokens_issued.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

/// The log, or with `?last=N` its last N calls only (`last=0`: just the count).
pub(super) async fn admin_requests(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let last = tri!(num(&q, "last", REQUEST_LOG_CAP as u64)) as usize;
    let log = sb.requests.lock().expect("requests lock");
    ok(json!({
        "requests": log.iter().skip(log.len().saturating_sub(last)).collect::<Vec<_>>(),
        "total": sb.requests_total.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

pub(super) async fn admin_faults_get(State(sb): State<Sandbox>) -> R {
    ok(sb.faults.lock().expect("faults lock").faults.clone())
}

pub(super) async fn admin_faults_put(State(sb): State<Sandbox>, body: Bytes) -> R {
    let faults: Faults = tri!(parse(&body));
    if let Err(e) = faults.validate() {
        return bad(e);
    }
    sb.faults.lock().expect("faults lock").set(faults.clone());
    ok(faults)
}

pub(super) async fn admin_reset(State(sb): State<Sandbox>) -> R {
    match sb.reset() {
        Ok(()) => no_content(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
