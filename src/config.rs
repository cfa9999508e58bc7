//! Resolves flags and environment into a typed `client::Target`, or a clear configuration error.
//! Used by the commands; reads `cli` only.

use std::path::Path;

use crate::cli::TargetArgs;
use crate::error::Error;
use crate::site::api::DEFAULT_BASE_URL;
use crate::site::client::token::{self, Source, Tokens};
use crate::site::client::{Auth, Target};

pub fn target(args: &TargetArgs) -> Result<Target, Error> {
    target_or(args, ", or add --sandbox to try csmport locally")
}

/// `target`, with `missing` said after the line asking for a cloud id (what else the user can
/// do; `resume` names the site its run wrote to instead of the sandbox).
pub fn target_or(args: &TargetArgs, missing: &str) -> Result<Target, Error> {
    let base_url = args
        .base_url
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
        return Err(Error::Usage(format!(
            "--base-url / CSM_BASE_URL '{base_url}' must start with https:// or http://"
        )));
    }
    for (url, flag) in [
        (Some(base_url.as_str()), "--base-url / CSM_BASE_URL"),
        (args.site.as_deref(), "--site / CSM_SITE"),
    ] {
        if let Some(url) = url
            && has_user_info(url)
        {
            // Never echo the URL: its user part may be a password.
            return Err(Error::Usage(format!(
                "{flag} holds a user name or password (https://user:password@host): give the address alone, and the credentials with --email and --api-token, a token option or --client-id"
            )));
        }
    }
    let cloud_id = args.cloud_id.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        Error::Usage(format!(
            "no cloud id: set --cloud-id or CSM_CLOUD_ID (open https://YOUR-SITE.atlassian.net/{} to see it){missing}",
            crate::site::api::paths::TENANT_INFO
        ))
    })?;
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.trim().is_empty());
    let access_token = match &args.access_token_file {
        Some(f) => Some(token_file(f, "--access-token-file")?),
        None => nonempty(&args.access_token),
    };
    let api_token = match (&args.api_token_file, args.api_token_stdin) {
        (Some(f), _) => Some(token_file(f, "--api-token-file")?),
        (None, true) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                Error::Usage(format!(
                    "--api-token-stdin: standard input cannot be read ({e})"
                ))
            })?;
            Some(one_token(&text, "--api-token-stdin (standard input)")?)
        }
        (None, false) => nonempty(&args.api_token),
    };
    for (t, what) in [
        (&access_token, "--access-token / CSM_ACCESS_TOKEN"),
        (&api_token, "--api-token / CSM_API_TOKEN"),
    ] {
        if let Some(t) = t {
            one_token(t, what)?;
        }
    }
    // Tokens that renew themselves first: a client id, a command, a file read again on a 401.
    let renewing = renewing_source(args, access_token.as_deref())?;
    let auth = match (access_token, nonempty(&args.email), api_token) {
        _ if let Some((source, first)) = renewing => {
            Auth::Renewing(std::sync::Arc::new(Tokens::new(source, first)))
        }
        (Some(t), _, _) => Auth::Bearer(t),
        (None, Some(email), Some(token)) => Auth::Basic { email, token },
        (None, Some(_), None) => {
            return Err(Error::Usage(
                "--email / CSM_EMAIL is set but --api-token / CSM_API_TOKEN is not".into(),
            ));
        }
        (None, None, Some(_)) => {
            return Err(Error::Usage(
                "--api-token / CSM_API_TOKEN is set but --email / CSM_EMAIL is not".into(),
            ));
        }
        (None, None, None) => {
            return Err(Error::Usage(
                "no credentials: set CSM_EMAIL and CSM_API_TOKEN (Basic), or CSM_ACCESS_TOKEN (Bearer), or the matching flags"
                    .into(),
            ));
        }
    };
    Ok(Target {
        base_url: base_url.trim_end_matches('/').to_string(),
        cloud_id: cloud_id.trim().to_string(),
        auth,
        site: args.site.clone(),
        record: args.record.clone(),
    })
}

