//! A queue message that keeps failing moves to the consumer's dead-letter
//! queue after `max_receives` deliveries, while the rest of its batch is
//! handled once; on both backend sets (SQS through moto counts deliveries
//! with `ApproximateReceiveCount`). And with two hosts consuming one SQS
//! queue, every message is handled, and one held by a host that dies is
//! delivered again to the other.

mod common;

use std::time::{Duration, Instant};

use common::{Backends, Host, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const MANIFEST: &str = r#"
[components.testbed]
wasm = "{WASM}/testbed.wasm"
mount = "/testbed"
queues = ["jobs", "jobs-dlq"]

[[components.testbed.events]]
queue = "jobs"
batch_size = 10
visibility_seconds = 1
max_receives = 3
dead_letter = "jobs-dlq"

[[components.testbed.routes]]
path = "/{action}"
methods = ["POST"]
auth = "public"
"#;

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
    let host = Host::start_on(backends, MANIFEST);
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
    let manifest = MANIFEST.replace("visibility_seconds = 1", "visibility_seconds = 4");
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
