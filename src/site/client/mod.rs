//! The CSM HTTP client: auth, the standard headers, pacing and the retry loop around every call.
//! Used by `send`, `track` and the commands; builds on `api` (paths, model) and its own `retry`
//! (pure policy) and `pace` (rate limiter). It never decides what a failure means for a row.

pub mod pace;
pub mod record;
pub mod retry;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::site::api::lists::{self, Listing};
use crate::site::api::{self, EXPERIMENTAL_HEADER, EXPERIMENTAL_VALUE, IDEMPOTENCY_HEADER};
use pace::Pacer;
use retry::{Decision, Failure, Policy};

#[derive(Clone)]
pub enum Auth {
    Bearer(String),
    Basic {
        email: String,
        token: String,
    },
    /// A Bearer token that renews itself (client credentials, a command, a file read again).
    Renewing(Arc<token::Tokens>),
}

impl std::fmt::Debug for Auth {
    // Never print secrets, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { email, .. } => write!(f, "Basic({email}, ***)"),
            Auth::Renewing(t) => write!(f, "{t:?}"),
        }
    }
}

/// The credential a request carried, to scrub from what the site answers (a server that
/// echoes it must not get it into messages, reports or the journal).
struct Secret(String);

impl Secret {
    fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

/// Where and as whom to call.
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: String,
    pub cloud_id: String,
    pub auth: Auth,
    /// Where the JSM REST API (`/rest/servicedeskapi`) is: the site (`--site`), else the
    /// gateway's Jira route for the cloud id.
    pub site: Option<String>,
    /// `--record DIR`: every request and answer written there (credentials redacted).
    pub record: Option<std::path::PathBuf>,
}

impl Target {
    /// The base of JSM REST calls (used to find customers and organizations CSM cannot list).
    pub fn jsm_base(&self) -> String {
        match &self.site {
            Some(s) => format!("{}/{}", s.trim_end_matches('/'), api::paths::jsm::ON_SITE),
            None => format!(
                "{}/{}",
                self.base_url.trim_end_matches('/'),
                api::paths::at(api::paths::jsm::VIA_GATEWAY, &[&self.cloud_id])
            ),
        }
    }
}

/// Receives one-line notes about waits and retries (progress line, run log).
pub trait Notify: Send + Sync {
    fn note(&self, msg: &str);
    /// A note the user must see at once, terminal or not (the site cannot be reached).
    fn alert(&self, msg: &str) {
        self.note(msg);
    }
    /// The pace requests go at now (requests per second), after every answer.
    fn pacing(&self, _rate: f64) {}
    /// A wait before a retry begins (`Some(until)`; `rate_limited` when the server said to
    /// slow down) or ends (`None`).
    fn waiting(&self, _until: Option<jiff::Timestamp>, _rate_limited: bool) {}
}

