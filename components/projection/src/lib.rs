//! A projection of the event-sourced API, configured entirely by its
//! manifest entry: mount the same component once per projection.
//!
//! It consumes the changes of the events store (`events = [{ table =
//! "events" }]`): each new event is applied to the record of its aggregate
//! by the rule for its type (see `rules`), at most once per projection,
//! in one transaction with the note that it was applied: a batch of changes
//! in three statements. Config:
//! `name` (default `default`), `key` (the aggregate id field, default
//! `customer`) and `handlers` (the rules; default: `create` sets `name`).

mod rules;
mod schema;

use corral_sdk::bindings::corral::host::config;
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::prelude::*;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rules::{Aggregate, Rule, Rules};

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

    /// Applies the batch in order, in one transaction: one commit for the
    /// whole batch. If that fails, each change is applied in a transaction
    /// of its own, and from the first change that cannot be applied (the
    /// database failed) on, the rest fail too, so they are delivered again
    /// in the same order. Events the projection does not handle, or cannot
    /// read, are skipped and never fail.
    fn events(events: Vec<Event>) -> Vec<String> {
        let settings = match Settings::load() {
            Ok(settings) => settings,
            Err(message) => {
                log(Level::Error, &message);
                return events.into_iter().map(|e| e.id).collect();
            }
        };
        if events.len() > 1 && apply_all(&settings, &events).is_ok() {
            return Vec::new();
        }
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

/// Applies every change of a batch in one transaction.
fn apply_all(settings: &Settings, changes: &[Event]) -> Result<(), ApiError> {
    let tx = sql::Tx::begin()?;
    apply_in(&tx, settings, changes)?;
    tx.commit()
}

/// Applies one change in a transaction of its own.
fn apply(settings: &Settings, change: &Event) -> Result<(), ApiError> {
    apply_all(settings, std::slice::from_ref(change))
}

/// A new event this projection has a rule for.
struct Applicable<'a> {
    event_id: String,
    aggregate: String,
    event_type: String,
    event: Map<String, Value>,
    rule: &'a Rule,
}

/// The changes' events this projection has a rule for, in order; the
/// others are skipped (with a warning when they cannot be read).
fn applicable<'a>(settings: &'a Settings, changes: &[Event]) -> Vec<Applicable<'a>> {
    let mut found = Vec::new();
    for change in changes {
        let Some((event_id, event)) = new_event(change) else {
            log(
                Level::Warn,
                &format!("change {} holds no event; skipped", change.id),
            );
            continue;
        };
        let (Some(aggregate), Some(event_type)) = (
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
            continue;
        };
        if let Some(rule) = settings.rules.get(event_type) {
            found.push(Applicable {
                aggregate: aggregate.to_owned(),
                event_type: event_type.to_owned(),
                event_id,
                event,
                rule,
            });
        }
    }
    found
}

/// `rows` rows of `columns` placeholders: `(?, ?), (?, ?)`.
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Applies `changes` within `tx` in three statements, however many there
/// are: marks their events applied (an event applied before is skipped),
/// reads their aggregates' records (creating the rows, which PostgreSQL
/// then locks, so two batches touching one aggregate take turns), and
/// writes back the records after the events, in order.
fn apply_in(tx: &sql::Tx, settings: &Settings, changes: &[Event]) -> Result<(), ApiError> {
    let mut events = applicable(settings, changes);
    if events.is_empty() {
        return Ok(());
    }
    let projection = settings.name.as_str();
    let params: Vec<sql::Value> = events
        .iter()
        .flat_map(|e| [projection.into(), e.event_id.as_str().into()])
        .collect();
    let fresh = tx.query(
        &format!(
            "INSERT INTO es_applied (projection, event_id) VALUES {} ON CONFLICT DO NOTHING RETURNING event_id",
            placeholders(events.len(), 2)
        ),
        &params,
    )?;
    let mut fresh: HashSet<&str> = fresh
        .iter()
        .filter_map(|row| row.get("event_id").and_then(Value::as_str))
        .collect();
    // Each event once, the first time it comes.
    events.retain(|e| fresh.remove(e.event_id.as_str()));
    if events.is_empty() {
        return Ok(());
    }
    let aggregates: BTreeSet<&str> = events.iter().map(|e| e.aggregate.as_str()).collect();
    let params: Vec<sql::Value> = aggregates
        .iter()
        .flat_map(|id| [projection.into(), (*id).into()])
        .collect();
    let rows = tx.query(
        &format!(
            "INSERT INTO es_projections (projection, id, record) VALUES {} \
             ON CONFLICT (projection, id) DO UPDATE SET record = es_projections.record RETURNING id, record",
            vec!["(?, ?, NULL)"; aggregates.len()].join(", ")
        ),
        &params,
    )?;
    let mut records: BTreeMap<String, Option<Map<String, Value>>> = rows
        .iter()
        .filter_map(|row| {
            let id = row.get("id")?.as_str()?.to_owned();
            let record = row
                .get("record")
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str(text).ok());
            Some((id, record))
        })
        .collect();
    for e in &events {
        let at = Aggregate {
            projection,
            key: &settings.key,
            id: &e.aggregate,
        };
        let current = records.remove(&e.aggregate).flatten();
        let next = e.rule.apply(current, &e.event, &e.event_type, &at);
        records.insert(e.aggregate.clone(), next);
    }
    let params: Vec<sql::Value> = records
        .iter()
        .flat_map(|(id, record)| {
            let text = record.clone().map(|r| Value::Object(r).to_string());
            [projection.into(), id.as_str().into(), text.into()]
        })
        .collect();
    tx.execute(
        &format!(
            "INSERT INTO es_projections (projection, id, record) VALUES {} \
             ON CONFLICT (projection, id) DO UPDATE SET record = excluded.record",
            placeholders(records.len(), 3)
        ),
        &params,
    )?;
    Ok(())
}

corral_sdk::service!(Projection);
