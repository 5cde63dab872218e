//! Accessors for the parts of a [`Request`].

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;
use crate::bindings::exports::corral::host::handler::Request;

/// Reads path parameters, query parameters, headers and JSON bodies.
pub trait RequestExt {
    /// The value of the route's `{name}` segment.
    fn param(&self, name: &str) -> Option<&str>;
    /// The first query parameter called `name`.
    fn query(&self, name: &str) -> Option<&str>;
    /// The first header called `name`, compared case-insensitively.
    fn header(&self, name: &str) -> Option<&str>;
    /// The body parsed as JSON; 400 "Malformed body" when it is not JSON.
    fn json_body(&self) -> Result<Value, ApiError>;
    /// The body as a JSON object; 400 when it is not one.
    fn json_object(&self) -> Result<Map<String, Value>, ApiError>;
    /// The body deserialized into `T`; 400 naming the problem when it does
    /// not fit.
    fn json_as<T: DeserializeOwned>(&self) -> Result<T, ApiError>;
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

impl RequestExt for Request {
    fn param(&self, name: &str) -> Option<&str> {
        lookup(&self.params, name)
    }

    fn query(&self, name: &str) -> Option<&str> {
        lookup(&self.query, name)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|_| ApiError::bad_request("Malformed body"))
    }

    fn json_object(&self) -> Result<Map<String, Value>, ApiError> {
        match self.json_body()? {
            Value::Object(object) => Ok(object),
            _ => Err(ApiError::bad_request("The body must be a JSON object")),
        }
    }

    fn json_as<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_value(self.json_body()?)
            .map_err(|error| ApiError::bad_request(format!("Invalid body: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::{Request, RequestExt};

    fn request(body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: "/x".into(),
            mount: String::new(),
            route: "/x".into(),
            params: vec![("id".into(), "7".into())],
            query: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
            request_id: "r".into(),
        }
    }

    #[test]
    fn lookups() {
        let request = request("");
        assert_eq!(request.param("id"), Some("7"));
        assert_eq!(request.query("a"), Some("1"));
        assert_eq!(request.header("Content-Type"), Some("text/plain"));
        assert_eq!(request.query("b"), None);
    }

    #[test]
    fn bodies() {
        assert_eq!(
            request("nope").json_body().unwrap_err().message,
            "Malformed body"
        );
        assert_eq!(
            request("").json_body().unwrap_err().message,
            "Malformed body"
        );
        assert_eq!(
            request("[1]").json_object().unwrap_err().message,
            "The body must be a JSON object"
        );
        assert_eq!(request(r#"{"k": 1}"#).json_object().unwrap().len(), 1);
    }
}
