//! A row's life, as one pure state machine. A row is *pending* (read, checked, nothing sent),
//! *planned* (in a batch whose body and key the journal holds), *sent* (a request carrying it
//! went out and no answer said what happened), *in a task* (the site accepted its batch), or
//! *closed* with its one final outcome. Only evidence closes a row: a local check, a server
//! refusal naming it, a task's terminal status with its failures, a synchronous answer, or a
//! read-back made once its task had ended. Everything else (timeouts, lost answers, full task
//! slots, 429s, interruptions) leaves it open for `resume`. Used by every engine stage; the
//! table test below lists every transition.

use crate::read::RawRow;

/// Where a row's failure happened, as written to `_stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Read,
    Validate,
    /// A reference to another record (an organization by its CRM id) that no record, or more
    /// than one, answers to.
    Resolve,
    Send,
    Task,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Validate => "validate",
            Stage::Resolve => "resolve",
            Stage::Send => "send",
            Stage::Task => "task",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "read" => Stage::Read,
            "validate" => Stage::Validate,
            "resolve" => Stage::Resolve,
            "send" => Stage::Send,
            "task" => Stage::Task,
            _ => return None,
        })
    }
}

/// A closed row's final outcome (DESIGN invariant 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        id: Option<String>,
    },
    Failed {
        stage: Stage,
        field: String,
        error: String,
    },
    Skipped {
        reason: String,
    },
}

impl Outcome {
    pub fn failed(stage: Stage, field: impl Into<String>, error: impl Into<String>) -> Outcome {
        Outcome::Failed {
            stage,
            field: field.into(),
            error: error.into(),
        }
    }
}

/// Where a row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Read and checked; no request carries it yet.
    Pending,
    /// In a batch whose body (and key) the journal holds; not sent yet.
    Planned,
    /// A request carrying it went out; no answer says whether it was applied.
    Sent,
    /// The site accepted its batch as a task that has not been seen to end.
    InTask,
    /// Final.
    Closed(Outcome),
}

impl State {
    pub fn is_open(&self) -> bool {
        !matches!(self, State::Closed(_))
    }

    /// A closed succeeded row.
    pub fn succeeded(&self) -> bool {
        matches!(self, State::Closed(Outcome::Succeeded { .. }))
    }
}

/// What reading an entity back found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The entity, exactly as the row gives it (everything the row sets), with its id.
    Same(Option<String>),
    /// The entity exists with other values.
    Drifted,
    /// The site does not have it.
    Missing,
    /// The site could not be asked (customers by email without `--service-desk`).
    CannotTell,
}

/// What happened to a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A check closed it before anything was sent: a read problem, a blank row, an invalid
    /// cell, a duplicate, or a decision against what the site holds (unchanged, refused).
    Checked(Outcome),
    /// Its batch (body and key) was committed to the journal.
    Planned,
    /// A request carrying it went out.
    Sent,
    /// The site did not take the request (task slots full, 429, 503, no connection): nothing
    /// was applied, the row waits.
    NotTaken,
    /// The site refused its batch as a whole for what some row holds: the batch is split and
    /// the row goes in a part, planned anew.
    BatchRefused,
    /// The site refused a request that carried this row alone.
    Refused(String),
    /// A synchronous request carrying it was answered with success.
    Answered(Option<String>),
    /// The site accepted its batch as a task.
    Accepted,
    /// Its task ended (FINISHED or FAILED) naming this row in its failures.
    TaskFailure { field: String, error: String },
    /// Its task ended FINISHED, naming no failure of this row and none it could not place.
    TaskFinished(Option<String>),
    /// What reading it back found. `settled`: nothing more can change it (its task had ended,
    /// or the task is gone from the site), so a missing or different entity is evidence too.
    ReadBack { found: Found, settled: bool },
    /// Nothing was learnt: a task still running at the timeout, a failed poll, an answer lost
    /// after the retries, a failed lookup, an interruption.
    Unsettled,
    /// The run journal holds the outcome an earlier part of this run closed it with (a
    /// resumed run starts its rows afresh and takes their outcomes back from the journal).
    Recorded(Outcome),
    /// The site gave the id of what a row that succeeded without one made (organizations made
    /// by name): the outcome stays succeeded, its report gains the id.
    Identified(String),
}

