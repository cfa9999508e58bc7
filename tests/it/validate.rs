//! `csmport validate` and `import --dry-run`: the dialect report, the failure report, nothing
//! sent; spreadsheets end to end.

use crate::common::*;

const SCHEMA: &str = "sample-data/customer-detail-fields.json";

#[test]
fn validate_reports_dialect_and_invalid_rows_offline() {
    let ctx = Ctx::new();
    let out = ctx
        .csmport(None)
        .args(["validate", "customers"])
        .arg(repo("sample-data/customers.csv"))
        .arg("--schema")
        .arg(repo(SCHEMA))
        .arg("--out")
        .arg(ctx.path("v"))
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["valid"].as_u64(),
            s["failed"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(1000), Some(968), Some(31), Some(1))
    );
    assert_eq!(s["dialect"]["encoding"], "UTF-8 (detected)");
    assert_eq!(s["dialect"]["delimiter"], "',' (detected)");
    assert_eq!(s["dialect"]["line_endings"], "CRLF");
    let err = stderr(&out);
    assert!(err.contains("read      CSV · encoding UTF-8 (detected) · delimiter ',' (detected) · line endings CRLF · header row 1 · 1000 rows"), "{err}");
    let (_, failures) = ctx.read_csv(&ctx.path("v/failures.csv"));
    assert_eq!(failures.len(), 31);
    assert!(!ctx.path("v/successes.csv").exists());
}

