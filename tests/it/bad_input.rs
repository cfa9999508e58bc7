//! Bad input: one clear line naming the file (and row/column), exit 2, nothing sent.

use crate::common::*;

fn assert_nothing_sent(sb: &SandboxProc) {
    let state = sb.state();
    assert_eq!(state["tasks"].as_array().unwrap().len(), 0, "{state}");
    assert_eq!(state["customers"].as_array().unwrap().len(), 0);
}

#[test]
fn file_level_problems_exit_2_with_the_file_named() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let cases: Vec<(&str, Option<&[u8]>, Vec<&str>)> = vec![
        ("missing.csv", None, vec!["missing.csv", "cannot open"]),
        (
            "empty.csv",
            Some(b""),
            vec!["empty.csv", "the file is empty"],
        ),
        (
            "image.csv",
            Some(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0"),
            vec!["image.csv", "not a CSV text file"],
        ),
        (
            "noemail.csv",
            Some(b"displayName,Seats\nAnn,3\n"),
            vec!["noemail.csv", "no 'email' column"],
        ),
        (
            "unknown.csv",
            Some(b"email,Custmer Tier,Colour\na@example.com,Free,red\n"),
            vec![
                "unknown.csv",
                "unknown column 'Custmer Tier' (column 2): did you mean 'Customer Tier'?",
                "unknown column 'Colour' (column 3)",
                "--ignore-unknown-columns",
            ],
        ),
        (
            "dup.csv",
            Some(b"email, E Mail \n"),
            vec!["dup.csv", "duplicate column 'E Mail' (columns 1 and 2)"],
        ),
    ];
    for (name, content, wants) in cases {
        let path = match content {
            Some(c) => ctx.write(name, c),
            None => ctx.path(name),
        };
        let out = ctx.import(&sb, &path, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(lines.len(), 1, "{name}: one error line: {err}");
        for w in wants {
            assert!(lines[0].contains(w), "{name}: {w:?} not in {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_nothing_sent(&sb);
}

#[test]
fn unknown_columns_can_be_ignored_and_are_named_on_the_terminal_and_in_the_summary() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,Customer Teir,Colour\na@example.com,Gold,red\n",
    );
    let out = ctx.import(&sb, &file, &["--ignore-unknown-columns"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let note = "--ignore-unknown-columns: 2 columns match no field and are not imported: 'Customer Teir' (column 2; did you mean 'Customer Tier'?), 'Colour' (column 3)";
    assert!(stderr(&out).contains(note), "{}", stderr(&out));
    let log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(log.contains(note), "{log}");
    assert_eq!(
        ctx.summary()["ignored_columns"],
        serde_json::json!(["Customer Teir", "Colour"])
    );
    // The kinds with fixed columns say the same.
    let ctx = Ctx::new();
    let file = ctx.write("p.csv", b"name,Colour\nWidget,red\n");
    let out = ctx.import_kind(&sb, "products", &file, &["--ignore-unknown-columns"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 column matches no field and is not imported: 'Colour' (column 2)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ctx.summary()["ignored_columns"],
        serde_json::json!(["Colour"])
    );
}

#[test]
fn row_messages_say_what_is_wrong() {
    let ctx = Ctx::new();
    let schema = repo("sample-data/customer-detail-fields.json");
    let validate = |file: &std::path::Path, dir: &str| {
        ctx.csmport(None)
            .args(["validate", "customers"])
            .arg(file)
            .arg("--schema")
            .arg(&schema)
            .arg("--out")
            .arg(ctx.path(dir))
            .output()
            .unwrap()
    };
    // A date that does not exist; a date with a time part.
    let file = ctx.write(
        "d.csv",
        b"email,Renewal Date\na@x.example,2027-02-30\nb@x.example,2026-06-30T10:30:00\n",
    );
    let out = validate(&file, "d");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (_, f) = ctx.read_csv(&ctx.path("d/failures.csv"));
    let why: Vec<&str> = f.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(
        why,
        [
            "Renewal Date: '2027-02-30' does not exist: February 2027 has 28 days",
            "Renewal Date: '2026-06-30T10:30:00' has a time part (10:30:00); the field takes a date alone: 2026-06-30"
        ]
    );
    // An unclosed quote names the line it opened on; the rows before it are reported.
    let file = ctx.write(
        "q.csv",
        b"email,displayName\na@x.example,A\nb@x.example,\"never closed\nc@x.example,C\n",
    );
    let out = validate(&file, "q");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("a quote opened on line 3 is never closed"),
        "{}",
        stdout(&out)
    );
    // A header of 100,000 columns: a short message, not every name.
    let header: Vec<String> = (0..100_000).map(|i| format!("Column {i}")).collect();
    let file = ctx.write("w.csv", format!("{}\n", header.join(",")).as_bytes());
    let out = validate(&file, "w");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.len() < 500,
        "{} bytes: {}",
        err.len(),
        &err[..500.min(err.len())]
    );
    assert!(err.contains("the header row has 100000 columns"), "{err}");
}

#[test]
fn wrong_credentials_exit_3() {
    let sb = SandboxProc::start(&["--token", "other"]);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email\na@example.com\n");
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreachable_site_exits_3() {
    // A port below 1024 that nothing here listens on: a port bound and dropped could be taken
    // by another test's sandbox before the client connects (it was, with 16 test threads).
    let port = 1;
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email\na@example.com\n");
    let out = ctx
        .csmport(None)
        .args([
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--cloud-id",
            "c",
            "--access-token",
            "t",
        ])
        .args(["import", "customers"])
        .arg(&file)
        .args(["--retries", "2", "--max-wait", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot reach the CSM API"), "{err}");
    // Said at the first failed connection, once, with no terminal (stderr is a pipe here)...
    let url = format!("http://127.0.0.1:{port}");
    let told = format!("csmport: cannot reach {url} (could not connect");
    assert_eq!(err.matches(&told).count(), 1, "{err}");
    assert!(err.contains("retrying (2 of 3 attempts)"), "{err}");
    // ...and the give-up names what to check.
    assert!(
        err.contains(&format!("check that {url} is the right address")),
        "{err}"
    );
}

#[test]
fn missing_configuration_exits_2() {
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email\na@example.com\n");
    let out = ctx
        .csmport(None)
        .args(["import", "customers"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no cloud id"), "{}", stderr(&out));
    let out = ctx
        .csmport(None)
        .args(["--cloud-id", "c", "import", "customers"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no credentials"), "{}", stderr(&out));
    let out = ctx
        .csmport(None)
        .args(["import", "customers"])
        .arg(&file)
        .args(["--batch-size", "101"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn row_problems_never_stop_the_run() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,Seats\nok1@example.com,1\nbad,2\nok2@example.com\n,\nok3@example.com,x\nok4@example.com,4,extra\nok5@example.com,5\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["succeeded"].as_u64(),
            s["failed"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(7), Some(2), Some(4), Some(1))
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<(String, String, String)> = failures
        .iter()
        .map(|r| (r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2".into(), "validate".into(), "email".into()),
            ("3".into(), "read".into(), "".into()),
            ("5".into(), "validate".into(), "Seats".into()),
            ("6".into(), "read".into(), "".into()),
        ]
    );
    assert!(
        failures[3][5].contains("extra cells beyond the header: extra"),
        "{:?}",
        failures[3]
    );
}
