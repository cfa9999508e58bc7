//! `csmport delete`: a third of every kind deleted from files, checked on the sandbox, and put
//! back from the backups; the safety rails (no terminal without --yes, --dry-run) and the
//! refusal to retry a delete's report as an import.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;

/// `KIND`'s rows on the site, as export writes them, without the columns named in `drop`
/// (ids, which a put-back thing gets anew).
fn site_rows(
    ctx: &Ctx,
    sb: &SandboxProc,
    kind: &str,
    name: &str,
    drop: &[&str],
) -> BTreeSet<Vec<String>> {
    let file = ctx.path(name);
    let out = ctx
        .csmport(Some(sb))
        .args(["export", kind, "--service-desk", "1", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr(&out));
    let (header, rows) = read_csv(&file);
    // Columns by name: a field put back comes last in the site's order of fields.
    let mut keep: Vec<usize> = (0..header.len())
        .filter(|i| !drop.contains(&header[*i].as_str()))
        .collect();
    keep.sort_by_key(|&i| header[i].clone());
    rows.into_iter()
        .map(|r| {
            keep.iter()
                .map(|&i| r.get(i).cloned().unwrap_or_default())
                .collect()
        })
        .collect()
}

/// The first third of an export's rows, as a file to delete from.
fn a_third(ctx: &Ctx, export: &str, name: &str) -> (PathBuf, usize) {
    let (header, rows) = read_csv(&ctx.path(export));
    let n = rows.len().div_ceil(3);
    let mut w = csv::Writer::from_path(ctx.path(name)).unwrap();
    w.write_record(&header).unwrap();
    for r in &rows[..n] {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    (ctx.path(name), n)
}

fn delete(ctx: &Ctx, sb: &SandboxProc, kind: &str, file: &Path, dir: &str) -> serde_json::Value {
    let out = ctx
        .csmport(Some(sb))
        .args(["delete", kind])
        .arg(file)
        .args(["--yes", "--service-desk", "1", "--out", dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(ctx.path(dir).join("summary.json")).unwrap())
        .unwrap()
}

fn import(ctx: &Ctx, sb: &SandboxProc, kind: &str, file: &Path) {
    let out = ctx
        .csmport(Some(sb))
        .args(["import", kind])
        .arg(file)
        .args(["--service-desk", "1", "--out"])
        .arg(ctx.path(&format!(
            "restore-{}",
            file.file_stem().unwrap().to_string_lossy().to_string()
                + &file.parent().unwrap().file_name().unwrap().to_string_lossy()
        )))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{kind}: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn a_third_of_every_kind_deleted_and_put_back_from_the_backups() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.import_sample_plan(&sb, "plan");
    // Before: every kind as export sees it. Customers and organizations are compared by who
    // they are (a deleted detail field's values are not put back: the summary says so).
    let fields_before = site_rows(&ctx, &sb, "detail-fields", "fields.csv", &[]);
    let products_before = site_rows(&ctx, &sb, "products", "products.csv", &["id"]);
    let orgs_before = site_rows(&ctx, &sb, "organizations", "orgs.csv", &["id"]);
    let customers_before = site_rows(
        &ctx,
        &sb,
        "customers",
        "customers.csv",
        &["id", "organizations"],
    );
    let ents_before = site_rows(&ctx, &sb, "entitlements", "ents.csv", &[]);
    let count = |k: &str| sb.state()[k].as_array().map_or(0, |a| a.len());
    let (n_customers, n_orgs, n_products) = (
        count("customers"),
        count("organizations"),
        count("products"),
    );

    // A third of each, in the order that keeps what is left valid.
    let (file, ents) = a_third(&ctx, "ents.csv", "del-ents.csv");
    let s = delete(&ctx, &sb, "entitlements", &file, "d-ents");
    assert_eq!(s["succeeded"], ents as u64, "{s}");
    let (file, products) = a_third(&ctx, "products.csv", "del-products.csv");
    let s = delete(&ctx, &sb, "products", &file, "d-products");
    assert_eq!(s["succeeded"], products as u64, "{s}");
    assert!(
        s["not_restorable"]
            .to_string()
            .contains("deletes its entitlements"),
        "{s}"
    );
    let (file, customers) = a_third(&ctx, "customers.csv", "del-customers.csv");
    let s = delete(&ctx, &sb, "customers", &file, "d-customers");
    assert_eq!(s["succeeded"], customers as u64, "{s}");
    assert!(s["not_restorable"].to_string().contains("new ids"), "{s}");
    let (file, orgs) = a_third(&ctx, "orgs.csv", "del-orgs.csv");
    let s = delete(&ctx, &sb, "organizations", &file, "d-orgs");
    assert_eq!(s["succeeded"], orgs as u64, "{s}");
    let (file, fields) = a_third(&ctx, "fields.csv", "del-fields.csv");
    let s = delete(&ctx, &sb, "detail-fields", &file, "d-fields");
    assert_eq!(s["succeeded"], fields as u64, "{s}");
    assert!(
        s["not_restorable"]
            .to_string()
            .contains("backup-values-customer.csv"),
        "{s}"
    );

    // The sandbox lost exactly those.
    assert_eq!(count("customers"), n_customers - customers);
    assert_eq!(count("organizations"), n_orgs - orgs);
    assert_eq!(count("products"), n_products - products);

    // Put back, in dependency order, from the backups.
    let backup = |dir: &str, file: &str| ctx.path(dir).join(file);
    import(
        &ctx,
        &sb,
        "detail-fields",
        &backup("d-fields", "backup.csv"),
    );
    import(&ctx, &sb, "organizations", &backup("d-orgs", "backup.csv"));
    import(&ctx, &sb, "customers", &backup("d-customers", "backup.csv"));
    import(&ctx, &sb, "products", &backup("d-products", "backup.csv"));
    let cascade = backup("d-products", "backup-entitlements.csv");
    if read_csv(&cascade).1.is_empty() {
        assert!(products == 0);
    } else {
        import(&ctx, &sb, "entitlements", &cascade);
    }
    import(&ctx, &sb, "entitlements", &backup("d-ents", "backup.csv"));
    // The deleted fields' values, on the customers and organizations that stayed.
    for (entity, kind) in [
        ("customer", "customer-details"),
        ("organization", "organization-details"),
    ] {
        let values = backup("d-fields", &format!("backup-values-{entity}.csv"));
        if values.exists() && !read_csv(&values).1.is_empty() {
            import(&ctx, &sb, kind, &values);
        }
    }

    assert_eq!(
        site_rows(&ctx, &sb, "detail-fields", "f2.csv", &[]),
        fields_before
    );
    assert_eq!(
        site_rows(&ctx, &sb, "products", "p2.csv", &["id"]),
        products_before
    );
    // Organizations and customers with every detail value (new ids aside; the members a
    // deleted organization had are what its summary said it cannot put back).
    assert_eq!(
        site_rows(&ctx, &sb, "organizations", "o2.csv", &["id"]),
        orgs_before
    );
    assert_eq!(
        site_rows(&ctx, &sb, "customers", "c2.csv", &["id", "organizations"]),
        customers_before
    );
    // Entitlements of holders that were not deleted are all back (a deleted customer's or
    // organization's own entitlements are not in its backup: the summary said so).
    let deleted_holders: BTreeSet<String> = read_csv(&ctx.path("del-customers.csv"))
        .1
        .iter()
        .map(|r| r[0].clone())
        .chain(
            read_csv(&ctx.path("del-orgs.csv"))
                .1
                .iter()
                .map(|r| r[0].clone()),
        )
        .collect();
    let kept = |rows: BTreeSet<Vec<String>>| -> BTreeSet<Vec<String>> {
        rows.into_iter()
            .filter(|r| !r.iter().any(|c| deleted_holders.contains(c)))
            .collect()
    };
    assert_eq!(
        kept(site_rows(&ctx, &sb, "entitlements", "e2.csv", &[])),
        kept(ents_before)
    );
}

#[test]
fn a_delete_asks_first_and_a_dry_run_deletes_nothing() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("orgs.csv", b"name\nAcme Pty Ltd\nNo Such Org\n");
    let writes = sb.requests().len();
    // No terminal and no --yes: refused before anything is deleted.
    let out = ctx
        .csmport(Some(&sb))
        .args(["delete", "organizations"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    // Nothing was deleted: no run folder is left behind.
    let left: Vec<_> = std::fs::read_dir(ctx.path("csmport-runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let out = ctx
        .csmport(Some(&sb))
        .args(["delete", "organizations"])
        .arg(&file)
        .args(["--dry-run", "--out", "dry"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(sb.writes_since(writes).is_empty(), "a dry run wrote");
    let (_, backed) = read_csv(&ctx.path("dry/backup.csv"));
    assert_eq!(backed.len(), 1);
    assert_eq!(backed[0][0], "Acme Pty Ltd");
    let (_, skipped) = read_csv(&ctx.path("dry/failures.csv"));
    assert!(
        skipped[0].iter().any(|c| c.contains("not on the site")),
        "{skipped:?}"
    );

    let out = ctx
        .csmport(Some(&sb))
        .args(["delete", "organizations"])
        .arg(&file)
        .args(["--yes", "--out", "real"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("real/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        (s["succeeded"].as_u64(), s["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["operation"], "delete");
    // Its report is not retried as an import (that would put the rows back).
    let out = ctx
        .csmport(Some(&sb))
        .arg("retry")
        .arg(ctx.path("real/failures.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("csmport delete organizations"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn customers_found_by_a_detail_field_are_deleted_after_their_backup() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName,Customer Tier\nann@example.com,Ann,Premium\nbob@example.com,Bob,Free\ncat@example.com,Cat,Free\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = sb.state()["customers"].as_array().unwrap().len();
    let out = ctx
        .csmport(Some(&sb))
        .args([
            "delete",
            "customers",
            "--where",
            "customer tier=free",
            "--yes",
        ])
        .args(["--out", "w"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        sb.state()["customers"].as_array().unwrap().len(),
        before - 2
    );
    let (_, backed) = read_csv(&ctx.path("w/backup.csv"));
    let emails: BTreeSet<&str> = backed.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        emails,
        BTreeSet::from(["bob@example.com", "cat@example.com"])
    );
    assert_eq!(read_csv(&ctx.path("w/targets.csv")).1.len(), 2);
    // Only with customers, and a field the site has.
    for (args, says) in [
        (
            &["delete", "organizations", "--where", "Region=EMEA", "--yes"][..],
            "customers",
        ),
        (
            &["delete", "customers", "--where", "Tier=Free", "--yes"],
            "it has: ",
        ),
    ] {
        let out = ctx.csmport(Some(&sb)).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

/// `n` products made on `sb`; the file names them.
fn products(ctx: &Ctx, sb: &SandboxProc, n: usize) -> PathBuf {
    let mut csv = String::from("name\n");
    for i in 0..n {
        csv.push_str(&format!("Product {i}\n"));
    }
    let file = ctx.write("products.csv", csv.as_bytes());
    let out = ctx
        .csmport(Some(sb))
        .args(["import", "products"])
        .arg(&file)
        .arg("--out")
        .arg(ctx.path("made"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    file
}

fn product_count(sb: &SandboxProc) -> usize {
    sb.state()["products"].as_array().unwrap().len()
}

/// The sandbox's DELETE requests: (path, status).
fn deletes(sb: &SandboxProc) -> Vec<(String, u64)> {
    sb.requests()
        .into_iter()
        .filter(|r| r["method"] == "DELETE")
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every DELETE's answer lost after the site applied it: none is sent again (a second one
/// would be a 404); reading the site settles each row as deleted.
#[test]
fn deletes_whose_answers_are_lost_are_settled_by_reading_the_site() {
    let sb = SandboxProc::start_raw(&[
        "--fault-seed",
        "1",
        "--fault-drop-after",
        "1",
        "--fault-method",
        "DELETE",
    ]);
    let ctx = Ctx::new();
    let file = products(&ctx, &sb, 6);
    let s = delete(&ctx, &sb, "products", &file, "run");
    assert_eq!(
        ["rows", "succeeded", "failed", "skipped"].map(|k| s[k].as_u64().unwrap()),
        [6, 6, 0, 0],
        "{s}"
    );
    assert_eq!(product_count(&sb), 0);
    let sent = deletes(&sb);
    assert_eq!(sent.len(), 6, "each sent once: {sent:?}");
    let distinct: BTreeSet<&String> = sent.iter().map(|(p, _)| p).collect();
    assert_eq!(distinct.len(), 6);
}

/// A delete killed (SIGKILL) mid-run, most likely after the site applied a DELETE and before
/// its answer came (each answer comes 300 ms after the delete): `resume` refuses to go on without the backup's list of ids, and with it finishes
/// the run, every product deleted exactly once and every row reported deleted (one the killed
/// run's call removed is read back as deleted, not skipped as "not on the site").
#[test]
fn a_delete_killed_mid_run_resumes_only_with_its_backup_and_deletes_each_once() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let sb = SandboxProc::start_raw(&[
        "--fault-slow",
        "1",
        "--fault-slow-ms",
        "300",
        "--fault-slow-after-applying",
        "--fault-method",
        "DELETE",
    ]);
    let ctx = Ctx::new();
    let file = products(&ctx, &sb, 16);
    let run = ctx.path("run");
    let mut child = ctx
        .csmport(Some(&sb))
        .args(["delete", "products"])
        .arg(&file)
        .arg("--yes")
        .arg("--out")
        .arg(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while deletes(&sb).len() < 4 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the delete ended first"
        );
        assert!(Instant::now() < deadline, "no deletes seen");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = product_count(&sb);
    assert!(left > 0 && left < 16, "{left} left");

    // Without the backup's list of ids nothing more is deleted.
    let ids = run.join("backup.ids");
    let kept = ctx.path("backup.ids.kept");
    std::fs::rename(&ids, &kept).unwrap();
    let before = deletes(&sb).len();
    let out = ctx
        .csmport(Some(&sb))
        .arg("resume")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("backup.ids"), "{}", stderr(&out));
    assert_eq!(deletes(&sb).len(), before);
    assert_eq!(product_count(&sb), left);

    std::fs::rename(&kept, &ids).unwrap();
    let out = ctx
        .csmport(Some(&sb))
        .arg("resume")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(product_count(&sb), 0);
    let (_, ok) = read_csv(&run.join("successes.csv"));
    let failures = std::fs::read_to_string(run.join("failures.csv")).unwrap_or_default();
    assert_eq!(ok.len(), 16, "{failures}");
    let sent = deletes(&sb);
    let applied: Vec<&(String, u64)> = sent.iter().filter(|(_, s)| *s < 300).collect();
    let distinct: BTreeSet<&String> = applied.iter().map(|(p, _)| p).collect();
    // The DELETE the kill cut short was applied but is not in the log (the sandbox logs a
    // request once it answers): no product was deleted twice.
    assert_eq!(applied.len(), distinct.len(), "{sent:?}");
    assert!((15..=16).contains(&applied.len()), "{sent:?}");
    assert!(sent.iter().all(|(_, s)| *s != 404), "{sent:?}");
}

/// Detail values: a third of the customers' and of the organizations' values cleared from an
/// export given as it is (every field with a value in the row), each value backed up first;
/// importing the backups makes both exports what they were, byte for byte.
#[test]
fn detail_values_cleared_from_an_export_and_put_back_from_the_backup() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.import_sample_plan(&sb, "plan");
    let export = |kind: &str, name: &str| {
        let out = ctx
            .csmport(Some(&sb))
            .args(["export", kind, "--out"])
            .arg(ctx.path(name))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        std::fs::read_to_string(ctx.path(name)).unwrap()
    };
    for (kind, values) in [
        ("customers", "customer-details"),
        ("organizations", "organization-details"),
    ] {
        let before = export(kind, &format!("{kind}.csv"));
        let (file, n) = a_third(&ctx, &format!("{kind}.csv"), &format!("del-{kind}.csv"));
        assert!(n > 0);
        let dir = format!("d-{values}");
        let out = ctx
            .csmport(Some(&sb))
            .args(["delete", values])
            .arg(&file)
            .args(["--out", &dir])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "no terminal, no --yes");
        let s = delete(&ctx, &sb, values, &file, &dir);
        assert_eq!(s["operation"], "delete", "{s}");
        assert_eq!(s["failed"], 0, "{s}");
        let kept = s["backup_rows"].as_u64().unwrap();
        assert!(kept > 0, "{s}");
        let backup = ctx.path(&dir).join("backup.csv");
        assert_eq!(read_csv(&backup).1.len() as u64, kept);

        // The rows' detail columns are empty on the site now; the others are untouched.
        let (header, rows) = read_csv(&ctx.path(&format!("del-{kind}.csv")));
        let id = header.iter().position(|h| h == "id").unwrap();
        let ids: BTreeSet<&String> = rows.iter().map(|r| &r[id]).collect();
        export(kind, "mid.csv");
        let (h2, now) = read_csv(&ctx.path("mid.csv"));
        let fixed = if kind == "customers" { 3 } else { 1 };
        let id2 = h2.iter().position(|h| h == "id").unwrap();
        let details: Vec<usize> = (fixed..h2.len()).filter(|&i| i != id2).collect();
        for r in &now {
            let empty = details.iter().all(|&i| r[i].is_empty());
            assert!(empty || !ids.contains(&r[id2]), "{r:?}");
        }

        import(&ctx, &sb, values, &backup);
        assert_eq!(export(kind, "after.csv"), before, "{kind}");
    }
}

/// A file longer than one lookup group (100 rows), naming some products twice: the backup
/// pass goes a group at a time and backs each product up once; the run deletes each once and
/// fails the later duplicate rows.
#[test]
fn the_backup_pass_goes_a_group_at_a_time_and_backs_each_thing_up_once() {
    let sb = SandboxProc::start_raw(&[]);
    let ctx = Ctx::new();
    products(&ctx, &sb, 230);
    let mut csv = String::from("name\n");
    for i in 0..230 {
        csv.push_str(&format!("Product {i}\n"));
    }
    for i in [3, 150, 229] {
        csv.push_str(&format!("product {i}\n"));
    }
    let file = ctx.write("gone.csv", csv.as_bytes());
    let out = ctx
        .csmport(Some(&sb))
        .args(["delete", "products"])
        .arg(&file)
        .args(["--yes", "--out", "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let run = ctx.path("run");
    assert_eq!(read_csv(&run.join("backup.csv")).1.len(), 230);
    let ids = std::fs::read_to_string(run.join("backup.ids")).unwrap();
    assert_eq!(ids.lines().count(), 230);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        ["rows", "succeeded", "failed"].map(|k| s[k].as_u64().unwrap()),
        [233, 230, 3],
        "{s}"
    );
    assert_eq!(product_count(&sb), 0);
    assert_eq!(deletes(&sb).len(), 230);
    assert!(stderr(&out).contains("230 on the site"), "{}", stderr(&out));
}

#[test]
fn ctrl_c_in_the_backup_pass_deletes_nothing_and_says_so() {
    // Every answer takes 3 s: the signal lands while the backup is being read.
    let sb = SandboxProc::start(&["--fault-slow", "1", "--fault-slow-ms", "3000"]);
    let ctx = Ctx::new();
    let file = ctx.write("orgs.csv", b"name\nAcme Pty Ltd\n");
    let before = sb.state()["organizations"].as_array().unwrap().len();
    let child = ctx
        .csmport(Some(&sb))
        .args(["delete", "organizations"])
        .arg(&file)
        .args(["--yes", "--out", "del"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("del/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        (s["interrupted"].as_bool(), s["succeeded"].as_u64()),
        (Some(true), Some(0))
    );
    assert_eq!(
        sb.state()["organizations"].as_array().unwrap().len(),
        before
    );
}

#[test]
fn a_delete_s_page_names_its_backup_the_undo_and_its_skipped_rows_apart() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let people = ctx.write(
        "people.csv",
        b"email,displayName\na@example.com,A\nb@example.com,B\n",
    );
    let out = ctx.import(&sb, &people, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let gone = ctx.write(
        "gone.csv",
        b"email\na@example.com\nnobody@example.com\nb@example.com\n",
    );
    let s = delete(&ctx, &sb, "customers", &gone, "d");
    assert_eq!(
        (s["succeeded"].as_u64(), s["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    let html = std::fs::read_to_string(ctx.path("d/report.html")).unwrap();
    let page = crate::report::parse(&html);
    assert!(
        !page.outcome.contains("every row succeeded"),
        "{}",
        page.outcome
    );
    assert!(
        !page.tables.keys().any(|c| c.starts_with("Failure reasons")),
        "a skipped row listed as a failure: {:?}",
        page.tables.keys()
    );
    let skipped = &page.tables["Why rows were skipped"];
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert_eq!(skipped[1][0], "1");
    assert!(
        html.contains("<pre>csmport import customers d/backup.csv</pre>"),
        "no undo command in the page"
    );
    let lost = &page.tables["What an import of the backup cannot put back"];
    assert!(lost.iter().any(|r| r[0].contains("new ids")), "{lost:?}");
}
