//! Durable named queues, for components (SQS on AWS).

mod connect;
mod embedded;
mod host;
mod spec;
mod sqs;

pub(crate) use connect::connect;
pub(crate) use spec::QueueSpec;

use async_trait::async_trait;

pub(crate) use embedded::EmbeddedQueue;
pub(crate) use sqs::SqsQueue;

use crate::capability::backend::BackendError;

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutgoingMessage {
    /// The body.
    pub body: String,
    /// Named string attributes.
    pub attributes: Vec<(String, String)>,
    /// FIFO message group.
    pub group_id: Option<String>,
    /// FIFO deduplication id: a second message with the same id is not queued again.
    pub dedup_id: Option<String>,
    /// Seconds before it can be received.
    pub delay_seconds: u32,
}

/// A received message.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// The message id.
    pub id: String,
    /// The handle to delete it with.
    pub receipt: String,
    /// The body.
    pub body: String,
    /// Named string attributes.
    pub attributes: Vec<(String, String)>,
    /// Deliveries so far, this one included.
    pub receive_count: u32,
}

/// A queue backend.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends messages; one result per message, in order.
    async fn send(&self, queue: &str, messages: &[OutgoingMessage]) -> Result<Vec<Result<String, BackendError>>, BackendError>;
    /// Takes up to `max` visible messages and hides them for `visibility_seconds`.
    async fn receive(&self, queue: &str, max: u32, visibility_seconds: u32) -> Result<Vec<ReceivedMessage>, BackendError>;
    /// Deletes a received message.
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), BackendError>;
}
