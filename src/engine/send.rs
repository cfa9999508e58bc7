//! Send stage: submits one chunk's batch to `customer/profile/bulk` under its fixed idempotency
//! key, waits for the task (`track`) and sets every row's outcome (`reconcile`). The task-slot
//! limit is back-pressure here, never a row failure. Called by `cmd::import`; uses `client`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::journal::{Batch, BatchState, Journal};
use crate::engine::plan::{BulkItem, Chunk, Outcome, Stage, match_key, uuid_key};
use crate::engine::reconcile;
use crate::engine::track::{self, PollPolicy, TrackError};
use crate::map::RecordKind;
use crate::site::api::model::{
    CustomerAccountItem, CustomerAccountPayload, CustomerBulkRequest, CustomerProfileBulkRequest,
    CustomerProfileFetchRequest, CustomerProfileFetchResponse, OrganizationAccountItem,
    OrganizationAccountPayload, OrganizationBulkRequest, OrganizationFetchRequest,
    OrganizationFetchResponse, OrganizationProfileBulkRequest, TaskStatus, TaskStatusResponse,
    TaskSubmitResponse,
};
use crate::site::api::{
    self, MAX_ORGANIZATION_FETCH, MAX_PROFILE_FETCH, TASK_LIMIT_MESSAGE, paths,
};
use crate::site::client::{ApiError, Client, Notify, retry};
use crate::site::resolve::OrgResolver;

pub struct SendContext {
    pub client: Arc<Client>,
    pub poll: PollPolicy,
    /// The run log: every batch, task and resolution.
    pub log: Arc<dyn Notify>,
    /// Waits the user should see as they happen (the log and the progress line).
    pub alert: Arc<dyn Notify>,
    /// How long to keep waiting for a free task slot on the server before failing the batch.
    pub slot_wait: Duration,
    /// Organization names → ids, shared by all batches of the run.
    pub orgs: OrgResolver,
    /// What the rows are: it picks the bulk endpoint.
    pub kind: RecordKind,
    /// Rows found on the site exactly as the file has them (not sent).
    pub unchanged: std::sync::atomic::AtomicU64,
    /// `--service-desk`: where customers can be found by email, and what was found (once).
    pub service_desk: Option<String>,
    pub emails: tokio::sync::OnceCell<Option<HashMap<String, String>>>,
    /// The run journal (batches, keys, attempts, tasks), when the run keeps one.
    pub journal: Option<Arc<Journal>>,
    /// `--verify`: the service project's customers as last listed.
    pub verify_emails: tokio::sync::Mutex<Option<Arc<HashMap<String, String>>>>,
}

/// What happened to a chunk, for the summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub task_id: Option<String>,
    /// Set when the server refused our credentials: the run must stop (exit 3).
    pub auth_error: Option<String>,
    /// Set when the journal could not be written: the run must stop.
    pub journal_error: Option<String>,
}

pub async fn process(ctx: &SendContext, chunk: &mut Chunk) -> SendReport {
    let mut report = SendReport::default();
    attach_organizations(ctx, chunk).await;
    drop_unchanged(ctx, chunk).await;
    if chunk.items.is_empty() {
        return report;
    }
    let (path, body) = bulk_body(ctx.kind, &chunk.items);
    if !journal_plan(ctx, chunk, path, &body, &mut report) {
        return report;
    }
    send_and_track(ctx, chunk, path, &body, report).await
}

/// Finishes a chunk an interrupted run had started, as its journal record says: poll the task
/// it already has, or send the recorded body again under the recorded key (never a new body or
/// key for rows that may have been applied). The items are read back from that body, so the
/// rows are matched with exactly what was sent.
pub async fn resume(ctx: &SendContext, chunk: &mut Chunk, batch: &Batch) -> SendReport {
    let mut report = SendReport::default();
    let (Some(path), Some(body)) = (batch.path.as_deref(), batch.body.as_deref()) else {
        return process(ctx, chunk).await;
    };
    let parsed = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| Some((items_from_body(path, &v)?, v)));
    let rows: Option<Vec<usize>> = batch
        .item_rows
        .iter()
        .map(|n| chunk.rows.iter().position(|r| r.raw.row == *n))
        .collect();
    let (Some((items, body)), Some(item_rows)) = (parsed, rows) else {
        fail_items(
            chunk,
            Stage::Send,
            "outcome unknown: the journal's record of this batch cannot be read; check the site",
        );
        return report;
    };
    if items.len() != item_rows.len() {
        fail_items(
            chunk,
            Stage::Send,
            "outcome unknown: the journal's record of this batch is inconsistent; check the site",
        );
        return report;
    }
    // Rows decided before the batch was sent (invalid, unchanged, …) keep that outcome.
    if let Some(j) = &ctx.journal {
        match j.outcomes(batch.first_row, batch.last_row) {
            Ok(decided) => {
                for r in &mut chunk.rows {
                    if let Some(o) = decided.get(&r.raw.row) {
                        r.outcome = o.clone();
                    }
                }
            }
            Err(e) => report.journal_error = Some(e.to_string()),
        }
    }
    for &i in &item_rows {
        chunk.rows[i].outcome = Outcome::Pending;
    }
    // Valid rows that are neither decided nor in the recorded batch were waiting for their
    // turn (the parts of a refused batch not yet sent): they go after it, as a new batch.
    let recut_items = std::mem::take(&mut chunk.items);
    let recut_rows = std::mem::take(&mut chunk.item_rows);
    let (leftover_items, leftover_rows): (Vec<BulkItem>, Vec<usize>) = recut_items
        .into_iter()
        .zip(recut_rows)
        .filter(|(_, r)| !item_rows.contains(r) && chunk.rows[*r].outcome == Outcome::Pending)
        .unzip();
    chunk.items = items;
    chunk.item_rows = item_rows;
    chunk.idempotency_key = batch.key.clone();
    let report = resume_recorded(ctx, chunk, batch, path, body, report).await;
    if leftover_items.is_empty() {
        return report;
    }
    ctx.log.note(&format!(
        "chunk {}: {} rows not yet sent go as a new batch",
        chunk.seq,
        leftover_items.len()
    ));
    let recorded = (
        std::mem::replace(&mut chunk.items, leftover_items),
        std::mem::replace(&mut chunk.item_rows, leftover_rows),
    );
    chunk.idempotency_key = None;
    let more = process(ctx, chunk).await;
    chunk.items = recorded.0;
    chunk.item_rows = recorded.1;
    SendReport {
        task_id: more.task_id.or(report.task_id),
        auth_error: more.auth_error.or(report.auth_error),
        journal_error: more.journal_error.or(report.journal_error),
    }
}

