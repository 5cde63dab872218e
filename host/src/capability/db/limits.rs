//! Per-call database limits a component cannot raise: how long a
//! transaction (or one statement outside a transaction) may hold the
//! database, and how many rows and bytes one result may carry.
//!
//! The host's `db` interface runs every backend call inside
//! [`with_limits`], so backends read the calling component's limits with
//! [`current`] the way they read the request's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{BackendError, Rows, Transaction, Value};
use crate::core::manifest::Limits;

/// The database limits of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbLimits {
    /// Longest a transaction, or a statement outside one, may hold the database.
    pub transaction: Duration,
    /// Most rows one query result may hold.
    pub max_rows: usize,
    /// Most bytes of values one result may hold.
    pub max_bytes: usize,
}

impl DbLimits {
    /// The database part of a component's limits.
    pub(crate) fn of(limits: &Limits) -> DbLimits {
        DbLimits {
            transaction: Duration::from_millis(limits.transaction_ms),
            max_rows: limits.max_result_rows,
            max_bytes: limits.max_result_bytes,
        }
    }

    /// When a statement or transaction starting now must end: the
    /// transaction limit, or the request's deadline if that comes first.
    pub(crate) fn hold_deadline(&self) -> Instant {
        let bound = Instant::now() + self.transaction;
        crate::capability::backend::deadline().map_or(bound, |d| d.min(bound))
    }
}

impl Default for DbLimits {
    fn default() -> Self {
        DbLimits::of(&Limits::default())
    }
}

tokio::task_local! {
    static LIMITS: DbLimits;
}

/// Runs `work` with `limits` as the limits of every database call it makes.
pub(crate) async fn with_limits<F: Future>(limits: DbLimits, work: F) -> F::Output {
    LIMITS.scope(limits, work).await
}

/// The limits of the component call this task serves (the defaults outside one).
pub(crate) fn current() -> DbLimits {
    LIMITS.try_with(|l| *l).unwrap_or_default()
}

/// Counts a result's rows and bytes as they arrive, and stops it at the cap,
/// so the host never holds more than the cap of one result.
#[derive(Debug)]
pub(crate) struct ResultCap {
    limits: DbLimits,
    rows: usize,
    bytes: usize,
}

impl ResultCap {
    /// A cap from the current limits.
    pub(crate) fn new() -> ResultCap {
        ResultCap {
            limits: current(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Counts one row of values; an error once the result is over the cap.
    pub(crate) fn add(&mut self, row: &[Value]) -> Result<(), BackendError> {
        self.add_bytes(row.iter().map(value_size).sum::<usize>())?;
        self.rows += 1;
        if self.rows > self.limits.max_rows {
            return Err(BackendError::Invalid(format!(
                "the query result is over the cap of {} rows (max_result_rows): narrow it with WHERE or LIMIT",
                self.limits.max_rows
            )));
        }
        Ok(())
    }

    /// Counts `bytes` more of a result; an error once over the byte cap.
    pub(crate) fn add_bytes(&mut self, bytes: usize) -> Result<(), BackendError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_bytes {
            return Err(BackendError::Invalid(format!(
                "the result is over the cap of {} bytes (max_result_bytes): ask for fewer rows or columns",
                self.limits.max_bytes
            )));
        }
        Ok(())
    }
}

impl Default for ResultCap {
    fn default() -> Self {
        ResultCap::new()
    }
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Text(s) => s.len(),
        Value::Blob(b) => b.len(),
        Value::Null | Value::Boolean(_) => 1,
        Value::Integer(_) | Value::Float(_) => 8,
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Box<dyn Transaction>>>>;

/// A transaction that rolls itself back once held longer than its limit,
/// releasing its locks (on SQLite, the database's one write lock) whatever
/// the component does meanwhile. Its next call then fails with a clear
/// error.
pub(crate) struct BoundedTransaction {
    slot: Slot,
    limit: Duration,
    timer: tokio::task::JoinHandle<()>,
}

impl BoundedTransaction {
    /// Bounds `tx` by `limit` from now; `component` names it in the log.
    pub(crate) fn new(tx: Box<dyn Transaction>, limit: Duration, component: &str) -> BoundedTransaction {
        let slot: Slot = Arc::new(tokio::sync::Mutex::new(Some(tx)));
        let held = slot.clone();
        let component = component.to_owned();
        let timer = tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            let expired = held.lock().await.take();
            if let Some(tx) = expired {
                tracing::warn!(
                    component = %component,
                    limit_ms = limit.as_millis() as u64,
                    "rolled back a transaction held past the component's transaction_ms"
                );
                if let Err(error) = tx.rollback().await {
                    tracing::warn!(component = %component, %error, "rolling back an expired transaction failed");
                }
            }
        });
        BoundedTransaction { slot, limit, timer }
    }

    fn expired(&self) -> BackendError {
        BackendError::Invalid(format!(
            "the transaction was rolled back: it was held open longer than {} ms (transaction_ms); begin a new one",
            self.limit.as_millis()
        ))
    }
}

impl Drop for BoundedTransaction {
    fn drop(&mut self) {
        self.timer.abort();
    }
}

#[async_trait]
impl Transaction for BoundedTransaction {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        match self.slot.lock().await.as_mut() {
            Some(tx) => tx.query(sql, params).await,
            None => Err(self.expired()),
        }
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        match self.slot.lock().await.as_mut() {
            Some(tx) => tx.execute(sql, params).await,
            None => Err(self.expired()),
        }
    }

    async fn commit(self: Box<Self>) -> Result<(), BackendError> {
        let tx = self.slot.lock().await.take();
        match tx {
            Some(tx) => tx.commit().await,
            None => Err(self.expired()),
        }
    }

    async fn rollback(self: Box<Self>) -> Result<(), BackendError> {
        let tx = self.slot.lock().await.take();
        match tx {
            Some(tx) => tx.rollback().await,
            None => Err(self.expired()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_stops_at_its_caps() {
        let limits = DbLimits {
            transaction: Duration::from_secs(1),
            max_rows: 2,
            max_bytes: 10,
        };
        let mut cap = ResultCap { limits, rows: 0, bytes: 0 };
        cap.add(&[Value::Integer(1)]).unwrap();
        cap.add(&[Value::Null]).unwrap();
        let error = cap.add(&[Value::Null]).unwrap_err();
        assert!(error.to_string().contains("2 rows (max_result_rows)"), "{error}");

        let mut cap = ResultCap { limits, rows: 0, bytes: 0 };
        let error = cap.add(&[Value::Text("eleven bytes".into())]).unwrap_err();
        assert!(error.to_string().contains("10 bytes (max_result_bytes)"), "{error}");
    }
}
