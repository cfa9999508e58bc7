//! The ten fault paths of issue 14, each against a sandbox set up to take it, each checked the
//! same way from `/_sandbox/state`, the run's journal and its reports: every row read is in
//! exactly one report; no row reported failed is on the site; no row reported succeeded is
//! absent; no batch has two tasks and no row is in two tasks; and rows whose outcome cannot be
//! known yet are open (exit 4, `_stage` open), never failed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{Ctx, SandboxProc, read_csv, set_faults, stderr, stdout};

fn customers(ctx: &Ctx, n: usize, org: impl Fn(usize) -> Option<String>) -> PathBuf {
    let mut csv = String::from("email,displayName,organizations\n");
    for i in 0..n {
        csv.push_str(&format!(
            "user{i}@example.com,User {i},{}\n",
            org(i).unwrap_or_default()
        ));
    }
    ctx.write("customers.csv", csv.as_bytes())
}

/// What the reports say of each row: `_row` → (email, `_stage` or "ok", `_error`).
fn reported(run: &Path) -> HashMap<u64, (String, String, String)> {
    let mut out = HashMap::new();
    let (h, ok) = read_csv(&run.join("successes.csv"));
    let at = |h: &[String], c: &str| h.iter().position(|x| x == c).unwrap();
    for r in ok {
        let row: u64 = r[at(&h, "_row")].parse().unwrap();
        let prev = out.insert(row, (r[0].clone(), "ok".to_string(), String::new()));
        assert!(prev.is_none(), "row {row} is reported twice");
    }
    let (h, failed) = read_csv(&run.join("failures.csv"));
    for r in failed {
        let row: u64 = r[at(&h, "_row")].parse().unwrap();
        let entry = (
            r[0].clone(),
            r[at(&h, "_stage")].clone(),
            r[at(&h, "_error")].clone(),
        );
        let prev = out.insert(row, entry);
        assert!(prev.is_none(), "row {row} is reported twice");
    }
    out
}

/// The task ids the journal's batches were accepted as, per batch: never two for one.
fn journal_tasks(run: &Path) -> HashMap<i64, String> {
    let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
    let mut s = c
        .prepare("SELECT batch, outcome FROM attempts ORDER BY batch, attempt")
        .unwrap();
    let mut tasks: HashMap<i64, String> = HashMap::new();
    let rows = s
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    for r in rows {
        let (batch, outcome) = r.unwrap();
        if let Some(task) = outcome.strip_prefix("accepted as task ")
            && let Some(before) = tasks.insert(batch, task.to_string())
        {
            assert_eq!(before, task, "batch {batch} was accepted as two tasks");
        }
    }
    tasks
}

/// The promise, for a customers run: `rows` rows, each in one report; succeeded ones on the
/// site, failed ones not; one task per batch, and the site's tasks exactly the journal's.
fn check_promise(
    sb: &SandboxProc,
    run: &Path,
    rows: u64,
) -> HashMap<u64, (String, String, String)> {
    let r = reported(run);
    assert_eq!(r.len() as u64, rows, "every row in one report");
    let state = sb.state();
    let on_site: HashSet<String> = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_lowercase())
        .collect();
    for (row, (email, stage, error)) in &r {
        match stage.as_str() {
            "ok" => assert!(
                on_site.contains(email),
                "row {row} succeeded but is not on the site"
            ),
            "open" => {}
            _ => assert!(
                !on_site.contains(email),
                "row {row} failed ({stage}: {error}) but is on the site"
            ),
        }
    }
    let journal: HashSet<String> = journal_tasks(run).into_values().collect();
    let site: Vec<String> = state["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        site.len(),
        journal.len(),
        "a task the journal does not know"
    );
    assert!(
        site.iter().all(|t| journal.contains(t)),
        "{site:?} {journal:?}"
    );
    r
}

fn resume(ctx: &Ctx, sb: &SandboxProc, run: &Path) -> std::process::Output {
    ctx.csmport(Some(sb))
        .arg("resume")
        .arg(run)
        .output()
        .unwrap()
}

fn stages(r: &HashMap<u64, (String, String, String)>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (_, stage, _) in r.values() {
        *out.entry(stage.clone()).or_default() += 1;
    }
    out
}

fn import_into(ctx: &Ctx, sb: &SandboxProc, file: &Path, run: &Path) -> std::process::Output {
    ctx.csmport(Some(sb))
        .args(["import", "customers"])
        .arg(file)
        .arg("--out")
        .arg(run)
        .output()
        .unwrap()
}

