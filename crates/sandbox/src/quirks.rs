//! Sandbox quirks: answers shaped the ways a real site may answer where the docs leave it open
//! (CONTRACT marks them unconfirmed), so a client can be rehearsed against them. Each is named
//! (`--quirk NAME`, `quirks` in `PUT /_sandbox/faults`); all but `unknown-status` rewrite a
//! JSON answer on its way out of `http`'s gate, and `unknown-status` is `tasks`' first status.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use csmport_api::{self as api, Api, paths};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quirk {
    /// Task failures with `entityId` and `operatedOnIds` null (CONTRACT §7.2: a failed
    /// CREATE's `entityId` is unconfirmed).
    NullEntityId,
    /// Every object in every answer carries members csmport does not know.
    ExtraFields,
    /// Tasks report an undocumented status (`PENDING`) before `IN_PROGRESS`.
    UnknownStatus,
    /// Organization ids (and other all-digit ids) as JSON numbers.
    NumericIds,
    /// JSM user listings without `emailAddress` (JSM hides it from some callers).
    NoEmail,
    /// JSM listings whose list is named `results` instead of `values` (a proxy in between).
    RenamedList,
    /// Every listing's list under a name csmport does not know (`items`).
    RenamedLists,
    /// Terminal orders (ESC, OSC, BEL, CR and a fake line of csmport's) in every error
    /// message, task failure and undocumented status, and in a renamed list's name.
    ControlText,
}

impl csmport_api::Choice for Quirk {
    const ALL: &'static [Self] = &[
        Quirk::NullEntityId,
        Quirk::ExtraFields,
        Quirk::UnknownStatus,
        Quirk::NumericIds,
        Quirk::NoEmail,
        Quirk::RenamedList,
        Quirk::RenamedLists,
        Quirk::ControlText,
    ];
    fn name(self) -> &'static str {
        match self {
            Quirk::NullEntityId => "null-entity-id",
            Quirk::ExtraFields => "extra-fields",
            Quirk::UnknownStatus => "unknown-status",
            Quirk::NumericIds => "numeric-ids",
            Quirk::NoEmail => "no-email",
            Quirk::RenamedList => "renamed-list",
            Quirk::RenamedLists => "renamed-lists",
            Quirk::ControlText => "control-text",
        }
    }
    fn help(self) -> &'static str {
        match self {
            Quirk::NullEntityId => {
                "Task failures with `entityId` and `operatedOnIds` null (CONTRACT §7.2: a failed \
                 CREATE's `entityId` is unconfirmed)"
            }
            Quirk::ExtraFields => {
                "Every object in every answer carries members csmport does not know"
            }
            Quirk::UnknownStatus => {
                "Tasks report an undocumented status (`PENDING`) before `IN_PROGRESS`"
            }
            Quirk::NumericIds => "Organization ids (and other all-digit ids) as JSON numbers",
            Quirk::NoEmail => {
                "JSM user listings without `emailAddress` (JSM hides it from some callers)"
            }
            Quirk::RenamedList => {
                "JSM listings whose list is named `results` instead of `values` (a proxy in between)"
            }
            Quirk::RenamedLists => {
                "Every listing's list under a name csmport does not know (`items`)"
            }
            Quirk::ControlText => {
                "Terminal control sequences in every error message, task failure and \
                 undocumented status (and a renamed list's name)"
            }
        }
    }
}

/// The status an unknown-status task shows before it starts.
pub const UNKNOWN_STATUS: &str = "PENDING";

/// What `control-text` adds: a window title, a bell, a cleared line and a fake verdict.
pub const CONTROL_TEXT: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2K\rcsmport: run succeeded\n\u{9b}31m";

/// Whether any quirk rewrites answers (so the gate reads and rewrites them).
pub fn rewrites(quirks: &[Quirk]) -> bool {
    quirks.iter().any(|q| *q != Quirk::UnknownStatus)
}

