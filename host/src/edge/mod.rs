//! The edges: where traffic enters the host and becomes one [`crate::Request`].

pub mod lambda;
pub mod server;
