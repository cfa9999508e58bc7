//! Export stage: what the site holds, as tables with the same columns as the import templates,
//! so an exported file can be edited and imported back. This file is pure: it turns API records
//! into typed, sorted rows. `fetch` finds and reads the records (discovery, hydration); `write`
//! puts tables into CSV or XLSX. Driven by `cmd::export`.

pub mod fetch;
pub mod job;
pub mod reader;
pub mod write;

pub use crate::kind::Kind;
use crate::schema::{FieldKind, Schema};
use crate::site::api::MULTI_VALUE_SEPARATOR;
use crate::site::api::model::{
    CustomerProfile, DetailFieldWithConfiguration, DetailValue, Entitlement, OrganizationProfile,
    Product,
};

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

fn text(s: &str) -> Cell {
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

fn details_cells(schema: &Schema, details: &[DetailValue]) -> Vec<Cell> {
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

fn header(base: &[&str], schema: &Schema, tail: &[&str]) -> Vec<String> {
    base.iter()
        .map(|s| s.to_string())
        .chain(schema.fields.iter().map(|f| f.name.clone()))
        .chain(tail.iter().map(|s| s.to_string()))
        .collect()
}

/// Rows in a stable order: by `key` (lower-cased), then id.
fn sort_by_key<T>(items: &mut [T], key: impl Fn(&T) -> (String, String)) {
    items.sort_by_cached_key(|t| {
        let (k, id) = key(t);
        (k.to_lowercase(), k, id)
    });
}

/// Customers: `email, displayName, organizations, <customer detail fields>, id`, as the
/// customers template (`id` last, so a re-import matches each row to its customer).
pub fn customers(schema: &Schema, mut profiles: Vec<CustomerProfile>) -> Table {
    sort_by_key(&mut profiles, |p| {
        (p.email.clone().unwrap_or_default(), p.id.clone())
    });
    let rows = profiles
        .iter()
        .map(|p| {
            let mut orgs: Vec<&str> = p.organizations.iter().map(|o| o.name.as_str()).collect();
            orgs.sort_by_key(|n| n.to_lowercase());
            let mut row = vec![
                text(p.email.as_deref().unwrap_or("")),
                text(&p.display_name),
                text(&orgs.join(&MULTI_VALUE_SEPARATOR.to_string())),
            ];
            row.extend(details_cells(schema, &p.details));
            row.push(text(&p.id));
            row
        })
        .collect();
    Table {
        kind: Kind::Customers,
        header: header(&["email", "displayName", "organizations"], schema, &["id"]),
        rows,
    }
}

/// Organizations: `name, <organization detail fields>, id`.
pub fn organizations(schema: &Schema, mut profiles: Vec<OrganizationProfile>) -> Table {
    sort_by_key(&mut profiles, |p| (p.name.clone(), p.id.clone()));
    let rows = profiles
        .iter()
        .map(|p| {
            let mut row = vec![text(&p.name)];
            row.extend(details_cells(schema, &p.details));
            row.push(text(&p.id));
            row
        })
        .collect();
    Table {
        kind: Kind::Organizations,
        header: header(&["name"], schema, &["id"]),
        rows,
    }
}

/// Products: `name, id`, as the products template.
pub fn products(mut list: Vec<Product>) -> Table {
    sort_by_key(&mut list, |p| (p.name.clone(), p.id.clone()));
    Table {
        kind: Kind::Products,
        header: vec!["name".into(), "id".into()],
        rows: list
            .iter()
            .map(|p| vec![text(&p.name), text(&p.id)])
            .collect(),
    }
}

/// Who holds an entitlement, as the entitlements template names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderName {
    /// A customer, by email (or id when the site has no email).
    Customer(String),
    /// An organization, by name.
    Organization(String),
}

/// Entitlements: `customer, organization, product, <entitlement detail fields>`.
pub fn entitlements(schema: &Schema, mut list: Vec<(HolderName, Entitlement)>) -> Table {
    sort_by_key(&mut list, |(h, e)| {
        let who = match h {
            HolderName::Customer(c) => format!("c {c}"),
            HolderName::Organization(o) => format!("o {o}"),
        };
        (format!("{who}\u{0} {}", e.product.name), e.id.clone())
    });
    let rows = list
        .iter()
        .map(|(h, e)| {
            let (c, o) = match h {
                HolderName::Customer(c) => (text(c), Cell::Empty),
                HolderName::Organization(o) => (Cell::Empty, text(o)),
            };
            let mut row = vec![c, o, text(&e.product.name)];
            row.extend(details_cells(schema, &e.details));
            row
        })
        .collect();
    Table {
        kind: Kind::Entitlements,
        header: header(&["customer", "organization", "product"], schema, &[]),
        rows,
    }
}

/// Detail-field definitions: `entity, name, type, options`, as the detail-fields template.
pub fn detail_fields(defs: &[(&str, Vec<DetailFieldWithConfiguration>)]) -> Table {
    let mut rows: Vec<(String, String, Vec<Cell>)> = Vec::new();
    for (entity, list) in defs {
        for d in list {
            rows.push((
                entity.to_string(),
                d.name.to_lowercase(),
                vec![
                    text(entity),
                    text(&d.name),
                    text(&d.field_type.name),
                    text(
                        &d.field_type
                            .options
                            .clone()
                            .unwrap_or_default()
                            .join(&MULTI_VALUE_SEPARATOR.to_string()),
                    ),
                ],
            ));
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Table {
        kind: Kind::DetailFields,
        header: ["entity", "name", "type", "options"]
            .map(String::from)
            .to_vec(),
        rows: rows.into_iter().map(|r| r.2).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldDef;
    use crate::site::api::model::OrganizationRef;

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

    #[test]
    fn customers_are_sorted_by_email_then_id_with_the_template_columns() {
        let schema = Schema {
            fields: vec![FieldDef {
                name: "Seats".into(),
                kind: FieldKind::Number,
                options: vec![],
            }],
        };
        let p = |id: &str, email: &str, orgs: &[&str]| CustomerProfile {
            id: id.into(),
            display_name: format!("N {id}"),
            email: Some(email.into()),
            details: vec![DetailValue {
                name: "seats".into(),
                values: vec!["3".into()],
            }],
            organizations: orgs
                .iter()
                .map(|o| OrganizationRef {
                    id: format!("id-{o}"),
                    name: o.to_string(),
                })
                .collect(),
            entitlements: None,
        };
        let t = customers(
            &schema,
            vec![
                p("qm:2", "b@x.com", &[]),
                p("qm:9", "A@x.com", &["Zeta", "acme"]),
                p("qm:1", "a@x.com", &[]),
            ],
        );
        assert_eq!(
            t.header,
            ["email", "displayName", "organizations", "Seats", "id"]
        );
        let col = |i: usize| t.rows.iter().map(|r| r[i].text()).collect::<Vec<_>>();
        assert_eq!(col(4), ["qm:9", "qm:1", "qm:2"]);
        assert_eq!(col(2), ["acme;Zeta", "", ""]);
        assert_eq!(t.rows[0][3], Cell::Number(3.0, "3".into()));
    }
}
