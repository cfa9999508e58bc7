//! Products (P1–P5, cursor-paged). Handlers of `http`'s router over `store`.

use super::prelude::*;

pub(super) async fn product_list(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> R {
    // Values below 1 or above 100 fall back to 100 (CONTRACT P1).
    let limit = q
        .get("limit")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|l| (1..=PRODUCT_PAGE_MAX as i64).contains(l))
        .unwrap_or(PRODUCT_PAGE_MAX as i64) as usize;
    let start = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match decode_cursor(c) {
            Some(n) => n,
            None => return bad(format!("Invalid cursor '{c}'")),
        },
    };
    let store = sb.store.lock().expect("store lock");
    let mut all: Vec<&Product> = store.products.values().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let results: Vec<Product> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|p| (*p).clone())
        .collect();
    let next = start + results.len();
    ok(PaginatedProducts {
        next_page_cursor: (next < all.len()).then(|| encode_cursor(next)),
        results,
    })
}

pub(super) fn encode_cursor(n: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{n}"))
}

pub(super) fn decode_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

pub(super) async fn product_create(State(sb): State<Sandbox>, body: Bytes) -> R {
    let req: ProductName = tri!(parse(&body));
    if req.name.trim().is_empty() {
        return bad("name must not be empty");
    }
    sb.with_store(|store| {
        let p = Product {
            id: uuid::Uuid::new_v4().to_string(),
            name: req.name.trim().to_string(),
        };
        store.put_product(p.clone());
        ok(p)
    })
}

pub(super) async fn product_get(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    match sb.store.lock().expect("store lock").products.get(&id) {
        Some(p) => ok(p.clone()),
        None => missing("Product", &id),
    }
}

pub(super) async fn product_rename(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> R {
    let req: ProductName = tri!(parse(&body));
    if req.name.trim().is_empty() {
        return bad("name must not be empty");
    }
    sb.with_store(|store| {
        let Some(mut p) = store.products.get(&id).cloned() else {
            return missing("Product", &id);
        };
        p.name = req.name.trim().to_string();
        store.put_product(p.clone());
        ok(p)
    })
}

pub(super) async fn product_delete(
    State(sb): State<Sandbox>,
    Path((_, id)): Path<(String, String)>,
) -> R {
    sb.with_store(|store| match store.remove_product(&id) {
        Some(_) => no_content(),
        None => missing("Product", &id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(250)), Some(250));
        assert_eq!(decode_cursor("nope"), None);
    }
}
