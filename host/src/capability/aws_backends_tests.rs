//! The DynamoDB cache and the SQS queue against a moto server, whose URL
//! `CORRAL_TEST_MOTO_URL` gives. Every test uses its own table and queue
//! names, so the tests share one server and run in parallel.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use crate::capability::backend::{BackendError, NameMap};
use crate::capability::cache::{Cache, DynamoCache};
use crate::capability::queue::{OutgoingMessage, Queue, ReceivedMessage, SqsQueue};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

async fn sdk_config() -> SdkConfig {
    let url = std::env::var("CORRAL_TEST_MOTO_URL")
        .unwrap_or_else(|_| panic!("CORRAL_TEST_MOTO_URL is not set; start moto: scripts/test does it"));
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// Names no other test uses.
fn names() -> NameMap {
    NameMap {
        prefix: format!("t{}-", uuid::Uuid::new_v4().simple()),
        names: BTreeMap::new(),
    }
}

async fn cache(stores: &[&str]) -> (DynamoCache, NameMap) {
    let names = names();
    let cache = DynamoCache::new(&sdk_config().await, names.clone(), Default::default());
    cache
        .create_missing_tables(stores.iter().copied(), &BTreeSet::new())
        .await
        .expect("tables created");
    (cache, names)
}

async fn queue(queues: &[&str]) -> SqsQueue {
    let queue = SqsQueue::new(&sdk_config().await, names());
    queue.create_missing_queues(queues.iter().copied()).await.expect("queues created");
    queue
}

fn message(body: &str) -> OutgoingMessage {
    OutgoingMessage {
        body: body.into(),
        ..Default::default()
    }
}

/// Receives until `count` messages arrived or a few receives come back empty.
async fn receive_all(queue: &SqsQueue, name: &str, count: usize, visibility: u32) -> Vec<ReceivedMessage> {
    let mut got = Vec::new();
    let mut empty = 0;
    while got.len() < count && empty < 3 {
        let batch = queue.receive(name, 10, visibility).await.expect("receive");
        if batch.is_empty() {
            empty += 1;
        }
        got.extend(batch);
    }
    got
}

/// The stream view of a table, if its stream is on.
async fn stream_view(table: &str) -> Option<String> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let described = client.describe_table().table_name(table).send().await.expect("describe");
    let spec = described.table()?.stream_specification()?;
    spec.stream_enabled()
        .then(|| spec.stream_view_type().map(|v| v.as_str().to_owned()))?
}

#[tokio::test]
async fn subscribed_stores_get_a_stream_of_new_and_old_images() {
    let (cache, names) = cache(&["plain", "later"]).await;
    assert_eq!(stream_view(&names.resolve("plain")).await, None);
    // A new table, and one that exists without a stream.
    let streamed = BTreeSet::from(["events", "later"]);
    cache
        .create_missing_tables(["plain", "events"], &streamed)
        .await
        .expect("tables set up");
    for store in ["events", "later"] {
        assert_eq!(
            stream_view(&names.resolve(store)).await.as_deref(),
            Some("NEW_AND_OLD_IMAGES"),
            "{store}"
        );
    }
    assert_eq!(stream_view(&names.resolve("plain")).await, None);
    // Again: nothing changes.
    cache.create_missing_tables(["events"], &streamed).await.expect("idempotent");
}

