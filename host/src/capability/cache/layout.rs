//! Item layouts: a store whose values are JSON objects kept the way an
//! existing application's tables keep them (the LAG-Alma-Utils schemas):
//! the cache key in an attribute of its own name, the expiry in unix
//! seconds in another, and the other fields beside them.
//!
//! `LayoutCache` gives every backend the same behaviour: it checks that a
//! value is a JSON object, writes the key and expiry attributes into it, and
//! derives the expiry from the value when the write gives none. DynamoDB
//! then stores each field as a native attribute; the embedded cache stores
//! the JSON text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::Cache;
use crate::capability::backend::BackendError;

/// Where a layout store keeps its key and expiry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layout {
    /// The attribute that holds the cache key (the table's hash key, S).
    pub key: String,
    /// The attribute that holds the expiry (N, unix seconds; the table's TTL attribute).
    pub ttl: String,
}

impl Layout {
    /// Why the layout of `store` cannot be used, if it cannot.
    pub(crate) fn check(&self, store: &str) -> Result<(), String> {
        if store.is_empty() || self.key.is_empty() || self.ttl.is_empty() {
            return Err(format!(
                "cache layout `{store}`: the store, `key` and `ttl` must be non-empty names"
            ));
        }
        if self.key == self.ttl {
            return Err(format!("cache layout `{store}`: `key` and `ttl` must be different attributes"));
        }
        Ok(())
    }
}

/// The layouts by store name.
pub(crate) type Layouts = BTreeMap<String, Layout>;

/// `value` as a JSON object, or why it is not one.
pub(super) fn object(store: &str, value: &[u8]) -> Result<Map<String, Value>, BackendError> {
    match serde_json::from_slice(value) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(BackendError::Invalid(format!(
            "a value of cache store {store} must be a JSON object: the store keeps its fields as attributes"
        ))),
    }
}

/// The object stored for a write of `value` under `key`, and its expiry in
/// unix seconds: `now + ttl` when the write gives one, else the value's own
/// TTL attribute when it is a number, else none.
pub(super) fn prepare(
    layout: &Layout,
    store: &str,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
    now_ms: i64,
) -> Result<(Map<String, Value>, Option<i64>), BackendError> {
    let mut map = object(store, value)?;
    map.insert(layout.key.clone(), Value::String(key.to_owned()));
    let expiry = match ttl {
        // Rounded up, so the item never expires before the time asked.
        Some(ttl) => {
            let at_ms = now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            Some(at_ms / 1000 + i64::from(at_ms % 1000 != 0))
        }
        None => map.get(&layout.ttl).and_then(seconds),
    };
    match expiry {
        Some(at) => map.insert(layout.ttl.clone(), Value::from(at)),
        None => map.remove(&layout.ttl),
    };
    Ok((map, expiry))
}

/// A JSON number as whole seconds.
pub(super) fn seconds(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
}

/// Whether every attribute of `expected` is in `current` with an equal value.
pub(super) fn matches(expected: &Map<String, Value>, current: &Map<String, Value>) -> bool {
    expected.iter().all(|(name, v)| current.get(name).is_some_and(|c| same(v, c)))
}

/// JSON equality with numbers compared by value, as DynamoDB compares N.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && matches(x, y),
        _ => a == b,
    }
}

/// What a backend stores for a layout write: the object's JSON text and its time to live.
type Prepared = (Vec<u8>, Option<Duration>);

/// Applies the layouts in front of a backend.
pub(crate) struct LayoutCache {
    inner: Arc<dyn Cache>,
    layouts: Layouts,
    /// The backend compares `expected` by attributes itself (DynamoDB); else
    /// the compare is made here and the backend swaps on the exact bytes.
    compares_attributes: bool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl LayoutCache {
    /// `inner` with `layouts` applied to its stores.
    pub(crate) fn new(inner: Arc<dyn Cache>, layouts: Layouts, compares_attributes: bool) -> LayoutCache {
        LayoutCache {
            inner,
            layouts,
            compares_attributes,
        }
    }

    /// The bytes and time to live a backend stores for a write, or none
    /// when `store` has no layout.
    fn prepared(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<Option<Prepared>, BackendError> {
        let Some(layout) = self.layouts.get(store) else {
            return Ok(None);
        };
        let now = now_ms();
        let (map, expiry) = prepare(layout, store, key, value, ttl, now)?;
        // An expiry already past stores an item that reads as absent at once.
        let ttl = expiry.map(|at| Duration::from_millis(u64::try_from(at.saturating_mul(1000).saturating_sub(now)).unwrap_or(0)));
        let bytes = serde_json::to_vec(&Value::Object(map)).map_err(|e| BackendError::Invalid(e.to_string()))?;
        Ok(Some((bytes, ttl)))
    }
}

#[async_trait]
impl Cache for LayoutCache {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.get(store, key).await
    }

    async fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        self.inner.get_many(store, keys).await
    }

