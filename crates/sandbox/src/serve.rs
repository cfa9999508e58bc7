//! The sandbox's accept loop: each connection served by hyper's HTTP/1, closed once it has
//! been idle (no request in flight, nothing read or written) for `IDLE`, so connections a
//! client opens and forgets (or a flood of them) do not pile up. Used by `Sandbox::spawn`;
//! the router (`http`) answers the requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service;

/// How long a connection may sit with nothing to do before it is closed, by default.
pub const IDLE: Duration = Duration::from_secs(15);

/// What a connection is doing: requests in flight and when it last did anything.
struct Activity {
    busy: AtomicUsize,
    /// Milliseconds since `start` of the last request begun or ended.
    last: AtomicU64,
    start: Instant,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis().min(u64::MAX as u128) as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        Some(self.start.elapsed().saturating_sub(last))
    }
}

/// Serves `app` on `listener` until the process ends; connections idle for `idle` close.
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router, idle: Duration) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            // Out of descriptors, say: wait a little rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(connection(stream, app, idle));
    }
}

async fn connection(stream: tokio::net::TcpStream, app: axum::Router, idle: Duration) {
    let activity = Arc::new(Activity {
        busy: AtomicUsize::new(0),
        last: AtomicU64::new(0),
        start: Instant::now(),
    });
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut app = app.clone();
        let seen = seen.clone();
        seen.busy.fetch_add(1, Ordering::Relaxed);
        seen.touch();
        async move {
            let answer = app.call(req.map(axum::body::Body::new)).await;
            seen.touch();
            seen.busy.fetch_sub(1, Ordering::Relaxed);
            answer
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep(idle / 4), if !closing => {
                if activity.idle_for().is_some_and(|d| d >= idle) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
