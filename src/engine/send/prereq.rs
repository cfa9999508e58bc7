//! Send stage, prerequisite tasks: what deciding a chunk needs made first (organizations
//! customers name), journaled and run under the same slots and pacing. Part of `send`.

use super::*;

impl<K: Description> Engine<K> {
    /// Finishes a prerequisite task a resumed chunk had started: poll it, or send its recorded
    /// body again under its key, to its end.
    pub(super) async fn resume_prerequisite(&self, b: &journal::Batch) {
        let call: Option<Call> = serde_json::from_value::<Vec<Call>>(b.calls.clone())
            .ok()
            .and_then(|c| c.into_iter().next());
        let (Some(call), Some(key)) = (call, b.key.clone()) else {
            return;
        };
        let what = format!("chunk {}: resumed prerequisite", b.seq);
        let _ = self
            .prerequisite(
                b.seq,
                &what,
                call,
                Some((b.id, key, b.task_id.clone(), b.status_url.clone())),
            )
            .await;
    }

    /// Runs a prerequisite bulk task (journaled with chunk `seq`) to its end, under the same
    /// slot limit, pacing and key rules as every batch.
    pub(super) async fn prerequisite(
        &self,
        seq: u64,
        what: &str,
        call: Call,
        recorded: Option<(i64, String, Option<String>, Option<String>)>,
    ) -> Result<TaskStatusResponse, String> {
        if let Some(why) = self.stop.halted() {
            return Err(why);
        }
        let (id, mut key, task, status_url, mut uncertain) = match recorded {
            Some((id, key, task, url)) => (Some(id), key, task, url, true),
            None => {
                let key = uuid_key();
                let id = match &self.journal {
                    Some(j) => {
                        let calls = serde_json::to_string(&[&call]).expect("serializes");
                        Some(
                            j.plan(
                                &NewBatch {
                                    seq,
                                    purpose: Purpose::Prerequisite,
                                    calls: &calls,
                                    key: Some(&key),
                                    rows: &[],
                                    items: "[]",
                                },
                                &[],
                            )
                            .map_err(|e| self.journal_failed(&e))?,
                        )
                    }
                    None => None,
                };
                (id, key, None, None, false)
            }
        };
        let _slot = self.slots.acquire().await.expect("slots stay open");
        let submitted = match task {
            Some(task) => TaskSubmitResponse {
                status_url: status_url.unwrap_or_else(|| paths::task(&task)),
                id: task,
            },
            None => {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                match self.submit(what, &mut key, &mut uncertain, id, &call).await {
                    Submitted::Task(t) => {
                        self.record_submission(id, &t);
                        self.log
                            .note(&format!("{what}: task {} with key {key}", t.id));
                        t
                    }
                    Submitted::Refused(why) => {
                        self.settle_prerequisite(id, seq);
                        return Err(format!("the site refused it: {why}"));
                    }
                    Submitted::Open(why) => return Err(why),
                }
            }
        };
        match self.poll(&submitted, &self.prerequisite_planner).await {
            Ok(s) => {
                self.settle_prerequisite(id, seq);
                Ok(s)
            }
            Err(TrackError::TimedOut { .. }) => Err(format!(
                "task {} was still running after {}s; `csmport resume` waits for it",
                submitted.id,
                self.poll.timeout.as_secs()
            )),
            Err(TrackError::Fetch(e)) => {
                self.stop.for_fatal(&e);
                Err(format!("task {} could not be followed: {e}", submitted.id))
            }
        }
    }

    pub(super) fn settle_prerequisite(&self, id: Option<i64>, seq: u64) {
        if let (Some(id), Some(j)) = (id, &self.journal)
            && let Err(e) = j.settle(id, seq, BatchState::Done, &[])
        {
            self.journal_failed(&e);
        }
    }
}

impl<K: Description> Prerequisites for Engine<K> {
    fn run_task<'a>(
        &'a self,
        seq: u64,
        what: String,
        call: Call,
    ) -> BoxFuture<'a, Result<TaskStatusResponse, String>> {
        Box::pin(async move { self.prerequisite(seq, &what, call, None).await })
    }
}
