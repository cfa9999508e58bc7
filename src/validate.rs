//! Validate stage: checks one mapped cell against its field definition and returns the values to
//! send. Pure functions, no I/O; `map` calls them per row, `schema` supplies the definitions.
//! Messages name the value and say what is expected, so the failure report explains the fix.

use crate::schema::{FieldDef, FieldKind};
use crate::site::api::MULTI_VALUE_SEPARATOR;

/// Settings that change how cells are read.
#[derive(Debug, Clone, Default)]
pub struct CellRules {
    /// Accepted besides ISO for DATE fields (strftime syntax, e.g. `%d/%m/%Y`).
    pub date_format: Option<String>,
}

use crate::site::api::MAX_ORGANIZATION_NAME_CHARS;
pub use crate::site::api::{MAX_NAME_CHARS, MAX_TEXT_CHARS};
/// RFC 5321: an address is at most 254 characters.
pub const MAX_EMAIL_CHARS: usize = 254;

/// Checks a raw cell against a field. `Ok(None)` means "empty: do not send the field".
pub fn detail_value(
    def: &FieldDef,
    raw: &str,
    rules: &CellRules,
) -> Result<Option<Vec<String>>, String> {
    let cell = trim(raw);
    if cell.is_empty() {
        return Ok(None);
    }
    let values = match &def.kind {
        // TEXT keeps inner whitespace and newlines: a notes field is sent as written.
        FieldKind::Text | FieldKind::Other(_) => vec![text(raw, MAX_TEXT_CHARS)?],
        FieldKind::Select => vec![option(def, cell)?],
        FieldKind::MultiSelect => {
            let mut out: Vec<String> = Vec::new();
            for part in split_ascii(cell, SEP).map(trim) {
                if part.is_empty() {
                    continue;
                }
                let canonical = option(def, part)?;
                if !out.contains(&canonical) {
                    out.push(canonical);
                }
            }
            if out.is_empty() {
                return Ok(None);
            }
            out
        }
        FieldKind::Date => vec![date(cell, rules.date_format.as_deref())?],
        FieldKind::Number => vec![number(cell)?],
        FieldKind::Email => vec![email(cell)?],
        FieldKind::Phone => vec![phone(cell)?],
        FieldKind::Url => vec![url(cell)?],
        FieldKind::Boolean => vec![boolean(cell)?.to_string()],
    };
    Ok(Some(values))
}

/// The checks of `detail_value` without building the values: what `validate` needs, at no
/// allocation per valid cell.
/// `respelled` hears of each option matched only case-insensitively: (as written, canonical).
pub fn detail_check(
    def: &FieldDef,
    raw: &str,
    rules: &CellRules,
    respelled: &mut dyn FnMut(&str, &str),
) -> Result<(), String> {
    let cell = trim(raw);
    if cell.is_empty() {
        return Ok(());
    }
    match &def.kind {
        FieldKind::Text | FieldKind::Other(_) => {
            if raw.len() > MAX_TEXT_CHARS {
                text(raw, MAX_TEXT_CHARS)?;
            }
        }
        FieldKind::Select => {
            let canonical = option_ref(def, cell)?;
            if canonical != cell {
                respelled(cell, canonical);
            }
        }
        FieldKind::MultiSelect => {
            for part in split_ascii(cell, SEP).map(trim) {
                if !part.is_empty() {
                    let canonical = option_ref(def, part)?;
                    if canonical != part {
                        respelled(part, canonical);
                    }
                }
            }
        }
        FieldKind::Date => {
            if iso_date_ok(cell).is_err() {
                date(cell, rules.date_format.as_deref())?;
            }
        }
        FieldKind::Number => number_ok(cell)?,
        FieldKind::Email => email_ok(cell)?,
        FieldKind::Phone => phone_ok(cell)?,
        FieldKind::Url => url_ok(cell)?,
        FieldKind::Boolean => {
            boolean(cell)?;
        }
    }
    Ok(())
}

