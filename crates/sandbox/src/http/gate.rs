//! The gate every API request of the sandbox passes, in `http`'s router: the request log,
//! auth, the rate limit, the experimental header, injected faults, and the quirks that rewrite
//! answers. Uses `faults`, `quirks` and `site::api` (what is experimental).

use super::prelude::*;

/// The longest path the request log keeps whole.
const LOGGED_PATH_CHARS: usize = 512;

/// Before every route, the API's and the admin's: on loopback only loopback `Host` names are
/// served (a web page's DNS rebinding cannot reach it); an admin request that changes state
/// and carries an `Origin` (a browser's cross-site request) is refused; with
/// `--allow-remote` the admin API wants the token.
pub(super) async fn guard(State(sb): State<Sandbox>, req: Request, next: Next) -> R {
    if !sb.config.allow_remote && !host_is_loopback(req.headers()) {
        return error(
            StatusCode::FORBIDDEN,
            "the sandbox serves loopback host names only (127.0.0.1, localhost, [::1])",
        );
    }
    if req.uri().path().starts_with("/_sandbox/") {
        if req.method() != Method::GET && req.headers().contains_key(header::ORIGIN) {
            return error(
                StatusCode::FORBIDDEN,
                "the sandbox's admin API takes no request from a web page (an Origin header)",
            );
        }
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sb.config.allow_remote && !credentials_match(auth, &sb.config.token) {
            return error(
                StatusCode::UNAUTHORIZED,
                "the sandbox's admin API wants its token when it serves beyond loopback",
            );
        }
    }
    next.run(req).await
}

/// Whether a request's `Host` names this machine (no `Host`: an HTTP/1.0 client, taken).
fn host_is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) async fn gate(State(sb): State<Sandbox>, req: Request, next: Next) -> R {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .map(|q| q.chars().take(LOGGED_PATH_CHARS).collect::<String>());
    let key = req
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (resp, fault) = gate_inner(&sb, req, next).await;
    let quirks = sb.faults.lock().expect("faults lock").faults.quirks.clone();
    // Error answers too under control-text: their message is what it rewrites.
    let rewritten = resp.status().is_success() || quirks.contains(&quirks::Quirk::ControlText);
    let resp = if quirks::rewrites(&quirks) && rewritten {
        with_quirks(resp, &quirks, &path).await
    } else {
        resp
    };
    // `csmport sandbox -v`: a line per request (in-process, at -vv beside the client's own).
    tracing::debug!(
        target: "csmport::sandbox",
        "sandbox: {method} {path} {}{}",
        resp.status().as_u16(),
        fault.as_deref().map(|f| format!(" ({f})")).unwrap_or_default()
    );
    sb.requests_total
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut log = sb.requests.lock().expect("requests lock");
    if log.len() >= REQUEST_LOG_CAP {
        log.pop_front();
    }
    // Bounded in bytes too: a 60 KB path is logged by its start.
    let path = if path.len() > LOGGED_PATH_CHARS {
        let cut: String = path.chars().take(LOGGED_PATH_CHARS).collect();
        format!("{cut}…")
    } else {
        path
    };
    log.push_back(LoggedRequest {
        method,
        path,
        query,
        idempotency_key: key,
        status: resp.status().as_u16(),
        fault,
        time: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    });
    resp
}

/// A JSON answer rewritten as the quirks say; anything else as it is.
pub(super) async fn with_quirks(resp: R, quirks: &[quirks::Quirk], path: &str) -> R {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * MAX_BODY_BYTES).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "answer too large to rewrite",
        );
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    quirks::rewrite(quirks, path, &mut v);
    let out = serde_json::to_vec(&v).expect("json serializes");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

