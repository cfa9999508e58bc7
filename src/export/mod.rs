//! Export stage: what the site holds, as tables with the same columns as the import templates,
//! so an exported file can be edited and imported back. This file is pure: typed cells and
//! what every kind's table is built with (each kind's own columns are in its file in `kinds/`,
//! `export::table`). `fetch` finds and reads the records (discovery, hydration), `reader` is
//! what a kind's export reads with; `write` puts tables into CSV or XLSX. Driven by
//! `engine::export`.

pub mod changes;
pub mod fetch;
pub mod names;
pub mod reader;
pub mod spool;
pub mod write;

pub use crate::kind::Kind;
use crate::schema::{FieldKind, Schema};
use crate::site::api::MULTI_VALUE_SEPARATOR;
use crate::site::api::model::{DetailFieldWithConfiguration, DetailValue};

/// One cell, typed so a spreadsheet gets numbers and dates, not text that looks like them.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A number whose text is exactly `text` (so nothing is lost either way).
    Number(f64, String),
    Date(jiff::civil::Date),
    /// A yes/no value: an Excel boolean, `true`/`false` in a CSV.
    Bool(bool),
}

impl Cell {
    /// The text a CSV gets (and the import reads back).
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) | Cell::Number(_, t) => t.clone(),
            Cell::Date(d) => d.strftime(crate::site::api::DATE_FORMAT).to_string(),
            Cell::Bool(b) => {
                if *b {
                    crate::site::api::BOOLEAN_TRUE.to_string()
                } else {
                    crate::site::api::BOOLEAN_FALSE.to_string()
                }
            }
        }
    }
}

/// One kind's rows under its header.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub kind: Kind,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The schema export's tables are typed by: the site's detail-field definitions.
pub fn schema_of(defs: &[DetailFieldWithConfiguration]) -> Schema {
    Schema {
        fields: defs.iter().map(crate::schema::FieldDef::from).collect(),
    }
}

pub fn text(s: &str) -> Cell {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s.to_string())
    }
}

/// A detail value as a cell of its field's type: dates as dates, numbers as numbers (only when
/// the number's own text is the value, so `0042` or `1e3` stay text), several values joined
/// with `;` as the import splits them.
pub fn detail_cell(kind: &FieldKind, values: &[String]) -> Cell {
    let joined = values.join(&MULTI_VALUE_SEPARATOR.to_string());
    match (kind, values) {
        (_, []) => Cell::Empty,
        (FieldKind::Date, [v]) => match v.trim().parse::<jiff::civil::Date>() {
            Ok(d) => Cell::Date(d),
            Err(_) => text(v),
        },
        (FieldKind::Number, [v]) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && number_text(n) == v.trim() => Cell::Number(n, v.clone()),
            _ => text(v),
        },
        (FieldKind::Boolean, [v]) => match crate::validate::boolean(v) {
            Ok(b) => Cell::Bool(b == crate::site::api::BOOLEAN_TRUE),
            Err(_) => text(v),
        },
        _ => text(&joined),
    }
}

/// How the reader shows a number cell: whole numbers without `.0`.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

pub fn details_cells(schema: &Schema, details: &[DetailValue]) -> Vec<Cell> {
    schema
        .fields
        .iter()
        .map(|f| {
            details
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(&f.name))
                .map(|d| detail_cell(&f.kind, &d.values))
                .unwrap_or(Cell::Empty)
        })
        .collect()
}

pub fn header(base: &[&str], schema: &Schema, tail: &[&str]) -> Vec<String> {
    base.iter()
        .map(|s| s.to_string())
        .chain(schema.fields.iter().map(|f| f.name.clone()))
        .chain(tail.iter().map(|s| s.to_string()))
        .collect()
}

/// Rows in a stable order: by `key` (lower-cased), then id.
pub fn sort_by_key<T>(items: &mut [T], key: impl Fn(&T) -> (String, String)) {
    items.sort_by_cached_key(|t| {
        let (k, id) = key(t);
        (k.to_lowercase(), k, id)
    });
}

/// Who holds an entitlement, as the entitlements template names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderName {
    /// A customer, by email (or id when the site has no email).
    Customer(String),
    /// An organization, by name.
    Organization(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_values_become_typed_cells() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let date = jiff::civil::date(2026, 7, 10);
        let cases: Vec<(FieldKind, Vec<String>, Cell)> = vec![
            (FieldKind::Date, s(&["2026-07-10"]), Cell::Date(date)),
            (FieldKind::Date, s(&["soon"]), Cell::Text("soon".into())),
            (FieldKind::Number, s(&["5"]), Cell::Number(5.0, "5".into())),
            (
                FieldKind::Number,
                s(&["-2.5"]),
                Cell::Number(-2.5, "-2.5".into()),
            ),
            (FieldKind::Number, s(&["0042"]), Cell::Text("0042".into())),
            (FieldKind::Boolean, s(&["true"]), Cell::Bool(true)),
            (FieldKind::Boolean, s(&["FALSE"]), Cell::Bool(false)),
            (
                FieldKind::Boolean,
                s(&["maybe"]),
                Cell::Text("maybe".into()),
            ),
            (
                FieldKind::Phone,
                s(&["4155550100"]),
                Cell::Text("4155550100".into()),
            ),
            (
                FieldKind::MultiSelect,
                s(&["Email", "Phone"]),
                Cell::Text("Email;Phone".into()),
            ),
            (FieldKind::Text, s(&[]), Cell::Empty),
            (FieldKind::Text, s(&[""]), Cell::Empty),
        ];
        for (kind, values, want) in cases {
            assert_eq!(detail_cell(&kind, &values), want, "{kind:?} {values:?}");
        }
    }
}
