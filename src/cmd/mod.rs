//! Subcommands: one file each, each a `run` that only orchestrates. Dispatch lives here, along
//! with the `--sandbox` switch that points any command at an in-process emulator.

pub mod details;
pub mod entitlements;
pub mod export;
pub mod fields;
pub mod import;
pub mod plan;
pub mod products;
pub mod resume;
pub mod retry;
pub mod sandbox;
pub mod small;
pub mod validate;

use crate::cli::{Cli, Command, Kind};
use crate::config;
use crate::error::Error;
use crate::sandbox::{Config, Sandbox};
use crate::site::client::{Auth, Client, Target};

/// Runs the command and returns its exit code.
pub async fn run(cli: Cli) -> Result<i32, Error> {
    match &cli.command {
        Command::Sandbox(args) => {
            sandbox::run(args).await?;
            Ok(0)
        }
        Command::Import(args) if args.dry_run => validate_cmd(&cli, Some(args), &args.input).await,
        Command::Import(args) => {
            let steps = match &args.input.plan {
                Some(p) => Some(plan::load(p)?),
                None => plan::from_command_line(args.input.kind(), &args.input.files),
            };
            let (target, sandbox) = resolve_target(&cli).await?;
            if let Some(steps) = steps {
                return run_plan(&cli, args, &target, sandbox.as_ref(), steps).await;
            }
            let result = run_import(args, &target).await?;
            print_import_summary(&cli, &result, sandbox.as_ref());
            Ok(result.exit_code)
        }
        Command::Validate(args) => validate_cmd(&cli, None, &args.input).await,
        Command::Resume(args) => resume::run(&cli, args).await,
        Command::Export(args) => export::run(&cli, args).await,
        Command::Retry(args) => {
            let (cli, import_args) = retry::import_cli(&cli, args)?;
            let (target, sandbox) = resolve_target(&cli).await?;
            let result = run_import(&import_args, &target).await?;
            print_import_summary(&cli, &result, sandbox.as_ref());
            Ok(result.exit_code)
        }
    }
}

/// One import of one file, by the module of its kind.
pub async fn run_import(
    args: &crate::cli::ImportArgs,
    target: &crate::site::client::Target,
) -> Result<import::ImportResult, Error> {
    match args.input.kind() {
        Kind::DetailFields => fields::run(args, target).await,
        Kind::Products => products::run(args, target).await,
        Kind::Entitlements => entitlements::run(args, target).await,
        Kind::CustomerDetails => details::run(args, target, true).await,
        Kind::OrganizationDetails => details::run(args, target, false).await,
        Kind::Customers
        | Kind::Organizations
        | Kind::CustomerAccounts
        | Kind::OrganizationAccounts => import::run(args, target).await,
    }
}

