//! The capabilities: each host interface of the WIT world, with its
//! manifest section, its backends and the glue that serves a component's
//! calls within its grants.

pub(crate) mod auth;
#[cfg(test)]
mod aws_backends_tests;
pub(crate) mod backend;
mod base;
pub(crate) mod cache;
pub(crate) mod config;
pub(crate) mod db;
pub(crate) mod embedded;
pub(crate) mod log;
pub(crate) mod outbound;
pub(crate) mod queue;
