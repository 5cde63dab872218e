//! The `cache` interface for components: grant checks, then the backend.

use std::sync::Arc;
use std::time::Duration;

use super::{Cache, MAX_BATCH, MAX_BATCH_BYTES, MAX_VALUE_BYTES};
use crate::capability::backend::guest_try;
use crate::core::bindings::GuestError;
use crate::core::bindings::corral::host::cache::Host;
use crate::core::instance::HostState;

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
        let values = guest_try!(cache.get_many(&store, &keys).await);
        let bytes: usize = values.iter().map(|(_, v)| v.len()).sum();
        if bytes > MAX_BATCH_BYTES {
            tracing::warn!(component = %self.component.name, request_id = %self.request_id, store, bytes, "refused a get-many past its byte cap");
            return Ok(Err(GuestError::Invalid(format!(
                "get-many returns at most {MAX_BATCH_BYTES} bytes of values; these {} keys hold {bytes}: ask for fewer",
                keys.len()
            ))));
        }
        Ok(Ok(values))
    }

    async fn set(&mut self, store: String, key: String, value: Vec<u8>, ttl_seconds: Option<u32>) -> Answer<()> {
        let cache = guest_try!(self.cache_for(&store));
        guest_try!(value_fits(&value));
        let ttl = ttl_seconds.map(|s| Duration::from_secs(s.into()));
        Ok(cache.set(&store, &key, &value, ttl).await.map_err(Into::into))
    }

    async fn add(&mut self, store: String, key: String, value: Vec<u8>, ttl_seconds: Option<u32>) -> Answer<bool> {
        let cache = guest_try!(self.cache_for(&store));
        guest_try!(value_fits(&value));
        let ttl = ttl_seconds.map(|s| Duration::from_secs(s.into()));
        Ok(cache.add(&store, &key, &value, ttl).await.map_err(Into::into))
    }

    async fn set_if(
        &mut self,
        store: String,
        key: String,
        value: Vec<u8>,
        expected: Option<Vec<u8>>,
        ttl_seconds: Option<u32>,
    ) -> Answer<bool> {
        let cache = guest_try!(self.cache_for(&store));
        guest_try!(value_fits(&value));
        if let Some(expected) = &expected {
            // No stored value can be larger, so a larger one can only mismatch.
            guest_try!(value_fits(expected));
        }
        let ttl = ttl_seconds.map(|s| Duration::from_secs(s.into()));
        Ok(cache
            .set_if(&store, &key, &value, expected.as_deref(), ttl)
            .await
            .map_err(Into::into))
    }

    async fn delete(&mut self, store: String, key: String) -> Answer<()> {
        let cache = guest_try!(self.cache_for(&store));
        Ok(cache.delete(&store, &key).await.map_err(Into::into))
    }
}

fn value_fits(value: &[u8]) -> Result<(), GuestError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(GuestError::Invalid(format!(
            "a cache value holds at most {MAX_VALUE_BYTES} bytes, not {}",
            value.len()
        )));
    }
    Ok(())
}
