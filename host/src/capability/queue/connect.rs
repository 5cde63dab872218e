//! Connects the queues `[backends.queue]` names: a table in the embedded
//! file, or SQS.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use aws_config::SdkConfig;

use super::{EmbeddedQueue, Queue, QueueSpec, SqsQueue};
use crate::capability::backend::NameMap;
use crate::capability::embedded::EmbeddedFile;

/// The queues, and how their names become SQS queue names. `queues` are
/// every queue a component uses or consumes, created on SQS when missing
/// if the section asks for it.
pub(crate) async fn connect(
    spec: &QueueSpec,
    file: &mut EmbeddedFile,
    aws: Option<&SdkConfig>,
    queues: BTreeSet<&str>,
) -> anyhow::Result<(Arc<dyn Queue>, NameMap)> {
    let QueueSpec::Sqs(names) = spec else {
        return Ok((Arc::new(EmbeddedQueue::open(file.pool().await?).await?), NameMap::default()));
    };
    let names_map = NameMap::from(names);
    let queue = SqsQueue::new(aws.expect("SQS loads the AWS configuration"), names_map.clone());
    if names.create_missing {
        queue.create_missing_queues(queues).await.context("creating the queues")?;
    }
    tracing::info!("queue: SQS");
    Ok((Arc::new(queue), names_map))
}
