//! The Alma cache refresh (seeds LAG-sns-update-cache and
//! LAG-bulk-update-cache): a queue consumer that keeps the stores `/alma`
//! reads.
//!
//! - A message on `events_queue` is an Alma webhook body. Loan events
//!   (created, due date, renewed) store `item_loan` and add its id to the
//!   user's `loan_ids`; a return removes both. Request events likewise
//!   (created, placed on shelf; closed, canceled) with `user_request` and
//!   `request_ids`. A user that is not cached is sent to `users_queue`
//!   instead of having its lists edited.
//! - A message on `users_queue` is a user id: every page of the user's
//!   loans, requests and fees is read from Alma, each item stored, and the
//!   user stored with their ids, valid for `user_ttl_seconds` (2 hours).
//!
//! Unlike the originals:
//! - list edits are compare-and-set (`cache::update`), so concurrent edits of
//!   one user all land;
//! - each item entry records the time of the event that wrote it
//!   (`event_time`, unix ms), and a removal leaves a marker with its time:
//!   an event older than the entry (a late renewal after a return) changes
//!   nothing;
//! - one bad message fails only itself (its id is returned), and the queue's
//!   dead-letter settings take it after repeated failures.
//!
//! Config: what [`alma_api::Settings`] reads, plus `events_queue`,
//! `users_queue` and optionally `user_ttl_seconds`.

mod apply;
mod refresh;

use alma_api::settings::{number, required};
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::prelude::*;

/// What the refresh reads from config.
pub struct Config {
    pub shared: alma_api::Settings,
    pub events_queue: String,
    pub users_queue: String,
    pub user_ttl_seconds: u32,
}

impl Config {
    fn load() -> Result<Config, ApiError> {
        Ok(Config {
            shared: alma_api::Settings::load()?,
            events_queue: required("events_queue")?,
            users_queue: required("users_queue")?,
            user_ttl_seconds: number("user_ttl_seconds", 7200, 60..=86_400)?,
        })
    }
}

struct Refresh;

impl Service for Refresh {
    fn init() -> Result<(), String> {
        Config::load().map(drop).map_err(|e| e.message)
    }

    fn routes() -> Router {
        Router::new()
    }

    fn events(events: Vec<Event>) -> Vec<String> {
        let config = match Config::load() {
            Ok(config) => config,
            Err(e) => {
                log(
                    Level::Error,
                    &format!("cannot read the config; failing the batch: {}", e.message),
                );
                return events.into_iter().map(|e| e.id).collect();
            }
        };
        events
            .into_iter()
            .filter(|event| match handle(&config, event) {
                Ok(()) => false,
                Err(e) => {
                    log(
                        Level::Error,
                        &format!("message {} failed: {}", event.id, e.message),
                    );
                    true
                }
            })
            .map(|event| event.id)
            .collect()
    }
}

fn handle(config: &Config, event: &Event) -> Result<(), ApiError> {
    match &event.source {
        EventSource::Queue(q) if *q == config.users_queue => {
            refresh::user(config, event.body.trim())
        }
        EventSource::Queue(q) if *q == config.events_queue => {
            apply::webhook_event(config, &event.body)
        }
        other => Err(ApiError::bad_request(format!(
            "no handling for events from {other:?}"
        ))),
    }
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

corral_sdk::service!(Refresh);
