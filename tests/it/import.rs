//! `csmport import customers` end to end: the real binary against a real sandbox process.

use crate::common::*;

const SAMPLE: &str = "sample-data/customers.csv";

#[test]
fn sample_data_imports_with_exact_outcomes() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx.import(&sb, &repo(SAMPLE), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let s = ctx.summary();
    for (key, want) in [
        ("rows", 1000),
        ("succeeded", 964),
        ("failed", 35),
        ("skipped", 1),
        // 10 customer batches and the task that creates the organization a row names.
        ("batches", 11),
        ("tasks", 11),
    ] {
        assert_eq!(s[key], want, "{key} in {s}");
    }
    assert_eq!(
        s["rows"].as_u64().unwrap(),
        s["succeeded"].as_u64().unwrap()
            + s["failed"].as_u64().unwrap()
            + s["skipped"].as_u64().unwrap()
    );
    assert_eq!(s["failed_by_stage"]["read"], 2);
    assert_eq!(s["failed_by_stage"]["validate"], 29);
    assert_eq!(s["failed_by_stage"]["task"], 4);

    // Exactly which rows failed, at which stage, on which field, and why.
    let (fh, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let n = fh.len();
    assert_eq!(
        &fh[n - 6..],
        ["_row", "_stage", "_field", "_error", "_raw", "_source"]
    );
    // Every row names the file its number counts in.
    assert!(
        failures
            .iter()
            .all(|r| r[n - 1] == repo(SAMPLE).display().to_string())
    );
    let n = n - 2;
    let listing: String = failures
        .iter()
        .map(|r| format!("{} {} [{}] {}\n", r[n - 4], r[n - 3], r[n - 2], r[n - 1]))
        .collect();
    insta::assert_snapshot!("sample_failures", listing);

    // The input's columns and cells are unchanged, in input order, except that text a
    // spreadsheet would run as a formula has a leading `'` (which reading the report takes off).
    let (ih, input) = read_csv(&repo(SAMPLE));
    assert_eq!(&fh[..n - 4], &ih[..]);
    let mut last = 0;
    for r in &failures {
        let row: usize = r[n - 4].parse().unwrap();
        assert!(row > last, "failures are in input order");
        last = row;
        let original = &input[row - 1];
        let width = ih.len().min(original.len());
        let unguarded: Vec<&str> = r[..width]
            .iter()
            .map(|c| match c.strip_prefix('\'') {
                Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
                _ => c.as_str(),
            })
            .collect();
        assert_eq!(unguarded, &original[..width], "row {row}");
        if row == 390 {
            assert_eq!(
                r[7], "'+1 415 555 0100 ext. 12",
                "text, not a number: guarded"
            );
        }
        assert!(
            r[width..n - 4].iter().all(String::is_empty),
            "row {row} padding"
        );
    }

    // Successes: every other non-blank row, and they are exactly what the sandbox holds.
    let (sh, successes) = ctx.read_csv(&ctx.path("run/successes.csv"));
    assert_eq!(&sh[sh.len() - 3..], ["_row", "_id", "_source"]);
    assert_eq!(successes.len(), 964);
    let state = sb.state();
    let customers = state["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 964);
    let mut stored: Vec<String> = customers
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_lowercase())
        .collect();
    let mut sent: Vec<String> = successes.iter().map(|r| r[0].to_lowercase()).collect();
    stored.sort();
    sent.sort();
    assert_eq!(stored, sent);
    // Ten customer batches, and one task that created the organization 'Globex' (row 550 names
    // it); row 523's 'Acme Pty Ltd' already existed.
    assert_eq!(state["tasks"].as_array().unwrap().len(), 11);
    let orgs = state["organizations"].as_array().unwrap();
    let globex = orgs
        .iter()
        .find(|o| o["name"] == "Globex")
        .expect("created");
    let tanaka = customers
        .iter()
        .find(|c| c["email"] == "francois.tanaka550@example.org")
        .unwrap();
    assert_eq!(
        tanaka["organizationIds"],
        serde_json::json!(["101", globex["id"].as_str().unwrap()])
    );
}

#[test]
fn stored_values_match_the_file() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        "email,displayName,organizations,Customer Tier,Preferred Contact Channels,Notes,Seats\n\
         zoe@example.com,Zoë Müller,101;102,premium,slack; email,\"line one, with comma\nline \"\"two\"\"\",12\n"
            .as_bytes(),
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = sb.state();
    let c = &state["customers"][0];
    assert_eq!(c["email"], "zoe@example.com");
    assert_eq!(c["displayName"], "Zoë Müller");
    assert!(c["id"].as_str().unwrap().starts_with("qm:"));
    assert_eq!(c["organizationIds"], serde_json::json!(["101", "102"]));
    let details = c["details"].as_array().unwrap();
    let value = |name: &str| {
        details
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["values"].clone())
            .unwrap_or_else(|| panic!("{name} missing in {details:?}"))
    };
    assert_eq!(value("Customer Tier"), serde_json::json!(["Premium"]));
    assert_eq!(
        value("Preferred Contact Channels"),
        serde_json::json!(["Slack", "Email"])
    );
    assert_eq!(
        value("Notes"),
        serde_json::json!(["line one, with comma\nline \"two\""])
    );
    assert_eq!(value("Seats"), serde_json::json!(["12"]));
}

