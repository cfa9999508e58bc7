//! External ids: the source system's own id for a record (a Salesforce account id, a HubSpot
//! record id, a Zendesk organization id) that the site keeps in an organization detail field
//! such as `External ID`. A customers file that names its organizations by such ids is
//! resolved through one map, read from the site once per run: every organization of the JSM
//! listing, its profile read 25 at a time, its values of the field kept. Used by
//! `kinds::customers`; reads through `refs` and `client`.
//!
//! Memory: one entry per distinct value, a boxed value and a boxed id (about 100 bytes with the
//! table's own overhead for an 18-character Salesforce id and a 6-digit organization id), so
//! 100,000 organizations take about 10 MB. Only the value and the ids are kept, never the
//! profiles.

use std::collections::HashMap;

use crate::site::api::model::{JsmOrganization, JsmPage};
use crate::site::api::paths;
use crate::site::client::{ApiError, Client};
use crate::site::refs::{self, JSM_PAGE};

/// How many profile reads run at once while the map is built.
const PROFILE_READS_AT_ONCE: usize = 4;

/// Who holds one value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holders {
    One(Box<str>),
    Many(Vec<Box<str>>),
}

/// What a value found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'a> {
    One(&'a str),
    None,
    /// Several records hold it: the row cannot tell which it means.
    Many(Vec<&'a str>),
}

/// Value of one organization detail field → the organizations that hold it.
#[derive(Debug, Default)]
pub struct ExternalIds {
    /// The field, as the site spells it.
    pub field: String,
    map: HashMap<Box<str>, Holders>,
    /// Organizations read while building the map.
    pub organizations: usize,
}

impl ExternalIds {
    pub fn new(field: &str) -> ExternalIds {
        ExternalIds {
            field: field.to_string(),
            ..Default::default()
        }
    }

    /// Notes that organization `id` holds `value` (a value is matched exactly, spaces around it
    /// aside: CRM ids differ by case, Salesforce's 15-character ones among them).
    pub fn add(&mut self, value: &str, id: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let Some(h) = self.map.get_mut(value) else {
            self.map.insert(value.into(), Holders::One(id.into()));
            return;
        };
        let mut ids = match std::mem::replace(h, Holders::Many(Vec::new())) {
            Holders::One(first) => vec![first],
            Holders::Many(ids) => ids,
        };
        if !ids.iter().any(|i| &**i == id) {
            ids.push(id.into());
        }
        *h = match ids.len() {
            1 => Holders::One(ids.pop().expect("one id")),
            _ => Holders::Many(ids),
        };
    }

    pub fn get(&self, value: &str) -> Match<'_> {
        match self.map.get(value.trim()) {
            None => Match::None,
            Some(Holders::One(id)) => Match::One(id),
            Some(Holders::Many(ids)) => Match::Many(ids.iter().map(|i| &**i).collect()),
        }
    }

    /// How many distinct values some organization holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Why a row's value `value` cannot name one organization (None when it does).
    pub fn problem(&self, value: &str) -> Option<String> {
        match self.get(value) {
            Match::One(_) => None,
            Match::None => Some(format!(
                "no organization on the site has {} '{value}' (import that organization first, with its {})",
                self.field, self.field
            )),
            Match::Many(ids) => Some(format!(
                "organizations {} all have {} '{value}'; keep the value on one of them",
                ids.join(", "),
                self.field
            )),
        }
    }

    /// Reads every organization's value of `field` from the site: the JSM listing a page at a
    /// time, each page's profiles 25 a call. A listing or read that fails fails the whole (a
    /// map with holes would fail rows that are fine).
    pub async fn load(client: &Client, field: &str) -> Result<ExternalIds, ApiError> {
        let mut out = ExternalIds::new(field);
        let wanted = normalize(field);
        let mut start = 0u64;
        let mut seen = std::collections::HashSet::new();
        for pages in 1.. {
            let path = paths::jsm_page(paths::jsm::ORGANIZATIONS, start, JSM_PAGE);
            // Silence is not evidence: a page without its list (a proxy that renamed it) is
            // an error, not a site without organizations.
            let mut page: JsmPage<JsmOrganization> = client.jsm_get_list(&path).await?;
            let got = page.values.len();
            let ids: Vec<String> = std::mem::take(&mut page.values)
                .into_iter()
                .map(|o| o.id)
                .filter(|id| seen.insert(id.clone()))
                .collect();
            out.organizations += ids.len();
            if !ids.is_empty() {
                let profiles =
                    refs::organization_profiles(client, &ids, PROFILE_READS_AT_ONCE).await?;
                if profiles.is_empty() {
                    return Err(ApiError::Listing {
                        method: "POST",
                        path: paths::ORGANIZATION_PROFILE_FETCH.to_string(),
                        message: format!(
                            "the answer has no profile of the {} organizations the JSM listing gives",
                            ids.len()
                        ),
                    });
                }
                for p in profiles {
                    for d in p.details.iter().filter(|d| normalize(&d.name) == wanted) {
                        for v in &d.values {
                            out.add(v, &p.id);
                        }
                    }
                }
            }
            let info = refs::jsm_page_info(pages, &page, got, ids.len());
            if !Client::next_page("GET", &path, info)? {
                break;
            }
            start += got as u64;
        }
        Ok(out)
    }
}

/// A field name as the site matches it: case and spaces aside.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_names_one_organization_none_or_several() {
        let mut x = ExternalIds::new("External ID");
        x.add("0015g00000Xa001AAA", "101");
        x.add(" 0015g00000Xa002AAA ", "102");
        x.add("dup", "103");
        x.add("dup", "104");
        x.add("dup", "104");
        x.add("dup", "105");
        x.add("same", "106");
        x.add("same", "106");
        x.add("", "107");
        let cases: [(&str, Match); 6] = [
            ("0015g00000Xa001AAA", Match::One("101")),
            ("0015g00000Xa002AAA", Match::One("102")),
            // Salesforce ids differ by case: never matched case-insensitively.
            ("0015G00000XA001AAA", Match::None),
            ("dup", Match::Many(vec!["103", "104", "105"])),
            ("same", Match::One("106")),
            ("", Match::None),
        ];
        for (value, want) in cases {
            assert_eq!(x.get(value), want, "{value}");
        }
        assert_eq!(x.len(), 4);
        assert_eq!(x.problem("0015g00000Xa001AAA"), None);
        assert_eq!(
            x.problem("nope").unwrap(),
            "no organization on the site has External ID 'nope' (import that organization first, with its External ID)"
        );
        assert_eq!(
            x.problem("dup").unwrap(),
            "organizations 103, 104, 105 all have External ID 'dup'; keep the value on one of them"
        );
    }
}
