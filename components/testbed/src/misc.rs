//! Actions on the request itself, config, logging and failure modes.

use std::hint::black_box;

use corral_sdk::bindings::corral::host::{config as host_config, log as host_log};
use corral_sdk::{ApiError, Request, RequestExt, Response, json};
use serde_json::{Map, Value, json};

/// The size of each allocation `grow` makes.
const CHUNK: usize = 1 << 20;

/// The request as the component sees it.
pub fn echo(request: &Request) -> Result<Response, ApiError> {
    let pairs_object = |pairs: &[(String, String)], lower: bool| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| {
                let name = if lower {
                    name.to_ascii_lowercase()
                } else {
                    name.clone()
                };
                (name, Value::String(value.clone()))
            })
            .collect()
    };
    let query: Vec<Value> = request
        .query
        .iter()
        .map(|(name, value)| json!([name, value]))
        .collect();
    Ok(json(
        200,
        &json!({
            "method": request.method,
            "path": request.path,
            "mount": request.mount,
            "route": request.route,
            "params": pairs_object(&request.params, false),
            "query": query,
            "headers": pairs_object(&request.headers, true),
            "body": String::from_utf8_lossy(&request.body),
            "request_id": request.request_id,
        }),
    ))
}

/// Traps on purpose, so tests can check that the host answers 500.
pub fn trap() -> Result<Response, ApiError> {
    panic!("testbed: trap requested");
}

/// Spins forever, so tests can check the host's time limit.
pub fn spin() -> Result<Response, ApiError> {
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Allocates and touches memory until the host's memory cap stops it.
pub fn grow() -> Result<Response, ApiError> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // Filling with a non-zero byte writes every page, so the memory is
        // really used rather than reserved.
        held.push(black_box(vec![0xA5; CHUNK]));
        black_box(&held);
    }
}

/// The config value of the query's `key`.
pub fn config(request: &Request) -> Result<Response, ApiError> {
    let key = required_query(request, "key")?;
    let value = host_config::get(key)?;
    Ok(json(200, &json!({ "key": key, "value": value })))
}

/// Logs the query's `message` at info level.
pub fn log(request: &Request) -> Result<Response, ApiError> {
    let message = required_query(request, "message")?;
    host_log::log(host_log::Level::Info, message);
    Ok(json(200, &json!({ "logged": true })))
}

/// The query parameter `name`, or 400 naming it.
pub fn required_query<'a>(request: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    request
        .query(name)
        .ok_or_else(|| ApiError::bad_request(format!("Query parameter '{name}' is required")))
}
