//! Export stage, comparing: what changed since an earlier export, by each kind's key. Both
//! sides go into a private SQLite file beside the output and are read back in key order, so a
//! million rows on each side cost disk, not memory. Neighbours: `export::write` (the change
//! file and the XLSX's Changes sheet), driven by `engine::export`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::params;

use super::Kind;
use crate::read::{ReadOptions, Source, unescape_formula};

/// What a row of the change file says happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// The columns a kind's records are told apart by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub columns: Vec<String>,
    /// Emails: `Ann@x` and `ann@x` are one customer.
    fold_case: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("{0}")]
    Usage(String),
    #[error("the comparison's working file {path}: {source}")]
    Store {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path}: cannot be read: {message}")]
    Read { path: String, message: String },
}

/// The key of `kind`: customers by email, organizations by name (or `key`, a column such as
/// `External ID`), products by name, entitlements by holder and product, detail fields by
/// entity and name.
pub fn key_of(kind: Kind, key: Option<&str>) -> Result<Key, ChangesError> {
    let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (columns, fold_case) = match (kind, key) {
        (Kind::Organizations, Some(k)) => (vec![k.to_string()], false),
        (_, Some(k)) => {
            return Err(ChangesError::Usage(format!(
                "--key {k}: only organizations are told apart by a column of your choosing; {} are by {}",
                kind.as_str(),
                key_of(kind, None)?.columns.join(" and ")
            )));
        }
        (Kind::Customers, None) => (cols(&["email"]), true),
        (Kind::Organizations | Kind::Products, None) => (cols(&["name"]), false),
        (Kind::Entitlements, None) => (cols(&["customer", "organization", "product"]), true),
        (Kind::DetailFields, None) => (cols(&["entity", "name"]), false),
        (other, None) => {
            return Err(ChangesError::Usage(format!(
                "--changes: {} are not exported",
                other.as_str()
            )));
        }
    };
    Ok(Key { columns, fold_case })
}

/// One difference: a record added or removed, or one column of a record that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub kind: Kind,
    pub change: Change,
    /// The key's cells, as the file has them.
    pub key: Vec<String>,
    /// For a change: the column, its old and its new value.
    pub column: String,
    pub old: String,
    pub new: String,
}

/// What the comparison of one kind found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// Columns the new export has and the earlier one did not (their values are not compared).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns_removed: Vec<String>,
    /// No earlier rows of this kind: every row is added.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub first: bool,
}

/// Where the earlier rows of a kind are.
pub enum Earlier<'a> {
    /// A file: an export's CSV, or its XLSX (the kind's sheet). `required`: a file the user
    /// named (`--since`) must have the kind; the file an export replaces may not (a kind
    /// exported for the first time).
    File { path: &'a Path, required: bool },
    /// No earlier export: every row is added.
    None,
}

/// The comparison's working file: rows of both sides by kind, and what differs.
pub struct Differ {
    db: rusqlite::Connection,
    path: PathBuf,
    /// The header each side had, by kind and side (0 earlier, 1 new).
    headers: BTreeMap<(&'static str, u8), Vec<String>>,
}

const SCHEMA: &str = "
CREATE TABLE side (kind TEXT NOT NULL, side INTEGER NOT NULL, k TEXT NOT NULL, cells TEXT NOT NULL);
CREATE TABLE diff (kind TEXT NOT NULL, change TEXT NOT NULL, key TEXT NOT NULL, col TEXT NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL);
";

impl Drop for Differ {
    fn drop(&mut self) {
        crate::fsx::remove_sqlite(&self.path);
    }
}

/// The working file's errors, naming it.
fn store_at(path: &Path) -> impl Fn(rusqlite::Error) -> ChangesError + '_ {
    move |source| ChangesError::Store {
        path: path.display().to_string(),
        source,
    }
}

