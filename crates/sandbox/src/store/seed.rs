//! Sandbox seeding: sample data and seed files (detail-field definitions, organizations,
//! customers, products) loaded into a fresh store. Neighbours: the state in `store`.

use super::*;

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
}
