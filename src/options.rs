//! Validated import options: what a run is started with, and what its journal keeps so that
//! `resume` continues it as it began. A type of its own, versioned and serialized with defaults
//! for every field, so a renamed flag in `cli` never breaks the resume of an older run. Built
//! from the command line by `cmd`; read by the engine and the kinds. The defaults live here once
//! and `cli` shows them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kind::Kind;
use crate::read::{Encoding, ReadOptions};
use crate::site::Site;
use crate::site::api::{DEFAULT_MAX_TASKS, MAX_PROFILE_BULK_ITEMS};
use crate::site::client::{Notify, Target, retry};
use std::sync::Arc;

/// The layout of `ImportOptions` this build writes; a journal with a newer one is refused.
/// 2: `delete` (a csmport that knows only 1 must not take a delete run for an import).
/// 3: `update_definitions` (an older csmport would send a journaled edit as a new field).
pub const OPTIONS_VERSION: u32 = 3;

pub const DEFAULT_BATCH_SIZE: usize = MAX_PROFILE_BULK_ITEMS;
pub const DEFAULT_RATE: f64 = 10.0;
pub const DEFAULT_TASKS: usize = DEFAULT_MAX_TASKS;
/// A task still unfinished after this long is left open for `resume` (the server fails tasks
/// older than 30 minutes, CONTRACT §7.3).
pub const DEFAULT_TASK_TIMEOUT_SECS: u64 = 35 * 60;
/// How long the run waits for the site to take a request (a free task slot, the rate limit)
/// before it stops as an interrupted run does.
pub const DEFAULT_SLOT_WAIT_SECS: u64 = 30 * 60;
pub const DEFAULT_RETRIES: u32 = 7;
pub const DEFAULT_RETRY_BUDGET: u64 = 1000;
pub const DEFAULT_MAX_WAIT_SECS: u64 = 300;

/// The operation each row asks for (profiles and accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    Create,
    Update,
    #[default]
    Upsert,
}

/// What an invalid value of an optional field does to its row (`--invalid-values`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InvalidValues {
    /// The row fails, naming the cell.
    #[default]
    Fail,
    /// The row is imported without that value; the cell goes to warnings.csv.
    Blank,
}

impl crate::site::api::Choice for Op {
    const ALL: &'static [Self] = &[Op::Create, Op::Update, Op::Upsert];
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Upsert => "upsert",
        }
    }
}

impl crate::site::api::Choice for InvalidValues {
    const ALL: &'static [Self] = &[InvalidValues::Fail, InvalidValues::Blank];
    fn name(self) -> &'static str {
        match self {
            InvalidValues::Fail => "fail",
            InvalidValues::Blank => "blank",
        }
    }
    fn help(self) -> &'static str {
        match self {
            InvalidValues::Fail => "The row fails, naming the cell",
            InvalidValues::Blank => {
                "The row is imported without that value; the cell goes to warnings.csv"
            }
        }
    }
}

/// What a kind's description is told of its run: how its input is read and checked, and the
/// few run settings a description decides by. Pacing, retries, task slots, timeouts, the site
/// and the input's file are the engine's and are not here.
#[derive(Debug, Clone, Copy)]
pub struct KindOptions<'a> {
    pub kind: Kind,
    pub input: &'a InputOptions,
    /// Rows a chunk holds at most (a kind may take fewer: `chunk_weight`).
    pub batch_size: usize,
    pub dry_run: bool,
    /// A delete run (detail values: every value a row names is cleared).
    pub delete: bool,
    /// Customers may create the organizations they name.
    pub create_organizations: bool,
    /// What earlier steps of a plan made (`known-organizations.csv`).
    pub known_organizations: Option<&'a Path>,
    /// The run folder.
    pub out: Option<&'a Path>,
}

/// The slowest and fastest `--rate` taken: a request every 100 s, a million a second.
pub const MIN_RATE: f64 = 0.01;
pub const MAX_RATE: f64 = 1_000_000.0;

/// `--rate`, refused when it is not a number of requests per second csmport can keep.
pub fn check_rate(rate: f64) -> Result<(), Error> {
    if rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--rate must be a number of requests per second from {MIN_RATE} to {MAX_RATE}, got {rate}"
        )))
    }
}

