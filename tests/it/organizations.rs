//! `csmport import organizations`: upsert by name, detail fields, failures on the right rows,
//! duplicates by name, and a second run that changes nothing.

use crate::common::*;

#[test]
fn organizations_import_by_name_with_details() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx.import_kind(
        &sb,
        "organizations",
        &repo("sample-data/organizations.csv"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["succeeded"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(6), Some(3), Some(3))
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str, &str)> = failures
        .iter()
        .map(|r| (r[5].as_str(), r[6].as_str(), r[7].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("4", "validate", "Website"),
            ("5", "validate", "name"),
            ("6", "validate", "Region")
        ]
    );
    assert!(
        failures[1][8].contains("'nordlys ab' is already in row 2"),
        "{:?}",
        failures[1]
    );

    let state = sb.state();
    let orgs = state["organizations"].as_array().unwrap();
    assert_eq!(
        orgs.len(),
        14,
        "12 seeded + 2 new; Acme Pty Ltd was updated, not duplicated"
    );
    let acme = orgs.iter().find(|o| o["name"] == "Acme Pty Ltd").unwrap();
    assert_eq!(acme["id"], "101");
    assert_eq!(
        acme["details"],
        serde_json::json!([
            {"name": "Region", "values": ["APAC"]},
            {"name": "Industry", "values": ["Manufacturing"]},
            {"name": "Website", "values": ["https://acme.example/"]},
            {"name": "Customer Segment", "values": ["Enterprise"]}
        ])
    );
    let pixel = orgs
        .iter()
        .find(|o| o["name"] == "Pixel & Pine Studio")
        .unwrap();
    assert_eq!(
        pixel["details"][0],
        serde_json::json!({"name": "Region", "values": ["AMER"]}),
        "option spelled as the site does"
    );
    assert!(
        pixel["id"].as_str().unwrap().parse::<u64>().is_ok(),
        "numeric ids"
    );

    // The same file again: nothing new, nothing sent, and the summary says so.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let before = sb.requests().len();
    let out = ctx.import_kind(
        &sb,
        "organizations",
        &repo("sample-data/organizations.csv"),
        &[],
    );
    assert_eq!(sb.state()["organizations"].as_array().unwrap().len(), 14);
    assert_eq!(ctx.summary()["unchanged"], 3, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("unchanged 3 rows"),
        "{}",
        stdout(&out)
    );
    assert!(
        sb.requests()[before..]
            .iter()
            .all(|r| !r["path"].as_str().unwrap().ends_with("/bulk")),
        "no bulk request the second time"
    );
    let (_, ok) = ctx.read_csv(&ctx.path("run/successes.csv"));
    assert!(
        ok.iter().all(|r| !r.last().unwrap().is_empty()),
        "ids: {ok:?}"
    );
}

#[test]
fn organization_failures_land_on_their_rows() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // Row 2 names an id the site does not have: UPSERT by id never creates (task failure).
    let file = ctx.write(
        "o.csv",
        b"id,name,Region\n101,,EMEA\n999,,APAC\n,New Co,AMER\n",
    );
    let out = ctx.import_kind(&sb, "organizations", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        (failures[0][3].as_str(), failures[0][4].as_str()),
        ("2", "task")
    );
    assert!(
        failures[0][6].contains("Organization not found"),
        "{:?}",
        failures[0]
    );
    let (_, successes) = ctx.read_csv(&ctx.path("run/successes.csv"));
    assert_eq!(successes[0][4], "101", "the id the row gave");
    // No name and no id; a non-numeric id; no identifying column at all.
    let file = ctx.write("p.csv", b"id,name,Region\n,,EMEA\nabc,X,\n");
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    ctx.import_kind(&sb, "organizations", &file, &[]);
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[3].as_str(), r[6].as_str()))
        .collect();
    assert_eq!(got.len(), 2, "{failures:?}");
    assert!(
        got[0]
            .1
            .contains("every organization needs a name (or an id)"),
        "{got:?}"
    );
    assert!(
        got[1].1.contains("'abc' is not an organization id"),
        "{got:?}"
    );
    let file = ctx.write("q.csv", b"Region\nEMEA\n");
    let out = ctx.import_kind(&sb, "organizations", &file, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no 'name' or 'id' column"),
        "{}",
        stderr(&out)
    );
}
