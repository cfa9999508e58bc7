//! Read stage, beneath the spreadsheet reader (`xlsx`): a zip archive (XLSX, XLSB, ODS) seen
//! through a view in which each large deflated member (and each large stored XML member) is
//! stored instead, its bytes inflated ahead on a helper thread, XML parts through the guard
//! that bounds what calamine holds (`xmlguard`). Inflating is about 7% of reading a sheet;
//! done there, it runs beside calamine's XML parsing rather than inside it. calamine reads
//! the view as it would the file: the small members, the names, the checksums are the file's
//! own. ZIP64 archives are viewed too (the view writes ZIP64 records where a value needs
//! them). An archive this does not understand (split, data before it, damaged, not a zip at
//! all) is read as it is, so the errors a user sees are calamine's, unless one of its XML
//! parts is too large to be read whole: then it is refused, naming the part and its size.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::binguard::BinGuard;
use super::xmlguard::{Cuts, XmlGuard};
use super::{le_u16, le_u32, le_u64};

/// Members smaller than this are left as they are: inflating them ahead would not pay for a
/// thread.
const AHEAD_MIN_BYTES: u64 = 1 << 20;
/// Inflated bytes per hand-over, and hand-overs waiting at most: what the helper may be ahead.
const CHUNK_BYTES: usize = 128 << 10;
const CHUNKS_AHEAD: usize = 4;

const LOCAL_SIG: [u8; 4] = *b"PK\x03\x04";
const CENTRAL_SIG: [u8; 4] = *b"PK\x01\x02";
const END_SIG: [u8; 4] = *b"PK\x05\x06";
const ZIP64_LOCATOR_SIG: [u8; 4] = *b"PK\x06\x07";
const ZIP64_END_SIG: [u8; 4] = *b"PK\x06\x06";
const ZIP64_END_LEN: usize = 56;
const ZIP64_LOCATOR_LEN: usize = 20;
/// The extra field that holds ZIP64 sizes and offsets, and the version that reads it.
const ZIP64_EXTRA: u16 = 0x0001;
const ZIP64_VERSION: u16 = 45;
/// The largest XML part of an archive read as it is (not through the view).
const PLAIN_MAX_BYTES: u64 = 16 << 20;
/// A directory larger than this (65,535 members of long names fit in far less) is left to
/// the zip reader.
const MAX_DIRECTORY_BYTES: u64 = 16 << 20;
const END_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
/// General-purpose flags that make no sense on a stored member: the data descriptor (its
/// sizes are in the headers now) and deflate's compression level.
const DEFLATE_ONLY_FLAGS: u16 = 0x0008 | 0x0006;
/// Zeros before the new directory: zip readers look for the end record in the last 64 KiB of
/// an archive, and would otherwise read (and so inflate) the end of the last member to do it.
const GAP_BEFORE_DIRECTORY: u64 = (1 << 16) + 64;

/// A spreadsheet file, as calamine reads it.
pub enum Archive {
    Plain(BufReader<File>),
    View(ZipView),
}

impl Archive {
    /// The sizes of the text nodes cut in the XML parts read so far (`xmlguard`).
    pub fn cuts(&self) -> Option<Arc<Cuts>> {
        match self {
            Archive::Plain(_) => None,
            Archive::View(v) => Some(v.cuts.clone()),
        }
    }

    /// The file as it is.
    pub fn plain(path: &Path) -> io::Result<Archive> {
        Ok(Archive::Plain(BufReader::new(File::open(path)?)))
    }

    /// The file with its large deflated members inflated ahead, when it is a zip archive this
    /// understands; otherwise as it is.
    pub fn open(path: &Path) -> io::Result<Archive> {
        let file = File::open(path)?;
        match ZipView::new(file.try_clone()?, AHEAD_MIN_BYTES) {
            Some(v) => Ok(Archive::View(v)),
            None => {
                check_plain(&file)?;
                Ok(Archive::Plain(BufReader::new(file)))
            }
        }
    }
}

/// An archive read as it is holds its parts whole in calamine: one whose XML part is larger
/// than `PLAIN_MAX_BYTES` inflated is refused, naming the part and its size. One the zip
/// reader cannot open is left to calamine, whose error names the file.
fn check_plain(file: &File) -> io::Result<()> {
    let Ok(mut z) = zip::ZipArchive::new(file.try_clone()?) else {
        return Ok(());
    };
    let unbounded = |name: &str, why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{name} {why}, and this archive (split, with data before it, or with a damaged directory) cannot be read in bounded pieces; open it in a spreadsheet and save it again as XLSX, or as CSV"
            ),
        )
    };
    let mut strings = None;
    for i in 0..z.len() {
        let Ok(m) = z.by_index_data(i) else { continue };
        let name = m.name().map(|n| n.into_owned()).unwrap_or_default();
        if guarded(&name) && m.size() > PLAIN_MAX_BYTES {
            let why = format!("is {} inflated", super::shown_size(m.size()));
            return Err(unbounded(&name, why));
        }
        if name.to_ascii_lowercase().ends_with("sharedstrings.xml") {
            strings = Some((i, name));
        }
    }
    // The `<sst>` tag comes first: what it announces is reserved before a string is read.
    if let Some((i, name)) = strings
        && let Ok(m) = z.by_index(i)
    {
        let mut head = Vec::new();
        let _ = m.take(4096).read_to_end(&mut head);
        let mut capped = head.clone();
        super::xmlguard::cap_count(&mut capped, b"uniqueCount");
        if capped != head {
            return Err(unbounded(
                &name,
                "announces more shared strings than csmport holds".into(),
            ));
        }
    }
    Ok(())
}

