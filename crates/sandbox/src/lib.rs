//! The sandbox: a local HTTP server that behaves like the CSM API of CONTRACT.md, so users can
//! rehearse an import and tests have a real server. `http` maps requests (a file per resource), `store` holds state
//! and applies items, `tasks` runs bulk tasks in the background, `faults` injects failures and
//! rate limits, `persist` keeps state in SQLite. Depends only on `api`.

pub mod faults;
pub mod http;
pub mod persist;
pub mod quirks;
mod serve;
pub mod store;
pub mod tasks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use csmport_api::{DEFAULT_MAX_TASKS, IDEMPOTENCY_CONFLICT_STATUS, TASK_RETENTION_SECS};
use faults::{FaultState, Faults, RateLimit};
use store::{Seed, Store};

/// Seeds embedded in the binary for `--sandbox`: the files of `sample-data/`.
pub const SAMPLE_DETAIL_FIELDS: &str =
    include_str!("../../../sample-data/customer-detail-fields.json");
pub const SAMPLE_ORGANIZATIONS: &str = include_str!("../../../sample-data/organizations.json");

/// Requests kept in the `/_sandbox/requests` log; older ones are dropped.
pub const REQUEST_LOG_CAP: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub token: String,
    /// What `/_edge/tenant_info` reports (every cloud id path is served all the same).
    pub cloud_id: String,
    pub task_latency: Duration,
    pub item_latency: Duration,
    /// A task takes up to this fraction longer than its latency, at random (0.5: up to 50%).
    pub task_jitter: f64,
    /// This share of tasks takes `task_tail_factor` times as long (most tasks fast, a few
    /// much slower: the long tail real sites show).
    pub task_tail: f64,
    pub task_tail_factor: f64,
    pub max_tasks: usize,
    pub task_retention: Duration,
    pub stale_task: Duration,
    /// Require `X-ExperimentalApi: opt-in` where the contract says (412 otherwise).
    pub require_experimental: bool,
    /// [UNCONFIRMED] status for a reused idempotency key with another body (400, 409 or 422).
    pub idempotency_conflict_status: u16,
    /// [UNCONFIRMED] Check the task-slot limit before looking the idempotency key up, so a
    /// repeat of a request that made a task can be refused for want of a slot (the order a
    /// site checks them in is not documented).
    pub slots_before_keys: bool,
    pub rate_limit: Option<f64>,
    pub burst: u32,
    pub omit_retry_after: bool,
    /// Answer 429 with a short HTML body, as a third party saw, instead of JSON.
    pub html_429: bool,
    pub faults: Faults,
    pub fault_seed: u64,
    pub data: Option<PathBuf>,
    /// How long an organization made through the API stays out of the JSM organization
    /// listing: a real site lists new records only a while after the task that made them
    /// (DELTAS-2026-12, eventual consistency). Zero: at once.
    pub listing_lag: Duration,
    /// OAuth 2.0 client credentials the token endpoint (`POST /oauth/token`) takes: a client
    /// id and its secret. None: it issues no token.
    pub client: Option<(String, String)>,
    /// `--allow-remote`: served beyond loopback, so the admin API wants the token and any
    /// `Host` is taken.
    pub allow_remote: bool,
    /// Answer 404 for any cloud id but `cloud_id`, as the gateway does (else every cloud id is
    /// served the same).
    pub strict_cloud_id: bool,
    /// The scopes the sandbox's token has (`--scopes`): a request outside them answers 401
    /// "scope does not match". None: every scope.
    pub scopes: Option<Vec<String>>,
    /// How long a token the endpoint issued is good for (then 401, as an expired access token
    /// is answered). The `--token` the sandbox started with never expires.
    pub token_ttl: Duration,
    /// A connection with no request in flight for this long is closed (`--idle-timeout`).
    pub idle: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: "sandbox-token".into(),
            cloud_id: crate::http::SANDBOX_CLOUD_ID.into(),
            task_latency: Duration::from_millis(200),
            item_latency: Duration::ZERO,
            task_jitter: 0.5,
            task_tail: 0.0,
            task_tail_factor: 10.0,
            max_tasks: DEFAULT_MAX_TASKS,
            task_retention: Duration::from_secs(TASK_RETENTION_SECS),
            stale_task: tasks::stale_default(),
            require_experimental: true,
            idempotency_conflict_status: IDEMPOTENCY_CONFLICT_STATUS,
            slots_before_keys: false,
            rate_limit: None,
            burst: 10,
            omit_retry_after: false,
            html_429: false,
            faults: Faults::default(),
            fault_seed: 1,
            listing_lag: Duration::ZERO,
            client: None,
            strict_cloud_id: false,
            allow_remote: false,
            scopes: None,
            token_ttl: Duration::from_secs(3600),
            idle: serve::IDLE,
            data: None,
        }
    }
}

/// One line of `GET /_sandbox/requests`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The query string, when there is one (its start, as for the path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    pub time: String,
}

