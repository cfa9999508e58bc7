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
    /// Rows a resumed run reported from its journal (closed by an earlier attempt): not this
    /// attempt's work, so not in its count or pace.
    pub replayed: AtomicU64,
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
    /// `total` is an estimate from the input's size (reading has not ended).
    pub estimated: bool,
    /// When the rows left should be done at the pace of the last minute; none before a row
    /// is done.
    pub eta: Option<Duration>,
    /// Characters the text may take (the terminal's width less the bar); none: no limit.
    pub width: Option<usize>,
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

/// The progress line's text, most important first; fields that do not fit `width` are left
/// out whole, least important first (never cut mid-word), so the line never wraps.
pub fn message(l: &Line<'_>) -> String {
    // (priority: lower stays longer, text)
    let mut parts: Vec<(u8, String)> = Vec::new();
    if let Some(w) = waiting_for(l) {
        parts.push((0, w));
    }
    if let Some((t, rate_limited)) = l.waiting_until {
        let what = if rate_limited {
            "waiting for the rate limit until"
        } else {
            "retrying at"
        };
        parts.push((0, format!("{what} {} UTC", t.strftime("%H:%M:%S"))));
    }
    let approx = if l.estimated { "~" } else { "" };
    parts.push((0, format!("{}/{approx}{} done", l.done, l.total)));
    if let Some(eta) = l.eta {
        parts.push((1, format!("ETA {}", short_duration(eta))));
    }
    if l.failed > 0 {
        parts.push((2, format!("{} failed", l.failed)));
    }
    parts.push((3, format!("tasks {}/{}", l.tasks.0, l.tasks.1)));
    if l.rate > 0.0 && !l.idle {
        parts.push((5, format!("{:.1} req/s", l.rate)));
    }
    parts.push((6, format!("{} read", l.read)));
    parts.push((7, format!("{} sent", l.sent)));
    if !l.note.is_empty() {
        parts.push((4, l.note.to_string()));
    }
    let joined = |parts: &[(u8, String)]| {
        parts
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let mut text = joined(&parts);
    while let Some(width) = l.width
        && text.chars().count() > width
        && parts.len() > 1
    {
        let least = parts
            .iter()
            .enumerate()
            .max_by_key(|(i, (p, _))| (*p, *i))
            .map(|(i, _)| i)
            .expect("parts");
        if parts[least].0 == 0 {
            break;
        }
        parts.remove(least);
        text = joined(&parts);
    }
    text
}

/// `3h05m`, `4m20s`, `12s`.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub struct Progress {
    bar: ProgressBar,
    pub counters: Counters,
    /// Rows to process as far as known (the input's estimate, then what was read).
    total: AtomicU64,
    note: Mutex<String>,
    /// (done, read, sent) when last seen changing, and when.
    moved: Mutex<((u64, u64, u64), std::time::Instant)>,
    /// Whether `total` is the whole count (reading ended) rather than an estimate.
    known: std::sync::atomic::AtomicBool,
    /// This attempt's rows done, sampled once a second over the last minute, for the pace.
    pace: Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>,
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
                "{spinner} {elapsed_precise} [{bar:16}] {percent:>3}% {wide_msg}",
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
            known: std::sync::atomic::AtomicBool::new(false),
            pace: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// When this attempt's rows left should be done, at the pace of the last minute; none
    /// until a row of this attempt is done.
    fn eta(&self, done: u64, total: u64) -> Option<Duration> {
        let now = std::time::Instant::now();
        let mut samples = self.pace.lock().ok()?;
        samples.push_back((now, done));
        while samples.len() > 2 && now.duration_since(samples[0].0) > Duration::from_secs(60) {
            samples.pop_front();
        }
        let (t0, d0) = *samples.front()?;
        let secs = now.duration_since(t0).as_secs_f64();
        if done == 0 || done <= d0 || secs < 1.0 {
            return None;
        }
        let pace = (done - d0) as f64 / secs;
        Duration::try_from_secs_f64(total.saturating_sub(done) as f64 / pace).ok()
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
        // This attempt's rows: a resumed run's rows reported from its journal are not counted.
        let replayed = c.replayed.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed).saturating_sub(replayed);
        let done = done.saturating_sub(replayed);
        // The bar's own text (spinner, time, bar, percentage) takes 36 columns.
        let width = (!self.bar.is_hidden())
            .then(|| console::Term::stderr().size_checked())
            .flatten()
            .map(|(_, w)| usize::from(w).saturating_sub(36));
        self.bar.set_message(message(&Line {
            idle,
            done,
            total,
            estimated: !self.known.load(Ordering::Relaxed),
            eta: self.eta(done, total),
            width,
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

    /// Reading has ended: `rows` is the whole count. After an interruption (reading stopped
    /// short) the estimate stays, so the bar does not jump.
    pub fn rows_known(&self, rows: u64, whole: bool) {
        if !whole {
            return;
        }
        self.known.store(true, Ordering::Relaxed);
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
        // An estimated total is marked; the ETA comes once it is known; an idle run shows no
        // rate; a narrow terminal loses whole fields, least important first.
        let line = Line {
            estimated: true,
            eta: Some(Duration::from_secs(200)),
            rate: 12.0,
            note: "pacing: 4.00 requests/s after a 429",
            ..base.clone()
        };
        assert_eq!(
            message(&line),
            "5/~10 done · ETA 3m20s · tasks 2/5 · 12.0 req/s · 10 read · 8 sent · pacing: 4.00 requests/s after a 429"
        );
        assert!(
            !message(&Line {
                idle: true,
                ..line.clone()
            })
            .contains("req/s")
        );
        let narrow = |width| {
            message(&Line {
                width: Some(width),
                ..line.clone()
            })
        };
        assert_eq!(narrow(44), "5/~10 done · ETA 3m20s · tasks 2/5");
        assert_eq!(narrow(20), "5/~10 done");
        assert_eq!(narrow(3), "5/~10 done");
        for w in [30, 44, 60, 80] {
            let got = narrow(w);
            assert!(got.chars().count() <= w, "{w}: {got}");
            assert!(!got.ends_with('/') && !got.ends_with(' '), "{got}");
        }
        assert_eq!(short_duration(Duration::from_secs(12)), "12s");
        assert_eq!(short_duration(Duration::from_secs(3 * 3600 + 300)), "3h05m");
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
