//! Command-line surface (clap derive): plain mirrors of the flags, resolved into typed settings
//! by `config` and the commands. Nothing outside `cmd` and `config` sees these types.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};

pub use crate::kinds::Kind;
use crate::options;
pub use crate::options::Op;
use crate::site::api::Choice;

/// A `Choice` as clap's value parser: the names, aliases and help lines a derived `ValueEnum`
/// gives, so the domain's enums below the command layer need no clap. `values` may be a subset
/// (the kinds a command takes).
#[derive(Clone)]
pub struct ChoiceParser<T: 'static> {
    values: &'static [T],
    /// Whether help lists each value's line (a subset's values are named plainly: the lines
    /// describe the whole set's use, e.g. what an import of a kind reads).
    help: bool,
}

/// Every value of `T`.
pub fn choice<T: Choice>() -> ChoiceParser<T> {
    ChoiceParser {
        values: T::ALL,
        help: true,
    }
}

/// Only `values` of `T`, named without their help lines.
pub fn choice_of<T: Choice>(values: &'static [T]) -> ChoiceParser<T> {
    ChoiceParser {
        values,
        help: false,
    }
}

impl<T: Choice> ChoiceParser<T> {
    fn possible(&self) -> impl Iterator<Item = clap::builder::PossibleValue> + '_ {
        self.values.iter().map(|v| {
            let p =
                clap::builder::PossibleValue::new(v.name()).aliases(v.aliases().iter().copied());
            if v.help().is_empty() || !self.help {
                p
            } else {
                p.help(v.help())
            }
        })
    }
}