impl Differ {
    /// A working file in `dir` (beside the output: the user's data stays where the user put
    /// it), private, removed when the comparison is dropped.
    pub fn new(dir: &Path) -> Result<Differ, ChangesError> {
        let path = dir.join(format!(
            ".csmport-changes-{}-{}.sqlite",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let store = |source| ChangesError::Store {
            path: path.display().to_string(),
            source,
        };
        crate::fsx::create_private(&path).map_err(|e| ChangesError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let db = rusqlite::Connection::open(&path).map_err(store)?;
        // Nothing here outlives the process: no journal to sync, a small cache, sorting on disk.
        db.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8000; PRAGMA temp_store = FILE;",
        )
        .map_err(store)?;
        db.execute_batch(SCHEMA).map_err(store)?;
        Ok(Differ {
            db,
            path,
            headers: BTreeMap::new(),
        })
    }

    /// The earlier rows of `kind`. Returns false when there were none (see `Earlier`).
    pub fn load_earlier(
        &mut self,
        kind: Kind,
        key: &Key,
        earlier: Earlier<'_>,
        sheet: &str,
    ) -> Result<bool, ChangesError> {
        let Earlier::File { path, required } = earlier else {
            return Ok(false);
        };
        let shown = path.display().to_string();
        let Some((mut source, header)) = open_earlier(kind, key, path, required, sheet)? else {
            return Ok(false);
        };
        let at = key_positions(key, &header);
        let store = store_at(&self.path);
        let tx = self.db.transaction().map_err(&store)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO side (kind, side, k, cells) VALUES (?1, 0, ?2, ?3)")
                .map_err(&store)?;
            while let Some(row) = source.next_row() {
                let row = row.map_err(|e| ChangesError::Read {
                    path: shown.clone(),
                    message: e.to_string(),
                })?;
                let cells: Vec<&str> = (0..header.len())
                    .map(|i| unescape_formula(row.cells.get(i).unwrap_or("")))
                    .collect();
                if cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                insert
                    .execute(params![
                        kind.as_str(),
                        key_text(key, &at, &cells),
                        serde_json::to_string(&cells).expect("strings serialize")
                    ])
                    .map_err(&store)?;
            }
        }
        tx.commit().map_err(&store)?;
        self.headers.insert((kind.as_str(), 0), header);
        Ok(true)
    }

    /// The new export's rows of sheet `i` of `source` (tables, or the export's spool).
    pub fn load_new_from(
        &mut self,
        source: &dyn super::write::Source,
        i: usize,
        key: &Key,
    ) -> Result<(), ChangesError> {
        let sheet = source.sheets().swap_remove(i);
        let at = key_positions(key, &sheet.header);
        let store = store_at(&self.path);
        let kind = sheet.kind.as_str();
        let tx = self.db.transaction().map_err(&store)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO side (kind, side, k, cells) VALUES (?1, 1, ?2, ?3)")
                .map_err(&store)?;
            source
                .each_row(i, &mut |row| {
                    let texts: Vec<String> = row.iter().map(|c| c.text()).collect();
                    let cells: Vec<&str> = texts.iter().map(String::as_str).collect();
                    insert
                        .execute(params![
                            kind,
                            key_text(key, &at, &cells),
                            serde_json::to_string(&cells).expect("strings serialize")
                        ])
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .map_err(|message| ChangesError::Read {
                    path: self.path.display().to_string(),
                    message,
                })?;
        }
        tx.commit().map_err(&store)?;
        self.headers.insert((kind, 1), sheet.header);
        Ok(())
    }

    /// Compares the two sides of `kind` and keeps what differs, in key order.
    pub fn compare(
        &mut self,
        kind: Kind,
        key: &Key,
        had_earlier: bool,
    ) -> Result<Counts, ChangesError> {
        let store = store_at(&self.path);
        self.db
            .execute_batch("CREATE INDEX IF NOT EXISTS side_order ON side (kind, side, k);")
            .map_err(&store)?;
        let new_header = self
            .headers
            .get(&(kind.as_str(), 1))
            .cloned()
            .unwrap_or_default();
        let old_header = self
            .headers
            .get(&(kind.as_str(), 0))
            .cloned()
            .unwrap_or_default();
        let mut counts = Counts {
            first: !had_earlier,
            ..Counts::default()
        };
        // Columns both have (by name, in the new order), keys aside.
        let compared: Vec<(String, usize, usize)> = new_header
            .iter()
            .enumerate()
            .filter(|(_, h)| !key.columns.iter().any(|k| k.eq_ignore_ascii_case(h)))
            .filter_map(|(n, h)| {
                old_header
                    .iter()
                    .position(|o| o.eq_ignore_ascii_case(h))
                    .map(|o| (h.clone(), o, n))
            })
            .collect();
        if had_earlier {
            counts.columns_added = new_header
                .iter()
                .filter(|h| !old_header.iter().any(|o| o.eq_ignore_ascii_case(h)))
                .cloned()
                .collect();
            counts.columns_removed = old_header
                .iter()
                .filter(|o| !new_header.iter().any(|h| h.eq_ignore_ascii_case(o)))
                .cloned()
                .collect();
        }
        let old_key = key_positions(key, &old_header);
        let new_key = key_positions(key, &new_header);
        let tx = self.db.transaction().map_err(&store)?;
        {
            let mut old_rows = tx
                .prepare("SELECT k, cells FROM side WHERE kind = ?1 AND side = 0 ORDER BY k, rowid")
                .map_err(&store)?;
            let mut new_rows = tx
                .prepare("SELECT k, cells FROM side WHERE kind = ?1 AND side = 1 ORDER BY k, rowid")
                .map_err(&store)?;
            let mut out = tx
                .prepare(
                    "INSERT INTO diff (kind, change, key, col, old, new) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&store)?;
            let decode = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, Vec<String>)> {
                let k: String = r.get(0)?;
                let cells: String = r.get(1)?;
                Ok((k, serde_json::from_str(&cells).unwrap_or_default()))
            };
            let mut olds = old_rows
                .query_map(params![kind.as_str()], decode)
                .map_err(&store)?
                .peekable();
            let mut news = new_rows
                .query_map(params![kind.as_str()], decode)
                .map_err(&store)?
                .peekable();
            let mut emit = |change: Change,
                            cells: &[String],
                            at: &[usize],
                            col: &str,
                            old: &str,
                            new: &str| {
                let shown: Vec<&str> = at
                    .iter()
                    .map(|&i| cells.get(i).map_or("", String::as_str))
                    .collect();
                out.execute(params![
                    kind.as_str(),
                    change.as_str(),
                    serde_json::to_string(&shown).expect("strings serialize"),
                    col,
                    old,
                    new
                ])
                .map(|_| ())
            };
            loop {
                let o = olds.peek().map(|r| r.as_ref().map(|x| x.0.clone()));
                let n = news.peek().map(|r| r.as_ref().map(|x| x.0.clone()));
                let (o, n) = match (o, n) {
                    (None, None) => break,
                    (Some(Err(_)), _) => {
                        let e = olds.next().expect("peeked").expect_err("an error");
                        return Err(store(e));
                    }
                    (_, Some(Err(_))) => {
                        let e = news.next().expect("peeked").expect_err("an error");
                        return Err(store(e));
                    }
                    (o, n) => (o.map(|x| x.expect("ok")), n.map(|x| x.expect("ok"))),
                };
                let here = match (&o, &n) {
                    (Some(a), Some(b)) => a.min(b).clone(),
                    (Some(a), None) => a.clone(),
                    (None, Some(b)) => b.clone(),
                    (None, None) => unreachable!("both ended: the loop stopped"),
                };
                // Every row of each side under this key (several only when a key repeats).
                let before = group(&mut olds, &here).map_err(&store)?;
                let after = group(&mut news, &here).map_err(&store)?;
                for (i, cells) in after.iter().enumerate() {
                    match before.get(i) {
                        None => {
                            counts.added += 1;
                            emit(Change::Added, cells, &new_key, "", "", "").map_err(&store)?;
                        }
                        Some(was) => {
                            let mut differs = false;
                            for (col, o, n) in &compared {
                                let (old, new) = (
                                    was.get(*o).map_or("", String::as_str),
                                    cells.get(*n).map_or("", String::as_str),
                                );
                                if !same(old, new) {
                                    differs = true;
                                    emit(Change::Changed, cells, &new_key, col, old, new)
                                        .map_err(&store)?;
                                }
                            }
                            counts.changed += u64::from(differs);
                        }
                    }
                }
                for cells in before.iter().skip(after.len()) {
                    counts.removed += 1;
                    emit(Change::Removed, cells, &old_key, "", "", "").map_err(&store)?;
                }
            }
        }
        tx.commit().map_err(&store)?;
        Ok(counts)
    }

    /// Every difference found, in the order found (kind by kind, in key order).
    pub fn each(&self, mut f: impl FnMut(ChangeRow) -> Result<(), String>) -> Result<(), String> {
        let mut s = self
            .db
            .prepare("SELECT kind, change, key, col, old, new FROM diff ORDER BY rowid")
            .map_err(|e| e.to_string())?;
        let rows = s
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        for row in rows {
            let (kind, change, key, column, old, new) = row.map_err(|e| e.to_string())?;
            let kind = Kind::EXPORTED
                .iter()
                .copied()
                .find(|k| k.as_str() == kind)
                .ok_or_else(|| format!("unknown kind {kind}"))?;
            let change = match change.as_str() {
                "added" => Change::Added,
                "removed" => Change::Removed,
                _ => Change::Changed,
            };
            f(ChangeRow {
                kind,
                change,
                key: serde_json::from_str(&key).unwrap_or_default(),
                column,
                old,
                new,
            })?;
        }
        Ok(())
    }
}

/// The rows at the head of `side` whose key is `here`.
fn group<I>(side: &mut std::iter::Peekable<I>, here: &str) -> rusqlite::Result<Vec<Vec<String>>>
where
    I: Iterator<Item = rusqlite::Result<(String, Vec<String>)>>,
{
    let mut rows = Vec::new();
    while let Some(Ok((k, _))) = side.peek() {
        if k != here {
            break;
        }
        let (_, cells) = side.next().expect("peeked")?;
        rows.push(cells);
    }
    Ok(rows)
}

/// The first `n` of `items`, and how many more.
fn shown_list(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(" and {} more", items.len() - n));
    }
    s
}

