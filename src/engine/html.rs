//! Report stage, for people: `report.html` in a run folder, one self-contained file (inline
//! CSS and SVG charts drawn by `plotters`, no script, font or image from elsewhere) that can be
//! mailed or attached to a ticket. It is also well-formed XML (void elements closed), so tests
//! and tools can read it with an XML parser. Reads only what `report` and `journal` wrote (summary.json,
//! failures.csv, journal.sqlite), streaming failures.csv into aggregates, so a report of a
//! million-row run stays small and is written in bounded memory. Written by `run` at the end
//! of every run and by `cmd::report` on demand.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::report::{FAILURES_FILE, SUMMARY_FILE};

pub const HTML_FILE: &str = "report.html";
/// Rows shown per failure reason (the rest are counted).
pub const ROWS_PER_REASON: usize = 20;
/// Failure reasons kept apart; rarer ones after these are counted together.
const MAX_REASONS: usize = 100;
/// Reasons and columns drawn in a chart (the tables under them list every kept one).
const CHART_BARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("{0}: {1}")]
    Read(PathBuf, String),
    #[error("{0}: cannot be written: {1}")]
    Write(PathBuf, std::io::Error),
}

/// One failure reason: the reason with the values that differ from row to row left out, how
/// many rows it failed, and the first of them (row number and the row's first cell).
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    pub stage: String,
    pub text: String,
    pub count: u64,
    pub rows: Vec<(String, String)>,
    /// The values the reason quotes (the offending cells), with how many rows had each; at
    /// most `VALUES_PER_REASON` different ones are counted.
    pub values: Vec<(String, u64)>,
}

/// Different quoted values counted per reason (a million different emails are not held).
const VALUES_PER_REASON: usize = 200;

/// What failures.csv says, in aggregate.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Failures {
    pub failed: u64,
    pub open: u64,
    /// Rows skipped on purpose (nothing to delete, a mapping's skip rule), by reason: shown
    /// apart from the failures.
    pub skipped: Vec<(String, u64)>,
    pub reasons: Vec<Reason>,
    /// Rows whose reason was not kept apart (beyond `MAX_REASONS` reasons).
    pub other: u64,
    pub by_column: BTreeMap<String, u64>,
    pub by_stage: BTreeMap<String, u64>,
    /// The input's first column (what identifies a row in the tables).
    pub key_column: String,
    /// The first rows of warnings.csv: row, field, value, warning.
    pub warnings: Vec<[String; 4]>,
}

/// How many warnings the page shows (warnings.csv has them all).
const WARNINGS_SHOWN: usize = 20;

/// The first warnings of `path` (warnings.csv), if it is there.
pub fn read_warnings(path: &Path) -> Vec<[String; 4]> {
    let Ok(mut r) = crate::fsx::open_text(path)
        .map(|f| csv::ReaderBuilder::new().flexible(true).from_reader(f))
    else {
        return Vec::new();
    };
    let Ok(header) = r.headers().cloned() else {
        return Vec::new();
    };
    let at = |name: &str| header.iter().position(|h| h == name);
    let cols = [at("_row"), at("_field"), at("_value"), at("_warning")];
    r.records()
        .take(WARNINGS_SHOWN)
        .filter_map(Result::ok)
        .map(|rec| {
            cols.map(|c| {
                crate::read::unescape_formula(c.and_then(|i| rec.get(i)).unwrap_or("")).to_string()
            })
        })
        .collect()
}

/// A failure text with its quoted values folded, so rows failing for one reason group
/// together: `no customer 'a@x' among …` and `no customer 'b@y' among …` are one reason.
pub fn reason_key(error: &str) -> String {
    reason_parts(error).0
}

