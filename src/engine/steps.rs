//! Several files in one run: `csmport import --plan plan.toml`, or `KIND FILE` pairs on the
//! command line. Steps run one after another in dependency order (detail fields, organizations,
//! customers, detail values, products, entitlements), each to its end — every task of a step
//! finished — before the next starts, into one run folder with a folder per step and a
//! summary of all. Orchestration only: each step is an ordinary import (`engine::run`). Ctrl-C
//! (`interrupt`) stops the running step and starts no other; `plan.json` records every step's
//! options so `csmport resume PLAN_DIR` goes on from there.

use std::path::{Path, PathBuf};

use crate::site::api::Choice;
use serde::{Deserialize, Serialize};

use super::report::ReportError;
use crate::error::{EXIT_USAGE, Error};
use crate::kinds::Kind;
use crate::options::{ImportOptions, Op};
use crate::site::client::Target;

use super::run::RunResult;

/// One file of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: Kind,
    pub file: PathBuf,
    pub mapping: Option<PathBuf>,
    pub sheet: Option<String>,
    pub header_row: Option<u64>,
    pub op: Option<Op>,
    pub date_format: Option<String>,
    pub ignore_unknown_columns: bool,
    pub organizations_by: Option<String>,
    pub customers_by: Option<String>,
}

impl Step {
    /// A step of `kind` reading `file` with the default options.
    pub fn new(kind: Kind, file: PathBuf) -> Step {
        Step {
            kind,
            file,
            mapping: None,
            sheet: None,
            header_row: None,
            op: None,
            date_format: None,
            ignore_unknown_columns: false,
            organizations_by: None,
            customers_by: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    #[serde(default)]
    step: Vec<StepFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    kind: String,
    file: PathBuf,
    mapping: Option<PathBuf>,
    sheet: Option<String>,
    header_row: Option<u64>,
    op: Option<String>,
    date_format: Option<String>,
    #[serde(default)]
    ignore_unknown_columns: bool,
    /// `--organizations-by` for this step.
    organizations_by: Option<String>,
    /// `--customers-by` for this step.
    customers_by: Option<String>,
}

/// The steps in the order they run (stable: files of one rank keep the given order).
pub fn ordered(mut steps: Vec<Step>) -> Vec<Step> {
    steps.sort_by_key(|s| s.kind.plan_rank());
    steps
}

fn parse_kind(s: &str) -> Option<Kind> {
    Kind::named(s.trim(), true)
}

fn kinds() -> String {
    Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a plan file; paths in it are relative to the plan's folder.
pub fn load(path: &Path) -> Result<Vec<Step>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("--plan {}: cannot read: {e}", path.display())))?;
    let plan: PlanFile = toml::from_str(&text)
        .map_err(|e| Error::Usage(format!("--plan {}: {e}", path.display())))?;
    if plan.step.is_empty() {
        return Err(Error::Usage(format!(
            "--plan {}: no steps; add [[step]] tables with kind = \"...\" and file = \"...\"",
            path.display()
        )));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let at = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    plan.step
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let kind = parse_kind(&s.kind).ok_or_else(|| {
                Error::Usage(format!(
                    "--plan {}: step {}: unknown kind '{}' (one of {})",
                    path.display(),
                    i + 1,
                    s.kind,
                    kinds()
                ))
            })?;
            let op = match s.op.as_deref() {
                None => None,
                Some(o) => Some(Op::named(o, true).ok_or_else(|| {
                    Error::Usage(format!(
                        "--plan {}: step {}: op '{o}' is not create, update or upsert",
                        path.display(),
                        i + 1
                    ))
                })?),
            };
            Ok(Step {
                kind,
                file: at(&s.file),
                mapping: s.mapping.as_deref().map(at),
                sheet: s.sheet,
                header_row: s.header_row,
                op,
                date_format: s.date_format,
                ignore_unknown_columns: s.ignore_unknown_columns,
                organizations_by: s.organizations_by,
                customers_by: s.customers_by,
            })
        })
        .collect()
}

