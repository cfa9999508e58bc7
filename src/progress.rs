//! Progress and the run log: an indicatif bar on stderr when it is a terminal (hidden
//! otherwise), and `run.log` in the run folder with every batch, retry and wait. Leaf module;
//! `cmd` drives it and `client`/`send` write notes to it through `client::Notify`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Notify;

#[derive(Default)]
pub struct Counters {
    pub read: AtomicU64,
    pub sent: AtomicU64,
    pub confirmed: AtomicU64,
    pub failed: AtomicU64,
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
        self.bar.set_message(format!(
            "{} read · {} sent · {} confirmed · {} failed",
            c.read.load(Ordering::Relaxed),
            c.sent.load(Ordering::Relaxed),
            c.confirmed.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        ));
    }

    pub fn finish(&self) {
        self.refresh();
        self.bar.finish_and_clear();
    }
}

impl Notify for Progress {
    fn note(&self, msg: &str) {
        if !self.bar.is_hidden() {
            self.bar.println(msg);
        }
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
}
