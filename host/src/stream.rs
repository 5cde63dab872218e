//! The local change stream of embedded cache stores: what a DynamoDB stream
//! does on AWS, for `corral serve` (on DynamoDB, `table_streams` reads the
//! real streams instead). Every committed write (set, add, delete) to a
//! store that some component subscribes to (`events = [{ table = "..." }]`)
//! is appended to a change log in the data directory's SQLite file, and one
//! consumer per subscriber delivers it in order through `handle-events`.
//! A consumer's cursor moves past what succeeded; from the first failed
//! change on, the batch is delivered again after a backoff, as a stream
//! batch is on Lambda. Changes are kept 24 hours, like a DynamoDB stream,
//! so a subscriber added later starts from the oldest retained change.
//!
//! Both paths give a component the same event body for a cache-store
//! change ([`change_body`]), so a consumer cannot tell them apart.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use sqlx::{Row, SqlitePool};
use tokio::sync::{Mutex, Notify};

use crate::backend::BackendError;
use crate::bindings::handler::{Event, EventSource};
use crate::cache::Cache;
use crate::manifest::{EventSourceSpec, EventSpec};
use crate::runtime::{Hosted, Loaded, Runtime};

/// How long a consumer waits for new changes before looking again anyway.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// The pause before a failed batch is delivered again, doubling up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Attempts at appending a committed write to the log.
const APPEND_ATTEMPTS: u32 = 4;
/// How long changes are kept (a DynamoDB stream keeps records 24 hours).
const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// One committed change to a cache store.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its position in the log: the event id a consumer reports back.
    pub seq: i64,
    /// `INSERT`, `MODIFY` or `REMOVE`, as a DynamoDB stream names them.
    pub kind: String,
    /// The event body ([`change_body`]).
    pub body: String,
}

