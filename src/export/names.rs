//! Export stage, naming: the templates `--out`, `--changes` and `--report` take (`{date}`,
//! `{time}`, `{kind}`), expanded for one export, and the files an earlier export of the same
//! template left (what `--keep N` removes). Pure but for `earlier`, which lists a folder.
//! Used by `engine::export`.

use std::path::{Path, PathBuf};

/// The placeholders a name may hold, and what each becomes.
pub const PLACEHOLDERS: [(&str, &str); 3] = [
    ("{date}", "the date, YYYY-MM-DD"),
    ("{time}", "the time, HHMMSS"),
    ("{kind}", "the kinds exported, joined by '+'"),
];

/// A file name with placeholders, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    path: PathBuf,
    /// Whether the file name holds a placeholder (`--keep` needs one).
    varies: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "{option} {given}: unknown placeholder {found} (the known ones: {{date}}, {{time}}, {{kind}})"
    )]
    Unknown {
        option: &'static str,
        given: String,
        found: String,
    },
    #[error("{option} {given}: a placeholder goes in the file's name, not in its folder")]
    InFolder { option: &'static str, given: String },
}

/// The moment and the kinds a template is expanded for.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub date: String,
    pub time: String,
    pub kind: String,
}

impl Stamp {
    /// Now, in UTC or in the machine's time zone.
    pub fn now(local: bool, kinds: &[&str]) -> Stamp {
        let now = jiff::Timestamp::now();
        let zoned = if local {
            now.to_zoned_datetime(jiff::tz::TimeZone::system())
        } else {
            now.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        };
        Stamp {
            date: zoned.strftime("%Y-%m-%d").to_string(),
            time: zoned.strftime("%H%M%S").to_string(),
            kind: kinds.join("+"),
        }
    }
}

impl Template {
    /// Checks `given` (the value of `option`): every `{…}` must be a known placeholder, and
    /// only in the file's name (a folder per day would leave `--keep` nothing to compare).
    pub fn parse(option: &'static str, given: &Path) -> Result<Template, NameError> {
        let text = given.to_string_lossy();
        let mut rest = text.as_ref();
        while let Some(open) = rest.find('{') {
            let tail = &rest[open..];
            let end = tail.find('}').map_or(tail.len(), |e| e + 1);
            let found = &tail[..end];
            if !PLACEHOLDERS.iter().any(|(p, _)| *p == found) {
                return Err(NameError::Unknown {
                    option,
                    given: text.to_string(),
                    found: found.to_string(),
                });
            }
            rest = &tail[end..];
        }
        let name_varies = given
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains('{'));
        let folder_varies = given
            .parent()
            .is_some_and(|p| p.to_string_lossy().contains('{'));
        if folder_varies {
            return Err(NameError::InFolder {
                option,
                given: text.to_string(),
            });
        }
        Ok(Template {
            path: given.to_path_buf(),
            varies: name_varies,
        })
    }

    pub fn varies(&self) -> bool {
        self.varies
    }

    pub fn given(&self) -> &Path {
        &self.path
    }

    /// The path for this export.
    pub fn expand(&self, stamp: &Stamp) -> PathBuf {
        let text = self
            .path
            .to_string_lossy()
            .replace("{date}", &stamp.date)
            .replace("{time}", &stamp.time)
            .replace("{kind}", &stamp.kind);
        PathBuf::from(text)
    }

    /// Whether `name` (a file name) is one this template gives, for any date and time (the
    /// kinds as in `stamp`).
    pub fn gives(&self, name: &str, stamp: &Stamp) -> bool {
        let Some(pattern) = self.path.file_name() else {
            return false;
        };
        let pattern = pattern.to_string_lossy().replace("{kind}", &stamp.kind);
        matches(&pattern, name)
    }

    /// The files in the template's folder an export of it wrote before, newest first, past the
    /// `keep` newest (`just_written` counted among them): what `--keep` removes. The date and
    /// time in a name order them; names that tie keep the folder's modification times.
    pub fn beyond(
        &self,
        keep: usize,
        stamp: &Stamp,
        just_written: &Path,
    ) -> std::io::Result<Vec<PathBuf>> {
        if !self.varies {
            return Ok(Vec::new());
        }
        let folder = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let written = just_written.file_name().map(|n| n.to_os_string());
        let mut found: Vec<(String, std::time::SystemTime, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A symlink or a folder is never an export of ours.
            if !entry.file_type()?.is_file() || !self.gives(&name, stamp) {
                continue;
            }
            let modified = entry
                .metadata()?
                .modified()
                .unwrap_or(std::time::UNIX_EPOCH);
            found.push((name, modified, entry.path()));
        }
        // The one just written is the newest whatever its name says.
        found.sort_by(|a, b| {
            let newest = |x: &(String, _, _)| Some(std::ffi::OsString::from(&x.0)) == written;
            newest(b)
                .cmp(&newest(a))
                .then_with(|| b.0.cmp(&a.0))
                .then_with(|| b.1.cmp(&a.1))
        });
        Ok(found.into_iter().skip(keep).map(|f| f.2).collect())
    }
}

