//! A generic REST resource over one records table.
//!
//! The manifest routes a collection path and an item path with an `{id}`
//! segment to this component and configures it with `table`, `required`,
//! `optional` and `page_size`; no path is hard-coded here.

mod collection;
mod filters;
mod item;
mod settings;

use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::{ApiError, Event, Guest, Request, RequestExt, Response, handle};

use settings::Settings;

struct Crud;

impl Guest for Crud {
    fn init() -> Result<(), String> {
        Ok(())
    }

    fn handle_request(request: Request) -> Response {
        handle(&request, route)
    }

    fn handle_events(events: Vec<Event>) -> Vec<String> {
        let ids: Vec<String> = events.into_iter().map(|event| event.id).collect();
        // A manifest that subscribes this component to events is a mistake;
        // failing the events keeps them for redelivery instead of losing them.
        log(
            Level::Warn,
            &format!(
                "crud consumes no events; failing {}: {}",
                ids.len(),
                ids.join(", ")
            ),
        );
        ids
    }
}

fn route(request: &Request) -> Result<Response, ApiError> {
    let settings = Settings::load()?;
    match request.param("id") {
        Some(id) => item::handle(request, &settings, id),
        None => collection::handle(request, &settings),
    }
}

corral_sdk::export!(Crud);
