//! `csmport doctor`: runs `site::doctor`'s checks against the target (flags and environment as
//! for import, or `--sandbox`) and prints a line per check with its fix; `--json` prints the
//! checks. Exit 0 only when no check finds a problem.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, DoctorArgs};
use crate::error::{EXIT_OK, EXIT_ROWS_FAILED, Error};
use crate::site::Site;
use crate::site::client::{Silent, retry};
use crate::site::doctor::{Doctor, Status};

pub async fn run(cli: &Cli, args: &DoctorArgs) -> Result<i32, Error> {
    let (target, _sandbox) = super::resolve_target(cli).await?;
    let client = Site::connect(
        &target,
        10.0,
        retry::Policy::default(),
        None,
        Arc::new(Silent),
    )
    .client;
    let folder = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("csmport-runs"));
    let checks = Doctor {
        client: &client,
        target: &target,
        service_desk: args.service_desk.as_deref(),
        run_folder: &folder,
    }
    .run()
    .await;
    let problems = checks
        .iter()
        .filter(|c| c.status == Status::Problem)
        .count();
    let warnings = checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    let lines: Vec<String> = checks
        .iter()
        .map(|c| {
            let status = match c.status {
                Status::Ok => "ok",
                Status::Warning => "warning",
                Status::Problem => "problem",
                Status::Skipped => "skipped",
            };
            let fix = c
                .fix
                .as_ref()
                .map(|f| format!("\n           fix: {f}"))
                .unwrap_or_default();
            format!("  {status:<8} {}: {}{fix}", c.check, c.detail)
        })
        .collect();
    let head = format!(
        "doctor: {} (cloud {}): {}",
        target.base_url,
        target.cloud_id,
        match (problems, warnings) {
            (0, 0) => "every check passes".to_string(),
            (0, 1) => "passes with 1 warning".to_string(),
            (0, w) => format!("passes with {w} warnings"),
            (1, _) => "1 problem".to_string(),
            (n, _) => format!("{n} problems"),
        }
    );
    super::print_summary(cli, &format!("{head}\n{}", lines.join("\n")), &checks);
    // A problem is a finding, not a failure of csmport: exit 1, as for rows that failed.
    Ok(if problems == 0 {
        EXIT_OK
    } else {
        EXIT_ROWS_FAILED
    })
}