pub(super) async fn gate_inner(sb: &Sandbox, req: Request, next: Next) -> (R, Option<String>) {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !credentials_match(&auth, &sb.config.token) && !issued_and_live(sb, &auth) {
        let r = error(
            StatusCode::UNAUTHORIZED,
            // The site's own words, then which token this sandbox takes: the client's 401
            // message quotes it, so a user who gave another token learns where it is set.
            "Client must be authenticated to access this resource. (csmport sandbox: send the token it was started with, its --token; the default is sandbox-token)",
        );
        return (r, None);
    }
    if sb.config.strict_cloud_id
        && let Some(id) = cloud_id_of(req.uri().path())
        && id != sb.config.cloud_id
    {
        // The gateway's answer to a cloud id it does not know.
        return (error(StatusCode::NOT_FOUND, "Site not found"), None);
    }
    if let Some(scopes) = &sb.config.scopes
        && let Some(needed) = csmport_api::relative(req.uri().path())
            .filter(|(api, _)| *api == csmport_api::Api::Csm)
            .and_then(|(_, rel)| csmport_api::scopes::of(req.method().as_str(), rel))
        && !scopes.iter().any(|s| csmport_api::scopes::same(s, needed))
    {
        // What a site answers a token without the scope (CONTRACT §2.4: granular scopes).
        let r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 401, "message": "Unauthorized; scope does not match"})),
        )
            .into_response();
        return (r, Some(format!("scope {needed} missing")));
    }
    if let Some(r) = rate_limit(sb, &auth) {
        return (r, Some("rate-limited".into()));
    }
    let forbidden = {
        let f = sb.faults.lock().expect("faults lock");
        csmport_api::relative(req.uri().path())
            .is_some_and(|(_, rel)| f.faults.forbid.iter().any(|t| paths::matches(t, rel)))
    };
    if forbidden {
        let r = error(
            StatusCode::FORBIDDEN,
            "You do not have permission to access this resource (sandbox fault)",
        );
        return (r, Some("forbidden".into()));
    }
    if sb.config.require_experimental && is_experimental(req.method(), req.uri().path()) {
        let opted_in = req
            .headers()
            .get(EXPERIMENTAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(EXPERIMENTAL_VALUE));
        if !opted_in {
            let r = error(
                EXPERIMENTAL_MISSING_STATUS,
                format!(
                    "This method is experimental: send the header {EXPERIMENTAL_HEADER}: {EXPERIMENTAL_VALUE} to use it"
                ),
            );
            return (r, None);
        }
    }
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        // Read (a bounded amount of) the body first: answering while the client is still
        // writing makes it see a broken pipe instead of the 413.
        let _ = axum::body::to_bytes(req.into_body(), 8 * MAX_BODY_BYTES).await;
        let r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {MAX_BODY_BYTES} bytes"),
        );
        return (r, None);
    }
    let bulk = csmport_api::is_bulk(req.method().as_str(), req.uri().path());
    let (fault, slow) = {
        let mut f = sb.faults.lock().expect("faults lock");
        let other_method = !f.faults.methods.is_empty()
            && !f
                .faults
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(req.method().as_str()));
        if (f.faults.bulk_only && !bulk) || other_method {
            (RequestFault::None, None)
        } else {
            f.request()
        }
    };
    let after = sb
        .faults
        .lock()
        .expect("faults lock")
        .faults
        .slow_after_applying;
    if let Some(d) = slow.filter(|_| !after) {
        tokio::time::sleep(d).await;
    }
    let slow_note = slow.map(|d| format!("slow {}ms", d.as_millis()));
    match fault {
        RequestFault::None => {
            let r = next.run(req).await;
            if let Some(d) = slow.filter(|_| after) {
                tokio::time::sleep(d).await;
            }
            // The router's own 405 (a known path, another method) has no body; give it the
            // contract's error shape, as for `GET api/v1/organization` (CONTRACT §1).
            if r.status() == StatusCode::METHOD_NOT_ALLOWED {
                return (
                    error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "Method not allowed on this resource",
                    ),
                    slow_note,
                );
            }
            (r, slow_note)
        }
        RequestFault::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).expect("valid status");
            let mut r = error(code, "Injected server error (sandbox fault)");
            if retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            (
                r,
                Some(format!(
                    "{status}{}",
                    if retry_after { " with Retry-After" } else { "" }
                )),
            )
        }
        RequestFault::DropBefore => (dropped(), Some("dropped before applying".into())),
        RequestFault::Redirect => {
            let to = sb
                .faults
                .lock()
                .expect("faults lock")
                .faults
                .redirect_to
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:9/elsewhere".into());
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            (r, Some(format!("redirected to {to}")))
        }
        RequestFault::DropAfter => {
            let applied = next.run(req).await;
            let note = format!(
                "dropped after applying (status {})",
                applied.status().as_u16()
            );
            // Read the answer to its end so the work is complete, then cut the connection.
            let _ = axum::body::to_bytes(applied.into_body(), usize::MAX).await;
            (dropped(), Some(note))
        }
    }
}

/// A response whose body fails at once: the client sees the connection break.
pub(super) fn dropped() -> R {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection dropped",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from_stream(stream))
        .expect("static response")
}

pub(super) fn rate_limit(sb: &Sandbox, credential: &str) -> Option<R> {
    let mut guard = sb.rate.lock().expect("rate lock");
    let rl = guard.as_mut()?;
    match rl.take(credential, Instant::now()) {
        Ok(remaining) => {
            // Headers on successful answers are not needed by clients; the 429 carries them.
            let _ = remaining;
            None
        }
        Err(limited) => {
            let mut r = if sb.config.html_429 {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>Rate limited. Please try again later.</body></html>",
                )
                    .into_response()
            } else {
                error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
            };
            let h = r.headers_mut();
            if !rl.omit_retry_after {
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(limited.retry_after_secs),
                );
            }
            h.insert("X-RateLimit-Limit", HeaderValue::from(limited.limit));
            h.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
            if let Ok(v) = HeaderValue::from_str(&reset_header(limited.retry_after_secs)) {
                h.insert("X-RateLimit-Reset", v);
            }
            h.insert(
                "RateLimit-Reason",
                HeaderValue::from_static("jira-burst-based"),
            );
            Some(r)
        }
    }
}

