//! Hostile files, generated here (never committed): a huge cell, a sheet of whitespace, huge or
//! too many shared strings, a ZIP64 archive, a huge CSV field. Each ends with its exit code
//! and message, the cell's start kept in the report; the memory each takes is measured by
//! `bench/hostile.sh` at gigabyte sizes, not here.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::*;

const SCHEMA: &str = "sample-data/customer-detail-fields.json";
const NS: &str = "http://schemas.openxmlformats.org";

/// Writes `n` bytes of `unit` repeated, a block at a time (never the whole value at once).
fn repeat(w: &mut (impl Write + ?Sized), unit: &[u8], n: usize) {
    let block = unit.repeat((1 << 16) / unit.len());
    let mut left = n;
    while left > 0 {
        let piece = left.min(block.len());
        w.write_all(&block[..piece]).unwrap();
        left -= piece;
    }
}

/// A one-sheet workbook; `sheet` writes the rows inside `<sheetData>`, `strings` (when
/// given) the `<si>` items of the shared strings. `zip64` writes ZIP64 records.
fn workbook(
    path: &Path,
    zip64: bool,
    sheet: impl Fn(&mut dyn Write),
    strings: Option<&dyn Fn(&mut dyn Write)>,
) {
    workbook_with(path, zip64, sheet, strings, "");
}

/// `workbook`, with these attributes on the `<sst>` tag.
fn workbook_with(
    path: &Path,
    zip64: bool,
    sheet: impl Fn(&mut dyn Write),
    strings: Option<&dyn Fn(&mut dyn Write)>,
    sst_attrs: &str,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(zip64);
    let mut types = format!(
        r#"<Types xmlns="{NS}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#
    );
    let mut rels = format!(
        r#"<Relationships xmlns="{NS}/package/2006/relationships"><Relationship Id="rId1" Type="{NS}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>"#
    );
    if strings.is_some() {
        types.push_str(r#"<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>"#);
        rels.push_str(&format!(
            r#"<Relationship Id="rId2" Type="{NS}/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#
        ));
    }
    let parts = [
        ("[Content_Types].xml", types + "</Types>"),
        (
            "_rels/.rels",
            format!(
                r#"<Relationships xmlns="{NS}/package/2006/relationships"><Relationship Id="rId1" Type="{NS}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<workbook xmlns="{NS}/spreadsheetml/2006/main" xmlns:r="{NS}/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>"#
            ),
        ),
        ("xl/_rels/workbook.xml.rels", rels + "</Relationships>"),
    ];
    for (name, text) in parts {
        z.start_file(name, opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
    }
    z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
    write!(
        z,
        r#"<worksheet xmlns="{NS}/spreadsheetml/2006/main"><sheetData>"#
    )
    .unwrap();
    sheet(&mut z);
    z.write_all(b"</sheetData></worksheet>").unwrap();
    if let Some(strings) = strings {
        z.start_file("xl/sharedStrings.xml", opts).unwrap();
        write!(
            z,
            r#"<sst xmlns="{NS}/spreadsheetml/2006/main"{sst_attrs}>"#
        )
        .unwrap();
        strings(&mut z);
        z.write_all(b"</sst>").unwrap();
    }
    z.finish().unwrap();
}

fn inline(r: &str, text: &str) -> String {
    format!(r#"<c r="{r}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

fn header_row(w: &mut dyn Write) {
    write!(
        w,
        r#"<row r="1">{}{}</row>"#,
        inline("A1", "email"),
        inline("B1", "displayName")
    )
    .unwrap();
}

/// A workbook whose cell B2 holds `n` bytes, then a good row.
fn huge_cell(path: &Path, n: usize, zip64: bool) {
    workbook(
        path,
        zip64,
        |w| {
            header_row(w);
            write!(
                w,
                r#"<row r="2">{}<c r="B2" t="inlineStr"><is><t>"#,
                inline("A2", "a@example.com")
            )
            .unwrap();
            repeat(w, b"x", n);
            write!(
                w,
                r#"</t></is></c></row><row r="3">{}{}</row>"#,
                inline("A3", "b@example.com"),
                inline("B3", "B")
            )
            .unwrap();
        },
        None,
    );
}

fn validate(ctx: &Ctx, file: &Path, dir: &str) -> std::process::Output {
    ctx.csmport(None)
        .args(["validate", "customers"])
        .arg(file)
        .arg("--schema")
        .arg(repo(SCHEMA))
        .arg("--out")
        .arg(ctx.path(dir))
        .output()
        .unwrap()
}

/// The failure report's rows, and its size: it never holds a whole huge cell.
fn failures(ctx: &Ctx, dir: &str) -> Vec<Vec<String>> {
    let path: PathBuf = ctx.path(&format!("{dir}/failures.csv"));
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 8 * 1024, "{dir}: the report holds {size} bytes");
    ctx.read_csv(&path).1
}

#[test]
fn a_huge_cell_fails_its_row_with_its_size_and_the_report_keeps_its_start() {
    let ctx = Ctx::new();
    for (name, zip64) in [("cell.xlsx", false), ("cell64.xlsx", true)] {
        let file = ctx.path(name);
        huge_cell(&file, 6 << 20, zip64);
        let dir = format!("run-{name}");
        let out = validate(&ctx, &file, &dir);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("rows      2 = 1 valid + 1 invalid"),
            "{name}: {}",
            stdout(&out)
        );
        let f = failures(&ctx, &dir);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0][0].as_str(), f[0][3].as_str()),
            ("a@example.com", "read")
        );
        assert_eq!(f[0][1], "x".repeat(1000), "the first 1,000 characters");
        assert!(
            f[0][5].starts_with("cell B2 (displayName) holds 6.0 MiB; a cell holds at most 16000 bytes (4000 characters, the API's text limit), so the row is not sent; the report keeps the first 1000 characters"),
            "{name}: {}",
            f[0][5]
        );
    }
}

