//! Sandbox store: the in-memory state of the emulated CSM site (detail-field definitions,
//! organizations, customers, products, entitlements, tasks, idempotency keys). `http` locks it
//! per request, `tasks` applies items when a task runs, `persist` saves what each change marked
//! dirty.
//!
//! The state lives here; `rules` holds what the sandbox checks and how bulk items apply,
//! `seed` how it is loaded from sample data and seed files.

mod rules;
mod seed;

pub use rules::*;
pub use seed::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use csmport_api::model::{
    CreateDetailField, CustomerAccountItem, CustomerDetailOperations, CustomerProfile,
    CustomerProfileItem, DetailField, DetailFieldWithConfiguration, DetailFieldsWithConfiguration,
    DetailOperation, DetailValue, DetailValueOperation, Entitlement, FieldConfiguration,
    OrganizationAccountItem, OrganizationDetailOperations, OrganizationProfile,
    OrganizationProfileItem, OrganizationRef, Product, ProfileOperation, TaskFailure, TaskStatus,
    TaskStatusResponse,
};
use csmport_api::{ENTITY_CUSTOMER, MAX_DETAIL_FIELDS};

pub use csmport_api::ENTITY_ORGANIZATION;

/// The entity kinds that carry detail fields.
pub use csmport_api::Entity;

/// A stored definition; `id` is the numeric id the single-entity GETs show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    pub id: String,
    #[serde(flatten)]
    pub def: DetailFieldWithConfiguration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub details: Vec<DetailValue>,
    pub organization_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub details: Vec<DetailValue>,
}

/// Who holds an entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEntitlement {
    pub id: String,
    pub product_id: String,
    /// `CUSTOMER` or `ORGANIZATION`.
    pub entity_type: String,
    pub entity_id: String,
    pub details: Vec<DetailValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(flatten)]
    pub status: TaskStatusResponse,
    pub cloud_id: String,
    pub idempotency_key: String,
    pub items: usize,
    /// When it was created and when it ended, in Unix milliseconds: the API's timestamps have
    /// second precision, too coarse for the stale and retention rules.
    pub created_ms: i64,
    #[serde(default)]
    pub finished_ms: Option<i64>,
    /// The work, until the task ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::tasks::Job>,
}

/// What `persist` must save: (table, key).
pub type DirtyKey = (&'static str, String);

pub const T_CUSTOMER: &str = "customer";
pub const T_ORGANIZATION: &str = "organization";
pub const T_PRODUCT: &str = "product";
pub const T_ENTITLEMENT: &str = "entitlement";
pub const T_FIELD: &str = "field";
pub const T_TASK: &str = "task";
pub const T_KEY: &str = "key";
pub const T_META: &str = "meta";

#[derive(Debug, Default)]
pub struct Store {
    /// When each organization made through the API was made (not kept in `--data`: a
    /// reloaded one counts as old), for the listing lag.
    pub made_at: HashMap<String, std::time::Instant>,
    pub fields: BTreeMap<Entity, Vec<FieldDef>>,
    pub organizations: BTreeMap<String, Organization>,
    pub customers: BTreeMap<String, Customer>,
    email_index: HashMap<String, String>,
    pub products: BTreeMap<String, Product>,
    pub entitlements: BTreeMap<String, StoredEntitlement>,
    pub tasks: BTreeMap<String, Task>,
    /// Idempotency key → (canonical body, task id).
    pub keys: HashMap<String, (String, String)>,
    pub counters: Counters,
    pub dirty: BTreeSet<DirtyKey>,
    /// Bumped when a customer or organization is added, removed or replaced: the listings'
    /// orders below are kept until it moves.
    generation: u64,
    /// The entitlements each holder (type, id) has, kept with every change: a holder's
    /// entitlements cost their own number to read, not the store's.
    holdings: HashMap<(String, String), BTreeSet<String>>,
    listing_orders: Option<(u64, std::sync::Arc<Orders>)>,
}

/// The orders the JSM listings page through, made once per change of the store, so a page
/// costs its own size rather than the whole store's (an export of 500,000 customers reads
/// 10,000 pages).
#[derive(Debug, Default)]
pub struct Orders {
    /// Customer ids in the listing's order.
    pub customers: Vec<String>,
    /// Each organization's members, in the same order.
    pub members: HashMap<String, Vec<String>>,
    /// Organization ids, in id order.
    pub organizations: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub organization: u64,
    pub entitlement: u64,
    pub field: u64,
}

pub fn new_customer_id() -> String {
    format!("qm:{}:{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4())
}

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn now_iso() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Names are matched trimmed and case-insensitively (JSM refuses duplicate names that way).
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// Numeric ids sort as numbers.
pub fn id_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.len(), a).cmp(&(b.len(), b))
}

