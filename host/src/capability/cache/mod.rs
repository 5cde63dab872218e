//! Named key-value stores with expiry, for components (DynamoDB on AWS).

pub(crate) mod change;
mod connect;
mod dynamodb;
mod embedded;
mod host;
mod layout;
mod spec;

pub(crate) use connect::{Connected, connect};
pub(crate) use spec::CacheSpec;

use std::time::Duration;

use async_trait::async_trait;

pub(crate) use dynamodb::DynamoCache;
pub(crate) use embedded::EmbeddedCache;
pub(crate) use layout::{Layout, LayoutCache, Layouts};

use crate::capability::backend::BackendError;

/// The most keys one `get-many` may ask for.
pub(crate) const MAX_BATCH: usize = 100;

/// The most bytes of values one `get-many` may return.
pub(crate) const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The largest value a component may store: what fits one DynamoDB item
/// (400 KB with its key and attributes), so both backends take the same values.
pub(crate) const MAX_VALUE_BYTES: usize = 384 * 1024;

/// A cache backend. Expired values are never returned, even where the
/// backend deletes them late.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The unexpired value of `key`.
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
    /// The unexpired values among `keys`, in the order asked.
    async fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, BackendError>;
    /// Stores `value`, expiring after `ttl` when given.
    async fn set(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), BackendError>;
    /// Stores `value` under `key` only when no unexpired value is there;
    /// true when it was stored.
    async fn add(&self, store: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, BackendError>;
    /// Stores `value` only when the unexpired value of `key` equals
    /// `expected` (`None`: when nothing unexpired is there), atomically;
    /// true when it was stored.
    async fn set_if(
        &self,
        store: &str,
        key: &str,
        value: &[u8],
        expected: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<bool, BackendError>;
    /// Removes `key`.
    async fn delete(&self, store: &str, key: &str) -> Result<(), BackendError>;
}
