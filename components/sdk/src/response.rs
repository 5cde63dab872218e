//! Response builders.

use serde_json::Value;

use crate::bindings::exports::corral::host::handler::Response;

/// A JSON response.
pub fn json(status: u16, body: &Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        // Serializing a `Value` cannot fail: its map keys are always strings.
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

/// A plain-text UTF-8 response.
pub fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// 204 with no body and no content type.
pub fn no_content() -> Response {
    empty(204)
}

/// A response with `status` and no body.
pub fn empty(status: u16) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Adds builder-style header setting to [`Response`].
pub trait ResponseExt {
    /// The response with one more header; `name` is lower-cased.
    fn with_header(self, name: &str, value: impl Into<String>) -> Self;
}

impl ResponseExt for Response {
    fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}
