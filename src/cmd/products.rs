//! `csmport import products FILE`: products by `name` (and `id` to rename one). Products have no
//! bulk endpoint: each new one is a POST and each rename a PUT, a few at a time under the rate
//! limiter. A name already on the site is that product (updated, never duplicated). Uses
//! `cmd::small` for the run folder; `cmd::entitlements` reuses the product listing.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};

use crate::cli::ImportArgs;
use crate::engine::plan::{Stage, match_key};
use crate::error::Error;
use crate::read::Cells;
use crate::site::api::PRODUCT_PAGE_MAX;
use crate::site::api::model::{PaginatedProducts, Product, ProductName};
use crate::site::client::{ApiError, Client, Target};
use crate::site::refs::query_escape;

use super::import::ImportResult;
use super::small::{SmallRun, find_columns};

const COLUMNS: [&str; 2] = ["id", "name"];

/// Every product on the site (cursor-paged, 100 a page).
pub async fn list_products(client: &Client) -> Result<Vec<Product>, ApiError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    // A site has few products; the bound only guards against a cursor that never ends.
    for _ in 0..10_000 {
        let mut path = format!("product?limit={PRODUCT_PAGE_MAX}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", query_escape(c)));
        }
        let page: PaginatedProducts = client.get_json(&path).await?;
        let empty = page.results.is_empty();
        all.extend(page.results);
        match page.next_page_cursor {
            Some(c) if !c.is_empty() && !empty && Some(&c) != cursor.as_ref() => cursor = Some(c),
            _ => break,
        }
    }
    Ok(all)
}

/// The request may have been applied although no answer says so.
fn maybe_applied(e: &ApiError) -> bool {
    match e {
        ApiError::Network { .. } => true,
        ApiError::Status { status, .. } => matches!(status, 408 | 500 | 502 | 504),
        ApiError::Decode { .. } => false,
    }
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

pub async fn run(args: &ImportArgs, target: &Target) -> Result<ImportResult, Error> {
    let mut run = SmallRun::start("products", args, target)?;
    let cols = find_columns(
        &run.header,
        &run.label,
        "products",
        &COLUMNS,
        &["name"],
        args.input.ignore_unknown_columns,
    )?;
    let name_col = run.header[cols[1].expect("required")].clone();
    let live = run.precheck();
    let mut valid: Vec<(usize, Option<String>, String)> = Vec::new();
    let mut names_seen: HashMap<String, u64> = HashMap::new();
    let mut ids_seen: HashMap<String, u64> = HashMap::new();
    for i in (0..run.rows.len()).filter(|&i| live[i]) {
        let raw = &run.rows[i].raw;
        let row = raw.row;
        let name = raw
            .cells
            .cell(cols[1].expect("required"))
            .trim()
            .to_string();
        let id = cols[0]
            .map(|c| raw.cells.cell(c).trim().to_string())
            .filter(|s| !s.is_empty());
        if name.is_empty() {
            run.fail(i, Stage::Validate, &name_col, "name is empty".into());
            continue;
        }
        if name.chars().count() > 255 {
            let error = "a product name is at most 255 characters".to_string();
            run.fail(i, Stage::Validate, &name_col, error);
            continue;
        }
        if let Some(first) = names_seen.get(&match_key(&name)) {
            let error = format!(
                "duplicate: the product '{name}' is already in row {first} of this file (one row per product)"
            );
            run.fail(i, Stage::Validate, &name_col, error);
            continue;
        }
        if let Some(id) = &id
            && let Some(first) = ids_seen.get(id)
        {
            let error = format!("duplicate: id '{id}' is already in row {first} of this file");
            run.fail(i, Stage::Validate, "id", error);
            continue;
        }
        names_seen.insert(match_key(&name), row);
        if let Some(id) = &id {
            ids_seen.insert(id.clone(), row);
        }
        valid.push((i, id, name));
    }

    let products = list_products(&run.client)
        .await
        .map_err(Error::from_setup)?;
    let by_id: HashMap<String, String> = products
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    let by_name: HashMap<String, String> = products
        .iter()
        .map(|p| (match_key(&p.name), p.id.clone()))
        .collect();
    let mut sends = Vec::new();
    for (i, id, name) in valid {
        match decide(id.as_deref(), &name, &by_id, &by_name) {
            Action::Unchanged(id) => {
                run.unchanged += 1;
                run.succeed(i, Some(id));
            }
            Action::Refuse(why) => run.fail(i, Stage::Validate, &name_col, why),
            action => sends.push((i, action)),
        }
    }
    if run.dry_run {
        return run.finish();
    }
    run.batches += sends.len() as u64;
    let client = &run.client;
    let concurrency = args.max_tasks.max(1);
    let results: Vec<(usize, Result<Product, ApiError>)> = stream::iter(sends)
        .map(|(i, action)| async move {
            let r = match action {
                Action::Create(name) => {
                    client
                        .post_json_once("product", &ProductName { name })
                        .await
                }
                Action::Rename { id, name } => {
                    client
                        .put_json(&format!("product/{id}"), &ProductName { name })
                        .await
                }
                Action::Unchanged(_) | Action::Refuse(_) => unreachable!("decided above"),
            };
            (i, r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut unsure = Vec::new();
    for (i, r) in results {
        match r {
            Ok(p) => run.succeed(i, Some(p.id)),
            Err(e) if maybe_applied(&e) => unsure.push((i, e)),
            Err(e) => run.fail(i, Stage::Send, &name_col, format!("not saved: {e}")),
        }
    }
    if !unsure.is_empty() {
        // A create whose answer was lost may have happened: the site's list says.
        let now = list_products(&run.client).await.unwrap_or_default();
        for (i, e) in unsure {
            let name = run.rows[i]
                .raw
                .cells
                .cell(cols[1].expect("required"))
                .trim();
            match now.iter().find(|p| match_key(&p.name) == match_key(name)) {
                Some(p) if p.name == name => run.succeed(i, Some(p.id.clone())),
                _ => run.fail(
                    i,
                    Stage::Send,
                    &name_col,
                    format!("not confirmed: {e}; the product is not on the site now, import this row again"),
                ),
            }
        }
    }
    run.finish()
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
