//! The nightly export: a change file against the export it replaces (CSV and the XLSX's
//! Changes sheet), one export per output at a time (exit 75), names that carry the date with
//! `--keep` removing the old ones.

use std::process::Stdio;
use std::time::{Duration, Instant};

use calamine::{Reader, Xlsx, open_workbook};

use crate::common::{Ctx, SandboxProc, read_csv, stderr, stdout};

const CUSTOMERS: &str = "email,displayName,Customer Tier,Seats
ann@example.com,Ann Lee,Premium,5
bob@example.com,Bob Ray,Free,12
cat@example.com,Cat Wu,,3
";

fn run(ctx: &Ctx, sb: &SandboxProc, args: &[&str]) -> std::process::Output {
    ctx.csmport(Some(sb)).args(args).output().unwrap()
}

fn ok(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
}

/// Deletes one customer from the site, in run folder `out`.
fn delete_customer(ctx: &Ctx, sb: &SandboxProc, email: &str, out: &str) {
    let file = ctx.write(
        &format!("{out}.csv"),
        format!("email\n{email}\n").as_bytes(),
    );
    ok(&run(
        ctx,
        sb,
        &[
            "delete",
            "customers",
            &file.to_string_lossy(),
            "--yes",
            "--service-desk",
            "1",
            "--out",
            out,
        ],
    ));
}

/// The three customers of `CUSTOMERS` on the site.
fn seed(ctx: &Ctx, sb: &SandboxProc) {
    let file = ctx.write("in.csv", CUSTOMERS.as_bytes());
    ok(&run(
        ctx,
        sb,
        &[
            "import",
            "customers",
            &file.to_string_lossy(),
            "--out",
            "r1",
        ],
    ));
}

#[test]
fn a_change_file_lists_what_changed_on_the_site_row_by_row() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seed(&ctx, &sb);

    // The first night: nothing to compare with, every customer is added.
    let first = run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "c.csv",
            "--changes",
            "ch.csv",
            "--json",
        ],
    );
    ok(&first);
    let s: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(s["changes"]["added"], 3, "{s}");
    assert!(s["changes"]["since"].is_null(), "{s}");
    ok(&run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "c.xlsx",
            "--changes",
            "chx.csv",
        ],
    ));

    // During the day: Ann renamed and given a seat, Dan added, Cat deleted.
    let update = ctx.write(
        "update.csv",
        b"email,displayName,Seats\nann@example.com,Ann Leigh,6\ndan@example.com,Dan Orr,1\n",
    );
    ok(&run(
        &ctx,
        &sb,
        &[
            "import",
            "customers",
            &update.to_string_lossy(),
            "--out",
            "r2",
        ],
    ));
    delete_customer(&ctx, &sb, "cat@example.com", "d");

    let want = vec![
        vec![
            "changed",
            "ann@example.com",
            "displayName",
            "Ann Lee",
            "Ann Leigh",
        ],
        vec!["changed", "ann@example.com", "Seats", "5", "6"],
        vec!["removed", "cat@example.com", "", "", ""],
        vec!["added", "dan@example.com", "", "", ""],
    ];
    let out = run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "c.csv",
            "--changes",
            "ch.csv",
        ],
    );
    ok(&out);
    assert!(
        stdout(&out)
            .contains("changes   1 added, 1 removed, 1 changed (ch.csv, compared with c.csv)"),
        "{}",
        stdout(&out)
    );
    let (header, rows) = read_csv(&ctx.path("ch.csv"));
    assert_eq!(header, ["_change", "email", "_column", "_old", "_new"]);
    assert_eq!(rows, want);

    // The same from the XLSX: the change file, and the workbook's own Changes sheet.
    let out = run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "c.xlsx",
            "--changes",
            "chx.csv",
            "--json",
        ],
    );
    ok(&out);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &s["changes"]["added"],
            &s["changes"]["removed"],
            &s["changes"]["changed"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{s}"
    );
    assert_eq!(read_csv(&ctx.path("chx.csv")).1, want);
    let mut book: Xlsx<_> = open_workbook(ctx.path("c.xlsx")).unwrap();
    assert_eq!(book.sheet_names(), ["customers", "Changes"]);
    let sheet = book.worksheet_range("Changes").unwrap();
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(cells[0], ["_change", "email", "_column", "_old", "_new"]);
    assert_eq!(cells[1..], want);

    // Nothing changed since: an empty change file, the export byte for byte the same.
    let before = std::fs::read(ctx.path("c.csv")).unwrap();
    ok(&run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "c.csv",
            "--changes",
            "ch.csv",
        ],
    ));
    assert_eq!(std::fs::read(ctx.path("c.csv")).unwrap(), before);
    assert!(read_csv(&ctx.path("ch.csv")).1.is_empty());
    // A change file ending in .xlsx is a workbook of its own.
    delete_customer(&ctx, &sb, "ann@example.com", "d2");
    ok(&run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "c.csv",
            "--changes",
            "ch.xlsx",
        ],
    ));
    let mut book: Xlsx<_> = open_workbook(ctx.path("ch.xlsx")).unwrap();
    assert_eq!(book.sheet_names(), ["Changes"]);
    let sheet = book.worksheet_range("Changes").unwrap();
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(cells[1], ["removed", "ann@example.com", "", "", ""]);
}

