//! Entry point: parse the command line, run the command on a tokio runtime, map the result to
//! the documented exit code. Only this file prints fatal errors or exits.

use clap::{CommandFactory, FromArgMatches};

/// glibc gives threads that allocate heap arenas of their own (up to eight per core), each
/// keeping what was freed in it: about 5 MiB of an import's 35 MiB peak on two cores. One
/// arena keeps a 100,000-row import at 29-30 MiB (34-35 with an arena per thread), for 8-11%
/// of its unpaced pace against the sandbox (`bench/run`'s import rows; a run paced by `--rate`
/// does not notice). `MALLOC_ARENA_MAX` set by the user wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_ARENA_MAX: i32 = -8;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: glibc's documented tuning call, made before any other thread exists.
        unsafe {
            mallopt(M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

fn main() {
    let matches = csmport::cli::Cli::command().get_matches();
    let mut cli = csmport::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Not for the sandbox: a server's threads are better off with arenas of their own (and
    // benchmarks measure the client against it). Still before any thread is started.
    if !matches!(cli.command, csmport::cli::Command::Sandbox(_)) {
        one_malloc_arena();
    }
    if let Err(e) = cli.merge_command_options(&matches) {
        csmport::errln!("csmport: error: {e}");
        std::process::exit(csmport::error::EXIT_USAGE);
    }
    if let Err(e) = csmport::profile::apply(&mut cli, &matches) {
        csmport::errln!("csmport: error: {e}");
        std::process::exit(e.exit_code());
    }
    if matches!(cli.command, csmport::cli::Command::Config(_)) {
        let code = csmport::cmd::config_show(&cli, &matches).unwrap_or_else(|e| {
            csmport::errln!("csmport: error: {e}");
            e.exit_code()
        });
        std::process::exit(code);
    }
    // The sandbox has only its request lines to show: -v shows them.
    let verbose = match cli.command {
        csmport::cli::Command::Sandbox(_) if cli.verbose > 0 => 2,
        _ => cli.verbose,
    };
    init_logging(verbose, cli.quiet);
    if cli.quiet {
        csmport::engine::progress::QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    csmport::read::xlsx::quiet_guarded_panics();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            csmport::errln!("csmport: cannot start the async runtime: {e}");
            std::process::exit(csmport::error::EXIT_USAGE);
        }
    };
    let code = match runtime.block_on(csmport::cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            csmport::errln!("csmport: error: {e}");
            e.exit_code()
        }
    };
    // Background tasks (an in-process sandbox, the Ctrl-C watcher) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

/// `-v`/`-vv` (or RUST_LOG, as `target=level` directives, e.g. `csmport=debug`) to stderr;
/// nothing without them. The bar, when there is one, is redrawn after each line.
fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let level = match (quiet, verbose) {
        (true, _) | (false, 0) => "off",
        (false, 1) => "csmport=info",
        (false, _) => "csmport=debug",
    };
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| v.parse::<Targets>().ok());
    let filter = match from_env {
        Some(f) if !quiet => f,
        _ => level.parse::<Targets>().unwrap_or_default(),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| csmport::say::Stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}