impl<T: Choice + Clone> clap::builder::TypedValueParser for ChoiceParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        // clap's own parser says what was wrong and lists what is possible.
        let text =
            clap::builder::PossibleValuesParser::new(self.possible()).parse_ref(cmd, arg, value)?;
        let ignore_case = arg.is_some_and(clap::Arg::is_ignore_case_set);
        self.values
            .iter()
            .copied()
            .find(|v| T::named(&text, ignore_case) == Some(*v))
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(self.possible()))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "csmport",
    version,
    about = "Bulk import and export for Atlassian Customer Service Management (CSM), without losing a row",
    after_help = "Exit codes: 0 all rows succeeded, 1 some rows failed (see the run folder), 2 usage/config/unreadable input, 3 authentication or network, 4 interrupted."
)]
pub struct Cli {
    /// Site and credentials given before the command; the command's own copies (after it)
    /// are merged into these by [`Cli::merge_command_options`].
    #[command(flatten)]
    pub target: TargetArgs,
    /// Run against an in-process sandbox seeded with sample-data/ instead of a real site
    #[arg(long, help_heading = "Global options")]
    pub sandbox: bool,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Requests per second at most (import, retry, export, delete): given before the command
    /// it is the same as after it
    #[arg(long, help_heading = "Global options", value_name = "N")]
    pub rate: Option<f64>,
    /// More on stderr: -v every line of run.log as it is written, -vv also one line per HTTP
    /// attempt (method, path, status, time, idempotency key; never credentials); for `sandbox`,
    /// a line per request. RUST_LOG (e.g. csmport=debug) overrides
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress line and no summary text: only errors (and the JSON with --json)
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Output and configuration options of the commands that have them; given before the command
/// or after it.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Global options")]
pub struct SessionArgs {
    /// Print the summary as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// The config file (default: csmport.toml in the platform's config directory, e.g.
    /// ~/.config/csmport/csmport.toml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A profile of the config file ([profiles.NAME]: base_url, cloud_id, site, email,
    /// service_desk, rate, batch_size, max_tasks); flags and environment win over it
    #[arg(long, env = "CSM_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

/// `--sandbox` and the site options, for the commands that talk to a site.
#[derive(Debug, Args, Clone, Default)]
pub struct SiteArgs {
    /// Run against an in-process sandbox seeded with sample-data/ instead of a real site
    #[arg(long, help_heading = "Site and credentials")]
    pub sandbox: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// The ids of the site and credential options ([`TargetArgs`]' fields).
const TARGET_IDS: [&str; 14] = [
    "base_url",
    "cloud_id",
    "access_token",
    "email",
    "api_token",
    "access_token_file",
    "api_token_file",
    "api_token_stdin",
    "client_id",
    "client_secret_file",
    "token_url",
    "access_token_command",
    "site",
    "record",
];
const SESSION_IDS: [&str; 3] = ["json", "config", "profile"];

impl Cli {
    /// Folds the options given after the command into the ones given before it, so the rest
    /// of the program reads one place (`cli.target`, `cli.sandbox`, `cli.session`). An option
    /// given before a command that has no use for it (`csmport --access-token T sandbox`) is
    /// refused rather than ignored.
    pub fn merge_command_options(&mut self, matches: &ArgMatches) -> Result<(), String> {
        let (name, sub) = matches.subcommand().expect("clap requires a command");
        let sub = match sub.subcommand() {
            Some((_, nested)) => nested,
            None => sub,
        };
        let (target, session, sandbox, json) = match &mut self.command {
            Command::Import(ImportArgs { site, .. })
            | Command::Validate(ValidateArgs { site, .. })
            | Command::Retry(RetryArgs { site, .. })
            | Command::Resume(ResumeArgs { site, .. })
            | Command::Export(ExportArgs { site, .. })
            | Command::Delete(DeleteArgs { site, .. })
            | Command::Doctor(DoctorArgs { site, .. }) => (
                Some(&site.target),
                Some(&site.session),
                Some(site.sandbox),
                None,
            ),
            Command::Config(ConfigCommand::Show(a)) => {
                (Some(&a.target), Some(&a.session), None, None)
            }
            Command::Status(a) => (None, None, None, Some(a.json)),
            Command::Prune(a) => (None, None, None, Some(a.json)),
            Command::Report(_) | Command::Init(_) => (None, None, None, None),
            Command::Sandbox(_) | Command::Completions { .. } | Command::Man(_) => {
                (None, None, None, None)
            }
        };
        let given_before = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let refuse = |id: &str| {
            format!(
                "--{} is not an option of `csmport {name}` (its options: csmport {name} --help)",
                id.replace('_', "-")
            )
        };
        match target {
            Some(t) => merge_target(&mut self.target, t.clone(), matches, sub),
            None => {
                if let Some(id) = TARGET_IDS.into_iter().find(|id| given_before(id)) {
                    return Err(refuse(id));
                }
            }
        }
        match session {
            Some(s) => {
                let top = &mut self.session;
                top.json |= s.json;
                pick(&mut top.config, s.config.clone(), matches, sub, "config");
                pick(&mut top.profile, s.profile.clone(), matches, sub, "profile");
            }
            None => {
                let allowed = |id: &str| id == "json" && json.is_some();
                if let Some(id) = SESSION_IDS
                    .into_iter()
                    .find(|id| given_before(id) && !allowed(id))
                {
                    return Err(refuse(id));
                }
            }
        }
        if let Some(r) = self.rate {
            // `config show` shows it and where it came from.
            let shown = matches!(self.command, Command::Config(_));
            let slot = match &mut self.command {
                Command::Import(ImportArgs { run, .. }) | Command::Retry(RetryArgs { run, .. }) => {
                    Some(&mut run.rate)
                }
                Command::Export(a) => Some(&mut a.rate),
                Command::Delete(a) => Some(&mut a.rate),
                _ => None,
            };
            match slot {
                None if shown => {}
                // The copy after the command wins, as for every other option.
                Some(rate) if sub.value_source("rate") != Some(ValueSource::CommandLine) => {
                    *rate = r
                }
                Some(_) => {}
                None => return Err(refuse("rate")),
            }
        }
        match sandbox {
            Some(b) => self.sandbox |= b,
            None if given_before("sandbox") => return Err(refuse("sandbox")),
            None => {}
        }
        if let Some(j) = json {
            self.session.json |= j;
        }
        let t = &self.target;
        if t.api_token_stdin && t.api_token_file.is_some() {
            return Err(
                "--api-token-file and --api-token-stdin both give the API token: give one".into(),
            );
        }
        Ok(())
    }
}

/// The command's copy of an option wins when it was given on the command line, or when the
/// one before the command was not (both read the same environment variable).
fn pick<T>(top: &mut Option<T>, sub: Option<T>, m: &ArgMatches, s: &ArgMatches, id: &str) {
    let on_line = |m: &ArgMatches| m.value_source(id) == Some(ValueSource::CommandLine);
    if sub.is_some() && (on_line(s) || !on_line(m)) {
        *top = sub;
    }
}

fn merge_target(top: &mut TargetArgs, sub: TargetArgs, m: &ArgMatches, s: &ArgMatches) {
    pick(&mut top.base_url, sub.base_url, m, s, "base_url");
    pick(&mut top.cloud_id, sub.cloud_id, m, s, "cloud_id");
    pick(
        &mut top.access_token,
        sub.access_token,
        m,
        s,
        "access_token",
    );
    pick(&mut top.email, sub.email, m, s, "email");
    pick(&mut top.api_token, sub.api_token, m, s, "api_token");
    pick(
        &mut top.access_token_file,
        sub.access_token_file,
        m,
        s,
        "access_token_file",
    );
    pick(
        &mut top.api_token_file,
        sub.api_token_file,
        m,
        s,
        "api_token_file",
    );
    pick(&mut top.client_id, sub.client_id, m, s, "client_id");
    pick(
        &mut top.client_secret_file,
        sub.client_secret_file,
        m,
        s,
        "client_secret_file",
    );
    pick(&mut top.token_url, sub.token_url, m, s, "token_url");
    pick(
        &mut top.access_token_command,
        sub.access_token_command,
        m,
        s,
        "access_token_command",
    );
    pick(&mut top.site, sub.site, m, s, "site");
    pick(&mut top.record, sub.record, m, s, "record");
    top.api_token_stdin |= sub.api_token_stdin;
}

/// Where to send requests, and as whom. Flags win over environment variables.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Site and credentials")]
pub struct TargetArgs {
    /// API gateway base URL
    #[arg(long, env = "CSM_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Cloud id of the site (https://SITE.atlassian.net/_edge/tenant_info shows it)
    #[arg(long, env = "CSM_CLOUD_ID", value_name = "ID")]
    pub cloud_id: Option<String>,
    /// OAuth 2.0 access token (sent as Bearer)
    #[arg(
        long,
        env = "CSM_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub access_token: Option<String>,
    /// Atlassian account email, for Basic auth with --api-token
    #[arg(long, env = "CSM_EMAIL", value_name = "EMAIL")]
    pub email: Option<String>,
    /// Atlassian API token, for Basic auth with --email
    #[arg(
        long,
        env = "CSM_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub api_token: Option<String>,
    /// Read the OAuth access token from FILE (readable by you alone: chmod 600); unlike a
    /// flag, `ps` does not show it. Wins over CSM_ACCESS_TOKEN
    #[arg(long, value_name = "FILE")]
    pub access_token_file: Option<PathBuf>,
    /// Read the API token from FILE (readable by you alone: chmod 600). Wins over
    /// CSM_API_TOKEN
    #[arg(long, value_name = "FILE", conflicts_with = "api_token_stdin")]
    pub api_token_file: Option<PathBuf>,
    /// Read the API token from standard input (one line), e.g. from a password manager
    #[arg(long)]
    pub api_token_stdin: bool,
    /// A service account's OAuth 2.0 client id: csmport gets access tokens with it and the
    /// client secret (--client-secret-file or CSM_CLIENT_SECRET), and renews them before they
    /// expire and after a 401; for long, unattended runs
    #[arg(long, env = "CSM_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the client secret of --client-id from FILE (readable by you alone: chmod 600);
    /// wins over CSM_CLIENT_SECRET
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// The token endpoint --client-id asks (default: Atlassian's,
    /// https://auth.atlassian.com/oauth/token)
    #[arg(long, env = "CSM_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,
    /// A command that prints an access token (its first line), run at the start and again
    /// when the site answers 401, as a git credential helper is
    #[arg(long, env = "CSM_ACCESS_TOKEN_COMMAND", value_name = "CMD")]
    pub access_token_command: Option<String>,
    /// The Jira site (https://SITE.atlassian.net) for JSM lookups CSM cannot do (customers by
    /// email); default: through the API gateway
    #[arg(long, env = "CSM_SITE", value_name = "URL")]
    pub site: Option<String>,
    /// Write every request and answer to a JSON-lines file in DIR (credentials redacted; the
    /// bodies hold your customer data), to attach to a bug report
    #[arg(long, value_name = "DIR")]
    pub record: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import rows from a file into CSM
    #[command(
        after_help = "Examples:\n  csmport import customers customers.csv --limit 10\n  csmport import --plan migration.toml"
    )]
    Import(ImportArgs),
    /// Read, map and validate a file without sending anything (exit 1 if any row is invalid)
    #[command(
        after_help = "Examples:\n  csmport validate customers customers.csv --schema fields.json\n  csmport validate organizations accounts.csv customers contacts.csv"
    )]
    Validate(ValidateArgs),
    /// Import again exactly the rows of a failures.csv (fixed in place or not), as a new run
    #[command(
        after_help = "Examples:\n  csmport retry csmport-runs/20261203T091500Z-customers/failures.csv"
    )]
    Retry(RetryArgs),
    /// Finish an import that stopped early (Ctrl-C, crash, kill) from its run folder's journal
    #[command(
        after_help = "Examples:\n  csmport resume csmport-runs/20261203T091500Z-customers\n  csmport status   (first: what resume would do)"
    )]
    Resume(ResumeArgs),
    /// Delete what the rows of a file name (products, organizations, customers, entitlements,
    /// detail fields), after writing a backup that `import` puts back
    #[command(
        after_help = "Examples:\n  csmport delete products old-products.csv --dry-run\n  csmport delete customers test-accounts.csv --service-desk 1 --yes\n  csmport delete customers --where 'Customer Tier=Test' --dry-run\n  csmport import customers csmport-runs/20261204T101500Z-delete-customers/backup.csv   (undo)"
    )]
    Delete(DeleteArgs),
    /// Export what the site holds to a CSV or XLSX file (the import templates' columns)
    #[command(
        after_help = "Examples:\n  csmport export customers --out customers.xlsx\n  csmport export customers organizations --out site.xlsx\n  csmport export customers --where 'Customer Tier=Gold' --out gold.csv"
    )]
    Export(ExportArgs),
    /// Turn a folder of CRM exports (Salesforce, HubSpot, Zendesk) into a migration plan:
    /// csmport-plan.toml, detail-fields.csv and the mappings, ready for validate and import
    #[command(
        after_help = "Examples:\n  csmport init salesforce ./sf-export\n  csmport validate --plan ./sf-export/csmport-plan.toml\n  csmport import --plan ./sf-export/csmport-plan.toml"
    )]
    Init(InitArgs),
    /// Show what a run folder says about its run (the latest under csmport-runs/ by default):
    /// rows by outcome, open rows, tasks, what `resume` would do; reads only the folder
    #[command(
        after_help = "Examples:\n  csmport status\n  csmport status csmport-runs/20261203T091500Z-customers --json"
    )]
    Status(StatusArgs),
    /// Remove old run folders (under csmport-runs/ by default), never one with rows open or a
    /// delete's backup unless --force; prints what it removed and the space freed
    #[command(
        after_help = "Examples:\n  csmport prune --keep 20\n  csmport prune --older-than 30 --dry-run\n  csmport prune --keep 5 --older-than 7 /srv/csm/csmport-runs"
    )]
    Prune(PruneArgs),
    /// Write a run folder's report.html again (every run writes one): the outcome, the
    /// reasons rows failed, the pace; one file that opens offline
    #[command(
        after_help = "Examples:\n  csmport report csmport-runs/20261203T091500Z-customers\n  csmport report csmport-runs/20261203T091500Z-customers --open"
    )]
    Report(ReportArgs),
    /// The configuration in effect: `config show` prints every setting, its value and where
    /// it came from (flag, environment, profile, default), secrets masked
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell) on stdout
    #[command(
        after_help = "Examples:\n  csmport completions bash > ~/.local/share/bash-completion/completions/csmport\n  csmport completions zsh > ~/.zfunc/_csmport"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff) on stdout, or write every page to a folder; generated from
    /// these definitions
    #[command(
        after_help = "Examples:\n  csmport man > csmport.1 && man ./csmport.1\n  csmport man import | man -l -\n  csmport man --dir ~/.local/share/man/man1"
    )]
    Man(ManArgs),
    /// Run the local CSM emulator
    #[command(
        after_help = "Examples:\n  csmport sandbox --addr 127.0.0.1:8080 --sample-data\n  csmport sandbox --rate-limit 4 --fault-500 0.05   (a site under load)"
    )]
    Sandbox(SandboxArgs),
    /// Check, without writing anything, that the site answers the way csmport expects:
    /// reachability, cloud id, credentials and permissions, CSM, JSM listings, clock, run
    /// folder, and the shape of every read csmport uses
    #[command(
        after_help = "Examples:\n  csmport doctor\n  csmport doctor --site https://acme.atlassian.net --service-desk 1 --json"
    )]
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The folder the runs are in
    #[arg(value_name = "DIR", default_value = "csmport-runs")]
    pub dir: PathBuf,
    /// Keep the N newest runs, whatever their age
    #[arg(long, value_name = "N")]
    pub keep: Option<u64>,
    /// Remove only runs begun more than DAYS days ago
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u64>,
    /// Remove runs with rows open, runs that never ended and deletes' backups too
    #[arg(long)]
    pub force: bool,
    /// Say what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was done as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (e.g. `import`, or `config show`); default: csmport's
    /// own page, which lists the others
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Vec<String>,
    /// Write csmport.1 and one page per command (csmport-import.1, …) into this folder
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A JSM service project to check the customer listing of (lookups by email use it)
    #[arg(long, value_name = "ID")]
    pub service_desk: Option<String>,
    /// The folder runs are written to (default: csmport-runs)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// What the file's rows name: products (id or name), organizations (id or name), customers
    /// (id, or email with --service-desk), entitlements (id, or customer/organization and
    /// product), detail-fields (entity and name), customer-details / organization-details (the
    /// values of the fields a row names, wide or long layout, are cleared)
    #[arg(value_name = "KIND", value_parser = choice_of(Kind::DELETED))]
    pub kind: Kind,
    /// The file (CSV or spreadsheet); columns other than the identifying ones are left alone,
    /// so an export, a backup or a failures.csv can be given as it is
    #[arg(required_unless_present = "where_")]
    pub file: Option<PathBuf>,
    /// Instead of a file: the customers whose detail field FIELD holds VALUE (repeatable: all
    /// must hold), found through the site's search by detail field; their ids are written to
    /// targets.csv in the run folder, which the run reads as its input
    #[arg(long = "where", value_name = "FIELD=VALUE", conflicts_with = "file")]
    pub where_: Vec<String>,
    /// Delete without asking (required when there is no terminal to ask on)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Find everything and write the backup, delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The backup's format: csv (default) or xlsx
    #[arg(long, value_parser = choice::<crate::export::write::ExportFormat>())]
    pub format: Option<crate::export::write::ExportFormat>,
    /// A JSM service project whose customers csmport may look up by email
    #[arg(long, value_name = "ID")]
    pub service_desk: Option<String>,
    #[command(flatten)]
    pub dialect: DialectArgs,
    /// Run folder (default: csmport-runs/<UTC time>-delete-<kind>/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Requests per second at most
    #[arg(long, env = "CSM_RATE", default_value_t = options::DEFAULT_RATE, value_name = "N")]
    pub rate: f64,
    /// Retries of a read whose outcome is unknown (a delete whose answer is lost is settled by
    /// reading the site, never sent again blindly)
    #[arg(long, default_value_t = options::DEFAULT_RETRIES, value_name = "N")]
    pub retries: u32,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export; several kinds go into one .xlsx, one sheet each
    #[arg(required = true, num_args = 1.., value_name = "KIND", value_parser = choice_of(Kind::EXPORTED))]
    pub kinds: Vec<Kind>,
    /// The file to write (.csv or .xlsx); written under a temporary name and renamed at the
    /// end. May hold {date}, {time} and {kind} (e.g. customers-{date}.csv)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write what changed since the earlier export (the file --out replaces, or --since):
    /// one row per record added or removed and per column changed (.csv or .xlsx; templates
    /// as --out)
    #[arg(long, value_name = "FILE")]
    pub changes: Option<PathBuf>,
    /// Compare with this earlier export instead of the file --out replaces
    #[arg(long, value_name = "FILE", requires = "changes")]
    pub since: Option<PathBuf>,
    /// The column organizations are told apart by in --changes (default: name), e.g.
    /// --key 'External ID'
    #[arg(long, value_name = "COLUMN", requires = "changes")]
    pub key: Option<String>,
    /// After a successful export, keep only the N newest files of each template (--out,
    /// --changes, --report) and remove the older ones
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
    /// {date} and {time} in the machine's time zone (default: UTC)
    #[arg(long)]
    pub local_time: bool,
    /// Go on from where the same export stopped (Ctrl-C, a kill, the site gone): what it
    /// read is kept beside --out and is not read again
    #[arg(long)]
    pub resume: bool,
    /// File format (default: from the --out extension)
    #[arg(long, value_parser = choice::<crate::export::write::ExportFormat>())]
    pub format: Option<crate::export::write::ExportFormat>,
    /// Start a CSV with a UTF-8 byte-order mark (Excel then reads it as UTF-8)
    #[arg(long)]
    pub bom: bool,
    /// CSV field delimiter: , ; tab | or another single character
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter, default_value = ",")]
    pub delimiter: u8,
    /// Customers of this JSM service project only (default: the customers of every service
    /// project the credentials can see, and the members of every organization)
    #[arg(long, value_name = "ID")]
    pub service_desk: Option<String>,
    /// When a listing customers are found through is refused (403) or not there (404), export
    /// what the others give, with a warning, instead of failing (exit 3)
    #[arg(long)]
    pub allow_partial: bool,
    /// Export only these: one id, email or name a line (or a CSV's first column)
    #[arg(long, value_name = "FILE")]
    pub ids: Option<PathBuf>,
    /// Only the customers whose detail field FIELD holds VALUE (repeatable: all must hold),
    /// found through the site's search by detail field, e.g. --where 'Customer Tier=Gold'
    #[arg(long = "where", value_name = "FIELD=VALUE", conflicts_with = "ids")]
    pub where_: Vec<String>,
    /// Also write a report for people (HTML, one file that opens offline): rows per kind,
    /// where customers were found, the output file and its SHA-256
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Requests per second at most
    #[arg(long, env = "CSM_RATE", default_value_t = 10.0, value_name = "N")]
    pub rate: f64,
    /// Read calls in flight at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrency: usize,
    /// Retries of a request whose outcome is unknown (timeouts, 429, 5xx)
    #[arg(long, default_value_t = 7, value_name = "N")]
    pub retries: u32,
    /// Longest single wait before a retry, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub max_wait: u64,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting in effect and where it came from
    #[command(
        after_help = "Examples:\n  csmport config show\n  csmport --profile prod config show --json"
    )]
    Show(ConfigShowArgs),
}

