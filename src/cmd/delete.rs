//! `csmport delete KIND FILE`: finds every thing the file's rows name on the site, writes the
//! backup (`backup.csv` or `.xlsx` in the import template's columns, then `backup.ids`) into
//! the run folder, asks (or takes `--yes`), then runs the engine with the delete description
//! (`kinds::deletes`), journaled and resumable like an import. `--dry-run` stops after the
//! backup, with the engine's reports of what would be deleted.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use crate::cli::{Cli, DeleteArgs};
use crate::engine::run;
use crate::error::{EXIT_OK, Error};
use crate::export::write::{self, CsvOptions, ExportFormat};
use crate::kinds::deletes::{self, BACKUP_IDS, Deletes, Target};
use crate::kinds::{Description, Kind};
use crate::options::ImportOptions;
use crate::read::Source;
use crate::site::Site;
use crate::site::client::{Client, Notify};

/// Targets looked up per round of the backup pass.
const FIND_GROUP: usize = 100;

pub async fn run(cli: &Cli, args: &DeleteArgs) -> Result<i32, Error> {
    let kind_arg = args.kind.kind();
    if matches!(kind_arg, Kind::CustomerDetails | Kind::OrganizationDetails) {
        return values(cli, args).await;
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Error::Usage(format!(
            "--rate must be a positive number, got {}",
            args.rate
        )));
    }
    let query = crate::export::fetch::parse_where(&args.where_).map_err(Error::Usage)?;
    if !query.is_empty() && kind_arg != Kind::Customers {
        return Err(Error::Usage(
            "--where finds customers by a detail field: it goes with `delete customers`".into(),
        ));
    }
    let (target, sandbox) = super::resolve_target(cli).await?;
    let progress = Arc::new(crate::engine::progress::Progress::new(0));
    let notify: Arc<dyn Notify> = progress.clone();
    let rate = args.rate;
    let policy = ImportOptions {
        retries: args.retries,
        ..ImportOptions::default()
    }
    .policy();
    let site = Site::new(
        Arc::new(Client::new(&target, rate, policy, notify)),
        target.clone(),
        args.service_desk.clone(),
    );
    let dir = run::run_dir(
        args.out.as_deref(),
        &format!("delete-{}", kind_arg.as_str()),
        jiff::Timestamp::now(),
    )?;
    let searched;
    let file = match &args.file {
        Some(f) => f,
        None => {
            searched = search(&site, &query, &dir).await?;
            &searched
        }
    };
    let input = args.dialect.input_options();
    let mut opts = ImportOptions {
        kind: kind_arg,
        file: file.clone(),
        input,
        dry_run: args.dry_run,
        service_desk: args.service_desk.clone(),
        rate: args.rate,
        retries: args.retries,
        delete: true,
        ..ImportOptions::default()
    };
    let source = Source::open(file, &opts.input.read_options())?;
    let header = source.header().to_vec();
    let label = file.display().to_string();
    let kind = Deletes::open_for(&site, kind_arg, &header, &label, None).await?;

    // The backup pass: every row's target, found on the site before anything is deleted, a
    // group of rows at a time. What it keeps grows with what is found on the site (the
    // backup's rows and ids), never with the file: a row naming something found already is
    // not looked up twice.
    let mut source = source;
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
        let results = kind.find(&site, &mut group).await;
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
        deletes::back_up(&site, kind_arg, &found, &mut backup)
            .await
            .map_err(Error::from_setup)?;
    }
    drop(found_set);
    if backup.tables.is_empty() {
        // A file without a valid row still gets its (empty) backup in the template's columns.
        deletes::back_up(&site, kind_arg, &[], &mut backup)
            .await
            .map_err(Error::from_setup)?;
    }
    let on_site = found_ids.len() as u64;
    let mut not_restorable = backup.not_restorable();
    // Deleting a product deletes every entitlement of it (DELTAS A1): those go in the backup
    // too, as an entitlements file, or the delete does not happen.
    let mut cascade = None;
    if kind_arg == Kind::Products && on_site > 0 {
        let names: HashSet<String> = backup.tables[0]
            .rows
            .iter()
            .map(|r| crate::row::match_key(&r[0].text()))
            .collect();
        let mut t = crate::export::reader::read_table(
            &site.client,
            crate::export::ExportKind::Entitlements,
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
        not_restorable.push(format!(
            "deleting a product deletes its entitlements: the {} it has are in {} (import it after the products)",
            t.rows.len(),
            match args.format.unwrap_or(ExportFormat::Csv) {
                ExportFormat::Csv => "backup-entitlements.csv",
                ExportFormat::Xlsx => "backup.xlsx, sheet entitlements",
            }
        ));
        cascade = Some(t);
    }
    // Deleting a detail field deletes its values (C4, O4): those of customer and organization
    // fields are kept as value files, or the delete does not happen.
    if kind_arg == Kind::DetailFields && on_site > 0 {
        for (entity, export_kind) in [
            ("customer", crate::export::ExportKind::Customers),
            ("organization", crate::export::ExportKind::Organizations),
        ] {
            let names: Vec<&str> = found_ids
                .iter()
                .filter_map(|id| id.strip_prefix(entity)?.strip_prefix(':'))
                .collect();
            if names.is_empty() {
                continue;
            }
            let table = crate::export::reader::read_table(&site.client, export_kind, opts.service_desk.clone())
                .await
                .map_err(|e| {
                    Error::Usage(format!(
                        "the values of the {entity} fields cannot be backed up, so nothing is deleted (deleting a field deletes its values): {e}"
                    ))
                })?;
            let path = dir.join(format!("backup-values-{entity}.csv"));
            write_values(&path, &table, &names)?;
        }
        backup.values_kept = true;
        not_restorable = backup.not_restorable();
    }
    progress.finish();
    let format = args.format.unwrap_or(ExportFormat::Csv);
    let backup_file = dir.join(match format {
        ExportFormat::Csv => "backup.csv",
        ExportFormat::Xlsx => "backup.xlsx",
    });
    let csv = CsvOptions {
        bom: false,
        delimiter: b',',
    };
    let mut files = vec![(backup_file.clone(), std::mem::take(&mut backup.tables))];
    match (cascade, format) {
        (Some(t), ExportFormat::Xlsx) => files[0].1.push(t),
        (Some(t), ExportFormat::Csv) => files.push((dir.join("backup-entitlements.csv"), vec![t])),
        (None, _) => {}
    }
    for (path, tables) in files {
        tokio::task::spawn_blocking(move || write::write(&path, format, &tables, csv))
            .await
            .map_err(|e| Error::Usage(format!("the backup writer stopped: {e}")))?
            .map_err(|e| Error::Usage(format!("the backup cannot be written: {e}")))?;
    }
    // The list of what the backup holds is written last, whole or not at all: without it
    // nothing is deleted.
    write_atomic(&dir.join(BACKUP_IDS), &(found_ids.join("\n") + "\n"))?;
    drop(found_ids);
    let mut notes = vec![format!(
        "delete {}: {} in {label}: {on_site} on the site (backed up to {}), {missing} not on the site, {invalid} not readable{}",
        kind_arg.as_str(),
        super::count(rows, "row"),
        backup_file.display(),
        if unknown == 0 {
            String::new()
        } else {
            format!(", {unknown} could not be looked up (left for the run)")
        }
    )];
    if on_site > 0 {
        for n in &not_restorable {
            notes.push(format!("  cannot be put back: {n}"));
        }
    }
    if !cli.quiet {
        for n in &notes {
            eprintln!("csmport: {n}");
        }
    }
    if !args.dry_run && on_site > 0 && !args.yes && !confirm(on_site, kind_arg.as_str())? {
        eprintln!(
            "csmport: nothing deleted; the backup is in {}",
            backup_file.display()
        );
        return Ok(EXIT_OK);
    }
    opts.out = Some(dir.clone());
    let result = run::run(&opts, &target, None).await?;
    add_to_summary(&dir, &backup_file, &not_restorable)?;
    super::output::print_result(cli, &result, sandbox.as_ref());
    if !cli.quiet {
        // On stderr: with --json, stdout holds the summary alone (summary.json has these too).
        eprintln!(
            "  backup    {} (`csmport import {} {}` puts back what can be put back)",
            backup_file.display(),
            kind_arg.as_str(),
            backup_file.display()
        );
    }
    Ok(result.exit_code)
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
    let mut w = csv::Writer::from_path(&tmp).map_err(|e| err(&e))?;
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

/// `delete customer-details|organization-details FILE`: the values of every field a row
/// names are cleared (operation DELETE, whatever the file says). The kind reads each entity's
/// values as it decides, writes those it will clear to `backup.csv` (long layout, UPDATE) and
/// syncs it before any request is sent; a value it cannot read first is not cleared.
async fn values(cli: &Cli, args: &DeleteArgs) -> Result<i32, Error> {
    let kind = args.kind.kind();
    if !args.where_.is_empty() {
        return Err(Error::Usage(
            "--where finds customers by a detail field: it goes with `delete customers`".into(),
        ));
    }
    if args.format == Some(ExportFormat::Xlsx) {
        return Err(Error::Usage(
            "the backup of detail values is written as it goes, as CSV: --format xlsx is for the other kinds".into(),
        ));
    }
    let file = args
        .file
        .clone()
        .expect("clap requires FILE without --where");
    let opts = ImportOptions {
        kind,
        file: file.clone(),
        // Columns that are no detail field (an export's displayName, organizations) are left
        // alone, as for the other kinds: an export can be given as it is.
        input: crate::options::InputOptions {
            ignore_unknown_columns: true,
            ..args.dialect.input_options()
        },
        dry_run: args.dry_run,
        service_desk: args.service_desk.clone(),
        rate: args.rate,
        retries: args.retries,
        delete: true,
        out: args.out.clone(),
        ..ImportOptions::default()
    };
    // The rows, counted for the question (a streaming pass: nothing is kept).
    let mut source = Source::open(&file, &opts.input.read_options())?;
    let mut rows = 0u64;
    while let Some(row) = source.next_row() {
        let row = row.map_err(|e| Error::Usage(format!("{}: {e}", file.display())))?;
        rows += u64::from(!row.is_blank());
    }
    let (target, sandbox) = super::resolve_target(cli).await?;
    let question = format!(
        "Clear the values {rows} rows of {kind} name? Each is backed up before it is cleared.",
        kind = kind.as_str()
    );
    let refusal = format!(
        "{rows} rows of {} would have their values cleared and there is no terminal to ask on: pass --yes (or --dry-run to look first)",
        kind.as_str()
    );
    if !args.dry_run && rows > 0 && !args.yes && !ask(&question, refusal)? {
        eprintln!("csmport: nothing cleared");
        return Ok(EXIT_OK);
    }
    let result = run::run(&opts, &target, None).await?;
    super::output::print_result(cli, &result, sandbox.as_ref());
    if !cli.quiet {
        let s = &result.summary;
        match (&s.backup, s.backup_rows) {
            (Some(b), Some(n)) => eprintln!(
                "  backup    {} in {b} (`csmport import {} {b}` puts them back)",
                super::count(n, "cleared value"),
                kind.as_str()
            ),
            _ => eprintln!("  backup    none: no value was cleared"),
        }
    }
    Ok(result.exit_code)
}

/// `--where`: the customers the search finds whose profiles hold every value, written as an
/// `id` file in the run folder (the run's input, so `resume` reads the same rows).
async fn search(
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
    let path = dir.join("targets.csv");
    write_atomic(&path, &text)?;
    Ok(path)
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(n: u64, kind: &str) -> Result<bool, Error> {
    ask(
        &format!("Delete {n} {kind} from the site? The backup is written."),
        format!(
            "{n} {kind} would be deleted and there is no terminal to ask on: pass --yes to delete them (or --dry-run to look first)"
        ),
    )
}

/// `question` on the terminal, answered yes or no; without a terminal, the refusal (exit 2).
fn ask(question: &str, refusal: String) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Usage(refusal));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let err = |e: std::io::Error| {
        Error::Report(crate::engine::report::ReportError {
            path: path.to_path_buf(),
            source: e,
        })
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// `summary.json` gains where the backup is and what it cannot put back.
fn add_to_summary(
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
