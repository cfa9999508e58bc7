//! One test per sandbox rule of the contract: limits, header rules, idempotency, task slots,
//! rate limits, each fault kind, retention, persistence, listings, and bad input.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

fn items(n: usize, f: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..n).map(f).collect()
}

fn profile(i: usize) -> Value {
    json!({"operationType": "UPSERT", "payload": {"email": format!("p{i}@example.com")}})
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn admin(sb: &SandboxProc, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let (code, _, v) = call_full(
        sb,
        method,
        &format!("{}/_sandbox/{path}", sb.url),
        body,
        None,
        &[],
    );
    (code, v)
}

#[test]
fn limits_over_the_documented_maximum_are_400() {
    let sb = SandboxProc::start_raw(&["--task-latency-ms", "10"]);
    let op = |i: usize| json!({"operationType": "UPDATE", "payload": {"name": format!("F{i}"), "values": ["x"]}});
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "customer/profile/bulk",
            json!({"customerProfiles": items(101, profile)}),
            json!({"customerProfiles": items(100, profile)}),
        ),
        (
            "organization/profile/bulk",
            json!({"organizationProfiles": items(101, |i| json!({"operationType": "UPSERT", "payload": {"name": format!("O{i}")}}))}),
            json!({"organizationProfiles": items(100, |i| json!({"operationType": "UPSERT", "payload": {"name": format!("O{i}")}}))}),
        ),
        (
            "customer/bulk",
            json!({"customers": items(51, profile)}),
            json!({"customers": items(50, profile)}),
        ),
        (
            "organization/bulk",
            json!({"organizations": items(51, |i| json!({"operationType": "CREATE", "payload": {"name": format!("B{i}")}}))}),
            json!({"organizations": items(50, |i| json!({"operationType": "CREATE", "payload": {"name": format!("B{i}")}}))}),
        ),
        (
            "customer/details/bulk",
            json!({"customers": [{"customerId": "qm:a", "operations": items(501, op)}, {"customerId": "qm:b", "operations": items(500, op)}]}),
            json!({"customers": [{"customerId": "qm:a", "operations": items(500, op)}, {"customerId": "qm:b", "operations": items(500, op)}]}),
        ),
        (
            "organization/details/bulk",
            json!({"organizations": [{"organizationId": "1", "operations": items(1001, op)}]}),
            json!({"organizations": [{"organizationId": "1", "operations": items(1000, op)}]}),
        ),
        (
            "customer/details/definitions/bulk",
            json!({"detailFields": items(51, |i| json!({"name": format!("F{i}"), "type": {"name": "TEXT"}}))}),
            json!({"detailFields": items(50, |i| json!({"name": format!("F{i}"), "type": {"name": "TEXT"}}))}),
        ),
    ];
    for (path, over, at) in cases {
        let (code, e) = call(&sb, "POST", path, Some(&over), Some(&key()));
        assert_eq!(code, 400, "{path} over the limit: {e}");
        assert_eq!(e["statusCode"], 400);
        let (code, e) = call(&sb, "POST", path, Some(&at), Some(&key()));
        assert_eq!(code, 202, "{path} at the limit: {e}");
        wait_task(&sb, e["id"].as_str().unwrap());
    }
    // A 51st detail field, synchronously.
    let (code, e) = call(
        &sb,
        "POST",
        "customer/details",
        Some(&json!({"name": "One more", "type": {"name": "TEXT"}})),
        None,
    );
    assert_eq!(code, 400, "{e}");
    assert!(e["errorMessage"].as_str().unwrap().contains("at most 50"));
    // Fetch limits.
    let ids = |n: usize| items(n, |i| json!(format!("qm:{i}")));
    let (code, _) = call(
        &sb,
        "POST",
        "customer/profile/fetch",
        Some(&json!({"customerIds": ids(26)})),
        None,
    );
    assert_eq!(code, 400);
    let (code, v) = call(
        &sb,
        "POST",
        "customer/profile/fetch",
        Some(&json!({"customerIds": ids(25)})),
        None,
    );
    assert_eq!(
        (code, v["results"].as_array().unwrap().len()),
        (200, 0),
        "unknown ids are left out"
    );
    let names = |n: usize| items(n, |i| json!(format!("B{i}")));
    let (code, _) = call(
        &sb,
        "POST",
        "organization/fetch",
        Some(&json!({"organizationNames": names(51)})),
        None,
    );
    assert_eq!(code, 400);
    let (code, v) = call(
        &sb,
        "POST",
        "organization/fetch",
        Some(&json!({"organizationNames": names(50)})),
        None,
    );
    assert_eq!((code, v["results"].as_array().unwrap().len()), (200, 50));
    let (code, _) = call(
        &sb,
        "POST",
        "organization/profile/fetch",
        Some(&json!({"organizationIds": ids(26)})),
        None,
    );
    assert_eq!(code, 400);
}

