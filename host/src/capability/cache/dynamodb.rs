//! The DynamoDB cache: one table per store, one item per key.
//!
//! An item holds `key` (S, the partition key), `value` (B) and, when it
//! expires, `expires_at` (N, epoch seconds: the attribute DynamoDB's TTL
//! deletes by) and `expires_at_ms` (N, epoch milliseconds). TTL deletes
//! items up to days late, so every read compares `expires_at_ms` with the
//! clock itself.
//!
//! A store with a layout keeps its JSON object values as native attributes
//! instead (string S, number N, boolean BOOL, null NULL, array L, object M),
//! the key in the layout's key attribute and the expiry in its TTL attribute
//! (epoch seconds), as the LAG-Alma-Utils tables do.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes, ScalarAttributeType,
    StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::layout::{self, Layout, Layouts};
use super::{Cache, MAX_BATCH};
use crate::capability::backend::{BackendError, NameMap};

const KEY: &str = "key";
const VALUE: &str = "value";
const EXPIRES_AT: &str = "expires_at";
const EXPIRES_AT_MS: &str = "expires_at_ms";

/// DynamoDB's limit on the size of a partition key value.
const MAX_KEY_BYTES: usize = 2048;

// Attempts at keys BatchGetItem leaves unprocessed, and the pause before
// the second one, doubling up to the cap.
const BATCH_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How long `create_missing_tables` waits for a new table to become active.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Cache stores in DynamoDB tables.
pub(crate) struct DynamoCache {
    client: Client,
    tables: NameMap,
    layouts: Layouts,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An SDK failure in terms a component can act on. Service messages are
/// kept only for validation errors: the message of a signature error
/// quotes the signed request, session token included.
fn sdk_error<E>(operation: &str, table: &str, err: SdkError<E>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("UnknownError");
            let status = service.raw().status().as_u16();
            match code {
                "ResourceNotFoundException" => BackendError::Unavailable(format!("cache table {table} does not exist")),
                "ValidationException" => BackendError::Invalid(format!(
                    "DynamoDB {operation} on cache table {table} refused the request: {}",
                    service.err().message().unwrap_or(code)
                )),
                _ => BackendError::Unavailable(format!(
                    "DynamoDB {operation} on cache table {table} failed: {code} (HTTP {status})"
                )),
            }
        }
        SdkError::ConstructionFailure(_) => BackendError::Invalid(format!(
            "DynamoDB {operation} request for cache table {table} is not valid: {}",
            DisplayErrorContext(&err)
        )),
        _ => BackendError::Unavailable(format!(
            "DynamoDB {operation} on cache table {table} failed: {}",
            DisplayErrorContext(&err)
        )),
    }
}

fn build_error(table: &str, err: BuildError) -> BackendError {
    BackendError::Invalid(format!("request for cache table {table} is not valid: {err}"))
}

/// DynamoDB refuses empty and oversized key values; say so plainly.
fn check_key(key: &str) -> Result<(), BackendError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(BackendError::Invalid(format!(
            "a cache key must be 1 to {MAX_KEY_BYTES} bytes, not {}",
            key.len()
        )));
    }
    Ok(())
}

fn key_item(attribute: &str, key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(attribute.to_string(), AttributeValue::S(key.to_string()))])
}

/// A JSON value as a native attribute.
fn attribute(value: &serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()),
    }
}

/// A native attribute as JSON; sets read as arrays.
fn json(table: &str, value: &AttributeValue) -> Result<serde_json::Value, BackendError> {
    use serde_json::Value;
    let number = |n: &str| {
        serde_json::from_str::<serde_json::Number>(n)
            .map(Value::Number)
            .map_err(|_| BackendError::Invalid(format!("an item in cache table {table} holds the number {n:?}, which JSON cannot")))
    };
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => number(n)?,
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => Value::Array(items.iter().map(|v| json(table, v)).collect::<Result<_, _>>()?),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), json(table, v)?)))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::Ss(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(items) => Value::Array(items.iter().map(|n| number(n)).collect::<Result<_, _>>()?),
        _ => {
            return Err(BackendError::Invalid(format!(
                "an item in cache table {table} holds a binary attribute, which a layout store cannot read as JSON"
            )));
        }
    })
}