#[derive(Debug, Args)]
pub struct ConfigShowArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run folder (default: the latest under csmport-runs/)
    pub run_dir: Option<PathBuf>,
    /// Print the status as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The CRM the exports come from: salesforce, hubspot or zendesk
    #[arg(value_name = "TEMPLATE")]
    pub template: String,
    /// The folder holding the export files (recognised by their headers, not their names)
    pub dir: PathBuf,
    /// Replace files an earlier init wrote there
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run folder (it holds summary.json)
    pub run_dir: PathBuf,
    /// Open the report in the default browser
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run folder of the import to finish (it holds journal.sqlite)
    pub run_dir: PathBuf,
    /// A JSM service project whose customers csmport may look up by email, when the run had
    /// none (rows it could not read back by email stay open without one)
    #[arg(long, value_name = "ID")]
    pub service_desk: Option<String>,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// A failures.csv written by an earlier run; its `_` columns are ignored
    pub failures: PathBuf,
    /// What the rows are, when the run folder next to the report does not say (summary.json)
    #[arg(long, value_parser = choice::<Kind>())]
    pub kind: Option<Kind>,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub site: SiteArgs,
}

/// What to read: the kind and its files, or a plan.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// What the file holds
    #[arg(id = "kind", value_name = "KIND", required_unless_present = "plan", value_parser = choice::<Kind>())]
    pub kind_arg: Option<Kind>,
    /// The file(s) to read: CSV (any common dialect) or spreadsheets (.xlsx, .xlsm, .xlsb, .xls,
    /// .ods). Several kinds in one run: KIND FILE pairs (`organizations a.csv customers c.csv`)
    #[arg(required_unless_present = "plan", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// A plan (TOML: [[step]] kind, file, ...) of several files, run in dependency order:
    /// detail-fields, organizations, customers, details, products, entitlements
    #[arg(long, value_name = "FILE", conflicts_with_all = ["kind", "files"])]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl InputArgs {
    /// The kind of a single-kind run (clap requires it unless `--plan` is given; a plan's steps
    /// each set it).
    pub fn kind(&self) -> Kind {
        self.kind_arg.unwrap_or(Kind::Customers)
    }
}

