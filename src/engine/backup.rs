//! Backup stage, for deletes: before anything is deleted, every thing a delete file's rows name
//! is found on the site and written into the run folder in its import template's columns
//! (`backup.csv` or `.xlsx`, then `backup.ids`, the list of what it holds), so an import puts
//! it back. Runs before `run` sends anything; `kinds::deletes` finds and describes what a
//! backup holds, `export` reads and writes the tables, `cmd::delete` asks and prints.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::export::Table;
use crate::export::write::{self, CsvOptions, ExportFormat};
use crate::kinds::deletes::{self, BACKUP_IDS, Deletes, Target};
use crate::kinds::{Description, Kind};
use crate::options::ImportOptions;
use crate::read::Source;
use crate::site::Site;

/// What the stage writes into the run folder before the run begins (the run's own folder
/// check takes them as csmport's).
pub const FILES: &[&str] = &[
    BACKUP_CSV,
    BACKUP_XLSX,
    BACKUP_IDS,
    BACKUP_ENTITLEMENTS,
    VALUES_CUSTOMER,
    VALUES_ORGANIZATION,
    TARGETS,
];
const BACKUP_CSV: &str = "backup.csv";
const BACKUP_XLSX: &str = "backup.xlsx";
const BACKUP_ENTITLEMENTS: &str = "backup-entitlements.csv";
const VALUES_CUSTOMER: &str = "backup-values-customer.csv";
const VALUES_ORGANIZATION: &str = "backup-values-organization.csv";
const TARGETS: &str = "targets.csv";

/// Targets looked up per round of the backup pass.
const FIND_GROUP: usize = 100;

/// What the backup pass found and wrote.
#[derive(Debug)]
pub struct Backed {
    /// Rows read (blank ones not counted).
    pub rows: u64,
    /// Rows naming nothing readable.
    pub invalid: u64,
    /// Rows naming something the site does not have.
    pub missing: u64,
    /// Rows whose target could not be looked up (left for the run to decide).
    pub unknown: u64,
    /// Things found on the site, each backed up once.
    pub on_site: u64,
    /// `backup.csv` or `backup.xlsx`.
    pub file: PathBuf,
    /// What an import of the backup cannot put back.
    pub not_restorable: Vec<String>,
}

impl Backed {
    /// What the pass says before the question: counts, then what cannot be put back.
    pub fn notes(&self, kind: Kind, label: &str) -> Vec<String> {
        let mut notes = vec![format!(
            "delete {}: {} in {label}: {} on the site (backed up to {}), {} not on the site, {} not readable{}",
            kind.as_str(),
            crate::engine::report::count(self.rows, "row"),
            self.on_site,
            self.file.display(),
            self.missing,
            self.invalid,
            if self.unknown == 0 {
                String::new()
            } else {
                format!(
                    ", {} could not be looked up (left for the run)",
                    self.unknown
                )
            }
        )];
        if self.on_site > 0 {
            for n in &self.not_restorable {
                notes.push(format!("  cannot be put back: {n}"));
            }
        }
        notes
    }
}

