//! Send stage, task batches: a batch is planned (journaled with its key), then submitted under
//! the slot limit and the rate limit, split when refused as a whole. Part of `send`.

use super::*;

impl<K: Description> Engine<K> {
    /// Plans a bulk batch (journaled with its key before any attempt) and sends it.
    pub(super) async fn task_batch(
        &self,
        chunk: &mut Chunk<K::Item>,
        call: Call,
        rows: Vec<usize>,
        items: Vec<K::Item>,
    ) {
        if let Some(why) = self.stop.halted() {
            leave_open(chunk, &rows, &why);
            return;
        }
        let key = uuid_key();
        let id = match self.plan(
            chunk,
            Purpose::Rows,
            std::slice::from_ref(&call),
            Some(&key),
            &rows,
            &items,
        ) {
            Ok(id) => id,
            Err(why) => {
                leave_open(chunk, &rows, &why);
                return;
            }
        };
        for &i in &rows {
            chunk.rows[i].apply(Event::Planned);
        }
        let live = Live {
            id,
            key,
            uncertain: false,
            call,
            rows,
            items,
        };
        Box::pin(self.submit_and_track(chunk, live)).await;
    }

    /// Commits a batch to the journal (with the chunk's closed rows) before its first attempt.
    pub(super) fn plan(
        &self,
        chunk: &Chunk<K::Item>,
        purpose: Purpose,
        calls: &[Call],
        key: Option<&str>,
        rows: &[usize],
        items: &[K::Item],
    ) -> Result<Option<i64>, String> {
        let Some(j) = &self.journal else {
            return Ok(None);
        };
        let numbers: Vec<u64> = rows.iter().map(|&i| chunk.rows[i].raw.row).collect();
        // Straight to text: a tree of each would be built only to be printed.
        let calls = serde_json::to_string(calls).expect("calls serialize");
        let items = serde_json::to_string(items).expect("items serialize");
        let closed = closed_outcomes(&chunk.rows);
        j.plan(
            &NewBatch {
                seq: chunk.seq,
                purpose,
                calls: &calls,
                key,
                rows: &numbers,
                items: &items,
            },
            &closed,
        )
        .map(Some)
        .map_err(|e| self.journal_failed(&e))
    }

