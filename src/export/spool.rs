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
    /// Kept when the export does not end well (`export --resume` goes on from it).
    keep: bool,
}

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE listed (listing TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (listing, id)) WITHOUT ROWID;
CREATE TABLE ids (kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE TABLE rows (kind TEXT NOT NULL, key BLOB NOT NULL, cells TEXT NOT NULL);
";

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.keep {
            crate::fsx::remove_sqlite(&self.path);
        }
    }
}

/// What the spool keeps of a kind's sheet (its kind is the key it is kept under).
#[derive(serde::Serialize, serde::Deserialize)]
struct SheetRecord {
    header: Vec<String>,
    rows: u64,
    widths: Vec<usize>,
}

/// The working file of the export to `out`: beside it, named after it, so `--resume` finds
/// it and a second export of the same file (which the output's lock refuses) never shares it.
pub fn path_for(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(format!(".{name}.csmport-export.sqlite"))
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
        Cell::Text(t) | Cell::Number(_, t) => t.chars().count(),
        Cell::Bool(b) => {
            if *b {
                crate::site::api::BOOLEAN_TRUE.len()
            } else {
                crate::site::api::BOOLEAN_FALSE.len()
            }
        }
    }
}

impl Spool {
    /// The working file for the export to `out`, made new (what an earlier export left there
    /// is replaced); `fingerprint` says what the export reads, for `resume`. Kept unless the
    /// export ends well (`finished`).
    pub fn start(out: &Path, fingerprint: &str) -> Result<Spool, SpoolError> {
        let path = path_for(out);
        crate::fsx::remove_sqlite(&path);
        let mut spool = Spool::create(path, fingerprint)?;
        spool.keep = true;
        Ok(spool)
    }

