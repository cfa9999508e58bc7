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

fn field(sb: &SandboxProc, entity: &str, name: &str) -> Option<serde_json::Value> {
    let (_, v) = call(sb, "GET", &format!("{entity}/details"), None, None);
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .map(|f| f["type"].clone())
}

/// `--update-definitions`: options edited and fields renamed (their values follow) through
/// PUT `{entity}/details/{fieldName}`, listed in the summary; a type is never changed; without
/// the flag every such row fails with the way out; a second run sends nothing.
#[test]
fn update_definitions_edits_options_and_renames_but_never_types() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // The sample has rows that fail on purpose (exit 1); the others land.
    let out = ctx.import(&sb, &repo("sample-data/customers.csv"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let tiers = |sb: &SandboxProc, name: &str| {
        sb.state()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["details"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|v| v["name"] == name))
            })
            .count()
    };
    let valued = tiers(&sb, "Customer Tier");
    assert!(valued > 0);

    let file = ctx.write(
        "edits.csv",
        "entity,name,type,options,newName\n\
         customer,Customer Tier,SELECT,Free;Standard;Premium;Enterprise;Partner,Plan Tier\n\
         customer,Preferred Contact Channels,MULTISELECT,Email;Phone;Slack,\n\
         customer,Seats,TEXT,,\n\
         customer,Website,URL,,Homepage\n\
         customer,Notes,TEXT,,\n"
            .as_bytes(),
    );
    // Without the flag: the edits fail on their rows and say how to make them.
    let out = ctx.import_kind(&sb, "detail-fields", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert_eq!(
        failures.iter().map(|r| r[5].as_str()).collect::<Vec<_>>(),
        ["1", "2", "3", "4"]
    );
    for r in &failures {
        assert!(
            r[8].contains("--update-definitions") || r[8].contains("cannot be changed"),
            "{r:?}"
        );
    }
    assert!(field(&sb, "customer", "Plan Tier").is_none());

    // validate says what an import would edit, and edits nothing.
    let before = sb.requests().len();
    let out = ctx
        .csmport(Some(&sb))
        .args(["validate", "detail-fields"])
        .arg(&file)
        .arg("--update-definitions")
        .arg("--out")
        .arg(ctx.path("validated"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would edit customer field 'Website': renamed to 'Homepage'"),
        "{}",
        stdout(&out)
    );
    assert!(sb.writes_since(before).is_empty());

    // With it: two renames and two option edits land; the type change fails.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let before = sb.requests().len();
    let out = ctx.import_kind(&sb, "detail-fields", &file, &["--update-definitions"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("edited    customer field 'Customer Tier': renamed to 'Plan Tier'; options added: Partner"),
        "{text}"
    );
    assert!(
        text.contains(
            "edited    customer field 'Preferred Contact Channels': options removed: In-app"
        ),
        "{text}"
    );
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [5, 4, 1, 1]
    );
    assert_eq!(s["changed_definitions"].as_array().unwrap().len(), 3, "{s}");
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0][5], "3");
    assert!(
        failures[0][8].contains("of type NUMBER"),
        "{:?}",
        failures[0]
    );
    assert!(field(&sb, "customer", "Customer Tier").is_none());
    assert_eq!(
        field(&sb, "customer", "Plan Tier").unwrap()["options"],
        serde_json::json!(["Free", "Standard", "Premium", "Enterprise", "Partner"])
    );
    assert_eq!(
        field(&sb, "customer", "Preferred Contact Channels").unwrap()["options"],
        serde_json::json!(["Email", "Phone", "Slack"])
    );
    assert_eq!(field(&sb, "customer", "Homepage").unwrap()["name"], "URL");
    assert_eq!(tiers(&sb, "Plan Tier"), valued, "values follow a rename");
    let puts: Vec<String> = sb.writes_since(before);
    assert_eq!(puts.len(), 3, "{puts:?}");
    assert!(puts.iter().all(|w| w.contains("PUT")), "{puts:?}");

    // Again: the renamed fields are found under their new names; nothing is sent.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let before = sb.requests().len();
    let out = ctx.import_kind(&sb, "detail-fields", &file, &["--update-definitions"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [4, 1, 4]
    );
    assert!(s.get("changed_definitions").is_none(), "{s}");
    assert!(sb.writes_since(before).is_empty());
}

/// A rename whose answer is lost is not sent again (by its old name it would be a 404): the
/// site is read, and the row is reported as it is there.
#[test]
fn a_rename_whose_answer_is_lost_is_settled_by_reading_the_site() {
    let sb = SandboxProc::start(&[
        "--fault-seed",
        "1",
        "--fault-drop-after",
        "1",
        "--fault-method",
        "PUT",
    ]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "edits.csv",
        b"entity,name,type,options,newName\ncustomer,Website,URL,,Homepage\n",
    );
    let before = sb.requests().len();
    let out = ctx.import_kind(&sb, "detail-fields", &file, &["--update-definitions"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(ctx.summary()["succeeded"], 1);
    assert_eq!(sb.writes_since(before).len(), 1, "sent once");
    assert!(field(&sb, "customer", "Homepage").is_some());
}
