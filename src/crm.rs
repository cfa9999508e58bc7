//! CRM export folders → a migration plan (`csmport init`): the shipped templates (embedded,
//! so an installed binary has them), which export file each one reads (recognised by its
//! header, never by its name), and the detail-field definitions the mapped fields need. Pure
//! but for reading the files' headers and values; `cmd::init` writes what this decides.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::kinds::Kind;
use crate::map::{COL_DISPLAY_NAME, COL_EMAIL, COL_ID, COL_NAME, COL_ORGANIZATIONS, normalize};
use crate::mapfile::{Compiled, MappingFile};
use crate::read::{ReadOptions, Source};
use crate::schema::FieldKind;
use crate::site::api::MULTI_VALUE_SEPARATOR;

/// A CRM's pair of templates: its accounts (organizations) and its contacts (customers).
pub struct Crm {
    pub name: &'static str,
    pub organizations: (&'static str, &'static str),
    pub customers: (&'static str, &'static str),
    /// What its exports look like, for a folder where nothing is recognised.
    pub looks_for: &'static str,
}

pub const CRMS: [Crm; 3] = [
    Crm {
        name: "salesforce",
        organizations: (
            "salesforce-accounts.toml",
            include_str!("../templates/salesforce-accounts.toml"),
        ),
        customers: (
            "salesforce-contacts.toml",
            include_str!("../templates/salesforce-contacts.toml"),
        ),
        looks_for: "a Salesforce Data Export's Account.csv (Id, Name, …) and Contact.csv (Id, AccountId, FirstName, LastName, Email, …), or report exports of accounts (Account Name, …) and contacts (First Name, Last Name, Email, Account Name, …)",
    },
    Crm {
        name: "hubspot",
        organizations: (
            "hubspot-companies.toml",
            include_str!("../templates/hubspot-companies.toml"),
        ),
        customers: (
            "hubspot-contacts.toml",
            include_str!("../templates/hubspot-contacts.toml"),
        ),
        looks_for: "HubSpot exports of companies (Record ID, Company name, …) and contacts (Record ID, First Name, Last Name, Email, Associated Company IDs, …)",
    },
    Crm {
        name: "zendesk",
        organizations: (
            "zendesk-organizations.toml",
            include_str!("../templates/zendesk-organizations.toml"),
        ),
        customers: (
            "zendesk-users.toml",
            include_str!("../templates/zendesk-users.toml"),
        ),
        looks_for: "Zendesk exports of organizations (id, name, …) and users (id, name, email, organization_id, role, …), as CSV, JSON or JSON lines",
    },
];

pub fn find(name: &str) -> Option<&'static Crm> {
    CRMS.iter()
        .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
}

/// Files `init` reads: what spreadsheets and exports are saved as.
const INPUT_EXTENSIONS: [&str; 9] = [
    "csv", "tsv", "txt", "xlsx", "xls", "ods", "json", "jsonl", "ndjson",
];

/// How many distinct values a SELECT field found in the data may have as options before it is
/// made a TEXT field instead.
pub const MAX_FOUND_OPTIONS: usize = 50;

/// One export file the plan imports.
#[derive(Debug, Clone)]
pub struct Found {
    pub file: PathBuf,
    pub kind: Kind,
    /// The template's file name (`salesforce-contacts.toml`).
    pub template: &'static str,
    pub template_text: &'static str,
    /// The template bound to the file's header.
    pub compiled: Compiled,
}

impl Found {
    /// Input columns the template does not import.
    pub fn left_out(&self) -> Vec<String> {
        self.compiled
            .columns
            .iter()
            .filter(|u| u.status == crate::map::NOT_IMPORTED)
            .map(|u| u.column.clone())
            .collect()
    }
}

