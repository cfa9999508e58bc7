//! `csmport import detail-fields`: definitions created per entity (bulk for customers and
//! organizations, one by one for entitlements), existing identical ones left alone, clashes and
//! bad rows failed on their rows, and a second run that sends nothing.

use crate::common::*;

fn names(sb: &SandboxProc, entity: &str) -> Vec<(String, String)> {
    let (status, v) = call(sb, "GET", &format!("{entity}/details"), None, None);
    assert_eq!(status, 200);
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn detail_fields_are_created_once_and_clashes_named() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = repo("sample-data/detail-fields.csv");
    let before = (
        names(&sb, "customer").len(),
        names(&sb, "organization").len(),
    );
    let out = ctx.import_kind(&sb, "detail-fields", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [12, 8, 4, 2]
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[4].as_str(), r[6].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("7", "name"),
            ("10", "name"),
            ("11", "type"),
            ("12", "name")
        ]
    );
    assert!(
        failures[1][7].contains("of type NUMBER"),
        "{:?}",
        failures[1]
    );
    assert!(
        failures[3][7].contains("already in row 5"),
        "{:?}",
        failures[3]
    );

    let customer = names(&sb, "customer");
    assert_eq!(customer.len(), before.0 + 2);
    assert!(customer.contains(&("Support Plan".into(), "MULTISELECT".into())));
    assert_eq!(names(&sb, "organization").len(), before.1 + 2);
    assert!(names(&sb, "entitlement").contains(&("Service Level".into(), "SELECT".into())));
    let bulk = sb
        .requests()
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/details/definitions/bulk")
        })
        .count();
    assert_eq!(bulk, 2, "one request per entity");

    // Again: everything valid is already there; nothing is sent.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let requests = sb.requests().len();
    let out = ctx.import_kind(&sb, "detail-fields", &file, &[]);
    assert!(
        stdout(&out).contains("unchanged 8 rows"),
        "{}",
        stdout(&out)
    );
    let s = ctx.summary();
    assert_eq!(
        ["succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [8, 4, 8]
    );
    let writes = sb.requests()[requests..]
        .iter()
        .filter(|r| r["method"] != "GET")
        .count();
    assert_eq!(writes, 0);
}

#[test]
fn a_definitions_file_without_a_type_column_is_refused() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("f.csv", b"entity,name\ncustomer,X\n");
    let out = ctx.import_kind(&sb, "detail-fields", &file, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no 'type' column"),
        "{}",
        stderr(&out)
    );
}