#[test]
fn dry_run_sends_nothing() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let out = ctx.import(&sb, &repo("sample-data/customers.csv"), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("968 valid + 31 invalid + 1 skipped"),
        "{}",
        stdout(&out)
    );
    let state = sb.state();
    assert_eq!(state["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(state["customers"].as_array().unwrap().len(), 0);
    let posts = sb
        .requests()
        .iter()
        .filter(|r| r["method"] != "GET")
        .count();
    assert_eq!(posts, 0, "a dry run only reads the definitions");
}

#[test]
fn spreadsheet_import_end_to_end() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let xlsx = repo("sample-data/customers.xlsx");
    // The title row is not a header: say so and how to fix it.
    let out = ctx.import(&sb, &xlsx, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "does not look like a header; if the header is further down, pass --header-row N"
        ),
        "{}",
        stderr(&out)
    );
    let out = ctx.import(&sb, &xlsx, &["--header-row", "3"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        (
            s["rows"].as_u64(),
            s["succeeded"].as_u64(),
            s["failed"].as_u64()
        ),
        (Some(5), Some(2), Some(3))
    );
    assert_eq!(s["dialect"]["sheet"], "Customers");
    let state = sb.state();
    let ines = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "ines.garcia@example.com")
        .unwrap()
        .clone();
    let value = |name: &str| {
        ines["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["values"].clone())
    };
    assert_eq!(
        value("Renewal Date"),
        Some(serde_json::json!(["2027-03-15"])),
        "date cells become ISO dates"
    );
    assert_eq!(
        value("Primary Contact Phone"),
        Some(serde_json::json!(["4155550100"])),
        "no float artefacts"
    );
    assert_eq!(value("Seats"), Some(serde_json::json!(["42"])));
    assert_eq!(
        value("Notes"),
        Some(serde_json::json!(["VIP, \"gold\" plan\nsecond line"]))
    );
    assert_eq!(ines["displayName"], "Inés García");
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let why: Vec<&str> = failures.iter().map(|r| r[r.len() - 3].as_str()).collect();
    assert!(
        why[0].contains("cell H6 is an error cell (#N/A)"),
        "{why:?}"
    );
    // The sheet can be chosen by name or number; a missing one is named.
    let out = ctx.import(&sb, &xlsx, &["--sheet", "Budget"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no sheet 'Budget'; the sheets are: Customers, Notes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dates_need_a_format_unless_iso() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "d.csv",
        b"email,Renewal Date\na@example.com,31/12/2026\nb@example.com,2026-12-31\n",
    );
    let out = ctx.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert!(
        failures[0][5].contains("pass --date-format %d/%m/%Y"),
        "{:?}",
        failures[0]
    );
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import(&sb, &file, &["--date-format", "%d/%m/%Y"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = ctx.import(&sb, &file, &["--date-format", "%Y"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("must name a day, a month and a year"));
}

#[test]
fn dialect_overrides() {
    let ctx = Ctx::new();
    // Semicolons, Windows-1252, a Notes cell full of commas.
    let file = ctx.write(
        "w.csv",
        b"email;Notes\r\nann@example.com;\x93a, b, c\x94 \x80\r\n",
    );
    let run = |extra: &[&str]| {
        ctx.csmport(None)
            .args(["validate", "customers"])
            .arg(&file)
            .arg("--schema")
            .arg(repo(SCHEMA))
            .arg("--out")
            .arg(ctx.path(&format!("v{}", extra.len())))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("encoding Windows-1252 (detected) · delimiter ';' (detected)"),
        "{}",
        stdout(&out)
    );
    let out = run(&["--delimiter", ",", "--encoding", "utf-8"]);
    // Read as UTF-8 with commas the file is garbage: the header does not match.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&["--delimiter", "tab"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the first row ('email;Notes') does not look like a header"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn crm_export_through_a_mapping_template() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // A Salesforce report export: labels, extra columns, a Data Loader-style upper-case header
    // would match the same rules.
    let file = ctx.write(
        "contacts.csv",
        "Id,First Name,Last Name,Email,Phone,Title,Mailing Country,Lead Source,Account Name,Description\n\
         003A1,Åsa,Berg, ASA.BERG@Example.com ,+46 8 123 456,CTO,Sweden,Web,Nordlys AB,\"likes, commas\"\n\
         003A2,Luis,Núñez,not-an-email,,,Spain,Other,,\n"
            .as_bytes(),
    );
    // The sample site has none of the fields the template feeds: nothing is dropped without
    // a word, the run stops before sending and names them all.
    let before = sb.requests().len();
    let out = ctx.import(
        &sb,
        &file,
        &[
            "--mapping",
            repo("templates/salesforce-contacts.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "the site's customers do not have: 'External ID', 'Phone', 'Title', 'Region', 'Type'"
        ),
        "{}",
        stderr(&out)
    );
    assert!(sb.writes_since(before).is_empty());
    ctx.define_fields(
        &sb,
        "customer,External ID,TEXT,\ncustomer,Phone,TEXT,\ncustomer,Title,TEXT,\ncustomer,Region,TEXT,\ncustomer,Type,SELECT,Customer;Partner;Prospect;Other\n",
    );
    std::fs::remove_dir_all(ctx.path("run")).ok();
    let out = ctx.import(
        &sb,
        &file,
        &[
            "--mapping",
            repo("templates/salesforce-contacts.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("columns   1 of 10 not imported"),
        "{}",
        stdout(&out)
    );
    let s = ctx.summary();
    assert_eq!(
        (s["succeeded"].as_u64(), s["failed"].as_u64()),
        (Some(1), Some(1))
    );
    let state = sb.state();
    let c = state["customers"][0].clone();
    assert_eq!(
        (c["email"].as_str(), c["displayName"].as_str()),
        (Some("asa.berg@example.com"), Some("Åsa Berg"))
    );
    // The contact keeps its company: Account Name feeds organizations (created on the fly).
    let org_of = |state: &serde_json::Value, c: &serde_json::Value| -> Vec<String> {
        c["organizationIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                state["organizations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["id"] == *id)
                    .unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(org_of(&state, &c), ["Nordlys AB"]);
    // A Data Loader export names it Account.Name (and every header in capitals).
    let dl = Ctx::new();
    let file2 = dl.write(
        "contacts.csv",
        b"ID,FIRSTNAME,LASTNAME,EMAIL,ACCOUNT.NAME\n003A3,Ola,Nord,ola@example.com,Acme Pty Ltd\n",
    );
    let out = dl.import(
        &sb,
        &file2,
        &[
            "--mapping",
            repo("templates/salesforce-contacts.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = sb.state();
    let ola = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "ola@example.com")
        .unwrap()
        .clone();
    assert_eq!(org_of(&state, &ola), ["Acme Pty Ltd"]);
    // Every column is accounted for: Description is the one left out, with an example.
    let columns = s["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 10, "{columns:?}");
    let left: Vec<&serde_json::Value> = columns
        .iter()
        .filter(|c| c["status"] == "not imported")
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["column"], "Description");
    assert_eq!(left[0]["reason"], "not in the mapping");
    assert_eq!(left[0]["examples"], serde_json::json!(["likes, commas"]));
    let account = columns
        .iter()
        .find(|c| c["column"] == "Account Name")
        .unwrap();
    assert_eq!(account["field"], "organizations");
    let log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(
        log.contains("1 of 10 columns not imported: 'Description'"),
        "{log}"
    );
    let html = std::fs::read_to_string(ctx.path("run/report.html")).unwrap();
    assert!(
        html.contains("<td>Description</td><td>not in the mapping</td><td>likes, commas</td>"),
        "the report lists the columns left out"
    );
    // The failure report keeps the export's own columns.
    let (h, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    assert_eq!(h[0], "Id");
    assert_eq!(failures[0][3], "not-an-email");
    // A mapping for another kind, or with a missing column, stops before anything is sent.
    let out = ctx.import(
        &sb,
        &file,
        &[
            "--mapping",
            repo("templates/hubspot-companies.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("this mapping is for organizations, not customers"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn several_files_one_folder_each() {
    let ctx = Ctx::new();
    let good = ctx.write(
        "good.csv",
        b"email,Customer Tier\na@example.com,premium\nb@example.com,ENTERPRISE\n",
    );
    let out = ctx
        .csmport(None)
        .args(["validate", "customers"])
        .arg(&good)
        .arg(repo("sample-data/customers.xlsx"))
        .arg(repo("sample-data/customers.csv"))
        .arg("--schema")
        .arg(repo(SCHEMA))
        .arg("--out")
        .arg(ctx.path("v"))
        .output()
        .unwrap();
    // The spreadsheet needs --header-row: its error is reported, the other files still run.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("customers.xlsx: the first row"),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("Customer Tier: 2 values match an option only when case is ignored; they are sent as the site spells them (e.g. 'premium' → 'Premium')"), "{text}");
    assert!(ctx.path("v/1-good/failures.csv").is_file());
    assert!(ctx.path("v/3-customers/failures.csv").is_file());
    assert!(!ctx.path("v/2-customers/failures.csv").exists());
    // import with several files of one kind runs each as a step of one run.
    let sb = SandboxProc::start(&[]);
    let out = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(&good)
        .arg(&good)
        .arg("--out")
        .arg(ctx.path("imp"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("plan: 2 steps"), "{}", stdout(&out));
    assert!(ctx.path("imp/01-customers-good/summary.json").is_file());
    assert!(ctx.path("imp/02-customers-good/summary.json").is_file());
}

#[test]
fn small_kinds_are_decided_against_the_site_and_nothing_is_sent() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let validate = |kind: &str, file: &str, out: &str, extra: &[&str]| {
        let mut c = ctx.csmport(Some(&sb));
        c.args(["validate", kind])
            .arg(repo(file))
            .arg("--out")
            .arg(ctx.path(out))
            .arg("--json")
            .args(extra);
        let o = c.output().unwrap();
        let s: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{kind}: {}", stderr(&o)));
        (o, s)
    };
    let counts =
        |s: &serde_json::Value| ["rows", "valid", "failed"].map(|k| s[k].as_u64().unwrap());

    // Products: the rows the import fails, for the same reasons, and nothing created.
    let before = sb.requests().len();
    let (o, s) = validate("products", "sample-data/products.csv", "p1", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(counts(&s), [6, 4, 2]);
    let (_, failures) = ctx.read_csv(&ctx.path("p1/failures.csv"));
    let got: Vec<&str> = failures.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(got, vec!["5", "6"]);
    assert!(
        failures[1][5].contains("no product with id"),
        "{failures:?}"
    );
    assert_eq!(sb.writes_since(before), Vec::<String>::new());
    let (status, v) = call(&sb, "GET", "product?limit=100", None, None);
    assert_eq!((status, v["results"].as_array().unwrap().len()), (200, 0));
    let err = stderr(&o);
    assert!(err.contains("rows      6 = 4 valid + 2 invalid"), "{err}");

    // Detail fields through `import --dry-run`: the same report, nothing created.
    let before = sb.requests().len();
    let o = ctx
        .csmport(Some(&sb))
        .args(["import", "detail-fields"])
        .arg(repo("sample-data/detail-fields.csv"))
        .args(["--dry-run", "--json", "--out"])
        .arg(ctx.path("f1"))
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(counts(&s), [12, 8, 4]);
    assert_eq!(sb.writes_since(before), Vec::<String>::new());

    // Once the site has them, the dry run says nothing would be sent for them.
    for (kind, file) in [
        ("detail-fields", "sample-data/detail-fields.csv"),
        ("products", "sample-data/products.csv"),
        ("customer-accounts", "sample-data/customer-accounts.csv"),
    ] {
        ctx.import_kind(&sb, kind, &repo(file), &[]);
        std::fs::remove_dir_all(ctx.path("run")).unwrap();
    }
    let (_, s) = validate("products", "sample-data/products.csv", "p2", &[]);
    assert_eq!(counts(&s), [6, 4, 2]);
    let notes = s["dialect"]["notes"].to_string();
    assert!(
        notes.contains("4 rows are on the site as in the file already"),
        "{notes}"
    );

    // Entitlements (with the import's --service-desk) and details: decided, not sent.
    let before = sb.requests().len();
    let o = ctx
        .csmport(Some(&sb))
        .args(["import", "entitlements"])
        .arg(repo("sample-data/entitlements.csv"))
        .args(["--dry-run", "--service-desk", "1", "--json", "--out"])
        .arg(ctx.path("e1"))
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(counts(&s), [9, 4, 5], "{}", stderr(&o));
    let (_, failures) = ctx.read_csv(&ctx.path("e1/failures.csv"));
    let got: Vec<&str> = failures.iter().map(|r| r[5].as_str()).collect();
    assert_eq!(got, vec!["5", "6", "7", "8", "9"]);
    let (o, s) = validate(
        "organization-details",
        "sample-data/organization-details.csv",
        "d1",
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(s["rows"], 8);
    assert_eq!(sb.writes_since(before), Vec::<String>::new());
    let (status, v) = call(
        &sb,
        "GET",
        "entitlements?entityType=ORGANIZATION&entityId=101",
        None,
        None,
    );
    assert_eq!((status, v["results"].as_array().unwrap().len()), (200, 0));
}

#[test]
fn duplicates_found_after_the_pass_join_the_report_in_row_order() {
    let ctx = Ctx::new();
    let file = ctx.write(
        "dups.csv",
        b"email,displayName\n\
          a@x.example,Ann\n\
          not-an-email,Bad\n\
          a@x.example,Ann again\n\
          b@x.example,Bo\n\
          B@X.example,Bo shouting\n\
          ,No email\n\
          a@x.example,Ann thrice\n",
    );
    let run = |args: &[&str], out: &str| {
        let o = ctx
            .csmport(None)
            .args(args)
            .arg(&file)
            .args(["--schema"])
            .arg(repo(SCHEMA))
            .arg("--out")
            .arg(ctx.path(out))
            .arg("--json")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            s,
            std::fs::read(ctx.path(&format!("{out}/failures.csv"))).unwrap(),
        )
    };
    let (s, report) = run(&["validate", "customers"], "v");
    assert_eq!(
        ["rows", "valid", "failed"].map(|k| s[k].as_u64().unwrap()),
        [7, 2, 5]
    );
    assert_eq!(s["failed_by_stage"]["validate"], 5);
    let (_, failures) = ctx.read_csv(&ctx.path("v/failures.csv"));
    let got: Vec<(&str, &str)> = failures
        .iter()
        .map(|r| (r[2].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2", "email"),
            ("3", "email"),
            ("5", "email"),
            ("6", "email"),
            ("7", "email")
        ],
        "{failures:?}"
    );
    assert!(
        failures[1][5].contains("'a@x.example' is already in row 1"),
        "{failures:?}"
    );
    assert!(
        failures[2][5].contains("'B@X.example' is already in row 4"),
        "{failures:?}"
    );
    assert!(failures[4][5].contains("already in row 1"), "{failures:?}");
    // Nothing else is left in the run folder, and import --dry-run writes the same report.
    let mut names: Vec<String> = std::fs::read_dir(ctx.path("v"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "failures.csv",
            "failures.xlsx",
            "report.html",
            "summary.json"
        ]
    );
    let (_, again) = run(&["import", "customers", "--dry-run"], "d");
    assert_eq!(again, report);
}

#[test]
fn xls_and_xlsb_workbooks_validate_and_a_damaged_one_stops_with_its_error() {
    let ctx = Ctx::new();
    let validate = |file: &str| {
        ctx.csmport(None)
            .args(["validate", "customers"])
            .arg(repo(&format!("tests/fixtures/sheets/{file}")))
            .arg("--schema")
            .arg(repo(SCHEMA))
            .arg("--out")
            .arg(ctx.path(file))
            .output()
            .unwrap()
    };
    for (file, read) in [
        (
            "customers.xls",
            "XLS · sheet 'Customers' · header row 1 · 3 rows",
        ),
        (
            "customers.xlsb",
            "XLSB · sheet 'Data' · header row 1 · 3 rows",
        ),
    ] {
        let out = validate(file);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stdout(&out).contains(read), "{}", stdout(&out));
        assert_eq!(
            std::fs::read_to_string(ctx.path(&format!("{file}/failures.csv"))).unwrap(),
            format!(
                "\u{feff}email,displayName,_row,_stage,_field,_error,_raw,_source\n\
                 carl@example.com,#N/A,3,read,,cell B4 is an error cell (#N/A),\"carl@example.com,#N/A\",{}\n",
                repo(&format!("tests/fixtures/sheets/{file}")).display()
            )
        );
    }
    // Its fourth row names a shared string that is not there: calamine panics on it. The rows
    // before are validated, the error ends the run, and no panic message reaches the terminal.
    let out = validate("damaged.xlsb");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "damaged.xlsb: cannot read the spreadsheet: the spreadsheet reader failed (index out of \
             bounds: the len is 8 but the index is 99); the file looks damaged"
        ),
        "{}",
        stdout(&out)
    );
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ctx.path("damaged.xlsb/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (summary["rows"].as_u64(), summary["exit_code"].as_u64()),
        (Some(3), Some(2))
    );
}

#[test]
fn validate_takes_kind_file_pairs_and_plans_with_a_folder_per_file() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.write("a.csv", b"name\nInitech\n");
    ctx.write(
        "c.csv",
        b"email,displayName,organizations\npeter@initech.example,Peter,Initech\nnot-an-email,X,\n",
    );
    let before = sb.requests().len();
    // KIND FILE pairs, customers first on the command line: run in dependency order.
    let out = ctx
        .csmport(Some(&sb))
        .args(["validate", "customers", "c.csv", "organizations", "a.csv"])
        .arg("--out")
        .arg(ctx.path("v"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("validated plan: 2 steps in dependency order"),
        "{text}"
    );
    assert!(
        text.contains("  organizations               1 rows = 1 valid + 0 invalid + 0 skipped"),
        "{text}"
    );
    assert!(
        text.contains("  customers                   2 rows = 1 valid + 1 invalid + 0 skipped"),
        "{text}"
    );
    let (_, failures) = ctx.read_csv(&ctx.path("v/02-customers-c/failures.csv"));
    assert_eq!(failures.len(), 1);
    assert!(ctx.path("v/01-organizations-a/summary.json").exists());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("v/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["steps"][0]["kind"], "organizations");
    assert_eq!(s["steps"][1]["summary"]["failed"], 1);

    // A plan, as `validate --plan` and as `import --plan --dry-run`; a step whose file is not
    // there is reported and the others still run.
    ctx.write(
        "plan.toml",
        b"[[step]]\nkind = \"customers\"\nfile = \"c.csv\"\n\n[[step]]\nkind = \"organizations\"\nfile = \"a.csv\"\n\n[[step]]\nkind = \"products\"\nfile = \"gone.csv\"\n",
    );
    for (args, dir) in [
        (vec!["validate", "--plan", "plan.toml"], "p1"),
        (vec!["import", "--plan", "plan.toml", "--dry-run"], "p2"),
    ] {
        let out = ctx
            .csmport(Some(&sb))
            .args(&args)
            .arg("--out")
            .arg(ctx.path(dir))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("gone.csv: cannot open"),
            "{}",
            stderr(&out)
        );
        let text = stdout(&out);
        assert!(
            text.contains("  products               not read: "),
            "{text}"
        );
        assert!(
            ctx.path(&format!("{dir}/02-customers-c/failures.csv"))
                .exists()
        );
        assert!(!ctx.path(&format!("{dir}/03-products-gone")).exists());
    }
    assert_eq!(sb.writes_since(before), Vec::<String>::new());
}

#[test]
fn a_missing_input_file_leaves_no_run_folder() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    for cmd in ["validate", "import"] {
        let out = ctx
            .csmport(Some(&sb))
            .args([cmd, "customers", "no-such.csv"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("no-such.csv: cannot open"),
            "{}",
            stderr(&out)
        );
        assert!(!ctx.path("csmport-runs").exists(), "{cmd}");
    }
}
