//! `csmport init TEMPLATE DIR`: a folder of CRM exports becomes a migration plan. `crm` decides
//! what each file is and which definitions the mapped fields need; this writes
//! `csmport-plan.toml`, `detail-fields.csv` and the template mappings into DIR (never over a
//! file without `--force`) and says what it found, what it left out and what to run next.

use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::crm::{self, DEFINITIONS_FILE, PLAN_FILE};
use crate::error::Error;

pub fn run(args: &InitArgs) -> Result<i32, Error> {
    let Some(crm) = crm::find(&args.template) else {
        return Err(Error::Usage(format!(
            "init: no template '{}'; the templates are {}",
            args.template,
            crm::CRMS.map(|c| c.name).join(", ")
        )));
    };
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "init: {} is not a folder; give the folder that holds the {} export files",
            dir.display(),
            crm.name
        )));
    }
    let survey = crm::survey(crm, dir).map_err(|e| Error::Usage(format!("init: {e}")))?;
    if survey.found.is_empty() {
        let seen: Vec<String> = survey
            .skipped
            .iter()
            .map(|(f, why)| format!("  {}: {why}", name_of(f)))
            .collect();
        return Err(Error::Usage(format!(
            "init: no {} export in {}; looked for {}{}",
            crm.name,
            dir.display(),
            crm.looks_for,
            if seen.is_empty() {
                " (the folder has no files)".to_string()
            } else {
                format!("\n{}", seen.join("\n"))
            }
        )));
    }
    let defs = crm::definitions(&survey.found).map_err(|e| Error::Usage(format!("init: {e}")))?;

    // Everything to write, checked before anything is written.
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut templates: Vec<(&str, &str)> = Vec::new();
    for f in &survey.found {
        if !templates.iter().any(|(n, _)| *n == f.template) {
            templates.push((f.template, f.template_text));
        }
    }
    for (name, text) in &templates {
        files.push((dir.join(crm::mapping_file(name)), text.to_string()));
    }
    if !defs.is_empty() {
        files.push((dir.join(DEFINITIONS_FILE), crm::definitions_csv(&defs)));
    }
    files.push((
        dir.join(PLAN_FILE),
        crm::plan_toml(crm, &survey.found, !defs.is_empty()),
    ));
    let there: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.symlink_metadata().is_ok())
        .map(|(p, _)| name_of(p))
        .collect();
    if !there.is_empty() && !args.force {
        return Err(Error::Usage(format!(
            "init: {} already has {}; pass --force to replace {}",
            dir.display(),
            there.join(", "),
            if there.len() == 1 { "it" } else { "them" }
        )));
    }
    for (path, text) in &files {
        write_new(path, text)?;
    }

    let mut out = vec![format!("{} export in {}:", crm.name, dir.display())];
    for f in &survey.found {
        out.push(format!(
            "  {:<28} {}, mapped by {}{}",
            name_of(&f.file),
            f.kind.as_str(),
            crm::mapping_file(f.template),
            match f.left_out() {
                left if left.is_empty() => String::new(),
                left => format!(
                    "; {} columns not imported: {}",
                    left.len(),
                    short_list(&left)
                ),
            }
        ));
    }
    for (f, why) in &survey.skipped {
        out.push(format!("  {:<28} left out: {why}", name_of(f)));
    }
    if !defs.is_empty() {
        out.push(format!(
            "detail fields the mappings feed ({DEFINITIONS_FILE}, made first by the plan):"
        ));
        for d in &defs {
            out.push(format!(
                "  {:<13} {:<20} {}{}",
                d.entity,
                d.name,
                d.kind.api_name(),
                d.note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ));
        }
    }
    let plan = dir.join(PLAN_FILE);
    out.push(format!(
        "wrote {}\nnext:\n  csmport validate --plan {}\n  csmport import --plan {}",
        files
            .iter()
            .map(|(p, _)| name_of(p))
            .collect::<Vec<_>>()
            .join(", "),
        plan.display(),
        plan.display()
    ));
    crate::outln!("{}", out.join("\n"));
    Ok(0)
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn short_list(names: &[String]) -> String {
    let mut s: Vec<String> = names.iter().take(5).map(|n| format!("'{n}'")).collect();
    if names.len() > 5 {
        s.push(format!("and {} more", names.len() - 5));
    }
    s.join(", ")
}

/// Writes `text` to `path` through a temporary file and a rename, so a link planted at `path`
/// is replaced, never written through.
fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail =
        |e: std::io::Error| Error::Usage(format!("init: cannot write {}: {e}", path.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