fn bulk_posts_since(sb: &SandboxProc, before: usize) -> usize {
    sb.requests()[before..]
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/bulk"))
        .count()
}

/// Case 1: the site's only task slot is held by a stuck task. The batches that cannot get a
/// slot within --slot-wait stop the run as an interruption does (exit 4, rows open, the
/// resume command printed), never as failures; resume finishes them once the slot is free.
#[test]
fn case_1_a_slot_wait_that_runs_out_stops_the_run_with_rows_open() {
    let sb = SandboxProc::start_raw(&[
        "--max-tasks",
        "1",
        "--fault-stuck-task",
        "1",
        "--stale-task-after",
        "3s",
    ]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 150, |_| None);
    let run = ctx.path("run");
    let out = ctx.import(
        &sb,
        &file,
        &[
            "--batch-size",
            "50",
            "--slot-wait",
            "1",
            "--task-timeout",
            "1",
            "--service-desk",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stdout(&out).contains("csmport resume"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("no task slot came free"),
        "{}",
        stdout(&out)
    );
    let r = check_promise(&sb, &run, 150);
    assert_eq!(stages(&r).get("open"), Some(&150), "{:?}", stages(&r));
    // The stuck task goes stale (FAILED, nothing applied); the others get slots on resume.
    set_faults(&sb, serde_json::json!({}));
    std::thread::sleep(Duration::from_millis(3200));
    let out = resume(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 150);
    let s = stages(&r);
    assert_eq!(
        (s.get("ok"), s.get("task")),
        (Some(&100), Some(&50)),
        "{s:?}"
    );
    assert!(
        r.values()
            .filter(|(_, st, _)| st == "task")
            .all(|(_, _, e)| e.starts_with("not applied: ")),
        "{r:?}"
    );
}

/// Case 2: customers name organizations the site does not have while the site's one task
/// slot is busy. Creating them waits for a slot like every batch (and is journaled); no row
/// fails for it.
#[test]
fn case_2_creating_organizations_waits_for_a_task_slot() {
    let sb = SandboxProc::start_raw(&["--max-tasks", "1", "--task-latency-ms", "1200"]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 300, |i| {
        (i >= 100).then(|| format!("New Org {}", i % 7))
    });
    let run = ctx.path("run");
    let out = ctx.import(&sb, &file, &["--batch-size", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 300);
    assert_eq!(stages(&r).get("ok"), Some(&300));
    let state = sb.state();
    let orgs: HashMap<String, String> = state["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().into(),
                o["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(orgs.len(), 7, "each organization created once");
    for c in state["customers"].as_array().unwrap() {
        let n: usize = c["email"].as_str().unwrap()[4..]
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ids: Vec<&str> = c["organizationIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if n >= 100 {
            assert_eq!(ids.len(), 1, "{c}");
            assert_eq!(orgs[ids[0]], format!("New Org {}", n % 7));
        }
    }
    // Four tasks through one slot, the organizations' among them: submissions met full
    // slots and waited; the organizations' task is in the journal.
    let refused = sb
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/bulk") && r["status"] == 400)
        .count();
    assert!(refused > 0, "the slot was full");
    let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
    let (n, done): (i64, i64) = c
        .query_row(
            "SELECT COUNT(*), SUM(state = 'done') FROM batches WHERE purpose = 'prerequisite'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, done), (1, 1));
}

/// Case 3: a storm of 429s with --retries 0. 429s are the site pacing the client: they are
/// waited out, never counted as attempts, and no row fails for them.
#[test]
fn case_3_a_429_storm_fails_no_row() {
    let sb = SandboxProc::start_raw(&["--rate-limit", "3", "--burst", "1"]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 100, |_| None);
    let run = ctx.path("run");
    let out = ctx.import(
        &sb,
        &file,
        &["--batch-size", "25", "--rate", "50", "--retries", "0"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 100);
    assert_eq!(stages(&r).get("ok"), Some(&100));
    let throttled = sb.requests().iter().filter(|r| r["status"] == 429).count();
    assert!(throttled > 0, "the storm happened");
    // The report marks the waits on its time axis and counts them.
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let waits = html
        .split("<td>waits (429, task slots)</td><td>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no waits line in the report"));
    assert!(waits > 0, "{waits}");
}

/// Case 4: tasks still running at --task-timeout are never read back into failures: their
/// rows stay open, and resume polls the same tasks to their end (nothing sent again).
#[test]
fn case_4_a_task_still_running_at_the_timeout_stays_open() {
    let sb = SandboxProc::start_raw(&["--task-latency-ms", "3000"]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 300, |_| None);
    let run = ctx.path("run");
    let out = ctx.import(
        &sb,
        &file,
        &[
            "--batch-size",
            "100",
            "--task-timeout",
            "1",
            "--service-desk",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 300);
    assert_eq!(stages(&r).get("open"), Some(&300), "{:?}", stages(&r));
    assert!(r.values().all(|(_, _, e)| e.contains("was still")), "{r:?}");
    std::thread::sleep(Duration::from_millis(3000));
    let before = sb.requests().len();
    let out = resume(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 300);
    assert_eq!(stages(&r).get("ok"), Some(&300));
    assert_eq!(bulk_posts_since(&sb, before), 0, "nothing sent again");
}

// Case 5 (a FAILED task naming no row, with no way to read the rows back, leaves them open)
// is `faults::tasks_failed_without_failures_are_settled_by_reading_back`.

/// Case 6: a refused batch is split; each part is a batch of its own in the journal, with its
/// own key and task. Parts whose tasks are still running at the timeout stay open, and resume
/// polls every part's task: nothing is left "outcome unknown", nothing is sent again.
#[test]
fn case_6_parts_of_a_refused_batch_are_batches_of_their_own() {
    let sb = SandboxProc::start_raw(&[
        "--fault-refuse-item",
        "refuse-me",
        "--task-latency-ms",
        "1500",
    ]);
    let ctx = Ctx::new();
    let mut csv = String::from("email,displayName\n");
    for i in 0..24 {
        let user = if i == 5 || i == 17 {
            "refuse-me"
        } else {
            "user"
        };
        csv.push_str(&format!("{user}{i}@example.com,User {i}\n"));
    }
    let file = ctx.write("c.csv", csv.as_bytes());
    let run = ctx.path("run");
    let out = ctx.import(&sb, &file, &["--task-timeout", "1", "--service-desk", "1"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 24);
    let s = stages(&r);
    assert_eq!(
        (s.get("send"), s.get("open")),
        (Some(&2), Some(&22)),
        "{s:?}"
    );
    let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
    let keys: i64 = c
        .query_row(
            "SELECT COUNT(DISTINCT idempotency_key) FROM batches WHERE task_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let parts: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM batches WHERE task_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        parts > 1 && keys == parts,
        "each part its own key: {parts} parts, {keys} keys"
    );
    drop(c);
    std::thread::sleep(Duration::from_millis(1600));
    let before = sb.requests().len();
    let out = resume(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 24);
    let s = stages(&r);
    assert_eq!((s.get("ok"), s.get("send")), (Some(&22), Some(&2)), "{s:?}");
    assert_eq!(
        bulk_posts_since(&sb, before),
        0,
        "every part's task polled, none sent again"
    );
}

/// Case 7: a detail-values task that ends FAILED having applied only half its entities. Rows
/// it does not name are not taken as applied: they are read back, and only those the site
/// has as sent succeed.
#[test]
fn case_7_a_failed_details_task_is_not_taken_for_a_finished_one() {
    let sb = SandboxProc::start(&["--fault-failed-half", "1"]);
    let ctx = Ctx::new();
    let names = [
        "Acme Pty Ltd",
        "Globex Corporation",
        "Initech",
        "Umbrella Logistics",
        "Hooli",
        "Stark Industries",
        "Wayne Enterprises",
        "Nakatomi Trading",
    ];
    let mut csv = String::from("name,Industry\n");
    for (i, n) in names.iter().enumerate() {
        csv.push_str(&format!("{n},Industry {i}\n"));
    }
    let file = ctx.write("details.csv", csv.as_bytes());
    let run = ctx.path("run");
    let out = ctx.import_kind(&sb, "organization-details", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = reported(&run);
    let state = sb.state();
    let industry = |name: &str| {
        state["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .and_then(|o| {
                o["details"]
                    .as_array()?
                    .iter()
                    .find(|d| d["name"] == "Industry")
                    .map(|d| d["values"][0].as_str().unwrap().to_string())
            })
    };
    let mut ok = 0;
    for (row, (name, stage, error)) in &r {
        let want = format!("Industry {}", row - 1);
        match stage.as_str() {
            "ok" => {
                ok += 1;
                assert_eq!(industry(name).as_deref(), Some(want.as_str()), "row {row}");
            }
            _ => {
                assert_eq!(stage, "task", "row {row}: {error}");
                assert!(error.starts_with("not applied: "), "row {row}: {error}");
                assert_ne!(industry(name).as_deref(), Some(want.as_str()), "row {row}");
            }
        }
    }
    assert_eq!((ok, r.len()), (4, 8), "{r:?}");
}

/// Case 8: a run killed at any moment, the first milliseconds included, leaves a run folder
/// with a whole journal or none: `resume` continues the first, `import --out` reuses the
/// second.
#[test]
fn case_8_a_run_killed_at_once_leaves_a_whole_journal_or_none() {
    let sb = SandboxProc::start_raw(&[]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 50, |_| None);
    for (n, delay_ms) in [0u64, 2, 5, 10, 20, 40].into_iter().enumerate() {
        let run = ctx.path(&format!("run{n}"));
        let mut child = ctx
            .csmport(Some(&sb))
            .args(["import", "customers"])
            .arg(&file)
            .arg("--out")
            .arg(&run)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let again = if run.join("journal.sqlite").exists() {
            resume(&ctx, &sb, &run)
        } else {
            import_into(&ctx, &sb, &file, &run)
        };
        assert_eq!(
            again.status.code(),
            Some(0),
            "kill after {delay_ms}ms: {}",
            stderr(&again)
        );
        assert_eq!(reported(&run).len(), 50);
    }
    // What a kill while the journal was being made leaves behind is not a run to resume.
    let run = ctx.path("half-made");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("journal.sqlite.new"), b"").unwrap();
    let out = resume(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("stopped before it sent anything"),
        "{}",
        stderr(&out)
    );
    let out = import_into(&ctx, &sb, &file, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        sb.state()["customers"].as_array().unwrap().len(),
        50,
        "nothing twice"
    );
}

// Case 9 (Ctrl-C counts the rows not read as `not_read`) is
// `import::ctrl_c_stops_sending_and_reports_every_row_read`.

/// Case 10: a site that checks its task slots before the idempotency key. A submission whose
/// answer was lost (the connection cut after the site made the task) is retried under the
/// same key; when that retry meets full slots, the key is kept through every wait, so the
/// site answers with the task it made instead of making a second one.
#[test]
fn case_10_a_key_that_may_have_been_applied_is_never_replaced() {
    let sb = SandboxProc::start_raw(&[
        "--max-tasks",
        "1",
        "--slots-before-keys",
        "--fault-bulk-only",
        "--fault-drop-after",
        "0.5",
        "--fault-seed",
        "11",
        "--task-latency-ms",
        "700",
    ]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 200, |_| None);
    let run = ctx.path("run");
    let out = ctx.import(&sb, &file, &["--batch-size", "50", "--max-tasks", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = check_promise(&sb, &run, 200);
    assert_eq!(stages(&r).get("ok"), Some(&200));
    let tasks = sb.state()["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 4, "one task per batch");
    let items: u64 = tasks.iter().map(|t| t["items"].as_u64().unwrap()).sum();
    assert_eq!(items, 200, "no row in two tasks");
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(
        log.contains("under the same key"),
        "a retry met full slots after a lost answer: {log}"
    );
}

/// A chunk the journal closed without one of its rows' outcomes (a journal damaged between
/// two writes): nothing is evidence of that row's fate, so resume keeps it open and decides it
/// again from what the site holds, never reporting it failed on a guess.
#[test]
fn a_row_a_closed_chunk_lost_is_decided_again_not_failed() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName\na@example.com,A\nb@example.com,B\nc@example.com,C\n",
    );
    let run = ctx.path("run");
    let out = ctx.import(&sb, &file, &["--service-desk", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    {
        let c = rusqlite::Connection::open(run.join("journal.sqlite")).unwrap();
        let done: i64 = c
            .query_row("SELECT COUNT(*) FROM chunks WHERE done = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(done > 0);
        assert_eq!(c.execute("DELETE FROM rows WHERE row = 2", []).unwrap(), 1);
    }
    let before = sb.requests().len();
    let out = resume(&ctx, &sb, &run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        (&s["succeeded"], &s["failed"]),
        (&3.into(), &0.into()),
        "{s}"
    );
    // b@ is on the site as the file has it: found so, and nothing sent again.
    assert!(
        sb.writes_since(before).is_empty(),
        "{:?}",
        sb.writes_since(before)
    );
    let log = std::fs::read_to_string(run.join("run.log")).unwrap();
    assert!(log.contains("without the outcome of 1 rows"), "{log}");
}

/// Issue 39, "a slot freed is a slot filled": a task far slower than the rest holds only its
/// own slot. The chunks after it go on through the other four slots and wait, done, for it to
/// be written; with 8 chunks a slot in flight no more than 39 were made while it ran (every
/// slot idle until it ended), with 16 up to 79 (a 3 s task among tasks of 10 ms).
#[test]
fn a_slow_task_holds_only_its_own_slot() {
    let (_, tasks) = long_tail_import(2000, "10", "0.05", "300", "5");
    // The most tasks made while one slow task ran (one with at least 100 made after it, so
    // the input did not run out first).
    let most = tasks
        .iter()
        .filter(|&&(made, ended, _)| ended - made >= 1000)
        .filter(|&&(made, _, _)| tasks.iter().filter(|t| t.0 > made).count() >= 100)
        .map(|&(made, ended, _)| tasks.iter().filter(|t| t.0 > made && t.0 < ended).count())
        .max();
    assert!(
        most.is_some_and(|n| n >= 45),
        "tasks made while a slow one ran: {most:?}"
    );
}

/// Imports `rows` customers in tasks of 10 against a sandbox whose tasks take `latency` ms,
/// a share `tail` of them `factor` times that (which ones: `seed`), 5 slots; checks the run
/// kept its promise and returns the sandbox and its tasks (made, ended, id).
fn long_tail_import(
    rows: usize,
    latency: &str,
    tail: &str,
    factor: &str,
    seed: &str,
) -> (SandboxProc, Vec<(i64, i64, String)>) {
    let sb = SandboxProc::start_raw(&[
        "--max-tasks",
        "5",
        "--task-latency-ms",
        latency,
        "--task-jitter",
        "0",
        "--task-tail",
        tail,
        "--task-tail-factor",
        factor,
        "--fault-seed",
        seed,
    ]);
    let ctx = Ctx::new();
    let file = customers(&ctx, rows, |_| None);
    let run = ctx.path("run");
    let out = ctx.import(&sb, &file, &["--batch-size", "10", "--max-tasks", "5"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_promise(&sb, &run, rows as u64);
    let tasks = sb.state()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["createdMs"].as_i64().unwrap(),
                t["finishedMs"].as_i64().unwrap(),
                t["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (sb, tasks)
}

/// Milliseconds since the epoch of a request log's `time`.
fn logged_ms(r: &serde_json::Value) -> i64 {
    let t: jiff::Timestamp = r["time"].as_str().unwrap().parse().unwrap();
    t.as_millisecond()
}

#[test]
fn a_task_still_queued_is_not_polled_among_the_quick_ones() {
    // Tasks of 100 ms, one in ten twenty times that (2 s, queued for its first 0.67 s, as the
    // sandbox's tasks are for a third of their time).
    let (sb, tasks) = long_tail_import(1000, "100", "0.1", "20", "3");
    let mut slow: Vec<&(i64, i64, String)> = tasks.iter().filter(|t| t.1 - t.0 >= 1500).collect();
    slow.sort();
    assert!(slow.len() >= 5, "{} slow tasks", slow.len());
    let requests = sb.requests();
    // Once three slow tasks have ended (two are enough to go by), a later slow task's first
    // poll finds it queued and the next goes where the slow ones end: none at the steps just
    // past the quick ones' end, where every later poll of it would find it still running.
    // Ended 300 ms before it was made: seen ended by then (polls 6% of 2 s apart).
    let ended_by = |made: i64| slow.iter().filter(|t| t.1 < made - 300).count();
    let mut checked = 0;
    for &(made, _, id) in &slow {
        if ended_by(*made) < 3 {
            continue;
        }
        let early = requests
            .iter()
            .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().ends_with(id.as_str()))
            .filter(|r| logged_ms(r) - made <= 1000)
            .count();
        assert_eq!(early, 1, "task {id}: {early} polls in its first second");
        checked += 1;
    }
    assert!(checked >= 2, "{checked} slow tasks made after three ended");
}