#[test]
fn a_sheet_of_whitespace_reads_its_rows() {
    let ctx = Ctx::new();
    let file = ctx.path("ws.xlsx");
    workbook(
        &file,
        false,
        |w| {
            header_row(w);
            repeat(w, b" \n\t", 8 << 20);
            write!(
                w,
                r#"<row r="2">{}{}</row>"#,
                inline("A2", "a@example.com"),
                inline("B2", "A")
            )
            .unwrap();
        },
        None,
    );
    let out = validate(&ctx, &file, "ws");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("rows      1 = 1 valid + 0 invalid"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn huge_or_too_many_shared_strings() {
    let ctx = Ctx::new();
    let rows = |w: &mut dyn Write| {
        w.write_all(br#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>"#)
            .unwrap();
    };
    let first = |w: &mut dyn Write| {
        for s in ["email", "displayName", "a@example.com"] {
            write!(w, "<si><t>{s}</t></si>").unwrap();
        }
    };
    // One huge string: its cell fails its row, like an inline one.
    let file = ctx.path("one.xlsx");
    let huge = |w: &mut dyn Write| {
        first(w);
        w.write_all(b"<si><t>").unwrap();
        repeat(w, b"y", 5 << 20);
        w.write_all(b"</t></si>").unwrap();
    };
    workbook(&file, false, rows, Some(&huge));
    let out = validate(&ctx, &file, "one");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let f = failures(&ctx, "one");
    assert!(
        f[0][5].starts_with("cell B2 (displayName) holds 5.0 MiB"),
        "{}",
        f[0][5]
    );
    // More strings than a workbook's table is allowed to take: the file is refused, naming the
    // part and its size, before any row.
    let file = ctx.path("many.xlsx");
    let many = |w: &mut dyn Write| {
        first(w);
        w.write_all(b"<si><t>b</t></si>").unwrap();
        repeat(w, b"<si><t>z</t></si>", 800_000 * 17);
    };
    workbook(&file, false, rows, Some(&many));
    let out = validate(&ctx, &file, "many");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("many.xlsx: cannot read the spreadsheet: xl/sharedStrings.xml (13.0 MiB inflated): its shared strings take more than 40.0 MiB"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A tiny workbook announcing 900 billion strings (calamine reserved a slot for each and
    // the process aborted): read as the strings it has.
    let file = ctx.path("announced.xlsx");
    let two = |w: &mut dyn Write| {
        first(w);
        w.write_all(b"<si><t>Ann</t></si>").unwrap();
    };
    workbook_with(
        &file,
        false,
        rows,
        Some(&two),
        r#" count="4" uniqueCount="900000000000""#,
    );
    let out = validate(&ctx, &file, "announced");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("rows      1 = 1 valid"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_huge_csv_field_fails_its_row_and_is_not_copied_whole() {
    let ctx = Ctx::new();
    let file = ctx.path("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        f.write_all(b"email,displayName\na@example.com,\"").unwrap();
        repeat(&mut f, b"z", 20 << 20);
        f.write_all(b"\"\nb@example.com,B\n").unwrap();
    }
    let out = validate(&ctx, &file, "big");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let f = failures(&ctx, "big");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0][1].len(), 1000);
    assert!(
        f[0][5].starts_with("column 2 (displayName) holds 20.0 MiB"),
        "{}",
        f[0][5]
    );
    assert!(
        stdout(&out).contains("2 = 1 valid + 1 invalid"),
        "{}",
        stdout(&out)
    );
}

/// An ODS of 850 bytes whose one row is repeated `rows` times, 1,000 cells each.
fn repeated_ods(path: &Path, rows: u64) {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Sheet1"><table:table-row><table:table-cell office:value-type="string"><text:p>email</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="{rows}"><table:table-cell table:number-columns-repeated="1000" office:value-type="string"><text:p>x@example.com</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("mimetype", stored).unwrap();
    z.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    let deflated = zip::write::SimpleFileOptions::default();
    z.start_file("content.xml", deflated).unwrap();
    z.write_all(content.as_bytes()).unwrap();
    z.start_file("META-INF/manifest.xml", deflated).unwrap();
    z.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#).unwrap();
    z.finish().unwrap();
}

#[test]
fn an_ods_that_repeats_a_row_past_what_can_be_loaded_is_refused() {
    let ctx = Ctx::new();
    let file = ctx.path("bomb.ods");
    repeated_ods(&file, 10_000);
    let out = validate(&ctx, &file, "ods");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("bomb.ods: cannot read the spreadsheet: content.xml (")
            && err.contains(
                "would take more than 40.0 MiB (a sheet of 10001 rows × 1000 columns so far"
            ),
        "{err}"
    );
    // A few repeats are an ordinary sheet: its rows are read (and fail, with cells beyond the
    // header).
    repeated_ods(&file, 3);
    let out = validate(&ctx, &file, "ods2");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("rows      3 = 0 valid + 3 invalid"),
        "{}",
        stdout(&out)
    );
}
