//! Tokens that renew themselves (site client): an OAuth 2.0 client-credentials token asked of
//! the token endpoint and asked for again before it expires, or a token a command prints or a
//! file holds, read again when the site answers 401. `Client` asks `current` before every
//! request and `renew` after a 401; `config` builds the `Source` from the flags. A secret or a
//! token never appears in a message: errors name the endpoint, the command or the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where tokens come from.
pub enum Source {
    /// A service account's OAuth 2.0 client credentials.
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
    },
    /// `--access-token-command`: run through the shell; the token is what it prints.
    Command(String),
    /// `--access-token-file`: read again after a 401.
    File(PathBuf),
}

/// Why no token could be had: says what was asked, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

struct Held {
    token: String,
    /// Bumped by every new token: a 401 to a request sent with an older one is already mended.
    generation: u64,
    /// When to ask for the next one before it is refused (client credentials).
    renew_at: Option<Instant>,
}

pub struct Tokens {
    source: Source,
    held: tokio::sync::Mutex<Option<Held>>,
    issued: AtomicU64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.source {
            Source::ClientCredentials { .. } => "Tokens(client credentials, ***)",
            Source::Command(_) => "Tokens(command, ***)",
            Source::File(_) => "Tokens(file, ***)",
        })
    }
}

/// How long before it expires a token is renewed: a minute, or a fifth of a short life.
pub fn renew_before(life: Duration) -> Duration {
    (life / 5).min(Duration::from_secs(60))
}

impl Tokens {
    /// `first`: a token already read (a file checked at start), used until the site refuses it.
    pub fn new(source: Source, first: Option<String>) -> Tokens {
        Tokens {
            source,
            held: tokio::sync::Mutex::new(first.map(|token| Held {
                token,
                generation: 1,
                renew_at: None,
            })),
            issued: AtomicU64::new(0),
        }
    }

    /// Tokens had from the source so far (not counting one given at start).
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The token to send and its generation; a new one first when there is none yet or it is
    /// about to expire.
    pub async fn current(&self) -> Result<(String, u64), TokenError> {
        let mut held = self.held.lock().await;
        let fresh = held
            .as_ref()
            .is_some_and(|h| h.renew_at.is_none_or(|at| Instant::now() < at));
        if !fresh {
            let generation = held.as_ref().map_or(1, |h| h.generation + 1);
            *held = Some(self.fetch(generation).await?);
        }
        let h = held.as_ref().expect("held");
        Ok((h.token.clone(), h.generation))
    }

    /// After a 401 to a request sent with `generation`: a new token, unless another request
    /// renewed it since (so a burst of 401s renews once).
    pub async fn renew(&self, generation: u64) -> Result<(), TokenError> {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.generation != generation) {
            return Ok(());
        }
        *held = Some(self.fetch(generation + 1).await?);
        Ok(())
    }

    async fn fetch(&self, generation: u64) -> Result<Held, TokenError> {
        let (token, life) = match &self.source {
            Source::ClientCredentials {
                token_url,
                client_id,
                client_secret,
            } => client_credentials(token_url, client_id, client_secret).await?,
            Source::Command(cmd) => {
                let cmd = cmd.clone();
                let t = tokio::task::spawn_blocking(move || run_command(&cmd))
                    .await
                    .map_err(|e| TokenError(format!("the token command stopped: {e}")))??;
                (t, None)
            }
            Source::File(path) => (read_file(path, "--access-token-file")?, None),
        };
        self.issued.fetch_add(1, Ordering::Relaxed);
        Ok(Held {
            token,
            generation,
            renew_at: life
                .and_then(|l| Instant::now().checked_add(l.saturating_sub(renew_before(l)))),
        })
    }
}

/// What the token endpoint answers (RFC 6749 §5.1).
#[derive(serde::Deserialize)]
struct Granted {
    access_token: String,
    /// A number of seconds by RFC 6749; read tolerantly (a string, a fraction) and bounded.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// The longest life a token is taken to have, whatever the endpoint says: past it the token
/// is renewed anyway (and a life in the billions of seconds is no deadline to compute).
pub const LONGEST_TOKEN_LIFE: Duration = Duration::from_secs(24 * 3600);

/// A token's life from `expires_in`: the API's default when absent, zero, negative or not a
/// number; at most `LONGEST_TOKEN_LIFE`.
pub fn token_life(expires_in: Option<&serde_json::Value>) -> Duration {
    let secs = match expires_in {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite() && *s >= 1.0)
    .unwrap_or(crate::site::api::DEFAULT_TOKEN_SECS as f64);
    Duration::try_from_secs_f64(secs)
        .unwrap_or(LONGEST_TOKEN_LIFE)
        .min(LONGEST_TOKEN_LIFE)
}

/// Asks the token endpoint for an access token with client credentials.
async fn client_credentials(
    url: &str,
    id: &str,
    secret: &str,
) -> Result<(String, Option<Duration>), TokenError> {
    let http = super::http_builder()
        .timeout(Duration::from_secs(60))
        // The secret goes to the token endpoint named, nowhere else.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TokenError(format!("cannot set up the token request: {e}")))?;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_encode(id),
        form_encode(secret)
    );
    let hide = |text: &str| text.replace(secret, "***");
    let resp = http
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            TokenError(hide(&format!(
                "the token endpoint {url} cannot be reached: {}",
                super::describe(&e)
            )))
        })?;
    let status = resp.status().as_u16();
    // A token answer is small: one far larger is not read whole.
    let text = super::read_capped(resp, 64 * 1024)
        .await
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(TokenError(hide(&format!(
            "the token endpoint {url} answered HTTP {status}: {} (check --client-id / CSM_CLIENT_ID and the client secret)",
            oauth_error(&text)
        ))));
    }
    let g: Granted = serde_json::from_str(&text).map_err(|_| {
        TokenError(format!(
            "the token endpoint {url} answered HTTP {status} without an access_token"
        ))
    })?;
    let token = one_token(&g.access_token, &format!("the token endpoint {url}"))?;
    Ok((token, Some(token_life(g.expires_in.as_ref()))))
}