/// `reason_key`, and the values it folded (the quoted ones, as written).
pub fn reason_parts(error: &str) -> (String, Vec<String>) {
    let mut values = Vec::new();
    let chars: Vec<char> = error.chars().collect();
    let word = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_alphanumeric())
    };
    let mut out = String::with_capacity(error.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A quote opens after a non-letter and closes before one; an apostrophe inside a word
        // (O'Brien's) is text.
        if c == '\'' && !word(i.checked_sub(1)) {
            let close = (i + 1..chars.len()).find(|&j| chars[j] == '\'' && !word(Some(j + 1)));
            if let Some(j) = close {
                out.push_str("'…'");
                values.push(chars[i + 1..j].iter().collect());
                i = j + 1;
                continue;
            }
        }
        // Numbers that name a row or an entity (row 400, ASSOCIATION: 999, long ids) differ
        // from row to row; others (5 to 20 digits, February 2026 has 28 days) are part of the
        // reason.
        if c.is_ascii_digit() && !word(i.checked_sub(1)) {
            let end = (i..chars.len())
                .find(|&j| !chars[j].is_ascii_digit())
                .unwrap_or(chars.len());
            let names = out.ends_with("row ") || out.ends_with(": ") || end - i >= 6;
            if !word(Some(end)) && names {
                out.push('N');
                i = end;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    (out, values)
}

/// Reads failures.csv row by row into aggregates (at most `MAX_REASONS` reasons with
/// `ROWS_PER_REASON` rows each are held).
pub fn read_failures(path: &Path) -> Result<Failures, HtmlError> {
    let mut f = Failures::default();
    if !path.exists() {
        return Ok(f);
    }
    let err = |e: &dyn std::fmt::Display| HtmlError::Read(path.to_path_buf(), e.to_string());
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(crate::fsx::open_text(path).map_err(|e| err(&e))?);
    let header = r.headers().map_err(|e| err(&e))?.clone();
    let at = |name: &str| header.iter().position(|h| h == name);
    let (Some(row_at), Some(stage_at), Some(field_at), Some(error_at)) =
        (at("_row"), at("_stage"), at("_field"), at("_error"))
    else {
        return Err(err(
            &"not a csmport failures.csv (no _row/_stage/_field/_error)",
        ));
    };
    f.key_column = crate::read::unescape_formula(header.get(0).unwrap_or("")).to_string();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| err(&e))?;
        let cell = |i: usize| crate::read::unescape_formula(rec.get(i).unwrap_or("")).to_string();
        let stage = cell(stage_at);
        if stage == super::report::OPEN_STAGE {
            f.open += 1;
            continue;
        }
        if stage == super::report::SKIPPED_STAGE {
            let why = cell(error_at);
            match f.skipped.iter().position(|(w, _)| *w == why) {
                Some(at) => f.skipped[at].1 += 1,
                None if f.skipped.len() < MAX_REASONS => f.skipped.push((why, 1)),
                None => {}
            }
            continue;
        }
        f.failed += 1;
        *f.by_stage.entry(stage.clone()).or_default() += 1;
        // A row failing on several cells names them all, separated by ';'.
        for field in cell(field_at)
            .split(';')
            .map(str::trim)
            .filter(|x| !x.is_empty())
        {
            *f.by_column.entry(field.to_string()).or_default() += 1;
        }
        // A row failing on several cells has one message per cell, joined by " | ": each
        // counts under its own reason (Bronze is one more bad Customer Tier, whatever else
        // its row got wrong).
        let error = cell(error_at);
        let cells = cell(field_at)
            .split(';')
            .filter(|x| !x.trim().is_empty())
            .count();
        let parts: Vec<&str> = match error.split(" | ").collect::<Vec<_>>() {
            p if cells > 1 && p.len() == cells => p,
            _ => vec![error.as_str()],
        };
        for part in parts {
            let (text, quoted) = reason_parts(part);
            let key = (stage.clone(), text);
            let k = match index.get(&key) {
                Some(&k) => k,
                None if f.reasons.len() < MAX_REASONS => {
                    f.reasons.push(Reason {
                        stage: stage.clone(),
                        text: key.1.clone(),
                        count: 0,
                        rows: Vec::new(),
                        values: Vec::new(),
                    });
                    index.insert(key, f.reasons.len() - 1);
                    f.reasons.len() - 1
                }
                None => {
                    f.other += 1;
                    continue;
                }
            };
            let reason = &mut f.reasons[k];
            reason.count += 1;
            for v in quoted {
                match reason.values.iter().position(|(x, _)| *x == v) {
                    Some(at) => reason.values[at].1 += 1,
                    None if reason.values.len() < VALUES_PER_REASON => reason.values.push((v, 1)),
                    None => {}
                }
            }
            if reason.rows.len() < ROWS_PER_REASON {
                let first = if row_at == 0 { String::new() } else { cell(0) };
                reason.rows.push((cell(row_at), first));
            }
        }
    }
    f.reasons.sort_by_key(|r| std::cmp::Reverse(r.count));
    for r in &mut f.reasons {
        // Most common first; ties in the order met.
        r.values.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    }
    Ok(f)
}

/// What the journal says of the run's pace: rows confirmed over time, task slots in use,
/// the waits, and how long tasks took. Seconds from the run's first attempt.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Timeline {
    /// (seconds, rows confirmed so far), at each chunk's end.
    pub confirmed: Vec<(f64, u64)>,
    /// (start, end) of each task.
    pub tasks: Vec<(f64, f64)>,
    /// (seconds, what): 429s and refusals for want of a task slot.
    pub waits: Vec<(f64, String)>,
    /// (interrupted, resumed): the gaps between one attempt's end and the next one's start.
    pub breaks: Vec<(f64, f64)>,
}

impl Timeline {
    /// The confirmed-rows line with each gap held flat: nothing was confirmed while the run
    /// was stopped, so the line must not climb across it.
    pub fn line(&self) -> Vec<(f64, u64, &'static str)> {
        let mut out = Vec::with_capacity(self.confirmed.len() + 2 * self.breaks.len());
        let mut breaks = self.breaks.iter().peekable();
        let mut total = 0;
        for &(s, n) in &self.confirmed {
            while let Some(&&(stop, go)) = breaks.peek() {
                if stop > s {
                    break;
                }
                out.push((stop, total, "interrupted"));
                out.push((go.max(stop), total, "resumed"));
                breaks.next();
            }
            out.push((s, n, ""));
            total = n;
        }
        for &(stop, go) in breaks {
            out.push((stop, total, "interrupted"));
            out.push((go.max(stop), total, "resumed"));
        }
        out
    }
}

fn seconds(t: &str) -> Option<f64> {
    let ts: jiff::Timestamp = t.parse().ok()?;
    Some(ts.as_millisecond() as f64 / 1000.0)
}

/// Reads the timeline from journal.sqlite (read-only); none without a journal.
pub fn read_timeline(dir: &Path) -> Timeline {
    let path = dir.join(super::journal::JOURNAL_FILE);
    let Ok(c) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Timeline::default();
    };
    let rows = |sql: &str| -> Vec<(String, String, i64)> {
        let Ok(mut s) = c.prepare(sql) else {
            return Vec::new();
        };
        s.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            ))
        })
        .map(|it| it.flatten().collect())
        .unwrap_or_default()
    };
    let tasks = rows(
        "SELECT MIN(a.at), b.updated_at, 0 FROM batches b JOIN attempts a ON a.batch = b.id \
         WHERE b.task_id IS NOT NULL GROUP BY b.id",
    );
    // Every row with an outcome (blank rows aside), at the time its chunk was done or, in a
    // chunk an interruption left open, when its last batch settled: chunks are done in
    // order, so counting done chunks alone misses rows confirmed past an open one.
    let closed = rows(
        "SELECT COALESCE(c.updated_at, (SELECT MAX(b.updated_at) FROM batches b WHERE b.seq = r.seq), ''), \
         '', COUNT(*) FROM rows r LEFT JOIN chunks c ON c.seq = r.seq AND c.done = 1 \
         WHERE r.outcome != 'skipped' GROUP BY r.seq",
    );
    let first = rows("SELECT MIN(at), '', 0 FROM attempts")
        .first()
        .and_then(|r| seconds(&r.0))
        .unwrap_or(0.0);
    let rel = |t: &str| seconds(t).map(|s| (s - first).max(0.0));
    let tasks: Vec<(f64, f64)> = tasks
        .iter()
        .filter_map(|(a, b, _)| Some((rel(a)?, rel(b)?)))
        .collect();
    let mut at: Vec<(Option<f64>, u64)> = closed
        .iter()
        .map(|(t, _, n)| (rel(t), (*n).max(0) as u64))
        .collect();
    // Rows with no time of their own (local failures in a chunk left open) at the end.
    let end = at
        .iter()
        .filter_map(|a| a.0)
        .chain(tasks.iter().map(|t| t.1))
        .fold(0.0f64, f64::max);
    at.sort_by(|a, b| a.0.unwrap_or(end).total_cmp(&b.0.unwrap_or(end)));
    let mut total = 0;
    let confirmed = at
        .into_iter()
        .map(|(s, n)| {
            total += n;
            (s.unwrap_or(end), total)
        })
        .collect();
    Timeline {
        confirmed,
        breaks: read_breaks(&dir.join(SUMMARY_FILE))
            .into_iter()
            .filter_map(|(a, b)| Some((rel(&a)?, rel(&b)?)))
            .collect(),
        tasks,
        waits: read_waits(&dir.join(super::run::LOG_FILE))
            .into_iter()
            .filter_map(|(t, what)| Some((rel(&t)?, what)))
            .collect(),
    }
}

