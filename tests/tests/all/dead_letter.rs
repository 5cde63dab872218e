//! A queue message that keeps failing moves to the consumer's dead-letter
//! queue after `max_receives` deliveries, while the rest of its batch is
//! handled once; on both backend sets (SQS through moto counts deliveries
//! with `ApproximateReceiveCount`). And with several hosts consuming one
//! SQS queue, every message is handled, one held by a host that dies is
//! delivered again to another, and a handler's idempotent effect is
//! applied once.

use crate::common;

use std::time::{Duration, Instant};

use common::manifests::manifest;
use common::{Backends, Host, on_both_backends};
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    a_message_that_always_fails_ends_in_the_dead_letter_queue,
}

async fn queue(host: &Host, body: Value) -> Value {
    host.json(Method::POST, "/testbed/queue", None, &body)
        .await
        .expect(200)
}

/// How often the component was handed a message with this body.
fn deliveries(host: &Host, body: &str) -> usize {
    let suffix = format!("source=queue:jobs body={body}");
    host.logs()
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("event ") && m.ends_with(&suffix))
        })
        .count()
}

async fn a_message_that_always_fails_ends_in_the_dead_letter_queue(backends: Backends) {
    let host = Host::start_on(backends, &manifest("dead_letter"));
    let sent = queue(
        &host,
        json!({ "op": "send-batch", "queue": "jobs", "bodies": ["first", "fail", "second"] }),
    )
    .await;
    let fail_id = sent["results"][1]["id"].as_str().unwrap().to_owned();

    // The failing message reaches the dead-letter queue, unchanged.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let got = queue(
            &host,
            json!({ "op": "receive", "queue": "jobs-dlq", "max": 10, "visibility": 60 }),
        )
        .await;
        let messages = got["messages"].as_array().unwrap().clone();
        if !messages.is_empty() {
            break messages;
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached the dead-letter queue; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["body"], "fail");

    // Delivered exactly max_receives times; the others once, never again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deliveries(&host, "fail"), 3, "{}", host.stderr());
    assert_eq!(
        (deliveries(&host, "first"), deliveries(&host, "second")),
        (1, 1)
    );
    let moved = host
        .logs()
        .into_iter()
        .find(|l| l["message"] == "a message failed every delivery; moved to the dead-letter queue")
        .expect("the move is logged");
    assert_eq!(
        (moved["message_id"].as_str(), moved["receives"].as_u64()),
        (Some(fail_id.as_str()), Some(3))
    );
    // Nothing is left on the queue it came from.
    let left = queue(
        &host,
        json!({ "op": "receive", "queue": "jobs", "max": 10, "visibility": 60 }),
    )
    .await;
    assert_eq!(left["messages"], json!([]));
}

