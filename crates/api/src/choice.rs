//! Closed sets of values named by text (a kind, an encoding, a quirk): what the command line
//! and the files need of them, without clap, which stays in the command layer (`cli::choice`
//! turns a `Choice` into a value parser). The lowest crate, so every layer can name its sets.

/// A closed set of values, each with one name, maybe aliases, and a line of help.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    /// Every value, in the order help lists them.
    const ALL: &'static [Self];

    /// The name written on the command line, in files and in reports.
    fn name(self) -> &'static str;

    /// Other names accepted on input.
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }

    /// One line of help, listed beside the name (empty: none).
    fn help(self) -> &'static str {
        ""
    }

    /// The value `text` names (by name or alias), ignoring ASCII case if asked.
    fn named(text: &str, ignore_case: bool) -> Option<Self> {
        let same = |a: &str| {
            if ignore_case {
                a.eq_ignore_ascii_case(text)
            } else {
                a == text
            }
        };
        Self::ALL
            .iter()
            .copied()
            .find(|v| same(v.name()) || v.aliases().iter().any(|a| same(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::Choice;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Colour {
        Red,
        Grey,
    }

    impl Choice for Colour {
        const ALL: &'static [Self] = &[Colour::Red, Colour::Grey];
        fn name(self) -> &'static str {
            match self {
                Colour::Red => "red",
                Colour::Grey => "grey",
            }
        }
        fn aliases(self) -> &'static [&'static str] {
            match self {
                Colour::Grey => &["gray"],
                Colour::Red => &[],
            }
        }
    }

    #[test]
    fn a_value_is_found_by_name_or_alias_and_case_only_when_asked() {
        let cases = [
            ("red", false, Some(Colour::Red)),
            ("gray", false, Some(Colour::Grey)),
            ("GREY", false, None),
            ("GREY", true, Some(Colour::Grey)),
            ("Gray", true, Some(Colour::Grey)),
            ("blue", true, None),
            ("", true, None),
        ];
        for (text, ignore_case, want) in cases {
            assert_eq!(
                Colour::named(text, ignore_case),
                want,
                "{text:?} {ignore_case}"
            );
        }
    }
}
