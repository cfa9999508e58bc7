//! `csmport import customer-details | organization-details`: wide and long layouts, references
//! resolved (emails through --service-desk, organization names), bad rows failed on their rows,
//! operations packed into details/bulk, and a re-run that sends nothing.

use crate::common::*;

fn details_of(sb: &SandboxProc, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, v) = call(sb, "POST", path, Some(&body), None);
    assert_eq!(status, 200, "{v}");
    v["results"][0]["details"].clone()
}

#[test]
fn customer_details_wide_layout_by_email() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.import_kind(
        &sb,
        "customer-accounts",
        &repo("sample-data/customer-accounts.csv"),
        &[],
    );
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let file = repo("sample-data/customer-details.csv");
    let out = ctx.import_kind(&sb, "customer-details", &file, &["--service-desk", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [6, 3, 3, 1]
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[6].as_str(), r[8].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("3", "Renewal Date"),
            ("4", "email"),
            ("5", "Customer Tier")
        ]
    );
    let (_, ok) = ctx.read_csv(&ctx.path("run/successes.csv"));
    let peter = &ok[0][7];
    assert!(
        peter.starts_with("qm:"),
        "customer id in successes.csv: {ok:?}"
    );
    let d = details_of(
        &sb,
        "customer/profile/fetch",
        serde_json::json!({"customerIds": [peter]}),
    );
    assert_eq!(
        d,
        serde_json::json!([
            {"name": "Customer Tier", "values": ["Premium"]},
            {"name": "Renewal Date", "values": ["2027-03-31"]},
            {"name": "Preferred Contact Channels", "values": ["Email", "Slack"]},
            {"name": "Seats", "values": ["40"]}
        ])
    );
    let bulk = sb
        .requests()
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/customer/details/bulk")
        })
        .count();
    assert_eq!(bulk, 1, "2 customers, 7 operations: one request");

    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import_kind(&sb, "customer-details", &file, &["--service-desk", "1"]);
    assert!(
        stdout(&out).contains("unchanged 3 rows"),
        "{}",
        stdout(&out)
    );
    assert_eq!(ctx.summary()["batches"], 0);
}

#[test]
fn organization_details_long_layout_by_name() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = repo("sample-data/organization-details.csv");
    let out = ctx.import_kind(&sb, "organization-details", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [8, 4, 4, 1]
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[4].as_str(), r[6].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("5", "name"),
            ("6", "field"),
            ("7", "Region"),
            ("8", "operation")
        ]
    );
    assert!(
        failures[1][7].contains("detail field of customers"),
        "{:?}",
        failures[1]
    );
    let d = details_of(
        &sb,
        "organization/profile/fetch",
        serde_json::json!({"organizationIds": ["101"]}),
    );
    assert!(
        d.as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "Region", "values": ["EMEA"]})),
        "{d}"
    );
    let d = details_of(
        &sb,
        "organization/profile/fetch",
        serde_json::json!({"organizationIds": ["102"]}),
    );
    assert_eq!(
        d,
        serde_json::json!([{"name": "Customer Segment", "values": ["Enterprise", "SMB"]}])
    );

    // Long layout with 1,001 operations on 1,001 organizations: two requests.
    let mut big = String::from("name,field,values\n");
    let mut names = Vec::new();
    for i in 0..1001 {
        names.push(format!("Bulk Org {i}"));
        big.push_str(&format!("Bulk Org {i},Industry,Trade {i}\n"));
    }
    let orgs = ctx.write(
        "orgs.csv",
        format!("name\n{}\n", names.join("\n")).as_bytes(),
    );
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import_kind(&sb, "organization-accounts", &orgs, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = sb.requests().len();
    let big = ctx.write("big.csv", big.as_bytes());
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import_kind(&sb, "organization-details", &big, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bulk: Vec<_> = sb.requests()[before..]
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/organization/details/bulk")
        })
        .cloned()
        .collect();
    assert_eq!(bulk.len(), 2, "1,000 operations, then 1");
}