/// Where one attempt of the run ended and the next began, from summary.json's `attempts`.
fn read_breaks(summary: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(summary) else {
        return Vec::new();
    };
    let Ok(s) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let attempts: Vec<&serde_json::Value> = s
        .get("attempts")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let field =
        |a: &serde_json::Value, k: &str| a.get(k).and_then(|v| v.as_str()).map(String::from);
    attempts
        .windows(2)
        .filter_map(|w| {
            let go = field(w[1], "started_at")?;
            // A killed attempt has no end recorded: the gap is drawn from its last sign of life.
            let stop = field(w[0], "finished_at").unwrap_or_else(|| go.clone());
            Some((stop, go))
        })
        .collect()
}

/// Waits kept for the chart; a run that waited more often is drawn from its first ones.
const MAX_WAITS: usize = 10_000;

/// The run log's waits, read line by line: answers of 429 (the rate limit) and refusals for
/// want of a task slot, each with its time.
fn read_waits(log: &Path) -> Vec<(String, String)> {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(log) else {
        return Vec::new();
    };
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("HTTP 429") || l.contains("task slots full"))
        .filter_map(|l| {
            let (t, what) = l.split_once(' ')?;
            Some((t.to_string(), short(what, 300)))
        })
        .take(MAX_WAITS)
        .collect()
}

/// Median, p90 and max of the tasks' durations, in seconds.
pub fn task_durations(tasks: &[(f64, f64)]) -> Option<[f64; 3]> {
    let mut d: Vec<f64> = tasks.iter().map(|(a, b)| (b - a).max(0.0)).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    Some([at(0.5), at(0.9), d[d.len() - 1]])
}

/// Tasks running at each moment a task starts or ends: (seconds, tasks).
pub fn occupancy(tasks: &[(f64, f64)]) -> Vec<(f64, u64)> {
    let mut edges: Vec<(f64, i64)> = tasks.iter().flat_map(|&(a, b)| [(a, 1), (b, -1)]).collect();
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut n = 0i64;
    edges
        .into_iter()
        .map(|(t, d)| {
            n += d;
            (t, n.max(0) as u64)
        })
        .collect()
}

/// Text for HTML (element content and attribute values).
/// Control characters are shown as escapes: XML has no place for most of them, and the page
/// must stay well-formed whatever a cell or a server's message holds.
pub fn esc(s: &str) -> String {
    let s = csmport_api::text::one_line(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn short(s: &str, n: usize) -> String {
    let s = &csmport_api::text::one_line(s);
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn<'a> = Result<(), Box<dyn std::error::Error + 'a>>;

/// An SVG drawn by `draw`; empty when plotters cannot draw it (the table under it stays).
fn svg(size: (u32, u32), draw: impl for<'a> FnOnce(&Area<'a>) -> Drawn<'a>) -> String {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        draw(&root).is_ok() && root.present().is_ok()
    };
    if !drawn {
        out.clear();
    }
    out
}

/// A bar chart (SVG) of `bars` (label, value); labels are escaped by the SVG backend.
fn bar_chart(title: &str, bars: &[(String, u64)]) -> String {
    // The caption, the axis and the margins take about 70 px whatever the bars: below that a
    // one-bar chart's bar is a hairline.
    let height = 90 + 30 * bars.len().max(1) as u32;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    svg((720, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(220)
            .build_cartesian_2d(0u64..max + max / 10 + 1, (0..bars.len()).into_segmented())?;
        // The first bar on top: segment n-1 is drawn highest.
        let n = bars.len();
        let labels: Vec<String> = bars.iter().rev().map(|b| short(&b.0, 34)).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(6)
            .light_line_style(TRANSPARENT)
            .y_labels(n.max(1))
            .y_label_style(("sans-serif", 13))
            .x_label_style(("sans-serif", 12))
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        // Rectangles in the bars' order (a histogram series draws in hash order): the same
        // run gives the same page, byte for byte.
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let k = n - 1 - i;
            let mut bar = Rectangle::new(
                [
                    (0, SegmentValue::Exact(k)),
                    (*v, SegmentValue::Exact(k + 1)),
                ],
                RGBColor(0x2f, 0x6f, 0xb5).filled(),
            );
            bar.set_margin(5, 5, 0, 0);
            bar
        }))?;
        Ok(())
    })
}

/// Points drawn per series at most: a million-row run's chart stays as small as a short one's.
const MAX_POINTS: usize = 400;

/// Every k-th point and the last, at most `MAX_POINTS`.
fn thin<T: Copy>(v: &[T]) -> Vec<T> {
    let step = v.len().div_ceil(MAX_POINTS).max(1);
    let mut out: Vec<T> = v.iter().copied().step_by(step).collect();
    if step > 1
        && let Some(&last) = v.last()
    {
        out.push(last);
    }
    out
}

