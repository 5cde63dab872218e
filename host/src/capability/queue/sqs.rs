//! The SQS queue: each named queue is an SQS queue, standard or FIFO (a
//! name ending in `.fifo`). Message attributes travel as SQS String
//! attributes. Group and deduplication ids are FIFO features: standard
//! queues are sent neither.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use base64::Engine;
use tokio::sync::RwLock;

use super::{OutgoingMessage, Queue, ReceivedMessage};
use crate::capability::backend::{BackendError, NameMap};

// SQS's limits: messages in a batch or a receive, seconds of delay and of
// visibility timeout, attributes on a message.
const MAX_BATCH: usize = 10;
const MAX_DELAY_SECONDS: u32 = 900;
const MAX_VISIBILITY_SECONDS: u32 = 43_200;
const MAX_ATTRIBUTES: usize = 10;

/// The pause before entries SQS failed on its side are sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The prefix SQS puts on error codes in its query-compatible header.
const CODE_PREFIX: &str = "AWS.SimpleQueueService.";

/// Error codes that mean the request itself was at fault.
const INVALID_CODES: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidMessageContents",
    "InvalidBatchEntryId",
    "BatchEntryIdsNotDistinct",
    "EmptyBatchRequest",
    "TooManyEntriesInBatchRequest",
    "BatchRequestTooLong",
    "ReceiptHandleIsInvalid",
    "InvalidIdFormat",
    "MessageNotInflight",
    "UnsupportedOperation",
    "ValidationError",
    "ValidationException",
];

/// Queues in SQS.
pub(crate) struct SqsQueue {
    client: Client,
    names: NameMap,
    /// Queue URLs by the name components use, looked up once.
    urls: RwLock<HashMap<String, String>>,
}

fn invalid(message: impl Into<String>) -> BackendError {
    BackendError::Invalid(message.into())
}

fn build_error(queue: &str, err: BuildError) -> BackendError {
    invalid(format!("request for queue {queue} is not valid: {err}"))
}

fn bare_code(code: &str) -> &str {
    code.strip_prefix(CODE_PREFIX).unwrap_or(code)
}

/// The error for a queue SQS does not have.
fn missing(name: &str) -> BackendError {
    BackendError::Unavailable(format!("queue {name} does not exist"))
}

fn is_missing_queue(code: &str) -> bool {
    matches!(bare_code(code), "NonExistentQueue" | "QueueDoesNotExist")
}

/// An SDK failure in terms a component can act on. Service messages are
/// kept only for requests at fault: the message of a signature error
/// quotes the signed request, session token included.
fn sdk_error<E>(operation: &str, queue: &str, err: SdkError<E>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("UnknownError");
            let status = service.raw().status().as_u16();
            if is_missing_queue(code) {
                missing(queue)
            } else if INVALID_CODES.contains(&bare_code(code)) {
                invalid(format!(
                    "SQS {operation} on queue {queue} refused the request: {}",
                    service.err().message().unwrap_or(code)
                ))
            } else {
                BackendError::Unavailable(format!("SQS {operation} on queue {queue} failed: {code} (HTTP {status})"))
            }
        }
        SdkError::ConstructionFailure(_) => invalid(format!(
            "SQS {operation} request for queue {queue} is not valid: {}",
            DisplayErrorContext(&err)
        )),
        _ => BackendError::Unavailable(format!("SQS {operation} on queue {queue} failed: {}", DisplayErrorContext(&err))),
    }
}

/// The error of one entry of a batch SQS did not accept.
fn entry_error(queue: &str, failed: &BatchResultErrorEntry) -> BackendError {
    let text = format!(
        "SQS refused a message for queue {queue}: {}: {}",
        failed.code(),
        failed.message().unwrap_or_default()
    );
    if failed.sender_fault() {
        BackendError::Invalid(text)
    } else {
        BackendError::Unavailable(text)
    }
}