/// Polls the recorded batch's task, or sends the recorded body again under its key.
async fn resume_recorded(
    ctx: &SendContext,
    chunk: &mut Chunk,
    batch: &Batch,
    path: &str,
    body: serde_json::Value,
    report: SendReport,
) -> SendReport {
    let range = format!("rows {}-{}", chunk.first_row(), chunk.last_row());
    match (&batch.task_id, &batch.status_url) {
        (Some(id), status_url) => {
            ctx.log.note(&format!(
                "chunk {} ({range}): resumed; polling its task {id} again",
                chunk.seq
            ));
            let submitted = TaskSubmitResponse {
                id: id.clone(),
                status_url: status_url.clone().unwrap_or_else(|| paths::task(id)),
            };
            track_task(ctx, chunk, submitted, &range, report).await
        }
        (None, _) => {
            ctx.log.note(&format!(
                "chunk {} ({range}): resumed; sending the recorded batch again with its key {}",
                chunk.seq,
                batch.key.as_deref().unwrap_or("")
            ));
            let path = static_path(path);
            send_and_track(ctx, chunk, path, &body, report).await
        }
    }
}

/// The bulk endpoints a journal may name, as the static paths the client takes.
fn static_path(path: &str) -> &'static str {
    [
        paths::CUSTOMER_PROFILE_BULK,
        paths::ORGANIZATION_PROFILE_BULK,
        paths::CUSTOMER_BULK,
        paths::ORGANIZATION_BULK,
    ]
    .into_iter()
    .find(|p| *p == path)
    .unwrap_or(paths::CUSTOMER_PROFILE_BULK)
}

/// The items of a recorded bulk body, as the chunk holds them (for matching task failures).
fn items_from_body(path: &str, body: &serde_json::Value) -> Option<Vec<BulkItem>> {
    use crate::site::api::model::{
        CustomerProfileItem, CustomerProfilePayload, OrganizationProfileItem,
        OrganizationProfilePayload,
    };
    let b = body.clone();
    Some(match path {
        p if p == paths::CUSTOMER_PROFILE_BULK => {
            serde_json::from_value::<CustomerProfileBulkRequest>(b)
                .ok()?
                .customer_profiles
                .into_iter()
                .map(|c| BulkItem::Customer(c, vec![]))
                .collect()
        }
        p if p == paths::ORGANIZATION_PROFILE_BULK => {
            serde_json::from_value::<OrganizationProfileBulkRequest>(b)
                .ok()?
                .organization_profiles
                .into_iter()
                .map(BulkItem::Organization)
                .collect()
        }
        p if p == paths::CUSTOMER_BULK => serde_json::from_value::<CustomerBulkRequest>(b)
            .ok()?
            .customers
            .into_iter()
            .map(|c| {
                BulkItem::Customer(
                    CustomerProfileItem {
                        operation_type: c.operation_type,
                        payload: CustomerProfilePayload {
                            customer_id: c.payload.customer_id,
                            email: c.payload.email,
                            display_name: c.payload.display_name,
                            ..Default::default()
                        },
                    },
                    vec![],
                )
            })
            .collect(),
        p if p == paths::ORGANIZATION_BULK => serde_json::from_value::<OrganizationBulkRequest>(b)
            .ok()?
            .organizations
            .into_iter()
            .map(|o| {
                BulkItem::Organization(OrganizationProfileItem {
                    operation_type: o.operation_type,
                    payload: OrganizationProfilePayload {
                        id: o.payload.id,
                        name: o.payload.name,
                        ..Default::default()
                    },
                })
            })
            .collect(),
        _ => return None,
    })
}

/// Commits the chunk's batch — its rows, body and key — to the journal before its first send,
/// with the outcomes of the rows already decided. False (the batch's rows failed, not sent)
/// when the journal cannot be written.
fn journal_plan(
    ctx: &SendContext,
    chunk: &mut Chunk,
    path: &str,
    body: &serde_json::Value,
    report: &mut SendReport,
) -> bool {
    let key = chunk.idempotency_key.get_or_insert_with(uuid_key).clone();
    let Some(j) = &ctx.journal else {
        return true;
    };
    let batch = Batch {
        seq: chunk.seq,
        first_row: chunk.first_row(),
        last_row: chunk.last_row(),
        state: BatchState::Planned,
        key: Some(key),
        item_rows: chunk
            .item_rows
            .iter()
            .map(|&i| chunk.rows[i].raw.row)
            .collect(),
        path: Some(path.to_string()),
        body: Some(body.to_string()),
        task_id: None,
        status_url: None,
    };
    let decided: Vec<(u64, &Outcome)> = chunk
        .rows
        .iter()
        .filter(|r| r.outcome != Outcome::Pending)
        .map(|r| (r.raw.row, &r.outcome))
        .collect();
    if let Err(e) = j.plan(&batch, &decided) {
        fail_items(
            chunk,
            Stage::Send,
            &format!("not sent: the run journal could not be written ({e})"),
        );
        chunk.unsettled = true;
        report.journal_error = Some(e.to_string());
        return false;
    }
    true
}