/// Two hosts consuming one SQS queue, as two Lambda environments of one
/// function: every message is handled by one of them. A message one host
/// holds when it is killed (`kill -9`, nothing given back) is delivered
/// again to the other once its visibility timeout passes.
#[tokio::test]
async fn a_message_held_by_a_host_that_dies_is_delivered_to_another() {
    let manifest =
        manifest("dead_letter").replace("visibility_seconds = 1", "visibility_seconds = 4");
    let mut first = Host::start_on(Backends::Aws, &manifest);
    let mut second = first.peer();
    let bodies: Vec<String> = (1..=20).map(|n| format!("m{n}")).collect();
    queue(
        &first,
        json!({ "op": "send-batch", "queue": "jobs", "bodies": bodies[..10] }),
    )
    .await;
    queue(
        &second,
        json!({ "op": "send-batch", "queue": "jobs", "bodies": bodies[10..] }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while bodies
        .iter()
        .any(|b| deliveries(&first, b) + deliveries(&second, b) == 0)
    {
        assert!(
            Instant::now() < deadline,
            "not every message was handled; the hosts logged:\n{}\n{}",
            first.stderr(),
            second.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A message that takes its handler 3 s: whichever host receives it is
    // killed while it works.
    let sent = queue(
        &first,
        json!({ "op": "send-batch", "queue": "jobs", "bodies": ["slow:3000"] }),
    )
    .await;
    assert_eq!(sent["results"].as_array().map(Vec::len), Some(1), "{sent}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let first_holds = loop {
        match (
            deliveries(&first, "slow:3000"),
            deliveries(&second, "slow:3000"),
        ) {
            (0, 0) => {}
            (_, 0) => break true,
            (0, _) => break false,
            both => panic!("both hosts received the message at once: {both:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "nobody received the slow message"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let survivor = if first_holds {
        first.kill();
        &second
    } else {
        second.kill();
        &first
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliveries(survivor, "slow:3000") == 0 {
        assert!(
            Instant::now() < deadline,
            "the killed host's message was not delivered again; the survivor logged:\n{}",
            survivor.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sql(host: &Host, sql: &str, query: bool) -> Value {
    host.json(
        Method::POST,
        "/testbed/sql",
        None,
        &json!({"sql": sql, "query": query}),
    )
    .await
    .expect(200)
}

/// How many messages `jobs_applied` holds, as one host reads it.
async fn applied(host: &Host) -> i64 {
    sql(host, "SELECT count(*) AS n FROM jobs_applied", true).await["rows"][0][0]
        .as_i64()
        .expect("a count")
}

/// Waits up to two minutes until `jobs_applied` holds at least `count`
/// messages, and returns how many it holds.
async fn wait_applied(host: &Host, count: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = applied(host).await;
        if n >= count {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} messages were applied; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 1,000 messages sent through three hosts that consume the queue, as three
/// Lambda environments: one host is killed with `kill -9` halfway through.
/// Every message is handled at least once, none is lost, and the handler's
/// effect (a row per message id, written with `ON CONFLICT DO NOTHING`) is
/// applied once, although the killed host's messages come again.
#[tokio::test]
async fn a_thousand_messages_through_three_hosts_are_applied_once_when_one_dies() {
    let first = Host::start_on(Backends::Aws, &manifest("dead_letter_applying"));
    sql(
        &first,
        "CREATE TABLE jobs_applied (event_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
        false,
    )
    .await;
    let (second, third) = (first.peer(), first.peer());
    let mut hosts = [first, second, third];
    let bodies: Vec<String> = (0..1000).map(|n| format!("m{n}")).collect();
    let sends = bodies.chunks(10).enumerate().map(|(i, chunk)| {
        let host = &hosts[i % 3];
        async move {
            let sent = queue(
                host,
                json!({ "op": "send-batch", "queue": "jobs", "bodies": chunk }),
            )
            .await;
            assert_eq!(sent["results"].as_array().map(Vec::len), Some(10), "{sent}");
        }
    });
    // Six sends at a time: within each host's instance limit.
    futures::stream::iter(sends)
        .buffer_unordered(6)
        .collect::<Vec<()>>()
        .await;

    let halfway = wait_applied(&hosts[0], 500).await;
    assert!(halfway < 1000, "every message was applied before the kill");
    hosts[1].kill();
    assert_eq!(wait_applied(&hosts[0], 1000).await, 1000);

    // Each message once, whatever the number of deliveries.
    let rows = sql(&hosts[2], "SELECT body FROM jobs_applied", true).await;
    let mut stored: Vec<String> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_owned())
        .collect();
    stored.sort();
    let mut expected = bodies.clone();
    expected.sort();
    assert_eq!(stored, expected);
    let delivered: usize = hosts
        .iter()
        .flat_map(Host::logs)
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("event ") && m.contains("source=queue:jobs body=m"))
        })
        .count();
    assert!(delivered >= 1000, "{delivered} deliveries");
    // Peers stop before the host that owns the database and queues.
    hosts.reverse();
}