#[derive(Clone)]
pub struct Sandbox {
    pub config: Arc<Config>,
    pub store: Arc<Mutex<Store>>,
    pub faults: Arc<Mutex<FaultState>>,
    pub rate: Arc<Mutex<Option<RateLimit>>>,
    pub requests: Arc<Mutex<std::collections::VecDeque<LoggedRequest>>>,
    /// Every request logged since the start (the log keeps the last `REQUEST_LOG_CAP`): a
    /// benchmark counts a run's requests by it.
    pub requests_total: Arc<std::sync::atomic::AtomicU64>,
    db: Option<Arc<Mutex<persist::Db>>>,
    /// Seeds given at start, re-applied by `POST /_sandbox/reset`.
    seeds: Arc<Mutex<Vec<(String, String)>>>,
    /// Seeds apply: no `--data`, or its file held nothing when the sandbox opened it (decided
    /// once, so the first seed written to a new file does not keep out the next).
    seeding: bool,
    /// Access tokens the token endpoint issued, and when each expires.
    pub issued: Arc<Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// How many tokens the endpoint has issued (`/_sandbox/state` `tokensIssued`).
    pub tokens_issued: Arc<std::sync::atomic::AtomicU64>,
}

/// The sandbox could not start (`sandbox`).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("seed {name}: {message}")]
    Seed { name: String, message: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("--data {path}: {message}")]
    Data { path: String, message: String },
    #[error("{0}")]
    Config(String),
}

impl Sandbox {
    pub fn new(config: Config) -> Result<Sandbox, SandboxError> {
        config.faults.validate().map_err(SandboxError::Config)?;
        let mut store = Store::default();
        let mut seeding = true;
        let db = match &config.data {
            Some(path) => {
                let err = |message: String| SandboxError::Data {
                    path: path.display().to_string(),
                    message,
                };
                let db = persist::Db::open(path).map_err(err)?;
                seeding = db.is_empty().unwrap_or(false);
                db.load(&mut store).map_err(err)?;
                Some(Arc::new(Mutex::new(db)))
            }
            None => None,
        };
        let rate = config
            .rate_limit
            .map(|r| RateLimit::new(r, config.burst, config.omit_retry_after));
        Ok(Sandbox {
            faults: Arc::new(Mutex::new(FaultState::new(
                config.faults.clone(),
                config.fault_seed,
            ))),
            rate: Arc::new(Mutex::new(rate)),
            config: Arc::new(config),
            store: Arc::new(Mutex::new(store)),
            requests: Arc::new(Mutex::new(std::collections::VecDeque::new())),
            requests_total: Default::default(),
            db,
            seeds: Arc::new(Mutex::new(Vec::new())),
            seeding,
            issued: Default::default(),
            tokens_issued: Default::default(),
        })
    }

    /// Runs `f` on the store under its lock, then saves what it changed (with `--data`).
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self.store.lock().expect("store lock");
        let r = f(&mut store);
        if let Some(db) = &self.db
            && let Err(e) = db.lock().expect("db lock").flush(&mut store)
        {
            eprintln!("sandbox: cannot save to --data: {e}");
        }
        r
    }

    /// Loads a seed given as JSON text; `name` is only for the error message. With `--data`, a
    /// seed applies only to an empty file, so a restart does not undo later changes.
    pub fn seed(&self, name: &str, json: &str) -> Result<(), SandboxError> {
        self.seeds
            .lock()
            .expect("seeds lock")
            .push((name.to_string(), json.to_string()));
        if !self.seeding {
            return Ok(());
        }
        self.apply_seed(name, json)
    }

    fn apply_seed(&self, name: &str, json: &str) -> Result<(), SandboxError> {
        let err = |message: String| SandboxError::Seed {
            name: name.to_string(),
            message,
        };
        let seed: Seed = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
        self.with_store(|s| s.load_seed(seed)).map_err(err)
    }

    /// Back to the seeded state: everything else is forgotten (also in `--data`).
    pub fn reset(&self) -> Result<(), SandboxError> {
        {
            let mut store = self.store.lock().expect("store lock");
            *store = Store::default();
            if let Some(db) = &self.db {
                db.lock()
                    .expect("db lock")
                    .clear()
                    .map_err(|message| SandboxError::Data {
                        path: String::new(),
                        message,
                    })?;
            }
        }
        self.requests.lock().expect("requests lock").clear();
        let seeds = self.seeds.lock().expect("seeds lock").clone();
        for (name, json) in seeds {
            self.apply_seed(&name, &json)?;
        }
        Ok(())
    }

    /// The sample seed that `--sandbox` uses.
    pub fn with_sample_data(config: Config) -> Result<Sandbox, SandboxError> {
        let s = Sandbox::new(config)?;
        s.seed(
            "sample-data/customer-detail-fields.json",
            SAMPLE_DETAIL_FIELDS,
        )?;
        s.seed("sample-data/organizations.json", SAMPLE_ORGANIZATIONS)?;
        Ok(s)
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
        // Tasks that were running when a sandbox with `--data` stopped go on from the start.
        let unfinished: Vec<(String, tasks::Job)> = self
            .store
            .lock()
            .expect("store lock")
            .tasks
            .iter()
            .filter(|(_, t)| !t.status.status.is_terminal())
            .filter_map(|(id, t)| Some((id.clone(), t.job.clone()?)))
            .collect();
        for (id, job) in unfinished {
            tasks::run(
                self.clone(),
                id,
                job,
                faults::TaskFault::None,
                tasks::Spread::NONE,
            );
        }
        let idle = self.config.idle;
        let app = http::router(self);
        tokio::spawn(async move {
            serve::serve(listener, app, idle).await;
        });
        Ok(local)
    }
}
