//! The embedded cache: a table in the embedded SQLite database, so values
//! survive restarts as they would in DynamoDB.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row, SqlitePool};

use super::Cache;
use crate::backend::BackendError;

/// Cache stores in SQLite.
pub struct EmbeddedCache {
    pool: SqlitePool,
}

fn unavailable(e: sqlx::Error) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EmbeddedCache {
    /// Creates the cache table if needed.
    pub async fn open(pool: SqlitePool) -> Result<EmbeddedCache, sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS corral_cache (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, \
             expires_at INTEGER, PRIMARY KEY (store, key))",
        )
        .execute(&pool)
        .await?;
        Ok(EmbeddedCache { pool })
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
        sqlx::query(
            "INSERT INTO corral_cache (store, key, value, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(store)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError> {
        sqlx::query("DELETE FROM corral_cache WHERE store = ? AND key = ?")
            .bind(store)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
