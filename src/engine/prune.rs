//! Pruning run folders: which of the runs under a folder (`engine::status::runs`) go, by age
//! and by how many newer ones are kept, and never one that is not finished (rows open, a run
//! that never ended, a delete's backup) unless forced. `cmd::prune` prints what this did.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::status::{plan_steps, runs, status_of};
use crate::error::Error;

/// What to remove.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Keep the N newest runs whatever their age.
    pub keep: Option<u64>,
    /// Remove only runs begun more than this many days ago.
    pub older_than_days: Option<u64>,
    /// Remove unfinished runs and delete backups too.
    pub force: bool,
    /// Say what would go, remove nothing.
    pub dry_run: bool,
}

/// What a prune did.
#[derive(Debug, Default, Serialize)]
pub struct Pruned {
    pub removed: Vec<Gone>,
    /// Runs the rules would remove that were kept, and why.
    pub kept: Vec<Kept>,
    pub freed_bytes: u64,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct Gone {
    pub dir: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Kept {
    pub dir: String,
    pub why: String,
}

/// The runs under `base` the rules remove, oldest first: not among the `keep` newest, and
/// begun before `now - older_than_days` (a run whose start cannot be read is kept).
pub fn chosen(
    all: &[(PathBuf, Option<jiff::Timestamp>)],
    rules: &Rules,
    now: jiff::Timestamp,
) -> Vec<PathBuf> {
    let past_keep = all
        .len()
        .saturating_sub(rules.keep.map_or(0, |k| k as usize));
    all.iter()
        .take(past_keep)
        .filter(|(_, began)| match rules.older_than_days {
            None => true,
            Some(days) => {
                began.is_some_and(|b| now.as_second() - b.as_second() > days as i64 * 86_400)
            }
        })
        .map(|(p, _)| p.clone())
        .collect()
}

/// Why a run must not go without `--force`: rows open, no end recorded, a delete's backup.
pub fn unfinished(dir: &Path) -> Option<String> {
    let steps = plan_steps(dir);
    let dirs = if steps.is_empty() {
        vec![dir.to_path_buf()]
    } else {
        steps
    };
    for d in dirs {
        let summary: Option<serde_json::Value> = std::fs::read(d.join(super::report::SUMMARY_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = &summary
            && s["operation"] == "delete"
            && s["backup"].is_string()
        {
            return Some(format!(
                "it holds a delete's backup ({}), the one way to undo that delete",
                s["backup"].as_str().unwrap_or_default()
            ));
        }
        if !d.join(super::journal::JOURNAL_FILE).is_file() {
            continue;
        }
        let status = match status_of(&d) {
            Ok(s) => s,
            Err(e) => return Some(format!("its journal cannot be read ({e})")),
        };
        if status.rows.open > 0 {
            return Some(format!(
                "{} open: `csmport resume {}` finishes them",
                super::report::count(status.rows.open, "row"),
                d.display()
            ));
        }
        if status.resume.read_from_row.is_some() {
            return Some(format!(
                "rows of its input were never read: `csmport resume {}` goes on",
                d.display()
            ));
        }
        match &status.ended {
            None => {
                return Some(
                    "it has no end recorded: still running, or killed (`csmport status` says which)"
                        .into(),
                );
            }
            Some(e) if e.interrupted => {
                return Some(format!(
                    "it was interrupted: `csmport resume {}` finishes it",
                    d.display()
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Bytes of the files under `dir` (symbolic links not followed).
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// Removes the runs under `base` the rules choose, keeping the unfinished ones unless forced.
pub fn prune(base: &Path, rules: &Rules) -> Result<Pruned, Error> {
    if rules.keep.is_none() && rules.older_than_days.is_none() {
        return Err(Error::Usage(
            "prune: say which runs go: --keep N (the N newest stay), --older-than DAYS, or both"
                .into(),
        ));
    }
    let all = match runs(base) {
        Ok(all) => all,
        // No folder, no runs: nothing to remove.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Usage(format!(
                "{}: cannot be listed: {e}",
                base.display()
            )));
        }
    };
    let mut done = Pruned {
        dry_run: rules.dry_run,
        ..Pruned::default()
    };
    for dir in chosen(&all, rules, jiff::Timestamp::now()) {
        let shown = dir.display().to_string();
        if !rules.force
            && let Some(why) = unfinished(&dir)
        {
            done.kept.push(Kept { dir: shown, why });
            continue;
        }
        let bytes = size_of(&dir);
        if !rules.dry_run {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::Usage(format!("{shown}: cannot be removed: {e}")))?;
        }
        done.freed_bytes += bytes;
        done.removed.push(Gone { dir: shown, bytes });
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_and_age_both_have_to_let_a_run_go() {
        let t = |d: i64| Some(jiff::Timestamp::from_second(d * 86_400).unwrap());
        let all: Vec<(PathBuf, Option<jiff::Timestamp>)> = vec![
            ("a".into(), t(1)),
            ("b".into(), None),
            ("c".into(), t(5)),
            ("d".into(), t(9)),
            ("e".into(), t(10)),
        ];
        let now = jiff::Timestamp::from_second(10 * 86_400 + 60).unwrap();
        let names = |r: &Rules| -> Vec<String> {
            chosen(&all, r, now)
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        let rules = |keep, older| Rules {
            keep,
            older_than_days: older,
            ..Rules::default()
        };
        assert_eq!(names(&rules(Some(2), None)), ["a", "b", "c"]);
        assert_eq!(names(&rules(None, Some(3))), ["a", "c"]);
        assert_eq!(names(&rules(Some(4), Some(3))), ["a"]);
        assert!(names(&rules(Some(9), None)).is_empty());
    }
}
