//! The one request and response shape inside the host. Each edge (the local
//! server, the Lambda adapter) converts to and from these.

use bytes::Bytes;

/// An HTTP request as the edges hand it to [`crate::App::handle`].
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Upper-case method.
    pub method: String,
    /// The raw (percent-encoded) path, without the query.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The id from the edge (a Lambda request id), if it has one.
    pub request_id: Option<String>,
    /// A caller the platform already verified (the claims of an API Gateway
    /// authorizer). Only the Lambda edge sets it; the local server never does.
    pub verified_caller: Option<crate::capability::auth::Identity>,
}

impl Request {
    /// The first value of a header (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}