#[test]
fn since_and_key_are_checked_before_anything_is_read() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.write("products.csv", b"name,id\nWidget,1\n");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--changes", "ch.csv", "--since", "products.csv"],
            "products.csv: not an export of customers: it has no 'email' column",
        ),
        (
            &["--changes", "ch.csv", "--since", "nope.csv"],
            "--since nope.csv: no such file",
        ),
        (&["--changes", "ch-{day}.csv"], "unknown placeholder {day}"),
        (
            &["--changes", "ch.csv", "--key", "External ID"],
            "--key names the column organizations are told apart by",
        ),
    ];
    for (args, message) in cases {
        let out = run(
            &ctx,
            &sb,
            &[&["export", "customers", "--out", "c.csv"][..], args].concat(),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!ctx.path("c.csv").exists(), "{args:?}");
    }
    assert!(
        !sb.requests()
            .iter()
            .any(|r| r["path"].as_str().unwrap_or("").contains("customer")),
        "the site was read before the options were checked"
    );
    // Organizations by a column of the user's choosing.
    let out = run(
        &ctx,
        &sb,
        &[
            "export",
            "organizations",
            "--out",
            "o.csv",
            "--changes",
            "cho.csv",
            "--key",
            "Region",
        ],
    );
    ok(&out);
    assert_eq!(read_csv(&ctx.path("cho.csv")).0[1], "Region");
}

