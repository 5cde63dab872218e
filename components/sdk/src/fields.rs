//! Declared body and query keys, read with the type the handler needs.

use std::any::type_name;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;

/// The declared keys of a request's input, as JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Map<String, Value>);

/// What a value of type `T` is, for error messages.
fn kind<T>() -> &'static str {
    let name = type_name::<T>();
    let name = name.strip_prefix("core::option::Option<").unwrap_or(name);
    if [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "isize", "usize",
    ]
    .iter()
    .any(|t| name.starts_with(t))
    {
        "an integer"
    } else if name.starts_with("f32") || name.starts_with("f64") {
        "a number"
    } else if name.starts_with("bool") {
        "a boolean (true or false)"
    } else if name.starts_with("alloc::string::String") {
        "a string"
    } else {
        "of the expected type"
    }
}

/// `value` as a `T`; a string holding a JSON value (`"5"`, `"true"`) counts
/// as that value, since query strings and form-minded clients send text. A
/// boolean also takes Python's `strtobool` forms and the numbers 0 and 1, as
/// the seeds' Python APIs did.
pub(crate) fn typed<T: DeserializeOwned>(name: &str, value: &Value) -> Result<T, ApiError> {
    serde_json::from_value(value.clone())
        .or_else(|error| match value {
            Value::String(text) => serde_json::from_str(text).map_err(|_| error),
            _ => Err(error),
        })
        .or_else(|error| match truth(value) {
            Some(flag) => serde_json::from_value(Value::Bool(flag)).map_err(|_| error),
            None => Err(error),
        })
        .map_err(|_| ApiError::bad_request(format!("'{name}' must be {}", kind::<T>())))
}

/// The boolean that `strtobool` reads in `value` (`yes`, `t`, `on`, `1`, …,
/// in any case), or that the number 0 or 1 stands for.
fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::String(text) => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "t" | "true" | "on" | "1" => Some(true),
            "n" | "no" | "f" | "false" | "off" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_u64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl Fields {
    /// Keeps the declared keys of `input`; 400 "Missing key(s): a, b" (in
    /// declared order) when required keys are absent or null.
    pub fn declared(
        mut input: Map<String, Value>,
        required: &[&str],
        optional: &[&str],
    ) -> Result<Self, ApiError> {
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|key| input.get(*key).is_none_or(Value::is_null))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Missing key(s): {}",
                missing.join(", ")
            )));
        }
        let kept = required
            .iter()
            .chain(optional)
            .filter_map(|key| input.remove(*key).map(|value| ((*key).to_owned(), value)))
            .collect();
        Ok(Self(kept))
    }

    /// The value of `key` as a `T`; 400 naming it when absent, null or of
    /// another type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => {
                Err(ApiError::bad_request(format!("Missing key(s): {key}")))
            }
            Some(value) => typed(key, value),
        }
    }

    /// The value of `key` as a `T`, or none when absent or null; 400 naming
    /// it when of another type.
    pub fn opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => typed(key, value).map(Some),
        }
    }

    /// Whether `key` was given.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Whether no declared key was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The declared keys that were given, as JSON.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The declared keys that were given, as JSON.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn missing_keys_are_named_in_declared_order() {
        let error = Fields::declared(input(json!({"b": null})), &["a", "b", "c"], &[]).unwrap_err();
        assert_eq!(
            (error.status, error.message.as_str()),
            (400, "Missing key(s): a, b, c")
        );
    }

    #[test]
    fn undeclared_keys_are_dropped_and_values_typed() {
        let fields = Fields::declared(
            input(json!({"id": "7", "flag": "true", "name": "ada", "extra": 1})),
            &["id"],
            &["flag", "name", "absent"],
        )
        .unwrap();
        assert!(!fields.contains("extra"));
        assert_eq!(fields.get::<i64>("id").unwrap(), 7);
        assert_eq!(fields.opt::<bool>("flag").unwrap(), Some(true));
        assert_eq!(fields.get::<String>("name").unwrap(), "ada");
        assert_eq!(fields.opt::<i64>("absent").unwrap(), None);
        assert_eq!(
            fields.get::<i64>("name").unwrap_err().message,
            "'name' must be an integer"
        );
        assert_eq!(
            fields.get::<bool>("id").unwrap_err().message,
            "'id' must be a boolean (true or false)"
        );
    }

    #[test]
    fn booleans_take_the_strtobool_forms() {
        for (given, expected) in [
            (json!("True"), true),
            (json!("YES"), true),
            (json!("y"), true),
            (json!("on"), true),
            (json!("1"), true),
            (json!(1), true),
            (json!("False"), false),
            (json!("no"), false),
            (json!("OFF"), false),
            (json!("0"), false),
            (json!(0), false),
        ] {
            assert_eq!(typed::<bool>("flag", &given).unwrap(), expected, "{given}");
        }
        for refused in [json!("maybe"), json!("2"), json!(2), json!(""), json!([])] {
            assert_eq!(
                typed::<bool>("flag", &refused).unwrap_err().message,
                "'flag' must be a boolean (true or false)",
                "{refused}"
            );
        }
        // Only a boolean reads them: "yes" stays a string, "1" an integer.
        assert_eq!(typed::<String>("s", &json!("yes")).unwrap(), "yes");
        assert_eq!(typed::<i64>("n", &json!("1")).unwrap(), 1);
    }

    #[test]
    fn a_number_is_not_a_string() {
        let fields = Fields::declared(input(json!({"email": 5})), &["email"], &[]).unwrap();
        assert_eq!(
            fields.get::<String>("email").unwrap_err().message,
            "'email' must be a string"
        );
    }
}