impl Read for Archive {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Archive::Plain(r) => r.read(buf),
            Archive::View(v) => v.read(buf),
        }
    }
}

impl Seek for Archive {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            Archive::Plain(r) => r.seek(to),
            Archive::View(v) => v.seek(to),
        }
    }
}

/// The archive as it would be with its large deflated members stored: the file's bytes up to
/// its central directory, then a stored copy of each such member (a local header, then the
/// member's inflated bytes), then a central directory that points at those copies and, for
/// every other member, at the original.
pub struct ZipView {
    file: Arc<File>,
    /// In order of `start`; none is empty.
    parts: Vec<Part>,
    len: u64,
    pos: u64,
    members: Vec<Member>,
    /// Inflating streams started so far.
    streams: usize,
    cuts: Arc<Cuts>,
}

struct Part {
    start: u64,
    kind: PartKind,
}

enum PartKind {
    /// The file's bytes at the same offsets.
    File,
    Bytes(Vec<u8>),
    Zeros,
    /// The inflated bytes of `members[i]`.
    Inflated(usize),
}

/// A member inflated ahead: where its compressed bytes are, and the stream of its inflated
/// bytes while one is read.
struct Member {
    name: String,
    data_start: u64,
    compressed: u64,
    size: u64,
    /// Deflated, or stored (an XML part viewed only to be guarded).
    deflated: bool,
    stream: Option<Stream>,
}

type Chunk = io::Result<(Vec<u8>, usize)>;

struct Stream {
    /// The member's offset of `chunk[0]`.
    at: u64,
    chunk: Vec<u8>,
    filled: usize,
    used: usize,
    rx: Receiver<Chunk>,
    spares: SyncSender<Vec<u8>>,
}

impl ZipView {
    /// The view of an archive, or None when it has no member to inflate ahead, or is not a
    /// single-disk zip archive (ZIP64 or not) whose directory this can read.
    fn new(file: File, min_bytes: u64) -> Option<ZipView> {
        let len = file.metadata().ok()?.len();
        let d = find_directory(&file, len)?;
        if d.size > MAX_DIRECTORY_BYTES {
            return None;
        }
        let mut dir = vec![0; d.size as usize];
        read_exact_at(&file, &mut dir, d.start).ok()?;

        let mut records = Vec::new();
        let mut q = 0;
        for _ in 0..d.entries {
            if dir.len() < q + CENTRAL_LEN || dir[q..q + 4] != CENTRAL_SIG {
                return None;
            }
            let n = usize::from(le_u16(&dir, q + 28))
                + usize::from(le_u16(&dir, q + 30))
                + usize::from(le_u16(&dir, q + 32));
            if dir.len() < q + CENTRAL_LEN + n {
                return None;
            }
            records.push(q..q + CENTRAL_LEN + n);
            q += CENTRAL_LEN + n;
        }

        let mut parts = Vec::new();
        if d.start > 0 {
            parts.push(Part {
                start: 0,
                kind: PartKind::File,
            });
        }
        let mut members = Vec::new();
        let mut at = d.start;
        let mut new_dir = Vec::with_capacity(dir.len() + END_LEN);
        for r in records {
            let rec = &dir[r];
            let viewed = inflatable(&file, rec, d.start, min_bytes)
                .and_then(|m| stored_record(rec, m.size, at).map(|new| (m, new)));
            let Some((m, new)) = viewed else {
                // Left as it is: the file's own bytes, at the offset the record names.
                new_dir.extend_from_slice(rec);
                continue;
            };
            let local = local_header(&new, m.size);
            let header_len = local.len() as u64;
            parts.push(Part {
                start: at,
                kind: PartKind::Bytes(local),
            });
            at += header_len;
            parts.push(Part {
                start: at,
                kind: PartKind::Inflated(members.len()),
            });
            at += m.size;
            members.push(m);
            new_dir.extend_from_slice(&new);
        }
        if members.is_empty() {
            return None;
        }
        parts.push(Part {
            start: at,
            kind: PartKind::Zeros,
        });
        at += GAP_BEFORE_DIRECTORY;
        let dir_len = new_dir.len() as u64;
        end_records(&mut new_dir, d.entries, dir_len, at);
        let len = at + new_dir.len() as u64;
        parts.push(Part {
            start: at,
            kind: PartKind::Bytes(new_dir),
        });
        Some(ZipView {
            file: Arc::new(file),
            parts,
            len,
            pos: 0,
            members,
            streams: 0,
            cuts: Arc::new(Cuts::default()),
        })
    }
}

/// Where an archive's central directory is, as its end records (ZIP64 or not) say.
struct Directory {
    entries: u64,
    start: u64,
    size: u64,
}

