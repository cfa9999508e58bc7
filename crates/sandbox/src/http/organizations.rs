//! Organizations (O5–O15). Handlers of `http`'s router over `store`.

use super::prelude::*;

pub(super) async fn organization_get(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
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

pub(super) async fn organization_rename(
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

pub(super) async fn organization_delete(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    sb.with_store(|store| match store.remove_organization(&id) {
        Some(_) => no_content(),
        None => missing("Organization", &id),
    })
}

pub(super) async fn organization_set_value(
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

pub(super) async fn organization_entitlements(
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
            crate::store::ENTITY_ORGANIZATION,
            &id,
            q.get("product").map(String::as_str),
            false,
        ),
    })
}

pub(super) async fn organization_entitlement_create(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: CreateEntitlement = tri!(parse(&body));
    sb.with_store(|store| {
        if !store.organizations.contains_key(&id) {
            return missing("Organization", &id);
        }
        create_entitlement(store, crate::store::ENTITY_ORGANIZATION, &id, req)
    })
}

pub(super) async fn organization_create(State(sb): State<Sandbox>, body: Bytes) -> R {
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

pub(super) async fn organization_fetch(State(sb): State<Sandbox>, body: Bytes) -> R {
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

pub(super) async fn organization_profile(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    let store = sb.store.lock().expect("store lock");
    match store.organizations.get(&id) {
        Some(o) => ok(store.organization_profile(o)),
        None => missing("Organization", &id),
    }
}

pub(super) async fn organization_profile_create(State(sb): State<Sandbox>, body: Bytes) -> R {
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

pub(super) async fn organization_profile_fetch(State(sb): State<Sandbox>, body: Bytes) -> R {
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
