//! Read stage, beneath `zipview`: a streaming filter over a spreadsheet part's inflated XML that
//! keeps what calamine holds bounded whatever the part holds. calamine reads a text node whole
//! (a 2 GB cell is a 2 GB string, and a sheet of whitespace a buffer as large), so a text node
//! longer than `TEXT_LIMIT` is cut here, in the stream, before calamine sees it: a value (the
//! text of `<t>`, `<v>`, `<f>`, ODS `<text:p>`) keeps its first `TEXT_LIMIT` bytes, then a
//! marker naming the cut, then its element is closed early; the rest of the node becomes
//! comments (`<!--xx…-->`), which calamine skips one small event at a time, and the
//! element's own end tag becomes spaces. The part keeps its length, so the zip directory the
//! view serves stays true. The size of each cut node goes to `Cuts`, which `xlsx` reads when it
//! meets the marker in a cell, to fail the row with its size. A tag longer than `TAG_LIMIT`,
//! or shared strings past `STRINGS_BUDGET`, cannot be bounded this way: the part is refused
//! with an error naming it and its size.

use std::io;
use std::sync::{Arc, Mutex};

/// Text kept of a node that is cut: more than a cell may hold (`MAX_CELL_BYTES`), so the read
/// stage sees the cell is too large even where no marker survives.
pub const TEXT_LIMIT: u64 = 2 * super::MAX_CELL_BYTES as u64;
/// The longest tag read (quick-xml holds a tag whole).
pub const TAG_LIMIT: u64 = 1 << 20;
/// What a workbook's shared strings may take in calamine's table (text, and a slot per
/// string): it holds them all from the start.
pub const STRINGS_BUDGET: u64 = 40 << 20;
/// A shared string's slot (24 bytes) and its smallest allocation (32 bytes, which holds up to
/// `STRING_INLINE` bytes of text); longer text takes its length more, in steps of 16 (as
/// measured: 511,205 strings of 27 bytes on average took 31 MiB in calamine's table).
const STRING_OVERHEAD: u64 = 56;
const STRING_INLINE: u64 = 24;

/// What `len` bytes of a shared string's text add to its `STRING_OVERHEAD`.
fn string_text_cost(len: u64) -> u64 {
    len.saturating_sub(STRING_INLINE).div_ceil(16) * 16
}
/// What calamine may take loading an ODS workbook whole (it fills a dense table of every
/// sheet, repeated rows and columns written out): cells at `ODS_CELL_BYTES` each, plus their
/// text, each copy counted.
pub const ODS_BUDGET: u64 = 40 << 20;
const ODS_CELL_BYTES: u64 = 32;
/// The largest ODS row and column counts calamine fills (it caps repeats there).
const ODS_MAX_ROWS: u64 = 1 << 20;
const ODS_MAX_COLUMNS: u64 = 1 << 14;

/// The marker of a cut: `MARK`, the cut's number, `MARK`. A private-use character no
/// spreadsheet text has reason to hold.
pub const MARK: char = '\u{10FFFD}';
/// Padding comes in comments this long (`<!--xxxx…-->`): one event each for calamine, held
/// whole, so neither many nor large.
const PAD_UNIT: usize = 4096;
/// Many comments, to write padding a block at a time.
static PADS: std::sync::LazyLock<Vec<u8>> =
    std::sync::LazyLock::new(|| comment(PAD_UNIT).repeat(64));

/// A comment `len` bytes long (at least 7).
fn comment(len: usize) -> Vec<u8> {
    let mut c = b"<!--".to_vec();
    c.resize(len - 3, b'x');
    c.extend_from_slice(b"-->");
    c
}
/// Elements whose text is a value (local names).
const VALUES: [&[u8]; 7] = [b"t", b"v", b"f", b"p", b"span", b"a", b"h"];
/// Tag bytes kept to tell its name and kind.
const HEAD: usize = 96;

