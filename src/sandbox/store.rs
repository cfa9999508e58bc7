//! Sandbox store: the in-memory state of the emulated CSM site (detail-field definitions,
//! organizations, customers, tasks, idempotency keys) and the pure rules that apply one bulk
//! item to it. `routes` locks it per request; `tasks` applies items when a task runs.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::api::model::{
    CustomerProfile, CustomerProfileItem, DetailFieldWithConfiguration,
    DetailFieldsWithConfiguration, DetailValue, OrganizationRef, ProfileOperation, TaskFailure,
    TaskStatus, TaskStatusResponse,
};
use crate::api::{ENTITY_CUSTOMER, TASK_TYPE_CUSTOMER_PROFILE};

/// [UNCONFIRMED] failure texts and sub-part names of the emulated task engine (CONTRACT §7.2).
pub const ERR_INVALID_DETAIL_FIELD: &str = "Invalid detail field";
pub const ERR_INVALID_DETAIL_VALUE: &str = "Invalid detail field value";
pub const ERR_INVALID_EMAIL: &str = "Email address is invalid";
pub const ERR_CUSTOMER_NOT_FOUND: &str = "Customer not found";
pub const ERR_CUSTOMER_EXISTS: &str = "Customer already exists";
pub const ERR_ORGANIZATION_NOT_FOUND: &str = "Organization not found";
pub const ON_CUSTOMER_ACCOUNT: &str = "CUSTOMER_ACCOUNT";
pub const ON_DETAIL_FIELD: &str = "DETAIL_FIELD";
pub const ON_ORGANIZATION_ASSOCIATION: &str = "ORGANIZATION_ASSOCIATION";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub details: Vec<DetailValue>,
    pub organization_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(flatten)]
    pub status: TaskStatusResponse,
    pub idempotency_key: String,
    pub items: usize,
}

#[derive(Debug, Default)]
pub struct Store {
    pub customer_fields: Vec<DetailFieldWithConfiguration>,
    pub organizations: BTreeMap<String, OrganizationRef>,
    pub customers: BTreeMap<String, Customer>,
    email_index: HashMap<String, String>,
    pub tasks: BTreeMap<String, Task>,
    /// Idempotency key → (canonical body, task id).
    pub keys: HashMap<String, (String, String)>,
}

