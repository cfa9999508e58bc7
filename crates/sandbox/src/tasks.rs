//! Sandbox task engine: a submitted bulk job runs in the background, NOT_STARTED → IN_PROGRESS
//! → FINISHED (or FAILED), applying each item through `store` and collecting per-item failures.
//! Duration is `--task-latency-ms` plus `--item-latency-ms` per item, with jitter, so tasks do
//! not always finish in submission order. Started by `http`; faults come from `faults`.

use std::time::Duration;

use csmport_api::model::{
    CreateDetailField, CustomerAccountItem, CustomerDetailOperations, CustomerProfileItem,
    OrganizationAccountItem, OrganizationDetailOperations, OrganizationProfileItem, TaskFailure,
    TaskStatus,
};
use csmport_api::{STALE_TASK_SECS, TASK_TYPE_CUSTOMER_PROFILE};

use super::Sandbox;
use super::faults::TaskFault;
use super::store::{Entity, Store, now_iso};

/// [UNCONFIRMED] task `type` values other than the documented one (CONTRACT §7.2).
pub const TASK_TYPE_CUSTOMER_ACCOUNT: &str = "BULK_CUSTOMER_ACCOUNT_CREATE_UPDATE";
pub const TASK_TYPE_CUSTOMER_DETAILS: &str = "BULK_CUSTOMER_DETAIL_VALUES";
pub const TASK_TYPE_CUSTOMER_FIELDS: &str = "BULK_CUSTOMER_DETAIL_FIELD_CREATE";
pub const TASK_TYPE_ORGANIZATION: &str = "BULK_ORGANIZATION_CREATE_UPDATE";
pub const TASK_TYPE_ORGANIZATION_PROFILE: &str = "BULK_ORGANIZATION_PROFILE_CREATE_UPDATE";
pub const TASK_TYPE_ORGANIZATION_DETAILS: &str = "BULK_ORGANIZATION_DETAIL_VALUES";
pub const TASK_TYPE_ORGANIZATION_FIELDS: &str = "BULK_ORGANIZATION_DETAIL_FIELD_CREATE";

/// The work of one bulk task. Kept with its task until it ends (and saved with it under
/// `--data`), so a task running when the sandbox stops finishes after a restart.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "items")]
pub enum Job {
    CustomerProfiles(Vec<CustomerProfileItem>),
    CustomerAccounts(Vec<CustomerAccountItem>),
    CustomerDetails(Vec<CustomerDetailOperations>),
    OrganizationProfiles(Vec<OrganizationProfileItem>),
    OrganizationAccounts(Vec<OrganizationAccountItem>),
    OrganizationDetails(Vec<OrganizationDetailOperations>),
    Definitions(Entity, Vec<CreateDetailField>),
}

impl Job {
    pub fn task_type(&self) -> &'static str {
        match self {
            Job::CustomerProfiles(_) => TASK_TYPE_CUSTOMER_PROFILE,
            Job::CustomerAccounts(_) => TASK_TYPE_CUSTOMER_ACCOUNT,
            Job::CustomerDetails(_) => TASK_TYPE_CUSTOMER_DETAILS,
            Job::OrganizationProfiles(_) => TASK_TYPE_ORGANIZATION_PROFILE,
            Job::OrganizationAccounts(_) => TASK_TYPE_ORGANIZATION,
            Job::OrganizationDetails(_) => TASK_TYPE_ORGANIZATION_DETAILS,
            Job::Definitions(Entity::Organization, _) => TASK_TYPE_ORGANIZATION_FIELDS,
            Job::Definitions(_, _) => TASK_TYPE_CUSTOMER_FIELDS,
        }
    }

    /// Each item of the request as JSON (for the refuse-item fault).
    pub fn item_json(&self) -> Vec<String> {
        fn all<T: serde::Serialize>(v: &[T]) -> Vec<String> {
            v.iter()
                .map(|i| serde_json::to_string(i).expect("items serialize"))
                .collect()
        }
        match self {
            Job::CustomerProfiles(v) => all(v),
            Job::CustomerAccounts(v) => all(v),
            Job::CustomerDetails(v) => all(v),
            Job::OrganizationProfiles(v) => all(v),
            Job::OrganizationAccounts(v) => all(v),
            Job::OrganizationDetails(v) => all(v),
            Job::Definitions(_, v) => all(v),
        }
    }

    /// Units of work, for the per-item latency (detail operations count one each).
    pub fn items(&self) -> usize {
        match self {
            Job::CustomerProfiles(v) => v.len(),
            Job::CustomerAccounts(v) => v.len(),
            Job::CustomerDetails(v) => v.iter().map(|c| c.operations.len()).sum(),
            Job::OrganizationProfiles(v) => v.len(),
            Job::OrganizationAccounts(v) => v.len(),
            Job::OrganizationDetails(v) => v.iter().map(|c| c.operations.len()).sum(),
            Job::Definitions(_, v) => v.len(),
        }
    }

    /// The job of its first half of items (entities, for detail values), rounded up.
    pub fn first_half(&self) -> Job {
        fn half<T: Clone>(v: &[T]) -> Vec<T> {
            v[..v.len().div_ceil(2)].to_vec()
        }
        match self {
            Job::CustomerProfiles(v) => Job::CustomerProfiles(half(v)),
            Job::CustomerAccounts(v) => Job::CustomerAccounts(half(v)),
            Job::CustomerDetails(v) => Job::CustomerDetails(half(v)),
            Job::OrganizationProfiles(v) => Job::OrganizationProfiles(half(v)),
            Job::OrganizationAccounts(v) => Job::OrganizationAccounts(half(v)),
            Job::OrganizationDetails(v) => Job::OrganizationDetails(half(v)),
            Job::Definitions(e, v) => Job::Definitions(*e, half(v)),
        }
    }

    /// Applies every item; failures do not stop the others.
    pub fn apply(&self, store: &mut Store) -> Vec<TaskFailure> {
        fn each<T>(
            items: &[T],
            mut f: impl FnMut(&T) -> Result<(), TaskFailure>,
        ) -> Vec<TaskFailure> {
            items.iter().filter_map(|i| f(i).err()).collect()
        }
        match self {
            Job::CustomerProfiles(v) => each(v, |i| store.apply_customer_profile(i)),
            Job::CustomerAccounts(v) => each(v, |i| store.apply_customer_account(i)),
            Job::CustomerDetails(v) => each(v, |i| store.apply_customer_details(i)),
            Job::OrganizationProfiles(v) => each(v, |i| store.apply_organization_profile(i)),
            Job::OrganizationAccounts(v) => each(v, |i| store.apply_organization_account(i)),
            Job::OrganizationDetails(v) => each(v, |i| store.apply_organization_details(i)),
            Job::Definitions(entity, v) => {
                // Checked when submitted; checked again here because another task may have
                // added a clashing name meanwhile. All or nothing.
                if let Err(e) = store.check_new_fields(*entity, v) {
                    return vec![TaskFailure {
                        entity: entity.as_str().to_uppercase(),
                        entity_id: String::new(),
                        operation: "CREATE".into(),
                        operated_on: super::store::ON_DETAIL_FIELD.into(),
                        operated_on_ids: v.iter().map(|d| d.name.clone()).collect(),
                        error: e,
                    }];
                }
                for d in v {
                    store.add_field(*entity, d.name.clone(), d.field_type.clone());
                }
                vec![]
            }
        }
    }
}

