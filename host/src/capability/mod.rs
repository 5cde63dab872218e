//! The capabilities: each host interface of the WIT world, with its
//! manifest section, its backends and the glue that serves a component's
//! calls within its grants.

pub mod auth;
#[cfg(test)]
mod aws_backends_tests;
pub mod backend;
pub mod cache;
pub mod config;
pub mod db;
pub(crate) mod embedded;
pub mod log;
pub mod outbound;
pub mod queue;
