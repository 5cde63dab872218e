//! An HTTP response as a test reads it, and the assertions every answer
//! must pass.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// Reads a response over HTTP whole.
    pub async fn collect(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("reading the body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
        .checked()
    }

    /// An in-process app's answer, with the headers the local server would
    /// pass on.
    pub fn from_app(response: corral::Response) -> Reply {
        let mut headers = HeaderMap::new();
        for (name, value) in response.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.append(name, value);
            }
        }
        Reply {
            status: response.status,
            headers,
            body: response.body,
        }
        .checked()
    }

    /// Every answer, success or error, carries its request id.
    fn checked(self) -> Reply {
        assert!(
            self.request_id().is_some_and(|id| !id.is_empty()),
            "a response without an x-request-id header: {self}"
        );
        self
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a text header"))
    }

    /// The `x-request-id` header.
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self}"))
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status: {self}");
        self.json()
    }

    /// Asserts an error response: the status, the one error shape
    /// `{"error": {"code", "message", "request_id"}}` with exactly those keys,
    /// a JSON content type, and a request id equal to the `x-request-id`
    /// header. Returns the message.
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "unexpected status: {self}");
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "an error that is not JSON: {self}"
        );
        let body = self.json();
        let outer = body
            .as_object()
            .unwrap_or_else(|| panic!("the error body is not an object: {self}"));
        assert_eq!(
            outer.keys().collect::<Vec<_>>(),
            ["error"],
            "the error body has other keys: {self}"
        );
        let error = outer["error"]
            .as_object()
            .unwrap_or_else(|| panic!("`error` is not an object: {self}"));
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["code", "message", "request_id"],
            "the error has other keys: {self}"
        );
        assert_eq!(error["code"], code, "unexpected error code: {self}");
        let request_id = error["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("request_id is not a string: {self}"));
        assert_eq!(
            Some(request_id),
            self.request_id(),
            "the body's request_id differs from x-request-id: {self}"
        );
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("message is not a string: {self}"));
        assert!(!message.is_empty(), "an empty error message: {self}");
        message.to_owned()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, self.text())
    }
}
