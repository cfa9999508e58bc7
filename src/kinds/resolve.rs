//! Organization names in a customers file become organization ids before a batch is sent.
//! Names are looked up with `organization/fetch` (50 per call); missing ones are created first
//! by an organization profile bulk task (UPSERT by name), which the engine journals and runs
//! under the same slot limit and pacing as every batch, and which must end before any
//! customer that names them is sent — unless creation is switched off, and then those rows
//! fail with the reason. Ids and refusals are kept for the run; a lookup or creation that
//! could not finish is asked again by the next chunk (its rows stay open). Used by
//! `kinds::customers`; the lookups are `site::refs`'.

use std::collections::HashMap;

use tokio::sync::Mutex;

use super::{Call, Cx, Method};
use crate::row::match_key;
use crate::site::api::model::{
    OrganizationProfileBulkRequest, OrganizationProfileItem, OrganizationProfilePayload,
    ProfileOperation,
};
use crate::site::api::{MAX_PROFILE_BULK_ITEMS, paths};
use crate::site::refs::fetch_ids;

/// What a name turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Id(String),
    /// The name cannot be had (creation is off, or creating it failed): rows naming it fail.
    Refused(String),
    /// Not known yet (a lookup failed, a creation has not ended): rows naming it stay open.
    Open(String),
}

pub struct OrgResolver {
    /// Create organizations that do not exist yet (`--no-create-organizations` turns it off).
    pub create: bool,
    /// Normalized name → id or refusal. One lock: two chunks naming the same new organization
    /// must not both create it.
    cache: Mutex<HashMap<String, Resolved>>,
    /// Names created by this run, for the log.
    created: Mutex<Vec<String>>,
}

impl OrgResolver {
    pub fn new(create: bool) -> OrgResolver {
        OrgResolver {
            create,
            cache: Mutex::new(HashMap::new()),
            created: Mutex::new(Vec::new()),
        }
    }

    /// What each of `names` is (keyed by `match_key`).
    pub async fn resolve(&self, cx: &Cx<'_>, names: &[String]) -> HashMap<String, Resolved> {
        let mut cache = self.cache.lock().await;
        let mut wanted: Vec<String> = Vec::new();
        for n in names {
            let k = match_key(n);
            if !cache.contains_key(&k) && !wanted.iter().any(|w| match_key(w) == k) {
                wanted.push(n.trim().to_string());
            }
        }
        let mut open: HashMap<String, Resolved> = HashMap::new();
        if !wanted.is_empty() {
            match fetch_ids(&cx.site.client, &wanted).await {
                Err(e) => {
                    for w in &wanted {
                        open.insert(
                            match_key(w),
                            Resolved::Open(format!(
                                "organization '{w}' could not be looked up: {e}"
                            )),
                        );
                    }
                }
                Ok(found) => {
                    let missing: Vec<String> = wanted
                        .iter()
                        .filter(|w| !found.contains_key(&match_key(w)))
                        .cloned()
                        .collect();
                    cache.extend(found.into_iter().map(|(k, id)| (k, Resolved::Id(id))));
                    if !missing.is_empty() && !self.create {
                        for m in &missing {
                            cache.insert(
                                match_key(m),
                                Resolved::Refused(format!(
                                    "organization '{m}': it does not exist on the site (creating organizations is off: --no-create-organizations)"
                                )),
                            );
                        }
                    } else if !missing.is_empty() {
                        for (k, r) in self.create_missing(cx, &missing).await {
                            match r {
                                Resolved::Open(_) => {
                                    open.insert(k, r);
                                }
                                r => {
                                    cache.insert(k, r);
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
                let r = open
                    .get(&k)
                    .or_else(|| cache.get(&k))
                    .cloned()
                    .unwrap_or_else(|| Resolved::Open(format!("organization '{n}' is unknown")));
                (k, r)
            })
            .collect()
    }

    /// Creates `names` (UPSERT by name, so one made meanwhile elsewhere is harmless) through
    /// the engine's prerequisite tasks, then looks them up.
    async fn create_missing(&self, cx: &Cx<'_>, names: &[String]) -> Vec<(String, Resolved)> {
        let mut out = Vec::new();
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
            let call = Call {
                method: Method::Post,
                path: paths::ORGANIZATION_PROFILE_BULK.into(),
                body: super::Body::of(&body),
            };
            let what = format!(
                "chunk {}: creating {} named by customers ({})",
                cx.seq,
                match group.len() {
                    1 => "1 organization".to_string(),
                    n => format!("{n} organizations"),
                },
                group.join(", ")
            );
            let status = match cx.tasks.run_task(cx.seq, what, call).await {
                Ok(s) => s,
                Err(why) => {
                    for n in group {
                        out.push((
                            match_key(n),
                            Resolved::Open(format!("organization '{n}' is being created: {why}")),
                        ));
                    }
                    continue;
                }
            };
            let failures: HashMap<String, String> = status
                .failures
                .iter()
                .map(|f| (match_key(&f.entity_id), f.error.clone()))
                .collect();
            let again = fetch_ids(&cx.site.client, group).await;
            for n in group {
                let k = match_key(n);
                let r = match &again {
                    Ok(found) => match found.get(&k) {
                        Some(id) => {
                            self.created.lock().await.push(n.clone());
                            cx.log
                                .note(&format!("organization '{n}' created (id {id})"));
                            Resolved::Id(id.clone())
                        }
                        None => Resolved::Refused(match failures.get(&k) {
                            Some(e) => format!("organization '{n}' could not be created: {e}"),
                            None => format!(
                                "organization '{n}' was not found after the task that creates it ended ({})",
                                status.status.as_str()
                            ),
                        }),
                    },
                    Err(e) => Resolved::Open(format!(
                        "organization '{n}' could not be looked up after it was created: {e}"
                    )),
                };
                out.push((k, r));
            }
        }
        out
    }

    /// The organizations this run created.
    pub async fn created(&self) -> Vec<String> {
        self.created.lock().await.clone()
    }
}