/// The directory of a single-disk archive whose directory runs up to its end records, with
/// nothing between them; None for anything else.
fn find_directory(file: &File, len: u64) -> Option<Directory> {
    let tail_len = len.min((END_LEN + u16::MAX as usize + ZIP64_LOCATOR_LEN) as u64) as usize;
    if tail_len < END_LEN {
        return None;
    }
    let tail_start = len - tail_len as u64;
    let mut tail = vec![0; tail_len];
    read_exact_at(file, &mut tail, tail_start).ok()?;
    // The end record is the one whose comment runs exactly to the end of the file.
    let end = (0..=tail_len - END_LEN).rev().find(|&p| {
        tail[p..p + 4] == END_SIG && p + END_LEN + usize::from(le_u16(&tail, p + 20)) == tail_len
    })?;
    let end_at = tail_start + end as u64;
    if end >= ZIP64_LOCATOR_LEN && tail[end - ZIP64_LOCATOR_LEN..end - 16] == ZIP64_LOCATOR_SIG {
        let loc = &tail[end - ZIP64_LOCATOR_LEN..end];
        // The disk with the ZIP64 end record, and the number of disks (some writers say 0).
        if le_u32(loc, 4) != 0 || le_u32(loc, 16) > 1 {
            return None;
        }
        let rec_at = le_u64(loc, 8);
        let mut rec = [0; ZIP64_END_LEN];
        read_exact_at(file, &mut rec, rec_at).ok()?;
        if rec[..4] != ZIP64_END_SIG || le_u32(&rec, 16) != 0 || le_u32(&rec, 20) != 0 {
            return None;
        }
        let rec_end = rec_at.checked_add(12)?.checked_add(le_u64(&rec, 4))?;
        let d = Directory {
            entries: le_u64(&rec, 32),
            size: le_u64(&rec, 40),
            start: le_u64(&rec, 48),
        };
        let fits = rec_end == end_at - ZIP64_LOCATOR_LEN as u64
            && d.start.checked_add(d.size)? == rec_at
            && le_u64(&rec, 24) == d.entries;
        return fits.then_some(d);
    }
    if le_u16(&tail, end + 4) != 0 || le_u16(&tail, end + 6) != 0 {
        return None;
    }
    let d = Directory {
        entries: u64::from(le_u16(&tail, end + 10)),
        size: u64::from(le_u32(&tail, end + 12)),
        start: u64::from(le_u32(&tail, end + 16)),
    };
    // Bytes before the archive, or between its directory and end record, are left to the zip
    // reader to make sense of.
    (d.start + d.size == end_at).then_some(d)
}

/// A directory record's sizes and local header offset (compressed, inflated, offset), taken
/// from its ZIP64 extra field where the record says so.
fn record_values(rec: &[u8]) -> Option<(u64, u64, u64)> {
    let mut compressed = u64::from(le_u32(rec, 20));
    let mut size = u64::from(le_u32(rec, 24));
    let mut local = u64::from(le_u32(rec, 42));
    let max = u64::from(u32::MAX);
    if [compressed, size, local].contains(&max) {
        // The ZIP64 field holds, in this order, only the values whose fields are all ones.
        let data = extra_fields(rec)?
            .into_iter()
            .find(|(id, _)| *id == ZIP64_EXTRA)?
            .1;
        let mut at = 0;
        let mut next = |v: &mut u64| -> Option<()> {
            if *v == max {
                *v = le_u64(data.get(at..at + 8)?, 0);
                at += 8;
            }
            Some(())
        };
        next(&mut size)?;
        next(&mut compressed)?;
        next(&mut local)?;
    }
    Some((compressed, size, local))
}

/// A directory record's extra fields, (id, data); None when they do not parse.
fn extra_fields(rec: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let name_len = usize::from(le_u16(rec, 28));
    let extra_len = usize::from(le_u16(rec, 30));
    let mut extra = rec.get(CENTRAL_LEN + name_len..CENTRAL_LEN + name_len + extra_len)?;
    let mut fields = Vec::new();
    while !extra.is_empty() {
        if extra.len() < 4 {
            return None;
        }
        let (id, n) = (le_u16(extra, 0), usize::from(le_u16(extra, 2)));
        fields.push((id, extra.get(4..4 + n)?));
        extra = &extra[4 + n..];
    }
    Some(fields)
}

