//! A hostile site (issue 36): a server on 127.0.0.1 that answers what a test tells it to, and
//! csmport ends with a clear line and its exit code, never a panic. Also the pipes a user
//! closes early (`| head`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::common::*;

/// csmport aimed at a hostile server's `url`, with a token.
fn against(ctx: &Ctx, url: &str) -> Command {
    let mut c = ctx.csmport(None);
    c.args(["--base-url", url, "--cloud-id", "c", "--access-token", "t"]);
    c
}

/// Reads a request's head; a body (none is sent here before the answer) is not waited for.
fn read_head(s: &std::net::TcpStream) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
}

/// A server that answers every request with `answer` (raw HTTP), for at most 500
/// connections; returns its base URL.
fn hostile(answer: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(500) {
            let Ok(mut s) = stream else { continue };
            read_head(&s);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    url
}

#[test]
fn an_absurd_retry_after_is_clamped_not_a_panic() {
    let url = hostile(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1e20\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@x.example,A\n");
    let out = against(&ctx, &url)
        .args(["import", "customers", file.to_str().unwrap()])
        .args(["--max-wait", "1", "--slot-wait", "2"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("429"), "{err}");
}

#[test]
fn an_absurd_rate_is_refused_in_one_line() {
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@x.example,A\n");
    for rate in ["1e-30", "1e300", "0"] {
        let out = ctx
            .csmport(None)
            .args(["--sandbox", "import", "customers", file.to_str().unwrap()])
            .args(["--rate", rate])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{rate}: {err}");
        assert!(
            err.contains("--rate must be a number of requests per second"),
            "{err}"
        );
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    for args in [
        vec!["completions", "fish"],
        vec!["completions", "bash"],
        vec!["man"],
    ] {
        let mut child = Command::new(bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the output is written (`| head -0`): every write then
        // meets a closed pipe.
        drop(child.stdout.take());
        let done = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(done.status.code(), Some(101), "{args:?}: {err}");
    }
}

/// A server that counts the connections made to it and answers 200 `{}`.
fn counting() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = n.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(500) {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut s) = stream {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            }
        }
    });
    (url, n)
}

#[test]
fn a_redirect_is_an_error_naming_it_and_nothing_goes_elsewhere() {
    let (elsewhere, connections) = counting();
    let answer: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let url = hostile(answer);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@x.example,A\n");
    let out = against(&ctx, &url)
        .args(["import", "customers", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("redirects to") && err.contains(&format!("{elsewhere}/steal")),
        "{err}"
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_server_that_echoes_the_token_does_not_get_it_printed() {
    let body = r#"{"errorMessage":"the token tok-Echo-2718281828 is not welcome here"}"#;
    let answer: &'static str = leaked(json_answer("400 Bad Request", body));
    let url = hostile(answer);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@x.example,A\n");
    let out = ctx
        .csmport(None)
        .args(["--base-url", &url, "--cloud-id", "c"])
        .args(["--access-token", "tok-Echo-2718281828"])
        .args([
            "import",
            "customers",
            file.to_str().unwrap(),
            "--out",
            "run",
        ])
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("not welcome here"), "{said}");
    assert!(!said.contains("tok-Echo-2718281828"), "{said}");
    // Nor in any file of the run folder.
    if let Ok(entries) = std::fs::read_dir(ctx.path("run")) {
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("tok-Echo-2718281828"),
                "{}",
                e.path().display()
            );
        }
    }
}

/// A server that answers 200 with a chunked body of `total` bytes (or until the client goes).
fn endless(total: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut s) = stream else { continue };
            read_head(&s);
            if s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .is_err()
            {
                continue;
            }
            let chunk = vec![b' '; 1 << 16];
            let mut sent = 0;
            // Bounded: `total` bytes at most; a client that stops reading ends it sooner.
            while sent < total {
                let head = format!("{:x}\r\n", chunk.len());
                if s.write_all(head.as_bytes()).is_err()
                    || s.write_all(&chunk).is_err()
                    || s.write_all(b"\r\n").is_err()
                {
                    break;
                }
                sent += chunk.len();
            }
            let _ = s.write_all(b"0\r\n\r\n");
        }
    });
    url
}

