//! Webhook events: an item stored or removed, and the user's id list edited,
//! unless a newer event already wrote that item.

use alma_api::{Item, Kind};
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::bindings::corral::host::queue;
use corral_sdk::{ApiError, cache};
use serde_json::{Map, Value, json};

use crate::{Config, now_ms};

/// How long an item entry, and the marker a removal leaves, is kept: past
/// it, an event that old cannot arrive any more (SQS keeps messages at most
/// 14 days).
pub const ITEM_TTL_SECONDS: u32 = 14 * 24 * 3600;

/// How long a queued user refresh keeps a user from being queued again.
const REFRESH_PENDING_SECONDS: u32 = 900;

/// What an event does to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Store,
    Remove,
}

/// What became of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Applied,
    /// A newer event already wrote the item; `removed` when it removed it.
    Stale { removed: bool },
}

/// Applies one webhook body.
pub fn webhook_event(config: &Config, body: &str) -> Result<(), ApiError> {
    let event: Value =
        serde_json::from_str(body).map_err(|_| ApiError::bad_request("the event is not JSON"))?;
    let name = event
        .pointer("/event/value")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("the event names no type (event.value)"))?;
    let (kind, change) = match name {
        "LOAN_CREATED" | "LOAN_DUE_DATE" | "LOAN_RENEWED" => (Kind::Loan, Change::Store),
        "LOAN_RETURNED" => (Kind::Loan, Change::Remove),
        "REQUEST_CREATED" | "REQUEST_PLACED_ON_SHELF" => (Kind::Request, Change::Store),
        "REQUEST_CLOSED" | "REQUEST_CANCELED" => (Kind::Request, Change::Remove),
        other => {
            return Err(ApiError::bad_request(format!(
                "event type {other} is not supported"
            )));
        }
    };
    let (field, owner_field) = match kind {
        Kind::Loan => ("item_loan", "user_id"),
        _ => ("user_request", "user_primary_id"),
    };
    let item = event.get(field).and_then(Value::as_object).ok_or_else(|| {
        ApiError::bad_request(format!("a {name} event carries no '{field}' object"))
    })?;
    let id = kind
        .id_of(item)
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .ok_or_else(|| {
            ApiError::bad_request(format!("the '{field}' has no valid '{}'", kind.id_field()))
        })?;
    let user = item
        .get(owner_field)
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty() && u.len() <= 256)
        .ok_or_else(|| ApiError::bad_request(format!("the '{field}' names no '{owner_field}'")))?;
    let time = event
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| ApiError::bad_request("the event has no RFC 3339 'time'"))?;

    let stale = || {
        log(
            Level::Info,
            &format!(
                "{name} for {} '{id}' at {time} is older than the cached entry; ignored",
                kind.segment()
            ),
        )
    };
    // Readers never see an id listed without its item: a store writes the
    // item before listing it, a removal unlists it before marking it removed.
    match change {
        Change::Store => {
            if let Outcome::Stale { .. } = store_item(config, kind, &id, Some(item), time)? {
                stale();
                return Ok(());
            }
            edit_list(config, kind, user, &id, Change::Store)?;
            // A newer removal may have unlisted the id between the two writes.
            if removed_after(config, kind, &id, time)? {
                edit_list(config, kind, user, &id, Change::Remove)?;
            }
        }
        Change::Remove => {
            let current = cache::get(config.shared.store(kind), &id)?;
            if current
                .as_deref()
                .and_then(entry_time)
                .is_some_and(|(at, _)| at > time)
            {
                stale();
                return Ok(());
            }
            edit_list(config, kind, user, &id, Change::Remove)?;
            // A newer store that landed meanwhile listed the id: list it again.
            if let Outcome::Stale { removed: false } = store_item(config, kind, &id, None, time)? {
                edit_list(config, kind, user, &id, Change::Store)?;
            }
        }
    }
    Ok(())
}