/// The sizes of the text nodes cut so far, by cut number; and why a part was refused, when one
/// was (calamine wraps the error in its own words; the reader shows this one instead).
#[derive(Debug, Default)]
pub struct Cuts {
    sizes: Mutex<Vec<u64>>,
    refused: Mutex<Option<String>>,
}

impl Cuts {
    fn start(&self) -> usize {
        let mut v = self.sizes.lock().expect("not poisoned");
        v.push(0);
        v.len() - 1
    }

    fn set(&self, n: usize, size: u64) {
        self.sizes.lock().expect("not poisoned")[n] = size;
    }

    /// The size of cut `n`, once its node has ended.
    pub fn size(&self, n: usize) -> Option<u64> {
        self.sizes
            .lock()
            .expect("not poisoned")
            .get(n)
            .copied()
            .filter(|&s| s > 0)
    }

    /// The error refusing a part (of `size` bytes inflated), noted as the reason (the first
    /// reason stays).
    pub fn refuse_part(&self, part: &str, size: u64, why: &str) -> io::Error {
        let text = format!("{part} ({} inflated): {why}", super::shown_size(size));
        self.refused
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(|| text.clone());
        io::Error::new(io::ErrorKind::InvalidData, text)
    }

    /// Why a part was refused, if one was.
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().expect("not poisoned").clone()
    }
}

/// Finds a cut's marker in a cell's text: the text before it and the cut's number.
pub fn find_mark(text: &str) -> Option<(&str, usize)> {
    let at = text.find(MARK)?;
    let rest = &text[at + MARK.len_utf8()..];
    let end = rest.find(MARK)?;
    let n = rest[..end].strip_prefix("cut:")?.parse().ok()?;
    Some((&text[..at], n))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    Tag,
}

/// A text node past `TEXT_LIMIT`.
struct Over {
    /// Node bytes after the cut point so far.
    past: u64,
    /// What replaces the first node bytes after the cut: the marker and the end tag (empty
    /// outside a value).
    prefix: Vec<u8>,
    /// The cut's number, for a value.
    cut: Option<usize>,
    /// The original bytes standing for `prefix` while it is not yet written: if the node ends
    /// first, they are written instead and nothing is cut.
    held: Vec<u8>,
    /// Padding bytes owed, fewer than a comment.
    pending: usize,
}

/// The filter over one part.
pub struct XmlGuard {
    part: String,
    size: u64,
    cuts: Arc<Cuts>,
    state: State,
    /// Bytes of the current text node, or tag.
    len: u64,
    in_entity: bool,
    head: Vec<u8>,
    /// The element whose start tag came last (its qualified name), when it is a value.
    open: bool,
    open_name: Vec<u8>,
    over: Option<Over>,
    /// After a cut value: its end tag, to become spaces. The tag's bytes wait in `held_tag`.
    closing: Option<Vec<u8>>,
    held_tag: Vec<u8>,
    /// Shared strings: what calamine's table takes so far (`None` for other parts).
    strings: Option<u64>,
    /// Bytes of the part before this `feed`, and where the current tag started.
    pos: u64,
    tag_at: u64,
    /// The tag's last byte before its `>` (`/` in a self-closing tag).
    tag_last: u8,
    /// ODS `content.xml`: what loading it whole will take (`None` for other parts). Its tags
    /// are kept whole (up to `TAG_LIMIT`) to read their repeat attributes.
    ods: Option<OdsCells>,
    /// Shared strings: their `<sst>` tag has gone by.
    sst_seen: bool,
}

/// The size of the dense tables calamine builds from an ODS `content.xml`, as it goes.
#[derive(Debug, Default)]
struct OdsCells {
    /// Bytes of the tables done so far.
    done: u64,
    /// The current table: rows so far, rows up to the last one with a value, widest row.
    rows: u64,
    used_rows: u64,
    width: u64,
    /// Text of the current table, each copy counted.
    text: u64,
    /// The current row: its repeat, columns so far, columns up to its last value, its text.
    repeat: u64,
    cols: u64,
    extent: u64,
    row_text: u64,
    /// The current cell: its repeat and text (`None` outside a cell).
    cell: Option<(u64, u64)>,
}

