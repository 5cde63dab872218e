//! corral: one host for many REST resources written as WebAssembly
//! components, in three layers:
//! - [`edge`]: the local HTTP server and the Lambda adapter turn traffic
//!   into one [`Request`];
//! - [`core`]: [`App`] routes it, checks the caller and runs a fresh
//!   instance of the component the [`Manifest`] names;
//! - [`capability`]: each host interface (db, cache, queue, auth, config,
//!   log, outbound HTTP) brokers the component's calls to a backend within
//!   its grants.
//!
//! [`serve`] holds what only `corral serve` runs (the local event delivery,
//! the change log, `--watch`), and [`devtools`] the developer's commands.
#![deny(missing_docs)]

pub mod capability;
pub mod core;
pub mod devtools;
pub mod edge;
pub mod serve;

pub use crate::core::app::{App, AppOptions};
pub use crate::core::manifest::Manifest;
pub use crate::core::request::{Request, Response};