/// The item of a layout store for `value`: the object `LayoutCache`
/// prepared, with the key and TTL attributes already in it.
fn layout_item(store: &str, value: &[u8]) -> Result<HashMap<String, AttributeValue>, BackendError> {
    Ok(layout::object(store, value)?
        .iter()
        .map(|(k, v)| (k.clone(), attribute(v)))
        .collect())
}

/// The JSON object of a layout item, or none when its TTL attribute is at
/// or before `now`.
fn layout_value(table: &str, layout: &Layout, item: &HashMap<String, AttributeValue>, now: i64) -> Result<Option<Vec<u8>>, BackendError> {
    if number(item, &layout.ttl).is_some_and(|s| s.saturating_mul(1000) <= now) {
        return Ok(None);
    }
    let map: serde_json::Map<String, serde_json::Value> = item
        .iter()
        .map(|(k, v)| Ok((k.clone(), json(table, v)?)))
        .collect::<Result<_, BackendError>>()?;
    serde_json::to_vec(&map).map(Some).map_err(|e| BackendError::Invalid(e.to_string()))
}

/// The item that stores `value` under `key`, with its expiry.
fn value_item(key: &str, value: &[u8], ttl: Option<Duration>) -> HashMap<String, AttributeValue> {
    let mut item = key_item(KEY, key);
    item.insert(VALUE.to_string(), AttributeValue::B(Blob::new(value)));
    if let Some(ttl) = ttl {
        let at_ms = now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        // Rounded up, so TTL never deletes an item before reads stop returning it.
        let at_s = at_ms / 1000 + i64::from(at_ms % 1000 != 0);
        item.insert(EXPIRES_AT.to_string(), AttributeValue::N(at_s.to_string()));
        item.insert(EXPIRES_AT_MS.to_string(), AttributeValue::N(at_ms.to_string()));
    }
    item
}

fn stream_spec(table: &str) -> Result<StreamSpecification, BackendError> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| build_error(table, e))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    let text = item.get(name)?.as_n().ok()?;
    // Another writer may store a number in exponent or decimal form.
    text.parse::<i64>().ok().or_else(|| text.parse::<f64>().ok().map(|f| f as i64))
}

/// The value of `item`, or none when it has expired by `now`.
fn live_value(table: &str, item: &HashMap<String, AttributeValue>, now: i64) -> Result<Option<Vec<u8>>, BackendError> {
    let expires = number(item, EXPIRES_AT_MS).or_else(|| number(item, EXPIRES_AT).map(|s| s.saturating_mul(1000)));
    if expires.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    match item.get(VALUE).map(AttributeValue::as_b) {
        Some(Ok(blob)) => Ok(Some(blob.as_ref().to_vec())),
        _ => Err(BackendError::Invalid(format!(
            "an item in cache table {table} has no binary `{VALUE}` attribute"
        ))),
    }
}

impl DynamoCache {
    /// A cache on the DynamoDB endpoint and credentials of `sdk_config`;
    /// `tables` names the table behind each store.
    /// `layouts` names the stores kept in an application's own item layout.
    pub(crate) fn new(sdk_config: &aws_config::SdkConfig, tables: NameMap, layouts: Layouts) -> DynamoCache {
        DynamoCache {
            client: Client::new(sdk_config),
            tables,
            layouts,
        }
    }

    /// The key attribute of `store`.
    fn key_attribute(&self, store: &str) -> &str {
        self.layouts.get(store).map_or(KEY, |l| l.key.as_str())
    }

    /// The value of an item of `store`, or none when it has expired.
    fn value_of(
        &self,
        store: &str,
        table: &str,
        item: &HashMap<String, AttributeValue>,
        now: i64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        match self.layouts.get(store) {
            Some(layout) => layout_value(table, layout, item, now),
            None => live_value(table, item, now),
        }
    }