/// How the input is read and its rows checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputOptions {
    pub encoding: Option<Encoding>,
    pub delimiter: Option<u8>,
    pub sheet: Option<String>,
    pub header_row: Option<u64>,
    pub date_format: Option<String>,
    /// Detail-field definitions from a file instead of the site.
    pub schema: Option<PathBuf>,
    pub mapping: Option<PathBuf>,
    pub ignore_unknown_columns: bool,
    pub op: Op,
    /// Only these data rows, first and last (`--limit N`, `--rows A-B`): a trial run.
    pub rows: Option<(u64, u64)>,
    /// `--update-definitions`: detail fields the site has are edited to the file's definition.
    pub update_definitions: bool,
    /// `--invalid-values`: what an invalid value of a detail field does to its row (a
    /// mapping's `on_invalid` decides per column).
    pub invalid_values: InvalidValues,
    /// `--organizations-by`: rows name organizations by this organization detail field (a
    /// CRM's id kept in e.g. `External ID`), not by name or id.
    pub organizations_by: Option<String>,
    /// `--customers-by`: rows name customers by this customer detail field (a CRM's id), not
    /// by email or id.
    pub customers_by: Option<String>,
    /// `--accept-changed-cells`: a failure report's cells a spreadsheet changed are sent as
    /// they are, not refused.
    pub accept_changed_cells: bool,
}

impl InputOptions {
    /// The trial range as the summary shows it ("1-10").
    pub fn rows_label(&self) -> Option<String> {
        self.rows.map(|(a, b)| format!("{a}-{b}"))
    }

    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            encoding: self.encoding,
            delimiter: self.delimiter,
            header_row: self.header_row,
            sheet: self.sheet.clone(),
        }
    }
}

/// One import of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportOptions {
    pub version: u32,
    pub kind: Kind,
    pub file: PathBuf,
    pub input: InputOptions,
    /// The run folder (default: `csmport-runs/<UTC time>-<kind>/`).
    pub out: Option<PathBuf>,
    /// Decide every row against the site and send nothing.
    pub dry_run: bool,
    /// A JSM service project whose customers csmport may look up by email.
    pub service_desk: Option<String>,
    pub batch_size: usize,
    pub rate: f64,
    pub max_tasks: usize,
    pub task_timeout_secs: u64,
    pub slot_wait_secs: u64,
    pub create_organizations: bool,
    pub retries: u32,
    pub retry_budget: u64,
    pub verify: bool,
    pub max_wait_secs: u64,
    /// `csmport delete`: the rows name things to delete (after the run folder's backup).
    pub delete: bool,
    /// In a plan: the organizations earlier steps made, with their detail values
    /// (`known-organizations.csv`), so a CRM id names one the site does not list yet.
    pub known_organizations: Option<PathBuf>,
    /// What the command says about how these options came to be (a retry's options kept from
    /// its run): in the run's log and its summary's input notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Whether two paths name one file (by content when both can be read).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            version: OPTIONS_VERSION,
            kind: Kind::Customers,
            file: PathBuf::new(),
            input: InputOptions::default(),
            out: None,
            dry_run: false,
            known_organizations: None,
            notes: Vec::new(),
            service_desk: None,
            batch_size: DEFAULT_BATCH_SIZE,
            rate: DEFAULT_RATE,
            max_tasks: DEFAULT_TASKS,
            task_timeout_secs: DEFAULT_TASK_TIMEOUT_SECS,
            slot_wait_secs: DEFAULT_SLOT_WAIT_SECS,
            create_organizations: true,
            retries: DEFAULT_RETRIES,
            retry_budget: DEFAULT_RETRY_BUDGET,
            verify: false,
            max_wait_secs: DEFAULT_MAX_WAIT_SECS,
            delete: false,
        }
    }
}

impl ImportOptions {
    /// The import's defaults for `kind` reading `file`.
    pub fn new(kind: Kind, file: &Path) -> ImportOptions {
        ImportOptions {
            kind,
            file: file.to_path_buf(),
            ..ImportOptions::default()
        }
    }

    /// Refuses values no run can use, with the flag that set them.
    pub fn check(&self) -> Result<(), Error> {
        if self.batch_size == 0 || self.batch_size > MAX_PROFILE_BULK_ITEMS {
            return Err(Error::Usage(format!(
                "--batch-size must be between 1 and {MAX_PROFILE_BULK_ITEMS} (the API's limit), got {}",
                self.batch_size
            )));
        }
        if self.max_tasks == 0 {
            return Err(Error::Usage("--max-tasks must be at least 1".into()));
        }
        check_rate(self.rate)?;
        if let Some(fmt) = &self.input.date_format {
            check_date_format(fmt)?;
        }
        if self.input.update_definitions && self.kind != Kind::DetailFields {
            return Err(Error::Usage(format!(
                "--update-definitions edits detail-field definitions: it is for `detail-fields` files, not {}",
                self.kind.as_str()
            )));
        }
        Ok(())
    }

    /// The retry policy of these options.
    pub fn policy(&self) -> retry::Policy {
        let max_wait = Duration::from_secs(self.max_wait_secs.max(1));
        let default = retry::Policy::default();
        retry::Policy {
            max_attempts: self.retries.saturating_add(1),
            max_hint: max_wait,
            cap: default.cap.min(max_wait),
            budget: self.retry_budget,
            patience: Duration::from_secs(self.slot_wait_secs.max(1)),
            ..default
        }
    }

