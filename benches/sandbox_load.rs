//! Load benchmark of the sandbox (not a test): small GETs per second and bulk submissions of
//! 100 items per second on loopback, so we know the sandbox is never the bottleneck of client
//! benchmarks. Run through `bench/sandbox_throughput.sh`. Bounded in time and count; talks only
//! to 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use csmport::sandbox::{Config, Sandbox};

const MAX_REQUESTS: u64 = 2_000_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let config = Config {
        task_latency: Duration::ZERO,
        max_tasks: usize::MAX,
        ..Config::default()
    };
    let sb = Sandbox::with_sample_data(config).expect("sandbox starts");
    let addr = sb.spawn("127.0.0.1:0").await.expect("sandbox binds");
    let base = format!("http://{addr}/jsm/csm/cloudid/bench/api/v1");
    println!("sandbox at {addr}; {concurrency} concurrent clients, {secs}s per phase");

    let get = run(&base, secs, concurrency, |c, base, _| {
        c.get(format!("{base}/customer/details"))
            .bearer_auth("sandbox-token")
            .header("X-ExperimentalApi", "opt-in")
    })
    .await;
    println!("GET customer/details: {get:.0} requests/s");

    let bulk = run(&base, secs, concurrency, |c, base, n| {
        let items: Vec<serde_json::Value> = (0..100)
            .map(|i| {
                serde_json::json!({"operationType": "UPSERT", "payload": {
                    "email": format!("load{}@example.com", n * 100 + i),
                    "displayName": "Load Test",
                    "details": [{"name": "Customer Tier", "values": ["Premium"]}]
                }})
            })
            .collect();
        c.post(format!("{base}/customer/profile/bulk"))
            .bearer_auth("sandbox-token")
            .header("X-ExperimentalApi", "opt-in")
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&serde_json::json!({ "customerProfiles": items }))
    })
    .await;
    println!("POST customer/profile/bulk (100 items): {bulk:.0} submissions/s");
}

/// Runs `concurrency` loops for `secs` seconds (or until MAX_REQUESTS); returns successes/s.
async fn run(
    base: &str,
    secs: u64,
    concurrency: usize,
    make: impl Fn(&reqwest::Client, &str, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> f64 {
    let client = csmport::site::client::http_client();
    let make = Arc::new(make);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, make, done, failed, base) = (
            client.clone(),
            make.clone(),
            done.clone(),
            failed.clone(),
            base.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = done.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
                if n >= MAX_REQUESTS {
                    break;
                }
                match make(&client, &base, n).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let f = failed.load(Ordering::Relaxed);
    if f > 0 {
        println!("  ({f} requests failed)");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
