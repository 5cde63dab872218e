//! Who may write. Reads are public; a write needs a caller the host
//! verified or, when the `app_token` config value is set, the original
//! API's shared token for its old clients (`app_token` in the query string
//! or the JSON body). The manifest must then make the write routes public
//! for those clients to reach the component; without the config value a
//! public write route still needs a caller here.

use corral_sdk::bindings::corral::host::config;
use corral_sdk::prelude::*;

/// Ok when the request may write.
pub fn writer(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.caller().is_some() {
        return Ok(());
    }
    let expected = config::get("app_token")?.filter(|t| !t.is_empty());
    let Some(expected) = expected else {
        return Err(ApiError::unauthorized(
            "This request needs a signed-in caller",
        ));
    };
    let given: Option<String> = ctx.input_keys(&[], &["app_token"])?.opt("app_token")?;
    match given {
        None => Err(ApiError::unauthorized(
            "This request needs a signed-in caller or the app_token",
        )),
        Some(token) if same(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("Invalid authentication token")),
    }
}

/// Compares in time that depends only on the lengths, not on where the
/// first difference lies.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The original's 202: its JSON body was `null`.
pub fn accepted() -> Response {
    json(202, &Value::Null)
}
