//! Entitlements (E5–E8, and creating one for a customer or organization). Handlers of
//! `http`'s router over `store`.

use super::prelude::*;

pub(super) async fn entitlement_get(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.entitlements.get(&id) {
        Some(e) => ok(store.entitlement_view(e)),
        None => missing("Entitlement", &id),
    }
}

pub(super) async fn entitlement_delete(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    sb.with_store(|store| match store.remove_entitlement(&id) {
        Some(_) => no_content(),
        None => missing("Entitlement", &id),
    })
}

pub(super) async fn entitlement_set_value(
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

pub(super) async fn entitlement_list(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let Some(entity_type) = q.get("entityType").map(|t| t.to_uppercase()) else {
        return bad("entityType is required (CUSTOMER or ORGANIZATION)");
    };
    if entity_type != ENTITY_CUSTOMER && entity_type != crate::store::ENTITY_ORGANIZATION {
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

pub(super) fn create_entitlement(
    store: &mut Store,
    entity_type: &str,
    id: &str,
    req: CreateEntitlement,
) -> R {
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
