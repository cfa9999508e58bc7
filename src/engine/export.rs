//! Export, the operation: the kinds asked for read from the site into tables (each kind's own
//! `export::read`, through `kinds::export_table`), then written atomically as CSV or XLSX
//! (`export::write`), with what was found besides the rows.
//! `cmd::export` checks the arguments, sets the site up and prints what this returns.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::error::Error;
use crate::export::reader::{Found, Reader, Settings};
use crate::export::write::{self, CsvOptions, ExportFormat};
use crate::export::{Kind, changes, fetch, names, spool};
use crate::site::api::model::DetailFieldQuery;
use crate::site::client::{Client, Notify};

/// What an export wrote (summary.json of `--json`, and what is printed).
#[derive(Debug, serde::Serialize)]
pub struct ExportSummary {
    pub out: String,
    pub format: ExportFormat,
    /// Rows per kind.
    pub rows: BTreeMap<String, usize>,
    pub elapsed_s: f64,
    /// When the file was written (UTC, to the second): what the export shows of the site is
    /// as of then.
    pub written_at: String,
    pub sha256: String,
    /// Where customers were found, and how many each source gave (customers and
    /// entitlements without `--ids`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub customer_sources: Vec<fetch::SourceCount>,
    /// Listings that could not be read and were left out (`--allow-partial`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_sources: Vec<String>,
    /// What `--ids` names that the site does not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_ids: Vec<String>,
    /// With `--changes`: what differs from the earlier export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangesSummary>,
    /// Older files `--keep` removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    pub exit_code: i32,
    /// Kinds and their row counts in the order they were exported (`rows` is by name).
    #[serde(skip)]
    pub tables: Vec<(Kind, usize)>,
}

