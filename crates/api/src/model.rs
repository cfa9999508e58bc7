//! Wire types of the CSM REST API: the one place where JSON shapes live, shared by the client
//! (`site`, the engine) and the sandbox (`sandbox::routes`). Shapes follow CONTRACT.md; names
//! the contract marks unconfirmed are kept here so a correction is a one-line change.
//!
//! Reading is tolerant, writing exact: responses decode with unknown members ignored, `null`
//! taken for an empty or absent value wherever a member is optional or unconfirmed, ids given
//! as numbers taken as strings, and an unknown task status kept verbatim. Request bodies are
//! serialized exactly as documented.

use serde::{Deserialize, Serialize};

/// `DetailFieldType`: `{ "name": "SELECT", "options": [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailFieldType {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldConfiguration {
    pub position: i64,
}

/// One definition in `DetailFieldsWithConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailFieldWithConfiguration {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: DetailFieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<FieldConfiguration>,
}

/// GET `customer/details` (and organization/entitlement details) response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailFieldsWithConfiguration {
    pub results: Vec<DetailFieldWithConfiguration>,
}

/// `CreateDetailFieldRequest` / `CreateDetailFieldResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDetailField {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: DetailFieldType,
}

/// A `{name, values}` pair inside profile payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailValue {
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<String>,
}

/// `operationType` of profile bulk items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProfileOperation {
    Create,
    Update,
    Upsert,
}

impl ProfileOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileOperation::Create => "CREATE",
            ProfileOperation::Update => "UPDATE",
            ProfileOperation::Upsert => "UPSERT",
        }
    }
}

/// `associateOrganizations` of a customer profile payload. The contract types organization ids
/// as strings, a live caller sends numbers: accept both, send strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociateOrganizations {
    #[serde(deserialize_with = "string_or_number_vec")]
    pub organization_ids: Vec<String>,
}

/// Payload of one CB4 item. Unknown members are refused by the sandbox (`deny_unknown_fields`)
/// so that a typo in our client shows up in tests rather than being silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerProfilePayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<DetailValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_organizations: Option<AssociateOrganizations>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_products: Option<AssociateProducts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerProfileItem {
    pub operation_type: ProfileOperation,
    pub payload: CustomerProfilePayload,
}

/// POST `customer/profile/bulk` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerProfileBulkRequest {
    pub customer_profiles: Vec<CustomerProfileItem>,
}

/// `TaskSubmitResponse`: `statusUrl` is relative to the CSM base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSubmitResponse {
    pub id: String,
    /// [UNCONFIRMED form] When missing, the task is polled at `tasks/{id}`.
    #[serde(default, deserialize_with = "null_default")]
    pub status_url: String,
}

/// Task status (CONTRACT §7.2). A value the client does not know is kept verbatim in
/// `Other`: shown as it is, and taken as not finished (bounded by `--task-timeout`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    NotStarted,
    InProgress,
    Finished,
    Failed,
    Other(String),
}

impl TaskStatus {
    pub fn parse(s: &str) -> TaskStatus {
        match s {
            "NOT_STARTED" => TaskStatus::NotStarted,
            "IN_PROGRESS" => TaskStatus::InProgress,
            "FINISHED" => TaskStatus::Finished,
            "FAILED" => TaskStatus::Failed,
            // Shown and stored as it is, so within bounds and on one line.
            other => TaskStatus::Other(
                crate::text::one_line(&crate::cut(other, MAX_STATUS_CHARS)).into_owned(),
            ),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::NotStarted => "NOT_STARTED",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Finished => "FINISHED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Other(s) => s,
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskStatus::Finished | TaskStatus::Failed)
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        Ok(match v {
            Some(serde_json::Value::String(s)) => TaskStatus::parse(&s),
            None | Some(serde_json::Value::Null) => TaskStatus::Other("(none)".into()),
            Some(other) => TaskStatus::Other(other.to_string()),
        })
    }
}

/// The most of an undocumented task status kept.
pub const MAX_STATUS_CHARS: usize = 100;

