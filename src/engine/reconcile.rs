//! Reconcile stage: turns a terminal task status into one outcome per row of the chunk. The API
//! gives no row index, so failures are matched by `entityId` against each item's customer id or
//! (lower-cased) email. Pure; `send` supplies an id→email lookup for ids it had to resolve.

use std::collections::HashMap;

use crate::engine::plan::{Chunk, Outcome, Stage, match_key};
use crate::site::api::model::{TaskFailure, TaskStatus, TaskStatusResponse};

/// `entityId`s in the task's failures that match no item of the chunk directly: ids the server
/// assigned, which `send` resolves to emails or names before calling `apply`.
pub fn unmatched_entity_ids(chunk: &Chunk, status: &TaskStatusResponse) -> Vec<String> {
    let index = item_index(chunk);
    let mut out: Vec<String> = Vec::new();
    for f in &status.failures {
        if lookup(&index, &f.entity_id).is_none() && !out.contains(&f.entity_id) {
            out.push(f.entity_id.clone());
        }
    }
    out
}

/// Sets the outcome of every item row from the task result. `resolved` maps ids (as reported in
/// failures) to emails (customers) or names (organizations). Returns the failures that could not be matched to a row.
pub fn apply(
    chunk: &mut Chunk,
    status: &TaskStatusResponse,
    resolved: &HashMap<String, String>,
) -> Vec<TaskFailure> {
    let index = item_index(chunk);
    let mut per_item: Vec<Vec<&TaskFailure>> = vec![Vec::new(); chunk.items.len()];
    let mut unattributed = Vec::new();
    for f in &status.failures {
        let hit = lookup(&index, &f.entity_id).or_else(|| {
            resolved
                .get(&f.entity_id)
                .and_then(|email| lookup(&index, email))
        });
        match hit {
            Some(i) => per_item[i].push(f),
            None => unattributed.push(f.clone()),
        }
    }
    for (i, failures) in per_item.iter().enumerate() {
        let row = &mut chunk.rows[chunk.item_rows[i]];
        row.outcome = if !failures.is_empty() {
            Outcome::Failed {
                stage: Stage::Task,
                field: failures
                    .iter()
                    .flat_map(|f| f.operated_on_ids.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(";"),
                error: failures
                    .iter()
                    .map(|f| describe(f))
                    .collect::<Vec<_>>()
                    .join(" | "),
            }
        } else if !unattributed.is_empty() {
            // A failure we cannot place might be this row's: claiming success would be a lie.
            Outcome::Failed {
                stage: Stage::Task,
                field: String::new(),
                error: format!(
                    "outcome unknown: task {} reported failures that match no row ({}); check this customer on the site",
                    status.id,
                    unattributed
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            }
        } else if status.status == TaskStatus::Failed {
            Outcome::Failed {
                stage: Stage::Task,
                field: String::new(),
                error: format!(
                    "outcome unknown: task {} ended FAILED without naming this row; the data may or may not have been written",
                    status.id
                ),
            }
        } else {
            Outcome::Succeeded {
                id: chunk.items[i].given_id(),
            }
        };
    }
    unattributed
}

fn describe(f: &TaskFailure) -> String {
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

/// Keys under which an item can be named: its id as is, its email or name normalized.
fn item_index(chunk: &Chunk) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (i, item) in chunk.items.iter().enumerate() {
        for k in item.keys() {
            m.insert(k, i);
        }
    }
    m
}

fn lookup(index: &HashMap<String, usize>, entity_id: &str) -> Option<usize> {
    index
        .get(entity_id)
        .or_else(|| index.get(&match_key(entity_id)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{BulkItem, PlannedRow};
    use crate::read::RawRow;
    use crate::site::api::model::{CustomerProfileItem, CustomerProfilePayload, ProfileOperation};

    fn chunk(emails: &[&str]) -> Chunk {
        let mut c = Chunk::new(0);
        c.idempotency_key = Some("k".into());
        // Row 2 is an invalid row riding along between items.
        for (i, e) in emails.iter().enumerate() {
            c.rows.push(PlannedRow {
                raw: RawRow {
                    row: c.rows.len() as u64 + 1,
                    cells: csv::StringRecord::new(),
                    problem: None,
                },
                outcome: Outcome::Pending,
            });
            c.items.push(BulkItem::Customer(
                CustomerProfileItem {
                    operation_type: ProfileOperation::Upsert,
                    payload: CustomerProfilePayload {
                        email: Some(e.to_string()),
                        ..Default::default()
                    },
                },
                vec![],
            ));
            c.item_rows.push(c.rows.len() - 1);
            if i == 0 {
                c.rows.push(PlannedRow {
                    raw: RawRow {
                        row: c.rows.len() as u64 + 1,
                        cells: csv::StringRecord::new(),
                        problem: None,
                    },
                    outcome: Outcome::Failed {
                        stage: Stage::Validate,
                        field: "x".into(),
                        error: "bad".into(),
                    },
                });
            }
        }
        c
    }

    fn failure(entity_id: &str, error: &str) -> TaskFailure {
        TaskFailure {
            entity: "CUSTOMER".into(),
            entity_id: entity_id.into(),
            operation: "UPSERT".into(),
            operated_on: "DETAIL_FIELD".into(),
            operated_on_ids: vec!["Region".into()],
            error: error.into(),
        }
    }

    fn status(s: TaskStatus, failures: Vec<TaskFailure>) -> TaskStatusResponse {
        TaskStatusResponse {
            id: "T".into(),
            task_type: String::new(),
            status: s,
            failures,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn kinds(c: &Chunk) -> Vec<&'static str> {
        c.rows
            .iter()
            .map(|r| match &r.outcome {
                Outcome::Succeeded { .. } => "ok",
                Outcome::Failed {
                    stage: Stage::Task, ..
                } => "task",
                Outcome::Failed { .. } => "other",
                Outcome::Skipped { .. } => "skip",
                Outcome::Pending => "pending",
            })
            .collect()
    }

    #[test]
    fn failures_land_on_their_rows() {
        let cases: Vec<(
            TaskStatus,
            Vec<TaskFailure>,
            HashMap<String, String>,
            Vec<&str>,
            usize,
        )> = vec![
            (
                TaskStatus::Finished,
                vec![],
                HashMap::new(),
                vec!["ok", "other", "ok", "ok"],
                0,
            ),
            (
                TaskStatus::Finished,
                vec![failure("B@x.io", "Invalid detail field")],
                HashMap::new(),
                vec!["ok", "other", "task", "ok"],
                0,
            ),
            (
                TaskStatus::Finished,
                vec![failure("qm:1", "Invalid detail field")],
                HashMap::from([("qm:1".to_string(), "c@x.io".to_string())]),
                vec!["ok", "other", "ok", "task"],
                0,
            ),
            (
                TaskStatus::Finished,
                vec![failure("qm:9", "boom")],
                HashMap::new(),
                vec!["task", "other", "task", "task"],
                1,
            ),
            (
                TaskStatus::Failed,
                vec![],
                HashMap::new(),
                vec!["task", "other", "task", "task"],
                0,
            ),
        ];
        for (s, failures, resolved, want, unattributed) in cases {
            let mut c = chunk(&["a@x.io", "b@x.io", "c@x.io"]);
            let st = status(s, failures);
            let u = apply(&mut c, &st, &resolved);
            assert_eq!(kinds(&c), want, "{st:?}");
            assert_eq!(u.len(), unattributed);
        }
    }

    #[test]
    fn failure_text_names_field_and_reason() {
        let mut c = chunk(&["a@x.io"]);
        apply(
            &mut c,
            &status(
                TaskStatus::Finished,
                vec![failure("a@x.io", "Invalid detail field")],
            ),
            &HashMap::new(),
        );
        assert_eq!(
            c.rows[0].outcome,
            Outcome::Failed {
                stage: Stage::Task,
                field: "Region".into(),
                error: "Invalid detail field (DETAIL_FIELD: Region)".into()
            }
        );
        let c2 = chunk(&["a@x.io", "b@x.io"]);
        let st = status(TaskStatus::Finished, vec![failure("qm:7", "x")]);
        assert_eq!(unmatched_entity_ids(&c2, &st), vec!["qm:7"]);
    }
}