    /// Submits a planned bulk batch and follows its task; a batch refused as a whole is split
    /// and each part planned and sent as a batch of its own.
    pub(super) async fn submit_and_track(&self, chunk: &mut Chunk<K::Item>, mut b: Live<K::Item>) {
        let slot = Slot {
            _permit: self.slots.acquire().await.expect("slots stay open"),
            counted: true,
        };
        let range = range_of(chunk, &b.rows);
        for &i in &b.rows {
            chunk.rows[i].apply(Event::Sent);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.task_started(b.rows.len());
        let label = format!("chunk {} ({range})", chunk.seq);
        let answer = self
            .submit(&label, &mut b.key, &mut b.uncertain, b.id, &b.call)
            .await;
        match answer {
            Submitted::Task(t) => {
                for &i in &b.rows {
                    chunk.rows[i].apply(Event::Accepted);
                }
                self.record_submission(b.id, &t);
                self.log.note(&format!(
                    "{label}: task {} submitted with key {} ({} items)",
                    t.id,
                    b.key,
                    b.rows.len()
                ));
                self.track(chunk, &b, t, slot).await;
            }
            Submitted::Refused(why) if b.rows.len() > 1 => {
                self.free(slot);
                self.log.note(&format!(
                    "{label}: the server refused the whole batch ({why}); splitting it to find the rows it refuses"
                ));
                if let Some(id) = b.id
                    && let Some(j) = &self.journal
                    && let Err(e) = j.settle(id, chunk.seq, BatchState::Split, &[])
                {
                    let why = self.journal_failed(&e);
                    leave_open(chunk, &b.rows, &why);
                    return;
                }
                for &i in &b.rows {
                    chunk.rows[i].apply(Event::BatchRefused);
                }
                let mid = b.rows.len().div_ceil(2);
                let (rows, items) = (b.rows, b.items);
                for (rows, items) in [
                    (rows[..mid].to_vec(), items[..mid].to_vec()),
                    (rows[mid..].to_vec(), items[mid..].to_vec()),
                ] {
                    for req in self.kind.requests(&items) {
                        let r: Vec<usize> = req.items.iter().map(|&k| rows[k]).collect();
                        let its: Vec<K::Item> =
                            req.items.iter().map(|&k| items[k].clone()).collect();
                        let call = req
                            .calls
                            .into_iter()
                            .next()
                            .expect("a task request has a call");
                        Box::pin(self.task_batch(chunk, call, r, its)).await;
                    }
                }
            }
            Submitted::Refused(why) => {
                self.free(slot);
                for &i in &b.rows {
                    chunk.rows[i].apply(Event::Refused(why.clone()));
                }
                self.settle(chunk, b.id, &b.rows);
            }
            Submitted::Open(why) => {
                self.free(slot);
                leave_open(chunk, &b.rows, &why);
                self.log.note(&format!("{label}: {why}"));
            }
        }
    }

    pub(super) fn task_started(&self, rows: usize) {
        let c = &self.progress.counters;
        c.tasks.fetch_add(1, Ordering::Relaxed);
        c.sent.fetch_add(rows as u64, Ordering::Relaxed);
        self.progress.refresh();
    }

    /// Gives a task slot back (and takes its task off the progress line's count).
    pub(super) fn free(&self, slot: Slot<'_>) {
        if slot.counted {
            self.progress.counters.tasks.fetch_sub(1, Ordering::Relaxed);
            self.progress.refresh();
        }
        drop(slot);
    }

    pub(super) fn record_submission(&self, id: Option<i64>, t: &TaskSubmitResponse) {
        self.stats.tasks.fetch_add(1, Ordering::Relaxed);
        if let (Some(id), Some(j)) = (id, &self.journal)
            && let Err(e) = j.submitted(id, &t.id, &t.status_url)
        {
            self.journal_failed(&e);
        }
    }

    /// POSTs a bulk request under `key` until the site takes it, refuses it, or the run cannot
    /// wait any more. A full set of task slots is waited out (a new key only while no attempt
    /// can have been applied); 429s are waited out inside the client. Every attempt is
    /// journaled.
    pub(super) async fn submit(
        &self,
        label: &str,
        key: &mut String,
        uncertain: &mut bool,
        id: Option<i64>,
        call: &Call,
    ) -> Submitted {
        let started = tokio::time::Instant::now();
        let slot_wait = self.opts.slot_wait();
        let mut refusals = 0u32;
        loop {
            let answer = self
                .site
                .client
                .post_json::<_, TaskSubmitResponse>(&call.path, &call.body, Some(key))
                .await;
            if let (Some(id), Some(j)) = (id, &self.journal) {
                let outcome = match &answer {
                    Ok(t) => format!("accepted as task {}", t.id),
                    Err(e) => e.to_string(),
                };
                if let Err(e) = j.attempt(id, Some(key), &outcome) {
                    self.alert.note(&format!("{label}: {e}"));
                }
            }
            let e = match answer {
                Ok(t) => return Submitted::Task(t),
                Err(e) => e,
            };
            if e.uncertain() && !*uncertain {
                *uncertain = true;
                if let (Some(id), Some(j)) = (id, &self.journal)
                    && let Err(e) = j.uncertain(id)
                {
                    return Submitted::Open(self.journal_failed(&e));
                }
            }
            if e.is_slot_refusal() {
                refusals += 1;
                let waited = started.elapsed();
                if waited >= slot_wait {
                    let why = format!(
                        "no task slot came free on the site within --slot-wait {}s",
                        slot_wait.as_secs()
                    );
                    self.stop.set(EXIT_INTERRUPTED, why.clone());
                    return Submitted::Open(format!(
                        "not sent: {why}; `csmport resume` sends it{}",
                        if *uncertain {
                            " again under the same key"
                        } else {
                            ""
                        }
                    ));
                }
                let wait = slot_backoff(refusals, jitter()).min(slot_wait - waited);
                match key_after_slot_refusal(*uncertain) {
                    KeyChoice::New => {
                        let new_key = uuid_key();
                        if let (Some(id), Some(j)) = (id, &self.journal)
                            && let Err(e) = j.rekey(id, &new_key)
                        {
                            return Submitted::Open(self.journal_failed(&e));
                        }
                        self.alert.note(&format!(
                            "{label}: server task slots full; waiting {:.1}s, then resubmitting with new key {new_key} (was {key})",
                            wait.as_secs_f64()
                        ));
                        *key = new_key;
                    }
                    KeyChoice::Same => self.alert.note(&format!(
                        "{label}: server task slots full; waiting {:.1}s, then resubmitting under the same key {key} (an earlier attempt may have been applied)",
                        wait.as_secs_f64()
                    )),
                }
                if !self.stop.sleep(wait).await {
                    let why = self.stop.halted().unwrap_or_default();
                    return Submitted::Open(if *uncertain {
                        format!(
                            "not confirmed: an earlier attempt may have been applied, and {}; `csmport resume` sends it again under the same key",
                            why.trim_start_matches("not sent: ")
                        )
                    } else {
                        why
                    });
                }
                continue;
            }
            if e.is_renewal() {
                self.stop.for_fatal(&e);
                return Submitted::Open(format!("not sent: {e}; `csmport resume` sends it"));
            }
            if self.stop.for_fatal(&e) {
                return Submitted::Open(if e.is_auth() {
                    format!("not sent: authentication failed: {}", e.explained())
                } else {
                    format!("not sent: {e}")
                });
            }
            if e.is_rate_limited() {
                let why = format!(
                    "the site kept answering 429 (rate limit) for --slot-wait {}s",
                    slot_wait.as_secs()
                );
                self.stop.set(EXIT_INTERRUPTED, why.clone());
                return Submitted::Open(format!("not sent: {why}; `csmport resume` sends it"));
            }
            return match e.status() {
                Some(400 | 409 | 413 | 422) => Submitted::Refused(e.message().to_string()),
                Some(s) if (400..500).contains(&s) => {
                    self.stop
                        .set(EXIT_USAGE, format!("the site refused a request: {e}"));
                    Submitted::Open(format!("not sent: the site refused the request: {e}"))
                }
                _ if *uncertain => Submitted::Open(format!(
                    "not confirmed: {e}; the batch may or may not have been applied: `csmport resume` on this run folder sends it again safely (same idempotency key)"
                )),
                _ => Submitted::Open(format!(
                    "not sent: {e}; `csmport resume` on this run folder sends it"
                )),
            };
        }
    }
}