/// The batch entry for `message`, or why SQS would refuse it. Checked here
/// so that one bad message fails alone rather than its whole batch.
fn entry(queue: &str, fifo: bool, message: &OutgoingMessage) -> Result<SendMessageBatchRequestEntry, BackendError> {
    if message.body.is_empty() {
        return Err(invalid("a message body must not be empty"));
    }
    if message.delay_seconds > MAX_DELAY_SECONDS {
        return Err(invalid(format!(
            "delay_seconds must be 0 to {MAX_DELAY_SECONDS}, not {}",
            message.delay_seconds
        )));
    }
    if message.attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "a message takes at most {MAX_ATTRIBUTES} attributes, not {}",
            message.attributes.len()
        )));
    }
    let mut builder = SendMessageBatchRequestEntry::builder().message_body(&message.body);
    let mut seen = HashSet::new();
    for (name, value) in &message.attributes {
        // SQS keeps attributes in a map: a repeated name would lose a value.
        if !seen.insert(name.as_str()) {
            return Err(invalid(format!("message attribute {name} is given twice")));
        }
        if value.is_empty() {
            return Err(invalid(format!("message attribute {name} must not be empty")));
        }
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| build_error(queue, e))?;
        builder = builder.message_attributes(name, value);
    }
    if fifo {
        let Some(group) = &message.group_id else {
            return Err(invalid(format!("a message for FIFO queue {queue} needs a group id")));
        };
        if message.delay_seconds != 0 {
            return Err(invalid(format!(
                "FIFO queue {queue} takes no per-message delay; delay_seconds must be 0"
            )));
        }
        builder = builder
            .message_group_id(group)
            .set_message_deduplication_id(message.dedup_id.clone());
    } else {
        builder = builder.delay_seconds(message.delay_seconds as i32);
    }
    // The entry id is set per batch, as the index in it.
    builder.id("0").build().map_err(|e| build_error(queue, e))
}

fn with_id(entry: &SendMessageBatchRequestEntry, id: usize) -> SendMessageBatchRequestEntry {
    let mut entry = entry.clone();
    entry.id = id.to_string();
    entry
}

/// The attributes of a received message, sorted by name since SQS keeps
/// them unordered. Binary values, from other producers, arrive in base64.
fn received_attributes(message: &aws_sdk_sqs::types::Message) -> Vec<(String, String)> {
    let mut attributes: Vec<(String, String)> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            let text = match (value.string_value(), value.binary_value()) {
                (Some(s), _) => s.to_string(),
                (None, Some(b)) => base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
                (None, None) => return None,
            };
            Some((name.clone(), text))
        })
        .collect();
    attributes.sort();
    attributes
}

impl SqsQueue {
    /// Queues on the SQS endpoint and credentials of `sdk_config`; `names`
    /// names the SQS queue behind each queue.
    pub(crate) fn new(sdk_config: &aws_config::SdkConfig, names: NameMap) -> SqsQueue {
        SqsQueue {
            client: Client::new(sdk_config),
            names,
            urls: RwLock::new(HashMap::new()),
        }
    }