/// Draws in [0, 1) that set how long a task takes.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// Stretches its duration by up to `--task-jitter` (50% by default).
    pub jitter: f64,
    /// Below `--task-tail`: it takes `--task-tail-factor` times as long.
    pub tail: f64,
}

impl Spread {
    pub const NONE: Spread = Spread {
        jitter: 0.0,
        tail: 1.0,
    };
}

/// Runs a task in the background, as long as `spread` says.
pub fn run(sb: Sandbox, task_id: String, job: Job, fault: TaskFault, spread: Spread) {
    tokio::spawn(async move {
        let c = &sb.config;
        let slow = if spread.tail < c.task_tail {
            c.task_tail_factor
        } else {
            1.0
        };
        let total = (c.task_latency + c.item_latency * job.items() as u32)
            .mul_f64((1.0 + spread.jitter * c.task_jitter) * slow);
        let first = total / 3;
        tokio::time::sleep(first).await;
        sb.with_store(|s| s.set_task_status(&task_id, TaskStatus::InProgress, vec![]));
        if fault == TaskFault::Stuck {
            // Never finishes; the stale-task rule times it out.
            return;
        }
        tokio::time::sleep(total - first).await;
        sb.with_store(|store| {
            if store
                .tasks
                .get(&task_id)
                .is_none_or(|t| t.status.status.is_terminal())
            {
                return;
            }
            match fault {
                // The data was written, but the task says FAILED and names nothing: the case
                // a third party saw on live sites (CONTRACT §12).
                TaskFault::FailedEmpty => {
                    job.apply(store);
                    store.set_task_status(&task_id, TaskStatus::Failed, vec![])
                }
                // It stopped half-way ("failed or timed out before completing"): the second
                // half was never applied, and only the first half's failures are listed.
                TaskFault::FailedHalf => {
                    let failures = job.first_half().apply(store);
                    store.set_task_status(&task_id, TaskStatus::Failed, failures)
                }
                _ => {
                    let failures = job.apply(store);
                    store.set_task_status(&task_id, TaskStatus::Finished, failures)
                }
            }
        });
    });
}

/// Times out unfinished tasks older than the stale limit and forgets ended tasks older than the
/// retention. Called before reads of tasks and before counting slots.
pub fn expire(store: &mut Store, retention: Duration, stale: Duration) {
    let now = super::store::now_ms();
    let age = |ms: i64| Duration::from_millis(u64::try_from(now - ms).unwrap_or(0));
    let mut stale_ids = Vec::new();
    let mut expired = Vec::new();
    for (id, t) in &store.tasks {
        if !t.status.status.is_terminal() {
            if age(t.created_ms) >= stale {
                stale_ids.push(id.clone());
            }
        } else if t.finished_ms.is_some_and(|f| age(f) >= retention) {
            expired.push(id.clone());
        }
    }
    for id in stale_ids {
        store.set_task_status(&id, TaskStatus::Failed, vec![]);
    }
    for id in expired {
        store.remove_task(&id);
    }
}

pub fn stale_default() -> Duration {
    Duration::from_secs(STALE_TASK_SECS)
}

/// A new task record for `job`, saved with its idempotency key.
pub fn create(
    store: &mut Store,
    cloud_id: &str,
    key: &str,
    canonical: String,
    job: &Job,
    first: TaskStatus,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_iso();
    store.put_task(super::store::Task {
        status: csmport_api::model::TaskStatusResponse {
            id: id.clone(),
            task_type: job.task_type().to_string(),
            status: first,
            failures: vec![],
            created_at: now.clone(),
            updated_at: now,
        },
        cloud_id: cloud_id.to_string(),
        idempotency_key: key.to_string(),
        items: job.items(),
        created_ms: super::store::now_ms(),
        finished_ms: None,
        job: Some(job.clone()),
    });
    store.keys.insert(key.to_string(), (canonical, id.clone()));
    store.touch(super::store::T_KEY, key);
    id
}
