//! `csmport import customer-accounts | organization-accounts`: the basic-record endpoints
//! (customer/bulk, organization/bulk, 50 a request), exact counts and failed rows, ids of
//! organizations in successes.csv, and a second run that changes nothing.

use crate::common::*;

#[test]
fn organization_accounts_upsert_by_name_and_report_ids() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = repo("sample-data/organization-accounts.csv");
    let out = ctx.import_kind(&sb, "organization-accounts", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    let counts = |s: &serde_json::Value| {
        ["rows", "succeeded", "failed", "skipped"].map(|k| s[k].as_u64().unwrap())
    };
    assert_eq!(counts(&s), [6, 4, 1, 1], "{s}");
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0][2], "6");
    assert!(
        failures[0][5].contains("already in row 2"),
        "{:?}",
        failures[0]
    );

    // Every request went to organization/bulk, with at most 50 items.
    let bulk: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/organization/bulk")
        })
        .collect();
    assert_eq!(bulk.len(), 1);

    let state = sb.state();
    let orgs = state["organizations"].as_array().unwrap();
    assert_eq!(
        orgs.len(),
        15,
        "12 seeded + 3 new; Acme updated, not duplicated"
    );
    let (_, ok) = ctx.read_csv(&ctx.path("run/successes.csv"));
    for row in &ok {
        let org = orgs.iter().find(|o| o["name"] == row[0].as_str()).unwrap();
        assert_eq!(row[3], org["id"].as_str().unwrap(), "id of {}", row[0]);
    }
    assert_eq!(
        ok.iter().find(|r| r[0] == "Acme Pty Ltd").unwrap()[3],
        "101"
    );

    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    ctx.import_kind(&sb, "organization-accounts", &file, &[]);
    assert_eq!(sb.state()["organizations"].as_array().unwrap().len(), 15);
}

#[test]
fn customer_accounts_create_and_fail_on_the_right_rows() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = repo("sample-data/customer-accounts.csv");
    let out = ctx.import_kind(&sb, "customer-accounts", &file, &["--batch-size", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed"].map(|k| s[k].as_u64().unwrap()),
        [7, 5, 2]
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[2].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(got, vec![("5", "email"), ("6", "email")]);
    assert!(
        failures[1][5].contains("already in row 1"),
        "{:?}",
        failures[1]
    );

    let bulk: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/customer/bulk"))
        .collect();
    assert_eq!(bulk.len(), 3, "5 valid rows in batches of 2");
    let state = sb.state();
    let customers = state["customers"].as_array().unwrap();
    let emails: Vec<&str> = customers
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    for e in [
        "peter.gibbons@initech.example",
        "samir.n@initech.example",
        "michael.bolton@initech.example",
        "art.vandelay@vandelay.example",
        "milton@initech.example",
    ] {
        assert_eq!(emails.iter().filter(|x| **x == e).count(), 1, "{e}");
    }

    // The same file again changes nothing.
    let before = customers.len();
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    ctx.import_kind(&sb, "customer-accounts", &file, &[]);
    assert_eq!(sb.state()["customers"].as_array().unwrap().len(), before);
}
