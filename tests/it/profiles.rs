//! Config file and profiles: a profile sets the target and run settings, flags and the
//! environment win over it, `config show` says where each value came from.

use crate::common::*;

#[test]
fn a_profile_sets_the_target_and_flags_win_over_it() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let config = ctx.write(
        "csmport.toml",
        format!(
            "[profiles.prod]\nbase_url = \"{}\"\ncloud_id = \"from-profile\"\nemail = \"ops@acme.example\"\nservice_desk = \"1\"\nbatch_size = 7\n\n[profiles.test]\ncloud_id = \"t\"\n",
            sb.url
        )
        .as_bytes(),
    );
    let file = ctx.write(
        "c.csv",
        b"email,displayName\na@example.com,A\nb@example.com,B\n",
    );
    let out = ctx
        .csmport(None)
        .args(["--config"])
        .arg(&config)
        .args(["import", "customers"])
        .arg(&file)
        .args(["--profile", "prod", "--out", "run"])
        .env("CSM_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c = rusqlite::Connection::open(ctx.path("run/journal.sqlite")).unwrap();
    let (cloud, options): (String, String) = c
        .query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'cloud_id'), (SELECT value FROM meta WHERE key = 'options')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(cloud, "from-profile");
    assert!(options.contains("\"batch_size\":7"), "{options}");

    let show = |extra: &[&str]| {
        let out = ctx
            .csmport(None)
            .arg("--config")
            .arg(&config)
            .args(extra)
            .args(["config", "show", "--json"])
            .env("CSM_API_TOKEN", "secret-value-1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            !stdout(&out).contains("secret-value-1") && !stderr(&out).contains("secret-value-1")
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let s = show(&["--profile", "prod", "--cloud-id", "from-flag"]);
    assert_eq!(
        s["cloud_id"],
        serde_json::json!({"value": "from-flag", "source": "flag"})
    );
    assert_eq!(s["email"]["source"], "profile prod", "{s}");
    assert_eq!(
        s["batch_size"],
        serde_json::json!({"value": "7", "source": "profile prod"})
    );
    assert_eq!(s["rate"]["source"], "environment CSM_RATE", "{s}");
    assert_eq!(s["api_token"]["value"], "********");
    assert_eq!(s["max_tasks"]["source"], "default");
}

#[test]
fn an_unknown_profile_or_a_malformed_file_is_refused_with_where() {
    let ctx = Ctx::new();
    let config = ctx.write(
        "c.toml",
        b"[profiles.prod]\ncloud_id = \"x\"\n\n[profiles.test]\n",
    );
    let run = |config: &std::path::Path, profile: &str| {
        ctx.csmport(None)
            .arg("--config")
            .arg(config)
            .args(["--profile", profile, "config", "show"])
            .output()
            .unwrap()
    };
    let out = run(&config, "staging");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("has no such profile; it has: prod, test"),
        "{}",
        stderr(&out)
    );
    let bad = ctx.write(
        "bad.toml",
        b"[profiles.prod]\ncloud_id = \"x\"\nratee = 3\n",
    );
    let out = run(&bad, "prod");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml (line 3: `ratee = 3`)") && err.contains("ratee"),
        "{err}"
    );
}
