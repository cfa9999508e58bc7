//! Wire types of the CSM REST API: the one place where JSON shapes live, shared by the client
//! (`client`, `send`, `track`) and the sandbox (`sandbox::routes`). Shapes follow CONTRACT.md;
//! names the contract marks unconfirmed are kept here so a correction is a one-line change.

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
    #[serde(default)]
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
    pub status_url: String,
}

/// Task status. Unknown future values land in `Other` rather than failing the poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    NotStarted,
    InProgress,
    Finished,
    Failed,
    #[serde(other)]
    Other,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::NotStarted => "NOT_STARTED",
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Finished => "FINISHED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Other => "an unknown status",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Finished | TaskStatus::Failed)
    }
}

/// One entry of `failures` in `TaskStatusResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    #[serde(default)]
    pub entity: String,
    #[serde(default)]
    pub entity_id: String,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub operated_on: String,
    #[serde(default)]
    pub operated_on_ids: Vec<String>,
    #[serde(default)]
    pub error: String,
}

/// GET `tasks/{id}` response. `type` is an open string: only one value is documented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatusResponse {
    pub id: String,
    #[serde(rename = "type", default)]
    pub task_type: String,
    pub status: TaskStatus,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub failures: Vec<TaskFailure>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
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
    pub id: String,
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
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub details: Vec<DetailValue>,
    #[serde(default)]
    pub organizations: Vec<OrganizationRef>,
    #[serde(default)]
    pub entitlements: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfileFetchResponse {
    pub results: Vec<CustomerProfile>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn string_or_number_vec<'de, D>(d: D) -> Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
    }
    Ok(Vec::<Id>::deserialize(d)?
        .into_iter()
        .map(|id| match id {
            Id::S(s) => s,
            Id::N(n) => n.to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_status_parses_documented_example_and_tolerates_unknowns() {
        let body =
            r#"{"id":"t","type":"SOMETHING_NEW","status":"FINISHED","failures":null,"extra":1}"#;
        let t: TaskStatusResponse = serde_json::from_str(body).unwrap();
        assert_eq!(t.status, TaskStatus::Finished);
        assert!(t.failures.is_empty());
        let t: TaskStatusResponse =
            serde_json::from_str(r#"{"id":"t","status":"COMPLETED"}"#).unwrap();
        assert_eq!(t.status, TaskStatus::Other);
        assert!(!t.status.is_terminal());
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
                round_trip::<$t>($f, include_str!(concat!("../../tests/fixtures/api/", $f)))
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