/// An OAuth error body's words (`error_description`, `error`), else the API's error text.
fn oauth_error(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        if let Some(m) = s("error_description").or_else(|| s("error")) {
            return m.chars().take(300).collect();
        }
    }
    crate::site::api::error_text(text)
        .chars()
        .take(300)
        .collect()
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are, the rest `%XX`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `cmd` through the shell; its first line of output is the token. What it printed is
/// never shown: it may be the token, or half of one.
pub fn run_command(cmd: &str) -> Result<String, TokenError> {
    let named = format!("--access-token-command `{cmd}`");
    #[cfg(unix)]
    let out = std::process::Command::new("sh").arg("-c").arg(cmd).output();
    #[cfg(not(unix))]
    let out = std::process::Command::new("cmd")
        .arg("/C")
        .arg(cmd)
        .output();
    let out = out.map_err(|e| TokenError(format!("{named} cannot be run: {e}")))?;
    if !out.status.success() {
        return Err(TokenError(format!(
            "{named} failed ({}); its output is not shown",
            out.status
        )));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| TokenError(format!("{named} printed something that is not text")))?;
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return Err(TokenError(format!("{named} printed no token")));
    }
    one_token(first, &named)
}

/// A token as a file holds it: one line, its newline dropped. A file others can read is
/// refused (the token would be theirs too).
pub fn read_file(path: &Path, flag: &str) -> Result<String, TokenError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| TokenError(format!("{flag} {shown}: cannot be read ({e})")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TokenError(format!(
                "{flag} {shown}: other users can read it (mode {mode:o}); make it yours alone with `chmod 600 {shown}`"
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path)
        .map_err(|e| TokenError(format!("{flag} {shown}: cannot be read ({e})")))?;
    one_token(&text, &format!("{flag} {shown}"))
}

/// `text` as one token: a final newline is dropped; anything else that is not part of a token
/// (spaces, tabs, more lines, nothing at all) is refused, naming where it came from but never
/// the token itself.
pub fn one_token(text: &str, from: &str) -> Result<String, TokenError> {
    let t = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if t.is_empty() {
        return Err(TokenError(format!("{from}: the token is empty")));
    }
    if let Some(at) = t.find(|c: char| c.is_whitespace() || c.is_control()) {
        let what = match t.as_bytes()[at] {
            b'\n' | b'\r' => "a line break",
            b'\t' => "a tab",
            b' ' => "a space",
            _ => "a control or space character",
        };
        return Err(TokenError(format!(
            "{from}: the token has {what} at character {} of {}; a token is one word (copy it again, without spaces or quotes)",
            t[..at].chars().count() + 1,
            t.chars().count()
        )));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_s_life_is_read_tolerantly_and_bounded() {
        use serde_json::json;
        let hour = Duration::from_secs(crate::site::api::DEFAULT_TOKEN_SECS);
        let cases = [
            (None, hour),
            (Some(json!(3600)), Duration::from_secs(3600)),
            (Some(json!("900")), Duration::from_secs(900)),
            (Some(json!(1.5)), Duration::from_secs_f64(1.5)),
            (Some(json!(0)), hour),
            (Some(json!(-5)), hour),
            (Some(json!("soon")), hour),
            (Some(json!(null)), hour),
            (Some(json!(u64::MAX)), LONGEST_TOKEN_LIFE),
            (Some(json!(1e300)), LONGEST_TOKEN_LIFE),
            (Some(json!("1e20")), LONGEST_TOKEN_LIFE),
        ];
        for (v, want) in cases {
            assert_eq!(token_life(v.as_ref()), want, "{v:?}");
        }
    }

    #[test]
    fn a_token_is_renewed_a_minute_or_a_fifth_of_its_life_early() {
        let cases = [(3600, 60), (300, 60), (100, 20), (5, 1), (0, 0)];
        for (life, early) in cases {
            assert_eq!(
                renew_before(Duration::from_secs(life)),
                Duration::from_secs(early),
                "{life}"
            );
        }
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é~"), "a%20b%26c%3Dd%2F%C3%A9~");
    }

    #[test]
    fn a_command_gives_its_first_line_and_a_failure_hides_its_output() {
        assert_eq!(run_command("printf 'tok-1\\nmore'").unwrap(), "tok-1");
        // The command is named; what it printed (here "secret-output") is not.
        let e = run_command("printf '%s-%s' secret output; exit 3")
            .unwrap_err()
            .0;
        assert!(e.contains("failed") && !e.contains("secret-output"), "{e}");
        let e = run_command("true").unwrap_err().0;
        assert!(e.contains("printed no token"), "{e}");
    }

    #[tokio::test]
    async fn a_burst_of_401s_renews_once() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("n");
        std::fs::write(&counter, "0").unwrap();
        let cmd = format!(
            "n=$(cat {0}); n=$((n+1)); echo $n > {0}; echo tok-$n",
            counter.display()
        );
        let t = Tokens::new(Source::Command(cmd), None);
        let (first, g) = t.current().await.unwrap();
        assert_eq!(first, "tok-1");
        t.renew(g).await.unwrap();
        // A second 401 to a request sent with the old token: already renewed.
        t.renew(g).await.unwrap();
        let (second, g2) = t.current().await.unwrap();
        assert_eq!((second.as_str(), g2), ("tok-2", g + 1));
        assert_eq!(t.issued(), 2);
    }
}
