//! The notes resource, the same in Rust, Python (`components/notes-py`) and
//! JavaScript: the example every guest SDK is measured against. Records in
//! the table `table`; a raw-SQL count; a summary read through the cache
//! store `cache`; sharing through the queue `queue`; and deletion only for
//! callers in the group `editors_group`; publishing to the URL `webhook`.
//! All five come from config.
//!
//! Routes (below the mount): `GET|POST /notes`, `GET|PATCH|DELETE
//! /notes/{id}`, `GET /notes/{id}/summary`, `POST /notes/{id}/share`,
//! `POST /notes/{id}/publish`, `GET /stats`.

use corral_sdk::bindings::corral::host::{cache, config, queue};
use corral_sdk::http;
use corral_sdk::prelude::*;

/// How long a summary stays in the cache.
const SUMMARY_TTL_SECONDS: u32 = 300;

struct Notes;

impl Service for Notes {
    fn routes() -> Router {
        Router::new()
            .get("/notes", |ctx| notes()?.list(ctx))
            .post("/notes", |ctx| notes()?.create(ctx))
            .get("/notes/{id}", |ctx| {
                notes()?.retrieve(ctx, &ctx.param::<String>("id")?)
            })
            .patch("/notes/{id}", |ctx| {
                notes()?.update(ctx, &ctx.param::<String>("id")?)
            })
            .delete("/notes/{id}", delete)
            .get("/notes/{id}/summary", summary)
            .post("/notes/{id}/share", share)
            .post("/notes/{id}/publish", publish)
            .get("/stats", stats)
    }
}

/// A config value the component cannot run without.
fn setting(key: &str) -> Result<String, ApiError> {
    config::get(key)?
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ApiError::internal(format!("config key '{key}' is not set")))
}

fn notes() -> Result<Records, ApiError> {
    Ok(Records::new(setting("table")?)
        .required(&["title"])
        .optional(&["body", "tags"]))
}

/// DELETE /notes/{id}: only for the editors group.
fn delete(ctx: &Ctx) -> Result<Response, ApiError> {
    ctx.require_group(&setting("editors_group")?)?;
    notes()?.delete(ctx, &ctx.param::<String>("id")?)
}

/// GET /notes/{id}/summary: the title and the body's word count, read
/// through the cache (`x-cache: hit` or `miss`).
fn summary(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: String = ctx.param("id")?;
    let store = setting("cache")?;
    let key = format!("summary:{id}");
    if let Some(cached) = cache::get(&store, &key)? {
        let summary: Value = serde_json::from_slice(&cached)
            .map_err(|_| ApiError::internal("a cached summary is not JSON"))?;
        return Ok(json(200, &summary).with_header("x-cache", "hit"));
    }
    let record = corral_sdk::bindings::corral::host::db::get(&setting("table")?, &id)?
        .ok_or_else(|| ApiError::not_found(format!("No note {id}")))?;
    let record: Value = corral_sdk::parse_record(&record)?;
    let words = record["body"]
        .as_str()
        .map_or(0, |body| body.split_whitespace().count());
    let summary = json!({ "uid": id, "title": record["title"], "words": words });
    cache::set(
        &store,
        &key,
        summary.to_string().as_bytes(),
        Some(SUMMARY_TTL_SECONDS),
    )?;
    Ok(json(200, &summary).with_header("x-cache", "miss"))
}

/// POST /notes/{id}/share `{"to": "..."}`: queues the note for `to`; 202.
fn share(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: String = ctx.param("id")?;
    let caller = ctx.require_caller()?;
    let to: String = ctx.body_keys(&["to"], &[])?.get("to")?;
    stored(&id)?;
    let message = queue::Message {
        body: json!({ "note": id, "to": to, "by": caller.subject }).to_string(),
        attributes: Vec::new(),
        group_id: None,
        dedup_id: None,
        delay_seconds: 0,
    };
    queue::send(&setting("queue")?, &message)?;
    Ok(json(202, &json!({ "shared": id, "to": to })))
}

/// POST /notes/{id}/publish: sends the note as JSON to the URL in config
/// `webhook`; 200 with the upstream's status. Unreachable: 502; the host not
/// granted: 500.
fn publish(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: String = ctx.param("id")?;
    let note = stored(&id)?;
    let reply = http::request("POST", setting("webhook")?)
        .json(&note)
        .send()?;
    Ok(json(
        200,
        &json!({ "published": id, "status": reply.status }),
    ))
}

/// The note's record; 404 when there is none.
fn stored(id: &str) -> Result<Value, ApiError> {
    let record = corral_sdk::bindings::corral::host::db::get(&setting("table")?, id)?
        .ok_or_else(|| ApiError::not_found(format!("No note {id}")))?;
    corral_sdk::parse_record(&record)
}

/// GET /stats: the number of notes, by raw SQL over the records table.
fn stats(_ctx: &Ctx) -> Result<Response, ApiError> {
    let table = setting("table")?;
    let row = sql::query_one(&format!("SELECT COUNT(*) AS notes FROM {table}"), &[])?
        .ok_or_else(|| ApiError::internal("COUNT(*) returned no row"))?;
    Ok(json(200, &json!({ "notes": row["notes"] })))
}

corral_sdk::service!(Notes);