/// The JSON body a component gets for a change to cache store `store`, on
/// the local stream and from a DynamoDB stream alike: `value` and
/// `old_value` are the stored bytes as UTF-8 text, or null when absent.
/// Bytes that are not UTF-8 come as base64 in `value_base64` /
/// `old_value_base64` instead (and the text field is null).
pub fn change_body(store: &str, key: &str, value: Option<&[u8]>, old_value: Option<&[u8]>) -> String {
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

/// The durable log of changes to the subscribed stores, and the cursors of
/// their consumers.
pub struct ChangeLog {
    pool: SqlitePool,
    /// The stores some component subscribes to; writes to others are not logged.
    stores: BTreeSet<String>,
    /// Wakes the consumers when a change is appended.
    appended: Notify,
}

fn unavailable(e: sqlx::Error) -> BackendError {
    BackendError::Unavailable(format!("the local change stream failed: {e}"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ChangeLog {
    /// Creates the log's tables if needed and drops changes past retention.
    pub async fn open(pool: SqlitePool, stores: BTreeSet<String>) -> Result<ChangeLog, sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS corral_stream (seq INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, \
             kind TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query("CREATE INDEX IF NOT EXISTS corral_stream_by_store ON corral_stream (store, seq)")
            .execute(&pool)
            .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS corral_stream_cursor (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL)")
            .execute(&pool)
            .await?;
        let log = ChangeLog {
            pool,
            stores,
            appended: Notify::new(),
        };
        log.prune().await?;
        Ok(log)
    }

    /// Whether writes to `store` are logged.
    pub fn streams(&self, store: &str) -> bool {
        self.stores.contains(store)
    }

    async fn append(&self, store: &str, kind: &str, body: String) -> Result<(), BackendError> {
        sqlx::query("INSERT INTO corral_stream (store, kind, body, at) VALUES (?, ?, ?, ?)")
            .bind(store)
            .bind(kind)
            .bind(body)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        self.appended.notify_waiters();
        Ok(())
    }

    /// Up to `limit` changes of `store` after position `after`, oldest first.
    pub async fn read(&self, store: &str, after: i64, limit: u32) -> Result<Vec<Change>, BackendError> {
        let rows = sqlx::query("SELECT seq, kind, body FROM corral_stream WHERE store = ? AND seq > ? ORDER BY seq LIMIT ?")
            .bind(store)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: r.try_get("seq")?,
                    kind: r.try_get("kind")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    /// The last position `consumer` has handled (0 before its first change).
    pub async fn cursor(&self, consumer: &str) -> Result<i64, BackendError> {
        let row = sqlx::query("SELECT seq FROM corral_stream_cursor WHERE consumer = ?")
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| r.get::<i64, _>("seq")).unwrap_or(0))
    }

    /// Records that `consumer` has handled everything up to `seq`.
    pub async fn advance(&self, consumer: &str, seq: i64) -> Result<(), BackendError> {
        sqlx::query(
            "INSERT INTO corral_stream_cursor (consumer, seq) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
        )
        .bind(consumer)
        .bind(seq)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn prune(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM corral_stream WHERE at < ?")
            .bind(now_ms() - RETENTION_MS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A cache whose writes to subscribed stores are appended to the change log
/// once the backend has committed them.
pub struct StreamedCache {
    inner: Arc<dyn Cache>,
    log: Arc<ChangeLog>,
    /// Writes to subscribed stores take turns, so the log's order is the
    /// order in which they were committed, and the old value read before a
    /// write is the one it replaced.
    writes: Mutex<()>,
}

impl StreamedCache {
    /// Wraps `inner`, logging its subscribed stores' changes to `log`.
    pub fn new(inner: Arc<dyn Cache>, log: Arc<ChangeLog>) -> StreamedCache {
        StreamedCache {
            inner,
            log,
            writes: Mutex::new(()),
        }
    }

    /// Appends a committed change. The write itself cannot be undone, so a
    /// failure to record it is logged loudly and reported to the caller.
    async fn record(&self, store: &str, kind: &str, key: &str, value: Option<&[u8]>, old: Option<&[u8]>) -> Result<(), BackendError> {
        let body = change_body(store, key, value, old);
        // A busy database is the likely cause: try a few times before giving up.
        let mut pause = FIRST_BACKOFF;
        for _ in 1..APPEND_ATTEMPTS {
            match self.log.append(store, kind, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(store, key, kind, error = %e, "appending to the local change stream failed; trying again")
                }
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        self.log.append(store, kind, body).await.inspect_err(|e| {
            tracing::error!(store, key, kind, error = %e, "a committed cache write could not be added to the local change stream");
        })
    }
}

#[async_trait]
impl Cache for StreamedCache {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.get(store, key).await
    }

    async fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        self.inner.get_many(store, keys).await
    }

    async fn set(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), BackendError> {
        if !self.log.streams(store) {
            return self.inner.set(store, key, value, ttl).await;
        }
        let _turn = self.writes.lock().await;
        let old = self.inner.get(store, key).await?;
        self.inner.set(store, key, value, ttl).await?;
        let kind = if old.is_some() { "MODIFY" } else { "INSERT" };
        self.record(store, kind, key, Some(value), old.as_deref()).await
    }

    async fn add(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, BackendError> {
        if !self.log.streams(store) {
            return self.inner.add(store, key, value, ttl).await;
        }
        let _turn = self.writes.lock().await;
        let stored = self.inner.add(store, key, value, ttl).await?;
        if stored {
            self.record(store, "INSERT", key, Some(value), None).await?;
        }
        Ok(stored)
    }

    async fn set_if(
        &self,
        store: &str,
        key: &str,
        value: &[u8],
        expected: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, BackendError> {
        if !self.log.streams(store) {
            return self.inner.set_if(store, key, value, expected, ttl).await;
        }
        let _turn = self.writes.lock().await;
        let stored = self.inner.set_if(store, key, value, expected, ttl).await?;
        if stored {
            let kind = if expected.is_some() { "MODIFY" } else { "INSERT" };
            self.record(store, kind, key, Some(value), expected).await?;
        }
        Ok(stored)
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError> {
        if !self.log.streams(store) {
            return self.inner.delete(store, key).await;
        }
        let _turn = self.writes.lock().await;
        let old = self.inner.get(store, key).await?;
        self.inner.delete(store, key).await?;
        // Like DynamoDB, deleting an absent item changes nothing and streams nothing.
        match old {
            Some(old) => self.record(store, "REMOVE", key, None, Some(&old)).await,
            None => Ok(()),
        }
    }
}

/// How often changes past retention are dropped while the host runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Starts one consumer per (component, subscribed store), and the pruning
/// of changes past retention.
pub fn spawn_consumers(runtime: Arc<Runtime>, log: Arc<ChangeLog>, consumers: Vec<(Arc<Hosted>, EventSpec)>) {
    let pruned = log.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PRUNE_EVERY).await;
            if let Err(e) = pruned.prune().await {
                tracing::warn!(error = %e, "cannot drop old changes from the local change stream");
            }
        }
    });
    for (component, spec) in consumers {
        if let EventSourceSpec::Table(store) = &spec.source {
            if !log.streams(store) {
                continue;
            }
            tracing::info!(component = %component.context.name, store = %store, "consuming the local change stream");
            tokio::spawn(consume(runtime.clone(), log.clone(), component, store.clone(), spec.batch_size));
        }
    }
}

async fn consume(runtime: Arc<Runtime>, log: Arc<ChangeLog>, component: Arc<Hosted>, store: String, batch_size: u32) {
    let name = component.context.name.clone();
    let consumer = format!("{name}:{store}");
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 0u32;
    loop {
        // Registered before reading, so an append during the read is not missed.
        let appended = log.appended.notified();
        let batch = match log.cursor(&consumer).await {
            Ok(cursor) => log.read(&store, cursor, batch_size).await,
            Err(e) => Err(e),
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(component = %name, store = %store, error = %e, "cannot read the local change stream");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        // Each batch goes to the version serving now (hot swap may replace it).
        let events = batch
            .iter()
            .map(|c| Event {
                id: c.seq.to_string(),
                source: EventSource::Table(store.clone()),
                kind: c.kind.clone(),
                body: c.body.clone(),
                attributes: Vec::new(),
            })
            .collect();
        let first_failed = deliver(&runtime, &component.current(), &store, events).await;
        let handled_up_to = match first_failed {
            Some(0) => None,
            Some(i) => Some(batch[i - 1].seq),
            None => batch.last().map(|c| c.seq),
        };
        if let Some(seq) = handled_up_to
            && let Err(e) = log.advance(&consumer, seq).await
        {
            tracing::warn!(component = %name, store = %store, error = %e, "cannot move the stream cursor; the batch will be delivered again");
        }
        match first_failed {
            None => {
                backoff = FIRST_BACKOFF;
                attempt = 0;
            }
            Some(i) => {
                attempt += 1;
                tracing::warn!(
                    component = %name,
                    store = %store,
                    seq = batch[i].seq,
                    attempt,
                    retry_in_ms = backoff.as_millis() as u64,
                    "a change failed; delivering again from it"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Delivers one batch of changes to `store` in order; returns the index of
/// the first change that failed (all of them when the component trapped).
pub(crate) async fn deliver(runtime: &Runtime, component: &Loaded, store: &str, events: Vec<Event>) -> Option<usize> {
    let started = std::time::Instant::now();
    let name = component.context.name.as_str();
    let batch_id = uuid::Uuid::new_v4().to_string();
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let failed: HashSet<String> = match runtime.handle_events(component, batch_id.clone(), events).await {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => {
            tracing::error!(component = name, batch_id, error = %e, "change batch failed; it will be delivered again");
            ids.iter().cloned().collect()
        }
    };
    let first_failed = ids.iter().position(|id| failed.contains(id));
    tracing::info!(
        target: "corral::events",
        component = name,
        store,
        batch_id,
        delivered = ids.len(),
        failed = failed.len(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "change batch"
    );
    first_failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn bodies_carry_text_values_and_base64_for_other_bytes() {
        let body: Value = serde_json::from_str(&change_body("events", "k", Some(b"{\"a\":1}"), None)).unwrap();
        assert_eq!(
            body,
            json!({"store": "events", "key": "k", "value": "{\"a\":1}", "old_value": null})
        );
        let body: Value = serde_json::from_str(&change_body("s", "k", None, Some(&[0xff, 0x00]))).unwrap();
        assert_eq!(
            body,
            json!({"store": "s", "key": "k", "value": null, "old_value": null, "old_value_base64": "/wA="})
        );
    }

    #[tokio::test]
    async fn writes_to_subscribed_stores_are_logged_in_commit_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Sqlite::open(&dir.path().join("t.db")).await.unwrap();
        let pool = db.pool().clone();
        let inner: Arc<dyn Cache> = Arc::new(crate::cache::EmbeddedCache::open(pool.clone()).await.unwrap());
        let log = Arc::new(ChangeLog::open(pool, BTreeSet::from(["events".to_owned()])).await.unwrap());
        let cache = StreamedCache::new(inner, log.clone());
        assert!(cache.add("events", "a", b"1", None).await.unwrap());
        assert!(!cache.add("events", "a", b"2", None).await.unwrap());
        cache.set("events", "a", b"3", None).await.unwrap();
        cache.delete("events", "a").await.unwrap();
        cache.delete("events", "absent").await.unwrap();
        cache.set("other", "x", b"1", None).await.unwrap();
        let changes = log.read("events", 0, 10).await.unwrap();
        let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["INSERT", "MODIFY", "REMOVE"]);
        let last: Value = serde_json::from_str(&changes[2].body).unwrap();
        assert_eq!(last, json!({"store": "events", "key": "a", "value": null, "old_value": "3"}));
        assert!(log.read("other", 0, 10).await.unwrap().is_empty());
        // Cursors persist per consumer.
        log.advance("p:events", changes[1].seq).await.unwrap();
        assert_eq!(log.cursor("p:events").await.unwrap(), changes[1].seq);
        assert_eq!(log.read("events", changes[1].seq, 10).await.unwrap(), changes[2..]);
    }

    #[tokio::test]
    async fn only_conditional_writes_that_store_are_logged() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Sqlite::open(&dir.path().join("t.db")).await.unwrap();
        let pool = db.pool().clone();
        let inner: Arc<dyn Cache> = Arc::new(crate::cache::EmbeddedCache::open(pool.clone()).await.unwrap());
        let log = Arc::new(ChangeLog::open(pool, BTreeSet::from(["events".to_owned()])).await.unwrap());
        let cache = StreamedCache::new(inner, log.clone());
        assert!(cache.set_if("events", "a", b"1", None, None).await.unwrap());
        assert!(!cache.set_if("events", "a", b"2", Some(b"0"), None).await.unwrap());
        assert!(cache.set_if("events", "a", b"2", Some(b"1"), None).await.unwrap());
        let changes = log.read("events", 0, 10).await.unwrap();
        let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["INSERT", "MODIFY"]);
        let last: Value = serde_json::from_str(&changes[1].body).unwrap();
        assert_eq!(last, json!({"store": "events", "key": "a", "value": "2", "old_value": "1"}));
    }
}
