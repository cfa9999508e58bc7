//! Resolves flags and environment into a typed `client::Target`, or a clear configuration error.
//! Used by the commands; reads `cli` only.

use crate::cli::TargetArgs;
use crate::error::Error;
use crate::site::api::DEFAULT_BASE_URL;
use crate::site::client::{Auth, Target};

pub fn target(args: &TargetArgs) -> Result<Target, Error> {
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
    let cloud_id = args.cloud_id.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        Error::Usage(format!(
            "no cloud id: set --cloud-id or CSM_CLOUD_ID (open https://YOUR-SITE.atlassian.net/{} to see it), or add --sandbox to try csmport locally",
            crate::site::api::paths::TENANT_INFO
        ))
    })?;
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.trim().is_empty());
    let auth = match (
        nonempty(&args.access_token),
        nonempty(&args.email),
        nonempty(&args.api_token),
    ) {
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
        }
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
