//! The account kinds: customers through `customer/bulk` and organizations through
//! `organization/bulk` (identity and name only, 50 a task). They are the profile kinds'
//! descriptions with their account endpoints (`customers`, `organizations`).

pub type CustomerAccounts = super::customers::CustomerKind<true>;
pub type OrganizationAccounts = super::organizations::OrganizationKind<true>;
