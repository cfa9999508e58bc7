//! Tokens that renew themselves: a service account's client credentials against the sandbox's
//! token endpoint with tokens that expire every few seconds, a token command whose token
//! changes mid-run, and the failures of both said in one line without a secret.

use std::io::Write;
use std::path::Path;
use std::process::Output;

use crate::common::*;

const CLIENT_ID: &str = "svc-client";
const CLIENT_SECRET: &str = "svc-s3cret-value";

/// `n` customers, one a row.
fn customers(ctx: &Ctx, n: usize) -> std::path::PathBuf {
    let mut text = String::from("email,displayName\n");
    for i in 0..n {
        text.push_str(&format!("user{i}@renew.example,User {i}\n"));
    }
    ctx.write("many.csv", text.as_bytes())
}

/// `csmport` against `sb` with these credential flags instead of the usual token.
fn run(ctx: &Ctx, sb: &SandboxProc, creds: &[&str], env: &[(&str, &str)], rest: &[&str]) -> Output {
    let mut c = ctx.csmport(None);
    c.args(["--base-url", &sb.url, "--cloud-id", "test-cloud"]);
    c.args(creds);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(rest).output().unwrap()
}

/// A sandbox whose token endpoint issues tokens for `ttl` seconds; tasks take `latency` ms.
fn issuing_sandbox(ttl: &str, latency: &str) -> SandboxProc {
    SandboxProc::start(&[
        "--token-ttl",
        ttl,
        "--client-id",
        CLIENT_ID,
        "--client-secret",
        CLIENT_SECRET,
        "--task-latency-ms",
        latency,
    ])
}

fn tokens_issued(sb: &SandboxProc) -> u64 {
    sb.state()["tokensIssued"].as_u64().unwrap()
}

#[test]
fn a_long_import_with_client_credentials_renews_its_token_and_finishes() {
    let sb = issuing_sandbox("5", "200");
    let ctx = Ctx::new();
    let file = customers(&ctx, 20_000);
    let token_url = format!("{}/oauth/token", sb.url);
    let out = run(
        &ctx,
        &sb,
        &["--client-id", CLIENT_ID, "--token-url", &token_url],
        &[("CSM_CLIENT_SECRET", CLIENT_SECRET)],
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--out",
            "run",
        ],
    );
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    let s = ctx.summary();
    assert_eq!(s["succeeded"], 20_000, "{s}");
    assert!(!said.contains("resume"), "{said}");
    // Tokens last 5 s and the run took longer: it asked for more than one.
    let issued = tokens_issued(&sb);
    assert!(issued > 1, "{issued} tokens issued; {s}");
    assert!(!said.contains(CLIENT_SECRET), "{said}");
    let log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(
        !log.contains(CLIENT_SECRET) && !log.contains("sandbox-issued-"),
        "{log}"
    );
}

/// A new token from the sandbox's token endpoint at `url`.
fn issue(url: &str) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
    );
    runtime().block_on(async {
        let r = csmport::site::client::http_client()
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    })
}

/// Keeps `path` holding a live token of the sandbox's endpoint until `stop` is set.
fn keep_fresh(
    url: String,
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut n = 0;
    // Bounded: at most 60 tokens, one a second.
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 60 {
        let token = issue(&url);
        write_private(&path, &format!("{token}\n"));
        n += 1;
        std::thread::sleep(std::time::Duration::from_millis(700));
    }
}

/// Writes `text` to `path` whole (a reader never sees half), readable by its owner alone.
fn write_private(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_token_command_is_asked_again_when_the_site_refuses_its_token() {
    let sb = issuing_sandbox("2", "500");
    let ctx = Ctx::new();
    let file = customers(&ctx, 5_000);
    let token_file = ctx.path("token");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let keeper = {
        let (url, path, stop) = (
            format!("{}/oauth/token", sb.url),
            token_file.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || keep_fresh(url, path, stop))
    };
    while !token_file.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let cmd = format!("cat {}", token_file.display());
    let out = run(
        &ctx,
        &sb,
        &["--access-token-command", &cmd],
        &[],
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--out",
            "run",
        ],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    keeper.join().unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(ctx.summary()["succeeded"], 5_000);
    // The first token expired during the run: the command gave the next one.
    let log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(log.contains("renewed"), "{log}");
    assert!(!log.contains("sandbox-issued-"), "{log}");
}

#[test]
fn a_refused_token_request_or_a_failing_command_is_one_line_without_a_secret() {
    let sb = SandboxProc::start(&["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]);
    let ctx = Ctx::new();
    let file = customers(&ctx, 3);
    let token_url = format!("{}/oauth/token", sb.url);
    let out = run(
        &ctx,
        &sb,
        &["--client-id", CLIENT_ID, "--token-url", &token_url],
        &[("CSM_CLIENT_SECRET", "wrong-secret-value")],
        &["import", "customers", file.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("/oauth/token"),
        "{err}"
    );
    assert!(!err.contains("wrong-secret-value"), "{err}");
    assert_eq!(
        err.trim().lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );

    let script = ctx.write("tok.sh", b"echo topsecret-output\nexit 7\n");
    let cmd = format!("sh {}", script.display());
    let out = run(
        &ctx,
        &sb,
        &["--access-token-command", &cmd],
        &[],
        &["import", "customers", file.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&cmd) && err.contains("failed"), "{err}");
    assert!(!err.contains("topsecret-output"), "{err}");
    assert!(sb.writes_since(0).is_empty());
}

#[test]
fn a_run_that_cannot_renew_its_token_stops_as_interrupted_with_rows_open() {
    let sb = issuing_sandbox("2", "500");
    let ctx = Ctx::new();
    let file = customers(&ctx, 5_000);
    // The command gives one token that lives 2 s, then fails.
    let token_file = ctx.path("token");
    let token = issue(&format!("{}/oauth/token", sb.url));
    write_private(&token_file, &format!("{token}\n"));
    let used = ctx.path("used");
    let script = ctx.write(
        "once.sh",
        format!(
            "if [ -f {used} ]; then exit 1; fi\ntouch {used}\ncat {token}\n",
            used = used.display(),
            token = token_file.display()
        )
        .as_bytes(),
    );
    let cmd = format!("sh {}", script.display());
    let out = run(
        &ctx,
        &sb,
        &["--access-token-command", &cmd],
        &[],
        &[
            "import",
            "customers",
            file.to_str().unwrap(),
            "--out",
            "run",
        ],
    );
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("no access token") && said.contains("csmport resume"),
        "{said}"
    );
    let s = ctx.summary();
    assert!(s["open"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
}
