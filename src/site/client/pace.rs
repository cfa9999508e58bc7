//! Client-side pacing: every attempt waits for its turn (DESIGN invariant 6), retries
//! included, at a pace that learns the site's own rate. `Pacer` hands out send times one
//! period apart; `PaceState` (pure, time passed in) decides the period from what the answers
//! say. Used only by `client::Client`.
//!
//! How the pace is learned: while a site throttles us, the answers it accepts come at its
//! rate, so the accepted answers counted since the pace last changed, over that time, measure
//! it. A 429 sets the pace a little under that measure (never above the pace it cut), and the
//! pace then holds, probing upward a step after each quiet spell, so 429s stay rare and the
//! site's rate stays used. Without enough evidence (a 429 right after a change) the cut is a
//! fixed fraction. 429s that answer requests sent before a cut do not cut again.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What an answer says about the pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// 429: too fast.
    Throttled,
    /// Any answer that is not a 429.
    Answered,
}

/// The slowest pace, requests per second (one every 50 s): a site's rate, not a fraction of
/// `--rate`, which may be far above it.
pub const MIN_RATE: f64 = 0.02;
/// The pace set under a measured site rate.
const MARGIN: f64 = 0.95;
/// The cut when there is too little evidence to measure.
const BLIND_CUT: f64 = 0.7;
/// A measure needs this long and this many accepted answers.
const MEASURE_MIN: Duration = Duration::from_secs(1);
const MEASURE_MIN_ANSWERS: u64 = 4;
/// After this long without a 429 the pace steps up by `PROBE_STEP`, toward `--rate`.
const PROBE_AFTER: Duration = Duration::from_secs(5);
const PROBE_STEP: f64 = 1.05;
/// 429s this soon after a cut (or within two periods of the old pace) answer requests sent
/// before it: they say nothing new.
const SETTLE: Duration = Duration::from_millis(1000);
/// A spell of 429s ends after this long without one.
const SPELL_QUIET: Duration = Duration::from_secs(3);
/// Accepted answers remembered, at most, to measure a spell by.
const REMEMBERED: usize = 512;

/// The pace decision, as a pure state machine over answers and their times.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceState {
    /// `--rate`: never faster.
    pub max: f64,
    /// Requests per second now.
    pub rate: f64,
    /// The site's rate as last measured.
    pub learned: Option<f64>,
    /// When the pace last changed, and the answers accepted since.
    since: Instant,
    accepted: u64,
    /// When the pace was last cut.
    cut_at: Option<Instant>,
    /// The current spell of 429s: when its first came, and when its last did.
    spell: Option<(Instant, Instant)>,
    /// When the last accepted answers came (newest last).
    answers: std::collections::VecDeque<Instant>,
}

/// What an answer changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    None,
    /// Slowed down after a 429, to this rate; `measured` when it was learned from the answers.
    Cut {
        rate: f64,
        measured: bool,
    },
    /// Stepped up after a quiet spell.
    Probe {
        rate: f64,
    },
}

impl PaceState {
    pub fn new(max: f64, now: Instant) -> PaceState {
        PaceState {
            max,
            rate: max,
            learned: None,
            since: now,
            accepted: 0,
            cut_at: None,
            spell: None,
            answers: std::collections::VecDeque::new(),
        }
    }

    /// The site's rate as the answers accepted since the spell of 429s began show it: while
    /// it throttles us, what it accepts is what it allows.
    fn spell_rate(&self, now: Instant) -> Option<f64> {
        let (start, _) = self.spell?;
        let window = now.saturating_duration_since(start);
        let n = self.answers.iter().filter(|&&t| t >= start).count() as u64;
        (window >= MEASURE_MIN && n >= 2).then(|| n as f64 / window.as_secs_f64())
    }

    /// The site's rate as the answers accepted since the pace last changed show it (a probe
    /// above the site's rate is paid for by its burst budget until the 429 comes).
    fn since_rate(&self, now: Instant) -> Option<f64> {
        let window = now.saturating_duration_since(self.since);
        (window >= MEASURE_MIN && self.accepted >= MEASURE_MIN_ANSWERS)
            .then(|| self.accepted as f64 / window.as_secs_f64())
    }

    fn floor(&self) -> f64 {
        MIN_RATE.min(self.max)
    }

    fn set(&mut self, rate: f64, now: Instant) {
        self.rate = rate.clamp(self.floor(), self.max);
        self.since = now;
        self.accepted = 0;
    }

    pub fn observe(&mut self, signal: Signal, now: Instant) -> Change {
        match signal {
            Signal::Answered => {
                self.accepted += 1;
                if self.answers.len() == REMEMBERED {
                    self.answers.pop_front();
                }
                self.answers.push_back(now);
                let quiet = now.saturating_duration_since(self.since);
                if self.rate < self.max && quiet >= PROBE_AFTER {
                    self.set(self.rate * PROBE_STEP, now);
                    return Change::Probe { rate: self.rate };
                }
                Change::None
            }
            Signal::Throttled => {
                self.spell = match self.spell {
                    Some((start, last)) if now.saturating_duration_since(last) < SPELL_QUIET => {
                        Some((start, now))
                    }
                    _ => Some((now, now)),
                };
                let settle = SETTLE.max(super::retry::secs(2.0 / self.rate));
                if self
                    .cut_at
                    .is_some_and(|at| now.saturating_duration_since(at) < settle)
                {
                    return Change::None;
                }
                let site = self.spell_rate(now).or_else(|| self.since_rate(now));
                let measured = site.is_some();
                let rate = match site {
                    Some(site) => {
                        self.learned = Some(site);
                        (site * MARGIN).min(self.rate * MARGIN)
                    }
                    None => self.rate * BLIND_CUT,
                };
                self.set(rate, now);
                self.cut_at = Some(now);
                Change::Cut {
                    rate: self.rate,
                    measured,
                }
            }
        }
    }

