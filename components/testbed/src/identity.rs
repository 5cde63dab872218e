//! Actions on the caller's identity.

use corral_sdk::bindings::corral::host::auth::{self, Identity};
use corral_sdk::{ApiError, Request, Response, json};
use serde_json::{Value, json};

use crate::misc::required_query;

/// The caller, or null for an anonymous request.
pub fn whoami() -> Result<Response, ApiError> {
    let caller = auth::caller().map_or(Value::Null, |identity| to_json(&identity));
    Ok(json(200, &caller))
}

/// The caller when it is in the query's `group`; 401 or 403 otherwise.
pub fn require_group(request: &Request) -> Result<Response, ApiError> {
    let identity = auth::require_group(required_query(request, "group")?)?;
    Ok(json(200, &to_json(&identity)))
}

fn to_json(identity: &Identity) -> Value {
    // Claims that are not JSON would be a host fault; showing them raw
    // lets the test see what arrived.
    let claims = serde_json::from_str(&identity.claims)
        .unwrap_or_else(|_| Value::String(identity.claims.clone()));
    json!({
        "subject": identity.subject,
        "username": identity.username,
        "groups": identity.groups,
        "claims": claims,
    })
}
