//! The site: everything that talks to CSM. `api` holds every API fact (paths, limits, wire
//! types, unconfirmed values) once, shared with the sandbox; `client` does HTTP with pacing and
//! retries; `refs` and `external` turn the names rows use into ids and read entities back.
//! Used by the engine, the kinds and export; uses nothing of theirs.

pub use csmport_api as api;
pub mod client;
pub mod doctor;
pub mod external;
pub mod refs;

use std::sync::Arc;

use client::{ApiError, Client, Notify, Target, retry};
use refs::Listing;

/// The site a run talks to: the client, and what the run has listed of it once.
pub struct Site {
    pub client: Arc<Client>,
    pub target: Target,
    /// `--service-desk`: a JSM service project whose customers can be found by email (CSM has
    /// no lookup by email).
    pub service_desk: Option<String>,
    /// The last listing of `service_desk`'s customers, and when it was begun.
    listing: tokio::sync::Mutex<Option<(Arc<Listing>, std::time::Instant)>>,
}

/// Lookups of customers by email in flight at once.
const LOOKUPS_AT_ONCE: usize = 4;

impl Site {
    /// The one place a site and its client are set up (imports, deletes, exports,
    /// validation): at most `rate` requests a second, retried as `policy` says, waits and
    /// notes told to `notify`.
    pub fn connect(
        target: &Target,
        rate: f64,
        policy: retry::Policy,
        service_desk: Option<String>,
        notify: Arc<dyn Notify>,
    ) -> Site {
        Site {
            client: Arc::new(Client::new(target, rate, policy, notify)),
            target: target.clone(),
            service_desk,
            listing: Default::default(),
        }
    }

    /// Customer ids by lower-cased email, through the customers of `--service-desk` (None
    /// without it). The listing is made once per run; with `fresh_since` (reading rows back
    /// after a task that may have created them, seen ended then) it is made again when one of
    /// `emails` is not in it and it was begun before then. Reads back waiting meanwhile take
    /// the new listing when their tasks had ended before it was begun: chunks whose tasks end
    /// together share one listing, and a listing is made again only after the site changed.
    pub async fn customers_by_email(
        &self,
        emails: &[String],
        fresh_since: Option<std::time::Instant>,
    ) -> Result<Option<Arc<Listing>>, ApiError> {
        let Some(sd) = &self.service_desk else {
            return Ok(None);
        };
        let mut cache = self.listing.lock().await;
        let will_do = |(m, begun): &(Arc<Listing>, std::time::Instant)| match fresh_since {
            None => true,
            Some(since) => *begun >= since || emails.iter().all(|e| m.get(e).is_some()),
        };
        if let Some((listing, _)) = cache.as_mut().filter(|c| !will_do(c)) {
            // Fewer lookups than the listing has pages: each missing email is looked up
            // instead, and the listing is made again only when one is not found that way.
            let missing: Vec<String> = emails
                .iter()
                .filter(|e| listing.get(e).is_none())
                .cloned()
                .collect();
            let wanted = missing.len();
            if wanted < listing.by_email.len() / refs::JSM_PAGE as usize + 1 {
                let found = self.look_up(sd, missing).await?;
                let all = found.len() == wanted;
                let merged = Arc::make_mut(listing);
                for (email, id) in found {
                    merged.by_email.insert(email.to_lowercase(), id);
                }
                if all {
                    return Ok(Some(listing.clone()));
                }
            }
        }
        if !cache.as_ref().is_some_and(will_do) {
            let begun = std::time::Instant::now();
            let fresh = refs::service_desk_customers(&self.client, sd).await?;
            *cache = Some((Arc::new(fresh), begun));
        }
        Ok(cache.as_ref().map(|(m, _)| m.clone()))
    }

    /// The ids of those of `emails` the service project's customer query finds, a few
    /// lookups at a time.
    async fn look_up(
        &self,
        service_desk: &str,
        emails: Vec<String>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let client = self.client.clone();
        let desk = service_desk.to_string();
        let found: Vec<Option<(String, String)>> = stream::iter(emails)
            .map(move |e: String| {
                let (client, desk) = (client.clone(), desk.clone());
                async move {
                    let id = refs::service_desk_customer(&client, &desk, &e).await?;
                    Ok::<_, ApiError>(id.map(|id| (e, id)))
                }
            })
            .buffered(LOOKUPS_AT_ONCE)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }
}