/// The earlier export's rows of `kind` and its header, checked to have the key's columns;
/// none when there are no earlier rows (a file the export replaces that is not there yet, or
/// lacks the kind's sheet). A file the user named (`required`) must be there and hold them.
pub fn open_earlier(
    kind: Kind,
    key: &Key,
    path: &Path,
    required: bool,
    sheet: &str,
) -> Result<Option<(Source, Vec<String>)>, ChangesError> {
    if !path.exists() {
        if required {
            return Err(ChangesError::Usage(format!(
                "--since {}: no such file",
                path.display()
            )));
        }
        return Ok(None);
    }
    let shown = path.display().to_string();
    let spreadsheet = matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("xlsx" | "xlsm" | "xlsb" | "xls" | "ods")
    );
    let opts = ReadOptions {
        header_row: Some(1),
        sheet: spreadsheet.then(|| sheet.to_string()),
        ..ReadOptions::default()
    };
    let source = match Source::open(path, &opts) {
        Ok(s) => s,
        // The file an export replaces may lack a kind exported for the first time.
        Err(e) if spreadsheet && !required && e.to_string().contains(sheet) => {
            return Ok(None);
        }
        Err(e) => {
            return Err(ChangesError::Usage(format!(
                "{shown}: cannot be compared with: {e}"
            )));
        }
    };
    let header: Vec<String> = source
        .header()
        .iter()
        .map(|h| unescape_formula(h).trim().to_string())
        .collect();
    let missing: Vec<&String> = key
        .columns
        .iter()
        .filter(|c| !header.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(ChangesError::Usage(format!(
            "{shown}: not an export of {}: it has no {} column{} (its columns: {})",
            kind.as_str(),
            missing
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", "),
            if missing.len() == 1 { "" } else { "s" },
            shown_list(&header, 12)
        )));
    }
    Ok(Some((source, header)))
}

