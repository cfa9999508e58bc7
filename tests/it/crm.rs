//! CRM migrations: exports as the CRMs write them (`tests/fixtures/crm/`), imported through the
//! shipped templates, land with every contact linked to its account by the CRM's own id.

use std::path::{Path, PathBuf};

use crate::common::*;

fn crm(path: &str) -> PathBuf {
    repo(&format!("tests/fixtures/crm/{path}"))
}

/// An `export` folder in the test's temp folder, holding the fixture folder's `files` (all of
/// them when none are named; no fixture: empty).
fn export(ctx: &Ctx, fixture: Option<&str>, files: &[&str]) -> PathBuf {
    let dir = ctx.path("export");
    std::fs::create_dir_all(&dir).unwrap();
    for f in fixture
        .map(|x| std::fs::read_dir(crm(x)).unwrap())
        .into_iter()
        .flatten()
    {
        let f = f.unwrap().path();
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if files.is_empty() || files.contains(&name.as_str()) {
            std::fs::copy(&f, dir.join(&name)).unwrap();
        }
    }
    dir
}

/// The one record of `list` (`organizations`, `customers`) in the sandbox's state whose
/// `key` is `value`.
fn one<'a>(
    state: &'a serde_json::Value,
    list: &str,
    key: &str,
    value: &str,
) -> &'a serde_json::Value {
    state[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x[key] == value)
        .unwrap_or_else(|| panic!("no {list} with {key} {value}"))
}

/// The columns a JSON-lines file reads as: every key, nested ones dotted, first seen first.
fn json_keys(path: &Path) -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            _ if !out.iter().any(|o| o == prefix) => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for line in std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        walk("", &serde_json::from_str(line).unwrap(), &mut out);
    }
    out
}

/// A contacts mapping that finds each contact's organization by its `AccountId`.
const BY_ACCOUNT_ID: &[u8] = b"kind = \"customers\"\nunmapped = \"ignore\"\n[[column]]\nsource = \"Email\"\nfield = \"email\"\n[[column]]\nsource = \"AccountId\"\nfield = \"organizations\"\nby = \"External ID\"\n";

