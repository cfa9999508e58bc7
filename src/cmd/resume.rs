//! `csmport resume RUN_DIR`: finishes an import from its run journal — after Ctrl-C, a crash,
//! kill -9 or power loss, or a run that ended with rows open (a task still running, an answer
//! lost, the site out of task slots). Chunks with every outcome recorded are reported as they
//! were, tasks already submitted are polled again, batches that may have been sent go again
//! under their recorded key and body, and the rest are decided and sent as new. The options
//! come from the journal; the target (never stored: credentials) from flags and environment,
//! as for import. Neighbours: `engine::journal` (what is recorded), `engine::run` (the run).

use std::path::Path;
use std::sync::Arc;

use crate::cli::{Cli, ResumeArgs};
use crate::config;
use crate::engine::journal::{InputCheck, InputIdentity, Journal, RunMeta};
use crate::engine::run::{self, Resumed};
use crate::error::Error;
use crate::options::ImportOptions;

pub async fn run(cli: &Cli, args: &ResumeArgs) -> Result<i32, Error> {
    let dir = &args.run_dir;
    let (journal, meta) = Journal::open(dir)?;
    let mut opts = options(dir, &meta)?;
    if let Some(sd) = &args.service_desk {
        // A way to read customers back by email that the first run did not have.
        opts.service_desk = Some(sd.clone());
    }
    check_input(dir, &journal, &meta)?;
    if cli.sandbox {
        return Err(Error::Usage(format!(
            "{}: a run is resumed against the site it wrote to ({}, cloud {}); an in-process --sandbox starts empty. Give that site's target (flags or CSM_* environment) without --sandbox",
            dir.display(),
            meta.base_url,
            meta.cloud_id
        )));
    }
    let target = config::target(&cli.target)?;
    if (target.base_url.as_str(), target.cloud_id.as_str())
        != (meta.base_url.as_str(), meta.cloud_id.as_str())
    {
        return Err(Error::Usage(format!(
            "{}: the run wrote to {} (cloud {}), not {} (cloud {}); resume it against the same site",
            dir.display(),
            meta.base_url,
            meta.cloud_id,
            target.base_url,
            target.cloud_id
        )));
    }
    let chunks = journal.chunks()?;
    let resumed = Resumed {
        journal: Arc::new(journal),
        chunks,
    };
    let result = run::run(&opts, &target, Some(resumed)).await?;
    super::output::print_result(cli, &result, None);
    Ok(result.exit_code)
}

/// The import options the journal recorded, writing into this folder (wherever it is now).
fn options(dir: &Path, meta: &RunMeta) -> Result<ImportOptions, Error> {
    let mut o = ImportOptions::from_journal(&meta.options).map_err(|e| {
        Error::Usage(format!(
            "{}: the run journal's import options cannot be read ({e}); resume it with the csmport that started it",
            dir.display()
        ))
    })?;
    o.out = Some(dir.to_path_buf());
    o.dry_run = false;
    Ok(o)
}

/// The input must be the very file the run began with: the journal's chunks are row ranges of
/// it, and a batch resent under its key must be the batch first sent. A run stopped before
/// its hash was recorded is matched by size and modification time, and the hash recorded now.
fn check_input(dir: &Path, journal: &Journal, meta: &RunMeta) -> Result<(), Error> {
    let was = &meta.input;
    let now = InputIdentity::of(&was.path).map_err(|e| {
        Error::Usage(format!(
            "{}: the run's input {} cannot be read ({e}); resume needs that same file",
            dir.display(),
            was.path.display()
        ))
    })?;
    match was.check(&now) {
        InputCheck::Same => Ok(()),
        InputCheck::SameByStat => Ok(journal.record_input_sha256(&now.sha256)?),
        InputCheck::Changed(how) => Err(Error::Usage(format!(
            "{}: the input {} changed since the run began ({how}); resuming would send rows the journal does not describe. Put the original file back, or import the new one as a new run",
            dir.display(),
            was.path.display(),
        ))),
    }
}
