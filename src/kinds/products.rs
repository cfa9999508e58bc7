//! Products by `name` (and `id` to rename one). Products have no bulk endpoint: each new one is
//! a `POST product` and each rename a `PUT product/{id}`, made as synchronous calls under the
//! rate limiter. A name already on the site is that product (updated, never duplicated); a
//! call whose answer is lost is settled by listing the products again. The kind description
//! for `engine`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kind::Kind;
use crate::map::CellError;
use crate::read::{Cells, RawRow};
use crate::row::{Found, match_key};
use crate::site::api::model::{Product as SiteProduct, ProductName};
use crate::site::api::paths;
use crate::site::client::ApiError;
use crate::site::refs::list_products;

use super::columns::find_columns;
use super::deletes;
use super::{Cx, Decision, Description, Identity, Method, Request, Setup};

const COLUMNS: [&str; 2] = ["id", "name"];
/// [UNCONFIRMED] longest product name we send.
pub const MAX_PRODUCT_NAME_CHARS: usize = 255;

pub struct Products {
    cols: Vec<Option<usize>>,
    /// Columns `--ignore-unknown-columns` left out.
    ignored: Vec<crate::map::UnknownColumn>,
    name_col: String,
    /// The site's products when the run began: id → name, and match key → id.
    by_id: HashMap<String, String>,
    by_name: HashMap<String, String>,
}

/// One row's product: `id` given to rename one; after deciding, the id of the product a
/// rename or respelling changes (None: a new product).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: Option<String>,
    pub name: String,
}

/// What one valid row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// On the site as in the file: nothing to send.
    Unchanged(String),
    Create(String),
    Rename {
        id: String,
        name: String,
    },
    Refuse(String),
}

/// Decides a row against the site's products (`by_id`: id → name; `by_name`: match key → id).
pub fn decide(
    id: Option<&str>,
    name: &str,
    by_id: &HashMap<String, String>,
    by_name: &HashMap<String, String>,
) -> Action {
    let owner = by_name.get(&match_key(name));
    match id {
        Some(id) => match by_id.get(id) {
            None => Action::Refuse(format!(
                "no product with id '{id}' on the site (ids are made by the site: leave id empty to create '{name}')"
            )),
            Some(current) if current == name => Action::Unchanged(id.to_string()),
            Some(_) => match owner {
                Some(other) if other != id => Action::Refuse(format!(
                    "another product (id {other}) already has the name '{name}'"
                )),
                _ => Action::Rename {
                    id: id.to_string(),
                    name: name.to_string(),
                },
            },
        },
        None => match owner {
            Some(existing) if by_id.get(existing).map(String::as_str) == Some(name) => {
                Action::Unchanged(existing.clone())
            }
            // The same product spelled differently (case, spaces): updated to this spelling.
            Some(existing) => Action::Rename {
                id: existing.clone(),
                name: name.to_string(),
            },
            None => Action::Create(name.to_string()),
        },
    }
}

impl Description for Products {
    type Item = Product;

    fn opened(&self) -> super::Opened {
        super::Opened {
            ignored_columns: self.ignored.clone(),
            ..Default::default()
        }
    }

    async fn open(s: Setup<'_>) -> Result<Self, Error> {
        let (cols, ignored) = find_columns(
            s.header,
            s.label,
            "products",
            &COLUMNS,
            &["name"],
            s.opts.input.ignore_unknown_columns,
        )?;
        let name_col = s.header[cols[1].expect("required")].clone();
        let products = list_products(&s.site.client)
            .await
            .map_err(Error::from_setup)?;
        Ok(Products {
            cols,
            ignored,
            name_col,
            by_id: products
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect(),
            by_name: products
                .iter()
                .map(|p| (match_key(&p.name), p.id.clone()))
                .collect(),
        })
    }

    fn check(&self, row: &RawRow) -> Result<Product, Vec<CellError>> {
        let name = row
            .cells
            .cell(self.cols[1].expect("required"))
            .trim()
            .to_string();
        let id = self.cols[0]
            .map(|c| row.cells.cell(c).trim().to_string())
            .filter(|s| !s.is_empty());
        let fail = |message: &str| {
            vec![CellError {
                field: self.name_col.clone(),
                message: message.to_string(),
            }]
        };
        if name.is_empty() {
            return Err(fail("name is empty"));
        }
        if name.chars().count() > MAX_PRODUCT_NAME_CHARS {
            return Err(fail("a product name is at most 255 characters"));
        }
        Ok(Product { id, name })
    }

    fn identity(&self, p: &Product) -> Vec<Identity> {
        let mut out = vec![Identity {
            key: format!("n:{}", match_key(&p.name)),
            field: self.name_col.clone(),
            message: format!(
                "duplicate: the product '{}' is already in row {{first}} of this file (one row per product)",
                p.name
            ),
        }];
        if let Some(id) = &p.id {
            out.push(Identity {
                key: format!("i:{id}"),
                field: "id".into(),
                message: format!("duplicate: id '{id}' is already in row {{first}} of this file"),
            });
        }
        out
    }

