//! The error every handler returns, and its HTTP form.

use std::fmt;

use serde_json::json;

use crate::bindings::corral::host::types::Error as HostError;
use crate::bindings::exports::corral::host::handler::Response;

/// An HTTP error: a status, a `snake_case` code and a message for the client.
///
/// It answers as `{"error": {"code", "message", "request_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// A stable, `snake_case` machine-readable code.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "method_not_allowed", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(413, "payload_too_large", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }

    /// 500 `not_granted`: the manifest lacks a grant the component needs,
    /// which is a deployment fault rather than the client's.
    pub fn not_granted(message: impl Into<String>) -> Self {
        Self::new(500, "not_granted", message)
    }

    /// The JSON error response for the request with id `request_id`.
    pub fn to_response(&self, request_id: &str) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": request_id,
            }
        });
        crate::response::json(self.status, &body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<HostError> for ApiError {
    fn from(error: HostError) -> Self {
        match error {
            HostError::NotGranted(message) => Self::not_granted(message),
            HostError::NotFound(message) => Self::not_found(message),
            HostError::Conflict(message) => Self::conflict(message),
            HostError::Invalid(message) => Self::bad_request(message),
            HostError::Unauthenticated(message) => Self::unauthorized(message),
            HostError::Forbidden(message) => Self::forbidden(message),
            HostError::Unavailable(message) => Self::unavailable(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{ApiError, HostError};

    #[test]
    fn host_errors_map_to_statuses() {
        let cases = [
            (HostError::NotGranted("t".into()), 500, "not_granted"),
            (HostError::NotFound("t".into()), 404, "not_found"),
            (HostError::Conflict("t".into()), 409, "conflict"),
            (HostError::Invalid("t".into()), 400, "bad_request"),
            (HostError::Unauthenticated("t".into()), 401, "unauthorized"),
            (HostError::Forbidden("t".into()), 403, "forbidden"),
            (HostError::Unavailable("t".into()), 503, "unavailable"),
        ];
        for (error, status, code) in cases {
            let error = ApiError::from(error);
            assert_eq!(
                (error.status, error.code.as_str(), error.message.as_str()),
                (status, code, "t")
            );
        }
    }

    #[test]
    fn response_carries_code_message_and_request_id() {
        let response = ApiError::conflict("taken").to_response("r1");
        assert_eq!(response.status, 409);
        assert_eq!(
            response.headers,
            vec![("content-type".into(), "application/json".into())]
        );
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": "conflict", "message": "taken", "request_id": "r1"}})
        );
    }
}
