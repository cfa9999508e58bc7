//! Read stage for JSON exports (Zendesk's data export, API dumps): a `.json` file holding an
//! array of objects or objects one after another (JSON lines), and `.jsonl`/`.ndjson`. Read
//! as a stream, one object at a time, twice: once for the columns (every key any object has:
//! an object's keys by name, keys new in a later object after those seen), once for the rows. Nested objects become dotted columns
//! (`user_fields.tier`), arrays one cell joined with the multi-value separator. No object is
//! held beyond `MAX_OBJECT_BYTES`, so a 2 GB single-line array reads in bounded memory.
//! Neighbours: `read::Source` (dispatch), `read::batch` (the rows it fills).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::batch::RowBatch;
use super::{Dialect, KEPT_CHARS, MAX_CELL_BYTES, MAX_FIELDS, RawRow, ReadError};
use csmport_api::MULTI_VALUE_SEPARATOR;

/// The largest object read: far more than any export's record, far less than the memory
/// bound.
pub const MAX_OBJECT_BYTES: u64 = 8 << 20;

pub const EXTENSIONS: [&str; 3] = ["json", "jsonl", "ndjson"];

/// A reader that counts the bytes taken and refuses to go past a budget per object.
struct Counted {
    inner: BufReader<File>,
    pos: u64,
    object_start: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos - self.object_start > MAX_OBJECT_BYTES {
            return Err(std::io::Error::other(format!(
                "an object longer than {} (a record of an export is far smaller)",
                super::shown_size(MAX_OBJECT_BYTES)
            )));
        }
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Counted {
    /// The next byte that is not white space, not taken.
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    self.inner.consume(i);
                    self.pos += i as u64;
                    return Ok(Some(self.inner.fill_buf()?[0]));
                }
                None => {
                    let n = buf.len();
                    self.inner.consume(n);
                    self.pos += n as u64;
                }
            }
        }
    }

    fn take_byte(&mut self) {
        self.inner.consume(1);
        self.pos += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Array,
    Lines,
}

/// The objects of a file, one at a time.
struct Objects {
    r: Counted,
    layout: Layout,
    done: bool,
    first: bool,
}

/// A problem at a byte of the file.
#[derive(Debug)]
struct At {
    offset: u64,
    why: String,
}

impl Objects {
    fn open(path: &Path) -> Result<Objects, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut r = Counted {
            inner: BufReader::with_capacity(256 * 1024, file),
            pos: 0,
            object_start: 0,
        };
        let bad = |offset: u64, why: String| ReadError::Json {
            path: path.to_path_buf(),
            offset,
            why,
        };
        // A UTF-8 byte-order mark, as some tools write.
        if r.inner
            .fill_buf()
            .map_err(|e| bad(0, e.to_string()))?
            .starts_with(b"\xEF\xBB\xBF")
        {
            r.inner.consume(3);
            r.pos = 3;
        }
        let layout = match r.peek().map_err(|e| bad(r.pos, e.to_string()))? {
            None => {
                return Err(ReadError::Empty {
                    path: path.to_path_buf(),
                });
            }
            Some(b'[') => {
                r.take_byte();
                Layout::Array
            }
            Some(b'{') => Layout::Lines,
            Some(b) => {
                return Err(bad(
                    r.pos,
                    format!(
                        "starts with '{}': a JSON input is an array of objects ([{{…}}, {{…}}]) or one object per line",
                        char::from(b).escape_default()
                    ),
                ));
            }
        };
        Ok(Objects {
            r,
            layout,
            done: false,
            first: true,
        })
    }

    fn next(&mut self) -> Option<Result<serde_json::Map<String, Value>, At>> {
        if self.done {
            return None;
        }
        let r = self.next_object();
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }

    fn next_object(&mut self) -> Option<Result<serde_json::Map<String, Value>, At>> {
        let at = |r: &Counted, why: String| At { offset: r.pos, why };
        let mut next = match self.r.peek() {
            Ok(b) => b,
            Err(e) => return Some(Err(at(&self.r, e.to_string()))),
        };
        if self.layout == Layout::Array {
            if next.is_none() {
                return Some(Err(at(&self.r, "the array is not closed with ']'".into())));
            }
            if next == Some(b']') {
                self.r.take_byte();
                return match self.r.peek() {
                    Ok(None) => None,
                    Ok(Some(_)) => Some(Err(at(&self.r, "more after the array's end".into()))),
                    Err(e) => Some(Err(at(&self.r, e.to_string()))),
                };
            }
            if !self.first {
                if next != Some(b',') {
                    return Some(Err(at(
                        &self.r,
                        "expected ',' or ']' after an object of the array".into(),
                    )));
                }
                self.r.take_byte();
                next = match self.r.peek() {
                    Ok(b) => b,
                    Err(e) => return Some(Err(at(&self.r, e.to_string()))),
                };
            }
        }
        self.first = false;
        match next {
            None if self.layout == Layout::Lines => return None,
            None => return Some(Err(at(&self.r, "the array is not closed with ']'".into()))),
            Some(b'{') => {}
            Some(b) => {
                return Some(Err(at(
                    &self.r,
                    format!(
                        "'{}' where an object ({{…}}) should start: every record must be an object",
                        char::from(b).escape_default()
                    ),
                )));
            }
        }
        self.r.object_start = self.r.pos;
        let start = self.r.pos;
        let mut de = serde_json::Deserializer::from_reader(&mut self.r);
        match serde_json::Map::<String, Value>::deserialize(&mut de) {
            Ok(m) => Some(Ok(m)),
            Err(e) => Some(Err(At {
                offset: start,
                why: format!("the object starting here is not valid JSON: {e}"),
            })),
        }
    }
}

