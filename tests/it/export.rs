//! `csmport export`: what the site holds, in the import templates' columns, as CSV or XLSX;
//! importing an unchanged export is a no-op and a changed cell changes exactly that field;
//! text that a spreadsheet would run as a formula is defused and restored; a failed export
//! leaves nothing under the final name.

use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};

use crate::common::{Ctx, SandboxProc, read_csv, set_quirks, stderr, stdout};

/// Customers with every kind of detail value, and cells a spreadsheet would run as formulas.
const CUSTOMERS: &str = "email,displayName,organizations,Customer Tier,Renewal Date,Preferred Contact Channels,Primary Contact Phone,Seats,Notes
ann@example.com,Ann Lee,Acme Pty Ltd,Premium,2026-07-10,Email;Phone,+44 20 7946 0000,5,\"two
lines\"
bob@example.com,=HYPERLINK(\"http://evil.example\"),,Free,,,+1 415 555 0100,12,@SUM(A1)
cat@example.com,Cat Wu,Acme Pty Ltd;Globex Corporation,,2027-01-31,,4155550100,,-5 off
";

fn seeded(ctx: &Ctx, sb: &SandboxProc) {
    let file = ctx.write("in.csv", CUSTOMERS.as_bytes());
    let out = ctx.import(sb, &file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn export(ctx: &Ctx, sb: &SandboxProc, args: &[&str]) -> std::process::Output {
    ctx.csmport(Some(sb))
        .arg("export")
        .args(args)
        .output()
        .unwrap()
}

/// Imports `file` into a new run folder; returns its summary.
fn import(
    ctx: &Ctx,
    sb: &SandboxProc,
    kind: &str,
    file: &Path,
    dir: &str,
    extra: &[&str],
) -> serde_json::Value {
    let out = ctx
        .csmport(Some(sb))
        .args(["import", kind])
        .arg(file)
        .arg("--out")
        .arg(ctx.path(dir))
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(ctx.path(dir).join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bulk_posts(sb: &SandboxProc) -> usize {
    sb.requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/bulk"))
        .count()
}

#[test]
fn an_unchanged_csv_export_imports_as_a_no_op_and_one_changed_cell_changes_one_field() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let out = export(
        &ctx,
        &sb,
        &["customers", "--service-desk", "1", "--out", "c.csv"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("customers (3 rows)"),
        "{}",
        stdout(&out)
    );
    let raw = std::fs::read_to_string(ctx.path("c.csv")).unwrap();
    // Formula text is defused; the phone stays text, the multi-line note one cell.
    assert!(raw.contains("'=HYPERLINK("), "{raw}");
    assert!(
        raw.contains("'@SUM(A1)") && raw.contains("'-5 off"),
        "{raw}"
    );
    // Numbers and phone numbers stay as they were: quoting them would make them text.
    assert!(raw.contains(",+44 20") && !raw.contains("'+44"), "{raw}");
    let (header, rows) = read_csv(&ctx.path("c.csv"));
    assert_eq!(
        header,
        [
            "email",
            "displayName",
            "organizations",
            "Customer Tier",
            "Renewal Date",
            "Support Email",
            "Preferred Contact Channels",
            "Primary Contact Phone",
            "Account Manager",
            "Seats",
            "Website",
            "Notes",
            "id"
        ]
    );
    let emails: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        emails,
        ["ann@example.com", "bob@example.com", "cat@example.com"]
    );
    assert_eq!(rows[2][2], "Acme Pty Ltd;Globex Corporation");
    assert_eq!(rows[0][11], "two\nlines");

    // Unchanged: nothing is sent.
    let before = bulk_posts(&sb);
    let s = import(&ctx, &sb, "customers", &ctx.path("c.csv"), "same", &[]);
    assert_eq!(
        (s["rows"].as_u64(), s["unchanged"].as_u64()),
        (Some(3), Some(3)),
        "{s}"
    );
    assert_eq!(bulk_posts(&sb), before, "an unchanged export sends nothing");
    // The injected text came back as it was on the site.
    let bob = &sb.state()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "bob@example.com")
        .unwrap()
        .clone();
    assert_eq!(bob["displayName"], "=HYPERLINK(\"http://evil.example\")");

    // One changed cell: one row sent, and only that field differs afterwards.
    let edited = raw.replace("Cat Wu", "Catherine Wu");
    let file = ctx.write("edited.csv", edited.as_bytes());
    let s = import(&ctx, &sb, "customers", &file, "edited", &[]);
    assert_eq!(
        (s["unchanged"].as_u64(), s["tasks"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    let out = export(
        &ctx,
        &sb,
        &["customers", "--service-desk", "1", "--out", "c2.csv"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = std::fs::read_to_string(ctx.path("c2.csv")).unwrap();
    assert_eq!(
        after, edited,
        "exactly the edited cell changed, in the same order"
    );
}

#[test]
fn xlsx_exports_have_typed_cells_one_sheet_per_kind_and_import_back_unchanged() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let out = export(
        &ctx,
        &sb,
        &[
            "customers",
            "organizations",
            "products",
            "detail-fields",
            "--service-desk",
            "1",
            "--out",
            "all.xlsx",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["rows"]["customers"], 3);
    assert_eq!(summary["format"], "xlsx");
    assert_eq!(summary["sha256"].as_str().unwrap().len(), 64);

    let mut book: Xlsx<_> = open_workbook(ctx.path("all.xlsx")).unwrap();
    assert_eq!(
        book.sheet_names(),
        ["customers", "organizations", "products", "detail-fields"]
    );
    let sheet = book.worksheet_range("customers").unwrap();
    let row = |r: usize| sheet.rows().nth(r).unwrap().to_vec();
    let header = row(0);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == &Data::String(name.into()))
            .unwrap()
    };
    let ann = row(1);
    assert_eq!(ann[col("Seats")], Data::Float(5.0));
    assert!(
        matches!(ann[col("Renewal Date")], Data::DateTime(_)),
        "{:?}",
        ann[col("Renewal Date")]
    );
    assert_eq!(
        ann[col("Primary Contact Phone")],
        Data::String("+44 20 7946 0000".into())
    );
    let bob = row(2);
    // Written as a string, never as a formula.
    assert_eq!(
        bob[col("displayName")],
        Data::String("=HYPERLINK(\"http://evil.example\")".into())
    );
    assert_eq!(
        row(3)[col("Primary Contact Phone")],
        Data::String("4155550100".into())
    );

    let before = bulk_posts(&sb);
    let xlsx = ctx.path("all.xlsx");
    let s = import(
        &ctx,
        &sb,
        "customers",
        &xlsx,
        "c",
        &["--sheet", "customers"],
    );
    assert_eq!(s["unchanged"].as_u64(), Some(3), "{s}");
    let s = import(
        &ctx,
        &sb,
        "organizations",
        &xlsx,
        "o",
        &["--sheet", "organizations"],
    );
    assert_eq!(s["unchanged"], s["rows"], "{s}");
    assert_eq!(bulk_posts(&sb), before, "nothing sent");
}

#[test]
fn csv_options_ids_and_order() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    ctx.write("ids.txt", b"cat@example.com\nann@example.com\n");
    // Only the customers the file names, with a BOM and `;`.
    let some = |out: &str| {
        export(
            &ctx,
            &sb,
            &[
                "customers",
                "--ids",
                "ids.txt",
                "--service-desk",
                "1",
                "--out",
                out,
                "--bom",
                "--delimiter",
                ";",
            ],
        )
    };
    let out = some("some.csv");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let raw = std::fs::read(ctx.path("some.csv")).unwrap();
    assert!(raw.starts_with("\u{feff}email;displayName;".as_bytes()));
    let text = String::from_utf8(raw).unwrap();
    let emails: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(';').next())
        .filter(|e| e.contains('@'))
        .collect();
    assert_eq!(emails, ["ann@example.com", "cat@example.com"]);
    // Read back as it was written: the dialect is detected, nothing is sent.
    let before = bulk_posts(&sb);
    let s = import(&ctx, &sb, "customers", &ctx.path("some.csv"), "r", &[]);
    assert_eq!(s["unchanged"].as_u64(), Some(2), "{s}");
    assert_eq!(bulk_posts(&sb), before);
    // Same site, same export: byte for byte.
    let again = some("again.csv");
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        std::fs::read(ctx.path("again.csv")).unwrap(),
        text.as_bytes()
    );

    // Organizations by name, products and detail fields in the templates' columns.
    ctx.write("orgs.txt", b"Globex Corporation\n");
    let out = export(
        &ctx,
        &sb,
        &["organizations", "--ids", "orgs.txt", "--out", "o.csv"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (h, rows) = read_csv(&ctx.path("o.csv"));
    assert_eq!((h[0].as_str(), h.last().unwrap().as_str()), ("name", "id"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "Globex Corporation");
    let out = export(&ctx, &sb, &["detail-fields", "--out", "f.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (h, rows) = read_csv(&ctx.path("f.csv"));
    assert_eq!(h, ["entity", "name", "type", "options"]);
    assert!(
        rows.iter()
            .any(|r| r[1] == "Customer Tier" && r[3] == "Free;Standard;Premium;Enterprise")
    );
}

#[test]
fn a_failed_export_leaves_the_last_good_file_in_place() {
    let sb = SandboxProc::start_raw(&["--fault-seed", "4", "--fault-500", "1"]);
    let ctx = Ctx::new();
    ctx.write("nightly.csv", b"yesterday's export\n");
    let out = export(
        &ctx,
        &sb,
        &[
            "organizations",
            "--out",
            "nightly.csv",
            "--retries",
            "1",
            "--max-wait",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(ctx.path("nightly.csv")).unwrap(),
        "yesterday's export\n"
    );
    let leftovers: Vec<String> = std::fs::read_dir(ctx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part") || n.starts_with(".csmport"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Usage errors: several kinds in a CSV, an unknown extension.
    let out = export(&ctx, &sb, &["customers", "products", "--out", "x.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a CSV holds one kind"),
        "{}",
        stderr(&out)
    );
    let out = export(&ctx, &sb, &["customers", "--out", "x.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!ctx.path("x.csv").exists() && !ctx.path("x.txt").exists());
}

#[test]
fn entitlements_export_in_the_template_columns_and_import_back_unchanged() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let fields = ctx.write(
        "fields.csv",
        b"entity,name,type,options\nentitlement,Seats Purchased,NUMBER,\nentitlement,Service Level,SELECT,Bronze;Silver;Gold\n",
    );
    import(&ctx, &sb, "detail-fields", &fields, "f", &[]);
    let products = ctx.write("products.csv", b"name\nWidget Pro\nSupport Plus\n");
    import(&ctx, &sb, "products", &products, "p", &[]);
    let ents = ctx.write(
        "ents.csv",
        b"customer,organization,product,Seats Purchased,Service Level\n,Acme Pty Ltd,Widget Pro,25,Gold\nann@example.com,,Support Plus,,Silver\n",
    );
    import(
        &ctx,
        &sb,
        "entitlements",
        &ents,
        "e",
        &["--service-desk", "1"],
    );
    let out = export(
        &ctx,
        &sb,
        &[
            "entitlements",
            "--service-desk",
            "1",
            "--out",
            "ents-out.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (h, rows) = read_csv(&ctx.path("ents-out.csv"));
    assert_eq!(&h[..3], ["customer", "organization", "product"]);
    let cells: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| {
            let col = |n: &str| r[h.iter().position(|x| x == n).unwrap()].as_str();
            vec![
                col("customer"),
                col("organization"),
                col("product"),
                col("Seats Purchased"),
                col("Service Level"),
            ]
        })
        .collect();
    assert_eq!(
        cells,
        [
            vec!["ann@example.com", "", "Support Plus", "", "Silver"],
            vec!["", "Acme Pty Ltd", "Widget Pro", "25", "Gold"],
        ]
    );
    let before = sb.requests().len();
    let s = import(
        &ctx,
        &sb,
        "entitlements",
        &ctx.path("ents-out.csv"),
        "again",
        &["--service-desk", "1"],
    );
    assert_eq!(s["unchanged"].as_u64(), Some(2), "{s}");
    let log = sb.requests();
    let later = &log[before..];
    let writes = later.iter().filter(|r| r["method"] != "GET").count();
    let fetches = later
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/fetch"))
        .count();
    assert_eq!(writes, fetches, "only reads (POST …/fetch) were made");
}

#[test]
fn xlsx_sheets_have_a_bold_frozen_filtered_header() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = export(&ctx, &sb, &["organizations", "--out", "o.xlsx"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = std::fs::File::open(ctx.path("o.xlsx")).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
        &mut xml,
    )
    .unwrap();
    assert!(
        xml.contains(r#"state="frozen""#) && xml.contains(r#"ySplit="1""#),
        "{xml}"
    );
    assert!(xml.contains("<autoFilter ref=\"A1:"), "{xml}");
    assert!(
        xml.contains("<col ") && xml.contains("customWidth=\"1\""),
        "{xml}"
    );
    // The header cells use the bold style, data cells do not.
    assert!(xml.contains(r#"<c r="A1" s="1""#), "{xml}");
    let mut styles = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/styles.xml").unwrap(), &mut styles).unwrap();
    assert!(styles.contains("<b/>"), "{styles}");
}

#[test]
fn the_export_summary_line() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = export(
        &ctx,
        &sb,
        &["organizations", "products", "--out", "both.xlsx"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The time and the workbook's hash (it holds its creation time) change from run to run.
    let text = stdout(&out);
    let masked: String = text
        .split(" in ")
        .next()
        .map(|head| format!("{head} in <time> (sha256 <hash>)"))
        .unwrap();
    insta::assert_snapshot!("export_summary", masked);
    let out = export(&ctx, &sb, &["organizations", "--out", "o.csv"]);
    let text = stdout(&out);
    let csv_hash = text
        .split("sha256 ")
        .nth(1)
        .unwrap()
        .trim_end_matches(")\n");
    let again = stdout(&export(&ctx, &sb, &["organizations", "--out", "o2.csv"]));
    assert!(
        again.contains(csv_hash),
        "a CSV of the same site has the same hash"
    );
}

#[test]
fn customers_in_no_organization_are_exported_and_each_source_is_counted() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let state = sb.state();
    let all: Vec<&str> = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    let in_no_org = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["organizationIds"].as_array().is_none_or(|a| a.is_empty()))
        .count();
    assert!(in_no_org > 0, "bob is in no organization");
    let out = ctx
        .csmport(Some(&sb))
        .args(["--json", "export", "customers", "--out", "all.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, rows) = read_csv(&ctx.path("all.csv"));
    assert_eq!(rows.len(), all.len(), "every customer, bob too");
    assert!(rows.iter().any(|r| r[0] == "bob@example.com"));
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sources: Vec<(String, u64)> = s["customer_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["source"].as_str().unwrap().to_string(),
                x["customers"].as_u64().unwrap(),
            )
        })
        .collect();
    let n = all.len() as u64;
    let members = n - in_no_org as u64;
    assert_eq!(
        sources,
        [
            ("service desk 1 (Customer Support)".to_string(), n),
            ("service desk 2 (Partner Help)".to_string(), n),
            ("the members of 12 organizations".to_string(), members),
        ]
    );
    assert!(
        stderr(&out).contains(&format!(
            "customers found in service desk 1 (Customer Support) ({n}), service desk 2 (Partner Help) ({n}), the members of 12 organizations ({members})"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_customer_listing_that_is_refused_fails_the_export_unless_partial_is_allowed() {
    let sb = SandboxProc::start(&["--forbid", "servicedesk/{serviceDeskId}/customer"]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    ctx.write("c.csv", b"last night's export\n");
    let out = export(&ctx, &sb, &["customers", "--out", "c.csv"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot list service desk 1 (Customer Support): GET"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 403") && err.contains("--allow-partial"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(ctx.path("c.csv")).unwrap(),
        "last night's export\n",
        "the last good file stays"
    );

    let out = ctx
        .csmport(Some(&sb))
        .args([
            "--json",
            "export",
            "customers",
            "--out",
            "c.csv",
            "--allow-partial",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "warning: the export is partial (--allow-partial): 2 listings could not be read"
        ),
        "{err}"
    );
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["skipped_sources"].as_array().unwrap().len(), 2, "{s}");
    let (_, rows) = read_csv(&ctx.path("c.csv"));
    // Only the organizations' members: bob, in none, is missing (and the warning says so).
    assert!(!rows.iter().any(|r| r[0] == "bob@example.com"));
    assert!(rows.iter().any(|r| r[0] == "ann@example.com"));
}

#[test]
fn unknown_ids_of_any_kind_are_listed_and_exit_1() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let ann = sb.state()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "ann@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ctx.write(
        "ids.txt",
        format!("{ann}\nqm:no-such-customer\ncat@example.com\nnobody@example.com\n").as_bytes(),
    );
    let out = ctx
        .csmport(Some(&sb))
        .args([
            "--json",
            "export",
            "customers",
            "--ids",
            "ids.txt",
            "--service-desk",
            "1",
            "--out",
            "some.csv",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "--ids: 2 not on the site (the file holds the others): nobody@example.com, qm:no-such-customer"
        ),
        "{}",
        stderr(&out)
    );
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        s["unknown_ids"],
        serde_json::json!(["nobody@example.com", "qm:no-such-customer"])
    );
    assert_eq!(s["exit_code"], 1);
    let (_, rows) = read_csv(&ctx.path("some.csv"));
    let emails: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(emails, ["ann@example.com", "cat@example.com"]);

    // Organizations by an unknown name and an unknown id: the same.
    ctx.write("orgs.txt", b"Globex Corporation\nNo Such Org\n99999\n");
    let out = export(
        &ctx,
        &sb,
        &["organizations", "--ids", "orgs.txt", "--out", "o.csv"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("--ids: 2 not on the site (the file holds the others): No Such Org, 99999"),
        "{}",
        stderr(&out)
    );
    let (_, rows) = read_csv(&ctx.path("o.csv"));
    assert_eq!(rows.len(), 1);
}

#[test]
fn where_finds_customers_by_detail_field_through_the_search() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let out = ctx
        .csmport(Some(&sb))
        .args(["--json", "export", "customers", "--out", "premium.csv"])
        .args(["--where", "customer tier=Premium"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, rows) = read_csv(&ctx.path("premium.csv"));
    let emails: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(emails, ["ann@example.com"]);
    let s: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        s["customer_sources"][0]["source"],
        "search by detail field: Customer Tier=Premium"
    );
    // Repeated: every condition must hold.
    let out = export(
        &ctx,
        &sb,
        &[
            "customers",
            "--out",
            "none.csv",
            "--where",
            "Customer Tier=Premium",
            "--where",
            "Seats=12",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(read_csv(&ctx.path("none.csv")).1.is_empty());
    let out = export(
        &ctx,
        &sb,
        &[
            "customers",
            "--out",
            "bob.csv",
            "--where",
            "Customer Tier=Free",
            "--where",
            "Seats=12",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_csv(&ctx.path("bob.csv")).1[0][0], "bob@example.com");
    // A field the site does not have, a condition without a value, another kind: exit 2.
    for (args, says) in [
        (&["customers", "--where", "Tier=Gold"][..], "it has: "),
        (&["customers", "--where", "Gold"], "FIELD=VALUE"),
        (
            &["customers", "organizations", "--where", "Seats=5"],
            "only customers",
        ),
    ] {
        let out = export(&ctx, &sb, &[args, &["--out", "x.xlsx"]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(!ctx.path("x.xlsx").exists());
}

#[test]
fn a_listing_without_its_list_fails_the_export_instead_of_writing_a_short_file() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    // A proxy renames every list: read as empty, the export would hold 0 customers, exit 0.
    set_quirks(&sb, &["renamed-lists"]);
    let out = export(
        &ctx,
        &sb,
        &["customers", "--service-desk", "1", "--out", "c.csv"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("GET customer/details")
            && err.contains("has no list")
            && err.contains("it has items"),
        "{err}"
    );
    assert!(!ctx.path("c.csv").exists());
}

#[cfg(unix)]
#[test]
fn run_folders_are_private_and_exports_follow_the_umask_or_keep_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    seeded(&ctx, &sb);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ctx.path("run")), 0o700);
    // Under umask 077 a new export is the user's alone; a file that was 0640 stays 0640.
    let export_under = |umask: &str, out: &str| {
        let c = ctx.csmport(Some(&sb));
        let mut sh = std::process::Command::new("sh");
        sh.current_dir(ctx.path(""))
            .env("CSM_RATE", "1000")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(c.get_program())
            .args(c.get_args())
            .args(["export", "customers", "--service-desk", "1", "--out", out]);
        let o = sh.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    export_under("077", "private.csv");
    assert_eq!(mode(&ctx.path("private.csv")), 0o600);
    std::fs::write(ctx.path("shared.csv"), "old").unwrap();
    std::fs::set_permissions(
        ctx.path("shared.csv"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    export_under("022", "shared.csv");
    assert_eq!(mode(&ctx.path("shared.csv")), 0o640);
    export_under("022", "open.csv");
    assert_eq!(mode(&ctx.path("open.csv")), 0o644);
}