/// A yes/no cell (`true`/`false`, `yes`/`no`, `1`/`0`, any case) as the API's form.
pub fn boolean(value: &str) -> Result<&'static str, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(crate::site::api::BOOLEAN_TRUE),
        "false" | "no" | "n" | "0" => Ok(crate::site::api::BOOLEAN_FALSE),
        _ => Err(format!(
            "'{}' is not a yes/no value (true, false, yes, no, 1 or 0, in any case; a spreadsheet in another language may have written its own word for them)",
            value.trim()
        )),
    }
}

/// Matches an option case-insensitively and returns the canonical spelling the server expects.
fn option(def: &FieldDef, value: &str) -> Result<String, String> {
    option_ref(def, value).map(str::to_string)
}

fn option_ref<'a>(def: &'a FieldDef, value: &str) -> Result<&'a str, String> {
    if let Some(exact) = def.options.iter().find(|o| *o == value) {
        return Ok(exact);
    }
    if let Some(ci) = def.options.iter().find(|o| o.eq_ignore_ascii_case(value)) {
        return Ok(ci);
    }
    let mut msg = format!(
        "'{value}' is not an option (options: {})",
        def.options.join(", ")
    );
    if let Some(close) = closest(value, def.options.iter().map(String::as_str)) {
        msg.push_str(&format!("; did you mean '{close}'?"));
    }
    Err(msg)
}

/// Refuses text longer than `max` characters, naming the length.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    let n = value.chars().count();
    if n > max {
        let head: String = value.chars().take(20).collect();
        return Err(format!(
            "'{head}…' is {n} characters long; at most {max} are accepted"
        ));
    }
    Ok(value.to_string())
}

/// ISO dates always; others only with `--date-format`. Day/month order is never guessed: a
/// slash date without a format is refused with the format that would read it.
pub fn date(value: &str, format: Option<&str>) -> Result<String, String> {
    if let Ok(d) = iso_date(value) {
        return Ok(d);
    }
    let with_format = format.map(|fmt| {
        jiff::fmt::strtime::parse(fmt, value)
            .and_then(|t| t.to_date())
            .map_err(|_| format!("'{value}' matches neither YYYY-MM-DD nor --date-format {fmt}"))
    });
    if let Some(Ok(d)) = with_format {
        return Ok(d.to_string());
    }
    if let Some((day, time)) = date_and_time(value) {
        return Err(match iso_date_ok(day) {
            Ok(()) => {
                format!("'{value}' has a time part ({time}); the field takes a date alone: {day}")
            }
            Err(why) => why,
        });
    }
    if let Some(Err(why)) = with_format {
        return Err(why);
    }
    Err(match day_month_hint(value) {
        Some(hint) => format!("'{value}' is not a date in ISO form YYYY-MM-DD; {hint}"),
        None => iso_date_ok(value).unwrap_err(),
    })
}

/// `2026-06-30T10:30:00`, `2026-06-30 10:30` (a spreadsheet's date-time cell, or a CRM's
/// timestamp): the date and the time part.
fn date_and_time(value: &str) -> Option<(&str, &str)> {
    let (day, time) = (value.get(..10)?, value.get(11..)?);
    let sep = value.as_bytes()[10];
    let time_like = !time.is_empty()
        && time.as_bytes()[0].is_ascii_digit()
        && time.contains(':')
        && time
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'.' | b'+' | b'-' | b'Z' | b' '));
    ((sep == b'T' || sep == b' ') && time_like).then_some((day, time))
}

