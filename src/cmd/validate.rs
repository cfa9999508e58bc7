//! `csmport validate KIND FILE` (and `import --dry-run`): read, map and check without sending
//! anything; print the dialect report; write `failures.csv` and `summary.json` as import does.
//! The profile kinds are checked offline as fast as the reader goes (`engine::intake`); the
//! kinds decided against what the site holds run their import as a dry run (the engine reads
//! the site, decides every row, and stops before the first write).

use std::path::Path;

use futures_util::future::BoxFuture;

use crate::cli::{self, Cli, ImportArgs, InputArgs, RunArgs, ValidateArgs};
use crate::engine::report;
use crate::engine::validate::{self, PlanValidation, Sites};
use crate::error::Error;
use crate::options::ImportOptions;
use crate::sandbox::Sandbox;
use crate::site::client::Target;

pub use crate::engine::report::{ValidateSummary, write_validate_summary as write_summary};

/// `csmport validate`: the import's default options.
pub async fn command(cli: &Cli, args: &ValidateArgs) -> Result<i32, Error> {
    let input = &args.input;
    let opts = cli::import_options(
        input.kind(),
        Path::new(""),
        &input.read,
        &RunArgs {
            dry_run: true,
            ..RunArgs::default()
        },
    );
    validate(cli, input, &opts).await
}

/// `csmport import --dry-run`: the import's own options.
pub async fn dry_run(cli: &Cli, args: &ImportArgs) -> Result<i32, Error> {
    let input = &args.input;
    let opts = cli::import_options(input.kind(), Path::new(""), &input.read, &args.run);
    validate(cli, input, &opts).await
}

/// Every form `import` takes: one kind and its files, `KIND FILE` pairs, or `--plan`.
async fn validate(cli: &Cli, input: &InputArgs, opts: &ImportOptions) -> Result<i32, Error> {
    let sites = Lazy {
        cli,
        cell: Default::default(),
    };
    let steps = match &input.plan {
        Some(p) => Some(crate::engine::steps::load(p)?),
        None => crate::engine::steps::from_command_line(input.kind(), &input.files),
    };
    if let Some(steps) = steps
        && (input.plan.is_some() || steps.iter().any(|s| s.kind != steps[0].kind))
    {
        let summary = validate::validate_plan(&sites, opts, steps).await?;
        return Ok(print_plan(cli, &summary));
    }
    for f in &input.files {
        validate::missing_input(f)?;
    }
    let results = validate::validate_kind(&sites, &input.files, opts, &[]).await?;
    let mut code = 0;
    let mut summaries = Vec::new();
    for r in results {
        match r {
            Ok(s) => {
                code = code.max(s.exit_code);
                summaries.push(s);
            }
            Err(e) => {
                crate::errln!("csmport: error: {e}");
                code = code.max(e.exit_code());
            }
        }
    }
    let text = summaries
        .iter()
        .map(describe)
        .collect::<Vec<_>>()
        .join("\n");
    if cli.session.json {
        crate::errln!("{text}");
        let json = match summaries.as_slice() {
            [one] if input.files.len() == 1 => serde_json::to_string_pretty(one),
            many => serde_json::to_string_pretty(many),
        };
        crate::outln!("{}", json.expect("summary serializes"));
    } else if !text.is_empty() {
        crate::outln!("{text}");
    }
    Ok(code)
}

/// A validated plan, printed: each step's summary, then the plan's.
fn print_plan(cli: &Cli, summary: &PlanValidation) -> i32 {
    let mut text = Vec::new();
    for s in &summary.steps {
        match (&s.summary, &s.error) {
            (Some(x), _) => text.push(describe(x)),
            (None, Some(e)) => crate::errln!("csmport: error: {e}"),
            (None, None) => {}
        }
    }
    for n in &summary.notes {
        crate::errln!("csmport: note: {n}");
    }
    let lines: Vec<String> = summary
        .steps
        .iter()
        .map(|s| match (&s.summary, &s.error) {
            (Some(x), _) => format!(
                "  {:<22} {:>6} rows = {} valid + {} invalid + {} skipped",
                s.kind, x.counts.rows, x.valid, x.counts.failed, x.counts.skipped
            ),
            (None, e) => format!("  {:<22} not read: {}", s.kind, e.as_deref().unwrap_or("")),
        })
        .collect();
    text.push(format!(
        "validated plan: {} steps in dependency order (each against the site as it is now and what the earlier steps make)\n{}\n  run folder {}",
        summary.steps.len(),
        lines.join("\n"),
        summary.run_dir
    ));
    let text = text.join("\n");
    if cli.session.json {
        crate::errln!("{text}");
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(summary).expect("summary serializes")
        );
    } else {
        crate::outln!("{text}");
    }
    summary.exit_code
}

/// The site, resolved when a check first needs it and kept (with its in-process sandbox) until
/// the command ends.
struct Lazy<'a> {
    cli: &'a Cli,
    cell: tokio::sync::OnceCell<(Target, Option<Sandbox>)>,
}

impl Sites for Lazy<'_> {
    fn target(&self) -> BoxFuture<'_, Result<Target, Error>> {
        Box::pin(async move {
            let (target, _) = self
                .cell
                .get_or_try_init(|| super::resolve_target(self.cli))
                .await?;
            Ok(target.clone())
        })
    }
}

/// The human summary: the dialect report, then the counts.
pub fn describe(s: &ValidateSummary) -> String {
    let c = &s.counts;
    let mut lines = vec![
        format!("validated {} from {}", s.kind, s.input),
        format!("  read      {}", s.dialect.describe(c.rows)),
    ];
    for n in &s.dialect.notes {
        lines.push(format!("  note      {n}"));
    }
    if let Some(r) = &s.row_range {
        lines.push(format!(
            "  trial     data rows {r} of the file only (--limit / --rows)"
        ));
    }
    lines.push(format!(
        "  rows      {} = {} valid + {} invalid + {} skipped",
        c.rows, s.valid, c.failed, c.skipped
    ));
    if c.failed > 0 {
        let resolve = match c.failed_by_stage.resolve {
            0 => String::new(),
            n => format!(", {n} resolve"),
        };
        lines.push(format!(
            "  invalid   {} read, {} validate{resolve}",
            c.failed_by_stage.read, c.failed_by_stage.validate
        ));
        lines.push(format!("  failures  {}/failures.csv", s.run_dir));
    }
    if s.warnings > 0 {
        lines.push(format!(
            "  warnings  {} invalid values would be left out of their rows: {}/{}",
            s.warnings,
            s.run_dir,
            report::WARNINGS_FILE
        ));
    }
    lines.extend(super::change_lines(
        "would edit",
        &s.would_change_definitions,
    ));
    if let Some(e) = &s.read_error {
        lines.push(format!("  stopped   reading failed: {e}"));
    }
    lines.push(format!("  run folder {}", s.run_dir));
    lines.join("\n")
}
