#!/usr/bin/env python3
"""Writes the hostile inputs of bench/hostile.sh, streaming (never holding a large value in
memory), with the standard library only (tests/it/hostile.rs writes the same shapes, small,
in Rust). Usage: bench/gen_hostile.py CASE SIZE OUT

CASE is one of:
  cell        an XLSX whose one data cell (an inline string) holds SIZE bytes
  whitespace  an XLSX with SIZE bytes of whitespace between two rows of its sheet
  strings     an XLSX whose sharedStrings.xml holds one string of SIZE bytes
  manystrings an XLSX whose sharedStrings.xml holds SIZE bytes of one-character strings
  announced   an XLSX of under 1 KB whose shared strings announce SIZE strings (uniqueCount)
  odsrepeat   an ODS of under 1 KB whose one row of 1,000 cells is repeated SIZE times
  csvfield    a CSV whose one field holds SIZE bytes
  csvcolumns  a CSV with SIZE columns (its header names every one)
"""
import sys
import zipfile

CHUNK = 1 << 20
NS = "http://schemas.openxmlformats.org"


def repeat(f, unit, size):
    """SIZE bytes of UNIT repeated, in whole units (a cut one would not be XML)."""
    block = unit * (CHUNK // len(unit))
    left = size - size % len(unit)
    while left > 0:
        piece = block[: min(left, len(block))]
        f.write(piece)
        left -= len(piece)


def xlsx(out, sheet_parts, strings=None, big=False, unique_count=None):
    # Parts of 2 GiB or more need ZIP64 records (what Python, and some CRMs, then write).
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=1) as z:
        types = (
            f'<Types xmlns="{NS}/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        )
        if strings:
            types += '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        z.writestr("[Content_Types].xml", types + "</Types>")
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{NS}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{NS}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{NS}/spreadsheetml/2006/main" xmlns:r="{NS}/officeDocument/2006/relationships">'
            '<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        rels = (
            f'<Relationships xmlns="{NS}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{NS}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        )
        if strings:
            rels += (
                f'<Relationship Id="rId2" Type="{NS}/officeDocument/2006/relationships/sharedStrings" '
                'Target="sharedStrings.xml"/>'
            )
        z.writestr("xl/_rels/workbook.xml.rels", rels + "</Relationships>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=big) as f:
            f.write(f'<worksheet xmlns="{NS}/spreadsheetml/2006/main"><sheetData>'.encode())
            sheet_parts(f)
            f.write(b"</sheetData></worksheet>")
        if strings:
            with z.open("xl/sharedStrings.xml", "w", force_zip64=big) as f:
                count = f' uniqueCount="{unique_count}"' if unique_count else ""
                f.write(f'<sst xmlns="{NS}/spreadsheetml/2006/main"{count}>'.encode())
                strings(f)
                f.write(b"</sst>")


def inline(ref, text):
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


def header_row(f):
    f.write(b'<row r="1">' + inline("A1", "email") + inline("B1", "displayName") + b"</row>")


def main():
    case, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if case == "cell":
        def sheet(f):
            header_row(f)
            f.write(b'<row r="2">' + inline("A2", "a@example.com") + b'<c r="B2" t="inlineStr"><is><t>')
            repeat(f, b"x", size)
            f.write(b"</t></is></c></row>")
            f.write(b'<row r="3">' + inline("A3", "b@example.com") + inline("B3", "B") + b"</row>")
        xlsx(out, sheet, big=size >= 1 << 31)
    elif case == "whitespace":
        def sheet(f):
            header_row(f)
            repeat(f, b" ", size)
            f.write(b'<row r="2">' + inline("A2", "a@example.com") + inline("B2", "A") + b"</row>")
        xlsx(out, sheet, big=size >= 1 << 31)
    elif case == "announced":
        def sheet(f):
            f.write(b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>')
            f.write(b'<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>')

        def strings(f):
            for s in (b"email", b"displayName", b"a@example.com", b"Ann"):
                f.write(b"<si><t>" + s + b"</t></si>")
        xlsx(out, sheet, strings, unique_count=size)
    elif case in ("strings", "manystrings"):
        def sheet(f):
            f.write(b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>')
            f.write(b'<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>')

        def strings(f):
            for s in (b"email", b"displayName", b"a@example.com"):
                f.write(b"<si><t>" + s + b"</t></si>")
            if case == "strings":
                f.write(b"<si><t>")
                repeat(f, b"x", size)
                f.write(b"</t></si>")
            else:
                repeat(f, b"<si><t>a</t></si>", size)
        xlsx(out, sheet, strings, big=size >= 1 << 31)
    elif case == "odsrepeat":
        content = (
            '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
            'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
            'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
            'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
            '<office:body><office:spreadsheet><table:table table:name="Sheet1"><table:table-row>'
            '<table:table-cell office:value-type="string"><text:p>email</text:p></table:table-cell>'
            f'</table:table-row><table:table-row table:number-rows-repeated="{size}">'
            '<table:table-cell table:number-columns-repeated="1000" office:value-type="string">'
            '<text:p>x@example.com</text:p></table:table-cell></table:table-row></table:table>'
            '</office:spreadsheet></office:body></office:document-content>'
        )
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            z.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
            z.writestr(
                "META-INF/manifest.xml",
                '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>",
                compress_type=zipfile.ZIP_DEFLATED,
            )
    elif case == "csvfield":
        with open(out, "wb") as f:
            f.write(b"email,displayName\na@example.com,\"")
            repeat(f, b"x", size)
            f.write(b"\"\nb@example.com,B\n")
    elif case == "csvcolumns":
        with open(out, "wb") as f:
            f.write(b"email," + b",".join(f"Column {i}".encode() for i in range(size)) + b"\n")
            f.write(b"a@example.com" + b"," * size + b"\n")
    else:
        sys.exit(f"unknown case {case}")


if __name__ == "__main__":
    main()
