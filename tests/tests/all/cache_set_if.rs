//! The cache's conditional write (`set-if`) and the SDK's lost-update-free
//! edit built on it, through a component, on both backend sets.

use crate::common;

use common::manifests::manifest;
use common::{Backends, Host, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    set_if_stores_only_over_the_expected_value,
    concurrent_edits_through_update_all_land,
}

async fn cache(host: &Host, body: Value) -> Value {
    host.json(Method::POST, "/testbed/cache", None, &body)
        .await
        .expect(200)
}

async fn set_if_stores_only_over_the_expected_value(backends: Backends) {
    let host = Host::start_on(backends, &manifest("cache_set_if"));
    let set_if = |value: &str, expected: Option<&str>| json!({ "op": "set-if", "store": "lists", "key": "k", "value": value, "expected": expected });
    assert_eq!(
        cache(&host, set_if("v1", Some("v0"))).await,
        json!({ "stored": false })
    );
    assert_eq!(
        cache(&host, set_if("v1", None)).await,
        json!({ "stored": true })
    );
    assert_eq!(
        cache(&host, set_if("v2", None)).await,
        json!({ "stored": false })
    );
    assert_eq!(
        cache(&host, set_if("v2", Some("v0"))).await,
        json!({ "stored": false })
    );
    assert_eq!(
        cache(&host, set_if("v2", Some("v1"))).await,
        json!({ "stored": true })
    );
    let get = json!({ "op": "get", "store": "lists", "key": "k" });
    assert_eq!(cache(&host, get.clone()).await, json!({ "value": "v2" }));

    // A store not granted is refused, and nothing is written.
    let refused = host
        .json(
            Method::POST,
            "/testbed/cache",
            None,
            &json!({ "op": "set-if", "store": "other", "key": "k", "value": "x", "expected": null }),
        )
        .await;
    assert!(refused.expect_error(500, "not_granted").contains("other"));

    // A value past the size limit is refused; the stored one stays.
    let big = "x".repeat(384 * 1024 + 1);
    let too_big = host
        .json(
            Method::POST,
            "/testbed/cache",
            None,
            &json!({ "op": "set-if", "store": "lists", "key": "k", "value": big, "expected": "v2" }),
        )
        .await;
    assert!(
        too_big.expect_error(400, "bad_request").contains("at most"),
        "{}",
        too_big.text()
    );
    assert_eq!(cache(&host, get).await, json!({ "value": "v2" }));
}

async fn concurrent_edits_through_update_all_land(backends: Backends) {
    let host = Host::start_on(backends, &manifest("cache_set_if"));
    let appends = (0..12).map(|i| {
        let body =
            json!({ "op": "append", "store": "lists", "key": "user", "value": format!("id{i}") });
        let host = &host;
        async move {
            host.json(Method::POST, "/testbed/cache", None, &body)
                .await
                .expect(200)
        }
    });
    futures::future::join_all(appends).await;
    let stored = cache(
        &host,
        json!({ "op": "get", "store": "lists", "key": "user" }),
    )
    .await;
    let mut ids: Vec<String> = serde_json::from_str(stored["value"].as_str().unwrap()).unwrap();
    ids.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("id{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "every concurrent append survives");
}