/// The directory record of a member once stored at `at` with `size` bytes: method stored,
/// both sizes `size`, deflate's flags off, and a ZIP64 field of its own where a value needs
/// one. None when the record's extra fields do not parse or would not fit.
fn stored_record(rec: &[u8], size: u64, at: u64) -> Option<Vec<u8>> {
    let name_len = usize::from(le_u16(rec, 28));
    let extra_len = usize::from(le_u16(rec, 30));
    let comment = &rec[CENTRAL_LEN + name_len + extra_len..];
    let mut out = rec[..CENTRAL_LEN + name_len].to_vec();
    put_u16(&mut out, 8, le_u16(rec, 8) & !DEFLATE_ONLY_FLAGS);
    put_u16(&mut out, 10, 0);
    let mut zip64 = Vec::new();
    if size >= u64::from(u32::MAX) {
        put_u32(&mut out, 20, u32::MAX);
        put_u32(&mut out, 24, u32::MAX);
        zip64.extend_from_slice(&size.to_le_bytes());
        zip64.extend_from_slice(&size.to_le_bytes());
    } else {
        put_u32(&mut out, 20, size as u32);
        put_u32(&mut out, 24, size as u32);
    }
    if at >= u64::from(u32::MAX) {
        put_u32(&mut out, 42, u32::MAX);
        zip64.extend_from_slice(&at.to_le_bytes());
    } else {
        put_u32(&mut out, 42, at as u32);
    }
    // Disk number start: the one disk.
    put_u16(&mut out, 34, 0);
    let mut extra = Vec::new();
    for (id, data) in extra_fields(rec)? {
        if id != ZIP64_EXTRA {
            extra.extend_from_slice(&id.to_le_bytes());
            extra.extend_from_slice(&(data.len() as u16).to_le_bytes());
            extra.extend_from_slice(data);
        }
    }
    if !zip64.is_empty() {
        extra.extend_from_slice(&ZIP64_EXTRA.to_le_bytes());
        extra.extend_from_slice(&(zip64.len() as u16).to_le_bytes());
        extra.extend_from_slice(&zip64);
        put_u16(&mut out, 6, le_u16(rec, 6).max(ZIP64_VERSION));
    }
    put_u16(&mut out, 30, u16::try_from(extra.len()).ok()?);
    out.extend_from_slice(&extra);
    out.extend_from_slice(comment);
    Some(out)
}