#[tokio::test]
async fn cache_set_get_delete() {
    let (cache, names) = cache(&["sessions"]).await;
    // Creating again changes nothing.
    cache
        .create_missing_tables(["sessions"], &BTreeSet::new())
        .await
        .expect("idempotent");

    assert_eq!(cache.get("sessions", "a").await, Ok(None));
    cache.set("sessions", "a", b"one", None).await.expect("set");
    assert_eq!(cache.get("sessions", "a").await, Ok(Some(b"one".to_vec())));
    cache
        .set("sessions", "a", b"two", Some(Duration::from_secs(60)))
        .await
        .expect("replace");
    assert_eq!(cache.get("sessions", "a").await, Ok(Some(b"two".to_vec())));
    cache.set("sessions", "empty", b"", None).await.expect("empty value");
    assert_eq!(cache.get("sessions", "empty").await, Ok(Some(Vec::new())));

    cache.delete("sessions", "a").await.expect("delete");
    assert_eq!(cache.get("sessions", "a").await, Ok(None));
    cache.delete("sessions", "a").await.expect("deleting an absent key is not an error");

    assert!(matches!(cache.get("sessions", "").await, Err(BackendError::Invalid(_))));

    // An explicit name wins over the prefix.
    let aliased = NameMap {
        prefix: "unused-".into(),
        names: BTreeMap::from([("alias".to_string(), names.resolve("sessions"))]),
    };
    let aliased = DynamoCache::new(&sdk_config().await, aliased, Default::default());
    assert_eq!(aliased.get("alias", "empty").await, Ok(Some(Vec::new())));
}

#[tokio::test]
async fn cache_set_if_stores_only_over_the_expected_value() {
    let (cache, _) = cache(&["lists"]).await;
    assert_eq!(cache.set_if("lists", "k", b"v1", Some(b"v0"), None).await, Ok(false));
    assert_eq!(cache.set_if("lists", "k", b"v1", None, None).await, Ok(true));
    assert_eq!(cache.set_if("lists", "k", b"v2", None, None).await, Ok(false));
    assert_eq!(cache.set_if("lists", "k", b"v2", Some(b"v0"), None).await, Ok(false));
    assert_eq!(
        cache.set_if("lists", "k", b"v2", Some(b"v1"), Some(Duration::from_secs(60))).await,
        Ok(true)
    );
    assert_eq!(cache.get("lists", "k").await, Ok(Some(b"v2".to_vec())));
    // An expired item still in the table is absent: only `None` matches it.
    cache.set("lists", "old", b"x", Some(Duration::from_millis(1))).await.expect("set");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(cache.set_if("lists", "old", b"y", Some(b"x"), None).await, Ok(false));
    assert_eq!(cache.set_if("lists", "old", b"y", None, None).await, Ok(true));
    assert_eq!(cache.get("lists", "old").await, Ok(Some(b"y".to_vec())));
    assert!(matches!(
        cache.set_if("lists", "", b"y", None, None).await,
        Err(BackendError::Invalid(_))
    ));
}

