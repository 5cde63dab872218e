//! The embedded queue: a table in the embedded SQLite database. A received
//! message stays stored, hidden until its visibility timeout passes, so a
//! consumer that dies before `delete` loses nothing.

use async_trait::async_trait;
use sqlx::{Row, SqlitePool};

use super::{OutgoingMessage, Queue, ReceivedMessage};
use crate::capability::backend::BackendError;

/// Queues in SQLite.
pub(crate) struct EmbeddedQueue {
    pool: SqlitePool,
}

fn unavailable(e: sqlx::Error) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl EmbeddedQueue {
    /// Creates the queue table if needed.
    pub(crate) async fn open(pool: SqlitePool) -> Result<EmbeddedQueue, sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS corral_queue (id TEXT PRIMARY KEY, queue TEXT NOT NULL, body TEXT NOT NULL, \
             attributes TEXT NOT NULL, group_id TEXT, dedup_id TEXT, visible_at INTEGER NOT NULL, \
             receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT UNIQUE)",
        )
        .execute(&pool)
        .await?;
        sqlx::query("CREATE INDEX IF NOT EXISTS corral_queue_ready ON corral_queue (queue, visible_at)")
            .execute(&pool)
            .await?;
        Ok(EmbeddedQueue { pool })
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send(&self, queue: &str, messages: &[OutgoingMessage]) -> Result<Vec<Result<String, BackendError>>, BackendError> {
        // One transaction: the batch is stored whole or not at all.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
        let mut results = Vec::with_capacity(messages.len());
        for m in messages {
            if m.delay_seconds > 900 {
                results.push(Err(BackendError::Invalid(format!(
                    "delay_seconds must be 0 to 900, not {}",
                    m.delay_seconds
                ))));
                continue;
            }
            if let Some(dedup) = &m.dedup_id {
                let existing = sqlx::query("SELECT id FROM corral_queue WHERE queue = ? AND dedup_id = ?")
                    .bind(queue)
                    .bind(dedup)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(unavailable)?;
                if let Some(row) = existing {
                    results.push(Ok(row.try_get("id").map_err(unavailable)?));
                    continue;
                }
            }
            let id = uuid::Uuid::now_v7().to_string();
            let attributes = serde_json::to_string(&m.attributes).expect("string pairs serialize");
            sqlx::query(
                "INSERT INTO corral_queue (id, queue, body, attributes, group_id, dedup_id, visible_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(queue)
            .bind(&m.body)
            .bind(attributes)
            .bind(&m.group_id)
            .bind(&m.dedup_id)
            .bind(now_ms() + m.delay_seconds as i64 * 1000)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            results.push(Ok(id));
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(results)
    }

    async fn receive(&self, queue: &str, max: u32, visibility_seconds: u32) -> Result<Vec<ReceivedMessage>, BackendError> {
        if !(1..=10).contains(&max) {
            return Err(BackendError::Invalid(format!("max must be 1 to 10, not {max}")));
        }
        if visibility_seconds > 43_200 {
            return Err(BackendError::Invalid(format!(
                "visibility timeout must be at most 43200 seconds, not {visibility_seconds}"
            )));
        }
        let now = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
        let rows = sqlx::query(
            "SELECT id, body, attributes, receive_count FROM corral_queue WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(queue)
        .bind(now)
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let receipt = format!("{id}.{}", uuid::Uuid::new_v4().simple());
            sqlx::query("UPDATE corral_queue SET visible_at = ?, receive_count = receive_count + 1, receipt = ? WHERE id = ?")
                .bind(now + visibility_seconds as i64 * 1000)
                .bind(&receipt)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            let attributes: String = row.try_get("attributes").map_err(unavailable)?;
            out.push(ReceivedMessage {
                id,
                receipt,
                body: row.try_get("body").map_err(unavailable)?,
                attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                receive_count: row.try_get::<i64, _>("receive_count").map_err(unavailable)? as u32 + 1,
            });
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(out)
    }

    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), BackendError> {
        let done = sqlx::query("DELETE FROM corral_queue WHERE queue = ? AND receipt = ?")
            .bind(queue)
            .bind(receipt)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Err(BackendError::Invalid(
                "the receipt is not valid: the message was deleted or received again".into(),
            ));
        }
        Ok(())
    }
}
