//! Export stage, holding: what an export has read, on disk rather than in memory. The ids the
//! listings give (each once, however many listings give it), and each kind's rows under their
//! sort key, in a private SQLite file beside the output that is removed at the end; the writer
//! (`export::write`) and the comparison (`export::changes`) read the rows back in order. So an
//! export's memory is the same for 5,000 customers and for 500,000. Driven by
//! `engine::export`; filled by the kinds' `export` modules.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{OptionalExtension, params};

use super::{Cell, Kind, Table};

#[derive(Debug, thiserror::Error)]
#[error("the export's working file {path}: {message}")]
pub struct SpoolError {
    pub path: String,
    pub message: String,
}

/// A kind's rows in the spool: its header, how many rows, and the widest cell of each
/// column (an XLSX sets its column widths before its rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    pub kind: Kind,
    pub header: Vec<String>,
    pub rows: u64,
    pub widths: Vec<usize>,
}

pub struct Spool {
    db: Mutex<rusqlite::Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE listed (listing TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (listing, id)) WITHOUT ROWID;
CREATE TABLE ids (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE TABLE rows (kind TEXT NOT NULL, key BLOB NOT NULL, cells TEXT NOT NULL);
";

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The sort key of a row: by `key` lower-cased, then as written, then by id (as
/// `export::sort_by_key` orders a table); bytes compared as they are.
pub fn sort_key(key: &str, id: &str) -> Vec<u8> {
    let mut k = key.to_lowercase().into_bytes();
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// A cell as the spool keeps it: its type in the first character, then its text.
fn encode(c: &Cell) -> String {
    match c {
        Cell::Empty => String::new(),
        Cell::Text(t) => format!("t{t}"),
        Cell::Number(_, t) => format!("n{t}"),
        Cell::Date(d) => format!("d{d}"),
        Cell::Bool(b) => (if *b { "b1" } else { "b0" }).to_string(),
    }
}

fn decode(s: &str) -> Cell {
    let mut chars = s.chars();
    let tag = chars.next();
    let rest = chars.as_str();
    match tag {
        None => Cell::Empty,
        Some('n') => match rest.parse::<f64>() {
            Ok(n) => Cell::Number(n, rest.to_string()),
            Err(_) => Cell::Text(rest.to_string()),
        },
        Some('d') => match rest.parse::<jiff::civil::Date>() {
            Ok(d) => Cell::Date(d),
            Err(_) => Cell::Text(rest.to_string()),
        },
        Some('b') => Cell::Bool(rest == "1"),
        _ => Cell::Text(rest.to_string()),
    }
}

/// How wide a cell shows (a date is always ten characters).
fn width(c: &Cell) -> usize {
    match c {
        Cell::Date(_) => 10,
        Cell::Empty => 0,
        other => other.text().chars().count(),
    }
}

impl Spool {
    /// A working file in `dir` (the output's folder: the data stays where the user put it),
    /// private, removed when the spool is dropped.
    pub fn new(dir: &Path) -> Result<Spool, SpoolError> {
        let path = dir.join(format!(
            ".csmport-export-{}-{}.sqlite",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let err = |m: String| SpoolError {
            path: path.display().to_string(),
            message: m,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        crate::fsx::create_private(&path).map_err(|e| err(e.to_string()))?;
        let spool = Spool {
            db: Mutex::new(rusqlite::Connection::open(&path).map_err(|e| err(e.to_string()))?),
            path,
        };
        spool.with(|db| {
            db.execute_batch(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8000; PRAGMA temp_store = FILE;",
            )?;
            db.execute_batch(SCHEMA)
        })?;
        Ok(spool)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, SpoolError> {
        let mut db = self.db.lock().expect("not poisoned");
        f(&mut db).map_err(|e| SpoolError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// A page of a listing: for each of `listings` (the listing itself, and any group it
    /// counts in) how many of `ids` it had not had before (a listing that gives only ids it
    /// gave already has ended, or ignores its offset); each id is also kept once for `kind`.
    pub fn listed(
        &self,
        listings: &[&str],
        kind: Kind,
        ids: &[&str],
    ) -> Result<Vec<usize>, SpoolError> {
        self.with(|db| {
            let tx = db.transaction()?;
            let mut new = vec![0; listings.len()];
            {
                let mut seen = tx
                    .prepare_cached("INSERT OR IGNORE INTO listed (listing, id) VALUES (?1, ?2)")?;
                let mut all =
                    tx.prepare_cached("INSERT OR IGNORE INTO ids (kind, id) VALUES (?1, ?2)")?;
                for id in ids {
                    for (n, listing) in new.iter_mut().zip(listings) {
                        *n += seen.execute(params![listing, id])?;
                    }
                    all.execute(params![kind.as_str(), id])?;
                }
            }
            tx.commit()?;
            Ok(new)
        })
    }

    /// How many different ids of `kind` the listings gave.
    pub fn id_count(&self, kind: Kind) -> Result<u64, SpoolError> {
        self.with(|db| {
            db.query_row(
                "SELECT COUNT(*) FROM ids WHERE kind = ?1",
                params![kind.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
        })
    }

    /// The ids of `kind` after `after` (in id order), at most `n`: pages of ids to fetch.
    pub fn ids_after(
        &self,
        kind: Kind,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<String>, SpoolError> {
        self.with(|db| {
            let mut s = db.prepare_cached(
                "SELECT id FROM ids WHERE kind = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?;
            let rows = s.query_map(params![kind.as_str(), after.unwrap_or(""), n as i64], |r| {
                r.get::<_, String>(0)
            })?;
            rows.collect()
        })
    }

    /// Rows of a kind, each with its sort key.
    pub fn add(&self, kind: Kind, rows: &[(Vec<u8>, Vec<Cell>)]) -> Result<(), SpoolError> {
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut s =
                    tx.prepare_cached("INSERT INTO rows (kind, key, cells) VALUES (?1, ?2, ?3)")?;
                for (key, cells) in rows {
                    let encoded: Vec<String> = cells.iter().map(encode).collect();
                    s.execute(params![
                        kind.as_str(),
                        key,
                        serde_json::to_string(&encoded).expect("strings serialize")
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// A table read whole (the small kinds), kept as its rows are: already in order.
    pub fn add_table(&self, table: &Table) -> Result<Sheet, SpoolError> {
        let mut sheet = self.sheet(table.kind, table.header.clone());
        let rows: Vec<(Vec<u8>, Vec<Cell>)> = table
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| ((i as u64).to_be_bytes().to_vec(), r.clone()))
            .collect();
        for (_, r) in &rows {
            sheet.count(r);
        }
        for part in rows.chunks(1000) {
            self.add(table.kind, part)?;
        }
        Ok(sheet)
    }

    /// A new kind's sheet, empty.
    pub fn sheet(&self, kind: Kind, header: Vec<String>) -> Sheet {
        Sheet {
            kind,
            widths: header.iter().map(|h| h.chars().count() + 2).collect(),
            header,
            rows: 0,
        }
    }

    /// Every row of `kind`, in sort-key order, handed to `f`.
    pub fn each_row(
        &self,
        kind: Kind,
        mut f: impl FnMut(Vec<Cell>) -> Result<(), String>,
    ) -> Result<(), String> {
        let db = self.db.lock().expect("not poisoned");
        let mut s = db
            .prepare("SELECT cells FROM rows WHERE kind = ?1 ORDER BY key, rowid")
            .map_err(|e| e.to_string())?;
        let rows = s
            .query_map(params![kind.as_str()], |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?;
        for row in rows {
            let text = row.map_err(|e| e.to_string())?;
            let cells: Vec<String> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            f(cells.iter().map(|c| decode(c)).collect())?;
        }
        Ok(())
    }

    /// Whether `id` was listed for `kind`.
    pub fn has_id(&self, kind: Kind, id: &str) -> Result<bool, SpoolError> {
        self.with(|db| {
            db.query_row(
                "SELECT 1 FROM ids WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }
}

impl Sheet {
    /// One more row: counted, and its cells' widths kept.
    pub fn count(&mut self, row: &[Cell]) {
        self.rows += 1;
        for (w, c) in self.widths.iter_mut().zip(row) {
            *w = (*w).max(width(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_come_back_as_they_went_in() {
        let cells = [
            Cell::Empty,
            Cell::Text("n5 looks like a number".into()),
            Cell::Text(String::new()),
            Cell::Number(5.0, "5".into()),
            Cell::Number(1.5, "1.5".into()),
            Cell::Date("2026-07-10".parse().unwrap()),
            Cell::Bool(true),
            Cell::Bool(false),
        ];
        for c in cells {
            assert_eq!(decode(&encode(&c)), c);
        }
    }

    #[test]
    fn ids_once_rows_in_key_order_and_the_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).unwrap();
        assert_eq!(
            spool
                .listed(&["desk 1"], Kind::Customers, &["b", "a"])
                .unwrap(),
            [2]
        );
        // Another listing gives them again: new to it, not to the kind; its group counts
        // what no other listing of the group gave.
        assert_eq!(
            spool
                .listed(&["org 1", "members"], Kind::Customers, &["a", "c"])
                .unwrap(),
            [2, 2]
        );
        assert_eq!(
            spool
                .listed(&["org 2", "members"], Kind::Customers, &["c"])
                .unwrap(),
            [1, 0]
        );
        // The same listing again: nothing new (a site ignoring the offset).
        assert_eq!(
            spool.listed(&["desk 1"], Kind::Customers, &["a"]).unwrap(),
            [0]
        );
        assert_eq!(spool.id_count(Kind::Customers).unwrap(), 3);
        assert_eq!(
            spool.ids_after(Kind::Customers, None, 2).unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            spool.ids_after(Kind::Customers, Some("b"), 2).unwrap(),
            ["c"]
        );
        let row = |t: &str| (sort_key(t, "1"), vec![Cell::Text(t.into())]);
        spool
            .add(
                Kind::Customers,
                &[row("bob"), row("Ann"), row("ann"), row("Ánn")],
            )
            .unwrap();
        let mut order = Vec::new();
        spool
            .each_row(Kind::Customers, |r| {
                order.push(r[0].text());
                Ok(())
            })
            .unwrap();
        assert_eq!(order, ["Ann", "ann", "bob", "Ánn"]);
        let path = spool.path.clone();
        assert!(path.exists());
        drop(spool);
        assert!(!path.exists());
    }
}