#[test]
fn paging_products_search_entitlements_and_listings() {
    let sb = SandboxProc::start_raw(&["--sample-data"]);
    for i in 0..7 {
        let (code, _) = call(
            &sb,
            "POST",
            "product",
            Some(&json!({"name": format!("Product {i}")})),
            None,
        );
        assert_eq!(code, 200);
    }
    // Cursor paging: 3 + 3 + 1, the last page without a cursor.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (code, page) = call(
            &sb,
            "GET",
            &format!("product?limit=3&cursor={cursor}"),
            None,
            None,
        );
        assert_eq!(code, 200);
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string()),
        );
        match page["nextPageCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..7).map(|i| format!("Product {i}")).collect::<Vec<_>>()
    );
    let (_, page) = call(&sb, "GET", "product?limit=0", None, None);
    assert_eq!(
        page["results"].as_array().unwrap().len(),
        7,
        "limit 0 falls back to 100"
    );
    let (code, _) = call(&sb, "GET", "product?cursor=garbage", None, None);
    assert_eq!(code, 400);

    // Search by detail field with page/maxResults.
    for i in 0..5 {
        let body = json!({"customerProfiles": [{"operationType": "CREATE", "payload": {"email": format!("s{i}@example.com"), "details": [{"name": "Customer Tier", "values": ["Premium"]}]}}]});
        let (_, t) = call(
            &sb,
            "POST",
            "customer/profile/bulk",
            Some(&body),
            Some(&key()),
        );
        wait_task(&sb, t["id"].as_str().unwrap());
    }
    let q = json!({"detailFields": [{"name": "Customer Tier", "value": "premium"}]});
    let (_, p0) = call(
        &sb,
        "POST",
        "customer/search-by-detail-field?page=0&maxResults=2",
        Some(&q),
        None,
    );
    let (_, p2) = call(
        &sb,
        "POST",
        "customer/search-by-detail-field?page=2&maxResults=2",
        Some(&q),
        None,
    );
    assert_eq!(
        (
            p0["customers"].as_array().unwrap().len(),
            p0["isLast"].as_bool()
        ),
        (2, Some(false))
    );
    assert_eq!(
        (
            p2["customers"].as_array().unwrap().len(),
            p2["isLast"].as_bool()
        ),
        (1, Some(true))
    );

    // JSM listings: organizations (12 in the sample), paged.
    let jsm = |path: &str| {
        call_full(
            &sb,
            "GET",
            &format!("{}/rest/servicedeskapi/{path}", sb.url),
            None,
            None,
            &[],
        )
    };
    let (code, _, page) = jsm("organization?start=10&limit=5");
    assert_eq!(code, 200);
    assert_eq!(
        (
            page["start"].as_u64(),
            page["size"].as_u64(),
            page["isLastPage"].as_bool()
        ),
        (Some(10), Some(2), Some(true))
    );
    assert_eq!(
        page["values"][0],
        json!({"id": "111", "name": "Nakatomi Trading"})
    );
    let (_, _, page) = jsm("servicedesk/1/customer?limit=3");
    assert_eq!(
        (page["size"].as_u64(), page["isLastPage"].as_bool()),
        (Some(3), Some(false))
    );
    assert!(page["values"][0]["emailAddress"].is_string());
    let (code, _, _) = jsm("organization/999/user");
    assert_eq!(code, 404);
}

