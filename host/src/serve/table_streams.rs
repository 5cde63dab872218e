//! DynamoDB streams of subscribed tables, read under `corral serve` as
//! Lambda's event source mapping reads them on AWS. A change written
//! through any host on the same tables reaches a subscriber, whichever host
//! runs it.
//!
//! Each subscriber (component, table) reads each shard of the table's
//! stream under a lease: an item of the lease table that names the host
//! reading it, until when, and the sequence number handled so far. Many
//! hosts therefore deliver a shard's changes to a subscriber from one host
//! at a time, in order, at least once. A host that stops on SIGTERM gives
//! its leases up; one that dies stops renewing them, and another host takes
//! the shard over from the last handled change once the lease runs out. A
//! child shard is read only after its parent is finished, so each key's
//! changes stay in order when DynamoDB splits a shard.
//!
//! Changes reach a component in the shape the local change stream and the
//! Lambda edge give ([`crate::capability::cache::change::body`] for a cache store).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue as Attr;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::capability::backend::{BackendError, NameMap};
use crate::core::bindings::handler::{Event, EventSource};
use crate::core::manifest::{EventSourceSpec, EventSpec};
use crate::core::runtime::{Hosted, Runtime};

/// The lease table's name before the cache's prefix, unless `names` maps it.
pub(crate) const LEASES: &str = "corral-leases";
/// The lease table's partition key.
pub(crate) const LEASE_KEY: &str = "lease";
/// How long a lease holds without renewal: how soon another host takes
/// over the shards of a host that died.
const LEASE: Duration = Duration::from_secs(10);
/// How often a reader renews its lease, also while a batch is delivered.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often each subscriber looks for shards that nobody reads.
const SCAN_EVERY: Duration = Duration::from_secs(2);
/// The pause between reads of a shard with nothing new (Lambda polls a
/// shard four times a second).
const IDLE_POLL: Duration = Duration::from_millis(250);
/// The pause before a failed batch is delivered again, doubling up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The stream readers of one host.
pub(crate) struct TableStreams {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    leases: String,
    tables: NameMap,
    /// This host, as named in the leases it holds.
    owner: String,
    /// The leases this host holds now.
    held: Mutex<HashSet<String>>,
}

/// What a subscriber needs to turn a stream record into its event.
#[derive(Clone)]
pub(crate) struct StoreShapes {
    /// Every cache store: a record of one of their tables is a cache-store change.
    pub cache_stores: BTreeSet<String>,
    /// The cache stores kept in an item layout.
    pub layouts: crate::capability::cache::Layouts,
}

/// A lease item as read.
#[derive(Debug, Default, Clone, PartialEq)]
struct Lease {
    owner: String,
    expires_ms: i64,
    checkpoint: Option<String>,
    finished: bool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn unavailable(what: &str, e: impl std::error::Error + 'static) -> BackendError {
    BackendError::Unavailable(format!("{what}: {}", DisplayErrorContext(e)))
}

impl TableStreams {
    /// Readers for the stores' tables (`tables` maps a store to its table),
    /// with leases kept in table `leases`.
    pub(crate) fn new(sdk: &aws_config::SdkConfig, tables: NameMap, leases: String) -> TableStreams {
        TableStreams {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
            leases,
            tables,
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            held: Mutex::new(HashSet::new()),
        }
    }

    /// Starts one reader per subscriber of a table; each takes the shards
    /// that no live host reads.
    pub(crate) fn spawn(self: &Arc<Self>, runtime: Arc<Runtime>, consumers: &[(Arc<Hosted>, EventSpec)], shapes: StoreShapes) {
        let shapes = Arc::new(shapes);
        for (component, spec) in consumers {
            if let EventSourceSpec::Table(store) = &spec.source {
                let table = self.tables.resolve(store);
                tracing::info!(component = %component.context.name, store = %store, table = %table, "reading the table's DynamoDB stream");
                let subscriber = Subscriber {
                    streams: self.clone(),
                    runtime: runtime.clone(),
                    component: component.clone(),
                    store: store.clone(),
                    table,
                    batch_size: spec.batch_size,
                    shapes: shapes.clone(),
                };
                tokio::spawn(subscriber.run());
            }
        }
    }

