//! Ctrl-C for the whole process, one watcher for every run in it: the first signal interrupts
//! the run going on (each run registers a hook; `run` stops sending and writes its reports)
//! and marks the process interrupted, so a plan starts no later step; the second leaves at
//! once. One message per signal, whatever the number of runs. Used by `run` and the plan
//! loop (`cmd::import`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::EXIT_INTERRUPTED;

/// Which Ctrl-C a hook hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Stop sending; finish what was submitted; write the reports.
    First,
    /// The process leaves now.
    Second,
}

type Hook = Box<dyn Fn(Signal) + Send + Sync>;

#[derive(Default)]
struct State {
    interrupted: AtomicBool,
    hooks: Mutex<Vec<Hook>>,
    first: tokio::sync::Notify,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(State::default)
}

/// What the first Ctrl-C says, when the command is not an import (an export keeps what it
/// read); set once, before the watcher is installed.
static FIRST_MESSAGE: OnceLock<&'static str> = OnceLock::new();

/// The first Ctrl-C's message, for a command that stops otherwise than a run does.
pub fn say_on_first(message: &'static str) {
    let _ = FIRST_MESSAGE.set(message);
}

/// Whether Ctrl-C was pressed (a plan starts no step after it).
pub fn happened() -> bool {
    state().interrupted.load(Ordering::SeqCst)
}

/// Resolves at the first Ctrl-C (at once if it came already), installing the watcher: for a
/// stage that is not a run (a delete's backup pass) to stop on it.
pub async fn first() {
    install();
    loop {
        let notified = state().first.notified();
        if happened() {
            return;
        }
        notified.await;
    }
}

/// Registers `hook` for the signals to come (installing the watcher once, on the runtime
/// this is called on); after a first Ctrl-C it is told at once, so a run that starts late
/// stops before it sends anything.
pub fn on_signal(hook: impl Fn(Signal) + Send + Sync + 'static) {
    install();
    let late = happened();
    if late {
        hook(Signal::First);
    }
    state()
        .hooks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Box::new(hook));
}

/// What the first (or second) Ctrl-C does.
fn deliver(signal: Signal) {
    if signal == Signal::First {
        state().interrupted.store(true, Ordering::SeqCst);
        state().first.notify_waiters();
    }
    for h in state()
        .hooks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        h(signal);
    }
}

fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tokio::spawn(async {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            crate::errln!(
                "{}",
                FIRST_MESSAGE.get().copied().unwrap_or(
                    "csmport: interrupted; finishing submitted batches and writing reports (Ctrl-C again to quit now)"
                )
            );
            deliver(Signal::First);
            if tokio::signal::ctrl_c().await.is_ok() {
                deliver(Signal::Second);
                crate::errln!(
                    "csmport: interrupted again; exiting now. Rows of batches in flight have no outcome in the reports; `csmport resume` finishes them."
                );
                std::process::exit(EXIT_INTERRUPTED);
            }
        });
    });
}