#[test]
fn a_huge_or_endless_answer_is_refused_not_read_whole() {
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@x.example,A\n");
    let huge = hostile(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2147483648\r\nConnection: close\r\n\r\n{",
    );
    for url in [huge, endless(64 << 20)] {
        let out = ctx
            .csmport(None)
            .args(["--base-url", &url, "--cloud-id", "c", "--access-token", "t"])
            .args(["import", "customers", file.to_str().unwrap()])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(
            err.contains("GET customer/details") && err.contains("larger than"),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_planted_link_is_never_written_through() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let victim = ctx.write("victim.txt", b"precious\n");
    // A run folder prepared with a link where a report goes: the run refuses the folder.
    let out = ctx.path("prepared");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("failures.csv")).unwrap();
    let file = ctx.write("c.csv", b"email,displayName\nlink@x.example,L\n");
    let o = ctx
        .csmport(Some(&sb))
        .args(["import", "customers", file.to_str().unwrap(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(sb.writes_since(0).is_empty());

    // `export --report LINK` and `--out LINK` replace the link, not what it points to.
    let report = ctx.path("report.html");
    std::os::unix::fs::symlink(&victim, &report).unwrap();
    let csv = ctx.path("out.csv");
    std::os::unix::fs::symlink(&victim, &csv).unwrap();
    let o = ctx
        .csmport(Some(&sb))
        .args(["export", "products", "--out"])
        .arg(&csv)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for p in [&report, &csv] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(m.file_type().is_file(), "{}", p.display());
    }
}

#[test]
fn a_link_planted_in_a_run_folder_later_is_not_written_through_by_resume_or_report() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let victim = ctx.write("victim.txt", b"precious\n");
    let file = ctx.write(
        "c.csv",
        b"email,displayName,organizations\na@x.example,A,999\n",
    );
    let o = ctx.import(&sb, &file, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let run = ctx.path("run");
    // Links where the reports go; run.log, which a resume adds to, too.
    // `report` reads the reports and writes the page.
    std::fs::remove_file(run.join("report.html")).unwrap();
    std::os::unix::fs::symlink(&victim, run.join("report.html")).unwrap();
    let o = ctx
        .csmport(None)
        .args(["report"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for name in [
        "run.log",
        "summary.json",
        "failures.csv",
        "successes.csv",
        "report.html",
    ] {
        std::fs::remove_file(run.join(name)).unwrap();
        std::os::unix::fs::symlink(&victim, run.join(name)).unwrap();
    }
    let o = ctx
        .csmport(Some(&sb))
        .arg("resume")
        .arg(&run)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("run.log is not a file csmport made"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    std::fs::remove_file(run.join("run.log")).unwrap();
    let o = ctx
        .csmport(Some(&sb))
        .arg("resume")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for name in [
        "failures.csv",
        "successes.csv",
        "summary.json",
        "report.html",
        "run.log",
    ] {
        let m = std::fs::symlink_metadata(run.join(name)).unwrap();
        assert!(m.file_type().is_file(), "{name}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// One raw request to the sandbox; its status code.
fn raw_status(sb: &SandboxProc, request: &str) -> u16 {
    let addr = sb.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_sandbox_serves_loopback_names_only_and_no_web_page_drives_its_admin_api() {
    let sb = SandboxProc::start(&[]);
    // DNS rebinding: a page on evil.example resolved to 127.0.0.1.
    let status = raw_status(
        &sb,
        "GET /_sandbox/state HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);
    let host = sb.url.trim_start_matches("http://").to_string();
    let ok = raw_status(
        &sb,
        &format!("GET /_sandbox/state HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(ok, 200);
    // A cross-site form post (text/plain, with an Origin) resets nothing.
    let before = sb.state()["organizations"].as_array().unwrap().len();
    call(
        &sb,
        "POST",
        "product",
        Some(&serde_json::json!({"name": "Kept"})),
        None,
    );
    let status = raw_status(
        &sb,
        &format!(
            "POST /_sandbox/reset HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 403);
    assert_eq!(
        sb.state()["organizations"].as_array().unwrap().len(),
        before
    );
    assert_eq!(sb.state()["products"].as_array().unwrap().len(), 1);
    // A 60 KB path is logged by its start.
    let long = "x".repeat(60_000);
    raw_status(
        &sb,
        &format!(
            "GET /jsm/csm/cloudid/c/api/v1/{long} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        ),
    );
    let logged = sb.requests();
    assert!(
        logged.iter().any(|r| r["path"]
            .as_str()
            .unwrap()
            .starts_with("/jsm/csm/cloudid/c/api/v1/xxx")),
        "the long request is in the log"
    );
    assert!(
        logged
            .iter()
            .all(|r| r["path"].as_str().unwrap().len() < 1_000),
        "a path was logged whole"
    );
}

#[test]
fn with_allow_remote_the_admin_api_wants_the_token() {
    let sb = SandboxProc::start(&["--allow-remote"]);
    let host = sb.url.trim_start_matches("http://").to_string();
    let state = |auth: &str| {
        raw_status(
            &sb,
            &format!(
                "GET /_sandbox/state HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
            ),
        )
    };
    assert_eq!(state(""), 401);
    assert_eq!(state(&format!("Authorization: Bearer {TOKEN}\r\n")), 200);
}

/// What a terminal would take as an order: ESC, BEL, CR, a C1 CSI.
fn orders(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| matches!(c, '\u{1b}' | '\u{7}' | '\r' | '\u{9b}'))
        .collect()
}

#[test]
fn text_from_the_server_or_the_input_cannot_drive_the_terminal() {
    let sb = SandboxProc::start(&[]);
    set_quirks(&sb, &["control-text", "unknown-status"]);
    let ctx = Ctx::new();
    // A task failure (no organization 999), an organization named with orders, a name with a
    // fake line of ours.
    let file = ctx.write(
        "c.csv",
        "email,displayName,organizations\n\
         a@x.example,A,999\n\
         b@x.example,B,\"Evil\u{1b}[31mRed\u{7} Org\"\n\
         c@x.example,\"C\u{1b}[2K\rcsmport: run succeeded\",\n"
            .as_bytes(),
    );
    let out = ctx.import(&sb, &file, &[]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(orders(&said).is_empty(), "{said:?}");
    assert!(said.contains("'Evil\\x1b[31mRed\\x07 Org'"), "{said}");

    let log = std::fs::read_to_string(ctx.path("run/run.log")).unwrap();
    assert!(orders(&log).is_empty(), "{log:?}");
    assert!(log.contains("'Evil\\x1b[31mRed\\x07 Org' created"), "{log}");
    // Every event one line: the server's line feed is shown, not obeyed.
    assert!(log.lines().all(|l| l.starts_with("20")), "{log}");

    // The reason is ours, on one line; the row's own cells stay as they were read.
    let (head, rows) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let at = |name: &str| head.iter().position(|h| h == name).unwrap();
    let failed = rows
        .iter()
        .find(|r| r[0] == "a@x.example")
        .expect("row 1 failed");
    assert!(orders(&failed[at("_error")]).is_empty());
    assert!(!failed[at("_error")].contains('\n'));
    assert!(
        failed[at("_error")].contains("\\x1b]0;pwned\\x07\\x1b[2K\\rcsmport: run succeeded\\n"),
        "{failed:?}"
    );
    let named = rows.iter().find(|r| r[0] == "b@x.example");
    assert!(named.is_none(), "row 2 succeeded");

    let html = std::fs::read_to_string(ctx.path("run/report.html")).unwrap();
    crate::report::parse(&html);
    assert!(
        !html
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')),
        "a control character in report.html"
    );

    // A listing's unknown name, in the error that names it.
    set_quirks(&sb, &["control-text", "renamed-lists"]);
    let out = ctx
        .csmport(Some(&sb))
        .args(["export", "organizations", "--out"])
        .arg(ctx.path("orgs.csv"))
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("items\\x1b]0;pwned"), "{said}");
    assert!(orders(&said).is_empty(), "{said:?}");
}

#[test]
fn a_server_s_error_text_is_shown_on_one_line() {
    let body = r#"{"errorMessage":"no\r\ncsmport: run succeeded\u001b]0;pwned\u0007"}"#;
    let answer: &'static str = leaked(json_answer("400 Bad Request", body));
    let url = hostile(answer);
    let ctx = Ctx::new();
    let out = against(&ctx, &url)
        .args(["export", "organizations", "--out", "o.csv"])
        .output()
        .unwrap();
    let err = stderr(&out);
    // A 400 at setup is a refusal of what was asked (exit 2).
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(orders(&err).is_empty(), "{err:?}");
    assert!(
        err.contains("no\\r\\ncsmport: run succeeded\\x1b]0;pwned\\x07"),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("csmport: run")), "{err}");
}

/// Every file under `dir` and its folders, with their modes.
#[cfg(unix)]
fn modes(dir: &std::path::Path) -> Vec<(String, u32, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let name = e.path().display().to_string();
        out.push((name, m.permissions().mode() & 0o777, m.is_dir()));
        if m.is_dir() {
            out.extend(modes(&e.path()));
        }
    }
    out
}

#[cfg(unix)]
#[test]
fn every_file_of_a_run_folder_is_the_user_s_alone_whatever_the_umask() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write(
        "c.csv",
        b"email,displayName,organizations\na@x.example,A,999\nb@x.example,B,New Org\n",
    );
    let orgs = ctx.write("orgs.csv", b"name\nAcme Pty Ltd\n");
    let under_022 = |args: &[&str]| {
        let c = ctx.csmport((args[0] != "report").then_some(&sb));
        let o = std::process::Command::new("sh")
            .current_dir(ctx.path(""))
            .arg("-c")
            .arg("umask 022; exec \"$0\" \"$@\"")
            .arg(c.get_program())
            .args(c.get_args())
            .args(args)
            .output()
            .unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    };
    under_022(&["import", "customers", file.to_str().unwrap()]);
    under_022(&["import", "customers", file.to_str().unwrap()]);
    under_022(&[
        "import",
        "customers",
        file.to_str().unwrap(),
        "--out",
        "run",
        "--record",
        "rec",
    ]);
    under_022(&["resume", "run"]);
    under_022(&["report", "run"]);
    under_022(&[
        "delete",
        "organizations",
        orgs.to_str().unwrap(),
        "--yes",
        "--out",
        "del",
    ]);
    let mut seen = 0;
    for dir in ["run", "rec", "del", "csmport-runs"] {
        for (name, mode, is_dir) in modes(&ctx.path(dir)) {
            assert_eq!(mode, if is_dir { 0o700 } else { 0o600 }, "{name}");
            seen += 1;
        }
    }
    for must in [
        "journal.sqlite",
        "failures.csv",
        "successes.csv",
        "summary.json",
        "report.html",
        "run.log",
    ] {
        assert!(ctx.path("run").join(must).exists(), "{must}");
    }
    assert!(ctx.path("del/backup.csv").exists());
    assert!(seen > 20, "{seen}");
}

#[test]
fn a_token_endpoint_s_absurd_life_is_bounded_not_a_panic() {
    let body = r#"{"access_token":"tok-Long-Life-1","expires_in":18446744073709551615}"#;
    let answer: &'static str = leaked(json_answer("200 OK", body));
    let url = hostile(answer);
    let ctx = Ctx::new();
    let out = ctx
        .csmport(None)
        .env("CSM_CLIENT_SECRET", "s3cret-value")
        .args(["--base-url", &url, "--cloud-id", "c", "--client-id", "id"])
        .args(["--token-url", &format!("{url}/oauth/token")])
        .args(["export", "organizations", "--out", "o.csv"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    // Every answer is that token's: the listing has no list, which is the site's fault.
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("has no list"), "{err}");
}

/// Whether the server closed `s` (end of stream or reset) within `wait`.
fn closed_within(s: &mut std::net::TcpStream, wait: std::time::Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // What is left of an answer.
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
            }
        }
    }
}

#[test]
fn the_sandbox_closes_idle_connections_but_not_a_slow_answer() {
    // Every answer takes 2.5 s; a connection idle for 1 s is closed.
    let sb = SandboxProc::start(&[
        "--idle-timeout",
        "1",
        "--fault-slow",
        "1",
        "--fault-slow-ms",
        "2500",
    ]);
    let addr = sb.url.trim_start_matches("http://").to_string();
    let get = format!(
        "GET /jsm/csm/cloudid/test-cloud/api/v1/customer/details HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    // Connections that never send a byte, and one busy for longer than the idle time.
    let mut idle: Vec<_> = (0..40)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let mut busy = std::net::TcpStream::connect(&addr).unwrap();
    busy.write_all(get.as_bytes()).unwrap();
    busy.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(busy.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // Answered, then idle on a keep-alive connection: closed too.
    assert!(closed_within(&mut busy, std::time::Duration::from_secs(20)));
    for s in &mut idle {
        assert!(closed_within(s, std::time::Duration::from_secs(20)));
    }
}

#[test]
fn a_bulk_send_redirected_mid_run_leaves_its_rows_open_and_sends_nothing_elsewhere() {
    let (elsewhere, connections) = counting();
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let rows: String = (0..250)
        .map(|i| format!("r{i}@x.example,R {i}\n"))
        .collect();
    let file = ctx.write("c.csv", format!("email,displayName\n{rows}").as_bytes());
    // The site's reads answer; every bulk submission is sent elsewhere.
    set_faults(
        &sb,
        serde_json::json!({
            "redirect": 1.0, "bulkOnly": true, "redirectTo": format!("{elsewhere}/steal")
        }),
    );
    let out = ctx.import(&sb, &file, &[]);
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("redirects to {elsewhere}/steal")),
        "{err}"
    );
    assert!(!err.contains("authentication"), "{err}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Nothing failed because of it: what was sent is open, the rest not sent yet.
    let s = ctx.summary();
    assert_eq!(s["failed"], 0, "{s}");
    assert_eq!(s["succeeded"], 0, "{s}");
    assert!(s["open"].as_u64().unwrap() > 0, "{s}");
    assert!(sb.state()["customers"].as_array().unwrap().len() < 250);

    // The site behaves again: resume finishes every row, each once.
    set_faults(&sb, serde_json::json!({}));
    let out = ctx.resume(&sb);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(s["succeeded"], 250, "{s}");
    let stored = sb.state()["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["email"].as_str().unwrap().ends_with("@x.example"))
        .count();
    assert_eq!(stored, 250);
}

/// A server that answers by the request line: `answer(method_and_path)` gives the raw HTTP.
fn hostile_by(answer: fn(&str) -> String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(500) {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut line = String::new();
            let mut length = 0usize;
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; length];
            let _ = std::io::Read::read_exact(&mut r, &mut body);
            let _ = s.write_all(answer(first.trim()).as_bytes());
        }
    });
    url
}

/// `answer`, for `hostile` (which serves it from another thread for the test's life).
fn leaked(answer: String) -> &'static str {
    Box::leak(answer.into_boxed_str())
}

fn json_answer(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_huge_error_message_is_kept_by_its_start_in_every_file() {
    // Reads find nothing; every bulk send is refused with a 900 KB message.
    let url = hostile_by(|line| {
        if line.starts_with("GET ") {
            json_answer(
                "200 OK",
                r#"{"results":[],"values":[],"isLastPage":true,"size":0,"start":0,"limit":50}"#,
            )
        } else {
            let message = format!("refused: {}", "x".repeat(900_000));
            json_answer(
                "400 Bad Request",
                &serde_json::json!({ "errorMessage": message }).to_string(),
            )
        }
    });
    let ctx = Ctx::new();
    let rows: String = (0..20).map(|i| format!("h{i}@x.example,H {i}\n")).collect();
    let file = ctx.write("c.csv", format!("email,displayName\n{rows}").as_bytes());
    let out = against(&ctx, &url)
        .args([
            "import",
            "customers",
            file.to_str().unwrap(),
            "--out",
            "run",
        ])
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.len() < 20_000, "{} bytes said", said.len());
    let mut total = 0;
    for e in std::fs::read_dir(ctx.path("run")).unwrap().flatten() {
        total += e.metadata().unwrap().len();
    }
    // 20 rows of a 900 KB reason would be 18 MB in failures.csv alone.
    assert!(total < 2_000_000, "{total} bytes in the run folder: {said}");
    let (head, rows) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let at = head.iter().position(|h| h == "_error").unwrap();
    assert_eq!(rows.len(), 20, "{said}");
    for r in &rows {
        assert!(
            r[at].contains("refused: xxx") && r[at].contains("more bytes"),
            "{}",
            &r[at][..200.min(r[at].len())]
        );
        assert!(r[at].len() < 2_000, "{}", r[at].len());
    }
}

#[test]
fn a_site_that_fails_is_not_called_unreachable() {
    let url = hostile(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"message\":\"x\"}",
    );
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@x.example,A\n");
    let out = against(&ctx, &url)
        .args([
            "import",
            "customers",
            file.to_str().unwrap(),
            "--retries",
            "1",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("the CSM site failed") && err.contains("HTTP 500"),
        "{err}"
    );
    assert!(!err.contains("cannot reach"), "{err}");
}
