//! The one JSON error shape every failure reaches a client in:
//! `{"error": {"code": ..., "message": ..., "request_id": ...}}`.

use crate::core::request::Response;

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// A stable snake_case code a client can branch on.
    pub code: &'static str,
    /// A sentence for people; never internal details.
    pub message: String,
}

macro_rules! constructors {
    ($($name:ident => $status:literal, $code:literal;)*) => {
        impl ApiError {
            $(
                #[doc = concat!("A ", stringify!($status), " `", $code, "` error.")]
                pub(crate) fn $name(message: impl Into<String>) -> ApiError {
                    ApiError { status: $status, code: $code, message: message.into() }
                }
            )*
        }
    };
}

constructors! {
    bad_request => 400, "bad_request";
    unauthorized => 401, "unauthorized";
    forbidden => 403, "forbidden";
    not_found => 404, "not_found";
    method_not_allowed => 405, "method_not_allowed";
    payload_too_large => 413, "payload_too_large";
    internal => 500, "internal";
    bad_gateway => 502, "bad_gateway";
    unavailable => 503, "unavailable";
    timeout => 504, "timeout";
}

impl ApiError {
    /// The error as an HTTP response.
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message, "request_id": request_id }
        });
        Response {
            status: self.status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).expect("a JSON value serializes"),
        }
    }
}