/// One entry of `failures` in `TaskStatusResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    #[serde(default, deserialize_with = "null_default")]
    pub entity: String,
    /// [UNCONFIRMED] for a failed CREATE: the identifying input, an id, or null.
    #[serde(default, deserialize_with = "null_or_string_or_number")]
    pub entity_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub operation: String,
    #[serde(default, deserialize_with = "null_default")]
    pub operated_on: String,
    #[serde(default, deserialize_with = "null_default")]
    pub operated_on_ids: Vec<String>,
    /// Cut (`MAX_ERROR_CHARS`) and on one line: it becomes a row's reason in every report.
    #[serde(default, deserialize_with = "error_text")]
    pub error: String,
}

/// GET `tasks/{id}` response. `type` is an open string: only one value is documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatusResponse {
    #[serde(default, deserialize_with = "null_or_string_or_number")]
    pub id: String,
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub task_type: String,
    pub status: TaskStatus,
    #[serde(default, deserialize_with = "null_default")]
    pub failures: Vec<TaskFailure>,
    #[serde(default, deserialize_with = "null_default")]
    pub created_at: String,
    #[serde(default, deserialize_with = "null_default")]
    pub updated_at: String,
}

/// `RestError` as the sandbox emits it. The client parses errors leniently (`api::error_text`),
/// since the real body shape is unconfirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestError {
    pub error_message: String,
    pub errors: Vec<String>,
    pub status_code: u16,
}

/// `{id, name}` reference to an organization inside customer responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationRef {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

/// POST `customer/profile/fetch` body (C17, shape unconfirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfileFetchRequest {
    pub customer_ids: Vec<String>,
}

/// One customer profile in fetch responses (C15/C17, shape unconfirmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfile {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub details: Vec<DetailValue>,
    #[serde(default, deserialize_with = "null_default")]
    pub organizations: Vec<OrganizationRef>,
    /// The single-profile GET (C15) includes entitlements; the 25-per-call fetch (C17) is
    /// described without them (DELTAS A7), so the sandbox leaves them out there and the
    /// client never reads them from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlements: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfileFetchResponse {
    #[serde(deserialize_with = "null_default")]
    pub results: Vec<CustomerProfile>,
}

/// `associateProducts` of profile payloads [UNCONFIRMED key name].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociateProducts {
    pub product_ids: Vec<String>,
}

/// `associateCustomers` of an organization profile payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociateCustomers {
    pub customer_ids: Vec<String>,
}

/// Payload of one OB2 item (and the body of O14).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationProfilePayload {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string_or_number"
    )]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<DetailValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_customers: Option<AssociateCustomers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_products: Option<AssociateProducts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationProfileItem {
    pub operation_type: ProfileOperation,
    pub payload: OrganizationProfilePayload,
}

/// POST `organization/profile/bulk` body (OB2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationProfileBulkRequest {
    pub organization_profiles: Vec<OrganizationProfileItem>,
}

/// One OB3 item [UNCONFIRMED shape]: basic organization record, no details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationAccountPayload {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_string_or_number"
    )]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationAccountItem {
    pub operation_type: ProfileOperation,
    pub payload: OrganizationAccountPayload,
}

/// POST `organization/bulk` body (OB3) [UNCONFIRMED key `organizations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationBulkRequest {
    pub organizations: Vec<OrganizationAccountItem>,
}

/// One CB3 item [UNCONFIRMED shape]: email and display name only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerAccountPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerAccountItem {
    pub operation_type: ProfileOperation,
    pub payload: CustomerAccountPayload,
}

/// POST `customer/bulk` body (CB3) [UNCONFIRMED key `customers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerBulkRequest {
    pub customers: Vec<CustomerAccountItem>,
}

/// `operationType` of detail-value operations (CB2/OB4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DetailOperation {
    Update,
    Patch,
    Delete,
}

impl DetailOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            DetailOperation::Update => "UPDATE",
            DetailOperation::Patch => "PATCH",
            DetailOperation::Delete => "DELETE",
        }
    }
}