pub struct Silent;
impl Notify for Silent {
    fn note(&self, _msg: &str) {}
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
        attempts: u32,
        /// An earlier attempt of this call may have been applied (it timed out, its
        /// connection broke, or it got a 500/502/504).
        uncertain: bool,
    },
    #[error("{method} {path}: {message} (after {attempts} attempts)")]
    Network {
        method: &'static str,
        path: String,
        message: String,
        attempts: u32,
        /// Some attempt of this call may have been applied.
        uncertain: bool,
    },
    #[error("{method} {path}: unexpected response: {message}")]
    Decode {
        method: &'static str,
        path: String,
        message: String,
    },
    /// An answer larger than `api::MAX_ANSWER_BYTES`: refused, never held whole.
    #[error(
        "{method} {path}: the answer is larger than {cap} bytes; csmport reads no more of it (a proxy or a site that misbehaves?)"
    )]
    TooLarge {
        method: &'static str,
        path: String,
        cap: usize,
    },
    /// The site answered 3xx: csmport follows no redirect, so nothing was sent elsewhere.
    #[error(
        "{method} {path}: HTTP {status}: the site redirects to {location}; csmport follows no redirect (the request, its data and its credentials were not sent there): check --base-url / CSM_BASE_URL and --site"
    )]
    Redirect {
        method: &'static str,
        path: String,
        status: u16,
        location: String,
    },
    /// No token could be had (the token endpoint refused, the command failed): at the start
    /// of a run an authentication failure; during one, an interruption that leaves rows open.
    #[error("no access token: {message}")]
    Renewal { message: String },
    /// A listing that cannot be trusted to be whole: an answer without its list, or one
    /// that does not end. Never read as a short or empty list.
    #[error("{method} {path}: {message}")]
    Listing {
        method: &'static str,
        path: String,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::Status { message, .. }
            | ApiError::Network { message, .. }
            | ApiError::Decode { message, .. }
            | ApiError::Listing { message, .. }
            | ApiError::Renewal { message } => message,
            ApiError::Redirect { location, .. } => location,
            ApiError::TooLarge { .. } => "the answer is too large",
        }
    }

    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }

    /// A 401 that says the token lacks a scope (not that it is wrong): the scope the call needs.
    pub fn missing_scope(&self) -> Option<String> {
        match self {
            ApiError::Status {
                method,
                path,
                status: 401,
                message,
                ..
            } if api::scopes::is_refusal(message) => Some(api::scopes::needed(method, path)),
            _ => None,
        }
    }

    /// The error, with what to do when it is a missing scope.
    pub fn explained(&self) -> String {
        match self.missing_scope() {
            Some(scope) => format!(
                "{self}: the credentials lack the scope {scope}; add it to the token's or the service account credential's scopes (README.md, \"Scopes\", lists what each command needs)"
            ),
            None => self.to_string(),
        }
    }

    /// No token could be had: the run stops as interrupted (rows open) rather than failed.
    pub fn is_renewal(&self) -> bool {
        matches!(self, ApiError::Renewal { .. })
    }

    /// Whether the request may have been applied although no answer says so: some attempt
    /// timed out, broke off or got a 500/502/504, or a success could not be read.
    pub fn uncertain(&self) -> bool {
        match self {
            ApiError::Status { uncertain, .. } | ApiError::Network { uncertain, .. } => *uncertain,
            // A success too large to read, like one that cannot be read: it may have applied.
            ApiError::Decode { .. } | ApiError::TooLarge { .. } => true,
            // Only reads are listings; a request without a token was not sent.
            ApiError::Listing { .. } | ApiError::Renewal { .. } | ApiError::Redirect { .. } => {
                false
            }
        }
    }

    /// The site's refusal of the task-slot limit (CONTRACT §7.4): "later", not "no".
    pub fn is_slot_refusal(&self) -> bool {
        self.status() == Some(400) && self.message().contains(api::TASK_LIMIT_MESSAGE)
    }

    /// The rate limit kept this request waiting longer than the run's patience.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
    }
}

pub struct Client {
    http: reqwest::Client,
    prefix: String,
    jsm: String,
    auth: Auth,
    pacer: Pacer,
    policy: Policy,
    notify: Arc<dyn Notify>,
    /// Retries left of the run's budget, and whether its end was reported.
    budget: std::sync::atomic::AtomicU64,
    budget_noted: std::sync::atomic::AtomicBool,
    /// Connections are failing and the user was told; cleared by the next answer, so the
    /// next outage is told too.
    unreachable: std::sync::atomic::AtomicBool,
    /// Where requests go, for messages.
    base_url: String,
    recorder: Option<Arc<record::Recorder>>,
}

/// An HTTP client builder whose TLS is rustls with ring. reqwest is built without a crypto
/// provider of its own (Cargo.toml says why), so ring is installed as the process's provider
/// first; every `reqwest::Client` of the program and its tests comes from here.
pub fn http_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Err means a provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// A plain client (tests, benchmarks, the sandbox's own checks).
pub fn http_client() -> reqwest::Client {
    http_builder()
        .build()
        .expect("the HTTP client builds with default settings")
}

impl Client {
    pub fn new(target: &Target, rate: f64, policy: Policy, notify: Arc<dyn Notify>) -> Client {
        let http = http_builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // Dropped by us before a server closes it (the sandbox after 15 s idle, load
            // balancers after 60 s): a request never goes out on a connection being closed.
            .pool_idle_timeout(Duration::from_secs(10))
            .user_agent(concat!("csmport/", env!("CARGO_PKG_VERSION")))
            // A redirect would send the request's data (and, to the same host, its
            // credentials) somewhere the user did not name: it is an error instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds with static settings");
        let recorder = target
            .record
            .as_deref()
            .and_then(|dir| match record::Recorder::open(dir) {
                Ok(r) => Some(r),
                Err(e) => {
                    notify.note(&format!(
                        "--record {}: cannot write there ({e}); nothing is recorded",
                        dir.display()
                    ));
                    None
                }
            });
        Client {
            recorder,
            http,
            prefix: format!(
                "{}{}",
                target.base_url.trim_end_matches('/'),
                api::api_prefix(&target.cloud_id)
            ),
            jsm: target.jsm_base(),
            auth: target.auth.clone(),
            pacer: Pacer::new(rate),
            budget: std::sync::atomic::AtomicU64::new(policy.budget),
            budget_noted: Default::default(),
            unreachable: Default::default(),
            base_url: target.base_url.clone(),
            policy,
            notify,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.prefix, path.trim_start_matches('/'))
    }

