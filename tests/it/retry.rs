//! `csmport retry FAILURES.csv`: exactly the report's rows again, as a new run; rows fixed in
//! the report go through, the others fail again; an edited header is refused.

use crate::common::*;

#[test]
fn a_report_is_retried_as_a_new_run() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName,Customer Tier\na@x.example,A,Free\nnot-an-email,B,Free\nc@x.example,C,Gold\nd@x.example,D,Premium\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = ctx.path("run/failures.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // The user fixes the email of one row and leaves the other as it was.
    std::fs::write(&report, text.replace("not-an-email", "b@x.example")).unwrap();

    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(&report)
        .arg("--out")
        .arg(ctx.path("again"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("again/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        ["rows", "succeeded", "failed"].map(|k| s[k].as_u64().unwrap()),
        [2, 1, 1]
    );
    let (header, failures) = read_csv(&ctx.path("again/failures.csv"));
    assert_eq!(
        header,
        [
            "email",
            "displayName",
            "Customer Tier",
            "_row",
            "_stage",
            "_field",
            "_error"
        ]
    );
    assert_eq!(failures[0][0], "c@x.example");
    assert!(
        failures[0][6].contains("'Gold' is not an option"),
        "{failures:?}"
    );
    let state = sb.state();
    let emails: Vec<&str> = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    assert!(emails.contains(&"b@x.example"));

    // A report whose header was edited is refused, nothing is sent.
    let edited = ctx.write(
        "edited.csv",
        b"email,displayName,_row,stage,_field,_error\n",
    );
    let out = ctx
        .csmport(Some(&sb))
        .args(["retry"])
        .arg(&edited)
        .args(["--kind", "customers"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("header was edited: no _stage column"),
        "{}",
        stderr(&out)
    );
    // Without a run folder beside it, the kind must be given.
    let lone = ctx.write("lone.csv", b"email,_row,_stage,_field,_error\n");
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(&lone)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("pass --kind"), "{}", stderr(&out));
}

#[test]
fn a_report_with_rows_still_open_is_refused() {
    // Every bulk call answers 503: nothing is applied, and every row stays open for `resume`.
    // Retrying that report could send rows a second time under new keys: refused, with the
    // resume command.
    let sb = SandboxProc::start_raw(&["--fault-503", "1", "--fault-bulk-only"]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName\na@x.example,A\nb@x.example,B\n",
    );
    let out = ctx.import(&sb, &file, &["--retries", "1", "--max-wait", "1"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let report = ctx.path("run/failures.csv");
    let before = sb.requests().len();
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(sb.writes_since(before).is_empty(), "nothing sent");
    let err = stderr(&out);
    assert!(
        err.contains("2 rows have no outcome yet") && err.contains("csmport resume"),
        "{err}"
    );
}
