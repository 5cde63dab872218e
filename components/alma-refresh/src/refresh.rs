//! A queued user: every page of each list read from Alma, each item stored
//! unless a newer event wrote it, and the user stored with their ids.

use std::collections::HashMap;

use alma_api::{Alma, Kind};
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::{ApiError, cache};
use serde_json::{Map, Value, json};

use crate::apply::{Outcome, entry_time, store_item};
use crate::{Config, now_ms};

/// The most keys one `get-many` takes.
const GET_MANY_MAX: usize = 100;

pub fn user(config: &Config, user: &str) -> Result<(), ApiError> {
    if user.is_empty() || user.len() > 256 || user.contains(['/', '?', '#']) {
        return Err(ApiError::bad_request(format!("'{user}' is not a user id")));
    }
    // Every item is stored as of the moment before Alma was read: an event
    // later than that wins over this snapshot.
    let read_at = now_ms();
    let Some(lists) = Alma::new(&config.shared).lists(user, &Kind::ALL)? else {
        log(
            Level::Warn,
            &format!("Alma does not know the user '{user}'; nothing cached"),
        );
        return Ok(());
    };
    let mut snapshot = Map::new();
    for (kind, items) in Kind::ALL.into_iter().zip(lists) {
        let mut ids = Vec::new();
        for item in items {
            let Some(id) = kind.id_of(&item) else {
                continue;
            };
            match store_item(config, kind, &id, Some(&item), read_at)? {
                Outcome::Stale { removed: true } => continue,
                Outcome::Applied | Outcome::Stale { removed: false } => ids.push(id),
            }
        }
        snapshot.insert(kind.ids_field().into(), json!(ids));
    }

    let expiry = now_ms() / 1000 + i64::from(config.user_ttl_seconds);
    cache::update(
        &config.shared.user_store,
        user,
        Some(config.user_ttl_seconds),
        |current| {
            let mut record = Map::new();
            record.insert("primary_id".into(), json!(user));
            for kind in Kind::ALL {
                let from_alma = string_ids(snapshot.get(kind.ids_field()));
                // Ids that events added after Alma was read stay.
                let cached = current
                    .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(bytes).ok())
                    .map(|u| string_ids(u.get(kind.ids_field())))
                    .unwrap_or_default();
                let extra: Vec<String> = cached
                    .into_iter()
                    .filter(|id| !from_alma.contains(id))
                    .collect();
                let newer = written_after(config, kind, &extra, read_at).unwrap_or_default();
                let mut ids = from_alma;
                ids.extend(extra.into_iter().filter(|id| newer.get(id) == Some(&false)));
                record.insert(kind.ids_field().into(), json!(ids));
            }
            record.insert("expiry_date".into(), json!(expiry));
            Some(serde_json::to_vec(&record).expect("JSON serializes"))
        },
    )?;
    // The next miss after this entry expires may queue the user again.
    let _ = cache::delete(
        &config.shared.user_store,
        &format!("refresh-pending:{user}"),
    );
    Ok(())
}

fn string_ids(list: Option<&Value>) -> Vec<String> {
    match list {
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The ids among `ids` whose entry was written after `time`, each with
/// whether that write removed it.
fn written_after(
    config: &Config,
    kind: Kind,
    ids: &[String],
    time: i64,
) -> Result<HashMap<String, bool>, ApiError> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(GET_MANY_MAX) {
        for (id, bytes) in cache::get_many(config.shared.store(kind), chunk)? {
            if let Some((at, removed)) = entry_time(&bytes)
                && at > time
            {
                found.insert(id, removed);
            }
        }
    }
    Ok(found)
}