    /// Gives up every lease this host holds, so that another host takes
    /// the shards over at once rather than after the lease runs out.
    pub(crate) async fn release(&self) {
        let held: Vec<String> = self.held.lock().expect("lease set").drain().collect();
        for key in held {
            let released = self
                .dynamodb
                .update_item()
                .table_name(&self.leases)
                .key(LEASE_KEY, Attr::S(key.clone()))
                // No owner, so that a renewal still in flight fails rather than extends it.
                .update_expression("SET expires_ms = :zero, #owner = :nobody")
                .condition_expression("#owner = :me")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":zero", Attr::N("0".into()))
                .expression_attribute_values(":nobody", Attr::S(String::new()))
                .expression_attribute_values(":me", Attr::S(self.owner.clone()))
                .send()
                .await;
            match released {
                Ok(_) => tracing::info!(lease = %key, "stream lease given up"),
                Err(e) => {
                    tracing::warn!(lease = %key, error = %DisplayErrorContext(&e), "cannot give up a stream lease; it runs out on its own")
                }
            }
        }
    }

    async fn lease(&self, key: &str) -> Result<Option<Lease>, BackendError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.leases)
            .key(LEASE_KEY, Attr::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&format!("reading lease table {}", self.leases), e))?;
        Ok(out.item().map(|item| {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            Lease {
                owner: text("owner").unwrap_or_default(),
                expires_ms: item
                    .get("expires_ms")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                checkpoint: text("checkpoint"),
                finished: item.get("finished").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
            }
        }))
    }

    /// Takes lease `key` if it is still as `seen` (none: it does not
    /// exist): exactly one of the hosts that saw it run out gets it.
    async fn take(&self, key: &str, seen: Option<&Lease>) -> Result<bool, BackendError> {
        let update = self
            .dynamodb
            .update_item()
            .table_name(&self.leases)
            .key(LEASE_KEY, Attr::S(key.to_owned()))
            .update_expression("SET #owner = :me, expires_ms = :expires")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", Attr::S(self.owner.clone()))
            .expression_attribute_values(":expires", Attr::N((now_ms() + LEASE.as_millis() as i64).to_string()));
        let update = match seen {
            None => update
                .condition_expression("attribute_not_exists(#key)")
                .expression_attribute_names("#key", LEASE_KEY),
            Some(lease) => update
                .condition_expression("#owner = :seen_owner AND expires_ms = :seen_expires")
                .expression_attribute_values(":seen_owner", Attr::S(lease.owner.clone()))
                .expression_attribute_values(":seen_expires", Attr::N(lease.expires_ms.to_string())),
        };
        match update.send().await {
            Ok(_) => {
                self.held.lock().expect("lease set").insert(key.to_owned());
                Ok(true)
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(&format!("taking a lease in table {}", self.leases), e)),
        }
    }

    /// Renews lease `key`, recording `checkpoint` and `finished` when given.
    /// False when another host has taken it.
    async fn renew(&self, key: &str, checkpoint: Option<&str>, finished: bool) -> Result<bool, BackendError> {
        let mut expression = "SET expires_ms = :expires".to_owned();
        if checkpoint.is_some() {
            expression.push_str(", checkpoint = :checkpoint");
        }
        if finished {
            expression.push_str(", finished = :finished");
        }
        let update = self
            .dynamodb
            .update_item()
            .table_name(&self.leases)
            .key(LEASE_KEY, Attr::S(key.to_owned()))
            .update_expression(expression)
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", Attr::S(self.owner.clone()))
            .expression_attribute_values(":expires", Attr::N((now_ms() + LEASE.as_millis() as i64).to_string()));
        let update = match checkpoint {
            Some(seq) => update.expression_attribute_values(":checkpoint", Attr::S(seq.to_owned())),
            None => update,
        };
        let update = if finished {
            update.expression_attribute_values(":finished", Attr::Bool(true))
        } else {
            update
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                self.held.lock().expect("lease set").remove(key);
                Ok(false)
            }
            Err(e) => Err(unavailable(&format!("renewing a lease in table {}", self.leases), e)),
        }
    }
}