impl Store {
    pub fn touch(&mut self, table: &'static str, id: &str) {
        if table == T_CUSTOMER || table == T_ORGANIZATION {
            self.generation += 1;
        }
        self.dirty.insert((table, id.to_string()));
    }

    /// Customers and organizations were put in place directly (a reload): the listings'
    /// orders are made again.
    pub fn changed(&mut self) {
        self.generation += 1;
    }

    /// The listings' orders as the store holds now.
    pub fn orders(&mut self) -> std::sync::Arc<Orders> {
        if let Some((g, o)) = &self.listing_orders
            && *g == self.generation
        {
            return o.clone();
        }
        let mut orders = Orders {
            customers: self.customers.keys().cloned().collect(),
            ..Orders::default()
        };
        for c in self.customers.values() {
            for o in &c.organization_ids {
                orders
                    .members
                    .entry(o.clone())
                    .or_default()
                    .push(c.id.clone());
            }
        }
        let mut orgs: Vec<String> = self.organizations.keys().cloned().collect();
        orgs.sort_by(|a, b| id_order(a, b));
        orders.organizations = orgs;
        let orders = std::sync::Arc::new(orders);
        self.listing_orders = Some((self.generation, orders.clone()));
        orders
    }

    pub fn put_customer(&mut self, c: Customer) {
        if let Some(old) = self.customers.get(&c.id)
            && !same_name(&old.email, &c.email)
        {
            self.email_index.remove(&old.email.to_lowercase());
        }
        self.email_index
            .insert(c.email.to_lowercase(), c.id.clone());
        self.touch(T_CUSTOMER, &c.id);
        self.customers.insert(c.id.clone(), c);
    }

    pub fn remove_customer(&mut self, id: &str) -> Option<Customer> {
        let c = self.customers.remove(id)?;
        self.email_index.remove(&c.email.to_lowercase());
        self.touch(T_CUSTOMER, id);
        let owned: Vec<String> = self
            .entitlements
            .values()
            .filter(|e| e.entity_type == ENTITY_CUSTOMER && e.entity_id == id)
            .map(|e| e.id.clone())
            .collect();
        for e in owned {
            self.remove_entitlement(&e);
        }
        Some(c)
    }

    pub fn put_organization(&mut self, o: Organization) {
        self.touch(T_ORGANIZATION, &o.id);
        self.organizations.insert(o.id.clone(), o);
    }

    pub fn remove_organization(&mut self, id: &str) -> Option<Organization> {
        let o = self.organizations.remove(id)?;
        self.touch(T_ORGANIZATION, id);
        let members: Vec<Customer> = self
            .customers
            .values()
            .filter(|c| c.organization_ids.iter().any(|x| x == id))
            .cloned()
            .collect();
        for mut c in members {
            c.organization_ids.retain(|x| x != id);
            self.put_customer(c);
        }
        let owned: Vec<String> = self
            .entitlements
            .values()
            .filter(|e| e.entity_type == ENTITY_ORGANIZATION && e.entity_id == id)
            .map(|e| e.id.clone())
            .collect();
        for e in owned {
            self.remove_entitlement(&e);
        }
        Some(o)
    }

