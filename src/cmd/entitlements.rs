//! `csmport import entitlements FILE`: a product for a customer (`customer`: id or email) or an
//! organization (`organization`: name or id), with entitlement detail values in columns named
//! like the site's entitlement fields. References are resolved first (products by the product
//! list, organizations through organization/fetch, customers by id through profile fetch or by
//! email through the JSM customers of `--service-desk`); an entity that already has the product
//! keeps that entitlement (its details are set where they differ), so a re-run adds nothing.
//! Uses `cmd::small` for the run folder and `cmd::products` for the product list.

use std::collections::HashMap;

use crate::cli::ImportArgs;
use crate::engine::plan::{Stage, match_key};
use crate::error::Error;
use crate::read::Cells;
use crate::schema::Schema;
use crate::site::api::model::{
    CreateEntitlement, DetailFieldsWithConfiguration, DetailValue, Entitlement, EntitlementPage,
    UpdateDetailField,
};
use crate::site::api::{ENTITLEMENT_PAGE_MAX, paths};
use crate::site::client::{ApiError, Client, Target};
use crate::validate::{self, CellRules};

use crate::site::refs::{Entity, Holder, query_escape, resolve_holders};

use super::import::ImportResult;
use super::products::list_products;
use super::small::{SmallRun, find_columns};

struct Wanted {
    row: usize,
    holder: Holder,
    product: String,
    details: Vec<DetailValue>,
}

/// What a row needs, given the holder's current entitlement for the product (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Unchanged(String),
    /// Set these detail values on the existing entitlement.
    Update(String, Vec<DetailValue>),
}

pub fn decide(existing: Option<&Entitlement>, details: &[DetailValue]) -> Action {
    let Some(e) = existing else {
        return Action::Create;
    };
    let changed: Vec<DetailValue> = details
        .iter()
        .filter(|d| {
            e.details
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(&d.name))
                .is_none_or(|x| x.values != d.values)
        })
        .cloned()
        .collect();
    if changed.is_empty() {
        Action::Unchanged(e.id.clone())
    } else {
        Action::Update(e.id.clone(), changed)
    }
}

