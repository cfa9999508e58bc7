//! Test harness: a real `csmport sandbox` process on 127.0.0.1:0, a temp folder per test, and
//! helpers to run the real binary against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const TOKEN: &str = "sandbox-token";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_csmport"))
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A `csmport sandbox` child process, killed on drop.
pub struct SandboxProc {
    child: Child,
    pub url: String,
}

impl SandboxProc {
    /// Starts the sandbox seeded with sample-data/, plus extra flags.
    pub fn start(extra: &[&str]) -> SandboxProc {
        let mut args = vec!["--sample-data"];
        args.extend_from_slice(extra);
        SandboxProc::start_raw(&args)
    }

    /// Starts the sandbox with exactly these flags (besides the address).
    pub fn start_raw(extra: &[&str]) -> SandboxProc {
        let mut args = vec!["sandbox", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = Command::new(bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sandbox starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sandbox prints its address");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        SandboxProc { child, url }
    }

    pub fn state(&self) -> serde_json::Value {
        get_json(&format!("{}/_sandbox/state", self.url))
    }

    /// The sandbox's request log.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let log = get_json(&format!("{}/_sandbox/requests", self.url));
        log["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Requests after the first `before` that change the site (reads by POST end in
    /// `/fetch`), as `METHOD path`.
    pub fn writes_since(&self, before: usize) -> Vec<String> {
        self.requests()[before..]
            .iter()
            .filter(|r| r["method"] != "GET" && !r["path"].as_str().unwrap().ends_with("/fetch"))
            .map(|r| format!("{} {}", r["method"], r["path"]))
            .collect()
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/jsm/csm/cloudid/test-cloud/api/v1/{path}", self.url)
    }
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn get_json(url: &str) -> serde_json::Value {
    runtime().block_on(async {
        csmport::site::client::http_client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A temp folder and a command builder for `csmport` aimed at a sandbox.
pub struct Ctx {
    pub dir: tempfile::TempDir,
}

impl Ctx {
    pub fn new() -> Ctx {
        Ctx {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// `csmport` with the target flags of `sb`, run in the temp folder, no inherited CSM_* env.
    pub fn csmport(&self, sb: Option<&SandboxProc>) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("CSM_") {
                c.env_remove(k);
            }
        }
        // The sandbox answers at once: tests run at its pace, not a real site's (a test that
        // is about pacing gives --rate itself).
        c.env("CSM_RATE", "1000");
        // Logging is asked for by a test itself (-v), never inherited.
        c.env_remove("RUST_LOG");
        if let Some(sb) = sb {
            c.args([
                "--base-url",
                &sb.url,
                "--cloud-id",
                "test-cloud",
                "--access-token",
                TOKEN,
            ]);
        }
        c
    }

    pub fn import(&self, sb: &SandboxProc, file: &Path, extra: &[&str]) -> Output {
        self.import_kind(sb, "customers", file, extra)
    }

    pub fn import_kind(&self, sb: &SandboxProc, kind: &str, file: &Path, extra: &[&str]) -> Output {
        let out = self.path("run");
        let mut c = self.csmport(Some(sb));
        c.args(["import", kind])
            .arg(file)
            .arg("--out")
            .arg(&out)
            .args(extra);
        c.output().unwrap()
    }

    /// Detail-field definitions (`entity,name,type,options` lines after the header) made on
    /// `sb` by `csmport import detail-fields`, which must succeed.
    pub fn define_fields(&self, sb: &SandboxProc, lines: &str) {
        let file = self.write(
            "fields.csv",
            format!("entity,name,type,options\n{lines}").as_bytes(),
        );
        let o = self.import_kind_to(sb, "detail-fields", &file, "fields", &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }

    /// `import KIND FILE --out OUT` (relative to the temp folder).
    pub fn import_kind_to(
        &self,
        sb: &SandboxProc,
        kind: &str,
        file: &Path,
        out: &str,
        extra: &[&str],
    ) -> Output {
        self.csmport(Some(sb))
            .args(["import", kind])
            .arg(file)
            .arg("--out")
            .arg(self.path(out))
            .args(extra)
            .output()
            .unwrap()
    }

    /// The sample migration plan (sample-data/migration.toml) imported into `sb`, its run
    /// folder `out` (relative to the temp folder); the sample's bad rows fail on purpose.
    pub fn import_sample_plan(&self, sb: &SandboxProc, out: &str) -> Output {
        let o = self
            .csmport(Some(sb))
            .args(["import", "--plan"])
            .arg(repo("sample-data/migration.toml"))
            .args(["--service-desk", "1", "--out"])
            .arg(self.path(out))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        o
    }

    /// `csmport resume` of this test's `run` folder against `sb`.
    pub fn resume(&self, sb: &SandboxProc) -> Output {
        self.csmport(Some(sb))
            .arg("resume")
            .arg(self.path("run"))
            .output()
            .unwrap()
    }

    pub fn summary(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path("run/summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn read_csv(&self, path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
        read_csv(path)
    }
}

/// A CSV's header and rows; a report's byte-order mark is checked and left out.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let report = ["failures.csv", "successes.csv", "warnings.csv"].contains(&name.as_ref());
    let text = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest,
        None => {
            assert!(
                !report,
                "{}: a report starts with a byte-order mark",
                path.display()
            );
            &bytes[..]
        }
    };
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text);
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One authenticated API call with the headers the client always sends; returns the status and
/// the JSON body (Null when there is none or it is not JSON).
pub fn call(
    sb: &SandboxProc,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let (status, _, v) = call_full(sb, method, &sb.api(path), body, key, &[]);
    (status, v)
}

/// Like `call`, on a full URL, with extra headers; also returns the response headers.
pub fn call_full(
    _sb: &SandboxProc,
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    runtime().block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = csmport::site::client::http_client()
            .request(method, url)
            .bearer_auth(TOKEN)
            .header("X-ExperimentalApi", "opt-in");
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            h,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    })
}

/// Polls a task until it is FINISHED or FAILED (at most ~10 s).
pub fn wait_task(sb: &SandboxProc, id: &str) -> serde_json::Value {
    for _ in 0..200 {
        let (code, t) = call(sb, "GET", &format!("tasks/{id}"), None, None);
        assert_eq!(code, 200, "{t}");
        if t["status"] == "FINISHED" || t["status"] == "FAILED" {
            return t;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("task {id} never finished");
}

pub fn fixture(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo(&format!("tests/fixtures/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Asserts that `actual` has the documented shape: the same members with the same JSON types,
/// recursively (array items compared with the first documented item). Values may differ.
pub fn assert_shape(documented: &serde_json::Value, actual: &serde_json::Value, at: &str) {
    use serde_json::Value::*;
    match (documented, actual) {
        (Object(d), Object(a)) => {
            let dk: Vec<&std::string::String> = d.keys().collect();
            let ak: Vec<&std::string::String> = a.keys().collect();
            assert_eq!(dk, ak, "members of {at}");
            for (k, dv) in d {
                assert_shape(dv, &a[k], &format!("{at}.{k}"));
            }
        }
        (Array(d), Array(a)) => {
            // Items differ in optional members (a TEXT field has no `options`), so the first
            // documented item is compared with the first actual one.
            if let Some(first) = d.first() {
                assert!(!a.is_empty(), "{at}: documented non-empty, got []");
                assert_shape(first, &a[0], &format!("{at}[0]"));
            }
        }
        (String(_), String(_)) | (Number(_), Number(_)) | (Bool(_), Bool(_)) | (Null, Null) => {}
        _ => panic!("{at}: documented {documented}, got {actual}"),
    }
}

/// Sets the sandbox's quirks now (the answers' shapes the docs leave open), after whatever a
/// test seeded with the documented shapes.
pub fn set_quirks(sb: &SandboxProc, quirks: &[&str]) {
    set_faults(sb, serde_json::json!({ "quirks": quirks }));
}

/// Sets the sandbox's faults now (`{}`: none), as `PUT /_sandbox/faults` takes them.
pub fn set_faults(sb: &SandboxProc, faults: serde_json::Value) {
    let (status, _, _) = call_full(
        sb,
        "PUT",
        &format!("{}/_sandbox/faults", sb.url),
        Some(&faults),
        None,
        &[],
    );
    assert_eq!(status, 200);
}

/// Sends Ctrl-C's signal (SIGINT) to `child`.
pub fn sigint(child: &std::process::Child) {
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}
