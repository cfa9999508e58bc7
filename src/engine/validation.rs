//! Validate stage: a profile kind's files read, mapped and checked offline as fast as the
//! reader goes (`intake`), each into its own folder with `failures.csv`, `warnings.csv` and
//! `summary.json` as an import writes them; organizations named by a CRM id resolved against
//! the site and what earlier steps of a plan make. Used by `cmd::validate`; the kinds decided
//! against the site are validated by a dry run of `run` instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, rows_exit_code};
use crate::kinds::Kind;
use crate::kinds::columns;
use crate::options::{ImportOptions, InputOptions};
use crate::row::Row;
use crate::schema::{FieldDef, Schema};
use crate::site::client::Client;
use crate::site::external::ExternalIds;

use super::intake::Intake;
use super::report::{self, ReportWriter, ValidateSummary};
use super::run;

/// The folder of file `n` of a validation: the run folder itself for one file.
pub fn sub_dir(dir: &Path, files: usize, n: usize, file: &Path) -> Result<PathBuf, Error> {
    if files == 1 {
        return Ok(dir.to_path_buf());
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("input");
    let d = dir.join(format!("{}-{stem}", n + 1));
    crate::fsx::private_dir(&d).map_err(|source| report::ReportError {
        path: d.clone(),
        source,
    })?;
    Ok(d)
}

/// The organization detail field a customers validation resolves organizations by: a
/// mapping's `by`, or `--organizations-by`.
pub fn by_field(rk: Kind, input: &InputOptions) -> Result<Option<String>, Error> {
    if rk != Kind::Customers {
        return Ok(None);
    }
    if let Some(path) = &input.mapping {
        let m = crate::mapfile::load(path).map_err(|e| Error::Usage(format!("--mapping {e}")))?;
        if let Some(by) = m.columns.iter().find_map(|r| r.by.clone()) {
            return Ok(Some(by));
        }
    }
    Ok(input.organizations_by.clone())
}

/// A validated plan's organizations step: what its valid rows give their detail fields, the
/// organizations an import of the plan makes before the steps after it, appended to `out`
/// (`known-organizations.csv`: field, value, "row N of FILE"). Rows a skip rule leaves out, that
/// are invalid, or that repeat an earlier row's organization give nothing.
pub fn record_promised_organizations(
    opts: &ImportOptions,
    schema: Schema,
    out: &Path,
) -> Result<u64, Error> {
    let input = &opts.input;
    let mut source = crate::read::Source::open(&opts.file, &input.read_options())?;
    let label = opts.file.display().to_string();
    let name = opts
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| label.clone());
    let columns = columns::Columns::new(
        Kind::Organizations,
        opts.kind.as_str(),
        input,
        source.header(),
        schema,
        &label,
    )?;
    let fail = |e: &dyn std::fmt::Display| {
        Error::Report(report::ReportError {
            path: out.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    };
    let mut w = columns::known_writer(out).map_err(|e| fail(&e))?;
    let mut n = 0;
    let mut seen = std::collections::HashSet::new();
    while let Some(row) = source.next_row() {
        let Ok(raw) = row else { break };
        if raw.problem.is_some() || columns.skip(&raw.cells).is_some() {
            continue;
        }
        let Ok((item, key)) = columns.organization(&raw) else {
            continue;
        };
        // A later row for the same organization is a duplicate the import refuses.
        if !seen.insert(key) {
            continue;
        }
        let who = format!("row {} of {name}", raw.row);
        for d in item.payload.details.iter().flatten() {
            for v in &d.values {
                w.write_record([d.name.as_str(), v.as_str(), who.as_str()])
                    .map_err(|e| fail(&e))?;
                n += 1;
            }
        }
    }
    w.flush().map_err(|e| fail(&e))?;
    Ok(n)
}

/// The detail fields a plan's detail-fields steps define, by entity (`customer`,
/// `organization`): the later steps of a validated plan are checked as if they were on the
/// site, since importing the plan makes them first. A file that cannot be read promises
/// nothing (its own step reports why).
pub fn promised_fields(steps: &[crate::engine::steps::Step]) -> Vec<(String, FieldDef)> {
    let mut out = Vec::new();
    for step in steps
        .iter()
        .filter(|s| s.kind == crate::kinds::Kind::DetailFields)
    {
        let opts = crate::read::ReadOptions {
            sheet: step.sheet.clone(),
            header_row: step.header_row,
            ..Default::default()
        };
        let Ok(mut source) = crate::read::Source::open(&step.file, &opts) else {
            continue;
        };
        let at = |name: &str| {
            source
                .header()
                .iter()
                .position(|h| crate::map::normalize(h) == name)
        };
        let (Some(entity), Some(name), Some(kind)) = (at("entity"), at("name"), at("type")) else {
            continue;
        };
        let options = at("options");
        // Bounded: a definitions file is small, and a site takes a few hundred fields.
        for _ in 0..100_000 {
            let Some(Ok(row)) = source.next_row() else {
                break;
            };
            let cell = |i: usize| row.cells.get(i).map(|c| c.trim()).unwrap_or("");
            if cell(name).is_empty() {
                continue;
            }
            out.push((
                cell(entity).to_lowercase(),
                FieldDef {
                    name: cell(name).to_string(),
                    kind: crate::schema::FieldKind::from_api(cell(kind)),
                    options: options
                        .map(|i| {
                            cell(i)
                                .split(crate::site::api::MULTI_VALUE_SEPARATOR)
                                .map(|o| o.trim().to_string())
                                .filter(|o| !o.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            ));
        }
    }
    out
}

/// What earlier steps of a validated plan make, that a step is checked against as if the site
/// had it: detail fields (from the detail-fields steps) and organizations
/// (`known-organizations.csv`, from the organizations steps).
#[derive(Debug, Default, Clone, Copy)]
pub struct Earlier<'a> {
    pub fields: &'a [FieldDef],
    pub organizations: Option<&'a Path>,
}

/// Validates every file of a profile kind; with several, each gets its own folder inside the
/// run folder. `client` is used only to read the detail-field definitions when `--schema` is
/// not given.
pub async fn offline(
    kind: Kind,
    rk: Kind,
    files: &[PathBuf],
    input: &InputOptions,
    out: Option<&Path>,
    client: Option<&Client>,
    earlier: Earlier<'_>,
) -> Result<Vec<Result<ValidateSummary, Error>>, Error> {
    for file in files {
        // Before the run folder exists: a range past the end of a file is a usage error.
        crate::read::check_rows(file, &input.read_options(), input.rows).map_err(Error::Usage)?;
    }
    let mut schema = columns::schema(rk, input, client).await?;
    for f in earlier.fields {
        if !schema
            .fields
            .iter()
            .any(|d| crate::map::normalize(&d.name) == crate::map::normalize(&f.name))
        {
            schema.fields.push(f.clone());
        }
    }
    let resolver = match by_field(rk, input)? {
        Some(field) => {
            Some(columns::organizations_known(client, &field, earlier.organizations, true).await?)
        }
        None => None,
    };
    let dir = run::run_dir(
        out,
        &format!("validate-{}", kind.as_str()),
        jiff::Timestamp::now(),
    )?;
    let mut out = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let sub = sub_dir(&dir, files.len(), n, file)?;
        let result = validate_file(
            kind,
            rk,
            input,
            file,
            schema.clone(),
            &sub,
            resolver.as_ref(),
        );
        // One file: its error is the command's. Several: report it and go on with the others.
        if files.len() == 1 {
            out.push(Ok(result?));
        } else {
            out.push(result);
        }
    }
    Ok(out)
}

pub fn validate_file(
    kind: Kind,
    rk: Kind,
    input: &InputOptions,
    file: &Path,
    schema: Schema,
    dir: &Path,
    resolver: Option<&ExternalIds>,
) -> Result<ValidateSummary, Error> {
    let started = Instant::now();
    let mut intake = Intake::open(rk, kind.as_str(), input, file, schema.clone())?;
    let dir = dir.to_path_buf();
    let mut writer = ReportWriter::with_successes(&dir, intake.header(), false)?;
    writer.reads(file);
    let mut warnings = report::WarningsWriter::new(&dir, intake.header());
    let warned = !intake.columns.mapping.blank.is_empty();
    let mut read_error = None;
    let mut reader = intake.reader();
    let mut columns = intake.columns.uses();
    let mut examples = crate::map::Examples::new(&columns);
    while let Some(mut batch) = reader.next_batch() {
        for r in batch.iter() {
            examples.see(&r);
        }
        let outcomes = intake.check_batch(&batch);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                None if warned || resolver.is_some() => {
                    let cells = batch.row(i);
                    // Organizations named by a CRM id must be on the site, or made by an
                    // earlier step of the plan: as the import resolves them.
                    let problems: Vec<String> = resolver
                        .map(|x| {
                            intake
                                .columns
                                .org_refs(&cells)
                                .iter()
                                .filter_map(|v| x.problem(v))
                                .collect()
                        })
                        .unwrap_or_default();
                    if !problems.is_empty() {
                        let mut row = Row::new(cells.to_raw());
                        row.close(crate::row::Outcome::Failed {
                            stage: crate::row::Stage::Resolve,
                            field: crate::map::COL_ORGANIZATIONS.into(),
                            error: problems.join(" | "),
                        });
                        writer.write(&row, &dir)?;
                        continue;
                    }
                    // The row is copied out of the batch only when it has something to say.
                    let left_out = intake.columns.warnings(&cells);
                    if !left_out.is_empty() {
                        let raw = cells.to_raw();
                        for (field, value, why) in left_out {
                            warnings.write(&raw, &field, &value, &why)?;
                        }
                    }
                    writer.count_success()
                }
                None => writer.count_success(),
                Some(o) => {
                    let mut row = Row::new(batch.row(i).to_raw());
                    row.close(o);
                    writer.write(&row, &dir)?;
                }
            }
        }
        if let Some(e) = batch.error.take() {
            read_error = Some(e.to_string());
            break;
        }
        reader.recycle(batch);
    }
    let mut counts = writer.finish(&dir)?;
    let mut dialect = reader.finish();
    let found = intake.duplicates()?;
    if !found.is_empty() {
        // These rows passed as valid in the first pass.
        let n = add_duplicates(kind, rk, input, file, schema, &found, &dir)?;
        counts.succeeded = counts.succeeded.saturating_sub(n);
        counts.failed += n;
        counts.failed_by_stage.validate += n;
    }
    dialect
        .notes
        .extend(intake.columns.mapping.notes.iter().cloned());
    let ignored_columns = intake.columns.mapping.ignored_unknown.clone();
    dialect
        .notes
        .extend(crate::map::ignored_note(&ignored_columns));
    for (field, (n, example)) in &intake.respelled {
        dialect.notes.push(format!(
            "{field}: {n} values match an option only when case is ignored; they are sent as the site spells them (e.g. {example})"
        ));
    }
    examples.fill(&mut columns);
    let warnings = warnings.finish()?;
    dialect.notes.extend(crate::map::columns_note(&columns));
    let exit_code = rows_exit_code(read_error.is_some(), counts.failed);
    let elapsed = started.elapsed().as_secs_f64();
    let summary = ValidateSummary {
        kind: kind.as_str().to_string(),
        input: intake.file_label.clone(),
        run_dir: dir.display().to_string(),
        dialect,
        rows_per_s: if elapsed > 0.0 {
            (counts.rows as f64 / elapsed).round()
        } else {
            0.0
        },
        // Valid rows are the ones counted as succeeded: a validation sends nothing.
        valid: counts.succeeded,
        counts,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        read_error,
        ignored_columns: ignored_columns.iter().map(|c| c.name.clone()).collect(),
        columns,
        warnings,
        row_range: input.rows_label(),
        would_change_definitions: Vec::new(),
        exit_code,
    };
    report::write_validate_summary(&dir, &summary)?;
    match report::write_failures_xlsx(&dir) {
        Ok(None) => {}
        Ok(Some(why)) => crate::errln!("csmport: note: {why}"),
        Err(e) => crate::errln!("csmport: {}: {e}", report::FAILURES_XLSX),
    }
    if let Err(e) = crate::engine::html::write(&dir) {
        crate::errln!("csmport: report.html: {e}");
    }
    Ok(summary)
}

/// The second pass, run only when the first found duplicate keys: the input is read again and
/// the duplicates' rows (with the reason naming the first row) join the others in failures.csv,
/// in row order. Returns how many rows it added.
pub fn add_duplicates(
    kind: Kind,
    rk: Kind,
    input: &InputOptions,
    file: &Path,
    schema: Schema,
    found: &[(u64, u64)],
    dir: &Path,
) -> Result<u64, Error> {
    let mut intake = Intake::open(rk, kind.as_str(), input, file, schema)?;
    intake.replay_duplicates(found);
    let part = tempfile::tempdir_in(dir).map_err(|source| report::ReportError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut writer = ReportWriter::with_successes(part.path(), intake.header(), false)?;
    writer.reads(file);
    let mut added = 0u64;
    let mut reader = intake.reader();
    while let Some(batch) = reader.next_batch() {
        let outcomes = intake.check_batch(&batch);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let row = batch.row(i);
            let named = found.binary_search_by_key(&row.row(), |f| f.0).is_ok();
            if named && let Some(o @ crate::row::Outcome::Failed { .. }) = outcome {
                let mut r = Row::new(row.to_raw());
                r.close(o);
                writer.write(&r, part.path())?;
                added += 1;
            }
        }
        if batch.error.is_some() {
            break;
        }
        reader.recycle(batch);
    }
    writer.finish(part.path())?;
    report::merge_failures(dir, part.path())?;
    Ok(added)
}
