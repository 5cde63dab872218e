//! The embedded cache: a table in the embedded SQLite database, so values
//! survive restarts as they would in DynamoDB. Writes to stores with
//! subscribers are logged by triggers on the table (`serve::change_log::ChangeLog`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, SqlitePool};
use tokio::sync::Notify;

use super::Cache;
use crate::capability::backend::BackendError;

/// Cache stores in SQLite.
pub(crate) struct EmbeddedCache {
    pool: SqlitePool,
    /// The stores whose writes the change log's consumers wait for.
    watched: BTreeSet<String>,
    /// Notified after each write to one of them.
    written: Arc<Notify>,
}

fn unavailable(e: sqlx::Error) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EmbeddedCache {
    /// Creates the cache table if needed.
    pub(crate) async fn open(pool: SqlitePool) -> Result<EmbeddedCache, sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS corral_cache (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, \
             expires_at INTEGER, PRIMARY KEY (store, key))",
        )
        .execute(&pool)
        .await?;
        Ok(EmbeddedCache {
            pool,
            watched: BTreeSet::new(),
            written: Arc::new(Notify::new()),
        })
    }

    /// What is notified after each write to one of `stores`, and to no other.
    pub(crate) fn watch(&mut self, stores: &BTreeSet<String>) -> Arc<Notify> {
        self.watched = stores.clone();
        self.written.clone()
    }

    /// `result` of a write to `store`, with the notice given when it changed a row.
    fn wrote(&self, store: &str, result: Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error>) -> Result<bool, BackendError> {
        let changed = result.map_err(unavailable)?.rows_affected() > 0;
        if changed && self.watched.contains(store) {
            self.written.notify_waiters();
        }
        Ok(changed)
    }
}

#[async_trait]
impl Cache for EmbeddedCache {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let row = sqlx::query("SELECT value FROM corral_cache WHERE store = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)")
            .bind(store)
            .bind(key)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| r.try_get("value")).transpose().map_err(unavailable)
    }

    async fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::new("SELECT key, value FROM corral_cache WHERE store = ");
        q.push_bind(store)
            .push(" AND (expires_at IS NULL OR expires_at > ")
            .push_bind(now_ms())
            .push(") AND key IN (");
        let mut list = q.separated(", ");
        for k in keys {
            list.push_bind(k);
        }
        q.push(")");
        let rows = q.build().fetch_all(&self.pool).await.map_err(unavailable)?;
        let mut found = std::collections::HashMap::new();
        for row in rows {
            found.insert(
                row.try_get::<String, _>("key").map_err(unavailable)?,
                row.try_get::<Vec<u8>, _>("value").map_err(unavailable)?,
            );
        }
        Ok(keys.iter().filter_map(|k| found.remove(k).map(|v| (k.clone(), v))).collect())
    }

    async fn set(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), BackendError> {
        let expires_at = ttl.map(|t| now_ms() + t.as_millis() as i64);
        let done = sqlx::query(
            "INSERT INTO corral_cache (store, key, value, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(store)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&self.pool)
        .await;
        self.wrote(store, done).map(drop)
    }

    async fn add(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, BackendError> {
        let now = now_ms();
        let expires_at = ttl.map(|t| now + t.as_millis() as i64);
        // An expired value counts as absent: it is replaced in the same statement.
        let done = sqlx::query(
            "INSERT INTO corral_cache (store, key, value, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
             WHERE corral_cache.expires_at IS NOT NULL AND corral_cache.expires_at <= ?",
        )
        .bind(store)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await;
        self.wrote(store, done)
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
        let now = now_ms();
        let expires_at = ttl.map(|t| now + t.as_millis() as i64);
        // One statement: SQLite runs it under the database's write lock, so of
        // two writers expecting the same value (in any process) one changes the row.
        let done = sqlx::query(
            "UPDATE corral_cache SET value = ?, expires_at = ? \
             WHERE store = ? AND key = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(value)
        .bind(expires_at)
        .bind(store)
        .bind(key)
        .bind(expected)
        .bind(now)
        .execute(&self.pool)
        .await;
        self.wrote(store, done)
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError> {
        let done = sqlx::query("DELETE FROM corral_cache WHERE store = ? AND key = ?")
            .bind(store)
            .bind(key)
            .execute(&self.pool)
            .await;
        self.wrote(store, done).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;

    /// A cache on `file`, with a pool of its own, as a second host would open it.
    async fn open(file: &std::path::Path) -> EmbeddedCache {
        let options = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.unwrap();
        EmbeddedCache::open(pool).await.unwrap()
    }

    #[tokio::test]
    async fn set_if_stores_only_over_the_expected_value() {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(&dir.path().join("db")).await;
        // Nothing there: only an absent expectation matches.
        assert!(!cache.set_if("s", "k", b"v1", Some(b"v0"), None).await.unwrap());
        assert!(cache.set_if("s", "k", b"v1", None, None).await.unwrap());
        assert!(!cache.set_if("s", "k", b"v2", None, None).await.unwrap());
        assert!(!cache.set_if("s", "k", b"v2", Some(b"v0"), None).await.unwrap());
        assert!(cache.set_if("s", "k", b"v2", Some(b"v1"), None).await.unwrap());
        assert_eq!(cache.get("s", "k").await.unwrap(), Some(b"v2".to_vec()));
        // An expired value is absent: it matches no expectation but `None`.
        cache.set("s", "old", b"x", Some(Duration::from_millis(1))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!cache.set_if("s", "old", b"y", Some(b"x"), None).await.unwrap());
        assert!(cache.set_if("s", "old", b"y", None, Some(Duration::from_secs(60))).await.unwrap());
        assert_eq!(cache.get("s", "old").await.unwrap(), Some(b"y".to_vec()));
        // Stores are separate.
        assert!(!cache.set_if("other", "k", b"v3", Some(b"v2"), None).await.unwrap());
    }

    #[tokio::test]
    async fn of_two_hosts_expecting_the_same_value_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        let hosts = [Arc::new(open(&file).await), Arc::new(open(&file).await)];
        for round in 0..20 {
            let start = format!("r{round}");
            hosts[0].set("s", "k", start.as_bytes(), None).await.unwrap();
            let writers: Vec<_> = (0..8)
                .map(|i| {
                    let cache = hosts[i % 2].clone();
                    let start = start.clone();
                    tokio::spawn(async move {
                        cache
                            .set_if("s", "k", format!("w{i}").as_bytes(), Some(start.as_bytes()), None)
                            .await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for (i, w) in writers.into_iter().enumerate() {
                if w.await.unwrap().unwrap() {
                    winners.push(i);
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            let stored = hosts[1].get("s", "k").await.unwrap().unwrap();
            assert_eq!(stored, format!("w{}", winners[0]).into_bytes());
        }
    }
}
