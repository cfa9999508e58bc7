//! `csmport import KIND FILE` (and several files, or `--plan`): turns the arguments into
//! import options and runs the engine, one run per file in dependency order; prints the
//! summary. `--dry-run` is `validate` with the import's options.

use crate::cli::{self, Cli, ImportArgs};
use crate::engine::run;
use crate::error::Error;
use crate::options::ImportOptions;
use crate::sandbox::Sandbox;
use crate::site::client::Target;

use super::resolve_target;
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
    let planned = plan::planned(base, &top, &steps);
    plan::record(&top, &planned)?;
    let shown = |r: &run::RunResult| super::output::print_result(cli, r, sandbox);
    let summary = plan::run_all(&top, planned, target, false, &shown).await?;
    super::output::print_plan(cli, &summary);
    Ok(summary.exit_code)
}
