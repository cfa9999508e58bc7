//! Several files in one run: `csmport import --plan plan.toml`, or `KIND FILE` pairs on the
//! command line. Steps run one after another in dependency order (detail fields, organizations,
//! customers, detail values, products, entitlements), each to its end — every task of a step
//! finished — before the next starts, into one run folder with a folder per step and a
//! summary of all. Orchestration only: each step is an ordinary import (`engine::run`).

use std::path::{Path, PathBuf};

use crate::site::api::Choice;
use serde::{Deserialize, Serialize};

use super::report::ReportError;
use crate::error::{EXIT_USAGE, Error};
use crate::kinds::Kind;
use crate::options::{ImportOptions, Op};

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

/// What one step ended with, for the plan's summary.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub kind: String,
    pub file: String,
    pub run_dir: String,
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

/// The worst exit code of the steps (a file-level error counts as a usage error).
pub fn exit_code(steps: &[StepSummary]) -> i32 {
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
