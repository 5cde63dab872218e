//! The resolution order: the cached user gives the id lists, else the user
//! is queued for a refresh and the lists come from Alma; each item comes
//! from the cache while valid, else from Alma.
//!
//! Nothing fetched from Alma is written back: the cache has one family of
//! writers (the webhook and the queued-refresh services), and a write-back
//! here could replace a newer webhook update with an older answer for as
//! long as the entry lives.

use std::collections::HashMap;

use corral_sdk::ApiError;
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::bindings::corral::host::{cache, queue};
use serde_json::{Map, Value};

use crate::settings::Settings;
use alma_api::kind::{Kind, unix_seconds};
use alma_api::{Alma, Item};

/// The most keys one `get-many` takes.
const GET_MANY_MAX: usize = 100;

/// Each kind's items for `user`, in the order of `kinds`, with the kept
/// fields only; 404 when neither the cache nor Alma knows the user.
pub fn user_items(
    settings: &Settings,
    alma: &Alma,
    user: &str,
    kinds: &[Kind],
) -> Result<Vec<Vec<Value>>, ApiError> {
    let lists: Vec<Vec<Item>> = match cached_user(settings, user)? {
        Some(cached) => {
            let ids: Vec<Vec<String>> = kinds.iter().map(|k| id_list(&cached, *k)).collect();
            from_cache_else_alma(settings, alma, user, kinds, &ids)?
        }
        None => {
            // Queued once Alma confirms the user, so unknown ids never reach the queue.
            let listed = alma.lists(user, kinds)?.ok_or_else(|| unknown_user(user))?;
            request_refresh(settings, user);
            // A list answer already carries each item: the cache still wins
            // while valid, and no item costs a second call.
            kinds
                .iter()
                .zip(listed)
                .map(|(kind, items)| {
                    let ids: Vec<String> = items.iter().filter_map(|i| kind.id_of(i)).collect();
                    let mut cached = cached_items(settings, *kind, &ids)?;
                    Ok(items
                        .into_iter()
                        .map(|item| {
                            kind.id_of(&item)
                                .and_then(|id| cached.remove(&id))
                                .unwrap_or(item)
                        })
                        .collect())
                })
                .collect::<Result<_, ApiError>>()?
        }
    };
    Ok(kinds
        .iter()
        .zip(lists)
        .map(|(kind, items)| items.into_iter().map(|i| kind.keep(i)).collect())
        .collect())
}

/// One item of `user`; 404 when neither the cache nor Alma has it.
pub fn user_item(
    settings: &Settings,
    alma: &Alma,
    user: &str,
    kind: Kind,
    id: &str,
) -> Result<Value, ApiError> {
    let user_cached = cached_user(settings, user)?.is_some();
    let item = match cached_items(settings, kind, &[id.to_owned()])?.remove(id) {
        Some(item) if owned_by(&item, user) => Some(item),
        _ => alma.items(user, &[(kind, id.to_owned())])?.pop().flatten(),
    };
    let item = item.ok_or_else(|| {
        ApiError::not_found(format!(
            "No {} '{id}' for the user '{user}' in Alma",
            kind.segment().trim_end_matches('s')
        ))
    })?;
    if !user_cached {
        request_refresh(settings, user);
    }
    Ok(kind.keep(item))
}

/// The items of these ids: valid cache entries, the rest from Alma at once.
/// An id Alma no longer knows (a loan returned since) is left out.
fn from_cache_else_alma(
    settings: &Settings,
    alma: &Alma,
    user: &str,
    kinds: &[Kind],
    ids: &[Vec<String>],
) -> Result<Vec<Vec<Item>>, ApiError> {
    let mut cached: Vec<HashMap<String, Item>> = kinds
        .iter()
        .zip(ids)
        .map(|(k, ids)| cached_items(settings, *k, ids))
        .collect::<Result<_, _>>()?;
    let missing: Vec<(Kind, String)> = kinds
        .iter()
        .zip(ids)
        .zip(&cached)
        .flat_map(|((kind, ids), found)| {
            ids.iter()
                .filter(|id| !found.contains_key(*id))
                .map(|id| (*kind, id.clone()))
        })
        .collect();
    if !missing.is_empty() {
        for ((kind, id), item) in missing.iter().zip(alma.items(user, &missing)?) {
            if let Some(item) = item {
                let slot = kinds
                    .iter()
                    .position(|k| k == kind)
                    .expect("asked for this kind");
                cached[slot].insert(id.clone(), item);
            }
        }
    }
    Ok(ids
        .iter()
        .zip(&mut cached)
        .map(|(ids, found)| ids.iter().filter_map(|id| found.remove(id)).collect())
        .collect())
}

/// The cached user while its `expiry_date` has not passed.
fn cached_user(settings: &Settings, user: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    let Some(bytes) = cache::get(&settings.user_store, user)? else {
        return Ok(None);
    };
    let now = now();
    Ok(decode(&settings.user_store, user, &bytes).filter(|u| {
        u.get("expiry_date")
            .and_then(unix_seconds)
            .is_some_and(|t| t >= now)
    }))
}

/// The valid cached items among `ids`, by id.
fn cached_items(
    settings: &Settings,
    kind: Kind,
    ids: &[String],
) -> Result<HashMap<String, Item>, ApiError> {
    let store = settings.store(kind);
    let now = now();
    let mut found = HashMap::new();
    for chunk in ids.chunks(GET_MANY_MAX) {
        for (key, bytes) in cache::get_many(store, chunk)? {
            if let Some(item) = decode(store, &key, &bytes).filter(|i| kind.valid(i, now)) {
                found.insert(key, item);
            }
        }
    }
    Ok(found)
}

/// Queues `user` for a cache refresh unless one is already pending. A
/// failed send is logged and its marker removed, so the next miss retries.
fn request_refresh(settings: &Settings, user: &str) {
    let marker = format!("refresh-pending:{user}");
    match cache::add(
        &settings.user_store,
        &marker,
        b"1",
        Some(settings.refresh_pending_seconds),
    ) {
        Ok(false) => return,
        Ok(true) => {}
        Err(e) => log(
            Level::Warn,
            &format!("cannot mark the refresh of user '{user}' as pending, queueing anyway: {e:?}"),
        ),
    }
    let message = queue::Message {
        body: user.to_owned(),
        attributes: Vec::new(),
        group_id: None,
        dedup_id: None,
        delay_seconds: 0,
    };
    if let Err(e) = queue::send(&settings.users_queue, &message) {
        log(
            Level::Error,
            &format!(
                "cannot queue user '{user}' for a cache refresh on '{}': {e:?}",
                settings.users_queue
            ),
        );
        let _ = cache::delete(&settings.user_store, &marker);
    }
}

/// A cached user's ids of `kind`; a missing list is an empty one.
fn id_list(user: &Map<String, Value>, kind: Kind) -> Vec<String> {
    match user.get(kind.ids_field()) {
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(|id| match id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a cached item may belong to `user` (items that name no user do).
fn owned_by(item: &Item, user: &str) -> bool {
    ["user_primary_id", "user_id"].iter().all(|f| {
        item.get(*f)
            .and_then(Value::as_str)
            .is_none_or(|owner| owner == user)
    })
}

fn decode(store: &str, key: &str, bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => {
            log(
                Level::Warn,
                &format!(
                    "the cache entry '{key}' of '{store}' is not a JSON object; treated as absent"
                ),
            );
            None
        }
    }
}

fn unknown_user(user: &str) -> ApiError {
    ApiError::not_found(format!("No user '{user}' in Alma"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
