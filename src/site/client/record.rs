//! `--record DIR`: every request the client makes and the answer it got, one JSON line per
//! attempt in `DIR/csmport-record-<UTC time>.jsonl` (method, URL, headers, bodies, status,
//! time), so a user can attach what their site really answered to a bug report. Credentials
//! (`Authorization`) and cookies are written as `REDACTED`; the bodies are the user's data as
//! sent and received. Used by `client` only; every client of a process shares one file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

pub const REDACTED: &str = "REDACTED";

/// Headers whose values are never written.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];

pub struct Recorder {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

/// One attempt, as written.
#[derive(Debug, Serialize)]
pub struct Exchange<'a> {
    pub time: String,
    pub method: &'a str,
    pub url: &'a str,
    pub request_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u128,
}

impl Recorder {
    /// The recorder writing into `dir`: one per folder for the whole process.
    pub fn open(dir: &Path) -> std::io::Result<Arc<Recorder>> {
        static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<Recorder>>>> = OnceLock::new();
        let mut open = OPEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        if let Some(r) = open.get(&key) {
            return Ok(r.clone());
        }
        crate::fsx::private_dir(dir)?;
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
        let path = dir.join(format!("csmport-record-{stamp}.jsonl"));
        let file = crate::fsx::append_private(&path)?;
        let r = Arc::new(Recorder {
            path,
            file: Mutex::new(file),
        });
        open.insert(key, r.clone());
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one attempt (a write that fails is not worth failing the request for).
    pub fn write(&self, e: &Exchange<'_>) {
        let mut line = serde_json::to_string(e).expect("an exchange serializes");
        line.push('\n');
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Headers as recorded: secrets replaced by `REDACTED`.
pub fn headers<'a>(h: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    h.map(|(k, v)| {
        let v = if SECRET_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            REDACTED.to_string()
        } else {
            v.to_string()
        };
        (k.to_string(), v)
    })
    .collect()
}

/// A request body as recorded: its JSON, or its text.
pub fn body(bytes: Option<&[u8]>) -> Option<serde_json::Value> {
    let b = bytes?;
    Some(
        serde_json::from_slice(b)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(b).into_owned())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_written() {
        let h = headers(
            [
                ("Authorization", "Bearer s3cret"),
                ("Set-Cookie", "a=b"),
                ("X-ExperimentalApi", "opt-in"),
            ]
            .into_iter(),
        );
        assert_eq!(
            h,
            vec![
                ("Authorization".to_string(), REDACTED.to_string()),
                ("Set-Cookie".to_string(), REDACTED.to_string()),
                ("X-ExperimentalApi".to_string(), "opt-in".to_string()),
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::open(dir.path()).unwrap();
        assert!(
            Arc::ptr_eq(&r, &Recorder::open(dir.path()).unwrap()),
            "one file"
        );
        r.write(&Exchange {
            time: "t".into(),
            method: "GET",
            url: "http://x/y",
            request_headers: h,
            request_body: body(Some(br#"{"a":1}"#)),
            status: Some(200),
            response_headers: vec![],
            response_body: Some("{}".into()),
            error: None,
            elapsed_ms: 3,
        });
        let text = std::fs::read_to_string(r.path()).unwrap();
        assert!(!text.contains("s3cret"));
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["request_body"]["a"], 1);
    }
}
