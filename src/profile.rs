//! Configuration file and named profiles: `csmport.toml` (`--config FILE`, else the platform's
//! config directory) holds `[profiles.NAME]` tables of target and run settings, chosen with
//! `--profile NAME` or `CSM_PROFILE`. Applied to the parsed command line before any command
//! runs: a flag or environment variable wins over the profile, the profile over the default.
//! Neighbours: `cli` (what it fills in), `config` (which turns the result into a target),
//! `cmd::config_show` (which prints where every value came from).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use serde::Deserialize;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// The file's name in the platform's config directory.
pub const FILE_NAME: &str = "csmport.toml";

#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One profile: the long flag names with `_`. Secrets are not kept here (use the environment
/// or a token file).
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub base_url: Option<String>,
    pub cloud_id: Option<String>,
    pub site: Option<String>,
    pub email: Option<String>,
    pub service_desk: Option<String>,
    pub rate: Option<f64>,
    pub batch_size: Option<usize>,
    pub max_tasks: Option<usize>,
}

/// Where a setting's value came from, for `config show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    Profile(String),
    Default,
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "flag"),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::Profile(p) => write!(f, "profile {p}"),
            Source::Default => write!(f, "default"),
            Source::Unset => write!(f, "not set"),
        }
    }
}

/// The config file csmport reads: `--config`, else `csmport.toml` in the platform's config
/// directory (which may not exist).
pub fn default_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = if cfg!(windows) {
        env("APPDATA")
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Application Support"))
    } else {
        env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config")))
    };
    dir.map(|d| d.join("csmport").join(FILE_NAME))
}

/// Parses a config file; errors name the file, the line and the key.
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, Error> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                // The line itself names the key, whatever toml's message says.
                let shown = text.lines().nth(line - 1).unwrap_or("").trim();
                format!(" (line {line}: `{shown}`)")
            })
            .unwrap_or_default();
        Error::Usage(format!(
            "{}{at}: {}{}",
            path.display(),
            e.message().trim_end(),
            secret_hint(e.message())
        ))
    })
}

/// Where a secret goes instead of the config file, when the refused key is one.
fn secret_hint(message: &str) -> &'static str {
    const SECRETS: [&str; 6] = [
        "`api_token`",
        "`access_token`",
        "`token`",
        "`client_secret`",
        "`password`",
        "`secret`",
    ];
    if SECRETS
        .iter()
        .any(|k| message.contains(&format!("unknown field {k}")))
    {
        "; secrets are not kept in the config file (it is often shared or synced): use the environment (CSM_API_TOKEN, CSM_ACCESS_TOKEN, CSM_CLIENT_SECRET) or a file readable by you alone (--api-token-file, --access-token-file, --client-secret-file)"
    } else {
        ""
    }
}

/// The profile chosen, by name, from the file (None when no profile is asked for).
pub fn chosen(cli: &Cli) -> Result<Option<(String, Profile, PathBuf)>, Error> {
    let Some(name) = cli.session.profile.clone().filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    let path = match &cli.session.config {
        Some(p) => p.clone(),
        None => default_path().ok_or_else(|| {
            Error::Usage(format!(
                "--profile {name}: there is no config directory to find {FILE_NAME} in; give --config FILE"
            ))
        })?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Usage(format!(
            "--profile {name}: the config file {} cannot be read ({e})",
            path.display()
        ))
    })?;
    let file = parse(&path, &text)?;
    match file.profiles.get(&name) {
        Some(p) => Ok(Some((name, p.clone(), path))),
        None => Err(Error::Usage(format!(
            "--profile {name}: {} has no such profile; it has: {}",
            path.display(),
            if file.profiles.is_empty() {
                "none".to_string()
            } else {
                file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        ))),
    }
}

/// Whether a subcommand's argument kept its default (neither flag nor environment gave it).
fn defaulted(m: Option<&clap::ArgMatches>, id: &str) -> bool {
    m.and_then(|m| m.value_source(id))
        .is_none_or(|s| s == ValueSource::DefaultValue)
}