    pub fn new_organization(&mut self, name: &str) -> Organization {
        self.counters.organization = self.counters.organization.max(10_000) + 1;
        self.touch(T_META, "counters");
        let o = Organization {
            id: self.counters.organization.to_string(),
            name: name.trim().to_string(),
            details: vec![],
        };
        self.made_at.insert(o.id.clone(), std::time::Instant::now());
        self.put_organization(o.clone());
        o
    }

    pub fn put_product(&mut self, p: Product) {
        self.touch(T_PRODUCT, &p.id);
        self.products.insert(p.id.clone(), p);
    }

    /// Deletes a product and every entitlement to it (DELTAS A1).
    pub fn remove_product(&mut self, id: &str) -> Option<Product> {
        let p = self.products.remove(id)?;
        self.touch(T_PRODUCT, id);
        let held: Vec<String> = self
            .entitlements
            .values()
            .filter(|e| e.product_id == id)
            .map(|e| e.id.clone())
            .collect();
        for e in held {
            self.remove_entitlement(&e);
        }
        Some(p)
    }

    pub fn put_entitlement(&mut self, e: StoredEntitlement) {
        self.touch(T_ENTITLEMENT, &e.id);
        if let Some(old) = self.entitlements.get(&e.id) {
            let holder = (old.entity_type.clone(), old.entity_id.clone());
            if let Some(set) = self.holdings.get_mut(&holder) {
                set.remove(&e.id);
            }
        }
        self.holdings
            .entry((e.entity_type.clone(), e.entity_id.clone()))
            .or_default()
            .insert(e.id.clone());
        self.entitlements.insert(e.id.clone(), e);
    }

    pub fn remove_entitlement(&mut self, id: &str) -> Option<StoredEntitlement> {
        let e = self.entitlements.remove(id)?;
        if let Some(set) = self
            .holdings
            .get_mut(&(e.entity_type.clone(), e.entity_id.clone()))
        {
            set.remove(id);
        }
        self.touch(T_ENTITLEMENT, id);
        Some(e)
    }

    pub fn new_entitlement(
        &mut self,
        entity_type: &str,
        entity_id: &str,
        product_id: &str,
        details: Vec<DetailValue>,
    ) -> StoredEntitlement {
        self.counters.entitlement += 1;
        self.touch(T_META, "counters");
        let e = StoredEntitlement {
            id: (1000 + self.counters.entitlement).to_string(),
            product_id: product_id.to_string(),
            entity_type: entity_type.to_string(),
            entity_id: entity_id.to_string(),
            details,
        };
        self.put_entitlement(e.clone());
        e
    }

    pub fn add_field(
        &mut self,
        entity: Entity,
        name: String,
        field_type: csmport_api::model::DetailFieldType,
    ) {
        self.counters.field += 1;
        self.touch(T_META, "counters");
        let list = self.fields.entry(entity).or_default();
        let position = list.len() as i64 + 1;
        list.push(FieldDef {
            id: (300 + self.counters.field).to_string(),
            def: DetailFieldWithConfiguration {
                name: name.trim().to_string(),
                field_type,
                configuration: Some(FieldConfiguration { position }),
            },
        });
        self.touch(T_FIELD, entity.as_str());
    }

    pub fn put_task(&mut self, t: Task) {
        self.touch(T_TASK, &t.status.id);
        self.tasks.insert(t.status.id.clone(), t);
    }

    pub fn remove_task(&mut self, id: &str) {
        if let Some(t) = self.tasks.remove(id) {
            self.keys.remove(&t.idempotency_key);
            self.touch(T_TASK, id);
            self.touch(T_KEY, &t.idempotency_key);
        }
    }

