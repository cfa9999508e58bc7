//! `csmport report RUN_DIR [--open]`: writes the run folder's report.html again from what the
//! folder holds (`engine::html`), and opens it in the default browser on request. Reads only
//! the folder, like `status`.

use std::path::Path;

use crate::cli::{Cli, ReportArgs};
use crate::error::{EXIT_OK, Error};

pub fn run(cli: &Cli, args: &ReportArgs) -> Result<i32, Error> {
    let dir = &args.run_dir;
    if !dir.join(crate::engine::report::SUMMARY_FILE).is_file() {
        return Err(Error::Usage(format!(
            "{}: not a run folder (no summary.json): give the folder a run wrote, e.g. csmport-runs/<time>-<kind>",
            dir.display()
        )));
    }
    let path = crate::engine::html::write(dir).map_err(|e| Error::Usage(e.to_string()))?;
    if !cli.quiet {
        crate::outln!("{}", path.display());
    }
    if args.open {
        open(&path)?;
    }
    Ok(EXIT_OK)
}

/// The platform's opener (no browser is started by csmport itself).
fn open(path: &Path) -> Result<(), Error> {
    let (program, args): (&str, Vec<&std::ffi::OsStr>) = if cfg!(target_os = "macos") {
        ("open", vec![path.as_os_str()])
    } else if cfg!(windows) {
        (
            "cmd",
            vec![
                "/C".as_ref(),
                "start".as_ref(),
                "".as_ref(),
                path.as_os_str(),
            ],
        )
    } else {
        ("xdg-open", vec![path.as_os_str()])
    };
    let failed = |why: String| {
        Error::Usage(format!(
            "{} is written, but {program} could not open it: {why}",
            path.display()
        ))
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    // The opener hands the page to a browser and ends; one that fails says so by its exit
    // status. One still running after a while (a browser in the foreground) has opened it.
    for _ in 0..100 {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(failed(format!("it ended with {status}"))),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(100)),
            Err(e) => return Err(failed(e.to_string())),
        }
    }
    Ok(())
}
