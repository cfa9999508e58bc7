//! Run journal: the run folder's `journal.sqlite` (SQLite, WAL, synchronous=FULL, one
//! transaction per state change). It records what `resume` needs to finish a run after a crash
//! without losing or duplicating a row: the input's identity, the import options (never
//! credentials), each chunk's fixed row range, each batch's request body and `Idempotency-Key`
//! committed *before* the first attempt to send it, every attempt, the task, and every row's
//! final outcome. Written by `send` (batches) and `cmd::import` (outcomes); read by
//! `cmd::resume`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::engine::plan::{Outcome, Stage};

pub const JOURNAL_FILE: &str = "journal.sqlite";
/// The journal layout this build writes and reads; a journal of another version is refused.
pub const JOURNAL_VERSION: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {why}", path.display())]
    Refused { path: PathBuf, why: String },
    #[error("{}: the run journal cannot be used: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Which file a run read, to tell whether it changed before a resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputIdentity {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

impl InputIdentity {
    pub fn of(path: &Path) -> std::io::Result<InputIdentity> {
        let path = std::path::absolute(path)?;
        let mut f = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        let sha256 = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(InputIdentity { path, size, sha256 })
    }
}

/// What a run was started with, as the journal keeps it.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// The import options (`cli::ImportArgs` as JSON).
    pub args: String,
    pub input: InputIdentity,
    /// The input's dialect as detected when the run began (JSON), for the record.
    pub dialect: String,
    /// The API the run wrote to (base URL and cloud id; no credentials).
    pub base_url: String,
    pub cloud_id: String,
    pub started_at: String,
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Key and body committed; sent zero or more times, no task known.
    Planned,
    /// The server accepted it as a task.
    Submitted,
    /// Every row of the chunk has its final outcome in `rows`.
    Done,
}

impl BatchState {
    fn as_str(self) -> &'static str {
        match self {
            BatchState::Planned => "planned",
            BatchState::Submitted => "submitted",
            BatchState::Done => "done",
        }
    }

    fn parse(s: &str) -> Option<BatchState> {
        match s {
            "planned" => Some(BatchState::Planned),
            "submitted" => Some(BatchState::Submitted),
            "done" => Some(BatchState::Done),
            _ => None,
        }
    }
}

/// One chunk's record: its rows, and the batch made of them if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub seq: u64,
    pub first_row: u64,
    pub last_row: u64,
    pub state: BatchState,
    pub key: Option<String>,
    /// The input rows whose items the body holds, in body order.
    pub item_rows: Vec<u64>,
    pub path: Option<String>,
    pub body: Option<String>,
    pub task_id: Option<String>,
    pub status_url: Option<String>,
}

pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY,
    first_row INTEGER NOT NULL,
    last_row INTEGER NOT NULL,
    state TEXT NOT NULL,
    idempotency_key TEXT,
    item_rows TEXT,
    path TEXT,
    body TEXT,
    task_id TEXT,
    status_url TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE attempts (
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    idempotency_key TEXT NOT NULL,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (seq, attempt)
);
CREATE TABLE rows (
    row INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    stage TEXT,
    field TEXT,
    error TEXT,
    id TEXT
);
";

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Journal {
    /// Starts the journal of a new run in `dir`; a folder that already holds one is refused
    /// (it is a run to resume, not to overwrite).
    pub fn create(dir: &Path, meta: &RunMeta) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        if path.exists() {
            return Err(JournalError::Refused {
                path,
                why: "this folder already holds a run; finish it with `csmport resume` or choose another --out".into(),
            });
        }
        let sql = |source| JournalError::Sql {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(sql)?;
        configure(&conn).map_err(sql)?;
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(SCHEMA).map_err(sql)?;
        let pairs = [
            ("journal_version", JOURNAL_VERSION.to_string()),
            ("args", meta.args.clone()),
            ("input_path", meta.input.path.display().to_string()),
            ("input_size", meta.input.size.to_string()),
            ("input_sha256", meta.input.sha256.clone()),
            ("input_dialect", meta.dialect.clone()),
            ("base_url", meta.base_url.clone()),
            ("cloud_id", meta.cloud_id.clone()),
            ("started_at", meta.started_at.clone()),
        ];
        for (k, v) in pairs {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(Journal {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Opens the journal of the run in `dir`, refusing what is not one, is damaged, or was
    /// written by another version.
    pub fn open(dir: &Path) -> Result<(Journal, RunMeta), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let refused = |why: String| JournalError::Refused {
            path: path.clone(),
            why,
        };
        if !dir.is_dir() {
            return Err(refused(
                "not a folder; give the run folder an import wrote".into(),
            ));
        }
        if !path.is_file() {
            let steps: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().join(JOURNAL_FILE).is_file())
                .map(|e| e.path().display().to_string())
                .collect();
            if !steps.is_empty() {
                let mut steps = steps;
                steps.sort();
                return Err(refused(format!(
                    "{} is not a run folder of an import (it has no {JOURNAL_FILE}); the run folders in it (a plan's steps, in order) are: {}",
                    dir.display(),
                    steps.join(", ")
                )));
            }
            return Err(refused(format!(
                "{} is not a run folder of an import (it has no {JOURNAL_FILE}); only imports of customers, organizations, customer-accounts and organization-accounts keep a journal",
                dir.display()
            )));
        }
        let damaged = |e: rusqlite::Error| {
            refused(format!(
                "the run journal is damaged or not a journal ({e}); the run cannot be resumed safely: check the site, then retry the run's failures.csv or import again into a new folder"
            ))
        };
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(damaged)?;
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(damaged)?;
        if ok != "ok" {
            return Err(refused(format!(
                "the run journal is damaged ({ok}); the run cannot be resumed safely"
            )));
        }
        let meta: HashMap<String, String> = conn
            .prepare("SELECT key, value FROM meta")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .map_err(damaged)?;
        let version: i64 = meta
            .get("journal_version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| refused("the run journal has no version; it is damaged".into()))?;
        if version != JOURNAL_VERSION {
            return Err(refused(format!(
                "the run journal is version {version}, this csmport reads version {JOURNAL_VERSION}{}; resume it with the csmport that started it",
                if version > JOURNAL_VERSION {
                    " (it was written by a newer csmport)"
                } else {
                    ""
                }
            )));
        }
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| refused(format!("the run journal has no '{k}'; it is damaged")))
        };
        let run = RunMeta {
            args: get("args")?,
            input: InputIdentity {
                path: PathBuf::from(get("input_path")?),
                size: get("input_size")?
                    .parse()
                    .map_err(|_| refused("the run journal's input size is damaged".into()))?,
                sha256: get("input_sha256")?,
            },
            dialect: meta.get("input_dialect").cloned().unwrap_or_default(),
            base_url: get("base_url")?,
            cloud_id: get("cloud_id")?,
            started_at: get("started_at")?,
        };
        configure(&conn).map_err(damaged)?;
        Ok((
            Journal {
                path,
                conn: Mutex::new(conn),
            },
            run,
        ))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let run = |conn: &mut Connection| {
            let tx = conn.transaction()?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        };
        run(&mut conn).map_err(|source| JournalError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    /// Commits a batch — its rows, body and key — before its first send, with the outcomes of
    /// the chunk's rows already decided (invalid, unchanged, …).
    pub fn plan(&self, batch: &Batch, decided: &[(u64, &Outcome)]) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO batches (seq, first_row, last_row, state, idempotency_key, item_rows, path, body, task_id, status_url, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    batch.seq as i64,
                    batch.first_row as i64,
                    batch.last_row as i64,
                    batch.state.as_str(),
                    batch.key,
                    serde_json::to_string(&batch.item_rows).expect("serializes"),
                    batch.path,
                    batch.body,
                    batch.task_id,
                    batch.status_url,
                    now()
                ],
            )?;
            insert_rows(tx, batch.seq, decided)
        })
    }

    /// A new key for a batch the server refused for want of a task slot, before it is sent.
    pub fn rekey(&self, seq: u64, key: &str) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE batches SET idempotency_key = ?2, updated_at = ?3 WHERE seq = ?1",
                params![seq as i64, key, now()],
            )
            .map(|_| ())
        })
    }

    /// One send of a batch and how it ended.
    pub fn attempt(&self, seq: u64, key: &str, outcome: &str) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO attempts (seq, attempt, idempotency_key, at, outcome)
                 VALUES (?1, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE seq = ?1), ?2, ?3, ?4)",
                params![seq as i64, key, now(), outcome],
            )
            .map(|_| ())
        })
    }

    pub fn submitted(&self, seq: u64, task_id: &str, status_url: &str) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE batches SET state = 'submitted', task_id = ?2, status_url = ?3, updated_at = ?4 WHERE seq = ?1",
                params![seq as i64, task_id, status_url, now()],
            )
            .map(|_| ())
        })
    }

    /// Every row of a chunk has its final outcome: record them, and drop the batch's body.
    pub fn done(
        &self,
        seq: u64,
        range: (u64, u64),
        outcomes: &[(u64, &Outcome)],
    ) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO batches (seq, first_row, last_row, state, updated_at) VALUES (?1, ?2, ?3, 'done', ?4)
                 ON CONFLICT(seq) DO UPDATE SET state = 'done', body = NULL, updated_at = ?4",
                params![seq as i64, range.0 as i64, range.1 as i64, now()],
            )?;
            insert_rows(tx, seq, outcomes)
        })
    }

    /// Every chunk the journal knows, by sequence number.
    pub fn batches(&self) -> Result<HashMap<u64, Batch>, JournalError> {
        self.with(|tx| {
            let mut s = tx.prepare(
                "SELECT seq, first_row, last_row, state, idempotency_key, item_rows, path, body, task_id, status_url FROM batches",
            )?;
            let rows = s.query_map([], |r| {
                let state: String = r.get(3)?;
                let item_rows: Option<String> = r.get(5)?;
                Ok(Batch {
                    seq: r.get::<_, i64>(0)? as u64,
                    first_row: r.get::<_, i64>(1)? as u64,
                    last_row: r.get::<_, i64>(2)? as u64,
                    state: BatchState::parse(&state).ok_or_else(|| {
                        rusqlite::Error::InvalidColumnType(3, state.clone(), rusqlite::types::Type::Text)
                    })?,
                    key: r.get(4)?,
                    item_rows: item_rows
                        .and_then(|t| serde_json::from_str(&t).ok())
                        .unwrap_or_default(),
                    path: r.get(6)?,
                    body: r.get(7)?,
                    task_id: r.get(8)?,
                    status_url: r.get(9)?,
                })
            })?;
            rows.map(|b| b.map(|b| (b.seq, b))).collect()
        })
    }

    /// The outcomes recorded for rows `first..=last`.
    pub fn outcomes(&self, first: u64, last: u64) -> Result<HashMap<u64, Outcome>, JournalError> {
        self.with(|tx| {
            let mut s = tx.prepare(
                "SELECT row, outcome, stage, field, error, id FROM rows WHERE row BETWEEN ?1 AND ?2",
            )?;
            let rows = s.query_map(params![first as i64, last as i64], |r| {
                let row = r.get::<_, i64>(0)? as u64;
                let kind: String = r.get(1)?;
                let stage: Option<String> = r.get(2)?;
                let field: Option<String> = r.get(3)?;
                let error: Option<String> = r.get(4)?;
                let id: Option<String> = r.get(5)?;
                Ok((row, decode_outcome(&kind, stage, field, error, id)))
            })?;
            rows.collect()
        })
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL with FULL sync: a committed batch survives power loss, not only a killed process.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    seq: u64,
    outcomes: &[(u64, &Outcome)],
) -> rusqlite::Result<()> {
    let mut s = tx.prepare_cached(
        "INSERT OR REPLACE INTO rows (row, seq, outcome, stage, field, error, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (row, o) in outcomes {
        let (kind, stage, field, error, id) = encode_outcome(o);
        if kind == "pending" {
            continue;
        }
        s.execute(params![
            *row as i64,
            seq as i64,
            kind,
            stage,
            field,
            error,
            id
        ])?;
    }
    Ok(())
}