/// Runs a plan's steps in dependency order against one target (one sandbox for all of them),
/// each into its own folder of one run folder; a step that cannot start is reported and the
/// others still run.
async fn run_plan(
    cli: &Cli,
    args: &crate::cli::ImportArgs,
    target: &crate::site::client::Target,
    sandbox: Option<&Sandbox>,
    steps: Vec<plan::Step>,
) -> Result<i32, Error> {
    let steps = plan::ordered(steps);
    let top = import::run_dir(args.input.out.as_deref(), "plan", jiff::Timestamp::now())?;
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
        let step_args = plan::step_args(args, step, dir.clone());
        let (summary, error, exit_code) = match run_import(&step_args, target).await {
            Ok(r) => {
                print_import_summary(cli, &r, sandbox);
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

/// Validation needs a target only to read the definitions, and only without `--schema`; the
/// small kinds are decided against the site's current state, so they always read it.
/// `import_args` are the import's options when this is `import --dry-run`.
async fn validate_cmd(
    cli: &Cli,
    import_args: Option<&crate::cli::ImportArgs>,
    input: &crate::cli::InputArgs,
) -> Result<i32, Error> {
    if input.plan.is_some() {
        return Err(Error::Usage(
            "validate and --dry-run take one kind at a time: run `csmport validate KIND FILE` for each file of the plan".into(),
        ));
    }
    let results = if input.kind().is_small() {
        vec![Ok(dry_run_small(cli, import_args, input).await?)]
    } else {
        let client = if input.schema.is_some() {
            None
        } else {
            let (target, _sandbox) = resolve_target(cli).await?;
            Some(Client::new(
                &target,
                10.0,
                crate::site::client::retry::Policy::default(),
                std::sync::Arc::new(crate::site::client::Silent),
            ))
        };
        validate::run(input, client.as_ref()).await?
    };
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
        .map(validate::describe)
        .collect::<Vec<_>>()
        .join("\n");
    if cli.json {
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

/// A small kind's import run as a dry run: it reads the site and decides every row (already
/// there, to create, to change, or invalid) and sends nothing.
async fn dry_run_small(
    cli: &Cli,
    import_args: Option<&crate::cli::ImportArgs>,
    input: &crate::cli::InputArgs,
) -> Result<validate::ValidateSummary, Error> {
    let mut args = match import_args {
        Some(a) => a.clone(),
        None => {
            // `validate` has no import options: the import's defaults, from its own parser.
            let argv = ["csmport", "import", input.kind().as_str(), "-"];
            match <Cli as clap::Parser>::try_parse_from(argv).map(|c| c.command) {
                Ok(Command::Import(a)) => a,
                _ => return Err(Error::Usage("cannot build the import's options".into())),
            }
        }
    };
    args.input = input.clone();
    args.dry_run = true;
    let (target, _sandbox) = resolve_target(cli).await?;
    let result = run_import(&args, &target).await?;
    result
        .validated
        .ok_or_else(|| Error::Usage(format!("{} has no dry run", input.kind().as_str())))
}

/// With `--sandbox`, starts the emulator on 127.0.0.1:0 seeded from sample-data/ and targets it.
pub(crate) async fn resolve_target(cli: &Cli) -> Result<(Target, Option<Sandbox>), Error> {
    if !cli.sandbox {
        return Ok((config::target(&cli.target)?, None));
    }
    let config = Config::default();
    let token = config.token.clone();
    let sb = Sandbox::with_sample_data(config)?;
    let addr = sb.clone().spawn("127.0.0.1:0").await?;
    eprintln!("csmport: using the in-process sandbox at http://{addr} (seeded from sample-data/)");
    Ok((
        Target {
            base_url: format!("http://{addr}"),
            cloud_id: "sandbox".into(),
            auth: Auth::Bearer(token),
            site: Some(format!("http://{addr}")),
        },
        Some(sb),
    ))
}

pub(crate) fn print_import_summary(cli: &Cli, r: &import::ImportResult, sandbox: Option<&Sandbox>) {
    let s = &r.summary;
    let c = &s.counts;
    let mut lines = vec![
        format!("imported {} from {}", s.kind, s.input),
        format!(
            "  rows      {} = {} succeeded + {} failed + {} skipped",
            c.rows, c.succeeded, c.failed, c.skipped
        ),
    ];
    if c.failed > 0 {
        let f = &c.failed_by_stage;
        lines.push(format!(
            "  failed    {} read, {} validate, {} send, {} task",
            f.read, f.validate, f.send, f.task
        ));
    }
    if let Some(u) = s.unchanged.filter(|u| *u > 0) {
        lines.push(format!(
            "  unchanged {u} rows already on the site as in the file (nothing sent for them)"
        ));
    }
    lines.push(format!(
        "  sent      {} batches, {} tasks in {:.1}s ({} rows/s)",
        s.batches, s.tasks, s.elapsed_s, s.rows_per_s
    ));
    if let Some(sb) = sandbox {
        let (c, o) = sb
            .store
            .lock()
            .map(|st| (st.customers.len(), st.organizations.len()))
            .unwrap_or((0, 0));
        lines.push(format!(
            "  sandbox   now holds {c} customers and {o} organizations"
        ));
    }
    if let Some(v) = &c.verified {
        lines.push(format!(
            "  verified  {} confirmed, {} drifted, {} missing, {} unverifiable (successes.csv _verified)",
            v.confirmed, v.drifted, v.missing, v.unverifiable
        ));
    }
    lines.push(format!("  run folder {}", s.run_dir));
    if c.failed > 0 || c.skipped > 0 {
        lines.push(format!(
            "  failures  {}/failures.csv (fix the rows there and import that file again)",
            s.run_dir
        ));
    }
    if let Some(e) = &r.read_error {
        lines.push(format!("  stopped   reading failed: {e}"));
    }
    if let Some(e) = &r.stopped {
        if r.exit_code == crate::error::EXIT_AUTH_NETWORK {
            lines.push(format!("  stopped   authentication failed: {e}"));
        } else {
            lines.push(format!("  stopped   {e}"));
        }
    }
    if s.interrupted {
        lines.push("  stopped   interrupted; rows not sent are in failures.csv".into());
    }
    if r.unsettled > 0 {
        lines.push(format!(
            "  resume    {} rows were not sent or have no confirmed outcome: `csmport resume {}` finishes them (same keys, nothing sent twice)",
            r.unsettled, s.run_dir
        ));
    }
    print_summary(cli, &lines.join("\n"), s);
}

/// The summary of a command: text for people on stdout, or with `--json` the JSON on stdout
/// and the text on stderr.
pub(crate) fn print_summary(cli: &Cli, text: &str, summary: &impl serde::Serialize) {
    if cli.json {
        eprintln!("{text}");
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("summary serializes")
        );
    } else {
        println!("{text}");
    }
}