    /// The item stored for a write of `value`.
    fn item(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<HashMap<String, AttributeValue>, BackendError> {
        match self.layouts.get(store) {
            Some(_) => layout_item(store, value),
            None => Ok(value_item(key, value, ttl)),
        }
    }

    /// The attribute a condition compares with the clock, and the clock in
    /// its unit.
    fn expiry_attribute(&self, store: &str) -> (&str, i64) {
        match self.layouts.get(store) {
            Some(layout) => (layout.ttl.as_str(), now_ms().div_euclid(1000)),
            None => (EXPIRES_AT_MS, now_ms()),
        }
    }

    /// Creates the table of each store that has none (on-demand billing,
    /// partition key `key`) and turns on TTL by `expires_at`. The stores in
    /// `streamed` (those a component subscribes to) get a stream of new and
    /// old images, which feeds the host Lambda on AWS. Meant for local
    /// emulators and development; running it again changes nothing.
    pub(crate) async fn create_missing_tables<'a>(
        &self,
        stores: impl IntoIterator<Item = &'a str>,
        streamed: &BTreeSet<&'a str>,
    ) -> Result<(), BackendError> {
        for store in stores.into_iter().chain(streamed.iter().copied()).collect::<BTreeSet<_>>() {
            let table = self.tables.resolve(store);
            let stream = streamed.contains(store);
            let layout = self.layouts.get(store);
            self.create_missing_table(&table, self.key_attribute(store), stream).await?;
            self.enable_ttl(&table, layout.map_or(EXPIRES_AT, |l| l.ttl.as_str())).await?;
            if stream {
                self.enable_stream(&table).await?;
            }
        }
        Ok(())
    }

    /// Creates table `table` (on-demand, partition key `key`, a string, and
    /// with `stream` a stream of new and old images) unless it exists, and
    /// waits until it is active.
    pub(crate) async fn create_missing_table(&self, table: &str, key: &str, stream: bool) -> Result<(), BackendError> {
        let mut status = self.table_status(table).await?.map(|(s, _)| s);
        if status.is_none() {
            status = self.create_table(table, key, stream).await?;
        }
        if status != Some(TableStatus::Active) {
            self.wait_active(table).await?;
        }
        Ok(())
    }

    /// Turns on the table's stream (new and old images) if it is off.
    async fn enable_stream(&self, table: &str) -> Result<(), BackendError> {
        if let Some((_, Some(view))) = self.table_status(table).await? {
            if view == StreamViewType::NewAndOldImages {
                return Ok(());
            }
            return Err(BackendError::Invalid(format!(
                "cache table {table} streams {view:?}, not new and old images"
            )));
        }
        self.client
            .update_table()
            .table_name(table)
            .stream_specification(stream_spec(table)?)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateTable", table, e))?;
        self.wait_active(table).await
    }