/// The local header of a stored copy, from its new directory record: the same version,
/// flags, method, time, date, checksum and sizes, the name, and a ZIP64 field with both sizes
/// when they do not fit the header.
fn local_header(rec: &[u8], size: u64) -> Vec<u8> {
    let name_len = usize::from(le_u16(rec, 28));
    let mut local = Vec::with_capacity(LOCAL_LEN + name_len + 20);
    local.extend_from_slice(&LOCAL_SIG);
    local.extend_from_slice(&rec[6..28]);
    local.extend_from_slice(&(name_len as u16).to_le_bytes());
    let zip64 = size >= u64::from(u32::MAX);
    local.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
    local.extend_from_slice(&rec[CENTRAL_LEN..CENTRAL_LEN + name_len]);
    if zip64 {
        local.extend_from_slice(&ZIP64_EXTRA.to_le_bytes());
        local.extend_from_slice(&16u16.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
    }
    local
}

/// Appends the end records of a directory of `entries` records, `size` bytes, at `start`:
/// ZIP64 ones first when a value does not fit the classic record.
fn end_records(out: &mut Vec<u8>, entries: u64, size: u64, start: u64) {
    let max = u64::from(u32::MAX);
    let zip64 = entries >= u64::from(u16::MAX) || size >= max || start >= max;
    if zip64 {
        let rec_at = start + size;
        out.extend_from_slice(&ZIP64_END_SIG);
        out.extend_from_slice(&((ZIP64_END_LEN - 12) as u64).to_le_bytes());
        out.extend_from_slice(&ZIP64_VERSION.to_le_bytes());
        out.extend_from_slice(&ZIP64_VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&entries.to_le_bytes());
        out.extend_from_slice(&entries.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&ZIP64_LOCATOR_SIG);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&rec_at.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    let entries16 = entries.min(u64::from(u16::MAX)) as u16;
    out.extend_from_slice(&END_SIG);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entries16.to_le_bytes());
    out.extend_from_slice(&entries16.to_le_bytes());
    out.extend_from_slice(&(size.min(max) as u32).to_le_bytes());
    out.extend_from_slice(&(start.min(max) as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
}

/// What watches a member's bytes on their way to calamine.
enum Guard {
    Xml(Box<XmlGuard>),
    Bin(BinGuard),
}

/// Whether a member is one of an XLSB's record streams (`binguard`): the workbook, the
/// styles, the shared strings and the sheets (not the VBA project or printer settings).
fn xlsb_records(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".bin")
        && (name.starts_with("xl/worksheets/")
            || ["xl/workbook.bin", "xl/styles.bin", "xl/sharedstrings.bin"]
                .contains(&name.as_str()))
}

/// Whether a member is XML that calamine parses a text node at a time: those go through the
/// guard (`xmlguard`), stored or deflated.
fn guarded(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".xml") || name.ends_with(".rels")
}

/// The member of this directory record, when it is one to view: deflated (or stored XML, which
/// needs the guard), not encrypted, at least `min_bytes` inflated, and its data before the
/// directory.
fn inflatable(file: &File, rec: &[u8], dir_start: u64, min_bytes: u64) -> Option<Member> {
    let flags = le_u16(rec, 8);
    let method = le_u16(rec, 10);
    let name_len = usize::from(le_u16(rec, 28));
    let name = String::from_utf8_lossy(&rec[CENTRAL_LEN..CENTRAL_LEN + name_len]).into_owned();
    let (compressed, size, local) = record_values(rec)?;
    let deflated = match method {
        8 => true,
        0 if guarded(&name) && compressed == size => false,
        _ => return None,
    };
    // Some parts' cost is not their size (a few bytes of ODS can repeat a row a million
    // times; a shared strings tag can announce a billion strings): their guard must see
    // them, however small.
    let always = name == "content.xml" || name.to_ascii_lowercase().ends_with("sharedstrings.xml");
    if flags & 1 != 0 || (size < min_bytes && !always) {
        return None;
    }
    let mut head = [0; LOCAL_LEN];
    read_exact_at(file, &mut head, local).ok()?;
    if head[..4] != LOCAL_SIG {
        return None;
    }
    let data_start =
        local + LOCAL_LEN as u64 + u64::from(le_u16(&head, 26)) + u64::from(le_u16(&head, 28));
    if data_start.checked_add(compressed)? > dir_start {
        return None;
    }
    Some(Member {
        name,
        data_start,
        compressed,
        size,
        deflated,
        stream: None,
    })
}

impl Read for ZipView {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.parts.partition_point(|p| p.start <= self.pos) - 1;
        let end = self.parts.get(i + 1).map_or(self.len, |p| p.start);
        let room = (end - self.pos).min(buf.len() as u64) as usize;
        let off = self.pos - self.parts[i].start;
        let n = match &self.parts[i].kind {
            PartKind::File => read_at(&self.file, &mut buf[..room], self.pos)?,
            PartKind::Bytes(b) => {
                let off = off as usize;
                buf[..room].copy_from_slice(&b[off..off + room]);
                room
            }
            PartKind::Zeros => {
                buf[..room].fill(0);
                room
            }
            PartKind::Inflated(m) => {
                let m = &mut self.members[*m];
                if m.behind(off) {
                    m.stream = Some(m.start(&self.file, &self.cuts)?);
                    self.streams += 1;
                }
                m.read(off, &mut buf[..room])?
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for ZipView {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl Member {
    /// Whether reading from the member's offset `off` needs a new stream: there is none, or it
    /// is past `off`.
    fn behind(&self, off: u64) -> bool {
        match &self.stream {
            Some(s) => off < s.at + s.used as u64,
            None => true,
        }
    }

    /// Inflated bytes from the member's offset `off`, as many as fit in `buf` and are ready,
    /// taken from the stream (at or before `off`).
    fn read(&mut self, off: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some(s) = self.stream.as_mut() else {
            unreachable!("a stream is started before reading");
        };
        loop {
            let next = s.at + s.used as u64;
            if s.used == s.filled {
                if next >= self.size {
                    self.stream = None;
                    return Ok(0);
                }
                s.at += s.filled as u64;
                s.used = 0;
                s.filled = 0;
                let spent = std::mem::take(&mut s.chunk);
                if !spent.is_empty() {
                    let _ = s.spares.try_send(spent);
                }
                match s.rx.recv() {
                    Ok(Ok((chunk, filled))) => {
                        s.chunk = chunk;
                        s.filled = filled;
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{}: its inflating stopped at byte {next}", self.name),
                        ));
                    }
                }
                continue;
            }
            if next < off {
                // Skipped over: only in a reader that seeks forward within the member.
                s.used += ((off - next) as usize).min(s.filled - s.used);
                continue;
            }
            let n = buf.len().min(s.filled - s.used);
            buf[..n].copy_from_slice(&s.chunk[s.used..s.used + n]);
            s.used += n;
            if s.at + s.used as u64 >= self.size {
                self.stream = None;
            }
            return Ok(n);
        }
    }

    fn start(&self, file: &Arc<File>, cuts: &Arc<Cuts>) -> io::Result<Stream> {
        let (tx, rx) = sync_channel(CHUNKS_AHEAD);
        let (spares, spare) = sync_channel(CHUNKS_AHEAD + 1);
        let source = FileRange {
            file: Arc::clone(file),
            pos: self.data_start,
            end: self.data_start + self.compressed,
        };
        let (name, size, deflated) = (self.name.clone(), self.size, self.deflated);
        // XML parts are read by calamine a text node at a time: they go through the guard
        // that keeps every node bounded. XLSB parts are read a record at a time: watched.
        let guard = if guarded(&name) {
            Some(Guard::Xml(Box::new(XmlGuard::new(
                &name,
                size,
                cuts.clone(),
            ))))
        } else if xlsb_records(&name) {
            Some(Guard::Bin(BinGuard::new(&name, size, cuts.clone())))
        } else {
            None
        };
        std::thread::Builder::new()
            .name("inflate".into())
            .spawn(move || {
                let source = BufReader::with_capacity(64 << 10, source);
                let z: Box<dyn Read> = if deflated {
                    Box::new(flate2::bufread::DeflateDecoder::new(source))
                } else {
                    Box::new(source)
                };
                inflate(z, &name, size, guard, &tx, &spare)
            })?;
        Ok(Stream {
            at: 0,
            chunk: Vec::new(),
            filled: 0,
            used: 0,
            rx,
            spares,
        })
    }
}

/// The helper thread: inflates a member into chunks and sends them until it is done, fails, or
/// no one reads any more.
fn inflate(
    mut z: Box<dyn Read>,
    name: &str,
    size: u64,
    mut guard: Option<Guard>,
    tx: &SyncSender<Chunk>,
    spare: &Receiver<Vec<u8>>,
) {
    // With the XML guard, inflated bytes are filtered into a second buffer; what is sent can
    // be a few bytes shorter or longer than what was inflated, and is as long in all.
    let filters = matches!(guard, Some(Guard::Xml(_)));
    let mut raw = if filters {
        vec![0; CHUNK_BYTES]
    } else {
        Vec::new()
    };
    let mut done = 0u64;
    while done < size {
        let mut chunk = spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK_BYTES]);
        let want = (size - done).min(CHUNK_BYTES as u64) as usize;
        let mut filled = 0;
        let into = if filters { &mut raw } else { &mut chunk };
        while filled < want {
            match z.read(&mut into[filled..want]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(
                        e.kind(),
                        format!("{name}: its compressed data is damaged ({e})"),
                    )));
                    return;
                }
            }
        }
        done += filled as u64;
        if filled < want {
            let _ = tx.send(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: its compressed data ends after {done} of {size} bytes"),
            )));
            return;
        }
        match &mut guard {
            Some(Guard::Xml(g)) => {
                chunk.clear();
                let mut filtered = g.feed(&raw[..filled], &mut chunk);
                if filtered.is_ok() && done == size {
                    filtered = g.finish(&mut chunk);
                }
                if let Err(e) = filtered {
                    let _ = tx.send(Err(e));
                    return;
                }
                filled = chunk.len();
            }
            Some(Guard::Bin(g)) => {
                if let Err(e) = g.feed(&chunk[..filled]) {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
            None => {}
        }
        if tx.send(Ok((chunk, filled))).is_err() {
            return;
        }
    }
}