/// An export folder holding `files` (name, text) made a plan by `init salesforce`, with the
/// plan steps `extra` after its own.
fn salesforce_folder(ctx: &Ctx, files: &[(&str, &str)], extra: &str) -> PathBuf {
    let dir = export(ctx, None, &[]);
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    init(ctx, "salesforce", &dir);
    let plan = dir.join("csmport-plan.toml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, text + extra).unwrap();
    dir
}

/// `csmport init CRM DIR`, which must succeed.
fn init(ctx: &Ctx, crm: &str, dir: &Path) -> std::process::Output {
    let out = ctx
        .csmport(None)
        .args(["init", crm])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

/// `csmport CMD --plan DIR/csmport-plan.toml --out OUT` against `sb`.
fn on_plan(ctx: &Ctx, sb: &SandboxProc, cmd: &str, dir: &Path, out: &str) -> std::process::Output {
    ctx.csmport(Some(sb))
        .args([cmd, "--plan"])
        .arg(dir.join("csmport-plan.toml"))
        .arg("--out")
        .arg(ctx.path(out))
        .output()
        .unwrap()
}

/// A plan of the Salesforce Data Export pair: definitions, accounts, contacts.
fn salesforce_plan(ctx: &Ctx, accounts: &Path, contacts: &Path) -> PathBuf {
    let toml = format!(
        r#"
[[step]]
kind = "detail-fields"
file = "{}"

[[step]]
kind = "organizations"
file = "{}"
mapping = "{}"

[[step]]
kind = "customers"
file = "{}"
mapping = "{}"
"#,
        crm("salesforce-detail-fields.csv").display(),
        accounts.display(),
        repo("templates/salesforce-accounts.toml").display(),
        contacts.display(),
        repo("templates/salesforce-contacts.toml").display(),
    );
    ctx.write("plan.toml", toml.as_bytes())
}

fn run_plan(ctx: &Ctx, sb: &SandboxProc, plan: &Path, out: &str) -> std::process::Output {
    ctx.csmport(Some(sb))
        .args(["import", "--plan"])
        .arg(plan)
        .args(["--service-desk", "1", "--out"])
        .arg(ctx.path(out))
        .output()
        .unwrap()
}

#[test]
fn salesforce_contacts_land_in_their_accounts_by_account_id() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let plan = salesforce_plan(
        &ctx,
        &crm("salesforce/Account.csv"),
        &crm("salesforce/Contact.csv"),
    );
    let out = run_plan(&ctx, &sb, &plan, "run");
    // Some contacts fail on purpose (a duplicate email, a bad one, an unknown account).
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let state = sb.state();
    let orgs = state["organizations"].as_array().unwrap();
    let customers = state["customers"].as_array().unwrap();
    // Account id → the organization the accounts step made of it (by name, as trimmed).
    let (ah, accounts) = read_csv(&crm("salesforce/Account.csv"));
    let col = |h: &[String], n: &str| h.iter().position(|x| x == n).unwrap();
    let org_of_account = |account: &str| -> Option<String> {
        let row = accounts.iter().find(|r| r[col(&ah, "Id")] == account)?;
        let name = row[col(&ah, "Name")].trim();
        let hits: Vec<_> = orgs.iter().filter(|o| o["name"] == name).collect();
        assert_eq!(hits.len(), 1, "organization {name}: {hits:?}");
        Some(hits[0]["id"].as_str().unwrap().to_string())
    };
    let (ch, contacts) = read_csv(&crm("salesforce/Contact.csv"));
    let mut linked = std::collections::BTreeSet::new();
    for r in &contacts {
        let email = r[col(&ch, "Email")].to_lowercase();
        let Some(c) = customers
            .iter()
            .find(|c| c["email"].as_str().unwrap().to_lowercase() == email)
        else {
            continue;
        };
        let got: Vec<&str> = c["organizationIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        match org_of_account(&r[col(&ch, "AccountId")]) {
            Some(id) => {
                assert_eq!(got, [id.as_str()], "{email}");
                linked.insert(email.clone());
            }
            None => assert!(got.is_empty(), "{email}: {got:?}"),
        }
    }
    // Åsa, Luis (twice in the file, in two cases), Jörg and Ingrid.
    assert_eq!(linked.len(), 4, "{linked:?}");
    // Deleted in the CRM: neither the account nor the contact is imported.
    assert!(!orgs.iter().any(|o| o["name"] == "Gone Ltd"));
    assert!(
        !customers
            .iter()
            .any(|c| c["email"] == "dieter@cafe-mueller.example")
    );
    assert!(
        customers
            .iter()
            .any(|c| c["email"] == "nadia@freelance.example"),
        "a contact without an account is a customer in no organization"
    );

    // The contact of an account the export does not hold fails at `resolve`, naming the id.
    let (fh, failures) = read_csv(&ctx.path("run/03-customers-Contact/failures.csv"));
    let orphan = failures
        .iter()
        .find(|r| r[col(&fh, "Email")] == "omar@elsewhere.example")
        .expect("the orphan contact is reported");
    assert_eq!(orphan[col(&fh, "_stage")], "resolve");
    assert_eq!(orphan[col(&fh, "_field")], "organizations");
    assert!(
        orphan[col(&fh, "_error")].contains("External ID '0015g00000XaZZZAAA'"),
        "{orphan:?}"
    );
    let deleted = failures
        .iter()
        .find(|r| r[col(&fh, "Email")] == "dieter@cafe-mueller.example")
        .expect("the deleted contact is reported");
    assert_eq!(deleted[col(&fh, "_stage")], "skipped");
    assert_eq!(
        deleted[col(&fh, "_error")],
        "skipped by the mapping: IsDeleted is 'true'"
    );
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ctx.path("run/03-customers-Contact/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["failed_by_stage"]["resolve"], 1, "{s}");
    // 9 contacts: Åsa, Luis, Jörg, Nadia and Ingrid in; the duplicate Luis, the bad email and
    // the orphan failed; Dieter skipped.
    assert_eq!(
        (&s["succeeded"], &s["failed"], &s["skipped"]),
        (&5.into(), &3.into(), &1.into()),
        "{s}"
    );
    // A lead source the template's map does not list: the contact is imported without it,
    // and the value is in warnings.csv.
    assert_eq!(s["warnings"], 1, "{s}");
    let (wh, warnings) = read_csv(&ctx.path("run/03-customers-Contact/warnings.csv"));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(
        (
            w[col(&wh, "Email")].as_str(),
            w[col(&wh, "_field")].as_str(),
            w[col(&wh, "_value")].as_str()
        ),
        ("ingrid.lund@nordlys.example", "Type", "Trade Show")
    );
    assert!(
        w[col(&wh, "_warning")].contains("imported without it"),
        "{w:?}"
    );
    let ingrid = customers
        .iter()
        .find(|c| c["email"] == "ingrid.lund@nordlys.example")
        .unwrap();
    assert!(
        !ingrid.to_string().contains("Trade Show"),
        "imported without the value: {ingrid}"
    );
    let (ah2, account_failures) = read_csv(&ctx.path("run/02-organizations-Account/failures.csv"));
    assert_eq!(account_failures.len(), 1, "{account_failures:?}");
    assert_eq!(account_failures[0][col(&ah2, "Name")], "Gone Ltd");
    assert_eq!(account_failures[0][col(&ah2, "_stage")], "skipped");
    assert!(
        !customers
            .iter()
            .any(|c| c["email"] == "omar@elsewhere.example"),
        "a row that cannot be linked is not sent"
    );
}

#[test]
fn an_account_id_two_organizations_hold_fails_naming_both() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // Two accounts carry the same id (a merge in the CRM gone wrong).
    let accounts = ctx.write(
        "Account.csv",
        b"\"Id\",\"Name\"\r\n\"001A\",\"First Co\"\r\n\"001A\",\"Second Co\"\r\n\"001B\",\"Third Co\"\r\n",
    );
    let contacts = ctx.write(
        "Contact.csv",
        b"\"Id\",\"AccountId\",\"FirstName\",\"LastName\",\"Email\"\r\n\"003A\",\"001A\",\"Ann\",\"A\",\"ann@x.example\"\r\n\"003B\",\"001B\",\"Bo\",\"B\",\"bo@x.example\"\r\n",
    );
    let plan = salesforce_plan(&ctx, &accounts, &contacts);
    let out = run_plan(&ctx, &sb, &plan, "run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (fh, failures) = read_csv(&ctx.path("run/03-customers-Contact/failures.csv"));
    assert_eq!(failures.len(), 1, "{failures:?}");
    let error = &failures[0][fh.iter().position(|h| h == "_error").unwrap()];
    assert!(error.contains("all have External ID '001A'"), "{error}");
    let state = sb.state();
    let ids: Vec<&str> = state["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "First Co" || o["name"] == "Second Co")
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        assert!(error.contains(id), "{error} names {id}");
    }
    assert!(
        state["customers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["email"] == "bo@x.example")
    );
}

#[test]
fn a_by_field_the_site_lacks_or_no_organization_holds_stops_before_sending() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let contacts = ctx.write(
        "Contact.csv",
        b"\"Id\",\"AccountId\",\"FirstName\",\"LastName\",\"Email\"\r\n\"003A\",\"001A\",\"Ann\",\"A\",\"ann@x.example\"\r\n",
    );
    let mapping = ctx.write("contacts.toml", BY_ACCOUNT_ID);
    // Exit 2 before anything is written; what the run said.
    let refused = || {
        let before = sb.requests().len();
        let out = ctx.import(
            &sb,
            &contacts,
            &[
                "--mapping",
                mapping.to_str().unwrap(),
                "--service-desk",
                "1",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(sb.writes_since(before).is_empty());
        stderr(&out)
    };
    let err = refused();
    assert!(
        err.contains("no detail field 'External ID'") && err.contains("detail-fields"),
        "{err}"
    );

    // The field exists, but no organization holds a value in it.
    ctx.define_fields(&sb, "organization,External ID,TEXT,\n");
    let err = refused();
    assert!(err.contains("none of the site's"), "{err}");
}

#[test]
fn invalid_values_blank_keeps_the_row_and_lists_the_cell() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // Customer Tier is a SELECT of the sample site; Renewal Date a DATE.
    let file = ctx.write(
        "c.csv",
        b"email,displayName,Customer Tier,Renewal Date\nann@x.example,Ann,Gold,2026-01-31\nbo@x.example,Bo,Premium,31st of never\n,No Email,Gold,\n",
    );
    let out = ctx.import(&sb, &file, &["--invalid-values", "blank"]);
    // The row without an email still fails: a required field is never left out.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("warnings  2 invalid values left out"),
        "{}",
        stdout(&out)
    );
    let s = ctx.summary();
    assert_eq!(
        (&s["succeeded"], &s["failed"], &s["warnings"]),
        (&2.into(), &1.into(), &2.into())
    );
    let (h, w) = read_csv(&ctx.path("run/warnings.csv"));
    assert_eq!(
        h,
        [
            "email",
            "displayName",
            "Customer Tier",
            "Renewal Date",
            "_row",
            "_field",
            "_value",
            "_warning"
        ]
    );
    let got: Vec<(&str, &str, &str)> = w
        .iter()
        .map(|r| (r[4].as_str(), r[5].as_str(), r[6].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("1", "Customer Tier", "Gold"),
            ("2", "Renewal Date", "31st of never")
        ]
    );
    let state = sb.state();
    let find = |e: &str| one(&state, "customers", "email", e).to_string();
    assert!(
        find("ann@x.example").contains("2026-01-31") && !find("ann@x.example").contains("Gold")
    );
    assert!(find("bo@x.example").contains("Premium"));
    let html = std::fs::read_to_string(ctx.path("run/report.html")).unwrap();
    assert!(html.contains("Values left out") && html.contains("31st of never"));

    // Without the flag, the same file fails those rows.
    let strict = Ctx::new();
    let out = strict.import(&sb, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(strict.summary()["failed"], 3);
    assert!(!strict.path("run/warnings.csv").exists());
}

/// What the Done-when test expects of one CRM's fixture folder.
struct Expect {
    crm: &'static str,
    contacts: &'static str,
    email: &'static str,
    /// The contact's account ids (`;`-separated), as the contacts file names them.
    account: &'static str,
    /// Contacts the template's skip rules leave out, by email.
    skipped: &'static [&'static str],
    /// A contact imported without one bad optional value: (email, field, value).
    warned: (&'static str, &'static str, &'static str),
}

/// `csmport init`, `validate --plan` and `import --plan` on a copy of the fixture folder, as the
/// README's migration section runs them; then the site is checked against the files.
fn migrate(e: &Expect) {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let dir = export(&ctx, Some(e.crm), &[]);
    let out = init(&ctx, e.crm, &dir);
    let plan = dir.join("csmport-plan.toml");
    assert!(
        stdout(&out).contains(&format!("csmport validate --plan {}", plan.display())),
        "{}",
        stdout(&out)
    );
    let run = |cmd: &str, folder: &str| on_plan(&ctx, &sb, cmd, &dir, folder);
    // Both end 1: the fixtures have rows that fail on purpose.
    let out = run("validate", "validated");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run("import", "run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The validation said what the import did, step by step: it resolves CRM ids against the
    // organizations the plan makes, as the import does.
    let steps = |folder: &str| -> Vec<(u64, u64, u64)> {
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(ctx.path(&format!("{folder}/summary.json"))).unwrap(),
        )
        .unwrap();
        s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let n = |k: &str| x["summary"][k].as_u64().unwrap();
                (
                    n("rows") - n("failed") - n("skipped"),
                    n("failed"),
                    n("skipped"),
                )
            })
            .collect()
    };
    assert_eq!(steps("validated"), steps("run"), "{}", e.crm);
    // Validated again once the site has them: the accounts the plan updates are the site's own,
    // not second holders of their ids.
    let out = run("validate", "again");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(steps("again"), steps("run"), "{}", e.crm);

    let state = sb.state();
    let detail = |x: &serde_json::Value, name: &str| -> Option<String> {
        x["details"]
            .as_array()?
            .iter()
            .find(|d| d["name"] == name)
            .and_then(|d| d["values"][0].as_str())
            .map(str::to_string)
    };
    // The CRM's account id → the organization holding it.
    let orgs: std::collections::HashMap<String, String> = state["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| Some((detail(o, "External ID")?, o["id"].as_str()?.to_string())))
        .collect();
    let customers = state["customers"].as_array().unwrap();
    let step = |kind: &str| -> PathBuf {
        std::fs::read_dir(ctx.path("run"))
            .unwrap()
            .map(|d| d.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .contains(&format!("-{kind}-"))
            })
            .unwrap_or_else(|| panic!("no {kind} step"))
    };
    let folder = step("customers");
    let (fh, failures) = read_csv(&folder.join("failures.csv"));
    let fcol = |n: &str| fh.iter().position(|h| h == n).unwrap();
    let (ch, contacts) = read_csv(&dir.join(e.contacts));
    let col = |n: &str| ch.iter().position(|h| h == n).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut linked = 0;
    for r in &contacts {
        let email = r[col(e.email)].trim().to_lowercase();
        let reported = failures
            .iter()
            .find(|f| f[fcol(e.email)].trim().to_lowercase() == email && !email.is_empty());
        if e.skipped.contains(&email.as_str()) {
            let f = reported.unwrap_or_else(|| panic!("{email} is reported skipped"));
            assert_eq!(f[fcol("_stage")], "skipped", "{f:?}");
            assert!(
                f[fcol("_error")].starts_with("skipped by the mapping: "),
                "{f:?}"
            );
            assert!(!customers.iter().any(|c| c["email"] == email.as_str()));
            continue;
        }
        if !email.contains('@') || !seen.insert(email.clone()) {
            continue;
        }
        let ids: Vec<&str> = r[col(e.account)]
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let customer = customers
            .iter()
            .find(|c| c["email"].as_str().unwrap().to_lowercase() == email);
        if ids.iter().any(|id| !orgs.contains_key(*id)) {
            // An account that did not land: the contact fails at resolve, naming the id.
            let f = reported.unwrap_or_else(|| panic!("{email} is reported"));
            assert_eq!(f[fcol("_stage")], "resolve", "{f:?}");
            assert!(
                customer.is_none(),
                "{email} was sent without its organization"
            );
            continue;
        }
        let c = customer.unwrap_or_else(|| panic!("{email} is a customer: {:?}", reported));
        let mut want: Vec<&str> = ids.iter().map(|id| orgs[*id].as_str()).collect();
        let mut got: Vec<&str> = c["organizationIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{email}");
        linked += usize::from(!want.is_empty());
    }
    assert!(linked >= 2, "{} contacts linked", linked);

    // One bad optional value: the contact is in, without it, and the cell is in warnings.csv.
    let (wh, warnings) = read_csv(&folder.join("warnings.csv"));
    let w = warnings
        .iter()
        .find(|w| w[wh.iter().position(|h| h == e.email).unwrap()].to_lowercase() == e.warned.0)
        .unwrap_or_else(|| panic!("{:?} in {warnings:?}", e.warned));
    let at = |n: &str| wh.iter().position(|h| h == n).unwrap();
    assert_eq!(
        (w[at("_field")].as_str(), w[at("_value")].as_str()),
        (e.warned.1, e.warned.2)
    );
    let c = customers
        .iter()
        .find(|c| c["email"] == e.warned.0)
        .expect("the warned contact is in");
    assert_eq!(detail(c, e.warned.1), None, "{c}");

    // Every input column is accounted for, in both steps.
    for kind in ["organizations", "customers"] {
        let folder = step(kind);
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap())
                .unwrap();
        let input = dir.join(s["input"].as_str().unwrap().rsplit('/').next().unwrap());
        let listed: Vec<&str> = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["column"].as_str().unwrap())
            .collect();
        let header = if input.extension().is_some_and(|x| x == "csv") {
            read_csv(&input).0
        } else {
            json_keys(&input)
        };
        assert_eq!(listed, header, "{kind}");
    }
}

