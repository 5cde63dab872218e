//! Validation of the keys of a JSON body against a resource's declaration.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::ApiError;

/// The fields the host stamps on every record. Clients may echo them back
/// in a body, so they are dropped rather than rejected.
pub const AUDIT_FIELDS: [&str; 5] = [
    "uid",
    "created_at",
    "last_updated_at",
    "creator_uid",
    "last_updater_uid",
];

/// Whether `key` is one of the [`AUDIT_FIELDS`].
pub fn is_audit_field(key: &str) -> bool {
    AUDIT_FIELDS.contains(&key)
}

/// Splits a comma-separated list, trimming items and skipping empty ones.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

/// The body keys a resource accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Keys a new record must have, in declared order.
    pub required: Vec<String>,
    /// Keys a record may have.
    pub optional: Vec<String>,
}

impl Keys {
    /// Keys from comma-separated lists, as a manifest's config gives them.
    pub fn from_lists(required: &str, optional: &str) -> Self {
        Self {
            required: split_list(required),
            optional: split_list(optional),
        }
    }

    /// Whether `key` is required or optional.
    pub fn declares(&self, key: &str) -> bool {
        self.required
            .iter()
            .chain(&self.optional)
            .any(|declared| declared == key)
    }

    /// Checks the body of a new record: every required key present and not
    /// null, no undeclared key. Audit fields are removed.
    pub fn check(&self, body: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
        let body = self.check_known(body)?;
        let missing: Vec<&str> = self
            .required
            .iter()
            .filter(|key| body.get(key.as_str()).is_none_or(Value::is_null))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Missing key(s): {}",
                missing.join(", ")
            )));
        }
        Ok(body)
    }

    /// Checks the changes to a record: no undeclared key, and no required
    /// key set to null (which would remove it). Audit fields are removed.
    pub fn check_partial(&self, body: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
        let body = self.check_known(body)?;
        let nulled: Vec<&str> = self
            .required
            .iter()
            .filter(|key| body.get(key.as_str()).is_some_and(Value::is_null))
            .map(String::as_str)
            .collect();
        if !nulled.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Required key(s) cannot be null: {}",
                nulled.join(", ")
            )));
        }
        Ok(body)
    }

    fn check_known(&self, mut body: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
        body.retain(|key, _| !is_audit_field(key));
        let unknown: BTreeSet<&str> = body
            .keys()
            .map(String::as_str)
            .filter(|key| !self.declares(key))
            .collect();
        if !unknown.is_empty() {
            let unknown: Vec<&str> = unknown.into_iter().collect();
            return Err(ApiError::bad_request(format!(
                "Unknown key(s): {}",
                unknown.join(", ")
            )));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::Keys;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => Map::new(),
        }
    }

    fn keys() -> Keys {
        Keys::from_lists("name, age", "nickname,")
    }

    #[test]
    fn missing_keys_are_named_in_declared_order() {
        let error = keys().check(object(json!({"nickname": "x"}))).unwrap_err();
        assert_eq!(
            (error.status, error.message.as_str()),
            (400, "Missing key(s): name, age")
        );
    }

    #[test]
    fn unknown_keys_are_named_sorted() {
        let body = json!({"name": "a", "age": 1, "zed": 1, "alpha": 2});
        let error = keys().check(object(body)).unwrap_err();
        assert_eq!(error.message, "Unknown key(s): alpha, zed");
    }

    #[test]
    fn audit_fields_are_dropped() {
        let body = json!({"name": "a", "age": 1, "uid": "u", "created_at": "t"});
        let checked = keys().check(object(body)).unwrap();
        assert_eq!(Value::Object(checked), json!({"name": "a", "age": 1}));
    }

    #[test]
    fn partial_checks_skip_required_but_refuse_null() {
        assert!(keys().check_partial(object(json!({"age": 2}))).is_ok());
        let error = keys()
            .check_partial(object(json!({"name": null})))
            .unwrap_err();
        assert_eq!(error.message, "Required key(s) cannot be null: name");
        assert!(
            keys()
                .check_partial(object(json!({"nickname": null})))
                .is_ok()
        );
    }
}
