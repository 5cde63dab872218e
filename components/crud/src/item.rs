//! Requests on the item path: read, patch, delete one record.

use corral_sdk::bindings::corral::host::db;
use corral_sdk::{
    ApiError, Request, RequestExt, Response, ResponseExt, json, no_content, parse_record,
};
use serde_json::Value;

use crate::settings::Settings;

/// Dispatches on the method for the record with uid `id`.
pub fn handle(request: &Request, settings: &Settings, id: &str) -> Result<Response, ApiError> {
    match request.method.as_str() {
        "GET" => match db::get(&settings.table, id)? {
            Some(record) => Ok(json(200, &parse_record(&record)?)),
            None => Err(missing(settings, id)),
        },
        "PATCH" => patch(request, settings, id),
        "DELETE" => match db::delete(&settings.table, id)? {
            true => Ok(no_content()),
            false => Err(missing(settings, id)),
        },
        method => Ok(
            ApiError::method_not_allowed(format!("{method} is not allowed here"))
                .to_response(&request.request_id)
                .with_header("allow", "GET, PATCH, DELETE"),
        ),
    }
}

fn patch(request: &Request, settings: &Settings, id: &str) -> Result<Response, ApiError> {
    let changes = settings.keys.check_partial(request.json_object()?)?;
    if changes.is_empty() {
        return Err(ApiError::bad_request("No changes"));
    }
    match db::update(&settings.table, id, &Value::Object(changes).to_string())? {
        Some(record) => Ok(json(200, &parse_record(&record)?)),
        None => Err(missing(settings, id)),
    }
}

fn missing(settings: &Settings, id: &str) -> ApiError {
    ApiError::not_found(format!("No {} record with uid {id}", settings.table))
}