#[test]
fn salesforce_export_folder_to_a_linked_migration() {
    migrate(&Expect {
        crm: "salesforce",
        contacts: "Contact.csv",
        email: "Email",
        account: "AccountId",
        skipped: &["dieter@cafe-mueller.example"],
        warned: ("ingrid.lund@nordlys.example", "Type", "Trade Show"),
    });
}

#[test]
fn hubspot_export_folder_to_a_linked_migration() {
    migrate(&Expect {
        crm: "hubspot",
        contacts: "hubspot-crm-exports-all-contacts-2026-12-01.csv",
        email: "Email",
        account: "Associated Company IDs",
        skipped: &[],
        warned: ("luis@acme.example", "Type", "Trade Show Visitor"),
    });
}

#[test]
fn zendesk_export_folder_to_a_linked_migration() {
    migrate(&Expect {
        crm: "zendesk",
        contacts: "users.csv",
        email: "email",
        account: "organization_id",
        skipped: &[
            "smith@support.example",
            "ada@support.example",
            "sam@nordlys.example",
        ],
        warned: ("free@example.com", "Preferred Language", "ru"),
    });
}

#[test]
fn salesforce_report_exports_lose_their_footer_not_rows() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let dir = export(&ctx, Some("salesforce-report"), &[]);
    init(&ctx, "salesforce", &dir);
    let out = on_plan(&ctx, &sb, "import", &dir, "run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let s = ctx.summary();
    let rows: Vec<u64> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["summary"]["rows"].as_u64().unwrap())
        .collect();
    // Definitions, 2 accounts, 3 contacts: no footer line became a row.
    assert_eq!(rows[1..], [2, 3], "{s}");
    let step: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::fs::read_dir(ctx.path("run"))
                .unwrap()
                .map(|d| d.unwrap().path())
                .find(|p| p.to_str().unwrap().contains("-customers-"))
                .unwrap()
                .join("summary.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let notes = step["dialect"]["notes"].to_string();
    assert!(
        notes.contains("a Salesforce report footer after the data (6 lines"),
        "{notes}"
    );
    // The report's 15-character account ids link the contacts.
    let state = sb.state();
    let nordlys = one(&state, "organizations", "name", "Nordlys AB")["id"].clone();
    let ola = one(&state, "customers", "email", "ola@nordlys.example");
    assert_eq!(ola["organizationIds"], serde_json::json!([nordlys]));
}

