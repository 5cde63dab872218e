//! The edges: where traffic enters the host and becomes one [`crate::Request`].

pub(crate) mod lambda;
pub(crate) mod server;