/// The backup pass of a delete of `opts.file` into `dir`: every row's target, found on the
/// site a group of rows at a time, then written. What it keeps grows with what is found on the
/// site (the backup's rows and ids), never with the file: a row naming something found already
/// is not looked up twice. Things that go with a deleted thing (a product's entitlements, a
/// field's values) are backed up too, or nothing is deleted.
pub async fn back_up(
    site: &Site,
    opts: &ImportOptions,
    format: ExportFormat,
    dir: &Path,
) -> Result<Backed, Error> {
    let kind_arg = opts.kind;
    let file = opts.file.as_path();
    let label = file.display().to_string();
    let mut source = Source::open(file, &opts.input.read_options())?;
    let header = source.header().to_vec();
    let kind = Deletes::open_for(site, kind_arg, &header, &label, None).await?;
    let (mut rows, mut invalid, mut missing, mut unknown) = (0u64, 0u64, 0u64, 0u64);
    let mut found_ids: Vec<String> = Vec::new();
    let mut found_set: HashSet<String> = HashSet::new();
    let mut backup = deletes::Backup::default();
    let mut group: Vec<Target> = Vec::with_capacity(FIND_GROUP);
    let mut reading = true;
    while reading {
        match source.next_row() {
            Some(row) => {
                let row = row.map_err(|e| Error::Usage(format!("{label}: {e}")))?;
                if row.is_blank() {
                    continue;
                }
                rows += 1;
                match (row.problem.is_none()).then(|| kind.check(&row)) {
                    Some(Ok(t)) => group.push(t),
                    _ => invalid += 1,
                }
                if group.len() < FIND_GROUP {
                    continue;
                }
            }
            None => reading = false,
        }
        if group.is_empty() {
            continue;
        }
        let results = kind.find(site, &mut group).await;
        let mut found: Vec<Target> = Vec::new();
        for (t, f) in group.drain(..).zip(results) {
            match f {
                Ok(true) => {
                    let id = t.id.clone().expect("found has an id");
                    if found_set.insert(id.clone()) {
                        found_ids.push(id);
                        found.push(t);
                    }
                }
                Ok(false) => missing += 1,
                Err(_) => unknown += 1,
            }
        }
        deletes::back_up(site, kind_arg, &found, &mut backup)
            .await
            .map_err(Error::from_setup)?;
    }
    drop(found_set);
    if backup.tables.is_empty() {
        // A file without a valid row still gets its (empty) backup in the template's columns.
        deletes::back_up(site, kind_arg, &[], &mut backup)
            .await
            .map_err(Error::from_setup)?;
    }
    let on_site = found_ids.len() as u64;
    let mut not_restorable = backup.not_restorable();
    // Deleting a product deletes every entitlement of it (DELTAS A1): those go in the backup
    // too, as an entitlements file, or the delete does not happen.
    let mut cascade = None;
    if kind_arg == Kind::Products && on_site > 0 {
        let t = product_entitlements(site, opts, &backup.tables[0]).await?;
        not_restorable.push(format!(
            "deleting a product deletes its entitlements: the {} it has are in {} (import it after the products)",
            t.rows.len(),
            match format {
                ExportFormat::Csv => BACKUP_ENTITLEMENTS,
                ExportFormat::Xlsx => "backup.xlsx, sheet entitlements",
            }
        ));
        cascade = Some(t);
    }
    // Deleting a detail field deletes its values (C4, O4): those of customer and organization
    // fields are kept as value files, or the delete does not happen.
    if kind_arg == Kind::DetailFields && on_site > 0 {
        for (entity, export_kind) in [
            ("customer", crate::export::Kind::Customers),
            ("organization", crate::export::Kind::Organizations),
        ] {
            let names: Vec<&str> = found_ids
                .iter()
                .filter_map(|id| id.strip_prefix(entity)?.strip_prefix(':'))
                .collect();
            if names.is_empty() {
                continue;
            }
            let table = crate::kinds::read_table(&site.client, export_kind, opts.service_desk.clone())
                .await
                .map_err(|e| {
                    Error::Usage(format!(
                        "the values of the {entity} fields cannot be backed up, so nothing is deleted (deleting a field deletes its values): {e}"
                    ))
                })?;
            let path = dir.join(if entity == "customer" {
                VALUES_CUSTOMER
            } else {
                VALUES_ORGANIZATION
            });
            write_values(&path, &table, &names)?;
        }
        backup.values_kept = true;
        not_restorable = backup.not_restorable();
    }
    let backup_file = dir.join(match format {
        ExportFormat::Csv => BACKUP_CSV,
        ExportFormat::Xlsx => BACKUP_XLSX,
    });
    let csv = CsvOptions {
        bom: false,
        delimiter: b',',
    };
    let mut files = vec![(backup_file.clone(), std::mem::take(&mut backup.tables))];
    match (cascade, format) {
        (Some(t), ExportFormat::Xlsx) => files[0].1.push(t),
        (Some(t), ExportFormat::Csv) => files.push((dir.join(BACKUP_ENTITLEMENTS), vec![t])),
        (None, _) => {}
    }
    for (path, tables) in files {
        tokio::task::spawn_blocking(move || {
            write::write(&path, format, &tables, csv, write::Access::Private)
        })
        .await
        .map_err(|e| Error::Usage(format!("the backup writer stopped: {e}")))?
        .map_err(|e| Error::Usage(format!("the backup cannot be written: {e}")))?;
    }
    // The list of what the backup holds is written last, whole or not at all: without it
    // nothing is deleted.
    write_atomic(&dir.join(BACKUP_IDS), &(found_ids.join("\n") + "\n"))?;
    Ok(Backed {
        rows,
        invalid,
        missing,
        unknown,
        on_site,
        file: backup_file,
        not_restorable,
    })
}

/// The entitlements of the products `products` (the backup's table) holds, as an export of
/// entitlements.
async fn product_entitlements(
    site: &Site,
    opts: &ImportOptions,
    products: &Table,
) -> Result<Table, Error> {
    let names: HashSet<String> = products
        .rows
        .iter()
        .map(|r| crate::row::match_key(&r[0].text()))
        .collect();
    let mut t = crate::kinds::read_table(
        &site.client,
        crate::export::Kind::Entitlements,
        opts.service_desk.clone(),
    )
    .await
    .map_err(|e| {
        Error::Usage(format!(
            "the entitlements of the products cannot be backed up, so nothing is deleted (deleting a product deletes its entitlements): {e}"
        ))
    })?;
    let product = t.header.iter().position(|h| h == "product").unwrap_or(2);
    t.rows
        .retain(|r| names.contains(&crate::row::match_key(&r[product].text())));
    Ok(t)
}

