//! Equality filters from query parameters.

use corral_sdk::bindings::corral::host::db::Filter;
use corral_sdk::{ApiError, Keys, eq_filter, is_audit_field};
use serde_json::Value;

/// The filter for each query parameter naming a declared key or an audit
/// field. Parameters in `reserved` are skipped (the caller reads them);
/// any other parameter is a 400.
pub fn from_query(
    query: &[(String, String)],
    keys: &Keys,
    reserved: &[&str],
) -> Result<Vec<Filter>, ApiError> {
    let mut filters = Vec::new();
    let mut unknown: Vec<&str> = Vec::new();
    for (name, raw) in query {
        if reserved.contains(&name.as_str()) {
            continue;
        }
        if keys.declares(name) || is_audit_field(name) {
            filters.push(eq_filter(name.as_str(), &query_value(raw)));
        } else if !unknown.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    if unknown.is_empty() {
        Ok(filters)
    } else {
        Err(ApiError::bad_request(format!(
            "Unknown query parameter(s): {}",
            unknown.join(", ")
        )))
    }
}

/// A query value as JSON when it is JSON (`3`, `true`, `"x"`), else as a
/// string, so that `?age=3` matches numbers and `?name=ada` needs no quotes.
fn query_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use corral_sdk::Keys;

    use super::from_query;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn values_are_json_when_they_parse() {
        let keys = Keys::from_lists("name,age", "");
        let query = pairs(&[
            ("age", "3"),
            ("name", "ada"),
            ("uid", "\"u\""),
            ("limit", "5"),
        ]);
        let filters = from_query(&query, &keys, &["limit"]).unwrap();
        let values: Vec<&str> = filters.iter().map(|filter| filter.value.as_str()).collect();
        assert_eq!(values, ["3", "\"ada\"", "\"u\""]);
    }

    #[test]
    fn unknown_parameters_are_named_once() {
        let keys = Keys::from_lists("name", "");
        let query = pairs(&[("x", "1"), ("limit", "2"), ("x", "3"), ("y", "")]);
        let error = from_query(&query, &keys, &[]).unwrap_err();
        assert_eq!(error.message, "Unknown query parameter(s): x, limit, y");
    }
}
