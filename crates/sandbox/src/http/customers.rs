//! Customers (C5–C17), the search by detail field among them. Handlers of `http`'s router
//! over `store`.

use super::prelude::*;

pub(super) async fn customer_get(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
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

pub(super) async fn customer_set_value(
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

pub(super) async fn customer_experiences(
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

pub(super) async fn customer_entitlements(
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

pub(super) async fn customer_entitlement_create(
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

pub(super) async fn customer_create(State(sb): State<Sandbox>, body: Bytes) -> R {
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

pub(super) fn create_customer_profile(
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

pub(super) async fn customer_account(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
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

pub(super) async fn customer_account_rename(
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

pub(super) async fn customer_delete(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    sb.with_store(|store| match store.remove_customer(&id) {
        Some(_) => no_content(),
        None => missing("Customer account", &id),
    })
}

pub(super) async fn customer_profile(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.customers.get(&id) {
        Some(c) => ok(store.profile(c)),
        None => missing("Customer", &id),
    }
}

pub(super) async fn customer_profile_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let payload: CustomerProfilePayload = tri!(parse(&body));
    create_customer_profile(&sb, payload, |store, id| {
        ok(store.profile(&store.customers[id]))
    })
}

pub(super) async fn customer_profile_fetch(State(sb): State<Sandbox>, body: Bytes) -> R {
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
            .map(|c| csmport_api::model::CustomerProfile {
                entitlements: None,
                ..store.profile(c)
            })
            .collect(),
    })
}

pub(super) async fn customer_search(
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
        is_last: Some(start + results.len() >= hits.len()),
        customers: results,
        page,
        max_results: max,
    })
}
