//! Golden tests: every documented example request (tests/fixtures/api, copied from the API
//! contract's examples) is accepted by the sandbox, and every response has exactly the
//! documented shape. The calls run in an order that makes each example's ids exist.

use serde_json::{Value, json};

use crate::common::*;

fn ok(
    sb: &SandboxProc,
    method: &str,
    path: &str,
    request: Option<&str>,
    key: Option<&str>,
) -> Value {
    let body = request.map(|r| fixture(&format!("api/{r}")));
    let (code, v) = call(sb, method, path, body.as_ref(), key);
    assert!((200..300).contains(&code), "{method} {path}: {code} {v}");
    v
}

fn shaped(v: &Value, response: &str) {
    assert_shape(&fixture(&format!("api/{response}")), v, response);
}

fn bulk(sb: &SandboxProc, path: &str, request: &str) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let v = ok(sb, "POST", path, Some(request), Some(&key));
    shaped(&v, "task-submit.response.json");
    assert_eq!(
        v["statusUrl"],
        format!("/api/v1/tasks/{}", v["id"].as_str().unwrap())
    );
    wait_task(sb, v["id"].as_str().unwrap())
}

const JOHN: &str = "qm:9edf598a-85d4-4db9-bf2e-7245922b4ea8:0000e9d8-a22e-4220-ac63-412ff9eec053";
const AA: &str = "2a927c94-363f-4977-a0d6-9477d535f329";