/// Rows confirmed over time (line), the task slots in use beneath it (steps) and the waits
/// (marks on the time axis).
fn timeline_chart(t: &Timeline) -> String {
    let end = t
        .confirmed
        .iter()
        .map(|c| c.0)
        .chain(t.tasks.iter().map(|x| x.1))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let rows = t.confirmed.last().map_or(1, |c| c.1).max(1);
    let occ = occupancy(&t.tasks);
    let slots = occ.iter().map(|o| o.1).max().unwrap_or(0).max(1);
    svg((720, 360), |root| {
        let (top, bottom) = root.split_vertically(240);
        let mut a = ChartBuilder::on(&top)
            .caption("Rows confirmed over time", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(20)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0u64..rows + rows / 10 + 1)?;
        a.configure_mesh()
            .light_line_style(TRANSPARENT)
            .y_desc("rows")
            .draw()?;
        let top_y = rows + rows / 10 + 1;
        // Each time the run stood still, shaded and named.
        for &(stop, go) in &t.breaks {
            a.draw_series(std::iter::once(Rectangle::new(
                [(stop, 0), (go.max(stop + end / 400.0), top_y)],
                RGBColor(0xdd, 0xdd, 0xdd).filled(),
            )))?;
            a.draw_series(std::iter::once(Text::new(
                "interrupted, resumed",
                (stop, top_y - top_y / 20),
                ("sans-serif", 11),
            )))?;
        }
        let line: Vec<(f64, u64)> = t.line().into_iter().map(|(s, n, _)| (s, n)).collect();
        a.draw_series(LineSeries::new(
            std::iter::once((0.0, 0)).chain(thin(&line)),
            RGBColor(0x2f, 0x6f, 0xb5).stroke_width(2),
        ))?;
        let waits: Vec<f64> = t.waits.iter().map(|w| w.0).collect();
        a.draw_series(
            thin(&waits)
                .into_iter()
                .map(|s| PathElement::new(vec![(s, 0), (s, rows / 12 + 1)], RED.stroke_width(2))),
        )?;
        let mut b = ChartBuilder::on(&bottom)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0u64..slots + 1)?;
        b.configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("seconds")
            .y_desc("tasks")
            .draw()?;
        let mut steps = vec![(0.0, 0u64)];
        for &(s, n) in &occ {
            let last = steps.last().map_or(0, |p| p.1);
            steps.push((s, last));
            steps.push((s, n));
        }
        b.draw_series(LineSeries::new(thin(&steps), RGBColor(0x8a, 0x5a, 0x00)))?;
        Ok(())
    })
}

/// How many columns not imported the page lists (a hostile file can have a hundred thousand).
const COLUMNS_LISTED: usize = 200;

/// The input's columns: how many were imported, and a table of those that were not, with why
/// and a few of their values.
fn columns_section(out: &mut String, s: &serde_json::Value) {
    let Some(cols) = s["columns"].as_array().filter(|c| !c.is_empty()) else {
        return;
    };
    let status = |c: &serde_json::Value, want: &str| c["status"].as_str() == Some(want);
    let left: Vec<&serde_json::Value> = cols
        .iter()
        .filter(|c| status(c, crate::map::NOT_IMPORTED))
        .collect();
    let imported = cols
        .iter()
        .filter(|c| status(c, crate::map::IMPORTED))
        .count();
    let filters = cols
        .iter()
        .filter(|c| status(c, crate::map::FILTER))
        .count();
    let _ = write!(
        out,
        "<h2>Columns</h2><p>{} columns: {imported} imported, {filters} read by skip rules, {} not imported.</p>",
        cols.len(),
        left.len()
    );
    if left.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = left
        .iter()
        .take(COLUMNS_LISTED)
        .map(|c| {
            let examples: Vec<&str> = c["examples"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            vec![
                c["column"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
                examples.join(" · "),
            ]
        })
        .collect();
    let caption = if left.len() > COLUMNS_LISTED {
        format!(
            "Columns not imported (the first {COLUMNS_LISTED} of {}; summary.json has them all)",
            left.len()
        )
    } else {
        "Columns not imported".to_string()
    };
    table(out, &caption, &["column", "why", "example values"], &rows);
}

fn table(out: &mut String, caption: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<table><caption>{}</caption><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn figure(out: &mut String, svg: &str, alt: &str) {
    if svg.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<figure role=\"img\" aria-label=\"{}\">{svg}</figure>",
        esc(alt)
    );
}

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--muted:#5b5b5b;--line:#d0d0d0;--ok:#1e7d32;--bad:#b3261e;--warn:#8a5a00}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--bg:#161616;--muted:#a8a8a8;--line:#3a3a3a;--ok:#7bd88f;--bad:#ff8a80;--warn:#ffcc66}
figure svg{background:#f4f4f4;border-radius:4px}}
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg);max-width:60rem;margin:1.5rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid var(--line)}
.outcome{font-size:1.15rem;padding:.6rem .8rem;border-left:6px solid var(--ok);background:color-mix(in srgb,var(--ok) 10%,transparent)}
.reasons td:nth-child(-n+2),.reasons th:nth-child(-n+2){white-space:nowrap}.reasons td:nth-child(4){width:32%}
.outcome.bad{border-color:var(--bad);background:color-mix(in srgb,var(--bad) 10%,transparent)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}caption{text-align:left;color:var(--muted);padding:.2rem 0}
th,td{border-bottom:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
td.n,th.n{text-align:right}figure{margin:.5rem 0}figure svg{max-width:100%;height:auto}
.muted{color:var(--muted)}
@media print{@page{size:auto;margin:14mm}body{max-width:none;margin:0;font-size:10.5pt;color:#000;background:#fff}
h2{break-after:avoid}figure,table{break-inside:avoid}figure svg{background:none}}
";

/// What a summary's exit code means (the README's table).
fn exit_meaning(code: i64) -> &'static str {
    match code {
        0 => "every row succeeded (or was already on the site)",
        1 => "some rows failed or were skipped: see the reasons below",
        2 => "the run was refused (usage, file or configuration)",
        3 => "authentication or the network failed",
        4 => "interrupted: rows are left open for `csmport resume`",
        _ => "see the README's exit codes",
    }
}

/// Writes `dir/report.html` from what the folder holds; its path.
pub fn write(dir: &Path) -> Result<PathBuf, HtmlError> {
    let summary_path = dir.join(SUMMARY_FILE);
    let text = std::fs::read_to_string(&summary_path)
        .map_err(|e| HtmlError::Read(summary_path.clone(), e.to_string()))?;
    let s: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| HtmlError::Read(summary_path.clone(), e.to_string()))?;
    let html = if s.get("steps").is_some() {
        render_plan(&s)
    } else {
        let mut failures = read_failures(&dir.join(FAILURES_FILE))?;
        failures.warnings = read_warnings(&dir.join(super::report::WARNINGS_FILE));
        let timeline = read_timeline(dir);
        render(&s, &failures, &timeline)
    };
    let path = dir.join(HTML_FILE);
    crate::fsx::write_private(&path, html.as_bytes())
        .map_err(|e| HtmlError::Write(path.clone(), e))?;
    Ok(path)
}

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"/><title>csmport: {}</title><style>{STYLE}</style></head><body>",
        esc(title)
    );
}

