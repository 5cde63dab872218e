//! Relational storage for components: the records API (host-stamped audit
//! fields, filters, keyset pages) and parameterized SQL, behind one trait so
//! each backend (SQLite here, PostgreSQL on AWS) serves the same contract.

mod guard;
mod host;
pub mod iam;
mod placeholders;
mod postgres;
pub mod records;
mod sqlite;

use async_trait::async_trait;

pub use crate::backend::BackendError;
pub use crate::bindings::corral::host::db::{Comparison, Rows, Value};
pub use guard::{GuardError, SqlDialect, Touches, inspect};
pub use postgres::{Postgres, PostgresOptions};
pub use records::{Filter, Stamp, StoredRecord};
pub use sqlite::Sqlite;

/// A database backend.
#[async_trait]
pub trait Database: Send + Sync {
    /// Stores a new record.
    async fn insert(&self, table: &str, record: &StoredRecord) -> Result<(), BackendError>;
    /// The record with this uid.
    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError>;
    /// Applies `changes` (see [`records::merge`]) and the stamp atomically.
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
        // PostgreSQL refusing the login (28...) or the connection (08..., 57P...)
        // is the backend's trouble, not the statement's.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("28") || c.starts_with("08") || c.starts_with("57P")) =>
        {
            BackendError::Unavailable(db.message().to_owned())
        }
        sqlx::Error::Database(db) => BackendError::Invalid(db.message().to_owned()),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::Decode(_) | sqlx::Error::Encode(_) => {
            BackendError::Invalid(e.to_string())
        }
        _ => BackendError::Unavailable(e.to_string()),
    }
}
