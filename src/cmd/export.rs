//! `csmport export KIND... --out FILE`: reads what the site holds (`export::fetch`), builds
//! tables with the import templates' columns (`export`), and writes them atomically as CSV or
//! XLSX (`export::write`). Any read that fails after its retries fails the export (exit 3, or
//! 2 for a refusal) and nothing is left under the final name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{Cli, ExportArgs};
use crate::error::Error;
use crate::export::fetch::{self, Wanted};
use crate::export::write::{self, CsvOptions, ExportFormat};
use crate::export::{self as ex, ExportKind, HolderName, Table};
use crate::site::api::model::DetailFieldWithConfiguration;
use crate::site::client::{ApiError, Client, Notify, retry};
use crate::site::refs::Entity;

/// `summary` of an export, printed (or given as JSON with --json).
#[derive(Debug, serde::Serialize)]
pub struct ExportSummary {
    pub out: String,
    pub format: ExportFormat,
    /// Rows per kind.
    pub rows: BTreeMap<String, usize>,
    pub elapsed_s: f64,
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
    pub exit_code: i32,
}

pub async fn run(cli: &Cli, args: &ExportArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let format = match args.format {
        Some(f) => f,
        None => format_of(&args.out)?,
    };
    let mut kinds: Vec<ExportKind> = Vec::new();
    for k in &args.kinds {
        if !kinds.contains(k) {
            kinds.push(*k);
        }
    }
    if format == ExportFormat::Csv && kinds.len() > 1 {
        return Err(Error::Usage(format!(
            "{}: a CSV holds one kind; export {} to an .xlsx (one sheet each), or run one export per kind",
            args.out.display(),
            kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(Error::Usage(format!(
            "--rate must be a positive number, got {}",
            args.rate
        )));
    }
    let query = fetch::parse_where(&args.where_).map_err(Error::Usage)?;
    if !query.is_empty() && kinds.iter().any(|k| *k != ExportKind::Customers) {
        return Err(Error::Usage(
            "--where finds customers by a detail field: export only customers with it, the other kinds in another export".into(),
        ));
    }
    let ids = match &args.ids {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("--ids {}: cannot be read: {e}", p.display())))?,
        ),
        None => None,
    };
    let (target, _sandbox) = super::resolve_target(cli).await?;
    let progress = Arc::new(crate::engine::progress::Progress::new(0));
    let notify: Arc<dyn Notify> = progress.clone();
    let policy = retry::Policy {
        max_attempts: args.retries.saturating_add(1),
        max_hint: std::time::Duration::from_secs(args.max_wait.max(1)),
        ..retry::Policy::default()
    };
    let client = Client::new(&target, args.rate, policy, notify.clone());
    let reader = Reader {
        client: &client,
        args,
        ids: ids.as_deref(),
        query: &query,
        notify: &*notify,
        found: Default::default(),
    };
    let mut tables = Vec::new();
    for kind in &kinds {
        let table = reader.table(*kind).await?;
        notify.note(&format!("{}: {} rows", kind.as_str(), table.rows.len()));
        tables.push(table);
    }
    progress.finish();
    let csv = CsvOptions {
        bom: args.bom,
        delimiter: args.delimiter,
    };
    let out = args.out.clone();
    let tables_for_write = tables.clone();
    let sha256 =
        tokio::task::spawn_blocking(move || write::write(&out, format, &tables_for_write, csv))
            .await
            .map_err(|e| Error::Usage(format!("the writer stopped: {e}")))?
            .map_err(|e| Error::Usage(e.to_string()))?;
    let found = reader.found.into_inner().expect("not poisoned");
    let exit_code = if found.unknown.is_empty() {
        crate::error::EXIT_OK
    } else {
        crate::error::EXIT_ROWS_FAILED
    };
    let summary = ExportSummary {
        out: args.out.display().to_string(),
        format,
        rows: tables
            .iter()
            .map(|t| (t.kind.as_str().to_string(), t.rows.len()))
            .collect(),
        elapsed_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        sha256,
        customer_sources: found.sources,
        skipped_sources: found.skipped,
        unknown_ids: found.unknown,
        exit_code,
    };
    let mut text = format!(
        "exported {} to {} in {:.1}s (sha256 {})",
        tables
            .iter()
            .map(|t| format!(
                "{} ({} {})",
                t.kind.as_str(),
                t.rows.len(),
                rows_word(t.rows.len())
            ))
            .collect::<Vec<_>>()
            .join(", "),
        summary.out,
        summary.elapsed_s,
        &summary.sha256[..16]
    );
    if !summary.customer_sources.is_empty() {
        text.push_str("\n  customers found in ");
        text.push_str(
            &summary
                .customer_sources
                .iter()
                .map(|s| format!("{} ({})", s.source, s.customers))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(path) = &args.report {
        let page = crate::engine::html::render_export(
            &serde_json::to_value(&summary).expect("a summary serializes"),
            &format!("{} (cloud {})", target.base_url, target.cloud_id),
        );
        std::fs::write(path, page).map_err(|e| {
            Error::Usage(format!(
                "{}: the report cannot be written: {e}",
                path.display()
            ))
        })?;
    }
    super::print_summary(cli, &text, &summary);
    if !summary.skipped_sources.is_empty() {
        eprintln!(
            "csmport: warning: the export is partial (--allow-partial): {} {} could not be read, so the customers only they hold are missing from {}:",
            summary.skipped_sources.len(),
            if summary.skipped_sources.len() == 1 {
                "listing"
            } else {
                "listings"
            },
            summary.out
        );
        for s in &summary.skipped_sources {
            eprintln!("  {s}");
        }
    }
    if !summary.unknown_ids.is_empty() {
        eprintln!(
            "csmport: --ids: {} not on the site (the file holds the others): {}",
            summary.unknown_ids.len(),
            summary.unknown_ids.join(", ")
        );
    }
    Ok(exit_code)
}

fn rows_word(n: usize) -> &'static str {
    if n == 1 { "row" } else { "rows" }
}

/// What reading found besides the rows: where customers came from, listings left out, and
/// `--ids` entries the site does not have.
#[derive(Debug, Default)]
struct Found {
    sources: Vec<fetch::SourceCount>,
    skipped: Vec<String>,
    unknown: Vec<String>,
}

fn format_of(out: &Path) -> Result<ExportFormat, Error> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => Ok(ExportFormat::Csv),
        Some("xlsx") => Ok(ExportFormat::Xlsx),
        _ => Err(Error::Usage(format!(
            "--out {}: give a .csv or .xlsx file, or --format csv|xlsx",
            out.display()
        ))),
    }
}

