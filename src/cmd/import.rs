//! `csmport import KIND FILE` (and several files, or `--plan`): turns the arguments into
//! import options and runs the engine, one run per file in dependency order; prints the
//! summary. `--dry-run` is `validate` with the import's options.

use crate::cli::{self, Cli, ImportArgs};
use crate::engine::run;
use crate::error::Error;
use crate::kinds::Kind;
use crate::options::ImportOptions;
use crate::sandbox::Sandbox;
use crate::site::client::Target;

use super::{print_summary, resolve_target};
use crate::engine::steps as plan;

pub async fn run(cli: &Cli, args: &ImportArgs) -> Result<i32, Error> {
    let input = &args.input;
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
    super::output::print_result(cli, &result, sandbox.as_ref());
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
        crate::errln!(
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
                super::output::print_result(cli, &r, sandbox);
                if matches!(step.kind, Kind::Organizations | Kind::OrganizationAccounts) {
                    // Later steps find these by a CRM id even before the site lists them.
                    let successes = dir.join(crate::engine::report::SUCCESSES_FILE);
                    if let Err(e) = crate::kinds::columns::record_known_organizations(
                        opts.for_kind(),
                        &successes,
                        &known,
                    ) {
                        crate::errln!(
                            "csmport: note: the organizations this step made are not recorded for later steps: {e}"
                        );
                    }
                }
                (Some(r.summary), None, r.exit_code)
            }
            Err(e) => {
                crate::errln!("csmport: error: {e}");
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
        crate::errln!("csmport: report.html: {e}");
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