#[test]
fn failure_report_can_be_imported_again() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx.import(&sb, &repo(SAMPLE), &[]);
    assert_eq!(out.status.code(), Some(1));
    // Fix one row the way a user would: in the report itself, leaving the `_` columns alone.
    let report = std::fs::read_to_string(ctx.path("run/failures.csv")).unwrap();
    let fixed = report.replacen(",Gold,", ",Premium,", 1);
    assert_ne!(fixed, report);
    let again = ctx.write("again.csv", fixed.as_bytes());
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import(&sb, &again, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(s["rows"], 35);
    // Row 101 (Gold → Premium) now goes through. The two ragged rows, whose report lines were
    // padded to the header, fail again until the user edits them; so do the duplicates, whose
    // first rows cannot be looked for (the report was copied away from its run folder). The
    // rest fail again for the same reasons.
    assert_eq!(s["succeeded"], 1, "{s}");
    assert_eq!(s["failed"], 34);
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert!(
        failures.iter().all(|r| r.len() == 18),
        "one set of `_` columns, not two"
    );
    let state = sb.state();
    assert!(
        state["customers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["email"] == "oluwaseun.lindqvist101@acme.example")
    );
}

#[test]
fn reimporting_unchanged_rows_creates_no_duplicates() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName\na@example.com,A\nb@example.com,B\n",
    );
    assert_eq!(ctx.import(&sb, &file, &[]).status.code(), Some(0));
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    assert_eq!(ctx.import(&sb, &file, &[]).status.code(), Some(0));
    assert_eq!(sb.state()["customers"].as_array().unwrap().len(), 2);
}

