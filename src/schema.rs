//! Detail-field schema of the target: the definitions fetched from GET `customer/details` (or a
//! seed file), turned into typed field kinds. Used by `map` (which columns are known) and
//! `validate` (how a cell must look); built from `api::model`.

use crate::site::api::model::{DetailFieldWithConfiguration, DetailFieldsWithConfiguration};

/// The value types of CONTRACT §5.2. An unknown type name is kept and passed through unchecked,
/// so a new server-side type does not stop an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Select,
    MultiSelect,
    Date,
    Number,
    Email,
    Phone,
    Url,
    Boolean,
    Other(String),
}

impl FieldKind {
    pub fn from_api(name: &str) -> FieldKind {
        match name.trim().to_ascii_uppercase().as_str() {
            "TEXT" => FieldKind::Text,
            "SELECT" => FieldKind::Select,
            "MULTISELECT" | "MULTI_SELECT" => FieldKind::MultiSelect,
            "DATE" => FieldKind::Date,
            "NUMBER" => FieldKind::Number,
            "EMAIL" => FieldKind::Email,
            "PHONE" => FieldKind::Phone,
            "URL" => FieldKind::Url,
            "BOOLEAN" => FieldKind::Boolean,
            _ => FieldKind::Other(name.to_string()),
        }
    }

    /// The type's name as the API spells it.
    pub fn api_name(&self) -> &str {
        match self {
            FieldKind::Text => "TEXT",
            FieldKind::Select => "SELECT",
            FieldKind::MultiSelect => "MULTISELECT",
            FieldKind::Date => "DATE",
            FieldKind::Number => "NUMBER",
            FieldKind::Email => "EMAIL",
            FieldKind::Phone => "PHONE",
            FieldKind::Url => "URL",
            FieldKind::Boolean => "BOOLEAN",
            FieldKind::Other(name) => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    pub name: String,
    pub kind: FieldKind,
    pub options: Vec<String>,
}

impl From<&DetailFieldWithConfiguration> for FieldDef {
    fn from(d: &DetailFieldWithConfiguration) -> Self {
        FieldDef {
            name: d.name.clone(),
            kind: FieldKind::from_api(&d.field_type.name),
            options: d.field_type.options.clone().unwrap_or_default(),
        }
    }
}

/// The detail fields of one entity kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    pub fields: Vec<FieldDef>,
}

impl Schema {
    pub fn from_api(defs: &DetailFieldsWithConfiguration) -> Schema {
        Schema {
            fields: defs.results.iter().map(FieldDef::from).collect(),
        }
    }
}