#[tokio::test]
async fn cache_set_if_lets_one_of_concurrent_writers_win() {
    let (cache, _) = cache(&["lists"]).await;
    let cache = std::sync::Arc::new(cache);
    for round in 0..5 {
        let start = format!("r{round}");
        cache.set("lists", "k", start.as_bytes(), None).await.expect("set");
        let writers: Vec<_> = (0..6)
            .map(|i| {
                let cache = cache.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    cache
                        .set_if("lists", "k", format!("w{i}").as_bytes(), Some(start.as_bytes()), None)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, w) in writers.into_iter().enumerate() {
            if w.await.expect("joined").expect("set_if") {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(cache.get("lists", "k").await, Ok(Some(format!("w{}", winners[0]).into_bytes())));
    }
}

#[tokio::test]
async fn cache_values_expire_before_ttl_deletes_them() {
    let (cache, names) = cache(&["short"]).await;
    cache.set("short", "k", b"v", Some(Duration::from_secs(1))).await.expect("set");
    cache
        .set("short", "stays", b"v", Some(Duration::from_secs(600)))
        .await
        .expect("set");
    assert_eq!(cache.get("short", "k").await, Ok(Some(b"v".to_vec())));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The item is still stored; only the reads hide it.
    let raw = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let stored = raw.scan().table_name(format!("{}short", names.prefix)).send().await.expect("scan");
    assert_eq!(stored.count(), 2, "moto has deleted the expired item, so this test proves nothing");
    let ttl = raw
        .describe_time_to_live()
        .table_name(names.resolve("short"))
        .send()
        .await
        .expect("describe TTL");
    let ttl = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(ttl.time_to_live_status(), Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));

    assert_eq!(cache.get("short", "k").await, Ok(None));
    let many = cache
        .get_many("short", &["k".to_string(), "stays".to_string()])
        .await
        .expect("get_many");
    assert_eq!(many, vec![("stays".to_string(), b"v".to_vec())]);
}

#[tokio::test]
async fn cache_get_many_crosses_batches_and_keeps_order() {
    let (cache, _) = cache(&["many"]).await;
    // Every seventh key is never stored.
    let keys: Vec<String> = (0..130).rev().map(|i| format!("key-{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        if i % 7 != 0 {
            cache.set("many", key, key.as_bytes(), None).await.expect("set");
        }
    }
    let got = cache.get_many("many", &keys).await.expect("get_many");
    let expected: Vec<(String, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 0)
        .map(|(_, k)| (k.clone(), k.as_bytes().to_vec()))
        .collect();
    assert_eq!(got.len(), 111);
    assert_eq!(got, expected);

    assert_eq!(cache.get_many("many", &[]).await, Ok(Vec::new()));
}

#[tokio::test]
async fn cache_get_many_with_duplicate_keys() {
    let (cache, _) = cache(&["dups"]).await;
    cache.set("dups", "a", b"A", None).await.expect("set");
    cache.set("dups", "b", b"B", None).await.expect("set");
    let keys: Vec<String> = ["b", "a", "b", "missing", "a"].iter().map(|k| k.to_string()).collect();
    let got = cache.get_many("dups", &keys).await.expect("get_many");
    assert_eq!(got, vec![("b".to_string(), b"B".to_vec()), ("a".to_string(), b"A".to_vec())]);
}

#[tokio::test]
async fn cache_missing_table_is_unavailable() {
    let cache = DynamoCache::new(&sdk_config().await, names(), Default::default());
    match cache.get("nowhere", "k").await {
        Err(BackendError::Unavailable(m)) => assert!(m.contains("does not exist"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        cache.get_many("nowhere", &["k".into()]).await,
        Err(BackendError::Unavailable(_))
    ));
    assert!(matches!(
        cache.set("nowhere", "k", b"v", None).await,
        Err(BackendError::Unavailable(_))
    ));
}

#[tokio::test]
async fn queue_send_receive_redeliver_delete() {
    let queue = queue(&["jobs"]).await;
    queue.create_missing_queues(["jobs"]).await.expect("idempotent");

    let messages: Vec<OutgoingMessage> = (0..25).map(|i| message(&format!("job {i}"))).collect();
    let ids: Vec<String> = queue
        .send("jobs", &messages)
        .await
        .expect("send")
        .into_iter()
        .map(|r| r.expect("sent"))
        .collect();
    assert_eq!(ids.len(), 25);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25);

    let first = receive_all(&queue, "jobs", 25, 3).await;
    assert_eq!(first.len(), 25);
    assert_eq!(
        first.iter().map(|m| m.id.clone()).collect::<HashSet<_>>(),
        ids.iter().cloned().collect()
    );
    let bodies: HashSet<String> = first.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies, (0..25).map(|i| format!("job {i}")).collect());
    assert!(first.iter().all(|m| m.receive_count == 1));
    assert!(queue.receive("jobs", 10, 3).await.expect("receive").is_empty(), "all are hidden");

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let second = receive_all(&queue, "jobs", 25, 30).await;
    assert_eq!(second.len(), 25);
    assert!(second.iter().all(|m| m.receive_count == 2));

    for m in &second {
        queue.delete("jobs", &m.receipt).await.expect("delete");
    }
    assert!(matches!(queue.delete("jobs", "not-a-receipt").await, Err(BackendError::Invalid(_))));
    assert!(matches!(queue.delete("jobs", "").await, Err(BackendError::Invalid(_))));
    assert!(matches!(queue.receive("jobs", 0, 1).await, Err(BackendError::Invalid(_))));
    assert!(matches!(queue.receive("jobs", 11, 1).await, Err(BackendError::Invalid(_))));
}

#[tokio::test]
async fn queue_delete_removes_for_good() {
    let queue = queue(&["once"]).await;
    queue.send("once", &[message("a"), message("b")]).await.expect("send");
    let got = receive_all(&queue, "once", 2, 1).await;
    assert_eq!(got.len(), 2);
    let kept = got.iter().find(|m| m.body == "b").expect("b received");
    let deleted = got.iter().find(|m| m.body == "a").expect("a received");
    queue.delete("once", &deleted.receipt).await.expect("delete");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = receive_all(&queue, "once", 2, 30).await;
    assert_eq!(again.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec![kept.id.as_str()]);
}

#[tokio::test]
async fn queue_attributes_round_trip() {
    let queue = queue(&["attrs"]).await;
    let sent = OutgoingMessage {
        attributes: vec![("trace".into(), "abc-123".into()), ("kind".into(), "order.created".into())],
        ..message("{\"id\":1}")
    };
    let results = queue.send("attrs", &[sent]).await.expect("send");
    assert!(results[0].is_ok(), "{results:?}");
    let got = receive_all(&queue, "attrs", 1, 30).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "{\"id\":1}");
    assert_eq!(
        got[0].attributes,
        vec![
            ("kind".to_string(), "order.created".to_string()),
            ("trace".to_string(), "abc-123".to_string())
        ]
    );
}