struct Reader<'a> {
    client: &'a Client,
    args: &'a ExportArgs,
    ids: Option<&'a str>,
    /// `--where`: customers whose detail fields hold these values.
    query: &'a [crate::site::api::model::DetailFieldQuery],
    notify: &'a dyn Notify,
    found: std::sync::Mutex<Found>,
}

/// A customer listing that could not be read: the export would miss whom it holds.
fn unlisted(u: fetch::Unlisted, one_desk: bool) -> Error {
    let refused = matches!(u.error.status(), Some(403 | 404));
    if !refused || one_desk {
        return failed(&u.source, u.error);
    }
    Error::Unlisted(format!(
        "cannot list {}: {}; an export without it would silently miss the customers only it holds. Give the credentials the permission to see it, or pass --allow-partial to export what the other listings give (with a warning)",
        u.source, u.error
    ))
}

/// The ids asked for that the answers do not have.
fn not_returned<'a>(asked: &[String], got: impl Iterator<Item = &'a String>) -> Vec<String> {
    let got: std::collections::HashSet<&String> = got.collect();
    asked
        .iter()
        .filter(|id| !got.contains(id))
        .cloned()
        .collect()
}

fn failed(what: &str, e: ApiError) -> Error {
    let e = Error::from_setup(e);
    match e {
        Error::Network(m) => Error::Network(format!("{what}: {m}")),
        Error::Auth(m) => Error::Auth(m),
        other => Error::Api(format!("{what}: {other}")),
    }
}