/// What a folder holds.
#[derive(Debug, Default)]
pub struct Survey {
    pub found: Vec<Found>,
    /// Files that are not one of the CRM's exports, and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Files `init` itself writes: never taken for an export.
pub fn is_ours(name: &str) -> bool {
    name == PLAN_FILE || name == DEFINITIONS_FILE || name.starts_with("mapping-")
}

pub const PLAN_FILE: &str = "csmport-plan.toml";
pub const DEFINITIONS_FILE: &str = "detail-fields.csv";

/// Whether `header` is an export `m` reads: it compiles, and the rule of the kind's identity
/// (a contact's email, an account's name) has its column.
fn reads(m: &MappingFile, header: &[String]) -> Option<Compiled> {
    let c = m.compile(&m.kind, header, &m.permissive_schema()).ok()?;
    let identity = if m.kind == "organizations" {
        COL_NAME
    } else {
        COL_EMAIL
    };
    c.header
        .iter()
        .any(|h| normalize(h) == normalize(identity))
        .then_some(c)
}

/// Looks at every file of `dir` (not its subfolders): which of `crm`'s exports each one is.
pub fn survey(crm: &Crm, dir: &Path) -> Result<Survey, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let contacts: MappingFile = toml::from_str(crm.customers.1).expect("shipped template");
    let accounts: MappingFile = toml::from_str(crm.organizations.1).expect("shipped template");
    let mut out = Survey::default();
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let ext = file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if name.starts_with('.') || is_ours(&name) {
            continue;
        }
        if !INPUT_EXTENSIONS.contains(&ext.as_str()) {
            out.skipped
                .push((file, "not a CSV, spreadsheet or JSON file".into()));
            continue;
        }
        let source = match Source::open(&file, &ReadOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                out.skipped.push((file, format!("cannot be read: {e}")));
                continue;
            }
        };
        let header = source.header().to_vec();
        // A contact export has an email column; an account export has none (HubSpot contacts
        // carry their company's name too).
        let (kind, template, compiled) = if let Some(c) = reads(&contacts, &header) {
            (Kind::Customers, crm.customers, c)
        } else if let Some(c) = reads(&accounts, &header) {
            (Kind::Organizations, crm.organizations, c)
        } else {
            out.skipped.push((
                file,
                format!(
                    "not a {} export this template reads (header: {})",
                    crm.name,
                    crate::map::header_list(&header)
                ),
            ));
            continue;
        };
        out.found.push(Found {
            file,
            kind,
            template: template.0,
            template_text: template.1,
            compiled,
        });
    }
    // Organizations before the customers that name them, each kind in file-name order.
    out.found.sort_by_key(|f| f.kind != Kind::Organizations);
    Ok(out)
}

/// A field a template feeds: its type on a site that does not have it yet.
fn field_kind(name: &str) -> FieldKind {
    match normalize(name).as_str() {
        "website" => FieldKind::Url,
        "type" | "preferredlanguage" => FieldKind::Select,
        _ => FieldKind::Text,
    }
}

/// One definition the plan's detail-fields step makes, and where its options came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub entity: &'static str,
    pub name: String,
    pub kind: FieldKind,
    pub options: Vec<String>,
    /// How the options were chosen, for `init` to say.
    pub note: Option<String>,
}

