//! The core: the manifest, the component registry, the engine and the
//! request path every edge shares.

pub mod app;
pub mod artifacts;
pub mod bindings;
pub mod connect;
pub mod cors;
pub mod error;
pub mod hotswap;
pub mod init_marks;
pub mod instance;
pub mod manifest;
pub mod metrics;
pub mod openapi;
#[cfg(test)]
mod properties_tests;
pub mod publish;
pub mod registry;
pub mod request;
pub mod router;
pub mod runtime;