    /// Rebuilds derived indexes after `persist` loaded the tables.
    pub fn reindex(&mut self) {
        self.email_index = self
            .customers
            .values()
            .map(|c| (c.email.to_lowercase(), c.id.clone()))
            .collect();
        self.holdings.clear();
        for e in self.entitlements.values() {
            self.holdings
                .entry((e.entity_type.clone(), e.entity_id.clone()))
                .or_default()
                .insert(e.id.clone());
        }
    }

    /// Renames a field and/or replaces its options (O3/C3/E3); stored values follow the rename.
    pub fn edit_field(
        &mut self,
        entity: Entity,
        name: &str,
        new_name: &str,
        options: Option<Vec<String>>,
    ) -> Result<FieldDef, String> {
        let list = self.fields.entry(entity).or_default();
        let Some(idx) = list.iter().position(|f| f.def.name == name) else {
            return Err(format!(
                "No {} detail field named '{name}'",
                entity.as_str()
            ));
        };
        let new_name = new_name.trim().to_string();
        if new_name.is_empty() {
            return Err("name must not be empty".into());
        }
        if list
            .iter()
            .enumerate()
            .any(|(i, f)| i != idx && same_name(&f.def.name, &new_name))
        {
            return Err(format!("A detail field named '{new_name}' already exists"));
        }
        let is_select = matches!(
            list[idx].def.field_type.name.as_str(),
            "SELECT" | "MULTISELECT"
        );
        if let Some(opts) = &options {
            if !is_select {
                return Err("Only SELECT and MULTISELECT fields have options".into());
            }
            if opts.is_empty() || opts.len() > csmport_api::MAX_FIELD_OPTIONS {
                return Err(format!(
                    "A select field needs 1 to {} options",
                    csmport_api::MAX_FIELD_OPTIONS
                ));
            }
        }
        let f = &mut list[idx];
        f.def.name = new_name.clone();
        if options.is_some() {
            f.def.field_type.options = options;
        }
        let updated = f.clone();
        self.touch(T_FIELD, entity.as_str());
        if name != new_name {
            self.map_values(entity, |values| {
                let mut changed = false;
                for v in values.iter_mut().filter(|v| v.name == name) {
                    v.name = new_name.clone();
                    changed = true;
                }
                changed
            });
        }
        Ok(updated)
    }

    /// Deletes a field and every stored value of it (O4/C4/E4).
    pub fn delete_field(&mut self, entity: Entity, name: &str) -> bool {
        let list = self.fields.entry(entity).or_default();
        let before = list.len();
        list.retain(|f| f.def.name != name);
        if list.len() == before {
            return false;
        }
        for (i, f) in list.iter_mut().enumerate() {
            f.def.configuration = Some(FieldConfiguration {
                position: i as i64 + 1,
            });
        }
        self.touch(T_FIELD, entity.as_str());
        self.map_values(entity, |values| {
            let n = values.len();
            values.retain(|v| v.name != name);
            values.len() != n
        });
        true
    }

    /// Runs `f` on the detail values of every entity of a kind, saving those it changed.
    fn map_values(&mut self, entity: Entity, mut f: impl FnMut(&mut Vec<DetailValue>) -> bool) {
        let mut touched = Vec::new();
        match entity {
            Entity::Customer => {
                for c in self.customers.values_mut() {
                    if f(&mut c.details) {
                        touched.push((T_CUSTOMER, c.id.clone()));
                    }
                }
            }
            Entity::Organization => {
                for o in self.organizations.values_mut() {
                    if f(&mut o.details) {
                        touched.push((T_ORGANIZATION, o.id.clone()));
                    }
                }
            }
            Entity::Entitlement => {
                for e in self.entitlements.values_mut() {
                    if f(&mut e.details) {
                        touched.push((T_ENTITLEMENT, e.id.clone()));
                    }
                }
            }
        }
        self.dirty.extend(touched);
    }