    /// The full URL of a JSM path (relative to `/rest/servicedeskapi/`).
    pub fn jsm_url(&self, path: &str) -> String {
        format!("{}/{}", self.jsm, path.trim_start_matches('/'))
    }

    /// `req` with the credentials; for a renewing token, the generation it was sent with.
    async fn authorize(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Option<u64>, Secret), ApiError> {
        Ok(match &self.auth {
            Auth::Bearer(t) => (req.bearer_auth(t), None, Secret(t.clone())),
            Auth::Basic { email, token } => (
                req.basic_auth(email, Some(token)),
                None,
                Secret(token.clone()),
            ),
            Auth::Renewing(tokens) => {
                let (t, generation) = tokens
                    .current()
                    .await
                    .map_err(|e| ApiError::Renewal { message: e.0 })?;
                (req.bearer_auth(&t), Some(generation), Secret(t))
            }
        })
    }

    /// One attempt, no retry: the status, headers and body the site answers (for `doctor`,
    /// which reports what it sees rather than working around it). `url` is a full URL. Paced
    /// and recorded like every call.
    pub async fn probe(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, HeaderMap, String), String> {
        self.pacer.wait().await;
        let req = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, "application/json")
            .header(EXPERIMENTAL_HEADER, EXPERIMENTAL_VALUE);
        let (mut req, _, _) = self.authorize(req).await.map_err(|e| e.to_string())?;
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json serializes"));
        if let Some(b) = &bytes {
            req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
        }
        let request = req.build().map_err(|e| describe(&e))?;
        let sent_at = std::time::Instant::now();
        let recorded = |status: Option<u16>,
                        h: Option<&HeaderMap>,
                        text: Option<&str>,
                        error: Option<String>,
                        req_h: &HeaderMap| {
            if let Some(r) = &self.recorder {
                let hs = |h: &HeaderMap| {
                    record::headers(
                        h.iter()
                            .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or(""))),
                    )
                };
                r.write(&record::Exchange {
                    time: jiff::Timestamp::now()
                        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                        .to_string(),
                    method: method.as_str(),
                    url,
                    request_headers: hs(req_h),
                    request_body: record::body(bytes.as_deref()),
                    status,
                    response_headers: h.map(hs).unwrap_or_default(),
                    response_body: text.map(str::to_string),
                    error,
                    elapsed_ms: sent_at.elapsed().as_millis(),
                });
            }
        };
        let req_headers = request.headers().clone();
        match self.http.execute(request).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                match read_capped(resp, api::MAX_ANSWER_BYTES).await {
                    Ok(t) => {
                        recorded(Some(status), Some(&headers), Some(&t), None, &req_headers);
                        Ok((status, headers, t))
                    }
                    Err(e) => {
                        let why = match e {
                            Capped::Read(e) => describe(&e),
                            Capped::TooLarge => format!(
                                "the answer is larger than {} bytes; csmport reads no more of it",
                                api::MAX_ANSWER_BYTES
                            ),
                        };
                        recorded(
                            Some(status),
                            Some(&headers),
                            None,
                            Some(why.clone()),
                            &req_headers,
                        );
                        Err(why)
                    }
                }
            }
            Err(e) => {
                recorded(None, None, None, Some(describe(&e)), &req_headers);
                Err(describe(&e))
            }
        }
    }

    /// GET on the JSM REST API (`path` relative to `/rest/servicedeskapi/`), paced and retried
    /// like every call.
    pub async fn jsm_get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.get_json(&format!("{}/{}", self.jsm, path.trim_start_matches('/')))
            .await
    }

    /// GETs a listing: its list under any name `lists` knows, or an error (never an empty list).
    pub async fn get_list<T: DeserializeOwned + Listing>(&self, path: &str) -> Result<T, ApiError> {
        let body = self
            .execute(reqwest::Method::GET, "GET", path, None, None)
            .await?;
        decode_list("GET", path, &body)
    }

    /// GETs a JSM listing page (`jsm_get_json`'s base), as `get_list` reads it.
    pub async fn jsm_get_list<T: DeserializeOwned + Listing>(
        &self,
        path: &str,
    ) -> Result<T, ApiError> {
        self.get_list(&format!("{}/{}", self.jsm, path.trim_start_matches('/')))
            .await
    }

    /// POSTs a read (a fetch or a search: nothing is changed, so every attempt may be
    /// repeated) whose answer is a listing, read as `get_list` reads it.
    pub async fn post_list<B: Serialize, T: DeserializeOwned + Listing>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Decode {
            method: "POST",
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let body = self
            .execute_with(reqwest::Method::POST, "POST", path, Some(bytes), None, true)
            .await?;
        decode_list("POST", path, &body)
    }

    /// One more page of a listing: whether it goes on, or an error when it has not ended
    /// after `lists::MAX_PAGES` pages.
    pub fn next_page(
        method: &'static str,
        path: &str,
        page: lists::Page,
    ) -> Result<bool, ApiError> {
        match lists::after(page) {
            lists::Next::More => Ok(true),
            lists::Next::Done => Ok(false),
            lists::Next::TooMany => Err(ApiError::Listing {
                method,
                path: path.to_string(),
                message: format!(
                    "the listing has not ended after {} pages (each with new items): stopped rather than read for ever; `--record DIR` keeps the answers for a bug report",
                    lists::MAX_PAGES
                ),
            }),
        }
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let body = self
            .execute(reqwest::Method::GET, "GET", path, None, None)
            .await?;
        decode("GET", path, &body)
    }

    /// POSTs a JSON body. With `idempotency_key`, every retry of this call carries the same key,
    /// so an attempt whose outcome was unknown cannot create a second task.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, ApiError> {
        self.send_json(
            reqwest::Method::POST,
            "POST",
            path,
            body,
            idempotency_key,
            true,
        )
        .await
    }

    /// POSTs a JSON body that creates something and has no idempotency key: an attempt whose
    /// outcome is unknown (timeout, dropped connection, 500/502/504) is not repeated, since it
    /// may have been applied; the caller checks the site instead. Refusals that say nothing was
    /// done (429, 503, no connection) are retried as usual.
    pub async fn post_json_once<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.send_json(reqwest::Method::POST, "POST", path, body, None, false)
            .await
    }

    /// DELETEs without a body (CONTRACT: 204, or 200 with or without a body). An attempt whose
    /// outcome is unknown is not repeated: a second DELETE of something the first removed
    /// answers 404, so the caller reads the site instead.
    pub async fn delete_once(&self, path: &str) -> Result<serde_json::Value, ApiError> {
        let body = self
            .execute_with(reqwest::Method::DELETE, "DELETE", path, None, None, false)
            .await?;
        if body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        // Whatever a 2xx carries is not needed: a body that is not JSON is not an error.
        Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// PUTs a JSON body (idempotent: retried like a GET).
    pub async fn put_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.send_json(reqwest::Method::PUT, "PUT", path, body, None, true)
            .await
    }

    /// PUTs a JSON body once: for a PUT a second attempt would not repeat (a rename by the old
    /// name); the caller reads the site when the answer is lost.
    pub async fn put_json_once<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.send_json(reqwest::Method::PUT, "PUT", path, body, None, false)
            .await
    }

    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        method_name: &'static str,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
        replay_safe: bool,
    ) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Decode {
            method: method_name,
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let body = self
            .execute_with(
                method,
                method_name,
                path,
                Some(bytes),
                idempotency_key,
                replay_safe,
            )
            .await?;
        decode(method_name, path, &body)
    }

    async fn execute(
        &self,
        method: reqwest::Method,
        method_name: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<String, ApiError> {
        self.execute_with(method, method_name, path, body, idempotency_key, true)
            .await
    }

    async fn execute_with(
        &self,
        method: reqwest::Method,
        method_name: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
        replay_safe: bool,
    ) -> Result<String, ApiError> {
        let decide = |attempt: u32, f: &Failure| {
            if !replay_safe && retry::maybe_applied(f) {
                Decision::GiveUp
            } else {
                self.decide(attempt, f)
            }
        };
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut attempt = 0u32;
        // Attempts that failed, 429s in a row, the time 429s have kept us waiting, and whether
        // some attempt may have been applied.
        let mut failed = 0u32;
        let mut throttled = 0u32;
        let mut throttled_for = Duration::ZERO;
        let mut uncertain = false;
        // A 401 renews a renewing token once per call, outside the retries.
        let mut renewed = false;
        loop {
            attempt += 1;
            self.pacer.wait().await;
            let req = self
                .http
                .request(method.clone(), &url)
                .header(ACCEPT, "application/json")
                .header(EXPERIMENTAL_HEADER, EXPERIMENTAL_VALUE);
            let (mut req, generation, secret) = self.authorize(req).await?;
            if let Some(k) = idempotency_key {
                req = req.header(IDEMPOTENCY_HEADER, k);
            }
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let sent_at = std::time::Instant::now();
            let request = req.build().expect("requests are built from valid parts");
            let recorded_headers = self.recorder.as_ref().map(|_| {
                record::headers(
                    request
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or(""))),
                )
            });
            let record = |status: Option<u16>,
                          headers: Option<&HeaderMap>,
                          text: Option<&str>,
                          error: Option<String>| {
                // `-vv`: one line per attempt. No header is logged: Authorization stays out.
                tracing::debug!(
                    target: "csmport::http",
                    "{method_name} {path} -> {} in {} ms (attempt {attempt}{})",
                    match (status, &error) {
                        (Some(s), _) => s.to_string(),
                        (None, Some(e)) => e.clone(),
                        (None, None) => "no answer".to_string(),
                    },
                    sent_at.elapsed().as_millis(),
                    idempotency_key
                        .map(|k| format!(", Idempotency-Key {k}"))
                        .unwrap_or_default()
                );
                if let (Some(r), Some(h)) = (&self.recorder, &recorded_headers) {
                    r.write(&record::Exchange {
                        time: jiff::Timestamp::now()
                            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                            .to_string(),
                        method: method_name,
                        url: &url,
                        request_headers: h.clone(),
                        request_body: record::body(body.as_deref()),
                        status,
                        response_headers: headers
                            .map(|h| {
                                record::headers(
                                    h.iter()
                                        .map(|(k, v)| (k.as_str(), v.to_str().unwrap_or(""))),
                                )
                            })
                            .unwrap_or_default(),
                        response_body: text.map(str::to_string),
                        error,
                        elapsed_ms: sent_at.elapsed().as_millis(),
                    });
                }
            };
            let mut judge = |f: &Failure| -> Decision {
                uncertain |= retry::maybe_applied(f);
                if retry::is_back_pressure(f) {
                    throttled += 1;
                    if retry::out_of_patience(&self.policy, throttled_for) {
                        return Decision::GiveUp;
                    }
                    let d = decide(throttled, f);
                    if let Decision::Retry(w) = d {
                        throttled_for += w;
                    }
                    d
                } else {
                    throttled = 0;
                    failed += 1;
                    decide(failed, f)
                }
            };
            let (failure_desc, decision) = match self.http.execute(request).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let cap = api::answer_cap(method_name, path);
                    let text = match read_capped(resp, cap).await {
                        Err(Capped::TooLarge) => {
                            record(Some(status), Some(&headers), None, Some("too large".into()));
                            return Err(ApiError::TooLarge {
                                method: method_name,
                                path: path.to_string(),
                                cap,
                            });
                        }
                        Err(Capped::Read(e)) => Err(e),
                        Ok(t) => Ok(t),
                    };
                    let text = match text {
                        Ok(t) => {
                            record(Some(status), Some(&headers), Some(&t), None);
                            t
                        }
                        Err(e) => {
                            record(Some(status), Some(&headers), None, Some(describe(&e)));
                            let decision = judge(&Failure::Transport);
                            match decision {
                                Decision::GiveUp => {
                                    return Err(self.network(
                                        method_name,
                                        path,
                                        &e,
                                        attempt,
                                        uncertain,
                                    ));
                                }
                                Decision::Retry(wait) => {
                                    let desc =
                                        format!("reading the response failed: {}", describe(&e));
                                    self.pause(method_name, path, &desc, attempt, wait).await;
                                    continue;
                                }
                            }
                        }
                    };
                    self.unreachable
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    let signal = if status == 429 {
                        pace::Signal::Throttled
                    } else {
                        pace::Signal::Answered
                    };
                    let changed = self.pacer.observe(signal);
                    self.notify.pacing(self.pacer.current_rate());
                    match changed {
                        pace::Change::None => {}
                        pace::Change::Cut { rate, measured } => self.notify.note(&format!(
                            "pacing: {rate:.2} requests/s after a 429 ({})",
                            if measured {
                                "just under the rate the site accepted since the last change"
                            } else {
                                "a cut: too soon to measure the site's rate"
                            }
                        )),
                        pace::Change::Probe { rate } => self.notify.note(&format!(
                            "pacing: {rate:.2} requests/s (no 429 for a while: trying a little faster, up to --rate)"
                        )),
                    }
                    if (200..300).contains(&status) {
                        return Ok(text);
                    }
                    if (300..400).contains(&status) {
                        return Err(ApiError::Redirect {
                            method: method_name,
                            path: path.to_string(),
                            status,
                            location: header(&headers, "location")
                                .map(|l| l.chars().take(200).collect())
                                .unwrap_or_else(|| "(no Location)".into()),
                        });
                    }
                    if status == 401
                        && !renewed
                        && let (Auth::Renewing(tokens), Some(generation)) = (&self.auth, generation)
                    {
                        renewed = true;
                        tokens
                            .renew(generation)
                            .await
                            .map_err(|e| ApiError::Renewal { message: e.0 })?;
                        self.notify
                            .note("the site refused the access token (401): renewed it");
                        attempt -= 1;
                        continue;
                    }
                    let ra = header(&headers, "retry-after")
                        .or_else(|| header(&headers, "beta-retry-after"));
                    let reset = header(&headers, "x-ratelimit-reset");
                    let f = Failure::Status {
                        status,
                        retry_after: ra.as_deref(),
                        rate_limit_reset: reset.as_deref(),
                    };
                    match judge(&f) {
                        Decision::GiveUp => {
                            return Err(ApiError::Status {
                                method: method_name,
                                path: path.to_string(),
                                status,
                                message: secret.scrub(&api::error_text(&text)),
                                attempts: attempt,
                                uncertain,
                            });
                        }
                        d => (
                            format!("HTTP {status}: {}", secret.scrub(&api::error_text(&text))),
                            d,
                        ),
                    }
                }
                Err(e) => {
                    record(None, None, None, Some(describe(&e)));
                    let f = if e.is_timeout() {
                        Failure::Timeout
                    } else if e.is_connect() {
                        Failure::Connect
                    } else {
                        Failure::Transport
                    };
                    match judge(&f) {
                        Decision::GiveUp => {
                            return Err(self.network(method_name, path, &e, attempt, uncertain));
                        }
                        d => {
                            if matches!(f, Failure::Connect)
                                && !self
                                    .unreachable
                                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                            {
                                self.notify.alert(&format!(
                                    "csmport: cannot reach {} ({}); retrying ({} of {} attempts)",
                                    self.base_url,
                                    describe(&e),
                                    attempt + 1,
                                    self.policy.max_attempts
                                ));
                            }
                            (describe(&e), d)
                        }
                    }
                }
            };
            if let Decision::Retry(wait) = decision {
                self.pause(method_name, path, &failure_desc, attempt, wait)
                    .await;
            }
        }
    }

    async fn pause(&self, method: &str, path: &str, why: &str, attempt: u32, wait: Duration) {
        let until = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
            .unwrap_or_else(|_| jiff::Timestamp::now());
        self.notify.note(&format!(
            "{method} {path}: {why}; retry {attempt} in {:.1}s (at {})",
            wait.as_secs_f64(),
            until.strftime("%H:%M:%S")
        ));
        let rate_limited = why.starts_with("HTTP 429");
        self.notify.waiting(Some(until), rate_limited);
        tokio::time::sleep(wait).await;
        self.notify.waiting(None, false);
    }

    fn decide(&self, attempt: u32, f: &Failure) -> Decision {
        use std::sync::atomic::Ordering;
        let left = self.budget.load(Ordering::Relaxed);
        let d = retry::decide(
            &self.policy,
            attempt,
            f,
            jitter(),
            jiff::Timestamp::now(),
            left,
        );
        if let (
            Decision::Retry(_),
            Failure::Status {
                retry_after,
                rate_limit_reset,
                ..
            },
        ) = (&d, f)
            && let Some(hint) =
                retry::server_hint(*retry_after, *rate_limit_reset, jiff::Timestamp::now())
            && hint > self.policy.max_hint
        {
            self.notify.note(&format!(
                "the server asked to wait {:.0}s; waiting at most --max-wait {}s before trying again",
                hint.as_secs_f64(),
                self.policy.max_hint.as_secs()
            ));
        }
        let spends = retry::spends_budget(f);
        match d {
            Decision::Retry(_) if spends => {
                let _ = self
                    .budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1));
            }
            Decision::GiveUp
                if spends
                    && left == 0
                    && retry::is_retryable(f)
                    && !self.budget_noted.swap(true, Ordering::Relaxed) =>
            {
                self.notify.note(&format!(
                    "the run's retry budget ({} retries, --retry-budget) is spent: failures are no longer retried; their rows are reported as not confirmed and `csmport resume` sends them again",
                    self.policy.budget
                ));
            }
            _ => {}
        }
        d
    }

    fn network(
        &self,
        method: &'static str,
        path: &str,
        e: &reqwest::Error,
        attempts: u32,
        uncertain: bool,
    ) -> ApiError {
        let mut message = describe(e);
        if e.is_connect() || e.is_timeout() {
            // What a user can check, named once where the run gives up.
            message.push_str(&format!(
                "; check that {} is the right address (--base-url, CSM_BASE_URL), that this machine can reach it (network, VPN, HTTPS_PROXY) and that the site is up",
                self.base_url
            ));
        }
        ApiError::Network {
            method,
            path: path.to_string(),
            message,
            attempts,
            uncertain,
        }
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "connection error".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

enum Capped {
    TooLarge,
    Read(reqwest::Error),
}

/// The body, read a chunk at a time and refused past `cap` bytes (a `Content-Length` past it
/// is refused before anything is read): an endless or huge answer never fills memory.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<String, Capped> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Capped::TooLarge);
    }
    let mut body: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Read)? {
        if body.len() + chunk.len() > cap {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(match String::from_utf8(body) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A success answer as `T`. One that is not what csmport expects (an HTML page from a proxy,
/// an empty body, another shape) names what is wrong and how the answer begins.
fn decode<T: DeserializeOwned>(
    method: &'static str,
    path: &str,
    body: &str,
) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|e| ApiError::Decode {
        method,
        path: path.to_string(),
        message: decode_message(&e, body),
    })
}

/// A listing's answer as `T`: its list under any name `T::MEMBERS` lists, or `Listing` naming
/// the members the answer has (silence is not evidence: no list is not an empty list).
fn decode_list<T: DeserializeOwned + Listing>(
    method: &'static str,
    path: &str,
    body: &str,
) -> Result<T, ApiError> {
    let mut v: serde_json::Value = decode(method, path, body)?;
    if let Err(had) = lists::find_list(&mut v, T::MEMBERS) {
        return Err(ApiError::Listing {
            method,
            path: path.to_string(),
            message: list_missing(T::MEMBERS, &had),
        });
    }
    serde_json::from_value(v).map_err(|e| ApiError::Decode {
        method,
        path: path.to_string(),
        message: decode_message(&e, body),
    })
}

/// Why an answer without its list is refused, naming what it has.
pub fn list_missing(members: &[&str], had: &[String]) -> String {
    format!(
        "the answer (HTTP 2xx) has no list: expected a member {}, it has {}. A proxy or another version of the API may call it something else; nothing was read as empty. `csmport doctor` checks what the site answers; `--record DIR` keeps the answer for a bug report",
        members
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(" or "),
        if had.is_empty() {
            "no members".to_string()
        } else {
            had.join(", ")
        }
    )
}

pub fn decode_message(e: &serde_json::Error, body: &str) -> String {
    let what = if body.trim().is_empty() {
        "the answer (HTTP 2xx) is empty where JSON was expected".to_string()
    } else if e.is_syntax() || e.is_eof() {
        format!(
            "the answer (HTTP 2xx) is not JSON; it begins: {}",
            body.chars().take(200).collect::<String>()
        )
    } else {
        format!(
            "the answer (HTTP 2xx) is not shaped as csmport expects ({e}); it begins: {}",
            body.chars().take(200).collect::<String>()
        )
    };
    format!(
        "{what}. `csmport doctor` checks what the site answers; `--record DIR` keeps the answers for a bug report"
    )
}

/// A uniform draw in [0, 1) for backoff jitter. Not cryptographic; spreading retries out is all
/// it is for, so a per-thread xorshift seeded from the clock is enough.
fn jitter() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x2545_f491_4f6c_dd1d))
                | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}
