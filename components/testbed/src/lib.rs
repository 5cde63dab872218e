//! A component that the host's tests drive: each `/testbed/{action}` path
//! exercises one host interface or one failure mode.
//!
//! Actions do not check the method: the testbed serves tests, which pick
//! the method that suits them.

mod cache;
mod events;
mod identity;
mod misc;
mod queue;
mod records;
mod sql;

use corral_sdk::{ApiError, Event, Guest, Request, RequestExt, Response, handle, text};

struct Testbed;

impl Guest for Testbed {
    fn init() -> Result<(), String> {
        use corral_sdk::bindings::corral::host::{config, db};
        // Lets tests see how the host treats a version whose `init` fails.
        if let Ok(Some(message)) = config::get("init_error") {
            return Err(message);
        }
        // Lets tests count how often `init` runs: one record per run.
        if let Ok(Some(table)) = config::get("init_log") {
            db::insert(&table, r#"{"event":"init"}"#)
                .map_err(|e| format!("logging the init: {e:?}"))?;
        }
        Ok(())
    }

    fn handle_request(request: Request) -> Response {
        // `ping` is the per-request benchmark: keep it free of everything
        // but the routing itself.
        if request.param("action") == Some("ping") {
            return text(200, "pong");
        }
        misc::count_call();
        handle(&request, route)
    }

    fn handle_events(events: Vec<Event>) -> Vec<String> {
        events::handle(events)
    }
}

fn route(request: &Request) -> Result<Response, ApiError> {
    let action = request.param("action").unwrap_or_default();
    match action {
        "echo" => misc::echo(request),
        "whoami" => identity::whoami(),
        "require-group" => identity::require_group(request),
        "residue" => misc::residue(),
        "trap" => misc::trap(),
        "loop" => misc::spin(),
        "grow" => misc::grow(),
        "config" => misc::config(request),
        "log" => misc::log(request),
        "sql" => sql::run(request),
        "tx" => sql::transaction(request),
        "tx-leak" => sql::leak_transaction(),
        "records" => records::run(request),
        "cache" => cache::run(request),
        "queue" => queue::run(request),
        _ => Err(ApiError::not_found(format!("No testbed action '{action}'"))),
    }
}

corral_sdk::export!(Testbed);
