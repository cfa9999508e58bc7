//! Sandbox rules: what the emulated API refuses and how a bulk item applies to the state — the
//! contract's identification, association and value rules, in one place. Neighbours: the state
//! in `store`, the handlers in `http`, the task engine in `tasks`.

use super::*;

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
pub const ON_CUSTOMER_ACCOUNT: &str = "CUSTOMER_ACCOUNT";
pub const ON_CUSTOMER_PROFILE: &str = "CUSTOMER_PROFILE";
pub const ON_ORGANIZATION: &str = "ORGANIZATION";
pub const ON_ORGANIZATION_PROFILE: &str = "ORGANIZATION_PROFILE";
pub const ON_DETAIL_FIELD: &str = "DETAIL_FIELD";
pub const ON_DETAIL_FIELD_VALUE: &str = "DETAIL_FIELD_VALUE";
pub const ON_ORGANIZATION_ASSOCIATION: &str = "ORGANIZATION_ASSOCIATION";
pub const ON_CUSTOMER_ASSOCIATION: &str = "CUSTOMER_ASSOCIATION";
pub const ON_PRODUCT_ASSOCIATION: &str = "PRODUCT_ASSOCIATION";

impl Store {
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

    pub(super) fn associate_products(&mut self, entity_type: &str, id: &str, products: &[String]) {
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

    pub(super) fn find_organization(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Option<Organization> {
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
    pub(super) fn check_org_op(
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
            payload: csmport_api::model::CustomerProfilePayload {
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
    pub(super) fn apply_detail_ops(
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
                    let merged =
                        csmport_api::apply_operation(op.operation_type, &current, &given, multi);
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
    const KNOWN: [&str; 9] = csmport_api::FIELD_TYPES;
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
        if options.len() > csmport_api::MAX_FIELD_OPTIONS {
            return Err(format!(
                "At most {} options are allowed",
                csmport_api::MAX_FIELD_OPTIONS
            ));
        }
    }
    Ok(())
}

pub(super) fn failure(
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

pub(super) fn detail_failure(
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

pub(super) fn merge_details(into: &mut Vec<DetailValue>, new: Vec<DetailValue>) {
    for d in new {
        match into.iter_mut().find(|e| e.name == d.name) {
            Some(e) => e.values = d.values,
            None => into.push(d),
        }
    }
}

pub(super) fn local_part(email: &str) -> String {
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
            one && (values[0] == csmport_api::BOOLEAN_TRUE
                || values[0] == csmport_api::BOOLEAN_FALSE)
        }
        _ => one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csmport_api::model::{
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