/// How a file is read, when detection needs help: shared by every command that reads one.
#[derive(Debug, Args, Clone, Default)]
pub struct DialectArgs {
    /// Character encoding of a CSV (default: detect; a byte-order mark always wins)
    #[arg(long, value_name = "ENCODING", value_parser = choice::<crate::read::Encoding>())]
    pub encoding: Option<crate::read::Encoding>,
    /// Field delimiter of a CSV: , ; tab | or any single character (default: detect)
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Spreadsheet sheet, by name or 1-based number (default: the first sheet with cells)
    #[arg(long, value_name = "NAME|N")]
    pub sheet: Option<String>,
    /// Row that holds the header, 1-based; rows above it are skipped
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_row: Option<u64>,
}

impl DialectArgs {
    pub fn input_options(&self) -> crate::options::InputOptions {
        crate::options::InputOptions {
            encoding: self.encoding,
            delimiter: self.delimiter,
            sheet: self.sheet.clone(),
            header_row: self.header_row,
            ..Default::default()
        }
    }
}

/// How files are read and rows checked: shared by `import`, `validate` and `retry`.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Reading and checking the input")]
pub struct ReadArgs {
    #[command(flatten)]
    pub dialect: DialectArgs,
    /// Accept dates in this format besides ISO, e.g. %d/%m/%Y (strftime syntax)
    #[arg(long, value_name = "FORMAT")]
    pub date_format: Option<String>,
    /// Detail-field definitions from a file (the JSON of GET customer/details) instead of the site
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Skip columns that match no field instead of stopping
    #[arg(long)]
    pub ignore_unknown_columns: bool,
    /// Mapping file (TOML) from the input's columns to CSM fields, e.g. templates/salesforce-contacts.toml
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Only the first N data rows: a trial run (recorded in the journal and the summary)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "rows")]
    pub limit: Option<u64>,
    /// Only data rows A to B (1-based, both included), e.g. 11-500 after a trial of 10
    #[arg(long, value_name = "A-B", value_parser = parse_rows)]
    pub rows: Option<(u64, u64)>,
    /// Run folder (default: csmport-runs/<UTC time>-<kind>/)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// detail-fields: edit fields the site has to the file's definition (options, and renames
    /// through a newName column) instead of failing their rows; types are never changed
    #[arg(long)]
    pub update_definitions: bool,
    /// An invalid value of a detail field: fail its row, or import the row without it (the
    /// cell listed in warnings.csv); a mapping's on_invalid decides per column
    #[arg(long, value_name = "WHAT", default_value = "fail", value_parser = choice::<crate::options::InvalidValues>())]
    pub invalid_values: crate::options::InvalidValues,
    /// Rows name organizations by this organization detail field (the CRM's id, kept in e.g.
    /// "External ID"), not by name or id: customers' organizations column, entitlements'
    /// organization column
    #[arg(long, value_name = "FIELD")]
    pub organizations_by: Option<String>,
    /// Rows name customers by this customer detail field (the CRM's contact id, kept in e.g.
    /// "External ID"), not by email or id: entitlements' customer column, customer-details'
    /// email column
    #[arg(long, value_name = "FIELD")]
    pub customers_by: Option<String>,
    /// A failure report (retry): send cells a spreadsheet changed when it saved the report (a
    /// lost leading zero, scientific notation, a re-formatted date, a wrong encoding) as they
    /// are now, instead of failing their rows
    #[arg(long)]
    pub accept_changed_cells: bool,
}