/// Where a token that renews itself comes from, if the flags name one (client credentials, a
/// command, a token file), with the token already read (the file's, checked at the start).
fn renewing_source(
    args: &TargetArgs,
    access_token: Option<&str>,
) -> Result<Option<(Source, Option<String>)>, Error> {
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.trim().is_empty());
    if let Some(id) = nonempty(&args.client_id) {
        let secret = match &args.client_secret_file {
            Some(f) => token_file(f, "--client-secret-file")?,
            None => match std::env::var("CSM_CLIENT_SECRET") {
                Ok(s) if !s.trim().is_empty() => one_token(&s, "CSM_CLIENT_SECRET")?,
                _ => {
                    return Err(Error::Usage(
                        "--client-id / CSM_CLIENT_ID is set but the client secret is not: give --client-secret-file FILE or set CSM_CLIENT_SECRET".into(),
                    ));
                }
            },
        };
        let token_url = nonempty(&args.token_url)
            .unwrap_or_else(|| crate::site::api::DEFAULT_TOKEN_URL.to_string());
        if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
            return Err(Error::Usage(format!(
                "--token-url / CSM_TOKEN_URL '{token_url}' must start with https:// or http://"
            )));
        }
        let source = Source::ClientCredentials {
            token_url,
            client_id: id.trim().to_string(),
            client_secret: secret,
        };
        return Ok(Some((source, None)));
    }
    if let Some(cmd) = nonempty(&args.access_token_command) {
        return Ok(Some((Source::Command(cmd), None)));
    }
    Ok(match (&args.access_token_file, access_token) {
        (Some(f), Some(first)) => Some((Source::File(f.clone()), Some(first.to_string()))),
        _ => None,
    })
}

/// Whether a URL's authority has a user part (`user:password@host`).
fn has_user_info(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// `--…-file`: one token, in a file only its owner can read (`token::read_file`).
fn token_file(path: &Path, flag: &str) -> Result<String, Error> {
    token::read_file(path, flag).map_err(|e| Error::Usage(e.0))
}

/// `text` as one token, or why not, naming `from` but never the token (`token::one_token`).
fn one_token(text: &str, from: &str) -> Result<String, Error> {
    token::one_token(text, from).map_err(|e| Error::Usage(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        cloud: Option<&str>,
        at: Option<&str>,
        email: Option<&str>,
        tok: Option<&str>,
    ) -> TargetArgs {
        TargetArgs {
            base_url: None,
            cloud_id: cloud.map(str::to_string),
            access_token: at.map(str::to_string),
            email: email.map(str::to_string),
            api_token: tok.map(str::to_string),
            site: None,
            record: None,
            ..TargetArgs::default()
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret-token\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = token_file(&f, "--api-token-file").unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(token_file(&f, "--api-token-file").unwrap(), "s3cret-token");
    }

    #[test]
    fn tokens_are_one_word() {
        let cases = [
            ("abc", Ok("abc")),
            ("abc\n", Ok("abc")),
            ("abc\r\n", Ok("abc")),
            ("", Err("the token is empty")),
            ("\n", Err("the token is empty")),
            ("ab c", Err("a space at character 3 of 4")),
            ("abc\n\n", Err("a line break at character 4 of 4")),
            (" abc", Err("a space at character 1 of 4")),
            ("a\tb", Err("a tab at character 2 of 3")),
        ];
        for (text, want) in cases {
            let got = one_token(text, "x").map_err(|e| e.to_string());
            match want {
                Ok(t) => assert_eq!(got.as_deref(), Ok(t), "{text:?}"),
                Err(w) => assert!(got.as_ref().unwrap_err().contains(w), "{text:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn a_url_with_a_user_part_is_refused_without_showing_it() {
        let mut a = args(Some("c"), Some("at"), None, None);
        a.base_url = Some("https://me:s3cret@api.example".into());
        let e = target(&a).unwrap_err().to_string();
        assert!(e.contains("--base-url") && !e.contains("s3cret"), "{e}");
        let mut a = args(Some("c"), Some("at"), None, None);
        a.site = Some("https://u@acme.atlassian.net/x@y".into());
        assert!(target(&a).unwrap_err().to_string().contains("--site"));
        // An `@` after the host is a path, not a user.
        assert!(!has_user_info("https://api.example/a@b"));
    }

    #[test]
    fn resolution() {
        let t = target(&args(Some("c"), Some("at"), None, None)).unwrap();
        assert!(matches!(t.auth, Auth::Bearer(_)));
        assert_eq!(t.base_url, DEFAULT_BASE_URL);
        let t = target(&args(Some("c"), None, Some("e@x.io"), Some("t"))).unwrap();
        assert!(matches!(t.auth, Auth::Basic { .. }));
        for (a, want) in [
            (args(None, Some("at"), None, None), "no cloud id"),
            (args(Some("c"), None, None, None), "no credentials"),
            (args(Some("c"), None, Some("e"), None), "--api-token"),
            (args(Some("c"), None, None, Some("t")), "--email"),
        ] {
            let e = target(&a).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
