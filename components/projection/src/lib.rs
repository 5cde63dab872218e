//! A projection of the event-sourced API, configured entirely by its
//! manifest entry: mount the same component once per projection.
//!
//! It consumes the changes of the events store (`events = [{ table =
//! "events" }]`): each new event is applied to the record of its aggregate
//! by the rule for its type (see `rules`), at most once per projection,
//! in one transaction with the note that it was applied. Config:
//! `name` (default `default`), `key` (the aggregate id field, default
//! `customer`) and `handlers` (the rules; default: `create` sets `name`).

mod rules;
mod schema;

use corral_sdk::bindings::corral::host::config;
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::prelude::*;

use rules::{Aggregate, Rules};

const DEFAULT_HANDLERS: &str = r#"{"create": {"set": ["name"]}}"#;

struct Projection;

/// The projection's config.
struct Settings {
    name: String,
    key: String,
    rules: Rules,
}

impl Settings {
    fn load() -> Result<Settings, String> {
        let get = |key: &str, default: &str| -> Result<String, String> {
            let value = config::get(key).map_err(|e| format!("config {key}: {e:?}"))?;
            Ok(value
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned()))
        };
        let rules = Rules::parse(&get("handlers", DEFAULT_HANDLERS)?)
            .map_err(|e| format!("config handlers: {e}"))?;
        Ok(Settings {
            name: get("name", "default")?,
            key: get("key", "customer")?,
            rules,
        })
    }
}

impl Service for Projection {
    fn init() -> Result<(), String> {
        Settings::load()?;
        schema::create().map_err(|e| e.message)
    }

    /// A projection serves no HTTP: the events API reads its records.
    fn routes() -> Router {
        Router::new()
    }

    /// Applies the batch in order. From the first change that cannot be
    /// applied (the database failed) on, the rest fail too, so they are
    /// delivered again in the same order. Events the projection does not
    /// handle, or cannot read, are skipped and never fail.
    fn events(events: Vec<Event>) -> Vec<String> {
        let settings = match Settings::load() {
            Ok(settings) => settings,
            Err(message) => {
                log(Level::Error, &message);
                return events.into_iter().map(|e| e.id).collect();
            }
        };
        let mut failed = Vec::new();
        for event in events {
            if !failed.is_empty() {
                failed.push(event.id);
                continue;
            }
            if let Err(error) = apply(&settings, &event) {
                log(
                    Level::Warn,
                    &format!(
                        "projection {}: change {} failed: {error}",
                        settings.name, event.id
                    ),
                );
                failed.push(event.id);
            }
        }
        failed
    }
}

/// The event a change of the events store carries, if it is a new one.
fn new_event(change: &Event) -> Option<(String, Map<String, Value>)> {
    // Stored events never change; a MODIFY or REMOVE has nothing to apply.
    if change.kind != "INSERT" {
        return None;
    }
    let body: Value = serde_json::from_str(&change.body).ok()?;
    let event_id = body.get("key")?.as_str()?.to_owned();
    match serde_json::from_str(body.get("value")?.as_str()?).ok()? {
        Value::Object(event) => Some((event_id, event)),
        _ => None,
    }
}

fn apply(settings: &Settings, change: &Event) -> Result<(), ApiError> {
    let Some((event_id, event)) = new_event(change) else {
        log(
            Level::Warn,
            &format!("change {} holds no event; skipped", change.id),
        );
        return Ok(());
    };
    let (Some(id), Some(event_type)) = (
        event.get(&settings.key).and_then(Value::as_str),
        event.get("type").and_then(Value::as_str),
    ) else {
        log(
            Level::Warn,
            &format!(
                "event {event_id} has no '{}' or 'type'; skipped",
                settings.key
            ),
        );
        return Ok(());
    };
    let Some(rule) = settings.rules.get(event_type) else {
        return Ok(());
    };
    let projection = settings.name.as_str();
    let tx = sql::Tx::begin()?;
    // First, so a second delivery stops here; dropping `tx` rolls back.
    let fresh = tx.execute(
        "INSERT INTO es_applied (projection, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        sql::params![projection, event_id.as_str()],
    )?;
    if fresh == 0 {
        return Ok(());
    }
    // The row exists before it is read, so PostgreSQL can lock it: two
    // events of one aggregate applied at once take turns.
    tx.execute(
        "INSERT INTO es_projections (projection, id, record) VALUES (?, ?, NULL) ON CONFLICT DO NOTHING",
        sql::params![projection, id],
    )?;
    let lock = match sql::dialect() {
        sql::Dialect::Postgres => " FOR UPDATE",
        sql::Dialect::Sqlite => "",
    };
    let row = tx.query_one(
        &format!("SELECT record FROM es_projections WHERE projection = ? AND id = ?{lock}"),
        sql::params![projection, id],
    )?;
    let current = row
        .as_ref()
        .and_then(|r| r.get("record"))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(text).ok());
    let aggregate = Aggregate {
        projection,
        key: &settings.key,
        id,
    };
    let next = rule.apply(current, &event, event_type, &aggregate);
    let text = next.map(|record| Value::Object(record).to_string());
    tx.execute(
        "UPDATE es_projections SET record = ? WHERE projection = ? AND id = ?",
        sql::params![text, projection, id],
    )?;
    tx.commit()
}

corral_sdk::service!(Projection);
