//! Send stage, synchronous calls: each row's calls sent, settled by their answers or, when an
//! answer is lost, by reading the site; `--verify` reads succeeded rows back. Part of `send`.

use super::*;

impl<K: Description> Engine<K> {
    /// Synchronous calls for one batch of rows (usually one row), made in order. A call whose
    /// answer is lost is settled by reading the site back, never by sending it again blindly.
    pub(super) async fn call_batch(
        &self,
        chunk: &mut Chunk<K::Item>,
        calls: Vec<Call>,
        rows: Vec<usize>,
        items: Vec<K::Item>,
    ) {
        if let Some(why) = self.stop.halted() {
            leave_open(chunk, &rows, &why);
            return;
        }
        let id = match self.plan(chunk, Purpose::Rows, &calls, None, &rows, &items) {
            Ok(id) => id,
            Err(why) => {
                leave_open(chunk, &rows, &why);
                return;
            }
        };
        let _permit = self.calls.acquire().await.expect("calls stay open");
        for &i in &rows {
            chunk.rows[i].apply(Event::Planned);
            chunk.rows[i].apply(Event::Sent);
        }
        self.stats
            .requests
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        self.progress
            .counters
            .sent
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        let mut answer = None;
        for call in &calls {
            let r = match call.method {
                Method::Post => {
                    self.site
                        .client
                        .post_json_once::<_, serde_json::Value>(&call.path, &call.body)
                        .await
                }
                Method::Put => {
                    self.site
                        .client
                        .put_json::<_, serde_json::Value>(&call.path, &call.body)
                        .await
                }
                Method::PutOnce => {
                    self.site
                        .client
                        .put_json_once::<_, serde_json::Value>(&call.path, &call.body)
                        .await
                }
                Method::Delete => self.site.client.delete_once(&call.path).await,
            };
            if let (Some(id), Some(j)) = (id, &self.journal) {
                let outcome = match &r {
                    Ok(_) => "answered".to_string(),
                    Err(e) => e.to_string(),
                };
                if let Err(e) = j.attempt(id, None, &outcome) {
                    self.alert.note(&format!("chunk {}: {e}", chunk.seq));
                }
            }
            let e = match r {
                Ok(v) => {
                    answer = Some(v);
                    continue;
                }
                Err(e) => e,
            };
            if self.stop.for_fatal(&e) {
            } else if e.is_rate_limited() {
                self.stop.set(
                    EXIT_INTERRUPTED,
                    format!(
                        "the site kept answering 429 (rate limit) for --slot-wait {}s",
                        self.opts.slot_wait().as_secs()
                    ),
                );
            }
            match e.status() {
                Some(s) if (400..500).contains(&s) && !matches!(s, 401 | 403 | 408 | 429) => {
                    for &i in &rows {
                        chunk.rows[i].apply(Event::Refused(e.message().to_string()));
                    }
                }
                _ if e.uncertain() => {
                    // The call may have been applied: what the site holds now says.
                    let cx = self.cx(chunk.seq);
                    let found = self
                        .kind
                        .read_back(&cx, &items)
                        .await
                        .unwrap_or_else(|_| vec![Found::CannotTell; items.len()]);
                    let note = format!(
                        "not confirmed: {e}; the site does not show this row as sent (yet): `csmport resume` checks it again and sends it only if it is not there"
                    );
                    for (&i, f) in rows.iter().zip(found) {
                        chunk.rows[i].apply_noting(
                            Event::ReadBack {
                                found: f,
                                settled: false,
                            },
                            &note,
                        );
                    }
                }
                _ => {
                    let note =
                        format!("not sent: {e}; `csmport resume` on this run folder sends it");
                    leave_open(chunk, &rows, &note);
                }
            }
            self.settle(chunk, id, &rows);
            return;
        }
        for (&i, item) in rows.iter().zip(&items) {
            let id = self.kind.id_of(item, answer.as_ref());
            chunk.rows[i].apply(Event::Answered(id));
        }
        self.settle(chunk, id, &rows);
    }

    /// `--verify`: reads the rows this chunk sent back and records per row whether the site
    /// has them as sent.
    pub(super) async fn verify(&self, chunk: &mut Chunk<K::Item>, sent: &[(usize, K::Item)]) {
        let done: Vec<&(usize, K::Item)> = sent
            .iter()
            .filter(|(i, _)| chunk.rows[*i].state().succeeded())
            .collect();
        if done.is_empty() {
            return;
        }
        let items: Vec<K::Item> = done.iter().map(|(_, it)| it.clone()).collect();
        let cx = self.cx_after(chunk);
        let found = match self.kind.read_back(&cx, &items).await {
            Ok(f) if f.len() == items.len() => f,
            Ok(_) => vec![Found::CannotTell; items.len()],
            Err(e) => {
                self.log.note(&format!(
                    "chunk {}: verify could not read the rows back ({e})",
                    chunk.seq
                ));
                vec![Found::CannotTell; items.len()]
            }
        };
        for ((i, _), f) in done.into_iter().zip(found) {
            let v = match f {
                Found::Same(_) => report::Verdict::Confirmed,
                Found::Drifted => report::Verdict::Drifted,
                Found::Missing => report::Verdict::Missing,
                Found::CannotTell => report::Verdict::Unverifiable,
            };
            chunk.verified.insert(*i, v);
        }
    }
}