/// The detail fields the found files' mappings feed, one definition per entity and name.
/// A SELECT fed through a value map has the map's values as options (what the map does not
/// list is left out of the row and listed in warnings.csv); without a map, the values found in
/// the files, or TEXT when there are more than `MAX_FOUND_OPTIONS`.
pub fn definitions(found: &[Found]) -> Result<Vec<Definition>, String> {
    let mut out: Vec<Definition> = Vec::new();
    for f in found {
        let m: MappingFile = toml::from_str(f.template_text).expect("shipped template");
        let entity = if f.kind == Kind::Organizations {
            "organization"
        } else {
            "customer"
        };
        let compiled = &f.compiled;
        for (i, field) in compiled.header.iter().enumerate() {
            let base = [
                COL_EMAIL,
                COL_DISPLAY_NAME,
                COL_ORGANIZATIONS,
                COL_ID,
                COL_NAME,
            ];
            if base.iter().any(|b| normalize(b) == normalize(field))
                || out
                    .iter()
                    .any(|d| d.entity == entity && normalize(&d.name) == normalize(field))
            {
                continue;
            }
            let rule = m.columns.iter().find(|r| {
                r.field
                    .as_deref()
                    .is_some_and(|x| normalize(x) == normalize(field))
            });
            let mut kind = field_kind(field);
            let mut options = Vec::new();
            let mut note = None;
            if kind == FieldKind::Select {
                match rule.filter(|r| !r.map.is_empty()) {
                    Some(r) => {
                        let set: BTreeSet<String> =
                            r.map.values().chain(&r.default).cloned().collect();
                        options = set.into_iter().collect();
                        note = Some(format!(
                            "options from the template's value map: {}",
                            options.join(", ")
                        ));
                    }
                    None => match values_found(&f.file, compiled, i)? {
                        Some(found) => {
                            note = Some(format!(
                                "{} options, the values found: {}",
                                found.len(),
                                found.join(", ")
                            ));
                            options = found;
                        }
                        None => {
                            kind = FieldKind::Text;
                            note = Some(format!(
                                "TEXT: more than {MAX_FOUND_OPTIONS} different values, too many for a SELECT"
                            ));
                        }
                    },
                }
            }
            out.push(Definition {
                entity,
                name: field.clone(),
                kind,
                options,
                note,
            });
        }
    }
    Ok(out)
}

/// The distinct values column `at` of the mapped rows holds (split on the multi-value
/// separator), or None past `MAX_FOUND_OPTIONS`.
fn values_found(
    file: &Path,
    compiled: &Compiled,
    at: usize,
) -> Result<Option<Vec<String>>, String> {
    let mut source = Source::open(file, &ReadOptions::default())
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(row) = source.next_row() {
        let row = row.map_err(|e| format!("{}: {e}", file.display()))?;
        let cells = compiled.apply(&row.cells);
        for v in cells[at].split(MULTI_VALUE_SEPARATOR) {
            let v = v.trim();
            if !v.is_empty() && !seen.iter().any(|s| s.eq_ignore_ascii_case(v)) {
                seen.insert(v.to_string());
                if seen.len() > MAX_FOUND_OPTIONS {
                    return Ok(None);
                }
            }
        }
    }
    Ok(Some(seen.into_iter().collect()))
}

/// `detail-fields.csv` for `defs`: the import template's columns.
pub fn definitions_csv(defs: &[Definition]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["entity", "name", "type", "options"])
        .expect("in memory");
    for d in defs {
        let options = d.options.join(&MULTI_VALUE_SEPARATOR.to_string());
        w.write_record([
            d.entity,
            d.name.as_str(),
            d.kind.api_name(),
            options.as_str(),
        ])
        .expect("in memory");
    }
    String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8 in, UTF-8 out")
}

/// The mapping file name `init` writes beside the plan for a template.
pub fn mapping_file(template: &str) -> String {
    format!("mapping-{template}")
}

