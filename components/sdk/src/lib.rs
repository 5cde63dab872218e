//! The Rust SDK for corral resource components.
//!
//! A component is a [`Service`]: a route table of plain functions from a
//! [`Ctx`] to `Result<Response, ApiError>`, an optional `init` and an
//! optional event handler, exported with [`service!`]. The SDK does the
//! common work: routing and typed path parameters, declared body and query
//! keys ("Missing key(s): ..."), errors that keep their status, the caller's
//! identity, SQL rows as JSON, and generic record handlers
//! ([`resource::Records`]). CORS is the host's: the manifest's `[cors]`
//! table applies it to every response.
//!
//! ```no_run
//! use corral_sdk::prelude::*;
//!
//! struct Notes;
//!
//! impl Service for Notes {
//!     fn init() -> Result<(), String> {               // once per loaded version: tables, example data
//!         Ok(())
//!     }
//!
//!     fn routes() -> Router {                          // paths below the mount point
//!         Router::new()
//!             .get("/notes", |ctx| notes().list(ctx))  // generic record handlers
//!             .post("/notes", |ctx| notes().create(ctx))
//!             .get("/notes/{id}/words", words)
//!     }
//! }
//!
//! fn notes() -> Records {
//!     Records::new("notes").required(&["title"]).optional(&["body"])
//! }
//!
//! fn words(ctx: &Ctx) -> Result<Response, ApiError> {
//!     let id: String = ctx.param("id")?;               // typed; 400 naming it if it does not parse
//!     let min: Option<u32> = ctx.query("min")?;        // typed optional query parameter
//!     let row = sql::query_one("SELECT body FROM notes_text WHERE id = ?", sql::params![id])?
//!         .ok_or_else(|| ApiError::not_found("No such note"))?;
//!     Ok(json(200, &json!({ "body": row["body"], "min": min })))
//! }
//!
//! corral_sdk::service!(Notes);
//! ```

pub mod bindings;
pub mod cache;
mod ctx;
mod error;
mod fields;
pub mod http;
mod keys;
mod records;
mod request;
pub mod resource;
mod response;
mod router;
mod service;
pub mod sql;
mod values;

pub use bindings::corral::host::auth::Identity;
pub use bindings::export;
pub use bindings::exports::corral::host::handler::{Event, EventSource, Guest, Request, Response};
pub use ctx::Ctx;
pub use error::ApiError;
pub use fields::Fields;
pub use keys::{AUDIT_FIELDS, Keys, is_audit_field, split_list};
pub use records::{eq_filter, filter, parse_comparison, parse_record};
pub use request::RequestExt;
pub use response::{ResponseExt, empty, json, no_content, text};
pub use router::{Handler, Router};
pub use service::{Service, fail_unexpected_events};
pub use values::{from_db_value, to_db_value};

/// What most components need, in one import.
pub mod prelude {
    pub use crate::resource::Records;
    pub use crate::{
        ApiError, Ctx, Event, EventSource, Fields, Identity, Request, Response, ResponseExt,
        Router, Service, empty, json, no_content, sql, text,
    };
    pub use serde_json::{Map, Value, json};
}

/// Runs `handler` on `request` and answers its error, if any, as the standard
/// error response carrying the request id, so handlers can use `?` freely.
pub fn handle<F>(request: &Request, handler: F) -> Response
where
    F: FnOnce(&Request) -> Result<Response, ApiError>,
{
    handler(request).unwrap_or_else(|error| error_response(request, &error))
}

/// The JSON response for `error`, logged when the fault is on the server side.
pub(crate) fn error_response(request: &Request, error: &ApiError) -> Response {
    // The caller only sees the message; the operator needs the failure in
    // the log too.
    if error.status >= 500 {
        bindings::corral::host::log::log(
            bindings::corral::host::log::Level::Error,
            &format!("{} {}: {}", error.status, error.code, error.message),
        );
    }
    error.to_response(&request.request_id)
}
