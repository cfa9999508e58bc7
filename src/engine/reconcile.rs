//! Reconcile stage: turns a task's terminal status into what it says about each row of its
//! batch. The API gives no row index, so each failure is placed by its `entityId` against the
//! keys the kind gives each item (ids, lower-cased emails or names). Pure: `send` supplies the
//! keys of ids the site made, reads back what the status cannot settle, and applies the
//! verdicts to the rows.

use std::collections::HashMap;

use crate::row::{Event, match_key};
use crate::site::api::model::{TaskFailure, TaskStatus};

/// The failures of a task, placed on the items of its batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placed {
    /// Per item, every failure naming it.
    pub per_item: Vec<Vec<TaskFailure>>,
    /// Failures that name no item.
    pub unplaced: Vec<TaskFailure>,
}

/// `entityId`s of `failures` that match none of the items' keys directly: ids the site made,
/// which `send` asks the kind to turn into keys before `place`.
pub fn unmatched_ids(keys: &[Vec<String>], failures: &[TaskFailure]) -> Vec<String> {
    let index = index(keys);
    let mut out: Vec<String> = Vec::new();
    for f in failures {
        if !f.entity_id.trim().is_empty()
            && lookup(&index, &f.entity_id).is_none()
            && !out.contains(&f.entity_id)
        {
            out.push(f.entity_id.clone());
        }
    }
    out
}

/// Places each failure on the items it names: by its `entityId`, or (for ids the site made)
/// the key `resolved` gives it, or, when it names no entity (a definitions task), by the
/// names in `operatedOnIds`. Every failure is kept, several per item included; items that
/// share a key (several rows for one entity) all get it.
pub fn place(
    keys: &[Vec<String>],
    failures: &[TaskFailure],
    resolved: &HashMap<String, String>,
) -> Placed {
    let index = index(keys);
    let mut placed = Placed {
        per_item: vec![Vec::new(); keys.len()],
        unplaced: Vec::new(),
    };
    for f in failures {
        let mut hits: Vec<usize> = lookup(&index, &f.entity_id)
            .or_else(|| resolved.get(&f.entity_id).and_then(|k| lookup(&index, k)))
            .cloned()
            .unwrap_or_default();
        if hits.is_empty() && f.entity_id.trim().is_empty() {
            for id in &f.operated_on_ids {
                for &i in lookup(&index, id).into_iter().flatten() {
                    if !hits.contains(&i) {
                        hits.push(i);
                    }
                }
            }
        }
        if hits.is_empty() {
            placed.unplaced.push(f.clone());
        }
        for i in hits {
            placed.per_item[i].push(f.clone());
        }
    }
    placed
}

/// What a terminal task says about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its failures: the row fails with them.
    Failed { field: String, error: String },
    /// FINISHED, nothing against it: applied.
    Applied,
    /// The status cannot tell (the task FAILED without naming it, or some failure names no
    /// row and might be its): read it back.
    ReadBack,
}

/// The verdict for an item from the task's status, its own failures and how many failures
/// name no item. A FAILED task is never taken for a FINISHED one: items it does not name are
/// read back, not presumed applied.
pub fn verdict(status: &TaskStatus, own: &[TaskFailure], unplaced: usize) -> Verdict {
    if !own.is_empty() {
        return Verdict::Failed {
            field: fields(own),
            error: own.iter().map(describe).collect::<Vec<_>>().join(" | "),
        };
    }
    match status {
        TaskStatus::Finished if unplaced == 0 => Verdict::Applied,
        _ => Verdict::ReadBack,
    }
}

impl Verdict {
    /// The row event, for the verdicts that settle a row.
    pub fn event(&self, id: Option<String>) -> Option<Event> {
        match self {
            Verdict::Failed { field, error } => Some(Event::TaskFailure {
                field: field.clone(),
                error: error.clone(),
            }),
            Verdict::Applied => Some(Event::TaskFinished(id)),
            Verdict::ReadBack => None,
        }
    }
}

