//! The `cache` interface for components: grant checks, then the backend.

use std::sync::Arc;
use std::time::Duration;

use super::{Cache, MAX_BATCH};
use crate::backend::guest_try;
use crate::bindings::GuestError;
use crate::bindings::corral::host::cache::Host;
use crate::instance::HostState;

type Answer<T> = wasmtime::Result<Result<T, GuestError>>;

impl HostState {
    /// The cache, once `store` is known to be granted.
    fn cache_for(&self, store: &str) -> Result<Arc<dyn Cache>, GuestError> {
        self.check_grant("cache", |g| &g.caches, store)?;
        Ok(self.component.backends.cache.clone())
    }
}

impl Host for HostState {
    async fn get(&mut self, store: String, key: String) -> Answer<Option<Vec<u8>>> {
        let cache = guest_try!(self.cache_for(&store));
        Ok(cache.get(&store, &key).await.map_err(Into::into))
    }

    async fn get_many(&mut self, store: String, keys: Vec<String>) -> Answer<Vec<(String, Vec<u8>)>> {
        let cache = guest_try!(self.cache_for(&store));
        if keys.len() > MAX_BATCH {
            return Ok(Err(GuestError::Invalid(format!(
                "get-many takes at most {MAX_BATCH} keys, not {}",
                keys.len()
            ))));
        }
        Ok(cache.get_many(&store, &keys).await.map_err(Into::into))
    }

    async fn set(&mut self, store: String, key: String, value: Vec<u8>, ttl_seconds: Option<u32>) -> Answer<()> {
        let cache = guest_try!(self.cache_for(&store));
        let ttl = ttl_seconds.map(|s| Duration::from_secs(s.into()));
        Ok(cache.set(&store, &key, &value, ttl).await.map_err(Into::into))
    }

    async fn delete(&mut self, store: String, key: String) -> Answer<()> {
        let cache = guest_try!(self.cache_for(&store));
        Ok(cache.delete(&store, &key).await.map_err(Into::into))
    }
}
