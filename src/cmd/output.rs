//! What a run of the engine prints: the summary of one run, for people (and as JSON with
//! `--json`). Shared by the commands that run it (import, resume, retry, delete); not a command.

use crate::cli::Cli;
use crate::engine::run::RunResult;
use crate::sandbox::Sandbox;

use super::{count, print_summary};

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
            Some("delete") if s.interrupted => format!(
                "delete of {} named in {} interrupted ({} deleted)",
                s.kind, s.input, c.succeeded
            ),
            Some("delete") => format!("deleted {} named in {}", s.kind, s.input),
            _ if s.interrupted => format!("import of {} from {} interrupted", s.kind, s.input),
            _ => format!("imported {} from {}", s.kind, s.input),
        },
        format!(
            "  rows      {} = {} succeeded + {} failed + {} skipped{}{}",
            c.rows,
            c.succeeded,
            c.failed,
            c.skipped,
            match (c.open, c.blank) {
                (0, 0) => String::new(),
                (open, 0) => format!(" ({open} of them open: no outcome yet)"),
                (0, blank) => format!(" ({} with every cell empty)", count(blank, "row")),
                (open, blank) => format!(
                    " ({open} of them open: no outcome yet; {} with every cell empty)",
                    count(blank, "row")
                ),
            },
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
            "  warnings  {} invalid values left out of their rows: {}/{}",
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
    // A resumed run: the whole run's figures, then this attempt's.
    let this = s.attempts.last().filter(|_| s.attempts.len() > 1).map(|a| {
        let sent = if a.batches == 0 {
            "nothing".to_string()
        } else {
            format!(
                "{}, {}",
                count(a.batches, "request"),
                count(a.tasks, "task")
            )
        };
        format!(
            " (over {} attempts; this one sent {sent} in {:.1}s)",
            s.attempts.len(),
            a.elapsed_s.unwrap_or_default()
        )
    });
    if s.batches == 0 {
        lines.push(format!(
            "  sent      nothing, in {:.1}s{}",
            s.elapsed_s,
            this.unwrap_or_default()
        ));
    } else {
        lines.push(format!(
            "  sent      {}, {} in {:.1}s ({} rows/s){}",
            count(s.batches, "request"),
            count(s.tasks, "task"),
            s.elapsed_s,
            s.rows_per_s,
            this.unwrap_or_default()
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
        lines.push(format!("  stopped   {e}"));
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

/// A plan's summary: a line per step, in the order they ran (or would have).
pub fn print_plan(cli: &Cli, summary: &crate::engine::steps::PlanSummary) {
    use crate::engine::steps::StepState;
    let lines: Vec<String> = summary
        .steps
        .iter()
        .map(|s| match (&s.summary, &s.error) {
            _ if s.state == StepState::NotStarted => {
                format!("  {:<22} not started: the plan was interrupted", s.kind)
            }
            (Some(x), _) => format!(
                "  {:<22} {:>6} rows = {} succeeded + {} failed + {} skipped{}{}",
                s.kind,
                x.counts.rows,
                x.counts.succeeded,
                x.counts.failed,
                x.counts.skipped,
                x.unchanged
                    .filter(|u| *u > 0)
                    .map(|u| format!(" ({u} unchanged)"))
                    .unwrap_or_default(),
                if s.state == StepState::Interrupted {
                    " (interrupted: rows open)"
                } else {
                    ""
                }
            ),
            (None, e) => format!("  {:<22} not run: {}", s.kind, e.as_deref().unwrap_or("")),
        })
        .collect();
    let mut text = format!(
        "plan: {} steps in dependency order\n{}\n  run folder {}",
        summary.steps.len(),
        lines.join("\n"),
        summary.run_dir
    );
    if summary.exit_code == crate::error::EXIT_INTERRUPTED {
        text.push_str(&format!(
            "\n  resume    `csmport resume {}` goes on from the interrupted step",
            summary.run_dir
        ));
    }
    super::print_summary(cli, &text, summary);
}
