//! `csmport status [RUN_DIR]`: what a run folder says about its run, read from its journal and
//! reports only (never the site): the kind and input (and whether the input changed since),
//! rows by outcome, rows still open, the tasks and their last known states, what `resume`
//! would do next and where the reports are, as `engine::status` reads it; this file prints it.

use std::path::Path;

use super::count;
use crate::cli::{Cli, StatusArgs};
use crate::engine::status::{Status, latest_run, plan_status, plan_steps, status_of};
use crate::error::Error;

/// Where runs go when `--out` is not given (`engine::run`).
const RUNS_DIR: &str = "csmport-runs";
/// Live tasks listed one by one; the rest are counted.
const LISTED_TASKS: usize = 10;

pub fn run(cli: &Cli, args: &StatusArgs) -> Result<i32, Error> {
    let dir = match &args.run_dir {
        Some(d) => d.clone(),
        None => latest_run(Path::new(RUNS_DIR))?,
    };
    if let Some(steps) = crate::engine::steps::recorded(&dir)? {
        return plan(cli, &dir, steps);
    }
    let steps = plan_steps(&dir);
    if !steps.is_empty() {
        // A plan's folder: one status per step, in order.
        let mut texts = Vec::new();
        let mut all = Vec::new();
        for step in &steps {
            let s = status_of(step)?;
            texts.push(s.text());
            all.push(s);
        }
        super::print_summary(cli, &texts.join("\n\n"), &all);
        return Ok(0);
    }
    let s = status_of(&dir)?;
    super::print_summary(cli, &s.text(), &s);
    Ok(0)
}

/// A plan's folder: each step in the order the plan runs them, started or not.
fn plan(cli: &Cli, dir: &Path, steps: Vec<crate::engine::steps::Planned>) -> Result<i32, Error> {
    let total = steps.len();
    let mut texts = vec![format!(
        "plan {} ({})",
        dir.display(),
        count(total as u64, "step")
    )];
    let all = plan_status(dir, steps)?;
    for (n, step) in all.iter().enumerate() {
        let head = format!("step {}/{total}: {} from {}", n + 1, step.kind, step.file);
        texts.push(match (&step.status, &step.refused) {
            (Some(s), _) => format!("{head}: {}\n{}", step.state.replace('_', " "), s.text()),
            (None, Some(why)) => format!(
                "{head}: refused, nothing sent: {}",
                csmport_api::text::one_line(why)
            ),
            (None, None) => format!("{head}: not started"),
        });
    }
    super::print_summary(cli, &texts.join("\n\n"), &all);
    Ok(0)
}

impl Status {
    pub fn text(&self) -> String {
        let r = &self.rows;
        let mut lines = vec![format!("run {}", self.run_dir)];
        let input = match (self.input_state.as_str(), &self.input_change) {
            ("unchanged", _) => "unchanged since the run began".to_string(),
            ("changed", Some(how)) => format!("CHANGED since the run began: {how}"),
            ("unreadable", Some(e)) => format!("cannot be read now: {e}"),
            _ => "not recorded".to_string(),
        };
        lines.push(format!(
            "  kind      {} from {} ({input})",
            self.kind, self.input
        ));
        if let (Some(t), Some(at)) = (&self.target, &self.started_at) {
            lines.push(format!("  target    {t}, started {at}"));
        }
        // In pipeline order, then any stage this build does not know.
        let order = ["read", "validate", "resolve", "send", "task"];
        let mut by_stage: Vec<(&String, &u64)> = r.failed_by_stage.iter().collect();
        by_stage.sort_by_key(|(s, _)| order.iter().position(|o| o == s).unwrap_or(order.len()));
        let stages: Vec<String> = by_stage.iter().map(|(s, n)| format!("{n} {s}")).collect();
        lines.push(format!(
            "  rows      {} succeeded, {} failed{}, {} skipped, {} open",
            r.succeeded,
            r.failed,
            if stages.is_empty() {
                String::new()
            } else {
                format!(" ({})", stages.join(", "))
            },
            r.skipped,
            r.open
        ));
        if r.chunks > 0 {
            lines.push(format!(
                "  planned   rows 1-{} in {}, {} done",
                r.planned,
                count(r.chunks, "chunk"),
                r.chunks_done
            ));
        }
        let t = &self.tasks;
        if !t.batches_by_state.is_empty() {
            let states: Vec<String> = t
                .batches_by_state
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            lines.push(format!(
                "  tasks     {} submitted; batches {}",
                t.submitted,
                states.join(", ")
            ));
        }
        for l in t.live.iter().take(LISTED_TASKS) {
            lines.push(format!(
                "  running   task {} (rows {}-{}, {}){}",
                l.task_id,
                l.first_row,
                l.last_row,
                count(l.rows, "row"),
                l.last_known
                    .as_ref()
                    .map(|a| format!(", last known: {a}"))
                    .unwrap_or_default()
            ));
        }
        if t.live.len() > LISTED_TASKS {
            lines.push(format!(
                "  running   and {} more",
                count((t.live.len() - LISTED_TASKS) as u64, "task")
            ));
        }
        match &self.ended {
            Some(e) => lines.push(format!(
                "  ended     {}, exit {}{}",
                e.finished_at,
                e.exit_code,
                if e.interrupted { ", interrupted" } else { "" }
            )),
            None if self.target.is_some() => lines.push(
                "  ended     not yet: no summary (the run was stopped, or is still going)".into(),
            ),
            None => {}
        }
        lines.push(format!("  resume    {}", self.resume.next));
        if !self.reports.is_empty() {
            let names: Vec<&str> = self
                .reports
                .iter()
                .map(|r| {
                    Path::new(r)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or(r)
                })
                .collect();
            lines.push(format!(
                "  reports   {} (in the run folder)",
                names.join(", ")
            ));
        }
        lines.join("\n")
    }
}