/// Payload of a detail-value operation; `values` is absent for DELETE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailOperationPayload {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetailValueOperation {
    pub operation_type: DetailOperation,
    pub payload: DetailOperationPayload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerDetailOperations {
    pub customer_id: String,
    pub operations: Vec<DetailValueOperation>,
}

/// POST `customer/details/bulk` body (CB2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerDetailsBulkRequest {
    pub customers: Vec<CustomerDetailOperations>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationDetailOperations {
    #[serde(deserialize_with = "string_or_number")]
    pub organization_id: String,
    pub operations: Vec<DetailValueOperation>,
}

/// POST `organization/details/bulk` body (OB4) [UNCONFIRMED key names].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationDetailsBulkRequest {
    pub organizations: Vec<OrganizationDetailOperations>,
}

/// POST `{entity}/details/definitions/bulk` body (CB1/OB1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetailDefinitionsBulkRequest {
    pub detail_fields: Vec<CreateDetailField>,
}

/// PUT `{entity}/details/{fieldName}` body [UNCONFIRMED member names].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditDetailField {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
}

/// `UpdateDetailFieldRequest`: `{ "values": [string] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateDetailField {
    pub values: Vec<String>,
}

/// Value-bearing `DetailField` inside O5/C5, and `UpdateDetailFieldResponse` (no configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetailField {
    #[serde(default, deserialize_with = "null_or_string_or_number")]
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: DetailFieldType,
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<FieldConfiguration>,
}

/// O5 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub details: Vec<DetailField>,
}

/// C5 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub details: Vec<DetailField>,
    #[serde(default, deserialize_with = "null_default")]
    pub organizations: Vec<OrganizationRef>,
}

/// Product `{id, name}`; also the P2/P4 request body (name only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductName {
    pub name: String,
}

/// P1 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginatedProducts {
    #[serde(deserialize_with = "null_default")]
    pub results: Vec<Product>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_cursor: Option<String>,
}

/// Entitlement [UNCONFIRMED shape]: `{id, product: {id, name}, details: [{name, values}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub product: Product,
    #[serde(default, deserialize_with = "null_default")]
    pub details: Vec<DetailValue>,
}

/// O10/C10 body [UNCONFIRMED].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEntitlement {
    pub product_id: String,
    #[serde(default)]
    pub details: Vec<DetailValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlements {
    pub results: Vec<Entitlement>,
}

/// E8 response [UNCONFIRMED page wrapper].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementPage {
    #[serde(deserialize_with = "null_default")]
    pub results: Vec<Entitlement>,
    #[serde(default, deserialize_with = "null_default")]
    pub start: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub limit: u64,
    /// When missing, a page shorter than asked for is the last one.
    #[serde(default, deserialize_with = "null_default")]
    pub is_last_page: bool,
}

/// O13 response [UNCONFIRMED].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationProfile {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub details: Vec<DetailValue>,
    #[serde(default, deserialize_with = "null_default")]
    pub entitlements: Vec<Entitlement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationProfileFetchResponse {
    #[serde(deserialize_with = "null_default")]
    pub results: Vec<OrganizationProfile>,
}

/// O15 body [UNCONFIRMED].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationProfileFetchRequest {
    #[serde(deserialize_with = "string_or_number_vec")]
    pub organization_ids: Vec<String>,
}

/// O12 body [UNCONFIRMED]: ids and/or names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganizationFetchRequest {
    #[serde(default, deserialize_with = "string_or_number_vec")]
    pub organization_ids: Vec<String>,
    #[serde(default)]
    pub organization_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationFetchResponse {
    #[serde(deserialize_with = "null_default")]
    pub results: Vec<OrganizationRef>,
}

/// O11 body / O6 body [UNCONFIRMED].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationName {
    pub name: String,
}

/// C11 body / response and C12 response [UNCONFIRMED].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerAccount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub email: String,
    pub display_name: String,
}

/// C13 body [UNCONFIRMED].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisplayName {
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailFieldQuery {
    pub name: String,
    pub value: String,
}

/// C7 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchByDetailFieldRequest {
    pub detail_fields: Vec<DetailFieldQuery>,
}

