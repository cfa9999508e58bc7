//! What a spreadsheet does to a report's cells when it opens and saves one (`retry`'s input):
//! a lost leading zero, digits in scientific notation or with thousands separators, UTF-8 read
//! as Windows-1252 (`Ã©` for `é`), an ISO date shown in the locale's form. Told apart from a
//! deliberate edit by comparing a cell with the report's `_raw` (the record as first read).
//! Pure; `reread` asks it for each changed cell of a report row.

/// How `now` is `was` after a spreadsheet's save, if it is; `None` for any other change.
pub fn of(was: &str, now: &str) -> Option<String> {
    if was == now || was.trim() == now.trim() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let was_number = {
        let body = was.strip_prefix(['+', '-']).unwrap_or(was);
        let mut parts = body.splitn(2, '.');
        digits(parts.next().unwrap_or_default()) && parts.next().is_none_or(digits)
    };
    if was_number && now.contains(['e', 'E']) {
        let close = match (was.parse::<f64>(), now.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => (a - b).abs() <= a.abs() * 1e-5 + 1e-9,
            _ => false,
        };
        if close {
            return Some("is the number in scientific notation".into());
        }
    }
    if digits(was) && was.len() > 1 && was.starts_with('0') {
        let kept = was.trim_start_matches('0');
        if now.trim() == kept || (kept.is_empty() && now.trim() == "0") {
            return Some("lost its leading zero".into());
        }
    }
    if was_number && now.contains(',') && now.replace(',', "") == was {
        return Some("gained thousands separators".into());
    }
    if !was.is_ascii() {
        let (garbled, _, _) = encoding_rs::WINDOWS_1252.decode(was.as_bytes());
        if garbled == now {
            return Some(
                "is UTF-8 read as Windows-1252 (the report was opened in the wrong encoding)"
                    .into(),
            );
        }
    }
    if let Some((y, m, d)) = iso_date(was)
        && same_date(now.trim(), y, m, d)
    {
        return Some(format!("is the date {was} in another form"));
    }
    None
}

fn iso_date(s: &str) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    Some((
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    ))
}

/// Whether `s` is day, month and year `y-m-d` in another order or separator (`6/30/2026`,
/// `30.06.26`, `2026/06/30`).
fn same_date(s: &str, y: u32, m: u32, d: u32) -> bool {
    let parts: Vec<&str> = s
        .split(['/', '.', '-', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    let [a, b, c] = parts.as_slice() else {
        return false;
    };
    let n = |p: &str| p.parse::<u32>().ok();
    let year = |p: &str| n(p).is_some_and(|v| v == y || (p.len() == 2 && v == y % 100));
    let (Some(a_n), Some(b_n)) = (n(a), n(b)) else {
        return false;
    };
    if year(c) {
        return (a_n, b_n) == (m, d) || (a_n, b_n) == (d, m);
    }
    year(a) && n(c).is_some_and(|c_n| (b_n, c_n) == (m, d) || (b_n, c_n) == (d, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spreadsheet_s_damage_is_told_from_an_edit() {
        let cases = [
            ("0422082255", "422082255", Some("lost its leading zero")),
            ("007", "7", Some("lost its leading zero")),
            ("1000", "1.00E+03", Some("scientific notation")),
            (
                "12345678901234567890",
                "1.23457E+19",
                Some("scientific notation"),
            ),
            ("1200", "1,200", Some("thousands separators")),
            ("Luis Núñez", "Luis NÃºÃ±ez", Some("Windows-1252")),
            ("Zoë", "ZoÃ«", Some("Windows-1252")),
            ("2026-06-30", "6/30/2026", Some("the date 2026-06-30")),
            ("2026-06-30", "30.06.26", Some("the date 2026-06-30")),
            ("2026-06-30", "2026/06/30", Some("the date 2026-06-30")),
            // Edits: sent as they are.
            ("0422082255", "0499999999", None),
            ("1000", "2000", None),
            ("Luis Núñez", "Luis Nunez", None),
            ("2026-06-30", "2026-07-01", None),
            ("2026-06-30", "7/1/2026", None),
            ("false", "FALSE", None),
            ("same", "same", None),
            ("a@x.io", "b@x.io", None),
        ];
        for (was, now, want) in cases {
            let got = of(was, now);
            match want {
                None => assert_eq!(got, None, "{was} -> {now}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{was} -> {now}: {got:?}"
                ),
            }
        }
    }
}