/// Fills in what the profile sets and neither a flag nor the environment did.
pub fn apply(cli: &mut Cli, matches: &clap::ArgMatches) -> Result<(), Error> {
    let Some((_, p, _)) = chosen(cli)? else {
        return Ok(());
    };
    let t = &mut cli.target;
    for (field, value) in [
        (&mut t.base_url, &p.base_url),
        (&mut t.cloud_id, &p.cloud_id),
        (&mut t.site, &p.site),
        (&mut t.email, &p.email),
    ] {
        if field.is_none() {
            field.clone_from(value);
        }
    }
    let sub = matches.subcommand().map(|(_, m)| m);
    // `--rate` before the command is a flag too.
    let rate_given = matches.value_source("rate") == Some(ValueSource::CommandLine);
    let p_rate = p.rate.filter(|_| !rate_given);
    // A value the command line left at its default takes the profile's.
    fn over<T: Copy>(field: &mut T, value: Option<T>, sub: Option<&clap::ArgMatches>, id: &str) {
        if let Some(v) = value
            && defaulted(sub, id)
        {
            *field = v;
        }
    }
    let desk = |field: &mut Option<String>| {
        if field.is_none() {
            field.clone_from(&p.service_desk);
        }
    };
    match &mut cli.command {
        Command::Import(crate::cli::ImportArgs { run: r, .. })
        | Command::Retry(crate::cli::RetryArgs { run: r, .. }) => {
            desk(&mut r.service_desk);
            over(&mut r.rate, p_rate, sub, "rate");
            over(&mut r.batch_size, p.batch_size, sub, "batch_size");
            over(&mut r.max_tasks, p.max_tasks, sub, "max_tasks");
        }
        Command::Export(a) => {
            desk(&mut a.service_desk);
            over(&mut a.rate, p_rate, sub, "rate");
        }
        Command::Doctor(a) => desk(&mut a.service_desk),
        _ => {}
    }
    Ok(())
}

