//! Event batches from SQS, DynamoDB streams and S3 to the components that
//! consume them. Failures are reported per record (`batchItemFailures`), so
//! the platform delivers again only what failed; a record no component
//! consumes counts as failed rather than silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::capability::cache::change;
use crate::core::app::{App, DeployedSource};
use crate::core::bindings::handler::{Event, EventSource};
use crate::core::manifest::EventSourceSpec;

/// The last segment of an ARN: a queue name, or the table of a stream ARN.
fn queue_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

fn table_of(stream_arn: &str) -> &str {
    // arn:aws:dynamodb:region:account:table/NAME/stream/LABEL
    stream_arn
        .split(":table/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("")
}

fn records(event: &Value) -> &[Value] {
    event
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn failures(ids: impl IntoIterator<Item = String>) -> Value {
    json!({ "batchItemFailures": ids.into_iter().map(|id| json!({ "itemIdentifier": id })).collect::<Vec<_>>() })
}

/// Where a batch's records come from, named as deployed.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Deployed {
    Queue(String),
    Table(String),
    Bucket(String),
}

impl Deployed {
    fn source(&self) -> DeployedSource<'_> {
        match self {
            Deployed::Queue(q) => DeployedSource::Queue(q),
            Deployed::Table(t) => DeployedSource::Table(t),
            Deployed::Bucket(b) => DeployedSource::Bucket(b),
        }
    }
}

/// Delivers `events` (grouped by deployed source) to every consumer; returns
/// the ids that failed anywhere.
async fn deliver(app: &App, groups: BTreeMap<Deployed, Vec<Event>>) -> BTreeSet<String> {
    let mut failed = BTreeSet::new();
    for (deployed, events) in groups {
        let source = deployed.source();
        let consumers = app.consumers_of(&source);
        if consumers.is_empty() {
            tracing::error!(source = ?source, records = events.len(), "no component consumes these records; they are reported as failed");
            failed.extend(events.iter().map(|e| e.id.clone()));
            continue;
        }
        for (component, logical) in consumers {
            // Components see the logical name they were granted, not the deployed one.
            let events: Vec<Event> = events
                .iter()
                .cloned()
                .map(|mut e| {
                    e.source = match &logical {
                        EventSourceSpec::Queue(q) => EventSource::Queue(q.clone()),
                        EventSourceSpec::Table(t) => {
                            // A cache store's change reads as it does on the local stream.
                            if app.is_cache_store(t) {
                                e.body = change::from_stream_record(t, app.cache_layout(t), &e.body).unwrap_or(e.body);
                            }
                            EventSource::Table(t.clone())
                        }
                        EventSourceSpec::Bucket(b) => EventSource::Objects(b.clone()),
                    };
                    e
                })
                .collect();
            let batch_id = uuid::Uuid::new_v4().to_string();
            let name = component.context.name.clone();
            match app.runtime().handle_events(&component, batch_id.clone(), events.clone()).await {
                Ok(ids) => {
                    let known: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
                    let ids: Vec<String> = ids.into_iter().filter(|id| known.contains(id.as_str())).collect();
                    tracing::info!(component = %name, batch_id, delivered = events.len(), failed = ids.len(), "event batch");
                    failed.extend(ids);
                }
                Err(e) => {
                    tracing::error!(component = %name, batch_id, error = %e, "event batch failed; every record will be delivered again");
                    failed.extend(events.iter().map(|e| e.id.clone()));
                }
            }
        }
    }
    failed
}

/// An SQS batch: `batchItemFailures` lists the message ids to redeliver.
pub(crate) async fn sqs(app: &App, event: &Value) -> Value {
    let mut groups: BTreeMap<Deployed, Vec<Event>> = BTreeMap::new();
    for record in records(event) {
        let id = record.get("messageId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let queue = queue_of(record.get("eventSourceARN").and_then(Value::as_str).unwrap_or_default()).to_owned();
        let attributes = record
            .get("messageAttributes")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.get("stringValue")?.as_str()?.to_owned())))
            .collect();
        let body = record.get("body").and_then(Value::as_str).unwrap_or_default().to_owned();
        groups.entry(Deployed::Queue(queue.clone())).or_default().push(Event {
            id,
            source: EventSource::Queue(queue),
            kind: "message".into(),
            body,
            attributes,
        });
    }
    failures(deliver(app, groups).await)
}

