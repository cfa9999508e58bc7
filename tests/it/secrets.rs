//! Tokens from files and standard input, and nowhere in what a run writes or prints.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use crate::common::*;

const SECRET: &str = "tok-Q7f2x-only-here";

/// Every file below `dir`, as text (lossy).
fn all_text(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_text(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    out
}

#[test]
fn a_token_from_a_file_or_stdin_works_and_is_written_nowhere() {
    let sb = SandboxProc::start(&["--token", SECRET]);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email,displayName\na@example.com,A\n");
    let token = ctx.write("token", format!("{SECRET}\n").as_bytes());
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = ["--base-url", &sb.url, "--cloud-id", "c"];
    let out = ctx
        .csmport(None)
        .args(target)
        .arg("--access-token-file")
        .arg(&token)
        .args(["import", "customers"])
        .arg(&file)
        .args(["--out", "run", "--record", "rec", "--json", "-vv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Basic auth with the API token on standard input.
    let mut child = ctx
        .csmport(None)
        .args(target)
        .args(["--email", "ops@example.com", "--api-token-stdin"])
        .args(["import", "customers"])
        .arg(&file)
        .args(["--out", "run2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{SECRET}").unwrap();
    let out2 = child.wait_with_output().unwrap();
    assert_eq!(out2.status.code(), Some(0), "{}", stderr(&out2));
    for o in [&out, &out2] {
        assert!(!stdout(o).contains(SECRET) && !stderr(o).contains(SECRET));
    }
    // -vv: a line per attempt, with its key, and the log's lines; never the token.
    let err = stderr(&out);
    assert!(
        err.contains("POST ") && err.contains("-> 202") && err.contains("Idempotency-Key "),
        "{err}"
    );
    assert!(err.contains("submitted with key"), "{err}");
    let files = all_text(&ctx.path("run"))
        .into_iter()
        .chain(all_text(&ctx.path("run2")))
        .chain(all_text(&ctx.path("rec")))
        .collect::<Vec<_>>();
    assert!(
        files.len() >= 8,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, text) in &files {
        assert!(!text.contains(SECRET), "the token is in {path}");
    }
}

#[test]
fn a_token_others_can_read_or_with_spaces_is_refused() {
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email\na@example.com\n");
    let token = ctx.write("token", format!("{SECRET}\n").as_bytes());
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = |extra: &[&str], env: Option<&str>| {
        let mut c = ctx.csmport(None);
        c.args(["--base-url", "http://127.0.0.1:9", "--cloud-id", "c"])
            .args(extra)
            .args(["import", "customers"])
            .arg(&file);
        if let Some(t) = env {
            c.env("CSM_ACCESS_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = run(&["--access-token-file", token.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));
    let out = run(&[], Some("tok en"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the token has a space at character 4"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("tok en"), "{}", stderr(&out));
}

#[test]
fn a_wrong_token_against_the_sandbox_says_which_one_it_takes() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = ctx.write("c.csv", b"email\na@example.com\n");
    let out = ctx
        .csmport(None)
        .args([
            "--base-url",
            &sb.url,
            "--cloud-id",
            "c",
            "--access-token",
            "foo",
        ])
        .args(["import", "customers"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("its --token; the default is sandbox-token"),
        "{all}"
    );
}