/// Where each key column is in `header` (a column it lacks reads as empty).
fn key_positions(key: &Key, header: &[String]) -> Vec<usize> {
    key.columns
        .iter()
        .map(|c| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(c))
                .unwrap_or(usize::MAX)
        })
        .collect()
}

/// The key as the store sorts it: the key cells, trimmed (and lower-cased for emails), joined
/// by a separator no cell holds.
fn key_text(key: &Key, at: &[usize], cells: &[&str]) -> String {
    let mut out = String::new();
    for (n, &i) in at.iter().enumerate() {
        if n > 0 {
            out.push('\u{1f}');
        }
        let cell = cells.get(i).copied().unwrap_or("").trim();
        if key.fold_case {
            out.push_str(&cell.to_lowercase());
        } else {
            out.push_str(cell);
        }
    }
    out
}

/// Whether two cells say the same: the same text (but for spaces around it), or the same
/// yes/no written two ways (a spreadsheet shows `TRUE` where the CSV has `true`).
pub fn same(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (a.trim(), b.trim());
    if a == b {
        return true;
    }
    let word = |s: &str| match s.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    // Numbers are compared as written: `0422082255` and `422082255` are not one phone.
    matches!((word(a), word(b)), (Some(x), Some(y)) if x == y)
}

/// The change file's header: `_kind` when several kinds are compared, `_change`, the key's
/// columns, `_column`, `_old`, `_new`.
pub fn header(kinds: &[(Kind, Key)]) -> Vec<String> {
    let mut h = Vec::new();
    if kinds.len() > 1 {
        h.push("_kind".to_string());
    }
    h.push("_change".to_string());
    for (_, key) in kinds {
        for c in &key.columns {
            if !h.contains(c) {
                h.push(c.clone());
            }
        }
    }
    h.extend(["_column", "_old", "_new"].map(String::from));
    h
}

