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
            "_error",
            "_raw",
            "_source"
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
    // A row that fails first: the open ones are rows 2 and 3 of the input, lines 2 and 3 of
    // the report... after the failed row 1 at line 1.
    let file = ctx.write(
        "c.csv",
        b"email,displayName\nnot-an-email,X\na@x.example,A\nb@x.example,B\n",
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
    assert!(err.contains("rows 2, 3 of its input"), "{err}");
}

/// Every cell of a report that a spreadsheet would run is guarded (a number is not).
fn assert_no_live_formula(path: &std::path::Path) {
    let (header, rows) = read_csv(path);
    for cell in header.iter().chain(rows.iter().flatten()) {
        let live = cell.starts_with(['=', '@', '\t', '\r'])
            || (cell.starts_with(['+', '-'])
                && !cell[1..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || " .,-/()".contains(c)));
        assert!(!live, "{}: live formula cell {cell:?}", path.display());
    }
}

#[test]
fn retrying_an_unedited_report_changes_nothing_on_the_site() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // Rows that fail for reasons still true in the report: a ragged short row, a ragged long
    // row, a duplicate (its first row is imported), a bad email with a formula beside it.
    let file = ctx.write(
        "c.csv",
        b"email,displayName,Customer Tier,Primary Contact Phone\n\
a@x.example,-5,Free,+1 415 555 0100\n\
short@x.example,Short\n\
long@x.example,Long,Free,12345,extra\n\
A@x.example,A again,Premium,\n\
not-an-email,\"=HYPERLINK(\"\"http://x\"\")\",Free,+44 20 7946 0000\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = ctx.path("run/failures.csv");
    assert_no_live_formula(&report);
    assert_no_live_formula(&ctx.path("run/successes.csv"));
    let (header, first) = read_csv(&report);
    assert_eq!(&header[header.len() - 2..], ["_raw", "_source"]);
    assert_eq!(first.len(), 4, "{first:?}");
    // The ragged rows keep their original record.
    assert_eq!(first[0][8], "short@x.example,Short,,");
    assert_eq!(first[1][8], "long@x.example,Long,Free,12345,extra");

    let before = sb.requests().len();
    let retry = |out: &str| {
        ctx.csmport(Some(&sb))
            .arg("retry")
            .arg(&report)
            .arg("--out")
            .arg(ctx.path(out))
            .output()
            .unwrap()
    };
    let out = retry("again");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        sb.writes_since(before),
        Vec::<String>::new(),
        "nothing written"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("again/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        ["rows", "succeeded", "failed"].map(|k| s[k].as_u64().unwrap()),
        [4, 0, 4]
    );
    // Each row fails again with the same stage, field and reason, and keeps its `_raw`.
    let (_, again) = read_csv(&ctx.path("again/failures.csv"));
    let why = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
        rows.iter().map(|r| r[5..].to_vec()).collect()
    };
    assert_eq!(why(&again), why(&first));
    assert_no_live_formula(&ctx.path("again/failures.csv"));

    // A retry of the retry's report: still nothing.
    let before = sb.requests().len();
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(ctx.path("again/failures.csv"))
        .arg("--out")
        .arg(ctx.path("third"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sb.writes_since(before), Vec::<String>::new());

    // The user fixes the short row in the report, and removes the duplicate's first row from
    // the file it came from: both go through; the long row and the bad email fail again.
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::write(
        &report,
        // The first match is the row's cells; `_raw` after it keeps the original.
        text.replacen("short@x.example,Short,,", "short@x.example,Short,Free,", 1),
    )
    .unwrap();
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        original.replace("a@x.example,-5,Free,+1 415 555 0100\n", ""),
    )
    .unwrap();
    let out = retry("fixed");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (_, ok) = read_csv(&ctx.path("fixed/successes.csv"));
    let sent: Vec<&str> = ok.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(sent, ["short@x.example", "A@x.example"]);
}