/// Sets the outcome of a batch the server did not accept.
fn submit_failed(chunk: &mut Chunk, range: &str, e: &ApiError, report: &mut SendReport) {
    if e.is_auth() {
        report.auth_error = Some(e.to_string());
    }
    let error = match e {
        ApiError::Status {
            status: 400,
            message,
            ..
        } if chunk.items.len() == 1 => format!("the server refused this row: {message}"),
        ApiError::Status {
            status: 400,
            message,
            ..
        } => format!("the server refused the whole batch ({range}): {message}"),
        ApiError::Network { .. } | ApiError::Status { .. } => {
            // Maybe applied (or refused for a reason that may pass, such as our credentials):
            // `resume` sends it again under the same key.
            chunk.unsettled = true;
            format!(
                "not confirmed: {e}; the batch may or may not have been applied: `csmport resume` on this run folder sends it again safely (same idempotency key)"
            )
        }
        ApiError::Decode { .. } => {
            chunk.unsettled = true;
            format!("not confirmed: {e}")
        }
    };
    fail_items(chunk, Stage::Send, &error);
}

/// A refusal of a whole batch (400) for what some of its rows hold: the batch is split in
/// halves, each sent under a new key, and halves refused again are split again, so the good
/// rows land and each bad row gets the server's reason. Parts go one after another.
async fn bisect(
    ctx: &SendContext,
    chunk: &mut Chunk,
    refusal: &str,
    mut report: SendReport,
) -> SendReport {
    let range = format!("rows {}-{}", chunk.first_row(), chunk.last_row());
    ctx.log.note(&format!(
        "chunk {} ({range}): the server refused the whole batch ({refusal}); splitting it to find the rows it refuses",
        chunk.seq
    ));
    let items = std::mem::take(&mut chunk.items);
    let rows = std::mem::take(&mut chunk.item_rows);
    let mut queue: std::collections::VecDeque<(Vec<BulkItem>, Vec<usize>)> =
        split(items.clone(), rows.clone()).into_iter().collect();
    while let Some((part, part_rows)) = queue.pop_front() {
        chunk.items = part;
        chunk.item_rows = part_rows;
        chunk.idempotency_key = Some(uuid_key());
        let part_range = format!(
            "rows {}-{}",
            chunk.rows[chunk.item_rows[0]].raw.row,
            chunk.rows[*chunk.item_rows.last().expect("parts are not empty")]
                .raw
                .row
        );
        let (path, body) = bulk_body(ctx.kind, &chunk.items);
        if !journal_plan(ctx, chunk, path, &body, &mut report) {
            continue;
        }
        match submit(ctx, chunk, &part_range, path, &body).await {
            Ok(submitted) => {
                let part = format!("part {part_range}");
                record_submission(ctx, chunk, &submitted, &part, &mut report);
                report = track_task(ctx, chunk, submitted, &part_range, report).await;
            }
            Err(e) if chunk.items.len() > 1 && refuses_batch(&e) => {
                let halves = split(
                    std::mem::take(&mut chunk.items),
                    std::mem::take(&mut chunk.item_rows),
                );
                for h in halves.into_iter().rev() {
                    queue.push_front(h);
                }
            }
            Err(e) => {
                submit_failed(chunk, &part_range, &e, &mut report);
                if chunk.unsettled {
                    // This part may have been applied: it stays the chunk's open batch in the
                    // journal (same body and key for `resume`), and the parts not sent yet wait
                    // for `resume` too rather than being recorded as decided.
                    let rest: Vec<usize> = queue.drain(..).flat_map(|(_, r)| r).collect();
                    for &i in &rest {
                        chunk.rows[i].outcome = Outcome::Pending;
                    }
                    journal_plan(ctx, chunk, path, &body, &mut report);
                    for &i in &rest {
                        chunk.rows[i].outcome = Outcome::Skipped {
                            reason: "not sent: an earlier part of its refused batch has no confirmed outcome; `csmport resume` sends it".into(),
                        };
                    }
                    break;
                }
            }
        }
    }
    chunk.items = items;
    chunk.item_rows = rows;
    report
}

/// A refusal of the batch for what it holds (400), as opposed to the task-slot limit (also a
/// 400, which only means "later").
fn refuses_batch(e: &ApiError) -> bool {
    e.status() == Some(400) && !e.message().contains(TASK_LIMIT_MESSAGE)
}

/// A batch's items (and their rows) in two halves, the first the larger; nothing to split in
/// a batch of one.
pub fn split<T>(mut items: Vec<T>, mut rows: Vec<usize>) -> Vec<(Vec<T>, Vec<usize>)> {
    if items.len() < 2 {
        return vec![(items, rows)];
    }
    let mid = items.len().div_ceil(2);
    let tail = items.split_off(mid);
    let tail_rows = rows.split_off(mid);
    vec![(items, rows), (tail, tail_rows)]
}

