//! Send stage, settling task batches: a submitted task is polled to a terminal status, its
//! failures placed, what it leaves unclear read back. Part of `send`.

use super::*;

impl<K: Description> Engine<K> {
    /// Polls a task until it is terminal or `--task-timeout` has passed, each poll where
    /// `planner` puts it (and what the task took, taught to it); the polls are counted.
    pub(super) async fn poll(
        &self,
        t: &TaskSubmitResponse,
        planner: &std::sync::Mutex<PollPlanner>,
    ) -> Result<TaskStatusResponse, TrackError<crate::site::client::ApiError>> {
        let path = api::status_url_to_path(&t.status_url).unwrap_or_else(|| paths::task(&t.id));
        let client = &self.site.client;
        let noted = std::sync::atomic::AtomicBool::new(false);
        let first = planner.lock().expect("planner lock").first(&self.poll);
        let next = |lo, queued| {
            planner
                .lock()
                .expect("planner lock")
                .next_seen(lo, queued, &self.poll)
        };
        let tracked = track::until_terminal(&self.poll, first, next, || async {
            let r = client.get_json::<TaskStatusResponse>(&path).await;
            if let Ok(s) = &r
                && let TaskStatus::Other(v) = &s.status
                && !noted.swap(true, Ordering::Relaxed)
            {
                self.alert.note(&format!(
                    "task {}: the site reports the status '{v}', which csmport does not know; it is taken as not finished (--task-timeout bounds the wait)",
                    t.id
                ));
            }
            r
        })
        .await;
        let polls = match &tracked {
            Ok(t) => t.polls,
            Err(TrackError::TimedOut { polls, .. }) => *polls,
            Err(TrackError::Fetch(_)) => 0,
        };
        self.stats
            .polls
            .fetch_add(u64::from(polls), Ordering::Relaxed);
        self.stats.polled.fetch_add(1, Ordering::Relaxed);
        let tracked = tracked?;
        self.log.note(&format!(
            "task {}: {} polls, the first at {} ms; seen running at {} ms, ended at {} ms",
            t.id,
            tracked.polls,
            first.as_millis(),
            tracked.pending_at.as_millis(),
            tracked.ended_at.as_millis()
        ));
        planner.lock().expect("planner lock").record_task(
            tracked.pending_at,
            tracked.ended_at,
            tracked.polls,
            tracked.queued_at,
        );
        Ok(tracked.status)
    }

    /// Polls a batch's task to a terminal status and settles its rows from it.
    pub(super) async fn track(
        &self,
        chunk: &mut Chunk<K::Item>,
        b: &Live<K::Item>,
        t: TaskSubmitResponse,
        slot: Slot<'_>,
    ) {
        let polled = self.poll(&t, &self.planner).await;
        if polled.is_ok() {
            chunk.changed = Some(std::time::Instant::now());
        }
        // The task has ended (or is given up on): its slot is free for the next batch while
        // this one's rows are settled.
        self.free(slot);
        match polled {
            Ok(status) => self.reconcile(chunk, b, &status).await,
            Err(TrackError::TimedOut { last, .. }) => {
                let state = last
                    .map(|l| l.status.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into());
                let why = format!(
                    "outcome unknown: task {} was still {state} after {}s (--task-timeout); `csmport resume` on this run folder polls it again",
                    t.id,
                    self.poll.timeout.as_secs()
                );
                self.log.note(&format!("chunk {}: {why}", chunk.seq));
                leave_open(chunk, &b.rows, &why);
            }
            Err(TrackError::Fetch(e)) if e.status() == Some(404) => {
                // Ended tasks are kept a few days: one the site no longer knows ended long
                // ago, and only the entities themselves can say what it did.
                let why = format!("task {} is no longer known to the site", t.id);
                self.log.note(&format!(
                    "chunk {}: {why}; reading its rows back",
                    chunk.seq
                ));
                let all: Vec<usize> = (0..b.rows.len()).collect();
                let note = format!(
                    "outcome unknown: {why}, and the row could not be read back; check the site"
                );
                self.read_back_settled(chunk, b, &all, &note).await;
            }
            Err(TrackError::Fetch(e)) => {
                self.stop.for_fatal(&e);
                let why = format!(
                    "outcome unknown: polling task {} failed: {e}; `csmport resume` on this run folder polls it again",
                    t.id
                );
                leave_open(chunk, &b.rows, &why);
            }
        }
        self.settle(chunk, b.id, &b.rows);
    }