/// A plan's page: one line per step, in the order they ran (the dependency order), each with
/// its counts and the folder holding its own report.html.
pub fn render_plan(s: &serde_json::Value) -> String {
    let steps = s["steps"].as_array().cloned().unwrap_or_default();
    let code = s["exit_code"].as_i64().unwrap_or(0);
    let step_n = |st: &serde_json::Value, k: &str| st["summary"][k].as_u64().unwrap_or(0);
    let total = |k: &str| steps.iter().map(|st| step_n(st, k)).sum::<u64>();
    let mut out = String::with_capacity(32 * 1024);
    head(&mut out, "migration plan");
    out.push_str(
        "<header><p class=\"muted\">csmport run report</p><h1>Migration plan</h1></header>",
    );
    let _ = write!(
        out,
        "<p class=\"outcome{}\"><strong>{} rows</strong> = {} succeeded + {} failed + {} skipped in {} steps · exit {code}: {}</p>",
        if code == 0 { "" } else { " bad" },
        total("rows"),
        total("succeeded"),
        total("failed"),
        total("skipped"),
        steps.len(),
        esc(exit_meaning(code))
    );
    let _ = write!(
        out,
        "<dl><dt>Run folder</dt><dd>{}</dd></dl>",
        esc(s["run_dir"].as_str().unwrap_or(""))
    );
    out.push_str("<h2>Steps, in the order they ran</h2>");
    let bars: Vec<(String, u64)> = steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            (
                format!("{} {}", i + 1, st["kind"].as_str().unwrap_or("")),
                step_n(st, "failed"),
            )
        })
        .collect();
    figure(
        &mut out,
        &bar_chart("Failed rows per step", &bars),
        "Bar chart of failed rows per step; the table below has every step",
    );
    let rows: Vec<Vec<String>> = steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let txt = |k: &str| st[k].as_str().unwrap_or("").to_string();
            vec![
                (i + 1).to_string(),
                txt("kind"),
                txt("file"),
                step_n(st, "rows").to_string(),
                step_n(st, "succeeded").to_string(),
                step_n(st, "failed").to_string(),
                step_n(st, "skipped").to_string(),
                st["exit_code"].as_i64().unwrap_or(0).to_string(),
                if st["error"].is_string() {
                    txt("error")
                } else {
                    format!("{}/{HTML_FILE}", txt("run_dir"))
                },
            ]
        })
        .collect();
    table(
        &mut out,
        "Steps (each folder has its own report)",
        &[
            "#",
            "kind",
            "file",
            "rows",
            "succeeded",
            "failed",
            "skipped",
            "exit",
            "report or error",
        ],
        &rows,
    );
    out.push_str(FOOTER);
    out
}

