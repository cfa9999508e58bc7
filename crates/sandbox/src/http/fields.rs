//! Detail-field definitions (O1–O4, C1–C4, E1–E4). Handlers of `http`'s router; the rules
//! are `store`'s.

use axum::routing::{MethodRouter, get, put};

use super::prelude::*;

/// `GET` and `POST {entity}/details`.
pub(super) fn routes(entity: Entity) -> MethodRouter<Sandbox> {
    get(move |s: State<Sandbox>| async move { list_fields(s, entity) })
        .post(move |s: State<Sandbox>, b: Bytes| async move { create_field(s, entity, b) })
}

/// `PUT` and `DELETE {entity}/details/{fieldName}`.
pub(super) fn one_routes(entity: Entity) -> MethodRouter<Sandbox> {
    put(
        move |s: State<Sandbox>, p: Path<(String, String)>, b: Bytes| async move {
            edit_field(s, entity, p, b)
        },
    )
    .delete(move |s: State<Sandbox>, p: Path<(String, String)>| async move {
        delete_field(s, entity, p)
    })
}

pub(super) fn list_fields(State(sb): State<Sandbox>, entity: Entity) -> R {
    let store = sb.store.lock().expect("store lock");
    ok(DetailFieldsWithConfiguration {
        results: store
            .field_list(entity)
            .iter()
            .map(|f| f.def.clone())
            .collect(),
    })
}

pub(super) fn create_field(State(sb): State<Sandbox>, entity: Entity, body: Bytes) -> R {
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

pub(super) fn edit_field(
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

pub(super) fn delete_field(
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

pub(super) fn query_field(q: &HashMap<String, String>) -> Result<String, R> {
    let name = q
        .get("fieldName")
        .ok_or_else(|| bad("The fieldName query parameter is required"))?;
    field_name(name).map(str::to_string)
}
