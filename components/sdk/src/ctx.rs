//! What a handler sees of its request: typed path and query parameters,
//! the body and its declared keys, and the verified caller.

use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::bindings::corral::host::auth::{self, Identity};
use crate::bindings::exports::corral::host::handler::Request;
use crate::fields::typed;
use crate::{ApiError, Fields, RequestExt};

/// One request and the parameters its route bound.
pub struct Ctx<'a> {
    request: &'a Request,
    params: Vec<(String, String)>,
}

impl<'a> Ctx<'a> {
    /// The context of `request`, with the `{name}` values of its route.
    pub fn new(request: &'a Request, params: Vec<(String, String)>) -> Self {
        Self { request, params }
    }

    /// The request itself.
    pub fn request(&self) -> &Request {
        self.request
    }

    /// The id the host logs and answers in `x-request-id`.
    pub fn request_id(&self) -> &str {
        &self.request.request_id
    }

    /// The first header called `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.header(name)
    }

    /// The route's `{name}` segment as a `T`; 400 naming it when it does not
    /// parse (a route without that segment is a bug: 500).
    pub fn param<T: FromStr>(&self, name: &str) -> Result<T, ApiError> {
        let raw = self
            .params
            .iter()
            .chain(&self.request.params)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| ApiError::internal(format!("the route has no parameter '{name}'")))?;
        raw.parse()
            .map_err(|_| ApiError::bad_request(format!("Invalid '{name}': {raw:?}")))
    }

    /// The query parameter `name` as a `T`, or none when absent; 400 naming
    /// it when it does not parse.
    pub fn query<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.request
            .query(name)
            .map(|raw| typed(name, &Value::String(raw.to_owned())))
            .transpose()
    }

    /// The body as a JSON object: an empty body is an empty object; 400
    /// "Malformed body" when it is not JSON.
    pub fn body(&self) -> Result<Map<String, Value>, ApiError> {
        if self.request.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        self.request.json_object()
    }

    /// The body deserialized into `T`; 400 naming the problem.
    pub fn body_as<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        self.request.json_as()
    }

    /// The body's declared keys: see [`Fields::declared`].
    pub fn body_keys(&self, required: &[&str], optional: &[&str]) -> Result<Fields, ApiError> {
        Fields::declared(self.body()?, required, optional)
    }

    /// The query string's declared keys (the first value of each).
    pub fn query_keys(&self, required: &[&str], optional: &[&str]) -> Result<Fields, ApiError> {
        Fields::declared(self.query_map(), required, optional)
    }

    /// The declared keys from the query string and the body; the body wins
    /// where both have a key.
    pub fn input_keys(&self, required: &[&str], optional: &[&str]) -> Result<Fields, ApiError> {
        let mut input = self.query_map();
        input.extend(self.body()?);
        Fields::declared(input, required, optional)
    }

    fn query_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for (name, value) in &self.request.query {
            map.entry(name.clone())
                .or_insert_with(|| Value::String(value.clone()));
        }
        map
    }

    /// The verified caller, if any.
    pub fn caller(&self) -> Option<Identity> {
        auth::caller()
    }

    /// The verified caller; 401 without one.
    pub fn require_caller(&self) -> Result<Identity, ApiError> {
        self.caller()
            .ok_or_else(|| ApiError::unauthorized("This request needs a signed-in caller"))
    }

    /// The caller when in `group`; 401 without a caller, 403 outside the group.
    pub fn require_group(&self, group: &str) -> Result<Identity, ApiError> {
        Ok(auth::require_group(group)?)
    }
}