    async fn decide<'a>(&'a self, _cx: &'a Cx<'a>, items: Vec<Product>) -> Vec<Decision<Product>> {
        items
            .into_iter()
            .map(
                |p| match decide(p.id.as_deref(), &p.name, &self.by_id, &self.by_name) {
                    Action::Unchanged(id) => Decision::Unchanged(Some(id)),
                    Action::Refuse(why) => Decision::refuse(self.name_col.clone(), why),
                    Action::Create(name) => Decision::Send(Product { id: None, name }),
                    Action::Rename { id, name } => Decision::Send(Product { id: Some(id), name }),
                },
            )
            .collect()
    }

    fn requests(&self, items: &[Product]) -> Vec<Request> {
        items
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let body = ProductName {
                    name: p.name.clone(),
                };
                match &p.id {
                    None => Request::call(Method::Post, paths::PRODUCTS.into(), &body, k),
                    Some(id) => {
                        Request::call(Method::Put, paths::at(paths::PRODUCT, &[id]), &body, k)
                    }
                }
            })
            .collect()
    }

    fn keys(&self, p: &Product) -> Vec<String> {
        p.id.clone()
            .into_iter()
            .chain([match_key(&p.name)])
            .collect()
    }

    fn id_of(&self, p: &Product, answer: Option<&serde_json::Value>) -> Option<String> {
        answer
            .and_then(|v| serde_json::from_value::<SiteProduct>(v.clone()).ok())
            .map(|sp| sp.id)
            .or_else(|| p.id.clone())
    }

    /// The product list again: a product with the row's name is there, or not.
    async fn read_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        items: &'a [Product],
    ) -> Result<Vec<Found>, ApiError> {
        let now = list_products(&cx.site.client).await?;
        Ok(items
            .iter()
            .map(|p| {
                match now
                    .iter()
                    .find(|x| match_key(&x.name) == match_key(&p.name))
                {
                    Some(x) if x.name == p.name && p.id.as_ref().is_none_or(|id| *id == x.id) => {
                        Found::Same(Some(x.id.clone()))
                    }
                    Some(_) => Found::Drifted,
                    None => Found::Missing,
                }
            })
            .collect())
    }
}

/// How `delete products` finds, deletes and backs up a product (a row names it by id or name).
pub const DELETE: deletes::Spec = deletes::Spec {
    kind: Kind::Products,
    columns: &["id", "name"],
    one_of: &["id", "name"],
    named: |cell| {
        deletes::required(cell, "name", "no id and no name: which one to delete?")
            .map(deletes::Named::Name)
    },
    delete_path: |id| paths::at(paths::PRODUCT, &[id]),
    read_path: None,
    names_products: true,
    needs_products: true,
    needs_fields: false,
    backup: |site, targets| {
        Box::pin(async move {
            let ids = deletes::found_ids(targets);
            let list: Vec<SiteProduct> = list_products(&site.client)
                .await?
                .into_iter()
                .filter(|p| ids.contains(&p.id))
                .collect();
            let n = list.len();
            Ok((export::table(list), n))
        })
    },
    cannot_put_back: |n, _| {
        (n > 0).then(|| format!("{n} products put back from the backup get new ids"))
    },
};

/// Export of products: `name, id`, as the import template names them, so an exported file can be edited
/// and imported back: `read` asks the site (through export's `Reader`), `table` builds the
/// rows (also the backup of a delete).
pub mod export {
    use crate::error::Error;
    use crate::export::reader::{Reader, failed};
    use crate::export::{Table, fetch, sort_by_key, text};
    use crate::kind::Kind;

    use crate::site::api::model::Product;

    /// What the site holds (or what `--ids` / `--where` select), as one table.
    pub async fn read(r: &Reader<'_>) -> Result<Table, Error> {
        let mut list = crate::site::refs::list_products(r.client)
            .await
            .map_err(|e| failed("products", e))?;
        if let Some(text) = r.ids {
            let w = fetch::parse_ids(text, true);
            let wanted: Vec<String> = w.ids.iter().chain(&w.names).cloned().collect();
            let is = |x: &String, p: &crate::site::api::model::Product| {
                *x == p.id || x.eq_ignore_ascii_case(&p.name)
            };
            r.unknown(
                wanted
                    .iter()
                    .filter(|x| !list.iter().any(|p| is(x, p)))
                    .cloned(),
            );
            list.retain(|p| wanted.iter().any(|x| is(x, p)));
        }
        Ok(table(list))
    }

    /// Products: `name, id`, as the products template.
    pub fn table(mut list: Vec<Product>) -> Table {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_matched_to_products_by_name_or_id() {
        let by_id: HashMap<String, String> = [("p1", "Widget Pro"), ("p2", "Gadget")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let by_name: HashMap<String, String> = by_id
            .iter()
            .map(|(id, n)| (match_key(n), id.clone()))
            .collect();
        let d = |id: Option<&str>, name: &str| decide(id, name, &by_id, &by_name);
        assert_eq!(d(None, "Widget Pro"), Action::Unchanged("p1".into()));
        assert_eq!(
            d(None, "widget pro"),
            Action::Rename {
                id: "p1".into(),
                name: "widget pro".into()
            }
        );
        assert_eq!(d(None, "Doohickey"), Action::Create("Doohickey".into()));
        assert_eq!(d(Some("p2"), "Gadget"), Action::Unchanged("p2".into()));
        assert_eq!(
            d(Some("p2"), "Gadget 2"),
            Action::Rename {
                id: "p2".into(),
                name: "Gadget 2".into()
            }
        );
        assert!(matches!(d(Some("p2"), "Widget Pro"), Action::Refuse(w) if w.contains("id p1")));
        assert!(matches!(d(Some("zz"), "X"), Action::Refuse(w) if w.contains("no product")));
    }
}