/// An export's page (`export --report FILE`): rows per kind, where customers were found, the
/// listings left out, and the file written with its SHA-256.
pub fn render_export(s: &serde_json::Value, target: &str) -> String {
    let code = s["exit_code"].as_i64().unwrap_or(0);
    let rows: Vec<(String, u64)> = s["rows"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, "export");
    out.push_str("<header><p class=\"muted\">csmport run report</p><h1>Export</h1></header>");
    let _ = write!(
        out,
        "<p class=\"outcome{}\"><strong>{total} rows</strong> exported · exit {code}: {}</p><dl>",
        if code == 0 { "" } else { " bad" },
        if code == 0 {
            "every row the site holds is in the file"
        } else {
            "some --ids are not on the site (listed below)"
        }
    );
    let mut item = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
        }
    };
    item("File", s["out"].as_str().unwrap_or("").to_string());
    item(
        "Written",
        s["written_at"]
            .as_str()
            .map(|t| format!("{} UTC", t.trim_end_matches('Z').replace('T', " ")))
            .unwrap_or_default(),
    );
    item("Format", s["format"].as_str().unwrap_or("").to_string());
    item("SHA-256", s["sha256"].as_str().unwrap_or("").to_string());
    item("Source", target.to_string());
    item(
        "Duration",
        s["elapsed_s"]
            .as_f64()
            .map(|e| format!("{e:.1} s"))
            .unwrap_or_default(),
    );
    out.push_str("</dl><h2>Rows per kind</h2>");
    figure(
        &mut out,
        &bar_chart("Rows per kind", &rows),
        "Bar chart of rows per kind; the table below has the numbers",
    );
    table(
        &mut out,
        "Rows per kind",
        &["kind", "rows"],
        &rows
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect::<Vec<_>>(),
    );
    if let Some(sources) = s["customer_sources"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("<h2>Where customers were found</h2>");
        table(
            &mut out,
            "Customers per source (one customer may be in several)",
            &["source", "customers"],
            &sources
                .iter()
                .map(|x| {
                    vec![
                        x["source"].as_str().unwrap_or("").to_string(),
                        x["customers"].to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    for (key, caption) in [
        (
            "skipped_sources",
            "Listings that could not be read (--allow-partial): customers only they hold are missing",
        ),
        ("unknown_ids", "--ids the site does not have"),
    ] {
        if let Some(list) = s[key].as_array().filter(|a| !a.is_empty()) {
            let _ = write!(out, "<h2>{}</h2>", esc(caption));
            table(
                &mut out,
                caption,
                &[""],
                &list
                    .iter()
                    .take(200)
                    .map(|x| vec![x.as_str().unwrap_or("").to_string()])
                    .collect::<Vec<_>>(),
            );
        }
    }
    out.push_str("<footer><p class=\"muted\">Written by csmport export --report.</p></footer></body></html>\n");
    out
}

const FOOTER: &str = "<footer><p class=\"muted\">Written by csmport from the run folder (summary.json, failures.csv, journal.sqlite); `csmport report RUN_DIR` writes it again.</p></footer></body></html>\n";

/// What a delete leaves to undo it: the backup, the command that puts it back, and what
/// that command cannot put back.
fn delete_section(out: &mut String, s: &serde_json::Value) {
    out.push_str("<h2>Undo</h2>");
    let Some(backup) = s["backup"].as_str() else {
        out.push_str("<p class=\"bad\">summary.json names no backup: look for backup.csv or backup.xlsx in the run folder before deleting more.</p>");
        return;
    };
    let kind = s["kind"].as_str().unwrap_or("KIND");
    let _ = write!(
        out,
        "<p>Everything this run deleted was read first and written to <code>{}</code>. To put it back:</p><pre>csmport import {} {}</pre>",
        esc(backup),
        esc(kind),
        esc(backup)
    );
    let lost: Vec<String> = s["not_restorable"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if lost.is_empty() {
        out.push_str("<p>An import of the backup puts back everything the backup holds (under new ids where the site gives them).</p>");
    } else {
        table(
            out,
            "What an import of the backup cannot put back",
            &[""],
            &lost.into_iter().map(|l| vec![l]).collect::<Vec<_>>(),
        );
    }
}

/// The page, from a summary.json (an import's, or a validation's with `valid`) and the
/// aggregates.
pub fn render(s: &serde_json::Value, f: &Failures, t: &Timeline) -> String {
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let txt = |k: &str| s[k].as_str().unwrap_or("").to_string();
    let validation = s.get("valid").is_some();
    let kind = txt("kind");
    let verb = match (validation, s["operation"].as_str()) {
        (true, _) => "Validation of",
        (false, Some("delete")) => "Delete of",
        _ => "Import of",
    };
    let code = s["exit_code"].as_i64().unwrap_or(0);
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, &format!("{} {kind}", verb.to_lowercase()));
    let _ = write!(
        out,
        "<header><p class=\"muted\">csmport run report</p><h1>{verb} {}</h1></header>",
        esc(&kind)
    );
    let ok_word = if validation { "valid" } else { "succeeded" };
    let _ = write!(
        out,
        "<p class=\"outcome{}\"><strong>{}</strong> = {} {ok_word} + {} failed + {} skipped{}{} · exit {code}: {}</p>",
        if code == 0 { "" } else { " bad" },
        super::report::count(n("rows"), "row"),
        n("succeeded"),
        n("failed"),
        n("skipped"),
        if n("open") > 0 {
            format!(" ({} open, for `csmport resume`)", n("open"))
        } else {
            String::new()
        },
        match s["unchanged"].as_u64() {
            Some(u) if u > 0 => format!(" · {u} unchanged (already on the site)"),
            _ => String::new(),
        },
        esc(match code {
            0 if n("skipped") > 0 => "no row failed; the skipped ones are listed below",
            _ => exit_meaning(code),
        })
    );
    out.push_str("<dl>");
    let mut item = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
        }
    };
    item("Input", txt("input"));
    let d = &s["dialect"];
    item(
        "Read as",
        [
            d["format"].as_str(),
            d["encoding"].as_str(),
            d["delimiter"].as_str().map(|x| x.to_string()).as_deref(),
            d["sheet"].as_str(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
            + &d["header_row"]
                .as_u64()
                .map(|h| format!(" · header row {h}"))
                .unwrap_or_default(),
    );
    item("Rows taken", txt("row_range"));
    // The target line names the site and cloud id only: summary.json never holds a credential.
    item("Target", txt("target"));
    item(
        "Started",
        [txt("started_at"), txt("finished_at")]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(" → "),
    );
    item(
        "Duration",
        s["elapsed_s"]
            .as_f64()
            .map(|e| {
                format!(
                    "{e:.1} s ({} rows/s)",
                    s["rows_per_s"].as_f64().unwrap_or(0.0)
                )
            })
            .unwrap_or_default(),
    );
    item(
        "Requests",
        if validation {
            String::new()
        } else {
            format!("{} requests, {} tasks", n("batches"), n("tasks"))
        },
    );
    item("Run folder", txt("run_dir"));
    item("Backup", txt("backup"));
    out.push_str("</dl>");
    if let Some(notes) = d["notes"].as_array().filter(|a| !a.is_empty()) {
        out.push_str("<h2>What the reader noticed</h2><ul>");
        for note in notes.iter().filter_map(|x| x.as_str()) {
            let _ = write!(out, "<li>{}</li>", esc(note));
        }
        out.push_str("</ul>");
    }

    columns_section(&mut out, s);

    out.push_str("<h2>Outcomes</h2>");
    let mut outcomes: Vec<(String, u64)> = vec![
        (ok_word.to_string(), n("succeeded")),
        ("failed".into(), n("failed")),
        ("skipped".into(), n("skipped") - n("open").min(n("skipped"))),
        ("open".into(), n("open")),
    ];
    if let Some(stages) = s["failed_by_stage"].as_object() {
        for (stage, v) in stages {
            outcomes.push((format!("failed at {stage}"), v.as_u64().unwrap_or(0)));
        }
    }
    let drawn: Vec<(String, u64)> = outcomes
        .iter()
        .filter(|(k, v)| *v > 0 || !k.starts_with("failed at"))
        .cloned()
        .collect();
    figure(
        &mut out,
        &bar_chart("Rows by outcome", &drawn),
        "Bar chart of rows by outcome; the table below has the numbers",
    );
    table(
        &mut out,
        "Rows by outcome",
        &["outcome", "rows"],
        &outcomes
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect::<Vec<_>>(),
    );

    let warned = s["warnings"].as_u64().unwrap_or(0);
    if warned > 0 {
        let _ = write!(
            out,
            "<h2>Values left out</h2><p>{warned} invalid values were left out of their rows, which went on without them (the column's invalid values are set to be left blank); warnings.csv lists them all.</p>"
        );
        let rows: Vec<Vec<String>> = f.warnings.iter().map(|w| w.to_vec()).collect();
        table(
            &mut out,
            "The first values left out",
            &["row", "field", "value", "why"],
            &rows,
        );
    }

    if f.failed > 0 {
        out.push_str("<h2>Why rows failed</h2>");
        let bars: Vec<(String, u64)> = f
            .reasons
            .iter()
            .take(CHART_BARS)
            .map(|r| (r.text.clone(), r.count))
            .collect();
        figure(
            &mut out,
            &bar_chart("Top failure reasons", &bars),
            "Bar chart of the most frequent failure reasons; the table below lists them",
        );
        let key = if f.key_column.is_empty() {
            "first cell".to_string()
        } else {
            f.key_column.clone()
        };
        out.push_str("<table class=\"reasons\"><caption>Failure reasons, most frequent first (a row failing on several cells counts under each of its reasons), with the values they name most often and the first rows each hit</caption><thead><tr><th scope=\"col\">rows</th><th scope=\"col\">stage</th><th scope=\"col\">reason</th><th scope=\"col\">most common values</th><th scope=\"col\">first rows (row: ");
        out.push_str(&esc(&key));
        out.push_str(")</th></tr></thead><tbody>");
        for r in &f.reasons {
            let shown: Vec<String> = r
                .rows
                .iter()
                .map(|(row, first)| format!("{row}: {first}"))
                .collect();
            let more = r.count.saturating_sub(r.rows.len() as u64);
            let _ = write!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                r.count,
                esc(&r.stage),
                esc(&r.text),
                r.values
                    .iter()
                    .take(5)
                    .map(|(v, n)| format!("{} ×{n}", esc(&format!("'{v}'"))))
                    .collect::<Vec<_>>()
                    .join("<br/>"),
                shown
                    .iter()
                    .map(|x| esc(x))
                    .collect::<Vec<_>>()
                    .join("<br/>"),
                if more > 0 {
                    format!("<br/><span class=\"muted\">… and {more} more in failures.csv</span>")
                } else {
                    String::new()
                }
            );
        }
        if f.other > 0 {
            let _ = write!(
                out,
                "<tr><td class=\"n\">{}</td><td></td><td>other reasons (see failures.csv)</td><td></td><td></td></tr>",
                f.other
            );
        }
        out.push_str("</tbody></table>");
        if !f.by_column.is_empty() {
            let mut cols: Vec<(String, u64)> =
                f.by_column.iter().map(|(k, v)| (k.clone(), *v)).collect();
            cols.sort_by_key(|c| std::cmp::Reverse(c.1));
            figure(
                &mut out,
                &bar_chart(
                    "Failures per column",
                    &cols.iter().take(CHART_BARS).cloned().collect::<Vec<_>>(),
                ),
                "Bar chart of failures per column; the table below has the numbers",
            );
            table(
                &mut out,
                "Failures per column",
                &["column", "rows"],
                &cols
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.to_string()])
                    .collect::<Vec<_>>(),
            );
        }
    }

    if !f.skipped.is_empty() {
        out.push_str("<h2>Skipped rows</h2><p>Nothing was done with these rows, on purpose; failures.csv lists them with <code>_stage</code> skipped.</p>");
        table(
            &mut out,
            "Why rows were skipped",
            &["rows", "reason"],
            &f.skipped
                .iter()
                .map(|(why, n)| vec![n.to_string(), why.clone()])
                .collect::<Vec<_>>(),
        );
    }

    if s["operation"].as_str() == Some("delete") {
        delete_section(&mut out, s);
    }

    if !t.confirmed.is_empty() || !t.tasks.is_empty() {
        out.push_str("<h2>Pace</h2>");
        figure(
            &mut out,
            &timeline_chart(t),
            "Line chart of rows confirmed over time, with the bulk tasks running beneath it and the waits marked in red; the tables below have the numbers",
        );
        let durations = task_durations(&t.tasks);
        if let Some([median, p90, max]) = durations {
            let ms = |s: f64| (s * 1000.0).round() as u64;
            figure(
                &mut out,
                &bar_chart(
                    "Task durations (ms)",
                    &[
                        ("median".into(), ms(median)),
                        ("p90".into(), ms(p90)),
                        ("longest".into(), ms(max)),
                    ],
                ),
                "Bar chart of the tasks' median, p90 and longest durations; the table below has the numbers",
            );
        }
        let mut rows = vec![vec!["tasks".to_string(), t.tasks.len().to_string()]];
        if let Some([median, p90, max]) = durations {
            rows.push(vec!["median task".into(), format!("{median:.2} s")]);
            rows.push(vec!["p90 task".into(), format!("{p90:.2} s")]);
            rows.push(vec!["longest task".into(), format!("{max:.2} s")]);
        }
        rows.push(vec![
            "most tasks at once".into(),
            occupancy(&t.tasks)
                .iter()
                .map(|o| o.1)
                .max()
                .unwrap_or(0)
                .to_string(),
        ]);
        rows.push(vec![
            "waits (429, task slots)".into(),
            t.waits.len().to_string(),
        ]);
        table(&mut out, "Tasks and waits", &["", ""], &rows);
        if !t.confirmed.is_empty() {
            let line = t.line();
            let step = (line.len() / 20).max(1);
            table(
                &mut out,
                "Rows confirmed over time",
                &["seconds", "rows", ""],
                &line
                    .iter()
                    .enumerate()
                    .filter(|(i, p)| i % step == 0 || *i == line.len() - 1 || !p.2.is_empty())
                    .map(|(_, (s, r, what))| {
                        vec![format!("{s:.1}"), r.to_string(), what.to_string()]
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if !t.waits.is_empty() {
            table(
                &mut out,
                "Waits",
                &["seconds", "what"],
                &t.waits
                    .iter()
                    .take(20)
                    .map(|(s, w)| vec![format!("{s:.1}"), short(w, 200)])
                    .collect::<Vec<_>>(),
            );
        }
    }
    out.push_str(FOOTER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_group_rows_whose_values_differ() {
        let cases = [
            (
                "no customer 'a@x.example' among the customers",
                "no customer '…' among the customers",
            ),
            ("email is empty", "email is empty"),
            ("O'Brien's field", "O'Brien's field"),
            ("name 'O'Brien' is taken", "name '…' is taken"),
            ("an 'unclosed quote", "an 'unclosed quote"),
            (
                "duplicate: '…' is already in row 45 of this file",
                "duplicate: '…' is already in row N of this file",
            ),
            (
                "Organization not found (ORGANIZATION_ASSOCIATION: 999)",
                "Organization not found (ORGANIZATION_ASSOCIATION: N)",
            ),
            ("digits, 5 to 20 digits", "digits, 5 to 20 digits"),
            (
                "ISO form YYYY-MM-DD; 2027-02-30",
                "ISO form YYYY-MM-DD; 2027-02-30",
            ),
            (
                "'2026-02-30' does not exist: February 2026 has 28 days",
                "'…' does not exist: February 2026 has 28 days",
            ),
            ("id 12345678 is not on the site", "id N is not on the site"),
            (
                "Customer Tier: 'Gold' is not an option (options: Free)",
                "Customer Tier: '…' is not an option (options: Free)",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(reason_key(error), want, "{error}");
        }
    }

    #[test]
    fn a_row_failing_on_several_cells_counts_under_each_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("failures.csv");
        std::fs::write(
            &path,
            "email,_row,_stage,_field,_error\n\
             a@x.example,1,validate,Customer Tier,Customer Tier: 'Gold' is not an option\n\
             b@x.example,2,validate,Customer Tier;Seats,Customer Tier: 'Bronze' is not an option | Seats: 'ten' is not a number\n\
             c@x.example,3,validate,Notes,Notes: 'a | b' is too long\n",
        )
        .unwrap();
        let f = read_failures(&path).unwrap();
        assert_eq!(f.failed, 3);
        let tier = f
            .reasons
            .iter()
            .find(|r| r.text == "Customer Tier: '…' is not an option")
            .unwrap();
        assert_eq!(tier.count, 2);
        assert_eq!(
            tier.values,
            [("Gold".to_string(), 1), ("Bronze".to_string(), 1)]
        );
        assert!(
            f.reasons
                .iter()
                .any(|r| r.text == "Seats: '…' is not a number")
        );
        // One cell's message with " | " in a value stays whole.
        assert!(f.reasons.iter().any(|r| r.text == "Notes: '…' is too long"));
        assert_eq!(f.reasons.len(), 3);
    }

    #[test]
    fn durations_and_occupancy_from_task_intervals() {
        let tasks = [(0.0, 2.0), (1.0, 3.0), (1.5, 10.0), (4.0, 5.0)];
        assert_eq!(task_durations(&tasks), Some([2.0, 8.5, 8.5]));
        assert_eq!(task_durations(&[]), None);
        let occ: Vec<u64> = occupancy(&tasks).into_iter().map(|o| o.1).collect();
        assert_eq!(occ, [1, 2, 3, 2, 1, 2, 1, 0]);
    }

    #[test]
    fn a_bar_is_a_bar_with_one_category_or_many() {
        for n in [1usize, 2, 5, 20] {
            let bars: Vec<(String, u64)> =
                (0..n).map(|i| (format!("b{i}"), 1 + i as u64)).collect();
            let svg = bar_chart("t", &bars);
            let heights: Vec<f64> = svg
                .split("<rect ")
                .skip(1)
                .filter_map(|r| r.split("height=\"").nth(1)?.split('"').next()?.parse().ok())
                .collect();
            assert_eq!(heights.len(), n, "{svg}");
            assert!(heights.iter().all(|h| *h >= 15.0), "{n} bars: {heights:?}");
        }
    }

    #[test]
    fn the_line_stands_still_while_the_run_is_stopped() {
        let t = Timeline {
            confirmed: vec![(1.0, 100), (2.0, 250), (30.0, 400), (31.0, 500)],
            breaks: vec![(2.5, 29.0), (40.0, 41.0)],
            ..Timeline::default()
        };
        assert_eq!(
            t.line(),
            [
                (1.0, 100, ""),
                (2.0, 250, ""),
                (2.5, 250, "interrupted"),
                (29.0, 250, "resumed"),
                (30.0, 400, ""),
                (31.0, 500, ""),
                (40.0, 500, "interrupted"),
                (41.0, 500, "resumed"),
            ]
        );
    }

    /// A million-row run: 10,000 chunks and tasks, thousands of waits, 100 reasons of
    /// thousands of rows each; the page stays under 200 kB.
    #[test]
    fn a_million_row_run_s_page_stays_small() {
        let t = Timeline {
            confirmed: (0..10_000)
                .map(|i| (i as f64, (i as u64 + 1) * 100))
                .collect(),
            tasks: (0..10_000)
                .map(|i| (i as f64 * 0.5, i as f64 * 0.5 + 2.0))
                .collect(),
            waits: (0..3_000).map(|i| (i as f64, "429".to_string())).collect(),
            breaks: (0..50)
                .map(|i| (i as f64 * 200.0 + 0.5, i as f64 * 200.0 + 0.7))
                .collect(),
        };
        let f = Failures {
            failed: 1_000_000,
            reasons: (0..MAX_REASONS)
                .map(|i| Reason {
                    stage: "validate".into(),
                    text: format!("reason {i} with a long explanation of what is wrong"),
                    count: 10_000,
                    rows: (0..ROWS_PER_REASON)
                        .map(|r| (r.to_string(), format!("someone{r}@example.com")))
                        .collect(),
                    values: (0..5).map(|v| (format!("value {v}"), 100)).collect(),
                })
                .collect(),
            by_column: (0..60).map(|c| (format!("Column {c}"), 1000)).collect(),
            key_column: "email".into(),
            ..Failures::default()
        };
        let s = serde_json::json!({"kind": "customers", "rows": 2_000_000u64, "succeeded": 1_000_000u64,
            "failed": 1_000_000u64, "skipped": 0, "exit_code": 1});
        let html = render(&s, &f, &t);
        assert!(html.len() < 200_000, "{} bytes", html.len());
        assert!(html.contains("… and 9980 more in failures.csv"));
    }

    #[test]
    fn everything_from_the_input_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;"
        );
    }
}
