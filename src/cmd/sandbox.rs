//! `csmport sandbox`: runs the local CSM emulator until Ctrl-C. Orchestration only; the server
//! is `crate::sandbox`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::SandboxArgs;
use crate::error::Error;
use crate::sandbox::{Config, Sandbox};

pub async fn run(args: &SandboxArgs) -> Result<(), Error> {
    if !args.allow_remote && !is_loopback(&args.addr) {
        return Err(Error::Usage(format!(
            "--addr {} is not a loopback address; the sandbox has no real security, pass --allow-remote if you mean it",
            args.addr
        )));
    }
    let config = Config {
        token: args.token.clone(),
        task_latency: Duration::from_millis(args.task_latency_ms),
        max_tasks: args.max_tasks.max(1),
    };
    let sb = if args.sample_data {
        Sandbox::with_sample_data(config)
    } else {
        Sandbox::new(config)
    };
    for path in &args.seed {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: cannot read seed: {e}", path.display())))?;
        sb.seed(&path.display().to_string(), &text)?;
    }
    let addr = sb.spawn(&args.addr).await?;
    // Tests and scripts wait for this exact line.
    println!("listening on http://{addr}");
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
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