/// One component subscribed to one table.
struct Subscriber {
    streams: Arc<TableStreams>,
    runtime: Arc<Runtime>,
    component: Arc<Hosted>,
    store: String,
    table: String,
    batch_size: u32,
    shapes: Arc<StoreShapes>,
}

/// One shard of a stream.
struct Shard {
    id: String,
    parent: Option<String>,
}

impl Subscriber {
    fn lease_key(&self, shard: &str) -> String {
        format!("{}|{}|{shard}", self.component.context.name, self.table)
    }

    /// Looks for unread shards every [`SCAN_EVERY`], and reads each one it
    /// takes in a task of its own.
    async fn run(self) {
        let this = Arc::new(self);
        let reading: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut complained = false;
        loop {
            match this.scan(&reading).await {
                Ok(()) => complained = false,
                // Said once per outage, not every scan.
                Err(e) if !complained => {
                    tracing::warn!(component = %this.component.context.name, table = %this.table, error = %e, "cannot read the table's stream; trying again");
                    complained = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(SCAN_EVERY).await;
        }
    }

    async fn scan(self: &Arc<Self>, reading: &Arc<Mutex<HashSet<String>>>) -> Result<(), BackendError> {
        let Some(arn) = self.stream_arn().await? else {
            return Err(BackendError::Unavailable(format!("table {} has no stream", self.table)));
        };
        let shards = self.shards(&arn).await?;
        let present: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
        for shard in &shards {
            if reading.lock().expect("shard set").contains(&shard.id) {
                continue;
            }
            let key = self.lease_key(&shard.id);
            let lease = self.streams.lease(&key).await?;
            if lease.as_ref().is_some_and(|l| l.finished) {
                continue;
            }
            // A parent still in the stream is read to its end first.
            if let Some(parent) = shard.parent.as_deref().filter(|p| present.contains(p))
                && !self.streams.lease(&self.lease_key(parent)).await?.is_some_and(|l| l.finished)
            {
                continue;
            }
            let free = match &lease {
                None => true,
                Some(l) => l.owner == self.streams.owner || l.expires_ms < now_ms(),
            };
            if !free || !self.streams.take(&key, lease.as_ref()).await? {
                continue;
            }
            let checkpoint = lease.and_then(|l| l.checkpoint);
            tracing::info!(component = %self.component.context.name, table = %self.table, shard = %shard.id, checkpoint = ?checkpoint, "reading a stream shard");
            reading.lock().expect("shard set").insert(shard.id.clone());
            let (this, reading, arn, shard) = (self.clone(), reading.clone(), arn.clone(), shard.id.clone());
            tokio::spawn(async move {
                this.read(&arn, &shard, key, checkpoint).await;
                reading.lock().expect("shard set").remove(&shard);
            });
        }
        Ok(())
    }

    async fn stream_arn(&self) -> Result<Option<String>, BackendError> {
        let out = self
            .streams
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| unavailable(&format!("describing table {}", self.table), e))?;
        Ok(out.table().and_then(|t| t.latest_stream_arn()).map(str::to_owned))
    }

    async fn shards(&self, arn: &str) -> Result<Vec<Shard>, BackendError> {
        let mut shards = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let out = self
                .streams
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(after.take())
                .send()
                .await
                .map_err(|e| unavailable(&format!("describing the stream of table {}", self.table), e))?;
            let Some(description) = out.stream_description() else { break };
            shards.extend(description.shards().iter().filter_map(|s| {
                Some(Shard {
                    id: s.shard_id()?.to_owned(),
                    parent: s.parent_shard_id().map(str::to_owned),
                })
            }));
            match description.last_evaluated_shard_id() {
                Some(last) => after = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(shards)
    }

    async fn iterator(&self, arn: &str, shard: &str, from: Position<'_>) -> Result<Option<String>, BackendError> {
        let request = self.streams.streams.get_shard_iterator().stream_arn(arn).shard_id(shard);
        let request = match from {
            Position::Start => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Position::After(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            Position::At(seq) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(seq),
        };
        let out = request
            .send()
            .await
            .map_err(|e| unavailable(&format!("opening shard {shard} of table {}", self.table), e))?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    /// Reads shard `shard` while this host holds its lease; returns when
    /// another host has taken it, or the shard is finished.
    async fn read(&self, arn: &str, shard: &str, key: String, mut checkpoint: Option<String>) {
        let name = self.component.context.name.as_str();
        let mut from: Option<String> = None;
        let mut iterator: Option<String> = None;
        let mut renewed = tokio::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            if renewed.elapsed() >= RENEW_EVERY {
                match self.streams.renew(&key, None, false).await {
                    Ok(true) => renewed = tokio::time::Instant::now(),
                    Ok(false) => return lost(name, shard),
                    Err(e) => tracing::warn!(component = name, shard, error = %e, "cannot renew a stream lease"),
                }
            }
            if iterator.is_none() {
                let start = match (&from, &checkpoint) {
                    (Some(at), _) => Position::At(at),
                    (None, Some(seq)) => Position::After(seq),
                    (None, None) => Position::Start,
                };
                match self.iterator(arn, shard, start).await {
                    Ok(Some(it)) => iterator = Some(it),
                    // A closed shard read to its end.
                    Ok(None) => return self.finish(&key, shard).await,
                    Err(e) => {
                        tracing::warn!(component = name, shard, error = %e, "cannot open a stream shard");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let out = match self
                .streams
                .streams
                .get_records()
                .shard_iterator(iterator.clone().unwrap_or_default())
                .limit(self.batch_size.clamp(1, 1000) as i32)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    // An expired iterator (they last 15 minutes) is opened again from the position.
                    if !e.as_service_error().is_some_and(|s| s.is_expired_iterator_exception()) {
                        tracing::warn!(component = name, shard, error = %DisplayErrorContext(&e), "cannot read a stream shard");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    iterator = None;
                    continue;
                }
            };
            let next = out.next_shard_iterator().map(str::to_owned);
            let records = out.records();
            if records.is_empty() {
                match next {
                    Some(next) => iterator = Some(next),
                    None => return self.finish(&key, shard).await,
                }
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            let events: Vec<Event> = records.iter().filter_map(|r| self.event(r)).collect();
            let first_failed = self.deliver(&key, events.clone()).await;
            renewed = tokio::time::Instant::now();
            let handled = match first_failed {
                None => events.last(),
                Some(0) => None,
                Some(i) => events.get(i - 1),
            };
            if let Some(handled) = handled {
                match self.streams.renew(&key, Some(&handled.id), false).await {
                    Ok(true) => checkpoint = Some(handled.id.clone()),
                    Ok(false) => return lost(name, shard),
                    Err(e) => {
                        tracing::warn!(component = name, shard, error = %e, "cannot record the stream position; the batch will be delivered again")
                    }
                }
            }
            match first_failed {
                None => {
                    (from, iterator, backoff, attempt) = (None, next, FIRST_BACKOFF, 0);
                    if iterator.is_none() {
                        return self.finish(&key, shard).await;
                    }
                }
                Some(i) => {
                    attempt += 1;
                    tracing::warn!(
                        component = name,
                        store = %self.store,
                        sequence = %events[i].id,
                        attempt,
                        retry_in_ms = backoff.as_millis() as u64,
                        "a change failed; delivering again from it"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    (from, iterator) = (Some(events[i].id.clone()), None);
                }
            }
        }
    }

    /// Delivers one batch, renewing the lease while the component runs;
    /// returns the index of the first change that failed.
    async fn deliver(&self, key: &str, events: Vec<Event>) -> Option<usize> {
        let component = self.component.current();
        let delivery = crate::serve::change_log::deliver(&self.runtime, &component, &self.store, events);
        tokio::pin!(delivery);
        loop {
            tokio::select! {
                first_failed = &mut delivery => return first_failed,
                _ = tokio::time::sleep(RENEW_EVERY) => {
                    if let Err(e) = self.streams.renew(key, None, false).await {
                        tracing::warn!(component = %self.component.context.name, error = %e, "cannot renew a stream lease");
                    }
                }
            }
        }
    }

    async fn finish(&self, key: &str, shard: &str) {
        match self.streams.renew(key, None, true).await {
            Ok(_) => tracing::info!(component = %self.component.context.name, table = %self.table, shard, "stream shard read to its end"),
            Err(e) => tracing::warn!(component = %self.component.context.name, shard, error = %e, "cannot mark a stream shard finished"),
        }
        self.streams.held.lock().expect("lease set").remove(key);
    }

    /// The event of one stream record, as the component sees it.
    fn event(&self, record: &Record) -> Option<Event> {
        let change = record.dynamodb()?;
        let id = change.sequence_number()?.to_owned();
        let image = |image: Option<&HashMap<String, AttributeValue>>| image.map_or(Value::Null, plain);
        let raw = json!({
            "keys": image(change.keys()),
            "new_image": image(change.new_image()),
            "old_image": image(change.old_image()),
        })
        .to_string();
        let body = if self.shapes.cache_stores.contains(&self.store) {
            crate::capability::cache::change::from_stream_record(&self.store, self.shapes.layouts.get(&self.store), &raw).unwrap_or(raw)
        } else {
            raw
        };
        Some(Event {
            id,
            source: EventSource::Table(self.store.clone()),
            kind: record.event_name().map_or("MODIFY", |k| k.as_str()).to_owned(),
            body,
            attributes: Vec::new(),
        })
    }
}

fn lost(component: &str, shard: &str) {
    tracing::info!(component, shard, "another host took this stream shard over");
}

/// Where a shard is read from.
enum Position<'a> {
    Start,
    After(&'a str),
    At(&'a str),
}

/// An item's attributes as plain JSON, as the Lambda edge gives a stream
/// record's: numbers as numbers, binary values as base64 text.
fn plain(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

fn attribute(value: &AttributeValue) -> Value {
    let number = |n: &String| {
        n.parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.clone()))
    };
    let base64 =
        |b: &aws_sdk_dynamodbstreams::primitives::Blob| Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::M(map) => plain(map),
        AttributeValue::L(items) => Value::Array(items.iter().map(attribute).collect()),
        AttributeValue::Ss(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(items) => Value::Array(items.iter().map(number).collect()),
        AttributeValue::B(b) => base64(b),
        AttributeValue::Bs(items) => Value::Array(items.iter().map(base64).collect()),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_as_the_lambda_edge_reads_them() {
        let item = HashMap::from([
            ("key".to_owned(), AttributeValue::S("k1".into())),
            ("n".to_owned(), AttributeValue::N("42".into())),
            ("f".to_owned(), AttributeValue::N("1.5".into())),
            (
                "value".to_owned(),
                AttributeValue::B(aws_sdk_dynamodbstreams::primitives::Blob::new(b"hi".to_vec())),
            ),
            ("gone".to_owned(), AttributeValue::Null(true)),
            ("tags".to_owned(), AttributeValue::Ss(vec!["a".into()])),
            (
                "nested".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "l".to_owned(),
                    AttributeValue::L(vec![AttributeValue::Bool(true)]),
                )])),
            ),
        ]);
        assert_eq!(
            plain(&item),
            json!({"key": "k1", "n": 42, "f": 1.5, "value": "aGk=", "gone": null, "tags": ["a"], "nested": {"l": [true]}})
        );
    }
}
