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
pub mod prune;
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
        Command::Prune(args) => prune::run(&cli, args),
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
        Command::Man(args) => man(&cli, args),
    }
}

/// `csmport man`: one page per command, as `csmport-import(1)` and the others are named in the
/// top page's list.
fn man(cli: &Cli, args: &crate::cli::ManArgs) -> Result<i32, Error> {
    use clap::CommandFactory;
    let source = || format!("csmport {}", env!("CARGO_PKG_VERSION"));
    let mut top = Cli::command().disable_help_subcommand(true);
    top.build();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Usage(format!("cannot create the folder {}: {e}", dir.display()))
        })?;
        let mut written = Vec::new();
        let mut todo = vec![top];
        while let Some(cmd) = todo.pop() {
            todo.extend(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
            let page = clap_mangen::Man::new(cmd).source(source());
            let path = page.generate_to(dir).map_err(|e| {
                Error::Usage(format!(
                    "the manual page {} cannot be written: {e}",
                    dir.join(page.get_filename()).display()
                ))
            })?;
            written.push(path);
        }
        written.sort();
        if !cli.quiet {
            crate::outln!(
                "{} manual pages written to {}: {}",
                written.len(),
                dir.display(),
                written
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(0);
    }
    let mut cmd = top;
    for word in &args.command {
        let names = || {
            cmd.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(sub) = cmd.find_subcommand(word).cloned() else {
            return Err(Error::Usage(match names() {
                n if n.is_empty() => format!(
                    "`{}` has no commands under it, so no page for `{word}`",
                    cmd.get_display_name().unwrap_or(cmd.get_name())
                ),
                n => format!("no manual page for `{word}`; the commands are: {n}"),
            }));
        };
        cmd = sub;
    }
    match clap_mangen::Man::new(cmd)
        .source(source())
        .render(&mut std::io::stdout())
    {
        // A pager or `head` that stops reading is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Usage(format!(
            "the manual page cannot be written: {e}"
        ))),
        _ => Ok(0),
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