/// Sends a chunk's batch (its key already fixed and journaled) and tracks its task.
async fn send_and_track(
    ctx: &SendContext,
    chunk: &mut Chunk,
    path: &'static str,
    body: &serde_json::Value,
    mut report: SendReport,
) -> SendReport {
    let range = format!("rows {}-{}", chunk.first_row(), chunk.last_row());
    let submitted = match submit(ctx, chunk, &range, path, body).await {
        Ok(s) => s,
        Err(e) if chunk.items.len() > 1 && refuses_batch(&e) => {
            return bisect(ctx, chunk, e.message(), report).await;
        }
        Err(e) => {
            submit_failed(chunk, &range, &e, &mut report);
            return report;
        }
    };
    record_submission(ctx, chunk, &submitted, &range, &mut report);
    track_task(ctx, chunk, submitted, &range, report).await
}

/// A task the site accepted: its id goes to the journal (so resume polls it and never sends
/// the batch again) and to run.log.
fn record_submission(
    ctx: &SendContext,
    chunk: &Chunk,
    submitted: &TaskSubmitResponse,
    what: &str,
    report: &mut SendReport,
) {
    if let Some(j) = &ctx.journal
        && let Err(e) = j.submitted(chunk.seq, &submitted.id, &submitted.status_url)
    {
        report.journal_error = Some(e.to_string());
    }
    ctx.log.note(&format!(
        "chunk {} ({what}, {} items): task {} submitted with key {}",
        chunk.seq,
        chunk.items.len(),
        submitted.id,
        chunk.idempotency_key.as_deref().unwrap_or("")
    ));
}

/// Waits for a chunk's task and sets every row's outcome from it.
async fn track_task(
    ctx: &SendContext,
    chunk: &mut Chunk,
    submitted: TaskSubmitResponse,
    range: &str,
    mut report: SendReport,
) -> SendReport {
    report.task_id = Some(submitted.id.clone());
    let path = api::status_url_to_path(&submitted.status_url)
        .unwrap_or_else(|| paths::task(&submitted.id));
    let client = ctx.client.clone();
    let status = track::until_terminal(&ctx.poll, || {
        let client = client.clone();
        let path = path.clone();
        async move { client.get_json::<TaskStatusResponse>(&path).await }
    })
    .await;
    let status = match status {
        Ok(s) => s,
        Err(TrackError::TimedOut { last }) => {
            let state = last.map(|l| l.status.as_str()).unwrap_or("unknown");
            let why = format!(
                "task {} was still {state} after {}s",
                submitted.id,
                ctx.poll.timeout.as_secs()
            );
            if settle_by_read_back(ctx, chunk, &why).await {
                return report;
            }
            chunk.unsettled = true;
            fail_items(
                chunk,
                Stage::Task,
                &format!(
                    "outcome unknown: task {} ({range}) was still {state} after {}s; `csmport resume` on this run folder polls it again",
                    submitted.id,
                    ctx.poll.timeout.as_secs()
                ),
            );
            return report;
        }
        Err(TrackError::Fetch(e)) => {
            if e.is_auth() {
                report.auth_error = Some(e.to_string());
            }
            // A task the site no longer knows (ended tasks are kept a few days) can only be
            // settled by looking at the entities themselves.
            if e.status() == Some(404)
                && settle_by_read_back(
                    ctx,
                    chunk,
                    &format!("task {} is no longer known to the site", submitted.id),
                )
                .await
            {
                fill_organization_ids(ctx, chunk).await;
                return report;
            }
            chunk.unsettled = true;
            fail_items(
                chunk,
                Stage::Task,
                &format!(
                    "outcome unknown: polling task {} failed: {e}; `csmport resume` on this run folder polls it again",
                    submitted.id
                ),
            );
            return report;
        }
    };
    ctx.log.note(&format!(
        "chunk {}: task {} {} with {} failures",
        chunk.seq,
        status.id,
        status.status.as_str(),
        status.failures.len()
    ));
    if status.status == TaskStatus::Failed
        && status.failures.is_empty()
        && settle_by_read_back(
            ctx,
            chunk,
            &format!("task {} ended FAILED without naming any row", status.id),
        )
        .await
    {
        fill_organization_ids(ctx, chunk).await;
        return report;
    }
    let unmatched = reconcile::unmatched_entity_ids(chunk, &status);
    let resolved = resolve_ids(ctx, chunk, &unmatched).await;
    let unattributed = reconcile::apply(chunk, &status, &resolved);
    for f in unattributed {
        ctx.log.note(&format!(
            "chunk {}: task {} failure for '{}' matches no row: {}",
            chunk.seq, status.id, f.entity_id, f.error
        ));
    }
    fill_organization_ids(ctx, chunk).await;
    report
}

/// What the site has for one item, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The entity, exactly as the item gives it (everything the item sets), with its id.
    Same(String),
    /// The entity exists with other values.
    Drifted,
    /// The site does not have the entity.
    Missing,
    /// The site could not be asked about it (customers by email without `--service-desk`).
    CannotTell,
}