#[test]
fn init_names_what_it_looked_for_and_never_overwrites() {
    let ctx = Ctx::new();
    let dir = ctx.path("empty");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.csv"), "when,what\nmonday,call\n").unwrap();
    let out = ctx
        .csmport(None)
        .args(["init", "zendesk"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no zendesk export in")
            && err.contains("users (id, name, email")
            && err.contains("notes.csv: not a zendesk export"),
        "{err}"
    );
    let out = ctx
        .csmport(None)
        .args(["init", "pipedrive"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("salesforce, hubspot, zendesk"),
        "{}",
        stderr(&out)
    );

    let dir = export(&ctx, Some("hubspot"), &[]);
    std::fs::write(dir.join("csmport-plan.toml"), "# mine\n").unwrap();
    let out = ctx
        .csmport(None)
        .args(["init", "hubspot"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("csmport-plan.toml; pass --force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("csmport-plan.toml")).unwrap(),
        "# mine\n"
    );
    assert!(
        !dir.join("detail-fields.csv").exists(),
        "nothing is written when one file is there"
    );
    let out = ctx
        .csmport(None)
        .args(["init", "hubspot", "--force"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = std::fs::read_to_string(dir.join("csmport-plan.toml")).unwrap();
    // Companies before the contacts that name them, after the definitions.
    let at = |s: &str| plan.find(s).unwrap();
    assert!(
        at("detail-fields") < at("all-companies") && at("all-companies") < at("all-contacts"),
        "{plan}"
    );
    let defs = std::fs::read_to_string(dir.join("detail-fields.csv")).unwrap();
    assert!(defs.contains("organization,External ID,TEXT,"), "{defs}");
    assert!(
        defs.contains("customer,Type,SELECT,Customer;Other;Prospect"),
        "{defs}"
    );
}

#[test]
fn an_account_renamed_in_the_crm_is_renamed_on_the_site_not_created_again() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let dir = export(&ctx, None, &[]);
    let accounts = "\"Id\",\"IsDeleted\",\"Name\",\"Type\"\r\n\"001A\",\"false\",\"Lonely Corp\",\"Other\"\r\n\"001B\",\"false\",\"Busy Ltd\",\"Prospect\"\r\n";
    std::fs::write(dir.join("Account.csv"), accounts).unwrap();
    std::fs::write(
        dir.join("Contact.csv"),
        "\"Id\",\"AccountId\",\"FirstName\",\"LastName\",\"Email\"\r\n\"003A\",\"001A\",\"Ann\",\"A\",\"ann@x.example\"\r\n",
    )
    .unwrap();
    init(&ctx, "salesforce", &dir);
    let import = |out: &str| on_plan(&ctx, &sb, "import", &dir, out);
    let o = import("first");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let orgs = |state: &serde_json::Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = state["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["id"].as_str().unwrap().to_string(),
                    o["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = orgs(&sb.state());
    let lonely = before
        .iter()
        .find(|(_, n)| n == "Lonely Corp")
        .unwrap()
        .0
        .clone();

    // The CRM renamed the account; the next export says so.
    std::fs::write(
        dir.join("Account.csv"),
        accounts.replace("Lonely Corp", "Lonely Corporation"),
    )
    .unwrap();
    let o = import("second");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let after = orgs(&sb.state());
    assert_eq!(
        after.len(),
        before.len(),
        "no second organization: {after:?}"
    );
    assert!(
        after.contains(&(lonely.clone(), "Lonely Corporation".to_string())),
        "{after:?}"
    );
    // Busy Ltd is as it was: nothing sent for it; Ann is still in the renamed organization.
    let step: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ctx.path("second/02-organizations-Account/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (&step["succeeded"], &step["unchanged"]),
        (&2.into(), &1.into()),
        "{step}"
    );
    let state = sb.state();
    let ann = one(&state, "customers", "email", "ann@x.example");
    assert_eq!(ann["organizationIds"], serde_json::json!([lonely]));
}

#[test]
fn entitlements_and_organization_details_name_organizations_by_crm_id() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // A CRM's entitlements and account notes name the accounts by their ids (a number too).
    let dir = salesforce_folder(
        &ctx,
        &[
            (
                "Account.csv",
                "\"Id\",\"Name\"\r\n\"001A\",\"First Co\"\r\n\"360\",\"Numbered Co\"\r\n",
            ),
            ("products.csv", "name\nWidget Pro\n"),
            (
                "entitlements.csv",
                "organization,product\n001A,Widget Pro\n360,Widget Pro\n001Z,Widget Pro\n",
            ),
            (
                "organization-details.csv",
                "name,field,values\n360,Industry,Retail\n001Z,Industry,Mining\n",
            ),
        ],
        "\n[[step]]\nkind = \"products\"\nfile = \"products.csv\"\n\n[[step]]\nkind = \"entitlements\"\nfile = \"entitlements.csv\"\norganizations_by = \"External ID\"\n\n[[step]]\nkind = \"organization-details\"\nfile = \"organization-details.csv\"\norganizations_by = \"External ID\"\n",
    );
    let o = on_plan(&ctx, &sb, "import", &dir, "run");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let state = sb.state();
    let org =
        |name: &str| -> serde_json::Value { one(&state, "organizations", "name", name).clone() };
    let (first, numbered) = (org("First Co"), org("Numbered Co"));
    let holders: Vec<&str> = state["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entityType"] == "ORGANIZATION")
        .map(|e| e["entityId"].as_str().unwrap())
        .collect();
    for o in [&first, &numbered] {
        assert!(
            holders.contains(&o["id"].as_str().unwrap()),
            "{holders:?} has {o}"
        );
    }
    assert!(numbered.to_string().contains("Retail"), "{numbered}");
    // The id no account holds fails at resolve in both, naming it.
    for step in [
        "05-entitlements-entitlements",
        "03-organization-details-organization-details",
    ] {
        let (h, f) = read_csv(&ctx.path(&format!("run/{step}/failures.csv")));
        assert_eq!(f.len(), 1, "{step}: {f:?}");
        let at = |n: &str| h.iter().position(|x| x == n).unwrap();
        assert_eq!(f[0][at("_stage")], "resolve", "{step}");
        assert!(
            f[0][at("_error")].contains("External ID '001Z'"),
            "{step}: {:?}",
            f[0]
        );
    }
    // A customers file without a mapping: the flag says what its organizations column holds.
    let customers = ctx.write(
        "c.csv",
        b"email,organizations
z@x.example,360;001A
",
    );
    let o = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(&customers)
        .args(["--organizations-by", "External ID", "--out"])
        .arg(ctx.path("c"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let state = sb.state();
    let z = one(&state, "customers", "email", "z@x.example");
    let mut got: Vec<&str> = z["organizationIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    got.sort();
    let mut want = vec![
        first["id"].as_str().unwrap(),
        numbered["id"].as_str().unwrap(),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_plan_links_to_organizations_the_site_does_not_list_yet() {
    // As on a real site, a new organization shows in the JSM listing only a while later.
    let sb = SandboxProc::start(&["--listing-lag-ms", "600000"]);
    let ctx = Ctx::new();
    let dir = export(&ctx, Some("salesforce"), &["Account.csv", "Contact.csv"]);
    init(&ctx, "salesforce", &dir);
    let o = on_plan(&ctx, &sb, "import", &dir, "run");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // The customers step found the accounts the plan made in its organizations step.
    let s = ctx.summary();
    let contacts = &s["steps"][2]["summary"];
    assert_eq!(
        (
            &contacts["succeeded"],
            &contacts["failed_by_stage"]["resolve"]
        ),
        (&5.into(), &1.into()),
        "{contacts}"
    );
    let known = std::fs::read_to_string(ctx.path("run/known-organizations.csv")).unwrap();
    assert!(known.contains("External ID,0015g00000Xa001AAA,"), "{known}");
    let state = sb.state();
    let nordlys = one(&state, "organizations", "name", "Nordlys AB")["id"].clone();
    let asa = one(&state, "customers", "email", "asa.berg@nordlys.example");
    assert_eq!(asa["organizationIds"], serde_json::json!([nordlys]));

    // Outside a plan nothing is known: the listing does not show the new ones yet (only Acme
    // Pty Ltd, which the sample site had before), so their contacts fail at resolve, naming
    // the id, and are not sent without their organization.
    let alone = ctx
        .csmport(Some(&sb))
        .args(["import", "customers"])
        .arg(dir.join("Contact.csv"))
        .arg("--mapping")
        .arg(dir.join("mapping-salesforce-contacts.toml"))
        .arg("--out")
        .arg(ctx.path("alone"))
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(1), "{}", stderr(&alone));
    let (h, f) = read_csv(&ctx.path("alone/failures.csv"));
    let at = |n: &str| h.iter().position(|x| x == n).unwrap();
    let asa = f
        .iter()
        .find(|r| r[at("Email")] == "asa.berg@nordlys.example")
        .unwrap();
    assert_eq!(asa[at("_stage")], "resolve");
    assert!(
        asa[at("_error")].contains("External ID '0015g00000Xa001AAA'"),
        "{asa:?}"
    );
}

#[test]
fn entitlements_and_customer_details_name_customers_by_crm_id() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    // Support contracts and contact notes that name the contacts by their CRM ids.
    let dir = salesforce_folder(
        &ctx,
        &[
            (
                "Account.csv",
                "\"Id\",\"Name\"\r\n\"001A\",\"First Co\"\r\n",
            ),
            (
                "Contact.csv",
                "\"Id\",\"AccountId\",\"FirstName\",\"LastName\",\"Email\",\"Title\"\r\n\"003A\",\"001A\",\"Ann\",\"A\",\"ann@x.example\",\"CTO\"\r\n\"003B\",\"001A\",\"Bo\",\"B\",\"bo@x.example\",\"\"\r\n",
            ),
            ("products.csv", "name\nWidget Pro\n"),
            (
                "entitlements.csv",
                "customer,organization,product\n003A,,Widget Pro\n003Z,,Widget Pro\n,001A,Widget Pro\n",
            ),
            (
                "customer-details.csv",
                "email,field,values\n003B,Title,Buyer\n003Z,Title,Ghost\n",
            ),
        ],
        "\n[[step]]\nkind = \"products\"\nfile = \"products.csv\"\n\n[[step]]\nkind = \"entitlements\"\nfile = \"entitlements.csv\"\ncustomers_by = \"External ID\"\norganizations_by = \"External ID\"\n\n[[step]]\nkind = \"customer-details\"\nfile = \"customer-details.csv\"\ncustomers_by = \"External ID\"\n",
    );
    let o = on_plan(&ctx, &sb, "import", &dir, "run");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let state = sb.state();
    let ann = one(&state, "customers", "email", "ann@x.example")["id"].clone();
    let first = one(&state, "organizations", "name", "First Co")["id"].clone();
    let held: Vec<(&str, &str)> = state["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entityType"].as_str().unwrap(),
                e["entityId"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        held.contains(&("CUSTOMER", ann.as_str().unwrap())),
        "{held:?}"
    );
    assert!(
        held.contains(&("ORGANIZATION", first.as_str().unwrap())),
        "{held:?}"
    );
    let bo = one(&state, "customers", "email", "bo@x.example");
    assert!(bo.to_string().contains("Buyer"), "{bo}");
    // The contact id no customer holds fails at resolve in both steps, naming it.
    let steps = std::fs::read_dir(ctx.path("run"))
        .unwrap()
        .map(|d| d.unwrap().path());
    let mut seen = 0;
    for step in steps.filter(|p| {
        let n = p.file_name().unwrap().to_str().unwrap();
        n.contains("-entitlements-") || n.contains("-customer-details-")
    }) {
        let (h, f) = read_csv(&step.join("failures.csv"));
        let at = |n: &str| h.iter().position(|x| x == n).unwrap();
        assert_eq!(f.len(), 1, "{step:?}: {f:?}");
        assert_eq!(f[0][at("_stage")], "resolve", "{step:?}");
        assert!(
            f[0][at("_error")].contains("no customer on the site has External ID '003Z'"),
            "{step:?}: {:?}",
            f[0]
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn a_contact_whose_email_changed_in_the_crm_is_not_made_twice() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    ctx.define_fields(&sb, "customer,External ID,TEXT,\n");
    let mapping = ctx.write(
        "contacts.toml",
        b"kind = \"customers\"\nunmapped = \"ignore\"\nkey = \"External ID\"\n[[column]]\nsource = \"Email\"\nfield = \"email\"\n[[column]]\nsource = \"Id\"\nfield = \"External ID\"\n[[column]]\nsource = \"FirstName\"\nfield = \"displayName\"\n",
    );
    let m = mapping.to_str().unwrap();
    let first = ctx.write("first.csv", b"Id,FirstName,Email\n003A,Ann,ann@x.example\n");
    let o = ctx.import_kind_to(&sb, "customers", &first, "first", &["--mapping", m]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Next month's export: Ann's email changed; Bo is new; Ann's old address is kept by
    // nobody else.
    let second = ctx.write(
        "second.csv",
        b"Id,FirstName,Email\n003A,Ann,ann.new@x.example\n003B,Bo,bo@x.example\n",
    );
    let o = ctx.import_kind_to(&sb, "customers", &second, "second", &["--mapping", m]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let (h, f) = read_csv(&ctx.path("second/failures.csv"));
    let at = |n: &str| h.iter().position(|x| x == n).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0][at("Email")].as_str(), f[0][at("_stage")].as_str()),
        ("ann.new@x.example", "resolve")
    );
    assert!(
        f[0][at("_error")].contains("whose email is ann@x.example"),
        "{:?}",
        f[0]
    );
    let state = sb.state();
    let emails: Vec<&str> = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert!(!emails.contains(&"ann.new@x.example"), "{emails:?}");
    assert!(emails.contains(&"bo@x.example"), "{emails:?}");
    // The same export with Ann's email as the site has it goes through.
    let third = ctx.write(
        "third.csv",
        b"Id,FirstName,Email\n003A,Ann Lee,ann@x.example\n",
    );
    let o = ctx.import_kind_to(&sb, "customers", &third, "third", &["--mapping", m]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        one(&sb.state(), "customers", "email", "ann@x.example")["displayName"],
        "Ann Lee"
    );
}

#[test]
fn a_listing_without_its_list_stops_the_run_not_the_rows() {
    // A proxy renamed every list to a name csmport does not know: read as "no organizations",
    // every contact would fail at resolve (or a keyed account be made twice). It is an error
    // instead, of the listing that cannot be read whole (exit 3), naming what it had.
    let sb = SandboxProc::start(&["--quirk", "renamed-lists"]);
    let ctx = Ctx::new();
    let mapping = ctx.write("contacts.toml", BY_ACCOUNT_ID);
    let contacts = ctx.write("Contact.csv", b"Email,AccountId\nann@x.example,001A\n");
    let before = sb.requests().len();
    let out = ctx.import(&sb, &contacts, &["--mapping", mapping.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has no list") && err.contains("it has items"),
        "{err}"
    );
    assert!(sb.writes_since(before).is_empty());
    assert!(
        !ctx.path("run/failures.csv").exists()
            || read_csv(&ctx.path("run/failures.csv")).1.is_empty()
    );
}

#[test]
fn a_list_under_another_name_csmport_knows_is_read() {
    // The JSM listing's `values` come as `results` (a proxy in between): a name csmport knows
    // for a list, so the organizations are found and the contact is linked.
    let sb = SandboxProc::start(&["--quirk", "renamed-list"]);
    let ctx = Ctx::new();
    ctx.define_fields(&sb, "organization,External ID,TEXT,\n");
    let accounts = ctx.write("Account.csv", b"name,External ID\nAcme Renamed,001A\n");
    let o = ctx.import_kind_to(&sb, "organizations", &accounts, "accounts", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mapping = ctx.write("contacts.toml", BY_ACCOUNT_ID);
    let contacts = ctx.write("Contact.csv", b"Email,AccountId\nann@x.example,001A\n");
    let out = ctx.import(&sb, &contacts, &["--mapping", mapping.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let state = sb.state();
    let ann = one(&state, "customers", "email", "ann@x.example");
    let acme = one(&state, "organizations", "name", "Acme Renamed");
    assert!(
        ann.to_string().contains(acme["id"].as_str().unwrap()),
        "{ann} {acme}"
    );
}