impl ReadArgs {
    pub fn input_options(&self) -> crate::options::InputOptions {
        crate::options::InputOptions {
            date_format: self.date_format.clone(),
            schema: self.schema.clone(),
            mapping: self.mapping.clone(),
            ignore_unknown_columns: self.ignore_unknown_columns,
            op: Op::default(),
            rows: self.limit.map(|n| (1, n)).or(self.rows),
            update_definitions: self.update_definitions,
            invalid_values: self.invalid_values,
            organizations_by: self.organizations_by.clone(),
            customers_by: self.customers_by.clone(),
            accept_changed_cells: self.accept_changed_cells,
            ..self.dialect.input_options()
        }
    }
}

/// `A-B`: data rows A to B, 1-based, both included.
fn parse_rows(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("'{s}' is not a range of data rows: give A-B, e.g. 1-10 or 501-600");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u64, u64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a == 0 || b < a {
        return Err(format!(
            "'{s}': data rows count from 1 and the range's end comes after its start"
        ));
    }
    Ok((a, b))
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "comma" => Ok(b','),
        "semicolon" => Ok(b';'),
        "pipe" => Ok(b'|'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "'{s}' is not a delimiter: use , ; tab | or another single ASCII character"
        )),
    }
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub site: SiteArgs,
}

