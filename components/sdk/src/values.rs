//! Conversions between JSON and SQL values.

use serde_json::{Number, Value};

use crate::ApiError;
use crate::bindings::corral::host::db::Value as DbValue;

/// The SQL value for a JSON scalar; 400 for arrays and objects, which SQL
/// parameters cannot hold.
pub fn to_db_value(value: &Value) -> Result<DbValue, ApiError> {
    Ok(match value {
        Value::Null => DbValue::Null,
        Value::Bool(flag) => DbValue::Boolean(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => DbValue::Integer(integer),
            None => DbValue::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => DbValue::Text(text.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(ApiError::bad_request(
                "A SQL parameter must be null, a boolean, a number or a string",
            ));
        }
    })
}

/// The JSON form of a SQL value: a blob becomes an array of byte values, and
/// a non-finite float (which JSON cannot express) becomes null.
pub fn from_db_value(value: &DbValue) -> Value {
    match value {
        DbValue::Null => Value::Null,
        DbValue::Boolean(flag) => Value::Bool(*flag),
        DbValue::Integer(integer) => Value::from(*integer),
        DbValue::Float(float) => Number::from_f64(*float).map_or(Value::Null, Value::Number),
        DbValue::Text(text) => Value::String(text.clone()),
        DbValue::Blob(bytes) => Value::Array(bytes.iter().map(|byte| Value::from(*byte)).collect()),
    }
}
