//! Send stage, resuming: a chunk of a resumed run takes back what the journal holds (closed
//! rows, batches on their way, calls whose answers were lost). Part of `send`.

use super::*;

impl<K: Description> Engine<K> {
    /// Applies what the journal says of a chunk being resumed: closed rows, and batches that
    /// were on their way (polled again, or sent again under their recorded key; synchronous
    /// calls whose answers were lost are decided again). False when the run must not go on.
    pub(super) async fn resume_chunk(&self, chunk: &mut Chunk<K::Item>, rec: &ChunkRecord) -> bool {
        let Some(journal) = &self.journal else {
            return true;
        };
        let read = journal
            .outcomes(rec.first_row, rec.last_row)
            .and_then(|o| Ok((o, journal.batches(rec.seq)?)));
        let (outcomes, batches) = match read {
            Ok(x) => x,
            Err(e) => {
                let why = format!("the run journal could not be read: {e}");
                self.stop.set(EXIT_USAGE, why.clone());
                for r in &mut chunk.rows {
                    r.apply_noting(Event::Unsettled, &format!("not reported: {why}"));
                }
                return false;
            }
        };
        // `--verify`: rows an earlier attempt closed as succeeded are read back now, as this
        // attempt's would be (their verdicts were not journaled).
        let mut recorded_ok = Vec::new();
        for (i, r) in chunk.rows.iter_mut().enumerate() {
            if let Some(o) = outcomes.get(&r.raw.row) {
                r.apply(Event::Recorded(o.clone()));
                if let Some(item) = chunk.items[i].take()
                    && self.opts.verify
                    && matches!(o, Outcome::Succeeded { .. })
                {
                    recorded_ok.push((i, item));
                }
            }
        }
        if !recorded_ok.is_empty() {
            self.verify(chunk, &recorded_ok).await;
        }
        if rec.done {
            let unknown = chunk.rows.iter().filter(|r| r.state().is_open()).count();
            if unknown == 0 {
                chunk.replayed = true;
                return true;
            }
            // Not evidence of anything: those rows stay open and are decided again below from
            // what the site holds now, as every row no live batch carries.
            for r in &mut chunk.rows {
                r.apply_noting(
                    Event::Unsettled,
                    "outcome unknown: the journal closed this row's chunk without its outcome; decided again from what the site holds",
                );
            }
            self.log.note(&format!(
                "chunk {}: the journal closed it without the outcome of {unknown} rows; they are decided again from what the site holds",
                chunk.seq
            ));
        }
        for b in batches.into_iter().filter(|b| b.state.is_live()) {
            if b.purpose == Purpose::Prerequisite {
                self.resume_prerequisite(&b).await;
                continue;
            }
            let rows: Vec<usize> = b.rows.iter().filter_map(|n| chunk.index_of(*n)).collect();
            let items: Option<Vec<K::Item>> = serde_json::from_value(b.items.clone()).ok();
            let call: Option<Call> = serde_json::from_value::<Vec<Call>>(b.calls.clone())
                .ok()
                .and_then(|c| c.into_iter().next());
            match (journal::resume_action(&b), items, call) {
                (ResumeAction::Redecide, items, _) => {
                    if let Err(e) = journal.settle(b.id, b.seq, BatchState::Abandoned, &[]) {
                        self.journal_failed(&e);
                    }
                    if K::READ_BACK_UNANSWERED
                        && let Some(items) = items.filter(|i| i.len() == rows.len())
                    {
                        self.settle_unanswered(chunk, &rows, &items).await;
                    }
                    self.log.note(&format!(
                        "chunk {}: resumed; {} rows whose calls had no answer are decided again from what the site holds now",
                        chunk.seq,
                        rows.len()
                    ));
                }
                (action, Some(items), Some(call))
                    if items.len() == rows.len() && rows.len() == b.rows.len() =>
                {
                    for &i in &rows {
                        chunk.items[i] = None;
                        let r = &mut chunk.rows[i];
                        if r.state().is_open() {
                            r.apply(Event::Planned);
                            r.apply(Event::Sent);
                        }
                    }
                    let live = Live {
                        id: Some(b.id),
                        key: b.key.clone().unwrap_or_else(uuid_key),
                        // A crash may have come mid-attempt: the key is kept whatever happens.
                        uncertain: true,
                        call,
                        rows,
                        items,
                    };
                    match (action, &b.task_id) {
                        (ResumeAction::Poll, Some(task)) => {
                            self.log.note(&format!(
                                "chunk {}: resumed; polling its task {task} again",
                                chunk.seq
                            ));
                            for &i in &live.rows {
                                chunk.rows[i].apply(Event::Accepted);
                            }
                            let submitted = TaskSubmitResponse {
                                id: task.clone(),
                                status_url: b
                                    .status_url
                                    .clone()
                                    .unwrap_or_else(|| paths::task(task)),
                            };
                            let slot = Slot {
                                _permit: self.slots.acquire().await.expect("slots stay open"),
                                counted: false,
                            };
                            self.track(chunk, &live, submitted, slot).await;
                        }
                        _ => {
                            self.log.note(&format!(
                                "chunk {}: resumed; sending the recorded batch again with its key {}",
                                chunk.seq, live.key
                            ));
                            Box::pin(self.submit_and_track(chunk, live)).await;
                        }
                    }
                }
                _ => {
                    // A record that cannot be read back into a batch cannot be sent again
                    // safely: its rows stay open, and the user checks the site.
                    for &i in &rows {
                        chunk.items[i] = None;
                        chunk.rows[i].apply_noting(
                            Event::Unsettled,
                            "outcome unknown: the journal's record of this row's batch cannot be read; check the site",
                        );
                    }
                }
            }
        }
        true
    }

    /// Calls a killed run may have made, without an answer: rows the site shows done are
    /// closed so (with a note); the others stay open to be decided again. A failed read
    /// leaves them all to deciding, which reads the site itself.
    pub(super) async fn settle_unanswered(
        &self,
        chunk: &mut Chunk<K::Item>,
        rows: &[usize],
        items: &[K::Item],
    ) {
        let cx = self.cx(chunk.seq);
        let Ok(found) = self.kind.read_back(&cx, items).await else {
            return;
        };
        for (&i, f) in rows.iter().zip(found) {
            if !matches!(f, Found::Same(_)) || !chunk.rows[i].state().is_open() {
                continue;
            }
            chunk.items[i] = None;
            let r = &mut chunk.rows[i];
            r.apply(Event::Planned);
            r.apply(Event::Sent);
            r.apply(Event::ReadBack {
                found: f,
                settled: true,
            });
        }
    }
}