/// `csmport-plan.toml`: the definitions, then each export with its mapping, in dependency
/// order; paths relative to the plan.
pub fn plan_toml(crm: &Crm, found: &[Found], with_definitions: bool) -> String {
    let mut s = format!(
        "# A {} migration into CSM, written by `csmport init {}`.\n# Check it: csmport validate --plan {PLAN_FILE}; run it: csmport import --plan {PLAN_FILE}\n# Steps run in dependency order; paths are relative to this file. Edit the mapping-*.toml\n# files to change what goes where (templates/README.md describes them).\n",
        crm.name, crm.name
    );
    if with_definitions {
        s.push_str(&format!(
            "\n[[step]]\nkind = \"detail-fields\"\nfile = \"{DEFINITIONS_FILE}\"\n"
        ));
    }
    for f in found {
        let name = f
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        s.push_str(&format!(
            "\n[[step]]\nkind = \"{}\"\nfile = {}\nmapping = \"{}\"\n",
            f.kind.as_str(),
            toml_string(name),
            mapping_file(f.template)
        ));
    }
    s
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exports_are_told_apart_by_their_headers() {
        let sf = find("Salesforce").unwrap();
        let contacts: MappingFile = toml::from_str(sf.customers.1).unwrap();
        let accounts: MappingFile = toml::from_str(sf.organizations.1).unwrap();
        let data_export_contact = h(&[
            "Id",
            "IsDeleted",
            "AccountId",
            "LastName",
            "FirstName",
            "Email",
            "Phone",
        ]);
        let data_export_account = h(&["Id", "IsDeleted", "Name", "Type", "BillingCity"]);
        let report_contacts = h(&["First Name", "Last Name", "Email", "Account Name"]);
        let report_accounts = h(&["Account Name", "Account ID", "Billing City"]);
        assert!(reads(&contacts, &data_export_contact).is_some());
        assert!(reads(&contacts, &report_contacts).is_some());
        assert!(reads(&contacts, &data_export_account).is_none());
        assert!(reads(&accounts, &data_export_account).is_some());
        assert!(reads(&accounts, &report_accounts).is_some());
        let hs = find("hubspot").unwrap();
        let hs_contacts: MappingFile = toml::from_str(hs.customers.1).unwrap();
        let hs_companies: MappingFile = toml::from_str(hs.organizations.1).unwrap();
        assert!(
            reads(
                &hs_contacts,
                &h(&["Record ID", "First Name", "Last Name", "Email"])
            )
            .is_some()
        );
        assert!(
            reads(
                &hs_companies,
                &h(&["Record ID", "Company name", "Industry"])
            )
            .is_some()
        );
        assert!(reads(&hs_contacts, &h(&["Record ID", "Company name", "Industry"])).is_none());
        assert!(find("pipedrive").is_none());
    }

    #[test]
    fn definitions_csv_is_the_import_templates_layout() {
        let defs = vec![
            Definition {
                entity: "organization",
                name: "External ID".into(),
                kind: FieldKind::Text,
                options: vec![],
                note: None,
            },
            Definition {
                entity: "customer",
                name: "Type".into(),
                kind: FieldKind::Select,
                options: vec!["Other".into(), "Partner".into()],
                note: None,
            },
        ];
        assert_eq!(
            definitions_csv(&defs),
            "entity,name,type,options\norganization,External ID,TEXT,\ncustomer,Type,SELECT,Other;Partner\n"
        );
    }

    #[test]
    fn a_select_without_a_value_map_takes_the_values_found_or_becomes_text() {
        let dir = tempfile::tempdir().unwrap();
        let m: MappingFile = toml::from_str(
            "kind = \"customers\"\n[[column]]\nsource = \"email\"\nfield = \"email\"\n[[column]]\nsource = \"kind\"\nfield = \"Type\"\n",
        )
        .unwrap();
        let few = dir.path().join("few.csv");
        std::fs::write(
            &few,
            "email,kind\na@x.io,Gold\nb@x.io,gold;Silver\nc@x.io,\n",
        )
        .unwrap();
        let header = h(&["email", "kind"]);
        let c = m
            .compile("customers", &header, &m.permissive_schema())
            .unwrap();
        assert_eq!(
            values_found(&few, &c, 1).unwrap(),
            Some(vec!["Gold".to_string(), "Silver".to_string()])
        );
        let many = dir.path().join("many.csv");
        let rows: String = (0..=MAX_FOUND_OPTIONS)
            .map(|i| format!("u{i}@x.io,kind {i}\n"))
            .collect();
        std::fs::write(&many, format!("email,kind\n{rows}")).unwrap();
        assert_eq!(values_found(&many, &c, 1).unwrap(), None);
    }
}