/// Every row of `kind` the site holds, read as `export` reads it (the backup of a delete uses
/// it for what a delete takes with it: a product's entitlements).
pub async fn read_table(
    client: &Client,
    kind: ExportKind,
    service_desk: Option<String>,
) -> Result<Table, Error> {
    let args = ExportArgs {
        kinds: vec![kind],
        out: Default::default(),
        format: None,
        bom: false,
        delimiter: b',',
        service_desk,
        allow_partial: false,
        ids: None,
        where_: Vec::new(),
        report: None,
        rate: crate::options::DEFAULT_RATE,
        concurrency: 4,
        retries: crate::options::DEFAULT_RETRIES,
        max_wait: crate::options::DEFAULT_MAX_WAIT_SECS,
        site: Default::default(),
    };
    let reader = Reader {
        client,
        args: &args,
        ids: None,
        query: &[],
        notify: &crate::site::client::Silent,
        found: Default::default(),
    };
    reader.table(kind).await
}

impl Reader<'_> {
    fn concurrency(&self) -> usize {
        self.args.concurrency.clamp(1, 16)
    }

    async fn table(&self, kind: ExportKind) -> Result<Table, Error> {
        let c = self.client;
        match kind {
            ExportKind::DetailFields => {
                let mut defs = Vec::new();
                for entity in ["customer", "organization", "entitlement"] {
                    let list = fetch::definitions(c, entity)
                        .await
                        .map_err(|e| failed(&format!("{entity} detail fields"), e))?;
                    defs.push((entity, list));
                }
                Ok(ex::detail_fields(&defs))
            }
            ExportKind::Products => {
                let mut list = crate::site::refs::list_products(c)
                    .await
                    .map_err(|e| failed("products", e))?;
                if let Some(text) = self.ids {
                    let w = fetch::parse_ids(text, true);
                    let wanted: Vec<String> = w.ids.iter().chain(&w.names).cloned().collect();
                    let is = |x: &String, p: &crate::site::api::model::Product| {
                        *x == p.id || x.eq_ignore_ascii_case(&p.name)
                    };
                    self.unknown(
                        wanted
                            .iter()
                            .filter(|x| !list.iter().any(|p| is(x, p)))
                            .cloned(),
                    );
                    list.retain(|p| wanted.iter().any(|x| is(x, p)));
                }
                Ok(ex::products(list))
            }
            ExportKind::Organizations => {
                let defs = fetch::definitions(c, "organization")
                    .await
                    .map_err(|e| failed("organization detail fields", e))?;
                let ids = self.organization_ids().await?;
                let profiles = fetch::organization_profiles(c, &ids, self.concurrency())
                    .await
                    .map_err(|e| failed("organization profiles", e))?;
                if self.ids.is_some() {
                    self.unknown(not_returned(&ids, profiles.iter().map(|p| &p.id)));
                }
                Ok(ex::organizations(&ex::schema_of(&defs), profiles))
            }
            ExportKind::Customers => {
                let defs = fetch::definitions(c, "customer")
                    .await
                    .map_err(|e| failed("customer detail fields", e))?;
                let ids = if self.query.is_empty() {
                    self.customer_ids().await?
                } else {
                    self.searched_customers(&defs).await?
                };
                let mut profiles = fetch::customer_profiles(c, &ids, self.concurrency())
                    .await
                    .map_err(|e| failed("customer profiles", e))?;
                if !self.query.is_empty() {
                    // The search's matching rules are not documented: what it found is kept
                    // only where the profile holds the value.
                    let before = profiles.len();
                    profiles.retain(|p| fetch::holds(&p.details, self.query));
                    if profiles.len() < before {
                        self.notify.note(&format!(
                            "--where: {} of the {before} customers the search gave do not hold the value on their profile; left out",
                            before - profiles.len()
                        ));
                    }
                }
                if self.ids.is_some() {
                    self.unknown(not_returned(&ids, profiles.iter().map(|p| &p.id)));
                }
                Ok(ex::customers(&ex::schema_of(&defs), profiles))
            }
            ExportKind::Entitlements => {
                let defs = fetch::definitions(c, "entitlement")
                    .await
                    .map_err(|e| failed("entitlement detail fields", e))?;
                let (entities, names) = self.holders().await?;
                let found = fetch::entitlements(c, entities, self.concurrency())
                    .await
                    .map_err(|e| failed("entitlements", e))?;
                let list = found
                    .into_iter()
                    .flat_map(|(e, list)| {
                        let who = names.get(&(e.customer, e.id.clone())).cloned();
                        let who = match (e.customer, who) {
                            (true, w) => HolderName::Customer(w.unwrap_or(e.id.clone())),
                            (false, w) => HolderName::Organization(w.unwrap_or(e.id.clone())),
                        };
                        list.into_iter().map(move |x| (who.clone(), x))
                    })
                    .collect();
                Ok(ex::entitlements(&ex::schema_of(&defs), list))
            }
        }
    }

    /// The organizations to export: those `--ids` names, or every one the JSM listing has.
    async fn organization_ids(&self) -> Result<Vec<String>, Error> {
        match self.ids {
            Some(text) => {
                self.named_organizations(&fetch::parse_ids(text, true))
                    .await
            }
            None => Ok(fetch::list_organizations(self.client)
                .await
                .map_err(|e| failed("the JSM organization listing (--site)", e))?
                .into_iter()
                .map(|o| o.id)
                .collect()),
        }
    }

    fn unknown(&self, ids: impl IntoIterator<Item = String>) {
        let mut f = self.found.lock().expect("not poisoned");
        for id in ids {
            if !f.unknown.contains(&id) {
                f.unknown.push(id);
            }
        }
    }

    async fn named_organizations(&self, w: &Wanted) -> Result<Vec<String>, Error> {
        let mut ids = w.ids.clone();
        if !w.names.is_empty() {
            let found = crate::site::refs::fetch_ids(self.client, &w.names)
                .await
                .map_err(|e| failed("organizations by name", e))?;
            self.unknown(
                w.names
                    .iter()
                    .filter(|n| !found.contains_key(&crate::row::match_key(n)))
                    .cloned(),
            );
            ids.extend(found.into_values());
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The customers to export: those `--ids` names (emails through `--service-desk`), or the
    /// service project's customers, or every organization's members.
    async fn customer_ids(&self) -> Result<Vec<String>, Error> {
        match self.ids {
            Some(text) => self.named_customers(&fetch::parse_ids(text, false)).await,
            None => Ok(self.all_customers().await?.into_keys().collect()),
        }
    }

    /// `--where`: the customers the site's search by detail field finds, each field checked
    /// against the definitions first so a misspelt one is named with the ones there are.
    async fn searched_customers(
        &self,
        defs: &[DetailFieldWithConfiguration],
    ) -> Result<Vec<String>, Error> {
        let query = fetch::on_site(self.query, defs).map_err(Error::Usage)?;
        let hits = fetch::search_customers(self.client, &query)
            .await
            .map_err(|e| failed("the customer search by detail field", e))?;
        let shown: Vec<String> = query
            .iter()
            .map(|q| format!("{}={}", q.name, q.value))
            .collect();
        self.found
            .lock()
            .expect("not poisoned")
            .sources
            .push(fetch::SourceCount {
                source: format!("search by detail field: {}", shown.join(" and ")),
                customers: hits.len(),
            });
        Ok(hits.into_iter().map(|h| h.id).collect())
    }

    /// Every customer the JSM listings give, noting how many each gave (once per export).
    async fn all_customers(
        &self,
    ) -> Result<BTreeMap<String, crate::site::api::model::JsmUser>, Error> {
        let listed = fetch::list_customers(
            self.client,
            self.args.service_desk.as_deref(),
            self.concurrency(),
            self.args.allow_partial,
        )
        .await
        .map_err(|u| unlisted(u, self.args.service_desk.is_some()))?;
        let mut f = self.found.lock().expect("not poisoned");
        if f.sources.is_empty() {
            f.sources = listed.sources;
            f.skipped = listed.skipped;
        }
        Ok(listed.customers)
    }

    async fn named_customers(&self, w: &Wanted) -> Result<Vec<String>, Error> {
        let mut ids = w.ids.clone();
        if !w.emails.is_empty() {
            let Some(sd) = &self.args.service_desk else {
                return Err(Error::Usage(
                    "--ids names customers by email: add --service-desk ID so csmport can find them (CSM has no lookup by email)".into(),
                ));
            };
            let (found, missing) = fetch::ids_of_emails(self.client, sd, &w.emails)
                .await
                .map_err(|e| failed("customers by email", e))?;
            self.unknown(missing);
            ids.extend(found);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Who may hold entitlements, and how the file names them (customers by email,
    /// organizations by name).
    async fn holders(&self) -> Result<(Vec<Entity>, HashMap<(bool, String), String>), Error> {
        let mut entities = Vec::new();
        let mut names = HashMap::new();
        let (org_ids, customer_ids) = match self.ids {
            Some(text) => {
                let (orgs, customers) = split_holders(text);
                (
                    self.named_organizations(&orgs).await?,
                    self.named_customers(&customers).await?,
                )
            }
            None => {
                let orgs = fetch::list_organizations(self.client)
                    .await
                    .map_err(|e| failed("the JSM organization listing (--site)", e))?;
                let customers = self.all_customers().await?;
                for o in &orgs {
                    names.insert((false, o.id.clone()), o.name.clone());
                }
                for (id, u) in &customers {
                    names.insert(
                        (true, id.clone()),
                        u.email_address.clone().unwrap_or_default(),
                    );
                }
                (
                    orgs.into_iter().map(|o| o.id).collect(),
                    customers.into_keys().collect(),
                )
            }
        };
        // Names of holders given by id: read once, for the file's customer/organization columns.
        let unnamed_orgs: Vec<String> = org_ids
            .iter()
            .filter(|id| !names.contains_key(&(false, (*id).clone())))
            .cloned()
            .collect();
        if !unnamed_orgs.is_empty() {
            for p in fetch::organization_profiles(self.client, &unnamed_orgs, self.concurrency())
                .await
                .map_err(|e| failed("organization profiles", e))?
            {
                names.insert((false, p.id), p.name);
            }
        }
        // Holders `--ids` names that the site does not have hold nothing to export.
        let (org_ids, gone): (Vec<String>, Vec<String>) = org_ids
            .into_iter()
            .partition(|id| names.contains_key(&(false, id.clone())));
        self.unknown(gone);
        let unnamed_customers: Vec<String> = customer_ids
            .iter()
            .filter(|id| !names.contains_key(&(true, (*id).clone())))
            .cloned()
            .collect();
        if !unnamed_customers.is_empty() {
            for p in fetch::customer_profiles(self.client, &unnamed_customers, self.concurrency())
                .await
                .map_err(|e| failed("customer profiles", e))?
            {
                names.insert((true, p.id.clone()), p.email.unwrap_or(p.id));
            }
        }
        let (customer_ids, gone): (Vec<String>, Vec<String>) = customer_ids
            .into_iter()
            .partition(|id| names.contains_key(&(true, id.clone())));
        self.unknown(gone);
        entities.extend(org_ids.into_iter().map(|id| Entity {
            customer: false,
            id,
        }));
        entities.extend(
            customer_ids
                .into_iter()
                .map(|id| Entity { customer: true, id }),
        );
        self.notify.note(&format!(
            "entitlements: reading those of {} holders",
            entities.len()
        ));
        Ok((entities, names))
    }
}

/// `--ids` for entitlements names both kinds of holder: emails and `qm:…`-style ids (with a
/// `:`) are customers; digits and other text are organizations (ids, names).
fn split_holders(text: &str) -> (Wanted, Wanted) {
    let all = fetch::parse_ids(text, false);
    let mut orgs = Wanted::default();
    let mut customers = Wanted {
        emails: all.emails,
        ..Wanted::default()
    };
    for v in all.ids {
        if v.contains(':') {
            customers.ids.push(v);
        } else if v.bytes().all(|b| b.is_ascii_digit()) {
            orgs.ids.push(v);
        } else {
            orgs.names.push(v);
        }
    }
    (orgs, customers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_in_an_ids_file_are_told_apart() {
        let (o, c) = split_holders("ann@x.com\nqm:1\n10001\nAcme Pty Ltd\n");
        assert_eq!(
            (o.ids, o.names),
            (vec!["10001".into()], vec!["Acme Pty Ltd".into()])
        );
        assert_eq!(
            (c.ids, c.emails),
            (vec!["qm:1".into()], vec!["ann@x.com".into()])
        );
        assert!(format_of(Path::new("a/b.XLSX")).is_ok());
        assert!(format_of(Path::new("a/b.txt")).is_err());
    }
}
