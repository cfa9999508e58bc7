//! Bulk submissions and the task API (CB1–CB4, OB1–OB4, T1): one path for every bulk
//! endpoint — key, slot and body checks, then a task for `tasks`. Handlers of `http`'s router.

use super::prelude::*;

pub(super) fn submit(
    sb: &Sandbox,
    cloud_id: &str,
    headers: &HeaderMap,
    canonical: String,
    job: Job,
    // Checks of the site's state a new request must pass (a name clash). They run after the
    // key lookup: a replay of an applied request gets its task back, as the client's retry
    // after a lost answer must, not a refusal caused by the request itself.
    check: impl FnOnce(&Store) -> Result<(), String>,
) -> R {
    let Some(key) = headers
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return error(
            StatusCode::from_u16(MISSING_IDEMPOTENCY_STATUS).expect("valid status"),
            format!("The {IDEMPOTENCY_HEADER} header is required for bulk operations"),
        );
    };
    if key.len() > 255 {
        return bad(format!(
            "{IDEMPOTENCY_HEADER} must be at most 255 characters"
        ));
    }
    // A request-level refusal of the whole batch for one item (`--fault-refuse-item`), as a
    // real site refuses an envelope it finds invalid.
    let refuse = sb
        .faults
        .lock()
        .expect("faults lock")
        .faults
        .refuse_item
        .clone();
    if let Some(text) = refuse.filter(|t| !t.is_empty())
        && let Some(i) = job.item_json().iter().position(|j| j.contains(&text))
    {
        return bad(format!(
            "item {i} of the request is invalid: it contains '{text}' (sandbox fault)"
        ));
    }
    let (task_fault, jitter, quirks) = {
        let mut f = sb.faults.lock().expect("faults lock");
        let (fault, jitter) = (f.task(), f.draw());
        // From a generator of its own: which tasks are slow follows from the seed and the
        // order tasks are made in, not from the requests between.
        let tail = if sb.config.task_tail > 0.0 {
            f.draw_tail()
        } else {
            1.0
        };
        (
            fault,
            tasks::Spread { jitter, tail },
            f.faults.quirks.clone(),
        )
    };
    let c = &sb.config;
    let outcome = sb.with_store(|store| {
        tasks::expire(store, c.task_retention, c.stale_task);
        if c.slots_before_keys && store.unfinished_tasks(cloud_id) >= c.max_tasks {
            return Err(bad(TASK_LIMIT_MESSAGE));
        }
        if let Some((seen_body, task_id)) = store.keys.get(key) {
            if *seen_body == canonical {
                return Ok((task_id.clone(), false));
            }
            return Err(error(
                StatusCode::from_u16(c.idempotency_conflict_status)
                    .unwrap_or(StatusCode::BAD_REQUEST),
                format!(
                    "{IDEMPOTENCY_HEADER} '{key}' was already used with a different request body"
                ),
            ));
        }
        check(store).map_err(bad)?;
        // The slot refusal is not remembered under the key: a later retry may succeed.
        if store.unfinished_tasks(cloud_id) >= c.max_tasks {
            return Err(bad(TASK_LIMIT_MESSAGE));
        }
        let first = if quirks.contains(&quirks::Quirk::UnknownStatus) {
            csmport_api::model::TaskStatus::Other(quirks::UNKNOWN_STATUS.into())
        } else {
            csmport_api::model::TaskStatus::NotStarted
        };
        Ok((
            tasks::create(store, cloud_id, key, canonical, &job, first),
            true,
        ))
    });
    match outcome {
        Err(r) => r,
        Ok((task_id, fresh)) => {
            if fresh {
                tasks::run(sb.clone(), task_id.clone(), job, task_fault, jitter);
            }
            (
                BULK_ACCEPTED_STATUS,
                axum::Json(TaskSubmitResponse {
                    status_url: csmport_api::status_url(&task_id),
                    id: task_id,
                }),
            )
                .into_response()
        }
    }
}

/// Parses a bulk body and returns it with its canonical form (serde_json maps are ordered).
pub(super) fn parse_bulk<T: DeserializeOwned + Serialize>(body: &[u8]) -> Result<(T, String), R> {
    let v: T = parse(body)?;
    let canonical = serde_json::to_value(&v)
        .expect("request serializes")
        .to_string();
    Ok((v, canonical))
}

pub(super) fn check_count(what: &str, n: usize, max: usize) -> Result<(), R> {
    if n == 0 || n > max {
        return Err(bad(format!(
            "{what} must contain between 1 and {max} items, got {n}"
        )));
    }
    Ok(())
}

