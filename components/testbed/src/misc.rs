//! Actions on the request itself, config, logging and failure modes.

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use corral_sdk::bindings::corral::host::{config as host_config, log as host_log};
use corral_sdk::{ApiError, Request, RequestExt, Response, json};
use serde_json::{Map, Value, json};

/// The size of each allocation `grow` makes.
const CHUNK: usize = 1 << 20;

/// The request as the component sees it.
pub fn echo(request: &Request) -> Result<Response, ApiError> {
    let pairs_object = |pairs: &[(String, String)], lower: bool| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(name, value)| {
                let name = if lower {
                    name.to_ascii_lowercase()
                } else {
                    name.clone()
                };
                (name, Value::String(value.clone()))
            })
            .collect()
    };
    let query: Vec<Value> = request
        .query
        .iter()
        .map(|(name, value)| json!([name, value]))
        .collect();
    Ok(json(
        200,
        &json!({
            "method": request.method,
            "path": request.path,
            "mount": request.mount,
            "route": request.route,
            "params": pairs_object(&request.params, false),
            "query": query,
            "headers": pairs_object(&request.headers, true),
            "body": String::from_utf8_lossy(&request.body),
            "request_id": request.request_id,
        }),
    ))
}

/// Requests this instance has handled, itself included.
static CALLS: AtomicU32 = AtomicU32::new(0);
/// A value in the data segment that `residue` overwrites.
static DATA: Mutex<[u8; 8]> = Mutex::new(*b"pristine");
/// Set by an action that fails on purpose (a trap, a spin past the time
/// limit, a transaction left open): an instance the host serves again after
/// one of these would show it in `residue`.
pub static FAILED: AtomicBool = AtomicBool::new(false);
/// Wasm pages `residue` grows the memory by, inspects and dirties.
const PROBE_PAGES: usize = 4;

/// Counts a handled request; called for every request.
pub fn count_call() {
    CALLS.fetch_add(1, Ordering::Relaxed);
}

/// What an earlier request could have left in this instance's memory, then
/// leaves some itself: the calls this instance has handled, the data
/// segment's value, and whether pages the memory grows by held anything but
/// zeros. A slot's next instance grows to the same addresses, so unreset
/// pages show there. In a fresh instance on reset memory: 1, "pristine",
/// false, and no failure before it.
pub fn residue() -> Result<Response, ApiError> {
    let calls = CALLS.load(Ordering::Relaxed);
    let data = {
        let mut data = DATA.lock().expect("not poisoned");
        let seen = String::from_utf8_lossy(&*data).into_owned();
        *data = *b"modified";
        seen
    };
    let page = 64 * 1024;
    let first = grow_memory(PROBE_PAGES);
    if first == usize::MAX {
        return Err(ApiError::internal("the memory did not grow"));
    }
    // SAFETY: the pages were just added to the memory and belong to no Rust
    // object; they are read and written as plain bytes.
    let grown_dirty = unsafe {
        let start = (first * page) as *mut u8;
        let dirty = (0..PROBE_PAGES * page).any(|i| std::ptr::read_volatile(start.add(i)) != 0);
        std::ptr::write_bytes(start, 0xAB, PROBE_PAGES * page);
        dirty
    };
    Ok(json(
        200,
        &json!({
            "calls": calls,
            "data": data,
            "grown_dirty": grown_dirty,
            "failed_before": FAILED.load(Ordering::Relaxed),
        }),
    ))
}

/// Grows the linear memory by `pages`; the previous size in pages, or
/// `usize::MAX` when it cannot grow (always, outside WebAssembly).
fn grow_memory(pages: usize) -> usize {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_grow(0, pages);
    #[cfg(not(target_arch = "wasm32"))]
    return {
        let _ = pages;
        usize::MAX
    };
}

/// Traps on purpose, so tests can check that the host answers 500.
pub fn trap() -> Result<Response, ApiError> {
    FAILED.store(true, Ordering::Relaxed);
    panic!("testbed: trap requested");
}

/// Spins forever, so tests can check the host's time limit.
pub fn spin() -> Result<Response, ApiError> {
    FAILED.store(true, Ordering::Relaxed);
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Allocates and touches memory until the host's memory cap stops it.
pub fn grow() -> Result<Response, ApiError> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // Filling with a non-zero byte writes every page, so the memory is
        // really used rather than reserved.
        held.push(black_box(vec![0xA5; CHUNK]));
        black_box(&held);
    }
}

/// The config value of the query's `key`.
pub fn config(request: &Request) -> Result<Response, ApiError> {
    let key = required_query(request, "key")?;
    let value = host_config::get(key)?;
    Ok(json(200, &json!({ "key": key, "value": value })))
}

/// Logs the query's `message` at info level.
pub fn log(request: &Request) -> Result<Response, ApiError> {
    let message = required_query(request, "message")?;
    host_log::log(host_log::Level::Info, message);
    Ok(json(200, &json!({ "logged": true })))
}

/// The query parameter `name`, or 400 naming it.
pub fn required_query<'a>(request: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    request
        .query(name)
        .ok_or_else(|| ApiError::bad_request(format!("Query parameter '{name}' is required")))
}