#[test]
fn a_duplicate_edited_elsewhere_than_its_key_never_overwrites_the_first_record() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName,IsDeleted\n\
first@x.example,First,false\n\
FIRST@x.example,Second,false\n",
    );
    let out = ctx.import(&sb, &file, &["--ignore-unknown-columns"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = ctx.path("run/failures.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("duplicate:"), "{text}");
    // A spreadsheet's save: the unmapped `false` became `FALSE`; and the user touched the name.
    let saved = text.replacen(
        "FIRST@x.example,Second,false",
        "FIRST@x.example,Second Name,FALSE",
        1,
    );
    assert_ne!(saved, text);
    std::fs::write(&report, saved).unwrap();
    let before = sb.requests().len();
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(&report)
        .args(["--out", "again", "--ignore-unknown-columns"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        sb.writes_since(before),
        Vec::<String>::new(),
        "nothing written"
    );
    let (head, rows) = read_csv(&ctx.path("again/failures.csv"));
    let at = head.iter().position(|h| h == "_error").unwrap();
    assert!(rows[0][at].starts_with("duplicate:"), "{:?}", rows[0]);
    let first = |sb: &SandboxProc| {
        sb.state()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["email"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case("first@x.example")
            })
            .cloned()
            .unwrap()
    };
    assert_eq!(first(&sb)["displayName"], "First");

    // Its key changed: another record, sent as any row.
    let text = std::fs::read_to_string(ctx.path("again/failures.csv")).unwrap();
    std::fs::write(
        ctx.path("again/failures.csv"),
        text.replacen(
            "FIRST@x.example,Second Name",
            "second@x.example,Second Name",
            1,
        ),
    )
    .unwrap();
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(ctx.path("again/failures.csv"))
        .args(["--out", "third", "--ignore-unknown-columns"])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert_eq!(first(&sb)["displayName"], "First");
    let (_, ok) = read_csv(&ctx.path("third/successes.csv"));
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0][0], "second@x.example");
}

#[test]
fn retry_of_a_mapped_run_needs_no_flags_and_reads_with_the_run_s_mapping() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let mapping = ctx.write(
        "m.toml",
        b"kind = \"customers\"\nunmapped = \"ignore\"\n\n\
[[column]]\nsource = \"E-Mail\"\nfield = \"email\"\ntransform = [\"trim\", \"lowercase\"]\n\n\
[[column]]\nsource = [\"First\", \"Last\"]\njoin = \" \"\nfield = \"displayName\"\n",
    );
    let file = ctx.write(
        "crm.csv",
        b"E-Mail,First,Last,IsDeleted\nann@x.example,Ann,Lee,false\nnot-an-email,Bo,Day,false\n",
    );
    let out = ctx.import(&sb, &file, &["--mapping", mapping.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The user fixes the row in the report, and the mapping file is edited away.
    let report = ctx.path("run/failures.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::write(&report, text.replacen("not-an-email", "bo@x.example", 1)).unwrap();
    std::fs::write(&mapping, "not a mapping any more").unwrap();
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(&report)
        .args(["--out", "again"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bo = sb.state()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "bo@x.example")
        .cloned()
        .expect("sent");
    assert_eq!(bo["displayName"], "Bo Day");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("again/summary.json")).unwrap())
            .unwrap();
    assert!(
        s.to_string()
            .contains("options kept from the run: --mapping"),
        "{s}"
    );
}

#[test]
fn a_report_a_spreadsheet_damaged_is_refused_and_failures_xlsx_goes_through() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        "email,displayName,Customer Tier,Primary Contact Phone,Renewal Date\n\
lu@x.example,Luis Núñez,Gold,0422082255,2026-06-30\n"
            .as_bytes(),
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(ctx.path("run/failures.xlsx").is_file());
    let xlsx = std::fs::read(ctx.path("run/failures.xlsx")).unwrap();

    // Opened in a spreadsheet as Windows-1252, saved as CSV: the tier fixed by the user, the
    // name garbled, the phone's leading zero lost, the date in the locale's form.
    let report = ctx.path("run/failures.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    let saved = text
        .trim_start_matches('\u{feff}')
        .replacen("Luis Núñez", "Luis NÃºÃ±ez", 1)
        .replacen("Gold", "Premium", 1)
        .replacen("0422082255", "422082255", 1)
        .replacen(",2026-06-30,", ",6/30/2026,", 1);
    std::fs::write(&report, saved).unwrap();
    let before = sb.requests().len();
    let retry = |report: &std::path::Path, out: &str| {
        ctx.csmport(Some(&sb))
            .arg("retry")
            .arg(report)
            .args(["--out", out])
            .output()
            .unwrap()
    };
    let out = retry(&report, "again");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(sb.writes_since(before), Vec::<String>::new());
    let (head, rows) = read_csv(&ctx.path("again/failures.csv"));
    let at = |n: &str| head.iter().position(|h| h == n).unwrap();
    let error = &rows[0][at("_error")];
    assert_eq!(rows[0][at("_field")], "displayName");
    assert!(
        error.contains("'Luis NÃºÃ±ez' is UTF-8 read as Windows-1252"),
        "{error}"
    );
    assert!(error.contains("--accept-changed-cells"), "{error}");
    // The row's record as first read is carried on.
    assert!(rows[0][at("_raw")].contains("Luis Núñez,Gold,0422082255,2026-06-30"));

    // failures.xlsx keeps every cell as text: the tier fixed there, the rest as typed.
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    let range = calamine::Reader::worksheet_range(&mut book, "failures").unwrap();
    let rows: Vec<Vec<String>> = range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(rows[1][3], "0422082255");
    let mut fixed = rust_xlsxwriter::Workbook::new();
    let sheet = fixed.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let cell = if r == 1 && c == 2 {
                "Premium"
            } else {
                cell.as_str()
            };
            sheet.write_string(r as u32, c as u16, cell).unwrap();
        }
    }
    fixed.save(ctx.path("run/failures.xlsx")).unwrap();
    let out = retry(&ctx.path("run/failures.xlsx"), "fixed");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = sb.state().to_string();
    assert!(
        state.contains("Luis Núñez") && state.contains("0422082255"),
        "{state}"
    );
    assert!(!state.contains("\"422082255\""), "{state}");
}

