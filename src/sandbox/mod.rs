//! The sandbox: a local HTTP server that behaves like the CSM API of CONTRACT.md, so users can
//! rehearse an import and tests have a real server. `routes` maps requests, `store` holds state
//! and applies items, `tasks` runs bulk tasks in the background. Depends only on `api`.

pub mod routes;
pub mod store;
pub mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::DEFAULT_MAX_TASKS;
use store::{Seed, Store};

/// Seeds embedded in the binary for `--sandbox`: the files of `sample-data/`.
pub const SAMPLE_DETAIL_FIELDS: &str =
    include_str!("../../sample-data/customer-detail-fields.json");
pub const SAMPLE_ORGANIZATIONS: &str = include_str!("../../sample-data/organizations.json");

#[derive(Debug, Clone)]
pub struct Config {
    pub token: String,
    pub task_latency: Duration,
    pub max_tasks: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: "sandbox-token".into(),
            task_latency: Duration::from_millis(200),
            max_tasks: DEFAULT_MAX_TASKS,
        }
    }
}

#[derive(Clone)]
pub struct Sandbox {
    pub config: Arc<Config>,
    pub store: Arc<Mutex<Store>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("seed {name}: {source}")]
    Seed {
        name: String,
        source: serde_json::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl Sandbox {
    pub fn new(config: Config) -> Sandbox {
        Sandbox {
            config: Arc::new(config),
            store: Arc::new(Mutex::new(Store::default())),
        }
    }

    /// Loads a seed given as JSON text; `name` is only for the error message.
    pub fn seed(&self, name: &str, json: &str) -> Result<(), SandboxError> {
        let seed: Seed = serde_json::from_str(json).map_err(|source| SandboxError::Seed {
            name: name.to_string(),
            source,
        })?;
        self.store.lock().expect("store lock").load_seed(seed);
        Ok(())
    }

    /// The sample seed that `--sandbox` uses.
    pub fn with_sample_data(config: Config) -> Sandbox {
        let s = Sandbox::new(config);
        s.seed(
            "sample-data/customer-detail-fields.json",
            SAMPLE_DETAIL_FIELDS,
        )
        .expect("embedded seed parses");
        s.seed("sample-data/organizations.json", SAMPLE_ORGANIZATIONS)
            .expect("embedded seed parses");
        s
    }

    /// Binds `addr` and serves in the background. Returns the bound address (port 0 resolved).
    pub async fn spawn(self, addr: &str) -> Result<SocketAddr, SandboxError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let app = routes::router(self);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(local)
    }
}