type Encoded<'a> = (
    &'static str,
    Option<&'static str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn encode_outcome(o: &Outcome) -> Encoded<'_> {
    match o {
        Outcome::Pending => ("pending", None, None, None, None),
        Outcome::Succeeded { id } => ("succeeded", None, None, None, id.as_deref()),
        Outcome::Failed {
            stage,
            field,
            error,
        } => (
            "failed",
            Some(stage.as_str()),
            Some(field),
            Some(error),
            None,
        ),
        Outcome::Skipped { reason } => ("skipped", None, None, Some(reason), None),
    }
}

fn decode_outcome(
    kind: &str,
    stage: Option<String>,
    field: Option<String>,
    error: Option<String>,
    id: Option<String>,
) -> Outcome {
    match kind {
        "succeeded" => Outcome::Succeeded { id },
        "skipped" => Outcome::Skipped {
            reason: error.unwrap_or_default(),
        },
        _ => Outcome::Failed {
            stage: match stage.as_deref() {
                Some("read") => Stage::Read,
                Some("validate") => Stage::Validate,
                Some("send") => Stage::Send,
                _ => Stage::Task,
            },
            field: field.unwrap_or_default(),
            error: error.unwrap_or_default(),
        },
    }
}

/// What `resume` does with a chunk, from its journal record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeAction {
    /// Every row's outcome is recorded: report them, send nothing.
    Replay,
    /// A task exists for it: poll that task, never send again.
    Poll,
    /// Sent or maybe sent, no task known: send the recorded body again under the recorded key
    /// (the server answers a repeat of an applied request with the first answer).
    Resend,
    /// Never planned: plan and send as in a new run.
    Send,
}

