//! Per-component resource limits, and the defaults every component starts from.

use serde::Deserialize;

use super::{ManifestError, invalid};

/// Per-component resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap, in MiB.
    pub memory_mb: u32,
    /// Wall-clock budget for one request or event batch, in milliseconds.
    pub timeout_ms: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a database transaction, or one statement outside a
    /// transaction, may hold the database, in milliseconds.
    pub transaction_ms: u64,
    /// Most rows one SQL query may return.
    pub max_result_rows: usize,
    /// Most bytes of values one SQL query or records page may return.
    pub max_result_bytes: usize,
    /// Largest response body the component may return, in bytes.
    pub max_response_bytes: usize,
    /// Instances of the component that may run at once; a request past it
    /// waits briefly for one to finish, then gets 503.
    pub max_instances: u32,
    /// Bytes of log messages one request may write; later lines are dropped
    /// and counted.
    pub max_log_bytes: usize,
    /// Outbound HTTP requests one instance may have in flight at once.
    pub max_outbound: u32,
    /// Requests (or event batches) one instance may serve. 1, the default,
    /// is a fresh instance for each; more lets a large guest skip its
    /// start-up, at the cost of state carried from one request to the next.
    pub requests_per_instance: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: 64,
            timeout_ms: 10_000,
            max_body_bytes: 1024 * 1024,
            transaction_ms: 2_000,
            max_result_rows: 10_000,
            max_result_bytes: 16 * 1024 * 1024,
            // What a Lambda function may answer.
            max_response_bytes: 6 * 1024 * 1024,
            max_instances: 16,
            max_log_bytes: 64 * 1024,
            max_outbound: 8,
            requests_per_instance: 1,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    memory_mb: Option<u32>,
    timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    transaction_ms: Option<u64>,
    max_result_rows: Option<usize>,
    max_result_bytes: Option<usize>,
    max_response_bytes: Option<usize>,
    max_instances: Option<u32>,
    max_log_bytes: Option<usize>,
    max_outbound: Option<u32>,
    requests_per_instance: Option<u32>,
}

impl RawLimits {
    pub(super) fn over(&self, base: Limits) -> Limits {
        Limits {
            memory_mb: self.memory_mb.unwrap_or(base.memory_mb),
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            max_body_bytes: self.max_body_bytes.unwrap_or(base.max_body_bytes),
            transaction_ms: self.transaction_ms.unwrap_or(base.transaction_ms),
            max_result_rows: self.max_result_rows.unwrap_or(base.max_result_rows),
            max_result_bytes: self.max_result_bytes.unwrap_or(base.max_result_bytes),
            max_response_bytes: self.max_response_bytes.unwrap_or(base.max_response_bytes),
            max_instances: self.max_instances.unwrap_or(base.max_instances),
            max_log_bytes: self.max_log_bytes.unwrap_or(base.max_log_bytes),
            max_outbound: self.max_outbound.unwrap_or(base.max_outbound),
            requests_per_instance: self.requests_per_instance.unwrap_or(base.requests_per_instance),
        }
    }
}

impl Limits {
    /// Checks every limit is in its range; `what` names whose limits they are.
    pub(super) fn check(&self, what: &str) -> Result<(), ManifestError> {
        let l = self;
        if !(1..=4096).contains(&l.memory_mb) {
            return Err(invalid(format!("{what}: memory_mb must be 1 to 4096, not {}", l.memory_mb)));
        }
        if !(1..=900_000).contains(&l.timeout_ms) {
            return Err(invalid(format!("{what}: timeout_ms must be 1 to 900000, not {}", l.timeout_ms)));
        }
        if l.max_body_bytes == 0 || l.max_body_bytes > 64 * 1024 * 1024 {
            return Err(invalid(format!(
                "{what}: max_body_bytes must be 1 to 67108864, not {}",
                l.max_body_bytes
            )));
        }
        if !(1..=60_000).contains(&l.transaction_ms) {
            return Err(invalid(format!(
                "{what}: transaction_ms must be 1 to 60000, not {}",
                l.transaction_ms
            )));
        }
        if !(1..=1_000_000).contains(&l.max_result_rows) {
            return Err(invalid(format!(
                "{what}: max_result_rows must be 1 to 1000000, not {}",
                l.max_result_rows
            )));
        }
        if l.max_result_bytes == 0 || l.max_result_bytes > 256 * 1024 * 1024 {
            return Err(invalid(format!(
                "{what}: max_result_bytes must be 1 to 268435456, not {}",
                l.max_result_bytes
            )));
        }
        if l.max_response_bytes == 0 || l.max_response_bytes > 64 * 1024 * 1024 {
            return Err(invalid(format!(
                "{what}: max_response_bytes must be 1 to 67108864, not {}",
                l.max_response_bytes
            )));
        }
        if !(1..=1024).contains(&l.max_instances) {
            return Err(invalid(format!("{what}: max_instances must be 1 to 1024, not {}", l.max_instances)));
        }
        if l.max_log_bytes > 64 * 1024 * 1024 {
            return Err(invalid(format!(
                "{what}: max_log_bytes must be 0 to 67108864, not {}",
                l.max_log_bytes
            )));
        }
        if l.max_outbound > 256 {
            return Err(invalid(format!("{what}: max_outbound must be 0 to 256, not {}", l.max_outbound)));
        }
        if !(1..=10_000).contains(&l.requests_per_instance) {
            return Err(invalid(format!(
                "{what}: requests_per_instance must be 1 to 10000, not {}",
                l.requests_per_instance
            )));
        }
        Ok(())
    }
}