/// `KIND FILE KIND FILE ...` as clap hands it over (the first kind, then the rest), or one kind
/// with several files. `None` for the ordinary one-file run.
pub fn from_command_line(kind: Kind, files: &[PathBuf]) -> Option<Vec<Step>> {
    if files.len() < 2 {
        return None;
    }
    let step = |kind: Kind, file: &PathBuf| Step::new(kind, file.clone());
    let is_kind = |p: &PathBuf| !p.exists() && p.to_str().and_then(parse_kind).is_some();
    let mut steps = Vec::new();
    let mut current = kind;
    for f in files {
        if is_kind(f) {
            current = f.to_str().and_then(parse_kind).expect("checked");
        } else {
            steps.push(step(current, f));
        }
    }
    Some(steps)
}

/// Where a step of a plan got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Ran to its end (its rows may have failed).
    Done,
    /// Stopped by Ctrl-C: rows open, `csmport resume` goes on.
    Interrupted,
    /// Could not start (its file or options refused): nothing sent.
    Refused,
    /// Not begun: the plan was interrupted before it.
    NotStarted,
}

/// What one step ended with, for the plan's summary.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub kind: String,
    pub file: String,
    pub run_dir: String,
    pub state: StepState,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::engine::report::Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    pub run_dir: String,
    pub steps: Vec<StepSummary>,
    pub exit_code: i32,
}

/// The options of one step: the run's options, the step's own settings.
pub fn step_options(base: &ImportOptions, step: &Step, out: PathBuf) -> ImportOptions {
    let mut a = base.clone();
    a.kind = step.kind;
    a.file = step.file.clone();
    a.out = Some(out);
    if step.mapping.is_some() {
        a.input.mapping = step.mapping.clone();
    }
    if step.sheet.is_some() {
        a.input.sheet = step.sheet.clone();
    }
    if step.header_row.is_some() {
        a.input.header_row = step.header_row;
    }
    if let Some(op) = step.op {
        a.input.op = op;
    }
    if step.date_format.is_some() {
        a.input.date_format = step.date_format.clone();
    }
    a.input.ignore_unknown_columns |= step.ignore_unknown_columns;
    if step.organizations_by.is_some() {
        a.input.organizations_by = step.organizations_by.clone();
    }
    if step.customers_by.is_some() {
        a.input.customers_by = step.customers_by.clone();
    }
    a
}

/// The folder of step `n` inside the plan's run folder.
pub fn step_dir(top: &Path, n: usize, step: &Step) -> PathBuf {
    let stem = step
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("input");
    top.join(format!("{:02}-{}-{stem}", n + 1, step.kind.as_str()))
}

pub fn write_summary(top: &Path, s: &PlanSummary) -> Result<(), Error> {
    let path = top.join(crate::engine::report::SUMMARY_FILE);
    let text = serde_json::to_string_pretty(s).expect("summary serializes") + "\n";
    crate::fsx::write_private(&path, text.as_bytes())
        .map_err(|source| Error::Report(ReportError { path, source }))
}

/// A step as the plan runs it: where it writes and with which options.
#[derive(Debug, Clone)]
pub struct Planned {
    pub kind: Kind,
    pub file: PathBuf,
    pub dir: PathBuf,
    pub opts: ImportOptions,
}

/// The plan's record of its steps, in its run folder.
pub const PLAN_FILE: &str = "plan.json";

#[derive(Serialize, Deserialize)]
struct PlanRecord {
    steps: Vec<RecordedStep>,
}

#[derive(Serialize, Deserialize)]
struct RecordedStep {
    kind: String,
    file: PathBuf,
    run_dir: PathBuf,
    /// The step's import options as a journal keeps them (`ImportOptions` as JSON).
    options: String,
}

/// The steps of a plan in `top`, in order, with the base options and each step's own.
pub fn planned(base: &ImportOptions, top: &Path, steps: &[Step]) -> Vec<Planned> {
    steps
        .iter()
        .enumerate()
        .map(|(n, step)| {
            let dir = step_dir(top, n, step);
            Planned {
                kind: step.kind,
                file: step.file.clone(),
                opts: step_options(base, step, dir.clone()),
                dir,
            }
        })
        .collect()
}