/// `csmport config show`: every setting a profile can hold, and the credentials, with the
/// value in effect and where it came from; secrets masked.
pub fn show(cli: &Cli, matches: &clap::ArgMatches) -> Result<Vec<(String, String, Source)>, Error> {
    let chosen = chosen(cli)?;
    let profile = chosen.as_ref().map(|(n, p, _)| (n.clone(), p));
    // Globals are given before or after the subcommand: look in both.
    let sub = matches
        .subcommand()
        .and_then(|(_, m)| m.subcommand().map(|(_, m)| m));
    // Both copies of an option read the same variable: a flag in either one wins.
    let source_of = |id: &str, env: &'static str| {
        let sources: Vec<ValueSource> = [Some(matches), sub]
            .into_iter()
            .flatten()
            .filter_map(|m| m.value_source(id))
            .collect();
        if sources.contains(&ValueSource::CommandLine) {
            Some(Source::Flag)
        } else if sources.contains(&ValueSource::EnvVariable) {
            Some(Source::Env(env))
        } else {
            None
        }
    };
    let mut out = Vec::new();
    let t = &cli.target;
    let from_profile = |v: Option<&String>| {
        v.map(|_| Source::Profile(profile.as_ref().map(|p| p.0.clone()).unwrap_or_default()))
    };
    for (key, value, env, in_profile) in [
        (
            "base_url",
            &t.base_url,
            "CSM_BASE_URL",
            profile.as_ref().and_then(|p| p.1.base_url.as_ref()),
        ),
        (
            "cloud_id",
            &t.cloud_id,
            "CSM_CLOUD_ID",
            profile.as_ref().and_then(|p| p.1.cloud_id.as_ref()),
        ),
        (
            "site",
            &t.site,
            "CSM_SITE",
            profile.as_ref().and_then(|p| p.1.site.as_ref()),
        ),
        (
            "email",
            &t.email,
            "CSM_EMAIL",
            profile.as_ref().and_then(|p| p.1.email.as_ref()),
        ),
    ] {
        let (shown, source) = match (value, source_of(key, env)) {
            (Some(v), Some(s)) => (v.clone(), s),
            (Some(v), None) => (v.clone(), from_profile(in_profile).unwrap_or(Source::Flag)),
            (None, _) if key == "base_url" => (
                crate::site::api::DEFAULT_BASE_URL.to_string(),
                Source::Default,
            ),
            (None, _) => ("-".into(), Source::Unset),
        };
        out.push((key.to_string(), shown, source));
    }
    for (key, value, env) in [
        ("access_token", &t.access_token, "CSM_ACCESS_TOKEN"),
        ("api_token", &t.api_token, "CSM_API_TOKEN"),
    ] {
        let file = match key {
            "access_token" => t.access_token_file.as_ref(),
            _ => t.api_token_file.as_ref(),
        };
        let (shown, source) = match (file, value) {
            (Some(f), _) => (format!("******** (from {})", f.display()), Source::Flag),
            (None, Some(_)) => (
                "********".to_string(),
                source_of(key, env).unwrap_or(Source::Flag),
            ),
            (None, None) => ("-".into(), Source::Unset),
        };
        out.push((key.to_string(), shown, source));
    }
    // Tokens that renew: the client id and the token endpoint shown, the secret and the
    // command masked (a command line may hold a secret).
    for (key, value, env) in [
        ("client_id", &t.client_id, "CSM_CLIENT_ID"),
        ("token_url", &t.token_url, "CSM_TOKEN_URL"),
    ] {
        let (shown, source) = match value {
            Some(v) => (v.clone(), source_of(key, env).unwrap_or(Source::Flag)),
            None if key == "token_url" && t.client_id.is_some() => (
                crate::site::api::DEFAULT_TOKEN_URL.to_string(),
                Source::Default,
            ),
            None => ("-".into(), Source::Unset),
        };
        out.push((key.to_string(), shown, source));
    }
    let secret_env = std::env::var("CSM_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let (shown, source) = match (&t.client_secret_file, secret_env) {
        (Some(f), _) => (format!("******** (from {})", f.display()), Source::Flag),
        (None, Some(_)) => ("********".to_string(), Source::Env("CSM_CLIENT_SECRET")),
        (None, None) => ("-".into(), Source::Unset),
    };
    out.push(("client_secret".into(), shown, source));
    let (shown, source) = match &t.access_token_command {
        Some(_) => (
            "******** (a command)".to_string(),
            source_of("access_token_command", "CSM_ACCESS_TOKEN_COMMAND").unwrap_or(Source::Flag),
        ),
        None => ("-".into(), Source::Unset),
    };
    out.push(("access_token_command".into(), shown, source));
    let p = profile.as_ref().map(|p| p.1);
    let name = || Source::Profile(profile.as_ref().map(|p| p.0.clone()).unwrap_or_default());
    let env_rate = std::env::var("CSM_RATE").ok().filter(|r| !r.is_empty());
    let (rate, rate_source) = match (env_rate, p.and_then(|p| p.rate)) {
        _ if cli.rate.is_some() => (cli.rate.unwrap_or_default().to_string(), Source::Flag),
        (Some(r), _) => (r, Source::Env("CSM_RATE")),
        (None, Some(r)) => (r.to_string(), name()),
        (None, None) => (crate::options::DEFAULT_RATE.to_string(), Source::Default),
    };
    let or_default = |v: Option<String>, d: String| match v {
        Some(v) => (v, name()),
        None => (d, Source::Default),
    };
    let sd = p.and_then(|p| p.service_desk.clone());
    out.push((
        "service_desk".into(),
        sd.clone().unwrap_or_else(|| "-".into()),
        if sd.is_some() { name() } else { Source::Unset },
    ));
    out.push(("rate".into(), rate, rate_source));
    let (v, s) = or_default(
        p.and_then(|p| p.batch_size).map(|v| v.to_string()),
        crate::options::DEFAULT_BATCH_SIZE.to_string(),
    );
    out.push(("batch_size".into(), v, s));
    let (v, s) = or_default(
        p.and_then(|p| p.max_tasks).map(|v| v.to_string()),
        crate::options::DEFAULT_TASKS.to_string(),
    );
    out.push(("max_tasks".into(), v, s));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_in_the_config_file_is_refused_naming_where_it_goes() {
        let e = parse(Path::new("c.toml"), "[profiles.x]\napi_token = \"abc\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("CSM_API_TOKEN"), "{e}");
        assert!(e.contains("--api-token-file"), "{e}");
        let e = parse(Path::new("c.toml"), "[profiles.x]\nrat = 1\n")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secrets"), "{e}");
    }

    #[test]
    fn the_documented_shape_parses_and_mistakes_name_line_and_key() {
        let good = r#"
[profiles.prod]
base_url = "https://api.atlassian.com"
cloud_id = "0000-aaaa"
site = "https://acme.atlassian.net"
email = "ops@acme.example"
service_desk = "1"
rate = 10
"#;
        let f = parse(Path::new("c.toml"), good).unwrap();
        let p = &f.profiles["prod"];
        assert_eq!(p.cloud_id.as_deref(), Some("0000-aaaa"));
        assert_eq!(p.rate, Some(10.0));
        let cases = [
            ("[profiles.prod]\ncloud = \"x\"\n", "line 2", "cloud"),
            ("[profiles.prod]\nrate = \"fast\"\n", "line 2", "rate"),
            ("[profiles.prod\n", "line 1", ""),
        ];
        for (text, line, key) in cases {
            let e = parse(Path::new("c.toml"), text).unwrap_err().to_string();
            assert!(
                e.starts_with("c.toml") && e.contains(line) && e.contains(key),
                "{text:?}: {e}"
            );
        }
    }
}