/// A range of a file, read by offset: the helper threads share the file without sharing a
/// cursor.
struct FileRange {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for FileRange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = (self.end - self.pos).min(buf.len() as u64) as usize;
        if room == 0 {
            return Ok(0);
        }
        let n = read_at(&self.file, &mut buf[..room], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

// Windows reads by offset too; it moves the file's cursor, which nothing here uses.
#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Text that deflates well but not trivially, `n` bytes of it.
    fn text(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 64);
        let mut i = 0u64;
        while out.len() < n {
            i += 1;
            let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            write!(out, "<c r=\"A{i}\" t=\"s\"><v>{x}</v></c>").unwrap();
        }
        out.truncate(n);
        out
    }

    /// An archive of these members (name, bytes, deflated?), as a file.
    fn archive(members: &[(&str, &[u8], bool)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut z = zip::ZipWriter::new(f.reopen().unwrap());
        for (name, body, deflated) in members {
            let method = if *deflated {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            let opts = zip::write::SimpleFileOptions::default().compression_method(method);
            z.start_file(*name, opts).unwrap();
            z.write_all(body).unwrap();
        }
        z.finish().unwrap();
        f
    }

    fn view(f: &tempfile::NamedTempFile, min: u64) -> Option<ZipView> {
        ZipView::new(f.reopen().unwrap(), min)
    }

    fn member(z: &mut zip::ZipArchive<ZipView>, name: &str) -> (zip::CompressionMethod, Vec<u8>) {
        let mut m = z.by_name(name).unwrap();
        let mut out = Vec::new();
        m.read_to_end(&mut out).unwrap();
        (m.compression(), out)
    }

    #[test]
    fn large_deflated_members_read_as_stored_with_the_same_bytes() {
        let big = text(1_500_000);
        let other = text(700_000);
        let f = archive(&[
            ("small.xml", b"<a>small</a>", true),
            ("big.xml", &big, true),
            ("stored.bin", &other[..5000], false),
            ("other.xml", &other, true),
        ]);
        use zip::CompressionMethod::{Deflated, Stored};
        let mut v = view(&f, 100_000).unwrap();
        // Twice, and in another order: opening the archive inflates nothing, and each member
        // read starts one stream, no more.
        for round in 1..=2 {
            let mut z = zip::ZipArchive::new(v).unwrap();
            assert_eq!(z.len(), 4);
            assert_eq!(member(&mut z, "other.xml"), (Stored, other.clone()));
            assert_eq!(member(&mut z, "big.xml"), (Stored, big.clone()));
            assert_eq!(
                member(&mut z, "small.xml"),
                (Deflated, b"<a>small</a>".to_vec())
            );
            assert_eq!(
                member(&mut z, "stored.bin"),
                (Stored, other[..5000].to_vec())
            );
            v = z.into_inner();
            assert_eq!(v.streams, 2 * round);
        }
        let mut z = zip::ZipArchive::new(v).unwrap();
        // Half a member, then the whole of it again.
        {
            let mut m = z.by_name("big.xml").unwrap();
            let mut half = vec![0; 600_000];
            m.read_exact(&mut half).unwrap();
            assert_eq!(half, big[..600_000]);
        }
        assert_eq!(member(&mut z, "big.xml").1, big);
    }

    #[test]
    fn the_view_reads_at_any_offset_forward_and_back() {
        let big = text(1_200_000);
        let f = archive(&[("big.xml", &big, true)]);
        let start = {
            let mut z = zip::ZipArchive::new(view(&f, 1000).unwrap()).unwrap();
            z.by_name("big.xml").unwrap().data_start().unwrap()
        };
        let mut v = view(&f, 1000).unwrap();
        let mut at = |off: usize, n: usize| {
            v.seek(SeekFrom::Start(start + off as u64)).unwrap();
            let mut buf = vec![0; n];
            v.read_exact(&mut buf).unwrap();
            buf
        };
        assert_eq!(at(10, 100), big[10..110]);
        assert_eq!(at(900_000, 5000), big[900_000..905_000]);
        assert_eq!(at(5, 300_000), big[5..300_005]);
        assert_eq!(at(1_199_990, 10), big[1_199_990..]);
    }

    #[test]
    fn archives_it_cannot_improve_are_read_as_they_are() {
        let big = text(200_000);
        // Members under the threshold, or stored already (and not XML, which is guarded).
        assert!(view(&archive(&[("a.xml", &big, true)]), 1 << 20).is_none());
        assert!(view(&archive(&[("a.bin", &big, false)]), 1000).is_none());
        // Not a zip; empty; cut short.
        let mut junk = tempfile::NamedTempFile::new().unwrap();
        junk.write_all(&big).unwrap();
        assert!(view(&junk, 1000).is_none());
        assert!(view(&tempfile::NamedTempFile::new().unwrap(), 1000).is_none());
        let whole = std::fs::read(archive(&[("a.xml", &big, true)]).path()).unwrap();
        let mut cut = tempfile::NamedTempFile::new().unwrap();
        cut.write_all(&whole[..whole.len() - 30]).unwrap();
        assert!(view(&cut, 1000).is_none());
    }

    #[test]
    fn damaged_compressed_data_is_an_error_naming_the_member() {
        let big = text(1_000_000);
        let f = archive(&[("xl/worksheets/sheet1.xml", &big, true)]);
        let mut bytes = std::fs::read(f.path()).unwrap();
        // The member's data starts after its 30-byte local header and name.
        let data = 30 + "xl/worksheets/sheet1.xml".len();
        for b in &mut bytes[data + 2000..data + 2400] {
            *b = 0xff;
        }
        std::fs::write(f.path(), &bytes).unwrap();
        let mut z = zip::ZipArchive::new(view(&f, 1000).unwrap()).unwrap();
        // The zip reader may meet the damage as it opens the member, or as it reads it.
        let e = match z.by_name("xl/worksheets/sheet1.xml") {
            Ok(mut m) => m.read_to_end(&mut Vec::new()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("xl/worksheets/sheet1.xml: its compressed data is damaged"),
            "{e}"
        );
    }

    #[test]
    fn damaged_headers_and_directories_never_panic() {
        let big = text(300_000);
        let f = archive(&[("a.xml", b"<a/>", true), ("big.xml", &big, true)]);
        let good = std::fs::read(f.path()).unwrap();
        let data_start = {
            let mut z = zip::ZipArchive::new(view(&f, 1000).unwrap()).unwrap();
            z.by_name("big.xml").unwrap().data_start().unwrap() as usize
        };
        // The big member's local header, and the directory and end record.
        let dir = good.len() - 22 - 2 * 46 - "a.xml".len() - "big.xml".len();
        let spots = (data_start - 40..data_start + 8).chain(dir..good.len());
        let mut viewed = 0;
        for i in spots {
            for b in [0x00, 0x7f, 0xff] {
                let mut bytes = good.clone();
                bytes[i] = b;
                std::fs::write(f.path(), &bytes).unwrap();
                let Some(v) = view(&f, 1000) else { continue };
                viewed += 1;
                let Ok(mut z) = zip::ZipArchive::new(v) else {
                    continue;
                };
                for n in 0..z.len() {
                    if let Ok(mut m) = z.by_index(n) {
                        let _ = m.read_to_end(&mut Vec::new());
                    }
                }
            }
        }
        assert!(viewed > 100, "{viewed}");
    }

    #[test]
    fn members_written_with_data_descriptors_are_viewed_too() {
        // A writer that cannot seek back puts sizes and checksum after the data (flag bit 3)
        // and zeros in the local header; the directory has the real ones.
        let big = text(400_000);
        let f = tempfile::NamedTempFile::new().unwrap();
        {
            let mut z = zip::ZipWriter::new_stream(f.reopen().unwrap());
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
            z.write_all(&big).unwrap();
            z.start_file("xl/workbook.xml", opts).unwrap();
            z.write_all(b"<workbook/>").unwrap();
            z.finish().unwrap();
        }
        let flags = le_u16(&std::fs::read(f.path()).unwrap(), 6);
        assert_eq!(flags & 0x0008, 0x0008, "the writer used a data descriptor");
        let mut z = zip::ZipArchive::new(view(&f, 1000).unwrap()).unwrap();
        let (method, body) = member(&mut z, "xl/worksheets/sheet1.xml");
        assert_eq!(
            (method, body == big),
            (zip::CompressionMethod::Stored, true)
        );
        assert_eq!(member(&mut z, "xl/workbook.xml").1, b"<workbook/>");
    }

    #[test]
    fn zip64_archives_and_stored_xml_are_viewed() {
        let big = text(400_000);
        let f = tempfile::NamedTempFile::new().unwrap();
        {
            let mut z = zip::ZipWriter::new(f.reopen().unwrap());
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            z.start_file("big.xml", opts).unwrap();
            z.write_all(&big).unwrap();
            let stored = opts.compression_method(zip::CompressionMethod::Stored);
            z.start_file("stored.xml", stored).unwrap();
            z.write_all(&big[..300_000]).unwrap();
            z.start_file("stored.bin", stored).unwrap();
            z.write_all(&big[..200_000]).unwrap();
            z.finish().unwrap();
        }
        let v = view(&f, 1000).expect("viewed");
        assert_eq!(v.members.len(), 2, "the XML members, not the binary one");
        let mut z = zip::ZipArchive::new(v).unwrap();
        assert_eq!(member(&mut z, "big.xml").1, big);
        assert_eq!(member(&mut z, "stored.xml").1, big[..300_000]);
        assert_eq!(member(&mut z, "stored.bin").1, big[..200_000]);
    }

    #[test]
    fn records_past_4_gib_get_zip64_fields_of_their_own() {
        // A record as a ZIP64 writer leaves it: sizes and offset all ones, the values in the
        // extra field (with another field before it, which is kept).
        let name = b"xl/worksheets/sheet1.xml";
        let mut rec = vec![0; CENTRAL_LEN];
        rec[..4].copy_from_slice(&CENTRAL_SIG);
        put_u16(&mut rec, 6, 20);
        put_u16(&mut rec, 10, 8);
        put_u32(&mut rec, 16, 0xdead_beef);
        put_u32(&mut rec, 20, u32::MAX);
        put_u32(&mut rec, 24, u32::MAX);
        put_u32(&mut rec, 42, u32::MAX);
        put_u16(&mut rec, 28, name.len() as u16);
        let mut extra = vec![0x55, 0x54, 1, 0, 7];
        extra.extend_from_slice(&ZIP64_EXTRA.to_le_bytes());
        extra.extend_from_slice(&24u16.to_le_bytes());
        for v in [6_000_000_000u64, 5_000_000, 123] {
            extra.extend_from_slice(&v.to_le_bytes());
        }
        put_u16(&mut rec, 30, extra.len() as u16);
        rec.extend_from_slice(name);
        rec.extend_from_slice(&extra);
        assert_eq!(record_values(&rec), Some((5_000_000, 6_000_000_000, 123)));

        // Stored at an offset past 4 GiB, with the same size: a new ZIP64 field.
        let new = stored_record(&rec, 6_000_000_000, 5_000_000_000).unwrap();
        assert_eq!(le_u16(&new, 10), 0, "stored");
        assert_eq!(le_u16(&new, 6), ZIP64_VERSION);
        assert_eq!(le_u32(&new, 16), 0xdead_beef, "checksum kept");
        assert_eq!(
            record_values(&new),
            Some((6_000_000_000, 6_000_000_000, 5_000_000_000))
        );
        let fields = extra_fields(&new).unwrap();
        assert_eq!(fields[0], (0x5455, &[7u8][..]), "other fields kept");
        assert_eq!(fields.len(), 2);
        // A small one needs none.
        let small = stored_record(&rec, 1000, 2000).unwrap();
        assert_eq!(record_values(&small), Some((1000, 1000, 2000)));
        assert_eq!(extra_fields(&small).unwrap().len(), 1);
        let local = local_header(&new, 6_000_000_000);
        assert_eq!(local.len(), LOCAL_LEN + name.len() + 20);
        assert_eq!(le_u64(&local, LOCAL_LEN + name.len() + 4), 6_000_000_000);

        // End records: classic while everything fits, ZIP64 ones before it when not.
        let mut end = Vec::new();
        end_records(&mut end, 3, 300, 1000);
        assert_eq!(end.len(), END_LEN);
        let mut end = Vec::new();
        end_records(&mut end, 3, 300, 5_000_000_000);
        assert_eq!(end.len(), ZIP64_END_LEN + ZIP64_LOCATOR_LEN + END_LEN);
        assert_eq!(le_u64(&end, 48), 5_000_000_000);
        assert_eq!(le_u64(&end, ZIP64_END_LEN + 8), 5_000_000_300);
    }

    #[test]
    fn an_archive_read_as_it_is_with_a_large_xml_part_is_refused() {
        let big = text(PLAIN_MAX_BYTES as usize + 10);
        let f = archive(&[("xl/worksheets/sheet1.xml", &big, true)]);
        // Data before the archive: the view leaves it to the zip reader.
        let mut bytes = b"MZ self-extracting stub".to_vec();
        bytes.extend(std::fs::read(f.path()).unwrap());
        let prefixed = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(prefixed.path(), &bytes).unwrap();
        assert!(view(&prefixed, 1000).is_none());
        let Err(e) = Archive::open(prefixed.path()) else {
            panic!("refused")
        };
        assert!(
            e.to_string()
                .starts_with("xl/worksheets/sheet1.xml is 16.0 MiB inflated, and this archive"),
            "{e}"
        );
    }
}
