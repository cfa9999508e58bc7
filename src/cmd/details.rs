//! `csmport import customer-details | organization-details FILE`: detail values through
//! `{entity}/details/bulk`, packing up to 1,000 operations per request. Two layouts: wide (an
//! identifying column — `id` or `email` for customers, `id` or `name` for organizations — then
//! one column per field, optional `operation` for the whole row) and long (identifying column,
//! `field`, `values`, optional `operation`: one operation per row). Operations that would change
//! nothing (the site's values read first) are not sent, so a re-run is a no-op and says so.
//! References come from `refs`; tasks go through `send`; the run folder from `cmd::small`.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};

use crate::cli::ImportArgs;
use crate::engine::plan::{Stage, match_key, uuid_key};
use crate::engine::send::{submit_task, wait_task};
use crate::error::Error;
use crate::map::normalize;
use crate::read::Cells;
use crate::schema::{FieldDef, Schema};
use crate::site::api::model::{
    CustomerDetailOperations, CustomerDetailsBulkRequest, CustomerProfileFetchRequest,
    CustomerProfileFetchResponse, DetailFieldsWithConfiguration, DetailOperation,
    DetailOperationPayload, DetailValue, DetailValueOperation, OrganizationDetailOperations,
    OrganizationDetailsBulkRequest, OrganizationProfileFetchRequest,
    OrganizationProfileFetchResponse, TaskStatus,
};
use crate::site::api::{MAX_DETAIL_OPERATIONS, MAX_PROFILE_FETCH, paths};
use crate::site::client::{Client, Notify, Target};
use crate::site::refs::{Entity, Holder, resolve_holders};
use crate::validate::{self, CellRules};

use super::import::ImportResult;
use super::small::{SmallRun, find_columns};

/// One operation a row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: DetailOperation,
    pub field: String,
    pub values: Option<Vec<String>>,
}

pub fn parse_operation(cell: &str) -> Result<DetailOperation, String> {
    match cell.trim().to_ascii_uppercase().as_str() {
        "" | "UPDATE" => Ok(DetailOperation::Update),
        "PATCH" => Ok(DetailOperation::Patch),
        "DELETE" => Ok(DetailOperation::Delete),
        other => Err(format!(
            "'{other}' is not an operation (UPDATE replaces the values, PATCH adds to them, DELETE clears the field)"
        )),
    }
}

/// Whether `op` would change the field's `current` values (multi-valued: PATCH adds).
pub fn changes(op: &Op, current: Option<&[String]>, multi: bool) -> bool {
    let current = current.unwrap_or(&[]);
    match op.kind {
        DetailOperation::Delete => !current.is_empty(),
        DetailOperation::Update => op.values.as_deref().unwrap_or(&[]) != current,
        DetailOperation::Patch if multi => op.values.iter().flatten().any(|v| !current.contains(v)),
        DetailOperation::Patch => op.values.as_deref().unwrap_or(&[]) != current,
    }
}

/// Packs entities' operations into requests of at most `max` operations, in order.
pub fn pack(sizes: &[usize], max: usize) -> Vec<Vec<usize>> {
    let mut packs: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut total = 0;
    for (i, &n) in sizes.iter().enumerate() {
        if !current.is_empty() && total + n > max {
            packs.push(std::mem::take(&mut current));
            total = 0;
        }
        current.push(i);
        total += n;
    }
    if !current.is_empty() {
        packs.push(current);
    }
    packs
}