/// Rows the site already has exactly as the file gives them are not sent (they succeed as
/// `unchanged`, with the id). CSM cannot look a customer up by email, so for customers this
/// needs `--service-desk` (its JSM customers, listed once per run) or ids in the file; without
/// either, or when a read fails, everything is sent as usual (UPSERT leaves the site the same).
/// Rows that ask to CREATE are always sent.
async fn drop_unchanged(ctx: &SendContext, chunk: &mut Chunk) {
    let emails = match (&ctx.service_desk, ctx.kind.is_customer()) {
        (Some(sd), true) => ctx
            .emails
            .get_or_init(|| async {
                crate::site::refs::service_desk_customers(&ctx.client, sd)
                    .await
                    .map_err(|e| {
                        ctx.log.note(&format!(
                            "the customers of service project {sd} could not be listed ({e}); every row is sent"
                        ))
                    })
                    .ok()
            })
            .await
            .as_ref(),
        _ => None,
    };
    let Ok(found) = read_back_items(ctx, &chunk.items, emails).await else {
        return;
    };
    let mut keep = vec![true; chunk.items.len()];
    for (k, (item, f)) in chunk.items.iter().zip(found).enumerate() {
        if let Found::Same(id) = f
            && !item.creates()
        {
            keep[k] = false;
            chunk.rows[chunk.item_rows[k]].outcome = Outcome::Succeeded { id: Some(id) };
        }
    }
    let dropped = chunk.retain_items(&keep);
    if dropped > 0 {
        ctx.unchanged
            .fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
        ctx.log.note(&format!(
            "chunk {}: {dropped} {} already on the site as in the file; not sent",
            chunk.seq,
            if ctx.kind.is_customer() {
                "customers are"
            } else {
                "organizations are"
            }
        ));
    }
}

/// `--verify`: reads the chunk's succeeded rows back and records, per row, whether the site
/// has them as sent. Rows not sent because the site already had them were just read and count
/// as confirmed. Customers known only by email are found through `--service-desk` (listed
/// again when a row's email is not in the last listing).
pub async fn verify(ctx: &SendContext, chunk: &mut Chunk) {
    use crate::engine::report::Verdict;
    let sent: Vec<usize> = (0..chunk.items.len())
        .filter(|&k| {
            matches!(
                chunk.rows[chunk.item_rows[k]].outcome,
                Outcome::Succeeded { .. }
            )
        })
        .collect();
    for (i, r) in chunk.rows.iter().enumerate() {
        if matches!(r.outcome, Outcome::Succeeded { .. }) && !chunk.item_rows.contains(&i) {
            chunk.verified.insert(i, Verdict::Confirmed);
        }
    }
    if sent.is_empty() {
        return;
    }
    let items: Vec<BulkItem> = sent.iter().map(|&k| chunk.items[k].clone()).collect();
    let emails = match (&ctx.service_desk, ctx.kind.is_customer()) {
        (Some(sd), true) => {
            let mut cache = ctx.verify_emails.lock().await;
            let known = |m: &HashMap<String, String>| {
                items.iter().all(|i| match i {
                    BulkItem::Customer(c, _) => {
                        c.payload.customer_id.is_some()
                            || c.payload
                                .email
                                .as_deref()
                                .is_none_or(|e| m.contains_key(&e.to_lowercase()))
                    }
                    BulkItem::Organization(_) => true,
                })
            };
            if !cache.as_deref().is_some_and(known) {
                match crate::site::refs::service_desk_customers(&ctx.client, sd).await {
                    Ok(m) => *cache = Some(Arc::new(m)),
                    Err(e) => ctx.log.note(&format!(
                        "verify: the customers of service project {sd} could not be listed ({e})"
                    )),
                }
            }
            cache.clone()
        }
        _ => None,
    };
    let found = match read_back_items(ctx, &items, emails.as_deref()).await {
        Ok(f) => f,
        Err(e) => {
            ctx.log.note(&format!(
                "chunk {}: verify could not read the rows back ({e})",
                chunk.seq
            ));
            vec![Found::CannotTell; items.len()]
        }
    };
    for (k, f) in sent.into_iter().zip(found) {
        let verdict = match f {
            Found::Same(_) => Verdict::Confirmed,
            Found::Drifted => Verdict::Drifted,
            Found::Missing => Verdict::Missing,
            Found::CannotTell => Verdict::Unverifiable,
        };
        chunk.verified.insert(chunk.item_rows[k], verdict);
    }
}

/// Settles a batch whose task said nothing useful (FAILED without failures, or never ended) by
/// reading its entities back: rows the site has as sent succeed, the others fail as not
/// applied. Returns false (rows left as they are) when the site cannot tell.
async fn settle_by_read_back(ctx: &SendContext, chunk: &mut Chunk, why: &str) -> bool {
    // A fresh listing: the customers this batch created are not in the run's cached one.
    let emails = match (&ctx.service_desk, ctx.kind.is_customer()) {
        (Some(sd), true) => crate::site::refs::service_desk_customers(&ctx.client, sd)
            .await
            .ok(),
        _ => None,
    };
    let found = match read_back_items(ctx, &chunk.items, emails.as_ref()).await {
        Ok(f) => f,
        Err(e) => {
            ctx.log.note(&format!(
                "chunk {}: reading the batch back failed ({e}); its outcome stays unknown",
                chunk.seq
            ));
            return false;
        }
    };
    if found.contains(&Found::CannotTell) {
        ctx.log.note(&format!(
            "chunk {}: {why}; customers cannot be read back by email without --service-desk, so the outcome stays unknown",
            chunk.seq
        ));
        return false;
    }
    let mut applied = 0;
    for (k, f) in found.into_iter().enumerate() {
        let row = &mut chunk.rows[chunk.item_rows[k]];
        row.outcome = match f {
            Found::Same(id) => {
                applied += 1;
                Outcome::Succeeded { id: Some(id) }
            }
            _ => Outcome::Failed {
                stage: Stage::Task,
                field: String::new(),
                error: format!(
                    "not applied: {why}, and the site does not have this row as it was sent"
                ),
            },
        };
    }
    ctx.log.note(&format!(
        "chunk {}: {why}; read back: {applied} of {} rows are on the site as sent, the others were not applied",
        chunk.seq,
        chunk.items.len()
    ));
    true
}

