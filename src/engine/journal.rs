//! Journal stage: the run folder's `journal.sqlite` (SQLite, WAL, synchronous=FULL, one
//! transaction per state change). It holds what `resume` needs to finish a run after a crash
//! without losing or duplicating a row: the input's identity and the run's options (never
//! credentials); each chunk's fixed row range; each batch (every request the run makes, the
//! organizations it creates on the way and the parts of a refused batch included) with its
//! rows, items, body and `Idempotency-Key`, committed *before* its first attempt; every
//! attempt; the task; and every closed row's outcome. A folder either has a whole journal or
//! none: it is built under another name and renamed into place. Written by `send` and `run`,
//! read by `run` on resume.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::row::{Outcome, Stage};

pub const JOURNAL_FILE: &str = "journal.sqlite";
/// The journal layout this build writes and reads; a journal of another version is refused.
pub const JOURNAL_VERSION: i64 = 2;

pub use crate::error::JournalError;

/// Which file a run read, to tell whether it changed before a resume. A new run records the
/// size and modification time at once and the SHA-256 when a helper thread has read the whole
/// file (`Journal::record_input_sha256`), so the first request does not wait for it; until
/// then `sha256` is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputIdentity {
    pub path: PathBuf,
    pub size: u64,
    /// Nanoseconds since the Unix epoch, as the file system gave it; empty when it gave none.
    pub modified: String,
    pub sha256: String,
}

/// What a resume may do with the input it finds, from what the journal recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputCheck {
    /// The same bytes.
    Same,
    /// The run stopped before its hash was recorded; size and modification time match, which
    /// is the best evidence there is. The caller records the hash now.
    SameByStat,
    /// Another file: resuming would send rows the journal does not describe.
    Changed(String),
}

impl InputIdentity {
    /// Size and modification time, without reading the file.
    pub fn stat(path: &Path) -> std::io::Result<InputIdentity> {
        let path = std::path::absolute(path)?;
        let m = std::fs::metadata(&path)?;
        let modified = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos().to_string())
            .unwrap_or_default();
        Ok(InputIdentity {
            path,
            size: m.len(),
            modified,
            sha256: String::new(),
        })
    }

    /// `stat` and the SHA-256 of the whole file.
    pub fn of(path: &Path) -> std::io::Result<InputIdentity> {
        let mut id = InputIdentity::stat(path)?;
        let (size, sha256) = sha256_of(&id.path)?;
        id.size = size;
        id.sha256 = sha256;
        Ok(id)
    }

    /// Whether `now` (from `of`) is the input this journal's run read.
    pub fn check(&self, now: &InputIdentity) -> InputCheck {
        let short = |h: &str| h[..12.min(h.len())].to_string();
        if self.sha256.is_empty() {
            return if self.size == now.size
                && !self.modified.is_empty()
                && self.modified == now.modified
            {
                InputCheck::SameByStat
            } else {
                InputCheck::Changed(format!(
                    "{} bytes then, {} now; the run stopped before it recorded the file's hash, and its size or modification time differ",
                    self.size, now.size
                ))
            };
        }
        if self.size == now.size && self.sha256 == now.sha256 {
            InputCheck::Same
        } else {
            InputCheck::Changed(format!(
                "{} bytes, sha256 {} then; {} bytes, sha256 {} now",
                self.size,
                short(&self.sha256),
                now.size,
                short(&now.sha256)
            ))
        }
    }
}

/// The bytes read and the SHA-256 (hex) of the file at `path`.
pub fn sha256_of(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
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
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((size, hex))
}

/// What a run was started with, as the journal keeps it.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// The import options (`options::ImportOptions` as JSON).
    pub options: String,
    pub input: InputIdentity,
    /// The input's dialect as detected when the run began (JSON), for the record.
    pub dialect: String,
    /// The API the run wrote to (base URL and cloud id; no credentials).
    pub base_url: String,
    pub cloud_id: String,
    pub started_at: String,
}

