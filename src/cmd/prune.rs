//! `csmport prune [DIR]`: removes old run folders as `engine::prune` chooses them, and says
//! what went, what stayed and why, and the space freed.

use crate::cli::{Cli, PruneArgs};
use crate::engine::prune::{Rules, prune};
use crate::error::Error;

pub fn run(cli: &Cli, args: &PruneArgs) -> Result<i32, Error> {
    let rules = Rules {
        keep: args.keep,
        older_than_days: args.older_than,
        force: args.force,
        dry_run: args.dry_run,
    };
    let done = prune(&args.dir, &rules)?;
    let verb = if done.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut lines = Vec::new();
    for g in &done.removed {
        lines.push(format!(
            "{verb} {} ({})",
            g.dir,
            crate::read::shown_size(g.bytes)
        ));
    }
    for k in &done.kept {
        lines.push(format!("kept {}: {} (--force removes it)", k.dir, k.why));
    }
    lines.push(format!(
        "{} {}, {} {}{}",
        verb,
        super::count(done.removed.len() as u64, "run folder"),
        crate::read::shown_size(done.freed_bytes),
        if done.dry_run { "to free" } else { "freed" },
        if done.kept.is_empty() {
            String::new()
        } else {
            format!("; {} kept", done.kept.len())
        }
    ));
    super::print_summary(cli, &lines.join("\n"), &done);
    Ok(crate::error::EXIT_OK)
}
