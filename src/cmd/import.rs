//! `csmport import KIND FILE` (and several files, or `--plan`): turns the arguments into
//! import options and runs the engine, one run per file in dependency order; prints the
//! summary. `--dry-run` is `validate` with the import's options.

use crate::cli::{self, Cli, ImportArgs};
use crate::engine::run::{self, RunResult};
use crate::error::{EXIT_AUTH_NETWORK, Error};
use crate::kinds::Kind;
use crate::options::ImportOptions;
use crate::sandbox::Sandbox;
use crate::site::client::Target;

use super::{count, plan, print_summary, resolve_target};

pub async fn run(cli: &Cli, args: &ImportArgs) -> Result<i32, Error> {
    let input = &args.input;
    if args.run.dry_run {
        return super::validate::dry_run(cli, args).await;
    }
    let steps = match &input.plan {
        Some(p) => Some(plan::load(p)?),
        None => plan::from_command_line(input.kind(), &input.files),
    };
    let (target, sandbox) = resolve_target(cli).await?;
    let file = input.files.first().cloned().unwrap_or_default();
    let opts = cli::import_options(input.kind(), &file, &input.read, &args.run);
    if let Some(steps) = steps {
        return run_plan(cli, &opts, &target, sandbox.as_ref(), steps).await;
    }
    let result = run::run(&opts, &target, None).await?;
    print_result(cli, &result, sandbox.as_ref());
    Ok(result.exit_code)
}

/// Runs a plan's steps in dependency order against one target (one sandbox for all of them),
/// each into its own folder of one run folder; a step that cannot start is reported and the
/// others still run.
async fn run_plan(
    cli: &Cli,
    base: &ImportOptions,
    target: &Target,
    sandbox: Option<&Sandbox>,
    steps: Vec<plan::Step>,
) -> Result<i32, Error> {
    let steps = plan::ordered(steps);
    let top = run::run_dir(base.out.as_deref(), "plan", jiff::Timestamp::now())?;
    let mut done = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let dir = plan::step_dir(&top, n, step);
        eprintln!(
            "csmport: step {}/{}: {} from {}",
            n + 1,
            steps.len(),
            step.kind.as_str(),
            step.file.display()
        );
        let mut opts = plan::step_options(base, step, dir.clone());
        let known = top.join(crate::kinds::columns::KNOWN_ORGANIZATIONS_FILE);
        if known.exists() {
            opts.known_organizations = Some(known.clone());
        }
        let (summary, error, exit_code) = match run::run(&opts, target, None).await {
            Ok(r) => {
                print_result(cli, &r, sandbox);
                if matches!(step.kind, Kind::Organizations | Kind::OrganizationAccounts) {
                    // Later steps find these by a CRM id even before the site lists them.
                    let successes = dir.join(crate::engine::report::SUCCESSES_FILE);
                    if let Err(e) =
                        crate::kinds::columns::record_known_organizations(&opts, &successes, &known)
                    {
                        eprintln!(
                            "csmport: note: the organizations this step made are not recorded for later steps: {e}"
                        );
                    }
                }
                (Some(r.summary), None, r.exit_code)
            }
            Err(e) => {
                eprintln!("csmport: error: {e}");
                (None, Some(e.to_string()), e.exit_code())
            }
        };
        done.push(plan::StepSummary {
            kind: step.kind.as_str().into(),
            file: step.file.display().to_string(),
            run_dir: dir.display().to_string(),
            exit_code,
            summary,
            error,
        });
    }
    let exit_code = plan::exit_code(&done);
    let summary = plan::PlanSummary {
        run_dir: top.display().to_string(),
        steps: done,
        exit_code,
    };
    plan::write_summary(&top, &summary)?;
    if let Err(e) = crate::engine::html::write(&top) {
        eprintln!("csmport: report.html: {e}");
    }
    let lines: Vec<String> = summary
        .steps
        .iter()
        .map(|s| match (&s.summary, &s.error) {
            (Some(x), _) => format!(
                "  {:<22} {:>6} rows = {} succeeded + {} failed + {} skipped{}",
                s.kind,
                x.counts.rows,
                x.counts.succeeded,
                x.counts.failed,
                x.counts.skipped,
                x.unchanged
                    .filter(|u| *u > 0)
                    .map(|u| format!(" ({u} unchanged)"))
                    .unwrap_or_default()
            ),
            (None, e) => format!("  {:<22} not run: {}", s.kind, e.as_deref().unwrap_or("")),
        })
        .collect();
    let text = format!(
        "plan: {} steps in dependency order\n{}\n  run folder {}",
        summary.steps.len(),
        lines.join("\n"),
        summary.run_dir
    );
    print_summary(cli, &text, &summary);
    Ok(exit_code)
}

/// The first names of a list, and how many more.
fn first_few(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(
            " and {} more (run.log has them all)",
            names.len() - SHOWN
        ));
    }
    text
}

