//! The local event path: messages on an embedded queue go to the component
//! that consumes it, in batches, as SQS delivers them to a Lambda. Only the
//! messages a component reports as failed (or all of them, when it traps)
//! stay on the queue, to be delivered again after their visibility timeout.
//! A message that has failed `max_receives` deliveries moves to the entry's
//! `dead_letter` queue, as SQS's redrive policy moves it on AWS; the queue
//! backend counts deliveries (SQS's `ApproximateReceiveCount`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::capability::backend::BackendError;
use crate::capability::queue::{OutgoingMessage, ReceivedMessage};
use crate::core::bindings::handler::{Event, EventSource};
use crate::core::manifest::{EventSourceSpec, EventSpec};
use crate::core::runtime::{Hosted, Loaded, Runtime};

/// How long a consumer waits after finding its queue empty.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Starts one consumer task per queue a component consumes.
pub(crate) fn spawn_consumers(runtime: Arc<Runtime>, consumers: Vec<(Arc<Hosted>, EventSpec)>) {
    for (component, spec) in consumers {
        match &spec.source {
            EventSourceSpec::Queue(queue) => {
                tracing::info!(component = %component.context.name, queue = %queue, "consuming queue");
                tokio::spawn(consume(runtime.clone(), component, queue.clone(), spec));
            }
            EventSourceSpec::Bucket(bucket) => {
                tracing::info!(component = %component.context.name, bucket = %bucket, "object notifications of this bucket reach the component on Lambda only");
            }
            EventSourceSpec::Table(_) => {}
        }
    }
}

async fn consume(runtime: Arc<Runtime>, component: Arc<Hosted>, queue_name: String, spec: EventSpec) {
    let queue = component.context.backends.queue.clone();
    loop {
        match queue.receive(&queue_name, spec.batch_size, spec.visibility_seconds).await {
            Ok(messages) if messages.is_empty() => tokio::time::sleep(IDLE_POLL).await,
            // Each batch runs on the version current when it arrives.
            Ok(messages) => deliver(&runtime, &component.current(), &queue_name, &spec, messages).await,
            Err(e) => {
                tracing::warn!(component = %component.context.name, queue = %queue_name, error = %e, "cannot read the queue");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn deliver(runtime: &Runtime, component: &Loaded, queue_name: &str, spec: &EventSpec, messages: Vec<ReceivedMessage>) {
    let started = Instant::now();
    let name = component.context.name.as_str();
    let batch_id = uuid::Uuid::new_v4().to_string();
    let events = messages
        .iter()
        .map(|m| Event {
            id: m.id.clone(),
            source: EventSource::Queue(queue_name.to_owned()),
            kind: "message".into(),
            body: m.body.clone(),
            attributes: m.attributes.clone(),
        })
        .collect();
    let failed: HashSet<String> = match runtime.handle_events(component, batch_id.clone(), events).await {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => {
            tracing::error!(component = name, batch_id, error = %e, "event batch failed; every message will be delivered again");
            messages.iter().map(|m| m.id.clone()).collect()
        }
    };
    let queue = &component.context.backends.queue;
    for m in messages.iter().filter(|m| !failed.contains(&m.id)) {
        if let Err(e) = queue.delete(queue_name, &m.receipt).await {
            tracing::warn!(component = name, message_id = %m.id, error = %e, "could not delete a handled message; it will be delivered again");
        }
    }
    if let Some(dead_letter) = &spec.dead_letter {
        for m in messages
            .iter()
            .filter(|m| failed.contains(&m.id) && m.receive_count >= spec.max_receives)
        {
            dead_letter_one(component, queue_name, dead_letter, m).await;
        }
    }
    let failed_count = messages.iter().filter(|m| failed.contains(&m.id)).count();
    tracing::info!(
        target: "corral::events",
        component = name,
        queue = %queue_name,
        batch_id,
        delivered = messages.len(),
        failed = failed_count,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "event batch"
    );
}

/// Moves a message that failed its last allowed delivery to `dead_letter`:
/// sent there first, then deleted, so a failure in between leaves a copy on
/// each queue rather than none.
async fn dead_letter_one(component: &Loaded, queue_name: &str, dead_letter: &str, m: &ReceivedMessage) {
    let name = component.context.name.as_str();
    let queue = &component.context.backends.queue;
    let copy = OutgoingMessage {
        body: m.body.clone(),
        attributes: m.attributes.clone(),
        ..OutgoingMessage::default()
    };
    let sent = match queue.send(dead_letter, std::slice::from_ref(&copy)).await {
        Ok(mut results) => results
            .pop()
            .unwrap_or_else(|| Err(BackendError::Unavailable("no result for the message".into()))),
        Err(e) => Err(e),
    };
    match sent {
        Ok(id) => {
            tracing::warn!(component = name, queue = %queue_name, message_id = %m.id, receives = m.receive_count, dead_letter, dead_letter_id = %id, "a message failed every delivery; moved to the dead-letter queue");
            if let Err(e) = queue.delete(queue_name, &m.receipt).await {
                tracing::warn!(component = name, message_id = %m.id, error = %e, "could not delete a dead-lettered message; it will be delivered again");
            }
        }
        Err(e) => {
            tracing::error!(component = name, queue = %queue_name, message_id = %m.id, dead_letter, error = %e, "cannot move a failed message to the dead-letter queue; it stays on its queue")
        }
    }
}