#[tokio::test]
async fn queue_bad_messages_fail_alone() {
    let queue = queue(&["mixed"]).await;
    let twice = OutgoingMessage {
        attributes: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        ..message("twice")
    };
    let late = OutgoingMessage {
        delay_seconds: 901,
        ..message("late")
    };
    let results = queue
        .send("mixed", &[message("ok 1"), twice, late, message(""), message("ok 2")])
        .await
        .expect("send");
    assert_eq!(results.len(), 5);
    assert!(results[0].is_ok() && results[4].is_ok(), "{results:?}");
    assert!(
        results[1..4].iter().all(|r| matches!(r, Err(BackendError::Invalid(_)))),
        "{results:?}"
    );
    let got = receive_all(&queue, "mixed", 2, 30).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<HashSet<_>>(),
        HashSet::from(["ok 1", "ok 2"])
    );
}

#[tokio::test]
async fn fifo_queue_groups_and_deduplication() {
    let queue = queue(&["orders.fifo"]).await;
    let grouped = |body: &str, dedup: &str| OutgoingMessage {
        group_id: Some("customer-1".into()),
        dedup_id: Some(dedup.into()),
        ..message(body)
    };
    let delayed = OutgoingMessage {
        delay_seconds: 5,
        ..grouped("delayed", "d-delayed")
    };
    let results = queue
        .send(
            "orders.fifo",
            &[grouped("first", "d-1"), message("no group"), delayed, grouped("second", "d-2")],
        )
        .await
        .expect("send");
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(BackendError::Invalid(_))), "{results:?}");
    assert!(matches!(results[2], Err(BackendError::Invalid(_))), "{results:?}");
    assert!(results[3].is_ok(), "{results:?}");

    // The same deduplication id again: accepted, not queued twice.
    let again = queue.send("orders.fifo", &[grouped("first, again", "d-1")]).await.expect("send");
    assert!(again[0].is_ok(), "{again:?}");

    // No deduplication id, and the queue has no content-based
    // deduplication: SQS refuses that message, and only that one.
    let undeduplicated = OutgoingMessage {
        group_id: Some("customer-1".into()),
        ..message("no dedup id")
    };
    let results = queue
        .send("orders.fifo", &[grouped("third", "d-3"), undeduplicated, grouped("fourth", "d-4")])
        .await
        .expect("send");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(BackendError::Invalid(_))), "{results:?}");

    let got = receive_all(&queue, "orders.fifo", 4, 30).await;
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["first", "second", "third", "fourth"]
    );
    queue.create_missing_queues(["orders.fifo"]).await.expect("idempotent");
}

#[tokio::test]
async fn unknown_queue_is_an_error() {
    let queue = SqsQueue::new(&sdk_config().await, names());
    for result in [
        queue.send("nowhere", &[message("x")]).await.map(|_| ()),
        queue.receive("nowhere", 1, 1).await.map(|_| ()),
        queue.delete("nowhere", "receipt").await,
    ] {
        match result {
            Err(BackendError::Unavailable(m)) => assert!(m.contains("does not exist"), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
