//! Subcommands: one file each, each a `run` that turns arguments into options and hands them
//! to the engine (or the exporter, or the sandbox). Dispatch lives here, along with the
//! `--sandbox` switch that points any command at an in-process emulator and the printing of
//! summaries.

pub mod delete;
pub mod doctor;
pub mod export;
pub mod import;
pub mod init;
pub mod output;
pub mod report;
pub mod resume;
pub mod retry;
pub mod sandbox;
pub mod status;
pub mod validate;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::sandbox::{Config, Sandbox};
use crate::site::client::{Auth, Target};

/// Runs the command and returns its exit code.
pub async fn run(cli: Cli) -> Result<i32, Error> {
    match &cli.command {
        Command::Sandbox(args) => {
            sandbox::run(args).await?;
            Ok(0)
        }
        // `--dry-run` is `validate` with the import's options.
        Command::Import(args) if args.run.dry_run => validate::dry_run(&cli, args).await,
        Command::Import(args) => import::run(&cli, args).await,
        Command::Validate(args) => validate::command(&cli, args).await,
        Command::Resume(args) => resume::run(&cli, args).await,
        Command::Export(args) => export::run(&cli, args).await,
        Command::Delete(args) => delete::run(&cli, args).await,
        Command::Retry(args) => retry::run(&cli, args).await,
        Command::Doctor(args) => doctor::run(&cli, args).await,
        Command::Status(args) => status::run(&cli, args),
        Command::Report(args) => report::run(&cli, args),
        Command::Init(args) => init::run(args),
        // Printed by `config_show`, which needs the parsed matches.
        Command::Config(_) => Ok(0),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "csmport", &mut script);
            crate::say::write_out(&script);
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                // A pager or `head` that stops reading is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Usage(format!(
                    "the manual page cannot be written: {e}"
                ))),
                _ => Ok(0),
            }
        }
    }
}

/// With `--sandbox`, starts the emulator on 127.0.0.1:0 seeded from sample-data/ and targets it.
pub(crate) async fn resolve_target(cli: &Cli) -> Result<(Target, Option<Sandbox>), Error> {
    if !cli.sandbox {
        return Ok((crate::config::target(&cli.target)?, None));
    }
    let config = Config::default();
    let token = config.token.clone();
    let sb = Sandbox::with_sample_data(config)?;
    let addr = sb.clone().spawn("127.0.0.1:0").await?;
    if !cli.quiet {
        crate::errln!(
            "csmport: using the in-process sandbox at http://{addr} (seeded from sample-data/)"
        );
    }
    Ok((
        Target {
            base_url: format!("http://{addr}"),
            cloud_id: "sandbox".into(),
            auth: Auth::Bearer(token),
            site: Some(format!("http://{addr}")),
            record: cli.target.record.clone(),
        },
        Some(sb),
    ))
}

/// `csmport config show`.
pub fn config_show(cli: &Cli, matches: &clap::ArgMatches) -> Result<i32, Error> {
    let rows = crate::profile::show(cli, matches)?;
    let file = match (&cli.session.config, crate::profile::default_path()) {
        (Some(f), _) => format!("{} (--config)", f.display()),
        (None, Some(f)) if f.is_file() => f.display().to_string(),
        (None, Some(f)) => format!("{} (none there)", f.display()),
        (None, None) => "none".into(),
    };
    let width = rows
        .iter()
        .map(|(k, _, _)| k.len())
        .max()
        .unwrap_or(0)
        .max(11)
        + 2;
    let mut lines = vec![format!(
        "{:<width$}{file}{}",
        "config file",
        cli.session
            .profile
            .as_ref()
            .map(|p| format!(", profile {p}"))
            .unwrap_or_default()
    )];
    for (k, v, s) in &rows {
        lines.push(format!("{k:<width$}{v}  ({s})"));
    }
    let json: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|(k, v, s)| {
            (
                k.clone(),
                serde_json::json!({ "value": v, "source": s.to_string() }),
            )
        })
        .collect();
    print_summary(cli, &lines.join("\n"), &json);
    Ok(0)
}

pub(crate) use crate::engine::report::count;

/// The summary of a command: text for people on stdout, or with `--json` the JSON on stdout
/// and the text on stderr.
/// With `-q`, only the JSON (when asked for): the exit code and the run folder say the rest.
pub(crate) fn print_summary(cli: &Cli, text: &str, summary: &impl serde::Serialize) {
    if cli.session.json {
        if !cli.quiet {
            crate::errln!("{text}");
        }
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(summary).expect("summary serializes")
        );
    } else if !cli.quiet {
        crate::outln!("{text}");
    }
}

/// Summary lines for detail-field edits, one each (the first 20; summary.json has them all).
pub fn change_lines(verb: &str, changes: &[String]) -> Vec<String> {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = changes
        .iter()
        .take(SHOWN)
        .map(|c| format!("  {verb:<9} {c}"))
        .collect();
    if changes.len() > SHOWN {
        out.push(format!(
            "  {verb:<9} … and {} more (summary.json)",
            changes.len() - SHOWN
        ));
    }
    out
}
