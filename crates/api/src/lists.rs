//! Listings: where an answer keeps its list, and when paging through one stops. Every name a
//! list member is known by is here, once: the docs, third-party code and proxies disagree, so
//! any known name is read, and an answer with none of them is refused, never read as an empty
//! list (silence is not evidence). Used by the client (`get_list`) and the sandbox's quirks.

/// The list member of CSM's listings and fetches (`results`), and the other name seen for it.
pub const CSM: &[&str] = &["results", "values"];
/// The list member of JSM's listings (`values`), and the other name seen for it.
pub const JSM: &[&str] = &["values", "results"];
/// The search by detail field (C7): `customers` in the description, `results`/`values` in
/// third-party code.
pub const SEARCH: &[&str] = &["customers", "results", "values"];

/// Every list member name csmport reads (a sandbox quirk renames lists to none of these).
pub const KNOWN: &[&str] = &["results", "values", "customers"];

/// Pages read of one listing at most: 100,000 pages of 25 to 100 are millions of records, past
/// any site; a listing that has not ended by then repeats itself.
pub const MAX_PAGES: usize = 100_000;

/// An answer that keeps its list under one of `MEMBERS` (the first is the name the type reads).
pub trait Listing {
    const MEMBERS: &'static [&'static str];
}

/// An item of a listing, by what tells it from the others (a page that adds no new key ends
/// the listing).
pub trait Keyed {
    fn key(&self) -> &str;
}

/// Moves the list of `answer` to the name `members[0]`, whichever known name it came under.
/// Err: the answer has none of them; the members it does have, for the message.
pub fn find_list(answer: &mut serde_json::Value, members: &[&str]) -> Result<(), Vec<String>> {
    let Some(obj) = answer.as_object_mut() else {
        return Err(vec![format!("(not an object: {})", kind_of(answer))]);
    };
    let Some(found) = members.iter().find(|m| obj.contains_key(**m)) else {
        let mut had: Vec<String> = obj.keys().cloned().collect();
        had.sort();
        return Err(had);
    };
    if *found != members[0] {
        let list = obj.remove(*found).expect("found");
        obj.insert(members[0].to_string(), list);
    }
    Ok(())
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// What one page of a listing says about the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Pages read so far, this one included.
    pub pages: usize,
    /// Items the page was asked for: the size the answer reports, else the one sent (0: the
    /// site's own size, unknown).
    pub asked: usize,
    /// Items it holds.
    pub got: usize,
    /// Of those, items not seen on an earlier page.
    pub new: usize,
    /// Its own end marker (`isLastPage`, `isLast`), when it has one.
    pub last: Option<bool>,
}

/// Whether a listing goes on after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ask for the next page.
    More,
    /// The listing has ended.
    Done,
    /// `MAX_PAGES` read and it has not ended: an error, never a short list.
    TooMany,
}

/// After a page: the end is a page that says so, an empty page, a page shorter than asked, or
/// a page with nothing new (a site that ignores the offset would serve the first page
/// forever); past `MAX_PAGES`, the listing is refused.
pub fn after(p: Page) -> Next {
    let ended =
        p.last == Some(true) || p.got == 0 || p.new == 0 || (p.asked > 0 && p.got < p.asked);
    if ended {
        Next::Done
    } else if p.pages >= MAX_PAGES {
        Next::TooMany
    } else {
        Next::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_read_under_any_known_name_and_none_is_an_error() {
        let cases: [(&str, &[&str], Result<&str, Vec<&str>>); 6] = [
            (r#"{"results":[1]}"#, CSM, Ok(r#"{"results":[1]}"#)),
            (
                r#"{"values":[1],"size":1}"#,
                CSM,
                Ok(r#"{"results":[1],"size":1}"#),
            ),
            (r#"{"results":[1]}"#, JSM, Ok(r#"{"values":[1]}"#)),
            (r#"{"results":null}"#, CSM, Ok(r#"{"results":null}"#)),
            (r#"{"items":[1],"size":1}"#, CSM, Err(vec!["items", "size"])),
            (r#"[1]"#, CSM, Err(vec!["(not an object: an array)"])),
        ];
        for (body, members, want) in cases {
            let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
            let got = find_list(&mut v, members);
            match want {
                Ok(after) => {
                    assert_eq!(got, Ok(()), "{body}");
                    assert_eq!(v, serde_json::from_str::<serde_json::Value>(after).unwrap());
                }
                Err(had) => assert_eq!(
                    got,
                    Err(had.iter().map(|s| s.to_string()).collect()),
                    "{body}"
                ),
            }
        }
    }

    #[test]
    fn paging_ends_on_every_sign_and_refuses_to_go_on_forever() {
        let p = |pages, asked, got, new, last| Page {
            pages,
            asked,
            got,
            new,
            last,
        };
        let cases = [
            (p(1, 50, 50, 50, None), Next::More),
            (p(1, 50, 50, 50, Some(false)), Next::More),
            (p(1, 50, 50, 50, Some(true)), Next::Done),
            (p(3, 50, 0, 0, None), Next::Done),
            (p(3, 50, 20, 20, None), Next::Done),
            (p(3, 50, 20, 20, Some(false)), Next::Done),
            // The site's own size, unknown: only the other signs end it.
            (p(3, 0, 20, 20, None), Next::More),
            // The same page again (an offset ignored): nothing new.
            (p(2, 50, 50, 0, Some(false)), Next::Done),
            (p(MAX_PAGES, 50, 50, 50, None), Next::TooMany),
            (p(MAX_PAGES, 50, 50, 50, Some(true)), Next::Done),
        ];
        for (page, want) in cases {
            assert_eq!(after(page), want, "{page:?}");
        }
    }
}