/// Whether `name` is what `pattern` gives with some date and time in its placeholders.
fn matches(pattern: &str, name: &str) -> bool {
    // A placeholder matches the characters its expansion is made of.
    fn take(name: &str, len: usize, ok: impl Fn(usize, char) -> bool) -> Option<&str> {
        let chars: Vec<char> = name.chars().take(len).collect();
        (chars.len() == len && chars.iter().enumerate().all(|(i, c)| ok(i, *c)))
            .then(|| &name[chars.iter().map(|c| c.len_utf8()).sum::<usize>()..])
    }
    let Some(open) = pattern.find('{') else {
        return pattern == name;
    };
    let (lit, rest) = pattern.split_at(open);
    let Some(name) = name.strip_prefix(lit) else {
        return false;
    };
    let (name, rest) = if let Some(rest) = rest.strip_prefix("{date}") {
        let date = |i: usize, c: char| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        };
        match take(name, 10, date) {
            Some(n) => (n, rest),
            None => return false,
        }
    } else if let Some(rest) = rest.strip_prefix("{time}") {
        match take(name, 6, |_, c| c.is_ascii_digit()) {
            Some(n) => (n, rest),
            None => return false,
        }
    } else {
        return false;
    };
    matches(rest, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            date: "2026-12-06".into(),
            time: "030000".into(),
            kind: "customers".into(),
        }
    }

    #[test]
    fn templates_expand_and_unknown_placeholders_are_named() {
        let t = Template::parse("--out", Path::new("out/{kind}-{date}T{time}.csv")).unwrap();
        assert!(t.varies());
        assert_eq!(
            t.expand(&stamp()),
            Path::new("out/customers-2026-12-06T030000.csv")
        );
        let plain = Template::parse("--out", Path::new("out/c.csv")).unwrap();
        assert!(!plain.varies());
        assert_eq!(plain.expand(&stamp()), Path::new("out/c.csv"));
        let cases = [
            ("c-{day}.csv", "{day}"),
            ("c-{date.csv", "{date.csv"),
            ("c-{DATE}.csv", "{DATE}"),
        ];
        for (given, found) in cases {
            let e = Template::parse("--out", Path::new(given)).unwrap_err();
            assert!(
                matches!(&e, NameError::Unknown { found: f, .. } if f == found),
                "{given}: {e}"
            );
            assert!(e.to_string().contains("{date}, {time}, {kind}"), "{e}");
        }
        assert!(matches!(
            Template::parse("--out", Path::new("{date}/c.csv")),
            Err(NameError::InFolder { .. })
        ));
    }

    #[test]
    fn names_an_earlier_export_gave_match_and_others_do_not() {
        let t = "customers-{date}.csv";
        for (name, want) in [
            ("customers-2026-12-05.csv", true),
            ("customers-2025-01-31.csv", true),
            ("customers-2026-12-5.csv", false),
            ("customers-latest.csv", false),
            ("customers-2026-12-05.csv.bak", false),
            ("xcustomers-2026-12-05.csv", false),
        ] {
            assert_eq!(matches(t, name), want, "{name}");
        }
        assert!(matches("c-{date}T{time}.csv", "c-2026-12-05T235959.csv"));
        assert!(!matches("c-{date}T{time}.csv", "c-2026-12-05T2359.csv"));
    }

    #[test]
    fn keep_removes_the_oldest_past_n_and_never_the_one_just_written() {
        let dir = tempfile::tempdir().unwrap();
        let t = Template::parse("--out", &dir.path().join("c-{date}.csv")).unwrap();
        for d in ["2026-12-01", "2026-12-03", "2026-12-02", "2026-12-06"] {
            std::fs::write(dir.path().join(format!("c-{d}.csv")), "x").unwrap();
        }
        std::fs::write(dir.path().join("c-notes.csv"), "x").unwrap();
        std::fs::create_dir(dir.path().join("c-2026-11-30.csv")).unwrap();
        let gone = t
            .beyond(2, &stamp(), &dir.path().join("c-2026-12-06.csv"))
            .unwrap();
        let names: Vec<String> = gone
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c-2026-12-02.csv", "c-2026-12-01.csv"]);
        // A file written with a clock set back is still the one kept.
        let gone = t
            .beyond(1, &stamp(), &dir.path().join("c-2026-12-01.csv"))
            .unwrap();
        assert!(!gone.contains(&dir.path().join("c-2026-12-01.csv")));
        assert_eq!(gone.len(), 3);
    }
}
