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

/// Set once at start by `-q`: no progress line (errors still go to stderr).
pub static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What the progress line shows besides the bar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line<'a> {
    /// Rows with a final outcome, and rows to process (an estimate until reading ends).
    pub done: u64,
    pub total: u64,
    pub read: u64,
    pub sent: u64,
    pub failed: u64,
    pub tasks: (u64, u64),
    pub rate: f64,
    pub waiting_until: Option<(jiff::Timestamp, bool)>,
    /// The latest note (a retry, a pace change), shown last.
    pub note: &'a str,
    /// Nothing has moved (rows done, read or sent) for at least `IDLE_SECS`.
    pub idle: bool,
}

/// After this long without a row read, sent or done, the line says what the run waits for.
pub const IDLE_SECS: u64 = 5;

/// What an idle run is waiting for, from what the line knows.
fn waiting_for(l: &Line<'_>) -> Option<String> {
    if !l.idle || l.waiting_until.is_some() {
        // A timed wait says so already.
        return None;
    }
    let (tasks, slots) = l.tasks;
    Some(if slots > 0 && tasks >= slots {
        format!("waiting for a free task slot ({tasks}/{slots} running)")
    } else if tasks > 0 {
        format!(
            "waiting for {tasks} task{} to finish",
            if tasks == 1 { "" } else { "s" }
        )
    } else if l.read > l.done {
        "waiting for the site to answer".to_string()
    } else {
        "waiting for the input".to_string()
    })
}

/// The progress line's text, most important first: the terminal cuts what does not fit
/// (`wide_msg`), so the fields at the end are the ones that go, and the line never wraps.
pub fn message(l: &Line<'_>) -> String {
    let mut parts = Vec::new();
    parts.extend(waiting_for(l));
    if let Some((t, rate_limited)) = l.waiting_until {
        let what = if rate_limited {
            "waiting for the rate limit until"
        } else {
            "retrying at"
        };
        parts.push(format!("{what} {} UTC", t.strftime("%H:%M:%S")));
    }
    parts.push(format!("{}/{} done", l.done, l.total));
    if l.failed > 0 {
        parts.push(format!("{} failed", l.failed));
    }
    parts.push(format!("tasks {}/{}", l.tasks.0, l.tasks.1));
    if l.rate > 0.0 {
        parts.push(format!("{:.1} req/s", l.rate));
    }
    parts.push(format!("{} read", l.read));
    parts.push(format!("{} sent", l.sent));
    if !l.note.is_empty() {
        parts.push(l.note.to_string());
    }
    parts.join(" · ")
}

pub struct Progress {
    bar: ProgressBar,
    pub counters: Counters,
    /// Rows to process as far as known (the input's estimate, then what was read).
    total: AtomicU64,
    note: Mutex<String>,
    /// (done, read, sent) when last seen changing, and when.
    moved: Mutex<((u64, u64, u64), std::time::Instant)>,
}