/// What a batch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Rows of the chunk.
    Rows,
    /// Something the chunk's rows need first (organizations customers name).
    Prerequisite,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Rows => "rows",
            Purpose::Prerequisite => "prerequisite",
        }
    }
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// Committed; sent zero or more times, no task known.
    Planned,
    /// The site accepted it as a task.
    Submitted,
    /// Every row it carries is closed (or, for a prerequisite, its task ended).
    Done,
    /// Refused as a whole and split: its rows are in the batches of its parts.
    Split,
    /// Calls whose answer was lost: their rows are decided again against the site.
    Abandoned,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Planned => "planned",
            BatchState::Submitted => "submitted",
            BatchState::Done => "done",
            BatchState::Split => "split",
            BatchState::Abandoned => "abandoned",
        }
    }

    fn parse(s: &str) -> Option<BatchState> {
        Some(match s {
            "planned" => BatchState::Planned,
            "submitted" => BatchState::Submitted,
            "done" => BatchState::Done,
            "split" => BatchState::Split,
            "abandoned" => BatchState::Abandoned,
            _ => return None,
        })
    }

    pub fn is_live(self) -> bool {
        matches!(self, BatchState::Planned | BatchState::Submitted)
    }
}

/// A batch as planned, before its first attempt.
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    pub seq: u64,
    pub purpose: Purpose,
    /// The requests as JSON text (`kinds::Call`s).
    pub calls: &'a str,
    /// None for synchronous calls, which carry no key.
    pub key: Option<&'a str>,
    /// The input rows it carries, in body order.
    pub rows: &'a [u64],
    /// The kind's items for those rows (JSON text), for attributing failures and reading back.
    pub items: &'a str,
}

/// A batch as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: i64,
    pub seq: u64,
    pub purpose: Purpose,
    pub state: BatchState,
    pub key: Option<String>,
    /// Some attempt may have been applied: its key is never replaced.
    pub uncertain: bool,
    pub rows: Vec<u64>,
    pub calls: serde_json::Value,
    pub items: serde_json::Value,
    pub task_id: Option<String>,
    pub status_url: Option<String>,
}

/// A batch as `status` shows it: where it is, without its bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView {
    pub seq: u64,
    pub purpose: Purpose,
    pub state: BatchState,
    pub task_id: Option<String>,
    pub has_key: bool,
    /// How many input rows it carries, and the first and last of them (0 when none).
    pub rows: u64,
    pub first_row: u64,
    pub last_row: u64,
    /// How its latest attempt ended, as recorded.
    pub last_attempt: Option<String>,
}

impl BatchView {
    /// What `resume` would do with it, when it is live.
    pub fn resume_action(&self) -> Option<ResumeAction> {
        self.state
            .is_live()
            .then(|| action(self.task_id.is_some(), self.has_key))
    }
}

/// What a run's journal says of its rows: outcomes recorded, chunks, and rows without one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowTally {
    pub succeeded: u64,
    /// Failed rows by stage (`read`, `validate`, `send`, `task`).
    pub failed: BTreeMap<String, u64>,
    pub skipped: u64,
    pub chunks: u64,
    pub chunks_done: u64,
    /// The last row of the last chunk: every row up to it was read and planned.
    pub last_row: u64,
    /// Rows of unfinished chunks with no outcome yet.
    pub open: u64,
}

/// A chunk as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub seq: u64,
    pub first_row: u64,
    pub last_row: u64,
    /// Every row of it is closed and its outcome recorded.
    pub done: bool,
}

pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// Chunks between two givings back of free pages.
const VACUUM_EVERY: u64 = 32;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE chunks (
    seq INTEGER PRIMARY KEY,
    first_row INTEGER NOT NULL,
    last_row INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    idempotency_key TEXT,
    uncertain INTEGER NOT NULL DEFAULT 0,
    rows TEXT NOT NULL,
    calls TEXT NOT NULL,
    items TEXT NOT NULL,
    task_id TEXT,
    status_url TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX batches_by_chunk ON batches (seq);
CREATE TABLE attempts (
    batch INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    idempotency_key TEXT,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (batch, attempt)
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
    /// Starts the journal of a new run in `dir`. A folder that already holds one is refused (it
    /// is a run to resume, not to overwrite). The journal is written whole under a temporary
    /// name and renamed into place, so a kill at any moment leaves a whole journal or none.
    pub fn create(dir: &Path, meta: &RunMeta) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        if path.exists() {
            return Err(JournalError::Refused {
                path,
                why: "this folder already holds a run; finish it with `csmport resume` or choose another --out".into(),
            });
        }
        let building = dir.join(format!("{JOURNAL_FILE}.new"));
        let sql = |source| JournalError::Sql {
            path: path.clone(),
            source,
        };
        // What an earlier attempt killed half-way left behind.
        for leftover in [
            building.clone(),
            dir.join(format!("{JOURNAL_FILE}.new-wal")),
            dir.join(format!("{JOURNAL_FILE}.new-shm")),
            dir.join(format!("{JOURNAL_FILE}.new-journal")),
        ] {
            let _ = std::fs::remove_file(leftover);
        }
        {
            // Made 0600 before SQLite opens it: its journal files take the same mode.
            crate::fsx::create_private(&building).map_err(|e| JournalError::Refused {
                path: building.clone(),
                why: format!("cannot be made: {e}"),
            })?;
            let mut conn = Connection::open(&building).map_err(sql)?;
            // A rollback journal while building: the file is whole once the connection
            // closes, with nothing beside it to move.
            conn.pragma_update(None, "journal_mode", "DELETE")
                .map_err(sql)?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(sql)?;
            // Pages the bodies of ended batches leave free can be given back to the file
            // system as the run goes (set before any table exists, or it cannot be).
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(sql)?;
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(SCHEMA).map_err(sql)?;
            let pairs = [
                ("journal_version", JOURNAL_VERSION.to_string()),
                ("options", meta.options.clone()),
                ("input_path", meta.input.path.display().to_string()),
                ("input_size", meta.input.size.to_string()),
                ("input_sha256", meta.input.sha256.clone()),
                ("input_modified", meta.input.modified.clone()),
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
            conn.close().map_err(|(_, e)| sql(e))?;
        }
        sync_file(&building).map_err(|e| JournalError::Refused {
            path: building.clone(),
            why: format!("cannot be written: {e}"),
        })?;
        std::fs::rename(&building, &path).map_err(|e| JournalError::Refused {
            path: path.clone(),
            why: format!("cannot be put in place: {e}"),
        })?;
        sync_file(dir).ok();
        let conn = Connection::open(&path).map_err(sql)?;
        configure(&conn).map_err(sql)?;
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
            let mut steps: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().join(JOURNAL_FILE).is_file())
                .map(|e| e.path().display().to_string())
                .collect();
            if !steps.is_empty() {
                steps.sort();
                return Err(refused(format!(
                    "{} is not a run folder of an import (it has no {JOURNAL_FILE}); the run folders in it (a plan's steps, in order) are: {}",
                    dir.display(),
                    steps.join(", ")
                )));
            }
            let note = if dir.join(format!("{JOURNAL_FILE}.new")).exists() {
                " (the run was stopped before it sent anything: import the file again)"
            } else {
                ""
            };
            return Err(refused(format!(
                "{} is not a run folder of an import (it has no {JOURNAL_FILE}){note}",
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
            options: get("options")?,
            input: InputIdentity {
                path: PathBuf::from(get("input_path")?),
                size: get("input_size")?
                    .parse()
                    .map_err(|_| refused("the run journal's input size is damaged".into()))?,
                modified: meta.get("input_modified").cloned().unwrap_or_default(),
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

    /// Records the input's SHA-256 once a helper thread has read the whole file (a new run
    /// starts its journal without it, so the first request does not wait for the hash).
    pub fn record_input_sha256(&self, sha256: &str) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'input_sha256'",
                params![sha256],
            )
            .map(|_| ())
        })
    }

    /// Records a chunk's rows when the run first reaches it; a chunk already recorded keeps
    /// its range.
    pub fn chunk(&self, seq: u64, first_row: u64, last_row: u64) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO chunks (seq, first_row, last_row, done, updated_at) VALUES (?1, ?2, ?3, 0, ?4)",
                params![seq as i64, first_row as i64, last_row as i64, now()],
            )
            .map(|_| ())
        })
    }

    /// Commits a batch before its first attempt, with the outcomes of the rows the chunk
    /// closed before it (invalid, unchanged, …). Returns the batch's id.
    pub fn plan(&self, b: &NewBatch<'_>, closed: &[(u64, &Outcome)]) -> Result<i64, JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO batches (seq, purpose, state, idempotency_key, uncertain, rows, calls, items, updated_at)
                 VALUES (?1, ?2, 'planned', ?3, 0, ?4, ?5, ?6, ?7)",
                params![
                    b.seq as i64,
                    b.purpose.as_str(),
                    b.key,
                    serde_json::to_string(b.rows).expect("serializes"),
                    b.calls,
                    b.items,
                    now()
                ],
            )?;
            let id = tx.last_insert_rowid();
            insert_rows(tx, b.seq, closed)?;
            Ok(id)
        })
    }

    /// A new key for a batch none of whose attempts can have been applied, before it is sent.
    pub fn rekey(&self, batch: i64, key: &str) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE batches SET idempotency_key = ?2, updated_at = ?3 WHERE id = ?1 AND uncertain = 0",
                params![batch, key, now()],
            )
            .map(|_| ())
        })
    }

    /// Some attempt of the batch may have been applied: its key is never replaced.
    pub fn uncertain(&self, batch: i64) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE batches SET uncertain = 1, updated_at = ?2 WHERE id = ?1",
                params![batch, now()],
            )
            .map(|_| ())
        })
    }

    /// One attempt and how it ended.
    pub fn attempt(
        &self,
        batch: i64,
        key: Option<&str>,
        outcome: &str,
    ) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO attempts (batch, attempt, idempotency_key, at, outcome)
                 VALUES (?1, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE batch = ?1), ?2, ?3, ?4)",
                params![batch, key, now(), outcome],
            )
            .map(|_| ())
        })
    }

    pub fn submitted(
        &self,
        batch: i64,
        task_id: &str,
        status_url: &str,
    ) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE batches SET state = 'submitted', task_id = ?2, status_url = ?3, updated_at = ?4 WHERE id = ?1",
                params![batch, task_id, status_url, now()],
            )
            .map(|_| ())
        })
    }

    /// Rows the batch closed, and the batch's new state.
    pub fn settle(
        &self,
        batch: i64,
        seq: u64,
        state: BatchState,
        closed: &[(u64, &Outcome)],
    ) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "UPDATE batches SET state = ?2, updated_at = ?3 WHERE id = ?1",
                params![batch, state.as_str(), now()],
            )?;
            if !state.is_live() {
                // Nothing of an ended batch is sent again or read back: what it did is in
                // `rows`, so its bodies go now. Its `updated_at` stays the time it ended (the
                // report's task durations are read from it).
                tx.execute(
                    "UPDATE batches SET calls = '[]', items = '[]' WHERE id = ?1",
                    params![batch],
                )?;
            }
            insert_rows(tx, seq, closed)
        })
    }

    /// Every row of a chunk is closed: record the outcomes not recorded yet. (Its batches'
    /// bodies went when each was settled.)
    pub fn done(
        &self,
        seq: u64,
        range: (u64, u64),
        outcomes: &[(u64, &Outcome)],
    ) -> Result<(), JournalError> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO chunks (seq, first_row, last_row, done, updated_at) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT(seq) DO UPDATE SET done = 1, updated_at = ?4",
                params![seq as i64, range.0 as i64, range.1 as i64, now()],
            )?;
            insert_rows(tx, seq, outcomes)
        })?;
        if seq.is_multiple_of(VACUUM_EVERY) {
            self.give_back_free_pages();
        }
        Ok(())
    }

    /// Gives the pages ended batches left free back to the file system, so the file holds
    /// what the run still needs rather than the most it ever held. A journal made before
    /// `auto_vacuum` was set keeps its pages (nothing is lost either way).
    fn give_back_free_pages(&self) {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let _ = conn.execute_batch("PRAGMA incremental_vacuum;");
    }

    /// Rows of a chunk still open elsewhere that have their final outcome (a local check's
    /// failure): recorded, so the journal (and `status`) counts what the report lists.
    pub fn closed(&self, seq: u64, outcomes: &[(u64, &Outcome)]) -> Result<(), JournalError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.with(|tx| insert_rows(tx, seq, outcomes))
    }

    /// Every chunk the journal knows, by sequence number.
    pub fn chunks(&self) -> Result<BTreeMap<u64, ChunkRecord>, JournalError> {
        self.with(|tx| {
            let mut s = tx.prepare("SELECT seq, first_row, last_row, done FROM chunks")?;
            let rows = s.query_map([], |r| {
                Ok(ChunkRecord {
                    seq: r.get::<_, i64>(0)? as u64,
                    first_row: r.get::<_, i64>(1)? as u64,
                    last_row: r.get::<_, i64>(2)? as u64,
                    done: r.get::<_, i64>(3)? != 0,
                })
            })?;
            rows.map(|c| c.map(|c| (c.seq, c))).collect()
        })
    }

    /// The batches of a chunk, in the order they were planned.
    pub fn batches(&self, seq: u64) -> Result<Vec<Batch>, JournalError> {
        self.with(|tx| {
            let mut s = tx.prepare(
                "SELECT id, seq, purpose, state, idempotency_key, uncertain, rows, calls, items, task_id, status_url
                 FROM batches WHERE seq = ?1 ORDER BY id",
            )?;
            let rows = s.query_map(params![seq as i64], |r| {
                let purpose: String = r.get(2)?;
                let state: String = r.get(3)?;
                let bad = |i, t: String| {
                    rusqlite::Error::InvalidColumnType(i, t, rusqlite::types::Type::Text)
                };
                let json = |t: String| serde_json::from_str(&t).unwrap_or(serde_json::Value::Null);
                Ok(Batch {
                    id: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    purpose: match purpose.as_str() {
                        "rows" => Purpose::Rows,
                        "prerequisite" => Purpose::Prerequisite,
                        _ => return Err(bad(2, purpose)),
                    },
                    state: BatchState::parse(&state).ok_or_else(|| bad(3, state.clone()))?,
                    key: r.get(4)?,
                    uncertain: r.get::<_, i64>(5)? != 0,
                    rows: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                    calls: json(r.get(7)?),
                    items: json(r.get(8)?),
                    task_id: r.get(9)?,
                    status_url: r.get(10)?,
                })
            })?;
            rows.collect()
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

    /// The attempts of a batch, oldest first: (key, outcome).
    /// Batches sent (every state past planned) and tasks made, over the whole run.
    pub fn sent_counts(&self) -> Result<(u64, u64), JournalError> {
        self.with(|tx| {
            let batches: i64 = tx.query_row(
                "SELECT COUNT(*) FROM batches WHERE state != 'planned'",
                [],
                |r| r.get(0),
            )?;
            let tasks: i64 = tx.query_row(
                "SELECT COUNT(*) FROM batches WHERE task_id IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            Ok((batches.max(0) as u64, tasks.max(0) as u64))
        })
    }

    pub fn attempts(&self, batch: i64) -> Result<Vec<(Option<String>, String)>, JournalError> {
        self.with(|tx| {
            let mut s = tx.prepare(
                "SELECT idempotency_key, outcome FROM attempts WHERE batch = ?1 ORDER BY attempt",
            )?;
            let rows = s.query_map(params![batch], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Rows by outcome, and the chunks (for `status`).
    pub fn tally(&self) -> Result<RowTally, JournalError> {
        self.with(|tx| {
            let mut t = RowTally::default();
            let mut s =
                tx.prepare("SELECT outcome, stage, COUNT(*) FROM rows GROUP BY outcome, stage")?;
            let counts = s.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?;
            for c in counts {
                let (outcome, stage, n) = c?;
                match outcome.as_str() {
                    "succeeded" => t.succeeded += n,
                    "skipped" => t.skipped += n,
                    _ => *t.failed.entry(stage.unwrap_or_default()).or_default() += n,
                }
            }
            let (chunks, done, last): (i64, i64, i64) = tx.query_row(
                "SELECT COUNT(*), COALESCE(SUM(done), 0), COALESCE(MAX(last_row), 0) FROM chunks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let (span, closed): (i64, i64) = tx.query_row(
                "SELECT COALESCE(SUM(last_row - first_row + 1), 0),
                        (SELECT COUNT(*) FROM rows WHERE seq IN (SELECT seq FROM chunks WHERE done = 0))
                 FROM chunks WHERE done = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            t.chunks = chunks as u64;
            t.chunks_done = done as u64;
            t.last_row = last as u64;
            t.open = (span - closed).max(0) as u64;
            Ok(t)
        })
    }

    /// Every batch, in the order planned, without its bodies (for `status`).
    pub fn batch_views(&self) -> Result<Vec<BatchView>, JournalError> {
        self.with(|tx| {
            let mut s = tx.prepare(
                "SELECT b.seq, b.purpose, b.state, b.task_id, b.idempotency_key IS NOT NULL, b.rows,
                        (SELECT outcome FROM attempts a WHERE a.batch = b.id ORDER BY attempt DESC LIMIT 1)
                 FROM batches b ORDER BY b.id",
            )?;
            let rows = s.query_map([], |r| {
                let purpose: String = r.get(1)?;
                let state: String = r.get(2)?;
                let rows: Vec<u64> = serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default();
                Ok(BatchView {
                    seq: r.get::<_, i64>(0)? as u64,
                    purpose: if purpose == "prerequisite" {
                        Purpose::Prerequisite
                    } else {
                        Purpose::Rows
                    },
                    state: BatchState::parse(&state).ok_or_else(|| {
                        rusqlite::Error::InvalidColumnType(2, state.clone(), rusqlite::types::Type::Text)
                    })?,
                    task_id: r.get(3)?,
                    has_key: r.get(4)?,
                    rows: rows.len() as u64,
                    first_row: rows.iter().copied().min().unwrap_or(0),
                    last_row: rows.iter().copied().max().unwrap_or(0),
                    last_attempt: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The key of a batch now.
    pub fn key(&self, batch: i64) -> Result<Option<String>, JournalError> {
        self.with(|tx| {
            tx.query_row(
                "SELECT idempotency_key FROM batches WHERE id = ?1",
                params![batch],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL with FULL sync: a committed batch survives power loss, not only a killed process.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The journal is written at the end and read by batch: 512 KiB of page cache, not the
    // default 2 MiB, is one of the few fixed costs an import's peak memory is made of.
    conn.pragma_update(None, "cache_size", -512)?;
    Ok(())
}

/// fsync of a file or folder (a folder: so a rename in it survives power loss).
fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
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
            stage: stage
                .as_deref()
                .and_then(Stage::parse)
                .unwrap_or(Stage::Task),
            field: field.unwrap_or_default(),
            error: error.unwrap_or_default(),
        },
    }
}

/// What `resume` does with a live batch of rows, from its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeAction {
    /// A task exists for it: poll that task, never send again.
    Poll,
    /// Sent or maybe sent, no task known: send the recorded body again under the recorded key
    /// (the site answers a repeat of an applied request with the first answer).
    Resend,
    /// Synchronous calls whose answers are unknown: decide their rows again from what the
    /// site holds now, never send them blindly.
    Redecide,
}

pub fn resume_action(b: &Batch) -> ResumeAction {
    action(b.task_id.is_some(), b.key.is_some())
}

fn action(has_task: bool, has_key: bool) -> ResumeAction {
    match (has_task, has_key) {
        (true, _) => ResumeAction::Poll,
        (false, true) => ResumeAction::Resend,
        (false, false) => ResumeAction::Redecide,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RunMeta {
        RunMeta {
            options: "{}".into(),
            input: InputIdentity {
                path: "/x.csv".into(),
                size: 3,
                modified: "1".into(),
                sha256: "ab".into(),
            },
            dialect: "{}".into(),
            base_url: "http://127.0.0.1:1".into(),
            cloud_id: "c".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn what_resume_accepts_as_the_same_input() {
        let id = |size: u64, modified: &str, sha: &str| InputIdentity {
            path: "/x.csv".into(),
            size,
            modified: modified.into(),
            sha256: sha.into(),
        };
        let now = id(3, "10", "ab");
        let same = |c: InputCheck| c == InputCheck::Same;
        let by_stat = |c: InputCheck| c == InputCheck::SameByStat;
        let changed = |c: InputCheck| matches!(c, InputCheck::Changed(_));
        let cases: [(InputIdentity, fn(InputCheck) -> bool); 7] = [
            (id(3, "10", "ab"), same),
            // Bytes decide when there is a hash: a touched file is the same file.
            (id(3, "9", "ab"), same),
            (id(3, "10", "cd"), changed),
            (id(4, "10", "ab"), changed),
            // No hash (stopped before it was read): size and time, both known, must match.
            (id(3, "10", ""), by_stat),
            (id(3, "9", ""), changed),
            (id(3, "", ""), changed),
        ];
        for (i, (was, want)) in cases.into_iter().enumerate() {
            assert!(want(was.check(&now)), "case {i}: {:?}", was.check(&now));
        }
        assert!(matches!(
            id(4, "10", "").check(&now),
            InputCheck::Changed(_)
        ));
    }

    fn batch(id: i64, state: BatchState, task: bool, key: bool) -> Batch {
        Batch {
            id,
            seq: 0,
            purpose: Purpose::Rows,
            state,
            key: key.then(|| "k".into()),
            uncertain: false,
            rows: vec![1, 3],
            calls: serde_json::json!([]),
            items: serde_json::json!([]),
            task_id: task.then(|| "t".into()),
            status_url: None,
        }
    }

    #[test]
    fn what_resume_does_with_each_batch() {
        use BatchState::*;
        use ResumeAction::*;
        let cases = [
            (batch(1, Submitted, true, true), Poll),
            (batch(1, Planned, false, true), Resend),
            (batch(1, Planned, false, false), Redecide),
        ];
        for (b, want) in cases {
            assert_eq!(resume_action(&b), want, "{b:?}");
        }
        assert!(Planned.is_live() && Submitted.is_live());
        assert!(!Done.is_live() && !Split.is_live() && !Abandoned.is_live());
    }

    #[test]
    fn batches_go_through_their_states_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path(), &meta()).unwrap();
        assert!(!dir.path().join("journal.sqlite.new").exists());
        let invalid = Outcome::failed(Stage::Validate, "email", "bad");
        j.chunk(0, 1, 3).unwrap();
        j.chunk(0, 1, 99).unwrap();
        let calls = serde_json::json!([{"method": "Post", "path": "p", "body": {}}]);
        let items = serde_json::json!(["a", "c"]);
        let nb = NewBatch {
            seq: 0,
            purpose: Purpose::Rows,
            calls: &calls.to_string(),
            key: Some("k"),
            rows: &[1, 3],
            items: &items.to_string(),
        };
        let id = j.plan(&nb, &[(2, &invalid)]).unwrap();
        j.attempt(id, Some("k"), "task slots full").unwrap();
        j.rekey(id, "k2").unwrap();
        j.attempt(id, Some("k2"), "timed out").unwrap();
        j.uncertain(id).unwrap();
        // A key that may have been applied is never replaced.
        j.rekey(id, "k3").unwrap();
        j.submitted(id, "t1", "/task/t1").unwrap();
        drop(j);
        let (j, m) = Journal::open(dir.path()).unwrap();
        assert_eq!(m.input, meta().input);
        assert_eq!(
            j.chunks().unwrap()[&0].last_row,
            3,
            "a chunk keeps its range"
        );
        let b = j.batches(0).unwrap()[0].clone();
        assert_eq!(b.state, BatchState::Submitted);
        assert_eq!((b.key.as_deref(), b.uncertain), (Some("k2"), true));
        assert_eq!((b.rows.clone(), b.items.clone()), (vec![1, 3], items));
        assert_eq!(resume_action(&b), ResumeAction::Poll);
        assert_eq!(j.attempts(id).unwrap().len(), 2);
        let ok = Outcome::Succeeded {
            id: Some("qm:1".into()),
        };
        j.settle(id, 0, BatchState::Done, &[(1, &ok)]).unwrap();
        // A settled batch keeps no bodies (what it did is in its rows' outcomes), but still
        // says which rows it carried (for `status`).
        let b = j.batches(0).unwrap()[0].clone();
        assert_eq!(
            (b.calls, b.items, b.rows),
            (serde_json::json!([]), serde_json::json!([]), vec![1, 3])
        );
        j.done(0, (1, 3), &[(3, &ok)]).unwrap();
        let c = j.chunks().unwrap()[&0].clone();
        assert!(c.done);
        let o = j.outcomes(1, 3).unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[&2], invalid);
        assert_eq!(o[&3], ok);
        assert!(
            Journal::create(dir.path(), &meta()).is_err(),
            "never overwritten"
        );
        // Pages the bodies leave are given back as the run goes.
        drop(j);
        let conn = Connection::open(dir.path().join(JOURNAL_FILE)).unwrap();
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "incremental");
    }

    #[test]
    fn a_journal_killed_while_it_was_made_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        // What a kill in the first milliseconds leaves: a half-made file under the other name.
        std::fs::write(dir.path().join("journal.sqlite.new"), b"").unwrap();
        let e = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("stopped before it sent anything"), "{e}");
        // The folder can be imported into again.
        Journal::create(dir.path(), &meta()).unwrap();
        assert!(Journal::open(dir.path()).is_ok());
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