    /// What the run's kind is told of it (`kinds::Setup`, `kinds::Cx`).
    pub fn for_kind(&self) -> KindOptions<'_> {
        KindOptions {
            kind: self.kind,
            input: &self.input,
            batch_size: self.batch_size,
            dry_run: self.dry_run,
            delete: self.delete,
            create_organizations: self.create_organizations,
            known_organizations: self.known_organizations.as_deref(),
            out: self.out.as_deref(),
        }
    }

    /// The site this run talks to, set up as its options say.
    pub fn site(&self, target: &Target, notify: Arc<dyn Notify>) -> Site {
        Site::connect(
            target,
            self.rate,
            self.policy(),
            self.service_desk.clone(),
            notify,
        )
    }

    pub fn task_timeout(&self) -> Duration {
        Duration::from_secs(self.task_timeout_secs.max(1))
    }

    pub fn slot_wait(&self) -> Duration {
        Duration::from_secs(self.slot_wait_secs.max(1))
    }

    /// These options as the journal keeps them: paths absolute (so `resume` works from any
    /// folder) and the run folder fixed.
    pub fn journaled(&self, dir: &Path) -> Result<ImportOptions, Error> {
        let abs = |p: &Path| {
            std::path::absolute(p)
                .map_err(|e| Error::Usage(format!("{}: cannot be resolved: {e}", p.display())))
        };
        let mut o = self.clone();
        o.version = OPTIONS_VERSION;
        o.file = abs(&o.file)?;
        o.input.mapping = o.input.mapping.as_deref().map(abs).transpose()?;
        o.input.schema = o.input.schema.as_deref().map(abs).transpose()?;
        o.out = Some(abs(dir)?);
        Ok(o)
    }

    /// Options for a retry of a run's report: what the command line gives wins; what it leaves
    /// unset comes from the run (`run`, as its journal recorded them; `mapping`: the run's copy
    /// of its mapping). How the file is read (encoding, sheet, header row) is not carried: the
    /// report is csmport's own CSV. Each option kept from the run, and a mapping given on the
    /// line over the run's, is noted.
    pub fn remembering(&mut self, run: &ImportOptions, mapping: Option<PathBuf>) {
        let mut kept = Vec::new();
        let (line, was) = (&mut self.input, &run.input);
        let run_mapping = mapping.or_else(|| was.mapping.clone());
        match (&line.mapping, run_mapping) {
            (None, Some(m)) => {
                kept.push(format!("--mapping {}", m.display()));
                line.mapping = Some(m);
            }
            (Some(given), Some(m)) if !same_file(given, &m) => self.notes.push(format!(
                "--mapping {} given: the run read its rows with {} (kept in its folder)",
                given.display(),
                m.display()
            )),
            _ => {}
        }
        let mut take = |given: &mut Option<String>, was: &Option<String>, flag: &str| {
            if given.is_none() && was.is_some() {
                *given = was.clone();
                kept.push(format!("{flag} {}", was.as_deref().unwrap_or_default()));
            }
        };
        take(&mut line.date_format, &was.date_format, "--date-format");
        take(
            &mut line.organizations_by,
            &was.organizations_by,
            "--organizations-by",
        );
        take(&mut line.customers_by, &was.customers_by, "--customers-by");
        take(&mut self.service_desk, &run.service_desk, "--service-desk");
        let line = &mut self.input;
        if line.schema.is_none() && was.schema.is_some() {
            line.schema = was.schema.clone();
            kept.push("--schema".into());
        }
        if !line.ignore_unknown_columns && was.ignore_unknown_columns {
            line.ignore_unknown_columns = true;
            kept.push("--ignore-unknown-columns".into());
        }
        if !line.update_definitions && was.update_definitions {
            line.update_definitions = true;
            kept.push("--update-definitions".into());
        }
        if line.invalid_values == InvalidValues::default()
            && was.invalid_values != line.invalid_values
        {
            line.invalid_values = was.invalid_values;
            kept.push("--invalid-values blank".into());
        }
        if line.op == Op::default() && was.op != line.op {
            line.op = was.op;
            kept.push(format!("--op {}", crate::site::api::Choice::name(was.op)));
        }
        if self.create_organizations && !run.create_organizations {
            self.create_organizations = false;
            kept.push("--no-create-organizations".into());
        }
        if !kept.is_empty() {
            self.notes
                .push(format!("options kept from the run: {}", kept.join(", ")));
        }
    }

    /// Options a journal recorded; refused when a newer csmport wrote them.
    pub fn from_journal(text: &str) -> Result<ImportOptions, String> {
        let o: ImportOptions = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if o.version > OPTIONS_VERSION {
            return Err(format!(
                "its options are version {}, this csmport reads up to {OPTIONS_VERSION} (it was written by a newer csmport)",
                o.version
            ));
        }
        Ok(o)
    }
}