/// Writes `plan.json`: what each step is to do, before the first starts.
pub fn record(top: &Path, steps: &[Planned]) -> Result<(), Error> {
    let mut record = PlanRecord { steps: Vec::new() };
    for p in steps {
        let journaled = p.opts.journaled(&p.dir)?;
        let options = serde_json::to_string(&journaled).expect("options serialize");
        record.steps.push(RecordedStep {
            kind: p.kind.as_str().into(),
            file: journaled.file,
            run_dir: std::path::absolute(&p.dir).unwrap_or_else(|_| p.dir.clone()),
            options,
        });
    }
    let path = top.join(PLAN_FILE);
    let text = serde_json::to_string_pretty(&record).expect("plan serializes") + "\n";
    crate::fsx::write_private(&path, text.as_bytes())
        .map_err(|source| Error::Report(ReportError { path, source }))
}

/// The steps `plan.json` in `top` recorded, each writing into its folder under `top` (wherever
/// the plan's folder is now); `None` when `top` is no plan's folder.
pub fn recorded(top: &Path) -> Result<Option<Vec<Planned>>, Error> {
    let path = top.join(PLAN_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let bad = |why: String| Error::Usage(format!("{}: {why}", path.display()));
    let record: PlanRecord =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a plan's record: {e}")))?;
    let mut out = Vec::new();
    for r in record.steps {
        let kind = parse_kind(&r.kind).ok_or_else(|| bad(format!("unknown kind '{}'", r.kind)))?;
        let name = r.run_dir.file_name().map(PathBuf::from).unwrap_or_default();
        let dir = top.join(name);
        let mut opts = ImportOptions::from_journal(&r.options).map_err(bad)?;
        opts.out = Some(dir.clone());
        out.push(Planned {
            kind,
            file: r.file,
            dir,
            opts,
        });
    }
    Ok(Some(out))
}

/// Runs `steps` in order into the plan's folder `top`, against one target; `resume`: a step
/// whose folder has a journal goes on from it (one that ended is reported as it was), the
/// others start. After Ctrl-C no step starts. `shown` prints each step's result.
pub async fn run_all(
    top: &Path,
    steps: Vec<Planned>,
    target: &Target,
    resume: bool,
    shown: &dyn Fn(&RunResult),
) -> Result<PlanSummary, Error> {
    let total = steps.len();
    let known = top.join(crate::kinds::columns::KNOWN_ORGANIZATIONS_FILE);
    let mut done = Vec::new();
    for (n, step) in steps.into_iter().enumerate() {
        let Planned {
            kind,
            file,
            dir,
            opts,
        } = step;
        let mut summary = StepSummary {
            kind: kind.as_str().into(),
            file: file.display().to_string(),
            run_dir: dir.display().to_string(),
            state: StepState::NotStarted,
            exit_code: crate::error::EXIT_INTERRUPTED,
            summary: None,
            error: None,
        };
        if super::interrupt::happened() {
            // Nothing of it is sent, and its folder is not made.
            done.push(summary);
            continue;
        }
        if !crate::engine::progress::QUIET.load(std::sync::atomic::Ordering::Relaxed) {
            crate::errln!(
                "csmport: step {}/{total}: {} from {}",
                n + 1,
                kind.as_str(),
                file.display()
            );
        }
        let ran = async {
            let (mut opts, resumed) = if resume && dir.join(super::journal::JOURNAL_FILE).is_file()
            {
                let (mut o, r) = super::run::Resumed::open(&dir)?;
                r.check_site(&dir, target)?;
                // `resume --service-desk`: a way to read customers back the run did not have.
                o.service_desk = opts.service_desk.or(o.service_desk);
                (o, Some(r))
            } else {
                (opts, None)
            };
            if known.exists() {
                opts.known_organizations = Some(known.clone());
            }
            let r = super::run::run(&opts, target, resumed).await?;
            Ok::<_, Error>((r, opts))
        };
        match ran.await {
            Ok((r, opts)) => {
                shown(&r);
                if matches!(kind, Kind::Organizations | Kind::OrganizationAccounts) {
                    // Later steps find these by a CRM id even before the site lists them.
                    let successes = dir.join(super::report::SUCCESSES_FILE);
                    if let Err(e) = crate::kinds::columns::record_known_organizations(
                        opts.for_kind(),
                        &successes,
                        &known,
                    ) {
                        crate::errln!(
                            "csmport: note: the organizations this step made are not recorded for later steps: {e}"
                        );
                    }
                }
                summary.state = if r.summary.interrupted {
                    StepState::Interrupted
                } else {
                    StepState::Done
                };
                summary.exit_code = r.exit_code;
                summary.summary = Some(r.summary);
            }
            Err(e) => {
                crate::errln!("csmport: error: {e}");
                summary.state = if super::interrupt::happened() {
                    StepState::Interrupted
                } else {
                    StepState::Refused
                };
                summary.exit_code = e.exit_code();
                summary.error = Some(e.to_string());
            }
        }
        done.push(summary);
    }
    let exit_code = exit_code(&done);
    let summary = PlanSummary {
        run_dir: top.display().to_string(),
        steps: done,
        exit_code,
    };
    write_summary(top, &summary)?;
    if let Err(e) = super::html::write(top) {
        crate::errln!("csmport: report.html: {e}");
    }
    Ok(summary)
}

/// The worst exit code of the steps (a file-level error counts as a usage error); an
/// interrupted plan exits 4 whatever its steps did.
pub fn exit_code(steps: &[StepSummary]) -> i32 {
    if steps
        .iter()
        .any(|s| matches!(s.state, StepState::Interrupted | StepState::NotStarted))
    {
        return crate::error::EXIT_INTERRUPTED;
    }
    steps
        .iter()
        .map(|s| {
            if s.error.is_some() {
                EXIT_USAGE.max(s.exit_code)
            } else {
                s.exit_code
            }
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_dependency_order() {
        let s = |kind, f: &str| Step::new(kind, f.into());
        let got: Vec<String> = ordered(vec![
            s(Kind::Entitlements, "e"),
            s(Kind::Customers, "c1"),
            s(Kind::Organizations, "o"),
            s(Kind::Customers, "c2"),
            s(Kind::DetailFields, "f"),
            s(Kind::Products, "p"),
            s(Kind::CustomerDetails, "d"),
        ])
        .into_iter()
        .map(|s| s.file.display().to_string())
        .collect();
        assert_eq!(got, ["f", "o", "c1", "c2", "d", "p", "e"]);
    }

    #[test]
    fn kind_file_pairs_on_the_command_line() {
        let files: Vec<PathBuf> = ["no-such-a.csv", "customers", "no-such-c.csv"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let steps = from_command_line(Kind::Organizations, &files).unwrap();
        let got: Vec<(Kind, String)> = steps
            .iter()
            .map(|s| (s.kind, s.file.display().to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (Kind::Organizations, "no-such-a.csv".to_string()),
                (Kind::Customers, "no-such-c.csv".to_string())
            ]
        );
        assert_eq!(
            from_command_line(Kind::Customers, &[PathBuf::from("x.csv")]),
            None
        );
    }

    #[test]
    fn plan_files_name_their_steps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plan.toml");
        std::fs::write(
            &p,
            "[[step]]\nkind = \"customers\"\nfile = \"c.csv\"\nop = \"update\"\n\n[[step]]\nkind = \"Organizations\"\nfile = \"/abs/o.csv\"\n",
        )
        .unwrap();
        let steps = load(&p).unwrap();
        assert_eq!(steps[0].file, dir.path().join("c.csv"));
        assert_eq!(steps[0].op, Some(Op::Update));
        assert_eq!(steps[1].kind, Kind::Organizations);
        assert_eq!(steps[1].file, PathBuf::from("/abs/o.csv"));
        std::fs::write(&p, "[[step]]\nkind = \"tickets\"\nfile = \"t.csv\"\n").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("unknown kind 'tickets'"), "{e}");
    }
}