/// Rewrites the JSON answer of `path` as `quirks` say.
pub fn rewrite(quirks: &[Quirk], path: &str, v: &mut Value) {
    for q in quirks {
        match q {
            Quirk::NullEntityId if matches!(api::relative(path), Some((Api::Csm, rel)) if paths::matches(paths::TASK, rel)) => {
                if let Some(failures) = v.get_mut("failures").and_then(Value::as_array_mut) {
                    for f in failures {
                        f["entityId"] = Value::Null;
                        f["operatedOnIds"] = Value::Null;
                    }
                }
            }
            Quirk::ExtraFields => extra(v),
            Quirk::RenamedList if matches!(api::relative(path), Some((Api::Jsm, _))) => {
                if let Some(o) = v.as_object_mut()
                    && let Some(list) = o.remove("values")
                {
                    o.insert("results".into(), list);
                }
            }
            Quirk::RenamedLists => {
                if let Some(o) = v.as_object_mut() {
                    for name in csmport_api::lists::KNOWN {
                        if o.get(*name).is_some_and(|l| l.is_array() || l.is_null())
                            && let Some(list) = o.remove(*name)
                        {
                            let renamed = if quirks.contains(&Quirk::ControlText) {
                                format!("items{CONTROL_TEXT}")
                            } else {
                                "items".into()
                            };
                            o.insert(renamed, list);
                        }
                    }
                }
            }
            Quirk::NumericIds => numeric_ids(v),
            Quirk::ControlText => control_text(v),
            Quirk::NoEmail if matches!(api::relative(path), Some((Api::Jsm, _))) => {
                if let Some(values) = v.get_mut("values").and_then(Value::as_array_mut) {
                    for u in values {
                        if let Some(o) = u.as_object_mut() {
                            o.remove("emailAddress");
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Appends `CONTROL_TEXT` to error texts and to an undocumented task status.
fn control_text(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match (k.as_str(), x) {
                    ("errorMessage" | "error", Value::String(s)) => s.push_str(CONTROL_TEXT),
                    ("status", Value::String(s)) if s == UNKNOWN_STATUS => s.push_str(CONTROL_TEXT),
                    (_, x) => control_text(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(control_text),
        _ => {}
    }
}

fn extra(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (_, x) in o.iter_mut() {
                extra(x);
            }
            o.insert(
                "sandboxExtra".into(),
                serde_json::json!({"note": "a member csmport does not know", "n": 1}),
            );
        }
        Value::Array(a) => a.iter_mut().for_each(extra),
        _ => {}
    }
}

/// Ids made of digits only (organization ids, detail-field ids) become numbers.
fn numeric_ids(v: &mut Value) {
    let to_number = |x: &mut Value| {
        if let Value::String(s) = x
            && !s.is_empty()
            && s.len() < 16
            && s.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = s.parse::<u64>()
        {
            *x = Value::from(n);
        }
    };
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match k.as_str() {
                    "id" | "organizationId" | "entityId" => to_number(x),
                    "organizationIds" => {
                        if let Value::Array(a) = x {
                            a.iter_mut().for_each(to_number);
                        }
                    }
                    _ => numeric_ids(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(numeric_ids),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_quirk_rewrites_what_it_says() {
        let mut task = json!({"id": "t", "status": "FINISHED", "failures": [
            {"entity": "CUSTOMER", "entityId": "a@x.io", "operatedOnIds": ["Region"], "error": "x"}
        ]});
        rewrite(&[Quirk::NullEntityId], "/api/v1/tasks/t", &mut task);
        assert_eq!(task["failures"][0]["entityId"], Value::Null);
        assert_eq!(task["failures"][0]["operatedOnIds"], Value::Null);

        let mut orgs =
            json!({"results": [{"id": "101", "name": "Acme"}, {"id": "qm:1", "name": "x"}]});
        rewrite(
            &[Quirk::NumericIds],
            "/api/v1/organization/fetch",
            &mut orgs,
        );
        assert_eq!(orgs["results"][0]["id"], json!(101));
        assert_eq!(orgs["results"][1]["id"], json!("qm:1"));

        let mut users = json!({"values": [{"accountId": "a", "emailAddress": "a@x.io"}]});
        rewrite(
            &[Quirk::NoEmail],
            "/rest/servicedeskapi/servicedesk/1/customer",
            &mut users,
        );
        assert_eq!(users["values"][0].get("emailAddress"), None);

        let mut any = json!({"results": [{"name": "R"}]});
        rewrite(&[Quirk::ExtraFields], "/api/v1/customer/details", &mut any);
        assert!(any["sandboxExtra"].is_object());
        assert!(any["results"][0]["sandboxExtra"].is_object());
        assert!(rewrites(&[Quirk::NoEmail]) && !rewrites(&[Quirk::UnknownStatus]));
    }
}
