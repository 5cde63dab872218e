//! The event-sourced API (seed "Simple ES API"): clients post events, and
//! read the records that projections build from them.
//!
//! - `POST /`: validates the event and stores it in the events cache store
//!   under its `eventId` (the client's, or a new UUIDv7) with `cache.add`,
//!   so a repeated `eventId` is stored once; answers 200 with the stored
//!   event. The store's stream (DynamoDB on AWS, the host's local change
//!   stream otherwise) feeds the projection components.
//! - `GET /`, `GET /{projection}`: a bare JSON array of at most 10 records,
//!   `LastEvaluatedKey` header when more remain, `ExclusiveStartKey`
//!   request header to continue.
//! - `GET /{id}`, `GET /{projection}/{id}`: one record, or 404.
//!
//! `GET /{x}` lists projection `x` when `x` is one of the configured
//! `projections`, and reads record `x` of `default` otherwise.
//!
//! Config: `store` (default `events`), `key` (the aggregate id field,
//! default `customer`), `projections` (comma-separated names, default
//! `default`), `page_secret` (the HMAC key of page keys; required).

mod page_key;
#[path = "../../projection/src/schema.rs"]
mod schema;

use corral_sdk::bindings::corral::host::{cache, config};
use corral_sdk::prelude::*;

/// Records per page.
const PAGE_SIZE: usize = 10;
/// The longest `eventId` accepted, in characters: at most 1024 bytes, well
/// within DynamoDB's 2048-byte keys, and a limit a JSON Schema can state.
const MAX_EVENT_ID: usize = 256;

struct EventsApi;

struct Settings {
    store: String,
    key: String,
    projections: Vec<String>,
    page_secret: String,
}

impl Settings {
    fn load() -> Result<Settings, ApiError> {
        let get = |key: &str, default: &str| -> Result<String, ApiError> {
            Ok(config::get(key)?
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned()))
        };
        let page_secret = get("page_secret", "")?;
        if page_secret.len() < 16 {
            return Err(ApiError::internal(
                "config page_secret must be set, at least 16 characters",
            ));
        }
        Ok(Settings {
            store: get("store", "events")?,
            key: get("key", "customer")?,
            projections: get("projections", "default")?
                .split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            page_secret,
        })
    }
}

impl Service for EventsApi {
    fn init() -> Result<(), String> {
        Settings::load().map_err(|e| e.message)?;
        schema::create().map_err(|e| e.message)
    }

    fn routes() -> Router {
        Router::new()
            .post("/", post_event)
            .get("/", |ctx| list(ctx, &Settings::load()?, "default"))
            .get("/{name}", list_or_read)
            .get("/{projection}/{id}", read)
    }
}

/// A required text field of the event: present, a non-empty string.
fn require_text(event: &Map<String, Value>, field: &str, missing: &str) -> Result<(), ApiError> {
    match event.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(ApiError::bad_request(missing)),
        Some(_) => Err(ApiError::bad_request(format!(
            "The '{field}' of an event must be a string."
        ))),
    }
}

fn post_event(ctx: &Ctx) -> Result<Response, ApiError> {
    let settings = Settings::load()?;
    let mut event = ctx.body()?;
    // A projection could not store it on PostgreSQL, and would then stop at
    // this event for good: refused at the door instead.
    if map_holds_nul(&event) {
        return Err(ApiError::bad_request(
            "An event cannot hold the NUL character (\\u0000).",
        ));
    }
    require_text(
        &event,
        &settings.key,
        &format!("Please provide the '{}' on your event.", settings.key),
    )?;
    require_text(&event, "type", "Please provide a 'type' on your event.")?;
    let event_id = match event.get("eventId") {
        None | Some(Value::Null) => uuid::Uuid::now_v7().to_string(),
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_EVENT_ID => {
            id.clone()
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "The 'eventId' must be a non-empty string of at most {MAX_EVENT_ID} characters."
            )));
        }
    };
    event.insert("eventId".into(), Value::from(event_id.as_str()));
    let bytes = serde_json::to_vec(&event).expect("a JSON object serializes");
    if cache::add(&settings.store, &event_id, &bytes, None)? {
        return Ok(json(200, &Value::Object(event)));
    }
    // Stored before: answer with the event as it was first stored.
    let stored = cache::get(&settings.store, &event_id)?
        .ok_or_else(|| ApiError::unavailable("The event was stored and is gone; try again"))?;
    let stored: Value = serde_json::from_slice(&stored)
        .map_err(|e| ApiError::internal(format!("a stored event is not JSON: {e}")))?;
    Ok(json(200, &stored))
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map_holds_nul(map),
        _ => false,
    }
}

fn map_holds_nul(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v))
}

fn list_or_read(ctx: &Ctx) -> Result<Response, ApiError> {
    let settings = Settings::load()?;
    let name: String = ctx.param("name")?;
    if settings.projections.contains(&name) {
        list(ctx, &settings, &name)
    } else {
        record(&settings, "default", &name)
    }
}

fn read(ctx: &Ctx) -> Result<Response, ApiError> {
    let settings = Settings::load()?;
    let projection: String = ctx.param("projection")?;
    let id: String = ctx.param("id")?;
    record(&settings, &projection, &id)
}

fn record(settings: &Settings, projection: &str, id: &str) -> Result<Response, ApiError> {
    if !settings.projections.iter().any(|p| p == projection) {
        return Err(ApiError::not_found(format!(
            "No projection named '{projection}'"
        )));
    }
    let row = sql::query_one(
        "SELECT record FROM es_projections WHERE projection = ? AND id = ? AND record IS NOT NULL",
        sql::params![projection, id],
    )?;
    match row
        .as_ref()
        .and_then(|r| r.get("record"))
        .and_then(Value::as_str)
    {
        Some(text) => Ok(json(200, &parse_record(text)?)),
        None => Err(ApiError::not_found(format!(
            "No record '{id}' in projection '{projection}'"
        ))),
    }
}

fn parse_record(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::internal(format!("a projected record is not JSON: {e}")))
}

fn list(ctx: &Ctx, settings: &Settings, projection: &str) -> Result<Response, ApiError> {
    if !settings.projections.iter().any(|p| p == projection) {
        return Err(ApiError::not_found(format!(
            "No projection named '{projection}'"
        )));
    }
    let secret = settings.page_secret.as_bytes();
    let after = match ctx.header("exclusivestartkey") {
        None => String::new(),
        Some(key) => page_key::verify(secret, projection, key).ok_or_else(|| {
            ApiError::bad_request(
                "Invalid ExclusiveStartKey: use the LastEvaluatedKey of a previous page",
            )
        })?,
    };
    // One more than a page tells whether another page follows.
    let rows = sql::query(
        "SELECT id, record FROM es_projections WHERE projection = ? AND record IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
        sql::params![projection, after, (PAGE_SIZE + 1) as i64],
    )?;
    let mut records = Vec::new();
    for row in rows.iter().take(PAGE_SIZE) {
        records.push(parse_record(
            row.get("record").and_then(Value::as_str).unwrap_or("null"),
        )?);
    }
    let response = json(200, &Value::Array(records));
    if rows.len() <= PAGE_SIZE {
        return Ok(response);
    }
    let last = rows[PAGE_SIZE - 1]
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(response.with_header("LastEvaluatedKey", page_key::sign(secret, projection, last)))
}

corral_sdk::service!(EventsApi);
