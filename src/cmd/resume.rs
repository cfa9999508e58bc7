//! `csmport resume RUN_DIR`: finishes an import from its run journal — after Ctrl-C, a crash,
//! kill -9 or power loss, or a run that ended with rows open (a task still running, an answer
//! lost, the site out of task slots). Chunks with every outcome recorded are reported as they
//! were, tasks already submitted are polled again, batches that may have been sent go again
//! under their recorded key and body, and the rest are decided and sent as new. The options
//! come from the journal; the target (never stored: credentials) from flags and environment,
//! as for import; a plan's folder goes on step by step (`engine::steps`). Neighbours:
//! `engine::journal` (what is recorded), `engine::run` (the run).

use crate::cli::{Cli, ResumeArgs};
use crate::config;
use crate::engine::run::{self, Resumed};
use crate::error::Error;

pub async fn run(cli: &Cli, args: &ResumeArgs) -> Result<i32, Error> {
    let dir = &args.run_dir;
    if let Some(steps) = crate::engine::steps::recorded(dir)? {
        return plan(cli, args, steps).await;
    }
    let (mut opts, resumed) = Resumed::open(dir)?;
    if let Some(sd) = &args.service_desk {
        // A way to read customers back by email that the first run did not have.
        opts.service_desk = Some(sd.clone());
    }
    if cli.sandbox {
        let (base_url, cloud_id) = &resumed.site;
        return Err(Error::Usage(format!(
            "{}: a run is resumed against the site it wrote to ({base_url}, cloud {cloud_id}); an in-process --sandbox starts empty. Give that site's target (flags or CSM_* environment) without --sandbox",
            dir.display(),
        )));
    }
    let target = target_for(cli, Some(&resumed.site))?;
    resumed.check_site(dir, &target)?;
    let result = run::run(&opts, &target, Some(resumed)).await?;
    super::output::print_result(cli, &result, None);
    Ok(result.exit_code)
}

/// A plan's folder: each step goes on from its journal, or starts if it had not.
async fn plan(
    cli: &Cli,
    args: &ResumeArgs,
    mut steps: Vec<crate::engine::steps::Planned>,
) -> Result<i32, Error> {
    if cli.sandbox {
        return Err(Error::Usage(format!(
            "{}: a plan is resumed against the site it wrote to; an in-process --sandbox starts empty. Give that site's target (flags or CSM_* environment) without --sandbox",
            args.run_dir.display()
        )));
    }
    if let Some(sd) = &args.service_desk {
        for s in &mut steps {
            s.opts.service_desk = Some(sd.clone());
        }
    }
    let target = target_for(cli, None)?;
    let shown = |r: &run::RunResult| super::output::print_result(cli, r, None);
    let summary =
        crate::engine::steps::run_all(&args.run_dir, steps, &target, true, &shown).await?;
    super::output::print_plan(cli, &summary);
    Ok(summary.exit_code)
}

/// The target from flags and environment; without one, the error names the site the run
/// wrote to (an in-process sandbox cannot resume it, so it is not suggested).
fn target_for(
    cli: &Cli,
    site: Option<&(String, String)>,
) -> Result<crate::site::client::Target, Error> {
    let wrote = site
        .map(|(url, cloud)| format!(" (the run wrote to {url}, cloud {cloud})"))
        .unwrap_or_default();
    config::target_or(
        &cli.target,
        &format!(": resume goes on against the site the run wrote to{wrote}"),
    )
}
