//! `csmport delete KIND FILE`: finds every thing the file's rows name on the site, writes the
//! backup (`backup.csv` or `.xlsx` in the import template's columns, then `backup.ids`) into
//! the run folder, asks (or takes `--yes`), then runs the engine with the delete description
//! (`kinds::deletes`), journaled and resumable like an import. `--dry-run` stops after the
//! backup, with the engine's reports of what would be deleted.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use crate::cli::{Cli, DeleteArgs};
use crate::engine::{backup, run};
use crate::error::{EXIT_OK, Error};
use crate::export::write::ExportFormat;
use crate::kinds::Kind;
use crate::options::ImportOptions;
use crate::read::Source;

pub async fn run(cli: &Cli, args: &DeleteArgs) -> Result<i32, Error> {
    let kind_arg = args.kind;
    if matches!(kind_arg, Kind::CustomerDetails | Kind::OrganizationDetails) {
        return values(cli, args).await;
    }
    crate::options::check_rate(args.rate)?;
    let query = crate::export::fetch::parse_where(&args.where_).map_err(Error::Usage)?;
    if !query.is_empty() && kind_arg != Kind::Customers {
        return Err(Error::Usage(
            "--where finds customers by a detail field: it goes with `delete customers`".into(),
        ));
    }
    let (target, sandbox) = super::resolve_target(cli).await?;
    let mut opts = ImportOptions {
        kind: kind_arg,
        input: args.dialect.input_options(),
        dry_run: args.dry_run,
        service_desk: args.service_desk.clone(),
        rate: args.rate,
        retries: args.retries,
        delete: true,
        ..ImportOptions::default()
    };
    let progress = Arc::new(crate::engine::progress::Progress::new(0));
    let site = opts.site(&target, progress.clone());
    // A folder this command makes goes again if the delete is refused before it begins.
    let made = args.out.as_ref().is_none_or(|d| !d.exists());
    let dir = run::run_dir(
        args.out.as_deref(),
        &format!("delete-{}", kind_arg.as_str()),
        jiff::Timestamp::now(),
    )?;
    let pass = async {
        opts.file = match &args.file {
            Some(f) => f.clone(),
            None => backup::search(&site, &query, &dir).await?,
        };
        backup::back_up(&site, &opts, args.format.unwrap_or(ExportFormat::Csv), &dir).await
    };
    // Ctrl-C in the backup pass: nothing was deleted, and the folder says so.
    let backed = tokio::select! {
        b = pass => b?,
        () = crate::engine::interrupt::first() => {
            progress.finish();
            backup::interrupted(&dir, kind_arg.as_str())?;
            crate::errln!(
                "csmport: interrupted during the backup pass: nothing was deleted ({})",
                dir.display()
            );
            return Ok(crate::error::EXIT_INTERRUPTED);
        }
    };
    progress.finish();
    let (on_site, backup_file) = (backed.on_site, backed.file.clone());
    let notes = backed.notes(kind_arg, &opts.file.display().to_string());
    if !cli.quiet {
        for n in &notes {
            crate::errln!("csmport: {n}");
        }
    }
    let asked = if !args.dry_run && on_site > 0 && !args.yes {
        match confirm(on_site, kind_arg.as_str()) {
            Ok(yes) => Some(yes),
            Err(e) => {
                if made {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(e);
            }
        }
    } else {
        None
    };
    if asked == Some(false) {
        crate::errln!(
            "csmport: nothing deleted; the backup is in {}",
            backup_file.display()
        );
        return Ok(EXIT_OK);
    }
    opts.out = Some(dir.clone());
    let result = run::run(&opts, &target, None).await?;
    backup::add_to_summary(&dir, &backup_file, &backed.not_restorable)?;
    // The page is written again: it names the backup and what it cannot put back.
    if let Err(e) = crate::engine::html::write(&dir) {
        crate::errln!("csmport: report.html: {e}");
    }
    super::output::print_result(cli, &result, sandbox.as_ref());
    if !cli.quiet {
        // On stderr: with --json, stdout holds the summary alone (summary.json has these too).
        crate::errln!(
            "  backup    {} (`csmport import {} {}` puts back what can be put back)",
            backup_file.display(),
            kind_arg.as_str(),
            backup_file.display()
        );
    }
    Ok(result.exit_code)
}

/// `delete customer-details|organization-details FILE`: the values of every field a row
/// names are cleared (operation DELETE, whatever the file says). The kind reads each entity's
/// values as it decides, writes those it will clear to `backup.csv` (long layout, UPDATE) and
/// syncs it before any request is sent; a value it cannot read first is not cleared.
async fn values(cli: &Cli, args: &DeleteArgs) -> Result<i32, Error> {
    let kind = args.kind;
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
        crate::errln!("csmport: nothing cleared");
        return Ok(EXIT_OK);
    }
    let result = run::run(&opts, &target, None).await?;
    super::output::print_result(cli, &result, sandbox.as_ref());
    if !cli.quiet {
        let s = &result.summary;
        match (&s.backup, s.backup_rows) {
            (Some(b), Some(n)) => crate::errln!(
                "  backup    {} in {b} (`csmport import {} {b}` puts them back)",
                super::count(n, "cleared value"),
                kind.as_str()
            ),
            _ => crate::errln!("  backup    none: no value was cleared"),
        }
    }
    Ok(result.exit_code)
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(n: u64, kind: &str) -> Result<bool, Error> {
    ask(
        &format!("Delete {n} {kind} from the site? The backup is written."),
        format!(
            "{n} {kind} would be deleted and there is no terminal to ask on: pass --yes to delete them (or --dry-run to look first); nothing was deleted, and the run folder with its backup is not kept"
        ),
    )
}

/// `question` on the terminal, answered yes or no; without a terminal, the refusal (exit 2).
fn ask(question: &str, refusal: String) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::Usage(refusal));
    }
    crate::say::write_err(&format!("{question} [y/N] "));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
