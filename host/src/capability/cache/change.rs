//! The event a subscriber of a cache store gets for one change: the same
//! body whether it comes from the local change log, a DynamoDB stream read
//! under `corral serve`, or a stream batch on Lambda.

use base64::Engine as _;

/// The JSON body a component gets for a change to cache store `store`, on
/// the local stream and from a DynamoDB stream alike: `value` and
/// `old_value` are the stored bytes as UTF-8 text, or null when absent.
/// Bytes that are not UTF-8 come as base64 in `value_base64` /
/// `old_value_base64` instead (and the text field is null).
pub(crate) fn body(store: &str, key: &str, value: Option<&[u8]>, old_value: Option<&[u8]>) -> String {
    let mut body = serde_json::Map::new();
    body.insert("store".into(), store.into());
    body.insert("key".into(), key.into());
    for (name, bytes) in [("value", value), ("old_value", old_value)] {
        let text = bytes.map(|b| std::str::from_utf8(b).map_err(|_| b));
        match text {
            None => {
                body.insert(name.into(), serde_json::Value::Null);
            }
            Some(Ok(text)) => {
                body.insert(name.into(), text.into());
            }
            Some(Err(bytes)) => {
                body.insert(name.into(), serde_json::Value::Null);
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
                body.insert(format!("{name}_base64"), encoded.into());
            }
        }
    }
    serde_json::Value::Object(body).to_string()
}

/// The body of a stream record of a cache store's table (an item of `key`
/// and a binary `value`, see `dynamodb.rs`) in the shape the local
/// change stream gives: [`body`]. None when the
/// record is not shaped like a cache item. An item of a store with a
/// `layout` is its attributes as a JSON object, as a read gives it.
pub(crate) fn from_stream_record(store: &str, layout: Option<&super::Layout>, raw: &str) -> Option<String> {
    let change: serde_json::Value = serde_json::from_str(raw).ok()?;
    let key = change.get("keys")?.get(layout.map_or("key", |l| l.key.as_str()))?.as_str()?;
    let value = |image: &str| -> Option<Option<Vec<u8>>> {
        match change.get(image)? {
            serde_json::Value::Null => Some(None),
            item if layout.is_some() => item.is_object().then(|| item.to_string().into_bytes()).map(Some),
            item => {
                let text = item.get("value")?.as_str()?;
                base64::engine::general_purpose::STANDARD.decode(text).ok().map(Some)
            }
        }
    };
    let (new, old) = (value("new_image"), value("old_image"));
    if new.is_none() || old.is_none() {
        tracing::warn!(
            store,
            "a stream record of a cache store is not shaped like a cache item; it is passed on as it came"
        );
    }
    Some(body(store, key, new?.as_deref(), old?.as_deref()))
}