/// The summary of one import run, for people (and as JSON with `--json`).
pub fn print_result(cli: &Cli, r: &RunResult, sandbox: Option<&Sandbox>) {
    let s = &r.summary;
    let c = &s.counts;
    let mut lines = vec![
        match s.operation.as_deref() {
            Some("delete") if r.validated.is_some() => format!(
                "dry run: {} named in {} would be deleted (succeeded); nothing was",
                s.kind, s.input
            ),
            Some("delete") => format!("deleted {} named in {}", s.kind, s.input),
            _ => format!("imported {} from {}", s.kind, s.input),
        },
        format!(
            "  rows      {} = {} succeeded + {} failed + {} skipped{}",
            c.rows,
            c.succeeded,
            c.failed,
            c.skipped,
            c.not_read
                .map(|n| format!(" + {n} not read"))
                .unwrap_or_default()
        ),
    ];
    if let Some(r) = &s.row_range {
        lines.push(format!(
            "  trial     data rows {r} of the file only (--limit / --rows); `--rows` takes the next ones"
        ));
    }
    if c.failed > 0 {
        let f = &c.failed_by_stage;
        let resolve = match f.resolve {
            0 => String::new(),
            n => format!(", {n} resolve"),
        };
        lines.push(format!(
            "  failed    {} read, {} validate{resolve}, {} send, {} task",
            f.read, f.validate, f.send, f.task
        ));
    }
    let left = s
        .columns
        .iter()
        .filter(|u| u.status == crate::map::NOT_IMPORTED)
        .count();
    if left > 0 {
        lines.push(format!(
            "  columns   {left} of {} not imported (summary.json `columns` and report.html say why)",
            s.columns.len()
        ));
    }
    if s.warnings > 0 {
        lines.push(format!(
            "  warnings  {} invalid values left out of rows that were imported: {}/{}",
            s.warnings,
            s.run_dir,
            crate::engine::report::WARNINGS_FILE
        ));
    }
    if let Some(u) = s.unchanged.filter(|u| *u > 0) {
        lines.push(format!(
            "  unchanged {u} rows already on the site as in the file (nothing sent for them)"
        ));
    }
    if s.batches == 0 {
        lines.push(format!("  sent      nothing, in {:.1}s", s.elapsed_s));
    } else {
        lines.push(format!(
            "  sent      {}, {} in {:.1}s ({} rows/s)",
            count(s.batches, "request"),
            count(s.tasks, "task"),
            s.elapsed_s,
            s.rows_per_s
        ));
    }
    if !s.created_organizations.is_empty() {
        lines.push(format!(
            "  created   {}: {}",
            count(s.created_organizations.len() as u64, "organization"),
            first_few(&s.created_organizations)
        ));
    }
    lines.extend(super::change_lines("edited", &s.changed_definitions));
    if let (Some(b), Some(n), None) = (&s.backup, s.backup_rows, &s.operation) {
        lines.push(format!(
            "  backup    {} cleared by DELETE operations kept in {b} (`csmport import {} {b}` puts them back)",
            count(n, "detail value"),
            s.kind
        ));
    }
    if let Some(sb) = sandbox {
        let (cu, o) = sb
            .store
            .lock()
            .map(|st| (st.customers.len(), st.organizations.len()))
            .unwrap_or((0, 0));
        lines.push(format!(
            "  sandbox   now holds {cu} customers and {o} organizations"
        ));
    }
    if let Some(v) = &c.verified {
        lines.push(format!(
            "  verified  {} confirmed, {} drifted, {} missing, {} unverifiable (successes.csv _verified)",
            v.confirmed, v.drifted, v.missing, v.unverifiable
        ));
    }
    lines.push(format!("  run folder {}", s.run_dir));
    let unfinished = r.unfinished();
    // A run with rows open is finished by `resume`; a retry of its report would be refused.
    if c.failed > 0 && unfinished == 0 && s.operation.is_none() {
        lines.push(format!(
            "  failures  {}/failures.csv (fix the rows there and run `csmport retry` on it)",
            s.run_dir
        ));
    }
    if let Some(e) = &r.read_error {
        lines.push(format!("  stopped   reading failed: {e}"));
    }
    if let Some(e) = &r.stopped {
        if r.exit_code == EXIT_AUTH_NETWORK {
            lines.push(format!("  stopped   authentication failed: {e}"));
        } else {
            lines.push(format!("  stopped   {e}"));
        }
    }
    if s.interrupted {
        lines.push("  stopped   interrupted (Ctrl-C)".into());
    }
    if unfinished > 0 {
        lines.push(format!(
            "  resume    {} no outcome yet (not sent, not read, or sent with no answer that settles them): `csmport resume {}` finishes them (same keys, nothing sent twice)",
            if unfinished == 1 { "1 row has".to_string() } else { format!("{unfinished} rows have") },
            s.run_dir
        ));
    }
    print_summary(cli, &lines.join("\n"), s);
}