/// Why a row whose read-back could not settle it stays open.
pub fn unsettled_note(task: &str, status: &TaskStatus, unplaced: &[TaskFailure]) -> String {
    let why = if unplaced.is_empty() {
        format!(
            "task {task} ended {} without naming this row",
            status.as_str()
        )
    } else {
        format!(
            "task {task} reported failures that match no row ({})",
            unplaced
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    format!(
        "outcome unknown: {why}, and the row could not be read back; `csmport resume` asks the site again"
    )
}

/// The columns (detail fields and the like) the failures name, each once.
/// `_field` names columns only: a detail field's failure names the field (its column); an
/// association's names the column that holds them (the entities' ids stay in `_error`).
fn fields(failures: &[TaskFailure]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for f in failures {
        match f.operated_on.as_str() {
            "ORGANIZATION_ASSOCIATION" => {
                if !out.contains(&crate::map::COL_ORGANIZATIONS) {
                    out.push(crate::map::COL_ORGANIZATIONS);
                }
            }
            // Other associations name entities, not a column of the row.
            o if o.ends_with("_ASSOCIATION") => {}
            _ => {
                for id in &f.operated_on_ids {
                    if !out.contains(&id.as_str()) {
                        out.push(id);
                    }
                }
            }
        }
    }
    out.join(";")
}

pub fn describe(f: &TaskFailure) -> String {
    let mut s = f.error.clone();
    if s.is_empty() {
        s = "failed".into();
    }
    if !f.operated_on.is_empty() {
        s.push_str(&format!(" ({}", f.operated_on));
        if !f.operated_on_ids.is_empty() {
            s.push_str(&format!(": {}", f.operated_on_ids.join(", ")));
        }
        s.push(')');
    }
    s
}

fn index(keys: &[Vec<String>]) -> HashMap<String, Vec<usize>> {
    let mut m: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, ks) in keys.iter().enumerate() {
        for k in ks {
            let v = m.entry(k.clone()).or_default();
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }
    m
}

fn lookup<'a>(index: &'a HashMap<String, Vec<usize>>, entity_id: &str) -> Option<&'a Vec<usize>> {
    index
        .get(entity_id)
        .or_else(|| index.get(&match_key(entity_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(entity_id: &str, field: &str, error: &str) -> TaskFailure {
        TaskFailure {
            entity: "CUSTOMER".into(),
            entity_id: entity_id.into(),
            operation: "UPSERT".into(),
            operated_on: "DETAIL_FIELD".into(),
            operated_on_ids: vec![field.into()],
            error: error.into(),
        }
    }

    fn keys() -> Vec<Vec<String>> {
        vec![
            vec!["a@x.io".into()],
            vec!["qm:2".into(), "b@x.io".into()],
            vec!["c@x.io".into()],
        ]
    }

    #[test]
    fn failures_are_placed_by_key_case_and_resolved_id() {
        let failures = vec![
            failure("B@x.io", "Region", "Invalid"),
            failure("qm:2", "Tier", "Bad option"),
            failure("qm:3", "Region", "Invalid"),
            failure("qm:9", "Region", "Boom"),
        ];
        assert_eq!(unmatched_ids(&keys(), &failures), vec!["qm:3", "qm:9"]);
        let resolved = HashMap::from([("qm:3".to_string(), "c@x.io".to_string())]);
        let p = place(&keys(), &failures, &resolved);
        let counts: Vec<usize> = p.per_item.iter().map(Vec::len).collect();
        // Both failures of the second item are kept.
        assert_eq!(counts, vec![0, 2, 1]);
        assert_eq!(p.unplaced.len(), 1);
        // Rows that share an entity share its failures; a failure naming no entity is placed
        // by the names it operated on.
        let shared = vec![
            vec!["7".to_string()],
            vec!["7".to_string()],
            vec!["tier".to_string()],
        ];
        let mut definitions = failure("", "Tier", "Name taken");
        definitions.entity_id = String::new();
        let p = place(
            &shared,
            &[failure("7", "X", "Nope"), definitions],
            &HashMap::new(),
        );
        let counts: Vec<usize> = p.per_item.iter().map(Vec::len).collect();
        assert_eq!((counts, p.unplaced.len()), (vec![1, 1, 1], 0));
        let p = place(&keys(), &failures, &resolved);
        assert_eq!(
            verdict(&TaskStatus::Finished, &p.per_item[1], 0),
            Verdict::Failed {
                field: "Region;Tier".into(),
                error: "Invalid (DETAIL_FIELD: Region) | Bad option (DETAIL_FIELD: Tier)".into()
            }
        );
    }

    /// (status, own failures, unplaced failures) -> verdict. Issue 14 case 7: a FAILED task
    /// never counts as FINISHED for the rows it does not name.
    #[test]
    fn verdicts() {
        let own = vec![failure("a@x.io", "Region", "Invalid")];
        let failed = Verdict::Failed {
            field: "Region".into(),
            error: "Invalid (DETAIL_FIELD: Region)".into(),
        };
        let cases = [
            (TaskStatus::Finished, vec![], 0, Verdict::Applied),
            (TaskStatus::Finished, own.clone(), 0, failed.clone()),
            (TaskStatus::Failed, own.clone(), 0, failed.clone()),
            (TaskStatus::Finished, vec![], 1, Verdict::ReadBack),
            (TaskStatus::Failed, vec![], 0, Verdict::ReadBack),
            (TaskStatus::Failed, vec![], 2, Verdict::ReadBack),
        ];
        for (status, own, unplaced, want) in cases {
            assert_eq!(
                verdict(&status, &own, unplaced),
                want,
                "{status:?} {own:?} {unplaced}"
            );
        }
        assert_eq!(Verdict::ReadBack.event(None), None);
        assert_eq!(
            Verdict::Applied.event(Some("1".into())),
            Some(Event::TaskFinished(Some("1".into())))
        );
    }

    #[test]
    fn open_rows_say_why() {
        let n = unsettled_note("T", &TaskStatus::Failed, &[]);
        assert!(
            n.starts_with("outcome unknown: task T ended FAILED without naming this row"),
            "{n}"
        );
        let n = unsettled_note("T", &TaskStatus::Finished, &[failure("qm:9", "X", "Boom")]);
        assert!(n.contains("match no row (Boom (DETAIL_FIELD: X))"), "{n}");
    }
}