/// The transition table: where `state` goes on `event`, or `None` when the event cannot
/// happen there (a closed row never reopens).
pub fn step(state: &State, event: &Event) -> Option<State> {
    use Event as E;
    use State as S;
    let not_applied = |why: &str| {
        S::Closed(Outcome::failed(
            Stage::Task,
            "",
            format!("not applied: {why}, and the site does not have this row as it was sent"),
        ))
    };
    Some(match (state, event) {
        (S::Closed(Outcome::Succeeded { id: None }), E::Identified(id)) => {
            S::Closed(Outcome::Succeeded {
                id: Some(id.clone()),
            })
        }
        (S::Closed(_), _) => return None,
        (_, E::Recorded(o)) => S::Closed(o.clone()),
        (S::Pending, E::Checked(o)) => S::Closed(o.clone()),
        (S::Pending, E::Planned) => S::Planned,
        (S::Planned | S::Sent, E::Sent) => S::Sent,
        // A refusal that took nothing leaves the row where it was: a batch that may have been
        // applied by an earlier attempt stays sent.
        (S::Planned | S::Sent, E::NotTaken) => state.clone(),
        (S::Planned | S::Sent, E::BatchRefused) => S::Pending,
        (S::Planned | S::Sent, E::Refused(why)) => S::Closed(Outcome::failed(
            Stage::Send,
            "",
            format!("the server refused this row: {why}"),
        )),
        (S::Sent, E::Answered(id)) => S::Closed(Outcome::Succeeded { id: id.clone() }),
        (S::Planned | S::Sent, E::Accepted) => S::InTask,
        (S::InTask, E::TaskFailure { field, error }) => {
            S::Closed(Outcome::failed(Stage::Task, field.clone(), error.clone()))
        }
        (S::InTask, E::TaskFinished(id)) => S::Closed(Outcome::Succeeded { id: id.clone() }),
        // On the site as sent once its task has ended, or after a synchronous request whose
        // answer was lost (there is no task to wait for).
        (
            S::InTask,
            E::ReadBack {
                found: Found::Same(id),
                settled: true,
            },
        )
        | (
            S::Sent,
            E::ReadBack {
                found: Found::Same(id),
                ..
            },
        ) => S::Closed(Outcome::Succeeded { id: id.clone() }),
        // Not there (or different) once nothing can change it any more: not applied.
        (
            S::InTask,
            E::ReadBack {
                found: Found::Missing | Found::Drifted,
                settled: true,
            },
        ) => not_applied("its task ended without applying it"),
        // A running task may still apply it; a lost answer may still be on its way; and a
        // site that cannot be asked tells nothing.
        (S::InTask | S::Sent, E::ReadBack { .. }) => state.clone(),
        (S::Pending | S::Planned | S::Sent | S::InTask, E::Unsettled) => state.clone(),
        _ => return None,
    })
}

/// One input row and where it is. Its state changes only through `apply` (the table above).
#[derive(Debug, Clone)]
pub struct Row {
    pub raw: RawRow,
    state: State,
    /// Why an open row is still open (for the report and the log).
    pub note: String,
}

