//! `csmport sandbox`: runs the local CSM emulator until Ctrl-C. Orchestration only; the server
//! is `crate::sandbox`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::SandboxArgs;
use crate::error::Error;
use crate::sandbox::faults::Faults;
use crate::sandbox::{Config, Sandbox};

pub async fn run(args: &SandboxArgs) -> Result<(), Error> {
    if !args.allow_remote && !is_loopback(&args.addr) {
        return Err(Error::Usage(format!(
            "--addr {} is not a loopback address; the sandbox has no real security, pass --allow-remote if you mean it",
            args.addr
        )));
    }
    if let Some(r) = args.rate_limit
        && !(r.is_finite() && r > 0.0)
    {
        return Err(Error::Usage(format!(
            "--rate-limit must be a positive number, got {r}"
        )));
    }
    if !(args.task_jitter.is_finite() && (0.0..=10.0).contains(&args.task_jitter)) {
        return Err(Error::Usage(format!(
            "--task-jitter must be a number from 0 to 10, got {}",
            args.task_jitter
        )));
    }
    if !(args.task_tail.is_finite() && (0.0..=1.0).contains(&args.task_tail)) {
        return Err(Error::Usage(format!(
            "--task-tail must be a share from 0 to 1, got {}",
            args.task_tail
        )));
    }
    if !(args.task_tail_factor.is_finite() && (1.0..=1000.0).contains(&args.task_tail_factor)) {
        return Err(Error::Usage(format!(
            "--task-tail-factor must be a number from 1 to 1000, got {}",
            args.task_tail_factor
        )));
    }
    let config = Config {
        token: args.token.clone(),
        cloud_id: Some(args.cloud_id.trim())
            .filter(|c| !c.is_empty())
            .unwrap_or(crate::sandbox::http::SANDBOX_CLOUD_ID)
            .to_string(),
        task_latency: Duration::from_millis(args.task_latency_ms),
        item_latency: Duration::from_millis(args.item_latency_ms),
        task_jitter: args.task_jitter,
        task_tail: args.task_tail,
        task_tail_factor: args.task_tail_factor,
        listing_lag: Duration::from_millis(args.listing_lag_ms),
        client: args.client_id.clone().zip(args.client_secret.clone()),
        token_ttl: Duration::from_secs(args.token_ttl.max(1)),
        idle: Duration::from_secs(args.idle_timeout),
        strict_cloud_id: args.strict_cloud_id,
        allow_remote: args.allow_remote,
        scopes: args.scopes.clone(),
        max_tasks: args.max_tasks.max(1),
        task_retention: duration_arg("--task-retention", &args.task_retention)?,
        stale_task: duration_arg("--stale-task-after", &args.stale_task_after)?,
        require_experimental: !args.no_experimental_check,
        idempotency_conflict_status: args.idempotency_conflict_status,
        slots_before_keys: args.slots_before_keys,
        rate_limit: args.rate_limit,
        burst: args.burst,
        omit_retry_after: args.no_retry_after,
        html_429: args.html_429,
        faults: Faults {
            seed: None,
            error500: args.fault_500,
            error502: args.fault_502,
            error503: args.fault_503,
            error503_retry_after: args.fault_503_retry_after,
            drop_before: args.fault_drop_before,
            drop_after: args.fault_drop_after,
            redirect: args.fault_redirect,
            redirect_to: None,
            slow: args.fault_slow,
            slow_ms: args.fault_slow_ms,
            slow_after_applying: args.fault_slow_after_applying,
            stuck_task: args.fault_stuck_task,
            failed_empty: args.fault_failed_empty,
            failed_half: args.fault_failed_half,
            refuse_item: args.fault_refuse_item.clone(),
            bulk_only: args.fault_bulk_only,
            methods: args.fault_method.clone(),
            forbid: args.forbid.clone(),
            quirks: args.quirk.clone(),
        },
        fault_seed: args.fault_seed,
        data: args.data.clone(),
    };
    let sb = if args.sample_data {
        Sandbox::with_sample_data(config)?
    } else {
        Sandbox::new(config)?
    };
    for path in &args.seed {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: cannot read seed: {e}", path.display())))?;
        sb.seed(&path.display().to_string(), &text)?;
    }
    let addr = sb.spawn(&args.addr).await?;
    // Tests and scripts wait for this exact line.
    crate::outln!("listening on http://{addr}");
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

/// `3d`, `12h`, `30m`, `45s`, `500ms`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = |k: u64| Some(Duration::from_secs(n.checked_mul(k)?));
    match unit {
        "" | "s" => secs(1),
        "ms" => Some(Duration::from_millis(n)),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        _ => None,
    }
}

fn duration_arg(flag: &str, v: &str) -> Result<Duration, Error> {
    parse_duration(v).ok_or_else(|| {
        Error::Usage(format!(
            "{flag} '{v}' is not a duration (use e.g. 3d, 12h, 30m, 45s, 500ms)"
        ))
    })
}

fn is_loopback(addr: &str) -> bool {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().is_loopback();
    }
    addr.rsplit_once(':')
        .is_some_and(|(host, _)| host == "localhost")
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        use std::time::Duration;
        let cases = [
            ("3d", Some(Duration::from_secs(259_200))),
            ("12h", Some(Duration::from_secs(43_200))),
            ("30m", Some(Duration::from_secs(1800))),
            ("45s", Some(Duration::from_secs(45))),
            ("45", Some(Duration::from_secs(45))),
            ("500ms", Some(Duration::from_millis(500))),
            ("", None),
            ("3 days", None),
            ("-1s", None),
        ];
        for (s, want) in cases {
            assert_eq!(super::parse_duration(s), want, "{s}");
        }
    }

    #[test]
    fn loopback_addresses() {
        for (a, want) in [
            ("127.0.0.1:0", true),
            ("[::1]:8080", true),
            ("localhost:8080", true),
            ("0.0.0.0:8080", false),
            ("10.0.0.1:80", false),
        ] {
            assert_eq!(super::is_loopback(a), want, "{a}");
        }
    }
}
