//! The JSM listings export and lookups use (organizations, their users, the service
//! projects and a service project's customers; CONTRACT §11). Handlers of `http`'s router over `store`.

use super::prelude::*;

pub(super) async fn jsm_organizations(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    let mut store = sb.store.lock().expect("store lock");
    let lag = sb.config.listing_lag;
    if lag.is_zero() {
        let orders = store.orders();
        return ok(tri!(page_of(&q, &orders.organizations, |id| {
            store.organizations.get(id).map(|o| JsmOrganization {
                id: o.id.clone(),
                name: o.name.clone(),
            })
        })));
    }
    let mut all: Vec<JsmOrganization> = store
        .organizations
        .values()
        .filter(|o| store.made_at.get(&o.id).is_none_or(|t| t.elapsed() >= lag))
        .map(|o| JsmOrganization {
            id: o.id.clone(),
            name: o.name.clone(),
        })
        .collect();
    all.sort_by(|a, b| crate::store::id_order(&a.id, &b.id));
    ok(tri!(page(&q, &all)))
}

pub(super) fn jsm_user(c: &crate::store::Customer) -> JsmUser {
    JsmUser {
        account_id: c.id.clone(),
        email_address: Some(c.email.clone()),
        display_name: c.display_name.clone(),
    }
}

pub(super) async fn jsm_organization_users(
    State(sb): State<Sandbox>,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    // Also served under the gateway's route (with a cloud id): the id is the named one.
    let id = params.get("organizationId").cloned().unwrap_or_default();
    let mut store = sb.store.lock().expect("store lock");
    if !store.organizations.contains_key(&id) {
        return missing("Organization", &id);
    }
    let orders = store.orders();
    let members = orders.members.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    ok(tri!(page_of(&q, members, |c| store
        .customers
        .get(c)
        .map(jsm_user))))
}

/// The service projects the sandbox has: (id, name, key). [Sandbox simplification] a fixed
/// list, and every customer belongs to every one of them.
pub const SERVICE_DESKS: [(&str, &str, &str); 2] =
    [("1", "Customer Support", "CS"), ("2", "Partner Help", "PH")];

pub(super) async fn jsm_service_desks(Query(q): Query<HashMap<String, String>>) -> R {
    let all: Vec<JsmServiceDesk> = SERVICE_DESKS
        .iter()
        .map(|(id, name, key)| JsmServiceDesk {
            id: id.to_string(),
            project_name: name.to_string(),
            project_key: key.to_string(),
        })
        .collect();
    ok(tri!(page(&q, &all)))
}

/// [Sandbox simplification] every customer belongs to every service project.
pub(super) async fn jsm_service_desk_customers(
    State(sb): State<Sandbox>,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    // Also served under the gateway's route (with a cloud id): the id is the named one.
    let id = params.get("serviceDeskId").cloned().unwrap_or_default();
    if !SERVICE_DESKS.iter().any(|(d, _, _)| *d == id) {
        return missing("Service desk", &id);
    }
    let mut store = sb.store.lock().expect("store lock");
    let orders = store.orders();
    // `query`: the customers whose email or display name has it, in any case.
    if let Some(text) = q
        .get(csmport_api::paths::jsm::CUSTOMER_QUERY)
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
    {
        let found: Vec<JsmUser> = orders
            .customers
            .iter()
            .filter_map(|c| store.customers.get(c))
            .filter(|c| {
                c.email.to_lowercase().contains(&text)
                    || c.display_name.to_lowercase().contains(&text)
            })
            .map(jsm_user)
            .collect();
        return ok(tri!(super::page(&q, &found)));
    }
    ok(tri!(page_of(&q, &orders.customers, |c| store
        .customers
        .get(c)
        .map(jsm_user))))
}
