//! Sandbox store: the in-memory state of the emulated CSM site (detail-field definitions,
//! organizations, customers, products, entitlements, tasks, idempotency keys) and the pure rules
//! that apply one bulk item to it. `routes` locks it per request, `tasks` applies items when a
//! task runs, `persist` saves what each change marked dirty.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::site::api::model::{
    CreateDetailField, CustomerAccountItem, CustomerDetailOperations, CustomerProfile,
    CustomerProfileItem, DetailField, DetailFieldWithConfiguration, DetailFieldsWithConfiguration,
    DetailOperation, DetailValue, DetailValueOperation, Entitlement, FieldConfiguration,
    OrganizationAccountItem, OrganizationDetailOperations, OrganizationProfile,
    OrganizationProfileItem, OrganizationRef, Product, ProfileOperation, TaskFailure, TaskStatus,
    TaskStatusResponse,
};
use crate::site::api::{ENTITY_CUSTOMER, MAX_DETAIL_FIELDS};

/// [UNCONFIRMED] failure texts and sub-part names of the emulated task engine (CONTRACT §7.2).
pub const ERR_INVALID_DETAIL_FIELD: &str = "Invalid detail field";
pub const ERR_INVALID_DETAIL_VALUE: &str = "Invalid detail field value";
pub const ERR_INVALID_EMAIL: &str = "Email address is invalid";
pub const ERR_CUSTOMER_NOT_FOUND: &str = "Customer not found";
pub const ERR_CUSTOMER_EXISTS: &str = "Customer already exists";
pub const ERR_ORGANIZATION_NOT_FOUND: &str = "Organization not found";
pub const ERR_ORGANIZATION_EXISTS: &str = "Organization already exists";
pub const ERR_NAME_REQUIRED: &str = "A name is required to create an organization";
pub const ERR_PRODUCT_NOT_FOUND: &str = "Product not found";
pub const ERR_TOO_MANY_FIELDS: &str = "Maximum number of detail fields reached";
pub use crate::site::api::ENTITY_ORGANIZATION;
pub const ON_CUSTOMER_ACCOUNT: &str = "CUSTOMER_ACCOUNT";
pub const ON_CUSTOMER_PROFILE: &str = "CUSTOMER_PROFILE";
pub const ON_ORGANIZATION: &str = "ORGANIZATION";
pub const ON_ORGANIZATION_PROFILE: &str = "ORGANIZATION_PROFILE";
pub const ON_DETAIL_FIELD: &str = "DETAIL_FIELD";
pub const ON_DETAIL_FIELD_VALUE: &str = "DETAIL_FIELD_VALUE";
pub const ON_ORGANIZATION_ASSOCIATION: &str = "ORGANIZATION_ASSOCIATION";
pub const ON_CUSTOMER_ASSOCIATION: &str = "CUSTOMER_ASSOCIATION";
pub const ON_PRODUCT_ASSOCIATION: &str = "PRODUCT_ASSOCIATION";

/// The entity kinds that carry detail fields.
pub use crate::site::api::Entity;

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
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub organization: u64,
    pub entitlement: u64,
    pub field: u64,
}

/// A seed file: either the shape of GET customer/details, or an object with any of
/// `customerDetailFields`, `organizationDetailFields`, `entitlementDetailFields`,
/// `organizations`, `customers`, `products`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub results: Option<Vec<DetailFieldWithConfiguration>>,
    #[serde(default)]
    pub customer_detail_fields: Option<SeedFields>,
    #[serde(default)]
    pub organization_detail_fields: Option<SeedFields>,
    #[serde(default)]
    pub entitlement_detail_fields: Option<SeedFields>,
    #[serde(default)]
    pub organizations: Vec<Organization>,
    #[serde(default)]
    pub customers: Vec<SeedCustomer>,
    #[serde(default)]
    pub products: Vec<Product>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SeedFields {
    Wrapped(DetailFieldsWithConfiguration),
    List(Vec<DetailFieldWithConfiguration>),
}

