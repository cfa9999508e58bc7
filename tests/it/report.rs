//! `report.html`: the page every run folder gets, read back with an XML parser: the outcome
//! line's counts are summary.json's, the failure reasons and their first rows are
//! failures.csv's, a hostile cell shows as text, nothing is fetched from elsewhere, and no
//! credential is in it; `csmport report` writes it again.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::events::Event;

use crate::common::*;

/// The page's text by element: every `<p class="outcome">`'s text, and every table as rows of
/// cell texts (by caption). Fails on a page that is not well-formed.
pub(crate) struct Page {
    pub(crate) outcome: String,
    pub(crate) tables: HashMap<String, Vec<Vec<String>>>,
    pub(crate) svgs: usize,
}

pub(crate) fn parse(html: &str) -> Page {
    let mut r = quick_xml::Reader::from_str(html);
    let mut page = Page {
        outcome: String::new(),
        tables: HashMap::new(),
        svgs: 0,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut caption = String::new();
    let mut row: Vec<String> = Vec::new();
    let mut in_outcome = false;
    loop {
        match r
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed at {}: {e}", r.buffer_position()))
        {
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                let class = e
                    .try_get_attribute("class")
                    .unwrap()
                    .map(|a| a.value.to_string());
                if name == "p" && class.as_deref().is_some_and(|c| c.starts_with("outcome")) {
                    in_outcome = true;
                }
                if name == "svg" {
                    page.svgs += 1;
                }
                if name == "caption" {
                    caption.clear();
                }
                if name == "td" || name == "th" {
                    row.push(String::new());
                }
                stack.push(name);
            }
            Event::End(e) => {
                let name = e.name().as_ref().to_string();
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "unbalanced");
                if name == "p" {
                    in_outcome = false;
                }
                if name == "tr" {
                    let cells = std::mem::take(&mut row);
                    page.tables.entry(caption.clone()).or_default().push(cells);
                }
            }
            Event::Empty(e) if e.name().as_ref() == "br" => {
                if let Some(c) = row.last_mut() {
                    c.push('\n');
                }
            }
            Event::Text(t) => {
                let text = t.to_string();
                if in_outcome {
                    page.outcome.push_str(&text);
                }
                match stack.last().map(String::as_str) {
                    Some("caption") => caption.push_str(&text),
                    _ if stack.iter().any(|s| s == "td" || s == "th") => {
                        if let Some(c) = row.last_mut() {
                            c.push_str(&text);
                        }
                    }
                    _ => {}
                }
            }
            Event::GeneralRef(e) => {
                let name = e.to_string();
                let text = quick_xml::escape::unescape(&format!("&{name};"))
                    .unwrap()
                    .to_string();
                if in_outcome {
                    page.outcome.push_str(&text);
                }
                if stack.iter().any(|s| s == "td" || s == "th")
                    && let Some(c) = row.last_mut()
                {
                    c.push_str(&text);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    page
}

fn offline(html: &str) {
    for needle in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(
            !html.to_lowercase().contains(needle),
            "{needle} in the page"
        );
    }
    assert!(!html.contains(TOKEN), "the token is in the page");
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn the_sample_import_s_report_shows_its_counts_reasons_and_rows() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx.import(&sb, &repo("sample-data/customers.csv"), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let run = ctx.path("run");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    offline(&html);
    let page = parse(&html);
    let s = summary(&run);
    let n = |k: &str| s[k].as_u64().unwrap();
    assert!(
        page.outcome.starts_with(&format!(
            "{} rows = {} succeeded + {} failed + {} skipped",
            n("rows"),
            n("succeeded"),
            n("failed"),
            n("skipped")
        )),
        "{}",
        page.outcome
    );
    assert!(page.outcome.contains("exit 1"), "{}", page.outcome);
    assert!(page.svgs >= 3, "charts: {}", page.svgs);

    // The reasons table: counts add up to the failed rows, the first rows it names are
    // failures.csv's rows with that reason.
    let reasons = &page.tables["Failure reasons, most frequent first (a row failing on several cells counts under each of its reasons), with the values they name most often and the first rows each hit"];
    let body = &reasons[1..];
    let total: u64 = body.iter().map(|r| r[0].parse::<u64>().unwrap()).sum();
    let (header, failures) = read_csv(&run.join("failures.csv"));
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    // Each failed row once per cell it failed on.
    let messages: u64 = failures
        .iter()
        .filter(|f| f[at("_stage")] != "skipped" && f[at("_stage")] != "open")
        .map(|f| {
            let cells = f[at("_field")].split(';').filter(|c| !c.is_empty()).count();
            let parts = f[at("_error")].split(" | ").count();
            if cells > 1 && parts == cells {
                cells as u64
            } else {
                1
            }
        })
        .sum();
    assert!(
        messages > n("failed"),
        "the sample has rows failing on several cells"
    );
    assert_eq!(total, messages);
    for r in body {
        let first = r[4].lines().next().unwrap();
        let (row, email) = first.split_once(": ").unwrap();
        let f = failures
            .iter()
            .find(|f| f[at("_row")] == row)
            .unwrap_or_else(|| panic!("row {row} is not in failures.csv"));
        assert_eq!(f[0], email);
        assert_eq!(f[at("_stage")], r[1]);
    }
    // A reason that names values shows the most common ones, as written, with their counts.
    let option = body
        .iter()
        .find(|r| r[2].contains("is not an option"))
        .expect("an option reason");
    assert!(
        option[3].starts_with('\'') && option[3].contains(" ×"),
        "{option:?}"
    );
    // The outcome table and the column table agree with the summary and the report.
    let outcomes = &page.tables["Rows by outcome"];
    assert!(outcomes.contains(&vec!["failed".to_string(), n("failed").to_string()]));
    let columns = &page.tables["Failures per column"];
    let emails = failures
        .iter()
        .filter(|f| f[at("_field")].split(';').any(|c| c == "email"))
        .count();
    assert!(
        columns.contains(&vec!["email".to_string(), emails.to_string()]),
        "{columns:?}"
    );

    // The pace: as many tasks as summary.json counts, their durations charted and listed.
    let tasks = &page.tables["Tasks and waits"];
    assert!(
        tasks.contains(&vec!["tasks".to_string(), n("tasks").to_string()]),
        "{tasks:?}"
    );
    assert!(tasks.iter().any(|r| r[0] == "median task"), "{tasks:?}");
    assert!(html.contains("Task durations (ms)"));

    // `csmport report` writes the same page again.
    std::fs::remove_file(run.join("report.html")).unwrap();
    let out = ctx.csmport(None).arg("report").arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(run.join("report.html")).unwrap(),
        html
    );
}

#[test]
fn a_hostile_cell_shows_as_text_and_a_validation_gets_its_page_too() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "evil.csv",
        b"email,displayName\n<script>alert(1)</script>,<img src=x onerror=alert(2)>\nok@example.com,Fine\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let html = std::fs::read_to_string(ctx.path("run/report.html")).unwrap();
    offline(&html);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped"
    );
    let page = parse(&html);
    let reasons = &page.tables["Failure reasons, most frequent first (a row failing on several cells counts under each of its reasons), with the values they name most often and the first rows each hit"];
    assert_eq!(reasons[1][4], "1: <script>alert(1)</script>");

    let out = ctx
        .csmport(Some(&sb))
        .args(["validate", "customers"])
        .arg(&file)
        .args(["--out", "checked"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let html = std::fs::read_to_string(ctx.path("checked/report.html")).unwrap();
    offline(&html);
    let page = parse(&html);
    assert!(
        page.outcome.starts_with("2 rows = 1 valid + 1 failed"),
        "{}",
        page.outcome
    );
}

#[test]
fn report_refuses_a_folder_that_is_no_run() {
    let ctx = Ctx::new();
    let out = ctx
        .csmport(None)
        .arg("report")
        .arg(ctx.path(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a run folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_plan_s_page_has_a_line_per_step_in_the_order_they_ran() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.import_sample_plan(&sb, "plan");
    let top = ctx.path("plan");
    let html = std::fs::read_to_string(top.join("report.html")).unwrap();
    offline(&html);
    let page = parse(&html);
    let s = summary(&top);
    let steps = s["steps"].as_array().unwrap();
    let table = &page.tables["Steps (each folder has its own report)"];
    assert_eq!(table.len(), steps.len() + 1, "{table:?}");
    for (row, step) in table[1..].iter().zip(steps) {
        assert_eq!(row[1], step["kind"].as_str().unwrap());
        assert_eq!(row[3], step["summary"]["rows"].to_string());
        assert_eq!(row[5], step["summary"]["failed"].to_string());
        let own = Path::new(step["run_dir"].as_str().unwrap()).join("report.html");
        assert_eq!(row[8], own.display().to_string());
        assert!(ctx.path("").join(&own).is_file(), "{own:?}");
    }
    let total: u64 = steps
        .iter()
        .map(|st| st["summary"]["rows"].as_u64().unwrap())
        .sum();
    assert!(
        page.outcome.starts_with(&format!("{total} rows = ")),
        "{}",
        page.outcome
    );
}

#[test]
fn export_report_names_the_file_its_hash_and_rows_per_kind() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx
        .csmport(Some(&sb))
        .args(["export", "organizations", "products", "--out", "site.xlsx"])
        .args(["--report", "export.html", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let html = std::fs::read_to_string(ctx.path("export.html")).unwrap();
    offline(&html);
    assert!(html.contains(s["sha256"].as_str().unwrap()));
    // When the export was written, to the second.
    let written = s["written_at"].as_str().unwrap();
    assert!(written.parse::<jiff::Timestamp>().is_ok(), "{written}");
    let shown = format!("{} UTC", written.trim_end_matches('Z').replace('T', " "));
    assert!(
        html.contains(&format!("<dt>Written</dt><dd>{shown}</dd>")),
        "{html}"
    );
    let page = parse(&html);
    let rows = &page.tables["Rows per kind"];
    for kind in ["organizations", "products"] {
        assert!(
            rows.contains(&vec![kind.to_string(), s["rows"][kind].to_string()]),
            "{rows:?}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn report_open_says_when_the_opener_fails() {
    use std::os::unix::fs::PermissionsExt;
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\nnot-an-email,A\n");
    let out = ctx
        .csmport(None)
        .args(["validate", "customers"])
        .arg(&file)
        .arg("--schema")
        .arg(repo("sample-data/customer-detail-fields.json"))
        .args(["--out", "v"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let bin_dir = ctx.path("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let opener = bin_dir.join("xdg-open");
    std::fs::write(&opener, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ctx
        .csmport(None)
        .env("PATH", &bin_dir)
        .args(["report", "--open"])
        .arg(ctx.path("v"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("xdg-open could not open it: it ended with"),
        "{err}"
    );
}