/// For `a/b/yyyy` (or `.`, `-`): which --date-format reads it, or that it is ambiguous.
fn day_month_hint(value: &str) -> Option<String> {
    let sep = value.chars().find(|c| matches!(c, '/' | '.' | '-'))?;
    let parts: Vec<&str> = value.split(sep).collect();
    if parts.len() != 3
        || parts[2].len() != 4
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let (a, b): (u32, u32) = (parts[0].parse().ok()?, parts[1].parse().ok()?);
    let (day_first, month_first) = (format!("%d{sep}%m{sep}%Y"), format!("%m{sep}%d{sep}%Y"));
    Some(match (a, b) {
        (13..=31, 1..=12) => format!("it reads as day first: pass --date-format {day_first}"),
        (1..=12, 13..=31) => format!("it reads as month first: pass --date-format {month_first}"),
        (1..=12, 1..=12) => format!(
            "day and month cannot be told apart: pass --date-format {day_first} or {month_first}"
        ),
        _ => return None,
    })
}

pub fn iso_date(value: &str) -> Result<String, String> {
    iso_date_ok(value).map(|()| value.to_string())
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn iso_date_ok(value: &str) -> Result<(), String> {
    // Only the strict calendar form: `2026-06-30`. Datetimes and other layouts are refused
    // rather than guessed, because day/month order cannot be told from one value.
    let ok_shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if ok_shape {
        let n = |r: std::ops::Range<usize>| {
            value.as_bytes()[r]
                .iter()
                .fold(0i32, |a, b| a * 10 + i32::from(b - b'0'))
        };
        let (y, m, d) = (n(0..4), n(5..7), n(8..10));
        if let (Ok(y), Ok(m), Ok(d)) = (i16::try_from(y), i8::try_from(m), i8::try_from(d))
            && jiff::civil::Date::new(y, m, d).is_ok()
        {
            return Ok(());
        }
        // The form is right; the day is not in the calendar.
        return Err(match u8::try_from(m) {
            Ok(m @ 1..=12) => {
                let days = jiff::civil::Date::new(y as i16, m as i8, 1)
                    .map(|first| first.days_in_month())
                    .unwrap_or(31);
                let month = MONTHS[usize::from(m) - 1];
                format!("'{value}' does not exist: {month} {y} has {days} days")
            }
            _ => format!("'{value}' does not exist: there is no month {m} (months are 01 to 12)"),
        });
    }
    Err(format!(
        "'{value}' is not a date in ISO form YYYY-MM-DD (e.g. 2026-06-30)"
    ))
}

pub fn number(value: &str) -> Result<String, String> {
    number_ok(value).map(|()| value.to_string())
}

/// A NUMBER cell: digits with an optional sign and one decimal point (`-12`, `3.5`, `.5`),
/// nothing else. What a spreadsheet makes of numbers (scientific notation, thousands
/// separators, a decimal comma) is refused with what to write instead, never stored as text.
fn number_ok(value: &str) -> Result<(), String> {
    let b = value.as_bytes();
    let body = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let mut parts = body.splitn(2, |c| *c == b'.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    let digits = |p: &[u8]| p.iter().all(u8::is_ascii_digit);
    let ok = digits(whole)
        && fraction.is_none_or(digits)
        && (!whole.is_empty() || fraction.is_some_and(|f| !f.is_empty()));
    if ok {
        return Ok(());
    }
    let numeric = |c: char| c.is_ascii_digit() || "+-.,eE ".contains(c);
    let why = if value.chars().all(numeric) && value.contains(['e', 'E']) {
        "scientific notation, as a spreadsheet shows long numbers: write the number out in digits"
    } else if value.chars().all(numeric) && value.contains(',') {
        "a ',' (a thousands separator, or a decimal comma a spreadsheet wrote): use digits and one '.' only"
    } else {
        "use digits with an optional '.' decimal point, no thousands separators"
    };
    Err(format!("'{value}' is not a number ({why})"))
}

pub fn email(value: &str) -> Result<String, String> {
    email_ok(value).map(|()| value.to_string())
}

pub fn email_ok(value: &str) -> Result<(), String> {
    use email_address::{EmailAddress, Options};
    // Bytes are never fewer than characters: most values need no counting.
    if value.len() > MAX_EMAIL_CHARS && value.chars().count() > MAX_EMAIL_CHARS {
        return Err(text(value, MAX_EMAIL_CHARS).unwrap_err());
    }
    if plain_email(value) {
        return Ok(());
    }
    let opts = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    match EmailAddress::parse_with_options(value, opts) {
        Ok(_) if !value.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "'{value}' is not a valid email address (expected name@domain.tld)"
        )),
    }
}