/// One customer a C7 search found [UNCONFIRMED members: third parties read `id` or
/// `accountId`, `displayName` or `name`, `email` when the caller may see it].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    #[serde(alias = "accountId", deserialize_with = "null_or_string_or_number")]
    pub id: String,
    #[serde(alias = "displayName", default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// C7 response [UNCONFIRMED page members]. The hits are under `customers` (DELTAS C1: two
/// independent callers read that key); `results` and `values` are read too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchByDetailFieldResponse {
    #[serde(deserialize_with = "null_default")]
    pub customers: Vec<SearchHit>,
    #[serde(default, deserialize_with = "null_default")]
    pub page: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub max_results: u64,
    /// Absent: the caller pages on until a short or empty page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_last: Option<bool>,
}

/// A JSM listing page: `{start, limit, size, isLastPage, values}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsmPage<T> {
    #[serde(default, deserialize_with = "null_default")]
    pub start: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub limit: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub size: u64,
    #[serde(default, deserialize_with = "null_default")]
    pub is_last_page: bool,
    #[serde(
        deserialize_with = "null_default",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub values: Vec<T>,
}

/// A JSM organization in listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsmOrganization {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

/// A JSM service project in the service desk listing (`GET servicedesk`): its id, and the
/// project's name and key for messages (JSM sends more; unknown members are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsmServiceDesk {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub project_name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub project_key: String,
}

/// A JSM user (customer) in listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsmUser {
    pub account_id: String,
    /// JSM hides it from callers without the permission to see it: such users cannot be
    /// found by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub display_name: String,
}

fn opt_string_or_number<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<StringOrNumber>::deserialize(d)?.map(StringOrNumber::into_string))
}

fn string_or_number<'de, D>(d: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(StringOrNumber::deserialize(d)?.into_string())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    S(String),
    N(serde_json::Number),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            StringOrNumber::S(s) => s,
            StringOrNumber::N(n) => n.to_string(),
        }
    }
}

/// `null` read as the type's empty value.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A server's error text, `null` as empty, cut and on one line (`api::error_text`'s rules).
fn error_text<'de, D>(d: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let s: String = null_default(d)?;
    Ok(crate::text::one_line(&crate::cut(&s, crate::MAX_ERROR_CHARS)).into_owned())
}

/// A string, a number taken as its text, or `null` taken as empty.
fn null_or_string_or_number<'de, D>(d: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(opt_string_or_number(d)?.unwrap_or_default())
}

fn string_or_number_vec<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Vec::<StringOrNumber>::deserialize(d)?
        .into_iter()
        .map(StringOrNumber::into_string)
        .collect())
}

