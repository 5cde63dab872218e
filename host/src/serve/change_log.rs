//! The local change stream of embedded cache stores: what a DynamoDB stream
//! does on AWS, for `corral serve` (on DynamoDB, `table_streams` reads the
//! real streams instead). Every write (set, add, delete) to a store that
//! some component subscribes to (`events = [{ table = "..." }]`) is added
//! to a change log in the data directory's SQLite file by triggers on the
//! cache table, so in the write's own transaction: a change is logged if and
//! only if it was committed, in commit order, at no extra round trip. One
//! consumer per subscriber delivers the log in order through `handle-events`.
//! A consumer's cursor moves past what succeeded; from the first failed
//! change on, the batch is delivered again after a backoff, as a stream
//! batch is on Lambda. Changes are kept 24 hours, like a DynamoDB stream,
//! so a subscriber added later starts from the oldest retained change.
//!
//! Both paths give a component the same event body for a cache-store
//! change ([`change::body`]), so a consumer cannot tell them apart.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::capability::backend::BackendError;
use crate::capability::cache::change;
use crate::core::bindings::handler::{Event, EventSource};
use crate::core::manifest::{EventSourceSpec, EventSpec};
use crate::core::runtime::{Hosted, Loaded, Runtime};

/// How long a consumer waits for new changes before looking again anyway.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long a woken consumer lets changes gather before it reads them, so
/// that under load a batch carries many: one instance and one transaction
/// for all of them (Lambda's batching window does the same).
const GATHER: Duration = Duration::from_millis(10);
/// The pause before a failed batch is delivered again, doubling up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long changes are kept (a DynamoDB stream keeps records 24 hours).
const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// One committed change to a cache store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    /// Its position in the log: the event id a consumer reports back.
    pub seq: i64,
    /// `INSERT`, `MODIFY` or `REMOVE`, as a DynamoDB stream names them.
    pub kind: String,
    /// The event body ([`change::body`]).
    pub body: String,
}

/// The durable log of changes to the subscribed stores, and the cursors of
/// their consumers.
pub(crate) struct ChangeLog {
    pool: SqlitePool,
    /// The stores some component subscribes to; writes to others are not logged.
    stores: BTreeSet<String>,
    /// Notified by the embedded cache after each write to one of `stores`.
    written: Arc<Notify>,
}