impl ExportSummary {
    /// What the export prints.
    pub fn text(&self) -> String {
        let mut text = format!(
            "exported {} to {} in {:.1}s (sha256 {})",
            self.tables
                .iter()
                .map(|(kind, n)| format!(
                    "{} ({})",
                    kind.as_str(),
                    super::report::count(*n as u64, "row")
                ))
                .collect::<Vec<_>>()
                .join(", "),
            self.out,
            self.elapsed_s,
            &self.sha256[..16]
        );
        if !self.customer_sources.is_empty() {
            text.push_str("\n  customers found in ");
            text.push_str(
                &self
                    .customer_sources
                    .iter()
                    .map(|s| format!("{} ({})", s.source, s.customers))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if let Some(c) = &self.changes {
            text.push_str(&format!(
                "\n  changes   {} ({}{})",
                c.line(),
                c.file,
                match &c.since {
                    Some(s) => format!(", compared with {s}"),
                    None => ", the first export: every row is added".into(),
                }
            ));
        }
        if !self.removed.is_empty() {
            text.push_str(&format!(
                "\n  removed   {} (--keep): {}",
                super::report::count(self.removed.len() as u64, "older file"),
                self.removed.join(", ")
            ));
        }
        text
    }
}

/// An export that stopped says where what it read is, and how to go on from it.
pub fn kept_for_resume(e: Error, kept: &str) -> Error {
    let tail = format!(
        "; what was read is kept in {kept}: the same export with --resume goes on from there"
    );
    match e {
        Error::Usage(m) => Error::Usage(m + &tail),
        Error::Auth(m) => Error::Auth(m + &tail),
        Error::Network(m) => Error::Network(m + &tail),
        Error::Site(m) => Error::Site(m + &tail),
        Error::Unlisted(m) => Error::Unlisted(m + &tail),
        Error::Api(m) => Error::Api(m + &tail),
        other => other,
    }
}

/// What `--changes` found: where the change file is, what it was compared with, and the
/// counts (in all, and by kind).
#[derive(Debug, serde::Serialize)]
pub struct ChangesSummary {
    pub file: String,
    /// The earlier export (`--since`, or the file the export replaced); none the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub by_kind: BTreeMap<String, changes::Counts>,
}

impl ChangesSummary {
    /// "30 added, 5 removed, 15 changed".
    pub fn line(&self) -> String {
        format!(
            "{} added, {} removed, {} changed",
            self.added, self.removed, self.changed
        )
    }
}

/// `--changes`: where to write the change file and what to compare with.
pub struct ChangesPlan {
    pub file: std::path::PathBuf,
    pub format: ExportFormat,
    pub since: Option<std::path::PathBuf>,
    /// The column organizations are told apart by (`--key`).
    pub key: Option<String>,
}

impl ChangesPlan {
    /// Before anything is read from the site: `--since` is there and holds each kind with
    /// its key's columns; `--key` goes with organizations.
    pub fn check(&self, kinds: &[Kind]) -> Result<(), Error> {
        for kind in kinds {
            let key = changes::key_of(
                *kind,
                self.key.as_deref().filter(|_| *kind == Kind::Organizations),
            )
            .map_err(|e| Error::Usage(e.to_string()))?;
            if let Some(since) = &self.since {
                changes::open_earlier(*kind, &key, since, true, &write::sheet_of(kind.as_str()))
                    .map_err(|e| Error::Usage(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// The tables read, and what reading found besides their rows.
pub struct Read {
    spool: spool::Spool,
    sheets: Vec<spool::Sheet>,
    found: Found,
}

/// What an export reads, for `--resume` to check it goes on with the same reads.
fn fingerprint(
    settings: &Settings,
    ids: Option<&str>,
    query: &[DetailFieldQuery],
    kinds: &[Kind],
) -> String {
    use sha2::Digest;
    let ids = ids.map(|t| {
        sha2::Sha256::digest(t.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    serde_json::json!({
        "kinds": kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "service_desk": settings.service_desk,
        "allow_partial": settings.allow_partial,
        "ids": ids,
        "where": query.iter().map(|q| format!("{}={}", q.name, q.value)).collect::<Vec<_>>(),
    })
    .to_string()
}

/// Reads `kinds` from the site, one after the other, each a few calls at a time, into the
/// spool beside `out`; with `resume`, goes on from the spool an export that stopped left.
/// What was read stays in the spool when reading fails or is interrupted.
#[allow(clippy::too_many_arguments)]
pub async fn read(
    client: &Client,
    settings: Settings,
    ids: Option<&str>,
    query: &[DetailFieldQuery],
    kinds: &[Kind],
    notify: &dyn Notify,
    out: &Path,
    resume: bool,
) -> Result<Read, Error> {
    let fingerprint = fingerprint(&settings, ids, query, kinds);
    let spool = if resume {
        spool::Spool::resume(out, &fingerprint)
    } else {
        spool::Spool::start(out, &fingerprint)
    }
    .map_err(|e| Error::Usage(format!("--resume: {e}")))?;
    let kept = spool.path().display().to_string();
    let reader = Reader {
        client,
        settings,
        ids,
        query,
        notify,
        found: Default::default(),
    };
    let mut sheets = Vec::new();
    for kind in kinds {
        let sheet = crate::kinds::export_into(&reader, *kind, &spool)
            .await
            .map_err(|e| kept_for_resume(e, &kept))?;
        notify.note(&format!("{}: {} rows", kind.as_str(), sheet.rows));
        sheets.push(sheet);
    }
    let found = reader.found.into_inner().expect("not poisoned");
    Ok(Read {
        spool,
        sheets,
        found,
    })
}

/// Writes what was read to `out` (under a temporary name, renamed at the end) and says what
/// was written; exit 1 when `--ids` named something the site does not have.
pub async fn write(
    read: Read,
    out: &Path,
    format: ExportFormat,
    csv: CsvOptions,
    changes: Option<ChangesPlan>,
    started: Instant,
) -> Result<ExportSummary, Error> {
    let Read {
        spool,
        sheets,
        found,
    } = read;
    let counts: Vec<(Kind, usize)> = sheets.iter().map(|t| (t.kind, t.rows as usize)).collect();
    let path = out.to_path_buf();
    let (sha256, changes) = tokio::task::spawn_blocking(move || {
        let tables = write::Spooled {
            spool: &spool,
            sheets: &sheets,
        };
        let compared = match &changes {
            Some(plan) => Some(compare(plan, &tables, &path)?),
            None => None,
        };
        let rows = |sink: &mut dyn FnMut(Vec<String>) -> Result<(), String>| match &compared {
            Some(c) => c
                .differ
                .each(|row| sink(changes::cells(&c.header, &c.keys, &row))),
            None => Ok(()),
        };
        let extra = compared.as_ref().map(|c| write::Extra {
            name: CHANGES_SHEET,
            header: &c.header,
            rows: &rows,
        });
        let sha = write::write_with(
            &path,
            format,
            &tables,
            extra.as_ref().filter(|_| format == ExportFormat::Xlsx),
            csv,
            write::Access::Umask,
        )
        .map_err(|e| Error::Usage(e.to_string()))?;
        let summary = match (&changes, &compared, &extra) {
            (Some(plan), Some(c), Some(extra)) => {
                write::write_rows(&plan.file, plan.format, extra, csv)
                    .map_err(|e| Error::Usage(format!("the change file: {e}")))?;
                Some(ChangesSummary {
                    file: plan.file.display().to_string(),
                    since: c.since.clone(),
                    added: c.counts.values().map(|x| x.added).sum(),
                    removed: c.counts.values().map(|x| x.removed).sum(),
                    changed: c.counts.values().map(|x| x.changed).sum(),
                    by_kind: c.counts.clone(),
                })
            }
            _ => None,
        };
        spool.finished();
        Ok::<_, Error>((sha, summary))
    })
    .await
    .map_err(|e| Error::Usage(format!("the writer stopped: {e}")))??;
    let exit_code = if found.unknown.is_empty() {
        crate::error::EXIT_OK
    } else {
        crate::error::EXIT_ROWS_FAILED
    };
    Ok(ExportSummary {
        written_at: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        out: out.display().to_string(),
        format,
        rows: counts
            .iter()
            .map(|(k, n)| (k.as_str().to_string(), *n))
            .collect(),
        elapsed_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        sha256,
        customer_sources: found.sources,
        skipped_sources: found.skipped,
        unknown_ids: found.unknown,
        changes,
        removed: Vec::new(),
        exit_code,
        tables: counts,
    })
}

/// The sheet an XLSX export (or an XLSX change file) gets its differences in.
pub const CHANGES_SHEET: &str = "Changes";

/// A comparison done: its working file, the change file's header and the counts by kind.
struct Compared {
    differ: changes::Differ,
    header: Vec<String>,
    keys: Vec<(Kind, changes::Key)>,
    counts: BTreeMap<String, changes::Counts>,
    since: Option<String>,
}

/// Compares each table with the earlier export (`--since`, or the file `out` replaces
/// before it is replaced).
fn compare(plan: &ChangesPlan, tables: &dyn write::Source, out: &Path) -> Result<Compared, Error> {
    let usage = |e: changes::ChangesError| match e {
        changes::ChangesError::Usage(m) => Error::Usage(m),
        other => Error::Usage(other.to_string()),
    };
    let dir = match plan.file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Usage(format!("{}: cannot be made: {e}", dir.display())))?;
    let mut differ = changes::Differ::new(&dir).map_err(usage)?;
    let (earlier, required) = match &plan.since {
        Some(p) => (p.as_path(), true),
        None => (out, false),
    };
    let mut keys = Vec::new();
    let mut counts = BTreeMap::new();
    let mut any_earlier = false;
    for (i, t) in tables.sheets().iter().enumerate() {
        let key = changes::key_of(
            t.kind,
            plan.key
                .as_deref()
                .filter(|_| t.kind == Kind::Organizations),
        )
        .map_err(usage)?;
        let had = differ
            .load_earlier(
                t.kind,
                &key,
                changes::Earlier::File {
                    path: earlier,
                    required,
                },
                &write::sheet_of(t.kind.as_str()),
            )
            .map_err(usage)?;
        any_earlier |= had;
        differ.load_new_from(tables, i, &key).map_err(usage)?;
        counts.insert(
            t.kind.as_str().to_string(),
            differ.compare(t.kind, &key, had).map_err(usage)?,
        );
        keys.push((t.kind, key));
    }
    Ok(Compared {
        differ,
        header: changes::header(&keys),
        keys,
        counts,
        since: any_earlier.then(|| earlier.display().to_string()),
    })
}

/// One export's files, named from their templates (`--out`, `--changes`, `--report`).
pub struct Names {
    pub out: std::path::PathBuf,
    pub changes: Option<std::path::PathBuf>,
    pub report: Option<std::path::PathBuf>,
    templates: Vec<(names::Template, std::path::PathBuf)>,
    stamp: names::Stamp,
}

/// Expands the templates for this export; `--keep` needs one that varies.
pub fn names(
    out: &Path,
    changes: Option<&Path>,
    report: Option<&Path>,
    kinds: &[Kind],
    local_time: bool,
    keep: Option<u64>,
) -> Result<Names, Error> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let stamp = names::Stamp::now(local_time, &kinds);
    let parse = |option, p: &Path| {
        names::Template::parse(option, p).map_err(|e| Error::Usage(e.to_string()))
    };
    let mut templates = Vec::new();
    let mut expand = |option, p: Option<&Path>| -> Result<Option<std::path::PathBuf>, Error> {
        let Some(p) = p else { return Ok(None) };
        let t = parse(option, p)?;
        let path = t.expand(&stamp);
        templates.push((t, path.clone()));
        Ok(Some(path))
    };
    let out = expand("--out", Some(out))?.expect("given");
    let changes = expand("--changes", changes)?;
    let report = expand("--report", report)?;
    if keep.is_some() && !templates.iter().any(|(t, _)| t.varies()) {
        return Err(Error::Usage(format!(
            "--keep: {} names one file, which each export replaces; put {{date}} or {{time}} in its name (e.g. customers-{{date}}.csv) to keep several",
            templates[0].0.given().display()
        )));
    }
    let paths: Vec<&std::path::PathBuf> = templates.iter().map(|(_, p)| p).collect();
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].contains(p) {
            return Err(Error::Usage(format!(
                "{} is named twice (--out, --changes, --report): give each its own file",
                p.display()
            )));
        }
    }
    Ok(Names {
        out,
        changes,
        report,
        templates,
        stamp,
    })
}

impl Names {
    /// After a successful export: the files of each varying template past the `keep` newest,
    /// removed; what was removed, or could not be.
    pub fn keep(&self, keep: u64) -> Vec<Result<std::path::PathBuf, String>> {
        let mut done = Vec::new();
        for (t, written) in &self.templates {
            match t.beyond(keep as usize, &self.stamp, written) {
                Ok(old) => {
                    for p in old {
                        done.push(
                            std::fs::remove_file(&p)
                                .map(|_| p.clone())
                                .map_err(|e| format!("{}: cannot be removed: {e}", p.display())),
                        );
                    }
                }
                Err(e) => done.push(Err(format!(
                    "{}: cannot be listed: {e}",
                    t.given().display()
                ))),
            }
        }
        done
    }
}

/// The lock of the output: a second export to the same file while one runs is refused (exit
/// 75) naming the other; a lock a process that is gone left is taken over, with a note.
pub fn lock(out: &Path) -> Result<(crate::fsx::OutputLock, Option<String>), Error> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Usage(format!("{}: cannot be made: {e}", dir.display())))?;
    }
    crate::fsx::OutputLock::take(out).map_err(|e| match e {
        crate::fsx::LockRefused::Held { lock, holder } => Error::Busy(format!(
            "{} is being written by {holder} (lock {}); run again when it has ended",
            out.display(),
            lock.display()
        )),
        crate::fsx::LockRefused::Io(lock, e) => Error::Usage(format!(
            "{}: the lock {} cannot be made: {e}",
            out.display(),
            lock.display()
        )),
    })
}
