//! Request values, read as the SDK reads them, with two differences that
//! make the answers match the published JSON Schema and not depend on the
//! database:
//!
//! - a number with no fractional part (`178.0`, `1e2`) is an integer, as
//!   JSON Schema counts it, so `{"student_id": 178.0}` is student 178, and
//!   `0.0` and `1.0` are the booleans the numbers 0 and 1 stand for;
//! - a string holding the NUL character is refused with a 400 naming it on
//!   both databases (PostgreSQL cannot store it; SQLite could).

use corral_sdk::prelude::*;

/// The integer that `value` stands for when it is a number written with a
/// fraction or an exponent but equal to an integer in range.
fn integral(value: Option<&Value>) -> Option<i64> {
    let number = value?.as_number()?;
    if number.is_i64() || number.is_u64() {
        return None;
    }
    let float = number.as_f64()?;
    // -2^63 <= float < 2^63: both bounds are exact in f64.
    (float.fract() == 0.0
        && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&float))
    .then_some(float as i64)
}

/// The integer `key`; 400 naming it when absent, null or not an integer.
pub fn integer(fields: &Fields, key: &str) -> Result<i64, ApiError> {
    match integral(fields.as_map().get(key)) {
        Some(n) => Ok(n),
        None => fields.get(key),
    }
}

/// The integer `key`, or none when absent or null; 400 naming it when not
/// an integer.
pub fn opt_integer(fields: &Fields, key: &str) -> Result<Option<i64>, ApiError> {
    match integral(fields.as_map().get(key)) {
        Some(n) => Ok(Some(n)),
        None => fields.opt(key),
    }
}

/// The boolean `key`; 400 naming it when absent, null or not a boolean.
pub fn flag(fields: &Fields, key: &str) -> Result<bool, ApiError> {
    match integral(fields.as_map().get(key)) {
        Some(n @ (0 | 1)) => Ok(n == 1),
        _ => fields.get(key),
    }
}

/// The boolean `key`, or none when absent or null; 400 naming it when not a
/// boolean.
pub fn opt_flag(fields: &Fields, key: &str) -> Result<Option<bool>, ApiError> {
    match integral(fields.as_map().get(key)) {
        Some(n @ (0 | 1)) => Ok(Some(n == 1)),
        _ => fields.opt(key),
    }
}

/// `text`, unless it holds the NUL character: PostgreSQL cannot store it
/// (SQLite could), so both databases answer alike, with a 400 naming `key`.
fn without_nul(key: &str, text: String) -> Result<String, ApiError> {
    if text.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "'{key}' must not contain the NUL character (\\u0000)"
        )));
    }
    Ok(text)
}

/// The string `key`; 400 naming it when absent, null, not a string or
/// holding the NUL character.
pub fn text(fields: &Fields, key: &str) -> Result<String, ApiError> {
    without_nul(key, fields.get(key)?)
}

/// The string `key`, or none when absent or null; 400 naming it when not a
/// string or holding the NUL character.
pub fn opt_text(fields: &Fields, key: &str) -> Result<Option<String>, ApiError> {
    fields
        .opt(key)?
        .map(|text| without_nul(key, text))
        .transpose()
}

/// The query parameter `key`, or none when absent; 400 naming it when it
/// holds the NUL character.
pub fn query_text(ctx: &Ctx, key: &str) -> Result<Option<String>, ApiError> {
    ctx.query(key)?
        .map(|text| without_nul(key, text))
        .transpose()
}