    async fn set(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), BackendError> {
        match self.prepared(store, key, value, ttl)? {
            Some((bytes, ttl)) => self.inner.set(store, key, &bytes, ttl).await,
            None => self.inner.set(store, key, value, ttl).await,
        }
    }

    async fn add(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, BackendError> {
        match self.prepared(store, key, value, ttl)? {
            Some((bytes, ttl)) => self.inner.add(store, key, &bytes, ttl).await,
            None => self.inner.add(store, key, value, ttl).await,
        }
    }

    async fn set_if(
        &self,
        store: &str,
        key: &str,
        value: &[u8],
        expected: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, BackendError> {
        let Some((bytes, ttl)) = self.prepared(store, key, value, ttl)? else {
            return self.inner.set_if(store, key, value, expected, ttl).await;
        };
        let Some(expected) = expected else {
            return self.inner.set_if(store, key, &bytes, None, ttl).await;
        };
        let wanted = object(store, expected)?;
        if self.compares_attributes {
            return self.inner.set_if(store, key, &bytes, Some(expected), ttl).await;
        }
        // Compare by attributes here, then swap only if the stored bytes are
        // still the ones compared: a write in between makes this one lose.
        let Some(current) = self.inner.get(store, key).await? else {
            return Ok(false);
        };
        if !matches(&wanted, &object(store, &current)?) {
            return Ok(false);
        }
        self.inner.set_if(store, key, &bytes, Some(&current), ttl).await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError> {
        self.inner.delete(store, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Layout {
        Layout {
            key: "primary_id".into(),
            ttl: "expiry_date".into(),
        }
    }

    #[test]
    fn a_write_sets_the_key_and_expiry_attributes() {
        let (map, at) = prepare(
            &users(),
            "u",
            "42",
            br#"{"a":1,"primary_id":"x"}"#,
            Some(Duration::from_millis(1500)),
            10_000,
        )
        .unwrap();
        assert_eq!(at, Some(12));
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"a": 1, "primary_id": "42", "expiry_date": 12})
        );
        let (map, at) = prepare(&users(), "u", "42", br#"{"expiry_date":99}"#, None, 10_000).unwrap();
        assert_eq!((at, map["expiry_date"].clone()), (Some(99), Value::from(99)));
        let (map, at) = prepare(&users(), "u", "42", br#"{"expiry_date":"soon"}"#, None, 10_000).unwrap();
        assert_eq!((at, map.contains_key("expiry_date")), (None, false));
        assert!(matches!(
            prepare(&users(), "u", "42", b"[1]", None, 0),
            Err(BackendError::Invalid(_))
        ));
        assert!(matches!(
            prepare(&users(), "u", "42", b"nope", None, 0),
            Err(BackendError::Invalid(_))
        ));
    }

    #[test]
    fn expected_matches_by_attributes() {
        let current = object("u", br#"{"a":1,"b":[1,{"c":true}],"d":"x"}"#).unwrap();
        assert!(matches(&object("u", br#"{"a":1.0,"b":[1,{"c":true}]}"#).unwrap(), &current));
        assert!(!matches(&object("u", br#"{"a":2}"#).unwrap(), &current));
        assert!(!matches(&object("u", br#"{"e":null}"#).unwrap(), &current));
    }

    #[test]
    fn bad_layouts_are_refused() {
        assert!(users().check("u").is_ok());
        assert!(users().check("").is_err());
        assert!(
            Layout {
                key: "".into(),
                ttl: "t".into()
            }
            .check("u")
            .is_err()
        );
        assert!(
            Layout {
                key: "t".into(),
                ttl: "t".into()
            }
            .check("u")
            .is_err()
        );
    }
}