/// A seed file: either the shape of GET customer/details, or an object with any of
/// `customerDetailFields`, `organizations`, `customers`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    #[serde(default)]
    pub results: Option<Vec<DetailFieldWithConfiguration>>,
    #[serde(default)]
    pub customer_detail_fields: Option<SeedFields>,
    #[serde(default)]
    pub organizations: Vec<OrganizationRef>,
    #[serde(default)]
    pub customers: Vec<SeedCustomer>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SeedFields {
    Wrapped(DetailFieldsWithConfiguration),
    List(Vec<DetailFieldWithConfiguration>),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedCustomer {
    #[serde(default)]
    pub id: Option<String>,
    pub email: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub details: Vec<DetailValue>,
    #[serde(default)]
    pub organization_ids: Vec<String>,
}

pub fn new_customer_id() -> String {
    format!("qm:{}:{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4())
}

pub fn now_iso() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Store {
    pub fn load_seed(&mut self, seed: Seed) {
        let fields = seed.results.or(match seed.customer_detail_fields {
            Some(SeedFields::Wrapped(w)) => Some(w.results),
            Some(SeedFields::List(l)) => Some(l),
            None => None,
        });
        if let Some(fields) = fields {
            for f in fields {
                self.customer_fields
                    .retain(|g| !g.name.eq_ignore_ascii_case(&f.name));
                self.customer_fields.push(f);
            }
        }
        for o in seed.organizations {
            self.organizations.insert(o.id.clone(), o);
        }
        for c in seed.customers {
            let id = c.id.unwrap_or_else(new_customer_id);
            let customer = Customer {
                id: id.clone(),
                display_name: c.display_name.unwrap_or_else(|| local_part(&c.email)),
                email: c.email,
                details: c.details,
                organization_ids: c.organization_ids,
            };
            self.insert_customer(customer);
        }
    }

    fn insert_customer(&mut self, c: Customer) {
        self.email_index
            .insert(c.email.to_lowercase(), c.id.clone());
        self.customers.insert(c.id.clone(), c);
    }

    pub fn customer_by_email(&self, email: &str) -> Option<&Customer> {
        self.email_index
            .get(&email.trim().to_lowercase())
            .and_then(|id| self.customers.get(id))
    }

    pub fn unfinished_tasks(&self) -> usize {
        self.tasks
            .values()
            .filter(|t| !t.status.status.is_terminal())
            .count()
    }

    pub fn new_task(&mut self, key: &str, body: String, items: usize) -> TaskStatusResponse {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_iso();
        let status = TaskStatusResponse {
            id: id.clone(),
            task_type: TASK_TYPE_CUSTOMER_PROFILE.to_string(),
            status: TaskStatus::NotStarted,
            failures: vec![],
            created_at: now.clone(),
            updated_at: now,
        };
        self.tasks.insert(
            id.clone(),
            Task {
                status: status.clone(),
                idempotency_key: key.to_string(),
                items,
            },
        );
        self.keys.insert(key.to_string(), (body, id));
        status
    }

    pub fn set_task_status(&mut self, id: &str, status: TaskStatus, failures: Vec<TaskFailure>) {
        if let Some(t) = self.tasks.get_mut(id) {
            t.status.status = status;
            t.status.failures = failures;
            t.status.updated_at = now_iso();
        }
    }

    pub fn profile(&self, c: &Customer) -> CustomerProfile {
        CustomerProfile {
            id: c.id.clone(),
            display_name: c.display_name.clone(),
            email: Some(c.email.clone()),
            details: c.details.clone(),
            organizations: c
                .organization_ids
                .iter()
                .filter_map(|id| self.organizations.get(id).cloned())
                .collect(),
            entitlements: vec![],
        }
    }

    /// Applies one customer-profile item, all or nothing: either every part of it is stored or
    /// nothing is and the failure says why.
    pub fn apply_customer_profile(
        &mut self,
        item: &CustomerProfileItem,
    ) -> Result<(), TaskFailure> {
        let p = &item.payload;
        let op = item.operation_type;
        let existing = p
            .customer_id
            .as_ref()
            .and_then(|id| self.customers.get(id))
            .or_else(|| p.email.as_deref().and_then(|e| self.customer_by_email(e)))
            .cloned();
        let entity_id = existing
            .as_ref()
            .map(|c| c.id.clone())
            .or_else(|| p.email.clone())
            .or_else(|| p.customer_id.clone())
            .unwrap_or_default();
        let fail = |on: &str, ids: Vec<String>, error: &str| TaskFailure {
            entity: ENTITY_CUSTOMER.to_string(),
            entity_id: entity_id.clone(),
            operation: op.as_str().to_string(),
            operated_on: on.to_string(),
            operated_on_ids: ids,
            error: error.to_string(),
        };
        if let Some(email) = &p.email
            && !valid_email(email)
        {
            return Err(fail(ON_CUSTOMER_ACCOUNT, vec![], ERR_INVALID_EMAIL));
        }
        match (op, &existing) {
            (ProfileOperation::Create, Some(_)) => {
                return Err(fail(ON_CUSTOMER_ACCOUNT, vec![], ERR_CUSTOMER_EXISTS));
            }
            (ProfileOperation::Update, None) => {
                return Err(fail(ON_CUSTOMER_ACCOUNT, vec![], ERR_CUSTOMER_NOT_FOUND));
            }
            // Creating needs an email; an UPSERT by id alone never creates (CONTRACT §7.5).
            (_, None) if p.email.is_none() => {
                return Err(fail(ON_CUSTOMER_ACCOUNT, vec![], ERR_CUSTOMER_NOT_FOUND));
            }
            _ => {}
        }
        let mut bad_fields = Vec::new();
        let mut bad_values = Vec::new();
        let mut details: Vec<DetailValue> = Vec::new();
        for d in p.details.iter().flatten() {
            match self.customer_fields.iter().find(|f| f.name == d.name) {
                None => bad_fields.push(d.name.clone()),
                Some(def) if !valid_values(def, &d.values) => bad_values.push(d.name.clone()),
                Some(def) => details.push(DetailValue {
                    name: def.name.clone(),
                    values: d.values.clone(),
                }),
            }
        }
        if !bad_fields.is_empty() {
            return Err(fail(ON_DETAIL_FIELD, bad_fields, ERR_INVALID_DETAIL_FIELD));
        }
        if !bad_values.is_empty() {
            return Err(fail(ON_DETAIL_FIELD, bad_values, ERR_INVALID_DETAIL_VALUE));
        }
        let orgs: Vec<String> = p
            .associate_organizations
            .as_ref()
            .map(|a| a.organization_ids.clone())
            .unwrap_or_default();
        let missing: Vec<String> = orgs
            .iter()
            .filter(|id| !self.organizations.contains_key(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(fail(
                ON_ORGANIZATION_ASSOCIATION,
                missing,
                ERR_ORGANIZATION_NOT_FOUND,
            ));
        }
        let mut c = existing.unwrap_or_else(|| {
            let email = p.email.clone().unwrap_or_default();
            Customer {
                id: new_customer_id(),
                display_name: local_part(&email),
                email,
                details: vec![],
                organization_ids: vec![],
            }
        });
        if let Some(n) = &p.display_name {
            c.display_name = n.clone();
        }
        for d in details {
            match c.details.iter_mut().find(|e| e.name == d.name) {
                Some(e) => e.values = d.values,
                None => c.details.push(d),
            }
        }
        // [UNCONFIRMED] associations add, they do not replace (CONTRACT §10.2).
        for o in orgs {
            if !c.organization_ids.contains(&o) {
                c.organization_ids.push(o);
            }
        }
        self.insert_customer(c);
        Ok(())
    }
}

fn local_part(email: &str) -> String {
    email.split('@').next().unwrap_or(email).to_string()
}

fn valid_email(s: &str) -> bool {
    use email_address::{EmailAddress, Options};
    let opts = Options::default()
        .with_required_tld()
        .without_display_text();
    EmailAddress::parse_with_options(s, opts).is_ok()
}

/// The server's own value check: exact option spelling, ISO dates, plain numbers.
fn valid_values(def: &DetailFieldWithConfiguration, values: &[String]) -> bool {
    let options = def.field_type.options.as_deref().unwrap_or(&[]);
    let one = values.len() == 1;
    match def.field_type.name.as_str() {
        "SELECT" => one && options.contains(&values[0]),
        "MULTISELECT" => values.iter().all(|v| options.contains(v)),
        "DATE" => one && values[0].len() == 10 && values[0].parse::<jiff::civil::Date>().is_ok(),
        "NUMBER" => one && values[0].parse::<f64>().is_ok_and(f64::is_finite),
        "EMAIL" => one && valid_email(&values[0]),
        "URL" => one && (values[0].starts_with("https://") || values[0].starts_with("http://")),
        _ => one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{AssociateOrganizations, CustomerProfilePayload, DetailFieldType};

    fn store() -> Store {
        let mut s = Store::default();
        s.customer_fields.push(DetailFieldWithConfiguration {
            name: "Tier".into(),
            field_type: DetailFieldType {
                name: "SELECT".into(),
                options: Some(vec!["Gold".into()]),
            },
            configuration: None,
        });
        s.organizations.insert(
            "1".into(),
            OrganizationRef {
                id: "1".into(),
                name: "Acme".into(),
            },
        );
        s
    }

    fn item(
        op: ProfileOperation,
        email: Option<&str>,
        tier: Option<&str>,
        orgs: &[&str],
    ) -> CustomerProfileItem {
        CustomerProfileItem {
            operation_type: op,
            payload: CustomerProfilePayload {
                email: email.map(str::to_string),
                details: tier.map(|t| {
                    vec![DetailValue {
                        name: "Tier".into(),
                        values: vec![t.into()],
                    }]
                }),
                associate_organizations: (!orgs.is_empty()).then(|| AssociateOrganizations {
                    organization_ids: orgs.iter().map(|s| s.to_string()).collect(),
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn items_apply_all_or_nothing() {
        use ProfileOperation::*;
        let mut s = store();
        let cases: Vec<(CustomerProfileItem, Option<&str>)> = vec![
            (item(Upsert, Some("a@x.io"), Some("Gold"), &["1"]), None),
            (
                item(Create, Some("A@x.io"), None, &[]),
                Some(ERR_CUSTOMER_EXISTS),
            ),
            (
                item(Update, Some("b@x.io"), None, &[]),
                Some(ERR_CUSTOMER_NOT_FOUND),
            ),
            (
                item(Upsert, Some("b@x.io"), Some("gold"), &[]),
                Some(ERR_INVALID_DETAIL_VALUE),
            ),
            (
                item(Upsert, Some("b@x.io"), None, &["2"]),
                Some(ERR_ORGANIZATION_NOT_FOUND),
            ),
            (
                item(Upsert, Some("b@x"), None, &[]),
                Some(ERR_INVALID_EMAIL),
            ),
            (item(Upsert, None, None, &[]), Some(ERR_CUSTOMER_NOT_FOUND)),
            (item(Update, Some("a@x.io"), None, &[]), None),
        ];
        for (it, want) in cases {
            let got = s.apply_customer_profile(&it).err().map(|f| f.error);
            assert_eq!(got.as_deref(), want, "{it:?}");
        }
        assert_eq!(s.customers.len(), 1);
        let a = s.customer_by_email("a@x.io").unwrap().clone();
        assert_eq!(a.organization_ids, vec!["1"]);
        assert!(a.id.starts_with("qm:"));
        let f = s
            .apply_customer_profile(&item(Create, Some("a@x.io"), None, &[]))
            .unwrap_err();
        assert_eq!(f.entity_id, a.id, "existing customers are named by id");
        let f = s
            .apply_customer_profile(&item(Update, Some("new@x.io"), None, &[]))
            .unwrap_err();
        assert_eq!(
            f.entity_id, "new@x.io",
            "unknown customers are named by email"
        );
    }
}