/// A DynamoDB stream batch: each record goes to every component subscribed
/// to its table; `batchItemFailures` names the first failed sequence number,
/// from which the stream is read again.
pub(crate) async fn dynamodb(app: &App, event: &Value) -> Value {
    let mut groups: BTreeMap<Deployed, Vec<Event>> = BTreeMap::new();
    let mut order = Vec::new();
    for record in records(event) {
        let Some(sequence) = record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str) else {
            tracing::warn!("a stream record without a sequence number was skipped");
            continue;
        };
        let table = table_of(record.get("eventSourceARN").and_then(Value::as_str).unwrap_or_default()).to_owned();
        let change = json!({
            "keys": plain(record.pointer("/dynamodb/Keys")),
            "new_image": plain(record.pointer("/dynamodb/NewImage")),
            "old_image": plain(record.pointer("/dynamodb/OldImage")),
        });
        let kind = record.get("eventName").and_then(Value::as_str).unwrap_or("MODIFY").to_owned();
        order.push(sequence.to_owned());
        groups.entry(Deployed::Table(table.clone())).or_default().push(Event {
            id: sequence.to_owned(),
            source: EventSource::Table(table),
            kind,
            body: change.to_string(),
            attributes: Vec::new(),
        });
    }
    let failed = deliver(app, groups).await;
    failures(order.into_iter().find(|seq| failed.contains(seq)))
}

/// S3 object notifications. A change to a followed component in the
/// registry's bucket reloads it at once, and the invocation ends when the
/// new version serves (or was refused), before Lambda freezes the process.
/// Notifications of other buckets go to the components whose `events` name
/// the bucket. S3 invokes asynchronously, with no partial failures: when an
/// object event fails (or no component takes it), the invocation fails, so
/// Lambda retries it and then hands it to the function's failure
/// destination rather than losing it.
pub(crate) async fn s3(app: &App, event: &Value) -> Result<Value, String> {
    let registry_bucket = app.hot_swap().and_then(|h| h.location().bucket().map(str::to_owned));
    let mut changed = BTreeSet::new();
    let mut groups: BTreeMap<Deployed, Vec<Event>> = BTreeMap::new();
    for (index, record) in records(event).iter().enumerate() {
        let text = |pointer: &str| record.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (name, bucket, key) = (text("/eventName"), text("/s3/bucket/name"), object_key(&text("/s3/object/key")));
        if registry_bucket.as_deref() == Some(bucket.as_str()) {
            tracing::info!(event = %name, bucket = %bucket, key = %key, "components bucket changed");
            if let Some(component) = app.hot_swap().and_then(|h| h.location().component_of(&bucket, &key)) {
                changed.insert(component);
            }
            continue;
        }
        let sequencer = text("/s3/object/sequencer");
        let id = format!("{index}:{bucket}/{key}@{sequencer}");
        let body = json!({
            "bucket": bucket,
            "key": key,
            "size": record.pointer("/s3/object/size").and_then(Value::as_u64),
            "event_name": name,
            "etag": record.pointer("/s3/object/eTag").and_then(Value::as_str),
            "version_id": record.pointer("/s3/object/versionId").and_then(Value::as_str),
            "time": record.get("eventTime").and_then(Value::as_str),
        });
        groups.entry(Deployed::Bucket(bucket.clone())).or_default().push(Event {
            id,
            source: EventSource::Objects(bucket),
            kind: name,
            body: body.to_string(),
            attributes: Vec::new(),
        });
    }
    if let Some(hot_swap) = app.hot_swap()
        && !changed.is_empty()
    {
        let names: Vec<String> = changed.into_iter().collect();
        for (component, outcome) in hot_swap.check(Some(&names), true).await {
            tracing::info!(component = %component, outcome = ?outcome, "reloaded on an S3 notification");
        }
    }
    let failed = deliver(app, groups).await;
    if failed.is_empty() {
        Ok(json!({ "acknowledged": records(event).len() }))
    } else {
        let failed: Vec<String> = failed.into_iter().collect();
        Err(format!("{} object event(s) failed: {}", failed.len(), failed.join(", ")))
    }
}