/// The values `table` (an export of customers or organizations) holds in the columns
/// `names`, as a long-layout values file (`id,field,values,operation`) that puts them back.
fn write_values(
    path: &std::path::Path,
    table: &crate::export::Table,
    names: &[&str],
) -> Result<(), Error> {
    let err = |e: &dyn std::fmt::Display| {
        Error::Usage(format!(
            "{}: the values' backup cannot be written: {e}",
            path.display()
        ))
    };
    let id = table.header.iter().position(|h| h == "id");
    let cols: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|n| table.header.iter().position(|h| h == n).map(|c| (c, *n)))
        .collect();
    let tmp = path.with_extension("tmp");
    let mut w = csv::Writer::from_writer(crate::fsx::create_private(&tmp).map_err(|e| err(&e))?);
    w.write_record(["id", "field", "values", "operation"])
        .map_err(|e| err(&e))?;
    for row in &table.rows {
        let Some(id) = id.and_then(|i| row.get(i)).map(|c| c.text()) else {
            continue;
        };
        for &(c, name) in &cols {
            let value = row.get(c).map(|v| v.text()).unwrap_or_default();
            if value.is_empty() {
                continue;
            }
            w.write_record([
                crate::read::escape_formula(&id).as_ref(),
                crate::read::escape_formula(name).as_ref(),
                crate::read::escape_formula(&value).as_ref(),
                "UPDATE",
            ])
            .map_err(|e| err(&e))?;
        }
    }
    let file = w.into_inner().map_err(|e| err(&e))?;
    file.sync_all().map_err(|e| err(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}

/// `--where`: the customers the search finds whose profiles hold every value, written as an
/// `id` file in the run folder (the run's input, so `resume` reads the same rows).
pub async fn search(
    site: &Site,
    query: &[crate::site::api::model::DetailFieldQuery],
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, Error> {
    use crate::export::fetch;
    let client = &site.client;
    let defs = fetch::definitions(client, "customer")
        .await
        .map_err(Error::from_setup)?;
    let query = fetch::on_site(query, &defs).map_err(Error::Usage)?;
    let hits = fetch::search_customers(client, &query)
        .await
        .map_err(Error::from_setup)?;
    let ids: Vec<String> = hits.into_iter().map(|h| h.id).collect();
    let profiles = fetch::customer_profiles(client, &ids, 4)
        .await
        .map_err(Error::from_setup)?;
    let mut text = String::from("id\n");
    for p in profiles.iter().filter(|p| fetch::holds(&p.details, &query)) {
        text.push_str(&p.id);
        text.push('\n');
    }
    let path = dir.join(TARGETS);
    write_atomic(&path, &text)?;
    Ok(path)
}

fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let err = |e: std::io::Error| {
        Error::Report(crate::engine::report::ReportError {
            path: path.to_path_buf(),
            source: e,
        })
    };
    crate::fsx::write_private(path, text.as_bytes()).map_err(err)
}

/// A delete stopped by Ctrl-C in its backup pass: the folder's summary.json says nothing was
/// deleted (exit 4), so `status` and a reader of the folder see why it holds a partial backup.
pub fn interrupted(dir: &std::path::Path, kind: &str) -> Result<(), Error> {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let summary = serde_json::json!({
        "kind": kind,
        "operation": "delete",
        "run_dir": dir.display().to_string(),
        "started_at": now,
        "finished_at": now,
        "rows": 0, "succeeded": 0, "failed": 0, "skipped": 0, "open": 0,
        "interrupted": true,
        "exit_code": crate::error::EXIT_INTERRUPTED,
        "note": "interrupted during the backup pass: nothing was deleted; the backup here is partial",
    });
    let text = serde_json::to_string_pretty(&summary).expect("json") + "\n";
    write_atomic(&dir.join(crate::engine::report::SUMMARY_FILE), &text)
}

/// `summary.json` gains where the backup is and what it cannot put back.
pub fn add_to_summary(
    dir: &std::path::Path,
    backup: &std::path::Path,
    not_restorable: &[String],
) -> Result<(), Error> {
    let path = dir.join(crate::engine::report::SUMMARY_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(());
    };
    v["backup"] = serde_json::json!(backup.display().to_string());
    v["not_restorable"] = serde_json::json!(not_restorable);
    write_atomic(
        &path,
        &serde_json::to_string_pretty(&v).expect("a summary serializes"),
    )
}