    pub fn period(&self) -> Duration {
        super::retry::secs(1.0 / self.rate).max(Duration::from_micros(1))
    }
}

pub struct Pacer {
    /// The pace, and the last turn given out.
    state: Mutex<(PaceState, Option<Instant>)>,
}

impl Pacer {
    /// `rate` in requests per second; fractions allowed (0.5 = one request every 2 s). No
    /// bursts: the site's burst budget is better left for retries and other clients.
    pub fn new(rate: f64) -> Pacer {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            10.0
        };
        Pacer {
            state: Mutex::new((PaceState::new(rate, Instant::now()), None)),
        }
    }

    /// Waits for this request's turn: one period (the pace as it is now) after the last turn.
    pub async fn wait(&self) {
        let at = {
            let mut s = self.state.lock().expect("pace lock");
            let now = Instant::now();
            let at = match s.1 {
                Some(last) => (last + s.0.period()).max(now),
                None => now,
            };
            s.1 = Some(at);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Feeds an answer to the pace; returns what changed.
    pub fn observe(&self, signal: Signal) -> Change {
        self.state
            .lock()
            .expect("pace lock")
            .0
            .observe(signal, Instant::now())
    }

    /// Requests per second now.
    pub fn current_rate(&self) -> f64 {
        self.state.lock().expect("pace lock").0.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `answers` (seconds from the start, throttled?) through a state starting at `max`.
    fn run(max: f64, answers: &[(f64, bool)]) -> (PaceState, Vec<Change>) {
        let t0 = Instant::now();
        let mut s = PaceState::new(max, t0);
        let changes = answers
            .iter()
            .map(|&(t, throttled)| {
                let signal = if throttled {
                    Signal::Throttled
                } else {
                    Signal::Answered
                };
                s.observe(signal, t0 + Duration::from_secs_f64(t))
            })
            .collect();
        (s, changes)
    }

    /// A site that accepts `site` answers a second: answers at that rate for `secs`, then a 429.
    fn accepted(site: f64, from: f64, secs: f64) -> Vec<(f64, bool)> {
        let n = (site * secs) as usize;
        (0..n)
            .map(|i| (from + i as f64 / site, false))
            .chain(std::iter::once((from + secs, true)))
            .collect()
    }

    #[test]
    fn a_429_after_enough_answers_sets_the_pace_just_under_the_measured_rate() {
        // 4 accepted a second for 5 s while we asked for 10: the site's rate is 4.
        let (s, changes) = run(10.0, &accepted(4.0, 0.0, 5.0));
        assert_eq!(
            changes.last(),
            Some(&Change::Cut {
                rate: 4.0 * MARGIN,
                measured: true
            })
        );
        assert_eq!(s.learned, Some(4.0));
    }

    #[test]
    fn a_429_with_little_evidence_cuts_by_a_fixed_fraction_and_a_burst_of_them_once() {
        let (s, changes) = run(
            10.0,
            &[
                (0.1, false),
                (0.2, true),
                (0.25, true),
                (0.9, true),
                (1.5, true),
            ],
        );
        assert_eq!(
            changes,
            [
                Change::None,
                Change::Cut {
                    rate: 7.0,
                    measured: false
                },
                Change::None,
                Change::None,
                Change::Cut {
                    rate: 7.0 * BLIND_CUT,
                    measured: false
                },
            ]
        );
        assert!((s.rate - 4.9).abs() < 1e-9);
    }

    #[test]
    fn a_quiet_spell_probes_upward_to_the_cap() {
        let mut answers = accepted(4.0, 0.0, 5.0);
        // Then answers every 0.5 s for a minute, no 429.
        answers.extend((1..=120).map(|i| (5.0 + i as f64 * 0.5, false)));
        let (s, changes) = run(10.0, &answers);
        let probes: Vec<f64> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Probe { rate } => Some(*rate),
                _ => None,
            })
            .collect();
        assert_eq!(probes.len(), 12, "one every {PROBE_AFTER:?}: {probes:?}");
        assert!((probes[0] - 3.8 * PROBE_STEP).abs() < 1e-9);
        assert!((s.rate - 3.8 * PROBE_STEP.powi(12)).abs() < 1e-9);
        // And never past --rate.
        let (s, _) = run(
            1.0,
            &(1..2000).map(|i| (i as f64, false)).collect::<Vec<_>>(),
        );
        assert_eq!(s.rate, 1.0);
    }

    #[test]
    fn a_spurious_429_below_the_site_rate_costs_a_step_not_half() {
        // Held at 3.8 (the site allows 4), a 429 from jitter: the measure is our own pace.
        let mut answers = accepted(4.0, 0.0, 5.0);
        answers.extend(accepted(3.8, 5.0, 4.0));
        let (s, _) = run(10.0, &answers);
        assert!((s.rate - 3.8 * MARGIN).abs() < 0.05, "{}", s.rate);
    }

    #[test]
    fn the_pace_never_falls_below_its_floor() {
        let answers: Vec<(f64, bool)> = (0..200).map(|i| (i as f64 * 2.0, true)).collect();
        let (s, _) = run(10.0, &answers);
        assert!((s.rate - MIN_RATE).abs() < 1e-9);
        // The floor is a rate of its own, whatever --rate is.
        let (s, _) = run(1000.0, &accepted(4.0, 0.0, 5.0));
        assert!((s.rate - 3.8).abs() < 1e-9, "{}", s.rate);
    }

    #[tokio::test(start_paused = true)]
    async fn turns_come_one_period_apart() {
        let p = Pacer::new(4.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            p.wait().await;
        }
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        assert_eq!(p.current_rate(), 4.0);
    }
}