pub(super) fn is_experimental(method: &Method, path: &str) -> bool {
    csmport_api::relative(path)
        .is_some_and(|(api, rel)| csmport_api::is_experimental(api, method.as_str(), rel))
}

/// The cloud id a path names (`…/cloudid/{id}/…` or the gateway's `ex/jira/{id}/…`).
fn cloud_id_of(path: &str) -> Option<&str> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.windows(2)
        .find_map(|w| match w[0] {
            "cloudid" => Some(w[1]),
            _ => None,
        })
        .or_else(|| {
            segs.windows(3)
                .find(|w| w[0] == "ex" && w[1] == "jira")
                .map(|w| w[2])
        })
}

/// A Bearer token the token endpoint issued and that has not expired.
fn issued_and_live(sb: &Sandbox, value: &str) -> bool {
    let Some(t) = value.strip_prefix("Bearer ") else {
        return false;
    };
    let issued = sb.issued.lock().expect("issued lock");
    issued
        .get(t.trim())
        .is_some_and(|until| Instant::now() < *until)
}

/// Equal, in time that does not depend on where they differ (a token is not guessed a
/// byte at a time from how long a refusal takes).
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Bearer TOKEN, or Basic with any email and TOKEN as the password.
pub(super) fn credentials_match(value: &str, token: &str) -> bool {
    if let Some(t) = value.strip_prefix("Bearer ") {
        return same(t.trim().as_bytes(), token.as_bytes());
    }
    if let Some(b) = value.strip_prefix("Basic ") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(raw) else {
            return false;
        };
        return text.split_once(':').is_some_and(|(email, pass)| {
            !email.is_empty() && same(pass.as_bytes(), token.as_bytes())
        });
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let b = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let cases = [
            ("Bearer sandbox-token".to_string(), true),
            ("Bearer wrong".to_string(), false),
            (b("me@x.io:sandbox-token"), true),
            (b("me@x.io:wrong"), false),
            (b(":sandbox-token"), false),
            ("Basic !!!".to_string(), false),
            ("sandbox-token".to_string(), false),
        ];
        for (v, want) in cases {
            assert_eq!(credentials_match(&v, "sandbox-token"), want, "{v}");
        }
    }

    #[test]
    fn tokens_are_compared_whole() {
        for (a, b, want) in [
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("abc", "ab", false),
            ("", "", true),
            ("ab", "abc", false),
        ] {
            assert_eq!(same(a.as_bytes(), b.as_bytes()), want, "{a} {b}");
        }
        assert!(credentials_match("Bearer sandbox-token", "sandbox-token"));
        assert!(!credentials_match("Bearer sandbox-toke", "sandbox-token"));
    }

    #[test]
    fn loopback_hosts() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(v).unwrap());
            host_is_loopback(&m)
        };
        assert!(h("127.0.0.1:8080") && h("localhost") && h("[::1]:80") && h("LOCALHOST:1"));
        assert!(!h("evil.example") && !h("10.0.0.1:80") && !h("127.0.0.1.evil.example"));
    }

    #[test]
    fn experimental_routes() {
        let p = |s: &str| format!("/jsm/csm/cloudid/c/api/v1/{s}");
        let cases = [
            (Method::GET, p("tasks/abc"), true),
            (Method::POST, p("customer/details/bulk"), true),
            (Method::POST, p("customer/profile/bulk"), false),
            (Method::POST, p("customer/details/definitions/bulk"), false),
            (Method::GET, p("customer/qm:1/customer-experiences"), true),
            (Method::GET, p("customer/details"), false),
            (Method::GET, p("entitlements"), true),
            // CSM's POST customer (C11) is not experimental; JSM's is.
            (Method::POST, p("customer"), false),
            (
                Method::POST,
                "/rest/servicedeskapi/customer".to_string(),
                true,
            ),
        ];
        for (m, path, want) in cases {
            assert_eq!(is_experimental(&m, &path), want, "{m} {path}");
        }
        // The JSM customer listing, on the site and through the gateway.
        assert!(is_experimental(
            &Method::GET,
            "/rest/servicedeskapi/servicedesk/1/customer"
        ));
        assert!(is_experimental(
            &Method::GET,
            "/ex/jira/c/rest/servicedeskapi/servicedesk/1/customer"
        ));
    }
}
