//! The kinds of rows a file can hold, by name: the one enum the options, the journal and the
//! command line share. Lowest layer with `row`: it knows no kind's description (`kinds`).

use serde::{Deserialize, Serialize};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Customer profiles (customer/profile/bulk): email, display name, organizations, details
    #[default]
    Customers,
    /// Organization profiles (organization/profile/bulk): name or id, details
    Organizations,
    /// Customer accounts only (customer/bulk): email, display name
    CustomerAccounts,
    /// Organization records only (organization/bulk): name, id
    OrganizationAccounts,
    /// Detail-field definitions: entity, name, type, options
    DetailFields,
    /// Products (POST/PUT product): name, id
    Products,
    /// Entitlements: customer (id or email) or organization (name or id), product, details
    Entitlements,
    /// Customer detail values (customer/details/bulk): wide or long layout
    CustomerDetails,
    /// Organization detail values (organization/details/bulk): wide or long layout
    OrganizationDetails,
}

impl crate::site::api::Choice for Kind {
    const ALL: &'static [Self] = &[
        Kind::Customers,
        Kind::Organizations,
        Kind::CustomerAccounts,
        Kind::OrganizationAccounts,
        Kind::DetailFields,
        Kind::Products,
        Kind::Entitlements,
        Kind::CustomerDetails,
        Kind::OrganizationDetails,
    ];
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn help(self) -> &'static str {
        match self {
            Kind::Customers => {
                "Customer profiles (customer/profile/bulk): email, display name, organizations, details"
            }
            Kind::Organizations => {
                "Organization profiles (organization/profile/bulk): name or id, details"
            }
            Kind::CustomerAccounts => "Customer accounts only (customer/bulk): email, display name",
            Kind::OrganizationAccounts => "Organization records only (organization/bulk): name, id",
            Kind::DetailFields => "Detail-field definitions: entity, name, type, options",
            Kind::Products => "Products (POST/PUT product): name, id",
            Kind::Entitlements => {
                "Entitlements: customer (id or email) or organization (name or id), product, details"
            }
            Kind::CustomerDetails => {
                "Customer detail values (customer/details/bulk): wide or long layout" // help, not a request
            }
            Kind::OrganizationDetails => {
                "Organization detail values (organization/details/bulk): wide or long layout" // help, not a request
            }
        }
    }
}

impl Kind {
    /// The kinds `export` writes (a table each, in the import template's columns), in the
    /// order its help lists them.
    pub const EXPORTED: &'static [Kind] = &[
        Kind::Organizations,
        Kind::Customers,
        Kind::Products,
        Kind::Entitlements,
        Kind::DetailFields,
    ];

    /// The kinds `delete` takes, in the order its help lists them.
    pub const DELETED: &'static [Kind] = &[
        Kind::Products,
        Kind::Organizations,
        Kind::Customers,
        Kind::Entitlements,
        Kind::DetailFields,
        Kind::CustomerDetails,
        Kind::OrganizationDetails,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Organizations => "organizations",
            Kind::CustomerAccounts => "customer-accounts",
            Kind::OrganizationAccounts => "organization-accounts",
            Kind::DetailFields => "detail-fields",
            Kind::Products => "products",
            Kind::Entitlements => "entitlements",
            Kind::CustomerDetails => "customer-details",
            Kind::OrganizationDetails => "organization-details",
        }
    }

    /// Where a kind runs in a plan of several: what it refers to must already be on the site
    /// (detail fields, organizations, customers, detail values, products, entitlements).
    pub fn plan_rank(self) -> u8 {
        match self {
            Kind::DetailFields => 0,
            Kind::Organizations | Kind::OrganizationAccounts => 1,
            Kind::Customers | Kind::CustomerAccounts => 2,
            Kind::OrganizationDetails | Kind::CustomerDetails => 3,
            Kind::Products => 4,
            Kind::Entitlements => 5,
        }
    }

    /// A record kind (profiles and accounts of customers and organizations): checked column by
    /// column, offline as fast as the reader goes.
    pub fn is_record(self) -> bool {
        matches!(
            self,
            Kind::Customers
                | Kind::Organizations
                | Kind::CustomerAccounts
                | Kind::OrganizationAccounts
        )
    }

    /// The account endpoints' kinds (no detail values).
    pub fn is_account(self) -> bool {
        matches!(self, Kind::CustomerAccounts | Kind::OrganizationAccounts)
    }

    /// Customers of either endpoint (identified by email); else organizations (by name).
    pub fn is_customer(self) -> bool {
        matches!(self, Kind::Customers | Kind::CustomerAccounts)
    }

    /// Whether a record kind's rows carry detail-field values (the account endpoints take none).
    pub fn has_details(self) -> bool {
        matches!(self, Kind::Customers | Kind::Organizations)
    }

    /// What one row of a record kind is: a customer or an organization.
    pub fn noun(self) -> &'static str {
        if self.is_customer() {
            "customer"
        } else {
            "organization"
        }
    }

    /// Kinds whose rows are decided against the site as a whole (definitions, products,
    /// entitlements, current values): `validate` runs their import as a dry run.
    pub fn is_decided_on_site(self) -> bool {
        matches!(
            self,
            Kind::DetailFields
                | Kind::Products
                | Kind::Entitlements
                | Kind::CustomerDetails
                | Kind::OrganizationDetails
        )
    }
}
