//! `csmport validate KIND FILE` (and `import --dry-run`): read, map and check without sending
//! anything; print the dialect report; write `failures.csv` and `summary.json` as import does.
//! The profile kinds are checked offline as fast as the reader goes (`engine::intake`); the
//! kinds decided against what the site holds run their import as a dry run (the engine reads
//! the site, decides every row, and stops before the first write).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{self, Cli, ImportArgs, InputArgs, RunArgs, ValidateArgs};
use crate::engine::intake;
use crate::engine::report;
use crate::engine::run;
use crate::engine::validation::{
    Earlier, offline, promised_fields, record_promised_organizations, sub_dir,
};
use crate::error::Error;
use crate::kinds::Kind;
use crate::kinds::columns;
use crate::map::RecordKind;
use crate::options::{ImportOptions, InputOptions};
use crate::schema::{FieldDef, Schema};
use crate::site::client::Client;

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
    let steps = match &input.plan {
        Some(p) => Some(crate::engine::steps::load(p)?),
        None => crate::engine::steps::from_command_line(input.kind(), &input.files),
    };
    if let Some(steps) = steps
        && (input.plan.is_some() || steps.iter().any(|s| s.kind != steps[0].kind))
    {
        return validate_plan(cli, opts, steps).await;
    }
    for f in &input.files {
        missing_input(f)?;
    }
    let results = validate_kind(cli, &input.files, opts, &[]).await?;
    let mut code = 0;
    let mut summaries = Vec::new();
    for r in results {
        match r {
            Ok(s) => {
                code = code.max(s.exit_code);
                summaries.push(s);
            }
            Err(e) => {
                eprintln!("csmport: error: {e}");
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
        eprintln!("{text}");
        let json = match summaries.as_slice() {
            [one] if input.files.len() == 1 => serde_json::to_string_pretty(one),
            many => serde_json::to_string_pretty(many),
        };
        println!("{}", json.expect("summary serializes"));
    } else if !text.is_empty() {
        println!("{text}");
    }
    Ok(code)
}

/// A file that is not there stops the command before a run folder is made for it.
fn missing_input(file: &Path) -> Result<(), Error> {
    match std::fs::metadata(file) {
        Ok(_) => Ok(()),
        Err(source) => Err(Error::Read(crate::read::ReadError::Open {
            path: file.to_path_buf(),
            source,
        })),
    }
}

/// One kind's files, validated (offline, or as a dry run of the import for the kinds decided
/// against the site).
async fn validate_kind(
    cli: &Cli,
    files: &[PathBuf],
    opts: &ImportOptions,
    promised: &[(String, FieldDef)],
) -> Result<Vec<Result<ValidateSummary, Error>>, Error> {
    match intake::record_kind(opts.kind) {
        Some(rk) if !opts.kind.is_decided_on_site() => {
            let client = if opts.input.schema.is_some() || is_account(rk) {
                None
            } else {
                let (target, _sandbox) = super::resolve_target(cli).await?;
                Some(Client::new(
                    &target,
                    opts.rate,
                    crate::site::client::retry::Policy::default(),
                    std::sync::Arc::new(crate::site::client::Silent),
                ))
            };
            let entity = if rk == RecordKind::Organizations {
                "organization"
            } else {
                "customer"
            };
            let promised: Vec<FieldDef> = promised
                .iter()
                .filter(|(e, _)| e == entity)
                .map(|(_, f)| f.clone())
                .collect();
            offline(
                opts.kind,
                rk,
                files,
                &opts.input,
                opts.out.as_deref(),
                client.as_ref(),
                Earlier {
                    fields: &promised,
                    organizations: opts.known_organizations.as_deref(),
                },
            )
            .await
        }
        _ => decided_on_site(cli, files, opts).await,
    }
}

/// What one step of a validated plan ended with.
#[derive(Debug, Clone, Serialize)]
pub struct StepValidation {
    pub kind: String,
    pub file: String,
    pub run_dir: String,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<ValidateSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanValidation {
    pub run_dir: String,
    pub steps: Vec<StepValidation>,
    pub exit_code: i32,
}

/// Several kinds (`KIND FILE` pairs or `--plan`): each file validated in dependency order
/// into its own folder of one run folder, as an import of the plan would lay them out; a file
/// that cannot be read is reported and the others still run. Each file is checked against the
/// site as it is now: what an earlier step would create is not there yet.
async fn validate_plan(
    cli: &Cli,
    base: &ImportOptions,
    steps: Vec<crate::engine::steps::Step>,
) -> Result<i32, Error> {
    let steps = crate::engine::steps::ordered(steps);
    let promised = promised_fields(&steps);
    let top = run::run_dir(base.out.as_deref(), "validate-plan", jiff::Timestamp::now())?;
    // What the organizations steps will make, for the steps after them that name
    // organizations by a CRM id (the site does not have them yet).
    let known = top.join(columns::KNOWN_ORGANIZATIONS_FILE);
    let mut done = Vec::new();
    let mut text = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let dir = crate::engine::steps::step_dir(&top, n, step);
        let mut opts = crate::engine::steps::step_options(base, step, dir.clone());
        opts.dry_run = true;
        if known.exists() {
            opts.known_organizations = Some(known.clone());
        }
        let result = match missing_input(&step.file) {
            Ok(()) => validate_kind(cli, std::slice::from_ref(&step.file), &opts, &promised)
                .await
                .and_then(|mut r| {
                    r.pop()
                        .unwrap_or_else(|| Err(Error::Usage("no file".into())))
                }),
            Err(e) => Err(e),
        };
        if step.kind == Kind::Organizations && result.is_ok() {
            let schema = organization_schema(cli, &opts, &promised).await;
            if let Err(e) = record_promised_organizations(&opts, schema, &known) {
                eprintln!(
                    "csmport: note: the organizations of {} are not known to the later steps: {e}",
                    step.file.display()
                );
            }
        }
        let (summary, error, exit_code) = match result {
            Ok(s) => {
                text.push(describe(&s));
                let code = s.exit_code;
                (Some(s), None, code)
            }
            Err(e) => {
                eprintln!("csmport: error: {e}");
                (None, Some(e.to_string()), e.exit_code())
            }
        };
        done.push(StepValidation {
            kind: step.kind.as_str().into(),
            file: step.file.display().to_string(),
            run_dir: dir.display().to_string(),
            exit_code,
            summary,
            error,
        });
    }
    let exit_code = done.iter().map(|s| s.exit_code).max().unwrap_or(0);
    let summary = PlanValidation {
        run_dir: top.display().to_string(),
        steps: done,
        exit_code,
    };
    let path = top.join(report::SUMMARY_FILE);
    let json = serde_json::to_string_pretty(&summary).expect("summary serializes") + "\n";
    std::fs::write(&path, json).map_err(|source| report::ReportError { path, source })?;
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
        eprintln!("{text}");
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serializes")
        );
    } else {
        println!("{text}");
    }
    Ok(exit_code)
}