#[test]
fn experimental_header_rules() {
    let sb = SandboxProc::start_raw(&[]);
    let no_header = |path: &str, method: &str, body: Option<&Value>| {
        runtime().block_on(async {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut r = csmport::site::client::http_client()
                .request(m, sb.api(path))
                .bearer_auth(TOKEN)
                .header("Idempotency-Key", key());
            if let Some(b) = body {
                r = r.json(b);
            }
            r.send().await.unwrap().status().as_u16()
        })
    };
    let body =
        json!({"customers": [{"operationType": "CREATE", "payload": {"email": "a@example.com"}}]});
    assert_eq!(no_header("customer/bulk", "POST", Some(&body)), 412);
    assert_eq!(no_header("tasks/x", "GET", None), 412);
    assert_eq!(
        no_header("entitlements?entityType=CUSTOMER&entityId=x", "GET", None),
        412
    );
    // Methods not flagged experimental do not need it.
    assert_eq!(no_header("customer/details", "GET", None), 200);
    assert_eq!(
        no_header(
            "customer/profile/bulk",
            "POST",
            Some(&json!({"customerProfiles": [profile(1)]}))
        ),
        202
    );
    // The JSM customer listing of a service project (callers send the header, DELTAS D1).
    let jsm = runtime().block_on(async {
        csmport::site::client::http_client()
            .get(format!(
                "{}/rest/servicedeskapi/servicedesk/1/customer",
                sb.url
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(jsm, 412);
    let relaxed = SandboxProc::start_raw(&["--no-experimental-check"]);
    let code = runtime().block_on(async {
        csmport::site::client::http_client()
            .get(relaxed.api("tasks/x"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(code, 404);
}

#[test]
fn idempotency_key_required_on_every_bulk_endpoint() {
    let sb = SandboxProc::start_raw(&[]);
    for (path, body) in [
        (
            "customer/profile/bulk",
            json!({"customerProfiles": [profile(1)]}),
        ),
        ("customer/bulk", json!({"customers": [profile(1)]})),
        (
            "customer/details/bulk",
            json!({"customers": [{"customerId": "x", "operations": [{"operationType": "DELETE", "payload": {"name": "F"}}]}]}),
        ),
        (
            "customer/details/definitions/bulk",
            json!({"detailFields": [{"name": "F", "type": {"name": "TEXT"}}]}),
        ),
        (
            "organization/profile/bulk",
            json!({"organizationProfiles": [{"operationType": "UPSERT", "payload": {"name": "O"}}]}),
        ),
        (
            "organization/bulk",
            json!({"organizations": [{"operationType": "UPSERT", "payload": {"name": "O"}}]}),
        ),
        (
            "organization/details/bulk",
            json!({"organizations": [{"organizationId": "1", "operations": [{"operationType": "DELETE", "payload": {"name": "F"}}]}]}),
        ),
        (
            "organization/details/definitions/bulk",
            json!({"detailFields": [{"name": "F", "type": {"name": "TEXT"}}]}),
        ),
    ] {
        let (code, e) = call(&sb, "POST", path, Some(&body), None);
        assert_eq!(code, 400, "{path}: {e}");
        assert!(
            e["errorMessage"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{path}"
        );
        let k = key();
        let (c1, first) = call(&sb, "POST", path, Some(&body), Some(&k));
        let (c2, second) = call(&sb, "POST", path, Some(&body), Some(&k));
        assert_eq!((c1, c2), (202, 202), "{path}");
        assert_eq!(
            first["id"], second["id"],
            "{path}: same key, same body, same task"
        );
        wait_task(&sb, first["id"].as_str().unwrap());
    }
    assert_eq!(sb.state()["tasks"].as_array().unwrap().len(), 8);
}

#[test]
fn a_replayed_definitions_request_gets_its_task_back_after_it_ran() {
    // The client's retry after a lost answer: the field exists by now, yet the same key and
    // body are the same request, not a name clash.
    let sb = SandboxProc::start_raw(&[]);
    let body = json!({"detailFields": [{"name": "Tier", "type": {"name": "TEXT"}}]});
    let k = key();
    let path = "customer/details/definitions/bulk";
    let (code, first) = call(&sb, "POST", path, Some(&body), Some(&k));
    assert_eq!(code, 202, "{first}");
    assert_eq!(
        wait_task(&sb, first["id"].as_str().unwrap())["status"],
        "FINISHED"
    );
    let (code, again) = call(&sb, "POST", path, Some(&body), Some(&k));
    assert_eq!((code, &again["id"]), (202, &first["id"]), "{again}");
    let (code, e) = call(&sb, "POST", path, Some(&body), Some(&key()));
    assert_eq!(code, 400, "a new key is a new request: {e}");
    assert!(e["errorMessage"].as_str().unwrap().contains("Tier"), "{e}");
}

#[test]
fn idempotency_conflict_status_is_configurable() {
    let sb = SandboxProc::start_raw(&["--idempotency-conflict-status", "409"]);
    let k = key();
    call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": [profile(1)]})),
        Some(&k),
    );
    let (code, e) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": [profile(2)]})),
        Some(&k),
    );
    assert_eq!(code, 409, "{e}");
    assert_eq!(e["errors"], json!(["CONFLICT"]));
}

#[test]
fn task_slots_are_per_cloud_id() {
    let sb = SandboxProc::start_raw(&["--max-tasks", "1", "--task-latency-ms", "3000"]);
    let submit = |cloud: &str| {
        let url = format!(
            "{}/jsm/csm/cloudid/{cloud}/api/v1/customer/profile/bulk",
            sb.url
        );
        let body = json!({"customerProfiles": [profile(cloud.len())]});
        let (code, _, v) = call_full(&sb, "POST", &url, Some(&body), Some(&key()), &[]);
        (code, v)
    };
    assert_eq!(submit("site-a").0, 202);
    let (code, e) = submit("site-a");
    assert_eq!(
        (code, e["errorMessage"].as_str()),
        (400, Some("Maximum number of tasks reached"))
    );
    assert_eq!(submit("site-b").0, 202, "another site has its own slots");
}

#[test]
fn tasks_finish_out_of_order_with_item_latency() {
    // The big task runs 3 s, the small one 0.15 s: the margin holds on a loaded machine,
    // where 30 x 20 ms was once less than one slow poll of the small task.
    let sb = SandboxProc::start_raw(&["--task-latency-ms", "50", "--item-latency-ms", "100"]);
    let (_, big) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": items(30, profile)})),
        Some(&key()),
    );
    let (_, small) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": [profile(99)]})),
        Some(&key()),
    );
    let small_done = wait_task(&sb, small["id"].as_str().unwrap());
    assert_eq!(small_done["status"], "FINISHED");
    let (_, big_now) = call(
        &sb,
        "GET",
        &format!("tasks/{}", big["id"].as_str().unwrap()),
        None,
        None,
    );
    assert_ne!(
        big_now["status"], "FINISHED",
        "the earlier, larger task is still running"
    );
    assert_eq!(
        wait_task(&sb, big["id"].as_str().unwrap())["status"],
        "FINISHED"
    );
}

#[test]
fn retention_and_stale_tasks() {
    let sb = SandboxProc::start_raw(&[
        "--task-latency-ms",
        "10",
        "--task-retention",
        "1s",
        "--stale-task-after",
        "1s",
        "--fault-stuck-task",
        "1",
    ]);
    let (_, t) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": [profile(1)]})),
        Some(&key()),
    );
    let id = t["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let (_, now) = call(&sb, "GET", &format!("tasks/{id}"), None, None);
    assert_eq!(
        now["status"], "IN_PROGRESS",
        "a stuck task never finishes by itself"
    );
    std::thread::sleep(Duration::from_millis(1000));
    let (_, now) = call(&sb, "GET", &format!("tasks/{id}"), None, None);
    assert_eq!(
        (now["status"].as_str(), now["failures"].clone()),
        (Some("FAILED"), json!([])),
        "stale tasks time out"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let (code, _) = call(&sb, "GET", &format!("tasks/{id}"), None, None);
    assert_eq!(code, 404, "ended tasks are forgotten after the retention");
}

#[test]
fn rate_limit_answers_429_with_headers() {
    // One token every 4 s: the three calls below fit in that however loaded the machine is.
    let sb = SandboxProc::start_raw(&["--rate-limit", "0.25", "--burst", "2"]);
    let get = |headers: &[(&str, &str)]| {
        call_full(&sb, "GET", &sb.api("customer/details"), None, None, headers)
    };
    assert_eq!(get(&[]).0, 200);
    assert_eq!(get(&[]).0, 200);
    let (code, h, body) = get(&[]);
    assert_eq!(code, 429);
    let retry_after: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=4).contains(&retry_after), "{retry_after}");
    assert_eq!(h["x-ratelimit-limit"], "2");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reason"], "jira-burst-based");
    let reset = h["x-ratelimit-reset"].to_str().unwrap();
    assert!(
        reset.len() == 17 && reset.ends_with('Z'),
        "yyyy-MM-ddTHH:mmZ: {reset}"
    );
    assert_eq!(body["statusCode"], 429);
    std::thread::sleep(Duration::from_millis(retry_after * 1000 + 100));
    assert_eq!(get(&[]).0, 200, "a token is back after Retry-After");

    let quiet = SandboxProc::start_raw(&[
        "--rate-limit",
        "1",
        "--burst",
        "1",
        "--no-retry-after",
        "--html-429",
    ]);
    let get = || {
        call_full(
            &quiet,
            "GET",
            &quiet.api("customer/details"),
            None,
            None,
            &[],
        )
    };
    get();
    let (code, h, body) = get();
    assert_eq!(code, 429);
    assert!(h.get("retry-after").is_none());
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(body, Value::Null);
}

#[test]
fn every_fault_kind() {
    let sb = SandboxProc::start_raw(&["--task-latency-ms", "10"]);
    let set = |f: Value| assert_eq!(admin(&sb, "PUT", "faults", Some(&f)).0, 200);
    let get = || call_full(&sb, "GET", &sb.api("customer/details"), None, None, &[]);
    for (f, status, retry_after) in [
        (json!({"error500": 1.0}), 500, false),
        (json!({"error502": 1.0}), 502, false),
        (json!({"error503": 1.0}), 503, false),
        (json!({"error503RetryAfter": 1.0}), 503, true),
    ] {
        set(f);
        let (code, h, body) = get();
        assert_eq!(
            (code, h.get("retry-after").is_some()),
            (status, retry_after)
        );
        assert_eq!(body["statusCode"], status);
    }
    // Dropped before: the client sees a broken answer and nothing was applied.
    let send = |k: &str| {
        runtime().block_on(async {
            let r = csmport::site::client::http_client()
                .post(sb.api("customer/profile/bulk"))
                .bearer_auth(TOKEN)
                .header("Idempotency-Key", k)
                .json(&json!({"customerProfiles": [profile(7)]}))
                .send()
                .await;
            match r {
                Ok(resp) => resp.text().await.is_ok(),
                Err(_) => false,
            }
        })
    };
    set(json!({"dropBefore": 1.0}));
    assert!(!send("drop-1"), "the answer must break");
    assert_eq!(sb.state()["tasks"].as_array().unwrap().len(), 0);
    // Dropped after: the answer breaks, but the task exists; the same key finds it again.
    set(json!({"dropAfter": 1.0}));
    assert!(!send("drop-2"));
    let tasks = sb.state()["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 1);
    set(json!({}));
    let (_, again) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": [profile(7)]})),
        Some("drop-2"),
    );
    assert_eq!(again["id"], tasks[0]["id"]);
    // Slow answers.
    set(json!({"slow": 1.0, "slowMs": 400}));
    let t0 = Instant::now();
    assert_eq!(get().0, 200);
    assert!(t0.elapsed() >= Duration::from_millis(400));
    // FAILED with empty failures although the data was written.
    set(json!({"failedEmpty": 1.0}));
    let (_, t) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": [profile(8)]})),
        Some(&key()),
    );
    let t = wait_task(&sb, t["id"].as_str().unwrap());
    assert_eq!(
        (t["status"].as_str(), t["failures"].clone()),
        (Some("FAILED"), json!([]))
    );
    assert!(
        sb.state()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["email"] == "p8@example.com")
    );
    // The request log names every fault.
    let (_, log) = admin(&sb, "GET", "requests", None);
    let faults: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["fault"].as_str())
        .collect();
    for want in [
        "500",
        "502",
        "503",
        "503 with Retry-After",
        "dropped before applying",
        "slow 400ms",
    ] {
        assert!(faults.contains(&want), "{want} not in {faults:?}");
    }
    assert!(
        faults
            .iter()
            .any(|f| f.starts_with("dropped after applying"))
    );
    // Invalid settings are refused.
    let (code, _) = admin(&sb, "PUT", "faults", Some(&json!({"error500": 2.0})));
    assert_eq!(code, 400);
    let (code, _) = admin(&sb, "PUT", "faults", Some(&json!({"nonsense": 1})));
    assert_eq!(code, 400);
}

#[test]
fn faults_are_deterministic_under_a_seed() {
    let run = || {
        let sb = SandboxProc::start_raw(&["--fault-seed", "42", "--fault-500", "0.5"]);
        (0..20)
            .map(|_| call(&sb, "GET", "customer/details", None, None).0)
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
}

#[test]
fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.sqlite");
    let db = db.to_str().unwrap();
    let before = {
        let sb =
            SandboxProc::start_raw(&["--sample-data", "--data", db, "--task-latency-ms", "10"]);
        let (_, t) = call(
            &sb,
            "POST",
            "customer/profile/bulk",
            Some(&json!({"customerProfiles": items(3, profile)})),
            Some("persist-key"),
        );
        wait_task(&sb, t["id"].as_str().unwrap());
        call(&sb, "POST", "product", Some(&json!({"name": "Kept"})), None);
        call(
            &sb,
            "POST",
            "organization",
            Some(&json!({"name": "New Org"})),
            None,
        );
        call(&sb, "DELETE", "organization/101", None, None);
        sb.state()
    };
    let sb = SandboxProc::start_raw(&["--sample-data", "--data", db]);
    let after = sb.state();
    assert_eq!(
        after, before,
        "everything reloads, and the seed does not overwrite it"
    );
    // The idempotency key survived too: the same request finds the same task.
    let (_, t) = call(
        &sb,
        "POST",
        "customer/profile/bulk",
        Some(&json!({"customerProfiles": items(3, profile)})),
        Some("persist-key"),
    );
    assert_eq!(t["id"], before["tasks"][0]["id"]);
    // Reset goes back to the seed.
    assert_eq!(admin(&sb, "POST", "reset", None).0, 204);
    let reset = sb.state();
    assert_eq!(reset["customers"].as_array().unwrap().len(), 0);
    assert_eq!(reset["organizations"].as_array().unwrap().len(), 12);
}

#[test]
fn a_new_data_file_is_seeded_like_the_sample_and_a_running_task_finishes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.sqlite");
    let db = db.to_str().unwrap();
    let plain = SandboxProc::start_raw(&["--sample-data"]).state();
    let task = {
        // A new --data file gets the whole sample: fields and organizations.
        let sb =
            SandboxProc::start_raw(&["--sample-data", "--data", db, "--task-latency-ms", "60000"]);
        let s = sb.state();
        for k in [
            "organizations",
            "customerDetailFields",
            "organizationDetailFields",
        ] {
            assert_eq!(s[k], plain[k], "{k}");
        }
        assert!(!s["organizations"].as_array().unwrap().is_empty());
        // A task that is still running when the sandbox stops…
        let (code, t) = call(
            &sb,
            "POST",
            "customer/profile/bulk",
            Some(&json!({"customerProfiles": items(2, profile)})),
            Some("restart-key"),
        );
        assert_eq!(code, 202, "{t}");
        t["id"].as_str().unwrap().to_string()
    };
    // …finishes after a restart with the same file, its work done.
    let sb = SandboxProc::start_raw(&["--data", db, "--task-latency-ms", "10"]);
    let t = wait_task(&sb, &task);
    assert_eq!(t["status"], "FINISHED", "{t}");
    assert_eq!(sb.state()["customers"].as_array().unwrap().len(), 2);
    assert!(sb.state()["tasks"][0].get("job").is_none());
}