/// How an import sends: shared by `import` and `retry`.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Sending")]
pub struct RunArgs {
    /// Operation for each row: create new records only, update existing ones only, or both
    #[arg(long, default_value = "upsert", value_parser = choice::<Op>())]
    pub op: Op,
    /// Read the site and decide every row, write the reports, send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// A JSM service project whose customers csmport may look up by email (entitlements of
    /// customers given by email)
    #[arg(long, value_name = "ID")]
    pub service_desk: Option<String>,
    /// Rows per bulk request (1 to 100; the account kinds take at most 50)
    #[arg(long, default_value_t = options::DEFAULT_BATCH_SIZE, value_name = "N")]
    pub batch_size: usize,
    /// Requests per second at most (fractions allowed)
    #[arg(long, env = "CSM_RATE", default_value_t = options::DEFAULT_RATE, value_name = "N")]
    pub rate: f64,
    /// Unfinished bulk tasks at most (the API allows 5 per site)
    #[arg(long, default_value_t = options::DEFAULT_TASKS, value_name = "N")]
    pub max_tasks: usize,
    /// Seconds to wait for one task; a task still running then stays open for `resume`
    #[arg(long, default_value_t = options::DEFAULT_TASK_TIMEOUT_SECS, value_name = "SECS")]
    pub task_timeout: u64,
    /// Seconds to wait for the site to take a request (a free task slot, the rate limit)
    /// before the run stops as an interrupted one does (exit 4, rows open for `resume`)
    #[arg(long, default_value_t = options::DEFAULT_SLOT_WAIT_SECS, value_name = "SECS")]
    pub slot_wait: u64,
    /// Fail customers that name an organization the site does not have, instead of creating it
    #[arg(long)]
    pub no_create_organizations: bool,
    /// Retries of a request whose outcome is unknown (timeouts, 5xx), with backoff; waits for
    /// the rate limit (429) and for task slots are not retries
    #[arg(long, default_value_t = options::DEFAULT_RETRIES, value_name = "N")]
    pub retries: u32,
    /// Retries the whole run may spend on failures (timeouts, 5xx, dropped connections; 429s
    /// do not count): a server that keeps failing is not hammered
    #[arg(long, default_value_t = options::DEFAULT_RETRY_BUDGET, value_name = "N")]
    pub retry_budget: u64,
    /// After each batch's task ends, read its rows back and say per row whether the site has
    /// them as sent (successes.csv `_verified`: confirmed, drifted, missing)
    #[arg(long)]
    pub verify: bool,
    /// Longest single wait before a retry, in seconds, even when the server asks for longer
    #[arg(long, default_value_t = options::DEFAULT_MAX_WAIT_SECS, value_name = "SECS")]
    pub max_wait: u64,
}