#[test]
fn a_second_export_to_the_same_file_exits_75_and_the_file_is_the_first_s() {
    let sb = SandboxProc::start(&["--fault-slow", "1", "--fault-slow-ms", "400"]);
    let ctx = Ctx::new();
    let lock = ctx.path(".o.csv.csmport-lock");
    let first = ctx
        .csmport(Some(&sb))
        .args(["export", "organizations", "--out", "o.csv", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the first export took no lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = run(&ctx, &sb, &["export", "organizations", "--out", "o.csv"]);
    assert_eq!(second.status.code(), Some(75), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!("o.csv is being written by process {}", first.id())),
        "{}",
        stderr(&second)
    );
    let first = first.wait_with_output().unwrap();
    ok(&first);
    let s: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let written = std::fs::read(ctx.path("o.csv")).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&written)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(s["sha256"], sha.as_str());
    assert!(!lock.exists(), "the lock is removed at the end");

    // A lock a killed export left behind is taken over, with a note.
    std::fs::write(
        &lock,
        "process 4000000 (csmport export, started 2026-12-01T03:00:00Z)",
    )
    .unwrap();
    let out = run(&ctx, &sb, &["export", "organizations", "--out", "o.csv"]);
    ok(&out);
    assert!(
        stderr(&out).contains("took over the lock") && stderr(&out).contains("process 4000000"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dated_names_and_keep_removes_the_oldest() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    for day in ["2026-11-01", "2026-11-02", "2026-11-03"] {
        ctx.write(&format!("o-{day}.csv"), b"old");
    }
    ctx.write("o-notes.csv", b"mine");
    let out = run(
        &ctx,
        &sb,
        &[
            "export",
            "organizations",
            "--out",
            "o-{date}.csv",
            "--keep",
            "2",
            "--json",
        ],
    );
    ok(&out);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let today = s["out"].as_str().unwrap().to_string();
    assert!(
        today.starts_with("o-20") && today.len() == "o-2026-12-06.csv".len(),
        "{today}"
    );
    let mut left: Vec<String> = std::fs::read_dir(ctx.path("."))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("o-"))
        .collect();
    left.sort();
    let mut want = vec!["o-2026-11-03.csv".to_string(), "o-notes.csv".into(), today];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(s["removed"].as_array().unwrap().len(), 2, "{s}");
    // --keep with nothing that varies is refused.
    let out = run(
        &ctx,
        &sb,
        &["export", "organizations", "--out", "o.csv", "--keep", "2"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("{date}"), "{}", stderr(&out));
}

/// The command of the README's cron line, as words (single quotes kept together).
fn readme_cron_command() -> Vec<String> {
    let readme = std::fs::read_to_string(crate::common::repo("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("30 2 * * *") && l.contains("csmport export"))
        .expect("the README's cron line");
    let command = line.split("&& csmport ").nth(1).unwrap();
    let command = command.split(" >>").next().unwrap();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    words.push(word);
    words
}

#[test]
fn the_readme_s_nightly_export_runs_with_nothing_but_its_variables() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seed(&ctx, &sb);
    let args = readme_cron_command();
    assert_eq!(args[0], "export", "{args:?}");
    // As cron runs it: no terminal, no HOME, no PATH; csm.env's variables and the address of
    // this sandbox (a real site takes the default gateway).
    let nightly = || {
        std::process::Command::new(crate::common::bin())
            .current_dir(ctx.path("."))
            .env_clear()
            .env("CSM_BASE_URL", &sb.url)
            .env("CSM_CLOUD_ID", "test-cloud")
            .env("CSM_EMAIL", "ops@example.com")
            .env("CSM_API_TOKEN", crate::common::TOKEN)
            .env("CSM_SITE", &sb.url)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    ok(&nightly());
    let update = ctx.write(
        "update.csv",
        b"email,displayName\nbob@example.com,Robert Ray\n",
    );
    ok(&run(
        &ctx,
        &sb,
        &[
            "import",
            "customers",
            &update.to_string_lossy(),
            "--out",
            "r2",
        ],
    ));
    let out = nightly();
    ok(&out);
    assert!(
        stdout(&out).contains("changes   0 added, 0 removed, 1 changed"),
        "{}",
        stdout(&out)
    );
    let changes: Vec<_> = std::fs::read_dir(ctx.path("exports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("changes-"))
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let (_, rows) = read_csv(&ctx.path("exports").join(&changes[0]));
    assert_eq!(
        rows,
        [[
            "changed",
            "bob@example.com",
            "displayName",
            "Bob Ray",
            "Robert Ray"
        ]]
    );
    assert!(read_csv(&ctx.path("exports/customers.csv")).1.len() == 3);
}

/// Customers to fill the sandbox with: enough for several pages of profiles.
fn many_customers(ctx: &Ctx, n: usize) -> std::path::PathBuf {
    let mut text = String::from("email,displayName,Seats\n");
    for i in 0..n {
        text.push_str(&format!("c{i:05}@example.com,Customer {i},{}\n", i % 40));
    }
    ctx.write("many.csv", text.as_bytes())
}

fn profile_fetches(sb: &SandboxProc) -> usize {
    sb.requests()
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"].as_str().unwrap_or("").ends_with("profile/fetch")
        })
        .count()
}

#[test]
fn an_export_that_stopped_goes_on_with_resume_to_the_same_file() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = many_customers(&ctx, 2500);
    ok(&run(
        &ctx,
        &sb,
        &[
            "import",
            "customers",
            &file.to_string_lossy(),
            "--out",
            "r1",
        ],
    ));
    let before = profile_fetches(&sb);
    ok(&run(
        &ctx,
        &sb,
        &["export", "customers", "--out", "full.csv"],
    ));
    let full_fetches = profile_fetches(&sb) - before;

    // Slow answers, so the export is still reading when Ctrl-C comes.
    let spool = ctx.path(".part.csv.csmport-export.sqlite");
    let child = reading(&ctx, &sb, "part.csv", &spool);
    crate::common::sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--resume goes on from there"),
        "{}",
        stderr(&out)
    );
    assert!(spool.exists(), "what was read is kept");
    assert!(
        !ctx.path("part.csv").exists(),
        "no half file under the name"
    );
    crate::common::set_faults(&sb, serde_json::json!({}));

    // Another export's reads are not taken for this one's, and nothing to go on from is said.
    let out = run(
        &ctx,
        &sb,
        &[
            "export",
            "customers",
            "--out",
            "part.csv",
            "--service-desk",
            "1",
            "--resume",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("read something else"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &ctx,
        &sb,
        &["export", "customers", "--out", "other.csv", "--resume"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no export of other.csv stopped"),
        "{}",
        stderr(&out)
    );

    let before = profile_fetches(&sb);
    let calls_before = sb.requests().len();
    ok(&run(
        &ctx,
        &sb,
        &["export", "customers", "--out", "part.csv", "--resume"],
    ));
    let resumed_fetches = profile_fetches(&sb) - before;
    assert_eq!(
        listings_since(&sb, calls_before),
        Vec::<String>::new(),
        "the customers were listed in full before the stop: resume lists nothing again"
    );
    assert_eq!(
        std::fs::read(ctx.path("part.csv")).unwrap(),
        std::fs::read(ctx.path("full.csv")).unwrap(),
        "the resumed export is not the uninterrupted one"
    );
    assert!(
        resumed_fetches < full_fetches,
        "resume read everything again: {resumed_fetches} of {full_fetches} profile reads"
    );
    assert!(!spool.exists(), "the working file is removed at the end");

    // A kill leaves what was read; a resume that finds the site gone keeps it and names it.
    let spool = ctx.path(".killed.csv.csmport-export.sqlite");
    let mut child = reading(&ctx, &sb, "killed.csv", &spool);
    child.kill().unwrap();
    child.wait().unwrap();
    crate::common::set_faults(&sb, serde_json::json!({}));
    let kept = rows_kept(&spool);
    assert!(kept > 0 && !ctx.path("killed.csv").exists());
    let out = ctx
        .csmport(None)
        .args([
            "--base-url",
            "http://127.0.0.1:9",
            "--cloud-id",
            "test-cloud",
        ])
        .args([
            "--access-token",
            crate::common::TOKEN,
            "export",
            "customers",
        ])
        .args(["--out", "killed.csv", "--resume", "--retries", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".killed.csv.csmport-export.sqlite"),
        "the kept file is named: {}",
        stderr(&out)
    );
    assert!(
        spool.exists() && rows_kept(&spool) >= kept,
        "what was read is kept"
    );
    let calls_before = sb.requests().len();
    ok(&run(
        &ctx,
        &sb,
        &["export", "customers", "--out", "killed.csv", "--resume"],
    ));
    assert_eq!(listings_since(&sb, calls_before), Vec::<String>::new());
    assert_eq!(
        std::fs::read(ctx.path("killed.csv")).unwrap(),
        std::fs::read(ctx.path("full.csv")).unwrap(),
        "the export resumed after a kill is not the uninterrupted one"
    );
    assert!(!spool.exists());
}

/// Rows an export has kept in its working file `spool` so far.
fn rows_kept(spool: &std::path::Path) -> i64 {
    rusqlite::Connection::open(spool)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM rows", [], |r| r.get::<_, i64>(0)))
        .unwrap_or(0)
}

/// An export of customers to `out` under slow answers, returned once it has kept rows in
/// `spool` (still reading: to be stopped). The sandbox answers slowly until told otherwise.
fn reading(ctx: &Ctx, sb: &SandboxProc, out: &str, spool: &std::path::Path) -> std::process::Child {
    crate::common::set_faults(sb, serde_json::json!({"slow": 1.0, "slowMs": 40}));
    let child = ctx
        .csmport(Some(sb))
        .args(["export", "customers", "--out", out])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows_kept(spool) == 0 {
        assert!(Instant::now() < deadline, "the export kept no rows");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The JSM listings (service projects, their customers, organizations and their members)
/// asked for after the first `from` requests.
fn listings_since(sb: &SandboxProc, from: usize) -> Vec<String> {
    sb.requests()[from..]
        .iter()
        .map(|r| r["path"].as_str().unwrap_or("").to_string())
        .filter(|p| p.contains("/servicedeskapi/"))
        .collect()
}