/// A difference as a row under `header`.
pub fn cells(header: &[String], kinds: &[(Kind, Key)], row: &ChangeRow) -> Vec<String> {
    let key = kinds
        .iter()
        .find(|(k, _)| *k == row.kind)
        .map(|(_, key)| key);
    header
        .iter()
        .map(|h| match h.as_str() {
            "_kind" => row.kind.as_str().to_string(),
            "_change" => row.change.as_str().to_string(),
            "_column" => row.column.clone(),
            "_old" => row.old.clone(),
            "_new" => row.new.clone(),
            col => key
                .and_then(|k| k.columns.iter().position(|c| c == col))
                .and_then(|i| row.key.get(i).cloned())
                .unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Cell, Table, text};

    fn load_new(d: &mut Differ, table: &Table, key: &Key) {
        let source = crate::export::write::Tables(std::slice::from_ref(table));
        d.load_new_from(&source, 0, key).unwrap();
    }

    fn table(rows: &[[&str; 3]]) -> Table {
        Table {
            kind: Kind::Customers,
            header: vec!["email".into(), "displayName".into(), "Seats".into()],
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| text(c)).collect::<Vec<Cell>>())
                .collect(),
        }
    }

    #[test]
    fn values_written_two_ways_are_the_same() {
        for (a, b, want) in [
            ("x", "x", true),
            ("TRUE", "true", true),
            ("FALSE", "true", false),
            ("5", "5.0", false),
            ("0422082255", "422082255", false),
            ("a", "A", false),
            ("", "0", false),
            (" x", "x", true),
        ] {
            assert_eq!(same(a, b), want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn added_removed_and_changed_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.csv");
        std::fs::write(
            &old,
            "email,displayName,Seats,Gone\nann@x.example,Ann,5,g\nbob@x.example,Bob,3,g\ncy@x.example,Cy,1,g\n'=dup@x.example,D,1,g\n",
        )
        .unwrap();
        let new = table(&[
            ["ANN@x.example", "Ann", "5"],
            ["bob@x.example", "Robert", "4"],
            ["dee@x.example", "Dee", "1"],
            ["=dup@x.example", "D", "1"],
        ]);
        let key = key_of(Kind::Customers, None).unwrap();
        let mut d = Differ::new(dir.path()).unwrap();
        let had = d
            .load_earlier(
                Kind::Customers,
                &key,
                Earlier::File {
                    path: &old,
                    required: true,
                },
                "customers",
            )
            .unwrap();
        load_new(&mut d, &new, &key);
        let counts = d.compare(Kind::Customers, &key, had).unwrap();
        assert_eq!((counts.added, counts.removed, counts.changed), (1, 1, 1));
        assert_eq!(counts.columns_removed, ["Gone"]);
        let mut rows = Vec::new();
        d.each(|r| {
            rows.push((r.change, r.key.join("|"), r.column, r.old, r.new));
            Ok(())
        })
        .unwrap();
        let want = [
            (
                Change::Changed,
                "bob@x.example",
                "displayName",
                "Bob",
                "Robert",
            ),
            (Change::Changed, "bob@x.example", "Seats", "3", "4"),
            (Change::Removed, "cy@x.example", "", "", ""),
            (Change::Added, "dee@x.example", "", "", ""),
        ];
        let got: Vec<_> = rows
            .iter()
            .map(|(c, k, col, o, n)| (*c, k.as_str(), col.as_str(), o.as_str(), n.as_str()))
            .collect();
        assert_eq!(got, want);
        let path = d.path.clone();
        drop(d);
        assert!(!path.exists(), "the working file is removed");
    }

    #[test]
    fn an_earlier_file_without_the_key_or_none_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let products = dir.path().join("products.csv");
        std::fs::write(&products, "name,id\nP,1\n").unwrap();
        let key = key_of(Kind::Customers, None).unwrap();
        let mut d = Differ::new(dir.path()).unwrap();
        let e = d
            .load_earlier(
                Kind::Customers,
                &key,
                Earlier::File {
                    path: &products,
                    required: true,
                },
                "customers",
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("products.csv") && e.contains("no 'email' column"),
            "{e}"
        );
        let missing = dir.path().join("nope.csv");
        assert!(
            d.load_earlier(
                Kind::Customers,
                &key,
                Earlier::File {
                    path: &missing,
                    required: true
                },
                "customers"
            )
            .is_err()
        );
        assert!(
            !d.load_earlier(
                Kind::Customers,
                &key,
                Earlier::File {
                    path: &missing,
                    required: false
                },
                "customers"
            )
            .unwrap()
        );
        load_new(
            &mut d,
            &table(&[["a@x.example", "A", "1"], ["b@x.example", "B", "2"]]),
            &key,
        );
        let c = d.compare(Kind::Customers, &key, false).unwrap();
        assert_eq!((c.added, c.first), (2, true));
        assert!(key_of(Kind::Customers, Some("id")).is_err());
        assert_eq!(
            key_of(Kind::Organizations, Some("External ID"))
                .unwrap()
                .columns,
            ["External ID"]
        );
    }

    #[test]
    fn a_repeated_key_pairs_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.csv");
        std::fs::write(
            &old,
            "email,displayName,Seats\na@x.example,A,1\na@x.example,A2,1\n",
        )
        .unwrap();
        let key = key_of(Kind::Customers, None).unwrap();
        let mut d = Differ::new(dir.path()).unwrap();
        d.load_earlier(
            Kind::Customers,
            &key,
            Earlier::File {
                path: &old,
                required: true,
            },
            "customers",
        )
        .unwrap();
        load_new(&mut d, &table(&[["a@x.example", "A", "1"]]), &key);
        let c = d.compare(Kind::Customers, &key, true).unwrap();
        assert_eq!((c.added, c.removed, c.changed), (0, 1, 0));
    }
}