    /// The table's status and stream view, or none when it does not exist.
    async fn table_status(&self, table: &str) -> Result<Option<(TableStatus, Option<StreamViewType>)>, BackendError> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(out) => Ok(out.table().and_then(|t| {
                let stream = t
                    .stream_specification()
                    .filter(|s| s.stream_enabled())
                    .and_then(|s| s.stream_view_type().cloned());
                Some((t.table_status()?.clone(), stream))
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(sdk_error("DescribeTable", table, e)),
        }
    }

    async fn create_table(&self, table: &str, key: &str, stream: bool) -> Result<Option<TableStatus>, BackendError> {
        let definition = AttributeDefinition::builder()
            .attribute_name(key)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| build_error(table, e))?;
        let schema = KeySchemaElement::builder()
            .attribute_name(key)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| build_error(table, e))?;
        let created = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(definition)
            .key_schema(schema)
            .set_stream_specification(stream.then(|| stream_spec(table)).transpose()?)
            .send()
            .await;
        match created {
            Ok(out) => Ok(out.table_description().and_then(|t| t.table_status()).cloned()),
            // Another process is creating it at the same moment.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => Ok(None),
            Err(e) => Err(sdk_error("CreateTable", table, e)),
        }
    }

    async fn wait_active(&self, table: &str) -> Result<(), BackendError> {
        let deadline = tokio::time::Instant::now() + CREATE_TIMEOUT;
        let mut pause = Duration::from_millis(200);
        loop {
            match self.table_status(table).await?.map(|(s, _)| s) {
                Some(TableStatus::Active) => return Ok(()),
                Some(_) => {}
                None => {
                    return Err(BackendError::Unavailable(format!(
                        "cache table {table} was deleted while being set up"
                    )));
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(BackendError::Unavailable(format!(
                    "cache table {table} did not become active within {CREATE_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    async fn enable_ttl(&self, table: &str, ttl_attribute: &str) -> Result<(), BackendError> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTimeToLive", table, e))?;
        let description = current.time_to_live_description();
        let status = description.and_then(|d| d.time_to_live_status());
        let attribute = description.and_then(|d| d.attribute_name());
        match status {
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) if attribute == Some(ttl_attribute) => Ok(()),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => Err(BackendError::Invalid(format!(
                "cache table {table} expires items by `{}`, not `{ttl_attribute}`",
                attribute.unwrap_or_default()
            ))),
            // DynamoDB refuses to enable TTL until disabling has finished.
            Some(TimeToLiveStatus::Disabling) => Err(BackendError::Unavailable(format!(
                "TTL on cache table {table} is being disabled; enable it by `{ttl_attribute}` later"
            ))),
            _ => {
                let spec = TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(ttl_attribute)
                    .build()
                    .map_err(|e| build_error(table, e))?;
                self.client
                    .update_time_to_live()
                    .table_name(table)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(|e| sdk_error("UpdateTimeToLive", table, e))?;
                Ok(())
            }
        }
    }

    /// `set-if` on a layout store: the item must be there, unexpired, and
    /// hold every attribute of `expected` with an equal value. Attributes
    /// the stored item has beyond those of `expected` (written by another
    /// application, say) are not compared.
    async fn set_if_attributes(&self, store: &str, table: &str, value: &[u8], expected: &[u8]) -> Result<bool, BackendError> {
        let item = layout_item(store, value)?;
        let expected = layout::object(store, expected)?;
        let (expiry, now) = self.expiry_attribute(store);
        let mut condition = "attribute_exists(#k) AND (attribute_not_exists(#e) OR #e > :now)".to_string();
        let mut put = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .expression_attribute_names("#k", self.key_attribute(store))
            .expression_attribute_names("#e", expiry)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        for (i, (name, v)) in expected.iter().enumerate() {
            condition.push_str(&format!(" AND #a{i} = :a{i}"));
            put = put
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), attribute(v));
        }
        match put.condition_expression(condition).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", table, e)),
        }
    }

    /// Reads up to 100 distinct keys into `found`, asking again for the keys
    /// DynamoDB leaves unprocessed (throttling, or the 16 MB response limit).
    async fn batch_get(&self, store: &str, table: &str, keys: &[&str], found: &mut HashMap<String, Vec<u8>>) -> Result<(), BackendError> {
        let key_attribute = self.key_attribute(store);
        let mut pending: Vec<_> = keys.iter().map(|k| key_item(key_attribute, k)).collect();
        let mut pause = FIRST_BACKOFF;
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()
                .map_err(|e| build_error(table, e))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", table, e))?;
            let now = now_ms();
            for item in out.responses().and_then(|r| r.get(table)).into_iter().flatten() {
                let Some(Ok(key)) = item.get(key_attribute).map(AttributeValue::as_s) else {
                    return Err(BackendError::Invalid(format!(
                        "an item in cache table {table} has no string `{key_attribute}` attribute"
                    )));
                };
                if let Some(value) = self.value_of(store, table, item, now)? {
                    found.insert(key.clone(), value);
                }
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(BackendError::Unavailable(format!(
            "DynamoDB left {} keys of cache table {table} unprocessed after {BATCH_ATTEMPTS} attempts",
            pending.len()
        )))
    }
}

#[async_trait]
impl Cache for DynamoCache {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        check_key(key)?;
        let table = self.tables.resolve(store);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .set_key(Some(key_item(self.key_attribute(store), key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &table, e))?;
        match out.item() {
            Some(item) => self.value_of(store, &table, item, now_ms()),
            None => Ok(None),
        }
    }