impl OdsCells {
    fn bytes(&self) -> u64 {
        self.done
            + self
                .used_rows
                .saturating_mul(self.width)
                .saturating_mul(ODS_CELL_BYTES)
            + self.text
    }

    /// A start or end tag (`tag` whole, from `<` to `>`).
    fn tag(&mut self, tag: &[u8], self_closing: bool) {
        let closing = tag.get(1) == Some(&b'/');
        let name_is = |n: &[u8]| {
            let at = if closing { 2 } else { 1 };
            tag.get(at..at + n.len()) == Some(n)
                && tag
                    .get(at + n.len())
                    .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        };
        if name_is(b"table:table-cell") || name_is(b"table:covered-table-cell") {
            if closing {
                self.end_cell();
                return;
            }
            let c = repeat_attr(tag, b"table:number-columns-repeated");
            let has_value = !self_closing || find(tag, b"office:value-type").is_some();
            self.cols = (self.cols + c).min(ODS_MAX_COLUMNS);
            if has_value {
                self.extent = self.cols;
            }
            // Attribute values (`office:string-value`) are text too.
            self.cell = Some((c, tag.len() as u64));
            if self_closing {
                self.end_cell();
            }
        } else if name_is(b"table:table-row") {
            if closing {
                self.end_row();
            } else {
                self.repeat = repeat_attr(tag, b"table:number-rows-repeated");
                (self.cols, self.extent, self.row_text) = (0, 0, 0);
                if self_closing {
                    self.end_row();
                }
            }
        } else if name_is(b"table:table") && closing {
            self.done = self.bytes();
            (self.rows, self.used_rows, self.width, self.text) = (0, 0, 0, 0);
        }
    }

    fn text(&mut self, len: u64) {
        if let Some((_, t)) = &mut self.cell {
            *t += len;
        }
    }

    fn end_cell(&mut self) {
        if let Some((c, t)) = self.cell.take() {
            self.row_text = self.row_text.saturating_add(c.saturating_mul(t));
        }
    }

    fn end_row(&mut self) {
        let r = self.repeat.min(ODS_MAX_ROWS.saturating_sub(self.rows));
        self.rows += r;
        if self.extent > 0 {
            self.used_rows = self.rows;
            self.width = self.width.max(self.extent);
            self.text = self.text.saturating_add(r.saturating_mul(self.row_text));
        }
    }
}

/// calamine reserves a slot per string the `<sst>` tag's `uniqueCount` announces before
/// reading one (a file of 700 bytes announcing 900 billion made it abort): a count past what
/// the budget could hold becomes zeros, the same length, and the table grows as strings come.
const MAX_ANNOUNCED_STRINGS: u64 = STRINGS_BUDGET / STRING_OVERHEAD;

