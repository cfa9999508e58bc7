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

#[test]
fn every_option_goes_before_the_command_or_after_it_and_show_names_the_flag() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let config = ctx.write("c.toml", b"[profiles.p]\nrate = 2\nbatch_size = 1\n");
    let file = ctx.write("c.csv", b"email,displayName\na@example.com,A\n");
    let rate_of = |run: &str| {
        let c = rusqlite::Connection::open(ctx.path(&format!("{run}/journal.sqlite"))).unwrap();
        let options: String = c
            .query_row("SELECT value FROM meta WHERE key = 'options'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&options).unwrap();
        v["rate"].as_f64().unwrap()
    };
    // Before the command it wins over the profile and the environment, as after it does.
    for (args, run, want) in [
        (&["--rate", "40", "import"][..], "before", 40.0),
        (&["import", "--rate", "30"], "after", 30.0),
        (&["--rate", "40", "import", "--rate", "30"], "both", 30.0),
    ] {
        let out = ctx
            .csmport(Some(&sb))
            .arg("--config")
            .arg(&config)
            .args(["--profile", "p"])
            .args(args)
            .arg("customers")
            .arg(&file)
            .args(["--out", run])
            .env("CSM_RATE", "7")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(rate_of(run), want, "{args:?}");
    }
    let out = ctx
        .csmport(None)
        .args(["--rate", "3", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--rate is not an option of `csmport status`"));

    // A flag after the command is a flag, though the variable is set too.
    let out = ctx
        .csmport(None)
        .args(["--rate", "3", "config", "show", "--cloud-id", "y", "--json"])
        .env("CSM_CLOUD_ID", "x")
        .env("CSM_RATE", "7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        s["cloud_id"],
        serde_json::json!({"value": "y", "source": "flag"})
    );
    assert_eq!(
        s["rate"],
        serde_json::json!({"value": "3", "source": "flag"})
    );
}