/// Stores `item` (or, for `None`, a removal marker) as written at `time`
/// (unix ms), unless the entry holds a newer write. A removal wins a tie.
pub fn store_item(
    config: &Config,
    kind: Kind,
    id: &str,
    item: Option<&Item>,
    time: i64,
) -> Result<Outcome, ApiError> {
    let value = match item {
        Some(item) => {
            let mut entry = item.clone();
            entry.insert("event_time".into(), json!(time));
            entry.insert("cached_at".into(), json!(now_ms() / 1000));
            entry
        }
        None => {
            // `cached_at` 0 and no due date: the resolver never takes it for an item.
            let mut marker = Map::new();
            marker.insert(kind.id_field().into(), json!(id));
            marker.insert("removed".into(), json!(true));
            marker.insert("event_time".into(), json!(time));
            marker.insert("cached_at".into(), json!(0));
            marker
        }
    };
    let bytes = serde_json::to_vec(&value).expect("JSON serializes");
    let mut outcome = Outcome::Applied;
    cache::update(
        config.shared.store(kind),
        id,
        Some(item_ttl(kind, item)),
        |current| {
            outcome = Outcome::Applied;
            if let Some((at, removed)) = current.and_then(entry_time) {
                let newer = at > time || (at == time && removed && item.is_some());
                if newer {
                    outcome = Outcome::Stale { removed };
                    return None;
                }
            }
            Some(bytes.clone())
        },
    )?;
    Ok(outcome)
}

/// The time an entry was written (unix ms), and whether it is a removal.
pub fn entry_time(bytes: &[u8]) -> Option<(i64, bool)> {
    let entry: Map<String, Value> = serde_json::from_slice(bytes).ok()?;
    let at = entry.get("event_time")?.as_i64()?;
    Some((
        at,
        entry
            .get("removed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    ))
}

/// A loan entry lives at least until its due date.
fn item_ttl(kind: Kind, item: Option<&Item>) -> u32 {
    let due = match (kind, item) {
        (Kind::Loan, Some(item)) => item.get("due_date").and_then(alma_api::kind::timestamp),
        _ => None,
    };
    let until_due = due.map_or(0, |due| {
        (due - now_ms() / 1000).clamp(0, i64::from(u32::MAX)) as u32
    });
    until_due.max(ITEM_TTL_SECONDS)
}

fn removed_after(config: &Config, kind: Kind, id: &str, time: i64) -> Result<bool, ApiError> {
    let current = cache::get(config.shared.store(kind), id)?;
    Ok(current
        .as_deref()
        .and_then(entry_time)
        .is_some_and(|(at, removed)| removed && at > time))
}

/// Adds `id` to, or removes it from, the cached user's list of `kind`, with
/// a compare-and-set. A user not cached (or expired) is queued for a
/// refresh instead, which reads the lists whole from Alma.
fn edit_list(
    config: &Config,
    kind: Kind,
    user: &str,
    id: &str,
    change: Change,
) -> Result<(), ApiError> {
    let store = &config.shared.user_store;
    let now = now_ms() / 1000;
    let mut missing = false;
    cache::update(store, user, Some(config.user_ttl_seconds), |current| {
        missing = false;
        let Some(mut cached) = current
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(bytes).ok())
            .filter(|u| {
                u.get("expiry_date")
                    .and_then(alma_api::kind::unix_seconds)
                    .is_some_and(|at| at >= now)
            })
        else {
            missing = true;
            return None;
        };
        let mut ids: Vec<Value> = match cached.get(kind.ids_field()) {
            Some(Value::Array(ids)) => ids.clone(),
            _ => Vec::new(),
        };
        let present = ids.iter().any(|v| v.as_str() == Some(id));
        match change {
            Change::Store if present => return None,
            Change::Store => ids.push(json!(id)),
            Change::Remove if !present => return None,
            Change::Remove => ids.retain(|v| v.as_str() != Some(id)),
        }
        cached.insert(kind.ids_field().into(), Value::Array(ids));
        Some(serde_json::to_vec(&cached).expect("JSON serializes"))
    })?;
    if missing {
        queue_refresh(config, user)?;
    }
    Ok(())
}

/// Sends `user` to the users queue, once while a refresh is pending (the
/// marker `/alma` sets too).
fn queue_refresh(config: &Config, user: &str) -> Result<(), ApiError> {
    let marker = format!("refresh-pending:{user}");
    if !cache::add(
        &config.shared.user_store,
        &marker,
        b"1",
        Some(REFRESH_PENDING_SECONDS),
    )? {
        return Ok(());
    }
    let message = queue::Message {
        body: user.to_owned(),
        attributes: Vec::new(),
        group_id: None,
        dedup_id: None,
        delay_seconds: 0,
    };
    if let Err(e) = queue::send(&config.users_queue, &message) {
        let _ = cache::delete(&config.shared.user_store, &marker);
        return Err(e.into());
    }
    Ok(())
}
