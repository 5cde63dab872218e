//! Relational storage for components: the records API (host-stamped audit
//! fields, filters, keyset pages) and parameterized SQL, behind one trait so
//! each backend (SQLite here, PostgreSQL on AWS) serves the same contract.

mod authorizer;
mod connect;
mod guard;
mod host;
pub(crate) mod iam;
pub(crate) mod limits;
mod pg_grants;
mod placeholders;
mod postgres;
#[cfg(test)]
mod postgres_auth_tests;
#[cfg(test)]
mod postgres_grants_tests;
pub(crate) mod records;
mod records_sql;
mod spec;
mod sqlite;

pub(crate) use connect::connect;
pub(crate) use spec::DbSpec;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

pub(crate) use crate::capability::backend::BackendError;
pub(crate) use guard::{SqlDialect, inspect};

pub use postgres::{Postgres, PostgresOptions};
pub(crate) use records::{Filter, Stamp, StoredRecord};
pub use sqlite::Sqlite;

/// One SQL value, as a statement's parameters and results carry it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// What a query returns: the column names, then the rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// How a records filter compares a field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
}

/// A database backend.
#[async_trait]
pub trait Database: Send + Sync {
    /// Stores a new record.
    async fn insert(&self, table: &str, record: &StoredRecord) -> Result<(), BackendError>;
    /// The record with this uid.
    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError>;
    /// Applies `changes` (see `StoredRecord::apply`) and the stamp atomically.
    async fn update(
        &self,
        table: &str,
        uid: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
        stamp: &Stamp,
    ) -> Result<Option<StoredRecord>, BackendError>;
    /// Deletes one record; false when absent.
    async fn delete(&self, table: &str, uid: &str) -> Result<bool, BackendError>;
    /// Deletes all records matching every filter.
    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError>;
    /// Up to `limit` records matching every filter with a uid after `after`, by uid.
    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError>;
    /// Runs a statement that returns rows.
    async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError>;
    /// Runs a statement and returns the rows changed.
    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, BackendError>;
    /// Starts a transaction.
    async fn begin(&self) -> Result<Box<dyn Transaction>, BackendError>;
    /// A statement created, altered or dropped something: forget what is
    /// known about which record tables exist.
    fn schema_changed(&self);
    /// The database as `component` uses it: its statements reach only
    /// `tables`, and the database itself enforces that, beneath the SQL
    /// guard.
    async fn scoped(self: Arc<Self>, component: &str, tables: &BTreeSet<String>) -> Result<Arc<dyn Database>, BackendError>;
    /// The database as one request uses it, dropped when the request ends.
    /// PostgreSQL's scoped handle keeps one session of the component's role
    /// for the whole request; the others serve every request alike.
    fn for_request(self: Arc<Self>) -> Arc<dyn Database>;
}

/// An open transaction; dropping it rolls back.
#[async_trait]
pub trait Transaction: Send {
    /// Runs a statement that returns rows.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, BackendError>;
    /// Runs a statement and returns the rows changed.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, BackendError>;
    /// Commits.
    async fn commit(self: Box<Self>) -> Result<(), BackendError>;
    /// Rolls back.
    async fn rollback(self: Box<Self>) -> Result<(), BackendError>;
}

/// What a component's `transaction` resource holds.
pub struct TransactionHandle(pub Box<dyn Transaction>);

/// Refuses SQL text holding a NUL character: SQLite stops reading at it and
/// the driver then loops on the rest; PostgreSQL cannot take one at all.
pub(crate) fn refuse_nul(sql: &str) -> Result<(), BackendError> {
    if sql.contains('\0') {
        return Err(BackendError::Invalid(
            "the SQL text holds a NUL character (\\0), which no statement may contain".into(),
        ));
    }
    Ok(())
}

/// Sorts sqlx errors into what a component can act on: constraint
/// violations are conflicts, other database errors are the statement's
/// fault, the rest (pool, I/O, TLS) are the backend's.
pub(crate) fn map_error(e: sqlx::Error) -> BackendError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() || db.is_foreign_key_violation() => {
            BackendError::Conflict(db.message().to_owned())
        }
        // Stopped at the request's deadline: SQLite's progress handler
        // interrupts, PostgreSQL cancels (57014, query_canceled).
        sqlx::Error::Database(db) if db.message() == "interrupted" || db.code().as_deref() == Some("57014") => {
            BackendError::Unavailable("the statement ran past the request's time limit".into())
        }
        // PostgreSQL's insufficient_privilege: the statement reached past the
        // grants of the role it ran as.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => {
            BackendError::NotGranted(format!("the database refused the statement: {}", db.message()))
        }
        // PostgreSQL refusing the login (28...) or the connection (08..., 57P...)
        // is the backend's trouble, not the statement's.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("28") || c.starts_with("08") || c.starts_with("57P")) =>
        {
            BackendError::Unavailable(db.message().to_owned())
        }
        // Lost a race for a lock, not a fault of the statement: SQLite still
        // busy after its busy timeout, PostgreSQL's serialization failure
        // (40001) or deadlock victim (40P01). A retry may succeed.
        sqlx::Error::Database(db) if lost_a_lock_race(db.as_ref()) => {
            BackendError::Unavailable(format!("{}; retry the request", db.message()))
        }
        sqlx::Error::Database(db) => BackendError::Invalid(db.message().to_owned()),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => {
            BackendError::Invalid(e.to_string())
        }
        _ => BackendError::Unavailable(e.to_string()),
    }
}

/// SQLITE_BUSY and SQLITE_LOCKED (with their extended codes), or
/// PostgreSQL's serialization failure and deadlock.
fn lost_a_lock_race(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
    } else {
        matches!(code.as_ref(), "40001" | "40P01")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Connection;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    use super::{BackendError, map_error};

    #[tokio::test]
    async fn a_busy_sqlite_database_is_unavailable_not_the_statements_fault() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("busy.db"))
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        let mut holder = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
        let mut other = SqliteConnection::connect_with(&options).await.unwrap();
        let error = sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap_err();
        match map_error(error) {
            BackendError::Unavailable(message) => assert!(message.contains("locked"), "{message}"),
            other => {
                panic!("a busy database is the backend's trouble, not the statement's: {other:?}")
            }
        }
    }
}
