//! The cache stores, and an edit of one value that loses no concurrent edit.

use crate::ApiError;
use crate::bindings::corral::host::cache;

pub use cache::{add, delete, get, get_many, set, set_if};

/// How often [`update`] reads again after another writer changed the value.
pub const UPDATE_ATTEMPTS: u32 = 32;

/// Replaces the value of `key` with what `edit` makes of the current one
/// (`None` when absent or expired), and returns what was stored. When
/// `edit` returns `None` nothing is written and `None` is returned.
///
/// The write is a `set-if` on the value `edit` saw: when another writer
/// changed it in between, the value is read again and `edit` runs again, so
/// two concurrent edits both land. Gives up with 503 after
/// [`UPDATE_ATTEMPTS`] lost races.
pub fn update(
    store: &str,
    key: &str,
    ttl_seconds: Option<u32>,
    mut edit: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, ApiError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let current = cache::get(store, key)?;
        let Some(next) = edit(current.as_deref()) else {
            return Ok(None);
        };
        if cache::set_if(store, key, &next, current.as_deref(), ttl_seconds)? {
            return Ok(Some(next));
        }
    }
    Err(ApiError::unavailable(format!(
        "the cache entry '{key}' of '{store}' kept changing during {UPDATE_ATTEMPTS} attempts to edit it"
    )))
}