/// Zeroes the digits of attribute `name` in `tag` when its value is over
/// `MAX_ANNOUNCED_STRINGS`.
pub fn cap_count(tag: &mut [u8], name: &[u8]) {
    let Some(at) = find(tag, name) else {
        return;
    };
    let start = at + name.len();
    let Some(first) = tag[start..]
        .iter()
        .position(|b| b.is_ascii_digit())
        .map(|p| start + p)
    else {
        return;
    };
    let digits = tag[first..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let value = std::str::from_utf8(&tag[first..first + digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    if value > MAX_ANNOUNCED_STRINGS {
        tag[first..first + digits].fill(b'0');
    }
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// A repeat attribute's value (`name="N"` or `name='N'`): 1 when it is not there or not a
/// number.
fn repeat_attr(tag: &[u8], name: &[u8]) -> u64 {
    let Some(at) = find(tag, name) else {
        return 1;
    };
    let rest = &tag[at + name.len()..];
    let rest = rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'=' | b'"' | b'\''))
        .map_or(&[][..], |i| &rest[i..]);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits.min(19)])
        .ok()
        .and_then(|d| d.parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(1)
}

impl XmlGuard {
    pub fn new(part: &str, size: u64, cuts: Arc<Cuts>) -> XmlGuard {
        XmlGuard {
            part: part.to_string(),
            size,
            cuts,
            state: State::Text,
            len: 0,
            in_entity: false,
            head: Vec::with_capacity(HEAD),
            open: false,
            open_name: Vec::with_capacity(HEAD),
            over: None,
            closing: None,
            held_tag: Vec::new(),
            strings: part.ends_with("sharedStrings.xml").then_some(0),
            pos: 0,
            tag_at: 0,
            tag_last: 0,
            ods: (part == "content.xml").then(OdsCells::default),
            sst_seen: false,
        }
    }

    fn refuse(&self, why: String) -> io::Error {
        self.cuts.refuse_part(&self.part, self.size, &why)
    }

    /// Filters `input` (the part's next bytes) into `out`. What comes out is as long as what
    /// went in once `finish` has run; a few bytes may wait in between.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Text if self.over.is_none() => {
                    let rest = &input[i..];
                    let next = memchr::memchr(b'<', rest);
                    let run = next.unwrap_or(rest.len());
                    // Bytes that cannot reach the cut point go through as they are.
                    let zone = TEXT_LIMIT - 16;
                    let free = (zone.saturating_sub(self.len) as usize).min(run);
                    out.extend_from_slice(&rest[..free]);
                    self.len += free as u64;
                    i += free;
                    if free < run {
                        // Near the cut: byte by byte, to cut between characters and
                        // outside an entity.
                        for &b in &rest[free..run] {
                            i += 1;
                            if self.over.is_some() {
                                self.over_bytes(&[b], out);
                                continue;
                            }
                            let safe =
                                self.len >= TEXT_LIMIT && !self.in_entity && b & 0xC0 != 0x80;
                            if safe {
                                self.start_over();
                                self.over_bytes(&[b], out);
                                continue;
                            }
                            match b {
                                b'&' => self.in_entity = true,
                                b';' => self.in_entity = false,
                                _ => {}
                            }
                            out.push(b);
                            self.len += 1;
                        }
                    }
                    if next.is_some() {
                        self.end_text(out)?;
                        self.tag_at = self.pos + i as u64;
                    }
                }
                State::Text => {
                    let rest = &input[i..];
                    let run = memchr::memchr(b'<', rest).unwrap_or(rest.len());
                    self.over_bytes(&rest[..run], out);
                    i += run;
                    if i < input.len() {
                        self.end_text(out)?;
                        self.tag_at = self.pos + i as u64;
                    }
                }
                State::Tag => {
                    let rest = &input[i..];
                    let end = memchr::memchr(b'>', rest);
                    let run = end.map_or(rest.len(), |e| e + 1);
                    let bytes = &rest[..run];
                    self.len += run as u64;
                    if self.len > TAG_LIMIT {
                        return Err(self.refuse(format!(
                            "an XML tag at byte {} is longer than {}; this is not a spreadsheet csmport can read safely",
                            self.tag_at,
                            super::shown_size(TAG_LIMIT)
                        )));
                    }
                    let holding = self.holding();
                    let keep = if self.ods.is_some() || holding {
                        TAG_LIMIT as usize
                    } else {
                        HEAD
                    };
                    let room = keep.saturating_sub(self.head.len()).min(bytes.len());
                    self.head.extend_from_slice(&bytes[..room]);
                    let body = if end.is_some() {
                        &bytes[..run - 1]
                    } else {
                        bytes
                    };
                    if let Some(&b) = body.last() {
                        self.tag_last = b;
                    }
                    if holding {
                        // Kept whole in `head`, written once it is looked at.
                    } else if self.closing.is_some() {
                        self.held_tag.extend_from_slice(bytes);
                        if self.held_tag.len() > HEAD {
                            // Not the end tag: it goes through.
                            out.append(&mut self.held_tag);
                            self.closing = None;
                        }
                    } else {
                        out.extend_from_slice(bytes);
                    }
                    i += run;
                    if end.is_some() {
                        self.end_tag(out)?;
                    }
                }
            }
        }
        self.pos += input.len() as u64;
        Ok(())
    }

    /// At the end of the part: whatever still waits.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.over.is_some() {
            self.finish_over(out);
        }
        out.append(&mut self.held_tag);
        Ok(())
    }

    /// A text node has ended at a `<`: the tag state starts with it (not consumed here).
    fn end_text(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if let Some(o) = &mut self.ods {
            o.text(self.len + self.over.as_ref().map_or(0, |o| o.past));
        }
        if self.over.is_some() {
            self.finish_over(out);
        } else if let Some(used) = &mut self.strings
            && self.open
            && local(&self.open_name) == b"t"
        {
            *used += string_text_cost(self.len);
            self.check_strings()?;
        }
        self.state = State::Tag;
        self.len = 0;
        self.head.clear();
        self.tag_last = 0;
        Ok(())
    }

    /// Shared strings before their `<sst>` tag: tags are held whole, to look at it before it
    /// goes on.
    fn holding(&self) -> bool {
        self.strings.is_some() && !self.sst_seen
    }

    fn check_strings(&self) -> io::Result<()> {
        match self.strings {
            Some(used) if used > STRINGS_BUDGET => Err(self.refuse(format!(
                "its shared strings take more than {}, which is more than csmport holds of a workbook; save the sheet as CSV and import that",
                super::shown_size(STRINGS_BUDGET)
            ))),
            _ => Ok(()),
        }
    }

    /// A tag has ended (its `>` is written or held).
    fn end_tag(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.holding() {
            if local(tag_name(&self.head, 1)) == b"sst" {
                self.sst_seen = true;
                cap_count(&mut self.head, b"uniqueCount");
            }
            out.extend_from_slice(&self.head);
        }
        let over = self.ods.as_mut().and_then(|o| {
            o.tag(&self.head, self.tag_last == b'/');
            (o.bytes() > ODS_BUDGET).then_some((o.used_rows, o.width))
        });
        if let Some((rows, cols)) = over {
            return Err(self.refuse(format!(
                "its sheets, loaded whole as the ODS format needs, would take more than {} (a sheet of {rows} rows × {cols} columns so far, repeats counted, or that much text); open it in a spreadsheet and save it as XLSX or CSV, which csmport streams",
                super::shown_size(ODS_BUDGET)
            )));
        }
        // Called for every tag of a sheet: no allocation here.
        let kind = self.head.get(1).copied().unwrap_or(b'>');
        match kind {
            b'/' => {
                if let Some(want) = self.closing.take() {
                    if tag_name(&self.head, 2) == want.as_slice() {
                        let n = self.held_tag.len();
                        self.held_tag.clear();
                        out.extend(std::iter::repeat_n(b' ', n));
                    } else {
                        out.append(&mut self.held_tag);
                    }
                }
                self.open = false;
            }
            b'?' | b'!' => {
                if self.closing.take().is_some() {
                    out.append(&mut self.held_tag);
                }
            }
            _ => {
                if self.closing.take().is_some() {
                    out.append(&mut self.held_tag);
                }
                let name = tag_name(&self.head, 1);
                let local_name = local(name);
                let self_closing = self.tag_last == b'/';
                let si = local_name == b"si";
                self.open = !self_closing && VALUES.contains(&local_name);
                if self.open {
                    self.open_name.clear();
                    self.open_name.extend_from_slice(name);
                }
                if si && let Some(used) = &mut self.strings {
                    *used += STRING_OVERHEAD;
                    self.check_strings()?;
                }
            }
        }
        self.state = State::Text;
        self.len = 0;
        self.in_entity = false;
        self.head.clear();
        Ok(())
    }

    /// The text node has passed the cut point: what replaces the rest of it.
    fn start_over(&mut self) {
        let (prefix, cut) = if self.open {
            let n = self.cuts.start();
            let mut p = format!("{MARK}cut:{n}{MARK}</").into_bytes();
            p.extend_from_slice(&self.open_name);
            p.push(b'>');
            (p, Some(n))
        } else {
            (Vec::new(), None)
        };
        self.over = Some(Over {
            past: 0,
            prefix,
            cut,
            held: Vec::new(),
            pending: 0,
        });
    }

    /// Node bytes after the cut point: first the prefix (held until whole), then padding.
    fn over_bytes(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let o = self.over.as_mut().expect("over");
        let mut rest = bytes;
        let owed = o.prefix.len().saturating_sub(o.past as usize);
        if owed > 0 {
            let n = owed.min(rest.len());
            o.held.extend_from_slice(&rest[..n]);
            o.past += n as u64;
            rest = &rest[n..];
            if o.past as usize == o.prefix.len() {
                out.extend_from_slice(&o.prefix);
                o.held.clear();
            }
        }
        if rest.is_empty() {
            return;
        }
        o.past += rest.len() as u64;
        o.pending += rest.len();
        let mut whole = o.pending - o.pending % PAD_UNIT;
        o.pending %= PAD_UNIT;
        while whole > 0 {
            let n = whole.min(PADS.len());
            out.extend_from_slice(&PADS[..n]);
            whole -= n;
        }
    }

    fn finish_over(&mut self, out: &mut Vec<u8>) {
        let o = self.over.take().expect("over");
        if (o.past as usize) < o.prefix.len() {
            // The node ended before the prefix was whole: it is only just past the limit, and
            // goes through as it is (the read stage sees its size).
            out.extend_from_slice(&o.held);
            if let Some(n) = o.cut {
                self.cuts.set(n, self.len + o.past);
            }
            return;
        }
        if o.pending >= 7 {
            out.extend_from_slice(&comment(o.pending));
        } else {
            out.extend(std::iter::repeat_n(b' ', o.pending));
        }
        if let Some(n) = o.cut {
            self.cuts.set(n, self.len + o.past);
            self.closing = self.open.then(|| self.open_name.clone());
            self.open = false;
        }
    }
}

