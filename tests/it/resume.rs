//! `csmport resume`: runs killed (SIGKILL) or interrupted (Ctrl-C) at several points finish
//! from their journal with every row in exactly one outcome and nothing sent twice; folders
//! that cannot be resumed safely are refused with exit 2.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Ctx, SandboxProc, read_csv, repo, sigint, stderr};

/// Batches of the journal by state: (all recorded, submitted, done).
fn journal_counts(run: &Path) -> (u64, u64, u64) {
    let path = run.join("journal.sqlite");
    if !path.exists() {
        return (0, 0, 0);
    }
    let Ok(c) = rusqlite::Connection::open(&path) else {
        return (0, 0, 0);
    };
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0) as u64;
    (
        count("SELECT COUNT(*) FROM batches"),
        count("SELECT COUNT(*) FROM batches WHERE state = 'submitted'"),
        count("SELECT COUNT(*) FROM batches WHERE state = 'done'"),
    )
}

/// Waits until `ready` holds for the run's journal, then kills the process with SIGKILL.
fn kill_when(mut child: Child, run: &Path, what: &str, ready: impl Fn((u64, u64, u64)) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before {what}: journal {:?}",
                journal_counts(run)
            );
        }
        if ready(journal_counts(run)) {
            break;
        }
        assert!(Instant::now() < deadline, "never reached {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `csmport resume RUN` against `sb`, run to its end.
fn resume_to_end(ctx: &Ctx, sb: &SandboxProc, run: &Path) -> std::process::Output {
    ctx.csmport(Some(sb))
        .arg("resume")
        .arg(run)
        .output()
        .unwrap()
}

fn customers_csv(ctx: &Ctx, n: usize) -> std::path::PathBuf {
    let mut csv = String::from("email,displayName\n");
    for i in 0..n {
        csv.push_str(&format!("user{i}@example.com,User {i}\n"));
    }
    ctx.write("customers.csv", csv.as_bytes())
}

/// Every input row once in the reports, none twice: returns (succeeded rows, failed rows).
fn report_rows(run: &Path) -> (Vec<u64>, Vec<u64>) {
    let rows = |file: &str| -> Vec<u64> {
        let (header, rows) = read_csv(&run.join(file));
        let col = header.iter().position(|h| h == "_row").unwrap();
        rows.iter().map(|r| r[col].parse().unwrap()).collect()
    };
    (rows("successes.csv"), rows("failures.csv"))
}

/// Where a run is killed: a description and the journal state (recorded, submitted, done)
/// that triggers the kill.
type KillPoint = (&'static str, fn((u64, u64, u64)) -> bool);

/// Imports `rows` customers against a sandbox started with `flags`, kills the import (then each
/// resume) with SIGKILL at `points`, resumes to the end, and checks that every row has exactly
/// one outcome, every customer exists once and no row was sent in two tasks.
fn kill_and_resume(flags: &[&str], rows: u64, points: &[KillPoint]) {
    let sb = SandboxProc::start_raw(flags);
    let ctx = Ctx::new();
    let file = customers_csv(&ctx, rows as usize);
    let run = ctx.path("run");
    let spawn = |args: &[&std::ffi::OsStr]| -> Child {
        ctx.csmport(Some(&sb))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    for (n, (what, ready)) in points.iter().enumerate() {
        let child = if n == 0 {
            spawn(&[
                "import".as_ref(),
                "customers".as_ref(),
                file.as_os_str(),
                "--out".as_ref(),
                run.as_os_str(),
            ])
        } else {
            spawn(&["resume".as_ref(), run.as_os_str()])
        };
        kill_when(child, &run, what, ready);
    }
    let out = resume_to_end(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Every row in exactly one outcome.
    let (ok, failed) = report_rows(&run);
    assert!(failed.is_empty(), "{failed:?}");
    let mut seen = ok.clone();
    seen.sort();
    assert_eq!(seen, (1..=rows).collect::<Vec<u64>>());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        (s["rows"].as_u64(), s["succeeded"].as_u64()),
        (Some(rows), Some(rows))
    );

    // Each customer created exactly once, and the tasks together hold one item per row (a batch
    // sent again under a new key would have made a second task of its rows).
    let state = sb.state();
    let customers = state["customers"].as_array().unwrap();
    let emails: HashSet<&str> = customers
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!((customers.len() as u64, emails.len() as u64), (rows, rows));
    let tasks = state["tasks"].as_array().unwrap();
    let items: u64 = tasks.iter().map(|t| t["items"].as_u64().unwrap()).sum();
    assert_eq!(items, rows, "rows sent in more than one task");
    // No task created twice for one key.
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for t in tasks {
        *per_key
            .entry(t["idempotencyKey"].as_str().unwrap())
            .or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "{per_key:?}");
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert_eq!(
        log.matches("resumed: the journal has").count(),
        points.len(),
        "{log}"
    );
    assert!(log.contains("polling its task") || log.contains("sending the recorded batch"));
}

#[test]
fn kill_9_at_several_points_then_resume_loses_and_duplicates_nothing() {
    // Slow answers widen the window between a batch being journaled and its task existing.
    kill_and_resume(
        &[
            "--task-latency-ms",
            "200",
            "--fault-seed",
            "11",
            "--fault-slow",
            "0.3",
            "--fault-slow-ms",
            "300",
        ],
        5000,
        &[
            // The first batch is journaled (its key fixed); maybe sent, no task recorded yet.
            ("the first batch is journaled", |(all, _, _)| all >= 1),
            // A resumed run with several tasks in flight.
            ("3 tasks are in flight", |(_, sub, _)| sub >= 3),
            // A resumed run half-way through.
            ("25 chunks are done", |(_, _, done)| done >= 25),
        ],
    );
}

#[test]
fn kill_9_while_connections_drop_after_the_server_applied_the_request() {
    // The client often does not hear that a batch was accepted; killed then, the resume must
    // send it under the same key and get the same task back.
    kill_and_resume(
        &[
            "--task-latency-ms",
            "100",
            "--fault-seed",
            "12",
            "--fault-drop-after",
            "0.25",
            "--fault-500",
            "0.1",
        ],
        2000,
        &[
            ("2 batches are journaled", |(all, _, _)| all >= 2),
            ("8 chunks are done", |(_, _, done)| done >= 8),
        ],
    );
}

#[test]
fn ctrl_c_then_resume_gives_the_outcomes_of_an_uninterrupted_run() {
    let sb = SandboxProc::start(&["--task-latency-ms", "400"]);
    let ctx = Ctx::new();
    let run = ctx.path("run");
    let child = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(repo("sample-data/customers.csv"))
        .arg("--out")
        .arg(&run)
        .args(["--max-tasks", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while journal_counts(&run).1 == 0 {
        assert!(Instant::now() < deadline, "no task was submitted");
        std::thread::sleep(Duration::from_millis(10));
    }
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = resume_to_end(&ctx, &sb, &run);
    // As the README's quick start: 964 succeeded, 35 failed, 1 skipped (exit 1).
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["succeeded"].as_u64(),
            s["failed"].as_u64(),
            s["skipped"].as_u64(),
            s["interrupted"].as_bool()
        ),
        (Some(1000), Some(964), Some(35), Some(1), Some(false)),
        "{s}"
    );
    let (ok, failed) = report_rows(&run);
    let all: HashSet<u64> = ok.iter().chain(&failed).copied().collect();
    assert_eq!(all.len(), ok.len() + failed.len(), "a row reported twice");
    assert_eq!(ok.len(), 964);
    let state = sb.state();
    let items: u64 = state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| {
            t["type"]
                .as_str()
                .unwrap()
                .starts_with("BULK_CUSTOMER_PROFILE")
        })
        .map(|t| t["items"].as_u64().unwrap())
        .sum();
    assert_eq!(
        items,
        964 + 4,
        "each valid row sent once (4 fail in their task)"
    );
    // Every row is in exactly one report, or counted as a row with every cell empty.
    let listed =
        read_csv(&run.join("successes.csv")).1.len() + read_csv(&run.join("failures.csv")).1.len();
    assert_eq!(
        listed as u64 + s["blank_rows"].as_u64().unwrap(),
        1000,
        "{s}"
    );
    assert_eq!(s["blank_rows"], 1);
    // The page's pace counts every row with an outcome, and shows where the run stood still.
    let page = crate::report::parse(&std::fs::read_to_string(run.join("report.html")).unwrap());
    let line = &page.tables["Rows confirmed over time"];
    assert_eq!(line.last().unwrap()[1], "999", "{line:?}");
    let events: Vec<&str> = line
        .iter()
        .map(|r| r[2].as_str())
        .filter(|e| !e.is_empty())
        .collect();
    assert_eq!(events, ["interrupted", "resumed"], "{line:?}");
    let at = |what: &str| line.iter().find(|r| r[2] == what).unwrap()[1].clone();
    assert_eq!(
        at("interrupted"),
        at("resumed"),
        "the line climbs across the gap"
    );
}

#[test]
fn folders_that_cannot_be_resumed_safely_are_refused() {
    let sb = SandboxProc::start_raw(&[]);
    let ctx = Ctx::new();
    let file = customers_csv(&ctx, 30);
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = ctx.path("run");
    let resume = |dir: &Path, extra: &[&str]| {
        let out = ctx
            .csmport(Some(&sb))
            .args(extra)
            .arg("resume")
            .arg(dir)
            .output()
            .unwrap();
        (out.status.code(), stderr(&out))
    };
    // A finished run resumes to the same result and sends nothing.
    let before = sb.requests().len();
    let (code, err) = resume(&run, &[]);
    assert_eq!(code, Some(0), "{err}");
    let posts = sb.requests()[before..]
        .iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(posts, 0);
    // A new import into a run folder is refused: the run is never overwritten.
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already holds a run"),
        "{}",
        stderr(&out)
    );

    let cases: Vec<(&str, Box<dyn Fn(&Path)>, &str)> = vec![
        (
            "changed input",
            Box::new(|_| {
                std::fs::write(&file, "email,displayName\nsomeone@example.com,Some One\n").unwrap()
            }),
            "changed since the run began",
        ),
        (
            "changed input, stopped before its hash was recorded",
            Box::new(|run| {
                forget_input_hash(run);
                std::fs::write(&file, "email,displayName\nsomeone@example.com,Some One\n").unwrap()
            }),
            "stopped before it recorded the file's hash",
        ),
        (
            "newer journal",
            Box::new(|run| {
                let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
                c.execute(
                    "UPDATE meta SET value = '3' WHERE key = 'journal_version'",
                    [],
                )
                .unwrap();
            }),
            "written by a newer csmport",
        ),
        (
            "corrupt journal",
            Box::new(|run| {
                for f in ["journal.sqlite-wal", "journal.sqlite-shm"] {
                    let _ = std::fs::remove_file(run.join(f));
                }
                let mut bytes = std::fs::read(run.join("journal.sqlite")).unwrap();
                let n = bytes.len();
                for b in &mut bytes[100..n / 2] {
                    *b = 0xA5;
                }
                std::fs::write(run.join("journal.sqlite"), bytes).unwrap();
            }),
            "damaged",
        ),
    ];
    for (what, spoil, want) in cases {
        // Each case spoils a fresh copy of the finished run.
        let copy = ctx.path(&format!("copy-{}", what.replace(' ', "-")));
        copy_dir(&run, &copy);
        let original = std::fs::read(&file).unwrap();
        spoil(&copy);
        let (code, err) = resume(&copy, &[]);
        std::fs::write(&file, original).unwrap();
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(want), "{what}: {err}");
    }
    let (code, err) = resume(&ctx.path("nowhere"), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a folder"), "{err}");
    let (code, err) = resume(ctx.dir.path(), &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a run folder"), "{err}");
    let (code, err) = resume(&run, &["--sandbox"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("starts empty"), "{err}");
}

/// What a journal holds when its run was killed before the input's hash was read.
fn forget_input_hash(run: &Path) {
    let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
    c.execute("UPDATE meta SET value = '' WHERE key = 'input_sha256'", [])
        .unwrap();
}

fn input_hash(run: &Path) -> String {
    let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
    c.query_row(
        "SELECT value FROM meta WHERE key = 'input_sha256'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn the_input_hash_is_recorded_beside_the_run_and_a_run_stopped_before_it_resumes() {
    let sb = SandboxProc::start_raw(&[]);
    let ctx = Ctx::new();
    let file = customers_csv(&ctx, 30);
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = ctx.path("run");
    let want = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(std::fs::read(&file).unwrap());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(
        input_hash(&run),
        want,
        "a finished run has its input's hash"
    );
    // Killed before the hash was read: same size and modification time is the evidence left,
    // and resume records the hash it reads.
    forget_input_hash(&run);
    let out = ctx
        .csmport(Some(&sb))
        .arg("resume")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(input_hash(&run), want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_task_the_site_forgot_is_settled_by_reading_back() {
    // A run killed while its task was running, resumed after the site dropped the task (ended
    // tasks are kept a few days): resume cannot poll it, so it reads the organizations back.
    let sb = SandboxProc::start_raw(&[]);
    let ctx = Ctx::new();
    let mut csv = String::from("name\n");
    for i in 0..20 {
        csv.push_str(&format!("Company {i}\n"));
    }
    let file = ctx.write("orgs.csv", csv.as_bytes());
    let out = ctx.import_kind(&sb, "organizations", &file, &["--batch-size", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = ctx.path("run");
    // Make the journal say: chunk 1 (rows 11-20) was submitted as a task that is now gone.
    let items: Vec<serde_json::Value> = (10..20)
        .map(|i| serde_json::json!({"operationType": "UPSERT", "payload": {"name": format!("Company {i}")}}))
        .collect();
    let calls = serde_json::json!([{
        "method": "Post",
        "path": "organization/profile/bulk",
        "body": { "organizationProfiles": items }
    }])
    .to_string();
    let items = serde_json::Value::Array(items).to_string();
    let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
    c.execute(
        "UPDATE batches SET state = 'submitted', task_id = 'gone-task', status_url = NULL, calls = ?1, items = ?2, rows = '[11,12,13,14,15,16,17,18,19,20]' WHERE seq = 1",
        [calls, items],
    )
    .unwrap();
    c.execute("UPDATE chunks SET done = 0 WHERE seq = 1", [])
        .unwrap();
    c.execute("DELETE FROM rows WHERE seq = 1", []).unwrap();
    drop(c);
    let before = sb.requests().len();
    let out = resume_to_end(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (ok, failed) = report_rows(&run);
    assert_eq!((ok.len(), failed.len()), (20, 0));
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(
        log.contains("task gone-task is no longer known to the site; reading its rows back")
            && log.contains("read back: 10 of 10 rows are on the site as sent"),
        "{log}"
    );
    let posts = sb.requests()[before..]
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/bulk"))
        .count();
    assert_eq!(posts, 0, "nothing sent again");
}

/// The kinds that once had a run loop of their own are journaled like the others: products
/// (synchronous calls) killed mid-run and resumed make each product exactly once. A call whose
/// answer was lost is decided again from the product list, never sent blindly.
#[test]
fn products_killed_and_resumed_are_made_once_each() {
    let sb = SandboxProc::start_raw(&["--fault-slow", "1", "--fault-slow-ms", "150"]);
    let ctx = Ctx::new();
    let mut csv = String::from("name\n");
    for i in 0..30 {
        csv.push_str(&format!("Product {i}\n"));
    }
    let file = ctx.write("products.csv", csv.as_bytes());
    let run = ctx.path("run");
    let child = ctx
        .csmport(Some(&sb))
        .args(["import", "products"])
        .arg(&file)
        .arg("--out")
        .arg(&run)
        .args(["--max-tasks", "1", "--batch-size", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(child, &run, "two chunks of calls done", |(_, _, done)| {
        done >= 8
    });
    let out = resume_to_end(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (ok, failed) = report_rows(&run);
    assert!(failed.is_empty(), "{failed:?}");
    let mut seen = ok.clone();
    seen.sort();
    assert_eq!(seen, (1..=30).collect::<Vec<u64>>());
    let state = sb.state();
    let names: Vec<&str> = state["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&&str> = names.iter().collect();
    assert_eq!((names.len(), distinct.len()), (30, 30), "each product once");
}

/// Detail values (a bulk task) killed while the task runs: resume polls that task again and
/// sends nothing twice.
#[test]
fn detail_values_killed_while_their_task_runs_are_polled_on_resume() {
    let sb = SandboxProc::start(&["--task-latency-ms", "1500"]);
    let ctx = Ctx::new();
    let names = ["Acme Pty Ltd", "Globex Corporation", "Initech", "Hooli"];
    let mut csv = String::from("name,field,values\n");
    for (i, n) in names.iter().enumerate() {
        csv.push_str(&format!("{n},Industry,Industry {i}\n"));
        csv.push_str(&format!("{n},Region,EMEA\n"));
    }
    let file = ctx.write("details.csv", csv.as_bytes());
    let run = ctx.path("run");
    let child = ctx
        .csmport(Some(&sb))
        .args(["import", "organization-details"])
        .arg(&file)
        .arg("--out")
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kill_when(child, &run, "the task submitted", |(_, submitted, _)| {
        submitted >= 1
    });
    let before = sb.requests().len();
    let out = resume_to_end(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (ok, failed) = report_rows(&run);
    assert_eq!((ok.len(), failed.len()), (8, 0), "{failed:?}");
    let resent = sb.requests()[before..]
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/bulk"))
        .count();
    assert_eq!(resent, 0, "the task was polled, not sent again");
    assert_eq!(sb.state()["tasks"].as_array().unwrap().len(), 1);
}

#[test]
fn resume_without_a_target_names_the_site_and_does_not_suggest_the_sandbox() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\nr@x.example,R\n");
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = ctx
        .csmport(None)
        .arg("resume")
        .arg(ctx.path("run"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("--sandbox"), "{err}");
    assert!(
        err.contains(&format!("the run wrote to {}", sb.url)),
        "{err}"
    );
}
