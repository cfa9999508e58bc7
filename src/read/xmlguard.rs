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
/// A shared string's slot and allocation, beyond its text.
const STRING_OVERHEAD: u64 = 56;

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
    open: Option<Vec<u8>>,
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
            open: None,
            over: None,
            closing: None,
            held_tag: Vec::new(),
            strings: part.ends_with("sharedStrings.xml").then_some(0),
            pos: 0,
            tag_at: 0,
            tag_last: 0,
        }
    }

    fn refuse(&self, why: String) -> io::Error {
        let text = format!(
            "{} ({} inflated): {why}",
            self.part,
            super::shown_size(self.size)
        );
        self.cuts
            .refused
            .lock()
            .expect("not poisoned")
            .get_or_insert(text.clone());
        io::Error::new(io::ErrorKind::InvalidData, text)
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
                    let room = HEAD.saturating_sub(self.head.len()).min(bytes.len());
                    self.head.extend_from_slice(&bytes[..room]);
                    let body = if end.is_some() {
                        &bytes[..run - 1]
                    } else {
                        bytes
                    };
                    if let Some(&b) = body.last() {
                        self.tag_last = b;
                    }
                    if self.closing.is_some() {
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
        if self.over.is_some() {
            self.finish_over(out);
        } else if let Some(used) = &mut self.strings
            && self.open.as_deref().is_some_and(|n| local(n) == b"t")
        {
            *used += self.len;
            self.check_strings()?;
        }
        self.state = State::Tag;
        self.len = 0;
        self.head.clear();
        self.tag_last = 0;
        Ok(())
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
        let head = &self.head;
        let kind = head.get(1).copied().unwrap_or(b'>');
        let name_of = |from: usize| -> Vec<u8> {
            head[from..]
                .iter()
                .take_while(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
                .copied()
                .collect()
        };
        match kind {
            b'/' => {
                let name = name_of(2);
                if let Some(want) = self.closing.take() {
                    if name == want {
                        let n = self.held_tag.len();
                        self.held_tag.clear();
                        out.extend(std::iter::repeat_n(b' ', n));
                    } else {
                        out.append(&mut self.held_tag);
                    }
                }
                self.open = None;
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
                let name = name_of(1);
                let self_closing = self.tag_last == b'/';
                if let Some(used) = &mut self.strings
                    && local(&name) == b"si"
                {
                    *used += STRING_OVERHEAD;
                    self.check_strings()?;
                }
                self.open = (!self_closing && VALUES.contains(&local(&name))).then_some(name);
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
        let (prefix, cut) = match &self.open {
            Some(name) => {
                let n = self.cuts.start();
                let mut p = format!("{MARK}cut:{n}{MARK}</").into_bytes();
                p.extend_from_slice(name);
                p.push(b'>');
                (p, Some(n))
            }
            None => (Vec::new(), None),
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
            self.closing = self.open.take();
        }
    }
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
}
