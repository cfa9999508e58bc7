//! Progress and the run log: an indicatif bar on stderr when it is a terminal (hidden
//! otherwise), and `run.log` in the run folder with every batch, retry and wait. Leaf module;
//! `run` drives it and `client`/`send` write notes to it through `client::Notify`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::site::client::Notify;

#[derive(Default)]
pub struct Counters {
    pub read: AtomicU64,
    pub sent: AtomicU64,
    pub confirmed: AtomicU64,
    pub failed: AtomicU64,
    /// Bulk tasks submitted and not yet ended, and the most there may be (`--max-tasks`).
    pub tasks: AtomicU64,
    pub slots: AtomicU64,
    /// Requests per second now (f64 bits); 0 until the first answer.
    pub rate: AtomicU64,
    /// When the latest wait before a retry ends (Unix seconds), 0 when none; negative when the
    /// wait is for the rate limit.
    pub waiting_until: std::sync::atomic::AtomicI64,
}

/// The progress line's text.
pub fn message(
    read: u64,
    sent: u64,
    confirmed: u64,
    failed: u64,
    tasks: (u64, u64),
    rate: f64,
    waiting_until: Option<(jiff::Timestamp, bool)>,
) -> String {
    let mut m = format!(
        "{read} read · {sent} sent · {confirmed} confirmed · {failed} failed · tasks {}/{}",
        tasks.0, tasks.1
    );
    if rate > 0.0 {
        m.push_str(&format!(" · {rate:.1} req/s"));
    }
    if let Some((t, rate_limited)) = waiting_until {
        let what = if rate_limited {
            "waiting for rate limit until"
        } else {
            "retrying at"
        };
        m.push_str(&format!(" · {what} {} UTC", t.strftime("%H:%M:%S")));
    }
    m
}

pub struct Progress {
    bar: ProgressBar,
    pub counters: Counters,
}

impl Progress {
    pub fn new(total_bytes: u64) -> Progress {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            counters: Counters::default(),
        }
    }

    pub fn set_length(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn set_position(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    pub fn refresh(&self) {
        let c = &self.counters;
        let until = c.waiting_until.load(Ordering::Relaxed);
        self.bar.set_message(message(
            c.read.load(Ordering::Relaxed),
            c.sent.load(Ordering::Relaxed),
            c.confirmed.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            (
                c.tasks.load(Ordering::Relaxed),
                c.slots.load(Ordering::Relaxed),
            ),
            f64::from_bits(c.rate.load(Ordering::Relaxed)),
            (until != 0)
                .then(|| jiff::Timestamp::from_second(until.abs()).ok())
                .flatten()
                .map(|t| (t, until < 0)),
        ));
    }

    pub fn finish(&self) {
        self.refresh();
        self.bar.finish_and_clear();
    }

    /// A line the user must see, bar or not (above the bar when there is one).
    pub fn say(&self, msg: &str) {
        if self.bar.is_hidden() {
            eprintln!("{msg}");
        } else {
            self.bar.println(msg);
        }
    }
}

impl Notify for Progress {
    fn note(&self, msg: &str) {
        if !self.bar.is_hidden() {
            self.bar.println(msg);
        }
    }

    fn alert(&self, msg: &str) {
        self.say(msg);
    }

    fn pacing(&self, rate: f64) {
        self.counters.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    fn waiting(&self, until: Option<jiff::Timestamp>, rate_limited: bool) {
        let secs = until.map(|t| t.as_second()).unwrap_or(0);
        let secs = if rate_limited { -secs } else { secs };
        self.counters.waiting_until.store(secs, Ordering::Relaxed);
        self.refresh();
    }
}

/// `run.log`: one timestamped line per event. Credentials never reach it.
pub struct RunLog {
    file: Mutex<File>,
}

impl RunLog {
    pub fn create(path: &Path) -> std::io::Result<RunLog> {
        Ok(RunLog {
            file: Mutex::new(File::create(path)?),
        })
    }

    /// Continues an existing log (a resumed run).
    pub fn append(path: &Path) -> std::io::Result<RunLog> {
        Ok(RunLog {
            file: Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        })
    }
}

impl Notify for RunLog {
    fn note(&self, msg: &str) {
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{now} {msg}");
        }
    }
}

/// Sends a note to several places (the log always, the terminal when visible).
pub struct Tee(pub Vec<std::sync::Arc<dyn Notify>>);

impl Notify for Tee {
    fn note(&self, msg: &str) {
        for n in &self.0 {
            n.note(msg);
        }
    }

    fn alert(&self, msg: &str) {
        for n in &self.0 {
            n.alert(msg);
        }
    }

    fn pacing(&self, rate: f64) {
        for n in &self.0 {
            n.pacing(rate);
        }
    }

    fn waiting(&self, until: Option<jiff::Timestamp>, rate_limited: bool) {
        for n in &self.0 {
            n.waiting(until, rate_limited);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_says_what_the_run_waits_for() {
        let at: jiff::Timestamp = "2026-11-29T10:15:30Z".parse().unwrap();
        let cases = [
            (
                (0.0, None),
                "10 read · 8 sent · 5 confirmed · 1 failed · tasks 2/5",
            ),
            (
                (2.5, Some((at, true))),
                "10 read · 8 sent · 5 confirmed · 1 failed · tasks 2/5 · 2.5 req/s · waiting for rate limit until 10:15:30 UTC",
            ),
            (
                (10.0, Some((at, false))),
                "10 read · 8 sent · 5 confirmed · 1 failed · tasks 2/5 · 10.0 req/s · retrying at 10:15:30 UTC",
            ),
        ];
        for ((rate, wait), want) in cases {
            assert_eq!(message(10, 8, 5, 1, (2, 5), rate, wait), want);
        }
    }
}