impl Progress {
    pub fn new(total_rows: u64) -> Progress {
        let quiet = QUIET.load(Ordering::Relaxed);
        let target = if std::io::stderr().is_terminal() && !quiet {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total_rows), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:16}] {percent:>3}% ETA {eta} {wide_msg}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar,
            counters: Counters::default(),
            total: AtomicU64::new(total_rows),
            note: Mutex::new(String::new()),
            moved: Mutex::new(((0, 0, 0), std::time::Instant::now())),
        }
    }

    /// Redraws the line every second, so an idle run's line says so; ends with the run.
    pub fn tick(progress: &std::sync::Arc<Progress>) {
        let weak = std::sync::Arc::downgrade(progress);
        std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while let Some(p) = weak.upgrade() {
                    if p.bar.is_finished() {
                        return;
                    }
                    p.refresh();
                    drop(p);
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .ok();
    }

    /// Rows to process: at least `rows` (an estimate from the input's size, or rows read).
    pub fn set_length(&self, rows: u64) {
        let total = self.total.fetch_max(rows, Ordering::Relaxed).max(rows);
        self.bar.set_length(total);
    }

    /// Rows with a final outcome so far.
    pub fn set_done(&self, rows: u64) {
        self.bar.set_position(rows);
    }

    pub fn refresh(&self) {
        let c = &self.counters;
        let until = c.waiting_until.load(Ordering::Relaxed);
        let read = c.read.load(Ordering::Relaxed);
        self.set_length(read);
        let note = self.note.lock().map(|n| n.clone()).unwrap_or_default();
        let done = self.bar.position();
        let sent = c.sent.load(Ordering::Relaxed);
        let idle = self.moved.lock().is_ok_and(|mut m| {
            if m.0 != (done, read, sent) {
                *m = ((done, read, sent), std::time::Instant::now());
            }
            m.1.elapsed() >= Duration::from_secs(IDLE_SECS)
        });
        self.bar.set_message(message(&Line {
            idle,
            done,
            total: self.total.load(Ordering::Relaxed),
            read,
            sent,
            failed: c.failed.load(Ordering::Relaxed),
            tasks: (
                c.tasks.load(Ordering::Relaxed),
                c.slots.load(Ordering::Relaxed),
            ),
            rate: f64::from_bits(c.rate.load(Ordering::Relaxed)),
            waiting_until: (until != 0)
                .then(|| jiff::Timestamp::from_second(until.abs()).ok())
                .flatten()
                .map(|t| (t, until < 0)),
            note: &note,
        }));
    }

    /// Reading has ended: `rows` is the whole count.
    pub fn rows_known(&self, rows: u64) {
        self.total.store(rows, Ordering::Relaxed);
        self.bar.set_length(rows);
    }

    pub fn finish(&self) {
        self.refresh();
        self.bar.finish_and_clear();
    }

    /// A line the user must see, bar or not (above the bar when there is one).
    pub fn say(&self, msg: &str) {
        if self.bar.is_hidden() {
            crate::errln!("{msg}");
        } else {
            self.bar.println(csmport_api::text::visible(msg));
        }
    }
}

impl Notify for Progress {
    /// Notes (retries, pace changes, batches) update the line; `run.log` keeps every one.
    fn note(&self, msg: &str) {
        if let Ok(mut n) = self.note.lock() {
            n.clear();
            n.push_str(&csmport_api::text::one_line(msg));
        }
        self.refresh();
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
            file: Mutex::new(crate::fsx::create_private(path)?),
        })
    }

    /// Continues an existing log (a resumed run).
    pub fn append(path: &Path) -> std::io::Result<RunLog> {
        Ok(RunLog {
            file: Mutex::new(crate::fsx::append_private(path)?),
        })
    }
}

impl Notify for RunLog {
    fn note(&self, msg: &str) {
        // One line per event, whatever a server's text or a value in it holds.
        let msg = csmport_api::text::one_line(msg);
        // `-v`: the log's lines on stderr too.
        tracing::info!(target: "csmport::run", "{msg}");
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
        let base = Line {
            done: 5,
            total: 10,
            read: 10,
            sent: 8,
            failed: 0,
            tasks: (2, 5),
            ..Line::default()
        };
        let cases = [
            (base.clone(), "5/10 done · tasks 2/5 · 10 read · 8 sent"),
            (
                Line {
                    failed: 1,
                    rate: 2.5,
                    waiting_until: Some((at, true)),
                    ..base.clone()
                },
                "waiting for the rate limit until 10:15:30 UTC · 5/10 done · 1 failed · tasks 2/5 · 2.5 req/s · 10 read · 8 sent",
            ),
            (
                Line {
                    rate: 10.0,
                    waiting_until: Some((at, false)),
                    note: "pacing: 4.00 requests/s after a 429",
                    ..base.clone()
                },
                "retrying at 10:15:30 UTC · 5/10 done · tasks 2/5 · 10.0 req/s · 10 read · 8 sent · pacing: 4.00 requests/s after a 429",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(message(&line), want);
        }
        let idle = |tasks: (u64, u64), read: u64| {
            message(&Line {
                idle: true,
                tasks,
                read,
                ..base.clone()
            })
        };
        let cases = [
            (
                idle((5, 5), 10),
                "waiting for a free task slot (5/5 running)",
            ),
            (idle((1, 5), 10), "waiting for 1 task to finish"),
            (idle((0, 5), 10), "waiting for the site to answer"),
            (idle((0, 5), 5), "waiting for the input"),
        ];
        for (got, want) in cases {
            assert!(got.starts_with(want), "{got}");
        }
        // A timed wait is shown as it is.
        let timed = message(&Line {
            idle: true,
            waiting_until: Some((at, true)),
            ..base.clone()
        });
        assert!(
            timed.starts_with("waiting for the rate limit until"),
            "{timed}"
        );
    }
}
