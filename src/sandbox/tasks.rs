//! Sandbox task engine: runs a submitted bulk task in the background, NOT_STARTED → IN_PROGRESS
//! → FINISHED, applying each item through `store` and collecting per-item failures. Started
//! by `routes` on submission.

use crate::api::model::{CustomerProfileItem, TaskStatus};

use super::Sandbox;

pub fn run_customer_profiles(sb: Sandbox, task_id: String, items: Vec<CustomerProfileItem>) {
    tokio::spawn(async move {
        let half = sb.config.task_latency / 2;
        tokio::time::sleep(half).await;
        sb.store.lock().expect("store lock").set_task_status(
            &task_id,
            TaskStatus::InProgress,
            vec![],
        );
        tokio::time::sleep(sb.config.task_latency - half).await;
        let mut store = sb.store.lock().expect("store lock");
        let failures: Vec<_> = items
            .iter()
            .filter_map(|item| store.apply_customer_profile(item).err())
            .collect();
        store.set_task_status(&task_id, TaskStatus::Finished, failures);
    });
}