pub async fn run(
    args: &ImportArgs,
    target: &Target,
    customers: bool,
) -> Result<ImportResult, Error> {
    let (kind, entity, other) = if customers {
        ("customer-details", "customer", "organization")
    } else {
        ("organization-details", "organization", "customer")
    };
    let mut run = SmallRun::start(kind, args, target)?;
    let defs: DetailFieldsWithConfiguration = run
        .client
        .get_json(&format!("{entity}/details"))
        .await
        .map_err(Error::from_setup)?;
    let schema = Schema::from_api(&defs);
    let other_fields: Vec<String> = run
        .client
        .get_json::<DetailFieldsWithConfiguration>(&format!("{other}/details"))
        .await
        .map(|d| d.results.into_iter().map(|f| f.name).collect())
        .unwrap_or_default();
    let ids: [&str; 2] = if customers {
        ["id", "email"]
    } else {
        ["id", "name"]
    };
    let long = run.header.iter().any(|h| normalize(h) == "field");
    let mut known: Vec<&str> = ids.to_vec();
    known.push("operation");
    if long {
        known.extend(["field", "values"]);
    } else {
        known.extend(schema.fields.iter().map(|f| f.name.as_str()));
        for h in &run.header {
            if other_fields.iter().any(|f| normalize(f) == normalize(h))
                && !known.iter().any(|k| normalize(k) == normalize(h))
            {
                return Err(Error::Usage(format!(
                    "{}: column '{h}' is a detail field of {other}s; a {kind} file takes the fields of {entity}s ({})",
                    run.label,
                    schema
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let required: &[&str] = if long { &["field"] } else { &[] };
    let cols = find_columns(
        &run.header,
        &run.label,
        kind,
        &known,
        required,
        args.input.ignore_unknown_columns,
    )?;
    if cols[0].is_none() && cols[1].is_none() {
        return Err(Error::Usage(format!(
            "{}: no '{}' or '{}' column: each row names the {entity} it changes",
            run.label, ids[0], ids[1]
        )));
    }
    let rules = CellRules {
        date_format: args.input.date_format.clone(),
    };
    let live = run.precheck();

    // Each row: its holder and operations, or its errors.
    let mut rows: Vec<(usize, Holder, Vec<Op>)> = Vec::new();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for i in (0..run.rows.len()).filter(|&i| live[i]) {
        let raw = &run.rows[i].raw;
        let cell = |c: Option<usize>| c.map(|c| raw.cells.cell(c)).unwrap_or("");
        let column = |k: usize| {
            cols[k]
                .and_then(|c| run.header.get(c).cloned())
                .unwrap_or_else(|| known[k].to_string())
        };
        let mut errors: Vec<(String, String)> = Vec::new();
        let (id, natural) = (cell(cols[0]).trim(), cell(cols[1]).trim());
        let holder = match (id.is_empty(), natural.is_empty(), customers) {
            (false, _, true) => Some(Holder::CustomerId(id.to_string())),
            (false, _, false) => Some(Holder::OrganizationId(id.to_string())),
            (true, false, true) => match validate::email(natural) {
                Ok(e) => Some(Holder::CustomerEmail(e.to_lowercase())),
                Err(e) => {
                    errors.push((column(1), e));
                    None
                }
            },
            (true, false, false) => Some(Holder::OrganizationName(natural.to_string())),
            (true, true, _) => {
                errors.push((
                    column(if cols[0].is_some() { 0 } else { 1 }),
                    format!(
                        "no {} and no {}: which {entity} does this row change?",
                        ids[0], ids[1]
                    ),
                ));
                None
            }
        };
        let op_kind = match parse_operation(cell(cols[2])) {
            Ok(k) => k,
            Err(e) => {
                errors.push((column(2), e));
                DetailOperation::Update
            }
        };
        let mut ops = Vec::new();
        let field_def = |name: &str| -> Result<&FieldDef, String> {
            schema
                .fields
                .iter()
                .find(|f| normalize(&f.name) == normalize(name))
                .ok_or_else(|| {
                    if other_fields.iter().any(|f| normalize(f) == normalize(name)) {
                        format!("'{name}' is a detail field of {other}s, not of {entity}s")
                    } else {
                        let close =
                            validate::closest(name, schema.fields.iter().map(|f| f.name.as_str()))
                                .map(|c| format!("; did you mean '{c}'?"))
                                .unwrap_or_default();
                        format!("no {entity} detail field '{name}' on the site{close}")
                    }
                })
        };
        let mut op_for =
            |def: &FieldDef, values_cell: &str, col: String, errors: &mut Vec<(String, String)>| {
                if op_kind == DetailOperation::Delete {
                    ops.push(Op {
                        kind: op_kind,
                        field: def.name.clone(),
                        values: None,
                    });
                    return;
                }
                match validate::detail_value(def, values_cell, &rules) {
                    Ok(Some(values)) => ops.push(Op {
                        kind: op_kind,
                        field: def.name.clone(),
                        values: Some(values),
                    }),
                    Ok(None) => errors.push((
                        col,
                        format!(
                            "no values for {}: use operation DELETE to clear a field",
                            def.name
                        ),
                    )),
                    Err(e) => errors.push((col, e)),
                }
            };
        if long {
            let name = cell(cols[3]).trim();
            if name.is_empty() {
                errors.push((column(3), "field is empty".into()));
            } else {
                match field_def(name) {
                    Ok(def) => op_for(def, cell(cols[4]), column(4), &mut errors),
                    Err(e) => errors.push((column(3), e)),
                }
            }
        } else {
            for (k, def) in schema.fields.iter().enumerate() {
                if !cell(cols[3 + k]).trim().is_empty() {
                    op_for(def, cell(cols[3 + k]), column(3 + k), &mut errors);
                }
            }
        }
        if !errors.is_empty() {
            run.fail_cells(i, &errors);
            continue;
        }
        let holder = holder.expect("no errors");
        let mut dup = None;
        for op in &ops {
            if let Some(first) = seen.get(&(holder.key(), match_key(&op.field))) {
                dup = Some((op.field.clone(), *first));
            }
        }
        if let Some((field, first)) = dup {
            let error = format!(
                "duplicate: row {first} of this file already changes {field} of this {entity} (one operation per field)"
            );
            run.fail(i, Stage::Validate, &field, error);
            continue;
        }
        for op in &ops {
            seen.insert((holder.key(), match_key(&op.field)), raw.row);
        }
        rows.push((i, holder, ops));
    }

    // Who the rows name, then what those entities hold now.
    let holders = resolve_holders(
        &run.client,
        args.service_desk.as_deref(),
        rows.iter().map(|(_, h, _)| h),
    )
    .await;
    let mut resolved: Vec<(usize, Entity, Vec<Op>)> = Vec::new();
    for (i, h, ops) in rows {
        match holders.get(&h) {
            Some(Ok(e)) => resolved.push((i, e.clone(), ops)),
            Some(Err(why)) => run.fail(i, Stage::Validate, column_of(&h), why.clone()),
            None => run.fail(i, Stage::Validate, column_of(&h), "not resolved".into()),
        }
    }
    let ids: Vec<String> = {
        let mut v: Vec<String> = resolved.iter().map(|(_, e, _)| e.id.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let current = current_values(&run.client, customers, &ids).await;
    let multi = |field: &str| {
        schema
            .fields
            .iter()
            .any(|f| f.name == field && f.kind == crate::schema::FieldKind::MultiSelect)
    };

    // Entities in first-row order, each with its operations and the rows they came from.
    let mut order: Vec<String> = Vec::new();
    let mut by_entity: HashMap<String, (Vec<usize>, Vec<Op>)> = HashMap::new();
    for (i, e, ops) in resolved {
        let now = current.get(&e.id);
        let needed: Vec<Op> = ops
            .into_iter()
            .filter(|op| {
                let values = now.and_then(|d| {
                    d.iter()
                        .find(|v| v.name.eq_ignore_ascii_case(&op.field))
                        .map(|v| v.values.as_slice())
                });
                // Without the current values (a failed read), send everything.
                now.is_none() || changes(op, values, multi(&op.field))
            })
            .collect();
        if needed.is_empty() {
            run.unchanged += 1;
            run.succeed(i, Some(e.id.clone()));
            continue;
        }
        let slot = by_entity.entry(e.id.clone()).or_insert_with(|| {
            order.push(e.id.clone());
            (Vec::new(), Vec::new())
        });
        slot.0.push(i);
        slot.1.extend(needed);
    }
    if run.dry_run {
        return run.finish();
    }
    let sizes: Vec<usize> = order.iter().map(|id| by_entity[id].1.len()).collect();
    let packs: Vec<Vec<String>> = pack(&sizes, MAX_DETAIL_OPERATIONS)
        .into_iter()
        .map(|p| p.into_iter().map(|k| order[k].clone()).collect())
        .collect();
    run.batches += packs.len() as u64;
    let path = if customers {
        paths::CUSTOMER_DETAILS_BULK
    } else {
        paths::ORGANIZATION_DETAILS_BULK
    };
    let client = &run.client;
    let log: &dyn Notify = &*run.log;
    let poll = &run.poll;
    let by_entity_ref = &by_entity;
    let outcomes: Vec<(Vec<String>, Result<HashMap<String, String>, String>)> =
        stream::iter(packs.into_iter().enumerate())
            .map(|(n, ids)| async move {
                let body = body_for(customers, &ids, by_entity_ref);
                let mut key = uuid_key();
                let ops: usize = ids.iter().map(|id| by_entity_ref[id].1.len()).sum();
                let label = format!("request {} ({} {entity}s, {ops} operations)", n + 1, ids.len());
                let submitted = match submit_task(
                    client,
                    log,
                    &label,
                    path,
                    &body,
                    &mut key,
                    std::time::Duration::from_secs(30 * 60),
                    None,
                )
                .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        return (ids, Err(format!("not sent: {e}")));
                    }
                };
                log.note(&format!("{label}: task {} with key {key}", submitted.id));
                let result = match wait_task(client, poll, &submitted).await {
                    Ok(status) if status.status == TaskStatus::Failed && status.failures.is_empty() => Err(format!(
                        "outcome unknown: task {} FAILED without saying which {entity}s; check them on the site",
                        submitted.id
                    )),
                    Ok(status) => Ok(status
                        .failures
                        .into_iter()
                        .map(|f| (f.entity_id, format!("{}: {}", f.operated_on, f.error)))
                        .collect()),
                    Err(e) => Err(format!("outcome unknown: task {}: {e:?}", submitted.id)),
                };
                (ids, result)
            })
            .buffer_unordered(args.max_tasks.max(1))
            .collect()
            .await;
    for (ids, result) in outcomes {
        run.tasks += 1;
        let unplaced: Vec<String> = match &result {
            Ok(failures) => failures
                .iter()
                .filter(|(id, _)| !ids.contains(id))
                .map(|(id, e)| format!("{id}: {e}"))
                .collect(),
            Err(_) => vec![],
        };
        for id in &ids {
            let (rows_of, _) = &by_entity[id];
            for &i in rows_of {
                match &result {
                    Err(why) => run.fail(i, Stage::Task, "", why.clone()),
                    Ok(failures) => match failures.get(id) {
                        Some(e) => run.fail(
                            i,
                            Stage::Task,
                            "",
                            format!("not applied (all operations for this {entity} together): {e}"),
                        ),
                        None if !unplaced.is_empty() => run.fail(
                            i,
                            Stage::Task,
                            "",
                            format!(
                                "outcome unknown: the task reported failures that match no row ({})",
                                unplaced.join("; ")
                            ),
                        ),
                        None => run.succeed(i, Some(id.clone())),
                    },
                }
            }
        }
    }
    run.finish()
}

fn column_of(h: &Holder) -> &'static str {
    match h {
        Holder::CustomerId(_) | Holder::OrganizationId(_) => "id",
        Holder::CustomerEmail(_) => "email",
        Holder::OrganizationName(_) => "name",
    }
}

fn body_for(
    customers: bool,
    ids: &[String],
    by_entity: &HashMap<String, (Vec<usize>, Vec<Op>)>,
) -> serde_json::Value {
    let ops = |id: &String| -> Vec<DetailValueOperation> {
        by_entity[id]
            .1
            .iter()
            .map(|op| DetailValueOperation {
                operation_type: op.kind,
                payload: DetailOperationPayload {
                    name: op.field.clone(),
                    values: op.values.clone(),
                },
            })
            .collect()
    };
    let v = if customers {
        serde_json::to_value(CustomerDetailsBulkRequest {
            customers: ids
                .iter()
                .map(|id| CustomerDetailOperations {
                    customer_id: id.clone(),
                    operations: ops(id),
                })
                .collect(),
        })
    } else {
        serde_json::to_value(OrganizationDetailsBulkRequest {
            organizations: ids
                .iter()
                .map(|id| OrganizationDetailOperations {
                    organization_id: id.clone(),
                    operations: ops(id),
                })
                .collect(),
        })
    };
    v.expect("serializes")
}

/// The entities' current detail values (profile fetch, 25 a call). An entity missing here is
/// sent all its operations.
async fn current_values(
    client: &Client,
    customers: bool,
    ids: &[String],
) -> HashMap<String, Vec<DetailValue>> {
    let mut out = HashMap::new();
    for group in ids.chunks(MAX_PROFILE_FETCH) {
        if customers {
            let req = CustomerProfileFetchRequest {
                customer_ids: group.to_vec(),
            };
            if let Ok(r) = client
                .post_json::<_, CustomerProfileFetchResponse>(
                    paths::CUSTOMER_PROFILE_FETCH,
                    &req,
                    None,
                )
                .await
            {
                out.extend(r.results.into_iter().map(|p| (p.id, p.details)));
            }
        } else {
            let req = OrganizationProfileFetchRequest {
                organization_ids: group.to_vec(),
            };
            if let Ok(r) = client
                .post_json::<_, OrganizationProfileFetchResponse>(
                    paths::ORGANIZATION_PROFILE_FETCH,
                    &req,
                    None,
                )
                .await
            {
                out.extend(r.results.into_iter().map(|p| (p.id, p.details)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_packed_up_to_the_limit_in_order() {
        assert_eq!(
            pack(&[400, 400, 400, 1000, 1], 1000),
            vec![vec![0, 1], vec![2], vec![3], vec![4]]
        );
        assert_eq!(pack(&[], 1000), Vec::<Vec<usize>>::new());
        assert_eq!(pack(&[1; 5], 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn only_operations_that_change_something_are_sent() {
        let op = |kind, values: &[&str]| Op {
            kind,
            field: "F".into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        };
        let now: Vec<String> = vec!["a".into(), "b".into()];
        use DetailOperation::*;
        let cases = [
            (op(Update, &["a", "b"]), Some(now.as_slice()), true, false),
            (op(Update, &["a"]), Some(now.as_slice()), true, true),
            (op(Patch, &["b"]), Some(now.as_slice()), true, false),
            (op(Patch, &["c"]), Some(now.as_slice()), true, true),
            (op(Delete, &[]), Some(now.as_slice()), false, true),
            (op(Delete, &[]), None, false, false),
            (op(Update, &["x"]), None, false, true),
        ];
        for (o, cur, multi, want) in cases {
            assert_eq!(changes(&o, cur, multi), want, "{o:?} {cur:?}");
        }
        assert_eq!(parse_operation(" patch ").unwrap(), Patch);
        assert!(
            parse_operation("REMOVE")
                .unwrap_err()
                .contains("not an operation")
        );
    }
}
