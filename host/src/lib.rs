//! corral: one host for many REST resources written as WebAssembly
//! components. The edges (`server`, and the Lambda adapter) turn traffic
//! into one [`request::Request`]; [`App`] routes it, checks the caller and
//! runs a fresh instance of the component; each capability module (`db`,
//! `cache`, `queue`, `auth`, `config`) brokers the component's calls to a
//! backend within its grants.
#![deny(missing_docs)]

pub mod app;
pub mod artifacts;
pub mod auth;
pub mod backend;
pub mod bindings;
pub mod cache;
pub mod config;
pub mod connect;
pub mod cors;
pub mod db;
pub mod devtools;
pub mod error;
pub mod events;
pub mod hotswap;
pub mod init_marks;
pub mod instance;
pub mod lambda;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod publish;
pub mod queue;
pub mod registry;
pub mod request;
pub mod router;
pub mod runtime;
pub mod server;
pub mod stream;
pub mod table_streams;
pub mod watch;

pub use app::{App, AppOptions};
pub use manifest::Manifest;
pub use request::{Request, Response};