#[test]
fn documented_examples_round_trip_through_the_sandbox() {
    let seed = repo("tests/fixtures/golden-seed.json");
    let sb = SandboxProc::start_raw(&["--seed", seed.to_str().unwrap(), "--task-latency-ms", "20"]);

    // Customer detail fields (C1, C2) and one value (C8), then the customer (C5).
    shaped(
        &ok(&sb, "GET", "customer/details", None, None),
        "customer-details.get.response.json",
    );
    shaped(
        &ok(
            &sb,
            "POST",
            "customer/details",
            Some("customer-details.create.request.json"),
            None,
        ),
        "customer-details.create.response.json",
    );
    shaped(
        &ok(
            &sb,
            "PUT",
            &format!("customer/{AA}/details?fieldName=Region"),
            Some("customer-detail-value.set.request.json"),
            None,
        ),
        "customer-detail-value.set.response.json",
    );
    shaped(
        &ok(&sb, "GET", &format!("customer/{AA}"), None, None),
        "customer.get.response.json",
    );

    // Entitlements (C10, E5, E8) and profiles (C15, C17), search (C7), accounts (C11).
    shaped(
        &ok(
            &sb,
            "POST",
            &format!("customer/{JOHN}/entitlement"),
            Some("entitlement.create.request.json"),
            None,
        ),
        "entitlement.get.response.json",
    );
    let ents = ok(
        &sb,
        "GET",
        &format!("entitlements?entityType=CUSTOMER&entityId={JOHN}"),
        None,
        None,
    );
    shaped(&ents, "entitlements-list.response.json");
    let ent_id = ents["results"][0]["id"].as_str().unwrap().to_string();
    shaped(
        &ok(&sb, "GET", &format!("entitlement/{ent_id}"), None, None),
        "entitlement.get.response.json",
    );
    shaped(
        &ok(&sb, "GET", &format!("customer/profile/{JOHN}"), None, None),
        "customer-profile.get.response.json",
    );
    let fetched = ok(
        &sb,
        "POST",
        "customer/profile/fetch",
        Some("customer-profile-fetch.request.json"),
        None,
    );
    shaped(&fetched, "customer-profile-fetch.response.json");
    assert_eq!(fetched["results"].as_array().unwrap().len(), 2);
    shaped(
        &ok(
            &sb,
            "POST",
            "customer/search-by-detail-field",
            Some("customer-search-by-detail-field.request.json"),
            None,
        ),
        "customer-search-by-detail-field.response.json",
    );
    shaped(
        &ok(
            &sb,
            "POST",
            "customer",
            Some("customer-account.create.request.json"),
            None,
        ),
        "customer-account.create.response.json",
    );

    // Customer bulk operations (CB4, CB3, CB2): accepted, and the task has the documented shape.
    let t = bulk(
        &sb,
        "customer/profile/bulk",
        "customer-profile-bulk.request.json",
    );
    shaped(&t, "task-status.response.json");
    assert_eq!(
        t["failures"][0]["operatedOnIds"],
        json!(["Region"]),
        "EMEA is no Region option: {t}"
    );
    bulk(&sb, "customer/bulk", "customer-bulk.request.json");
    let t = bulk(
        &sb,
        "customer/details/bulk",
        "customer-details-bulk.request.json",
    );
    assert_eq!(
        t["failures"][0]["error"], "Invalid detail field value",
        "Region has no option 'Asia': {t}"
    );

    // Products (P1–P4).
    shaped(
        &ok(&sb, "GET", "product?limit=1", None, None),
        "product-list.response.json",
    );
    let p = ok(
        &sb,
        "POST",
        "product",
        Some("product.create.request.json"),
        None,
    );
    shaped(&p, "product.create.response.json");
    let pid = p["id"].as_str().unwrap();
    shaped(
        &ok(&sb, "GET", &format!("product/{pid}"), None, None),
        "product.get.response.json",
    );
    shaped(
        &ok(
            &sb,
            "PUT",
            &format!("product/{pid}"),
            Some("product.rename.request.json"),
            None,
        ),
        "product.rename.response.json",
    );

    // Entitlement detail fields (E1, E2).
    shaped(
        &ok(&sb, "GET", "entitlement/details", None, None),
        "entitlement-details.get.response.json",
    );
    shaped(
        &ok(
            &sb,
            "POST",
            "entitlement/details",
            Some("entitlement-details.create.request.json"),
            None,
        ),
        "entitlement-details.create.response.json",
    );

    // Organizations (O1, O2, O8, O5, O11, O12, O10, O13, O15).
    shaped(
        &ok(&sb, "GET", "organization/details", None, None),
        "organization-details.get.response.json",
    );
    shaped(
        &ok(
            &sb,
            "POST",
            "organization/details",
            Some("organization-details.create.request.json"),
            None,
        ),
        "organization-details.create.response.json",
    );
    shaped(
        &ok(
            &sb,
            "PUT",
            "organization/123/details?fieldName=Region",
            Some("organization-detail-value.set.request.json"),
            None,
        ),
        "organization-detail-value.set.response.json",
    );
    shaped(
        &ok(&sb, "GET", "organization/123", None, None),
        "organization.get.response.json",
    );
    shaped(
        &ok(
            &sb,
            "POST",
            "organization",
            Some("organization.create.request.json"),
            None,
        ),
        "organization.create.response.json",
    );
    let f = ok(
        &sb,
        "POST",
        "organization/fetch",
        Some("organization-fetch.request.json"),
        None,
    );
    shaped(&f, "organization-fetch.response.json");
    assert_eq!(f["results"].as_array().unwrap().len(), 2);
    ok(
        &sb,
        "POST",
        "organization/123/entitlement",
        Some("entitlement.create.request.json"),
        None,
    );
    let profile = ok(&sb, "GET", "organization/profile/123", None, None);
    shaped(&profile, "organization-profile.get.response.json");
    let fetched = ok(
        &sb,
        "POST",
        "organization/profile/fetch",
        Some("organization-profile-fetch.request.json"),
        None,
    );
    assert_shape(
        &json!({"results": [fixture("api/organization-profile.get.response.json")]}),
        &fetched,
        "O15",
    );

    // Organization bulk operations (OB2, OB3, OB4), then the field edit (O3) last: it renames.
    bulk(
        &sb,
        "organization/profile/bulk",
        "organization-profile-bulk.request.json",
    );
    let t = bulk(&sb, "organization/bulk", "organization-bulk.request.json");
    assert_eq!(
        t["failures"][0]["error"], "Organization already exists",
        "{t}"
    );
    bulk(
        &sb,
        "organization/details/bulk",
        "organization-details-bulk.request.json",
    );
    ok(
        &sb,
        "PUT",
        "organization/details/Region",
        Some("organization-details.edit.request.json"),
        None,
    );
    let org = ok(&sb, "GET", "organization/123", None, None);
    assert_eq!(
        org["details"][0]["name"], "Sales Region",
        "values follow a field rename: {org}"
    );

    // The deletes (E6, P5, O4, O7, C14) and their documented side effects: a deleted field
    // takes its values with it, a deleted product its entitlements. Each answers 2xx without a
    // body to decode, and what it deleted is then a 404.
    let gone = |path: &str| {
        let (code, v) = call(&sb, "GET", path, None, None);
        assert_eq!(code, 404, "GET {path} after its delete: {code} {v}");
        shaped(&v, "error.response.json");
    };
    ok(
        &sb,
        "DELETE",
        "organization/details/Sales Region",
        None,
        None,
    );
    let org = ok(&sb, "GET", "organization/123", None, None);
    assert!(
        !org["details"].to_string().contains("Sales Region"),
        "a deleted field's values go with it: {org}"
    );
    let ents = ok(&sb, "GET", "organization/123/entitlement", None, None);
    let held = &ents["results"][0];
    let (other, product) = (
        held["id"].as_str().unwrap().to_string(),
        held["product"]["id"].as_str().unwrap().to_string(),
    );
    // John's entitlement (E8 above): another holder's.
    let one = ent_id.clone();
    assert_ne!(one, other);
    ok(&sb, "DELETE", &format!("entitlement/{one}"), None, None);
    gone(&format!("entitlement/{one}"));
    ok(&sb, "DELETE", &format!("product/{product}"), None, None);
    gone(&format!("product/{product}"));
    gone(&format!("entitlement/{other}"));
    ok(&sb, "DELETE", "organization/123", None, None);
    gone("organization/123");
    ok(
        &sb,
        "DELETE",
        &format!("customer/account/{JOHN}"),
        None,
        None,
    );
    gone(&format!("customer/{JOHN}"));

    // Errors, FAILED tasks and the cloud id lookup.
    let (code, e) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&fixture("api/customer-profile-bulk.request.json")),
        None,
    );
    assert_eq!(code, 400);
    shaped(&e, "error.response.json");
    let (code, _, _) = call_full(
        &sb,
        "PUT",
        &format!("{}/_sandbox/faults", sb.url),
        Some(&json!({"failedEmpty": 1.0})),
        None,
        &[],
    );
    assert_eq!(code, 200);
    let t = bulk(&sb, "customer/bulk", "customer-bulk.request.json");
    shaped(&t, "task-status.failed.response.json");
    let (_, _, tenant) = call_full(
        &sb,
        "GET",
        &format!("{}/_edge/tenant_info", sb.url),
        None,
        None,
        &[],
    );
    shaped(&tenant, "tenant-info.response.json");
}

#[test]
fn documented_definition_batches_create_every_field() {
    let sb = SandboxProc::start_raw(&["--task-latency-ms", "20"]);
    for (entity, request, n) in [
        (
            "customer",
            "customer-detail-definitions-bulk.request.json",
            6,
        ),
        (
            "organization",
            "organization-detail-definitions-bulk.request.json",
            5,
        ),
    ] {
        let t = bulk(&sb, &format!("{entity}/details/definitions/bulk"), request);
        assert_eq!(t["status"], "FINISHED", "{t}");
        assert_eq!(t["failures"], json!([]));
        let (_, defs) = call(&sb, "GET", &format!("{entity}/details"), None, None);
        let got: Vec<Value> = defs["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| json!({"name": d["name"], "type": d["type"]}))
            .collect();
        let want = fixture(&format!("api/{request}"))["detailFields"].clone();
        assert_eq!(json!(got), want);
        assert_eq!(got.len(), n);
        // The same batch again clashes with the existing names: refused whole, nothing created.
        let (code, e) = call(
            &sb,
            "POST",
            &format!("{entity}/details/definitions/bulk"),
            Some(&json!({"detailFields": want})),
            Some("k2"),
        );
        assert_eq!(code, 400, "{e}");
    }
}