    /// Settles a batch's rows from its task's terminal status: failures close the rows they
    /// name; rows the status cannot settle are read back (the task has ended).
    pub(super) async fn reconcile(
        &self,
        chunk: &mut Chunk<K::Item>,
        b: &Live<K::Item>,
        status: &TaskStatusResponse,
    ) {
        self.log.note(&format!(
            "chunk {}: task {} {} with {}",
            chunk.seq,
            status.id,
            status.status.as_str(),
            crate::engine::report::count(status.failures.len() as u64, "failure")
        ));
        let cx = self.cx(chunk.seq);
        let keys: Vec<Vec<String>> = b.items.iter().map(|i| self.kind.keys(i)).collect();
        let unmatched = reconcile::unmatched_ids(&keys, &status.failures);
        let resolved = if unmatched.is_empty() {
            HashMap::new()
        } else {
            self.kind.failure_keys(&cx, &unmatched).await
        };
        let placed = reconcile::place(&keys, &status.failures, &resolved);
        for f in &placed.unplaced {
            self.log.note(&format!(
                "chunk {}: task {} failure for '{}' matches no row: {}",
                chunk.seq,
                status.id,
                f.entity_id,
                reconcile::describe(f)
            ));
        }
        let mut unsure = Vec::new();
        for (k, &i) in b.rows.iter().enumerate() {
            let v = reconcile::verdict(&status.status, &placed.per_item[k], placed.unplaced.len());
            match v.event(self.kind.id_of(&b.items[k], None)) {
                Some(e) => chunk.rows[i].apply(e),
                None => unsure.push(k),
            }
        }
        if !unsure.is_empty() {
            let note = reconcile::unsettled_note(&status.id, &status.status, &placed.unplaced);
            self.read_back_settled(chunk, b, &unsure, &note).await;
        }
        self.fill_ids(chunk, b).await;
    }

    /// Reads back items (by index in the batch) whose task has ended, and settles their rows.
    pub(super) async fn read_back_settled(
        &self,
        chunk: &mut Chunk<K::Item>,
        b: &Live<K::Item>,
        which: &[usize],
        note: &str,
    ) {
        let items: Vec<K::Item> = which.iter().map(|&k| b.items[k].clone()).collect();
        let cx = self.cx_after(chunk);
        let found = match self.kind.read_back(&cx, &items).await {
            Ok(f) if f.len() == items.len() => f,
            Ok(_) => vec![Found::CannotTell; items.len()],
            Err(e) => {
                self.log.note(&format!(
                    "chunk {}: reading {} rows back failed ({e}); they stay open",
                    chunk.seq,
                    items.len()
                ));
                vec![Found::CannotTell; items.len()]
            }
        };
        let applied = found.iter().filter(|f| matches!(f, Found::Same(_))).count();
        let unknown = found.iter().filter(|f| **f == Found::CannotTell).count();
        self.log.note(&format!(
            "chunk {}: read back: {applied} of {} rows are on the site as sent{}",
            chunk.seq,
            items.len(),
            if unknown > 0 {
                format!(", {unknown} cannot be told (they stay open)")
            } else {
                String::new()
            }
        ));
        // What would settle a row that could not be told: said where it stays open.
        let hint = match (self.opts.kind.is_customer(), &self.opts.service_desk) {
            (true, None) => Some(
                "; customers are found by email only through a service desk's customer listing: `csmport resume --service-desk ID` can settle it",
            ),
            (true, Some(_)) => Some(
                "; the service desk's customer listing did not show it (a listing that hides emails cannot settle it): check the site",
            ),
            (false, _) => None,
        };
        for (k, f) in which.iter().zip(found) {
            let i = b.rows[*k];
            let note = match hint.filter(|_| f == Found::CannotTell) {
                Some(h) => format!("{note}{h}"),
                None => note.to_string(),
            };
            chunk.rows[i].apply_noting(
                Event::ReadBack {
                    found: f,
                    settled: true,
                },
                &note,
            );
        }
    }

    /// Ids for succeeded rows that have none (organizations by name).
    pub(super) async fn fill_ids(&self, chunk: &mut Chunk<K::Item>, b: &Live<K::Item>) {
        let wanted: Vec<usize> = (0..b.rows.len())
            .filter(|&k| {
                matches!(
                    chunk.rows[b.rows[k]].state(),
                    State::Closed(Outcome::Succeeded { id: None })
                )
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let items: Vec<K::Item> = wanted.iter().map(|&k| b.items[k].clone()).collect();
        let cx = self.cx(chunk.seq);
        let ids = self.kind.fill_ids(&cx, &items).await;
        for (k, id) in wanted.into_iter().zip(ids) {
            if let Some(id) = id {
                chunk.rows[b.rows[k]].apply(Event::Identified(id));
            }
        }
    }

    /// Records the rows a batch closed; the batch is done once all of them are.
    pub(super) fn settle(&self, chunk: &Chunk<K::Item>, id: Option<i64>, rows: &[usize]) {
        let (Some(id), Some(j)) = (id, &self.journal) else {
            return;
        };
        let closed: Vec<(u64, &Outcome)> = rows
            .iter()
            .filter_map(|&i| match &chunk.rows[i].state() {
                State::Closed(o) => Some((chunk.rows[i].raw.row, o)),
                _ => None,
            })
            .collect();
        let state = if closed.len() == rows.len() {
            BatchState::Done
        } else if rows
            .iter()
            .any(|&i| *chunk.rows[i].state() == State::InTask)
        {
            BatchState::Submitted
        } else {
            BatchState::Planned
        };
        if let Err(e) = j.settle(id, chunk.seq, state, &closed) {
            self.journal_failed(&e);
        }
    }
}
