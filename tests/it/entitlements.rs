//! `csmport import entitlements`: products for organizations (by name or id) and customers (by
//! email, through the JSM customers of --service-desk), detail values checked against the
//! site's entitlement fields, failures on the right rows, and a re-run that adds nothing.

use crate::common::*;

fn prepare(sb: &SandboxProc, ctx: &Ctx) {
    for (kind, file) in [
        ("detail-fields", "sample-data/detail-fields.csv"),
        ("products", "sample-data/products.csv"),
        ("customer-accounts", "sample-data/customer-accounts.csv"),
    ] {
        ctx.import_kind(sb, kind, &repo(file), &[]);
        std::fs::remove_dir_all(ctx.path("run")).unwrap();
    }
}

#[test]
fn entitlements_resolve_their_references_and_are_not_duplicated() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    prepare(&sb, &ctx);
    let file = repo("sample-data/entitlements.csv");
    let out = ctx.import_kind(&sb, "entitlements", &file, &["--service-desk", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed"].map(|k| s[k].as_u64().unwrap()),
        [9, 4, 5]
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[5].as_str(), r[7].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("5", "organization"),
            ("6", "product"),
            ("7", "product"),
            ("8", "Service Level"),
            ("9", "customer")
        ],
        "{failures:?}"
    );
    assert!(failures[0][8].contains("no organization 'Nowhere Ltd'"));
    assert!(failures[1][8].contains("no product 'Imaginary Product'"));
    assert!(failures[2][8].contains("row 1"));
    assert!(failures[3][8].contains("'Platinum' is not an option"));

    let (status, acme) = call(
        &sb,
        "GET",
        "entitlements?entityType=ORGANIZATION&entityId=101",
        None,
        None,
    );
    assert_eq!(status, 200);
    let list = acme["results"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{acme}");
    let pro = list
        .iter()
        .find(|e| e["product"]["name"] == "Widget Pro")
        .unwrap();
    let mut details = pro["details"].as_array().unwrap().clone();
    details.sort_by_key(|d| d["name"].to_string());
    assert_eq!(
        serde_json::Value::Array(details),
        serde_json::json!([
            {"name": "Seats Purchased", "values": ["25"]},
            {"name": "Service Level", "values": ["Gold"]}
        ])
    );
    let (_, ok) = ctx.read_csv(&ctx.path("run/successes.csv"));
    assert_eq!(ok.len(), 4);
    assert!(
        ok.iter().all(|r| !r[6].is_empty()),
        "entitlement ids: {ok:?}"
    );

    // Again: every entitlement is already there.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let before = sb.requests().len();
    ctx.import_kind(&sb, "entitlements", &file, &["--service-desk", "1"]);
    assert_eq!(ctx.summary()["unchanged"], 4);
    assert_eq!(sb.writes_since(before), Vec::<String>::new());

    // Without a service project, customers given by email cannot be found.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    ctx.import_kind(&sb, "entitlements", &file, &[]);
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let row3 = failures.iter().find(|r| r[5] == "3").unwrap();
    assert!(row3[8].contains("--service-desk"), "{row3:?}");
}

#[test]
fn a_dry_run_over_listings_without_their_lists_claims_nothing() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    prepare(&sb, &ctx);
    let file = repo("sample-data/entitlements.csv");
    let out = ctx.import_kind(&sb, "entitlements", &file, &["--service-desk", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    // The rows are on the site now. Behind a proxy that renames every list, "no entitlements"
    // would have every row created again: the dry run stops instead, claiming nothing.
    set_quirks(&sb, &["renamed-lists"]);
    let before = sb.requests().len();
    let out = ctx.import_kind(
        &sb,
        "entitlements",
        &file,
        &["--service-desk", "1", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("has no list"), "{said}");
    assert!(
        !said.contains("would create") && !said.contains("valid"),
        "{said}"
    );
    assert!(sb.writes_since(before).is_empty());
}
