//! Event handling: log each event, fail those whose body is `fail`, take
//! N milliseconds over those whose body is `slow:N`, and record the rest in
//! the table named by config key `events_table`, and once per event id in
//! the table named by `applied_table` (columns `event_id`, `body`).

use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::bindings::corral::host::{config, db};
use corral_sdk::{ApiError, Event, EventSource};
use serde_json::json;

/// Handles a batch and returns the ids of the events that failed.
pub fn handle(events: Vec<Event>) -> Vec<String> {
    let tables = config::get("events_table").and_then(|t| Ok((t, config::get("applied_table")?)));
    let (table, applied) = match tables {
        Ok(tables) => tables,
        Err(error) => {
            // Without knowing where to record, no event can be handled:
            // fail them all so they are delivered again.
            log(
                Level::Error,
                &format!("reading the config failed: {}", ApiError::from(error)),
            );
            return events.into_iter().map(|event| event.id).collect();
        }
    };
    events
        .into_iter()
        .filter(|event| !handle_one(event, table.as_deref(), applied.as_deref()))
        .map(|event| event.id)
        .collect()
}

/// Whether the event was handled.
fn handle_one(event: &Event, table: Option<&str>, applied: Option<&str>) -> bool {
    let source = source_name(&event.source);
    log(
        Level::Info,
        &format!(
            "event {} kind={} source={source} body={}",
            event.id, event.kind, event.body
        ),
    );
    if event.body == "fail" {
        return false;
    }
    if let Some(ms) = event
        .body
        .strip_prefix("slow:")
        .and_then(|ms| ms.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    if let Some(applied) = applied {
        // A redelivered event finds its row and changes nothing.
        let sql = format!(
            "INSERT INTO {applied} (event_id, body) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING"
        );
        let params = [
            db::Value::Text(event.id.clone()),
            db::Value::Text(event.body.clone()),
        ];
        if let Err(error) = db::execute(&sql, &params) {
            log(
                Level::Error,
                &format!(
                    "applying event {} failed: {}",
                    event.id,
                    ApiError::from(error)
                ),
            );
            return false;
        }
    }
    let Some(table) = table else {
        return true;
    };
    let fields = json!({
        "event_id": event.id,
        "kind": event.kind,
        "body": event.body,
        "source": source,
    });
    match db::insert(table, &fields.to_string()) {
        Ok(_) => true,
        Err(error) => {
            log(
                Level::Error,
                &format!(
                    "recording event {} failed: {}",
                    event.id,
                    ApiError::from(error)
                ),
            );
            false
        }
    }
}

/// The source as `kind:name`, e.g. `queue:orders`.
fn source_name(source: &EventSource) -> String {
    match source {
        EventSource::Queue(name) => format!("queue:{name}"),
        EventSource::Table(name) => format!("table:{name}"),
        EventSource::Objects(name) => format!("objects:{name}"),
    }
}