    /// Creates each queue that does not exist: FIFO, without content-based
    /// deduplication, when its SQS name ends in `.fifo`. Meant for local
    /// emulators and development; running it again changes nothing.
    pub(crate) async fn create_missing_queues<'a>(&self, queues: impl IntoIterator<Item = &'a str>) -> Result<(), BackendError> {
        for queue in queues {
            if let Some(url) = self.lookup(queue).await? {
                self.urls.write().await.insert(queue.to_string(), url);
                continue;
            }
            let name = self.names.resolve(queue);
            let mut create = self.client.create_queue().queue_name(&name);
            if name.ends_with(".fifo") {
                create = create
                    .attributes(QueueAttributeName::FifoQueue, "true")
                    .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
            }
            let created = create.send().await;
            let url = match created {
                Ok(out) => out.queue_url().map(str::to_string),
                // Created meanwhile by someone else, perhaps with other attributes.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_name_exists()) => None,
                Err(e) => return Err(sdk_error("CreateQueue", &name, e)),
            };
            match url {
                Some(url) => {
                    self.urls.write().await.insert(queue.to_string(), url);
                }
                None => {
                    self.url(queue).await?;
                }
            }
        }
        Ok(())
    }

    /// The URL of `queue`, looked up on first use.
    async fn url(&self, queue: &str) -> Result<String, BackendError> {
        if let Some(url) = self.urls.read().await.get(queue) {
            return Ok(url.clone());
        }
        match self.lookup(queue).await? {
            Some(url) => {
                self.urls.write().await.insert(queue.to_string(), url.clone());
                Ok(url)
            }
            None => Err(missing(&self.names.resolve(queue))),
        }
    }

    /// Asks SQS for the URL of `queue`; none when it does not exist.
    async fn lookup(&self, queue: &str) -> Result<Option<String>, BackendError> {
        let name = self.names.resolve(queue);
        match self.client.get_queue_url().queue_name(&name).send().await {
            Ok(out) => match out.queue_url() {
                Some(url) => Ok(Some(url.to_string())),
                None => Err(BackendError::Unavailable(format!("SQS gave no URL for queue {name}"))),
            },
            Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) || e.code().is_some_and(is_missing_queue) => {
                Ok(None)
            }
            Err(e) => Err(sdk_error("GetQueueUrl", &name, e)),
        }
    }

    /// Drops the cached URL of a queue SQS says is gone, so that a queue
    /// created again is found.
    async fn forget_if_missing(&self, queue: &str, err: &BackendError) {
        if *err == missing(&self.names.resolve(queue)) {
            self.urls.write().await.remove(queue);
        }
    }

    /// Sends up to ten entries, filling `results` at their message indexes.
    /// Entries SQS failed on its side are sent once more. Returns the
    /// error of a request that failed as a whole, after giving it to every
    /// entry still unsent.
    async fn send_batch(
        &self,
        url: &str,
        name: &str,
        batch: &[(usize, SendMessageBatchRequestEntry)],
        results: &mut [Option<Result<String, BackendError>>],
    ) -> Result<(), BackendError> {
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            let entries = pending.iter().map(|&i| with_id(&batch[i].1, i)).collect();
            let out = match self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let err = sdk_error("SendMessageBatch", name, e);
                    if matches!(err, BackendError::Invalid(_)) {
                        // One message can spoil a batch (too long, a bad
                        // attribute name): send each alone to find it.
                        for &i in &pending {
                            let (index, entry) = &batch[i];
                            results[*index] = Some(self.send_one(url, name, entry).await);
                        }
                        return Ok(());
                    }
                    for &i in &pending {
                        results[batch[i].0] = Some(Err(err.clone()));
                    }
                    return Err(err);
                }
            };
            for sent in out.successful() {
                if let Some((index, _)) = sent.id().parse::<usize>().ok().and_then(|i| batch.get(i)) {
                    results[*index] = Some(Ok(sent.message_id().to_string()));
                }
            }
            let mut retry = Vec::new();
            for failed in out.failed() {
                let Some(i) = failed.id().parse::<usize>().ok().filter(|&i| i < batch.len()) else {
                    continue;
                };
                if !failed.sender_fault() && attempt == 0 {
                    retry.push(i);
                } else {
                    results[batch[i].0] = Some(Err(entry_error(name, failed)));
                }
            }
            if retry.is_empty() {
                break;
            }
            pending = retry;
        }
        Ok(())
    }

    /// Sends one entry with SendMessage.
    async fn send_one(&self, url: &str, name: &str, entry: &SendMessageBatchRequestEntry) -> Result<String, BackendError> {
        let out = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(entry.message_body())
            .set_delay_seconds(entry.delay_seconds())
            .set_message_attributes(entry.message_attributes().cloned())
            .set_message_group_id(entry.message_group_id().map(str::to_string))
            .set_message_deduplication_id(entry.message_deduplication_id().map(str::to_string))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessage", name, e))?;
        out.message_id()
            .map(str::to_string)
            .ok_or_else(|| BackendError::Unavailable(format!("SQS gave no id for a message to queue {name}")))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, queue: &str, messages: &[OutgoingMessage]) -> Result<Vec<Result<String, BackendError>>, BackendError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let url = self.url(queue).await?;
        let name = self.names.resolve(queue);
        let fifo = name.ends_with(".fifo");
        let mut results: Vec<Option<Result<String, BackendError>>> = vec![None; messages.len()];
        let mut ready = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            match entry(&name, fifo, message) {
                Ok(e) => ready.push((index, e)),
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        for batch in ready.chunks(MAX_BATCH) {
            if let Err(err) = self.send_batch(&url, &name, batch, &mut results).await {
                // SQS is failing as a whole; the rest would fail the same way.
                self.forget_if_missing(queue, &err).await;
                for slot in results.iter_mut().filter(|r| r.is_none()) {
                    *slot = Some(Err(err.clone()));
                }
                break;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(BackendError::Unavailable(format!(
                        "SQS did not report on a message to queue {name}"
                    )))
                })
            })
            .collect())
    }

    async fn receive(&self, queue: &str, max: u32, visibility_seconds: u32) -> Result<Vec<ReceivedMessage>, BackendError> {
        if !(1..=MAX_BATCH as u32).contains(&max) {
            return Err(invalid(format!("max must be 1 to {MAX_BATCH}, not {max}")));
        }
        if visibility_seconds > MAX_VISIBILITY_SECONDS {
            return Err(invalid(format!(
                "visibility timeout must be at most {MAX_VISIBILITY_SECONDS} seconds, not {visibility_seconds}"
            )));
        }
        let url = self.url(queue).await?;
        let name = self.names.resolve(queue);
        let received = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(max as i32)
            .visibility_timeout(visibility_seconds as i32)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let out = match received {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error("ReceiveMessage", &name, e);
                self.forget_if_missing(queue, &err).await;
                return Err(err);
            }
        };
        let mut messages = Vec::new();
        for message in out.messages() {
            let (Some(id), Some(receipt)) = (message.message_id(), message.receipt_handle()) else {
                // Unusable without both; it becomes visible again when its timeout passes.
                tracing::warn!(queue = name, "SQS returned a message without an id or receipt handle");
                continue;
            };
            let receive_count = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            messages.push(ReceivedMessage {
                id: id.to_string(),
                receipt: receipt.to_string(),
                body: message.body().unwrap_or_default().to_string(),
                attributes: received_attributes(message),
                receive_count,
            });
        }
        Ok(messages)
    }

    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), BackendError> {
        if receipt.is_empty() {
            return Err(invalid("the receipt must not be empty"));
        }
        let url = self.url(queue).await?;
        let name = self.names.resolve(queue);
        let deleted = self.client.delete_message().queue_url(&url).receipt_handle(receipt).send().await;
        if let Err(e) = deleted {
            let err = sdk_error("DeleteMessage", &name, e);
            self.forget_if_missing(queue, &err).await;
            return Err(err);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> OutgoingMessage {
        OutgoingMessage {
            body: body.into(),
            ..Default::default()
        }
    }

    #[test]
    fn fifo_messages_need_a_group_and_no_delay() {
        assert!(matches!(entry("q.fifo", true, &message("a")), Err(BackendError::Invalid(_))));
        let grouped = OutgoingMessage {
            group_id: Some("g".into()),
            dedup_id: Some("d".into()),
            ..message("a")
        };
        let e = entry("q.fifo", true, &grouped).expect("valid");
        assert_eq!(
            (e.message_group_id(), e.message_deduplication_id(), e.delay_seconds()),
            (Some("g"), Some("d"), None)
        );
        let delayed = OutgoingMessage {
            delay_seconds: 5,
            ..grouped
        };
        assert!(matches!(entry("q.fifo", true, &delayed), Err(BackendError::Invalid(_))));
    }

    #[test]
    fn standard_messages_keep_their_delay_and_drop_fifo_ids() {
        let m = OutgoingMessage {
            group_id: Some("g".into()),
            dedup_id: Some("d".into()),
            delay_seconds: 900,
            ..message("a")
        };
        let e = entry("q", false, &m).expect("valid");
        assert_eq!(
            (e.message_group_id(), e.message_deduplication_id(), e.delay_seconds()),
            (None, None, Some(900))
        );
        let late = OutgoingMessage { delay_seconds: 901, ..m };
        assert!(matches!(entry("q", false, &late), Err(BackendError::Invalid(_))));
    }

    #[test]
    fn attributes_are_checked() {
        let twice = OutgoingMessage {
            attributes: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ..message("x")
        };
        assert!(matches!(entry("q", false, &twice), Err(BackendError::Invalid(_))));
        let empty = OutgoingMessage {
            attributes: vec![("a".into(), String::new())],
            ..message("x")
        };
        assert!(matches!(entry("q", false, &empty), Err(BackendError::Invalid(_))));
        assert!(matches!(entry("q", false, &message("")), Err(BackendError::Invalid(_))));
    }

    #[test]
    fn query_error_codes_are_recognised() {
        assert!(is_missing_queue("AWS.SimpleQueueService.NonExistentQueue"));
        assert!(is_missing_queue("QueueDoesNotExist"));
        assert_eq!(
            bare_code("AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
            "BatchEntryIdsNotDistinct"
        );
    }
}