/// The common shape `local@label.label` in ASCII, checked without the full RFC 5322 parser
/// (which the rest still goes through). Whatever this accepts, the parser accepts too.
fn plain_email(v: &str) -> bool {
    // One pass over the bytes: this runs for every row of every file.
    let b = v.as_bytes();
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    if local.is_empty() || local.len() > 64 || domain.len() > 253 {
        return false;
    }
    // A dot may not start or end the local part, nor follow another.
    let mut prev = b'.';
    for &c in local {
        if c == b'.' {
            if prev == b'.' {
                return false;
            }
        } else if !EMAIL_ATOM[usize::from(c)] {
            return false;
        }
        prev = c;
    }
    if prev == b'.' {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for l in domain.split(|&c| c == b'.') {
        let ok = !l.is_empty()
            && l.len() <= 63
            && l[0] != b'-'
            && l[l.len() - 1] != b'-'
            && l.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-');
        if !ok {
            return false;
        }
        labels += 1;
        last = l;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

/// Bytes allowed in an unquoted local part besides dots (RFC 5322 `atext`), as a table: this
/// runs for every byte of every email.
static EMAIL_ATOM: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'/'
                    | b'='
                    | b'?'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'{'
                    | b'|'
                    | b'}'
                    | b'~'
                    | b'-'
            );
        c += 1;
    }
    t
};

/// `str::trim`, answering at once for the usual cell that starts and ends with a visible
/// ASCII character.
pub fn trim(s: &str) -> &str {
    let visible = |b: u8| b > b' ' && b < 0x7f;
    match s.as_bytes() {
        [] => s,
        [first, .., last] if visible(*first) && visible(*last) => s,
        [only] if visible(*only) => s,
        _ => s.trim(),
    }
}

/// `s` split at each `sep` (an ASCII byte, so every piece is on a character boundary).
pub fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(sep, r.as_bytes()) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The separator of several values in one cell, as a byte.
const SEP: u8 = MULTI_VALUE_SEPARATOR as u8;

pub fn phone(value: &str) -> Result<String, String> {
    phone_ok(value).map(|()| value.to_string())
}

fn phone_ok(value: &str) -> Result<(), String> {
    let (mut allowed, mut digits, mut plus_ok) = (true, 0, true);
    for (i, b) in value.bytes().enumerate() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'+' => plus_ok &= i == 0,
            b'-' | b' ' | b'(' | b')' | b'.' => {}
            _ => allowed = false,
        }
    }
    if allowed && plus_ok && (5..=20).contains(&digits) {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a phone number (digits with optional leading +, spaces, dashes, brackets; 5 to 20 digits)"
        ))
    }
}

pub fn url(value: &str) -> Result<String, String> {
    url_ok(value).map(|()| value.to_string())
}