impl Default for RunArgs {
    fn default() -> Self {
        let o = options::ImportOptions::default();
        RunArgs {
            op: o.input.op,
            dry_run: o.dry_run,
            service_desk: o.service_desk,
            batch_size: o.batch_size,
            rate: o.rate,
            max_tasks: o.max_tasks,
            task_timeout: o.task_timeout_secs,
            slot_wait: o.slot_wait_secs,
            no_create_organizations: !o.create_organizations,
            retries: o.retries,
            retry_budget: o.retry_budget,
            verify: o.verify,
            max_wait: o.max_wait_secs,
        }
    }
}

/// The options of one import of `file` as `kind`, from the command line.
pub fn import_options(
    kind: Kind,
    file: &std::path::Path,
    read: &ReadArgs,
    run: &RunArgs,
) -> options::ImportOptions {
    options::ImportOptions {
        kind,
        file: file.to_path_buf(),
        input: options::InputOptions {
            op: run.op,
            ..read.input_options()
        },
        out: read.out.clone(),
        dry_run: run.dry_run,
        service_desk: run.service_desk.clone(),
        batch_size: run.batch_size,
        rate: run.rate,
        max_tasks: run.max_tasks,
        task_timeout_secs: run.task_timeout,
        slot_wait_secs: run.slot_wait,
        create_organizations: !run.no_create_organizations,
        retries: run.retries,
        retry_budget: run.retry_budget,
        verify: run.verify,
        max_wait_secs: run.max_wait,
        ..options::ImportOptions::default()
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub site: SiteArgs,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// The cloud id the sandbox answers to and reports at /_edge/tenant_info (any cloud id in a
    /// request path is accepted)
    #[arg(long, default_value = crate::sandbox::http::SANDBOX_CLOUD_ID, value_name = "ID")]
    pub cloud_id: String,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: String,
    /// Allow listening on a non-loopback address
    #[arg(long)]
    pub allow_remote: bool,
    /// Accepted token: Bearer TOKEN, or Basic with any email and TOKEN as password
    #[arg(long, default_value = "sandbox-token", value_name = "TOKEN")]
    pub token: String,
    /// JSON seed: detail-field definitions (shape of GET customer/details) or an object with
    /// customerDetailFields, organizationDetailFields, entitlementDetailFields, organizations,
    /// customers, products; may be repeated
    #[arg(long, value_name = "FILE")]
    pub seed: Vec<PathBuf>,
    /// Load the sample-data/ seed that --sandbox uses
    #[arg(long)]
    pub sample_data: bool,
    /// Keep everything in this SQLite file and reload it on start (seeds apply only to a new file)
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Base time a bulk task takes, in milliseconds
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub task_latency_ms: u64,
    /// Extra time per item of a bulk task, in milliseconds
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub item_latency_ms: u64,
    /// A task takes up to this fraction longer than its latency, at random (0: exactly its
    /// latency; tasks then finish in the order they were made)
    #[arg(long, default_value_t = 0.5, value_name = "F")]
    pub task_jitter: f64,
    /// This share of tasks (0 to 1) takes --task-tail-factor times as long: most tasks fast,
    /// a few much slower
    #[arg(long, default_value_t = 0.0, value_name = "SHARE")]
    pub task_tail: f64,
    /// How many times as long a task of the tail takes
    #[arg(long, default_value_t = 10.0, value_name = "F")]
    pub task_tail_factor: f64,
    /// Unfinished bulk tasks allowed at once per cloud id
    #[arg(long, default_value_t = crate::site::api::DEFAULT_MAX_TASKS, value_name = "N")]
    pub max_tasks: usize,
    /// A new organization shows in the JSM organization listing only this long after it was
    /// made, as on a real site (eventual consistency); 0: at once
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub listing_lag_ms: u64,
    /// Issue OAuth 2.0 access tokens at POST /oauth/token to this client id (with
    /// --client-secret), as a service account's token endpoint does
    #[arg(long, value_name = "ID", requires = "client_secret")]
    pub client_id: Option<String>,
    /// The client secret the token endpoint takes with --client-id
    #[arg(long, value_name = "SECRET", requires = "client_id")]
    pub client_secret: Option<String>,
    /// Tokens the token endpoint issues expire after this many seconds (then 401), to
    /// rehearse a long run's renewals; the --token the sandbox started with never expires
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub token_ttl: u64,
    /// Close a connection that has had no request in flight for this many seconds (1 to
    /// 3600), so connections opened and forgotten do not pile up
    #[arg(long, default_value_t = 15, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// Answer 404 for any cloud id but --cloud-id, as the API gateway does (by default every
    /// cloud id is served the same)
    #[arg(long)]
    pub strict_cloud_id: bool,
    /// The OAuth scopes the sandbox's tokens have, comma-separated (e.g.
    /// read:customer.detail-field,write:customer.profile; the :jira-service-management suffix
    /// may be left off): a request outside them answers 401 "scope does not match"
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// How long ended tasks are kept (then 404), e.g. 3d, 12h, 90s
    #[arg(long, default_value = "3d", value_name = "DURATION")]
    pub task_retention: String,
    /// Unfinished tasks older than this end FAILED, e.g. 30m
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub stale_task_after: String,
    /// Do not require X-ExperimentalApi: opt-in on experimental methods
    #[arg(long)]
    pub no_experimental_check: bool,
    /// Status for a reused Idempotency-Key with a different body (400, 409 or 422 are likely)
    #[arg(long, default_value_t = crate::site::api::IDEMPOTENCY_CONFLICT_STATUS, value_parser = clap::value_parser!(u16).range(400..=499), value_name = "4XX")]
    pub idempotency_conflict_status: u16,
    /// Check the task-slot limit before the Idempotency-Key, so a repeat of a request that
    /// made a task can be refused for want of a slot (the site's order is not documented)
    #[arg(long)]
    pub slots_before_keys: bool,
    /// Requests per second per credential (token bucket); 429 above it
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<f64>,
    /// Token bucket size for --rate-limit
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub burst: u32,
    /// Leave Retry-After out of 429 answers (the real API sometimes does)
    #[arg(long)]
    pub no_retry_after: bool,
    /// Answer 429 with an HTML body instead of JSON
    #[arg(long)]
    pub html_429: bool,
    /// Seed of the fault generator: the same seed and request order give the same faults
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub fault_seed: u64,
    /// Probability of a 500 answer
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_500: f64,
    /// Probability of a 502 answer
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_502: f64,
    /// Probability of a 503 answer without Retry-After
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_503: f64,
    /// Probability of a 503 answer with Retry-After: 1
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_503_retry_after: f64,
    /// Probability that the connection drops before the request is applied
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_drop_before: f64,
    /// Probability that the connection drops after the request was applied
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_drop_after: f64,
    /// Probability of a 307 redirect instead of an answer (the request is not applied)
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_redirect: f64,
    /// Probability of a slow answer (see --fault-slow-ms)
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_slow: f64,
    /// Delay of a slow answer
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub fault_slow_ms: u64,
    /// A slow answer is delayed after the request is applied, not before (a client killed
    /// meanwhile never learns of work the site did)
    #[arg(long)]
    pub fault_slow_after_applying: bool,
    /// Probability that a new task never finishes
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_stuck_task: f64,
    /// Probability that a new task writes its data but ends FAILED with no failures listed
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_failed_empty: f64,
    /// Probability that a new task applies the first half of its items, then ends FAILED
    /// listing only that half's failures
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fault_failed_half: f64,
    /// Refuse (400) every bulk request with an item containing TEXT, naming the item
    #[arg(long, value_name = "TEXT")]
    pub fault_refuse_item: Option<String>,
    /// Inject the request faults (5xx, drops, slow answers) into bulk submissions only
    #[arg(long)]
    pub fault_bulk_only: bool,
    /// Inject the request faults into requests of these methods only (repeatable or
    /// comma-separated, e.g. DELETE: every delete's answer lost with --fault-drop-after 1)
    #[arg(long, value_name = "METHOD", value_delimiter = ',')]
    pub fault_method: Vec<String>,
    /// Answer 403 on this API path (repeatable; a template as csmport's API module spells it,
    /// e.g. `servicedesk` or `organization/{organizationId}/user`), as for credentials that may
    /// not list it
    #[arg(long, value_name = "PATH")]
    pub forbid: Vec<String>,
    /// Answer the way the docs leave open (repeatable): null-entity-id, extra-fields,
    /// unknown-status, numeric-ids, no-email, renamed-list, renamed-lists
    #[arg(long, value_name = "NAME", value_parser = choice::<crate::sandbox::quirks::Quirk>())]
    pub quirk: Vec<crate::sandbox::quirks::Quirk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ranges() {
        let cases = [
            ("1-10", Some((1, 10))),
            ("501-600", Some((501, 600))),
            (" 7 - 7 ", Some((7, 7))),
            ("0-10", None),
            ("10-1", None),
            ("10", None),
            ("a-b", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rows(text).ok(), want, "{text}");
        }
    }
}