    /// What an earlier export to `out` left, to go on from: the same reads (`fingerprint`),
    /// or a message saying what differs.
    pub fn resume(out: &Path, fingerprint: &str) -> Result<Spool, SpoolError> {
        let path = path_for(out);
        let err = |m: String| SpoolError {
            path: path.display().to_string(),
            message: m,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(err(
                    "not a file csmport made (a link or a folder): not opened".into(),
                ));
            }
            Err(_) => {
                return Err(err(format!(
                    "not there: no export of {} stopped part-way (run it without --resume)",
                    out.display()
                )));
            }
        }
        let db = rusqlite::Connection::open(&path).map_err(|e| err(e.to_string()))?;
        let spool = Spool {
            db: Mutex::new(db),
            path: path.clone(),
            keep: true,
        };
        spool.with(|db| db.execute_batch(PRAGMAS))?;
        let had = spool.meta("fingerprint")?.unwrap_or_default();
        if had != fingerprint {
            return Err(err(format!(
                "the export that stopped read something else ({had}); this one reads {fingerprint}: run it without --resume"
            )));
        }
        Ok(spool)
    }

    fn create(path: PathBuf, fingerprint: &str) -> Result<Spool, SpoolError> {
        let err = |m: String| SpoolError {
            path: path.display().to_string(),
            message: m,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        crate::fsx::create_private(&path).map_err(|e| err(e.to_string()))?;
        let spool = Spool {
            db: Mutex::new(rusqlite::Connection::open(&path).map_err(|e| err(e.to_string()))?),
            path,
            keep: false,
        };
        spool.with(|db| {
            db.execute_batch(PRAGMAS)?;
            db.execute_batch(SCHEMA)?;
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('fingerprint', ?1)",
                params![fingerprint],
            )
            .map(|_| ())
        })?;
        Ok(spool)
    }

    /// Where the spool is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The export ended well: the working file goes.
    pub fn finished(mut self) {
        self.keep = false;
    }

    fn meta(&self, key: &str) -> Result<Option<String>, SpoolError> {
        self.with(|db| {
            db.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn set_meta(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value],
        )
        .map(|_| ())
    }

    /// The sheet of a kind read to its end before (a resumed export does not read it again).
    pub fn done_sheet(&self, kind: Kind) -> Result<Option<Sheet>, SpoolError> {
        Ok(self
            .meta(&format!("done:{}", kind.as_str()))?
            .and_then(|text| serde_json::from_str::<SheetRecord>(&text).ok())
            .map(|r| Sheet {
                kind,
                header: r.header,
                rows: r.rows,
                widths: r.widths,
            }))
    }

    /// Where a kind read a page at a time got to: its sheet so far and the last id read.
    pub fn progress(&self, kind: Kind) -> Result<Option<(Sheet, String)>, SpoolError> {
        let sheet = self
            .meta(&format!("sheet:{}", kind.as_str()))?
            .and_then(|text| serde_json::from_str::<SheetRecord>(&text).ok());
        let after = self.meta(&format!("after:{}", kind.as_str()))?;
        Ok(match (sheet, after) {
            (Some(r), Some(after)) => Some((
                Sheet {
                    kind,
                    header: r.header,
                    rows: r.rows,
                    widths: r.widths,
                },
                after,
            )),
            _ => None,
        })
    }

    /// A kind starts over: its rows, its progress and its listing forgotten.
    pub fn reset(&self, kind: Kind) -> Result<(), SpoolError> {
        let k = kind.as_str();
        self.with(|db| {
            let tx = db.transaction()?;
            tx.execute("DELETE FROM rows WHERE kind = ?1", params![k])?;
            tx.execute("DELETE FROM ids WHERE kind = ?1", params![k])?;
            tx.execute("DELETE FROM listed", [])?;
            for key in ["done", "sheet", "after", "listing"] {
                tx.execute(
                    "DELETE FROM meta WHERE key = ?1",
                    params![format!("{key}:{k}")],
                )?;
            }
            tx.commit()
        })
    }

    /// A kind read to its end.
    pub fn done(&self, sheet: &Sheet) -> Result<(), SpoolError> {
        let record = record_of(sheet);
        self.with(|db| {
            let tx = db.transaction()?;
            Spool::set_meta(&tx, &format!("done:{}", sheet.kind.as_str()), &record)?;
            tx.commit()
        })
    }

    /// What a kind's listing found, kept once it has listed everything (a resumed export
    /// does not list again).
    pub fn set_listing(&self, kind: Kind, value: &str) -> Result<(), SpoolError> {
        self.with(|db| {
            let tx = db.transaction()?;
            Spool::set_meta(&tx, &format!("listing:{}", kind.as_str()), value)?;
            tx.commit()
        })
    }

    pub fn listing(&self, kind: Kind) -> Result<Option<String>, SpoolError> {
        self.meta(&format!("listing:{}", kind.as_str()))
    }

    /// A listing starts over: what each listing gave is forgotten (the ids stay).
    pub fn relist(&self) -> Result<(), SpoolError> {
        self.with(|db| db.execute("DELETE FROM listed", []).map(|_| ()))
    }

    /// A page of rows read, with where the reading got to, in one step: a kill leaves
    /// either both or neither.
    pub fn add_page(
        &self,
        sheet: &Sheet,
        rows: &[(Vec<u8>, Vec<Cell>)],
        after: &str,
    ) -> Result<(), SpoolError> {
        let record = record_of(sheet);
        let kind = sheet.kind;
        self.with(|db| {
            let tx = db.transaction()?;
            insert_rows(&tx, kind, borrowed(rows))?;
            Spool::set_meta(&tx, &format!("sheet:{}", kind.as_str()), &record)?;
            Spool::set_meta(&tx, &format!("after:{}", kind.as_str()), after)?;
            tx.commit()
        })
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
        let named: Vec<(&str, &str)> = ids.iter().map(|id| (*id, "")).collect();
        self.listed_named(listings, kind, &named)
    }

    /// `listed`, each id with the name a file shows it by (a customer's email, an
    /// organization's name); the first listing's name is kept.
    pub fn listed_named(
        &self,
        listings: &[&str],
        kind: Kind,
        ids: &[(&str, &str)],
    ) -> Result<Vec<usize>, SpoolError> {
        self.with(|db| {
            let tx = db.transaction()?;
            let mut new = vec![0; listings.len()];
            {
                let mut seen = tx
                    .prepare_cached("INSERT OR IGNORE INTO listed (listing, id) VALUES (?1, ?2)")?;
                let mut all = tx.prepare_cached(
                    "INSERT OR IGNORE INTO ids (kind, id, name) VALUES (?1, ?2, ?3)",
                )?;
                for (id, name) in ids {
                    for (n, listing) in new.iter_mut().zip(listings) {
                        *n += seen.execute(params![listing, id])?;
                    }
                    all.execute(params![kind.as_str(), id, name])?;
                }
            }
            tx.commit()?;
            Ok(new)
        })
    }

    /// The ids of `kind` after `after` (in id order), at most `n`: pages of ids to fetch.
    pub fn ids_after(
        &self,
        kind: Kind,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<String>, SpoolError> {
        Ok(self
            .named_after(kind, after, n)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// `ids_after`, each with its name.
    pub fn named_after(
        &self,
        kind: Kind,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<(String, String)>, SpoolError> {
        self.with(|db| {
            let mut s = db.prepare_cached(
                "SELECT id, name FROM ids WHERE kind = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )?;
            let rows = s.query_map(params![kind.as_str(), after.unwrap_or(""), n as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            rows.collect()
        })
    }

    /// Rows of a kind, each with its sort key.
    pub fn add(&self, kind: Kind, rows: &[(Vec<u8>, Vec<Cell>)]) -> Result<(), SpoolError> {
        self.with(|db| {
            let tx = db.transaction()?;
            insert_rows(&tx, kind, borrowed(rows))?;
            tx.commit()
        })
    }

    /// A table read whole (the small kinds), kept as its rows are (already in order), and
    /// its kind marked read, in one step.
    pub fn add_table(&self, table: &Table) -> Result<Sheet, SpoolError> {
        let mut sheet = self.sheet(table.kind, table.header.clone());
        for r in &table.rows {
            sheet.count(r);
        }
        let record = record_of(&sheet);
        // Keyed by position: the table is in order already.
        let rows = table
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| ((i as u64).to_be_bytes(), r.as_slice()));
        self.with(|db| {
            let tx = db.transaction()?;
            tx.execute(
                "DELETE FROM rows WHERE kind = ?1",
                params![table.kind.as_str()],
            )?;
            insert_rows(&tx, table.kind, rows)?;
            Spool::set_meta(&tx, &format!("done:{}", table.kind.as_str()), &record)?;
            tx.commit()
        })?;
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
        mut f: impl FnMut(&[Cell]) -> Result<(), String>,
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
            let row: Vec<Cell> = cells.iter().map(|c| decode(c)).collect();
            f(&row)?;
        }
        Ok(())
    }
}

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8000; PRAGMA temp_store = FILE;";

fn insert_rows<'a, K: AsRef<[u8]>>(
    tx: &rusqlite::Transaction<'_>,
    kind: Kind,
    rows: impl IntoIterator<Item = (K, &'a [Cell])>,
) -> rusqlite::Result<()> {
    let mut s = tx.prepare_cached("INSERT INTO rows (kind, key, cells) VALUES (?1, ?2, ?3)")?;
    for (key, cells) in rows {
        let encoded: Vec<String> = cells.iter().map(encode).collect();
        s.execute(params![
            kind.as_str(),
            key.as_ref(),
            serde_json::to_string(&encoded).expect("strings serialize")
        ])?;
    }
    Ok(())
}

/// Rows as `insert_rows` takes them.
fn borrowed(rows: &[(Vec<u8>, Vec<Cell>)]) -> impl Iterator<Item = (&[u8], &[Cell])> {
    rows.iter().map(|(k, c)| (k.as_slice(), c.as_slice()))
}

fn record_of(sheet: &Sheet) -> String {
    serde_json::to_string(&SheetRecord {
        header: sheet.header.clone(),
        rows: sheet.rows,
        widths: sheet.widths.clone(),
    })
    .expect("a sheet serializes")
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
        let spool = Spool::start(&dir.path().join("c.csv"), "").unwrap();
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
        spool.finished();
        assert!(!path.exists());
    }
}