/// Reads the items' entities back from the site (customers: profile fetch by id, 25 a call,
/// ids given or found by email in `emails`; organizations: fetch by name, 50 a call, then
/// profile fetch) and tells, per item, whether the site has it as given.
async fn read_back_items(
    ctx: &SendContext,
    items: &[BulkItem],
    emails: Option<&HashMap<String, String>>,
) -> Result<Vec<Found>, ApiError> {
    use crate::site::api::model::{CustomerProfile, DetailValue};
    let same_details = |mine: &Option<Vec<DetailValue>>, site: &[DetailValue]| {
        mine.iter().flatten().all(|d| {
            site.iter()
                .any(|s| s.name.eq_ignore_ascii_case(&d.name) && s.values == d.values)
        })
    };
    if ctx.kind.is_customer() {
        let id_of = |c: &crate::site::api::model::CustomerProfileItem| {
            c.payload.customer_id.clone().or_else(|| {
                let email = c.payload.email.as_deref()?;
                emails?.get(&email.to_lowercase()).cloned()
            })
        };
        let ids: Vec<Option<String>> = items
            .iter()
            .map(|i| match i {
                BulkItem::Customer(c, _) => id_of(c),
                BulkItem::Organization(_) => None,
            })
            .collect();
        let wanted: Vec<String> = ids.iter().flatten().cloned().collect();
        let profiles: HashMap<String, CustomerProfile> =
            crate::site::refs::customer_profiles(&ctx.client, &wanted, 1)
                .await?
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect();
        return Ok(items
            .iter()
            .zip(ids)
            .map(|(item, id)| {
                let (BulkItem::Customer(c, names), Some(id)) = (item, id) else {
                    // An email csmport could not look up: new, or not listed.
                    return if emails.is_some() {
                        Found::Missing
                    } else {
                        Found::CannotTell
                    };
                };
                let Some(site) = profiles.get(&id) else {
                    return Found::Missing;
                };
                let p = &c.payload;
                let same = names.is_empty()
                    && p.display_name
                        .as_ref()
                        .is_none_or(|n| *n == site.display_name)
                    && same_details(&p.details, &site.details)
                    && p.associate_organizations
                        .iter()
                        .flat_map(|a| &a.organization_ids)
                        .all(|o| site.organizations.iter().any(|s| &s.id == o));
                if same {
                    Found::Same(id)
                } else {
                    Found::Drifted
                }
            })
            .collect());
    }
    let names: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            BulkItem::Organization(o) if o.payload.id.is_none() => {
                o.payload.name.as_deref().map(|n| n.trim().to_string())
            }
            _ => None,
        })
        .collect();
    let by_name = if names.is_empty() {
        HashMap::new()
    } else {
        crate::site::resolve::fetch_ids(&ctx.client, &names).await?
    };
    let id_of = |o: &crate::site::api::model::OrganizationProfileItem| {
        o.payload
            .id
            .clone()
            .or_else(|| by_name.get(&match_key(o.payload.name.as_deref()?)).cloned())
    };
    let ids: Vec<Option<String>> = items
        .iter()
        .map(|i| match i {
            BulkItem::Organization(o) => id_of(o),
            BulkItem::Customer(..) => None,
        })
        .collect();
    let wanted: Vec<String> = ids.iter().flatten().cloned().collect();
    let profiles: HashMap<String, (String, Vec<DetailValue>)> =
        crate::site::refs::organization_profiles(&ctx.client, &wanted, 1)
            .await?
            .into_iter()
            .map(|p| (p.id, (p.name, p.details)))
            .collect();
    Ok(items
        .iter()
        .zip(ids)
        .map(|(item, id)| {
            let (BulkItem::Organization(o), Some(id)) = (item, id) else {
                return Found::Missing;
            };
            let Some((site_name, site_details)) = profiles.get(&id) else {
                return Found::Missing;
            };
            let same_name = o
                .payload
                .name
                .as_deref()
                .is_none_or(|n| n.trim() == site_name);
            if same_name && same_details(&o.payload.details, site_details) {
                Found::Same(id)
            } else {
                Found::Drifted
            }
        })
        .collect())
}