/// A format that reads no date at all is a usage error, caught before any row is read.
pub fn check_date_format(fmt: &str) -> Result<(), Error> {
    let has_day = fmt.contains("%d") || fmt.contains("%e") || fmt.contains("%j");
    let has_month = ["%m", "%b", "%B", "%h"].iter().any(|m| fmt.contains(m));
    let has_year = fmt.contains("%Y") || fmt.contains("%y");
    if !(has_day && has_month && has_year) {
        return Err(Error::Usage(format!(
            "--date-format '{fmt}' must name a day, a month and a year (e.g. %d/%m/%Y or %m/%d/%Y)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_keeps_what_its_line_leaves_unset() {
        let mut run = ImportOptions::new(Kind::Customers, Path::new("/data/c.csv"));
        run.input.mapping = Some("/data/m.toml".into());
        run.input.ignore_unknown_columns = true;
        run.input.invalid_values = InvalidValues::Blank;
        run.input.date_format = Some("%d/%m/%Y".into());
        run.service_desk = Some("1".into());
        run.create_organizations = false;
        // Nothing on the line: everything from the run, the mapping from its copy.
        let mut line = ImportOptions::new(Kind::Customers, Path::new("run/failures.csv"));
        line.remembering(&run, Some("run/mapping.toml".into()));
        assert_eq!(
            line.input.mapping.as_deref(),
            Some(Path::new("run/mapping.toml"))
        );
        assert!(line.input.ignore_unknown_columns && !line.create_organizations);
        assert_eq!(line.input.invalid_values, InvalidValues::Blank);
        assert_eq!(line.input.date_format.as_deref(), Some("%d/%m/%Y"));
        assert_eq!(line.service_desk.as_deref(), Some("1"));
        assert_eq!(line.notes.len(), 1, "{:?}", line.notes);
        assert!(line.notes[0].starts_with("options kept from the run: --mapping run/mapping.toml"));
        // What the line gives wins, and a different mapping is noted.
        let mut line = ImportOptions::new(Kind::Customers, Path::new("run/failures.csv"));
        line.input.mapping = Some("/elsewhere/other.toml".into());
        line.input.date_format = Some("%Y-%m-%d".into());
        line.remembering(&run, None);
        assert_eq!(
            line.input.mapping.as_deref(),
            Some(Path::new("/elsewhere/other.toml"))
        );
        assert_eq!(line.input.date_format.as_deref(), Some("%Y-%m-%d"));
        assert!(
            line.notes[0].contains("--mapping /elsewhere/other.toml given"),
            "{:?}",
            line.notes
        );
        // A run without options of note: nothing said.
        let mut line = ImportOptions::new(Kind::Customers, Path::new("run/failures.csv"));
        line.remembering(
            &ImportOptions::new(Kind::Customers, Path::new("/x.csv")),
            None,
        );
        assert!(line.notes.is_empty());
    }

    #[test]
    fn journaled_options_round_trip_and_tolerate_missing_and_unknown_fields() {
        let o = ImportOptions::new(Kind::Organizations, Path::new("/data/orgs.csv"));
        let text = serde_json::to_string(&o).unwrap();
        assert_eq!(ImportOptions::from_journal(&text).unwrap(), o);
        // An older journal without newer fields, with a field since renamed: defaults fill in.
        let old = r#"{"version":1,"kind":"customers","file":"/x.csv","batch_size":50,"no_such_flag":true}"#;
        let o = ImportOptions::from_journal(old).unwrap();
        assert_eq!(
            (o.batch_size, o.slot_wait_secs),
            (50, DEFAULT_SLOT_WAIT_SECS)
        );
        assert!(o.create_organizations);
        let newer = r#"{"version":99,"kind":"customers"}"#;
        let e = ImportOptions::from_journal(newer).unwrap_err();
        assert!(e.contains("newer csmport"), "{e}");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let base = ImportOptions::new(Kind::Customers, Path::new("c.csv"));
        let cases = [
            (
                ImportOptions {
                    batch_size: 0,
                    ..base.clone()
                },
                "--batch-size",
            ),
            (
                ImportOptions {
                    batch_size: 101,
                    ..base.clone()
                },
                "--batch-size",
            ),
            (
                ImportOptions {
                    max_tasks: 0,
                    ..base.clone()
                },
                "--max-tasks",
            ),
            (
                ImportOptions {
                    rate: 0.0,
                    ..base.clone()
                },
                "--rate",
            ),
        ];
        for (o, flag) in cases {
            let e = o.check().unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
        assert!(base.check().is_ok());
    }
}