pub fn resume_action(batch: Option<&Batch>) -> ResumeAction {
    match batch.map(|b| (b.state, b.task_id.is_some(), b.body.is_some())) {
        None => ResumeAction::Send,
        Some((BatchState::Done, _, _)) => ResumeAction::Replay,
        Some((_, true, _)) => ResumeAction::Poll,
        Some((_, false, true)) => ResumeAction::Resend,
        // A planned batch without a body has nothing to send: plan it again.
        Some((_, false, false)) => ResumeAction::Send,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RunMeta {
        RunMeta {
            args: "{}".into(),
            input: InputIdentity {
                path: "/x.csv".into(),
                size: 3,
                sha256: "ab".into(),
            },
            dialect: "{}".into(),
            base_url: "http://127.0.0.1:1".into(),
            cloud_id: "c".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn batch(state: BatchState, task: bool, body: bool) -> Batch {
        Batch {
            seq: 0,
            first_row: 1,
            last_row: 3,
            state,
            key: Some("k".into()),
            item_rows: vec![1, 3],
            path: Some("p".into()),
            body: body.then(|| "{}".into()),
            task_id: task.then(|| "t".into()),
            status_url: None,
        }
    }

    #[test]
    fn what_resume_does_with_each_batch() {
        use BatchState::*;
        use ResumeAction::*;
        let cases = [
            (None, Send),
            (Some(batch(Done, true, false)), Replay),
            (Some(batch(Submitted, true, true)), Poll),
            (Some(batch(Planned, false, true)), Resend),
            (Some(batch(Planned, false, false)), Send),
        ];
        for (b, want) in cases {
            assert_eq!(resume_action(b.as_ref()), want, "{b:?}");
        }
    }

    #[test]
    fn a_batch_goes_through_its_states_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), &meta()).unwrap();
        let invalid = Outcome::Failed {
            stage: Stage::Validate,
            field: "email".into(),
            error: "bad".into(),
        };
        j.plan(&batch(BatchState::Planned, false, true), &[(2, &invalid)])
            .unwrap();
        j.attempt(0, "k", "network error").unwrap();
        j.rekey(0, "k2").unwrap();
        j.attempt(0, "k2", "accepted").unwrap();
        j.submitted(0, "t1", "/task/t1").unwrap();
        drop(j);
        let (j, m) = Journal::open(dir.path()).unwrap();
        assert_eq!(m.input, meta().input);
        let b = j.batches().unwrap()[&0].clone();
        assert_eq!(b.state, BatchState::Submitted);
        assert_eq!(b.key.as_deref(), Some("k2"));
        assert_eq!(b.item_rows, vec![1, 3]);
        assert_eq!(resume_action(Some(&b)), ResumeAction::Poll);
        let ok = Outcome::Succeeded {
            id: Some("qm:1".into()),
        };
        j.done(0, (1, 3), &[(1, &ok), (2, &invalid), (3, &ok)])
            .unwrap();
        let b = j.batches().unwrap()[&0].clone();
        assert_eq!((b.state, b.body), (BatchState::Done, None));
        let o = j.outcomes(1, 3).unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[&2], invalid);
        assert_eq!(o[&3], ok);
        assert!(
            Journal::create(dir.path(), &meta()).is_err(),
            "never overwritten"
        );
    }

    #[test]
    fn bad_journals_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("not a run folder"), "{e}");
        std::fs::write(
            dir.path().join(JOURNAL_FILE),
            b"not a database at all, sorry",
        )
        .unwrap();
        let e = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("damaged"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::create(dir.path(), &meta()).unwrap());
        let c = Connection::open(dir.path().join(JOURNAL_FILE)).unwrap();
        c.execute(
            "UPDATE meta SET value = '99' WHERE key = 'journal_version'",
            [],
        )
        .unwrap();
        drop(c);
        let e = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    }
}
