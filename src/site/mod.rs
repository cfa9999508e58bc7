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
    listing: tokio::sync::Mutex<Option<Arc<Listing>>>,
}

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
    /// without it). The listing is made once per run; with `again_if_missing` it is made again
    /// when one of `emails` is not in it (a customer created since: reading rows back after
    /// their task), so many chunks share one listing.
    pub async fn customers_by_email(
        &self,
        emails: &[String],
        again_if_missing: bool,
    ) -> Result<Option<Arc<Listing>>, ApiError> {
        let Some(sd) = &self.service_desk else {
            return Ok(None);
        };
        let mut cache = self.listing.lock().await;
        let known = |m: &Listing| !again_if_missing || emails.iter().all(|e| m.get(e).is_some());
        if !cache.as_deref().is_some_and(known) {
            let fresh = refs::service_desk_customers(&self.client, sd).await?;
            *cache = Some(Arc::new(fresh));
        }
        Ok(cache.clone())
    }
}
