//! The token endpoint (`POST /oauth/token`): OAuth 2.0 client credentials, as a service
//! account asks Atlassian's, so a run rehearses tokens that expire (`--token-ttl`). Issued
//! tokens are kept in `Sandbox::issued`; the gate takes them until they expire.

use super::prelude::*;

/// The OAuth error body (RFC 6749 §5.2).
fn refused(status: StatusCode, error: &str, description: &str) -> R {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `application/x-www-form-urlencoded` (or JSON) into its pairs.
fn form(body: &[u8]) -> HashMap<String, String> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(body) {
        return o
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) async fn token(State(sb): State<Sandbox>, body: Bytes) -> R {
    let Some((id, secret)) = &sb.config.client else {
        return refused(
            StatusCode::NOT_FOUND,
            "not_found",
            "this sandbox issues no tokens: start it with --client-id and --client-secret",
        );
    };
    let f = form(&body);
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return refused(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if f.get("client_id") != Some(id) || f.get("client_secret") != Some(secret) {
        return refused(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Unauthorized: the client id or secret is wrong",
        );
    }
    let ttl = sb.config.token_ttl;
    let token = format!("sandbox-issued-{}", uuid::Uuid::new_v4().simple());
    {
        let mut issued = sb.issued.lock().expect("issued lock");
        let now = Instant::now();
        // Expired tokens go: the map holds what is live, not every token ever issued.
        issued.retain(|_, until| *until > now);
        // A life past any clock (`--token-ttl 18446744073709551615`) never ends.
        let until = now
            .checked_add(ttl)
            .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 24 * 3600));
        issued.insert(token.clone(), until);
    }
    sb.tokens_issued
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (
        StatusCode::OK,
        axum::Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl.as_secs(),
        })),
    )
        .into_response()
}