impl SeedFields {
    fn into_vec(self) -> Vec<DetailFieldWithConfiguration> {
        match self {
            SeedFields::Wrapped(w) => w.results,
            SeedFields::List(l) => l,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    pub fn load_seed(&mut self, seed: Seed) -> Result<(), String> {
        let customer = seed
            .results
            .or(seed.customer_detail_fields.map(SeedFields::into_vec));
        for (entity, defs) in [
            (Entity::Customer, customer),
            (
                Entity::Organization,
                seed.organization_detail_fields.map(SeedFields::into_vec),
            ),
            (
                Entity::Entitlement,
                seed.entitlement_detail_fields.map(SeedFields::into_vec),
            ),
        ] {
            for d in defs.unwrap_or_default() {
                self.fields
                    .entry(entity)
                    .or_default()
                    .retain(|g| !same_name(&g.def.name, &d.name));
                self.add_field(entity, d.name, d.field_type);
            }
        }
        for o in seed.organizations {
            let n: u64 =
                o.id.parse()
                    .map_err(|_| format!("organization id '{}' is not numeric", o.id))?;
            self.counters.organization = self.counters.organization.max(n);
            self.put_organization(o);
        }
        for c in seed.customers {
            let id = c.id.unwrap_or_else(new_customer_id);
            let customer = Customer {
                id,
                display_name: c.display_name.unwrap_or_else(|| local_part(&c.email)),
                email: c.email,
                details: c.details,
                organization_ids: c.organization_ids,
            };
            self.put_customer(customer);
        }
        for p in seed.products {
            self.put_product(p);
        }
        Ok(())
    }

    // ---- writes: every change goes through these so `persist` sees it ----

    pub fn touch(&mut self, table: &'static str, id: &str) {
        self.dirty.insert((table, id.to_string()));
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
        self.entitlements.insert(e.id.clone(), e);
    }

    pub fn remove_entitlement(&mut self, id: &str) -> Option<StoredEntitlement> {
        let e = self.entitlements.remove(id)?;
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
        field_type: crate::site::api::model::DetailFieldType,
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
            if opts.is_empty() || opts.len() > crate::site::api::MAX_FIELD_OPTIONS {
                return Err(format!(
                    "A select field needs 1 to {} options",
                    crate::site::api::MAX_FIELD_OPTIONS
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
        self.entitlements
            .values()
            .filter(|e| {
                (e.entity_type == entity_type && e.entity_id == id)
                    || (e.entity_type == ENTITY_ORGANIZATION && orgs.contains(&e.entity_id))
            })
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

    /// Checks `{name, values}` pairs against the entity's fields: unknown names and invalid
    /// values are collected separately, so the failure names every bad field.
    pub fn check_details(
        &self,
        entity: Entity,
        details: &[DetailValue],
    ) -> Result<Vec<DetailValue>, (Vec<String>, Vec<String>)> {
        let mut unknown = Vec::new();
        let mut invalid = Vec::new();
        let mut ok = Vec::new();
        for d in details {
            match self.field(entity, &d.name) {
                None => unknown.push(d.name.clone()),
                Some(f) if !valid_values(&f.def, &d.values) => invalid.push(d.name.clone()),
                Some(f) => ok.push(DetailValue {
                    name: f.def.name.clone(),
                    values: d.values.clone(),
                }),
            }
        }
        if unknown.is_empty() && invalid.is_empty() {
            Ok(ok)
        } else {
            Err((unknown, invalid))
        }
    }

    /// Applies one customer-profile item, all or nothing.
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
        let fail = failure(ENTITY_CUSTOMER, &entity_id, op.as_str());
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
        let details = self
            .check_details(Entity::Customer, p.details.as_deref().unwrap_or(&[]))
            .map_err(|(unknown, invalid)| detail_failure(&fail, unknown, invalid))?;
        let orgs = p
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
        let products = p
            .associate_products
            .as_ref()
            .map(|a| a.product_ids.clone())
            .unwrap_or_default();
        let missing: Vec<String> = products
            .iter()
            .filter(|id| !self.products.contains_key(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(fail(ON_PRODUCT_ASSOCIATION, missing, ERR_PRODUCT_NOT_FOUND));
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
        merge_details(&mut c.details, details);
        // [UNCONFIRMED] associations add, they do not replace (CONTRACT §10.2).
        for o in orgs {
            if !c.organization_ids.contains(&o) {
                c.organization_ids.push(o);
            }
        }
        let id = c.id.clone();
        self.put_customer(c);
        self.associate_products(ENTITY_CUSTOMER, &id, &products);
        Ok(())
    }

    fn associate_products(&mut self, entity_type: &str, id: &str, products: &[String]) {
        for p in products {
            let exists = self
                .entitlements
                .values()
                .any(|e| e.entity_type == entity_type && e.entity_id == id && e.product_id == *p);
            if !exists {
                self.new_entitlement(entity_type, id, p, vec![]);
            }
        }
    }

    /// Applies one organization-profile item (OB2), all or nothing.
    pub fn apply_organization_profile(
        &mut self,
        item: &OrganizationProfileItem,
    ) -> Result<(), TaskFailure> {
        let p = &item.payload;
        let op = item.operation_type;
        let existing = self.find_organization(p.id.as_deref(), p.name.as_deref());
        let entity_id = existing
            .as_ref()
            .map(|o| o.id.clone())
            .or_else(|| p.name.clone())
            .or_else(|| p.id.clone())
            .unwrap_or_default();
        let fail = failure(ENTITY_ORGANIZATION, &entity_id, op.as_str());
        self.check_org_op(
            op,
            existing.as_ref(),
            p.id.as_deref(),
            p.name.as_deref(),
            &fail,
            ON_ORGANIZATION_PROFILE,
        )?;
        let details = self
            .check_details(Entity::Organization, p.details.as_deref().unwrap_or(&[]))
            .map_err(|(unknown, invalid)| detail_failure(&fail, unknown, invalid))?;
        let customers = p
            .associate_customers
            .as_ref()
            .map(|a| a.customer_ids.clone())
            .unwrap_or_default();
        let missing: Vec<String> = customers
            .iter()
            .filter(|id| !self.customers.contains_key(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(fail(
                ON_CUSTOMER_ASSOCIATION,
                missing,
                ERR_CUSTOMER_NOT_FOUND,
            ));
        }
        let products = p
            .associate_products
            .as_ref()
            .map(|a| a.product_ids.clone())
            .unwrap_or_default();
        let missing: Vec<String> = products
            .iter()
            .filter(|id| !self.products.contains_key(*id))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(fail(ON_PRODUCT_ASSOCIATION, missing, ERR_PRODUCT_NOT_FOUND));
        }
        let mut o = match existing {
            Some(o) => o,
            None => self.new_organization(p.name.as_deref().unwrap_or_default()),
        };
        if let (Some(name), Some(_)) = (&p.name, &p.id) {
            o.name = name.trim().to_string();
        }
        merge_details(&mut o.details, details);
        let id = o.id.clone();
        self.put_organization(o);
        for cid in customers {
            if let Some(mut c) = self.customers.get(&cid).cloned()
                && !c.organization_ids.contains(&id)
            {
                c.organization_ids.push(id.clone());
                self.put_customer(c);
            }
        }
        self.associate_products(ENTITY_ORGANIZATION, &id, &products);
        Ok(())
    }

    fn find_organization(&self, id: Option<&str>, name: Option<&str>) -> Option<Organization> {
        id.and_then(|id| self.organizations.get(id))
            .or_else(|| {
                if id.is_some() {
                    None
                } else {
                    name.and_then(|n| self.organization_by_name(n))
                }
            })
            .cloned()
    }

    #[allow(clippy::too_many_arguments)]
    fn check_org_op(
        &self,
        op: ProfileOperation,
        existing: Option<&Organization>,
        id: Option<&str>,
        name: Option<&str>,
        fail: &dyn Fn(&str, Vec<String>, &str) -> TaskFailure,
        on: &str,
    ) -> Result<(), TaskFailure> {
        match (op, existing) {
            (ProfileOperation::Create, Some(_)) => Err(fail(on, vec![], ERR_ORGANIZATION_EXISTS)),
            (ProfileOperation::Update, None) => Err(fail(on, vec![], ERR_ORGANIZATION_NOT_FOUND)),
            // UPSERT with only `id` never creates; `name` is needed to create.
            (_, None) if id.is_some() => Err(fail(on, vec![], ERR_ORGANIZATION_NOT_FOUND)),
            (_, None) if name.is_none_or(|n| n.trim().is_empty()) => {
                Err(fail(on, vec![], ERR_NAME_REQUIRED))
            }
            // A rename onto another organization's name would make names ambiguous.
            (_, Some(o))
                if name.is_some_and(|n| {
                    self.organization_by_name(n)
                        .is_some_and(|other| other.id != o.id)
                }) =>
            {
                Err(fail(on, vec![], ERR_ORGANIZATION_EXISTS))
            }
            _ => Ok(()),
        }
    }

    /// Applies one OB3 item: basic organization record (id/name only).
    pub fn apply_organization_account(
        &mut self,
        item: &OrganizationAccountItem,
    ) -> Result<(), TaskFailure> {
        let p = &item.payload;
        let op = item.operation_type;
        let existing = self.find_organization(p.id.as_deref(), p.name.as_deref());
        let entity_id = existing
            .as_ref()
            .map(|o| o.id.clone())
            .or_else(|| p.name.clone())
            .or_else(|| p.id.clone())
            .unwrap_or_default();
        let fail = failure(ENTITY_ORGANIZATION, &entity_id, op.as_str());
        self.check_org_op(
            op,
            existing.as_ref(),
            p.id.as_deref(),
            p.name.as_deref(),
            &fail,
            ON_ORGANIZATION,
        )?;
        match existing {
            Some(mut o) => {
                if let Some(n) = &p.name {
                    o.name = n.trim().to_string();
                }
                self.put_organization(o);
            }
            None => {
                self.new_organization(p.name.as_deref().unwrap_or_default());
            }
        }
        Ok(())
    }

    /// Applies one CB3 item: customer account (email and display name only).
    pub fn apply_customer_account(
        &mut self,
        item: &CustomerAccountItem,
    ) -> Result<(), TaskFailure> {
        let p = &item.payload;
        let profile = CustomerProfileItem {
            operation_type: item.operation_type,
            payload: crate::site::api::model::CustomerProfilePayload {
                customer_id: p.customer_id.clone(),
                email: p.email.clone(),
                display_name: p.display_name.clone(),
                ..Default::default()
            },
        };
        self.apply_customer_profile(&profile)
    }

    /// Applies one customer's detail operations (CB2), all or nothing for that customer.
    pub fn apply_customer_details(
        &mut self,
        item: &CustomerDetailOperations,
    ) -> Result<(), TaskFailure> {
        let op_name = item
            .operations
            .first()
            .map(|o| o.operation_type.as_str())
            .unwrap_or("UPDATE");
        let fail = failure(ENTITY_CUSTOMER, &item.customer_id, op_name);
        let Some(mut c) = self.customers.get(&item.customer_id).cloned() else {
            return Err(fail(ON_CUSTOMER_PROFILE, vec![], ERR_CUSTOMER_NOT_FOUND));
        };
        self.apply_detail_ops(Entity::Customer, &mut c.details, &item.operations, &fail)?;
        self.put_customer(c);
        Ok(())
    }

    /// Applies one organization's detail operations (OB4).
    pub fn apply_organization_details(
        &mut self,
        item: &OrganizationDetailOperations,
    ) -> Result<(), TaskFailure> {
        let op_name = item
            .operations
            .first()
            .map(|o| o.operation_type.as_str())
            .unwrap_or("UPDATE");
        let fail = failure(ENTITY_ORGANIZATION, &item.organization_id, op_name);
        let Some(mut o) = self.organizations.get(&item.organization_id).cloned() else {
            return Err(fail(
                ON_ORGANIZATION_PROFILE,
                vec![],
                ERR_ORGANIZATION_NOT_FOUND,
            ));
        };
        self.apply_detail_ops(
            Entity::Organization,
            &mut o.details,
            &item.operations,
            &fail,
        )?;
        self.put_organization(o);
        Ok(())
    }

    /// UPDATE replaces a field's values, PATCH adds to a multi-valued field (and replaces a
    /// single-valued one), DELETE clears it [UNCONFIRMED semantics, CONTRACT §7.5].
    fn apply_detail_ops(
        &self,
        entity: Entity,
        values: &mut Vec<DetailValue>,
        ops: &[DetailValueOperation],
        fail: &dyn Fn(&str, Vec<String>, &str) -> TaskFailure,
    ) -> Result<(), TaskFailure> {
        let mut unknown = Vec::new();
        let mut invalid = Vec::new();
        let mut next = values.clone();
        for op in ops {
            let Some(f) = self.field(entity, &op.payload.name) else {
                unknown.push(op.payload.name.clone());
                continue;
            };
            let name = f.def.name.clone();
            let given = op.payload.values.clone().unwrap_or_default();
            match op.operation_type {
                DetailOperation::Delete => next.retain(|v| v.name != name),
                DetailOperation::Update | DetailOperation::Patch => {
                    let multi = f.def.field_type.name == "MULTISELECT";
                    let current = next
                        .iter()
                        .find(|v| v.name == name)
                        .map(|v| v.values.clone())
                        .unwrap_or_default();
                    let merged = crate::site::api::apply_operation(
                        op.operation_type,
                        &current,
                        &given,
                        multi,
                    );
                    if !valid_values(&f.def, &merged) {
                        invalid.push(name);
                        continue;
                    }
                    merge_details(
                        &mut next,
                        vec![DetailValue {
                            name,
                            values: merged,
                        }],
                    );
                }
            }
        }
        if !unknown.is_empty() || !invalid.is_empty() {
            return Err(detail_failure(fail, unknown, invalid));
        }
        *values = next;
        Ok(())
    }

    /// Checks a batch of new definitions: names unique in the request and unused, types
    /// known, the 50-field cap kept. All or nothing (CONTRACT OB1/CB1).
    pub fn check_new_fields(
        &self,
        entity: Entity,
        defs: &[CreateDetailField],
    ) -> Result<(), String> {
        for (i, d) in defs.iter().enumerate() {
            check_definition(d)?;
            if defs[..i].iter().any(|e| same_name(&e.name, &d.name)) {
                return Err(format!(
                    "Duplicate detail field name '{}' in the request",
                    d.name.trim()
                ));
            }
            if self
                .field_list(entity)
                .iter()
                .any(|f| same_name(&f.def.name, &d.name))
            {
                return Err(format!(
                    "A detail field named '{}' already exists",
                    d.name.trim()
                ));
            }
        }
        if self.field_list(entity).len() + defs.len() > MAX_DETAIL_FIELDS {
            return Err(format!(
                "{ERR_TOO_MANY_FIELDS}: at most {MAX_DETAIL_FIELDS} per entity"
            ));
        }
        Ok(())
    }
}

/// Known types, and options only (and always) on SELECT/MULTISELECT.
pub fn check_definition(d: &CreateDetailField) -> Result<(), String> {
    const KNOWN: [&str; 9] = crate::site::api::FIELD_TYPES;
    let t = d.field_type.name.as_str();
    if d.name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if d.name.chars().count() > 255 {
        return Err("name must be at most 255 characters".into());
    }
    if !KNOWN.contains(&t) {
        return Err(format!(
            "Unknown detail field type '{t}'; expected one of {}",
            KNOWN.join(", ")
        ));
    }
    let options = d.field_type.options.as_deref().unwrap_or(&[]);
    if matches!(t, "SELECT" | "MULTISELECT") {
        if options.is_empty() {
            return Err(format!("{t} fields need options"));
        }
        if options.len() > crate::site::api::MAX_FIELD_OPTIONS {
            return Err(format!(
                "At most {} options are allowed",
                crate::site::api::MAX_FIELD_OPTIONS
            ));
        }
    }
    Ok(())
}

fn failure(
    entity: &str,
    entity_id: &str,
    op: &str,
) -> impl Fn(&str, Vec<String>, &str) -> TaskFailure {
    let entity = entity.to_string();
    let entity_id = entity_id.to_string();
    let op = op.to_string();
    move |on: &str, ids: Vec<String>, error: &str| TaskFailure {
        entity: entity.clone(),
        entity_id: entity_id.clone(),
        operation: op.clone(),
        operated_on: on.to_string(),
        operated_on_ids: ids,
        error: error.to_string(),
    }
}

fn detail_failure(
    fail: &dyn Fn(&str, Vec<String>, &str) -> TaskFailure,
    unknown: Vec<String>,
    invalid: Vec<String>,
) -> TaskFailure {
    if !unknown.is_empty() {
        fail(ON_DETAIL_FIELD, unknown, ERR_INVALID_DETAIL_FIELD)
    } else {
        fail(ON_DETAIL_FIELD_VALUE, invalid, ERR_INVALID_DETAIL_VALUE)
    }
}

fn merge_details(into: &mut Vec<DetailValue>, new: Vec<DetailValue>) {
    for d in new {
        match into.iter_mut().find(|e| e.name == d.name) {
            Some(e) => e.values = d.values,
            None => into.push(d),
        }
    }
}

fn local_part(email: &str) -> String {
    email.split('@').next().unwrap_or(email).to_string()
}

pub fn valid_email(s: &str) -> bool {
    use email_address::{EmailAddress, Options};
    let opts = Options::default()
        .with_required_tld()
        .without_display_text();
    EmailAddress::parse_with_options(s, opts).is_ok()
}

/// The server's own value check: exact option spelling, ISO dates, plain numbers.
pub fn valid_values(def: &DetailFieldWithConfiguration, values: &[String]) -> bool {
    let options = def.field_type.options.as_deref().unwrap_or(&[]);
    let one = values.len() == 1;
    match def.field_type.name.as_str() {
        "SELECT" => one && options.contains(&values[0]),
        "MULTISELECT" => values.iter().all(|v| options.contains(v)),
        "DATE" => one && values[0].len() == 10 && values[0].parse::<jiff::civil::Date>().is_ok(),
        "NUMBER" => one && values[0].parse::<f64>().is_ok_and(f64::is_finite),
        "EMAIL" => one && valid_email(&values[0]),
        "URL" => one && (values[0].starts_with("https://") || values[0].starts_with("http://")),
        "BOOLEAN" => {
            one && (values[0] == crate::site::api::BOOLEAN_TRUE
                || values[0] == crate::site::api::BOOLEAN_FALSE)
        }
        _ => one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::api::model::{
        AssociateOrganizations, CustomerProfilePayload, DetailFieldType, DetailOperationPayload,
        OrganizationProfilePayload,
    };

    fn store() -> Store {
        let mut s = Store::default();
        s.add_field(
            Entity::Customer,
            "Tier".into(),
            DetailFieldType {
                name: "SELECT".into(),
                options: Some(vec!["Gold".into()]),
            },
        );
        s.add_field(
            Entity::Customer,
            "Channels".into(),
            DetailFieldType {
                name: "MULTISELECT".into(),
                options: Some(vec!["Email".into(), "Phone".into()]),
            },
        );
        s.add_field(
            Entity::Organization,
            "Region".into(),
            DetailFieldType {
                name: "TEXT".into(),
                options: None,
            },
        );
        s.put_organization(Organization {
            id: "1".into(),
            name: "Acme".into(),
            details: vec![],
        });
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
    fn customer_items_apply_all_or_nothing() {
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

    fn org(op: ProfileOperation, id: Option<&str>, name: Option<&str>) -> OrganizationProfileItem {
        OrganizationProfileItem {
            operation_type: op,
            payload: OrganizationProfilePayload {
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                ..Default::default()
            },
        }
    }

    #[test]
    fn organization_identification_rules() {
        use ProfileOperation::*;
        let mut s = store();
        let cases: Vec<(OrganizationProfileItem, Option<&str>)> = vec![
            (org(Upsert, None, Some(" acme ")), None),
            (
                org(Create, None, Some("ACME")),
                Some(ERR_ORGANIZATION_EXISTS),
            ),
            (
                org(Upsert, Some("77"), None),
                Some(ERR_ORGANIZATION_NOT_FOUND),
            ),
            (org(Upsert, None, None), Some(ERR_NAME_REQUIRED)),
            (
                org(Update, None, Some("Nope")),
                Some(ERR_ORGANIZATION_NOT_FOUND),
            ),
            (org(Upsert, None, Some("Globex")), None),
            (
                org(Update, Some("1"), Some("globex")),
                Some(ERR_ORGANIZATION_EXISTS),
            ),
            (org(Update, Some("1"), Some("Acme Corp")), None),
        ];
        for (it, want) in cases {
            let got = s.apply_organization_profile(&it).err().map(|f| f.error);
            assert_eq!(got.as_deref(), want, "{it:?}");
        }
        let names: Vec<&str> = s.organizations.values().map(|o| o.name.as_str()).collect();
        assert_eq!(names, vec!["Acme Corp", "Globex"]);
        assert_eq!(s.organization_by_name("globex").unwrap().id, "10001");
    }

    #[test]
    fn detail_operations() {
        let mut s = store();
        s.apply_customer_profile(&item(
            ProfileOperation::Upsert,
            Some("a@x.io"),
            Some("Gold"),
            &[],
        ))
        .unwrap();
        let id = s.customer_by_email("a@x.io").unwrap().id.clone();
        let op = |t: DetailOperation, name: &str, values: Option<&[&str]>| DetailValueOperation {
            operation_type: t,
            payload: DetailOperationPayload {
                name: name.into(),
                values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
            },
        };
        let run = |s: &mut Store, ops: Vec<DetailValueOperation>| {
            s.apply_customer_details(&CustomerDetailOperations {
                customer_id: id.clone(),
                operations: ops,
            })
        };
        run(
            &mut s,
            vec![op(DetailOperation::Update, "Channels", Some(&["Email"]))],
        )
        .unwrap();
        run(
            &mut s,
            vec![op(
                DetailOperation::Patch,
                "Channels",
                Some(&["Phone", "Email"]),
            )],
        )
        .unwrap();
        let c = s.customers[&id].clone();
        assert_eq!(c.details[1].values, vec!["Email", "Phone"]);
        let f = run(
            &mut s,
            vec![
                op(DetailOperation::Delete, "Tier", None),
                op(DetailOperation::Update, "Nope", Some(&["x"])),
            ],
        )
        .unwrap_err();
        assert_eq!(
            (f.error.as_str(), f.operated_on_ids.clone()),
            (ERR_INVALID_DETAIL_FIELD, vec!["Nope".to_string()])
        );
        assert_eq!(
            s.customers[&id].details.len(),
            2,
            "nothing applied on failure"
        );
        run(&mut s, vec![op(DetailOperation::Delete, "Tier", None)]).unwrap();
        assert_eq!(s.customers[&id].details.len(), 1);
    }

    #[test]
    fn definition_batches_are_all_or_nothing() {
        let s = store();
        let d = |n: &str, t: &str| CreateDetailField {
            name: n.into(),
            field_type: DetailFieldType {
                name: t.into(),
                options: None,
            },
        };
        assert!(
            s.check_new_fields(Entity::Customer, &[d("A", "TEXT"), d("B", "DATE")])
                .is_ok()
        );
        let e = s
            .check_new_fields(Entity::Customer, &[d("A", "TEXT"), d(" a ", "TEXT")])
            .unwrap_err();
        assert!(e.contains("Duplicate"), "{e}");
        let e = s
            .check_new_fields(Entity::Customer, &[d("tier", "TEXT")])
            .unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        let e = s
            .check_new_fields(Entity::Customer, &[d("X", "COLOUR")])
            .unwrap_err();
        assert!(e.contains("Unknown detail field type"), "{e}");
        let many: Vec<_> = (0..49).map(|i| d(&format!("F{i}"), "TEXT")).collect();
        let e = s.check_new_fields(Entity::Customer, &many).unwrap_err();
        assert!(e.contains("at most 50"), "{e}");
    }
}
