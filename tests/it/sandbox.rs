//! The sandbox's contract behaviour over HTTP: auth, limits, idempotency, task lifecycle.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn post(
    sb: &SandboxProc,
    path: &str,
    key: Option<&str>,
    auth: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    runtime().block_on(async {
        let mut req = csmport::site::client::http_client()
            .post(sb.api(path))
            .header("X-ExperimentalApi", "opt-in")
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

fn get(sb: &SandboxProc, path: &str) -> (u16, Value) {
    runtime().block_on(async {
        let resp = csmport::site::client::http_client()
            .get(sb.api(path))
            .header("X-ExperimentalApi", "opt-in")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

fn profiles(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"operationType": "UPSERT", "payload": {"email": format!("p{i}@example.com"), "displayName": format!("P {i}")}}))
        .collect();
    json!({ "customerProfiles": items })
}

const BEARER: Option<&str> = Some("Bearer sandbox-token");

fn wait_terminal(sb: &SandboxProc, id: &str) -> Value {
    for _ in 0..100 {
        let (code, t) = get(sb, &format!("tasks/{id}"));
        assert_eq!(code, 200);
        if t["status"] == "FINISHED" || t["status"] == "FAILED" {
            return t;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("task {id} never finished");
}

#[test]
fn auth_rules() {
    let sb = SandboxProc::start(&[]);
    let basic = |s: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    for (auth, want) in [
        (None, 401),
        (Some("Bearer nope".to_string()), 401),
        (Some(basic("me@example.com:nope")), 401),
        (Some(basic("me@example.com:sandbox-token")), 200),
        (Some("Bearer sandbox-token".to_string()), 200),
    ] {
        let code = runtime().block_on(async {
            let mut r = csmport::site::client::http_client().get(sb.api("customer/details"));
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            let resp = r.send().await.unwrap();
            let code = resp.status().as_u16();
            if code == 401 {
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["statusCode"], 401);
                assert_eq!(body["errors"], json!(["UNAUTHORIZED"]));
            }
            code
        });
        assert_eq!(code, want, "{auth:?}");
    }
}

#[test]
fn bulk_envelope_limits_and_headers() {
    let sb = SandboxProc::start(&[]);
    let (code, body) = post(&sb, "customer/profile/bulk", None, BEARER, &profiles(1));
    assert_eq!(code, 400);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    let (code, body) = post(
        &sb,
        "customer/profile/bulk",
        Some("k-101"),
        BEARER,
        &profiles(101),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("between 1 and 100")
    );
    let (code, _) = post(
        &sb,
        "customer/profile/bulk",
        Some("k-0"),
        BEARER,
        &profiles(0),
    );
    assert_eq!(code, 400);
    let (code, body) = post(
        &sb,
        "customer/profile/bulk",
        Some("k-bad"),
        BEARER,
        &json!({"customerProfiles": "x"}),
    );
    assert_eq!(code, 400);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Invalid request body")
    );
    let (code, body) = post(
        &sb,
        "customer/profile/bulk",
        Some("k-100"),
        BEARER,
        &profiles(100),
    );
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        body["statusUrl"],
        format!("/api/v1/tasks/{}", body["id"].as_str().unwrap())
    );
    assert_eq!(
        sb.state()["tasks"].as_array().unwrap().len(),
        1,
        "refused requests leave no task"
    );
}

#[test]
fn idempotency_key_replays_and_conflicts() {
    let sb = SandboxProc::start(&[]);
    let (c1, first) = post(
        &sb,
        "customer/profile/bulk",
        Some("key-1"),
        BEARER,
        &profiles(3),
    );
    let (c2, second) = post(
        &sb,
        "customer/profile/bulk",
        Some("key-1"),
        BEARER,
        &profiles(3),
    );
    assert_eq!((c1, c2), (202, 202));
    assert_eq!(first["id"], second["id"]);
    wait_terminal(&sb, first["id"].as_str().unwrap());
    let (c3, third) = post(
        &sb,
        "customer/profile/bulk",
        Some("key-1"),
        BEARER,
        &profiles(3),
    );
    assert_eq!(
        (c3, &third["id"]),
        (202, &first["id"]),
        "replay after the task finished"
    );
    let (c4, conflict) = post(
        &sb,
        "customer/profile/bulk",
        Some("key-1"),
        BEARER,
        &profiles(4),
    );
    assert_eq!(c4, 400);
    assert!(
        conflict["errorMessage"]
            .as_str()
            .unwrap()
            .contains("different request body")
    );
    let state = sb.state();
    assert_eq!(state["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(state["customers"].as_array().unwrap().len(), 3);
}

#[test]
fn tasks_run_in_the_background_with_per_item_failures() {
    // Long enough that the first look comes before the end on a loaded machine (300 ms was
    // not, with 16 test threads on 2 cores).
    let sb = SandboxProc::start(&["--task-latency-ms", "2000"]);
    let body = json!({"customerProfiles": [
        {"operationType": "UPSERT", "payload": {"email": "ok@example.com", "details": [{"name": "Customer Tier", "values": ["Premium"]}]}},
        {"operationType": "UPSERT", "payload": {"email": "bad-email@", "displayName": "X"}},
        {"operationType": "UPSERT", "payload": {"email": "f@example.com", "details": [{"name": "Region", "values": ["EU"]}]}},
        {"operationType": "UPSERT", "payload": {"email": "o@example.com", "details": [{"name": "Customer Tier", "values": ["Gold"]}]}},
        {"operationType": "UPSERT", "payload": {"email": "d@example.com", "details": [{"name": "Renewal Date", "values": ["31/12/2026"]}]}},
        {"operationType": "CREATE", "payload": {"email": "g@example.com", "associateOrganizations": {"organizationIds": [101, "999"]}}}
    ]});
    let (code, sub) = post(&sb, "customer/profile/bulk", Some("k"), BEARER, &body);
    assert_eq!(code, 202);
    let id = sub["id"].as_str().unwrap();
    let (_, t) = get(&sb, &format!("tasks/{id}"));
    assert!(
        t["status"] == "NOT_STARTED" || t["status"] == "IN_PROGRESS",
        "{t}"
    );
    let t = wait_terminal(&sb, id);
    assert_eq!(t["status"], "FINISHED");
    assert_eq!(t["type"], "BULK_CUSTOMER_PROFILE_CREATE_UPDATE");
    let failures: Vec<(String, String, Value)> = t["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            for k in [
                "entity",
                "entityId",
                "operation",
                "operatedOn",
                "operatedOnIds",
                "error",
            ] {
                assert!(f.get(k).is_some(), "{k} missing in {f}");
            }
            (
                f["entityId"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
                f["operatedOnIds"].clone(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        vec![
            (
                "bad-email@".into(),
                "Email address is invalid".into(),
                json!([])
            ),
            (
                "f@example.com".into(),
                "Invalid detail field".into(),
                json!(["Region"])
            ),
            (
                "o@example.com".into(),
                "Invalid detail field value".into(),
                json!(["Customer Tier"])
            ),
            (
                "d@example.com".into(),
                "Invalid detail field value".into(),
                json!(["Renewal Date"])
            ),
            (
                "g@example.com".into(),
                "Organization not found".into(),
                json!(["999"])
            ),
        ]
    );
    let customers = sb.state()["customers"].as_array().unwrap().clone();
    assert_eq!(customers.len(), 1, "invalid items store nothing");
    assert_eq!(customers[0]["email"], "ok@example.com");
    let (code, _) = get(&sb, "tasks/00000000-0000-0000-0000-000000000000");
    assert_eq!(code, 404);
}

#[test]
fn task_slot_limit() {
    let sb = SandboxProc::start(&["--max-tasks", "2", "--task-latency-ms", "2000"]);
    for k in ["a", "b"] {
        let (code, _) = post(&sb, "customer/profile/bulk", Some(k), BEARER, &profiles(1));
        assert_eq!(code, 202);
    }
    let (code, body) = post(
        &sb,
        "customer/profile/bulk",
        Some("c"),
        BEARER,
        &profiles(1),
    );
    assert_eq!(code, 400);
    assert_eq!(body["errorMessage"], "Maximum number of tasks reached");
    assert_eq!(body["errors"], json!(["BAD_REQUEST"]));
}

#[test]
fn detail_field_definitions() {
    let sb = SandboxProc::start(&[]);
    let (code, defs) = get(&sb, "customer/details");
    assert_eq!(code, 200);
    let names: Vec<&str> = defs["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 9);
    assert!(names.contains(&"Customer Tier"));
    let req = json!({"name": "Region", "type": {"name": "SELECT", "options": ["AU", "EU", "US"]}});
    let (code, created) = post(&sb, "customer/details", None, BEARER, &req);
    assert_eq!((code, &created), (200, &req));
    let (code, _) = post(&sb, "customer/details", None, BEARER, &req);
    assert_eq!(code, 400, "duplicate name");
    let (code, _) = post(
        &sb,
        "customer/details",
        None,
        BEARER,
        &json!({"name": "X", "type": {"name": "SELECT"}}),
    );
    assert_eq!(code, 400, "select without options");
}

#[test]
fn non_loopback_needs_allow_remote() {
    let out = std::process::Command::new(bin())
        .args(["sandbox", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--allow-remote"));
}

#[test]
fn tenant_info_reports_the_cloud_id_the_sandbox_was_started_with() {
    let id =
        |sb: &SandboxProc| get_json(&format!("{}/_edge/tenant_info", sb.url))["cloudId"].clone();
    assert_eq!(id(&SandboxProc::start_raw(&[])), "sandbox");
    assert_eq!(
        id(&SandboxProc::start_raw(&["--cloud-id", "acme-1"])),
        "acme-1"
    );
}

#[test]
fn the_request_log_counts_every_call_past_what_it_keeps() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx
        .csmport(Some(&sb))
        .args(["export", "organizations", "--out", "o.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = crate::common::get_json(&format!("{}/_sandbox/requests", sb.url));
    let kept = log["requests"].as_array().unwrap().len() as u64;
    let total = log["total"].as_u64().unwrap();
    assert!(kept > 0 && total >= kept, "{kept} kept, {total} in all");
    let last = crate::common::get_json(&format!("{}/_sandbox/requests?last=2", sb.url));
    assert_eq!(last["requests"].as_array().unwrap().len(), 2);
    assert_eq!(
        last["total"].as_u64(),
        Some(total),
        "the admin API is not counted"
    );
}
