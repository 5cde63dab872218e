//! Helpers for the records half of the `db` interface.

use serde_json::Value;

use crate::ApiError;
use crate::bindings::corral::host::db::{Comparison, Filter};

/// A filter comparing `field` with the JSON `value`.
pub fn filter(field: impl Into<String>, comparison: Comparison, value: &Value) -> Filter {
    Filter {
        field: field.into(),
        comparison,
        value: value.to_string(),
    }
}

/// A filter requiring `field` to equal the JSON `value`.
pub fn eq_filter(field: impl Into<String>, value: &Value) -> Filter {
    filter(field, Comparison::Eq, value)
}

/// The comparison called `name` (`eq`, `ne`, `lt`, `le`, `gt`, `ge`).
pub fn parse_comparison(name: &str) -> Option<Comparison> {
    Some(match name {
        "eq" => Comparison::Eq,
        "ne" => Comparison::Ne,
        "lt" => Comparison::Lt,
        "le" => Comparison::Le,
        "gt" => Comparison::Gt,
        "ge" => Comparison::Ge,
        _ => return None,
    })
}

/// A record as the host returns it, parsed. Failure means a host fault,
/// hence 500 rather than 400.
pub fn parse_record(record: &str) -> Result<Value, ApiError> {
    serde_json::from_str(record)
        .map_err(|_| ApiError::internal("The host returned a record that is not valid JSON"))
}