/// One bulk endpoint: its body type, the name and limit of its item list, and the job it
/// makes. Every bulk handler is this one path: body, counts, then `submit` (key and slot).
struct Endpoint<T> {
    items: &'static str,
    max: usize,
    /// Items, and units counted against `max` when they differ (detail operations).
    count: fn(&T) -> (usize, Option<usize>),
    job: fn(T) -> Job,
}

async fn handle<T: DeserializeOwned + Serialize>(
    e: Endpoint<T>,
    sb: Sandbox,
    cloud: String,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let (req, canonical) = tri!(parse_bulk::<T>(&body));
    let (n, units) = (e.count)(&req);
    tri!(check_count(e.items, n, e.max));
    if let Some(ops) = units {
        tri!(check_count("detail-field operations", ops, e.max));
    }
    submit(&sb, &cloud, &h, canonical, (e.job)(req), |_| Ok(()))
}

/// `customer/profile/bulk` (CB4).
pub(super) async fn customer_profiles(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let e = Endpoint {
        items: "customerProfiles",
        max: MAX_PROFILE_BULK_ITEMS,
        count: |r: &CustomerProfileBulkRequest| (r.customer_profiles.len(), None),
        job: |r| Job::CustomerProfiles(r.customer_profiles),
    };
    handle(e, sb, cloud, h, body).await
}

/// `customer/bulk` (CB3).
pub(super) async fn customers(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let e = Endpoint {
        items: "customers",
        max: MAX_ACCOUNT_BULK_ITEMS,
        count: |r: &CustomerBulkRequest| (r.customers.len(), None),
        job: |r| Job::CustomerAccounts(r.customers),
    };
    handle(e, sb, cloud, h, body).await
}

/// `customer/details/bulk` (CB2): at most 1,000 operations over all customers.
pub(super) async fn customer_details(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let e = Endpoint {
        items: "customers",
        max: MAX_DETAIL_OPERATIONS,
        count: |r: &CustomerDetailsBulkRequest| {
            let ops = r.customers.iter().map(|c| c.operations.len()).sum();
            (r.customers.len(), Some(ops))
        },
        job: |r| Job::CustomerDetails(r.customers),
    };
    handle(e, sb, cloud, h, body).await
}

/// `organization/profile/bulk` (OB2).
pub(super) async fn organization_profiles(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let e = Endpoint {
        items: "organizationProfiles",
        max: MAX_PROFILE_BULK_ITEMS,
        count: |r: &OrganizationProfileBulkRequest| (r.organization_profiles.len(), None),
        job: |r| Job::OrganizationProfiles(r.organization_profiles),
    };
    handle(e, sb, cloud, h, body).await
}

/// `organization/bulk` (OB3).
pub(super) async fn organizations(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let e = Endpoint {
        items: "organizations",
        max: MAX_ACCOUNT_BULK_ITEMS,
        count: |r: &OrganizationBulkRequest| (r.organizations.len(), None),
        job: |r| Job::OrganizationAccounts(r.organizations),
    };
    handle(e, sb, cloud, h, body).await
}

/// `organization/details/bulk` (OB4): at most 1,000 operations over all organizations.
pub(super) async fn organization_details(
    State(sb): State<Sandbox>,
    Path(cloud): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> R {
    let e = Endpoint {
        items: "organizations",
        max: MAX_DETAIL_OPERATIONS,
        count: |r: &OrganizationDetailsBulkRequest| {
            let ops = r.organizations.iter().map(|o| o.operations.len()).sum();
            (r.organizations.len(), Some(ops))
        },
        job: |r| Job::OrganizationDetails(r.organizations),
    };
    handle(e, sb, cloud, h, body).await
}

/// `{customer,organization}/details/definitions/bulk` (CB1, OB1): all or nothing, a name
/// clash refuses the whole request at once.
pub(super) fn definitions(entity: Entity) -> axum::routing::MethodRouter<Sandbox> {
    axum::routing::post(
        move |State(sb): State<Sandbox>, Path(cloud): Path<String>, h: HeaderMap, body: Bytes| async move {
            let (req, canonical) = tri!(parse_bulk::<DetailDefinitionsBulkRequest>(&body));
            tri!(check_count(
                "detailFields",
                req.detail_fields.len(),
                MAX_DEFINITIONS_BULK
            ));
            let fields = req.detail_fields.clone();
            submit(
                &sb,
                &cloud,
                &h,
                canonical,
                Job::Definitions(entity, req.detail_fields),
                |store| store.check_new_fields(entity, &fields),
            )
        },
    )
}

pub(super) async fn task(
    State(sb): State<Sandbox>,
    Path((_, task_id)): Path<(String, String)>,
) -> R {
    let c = &sb.config;
    sb.with_store(|store| {
        tasks::expire(store, c.task_retention, c.stale_task);
        match store.tasks.get(&task_id) {
            Some(t) => ok(t.status.clone()),
            None => missing("Task", &task_id),
        }
    })
}
