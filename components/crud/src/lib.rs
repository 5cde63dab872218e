//! A generic REST resource over one records table.
//!
//! The manifest routes a collection path and an item path with an `{id}`
//! segment to this component and configures it with `table`, `required`,
//! `optional`, `page_size` and `shapes` (`corral`, the default, or
//! `pyverless`); no path is hard-coded here, so it dispatches on the route's
//! `{id}` rather than on a route table of its own. The handlers are the
//! SDK's generic record handlers.

mod settings;

use corral_sdk::prelude::*;
use corral_sdk::{Guest, RequestExt, fail_unexpected_events, handle};

use settings::Settings;

struct Crud;

impl Guest for Crud {
    fn init() -> Result<(), String> {
        Settings::load().map(drop).map_err(|error| error.message)
    }

    fn handle_request(request: Request) -> Response {
        handle(&request, route)
    }

    fn handle_events(events: Vec<Event>) -> Vec<String> {
        fail_unexpected_events(events)
    }
}

fn route(request: &Request) -> Result<Response, ApiError> {
    let records = Settings::load()?.records();
    let ctx = Ctx::new(request, Vec::new());
    let (allow, outcome) = match (request.method.as_str(), request.param("id")) {
        ("GET", None) => return records.list(&ctx),
        ("POST", None) => return records.create(&ctx),
        ("DELETE", None) => return records.delete_matching(&ctx),
        ("GET", Some(id)) => return records.retrieve(&ctx, id),
        ("PATCH", Some(id)) => return records.update(&ctx, id),
        ("DELETE", Some(id)) => return records.delete(&ctx, id),
        (_, None) => ("GET, POST, DELETE", request.method.as_str()),
        (_, Some(_)) => ("GET, PATCH, DELETE", request.method.as_str()),
    };
    Ok(
        ApiError::method_not_allowed(format!("{outcome} is not allowed here"))
            .to_response(&request.request_id)
            .with_header("allow", allow),
    )
}

corral_sdk::export!(Crud);
