//! The cache interface, one operation per request.

use corral_sdk::bindings::corral::host::cache;
use corral_sdk::{ApiError, Request, RequestExt, Response, json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
struct Body {
    op: String,
    store: String,
    key: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
    value: Option<String>,
    /// For `set-if`: the value expected there (null: nothing there).
    expected: Option<String>,
    ttl: Option<u32>,
}

/// Runs the operation the body names. Values travel as UTF-8 strings.
pub fn run(request: &Request) -> Result<Response, ApiError> {
    let body: Body = request.json_as()?;
    let store = body.store.as_str();
    let result = match body.op.as_str() {
        "get" => {
            let value = cache::get(store, key(&body)?)?;
            json!({ "value": value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()) })
        }
        "get-many" => {
            let values: Map<String, Value> = cache::get_many(store, &body.keys)?
                .into_iter()
                .map(|(key, bytes)| {
                    (
                        key,
                        Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                    )
                })
                .collect();
            json!({ "values": values })
        }
        "set" => {
            let value = body
                .value
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("'set' needs 'value'"))?;
            cache::set(store, key(&body)?, value.as_bytes(), body.ttl)?;
            json!({ "ok": true })
        }
        "add" => {
            let value = body
                .value
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("'add' needs 'value'"))?;
            let stored = cache::add(store, key(&body)?, value.as_bytes(), body.ttl)?;
            json!({ "stored": stored })
        }
        "set-if" => {
            let value = body
                .value
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("'set-if' needs 'value'"))?;
            let expected = body.expected.as_deref().map(str::as_bytes);
            let stored = cache::set_if(store, key(&body)?, value.as_bytes(), expected, body.ttl)?;
            json!({ "stored": stored })
        }
        "append" => {
            // A read-modify-write through the SDK's `update`: `value` joins a JSON array.
            let value = body
                .value
                .clone()
                .ok_or_else(|| ApiError::bad_request("'append' needs 'value'"))?;
            let stored = corral_sdk::cache::update(store, key(&body)?, body.ttl, |current| {
                let mut list: Vec<String> = current
                    .and_then(|bytes| serde_json::from_slice(bytes).ok())
                    .unwrap_or_default();
                list.push(value.clone());
                Some(serde_json::to_vec(&list).expect("strings serialize"))
            })?;
            json!({ "value": stored.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()) })
        }
        "delete" => {
            cache::delete(store, key(&body)?)?;
            json!({ "ok": true })
        }
        op => return Err(ApiError::bad_request(format!("Unknown op '{op}'"))),
    };
    Ok(json(200, &result))
}

fn key(body: &Body) -> Result<&str, ApiError> {
    body.key
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("This op needs 'key'"))
}