pub async fn run(args: &ImportArgs, target: &Target) -> Result<ImportResult, Error> {
    let mut run = SmallRun::start("entitlements", args, target)?;
    let defs: DetailFieldsWithConfiguration = run
        .client
        .get_json(paths::ENTITLEMENT_DETAILS)
        .await
        .map_err(Error::from_setup)?;
    let schema = Schema::from_api(&defs);
    let mut known = vec!["customer", "organization", "product"];
    known.extend(schema.fields.iter().map(|f| f.name.as_str()));
    let cols = find_columns(
        &run.header,
        &run.label,
        "entitlements",
        &known,
        &["product"],
        args.input.ignore_unknown_columns,
    )?;
    if cols[0].is_none() && cols[1].is_none() {
        return Err(Error::Usage(format!(
            "{}: no 'customer' or 'organization' column: each row names who holds the entitlement",
            run.label
        )));
    }
    let rules = CellRules {
        date_format: args.input.date_format.clone(),
    };
    let live = run.precheck();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    for i in (0..run.rows.len()).filter(|&i| live[i]) {
        let raw = &run.rows[i].raw;
        let cell = |c: Option<usize>| c.map(|c| raw.cells.cell(c)).unwrap_or("");
        let column = |k: usize| {
            cols[k]
                .and_then(|c| run.header.get(c).cloned())
                .unwrap_or_else(|| known[k].to_string())
        };
        let mut errors: Vec<(String, String)> = Vec::new();
        let holder = Holder::parse(cell(cols[0]), cell(cols[1]))
            .map_err(|e| errors.push((column(if cols[0].is_some() { 0 } else { 1 }), e)))
            .ok();
        let product = cell(cols[2]).trim().to_string();
        if product.is_empty() {
            errors.push((column(2), "product is empty (a product name or id)".into()));
        }
        let mut details = Vec::new();
        for (k, def) in schema.fields.iter().enumerate() {
            match validate::detail_value(def, cell(cols[3 + k]), &rules) {
                Ok(Some(values)) => details.push(DetailValue {
                    name: def.name.clone(),
                    values,
                }),
                Ok(None) => {}
                Err(e) => errors.push((column(3 + k), e)),
            }
        }
        if !errors.is_empty() {
            run.fail_cells(i, &errors);
            continue;
        }
        let holder = holder.expect("no errors");
        let key = (holder.key(), match_key(&product));
        if let Some(first) = seen.get(&key) {
            let error = format!(
                "duplicate: row {first} of this file already gives this entitlement (one row per holder and product)"
            );
            run.fail(i, Stage::Validate, &column(2), error);
            continue;
        }
        seen.insert(key, raw.row);
        wanted.push(Wanted {
            row: i,
            holder,
            product,
            details,
        });
    }

    // References, resolved once each.
    let products = list_products(&run.client)
        .await
        .map_err(Error::from_setup)?;
    let product_id = |p: &str| {
        products
            .iter()
            .find(|x| x.id == p)
            .or_else(|| products.iter().find(|x| match_key(&x.name) == match_key(p)))
            .map(|x| x.id.clone())
    };
    let holders = resolve_holders(
        &run.client,
        args.service_desk.as_deref(),
        wanted.iter().map(|w| &w.holder),
    )
    .await;

    let mut current: HashMap<Entity, Vec<Entitlement>> = HashMap::new();
    for w in wanted {
        let Some(pid) = product_id(&w.product) else {
            let error = format!(
                "no product '{}' on the site (import products first, or give its id)",
                w.product
            );
            run.fail(w.row, Stage::Validate, "product", error);
            continue;
        };
        let entity = match holders.get(&w.holder) {
            Some(Ok(e)) => e.clone(),
            Some(Err(why)) => {
                run.fail(
                    w.row,
                    Stage::Validate,
                    holder_column(&w.holder),
                    why.clone(),
                );
                continue;
            }
            None => {
                let why = "could not be resolved".to_string();
                run.fail(w.row, Stage::Validate, holder_column(&w.holder), why);
                continue;
            }
        };
        if !current.contains_key(&entity) {
            match entitlements_of(&run.client, &entity).await {
                Ok(list) => {
                    current.insert(entity.clone(), list);
                }
                Err(e) => {
                    let error = format!("could not read its entitlements: {e}");
                    run.fail(w.row, Stage::Send, holder_column(&w.holder), error);
                    continue;
                }
            }
        }
        let existing = current[&entity].iter().find(|e| e.product.id == pid);
        match decide(existing, &w.details) {
            // A dry run stops here: the row would be sent.
            Action::Update(..) | Action::Create if run.dry_run => {}
            Action::Unchanged(id) => {
                run.unchanged += 1;
                run.succeed(w.row, Some(id));
            }
            Action::Update(id, changed) => {
                let mut failed = None;
                for d in changed {
                    run.batches += 1;
                    let path = format!(
                        "entitlement/{id}/details?fieldName={}",
                        query_escape(&d.name)
                    );
                    let body = UpdateDetailField { values: d.values };
                    if let Err(e) = run
                        .client
                        .put_json::<_, serde_json::Value>(&path, &body)
                        .await
                    {
                        failed = Some(format!("detail '{}' not set: {e}", d.name));
                        break;
                    }
                }
                match failed {
                    None => run.succeed(w.row, Some(id)),
                    Some(why) => run.fail(w.row, Stage::Send, "product", why),
                }
            }
            Action::Create => {
                run.batches += 1;
                let body = CreateEntitlement {
                    product_id: pid.clone(),
                    details: w.details,
                };
                match run
                    .client
                    .post_json_once::<_, Entitlement>(&entity.create_path(), &body)
                    .await
                {
                    Ok(e) => {
                        current.entry(entity).or_default().push(e.clone());
                        run.succeed(w.row, Some(e.id));
                    }
                    Err(e) => {
                        // An answer lost on the way may hide a created entitlement.
                        let now = entitlements_of(&run.client, &entity).await.ok();
                        match now
                            .as_ref()
                            .and_then(|l| l.iter().find(|x| x.product.id == pid))
                        {
                            Some(made) => run.succeed(w.row, Some(made.id.clone())),
                            None => {
                                run.fail(w.row, Stage::Send, "product", format!("not created: {e}"))
                            }
                        }
                    }
                }
            }
        }
    }
    run.finish()
}

fn holder_column(h: &Holder) -> &'static str {
    match h {
        Holder::CustomerId(_) | Holder::CustomerEmail(_) => "customer",
        Holder::OrganizationId(_) | Holder::OrganizationName(_) => "organization",
    }
}

/// Every entitlement the entity holds itself (E8, 25 a page).
pub async fn entitlements_of(client: &Client, e: &Entity) -> Result<Vec<Entitlement>, ApiError> {
    let mut all = Vec::new();
    let mut start = 0u64;
    for _ in 0..10_000 {
        let page: EntitlementPage = client
            .get_json(&format!(
                "entitlements?entityType={}&entityId={}&start={start}&limit={ENTITLEMENT_PAGE_MAX}",
                e.kind(),
                query_escape(&e.id)
            ))
            .await?;
        let n = page.results.len() as u64;
        all.extend(page.results);
        if page.is_last_page || n == 0 {
            break;
        }
        start += n;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::api::model::Product;

    #[test]
    fn an_existing_entitlement_is_kept_and_only_changed_details_are_set() {
        let v = |n: &str, x: &str| DetailValue {
            name: n.into(),
            values: vec![x.into()],
        };
        let e = Entitlement {
            id: "e1".into(),
            product: Product {
                id: "p".into(),
                name: "P".into(),
            },
            details: vec![v("Seats", "10"), v("Level", "Gold")],
        };
        assert_eq!(decide(None, &[]), Action::Create);
        assert_eq!(
            decide(Some(&e), &[v("Seats", "10")]),
            Action::Unchanged("e1".into())
        );
        assert_eq!(
            decide(Some(&e), &[v("Seats", "20"), v("Level", "Gold")]),
            Action::Update("e1".into(), vec![v("Seats", "20")])
        );
    }
}