#[test]
fn bad_input_gets_a_4xx_and_changes_nothing() {
    let sb = SandboxProc::start_raw(&["--sample-data"]);
    let raw = |method: &str, path: &str, body: Vec<u8>| {
        runtime().block_on(async {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let resp = csmport::site::client::http_client()
                .request(m, sb.api(path))
                .bearer_auth(TOKEN)
                .header("X-ExperimentalApi", "opt-in")
                .header("Idempotency-Key", key())
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let code = resp.status().as_u16();
            (code, resp.text().await.unwrap_or_default())
        })
    };
    let before = sb.state();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "POST",
            "customer/profile/bulk",
            b"{not json".to_vec(),
            400,
            "Invalid request body",
        ),
        (
            "POST",
            "customer/profile/bulk",
            b"".to_vec(),
            400,
            "JSON body is required",
        ),
        (
            "POST",
            "customer/profile/bulk",
            br#"{"customerProfiles": 5}"#.to_vec(),
            400,
            "invalid type",
        ),
        (
            "POST",
            "customer/profile/bulk",
            br#"{"customerProfiles": [], "extra": 1}"#.to_vec(),
            400,
            "unknown field",
        ),
        (
            "POST",
            "customer/profile/bulk",
            br#"{"customerProfiles": [{"payload": {}}]}"#.to_vec(),
            400,
            "missing field `operationType`",
        ),
        (
            "POST",
            "customer/profile/bulk",
            br#"{"customerProfiles": [{"operationType": "MERGE", "payload": {}}]}"#.to_vec(),
            400,
            "unknown variant",
        ),
        (
            "POST",
            "customer/details",
            br#"{"name": "X"}"#.to_vec(),
            400,
            "missing field `type`",
        ),
        (
            "PUT",
            "customer/qm:nope/details?fieldName=Seats",
            br#"{"values": ["1"]}"#.to_vec(),
            404,
            "not found",
        ),
        (
            "PUT",
            "organization/101/details",
            br#"{"values": ["1"]}"#.to_vec(),
            400,
            "fieldName",
        ),
        (
            "PUT",
            "organization/101/details?fieldName=Nope",
            br#"{"values": ["1"]}"#.to_vec(),
            400,
            "Invalid detail field",
        ),
        ("GET", "organization/999999", vec![], 404, "not found"),
        ("GET", "product/nope", vec![], 404, "not found"),
        (
            "DELETE",
            "customer/details/..%2F..%2Fetc%2Fpasswd",
            vec![],
            404,
            "not found",
        ),
        ("DELETE", "customer/details/%00", vec![], 400, "printable"),
        ("GET", "nothing/here", vec![], 404, "No resource"),
        ("GET", "organization", vec![], 405, "Method not allowed"),
        (
            "POST",
            "customer/profile/bulk",
            vec![b' '; 10 * 1024 * 1024 + 1],
            413,
            "larger than",
        ),
    ];
    for (method, path, body, want, text) in cases {
        let (code, got) = raw(method, path, body);
        assert_eq!(code, want, "{method} {path}: {got}");
        assert!(got.contains(text), "{method} {path}: {text:?} not in {got}");
        let v: Value = serde_json::from_str(&got)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {got}"));
        assert_eq!(v["statusCode"], want);
    }
    let mut after = sb.state();
    after["tasks"] = before["tasks"].clone();
    assert_eq!(after, before, "no partial state");
    assert_eq!(sb.state()["tasks"].as_array().unwrap().len(), 0);
}

/// DELETE product removes the product and every entitlement to it (DELTAS A1).
#[test]
fn deleting_a_product_deletes_its_entitlements() {
    let sb = SandboxProc::start(&[]);
    let (code, p) = call(&sb, "POST", "product", Some(&json!({"name": "Gone"})), None);
    assert_eq!(code, 200, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (code, e) = call(
        &sb,
        "POST",
        "organization/101/entitlement",
        Some(&json!({"productId": pid})),
        None,
    );
    assert_eq!(code, 200, "{e}");
    assert_eq!(sb.state()["entitlements"].as_array().unwrap().len(), 1);
    let (code, _) = call(&sb, "DELETE", &format!("product/{pid}"), None, None);
    assert_eq!(code, 204);
    assert!(sb.state()["entitlements"].as_array().unwrap().is_empty());
}
