//! References stage: organization names in a customers file become organization ids before a
//! batch is sent. Names are looked up with `organization/fetch` (50 per call); missing ones are
//! created first with an organization profile bulk task (UPSERT by name), which must be
//! FINISHED before any customer that names them is sent — unless creation is switched off, and
//! then those rows fail with the reason. Results are cached for the run. Used by `send`.

use std::collections::HashMap;

use tokio::sync::Mutex;

use crate::engine::plan::{match_key, uuid_key};
use crate::engine::track::{self, PollPolicy};
use crate::site::api::model::{
    OrganizationFetchRequest, OrganizationFetchResponse, OrganizationProfileBulkRequest,
    OrganizationProfileItem, OrganizationProfilePayload, ProfileOperation, TaskStatusResponse,
    TaskSubmitResponse,
};
use crate::site::api::{self, MAX_ORGANIZATION_FETCH, MAX_PROFILE_BULK_ITEMS, paths};
use crate::site::client::{ApiError, Client, Notify};

pub struct OrgResolver {
    /// Create organizations that do not exist yet (`--no-create-organizations` turns it off).
    pub create: bool,
    /// Normalized name → id, or why there is none. One lock: two batches naming the same new
    /// organization must not both create it.
    cache: Mutex<HashMap<String, Result<String, String>>>,
}

impl OrgResolver {
    pub fn new(create: bool) -> OrgResolver {
        OrgResolver {
            create,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Ids for `names` (keyed by `match_key`), or the reason a name has none.
    pub async fn resolve(
        &self,
        client: &Client,
        poll: &PollPolicy,
        log: &dyn Notify,
        names: &[String],
    ) -> HashMap<String, Result<String, String>> {
        let mut cache = self.cache.lock().await;
        let mut wanted: Vec<String> = Vec::new();
        for n in names {
            let k = match_key(n);
            if !cache.contains_key(&k) && !wanted.iter().any(|w| match_key(w) == k) {
                wanted.push(n.trim().to_string());
            }
        }
        if !wanted.is_empty() {
            let found = fetch_ids(client, &wanted).await;
            let missing: Vec<String> = match &found {
                Ok(map) => wanted
                    .iter()
                    .filter(|w| !map.contains_key(&match_key(w)))
                    .cloned()
                    .collect(),
                Err(_) => vec![],
            };
            match found {
                Err(e) => {
                    for w in &wanted {
                        cache.insert(
                            match_key(w),
                            Err(format!("could not look up organization '{w}': {e}")),
                        );
                    }
                }
                Ok(map) => {
                    cache.extend(map.into_iter().map(|(k, id)| (k, Ok(id))));
                    if !missing.is_empty() {
                        let created = if self.create {
                            create(client, poll, log, &missing).await
                        } else {
                            Err("it does not exist on the site (creating organizations is off: --no-create-organizations)".to_string())
                        };
                        match created {
                            Ok(()) => {
                                let again = fetch_ids(client, &missing).await.unwrap_or_default();
                                for m in &missing {
                                    let k = match_key(m);
                                    let r = again.get(&k).cloned().ok_or_else(|| {
                                        format!(
                                            "organization '{m}' was not found after it was created"
                                        )
                                    });
                                    cache.insert(k, r);
                                }
                            }
                            Err(why) => {
                                for m in &missing {
                                    cache.insert(
                                        match_key(m),
                                        Err(format!("organization '{m}': {why}")),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        names
            .iter()
            .map(|n| {
                let k = match_key(n);
                let r = cache
                    .get(&k)
                    .cloned()
                    .unwrap_or_else(|| Err(format!("organization '{n}' is unknown")));
                (k, r)
            })
            .collect()
    }
}

/// Looks organization names up, 50 per call; returns normalized name (`match_key`) → id for
/// those that exist.
pub async fn fetch_ids(
    client: &Client,
    names: &[String],
) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for group in names.chunks(MAX_ORGANIZATION_FETCH) {
        let req = OrganizationFetchRequest {
            organization_ids: vec![],
            organization_names: group.to_vec(),
        };
        let resp: OrganizationFetchResponse = client
            .post_json(paths::ORGANIZATION_FETCH, &req, None)
            .await?;
        for o in resp.results {
            out.insert(match_key(&o.name), o.id);
        }
    }
    Ok(out)
}

/// Creates organizations by name (UPSERT, so a concurrent creation elsewhere is harmless) and
/// waits until the task is terminal.
async fn create(
    client: &Client,
    poll: &PollPolicy,
    log: &dyn Notify,
    names: &[String],
) -> Result<(), String> {
    for group in names.chunks(MAX_PROFILE_BULK_ITEMS) {
        let body = OrganizationProfileBulkRequest {
            organization_profiles: group
                .iter()
                .map(|n| OrganizationProfileItem {
                    operation_type: ProfileOperation::Upsert,
                    payload: OrganizationProfilePayload {
                        name: Some(n.clone()),
                        ..Default::default()
                    },
                })
                .collect(),
        };
        let key = uuid_key();
        let submitted: TaskSubmitResponse = client
            .post_json(paths::ORGANIZATION_PROFILE_BULK, &body, Some(&key))
            .await
            .map_err(|e| format!("could not be created: {e}"))?;
        log.note(&format!(
            "creating {} organizations named by customers ({}): task {} with key {key}",
            group.len(),
            group.join(", "),
            submitted.id
        ));
        let path = api::status_url_to_path(&submitted.status_url)
            .unwrap_or_else(|| paths::task(&submitted.id));
        let status = track::until_terminal(poll, || async {
            client.get_json::<TaskStatusResponse>(&path).await
        })
        .await
        .map_err(|e| match e {
            track::TrackError::TimedOut { .. } => {
                format!("creating it did not finish (task {})", submitted.id)
            }
            track::TrackError::Fetch(e) => format!("creating it could not be followed: {e}"),
        })?;
        for f in &status.failures {
            log.note(&format!(
                "organization '{}' was not created: {}",
                f.entity_id, f.error
            ));
        }
    }
    Ok(())
}
