//! `csmport import products`: products by name (an existing name is that product), renames by
//! id, failures on the right rows, and a second run that sends nothing.

use crate::common::*;

fn products(sb: &SandboxProc) -> Vec<(String, String)> {
    let (status, v) = call(sb, "GET", "product?limit=100", None, None);
    assert_eq!(status, 200);
    let mut all: Vec<(String, String)> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn products_are_created_once_and_renamed_by_id() {
    let sb = SandboxProc::start(&[]);
    let ctx = Ctx::new();
    let file = repo("sample-data/products.csv");
    let out = ctx.import_kind(&sb, "products", &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = ctx.summary();
    assert_eq!(
        ["rows", "succeeded", "failed", "unchanged"].map(|k| s[k].as_u64().unwrap()),
        [6, 4, 2, 0]
    );
    let (_, failures) = ctx.read_csv(&ctx.path("run/failures.csv"));
    let got: Vec<&str> = failures.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(got, vec!["5", "6"]);
    assert!(
        failures[0][5].contains("already in row 1"),
        "{:?}",
        failures[0]
    );
    assert!(
        failures[1][5].contains("no product with id"),
        "{:?}",
        failures[1]
    );
    let made = products(&sb);
    let names: Vec<&str> = made.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Onboarding Pack",
            "Support Plus",
            "Widget Lite",
            "Widget Pro"
        ]
    );
    // successes.csv carries the ids the site gave.
    let (_, ok) = ctx.read_csv(&ctx.path("run/successes.csv"));
    for row in &ok {
        let id = &made.iter().find(|(n, _)| *n == row[0]).unwrap().1;
        assert_eq!(&row[3], id);
    }

    // Again: nothing new, nothing written.
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let before = sb.requests().len();
    ctx.import_kind(&sb, "products", &file, &[]);
    assert_eq!(ctx.summary()["unchanged"], 4);
    assert_eq!(products(&sb), made);
    assert!(sb.requests()[before..].iter().all(|r| r["method"] == "GET"));

    // A rename by id keeps the product.
    let lite = &made.iter().find(|(n, _)| n == "Widget Lite").unwrap().1;
    let rename = ctx.write(
        "rename.csv",
        format!("id,name\n{lite},Widget Mini\n").as_bytes(),
    );
    std::fs::remove_dir_all(ctx.path("run")).unwrap();
    let out = ctx.import_kind(&sb, "products", &rename, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after = products(&sb);
    assert_eq!(after.len(), 4);
    assert!(after.contains(&("Widget Mini".to_string(), lite.clone())));
}
