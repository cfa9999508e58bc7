//! `csmport status`: what a run folder says, read from it alone (the sandbox is stopped or
//! never asked), as text and as `--json`.

use crate::common::*;

fn customers(ctx: &Ctx, n: usize) -> std::path::PathBuf {
    let mut csv = String::from("email,displayName\n");
    for i in 0..n {
        csv.push_str(&format!("user{i}@example.com,User {i}\n"));
    }
    ctx.write("customers.csv", csv.as_bytes())
}

fn status_json(ctx: &Ctx, dir: Option<&str>) -> serde_json::Value {
    let mut c = ctx.csmport(None);
    c.arg("status");
    if let Some(d) = dir {
        c.arg(ctx.path(d));
    }
    let out = c.arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_finished_run_has_nothing_left_and_names_its_reports() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let mut csv = String::from("email,displayName\n");
    for i in 0..30 {
        csv.push_str(&format!("user{i}@example.com,User {i}\n"));
    }
    csv.push_str("not-an-email,Bad\n");
    let file = ctx.write("c.csv", csv.as_bytes());
    let out = ctx.import(&sb, &file, &["--batch-size", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    drop(sb);
    let s = status_json(&ctx, Some("run"));
    assert_eq!(s["kind"], "customers");
    assert_eq!(s["input_state"], "unchanged");
    assert_eq!(
        (
            s["rows"]["succeeded"].as_u64(),
            s["rows"]["failed"].as_u64(),
            s["rows"]["failed_by_stage"]["validate"].as_u64(),
            s["rows"]["open"].as_u64()
        ),
        (Some(30), Some(1), Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(s["tasks"]["submitted"], 3, "{s}");
    assert_eq!(s["tasks"]["live"].as_array().unwrap().len(), 0);
    assert_eq!(s["ended"]["exit_code"], 1);
    assert_eq!(
        s["resume"]["next"],
        "nothing to do: every row has its outcome"
    );
    let reports: Vec<&str> = s["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reports.iter().any(|r| r.ends_with("failures.csv"))
            && reports.iter().any(|r| r.ends_with("report.html")),
        "{reports:?}"
    );

    // The text says the same, and a changed input is called out with what resume would do.
    std::fs::write(&file, "email\nsomeone@else.io\n").unwrap();
    let out = ctx
        .csmport(None)
        .arg("status")
        .arg(ctx.path("run"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("30 succeeded, 1 failed (1 validate), 0 skipped, 0 open"),
        "{text}"
    );
    assert!(text.contains("CHANGED since the run began"), "{text}");
    assert!(text.contains("resume would refuse"), "{text}");
}

#[test]
fn open_tasks_are_listed_with_what_resume_would_do() {
    // Tasks that never finish: the run ends with its rows open and its tasks live.
    let sb = SandboxProc::start_raw(&["--fault-seed", "9", "--fault-stuck-task", "1"]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 120);
    let out = ctx.import(&sb, &file, &["--batch-size", "50", "--task-timeout", "1"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let before = sb.requests().len();
    let s = status_json(&ctx, Some("run"));
    assert_eq!(sb.requests().len(), before, "status never asks the site");
    assert_eq!(s["rows"]["open"], 120, "{s}");
    let live = s["tasks"]["live"].as_array().unwrap();
    assert_eq!(live.len(), 3, "{s}");
    assert_eq!(
        (live[0]["first_row"].as_u64(), live[0]["last_row"].as_u64()),
        (Some(1), Some(50))
    );
    assert_eq!(s["resume"]["poll"], 3);
    assert_eq!(s["resume"]["possible"], true);
    assert!(
        s["resume"]["next"]
            .as_str()
            .unwrap()
            .starts_with("poll 3 tasks (never send again)"),
        "{s}"
    );
}

#[test]
fn without_a_folder_the_latest_run_is_shown_and_a_validation_has_nothing_to_resume() {
    let ctx = Ctx::new();
    let file = customers(&ctx, 5);
    for _ in 0..2 {
        let out = ctx
            .csmport(None)
            .args(["validate", "customers"])
            .arg(&file)
            .arg("--schema")
            .arg(repo("sample-data/customer-detail-fields.json"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // Run folders are named by the second they start in.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let mut runs: Vec<_> = std::fs::read_dir(ctx.path("csmport-runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    let s = status_json(&ctx, None);
    let latest = runs[1].file_name().unwrap().to_str().unwrap();
    assert!(s["run_dir"].as_str().unwrap().ends_with(latest), "{s}");
    assert_eq!(s["kind"], "customers");
    // Each valid row counted once.
    assert_eq!(s["rows"]["succeeded"], 5, "{s}");
    assert_eq!(s["resume"]["possible"], false);
    assert!(
        s["resume"]["next"].as_str().unwrap().contains("no journal"),
        "{s}"
    );

    // Not a run folder: exit 2, naming it.
    let out = ctx
        .csmport(None)
        .arg("status")
        .arg(ctx.path("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
}