// Where each listing keeps its list (`lists`): a missing list is refused, never read as empty.
impl crate::lists::Listing for DetailFieldsWithConfiguration {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for CustomerProfileFetchResponse {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for OrganizationProfileFetchResponse {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for OrganizationFetchResponse {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for PaginatedProducts {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for Entitlements {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for EntitlementPage {
    const MEMBERS: &'static [&'static str] = crate::lists::CSM;
}
impl crate::lists::Listing for SearchByDetailFieldResponse {
    const MEMBERS: &'static [&'static str] = crate::lists::SEARCH;
}
impl<T> crate::lists::Listing for JsmPage<T> {
    const MEMBERS: &'static [&'static str] = crate::lists::JSM;
}
impl crate::lists::Keyed for JsmUser {
    fn key(&self) -> &str {
        &self.account_id
    }
}
impl crate::lists::Keyed for JsmOrganization {
    fn key(&self) -> &str {
        &self.id
    }
}
impl crate::lists::Keyed for JsmServiceDesk {
    fn key(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_answers_are_read_whatever_their_envelope() {
        let cases = [
            (
                r#"{"customers":[{"id":"a","name":"A"}],"page":0,"maxResults":50,"isLast":true}"#,
                Some(true),
            ),
            (
                r#"{"results":[{"accountId":"a","displayName":"A","extra":1}]}"#,
                None,
            ),
            (r#"{"values":[{"id":"a","name":null}],"isLast":null}"#, None),
        ];
        for (body, last) in cases {
            let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
            crate::lists::find_list(
                &mut v,
                <SearchByDetailFieldResponse as crate::lists::Listing>::MEMBERS,
            )
            .unwrap();
            let r: SearchByDetailFieldResponse = serde_json::from_value(v).unwrap();
            assert_eq!(r.customers[0].id, "a", "{body}");
            assert_eq!(r.is_last, last, "{body}");
        }
        // Without a list it is not an empty search: it does not decode.
        assert!(serde_json::from_str::<SearchByDetailFieldResponse>(r#"{"page":0}"#).is_err());
    }

    #[test]
    fn a_task_s_texts_are_bounded_and_on_one_line() {
        let huge = "x".repeat(5_000_000);
        let body = serde_json::json!({
            "id": "t", "status": format!("\u{1b}]0;pwned\u{7}{}", "S".repeat(500)),
            "failures": [{"entityId": "a@x.io", "error": format!("bad\nline{huge}")}]
        });
        let t: TaskStatusResponse = serde_json::from_value(body).unwrap();
        let e = &t.failures[0].error;
        assert!(e.starts_with("bad\\nline") && e.len() < 1100, "{}", e.len());
        assert!(e.ends_with("more bytes"), "{}", &e[e.len() - 40..]);
        let TaskStatus::Other(status) = &t.status else {
            panic!("{:?}", t.status)
        };
        assert!(status.starts_with("\\x1b]0;pwned\\x07SSS"), "{status}");
        assert!(status.len() < 150, "{status}");
    }

    #[test]
    fn task_status_parses_documented_example_and_tolerates_unknowns() {
        let body =
            r#"{"id":"t","type":"SOMETHING_NEW","status":"FINISHED","failures":null,"extra":1}"#;
        let t: TaskStatusResponse = serde_json::from_str(body).unwrap();
        assert_eq!(t.status, TaskStatus::Finished);
        assert!(t.failures.is_empty());
        let t: TaskStatusResponse =
            serde_json::from_str(r#"{"id":"t","status":"COMPLETED"}"#).unwrap();
        assert_eq!(t.status, TaskStatus::Other("COMPLETED".into()));
        assert_eq!(t.status.as_str(), "COMPLETED");
        assert!(!t.status.is_terminal());
        assert_eq!(
            serde_json::to_value(TaskStatus::Other("PENDING".into())).unwrap(),
            serde_json::json!("PENDING")
        );
    }

    /// Parses a documented example into `T` and checks that serializing it gives the same JSON:
    /// no member is lost, renamed or invented.
    fn round_trip<T: serde::de::DeserializeOwned + Serialize>(name: &str, text: &str) {
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        let typed: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(back, original, "{name}");
    }

    #[test]
    fn documented_examples_round_trip() {
        macro_rules! fixture {
            ($t:ty, $f:literal) => {
                round_trip::<$t>(
                    $f,
                    include_str!(concat!("../../../tests/fixtures/api/", $f)),
                )
            };
        }
        fixture!(TaskSubmitResponse, "task-submit.response.json");
        fixture!(TaskStatusResponse, "task-status.response.json");
        fixture!(TaskStatusResponse, "task-status.finished.response.json");
        fixture!(TaskStatusResponse, "task-status.failed.response.json");
        fixture!(
            DetailFieldsWithConfiguration,
            "customer-details.get.response.json"
        );
        fixture!(CreateDetailField, "customer-details.create.request.json");
        fixture!(CreateDetailField, "customer-details.create.response.json");
        fixture!(
            CustomerProfileBulkRequest,
            "customer-profile-bulk.request.json"
        );
        fixture!(
            CustomerProfileFetchRequest,
            "customer-profile-fetch.request.json"
        );
        fixture!(
            CustomerProfileFetchResponse,
            "customer-profile-fetch.response.json"
        );
        fixture!(RestError, "error.response.json");
    }

    #[test]
    fn organization_ids_accept_numbers_and_strings() {
        let a: AssociateOrganizations =
            serde_json::from_str(r#"{"organizationIds":[123,"124"]}"#).unwrap();
        assert_eq!(a.organization_ids, vec!["123", "124"]);
    }
}