/// Organizations created or updated by name get their id in successes.csv: the task does not
/// return ids, but organization/fetch finds them by name (50 per call). Customers cannot be
/// looked up by email through the CSM API, so theirs stay as the input gave them.
async fn fill_organization_ids(ctx: &SendContext, chunk: &mut Chunk) {
    let wanted: Vec<(usize, String)> = chunk
        .items
        .iter()
        .zip(&chunk.item_rows)
        .filter_map(|(item, &r)| match (item, &chunk.rows[r].outcome) {
            (BulkItem::Organization(o), Outcome::Succeeded { id: None }) => {
                o.payload.name.clone().map(|n| (r, n))
            }
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return;
    }
    let names: Vec<String> = wanted.iter().map(|(_, n)| n.trim().to_string()).collect();
    match crate::site::resolve::fetch_ids(&ctx.client, &names).await {
        Ok(ids) => {
            for (r, name) in &wanted {
                if let Some(id) = ids.get(&match_key(name)) {
                    chunk.rows[*r].outcome = Outcome::Succeeded {
                        id: Some(id.clone()),
                    };
                }
            }
        }
        // Only the report's id column is lost: the rows did succeed.
        Err(e) => ctx.log.note(&format!(
            "chunk {}: could not look up the ids of {} organizations: {e}",
            chunk.seq,
            wanted.len()
        )),
    }
}

/// POSTs the batch. A refusal for the task-slot limit is not an answer about the rows: wait and
/// submit again under a new key (a refused key may stay refused, CONTRACT §7.4). Unknown
/// outcomes are retried inside the client under the same key.
async fn submit(
    ctx: &SendContext,
    chunk: &mut Chunk,
    range: &str,
    path: &'static str,
    body: &serde_json::Value,
) -> Result<TaskSubmitResponse, ApiError> {
    let mut key = chunk.idempotency_key.get_or_insert_with(uuid_key).clone();
    let label = format!("chunk {} ({range})", chunk.seq);
    let journal = ctx.journal.as_deref().map(|j| (j, chunk.seq));
    let r = submit_task(
        &ctx.client,
        &*ctx.alert,
        &label,
        path,
        body,
        &mut key,
        ctx.slot_wait,
        journal,
    )
    .await;
    chunk.idempotency_key = Some(key);
    r
}

/// Submits one bulk task under `key`, waiting for a free task slot when the site has none (a
/// new key for each resubmission; `key` ends as the one that was accepted). With a journal
/// (and the chunk's number), every attempt is recorded, and a new key is committed before it
/// is first used.
#[allow(clippy::too_many_arguments)]
pub async fn submit_task(
    client: &Client,
    alert: &dyn Notify,
    label: &str,
    path: &str,
    body: &serde_json::Value,
    key: &mut String,
    slot_wait: Duration,
    journal: Option<(&Journal, u64)>,
) -> Result<TaskSubmitResponse, ApiError> {
    let started = tokio::time::Instant::now();
    let mut refusals = 0u32;
    loop {
        let answer = client
            .post_json::<_, TaskSubmitResponse>(path, body, Some(key))
            .await;
        if let Some((j, seq)) = journal {
            let outcome = match &answer {
                Ok(t) => format!("accepted as task {}", t.id),
                Err(e) => e.to_string(),
            };
            if let Err(e) = j.attempt(seq, key, &outcome) {
                alert.note(&format!("{label}: {e}"));
            }
        }
        match answer {
            Err(ApiError::Status {
                status: 400,
                message,
                ..
            }) if message.contains(TASK_LIMIT_MESSAGE) && started.elapsed() < slot_wait => {
                refusals += 1;
                let wait = retry::backoff(
                    &retry::Policy {
                        base: Duration::from_secs(1),
                        cap: Duration::from_secs(30),
                        ..retry::Policy::default()
                    },
                    refusals,
                    0.5,
                );
                let new_key = uuid_key();
                alert.note(&format!(
                    "{label}: server task slots full; waiting {:.1}s, then resubmitting with new key {new_key} (was {key})",
                    wait.as_secs_f64()
                ));
                if let Some((j, seq)) = journal
                    && let Err(e) = j.rekey(seq, &new_key)
                {
                    // Never send under a key the journal does not know.
                    return Err(ApiError::Decode {
                        method: "POST",
                        path: path.to_string(),
                        message: format!("not sent again: {e}"),
                    });
                }
                *key = new_key;
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// Polls a submitted task until it ends (or the policy's timeout).
pub async fn wait_task(
    client: &Client,
    poll: &PollPolicy,
    submitted: &TaskSubmitResponse,
) -> Result<TaskStatusResponse, TrackError<ApiError>> {
    let path = api::status_url_to_path(&submitted.status_url)
        .unwrap_or_else(|| paths::task(&submitted.id));
    track::until_terminal(poll, || async {
        client.get_json::<TaskStatusResponse>(&path).await
    })
    .await
}

/// Looks up customer ids named in failures to learn their emails (profile fetch, 25 per call).
/// Best effort: what cannot be resolved stays unattributed and is reported as such.
/// Replaces the organization names customers give by ids (looking them up, creating missing
/// ones first). Rows whose organizations cannot be had fail here and leave the batch, before
/// its first send.
async fn attach_organizations(ctx: &SendContext, chunk: &mut Chunk) {
    let names: Vec<String> = chunk
        .items
        .iter()
        .flat_map(|i| match i {
            BulkItem::Customer(_, names) => names.clone(),
            BulkItem::Organization(_) => vec![],
        })
        .collect();
    if names.is_empty() {
        return;
    }
    let resolved = ctx
        .orgs
        .resolve(&ctx.client, &ctx.poll, &*ctx.log, &names)
        .await;
    let mut keep = vec![true; chunk.items.len()];
    for (i, item) in chunk.items.iter_mut().enumerate() {
        let BulkItem::Customer(c, names) = item else {
            continue;
        };
        let mut errors = Vec::new();
        for n in names.drain(..) {
            match resolved.get(&match_key(&n)) {
                Some(Ok(id)) => {
                    let assoc = c.payload.associate_organizations.get_or_insert_with(|| {
                        crate::site::api::model::AssociateOrganizations {
                            organization_ids: vec![],
                        }
                    });
                    if !assoc.organization_ids.contains(id) {
                        assoc.organization_ids.push(id.clone());
                    }
                }
                Some(Err(why)) => errors.push(why.clone()),
                None => errors.push(format!("organization '{n}' could not be resolved")),
            }
        }
        if !errors.is_empty() {
            keep[i] = false;
            chunk.rows[chunk.item_rows[i]].outcome = Outcome::Failed {
                stage: Stage::Send,
                field: crate::map::COL_ORGANIZATIONS.into(),
                error: format!("not sent: {}", errors.join(" | ")),
            };
        }
    }
    chunk.retain_items(&keep);
}

/// The bulk endpoint and body for a chunk's items (all of one kind). The account endpoints take
/// the identifying part of the profile items.
fn bulk_body(kind: RecordKind, items: &[BulkItem]) -> (&'static str, serde_json::Value) {
    match kind {
        RecordKind::CustomerAccounts => {
            let customers = items
                .iter()
                .filter_map(|i| match i {
                    BulkItem::Customer(c, _) => Some(CustomerAccountItem {
                        operation_type: c.operation_type,
                        payload: CustomerAccountPayload {
                            customer_id: c.payload.customer_id.clone(),
                            email: c.payload.email.clone(),
                            display_name: c.payload.display_name.clone(),
                        },
                    }),
                    BulkItem::Organization(_) => None,
                })
                .collect();
            return (
                paths::CUSTOMER_BULK,
                serde_json::to_value(CustomerBulkRequest { customers }).expect("serializes"),
            );
        }
        RecordKind::OrganizationAccounts => {
            let organizations = items
                .iter()
                .filter_map(|i| match i {
                    BulkItem::Organization(o) => Some(OrganizationAccountItem {
                        operation_type: o.operation_type,
                        payload: OrganizationAccountPayload {
                            id: o.payload.id.clone(),
                            name: o.payload.name.clone(),
                        },
                    }),
                    BulkItem::Customer(..) => None,
                })
                .collect();
            return (
                paths::ORGANIZATION_BULK,
                serde_json::to_value(OrganizationBulkRequest { organizations })
                    .expect("serializes"),
            );
        }
        RecordKind::Customers | RecordKind::Organizations => {}
    }
    let customers: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            BulkItem::Customer(c, _) => Some(c.clone()),
            BulkItem::Organization(_) => None,
        })
        .collect();
    if customers.len() == items.len() {
        let body = CustomerProfileBulkRequest {
            customer_profiles: customers,
        };
        return (
            paths::CUSTOMER_PROFILE_BULK,
            serde_json::to_value(body).expect("serializes"),
        );
    }
    let organizations: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            BulkItem::Organization(o) => Some(o.clone()),
            BulkItem::Customer(..) => None,
        })
        .collect();
    let body = OrganizationProfileBulkRequest {
        organization_profiles: organizations,
    };
    (
        paths::ORGANIZATION_PROFILE_BULK,
        serde_json::to_value(body).expect("serializes"),
    )
}

/// Looks up ids named in failures to learn the emails (customer profile fetch, 25 per call) or
/// names (organization fetch, 50 per call) the chunk knows its rows by. Best effort: what
/// cannot be resolved stays unattributed and is reported as such.
async fn resolve_ids(ctx: &SendContext, chunk: &Chunk, ids: &[String]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let organizations = matches!(chunk.items.first(), Some(BulkItem::Organization(_)));
    let size = if organizations {
        MAX_ORGANIZATION_FETCH
    } else {
        MAX_PROFILE_FETCH
    };
    for group in ids.chunks(size) {
        let result = if organizations {
            let req = OrganizationFetchRequest {
                organization_ids: group.to_vec(),
                organization_names: vec![],
            };
            ctx.client
                .post_json::<_, OrganizationFetchResponse>(paths::ORGANIZATION_FETCH, &req, None)
                .await
                .map(|r| {
                    r.results
                        .into_iter()
                        .map(|o| (o.id, o.name))
                        .collect::<Vec<_>>()
                })
        } else {
            let req = CustomerProfileFetchRequest {
                customer_ids: group.to_vec(),
            };
            ctx.client
                .post_json::<_, CustomerProfileFetchResponse>(
                    paths::CUSTOMER_PROFILE_FETCH,
                    &req,
                    None,
                )
                .await
                .map(|r| {
                    r.results
                        .into_iter()
                        .filter_map(|p| Some((p.id, p.email?)))
                        .collect::<Vec<_>>()
                })
        };
        match result {
            Ok(pairs) => out.extend(pairs),
            Err(e) => ctx
                .log
                .note(&format!("could not resolve ids {group:?}: {e}")),
        }
    }
    out
}

fn fail_items(chunk: &mut Chunk, stage: Stage, error: &str) {
    for &i in &chunk.item_rows {
        chunk.rows[i].outcome = Outcome::Failed {
            stage,
            field: String::new(),
            error: error.to_string(),
        };
    }
}

/// Marks a chunk that was not sent because the run stopped first (`resume` sends it).
pub fn skip_items(chunk: &mut Chunk, reason: &str) {
    chunk.unsettled = true;
    for &i in &chunk.item_rows {
        chunk.rows[i].outcome = Outcome::Skipped {
            reason: reason.to_string(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn batches_split_in_halves_in_order() {
        let cases: Vec<(Vec<u32>, Vec<Vec<u32>>)> = vec![
            (vec![], vec![vec![]]),
            (vec![1], vec![vec![1]]),
            (vec![1, 2], vec![vec![1], vec![2]]),
            (vec![1, 2, 3], vec![vec![1, 2], vec![3]]),
            (vec![1, 2, 3, 4, 5, 6], vec![vec![1, 2, 3], vec![4, 5, 6]]),
        ];
        for (items, want) in cases {
            let rows: Vec<usize> = items.iter().map(|i| *i as usize * 10).collect();
            let got = split(items.clone(), rows);
            let parts: Vec<Vec<u32>> = got.iter().map(|(p, _)| p.clone()).collect();
            assert_eq!(parts, want, "{items:?}");
            for (p, r) in &got {
                let expect: Vec<usize> = p.iter().map(|i| *i as usize * 10).collect();
                assert_eq!(r, &expect, "rows follow their items");
            }
        }
    }
}