fn url_ok(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let host = rest.map(|r| {
        let end = r
            .bytes()
            .position(|c| matches!(c, b'/' | b'?' | b'#'))
            .unwrap_or(r.len());
        &r.as_bytes()[..end]
    });
    let spaced = if value.is_ascii() {
        value
            .bytes()
            .any(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
    } else {
        value.contains(char::is_whitespace)
    };
    match host {
        Some(h)
            if !h.is_empty()
                && !spaced
                && h.contains(&b'.')
                && h[0] != b'.'
                && h[h.len() - 1] != b'.' =>
        {
            Ok(())
        }
        _ => Err(format!(
            "'{value}' is not a URL (expected http:// or https:// followed by a host, e.g. https://example.com)"
        )),
    }
}

/// The organizations a customer belongs to: ids (numeric strings, CONTRACT §4) and names,
/// which are looked up on the site before sending. Several are separated by `;`.
pub fn organization_refs(raw: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut ids: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for part in split_ascii(raw, SEP).map(trim) {
        if part.is_empty() {
            continue;
        }
        if part.bytes().all(|b| b.is_ascii_digit()) {
            if !ids.iter().any(|o| o == part) {
                ids.push(part.to_string());
            }
        } else {
            let name = text(part, MAX_ORGANIZATION_NAME_CHARS)?;
            if !names
                .iter()
                .any(|n| n.to_lowercase() == name.to_lowercase())
            {
                names.push(name);
            }
        }
    }
    Ok((ids, names))
}

/// The values of an `organizations` cell that names organizations by one of their detail
/// fields (a CRM's ids, `;`-separated): every value kept as given, numbers too (a Zendesk
/// organization id is a number, not a CSM id), duplicates once.
pub fn external_refs(raw: &str) -> Result<Vec<String>, String> {
    let mut values: Vec<String> = Vec::new();
    for part in split_ascii(raw, SEP).map(trim) {
        if part.is_empty() {
            continue;
        }
        let v = text(part, MAX_ORGANIZATION_NAME_CHARS)?;
        if !values.contains(&v) {
            values.push(v);
        }
    }
    Ok(values)
}

/// `organization_refs` without keeping anything: what `validate` needs.
pub fn organization_refs_ok(raw: &str) -> Result<(), String> {
    let max = MAX_ORGANIZATION_NAME_CHARS;
    for part in split_ascii(raw, SEP).map(trim) {
        if part.len() > max && !part.bytes().all(|b| b.is_ascii_digit()) {
            text(part, max)?;
        }
    }
    Ok(())
}

/// The candidate closest to `value` by edit distance (case-insensitive), if reasonably close.
pub fn closest<'a>(value: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let v = value.to_lowercase();
    candidates
        .map(|c| (levenshtein(&v, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(v.chars().count()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn yes_no_cells_become_the_apis_booleans() {
        for (cell, want) in [
            ("true", Ok("true")),
            (" Yes ", Ok("true")),
            ("1", Ok("true")),
            ("FALSE", Ok("false")),
            ("no", Ok("false")),
            ("0", Ok("false")),
        ] {
            assert_eq!(boolean(cell), want.map_err(|_: ()| String::new()), "{cell}");
        }
        assert!(boolean("maybe").unwrap_err().contains("not a yes/no value"));
    }

    use super::*;

    fn def(kind: FieldKind, options: &[&str]) -> FieldDef {
        FieldDef {
            name: "F".into(),
            kind,
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn each_type_accepts_and_rejects() {
        use FieldKind::*;
        let tiers = ["Free", "Standard", "Premium"];
        let cases: Vec<(FieldKind, &[&str], &str, Result<Option<Vec<&str>>, &str>)> = vec![
            (
                Text,
                &[],
                "  hello, world\nline 2 ",
                Ok(Some(vec!["  hello, world\nline 2 "])),
            ),
            (Text, &[], "   ", Ok(None)),
            (Select, &tiers, "Premium", Ok(Some(vec!["Premium"]))),
            (Select, &tiers, "premium", Ok(Some(vec!["Premium"]))),
            (Select, &tiers, "Gold", Err("not an option")),
            (Select, &tiers, "Premum", Err("did you mean 'Premium'")),
            (
                MultiSelect,
                &["Email", "Phone"],
                "email; Phone;;Email",
                Ok(Some(vec!["Email", "Phone"])),
            ),
            (MultiSelect, &["Email", "Phone"], " ; ", Ok(None)),
            (
                MultiSelect,
                &["Email", "Phone"],
                "Email;Fax",
                Err("'Fax' is not an option (options: Email, Phone)"),
            ),
            (Date, &[], "2026-06-30", Ok(Some(vec!["2026-06-30"]))),
            (
                Date,
                &[],
                "2026-02-30",
                Err("'2026-02-30' does not exist: February 2026 has 28 days"),
            ),
            (Date, &[], "30/06/2026", Err("ISO form")),
            (Date, &[], "2026-6-3", Err("ISO form")),
            (Number, &[], "42", Ok(Some(vec!["42"]))),
            (Number, &[], "-3.5", Ok(Some(vec!["-3.5"]))),
            (Number, &[], "1,000", Err("not a number")),
            (Number, &[], "NaN", Err("not a number")),
            (Number, &[], "inf", Err("not a number")),
            (Number, &[], "+7", Ok(Some(vec!["+7"]))),
            (Number, &[], ".5", Ok(Some(vec![".5"]))),
            (Number, &[], "1e3", Err("scientific notation")),
            (Number, &[], "1.00E+03", Err("scientific notation")),
            (Number, &[], "1,200", Err("a ','")),
            (Number, &[], "12,5", Err("decimal comma")),
            (Number, &[], "1.2.3", Err("not a number")),
            (Number, &[], "-", Err("not a number")),
            (Number, &[], ".", Err("not a number")),
            (Number, &[], "0x10", Err("not a number")),
            (Boolean, &[], "FALSE", Ok(Some(vec!["false"]))),
            (Boolean, &[], "WAHR", Err("another language")),
            (
                Email,
                &[],
                "a.b@example.com",
                Ok(Some(vec!["a.b@example.com"])),
            ),
            (Email, &[], "a.b@example", Err("not a valid email")),
            (Email, &[], "Jane <j@example.com>", Err("not a valid email")),
            (
                Phone,
                &[],
                "+1 (415) 555-0100",
                Ok(Some(vec!["+1 (415) 555-0100"])),
            ),
            (Phone, &[], "0422333111", Ok(Some(vec!["0422333111"]))),
            (Phone, &[], "call me", Err("not a phone")),
            (Phone, &[], "12+34567", Err("not a phone")),
            (
                Url,
                &[],
                "https://example.com/x?y",
                Ok(Some(vec!["https://example.com/x?y"])),
            ),
            (Url, &[], "example.com", Err("not a URL")),
            (Url, &[], "http://", Err("not a URL")),
            (Other("FANCY".into()), &[], "x", Ok(Some(vec!["x"]))),
        ];
        for (kind, opts, input, want) in cases {
            let got = detail_value(&def(kind.clone(), opts), input, &CellRules::default());
            match (&got, &want) {
                (Ok(g), Ok(w)) => {
                    let w: Option<Vec<String>> = w
                        .as_ref()
                        .map(|v| v.iter().map(|s| s.to_string()).collect());
                    assert_eq!(g, &w, "{kind:?} {input:?}");
                }
                (Err(g), Err(w)) => assert!(g.contains(w), "{kind:?} {input:?}: {g}"),
                _ => panic!("{kind:?} {input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_email_fast_path_agrees_with_the_parser() {
        let cases = [
            "a@b.io",
            "first.last+tag@mail.example.com",
            "x@localhost",
            "a..b@x.io",
            ".a@x.io",
            "a.@x.io",
            "a@-x.io",
            "a@x-.io",
            "a@x.i",
            "a@x.123",
            "a b@x.io",
            "a@x..io",
            "\"quoted\"@x.io",
            "ünï@x.io",
            "a@x_y.io",
            "o'brien@x.ie",
        ];
        for c in cases {
            if plain_email(c) {
                assert!(
                    email_address_ok(c),
                    "fast path accepted {c} but the parser does not"
                );
            }
        }
        assert!(plain_email("first.last+tag@mail.example.com"));
        assert!(!plain_email("a..b@x.io"));
    }

    fn email_address_ok(v: &str) -> bool {
        use email_address::{EmailAddress, Options};
        let opts = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        EmailAddress::parse_with_options(v, opts).is_ok()
    }

    #[test]
    fn dates_with_formats_and_hints() {
        let cases: Vec<(&str, Option<&str>, Result<&str, &str>)> = vec![
            ("2026-06-30", None, Ok("2026-06-30")),
            ("30/06/2026", Some("%d/%m/%Y"), Ok("2026-06-30")),
            ("06/30/2026", Some("%m/%d/%Y"), Ok("2026-06-30")),
            ("2026-06-30", Some("%d/%m/%Y"), Ok("2026-06-30")),
            (
                "31/02/2026",
                Some("%d/%m/%Y"),
                Err("neither YYYY-MM-DD nor --date-format %d/%m/%Y"),
            ),
            (
                "30/06/2026",
                None,
                Err("reads as day first: pass --date-format %d/%m/%Y"),
            ),
            (
                "06/30/2026",
                None,
                Err("reads as month first: pass --date-format %m/%d/%Y"),
            ),
            (
                "03.04.2026",
                None,
                Err("cannot be told apart: pass --date-format %d.%m.%Y or %m.%d.%Y"),
            ),
            ("next week", None, Err("(e.g. 2026-06-30)")),
            (
                "2027-02-30",
                None,
                Err("'2027-02-30' does not exist: February 2027 has 28 days"),
            ),
            ("2028-02-30", None, Err("February 2028 has 29 days")),
            ("2026-04-31", None, Err("April 2026 has 30 days")),
            ("2026-13-01", None, Err("there is no month 13")),
            (
                "2026-06-30T10:30:00",
                None,
                Err("has a time part (10:30:00); the field takes a date alone: 2026-06-30"),
            ),
            ("2026-06-30 09:15", None, Err("time part (09:15)")),
            ("2026-02-30T10:00:00", None, Err("does not exist")),
        ];
        for (v, fmt, want) in cases {
            match (date(v, fmt), want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{v}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{v}: {g}"),
                (g, w) => panic!("{v}: got {g:?}, want {w:?}"),
            }
        }
    }

    /// What people type into a CRM's phone and number fields: a TEXT field keeps it as typed
    /// (only a PHONE or NUMBER field checks the form).
    #[test]
    fn text_is_text() {
        let text = def(FieldKind::Text, &[]);
        for cell in [
            "+61 2 9876 5432 ext. 12",
            "555.0100 x45",
            "(02) 9876 5432",
            "0422082255",
            "1.00E+03",
            "1,200",
            "=cmd",
        ] {
            let got = detail_value(&text, cell, &CellRules::default()).unwrap();
            assert_eq!(got, Some(vec![cell.to_string()]), "{cell}");
            assert!(detail_check(&text, cell, &CellRules::default(), &mut |_, _| {}).is_ok());
        }
    }

    #[test]
    fn long_text_is_refused() {
        let big = "x".repeat(1024 * 1024);
        let d = def(FieldKind::Text, &[]);
        let e = detail_value(&d, &big, &CellRules::default()).unwrap_err();
        assert!(e.contains("1048576 characters long; at most 4000"), "{e}");
    }

    #[test]
    fn organization_references() {
        let (ids, names) = organization_refs("1; 2;;1; Acme Pty Ltd ;acme pty ltd;Globex").unwrap();
        assert_eq!(ids, vec!["1", "2"]);
        assert_eq!(names, vec!["Acme Pty Ltd", "Globex"]);
        assert_eq!(organization_refs("").unwrap(), (vec![], vec![]));
        assert!(
            organization_refs(&"x".repeat(300))
                .unwrap_err()
                .contains("at most 255")
        );
    }

    #[test]
    fn closest_candidate() {
        let c = ["email", "displayName", "Customer Tier"];
        assert_eq!(closest("emial", c.into_iter()), Some("email"));
        assert_eq!(
            closest("customer tir", c.into_iter()),
            Some("Customer Tier")
        );
        assert_eq!(closest("zzzzzzzzzzzz", c.into_iter()), None);
    }
}