impl Row {
    pub fn new(raw: RawRow) -> Row {
        Row {
            raw,
            state: State::Pending,
            note: String::new(),
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Applies `event`; an event the table does not allow is a bug in the caller and leaves
    /// the row as it was (never closing it on a guess).
    pub fn apply(&mut self, event: Event) {
        match step(&self.state, &event) {
            Some(next) => self.state = next,
            None => debug_assert!(
                matches!(self.state, State::Closed(_)),
                "row {}: {event:?} cannot happen in {:?}",
                self.raw.row,
                self.state
            ),
        }
    }

    /// `apply`, with why the row stays open if it does.
    pub fn apply_noting(&mut self, event: Event, why: &str) {
        self.apply(event);
        if self.state.is_open() {
            self.note = why.to_string();
        }
    }

    pub fn close(&mut self, outcome: Outcome) {
        self.apply(Event::Checked(outcome));
    }
}

/// How emails and names are compared: trimmed, lower-cased.
pub fn match_key(s: &str) -> String {
    s.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> State {
        State::Closed(Outcome::Succeeded {
            id: Some(id.into()),
        })
    }

    fn failed(stage: Stage, error: &str) -> State {
        State::Closed(Outcome::failed(stage, "", error))
    }

    /// Every transition, with the fault paths of issue 14 named where they pass.
    #[test]
    fn every_transition() {
        use Event as E;
        use State as S;
        let invalid = Outcome::failed(Stage::Validate, "email", "bad");
        let read_back = |found: Found, settled| E::ReadBack { found, settled };
        let not_applied = "not applied: its task ended without applying it, and the site does not have this row as it was sent";
        let cases: Vec<(&str, S, E, Option<S>)> = vec![
            (
                "a local check closes",
                S::Pending,
                E::Checked(invalid.clone()),
                Some(S::Closed(invalid.clone())),
            ),
            (
                "unchanged on the site",
                S::Pending,
                E::Checked(Outcome::Succeeded {
                    id: Some("1".into()),
                }),
                Some(ok("1")),
            ),
            (
                "deciding finds nothing to do (a delete of what the site does not have)",
                S::Pending,
                E::Checked(Outcome::Skipped {
                    reason: "not on the site".into(),
                }),
                Some(S::Closed(Outcome::Skipped {
                    reason: "not on the site".into(),
                })),
            ),
            (
                "resumed: the journal's outcome",
                S::Pending,
                E::Recorded(invalid.clone()),
                Some(S::Closed(invalid.clone())),
            ),
            (
                "resumed: the journal's outcome of a row in a task",
                S::InTask,
                E::Recorded(Outcome::Succeeded { id: None }),
                Some(S::Closed(Outcome::Succeeded { id: None })),
            ),
            (
                "a journal never reopens a closed row",
                S::Closed(invalid.clone()),
                E::Recorded(Outcome::Succeeded { id: None }),
                None,
            ),
            (
                "a succeeded row learns its id",
                S::Closed(Outcome::Succeeded { id: None }),
                E::Identified("7".into()),
                Some(ok("7")),
            ),
            (
                "an id is never swapped",
                ok("1"),
                E::Identified("7".into()),
                None,
            ),
            (
                "a failed row gains no id",
                S::Closed(invalid.clone()),
                E::Identified("7".into()),
                None,
            ),
            (
                "an open row gains no id",
                S::InTask,
                E::Identified("7".into()),
                None,
            ),
            ("planned", S::Pending, E::Planned, Some(S::Planned)),
            ("sent", S::Planned, E::Sent, Some(S::Sent)),
            ("sent again", S::Sent, E::Sent, Some(S::Sent)),
            // 1, 3: a slot refusal or a 429 takes nothing: the row waits, never fails.
            (
                "slot refusal before any answer",
                S::Planned,
                E::NotTaken,
                Some(S::Planned),
            ),
            (
                "slot refusal after a lost answer (10: same key)",
                S::Sent,
                E::NotTaken,
                Some(S::Sent),
            ),
            // 6: a refused batch is split, each part planned as a batch of its own.
            ("batch refused", S::Sent, E::BatchRefused, Some(S::Pending)),
            (
                "refused alone",
                S::Sent,
                E::Refused("bad email".into()),
                Some(failed(
                    Stage::Send,
                    "the server refused this row: bad email",
                )),
            ),
            ("accepted", S::Sent, E::Accepted, Some(S::InTask)),
            (
                "accepted on a resumed resend",
                S::Planned,
                E::Accepted,
                Some(S::InTask),
            ),
            (
                "answered",
                S::Sent,
                E::Answered(Some("p1".into())),
                Some(ok("p1")),
            ),
            (
                "task names it",
                S::InTask,
                E::TaskFailure {
                    field: "Region".into(),
                    error: "Invalid".into(),
                },
                Some(S::Closed(Outcome::failed(Stage::Task, "Region", "Invalid"))),
            ),
            (
                "task finished",
                S::InTask,
                E::TaskFinished(Some("q1".into())),
                Some(ok("q1")),
            ),
            (
                "read back after the task ended: there",
                S::InTask,
                read_back(Found::Same(Some("q2".into())), true),
                Some(ok("q2")),
            ),
            (
                "read back after the task ended: missing",
                S::InTask,
                read_back(Found::Missing, true),
                Some(failed(Stage::Task, not_applied)),
            ),
            (
                "read back after the task ended: different",
                S::InTask,
                read_back(Found::Drifted, true),
                Some(failed(Stage::Task, not_applied)),
            ),
            // 5: FAILED with no failures and no way to read back: open, not failed.
            (
                "read back impossible",
                S::InTask,
                read_back(Found::CannotTell, true),
                Some(S::InTask),
            ),
            // 4: a task still running is never read back into a failure.
            (
                "read back while the task runs: missing",
                S::InTask,
                read_back(Found::Missing, false),
                Some(S::InTask),
            ),
            (
                "read back while the task runs: there",
                S::InTask,
                read_back(Found::Same(None), false),
                Some(S::InTask),
            ),
            (
                "lost answer, then found",
                S::Sent,
                read_back(Found::Same(Some("p2".into())), false),
                Some(ok("p2")),
            ),
            (
                "lost answer, not found (yet)",
                S::Sent,
                read_back(Found::Missing, false),
                Some(S::Sent),
            ),
            // 4: timed out; 2: a prerequisite still being made; 9: interrupted.
            ("timed out", S::InTask, E::Unsettled, Some(S::InTask)),
            ("send gave up", S::Sent, E::Unsettled, Some(S::Sent)),
            (
                "not sent, run stopped",
                S::Pending,
                E::Unsettled,
                Some(S::Pending),
            ),
            (
                "planned, run stopped",
                S::Planned,
                E::Unsettled,
                Some(S::Planned),
            ),
            // Impossible: closed rows never reopen; no answer for what was never sent.
            ("closed stays closed", ok("1"), E::Unsettled, None),
            (
                "closed is not refused",
                ok("1"),
                E::Refused("x".into()),
                None,
            ),
            (
                "pending cannot be answered",
                S::Pending,
                E::Answered(None),
                None,
            ),
            ("pending has no task", S::Pending, E::Accepted, None),
            (
                "a task cannot be refused",
                S::InTask,
                E::Refused("x".into()),
                None,
            ),
            (
                "planned cannot finish",
                S::Planned,
                E::TaskFinished(None),
                None,
            ),
            (
                "planned is not read back",
                S::Planned,
                read_back(Found::Missing, true),
                None,
            ),
            (
                "only pending rows are checked",
                S::Planned,
                E::Checked(invalid.clone()),
                None,
            ),
        ];
        for (what, state, event, want) in cases {
            assert_eq!(step(&state, &event), want, "{what}: {state:?} + {event:?}");
        }
    }

    #[test]
    fn open_rows_say_why() {
        let mut r = Row::new(RawRow {
            row: 1,
            cells: csv::StringRecord::new(),
            problem: None,
        });
        r.apply(Event::Planned);
        r.apply_noting(Event::Unsettled, "interrupted");
        assert_eq!(
            (r.state().clone(), r.note.as_str()),
            (State::Planned, "interrupted")
        );
        r.apply(Event::Accepted);
        r.apply_noting(Event::TaskFinished(None), "ignored once closed");
        assert!(r.state().succeeded());
        assert_eq!(r.note, "interrupted");
    }
}
