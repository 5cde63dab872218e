//! Requests on the collection path: list, create, delete by filter.

use corral_sdk::bindings::corral::host::db::{self, ListQuery};
use corral_sdk::{ApiError, Request, RequestExt, Response, ResponseExt, json, parse_record};
use serde_json::{Value, json};

use crate::filters;
use crate::settings::{MAX_PAGE_SIZE, Settings};

/// Dispatches on the method.
pub fn handle(request: &Request, settings: &Settings) -> Result<Response, ApiError> {
    match request.method.as_str() {
        "GET" => list(request, settings),
        "POST" => create(request, settings),
        "DELETE" => delete_matching(request, settings),
        method => Ok(
            ApiError::method_not_allowed(format!("{method} is not allowed here"))
                .to_response(&request.request_id)
                .with_header("allow", "GET, POST, DELETE"),
        ),
    }
}

fn list(request: &Request, settings: &Settings) -> Result<Response, ApiError> {
    let limit = match request.query("limit") {
        None => settings.page_size,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be an integer from 1 to {MAX_PAGE_SIZE}"
                ))
            })?,
    };
    let query = ListQuery {
        filters: filters::from_query(&request.query, &settings.keys, &["limit", "after"])?,
        limit,
        after: request.query("after").map(String::from),
    };
    let page = db::list(&settings.table, &query)?;
    let items = page
        .records
        .iter()
        .map(|record| parse_record(record))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json(200, &json!({ "items": items, "next": page.next })))
}

fn create(request: &Request, settings: &Settings) -> Result<Response, ApiError> {
    let fields = settings.keys.check(request.json_object()?)?;
    let stored = db::insert(&settings.table, &Value::Object(fields).to_string())?;
    let record = parse_record(&stored)?;
    let uid = record
        .get("uid")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::internal("The host returned a record without a uid"))?;
    let location = format!(
        "{}{}/{uid}",
        request.mount,
        request.path.trim_end_matches('/')
    );
    Ok(json(201, &record).with_header("location", location))
}

fn delete_matching(request: &Request, settings: &Settings) -> Result<Response, ApiError> {
    let filters = filters::from_query(&request.query, &settings.keys, &[])?;
    if filters.is_empty() {
        return Err(ApiError::bad_request(
            "DELETE on the collection needs at least one filter",
        ));
    }
    let deleted = db::delete_where(&settings.table, &filters)?;
    Ok(json(200, &json!({ "deleted": deleted })))
}