/// An S3 notification's key, which arrives URL-encoded (spaces as `+`).
fn object_key(encoded: &str) -> String {
    percent_encoding::percent_decode_str(&encoded.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// A DynamoDB attribute map as plain JSON (`{"S": "x"}` becomes `"x"`).
fn plain(image: Option<&Value>) -> Value {
    match image.and_then(Value::as_object) {
        Some(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>()),
        None => Value::Null,
    }
}

fn attribute(value: &Value) -> Value {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return Value::Null;
    };
    let number = |n: &Value| {
        let text = n.as_str().unwrap_or_default();
        text.parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.into()))
    };
    match kind.as_str() {
        "S" => inner.clone(),
        "N" => number(inner),
        "BOOL" => inner.clone(),
        "NULL" => Value::Null,
        "M" => plain(Some(inner)),
        "L" => Value::Array(inner.as_array().into_iter().flatten().map(attribute).collect()),
        "SS" => inner.clone(),
        "NS" => Value::Array(inner.as_array().into_iter().flatten().map(number).collect()),
        // Binary values stay base64 text, as the stream delivers them.
        "B" | "BS" => inner.clone(),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_keys_are_decoded() {
        assert_eq!(object_key("Happy%20Face+1.jpg"), "Happy Face 1.jpg");
        assert_eq!(object_key("components/notes/versions.json"), "components/notes/versions.json");
    }

    #[test]
    fn names_come_from_arns() {
        assert_eq!(queue_of("arn:aws:sqs:us-east-2:123456789012:my-queue"), "my-queue");
        assert_eq!(
            table_of("arn:aws:dynamodb:us-east-1:123456789012:table/Example-Table/stream/2016-12-01T00:00:00.000"),
            "Example-Table"
        );
    }

    #[test]
    fn cache_store_records_read_as_local_stream_changes() {
        let raw = json!({
            "keys": {"key": "e1"},
            "new_image": {"key": "e1", "value": "eyJhIjoxfQ==", "expires_at": 5},
            "old_image": null
        });
        let body: Value = serde_json::from_str(&change::from_stream_record("events", None, &raw.to_string()).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"store": "events", "key": "e1", "value": "{\"a\":1}", "old_value": null})
        );
        assert_eq!(
            change::from_stream_record("events", None, &json!({"keys": {"id": 1}}).to_string()),
            None
        );
    }

    #[test]
    fn layout_store_records_read_as_the_json_object() {
        let layout = crate::capability::cache::Layout {
            key: "request_id".into(),
            ttl: "record_expiry_date".into(),
        };
        let raw = json!({
            "keys": {"request_id": "r1"},
            "new_image": {"request_id": "r1", "user_primary_id": "u1", "record_expiry_date": 5},
            "old_image": null
        });
        let body: Value = serde_json::from_str(&change::from_stream_record("requests", Some(&layout), &raw.to_string()).unwrap()).unwrap();
        let value: Value = serde_json::from_str(body["value"].as_str().unwrap()).unwrap();
        assert_eq!(value, json!({"request_id": "r1", "user_primary_id": "u1", "record_expiry_date": 5}));
        assert_eq!((&body["key"], &body["old_value"]), (&json!("r1"), &Value::Null));
        assert_eq!(
            change::from_stream_record("requests", Some(&layout), &json!({"keys": {"key": "r1"}}).to_string()),
            None
        );
    }

    #[test]
    fn stream_images_become_plain_json() {
        let image = json!({"Id": {"N": "101"}, "Message": {"S": "New item!"}, "Tags": {"L": [{"S": "a"}, {"N": "1.5"}]}, "Meta": {"M": {"ok": {"BOOL": true}, "none": {"NULL": true}}}});
        assert_eq!(
            plain(Some(&image)),
            json!({"Id": 101, "Message": "New item!", "Tags": ["a", 1.5], "Meta": {"ok": true, "none": null}})
        );
    }
}
