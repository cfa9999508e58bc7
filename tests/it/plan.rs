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

#[test]
fn one_ctrl_c_stops_a_plan_and_resume_goes_on_from_the_interrupted_step() {
    // Every bulk submission takes a second: the signal lands inside a step.
    let sb = SandboxProc::start(&[
        "--fault-slow",
        "1",
        "--fault-slow-ms",
        "1000",
        "--fault-bulk-only",
    ]);
    let ctx = Ctx::new();
    let child = ctx
        .csmport(Some(&sb))
        .args(["import", "--plan"])
        .arg(repo("sample-data/migration.toml"))
        .args(["--service-desk", "1", "--out"])
        .arg(ctx.path("run"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bulk = |sb: &SandboxProc| {
        sb.requests()
            .iter()
            .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().contains("bulk"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while bulk(&sb) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second bulk submission"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = sb.requests().len();
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(err.matches("csmport: interrupted").count(), 1, "{err}");
    // What was in flight at the signal may land; nothing after it is sent.
    let writes = sb.writes_since(before);
    assert!(writes.len() <= 1, "{writes:?}");
    let s = ctx.summary();
    assert_eq!(s["exit_code"], 4, "{s}");
    let states: Vec<&str> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    let stopped = states
        .iter()
        .position(|s| *s != "done")
        .expect("a step stopped");
    assert_eq!(states[stopped], "interrupted", "{states:?}");
    assert!(
        states[stopped + 1..].iter().all(|s| *s == "not_started"),
        "{states:?}"
    );
    assert!(stopped + 1 < states.len(), "{states:?}");
    for step in &s["steps"].as_array().unwrap()[stopped + 1..] {
        assert!(!std::path::Path::new(step["run_dir"].as_str().unwrap()).exists());
    }
    assert!(stdout(&out).contains("csmport resume"), "{}", stdout(&out));
    // status says the same of each step.
    let o = ctx
        .csmport(None)
        .args(["status", "--json"])
        .arg(ctx.path("run"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let seen: Vec<&str> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = states
        .iter()
        .map(|s| match *s {
            "interrupted" => "unfinished",
            other => other,
        })
        .collect();
    assert_eq!(seen, want);
    let step = &st[stopped]["status"]["rows"];
    let sum = &s["steps"][stopped]["summary"];
    assert_eq!(step["succeeded"], sum["succeeded"], "{step} {sum}");
    assert_eq!(step["failed"], sum["failed"], "{step} {sum}");

    // The site behaves; resume goes on from the interrupted step and ends as a plan run
    // without the interruption would.
    set_faults(&sb, serde_json::json!({}));
    let out = ctx.resume(&sb);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert!(
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "done"),
        "{s}"
    );
    let whole = SandboxProc::start(&[]);
    let other = Ctx::new();
    other.import_sample_plan(&whole, "run");
    let (a, b) = (sb.state(), whole.state());
    for key in ["customers", "organizations", "products"] {
        assert_eq!(
            a[key].as_array().unwrap().len(),
            b[key].as_array().unwrap().len(),
            "{key}"
        );
    }
    let t = other.summary();
    for (x, y) in s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(t["steps"].as_array().unwrap())
    {
        assert_eq!(
            x["summary"]["succeeded"], y["summary"]["succeeded"],
            "{}",
            x["kind"]
        );
    }
}

#[test]
fn status_of_a_plan_names_a_refused_step_and_why() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let orgs = ctx.write("orgs.csv", b"name\nAcme\n");
    let plan = ctx.write(
        "plan.toml",
        format!(
            "[[step]]\nkind = \"organizations\"\nfile = \"{}\"\n\n[[step]]\nkind = \"customers\"\nfile = \"missing.csv\"\n",
            orgs.display()
        )
        .as_bytes(),
    );
    let out = ctx
        .csmport(Some(&sb))
        .args(["import", "--plan"])
        .arg(&plan)
        .args(["--out", "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(ctx.summary()["steps"][1]["state"], "refused");
    let out = ctx
        .csmport(None)
        .args(["status", "run", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s[0]["state"], "done", "{s}");
    assert_eq!(s[1]["state"], "refused", "{s}");
    let out = ctx.csmport(None).args(["status", "run"]).output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("missing.csv: refused, nothing sent: ") && text.contains("cannot open"),
        "{text}"
    );
}