#[test]
fn along_a_retry_chain_rows_keep_their_number_in_the_first_file() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName,Customer Tier\n\
a@x.example,A,Free\n\
b@x.example,B,Gold\n\
c@x.example,C,Free\n\
bad,D,Free\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let retry = |report: &str, out: &str| {
        ctx.csmport(Some(&sb))
            .arg("retry")
            .arg(ctx.path(report))
            .args(["--out", out])
            .output()
            .unwrap()
    };
    let source = file.display().to_string();
    let numbers = |dir: &str| -> Vec<(String, String)> {
        let (head, rows) = read_csv(&ctx.path(&format!("{dir}/failures.csv")));
        let at = |n: &str| head.iter().position(|h| h == n).unwrap();
        rows.iter()
            .map(|r| (r[at("_row")].clone(), r[at("_source")].clone()))
            .collect()
    };
    let want = vec![
        ("2".to_string(), source.clone()),
        ("4".to_string(), source.clone()),
    ];
    assert_eq!(numbers("run"), want);
    assert_eq!(retry("run/failures.csv", "second").status.code(), Some(1));
    assert_eq!(numbers("second"), want);
    assert_eq!(retry("second/failures.csv", "third").status.code(), Some(1));
    assert_eq!(numbers("third"), want);

    // Both rows fixed to one email: the second is a duplicate of row 2 of the first file.
    let report = ctx.path("third/failures.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    let edited = text
        .replacen("b@x.example,B,Gold", "z@x.example,B,Free", 1)
        .replacen("bad,D,Free", "z@x.example,D,Free", 1);
    std::fs::write(&report, edited).unwrap();
    assert_eq!(retry("third/failures.csv", "fourth").status.code(), Some(1));
    let (head, rows) = read_csv(&ctx.path("fourth/failures.csv"));
    let at = |n: &str| head.iter().position(|h| h == n).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][at("_row")], "4");
    assert!(
        rows[0][at("_error")].contains(&format!("already in row 2 of {source}")),
        "{:?}",
        rows[0]
    );
    let (head, ok) = read_csv(&ctx.path("fourth/successes.csv"));
    let at = |n: &str| head.iter().position(|h| h == n).unwrap();
    assert_eq!(ok[0][at("_row")], "2");
    assert_eq!(ok[0][at("_source")], source);
}