#[test]
fn task_slot_limit_is_back_pressure_not_failure() {
    // The server allows one unfinished task; the client tries to run three.
    let sb = SandboxProc::start(&["--max-tasks", "1", "--task-latency-ms", "300"]);
    let ctx = Ctx::new();
    let mut csv = String::from("email\n");
    for i in 0..250 {
        csv.push_str(&format!("user{i}@example.com\n"));
    }
    let file = ctx.write("many.csv", csv.as_bytes());
    let out = ctx.import(&sb, &file, &["--max-tasks", "3", "--rate", "50"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (s["succeeded"].as_u64(), s["tasks"].as_u64()),
        (Some(250), Some(3))
    );
    assert_eq!(sb.state()["customers"].as_array().unwrap().len(), 250);
    let log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(log.contains("task slots full"), "{log}");
}

#[test]
fn json_summary_on_stdout() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email\na@example.com\n");
    let out = ctx.import(&sb, &file, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["rows"].as_u64(), v["succeeded"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(stderr(&out).contains("imported customers"));
}

#[test]
fn embedded_sandbox_runs_the_readme_command() {
    let ctx = Ctx::new();
    let out = ctx
        .csmport(None)
        .args(["--sandbox", "import", "customers"])
        .arg(repo(SAMPLE))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let runs: Vec<_> = std::fs::read_dir(ctx.path("csmport-runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].as_ref().unwrap().path();
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("Z-customers"), "{name}");
    for f in ["failures.csv", "successes.csv", "summary.json", "run.log"] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let masked: String = text
        .lines()
        .map(|l| {
            if l.starts_with("  sent") {
                // The counts stay; the time varies.
                format!("{} in [time]", l.split(" in ").next().unwrap_or(l))
            } else {
                l.replace(&name, "[run]")
                    .replace(&repo(SAMPLE).display().to_string(), "[sample]")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("readme_command_summary", masked);
}

#[test]
fn ctrl_c_stops_sending_and_reports_every_row_read() {
    // One slow task at a time, so the interrupt lands while most batches are unsent.
    let sb = SandboxProc::start(&["--task-latency-ms", "1500"]);
    let ctx = Ctx::new();
    let child = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(repo(SAMPLE))
        .arg("--out")
        .arg(ctx.path("run"))
        .args(["--max-tasks", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first task exists, then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sb.state()["tasks"].as_array().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no task was submitted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // Rows are open: the summary says what `resume` will do, not to retry the report.
    let text = stdout(&out);
    assert!(text.starts_with("import of customers from "), "{text}");
    assert!(
        text.lines().next().unwrap().ends_with(" interrupted"),
        "{text}"
    );
    assert!(text.contains("csmport resume"), "{text}");
    assert!(!text.contains("csmport retry"), "{text}");
    let s = ctx.summary();
    assert_eq!(s["interrupted"], true);
    let rows = s["rows"].as_u64().unwrap();
    let (ok, failed, skipped, not_read) = (
        s["succeeded"].as_u64().unwrap(),
        s["failed"].as_u64().unwrap(),
        s["skipped"].as_u64().unwrap(),
        s["not_read"].as_u64().unwrap(),
    );
    // Every row of the file is counted: the ones read in an outcome, the rest as not read
    // (issue 14 case 9).
    assert_eq!(rows, 1000, "{s}");
    assert_eq!(rows, ok + failed + skipped + not_read, "{s}");
    assert!(not_read > 0, "reading stopped early: {s}");
    assert!(stdout(&out).contains("not read"), "{}", stdout(&out));
    assert!(stdout(&out).contains("csmport resume"), "{}", stdout(&out));
    // The submitted task was waited for: its rows are in the sandbox and in successes.csv.
    let stored = sb.state()["customers"].as_array().unwrap().len() as u64;
    assert_eq!(stored, ok);
    assert!(ok >= 90, "{s}");
    // Rows read but never sent are listed for a re-run.
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let not_sent = failures
        .iter()
        .filter(|r| r[15].contains("interrupted"))
        .count() as u64;
    assert!(not_sent > 0, "{s}");
    // Skipped = the rows not sent, plus the blank sample row if reading got that far.
    assert!(not_sent <= skipped && skipped - not_sent <= 1, "{s}");
    // status reads the same counts from the journal.
    let o = ctx
        .csmport(None)
        .args(["status", "--json"])
        .arg(ctx.path("run"))
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for key in ["succeeded", "failed", "open"] {
        assert_eq!(st["rows"][key], s[key], "{key}: status {st} summary {s}");
    }
    // The text says the skipped rows are open, not just skipped.
    assert!(text.contains("of them open"), "{text}");
}

#[test]
fn faults_and_rate_limits_lose_and_duplicate_nothing() {
    // 5xx answers, connections cut before and after the server applied the request, slow
    // answers, and a tight rate limit: every row still lands exactly once.
    let sb = SandboxProc::start(&[
        "--fault-seed",
        "7",
        "--fault-503",
        "0.08",
        "--fault-503-retry-after",
        "0.04",
        "--fault-500",
        "0.04",
        "--fault-drop-before",
        "0.06",
        "--fault-drop-after",
        "0.08",
        "--rate-limit",
        "40",
        // One request at a time: the first submissions leave 5 ms apart at --rate 200, so
        // the limit is met however few polls the run needs.
        "--burst",
        "1",
        "--task-latency-ms",
        "50",
    ]);
    let ctx = Ctx::new();
    let mut csv = String::from("email,displayName\n");
    for i in 0..450 {
        csv.push_str(&format!("user{i}@example.com,User {i}\n"));
    }
    let file = ctx.write("many.csv", csv.as_bytes());
    let out = ctx.import(&sb, &file, &["--rate", "200", "--batch-size", "50"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (s["rows"].as_u64(), s["succeeded"].as_u64()),
        (Some(450), Some(450)),
        "{s}"
    );
    let state = sb.state();
    assert_eq!(state["customers"].as_array().unwrap().len(), 450);
    // One task per batch: retries after unknown outcomes reused their key.
    assert_eq!(state["tasks"].as_array().unwrap().len(), 9, "{s}");
    let faults = sb
        .requests()
        .iter()
        .filter(|r| r["fault"].is_string())
        .count();
    assert!(faults >= 5, "the run met faults: {faults}");
    let run_log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(run_log.contains("retry"), "{run_log}");
    // 200/s against a limit of 40/s: the 429s slow the pace down, and the log says so.
    let throttled = sb.requests().iter().filter(|r| r["status"] == 429).count();
    assert!(throttled > 0, "the rate limit was met");
    assert!(run_log.contains("pacing: "), "{throttled} 429s; {run_log}");
    assert!(
        run_log.contains("after a 429"),
        "{throttled} 429s; {run_log}"
    );
}

#[test]
fn contacts_name_their_companies() {
    // A CRM pair: accounts first, then contacts that name their company.
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let accounts = ctx.write(
        "accounts.csv",
        b"name,Region\nNordlys AB,EMEA\nPixel & Pine,AMER\n",
    );
    assert_eq!(
        ctx.import_kind(&sb, "organizations", &accounts, &[])
            .status
            .code(),
        Some(0)
    );
    let contacts = ctx.write(
        "contacts.csv",
        "email,displayName,organizations\n\
         asa@example.com,Åsa,nordlys ab\n\
         luis@example.com,Luis,Pixel & Pine;Nordlys AB\n\
         mei@example.com,Mei,Brand New Ltd\n\
         kim@example.com,Kim,\n"
            .as_bytes(),
    );
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import(&sb, &contacts, &["--no-create-organizations"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (
            failures[0][3].as_str(),
            failures[0][4].as_str(),
            failures[0][5].as_str()
        ),
        ("3", "send", "organizations")
    );
    assert!(
        failures[0][6].contains("organization 'Brand New Ltd': it does not exist on the site"),
        "{:?}",
        failures[0]
    );
    let state = sb.state();
    let org_id = |name: &str| {
        state["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()["id"]
            .clone()
    };
    let customer = |email: &str| {
        state["customers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["email"] == email)
            .cloned()
    };
    assert_eq!(
        customer("asa@example.com").unwrap()["organizationIds"],
        serde_json::json!([org_id("Nordlys AB")])
    );
    assert_eq!(
        customer("luis@example.com").unwrap()["organizationIds"],
        serde_json::json!([org_id("Pixel & Pine"), org_id("Nordlys AB")])
    );
    assert!(customer("mei@example.com").is_none());
    // With creation on (the default), the missing company is made first, once.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import(&sb, &contacts, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = sb.state();
    let made: Vec<_> = state["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "Brand New Ltd")
        .collect();
    assert_eq!(made.len(), 1);
    let mei = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "mei@example.com")
        .unwrap()
        .clone();
    assert_eq!(
        mei["organizationIds"],
        serde_json::json!([made[0]["id"].clone()])
    );
}

#[test]
fn the_summary_counts_requests_in_words_and_a_run_that_sent_nothing_has_no_pace() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("one.csv", b"email,displayName\none@example.com,One\n");
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("  sent      1 request, 1 task in "), "{text}");
    assert_eq!(
        ctx.summary()["created_organizations"],
        serde_json::json!([])
    );
    // Resuming a finished run sends nothing: the summary keeps the whole run's figures and
    // says what this attempt sent.
    let first = ctx.summary();
    let out = ctx.resume(&sb);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("  sent      1 request, 1 task in ")
            && text.contains("(over 2 attempts; this one sent nothing in "),
        "{text}"
    );
    let s = ctx.summary();
    assert_eq!(s["started_at"], first["started_at"], "{s}");
    assert_eq!(
        (s["batches"].as_u64(), s["tasks"].as_u64()),
        (Some(1), Some(1))
    );
    let attempts = s["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{s}");
    assert_eq!(attempts[0]["batches"], 1);
    assert_eq!(attempts[1]["batches"], 0);
    let spent =
        attempts[0]["elapsed_s"].as_f64().unwrap() + attempts[1]["elapsed_s"].as_f64().unwrap();
    assert!(
        (s["elapsed_s"].as_f64().unwrap() - spent).abs() < 0.01,
        "{s}"
    );
}

#[test]
fn a_trial_run_sends_its_first_rows_then_the_rest_follow_by_range() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let mut csv = String::from("email,displayName\n");
    for i in 1..=30 {
        csv.push_str(&format!("trial{i}@example.com,Trial {i}\n"));
    }
    let file = ctx.write("trial.csv", csv.as_bytes());
    let emails = |sb: &SandboxProc| -> Vec<String> {
        let mut e: Vec<String> = sb.state()["customers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["email"].as_str())
            .filter(|e| e.starts_with("trial"))
            .map(str::to_string)
            .collect();
        e.sort();
        e
    };
    let out = ctx.import(&sb, &file, &["--limit", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (s["rows"].as_u64(), s["row_range"].as_str()),
        (Some(10), Some("1-10")),
        "{s}"
    );
    assert!(
        stdout(&out).contains("data rows 1-10 of the file only"),
        "{}",
        stdout(&out)
    );
    assert_eq!(emails(&sb).len(), 10);
    // The journal keeps the range, so a resume reads the same rows.
    let c = rusqlite::Connection::open(ctx.path("run/journal.sqlite")).unwrap();
    let options: String = c
        .query_row("SELECT value FROM meta WHERE key = 'options'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(options.contains("\"rows\":[1,10]"), "{options}");
    drop(c);

    // The rest, by range, into a new folder: rows keep their numbers in the file.
    let out = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(&file)
        .args(["--rows", "11-30", "--out"])
        .arg(ctx.path("rest"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (h, ok) = read_csv(&ctx.path("rest/successes.csv"));
    let row = h.iter().position(|c| c == "_row").unwrap();
    assert_eq!(ok.first().map(|r| r[row].as_str()), Some("11"));
    assert_eq!(ok.len(), 20);
    assert_eq!(emails(&sb).len(), 30);

    // A range past the file's end is refused before anything is made.
    let out = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(&file)
        .args(["--rows", "500-600", "--out"])
        .arg(ctx.path("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--rows 500-600:") && stderr(&out).contains("has 30 data rows"),
        "{}",
        stderr(&out)
    );
    assert!(!ctx.path("none").exists());
    // So is a range that is not one.
    let out = ctx
        .csmport(Some(&sb))
        .args(["validate", "customers"])
        .arg(&file)
        .args(["--rows", "9-3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // validate takes the range too.
    let out = ctx
        .csmport(Some(&sb))
        .args(["validate", "customers"])
        .arg(&file)
        .args(["--rows", "5-7", "--out"])
        .arg(ctx.path("v"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("v/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        (v["rows"].as_u64(), v["valid"].as_u64()),
        (Some(3), Some(3)),
        "{v}"
    );
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("q.csv", b"email,displayName\nq@example.com,Q\n");
    let out = ctx.import(&sb, &file, &["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
    assert_eq!(ctx.summary()["succeeded"], 1);
    // An error still says why.
    let out = ctx
        .csmport(Some(&sb))
        .args(["-q", "import", "customers"])
        .arg(ctx.path("missing.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.csv"), "{}", stderr(&out));
}

#[test]
fn every_command_s_help_ends_with_examples() {
    let ctx = Ctx::new();
    for cmd in [
        "import",
        "validate",
        "retry",
        "resume",
        "export",
        "delete",
        "status",
        "sandbox",
        "doctor",
        "completions",
        "man",
    ] {
        let out = ctx.csmport(None).args([cmd, "--help"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd}");
        let text = stdout(&out);
        // Options come under their own headings, the command's own first; a command that
        // talks to no site offers no site options.
        let own = text.find("Options:").unwrap_or(usize::MAX);
        let global = text.find("Global options:").unwrap_or(0);
        let talks_to_a_site = !matches!(cmd, "status" | "sandbox" | "completions" | "man");
        if talks_to_a_site {
            let site = text.find("Site and credentials:").unwrap_or(0);
            assert!(own < site && site < global, "{cmd}: {text}");
        } else {
            assert!(own < global, "{cmd}: {text}");
            for flag in [
                "--access-token",
                "--base-url",
                "--sandbox",
                "--profile",
                "--record",
            ] {
                let offered = text.lines().any(|l| l.trim_start().starts_with(flag));
                assert!(!offered, "{cmd} offers {flag}: {text}");
            }
        }
        let tail = text.trim_end().rsplit("Examples:").next().unwrap();
        assert!(
            text.contains("Examples:") && tail.contains(&format!("csmport {cmd}")),
            "{cmd}: {text}"
        );
    }
}

#[test]
fn options_that_do_nothing_for_a_command_are_refused_there() {
    let ctx = Ctx::new();
    let text = stdout(
        &ctx.csmport(None)
            .args(["validate", "--help"])
            .output()
            .unwrap(),
    );
    assert!(!text.contains("--op"), "validate offers --op: {text}");
    let text = stdout(
        &ctx.csmport(None)
            .args(["sandbox", "--help"])
            .output()
            .unwrap(),
    );
    assert!(
        text.contains("--cloud-id") && text.contains("--token"),
        "{text}"
    );
    for args in [
        &["sandbox", "--access-token", "foo"][..],
        &["--access-token", "foo", "sandbox"],
        &["--sandbox", "status"],
        &["--base-url", "http://127.0.0.1:9", "completions", "bash"],
        &["validate", "customers", "x.csv", "--op", "create"],
    ] {
        let out = ctx.csmport(None).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("--access-token")
                || err.contains("--sandbox")
                || err.contains("--base-url")
                || err.contains("--op"),
            "{args:?}: {err}"
        );
    }
    // Site options and --json work before the command and after it alike.
    let before = ctx
        .csmport(None)
        .args(["--cloud-id", "c-before", "--json", "config", "show"])
        .output()
        .unwrap();
    let after = ctx
        .csmport(None)
        .args(["config", "show", "--cloud-id", "c-before", "--json"])
        .output()
        .unwrap();
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    assert_eq!(stdout(&before), stdout(&after));
    assert!(stdout(&before).contains("c-before"));
}

#[test]
fn completions_and_a_manual_page_come_from_the_command_definitions() {
    let ctx = Ctx::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = ctx
            .csmport(None)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(
            text.contains("csmport") && text.contains("status"),
            "{shell}"
        );
    }
    let out = ctx.csmport(None).arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains(".TH csmport 1") && text.contains("import"),
        "{text}"
    );
    // Every page the top page names exists, as a file and on its own.
    let out = ctx
        .csmport(None)
        .args(["man", "--dir", "man1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let named: std::collections::BTreeSet<String> = text
        .split("csmport\\-")
        .skip(1)
        .filter_map(|rest| rest.split_once("(1)"))
        .map(|(name, _)| format!("csmport-{}.1", name.replace("\\-", "-")))
        .collect();
    assert!(named.contains("csmport-import.1"), "{named:?}");
    for page in &named {
        let body = std::fs::read_to_string(ctx.path(&format!("man1/{page}")))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(body.contains(".SH NAME"), "{page}");
    }
    assert!(ctx.path("man1/csmport-config-show.1").exists());
    let out = ctx.csmport(None).args(["man", "import"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(
        page.contains(".TH csmport-import 1") && page.contains("\\-\\-batch\\-size"),
        "{page}"
    );
    let out = ctx.csmport(None).args(["man", "imprt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the commands are: import"),
        "{}",
        stderr(&out)
    );
}