    /// Sets one field's values on one holder's list (O8/C8/E7), checked against the definition.
    pub fn set_value(
        &self,
        entity: Entity,
        values: &mut Vec<DetailValue>,
        name: &str,
        new: Vec<String>,
    ) -> Result<DetailField, String> {
        let Some(f) = self.field(entity, name) else {
            return Err(format!(
                "{ERR_INVALID_DETAIL_FIELD}: no {} detail field named '{name}'",
                entity.as_str()
            ));
        };
        if !valid_values(&f.def, &new) {
            return Err(format!(
                "{ERR_INVALID_DETAIL_VALUE} for '{name}' ({})",
                f.def.field_type.name
            ));
        }
        merge_details(
            values,
            vec![DetailValue {
                name: f.def.name.clone(),
                values: new.clone(),
            }],
        );
        Ok(DetailField {
            id: f.id.clone(),
            name: f.def.name.clone(),
            field_type: f.def.field_type.clone(),
            values: new,
            configuration: None,
        })
    }

    // ---- reads ----

    pub fn field_list(&self, entity: Entity) -> &[FieldDef] {
        self.fields.get(&entity).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn field(&self, entity: Entity, name: &str) -> Option<&FieldDef> {
        self.field_list(entity).iter().find(|f| f.def.name == name)
    }

    pub fn customer_by_email(&self, email: &str) -> Option<&Customer> {
        self.email_index
            .get(&email.trim().to_lowercase())
            .and_then(|id| self.customers.get(id))
    }

    pub fn organization_by_name(&self, name: &str) -> Option<&Organization> {
        self.organizations
            .values()
            .find(|o| same_name(&o.name, name))
    }

    pub fn unfinished_tasks(&self, cloud_id: &str) -> usize {
        self.tasks
            .values()
            .filter(|t| t.cloud_id == cloud_id && !t.status.status.is_terminal())
            .count()
    }

    pub fn set_task_status(&mut self, id: &str, status: TaskStatus, failures: Vec<TaskFailure>) {
        if let Some(t) = self.tasks.get_mut(id) {
            let terminal = status.is_terminal();
            t.status.status = status;
            t.status.failures = failures;
            t.status.updated_at = now_iso();
            if terminal {
                t.finished_ms = Some(now_ms());
                t.job = None;
            }
        }
        self.touch(T_TASK, id);
    }

    pub fn entitlement_view(&self, e: &StoredEntitlement) -> Entitlement {
        let product = self
            .products
            .get(&e.product_id)
            .cloned()
            .unwrap_or(Product {
                id: e.product_id.clone(),
                name: String::new(),
            });
        Entitlement {
            id: e.id.clone(),
            product,
            details: e.details.clone(),
        }
    }

    /// Entitlements of one holder, optionally of one product; for customers also those
    /// inherited from their organizations (CONTRACT C9).
    pub fn entitlements_of(
        &self,
        entity_type: &str,
        id: &str,
        product: Option<&str>,
        inherited: bool,
    ) -> Vec<Entitlement> {
        let orgs: Vec<String> = if inherited && entity_type == ENTITY_CUSTOMER {
            self.customers
                .get(id)
                .map(|c| c.organization_ids.clone())
                .unwrap_or_default()
        } else {
            vec![]
        };
        // Through the holders' index: a holder's entitlements cost their own number, not
        // the store's (an export reads one holder at a time).
        let mut ids: Vec<&String> = std::iter::once((entity_type, id))
            .chain(orgs.iter().map(|o| (ENTITY_ORGANIZATION, o.as_str())))
            .filter_map(|(t, i)| self.holdings.get(&(t.to_string(), i.to_string())))
            .flatten()
            .collect();
        // In the store's order, as before the index.
        ids.sort();
        ids.dedup();
        ids.into_iter()
            .filter_map(|i| self.entitlements.get(i))
            .filter(|e| product.is_none_or(|p| e.product_id == p))
            .map(|e| self.entitlement_view(e))
            .collect()
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
                .filter_map(|id| self.organizations.get(id))
                .map(|o| OrganizationRef {
                    id: o.id.clone(),
                    name: o.name.clone(),
                })
                .collect(),
            entitlements: Some(
                self.entitlements_of(ENTITY_CUSTOMER, &c.id, None, false)
                    .into_iter()
                    .map(|e| serde_json::to_value(e).expect("entitlement serializes"))
                    .collect(),
            ),
        }
    }

