//! The Rust SDK for corral resource components.
//!
//! A component implements [`Guest`] and names its type with
//! [`export!`]; the helpers here turn host errors, requests and responses
//! into the shapes every corral resource shares, so that a handler can be
//! written as a plain function returning `Result<Response, ApiError>`.
//!
//! ```no_run
//! use corral_sdk::{Guest, Request, Response, handle, json};
//!
//! struct Hello;
//!
//! impl Guest for Hello {
//!     fn handle_request(request: Request) -> Response {
//!         handle(&request, |_| Ok(json(200, &serde_json::json!({"hello": "world"}))))
//!     }
//!     fn handle_events(events: Vec<corral_sdk::Event>) -> Vec<String> {
//!         events.into_iter().map(|event| event.id).collect()
//!     }
//! }
//!
//! corral_sdk::export!(Hello);
//! ```

pub mod bindings;
mod error;
pub mod http;
mod keys;
mod records;
mod request;
mod response;
mod values;

pub use bindings::export;
pub use bindings::exports::corral::host::handler::{Event, EventSource, Guest, Request, Response};
pub use error::ApiError;
pub use keys::{AUDIT_FIELDS, Keys, is_audit_field, split_list};
pub use records::{eq_filter, filter, parse_comparison, parse_record};
pub use request::RequestExt;
pub use response::{ResponseExt, json, no_content, text};
pub use values::{from_db_value, to_db_value};

/// Runs `handler` on `request` and answers its error, if any, as the standard
/// error response carrying the request id, so handlers can use `?` freely.
pub fn handle<F>(request: &Request, handler: F) -> Response
where
    F: FnOnce(&Request) -> Result<Response, ApiError>,
{
    handler(request).unwrap_or_else(|error| {
        // The caller only sees the message; the operator needs the failure in
        // the log too when the fault is on the server side.
        if error.status >= 500 {
            bindings::corral::host::log::log(
                bindings::corral::host::log::Level::Error,
                &format!("{} {}: {}", error.status, error.code, error.message),
            );
        }
        error.to_response(&request.request_id)
    })
}