/// Flattens `v` into `out` as (column, cell): objects by dotted keys, arrays joined.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar).filter(|s| !s.is_empty()).collect();
            out.push((
                prefix.to_string(),
                parts.join(&MULTI_VALUE_SEPARATOR.to_string()),
            ));
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

/// A value as one cell: text as it is, numbers and booleans as written, null empty, an
/// object or array inside an array as its JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

pub struct JsonSource {
    path: PathBuf,
    header: Vec<String>,
    index: HashMap<String, usize>,
    objects: Objects,
    next_row: u64,
    rows: u64,
    size: u64,
    dialect: Dialect,
}

impl JsonSource {
    pub fn open(path: &Path) -> Result<JsonSource, ReadError> {
        let size = std::fs::metadata(path)
            .map_err(|source| ReadError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let bad = |a: At| ReadError::Json {
            path: path.to_path_buf(),
            offset: a.offset,
            why: a.why,
        };
        // First pass: the columns.
        let mut first = Objects::open(path)?;
        let mut header: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut rows = 0u64;
        let mut cells = Vec::new();
        while let Some(o) = first.next() {
            let o = o.map_err(bad)?;
            rows += 1;
            cells.clear();
            flatten("", &Value::Object(o), &mut cells);
            for (k, _) in &cells {
                if !index.contains_key(k) {
                    if header.len() >= MAX_FIELDS {
                        return Err(ReadError::Json {
                            path: path.to_path_buf(),
                            offset: first.r.pos,
                            why: format!("the objects have more than {MAX_FIELDS} different keys"),
                        });
                    }
                    index.insert(k.clone(), header.len());
                    header.push(k.clone());
                }
            }
        }
        if header.is_empty() {
            return Err(ReadError::Empty {
                path: path.to_path_buf(),
            });
        }
        let objects = Objects::open(path)?;
        let dialect = Dialect {
            format: match objects.layout {
                Layout::Array => "JSON array of objects".into(),
                Layout::Lines => "JSON lines (one object each)".into(),
            },
            encoding: Some("UTF-8".into()),
            header_row: 0,
            notes: vec![format!(
                "{} columns: every key of the objects (nested ones as parent.child, arrays joined with '{}')",
                header.len(),
                MULTI_VALUE_SEPARATOR
            )],
            ..Dialect::default()
        };
        Ok(JsonSource {
            path: path.to_path_buf(),
            header,
            index,
            objects,
            next_row: 1,
            rows,
            size,
            dialect,
        })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn position(&self) -> u64 {
        self.objects.r.pos
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn estimated_rows(&self) -> u64 {
        self.rows
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect.clone()
    }

    /// The next object as a row: (cells in header order, a problem).
    fn next_cells(&mut self) -> Option<Result<(u64, Vec<String>, Option<String>), ReadError>> {
        let o = match self.objects.next()? {
            Ok(o) => o,
            Err(a) => {
                return Some(Err(ReadError::Json {
                    path: self.path.clone(),
                    offset: a.offset,
                    why: a.why,
                }));
            }
        };
        let mut flat = Vec::new();
        flatten("", &Value::Object(o), &mut flat);
        let mut cells = vec![String::new(); self.header.len()];
        let mut problem = None;
        for (k, mut v) in flat {
            let Some(&i) = self.index.get(&k) else {
                // The file changed since the first pass.
                problem = Some(format!("key '{k}' was not in the file when it was opened"));
                continue;
            };
            if v.len() > MAX_CELL_BYTES {
                problem = Some(format!(
                    "'{k}' holds {}, more than a cell can (the first {KEPT_CHARS} characters are kept)",
                    super::shown_size(v.len() as u64)
                ));
                v = v.chars().take(KEPT_CHARS).collect();
            }
            cells[i] = v;
        }
        let row = self.next_row;
        self.next_row += 1;
        Some(Ok((row, cells, problem)))
    }

    pub fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        Some(self.next_cells()?.map(|(row, cells, problem)| RawRow {
            row,
            cells: ::csv::StringRecord::from(cells),
            problem,
        }))
    }

    /// Fills `batch`; false at the end (or after an error, which is in the batch).
    pub fn fill_batch(&mut self, batch: &mut RowBatch) -> bool {
        while !batch.is_full() {
            match self.next_cells() {
                None => return false,
                Some(Ok((row, cells, problem))) => {
                    batch.push(row, cells.iter().map(String::as_str), problem)
                }
                Some(Err(e)) => {
                    batch.error = Some(e);
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.json");
        std::fs::write(&p, text).unwrap();
        let mut s = JsonSource::open(&p).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        while let Some(r) = s.next_row() {
            let r = r.map_err(|e| e.to_string())?;
            rows.push(r.cells.iter().map(str::to_string).collect());
        }
        Ok((s.header().to_vec(), rows))
    }

    #[test]
    fn arrays_and_lines_of_objects_flatten_into_rows() {
        let want_header = [
            "id",
            "name",
            "tags",
            "user_fields.tier",
            "user_fields.x",
            "email",
        ];
        for text in [
            r#"[{"id":1,"name":"Ann","tags":["vip","emea"],"user_fields":{"tier":"gold","x":null}},
               {"id":2,"name":"Bo","tags":[],"user_fields":{},"email":"bo@x.io"}]"#,
            "\u{feff}{\"id\":1,\"name\":\"Ann\",\"tags\":[\"vip\",\"emea\"],\"user_fields\":{\"tier\":\"gold\",\"x\":null}}\n\n{\"id\":2,\"name\":\"Bo\",\"tags\":[],\"user_fields\":{},\"email\":\"bo@x.io\"}\n",
        ] {
            let (header, rows) = read(text).unwrap();
            assert_eq!(header, want_header);
            assert_eq!(rows[0], ["1", "Ann", "vip;emea", "gold", "", ""]);
            assert_eq!(rows[1], ["2", "Bo", "", "", "", "bo@x.io"]);
        }
    }

    #[test]
    fn json_that_is_not_objects_names_the_byte() {
        let cases = [
            ("\"just text\"", "at byte 0"),
            ("[{\"a\":1}, 2]", "at byte 10"),
            ("[{\"a\":1} {\"a\":2}]", "expected ',' or ']'"),
            ("{\"a\":1}\n{\"a\": tru}\n", "at byte 8"),
            ("[{\"a\":1}", "not closed"),
            ("[]", "empty"),
        ];
        for (text, want) in cases {
            let err = read(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn a_huge_single_line_array_streams_object_by_object() {
        // 20,000 objects on one line: read without holding the file.
        let mut text = String::from("[");
        for i in 0..20_000 {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!("{{\"id\":{i},\"name\":\"n{i}\"}}"));
        }
        text.push(']');
        let (header, rows) = read(&text).unwrap();
        assert_eq!(header, ["id", "name"]);
        assert_eq!(rows.len(), 20_000);
        assert_eq!(rows[19_999], ["19999", "n19999"]);
    }
}