    pub fn organization_profile(&self, o: &Organization) -> OrganizationProfile {
        OrganizationProfile {
            id: o.id.clone(),
            name: o.name.clone(),
            details: o.details.clone(),
            entitlements: self.entitlements_of(ENTITY_ORGANIZATION, &o.id, None, false),
        }
    }

    /// Values joined with their definitions, as O5/C5 show them (with field ids).
    pub fn detail_fields(&self, entity: Entity, values: &[DetailValue]) -> Vec<DetailField> {
        values
            .iter()
            .filter_map(|v| {
                let f = self.field(entity, &v.name)?;
                Some(DetailField {
                    id: f.id.clone(),
                    name: f.def.name.clone(),
                    field_type: f.def.field_type.clone(),
                    values: v.values.clone(),
                    configuration: f.def.configuration.clone(),
                })
            })
            .collect()
    }

    // ---- rules shared by the synchronous endpoints and the task engine ----
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, orgs: &[&str]) -> Customer {
        Customer {
            id: id.into(),
            email: format!("{id}@example.com"),
            display_name: id.into(),
            details: Vec::new(),
            organization_ids: orgs.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn listing_orders_follow_every_change() {
        let mut s = Store::default();
        s.put_customer(customer("b", &["o1"]));
        s.put_customer(customer("a", &[]));
        let first = s.orders();
        assert_eq!(first.customers, ["a", "b"]);
        assert_eq!(first.members["o1"], ["b"]);
        // Unchanged: the same orders, not made again.
        assert!(std::sync::Arc::ptr_eq(&first, &s.orders()));
        s.put_customer(customer("c", &["o1"]));
        s.remove_customer("b");
        let now = s.orders();
        assert_eq!(now.customers, ["a", "c"]);
        assert_eq!(now.members["o1"], ["c"]);
        s.put_organization(Organization {
            id: "10".into(),
            name: "Ten".into(),
            details: Vec::new(),
        });
        s.put_organization(Organization {
            id: "9".into(),
            name: "Nine".into(),
            details: Vec::new(),
        });
        assert_eq!(s.orders().organizations, ["9", "10"]);
    }

    #[test]
    fn a_holder_s_entitlements_follow_every_change() {
        let mut s = Store::default();
        s.put_customer(customer("a", &["9"]));
        s.put_product(Product {
            id: "p".into(),
            name: "P".into(),
        });
        let mine = s.new_entitlement(ENTITY_CUSTOMER, "a", "p", Vec::new());
        let orgs = s.new_entitlement(ENTITY_ORGANIZATION, "9", "p", Vec::new());
        let ids = |s: &Store, inherited| -> Vec<String> {
            s.entitlements_of(ENTITY_CUSTOMER, "a", None, inherited)
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids(&s, false), std::slice::from_ref(&mine.id));
        assert_eq!(ids(&s, true), [mine.id.clone(), orgs.id.clone()]);
        // Moved to another holder, then removed: the index follows.
        let mut moved = mine.clone();
        moved.entity_id = "b".into();
        s.put_entitlement(moved);
        assert!(ids(&s, false).is_empty());
        s.remove_entitlement(&orgs.id);
        assert!(ids(&s, true).is_empty());
        s.reindex();
        assert_eq!(
            s.entitlements_of(ENTITY_CUSTOMER, "b", None, false).len(),
            1
        );
    }
}
