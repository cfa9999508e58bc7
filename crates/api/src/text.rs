//! Text from outside (a server's answer, a cell of the input) on its way to a terminal or a
//! line-based file: control characters become visible escapes, so such text cannot move the
//! cursor, retitle the window, ring the bell or fake a line of ours. Used by the client (error
//! text), the report writers, the run log and the command layer's printing.

use std::borrow::Cow;

/// `text` with every control character shown as an escape (`\x1b`, `\u{9b}`), except line feeds
/// and tabs: for a whole message of ours that may hold several lines.
pub fn visible(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// `text` on one line: as `visible`, and line feeds shown as `\n` too, for a piece of foreign
/// text inside a line of ours (a server's message, a value, a row's reason).
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// `text` to at most `max` characters, saying how much was left out.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… {} more bytes", &text[..at], text.len() - at),
    }
}

/// Characters a terminal or a reader takes as orders rather than text: C0 and C1 controls,
/// DEL, and the bidirectional overrides that make a line read other than it is stored.
fn hidden(c: char, lines_too: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => lines_too,
        '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        // Not characters at all for XML, so a page holding them is not well-formed.
        '\u{fffe}' | '\u{ffff}' => true,
        c => c.is_control(),
    }
}

fn escape(text: &str, lines_too: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| hidden(c, lines_too)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !hidden(c, lines_too) {
            out.push(c);
        } else if c == '\n' {
            out.push_str("\\n");
        } else if c == '\r' {
            out.push_str("\\r");
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        let cases = [
            (
                "plain text, ümlaut",
                "plain text, ümlaut",
                "plain text, ümlaut",
            ),
            ("a\tb", "a\tb", "a\tb"),
            ("two\nlines", "two\nlines", "two\\nlines"),
            (
                "\x1b[2K\rcsmport: run succeeded",
                "\\x1b[2K\\rcsmport: run succeeded",
                "\\x1b[2K\\rcsmport: run succeeded",
            ),
            (
                "\x1b]0;pwned\x07",
                "\\x1b]0;pwned\\x07",
                "\\x1b]0;pwned\\x07",
            ),
            ("del\x7f nul\0", "del\\x7f nul\\x00", "del\\x7f nul\\x00"),
            ("c1 \u{9b}31m", "c1 \\u{9b}31m", "c1 \\u{9b}31m"),
            (
                "abc\u{202e}fdp.exe",
                "abc\\u{202e}fdp.exe",
                "abc\\u{202e}fdp.exe",
            ),
            ("not xml \u{ffff}", "not xml \\u{ffff}", "not xml \\u{ffff}"),
        ];
        for (text, kept, line) in cases {
            assert_eq!(visible(text), kept, "{text:?}");
            assert_eq!(one_line(text), line, "{text:?}");
        }
        assert!(matches!(visible("nothing to do"), Cow::Borrowed(_)));
    }

    #[test]
    fn cut_says_what_it_left_out() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdef", 3), "abc… 3 more bytes");
        assert_eq!(cut("ééé", 1), "é… 4 more bytes");
    }
}