fn unavailable(e: sqlx::Error) -> BackendError {
    BackendError::Unavailable(format!("the local change stream failed: {e}"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The log, the stores it follows, the consumers' positions, and the
/// triggers that fill the log from the embedded cache's table.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS corral_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, \
     kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB, old_value BLOB, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS corral_changes_by_store ON corral_changes (store, seq)",
    "CREATE TABLE IF NOT EXISTS corral_change_cursors (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS corral_changed_stores (store TEXT PRIMARY KEY)",
    "CREATE TRIGGER IF NOT EXISTS corral_changes_on_insert AFTER INSERT ON corral_cache \
     WHEN NEW.store IN (SELECT store FROM corral_changed_stores) BEGIN \
     INSERT INTO corral_changes (store, kind, key, value, old_value, at) \
     VALUES (NEW.store, 'INSERT', NEW.key, NEW.value, NULL, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END",
    "CREATE TRIGGER IF NOT EXISTS corral_changes_on_update AFTER UPDATE ON corral_cache \
     WHEN NEW.store IN (SELECT store FROM corral_changed_stores) BEGIN \
     INSERT INTO corral_changes (store, kind, key, value, old_value, at) \
     VALUES (NEW.store, 'MODIFY', NEW.key, NEW.value, OLD.value, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END",
    "CREATE TRIGGER IF NOT EXISTS corral_changes_on_delete AFTER DELETE ON corral_cache \
     WHEN OLD.store IN (SELECT store FROM corral_changed_stores) BEGIN \
     INSERT INTO corral_changes (store, kind, key, value, old_value, at) \
     VALUES (OLD.store, 'REMOVE', OLD.key, NULL, OLD.value, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)); END",
    // The log of earlier versions, written beside the cache by the host.
    "DROP TABLE IF EXISTS corral_stream",
    "DROP TABLE IF EXISTS corral_stream_cursor",
];

impl ChangeLog {
    /// Creates the log's tables and triggers if needed, has writes to
    /// `stores` (and only those) logged from now on, and drops changes past
    /// retention. `written` is the embedded cache's notice of writes to
    /// `stores` (`EmbeddedCache::watch`); the cache table must exist.
    pub(crate) async fn open(pool: SqlitePool, stores: BTreeSet<String>, written: Arc<Notify>) -> Result<ChangeLog, sqlx::Error> {
        let mut tx = pool.begin().await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM corral_changed_stores").execute(&mut *tx).await?;
        for store in &stores {
            sqlx::query("INSERT INTO corral_changed_stores (store) VALUES (?)")
                .bind(store)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let log = ChangeLog { pool, stores, written };
        log.prune().await?;
        Ok(log)
    }

    /// Whether writes to `store` are logged.
    pub(crate) fn streams(&self, store: &str) -> bool {
        self.stores.contains(store)
    }

    /// Up to `limit` changes of `store` after position `after`, oldest first.
    pub(crate) async fn read(&self, store: &str, after: i64, limit: u32) -> Result<Vec<Change>, BackendError> {
        let rows =
            sqlx::query("SELECT seq, kind, key, value, old_value FROM corral_changes WHERE store = ? AND seq > ? ORDER BY seq LIMIT ?")
                .bind(store)
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get("key")?;
                let value: Option<Vec<u8>> = r.try_get("value")?;
                let old: Option<Vec<u8>> = r.try_get("old_value")?;
                Ok(Change {
                    seq: r.try_get("seq")?,
                    kind: r.try_get("kind")?,
                    body: change::body(store, &key, value.as_deref(), old.as_deref()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    /// The last position `consumer` has handled (0 before its first change).
    pub(crate) async fn cursor(&self, consumer: &str) -> Result<i64, BackendError> {
        let row = sqlx::query("SELECT seq FROM corral_change_cursors WHERE consumer = ?")
            .bind(consumer)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.map(|r| r.get::<i64, _>("seq")).unwrap_or(0))
    }

    /// Records that `consumer` has handled everything up to `seq`.
    pub(crate) async fn advance(&self, consumer: &str, seq: i64) -> Result<(), BackendError> {
        sqlx::query(
            "INSERT INTO corral_change_cursors (consumer, seq) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
        )
        .bind(consumer)
        .bind(seq)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn prune(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM corral_changes WHERE at < ?")
            .bind(now_ms() - RETENTION_MS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// How often changes past retention are dropped while the host runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Starts one consumer per (component, subscribed store), and the pruning
/// of changes past retention.
pub(crate) fn spawn_consumers(runtime: Arc<Runtime>, log: Arc<ChangeLog>, consumers: Vec<(Arc<Hosted>, EventSpec)>) {
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
    // Read once: this consumer is the only one that moves it.
    let mut cursor = None;
    loop {
        // Registered before reading, so a write during the read is not missed.
        let written = log.written.notified();
        let after = match cursor {
            Some(seq) => Ok(seq),
            None => log.cursor(&consumer).await,
        };
        let batch = match after {
            Ok(after) => {
                cursor = Some(after);
                log.read(&store, after, batch_size).await
            }
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
                _ = written => tokio::time::sleep(GATHER).await,
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
        if let Some(seq) = handled_up_to {
            cursor = Some(seq);
            if let Err(e) = log.advance(&consumer, seq).await {
                // Delivered again only after a restart, as on a crash.
                tracing::warn!(component = %name, store = %store, error = %e, "cannot record the stream cursor");
            }
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

/// The most change bodies one `handle-events` call carries, in bytes: Lambda's
/// limit on an invocation's payload. A batch of large changes is handed over
/// in several calls, so that it never outgrows the instance's memory and
/// stalls the stream for good.
const MAX_CALL_BYTES: usize = 6 * 1024 * 1024;

/// Where `events` split into calls of at most [`MAX_CALL_BYTES`] of bodies
/// (each with one change at least): the length of each call.
fn call_sizes(events: &[Event]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut count, mut bytes) = (0, 0);
    for event in events {
        if count > 0 && bytes + event.body.len() > MAX_CALL_BYTES {
            sizes.push(count);
            (count, bytes) = (0, 0);
        }
        count += 1;
        bytes += event.body.len();
    }
    if count > 0 {
        sizes.push(count);
    }
    sizes
}

/// Delivers one batch of changes to `store` in order, in calls of at most
/// [`MAX_CALL_BYTES`]; returns the index of the first change that failed
/// (all of a call's when the component trapped), after which nothing more
/// is delivered.
pub(crate) async fn deliver(runtime: &Runtime, component: &Loaded, store: &str, mut events: Vec<Event>) -> Option<usize> {
    let mut delivered = 0;
    for size in call_sizes(&events) {
        let rest = events.split_off(size);
        if let Some(failed) = deliver_call(runtime, component, store, events).await {
            return Some(delivered + failed);
        }
        delivered += size;
        events = rest;
    }
    None
}

/// One `handle-events` call; the index of its first failed change.
async fn deliver_call(runtime: &Runtime, component: &Loaded, store: &str, events: Vec<Event>) -> Option<usize> {
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
    fn large_batches_are_split_into_calls_of_bounded_size() {
        let event = |bytes: usize| Event {
            id: "1".into(),
            source: EventSource::Table("events".into()),
            kind: "INSERT".into(),
            body: "x".repeat(bytes),
            attributes: Vec::new(),
        };
        let mb = 1024 * 1024;
        assert_eq!(call_sizes(&[]), Vec::<usize>::new());
        assert_eq!(call_sizes(&[event(10), event(10)]), [2]);
        // Six bodies of 1 MiB fill a call; the seventh starts the next.
        let batch: Vec<Event> = (0..13).map(|_| event(mb)).collect();
        assert_eq!(call_sizes(&batch), [6, 6, 1]);
        // A change larger than a call still goes, alone.
        assert_eq!(call_sizes(&[event(10), event(7 * mb), event(10)]), [1, 1, 1]);
    }

    #[test]
    fn bodies_carry_text_values_and_base64_for_other_bytes() {
        let body: Value = serde_json::from_str(&change::body("events", "k", Some(b"{\"a\":1}"), None)).unwrap();
        assert_eq!(
            body,
            json!({"store": "events", "key": "k", "value": "{\"a\":1}", "old_value": null})
        );
        let body: Value = serde_json::from_str(&change::body("s", "k", None, Some(&[0xff, 0x00]))).unwrap();
        assert_eq!(
            body,
            json!({"store": "s", "key": "k", "value": null, "old_value": null, "old_value_base64": "/wA="})
        );
    }

    /// An embedded cache on a fresh file, with writes to `events` logged.
    async fn logged_cache(dir: &std::path::Path) -> (crate::capability::cache::EmbeddedCache, Arc<ChangeLog>) {
        let db = crate::capability::db::Sqlite::open(&dir.join("t.db")).await.unwrap();
        let pool = db.pool().clone();
        let mut cache = crate::capability::cache::EmbeddedCache::open(pool.clone()).await.unwrap();
        let stores = BTreeSet::from(["events".to_owned()]);
        let written = cache.watch(&stores);
        let log = ChangeLog::open(pool, stores, written).await.unwrap();
        (cache, Arc::new(log))
    }

    #[tokio::test]
    async fn writes_to_subscribed_stores_are_logged_in_commit_order() {
        use crate::capability::cache::Cache as _;
        let dir = tempfile::tempdir().unwrap();
        let (cache, log) = logged_cache(dir.path()).await;
        assert!(cache.add("events", "a", b"1", None).await.unwrap());
        assert!(!cache.add("events", "a", b"2", None).await.unwrap());
        cache.set("events", "a", b"3", None).await.unwrap();
        cache.delete("events", "a").await.unwrap();
        cache.delete("events", "absent").await.unwrap();
        cache.set("other", "x", b"1", None).await.unwrap();
        let changes = log.read("events", 0, 10).await.unwrap();
        let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["INSERT", "MODIFY", "REMOVE"]);
        let modified: Value = serde_json::from_str(&changes[1].body).unwrap();
        assert_eq!(modified, json!({"store": "events", "key": "a", "value": "3", "old_value": "1"}));
        let last: Value = serde_json::from_str(&changes[2].body).unwrap();
        assert_eq!(last, json!({"store": "events", "key": "a", "value": null, "old_value": "3"}));
        assert!(log.read("other", 0, 10).await.unwrap().is_empty());
        // Cursors persist per consumer.
        log.advance("p:events", changes[1].seq).await.unwrap();
        assert_eq!(log.cursor("p:events").await.unwrap(), changes[1].seq);
        assert_eq!(log.read("events", changes[1].seq, 10).await.unwrap(), changes[2..]);
    }

    #[tokio::test]
    async fn consumers_wake_for_writes_to_their_stores_only() {
        use crate::capability::cache::Cache as _;
        let dir = tempfile::tempdir().unwrap();
        let (cache, log) = logged_cache(dir.path()).await;
        let notified = log.written.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        cache.set("other", "x", b"1", None).await.unwrap();
        let woken = tokio::time::timeout(Duration::from_millis(50), notified.as_mut()).await;
        assert!(woken.is_err(), "a write to a store nobody follows woke the consumers");
        cache.set("events", "x", b"1", None).await.unwrap();
        let woken = tokio::time::timeout(Duration::from_millis(50), notified.as_mut()).await;
        assert!(woken.is_ok(), "a write to a followed store did not wake the consumers");
    }

    #[tokio::test]
    async fn only_conditional_writes_that_store_are_logged() {
        use crate::capability::cache::Cache as _;
        let dir = tempfile::tempdir().unwrap();
        let (cache, log) = logged_cache(dir.path()).await;
        assert!(cache.set_if("events", "a", b"1", None, None).await.unwrap());
        assert!(!cache.set_if("events", "a", b"2", Some(b"0"), None).await.unwrap());
        assert!(cache.set_if("events", "a", b"2", Some(b"1"), None).await.unwrap());
        let changes = log.read("events", 0, 10).await.unwrap();
        let kinds: Vec<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["INSERT", "MODIFY"]);
        let last: Value = serde_json::from_str(&changes[1].body).unwrap();
        assert_eq!(last, json!({"store": "events", "key": "a", "value": "2", "old_value": "1"}));
    }

    #[tokio::test]
    async fn a_store_no_longer_subscribed_is_no_longer_logged() {
        use crate::capability::cache::Cache as _;
        let dir = tempfile::tempdir().unwrap();
        let (mut cache, log) = logged_cache(dir.path()).await;
        cache.set("events", "a", b"1", None).await.unwrap();
        let pool = log.pool.clone();
        let written = cache.watch(&BTreeSet::new());
        let log = ChangeLog::open(pool, BTreeSet::new(), written).await.unwrap();
        cache.set("events", "b", b"2", None).await.unwrap();
        let keys: Vec<String> = log.read("events", 0, 10).await.unwrap().into_iter().map(|c| c.body).collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
    }
}
