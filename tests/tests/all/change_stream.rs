//! Store changes under `corral serve`, on both backend sets: the local
//! change stream on the embedded ones, the table's DynamoDB stream on the
//! AWS ones. Committed writes to a subscribed cache store reach the
//! subscriber in order, in the one change shape; a change the subscriber
//! fails is delivered again, with backoff, and the subscriber's position
//! survives a restart.

use crate::common;

use std::time::{Duration, Instant};

use common::manifests::manifest;
use common::{Backends, Host, on_both_backends};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn testbed(host: &Host, component: &str, action: &str, body: Value) -> Value {
    let path = format!("/{component}/testbed/{action}");
    host.json(reqwest::Method::POST, &path, None, &body)
        .await
        .expect(200)
}

async fn cache(host: &Host, body: Value) -> Value {
    testbed(host, "writer", "cache", body).await
}

/// The changes the watcher recorded, in delivery order: (kind, source, body).
async fn recorded(host: &Host) -> Vec<(String, String, Value)> {
    let listed = testbed(
        host,
        "watcher",
        "records",
        json!({"op": "list", "table": "notes_log"}),
    )
    .await;
    let mut records: Vec<&Value> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .collect();
    // Delivery order is the order the watcher recorded them in.
    records.sort_by_key(|r| r["uid"].as_str().unwrap_or_default().to_owned());
    records
        .into_iter()
        .map(|r| {
            let body = serde_json::from_str(r["body"].as_str().expect("a text body"))
                .expect("a JSON body");
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["source"].as_str().unwrap().to_owned(),
                body,
            )
        })
        .collect()
}

async fn wait_recorded(host: &Host, count: usize) -> Vec<(String, String, Value)> {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = recorded(host).await;
        if seen.len() >= count {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{count} changes expected, {} recorded: {seen:?}\n{}",
            seen.len(),
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_both_backends!(
    changes_arrive_in_commit_order_in_one_shape,
    a_failed_change_is_delivered_again_until_it_succeeds
);

async fn changes_arrive_in_commit_order_in_one_shape(backends: Backends) {
    let host = Host::start_on(backends, &manifest("change_stream"));
    recorded(&host).await; // creates the log table

    cache(
        &host,
        json!({"op": "set", "store": "notes", "key": "k1", "value": "one"}),
    )
    .await;
    cache(
        &host,
        json!({"op": "set", "store": "notes", "key": "k1", "value": "two", "ttl": 3600}),
    )
    .await;
    assert_eq!(
        cache(
            &host,
            json!({"op": "add", "store": "notes", "key": "k2", "value": "{\"a\":1}"})
        )
        .await["stored"],
        true
    );
    // Not stored, not deleted, not subscribed: no change to deliver.
    assert_eq!(
        cache(
            &host,
            json!({"op": "add", "store": "notes", "key": "k2", "value": "again"})
        )
        .await["stored"],
        false
    );
    cache(
        &host,
        json!({"op": "delete", "store": "notes", "key": "absent"}),
    )
    .await;
    cache(
        &host,
        json!({"op": "set", "store": "other", "key": "k1", "value": "elsewhere"}),
    )
    .await;
    cache(
        &host,
        json!({"op": "delete", "store": "notes", "key": "k1"}),
    )
    .await;
    // The last change, so that everything before it has been delivered when it arrives.
    cache(
        &host,
        json!({"op": "set", "store": "notes", "key": "end", "value": "."}),
    )
    .await;

    let seen = wait_recorded(&host, 5).await;
    let change = |key: &str, value: Value, old: Value| json!({"store": "notes", "key": key, "value": value, "old_value": old});
    let expected = [
        ("INSERT", change("k1", json!("one"), Value::Null)),
        ("MODIFY", change("k1", json!("two"), json!("one"))),
        ("INSERT", change("k2", json!("{\"a\":1}"), Value::Null)),
        ("REMOVE", change("k1", Value::Null, json!("two"))),
        ("INSERT", change("end", json!("."), Value::Null)),
    ];
    let seen: Vec<(&str, &str, &Value)> = seen
        .iter()
        .map(|(k, s, b)| (k.as_str(), s.as_str(), b))
        .collect();
    let expected: Vec<(&str, &str, &Value)> = expected
        .iter()
        .map(|(k, b)| (*k, "table:notes", b))
        .collect();
    assert_eq!(seen, expected);
}

async fn a_failed_change_is_delivered_again_until_it_succeeds(backends: Backends) {
    let mut host = Host::start_on(backends, &manifest("change_stream"));
    recorded(&host).await;
    cache(
        &host,
        json!({"op": "set", "store": "notes", "key": "k1", "value": "one"}),
    )
    .await;
    wait_recorded(&host, 1).await;

    // One record per key: the watcher fails to record a second change of k1.
    let key_of_body = match backends {
        Backends::Embedded => "json_extract(json_extract(data, '$.body'), '$.key')",
        Backends::Aws => "((data->>'body')::jsonb->>'key')",
    };
    let index = format!("CREATE UNIQUE INDEX notes_log_key ON notes_log ({key_of_body})");
    testbed(&host, "watcher", "sql", json!({"sql": index})).await;
    cache(
        &host,
        json!({"op": "set", "store": "notes", "key": "k1", "value": "two"}),
    )
    .await;

    // Delivered again and again, each time logged with its attempt.
    host.wait_for_logs("about a second failed delivery", |logs| {
        logs.iter().any(|l| {
            l["message"] == "a change failed; delivering again from it"
                && l["attempt"] == 2
                && l["component"] == "watcher"
        })
    })
    .await;
    assert_eq!(recorded(&host).await.len(), 1);

    // Once the watcher can record it, it gets through, once.
    testbed(
        &host,
        "watcher",
        "sql",
        json!({"sql": "DROP INDEX notes_log_key"}),
    )
    .await;
    let seen = wait_recorded(&host, 2).await;
    assert_eq!(seen[1].2["value"], "two", "{seen:?}");

    // The position survives a restart: nothing is delivered twice.
    host.restart();
    cache(
        &host,
        json!({"op": "set", "store": "notes", "key": "k2", "value": "three"}),
    )
    .await;
    let seen = wait_recorded(&host, 3).await;
    let keys: Vec<&Value> = seen.iter().map(|(_, _, body)| &body["key"]).collect();
    assert_eq!(keys, [&json!("k1"), &json!("k1"), &json!("k2")], "{seen:?}");
}
