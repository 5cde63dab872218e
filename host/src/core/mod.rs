//! The core: the manifest, the component registry, the engine and the
//! request path every edge shares.

pub(crate) mod app;
pub(crate) mod artifacts;
pub(crate) mod backends;
pub(crate) mod bindings;
pub(crate) mod cors;
pub(crate) mod error;
pub(crate) mod hotswap;
pub(crate) mod init_marks;
pub(crate) mod instance;
pub(crate) mod manifest;
pub(crate) mod metrics;
pub(crate) mod openapi;
#[cfg(test)]
mod properties_tests;
pub(crate) mod publish;
pub(crate) mod registry;
pub(crate) mod request;
pub(crate) mod router;
pub(crate) mod runtime;
