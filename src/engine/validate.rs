//! Validate, the operation: a kind's files or a plan of several, checked without sending
//! anything. The profile kinds go through the offline pass (`validation`, over `intake`); the
//! kinds decided against the site run their import as a dry run (`run`); a plan's steps each
//! into their own folder, in dependency order (`steps`), knowing what earlier steps make.
//! `cmd::validate` turns arguments into options, calls this and prints what it returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::error::Error;
use crate::kinds::Kind;
use crate::kinds::columns;
use crate::options::{ImportOptions, InputOptions};
use crate::schema::{FieldDef, Schema};
use crate::site::Site;
use crate::site::client::{Client, Silent, Target, retry};

use super::report::{self, ValidateSummary};
use super::run;
use super::validation::{
    Earlier, offline, promised_fields, record_promised_organizations, sub_dir,
};

/// Where a validation finds the site, asked only when a check needs one: an offline check
/// with a schema file, or of accounts, needs no credentials (and starts no sandbox).
pub trait Sites: Sync {
    fn target(&self) -> BoxFuture<'_, Result<Target, Error>>;
}

/// A client for a validation's few reads (definitions, organizations): the site set up as
/// everywhere else, its progress told to no one.
fn bare_client(target: &Target, rate: f64) -> Arc<Client> {
    Site::connect(
        target,
        rate,
        retry::Policy::default(),
        None,
        Arc::new(Silent),
    )
    .client
}

/// A file that is not there stops the command before a run folder is made for it.
pub fn missing_input(file: &Path) -> Result<(), Error> {
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
pub async fn validate_kind(
    sites: &dyn Sites,
    files: &[PathBuf],
    opts: &ImportOptions,
    promised: &[(String, FieldDef)],
) -> Result<Vec<Result<ValidateSummary, Error>>, Error> {
    let rk = opts.kind;
    match rk.is_record() {
        true => {
            let client = if opts.input.schema.is_some() || rk.is_account() {
                None
            } else {
                Some(bare_client(&sites.target().await?, opts.rate))
            };
            let entity = if rk == Kind::Organizations {
                "organization"
            } else {
                "customer"
            };
            let promised: Vec<FieldDef> = promised
                .iter()
                .filter(|(e, _)| e == entity)
                .map(|(_, f)| f.clone())
                .collect();
            let client = client.as_deref();
            offline(
                opts.kind,
                rk,
                files,
                &opts.input,
                opts.out.as_deref(),
                client,
                Earlier {
                    fields: &promised,
                    organizations: opts.known_organizations.as_deref(),
                },
            )
            .await
        }
        false => decided_on_site(sites, files, opts).await,
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
    /// What the terminal is told besides the steps' summaries.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Several kinds (`KIND FILE` pairs or `--plan`): each file validated in dependency order
/// into its own folder of one run folder, as an import of the plan would lay them out; a file
/// that cannot be read is reported and the others still run. Each file is checked against the
/// site as it is now: what an earlier step would create is not there yet.
pub async fn validate_plan(
    sites: &dyn Sites,
    base: &ImportOptions,
    steps: Vec<crate::engine::steps::Step>,
) -> Result<PlanValidation, Error> {
    let steps = crate::engine::steps::ordered(steps);
    let promised = promised_fields(&steps);
    let top = run::run_dir(base.out.as_deref(), "validate-plan", jiff::Timestamp::now())?;
    // What the organizations steps will make, for the steps after them that name
    // organizations by a CRM id (the site does not have them yet).
    let known = top.join(columns::KNOWN_ORGANIZATIONS_FILE);
    let mut done = Vec::new();
    let mut notes = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let dir = crate::engine::steps::step_dir(&top, n, step);
        let mut opts = crate::engine::steps::step_options(base, step, dir.clone());
        opts.dry_run = true;
        if known.exists() {
            opts.known_organizations = Some(known.clone());
        }
        let result = match missing_input(&step.file) {
            Ok(()) => validate_kind(sites, std::slice::from_ref(&step.file), &opts, &promised)
                .await
                .and_then(|mut r| {
                    r.pop()
                        .unwrap_or_else(|| Err(Error::Usage("no file".into())))
                }),
            Err(e) => Err(e),
        };
        if step.kind == Kind::Organizations && result.is_ok() {
            let schema = organization_schema(sites, &opts, &promised).await;
            if let Err(e) = record_promised_organizations(&opts, schema, &known) {
                notes.push(format!(
                    "the organizations of {} are not known to the later steps: {e}",
                    step.file.display()
                ));
            }
        }
        let (summary, error, exit_code) = match result {
            Ok(s) => {
                let code = s.exit_code;
                (Some(s), None, code)
            }
            Err(e) => (None, Some(e.to_string()), e.exit_code()),
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
        notes,
    };
    let path = top.join(report::SUMMARY_FILE);
    let json = serde_json::to_string_pretty(&summary).expect("summary serializes") + "\n";
    crate::fsx::write_private(&path, json.as_bytes())
        .map_err(|source| report::ReportError { path, source })?;
    Ok(summary)
}

/// A kind decided against the site: its import as a dry run, per file.
async fn decided_on_site(
    sites: &dyn Sites,
    files: &[PathBuf],
    opts: &ImportOptions,
) -> Result<Vec<Result<ValidateSummary, Error>>, Error> {
    let target = sites.target().await?;
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
    sites: &dyn Sites,
    opts: &ImportOptions,
    promised: &[(String, FieldDef)],
) -> Schema {
    let mut schema = Schema::default();
    if let Ok(target) = sites.target().await {
        let client = bare_client(&target, opts.rate);
        let input = InputOptions {
            schema: None,
            ..opts.input.clone()
        };
        if let Ok(s) = columns::schema(Kind::Organizations, &input, Some(&*client)).await {
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