fn is_account(rk: RecordKind) -> bool {
    matches!(
        rk,
        RecordKind::CustomerAccounts | RecordKind::OrganizationAccounts
    )
}

/// A kind decided against the site: its import as a dry run, per file.
async fn decided_on_site(
    cli: &Cli,
    files: &[PathBuf],
    opts: &ImportOptions,
) -> Result<Vec<Result<ValidateSummary, Error>>, Error> {
    let (target, _sandbox) = super::resolve_target(cli).await?;
    let dir = run::run_dir(
        opts.out.as_deref(),
        &format!("validate-{}", opts.kind.as_str()),
        jiff::Timestamp::now(),
    )?;
    let mut out = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let mut o = opts.clone();
        o.file = file.clone();
        o.dry_run = true;
        o.out = Some(sub_dir(&dir, files.len(), n, file)?);
        let result = run::run(&o, &target, None).await.and_then(|r| {
            r.validated
                .ok_or_else(|| Error::Usage(format!("{} has no dry run", o.kind.as_str())))
        });
        if files.len() == 1 {
            out.push(Ok(result?));
        } else {
            out.push(result);
        }
    }
    Ok(out)
}

/// The organization detail fields a validated plan's organizations step is read with: the
/// site's (none when it cannot be asked) and those its detail-fields steps define.
async fn organization_schema(
    cli: &Cli,
    opts: &ImportOptions,
    promised: &[(String, FieldDef)],
) -> Schema {
    let mut schema = Schema::default();
    if let Ok((target, _sandbox)) = super::resolve_target(cli).await {
        let client = Client::new(
            &target,
            opts.rate,
            crate::site::client::retry::Policy::default(),
            std::sync::Arc::new(crate::site::client::Silent),
        );
        let input = InputOptions {
            schema: None,
            ..opts.input.clone()
        };
        if let Ok(s) = columns::schema(RecordKind::Organizations, &input, Some(&client)).await {
            schema = s;
        }
    }
    for (_, f) in promised.iter().filter(|(e, _)| e == "organization") {
        if !schema
            .fields
            .iter()
            .any(|d| crate::map::normalize(&d.name) == crate::map::normalize(&f.name))
        {
            schema.fields.push(f.clone());
        }
    }
    schema
}

/// The run folder's summary.json of a validation.
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
