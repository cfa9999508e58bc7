//! `csmport prune`: old run folders go by age and count; a run with rows open and a delete's
//! backup stay unless forced; what went and the space freed are printed.

use crate::common::{Ctx, SandboxProc, set_faults, stderr, stdout};

#[test]
fn prune_removes_old_finished_runs_and_keeps_open_ones_and_backups() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName\na@example.com,A\nb@example.com,B\n",
    );
    let import = |out: &str, extra: &[&str]| {
        ctx.csmport(Some(&sb))
            .args(["import", "customers"])
            .arg(&file)
            .args(["--out", out])
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(import("csmport-runs/1-done", &[]).status.code(), Some(0));
    // A task that never ends: the rows stay open (exit 4).
    set_faults(&sb, serde_json::json!({"stuckTask": 1.0}));
    let out = import("csmport-runs/2-open", &["--task-timeout", "1"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    set_faults(&sb, serde_json::json!({}));
    let gone = ctx.write("gone.csv", b"email\na@example.com\n");
    let out = ctx
        .csmport(Some(&sb))
        .args(["delete", "customers"])
        .arg(&gone)
        .args([
            "--yes",
            "--service-desk",
            "1",
            "--out",
            "csmport-runs/3-delete",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(import("csmport-runs/4-done", &[]).status.code(), Some(0));
    assert_eq!(import("csmport-runs/5-done", &[]).status.code(), Some(0));
    let left = || {
        let mut v: Vec<String> = std::fs::read_dir(ctx.path("csmport-runs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };

    let prune = |args: &[&str]| ctx.csmport(None).arg("prune").args(args).output().unwrap();
    let out = prune(&["--keep", "1", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("would remove 2 run folders"),
        "{}",
        stdout(&out)
    );
    assert_eq!(left().len(), 5, "a dry run removed something");

    let out = prune(&["--keep", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed: Vec<&str> = s["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["dir"].as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        ["csmport-runs/1-done", "csmport-runs/4-done"],
        "{s}"
    );
    assert!(s["freed_bytes"].as_u64().unwrap() > 0);
    let kept = s["kept"].as_array().unwrap();
    assert!(
        kept[0]["why"].as_str().unwrap().contains("2 rows open"),
        "{s}"
    );
    assert!(kept[1]["why"].as_str().unwrap().contains("backup"), "{s}");
    assert_eq!(left(), ["2-open", "3-delete", "5-done"]);

    // Text: each folder, and the space freed; --force takes the rest but the newest.
    let out = prune(&["--keep", "1", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("removed csmport-runs/2-open ("), "{text}");
    assert!(
        text.contains("removed 2 run folders,") && text.contains("freed"),
        "{text}"
    );
    assert_eq!(left(), ["5-done"]);
    // Nothing older than a day here.
    let out = prune(&["--older-than", "1"]);
    assert!(
        stdout(&out).contains("removed 0 run folders"),
        "{}",
        stdout(&out)
    );
    let out = prune(&["--keep", "3", "no-such-folder"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = prune(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--keep N"), "{}", stderr(&out));
}
