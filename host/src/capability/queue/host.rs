//! The `queue` interface for components: grant checks, then the backend.

use std::sync::Arc;

use super::{OutgoingMessage, Queue};
use crate::capability::backend::guest_try;
use crate::core::bindings::GuestError;
use crate::core::bindings::corral::host::queue::{Host, Message, Received};
use crate::core::instance::HostState;

type Answer<T> = wasmtime::Result<Result<T, GuestError>>;

/// The most messages one `send-batch` may carry.
const MAX_BATCH: usize = 10;

impl HostState {
    /// The queue backend, once `queue` is known to be granted.
    fn queue_for(&self, queue: &str) -> Result<Arc<dyn Queue>, GuestError> {
        self.check_grant("queue", |g| &g.queues, queue)?;
        Ok(self.component.backends.queue.clone())
    }
}

fn outgoing(m: Message) -> OutgoingMessage {
    OutgoingMessage {
        body: m.body,
        attributes: m.attributes,
        group_id: m.group_id,
        dedup_id: m.dedup_id,
        delay_seconds: m.delay_seconds,
    }
}

impl Host for HostState {
    async fn send(&mut self, queue: String, message: Message) -> Answer<String> {
        let backend = guest_try!(self.queue_for(&queue));
        let mut results = guest_try!(backend.send(&queue, &[outgoing(message)]).await);
        Ok(results.pop().expect("one result per message").map_err(Into::into))
    }

    async fn send_batch(&mut self, queue: String, messages: Vec<Message>) -> Answer<Vec<Result<String, GuestError>>> {
        let backend = guest_try!(self.queue_for(&queue));
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Ok(Err(GuestError::Invalid(format!(
                "send-batch takes 1 to {MAX_BATCH} messages, not {}",
                messages.len()
            ))));
        }
        let messages: Vec<_> = messages.into_iter().map(outgoing).collect();
        let results = guest_try!(backend.send(&queue, &messages).await);
        Ok(Ok(results.into_iter().map(|r| r.map_err(GuestError::from)).collect()))
    }

    async fn receive(&mut self, queue: String, max: u32, visibility_timeout_seconds: u32) -> Answer<Vec<Received>> {
        let backend = guest_try!(self.queue_for(&queue));
        let got = guest_try!(backend.receive(&queue, max, visibility_timeout_seconds).await);
        Ok(Ok(got
            .into_iter()
            .map(|m| Received {
                id: m.id,
                receipt: m.receipt,
                body: m.body,
                attributes: m.attributes,
                receive_count: m.receive_count,
            })
            .collect()))
    }

    async fn delete(&mut self, queue: String, receipt: String) -> Answer<()> {
        let backend = guest_try!(self.queue_for(&queue));
        Ok(backend.delete(&queue, &receipt).await.map_err(Into::into))
    }
}