    async fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        // BatchGetItem rejects a request that names the same key twice.
        let mut seen = HashSet::new();
        let mut distinct = Vec::new();
        for key in keys {
            check_key(key)?;
            if seen.insert(key.as_str()) {
                distinct.push(key.as_str());
            }
        }
        let table = self.tables.resolve(store);
        let mut found = HashMap::new();
        for chunk in distinct.chunks(MAX_BATCH) {
            self.batch_get(store, &table, chunk, &mut found).await?;
        }
        // Like the embedded cache, a key asked twice is answered once.
        Ok(keys.iter().filter_map(|k| found.remove(k).map(|v| (k.clone(), v))).collect())
    }

    async fn set(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), BackendError> {
        check_key(key)?;
        let table = self.tables.resolve(store);
        let item = self.item(store, key, value, ttl)?;
        self.client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &table, e))?;
        Ok(())
    }

    async fn add(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, BackendError> {
        check_key(key)?;
        let table = self.tables.resolve(store);
        let item = self.item(store, key, value, ttl)?;
        let (expiry, now) = self.expiry_attribute(store);
        // An item past its expiry may still be in the table until TTL removes it: it counts as absent.
        let put = self
            .client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k) OR #e <= :now")
            .expression_attribute_names("#k", self.key_attribute(store))
            .expression_attribute_names("#e", expiry)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", &table, e)),
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
        let Some(expected) = expected else {
            return self.add(store, key, value, ttl).await;
        };
        check_key(key)?;
        let table = self.tables.resolve(store);
        if self.layouts.contains_key(store) {
            return self.set_if_attributes(store, &table, value, expected).await;
        }
        let item = value_item(key, value, ttl);
        // The stored value must be the expected one and unexpired: DynamoDB
        // checks the condition and writes in one step.
        let put = self
            .client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .condition_expression("#v = :expected AND (attribute_not_exists(#e) OR #e > :now)")
            .expression_attribute_names("#v", VALUE)
            .expression_attribute_names("#e", EXPIRES_AT_MS)
            .expression_attribute_values(":expected", AttributeValue::B(Blob::new(expected)))
            .expression_attribute_values(":now", AttributeValue::N(now_ms().to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", &table, e)),
        }
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError> {
        check_key(key)?;
        let table = self.tables.resolve(store);
        self.client
            .delete_item()
            .table_name(&table)
            .set_key(Some(key_item(self.key_attribute(store), key)))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", &table, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(expires_at: Option<i64>, expires_at_ms: Option<i64>) -> HashMap<String, AttributeValue> {
        let mut item = key_item(KEY, "k");
        item.insert(VALUE.into(), AttributeValue::B(Blob::new(b"v".to_vec())));
        if let Some(s) = expires_at {
            item.insert(EXPIRES_AT.into(), AttributeValue::N(s.to_string()));
        }
        if let Some(ms) = expires_at_ms {
            item.insert(EXPIRES_AT_MS.into(), AttributeValue::N(ms.to_string()));
        }
        item
    }

    #[test]
    fn expiry_is_checked_in_milliseconds() {
        let now = 1_000_000_500;
        assert_eq!(live_value("t", &item(None, None), now), Ok(Some(b"v".to_vec())));
        assert_eq!(live_value("t", &item(Some(1_000_001), Some(now + 1)), now), Ok(Some(b"v".to_vec())));
        // Expired by milliseconds although the whole second has not passed.
        assert_eq!(live_value("t", &item(Some(1_000_001), Some(now)), now), Ok(None));
        // Items written without milliseconds fall back to seconds.
        assert_eq!(live_value("t", &item(Some(1_000_000), None), now), Ok(None));
    }

    #[test]
    fn a_missing_value_is_invalid_data() {
        let mut bad = item(None, None);
        bad.insert(VALUE.into(), AttributeValue::S("text".into()));
        assert!(matches!(live_value("t", &bad, 0), Err(BackendError::Invalid(_))));
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("").is_err());
        assert!(check_key(&"x".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(check_key(&"x".repeat(MAX_KEY_BYTES)).is_ok());
    }
}