/// The name of the tag whose bytes (from `<`) are `head`, starting at `from`.
fn tag_name(head: &[u8], from: usize) -> &[u8] {
    let rest = head.get(from..).unwrap_or(&[]);
    let end = rest
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// A qualified name's local part (`x:t` → `t`).
fn local(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b':') {
        Some(at) => &name[at + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(xml: &[u8], piece: usize) -> (Vec<u8>, Arc<Cuts>, io::Result<()>) {
        let cuts = Arc::new(Cuts::default());
        let mut g = XmlGuard::new("xl/worksheets/sheet1.xml", xml.len() as u64, cuts.clone());
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in xml.chunks(piece) {
            if let Err(e) = g.feed(chunk, &mut out) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            result = g.finish(&mut out);
        }
        (out, cuts, result)
    }

    #[test]
    fn small_parts_pass_unchanged() {
        let xml = br#"<?xml version="1.0"?><sst><si><t xml:space="preserve">a &amp; b</t></si><si><t/></si></sst>"#;
        for piece in [1, 3, 7, 4096] {
            let (out, _, r) = run(xml, piece);
            r.unwrap();
            assert_eq!(out, xml, "piece {piece}");
        }
    }

    #[test]
    fn a_long_value_is_cut_marked_and_closed_keeping_the_length() {
        let big = "é".repeat(TEXT_LIMIT as usize); // twice the limit in bytes
        let xml = format!(
            r#"<sheetData><row r="1"><c r="A1" t="inlineStr"><is><x:t>{big}</x:t></is></c><c r="B1"><v>5</v></c></row></sheetData>"#
        );
        for piece in [1000, 65536, 1 << 20] {
            let (out, cuts, r) = run(xml.as_bytes(), piece);
            r.unwrap();
            assert_eq!(out.len(), xml.len(), "piece {piece}");
            let text = String::from_utf8(out).unwrap();
            let (kept, n) = find_mark(&text[text.find("<x:t>").unwrap() + 5..]).unwrap();
            assert_eq!(kept.len() as u64, TEXT_LIMIT);
            assert_eq!(cuts.size(n), Some(big.len() as u64));
            // Closed early, padded with empty comments, the real end tag blanked.
            assert!(text.contains(&format!("{MARK}</x:t><!--xxxx")));
            assert!(
                text.contains("      </is></c><c r=\"B1\"><v>5</v></c></row>"),
                "{}",
                &text[text.len() - 80..]
            );
            assert!(!text.contains("</x:t></is>"));
        }
    }

    #[test]
    fn whitespace_between_elements_becomes_comments() {
        let ws = " ".repeat(3 * TEXT_LIMIT as usize);
        let xml = format!("<sheetData>{ws}<row/></sheetData>");
        let (out, cuts, r) = run(xml.as_bytes(), 4096);
        r.unwrap();
        assert_eq!(out.len(), xml.len());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!(
            "<sheetData>{}<!--xx",
            " ".repeat(TEXT_LIMIT as usize)
        )));
        assert!(text.ends_with("<row/></sheetData>"));
        assert!(cuts.size(0).is_none(), "no value was cut");
    }

    #[test]
    fn a_node_just_past_the_limit_goes_through_whole() {
        let v = "x".repeat(TEXT_LIMIT as usize + 3);
        let xml = format!("<si><t>{v}</t></si>");
        let (out, _, r) = run(xml.as_bytes(), 100);
        r.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), xml);
    }

    #[test]
    fn cuts_fall_outside_entities() {
        let v = format!(
            "{}&amp;&amp;&amp;{}",
            "x".repeat(TEXT_LIMIT as usize - 2),
            "y".repeat(4096)
        );
        let xml = format!("<si><t>{v}</t></si>");
        let (out, _, r) = run(xml.as_bytes(), 333);
        r.unwrap();
        let text = String::from_utf8(out).unwrap();
        let (kept, _) = find_mark(&text[7..]).unwrap();
        assert!(
            kept.ends_with(';') || kept.ends_with('x'),
            "{}",
            &kept[kept.len() - 10..]
        );
    }

    #[test]
    fn long_tags_and_too_many_shared_strings_are_refused() {
        let xml = format!("<c r=\"{}\"/>", "A".repeat(TAG_LIMIT as usize));
        let (_, _, r) = run(xml.as_bytes(), 65536);
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("xl/worksheets/sheet1.xml ("), "{e}");
        assert!(
            e.contains("an XML tag at byte 0 is longer than 1.0 MiB"),
            "{e}"
        );

        let cuts = Arc::new(Cuts::default());
        let mut g = XmlGuard::new("xl/sharedStrings.xml", 1 << 30, cuts);
        let one = b"<si><t>a</t></si>".repeat(1000);
        let mut out = Vec::new();
        let mut err = None;
        for _ in 0..2000 {
            if let Err(e) = g.feed(&one, &mut out) {
                err = Some(e.to_string());
                break;
            }
            out.clear();
        }
        let e = err.expect("refused");
        assert!(e.contains("xl/sharedStrings.xml (1.0 GiB inflated): its shared strings take more than 40.0 MiB"), "{e}");
    }

    fn ods(xml: &str) -> (Option<OdsCells>, io::Result<()>) {
        let cuts = Arc::new(Cuts::default());
        let mut g = XmlGuard::new("content.xml", xml.len() as u64, cuts);
        let mut out = Vec::new();
        let mut r = Ok(());
        for chunk in xml.as_bytes().chunks(7) {
            r = g.feed(chunk, &mut out);
            if r.is_err() {
                break;
            }
        }
        if r.is_ok() {
            r = g.finish(&mut out);
            assert_eq!(out, xml.as_bytes(), "content.xml passes unchanged");
        }
        (g.ods.take(), r)
    }

    const ROW: &str = r#"<table:table-row table:style-name="ro1"><table:table-cell office:value-type="string"><text:p>a@x.io</text:p></table:table-cell><table:table-cell/><table:table-cell office:value-type="float" office:value="3"><text:p>3</text:p></table:table-cell></table:table-row>"#;

    #[test]
    fn ods_sheets_are_sized_as_calamine_fills_them() {
        // Three rows of three columns; LibreOffice's trailing empty block counts nothing.
        let xml = format!(
            r#"<office:spreadsheet><table:table table:name="S"><table:table-column table:number-columns-repeated="1024"/>{ROW}{ROW}{ROW}<table:table-row table:number-rows-repeated="1048573"><table:table-cell table:number-columns-repeated="1024"/></table:table-row></table:table></office:spreadsheet>"#
        );
        let (o, r) = ods(&xml);
        r.unwrap();
        let o = o.unwrap();
        let text = 3 * (ROW.len() as u64 - 100);
        assert!(o.done >= 9 * ODS_CELL_BYTES, "{o:?}");
        assert!(o.done < 9 * ODS_CELL_BYTES + text, "{o:?}");
        // Repeats multiply: rows by cells with a value, and their text.
        let bomb = r#"<table:table table:name="S"><table:table-row table:number-rows-repeated='20000'><table:table-cell table:number-columns-repeated="100" office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row></table:table>"#;
        let (o, r) = ods(bomb);
        let e = r.unwrap_err().to_string();
        assert!(
            e.starts_with("content.xml (")
                && e.contains("would take more than 40.0 MiB (a sheet of 20000 rows × 100 columns"),
            "{e}"
        );
        assert!(o.unwrap().bytes() > ODS_BUDGET);
        // Text repeated in columns and rows counts every copy.
        let long = "y".repeat(30_000);
        let text = format!(
            r#"<table:table><table:table-row table:number-rows-repeated="100"><table:table-cell table:number-columns-repeated="20" office:value-type="string"><text:p>{long}</text:p></table:table-cell></table:table-row></table:table>"#
        );
        assert!(ods(&text).1.is_err());
        assert_eq!(repeat_attr(b"<x a=\"7\">", b"a"), 7);
        assert_eq!(repeat_attr(b"<x a=\"0\">", b"a"), 1);
        assert_eq!(repeat_attr(b"<x>", b"a"), 1);
    }

    #[test]
    fn an_announced_string_count_past_the_budget_is_zeroed() {
        let cuts = Arc::new(Cuts::default());
        let xml = br#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2" uniqueCount="900000000000"><si><t>a</t></si></sst>"#;
        for piece in [1, 5, 4096] {
            let mut g = XmlGuard::new("xl/sharedStrings.xml", xml.len() as u64, cuts.clone());
            let mut out = Vec::new();
            for c in xml.chunks(piece) {
                g.feed(c, &mut out).unwrap();
            }
            g.finish(&mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.len(), xml.len());
            assert!(
                text.contains(r#"count="2" uniqueCount="000000000000">"#),
                "{text}"
            );
        }
        let mut ok = br#"<sst uniqueCount="5000">"#.to_vec();
        cap_count(&mut ok, b"uniqueCount");
        assert_eq!(ok, br#"<sst uniqueCount="5000">"#);
    }
}
