//! corral: one host for many REST resources written as WebAssembly
//! components, in three layers:
//! - `edge`: the local HTTP server and the Lambda adapter turn traffic
//!   into one [`Request`];
//! - `core`: [`App`] routes it, checks the caller and runs a fresh
//!   instance of the component the [`Manifest`] names;
//! - `capability`: each host interface (db, cache, queue, auth, config,
//!   log, outbound HTTP) brokers the component's calls to a backend within
//!   its grants.
//!
//! `serve` holds what only `corral serve` runs (the local event delivery,
//! the change log, `--watch`), `devtools` the developer's commands and
//! [`cli`] the command line over all of it.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
// The Lambda handler future nests deeply (runtime, tower service, instrumented span).
#![recursion_limit = "256"]

mod capability;
pub mod cli;
mod core;
mod devtools;
mod edge;
mod serve;

pub use crate::core::app::{App, AppOptions};
pub use crate::core::manifest::{Manifest, ManifestError};
pub use crate::core::request::{Request, Response};

/// What the benchmarks measure beneath the request path: the phases of one
/// instance's call, and the database backends on their own.
#[doc(hidden)]
pub mod bench {
    pub use crate::capability::db::{Database, Postgres, PostgresOptions, Sqlite, Value};
    pub use crate::capability::log::init as init_logging;
    pub use crate::core::bindings::handler;
    pub use crate::core::registry::{Registry, StoreLocation};
    pub use crate::core::runtime::{Loaded, Runtime, RuntimeOptions};
}
