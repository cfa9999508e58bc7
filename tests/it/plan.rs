//! Several files in one run: `import --plan` and `KIND FILE` pairs run in dependency order into
//! one run folder; the CRM pair lands with every customer in the right organization.

use crate::common::*;

#[test]
fn a_plan_runs_in_dependency_order_and_lands_the_crm_pair() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx.import_sample_plan(&sb, "run");
    let text = stdout(&out);
    assert!(text.contains("plan: 8 steps in dependency order"), "{text}");
    let s = ctx.summary();
    let kinds: Vec<&str> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "detail-fields",
            "organization-accounts",
            "organizations",
            "customer-accounts",
            "customers",
            "organization-details",
            "products",
            "entitlements"
        ]
    );
    let contacts = &s["steps"][4];
    assert_eq!(contacts["summary"]["succeeded"], 7, "{contacts}");
    assert!(
        ctx.path("run/05-customers-crm-contacts/successes.csv")
            .exists()
    );
    // Entitlements found the products and customers the earlier steps made.
    assert_eq!(s["steps"][7]["summary"]["succeeded"], 4);

    // Every contact is in the organizations its row names, and none was created twice.
    let state = sb.state();
    let orgs = state["organizations"].as_array().unwrap();
    let id_of = |name: &str| {
        let hits: Vec<_> = orgs.iter().filter(|o| o["name"] == name).collect();
        assert_eq!(hits.len(), 1, "{name}");
        hits[0]["id"].as_str().unwrap().to_string()
    };
    let customers = state["customers"].as_array().unwrap();
    let (_, contacts) = read_csv(&repo("sample-data/crm-contacts.csv"));
    for row in contacts {
        let c = customers
            .iter()
            .find(|c| c["email"] == row[0].as_str())
            .unwrap();
        let mut want: Vec<String> = row[2].split(';').map(id_of).collect();
        want.sort();
        let mut got: Vec<String> = c["organizationIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, want, "{}", row[0]);
    }

    // The same plan again: every row that went through is found on the site as it is in the
    // files, nothing is written, and each step's summary says so.
    let before = sb.requests().len();
    ctx.import_sample_plan(&sb, "again");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("again/summary.json")).unwrap())
            .unwrap();
    let first = ctx.summary();
    for (a, b) in first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["steps"].as_array().unwrap())
    {
        assert_eq!(
            b["summary"]["unchanged"], a["summary"]["succeeded"],
            "{}: {}",
            b["kind"], b["summary"]
        );
    }
    let writes: Vec<_> = sb.requests()[before..]
        .iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap_or("");
            r["method"] != "GET" && !p.ends_with("/fetch")
        })
        .map(|r| r["path"].clone())
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn kind_file_pairs_and_a_bad_plan() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // Customers first on the command line; organizations still run first.
    let out = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(repo("sample-data/crm-contacts.csv"))
        .arg("organizations")
        .arg(repo("sample-data/crm-accounts.csv"))
        .arg("--no-create-organizations")
        .arg("--out")
        .arg(ctx.path("run"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(s["steps"][0]["kind"], "organizations");
    assert_eq!(s["steps"][1]["summary"]["succeeded"], 7);

    let bad = ctx.write(
        "plan.toml",
        b"[[step]]\nkind = \"tickets\"\nfile = \"t.csv\"\n",
    );
    let out = ctx
        .csmport(Some(&sb))
        .args(["import", "--plan"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown kind 'tickets'"),
        "{}",
        stderr(&out)
    );
}
