//! The event-sourced API (seed 002) under `/es`: the `events` component
//! stores events in the cache store `events`, and each projection is the
//! `projection` component fed by that store's changes. Under `corral serve`
//! the local change stream delivers them on the embedded backends, and the
//! host reads the table's DynamoDB stream on the AWS ones; on Lambda the
//! DynamoDB stream invokes the host (the last tests send such events
//! through the Lambda edge).

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::lambda::{Lambda, http_json};
use common::manifests::manifest_with;
use common::{Backends, Host, Reply, on_both_backends};
use serde_json::{Value, json};

/// The default projection's rules, as in the example manifest.
const DEFAULT: (&str, &str) = (
    "default",
    r#"{"create": {"set": ["name"]}, "update": {"merge": true}, "delete": {"remove": true}}"#,
);
/// A projection that counts each customer's events by type.
const ACTIVITY: (&str, &str) = ("activity", r#"{"*": {"count": "{type}"}}"#);

/// How long a projection may take to show an event.
const PROJECTION_WAIT: Duration = Duration::from_secs(30);

/// The events API under `/es` and one projection component per entry of
/// `projections` (name, rules), all on the one events store.
fn manifest(projections: &[(&str, &str)]) -> String {
    let names: Vec<&str> = projections.iter().map(|(name, _)| *name).collect();
    let mut text = manifest_with("event_sourcing", &[("PROJECTIONS", &names.join(","))]);
    for (name, rules) in projections {
        text.push_str(&manifest_with(
            "event_sourcing_projection",
            &[("NAME", name), ("RULES", rules)],
        ));
    }
    text
}

async fn post(host: &Host, event: &Value) -> Reply {
    host.json(reqwest::Method::POST, "/es", None, event).await
}

/// GETs `path` until it answers 200 with a body that satisfies `done`, and
/// returns that body; panics after [`PROJECTION_WAIT`].
async fn wait_for(host: &Host, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PROJECTION_WAIT;
    loop {
        let reply = host.get(path).await;
        if reply.status == 200 && done(&reply.json()) {
            return reply.json();
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} did not reach the expected state within {PROJECTION_WAIT:?}; last answer: {reply}\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs `path` until it answers 404; panics after [`PROJECTION_WAIT`].
async fn wait_gone(host: &Host, path: &str) {
    let deadline = Instant::now() + PROJECTION_WAIT;
    loop {
        let reply = host.get(path).await;
        if reply.status == 404 {
            reply.expect_error(404, "not_found");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} still answers: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every page of a list, following `LastEvaluatedKey`: each page's records
/// and the key it ended with.
async fn pages(host: &Host, path: &str) -> Vec<(Vec<Value>, Option<String>)> {
    let mut pages = Vec::new();
    let mut key: Option<String> = None;
    loop {
        let mut request = host.client().get(host.url(path));
        if let Some(key) = &key {
            request = request.header("ExclusiveStartKey", key);
        }
        let reply = host.send(request).await;
        let records = reply
            .expect(200)
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("not a bare array: {reply}"));
        key = reply.header("LastEvaluatedKey").map(str::to_owned);
        pages.push((records, key.clone()));
        if key.is_none() || pages.len() > 10 {
            return pages;
        }
    }
}

/// A GET of `path` with the request header `ExclusiveStartKey: key`.
async fn get_after(host: &Host, path: &str, key: &str) -> Reply {
    host.send(
        host.client()
            .get(host.url(path))
            .header("ExclusiveStartKey", key),
    )
    .await
}

fn is_uuid_v7(id: &str) -> bool {
    common::text::is_uuid(id) && id.as_bytes()[14] == b'7'
}

on_both_backends!(
    posts_are_validated_and_records_read_route_by_route,
    events_are_projected_by_the_rules_of_each_type,
    a_repeated_event_id_is_stored_once_and_applied_once,
    events_in_the_same_millisecond_all_count,
    an_unknown_event_type_does_not_block_later_events,
    a_second_projection_is_added_by_the_manifest_alone,
    lists_come_in_pages_of_ten_with_signed_keys,
);

async fn posts_are_validated_and_records_read_route_by_route(backends: Backends) {
    let host = Host::start_on(backends, &manifest(&[DEFAULT, ACTIVITY]));

    // POST /: the contract's messages, in the contract's order.
    let missing_key = post(&host, &json!({"type": "create", "name": "Ada"})).await;
    assert_eq!(
        missing_key.expect_error(400, "bad_request"),
        "Please provide the 'customer' on your event."
    );
    let empty_key = post(&host, &json!({"customer": "", "type": "create"})).await;
    assert_eq!(
        empty_key.expect_error(400, "bad_request"),
        "Please provide the 'customer' on your event."
    );
    let missing_type = post(&host, &json!({"customer": "c1", "name": "Ada"})).await;
    assert_eq!(
        missing_type.expect_error(400, "bad_request"),
        "Please provide a 'type' on your event."
    );
    let neither = post(&host, &json!({})).await;
    assert_eq!(
        neither.expect_error(400, "bad_request"),
        "Please provide the 'customer' on your event."
    );
    let number_key = post(&host, &json!({"customer": 7, "type": "create"})).await;
    assert_eq!(
        number_key.expect_error(400, "bad_request"),
        "The 'customer' of an event must be a string."
    );
    let bad_id = post(
        &host,
        &json!({"customer": "c1", "type": "create", "eventId": 5}),
    )
    .await;
    assert_eq!(
        bad_id.expect_error(400, "bad_request"),
        "The 'eventId' must be a non-empty string of at most 256 characters."
    );
    for event in [
        json!({"customer": "c\u{0}1", "type": "create"}),
        json!({"customer": "c1", "type": "create", "tags": {"k\u{0}": 1}}),
    ] {
        assert_eq!(
            post(&host, &event).await.expect_error(400, "bad_request"),
            "An event cannot hold the NUL character (\\u0000)."
        );
    }
    let long_id = json!({"customer": "c1", "type": "create", "eventId": "é".repeat(257)});
    assert_eq!(
        post(&host, &long_id).await.expect_error(400, "bad_request"),
        "The 'eventId' must be a non-empty string of at most 256 characters."
    );
    // Malformed JSON is 400 (the original answered 502), with or without a JSON content type.
    let malformed = host
        .send(
            host.client()
                .post(host.url("/es"))
                .header("content-type", "application/json")
                .body("{\"customer\": "),
        )
        .await;
    malformed.expect_error(400, "bad_request");
    let malformed = host
        .send(host.client().post(host.url("/es")).body("{\"customer\": "))
        .await;
    assert_eq!(malformed.expect_error(400, "bad_request"), "Malformed body");
    let array = post(&host, &json!([{"customer": "c1", "type": "create"}])).await;
    assert_eq!(
        array.expect_error(400, "bad_request"),
        "The body must be a JSON object"
    );

    // A valid event is stored and answered as stored: a new UUIDv7 eventId
    // when it has none, the client's otherwise.
    let stored = post(
        &host,
        &json!({"customer": "c1", "type": "create", "name": "Ada"}),
    )
    .await
    .expect(200);
    let event_id = stored["eventId"].as_str().unwrap_or_default();
    assert!(is_uuid_v7(event_id), "{stored}");
    assert_eq!(
        stored,
        json!({"customer": "c1", "type": "create", "name": "Ada", "eventId": event_id})
    );
    let sent = json!({"customer": "c2", "type": "create", "name": "Bo", "eventId": "client-1", "extra": [1, {"a": null}]});
    assert_eq!(post(&host, &sent).await.expect(200), sent);
    // The original's clients send an authorization header that is no bearer
    // token on every call; on these public routes it leaves them anonymous.
    for value in ["allow", "Bearer not-a-token"] {
        let repeated = host
            .send(
                host.client()
                    .post(host.url("/es"))
                    .header("authorization", value)
                    .json(&sent),
            )
            .await;
        assert_eq!(repeated.expect(200), sent, "authorization: {value}");
    }

    // GET /{id} and GET /{projection}/{id}: the projected record.
    let ada = json!({"customer": "c1", "name": "Ada", "aggregateName": "default"});
    assert_eq!(wait_for(&host, "/es/c1", |_| true).await, ada);
    assert_eq!(host.get("/es/default/c1").await.expect(200), ada);
    let counted = wait_for(&host, "/es/activity/c2", |_| true).await;
    assert_eq!(
        counted,
        json!({"customer": "c2", "create": 1, "aggregateName": "activity"})
    );
    // The refused events changed nothing: c1 counts its one stored create.
    let counted = wait_for(&host, "/es/activity/c1", |_| true).await;
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity"})
    );

    // GET / and GET /{projection}: bare arrays; no key when nothing follows.
    let all = host.get("/es").await;
    assert_eq!(
        all.expect(200),
        json!([ada, {"customer": "c2", "name": "Bo", "aggregateName": "default"}])
    );
    assert_eq!(all.header("LastEvaluatedKey"), None, "{all}");
    let activity = host.get("/es/activity").await.expect(200);
    assert_eq!(activity.as_array().map(Vec::len), Some(2), "{activity}");
    assert_eq!(
        host.get("/es/default").await.expect(200),
        host.get("/es").await.expect(200)
    );

    // 404s: no such record, no such projection.
    let none = host.get("/es/nobody").await.expect_error(404, "not_found");
    assert_eq!(none, "No record 'nobody' in projection 'default'");
    host.get("/es/activity/nobody")
        .await
        .expect_error(404, "not_found");
    let unknown = host
        .get("/es/nowhere/c1")
        .await
        .expect_error(404, "not_found");
    assert_eq!(unknown, "No projection named 'nowhere'");
    // Other methods are not routes of the API.
    let delete = host.call(reqwest::Method::DELETE, "/es/c1", None).await;
    delete.expect_error(405, "method_not_allowed");
}

async fn events_are_projected_by_the_rules_of_each_type(backends: Backends) {
    let host = Host::start_on(backends, &manifest(&[DEFAULT, ACTIVITY]));

    post(
        &host,
        &json!({"customer": "c1", "type": "create", "name": "Ada", "age": 35}),
    )
    .await
    .expect(200);
    // `create` sets only `name`.
    let created = wait_for(&host, "/es/c1", |_| true).await;
    assert_eq!(
        created,
        json!({"customer": "c1", "name": "Ada", "aggregateName": "default"})
    );

    // `update` merges every field but type, eventId and the key; null removes.
    post(
        &host,
        &json!({"customer": "c1", "type": "update", "age": 36, "city": "London"}),
    )
    .await
    .expect(200);
    wait_for(&host, "/es/c1", |r| r.get("city").is_some()).await;
    post(
        &host,
        &json!({"customer": "c1", "type": "update", "city": null, "name": "Ada L."}),
    )
    .await
    .expect(200);
    let updated = wait_for(&host, "/es/c1", |r| r["name"] == "Ada L.").await;
    assert_eq!(
        updated,
        json!({"customer": "c1", "name": "Ada L.", "aggregateName": "default", "age": 36})
    );

    // `delete` removes the record; the other projection keeps counting.
    post(&host, &json!({"customer": "c1", "type": "delete"}))
        .await
        .expect(200);
    wait_gone(&host, "/es/c1").await;
    let counted = wait_for(&host, "/es/activity/c1", |r| r.get("delete").is_some()).await;
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity", "update": 2, "delete": 1})
    );
    assert_eq!(host.get("/es").await.expect(200), json!([]));

    // A new create starts the aggregate again from `{customer: id}`.
    post(
        &host,
        &json!({"customer": "c1", "type": "create", "name": "Again"}),
    )
    .await
    .expect(200);
    let again = wait_for(&host, "/es/c1", |_| true).await;
    assert_eq!(
        again,
        json!({"customer": "c1", "name": "Again", "aggregateName": "default"})
    );
}

async fn a_repeated_event_id_is_stored_once_and_applied_once(backends: Backends) {
    let host = Host::start_on(backends, &manifest(&[DEFAULT, ACTIVITY]));

    // The same eventId eight times at once, each with another name.
    let posts = (0..8).map(|i| {
        let event = json!({"customer": "c1", "type": "create", "name": format!("N{i}"), "eventId": "dup-1"});
        let host = &host;
        async move { post(host, &event).await.expect(200) }
    });
    let answers = futures::future::join_all(posts).await;
    // Every answer is the one event stored, whichever came first.
    let stored = answers[0].clone();
    assert!(answers.iter().all(|a| *a == stored), "{answers:?}");
    let name = stored["name"].as_str().expect("a name").to_owned();
    assert!((0..8).any(|i| name == format!("N{i}")), "{stored}");
    assert_eq!(stored["eventId"], "dup-1");

    // A later event of the same customer shows when everything before it was applied.
    post(&host, &json!({"customer": "c1", "type": "ping"}))
        .await
        .expect(200);
    let counted = wait_for(&host, "/es/activity/c1", |r| r["ping"] == 1).await;
    assert_eq!(counted["create"], 1, "{counted}");
    assert_eq!(host.get("/es/c1").await.expect(200)["name"], name.as_str());

    // Posted again later: the stored event again, and still applied once.
    let again = post(
        &host,
        &json!({"customer": "c1", "type": "create", "name": "Late", "eventId": "dup-1"}),
    )
    .await;
    assert_eq!(again.expect(200), stored);
    post(&host, &json!({"customer": "c1", "type": "ping"}))
        .await
        .expect(200);
    let counted = wait_for(&host, "/es/activity/c1", |r| r["ping"] == 2).await;
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity", "ping": 2})
    );
    assert_eq!(host.get("/es/c1").await.expect(200)["name"], name.as_str());
}

/// The millisecond timestamp of a UUIDv7 (its first 48 bits).
fn v7_millis(id: &str) -> String {
    id.replace('-', "")[..12].to_owned()
}

async fn events_in_the_same_millisecond_all_count(backends: Backends) {
    let host = Host::start_on(backends, &manifest(&[DEFAULT, ACTIVITY]));

    // Bursts of concurrent events without an eventId, until two of them
    // got ids in the same millisecond (the original keyed events by time).
    let mut ids = BTreeSet::new();
    let mut shared_millisecond = false;
    let mut sent = 0;
    while !shared_millisecond {
        assert!(
            sent < 200,
            "no two of {sent} concurrent events were stored in the same millisecond"
        );
        let posts = (0..20).map(|_| {
            let host = &host;
            async move {
                post(host, &json!({"customer": "c1", "type": "visit"}))
                    .await
                    .expect(200)
            }
        });
        let answers = futures::future::join_all(posts).await;
        sent += answers.len();
        let mut millis = BTreeSet::new();
        for answer in &answers {
            let id = answer["eventId"].as_str().expect("an eventId").to_owned();
            shared_millisecond |= !millis.insert(v7_millis(&id));
            assert!(ids.insert(id), "an eventId was given twice: {answer}");
        }
    }
    let counted = wait_for(&host, "/es/activity/c1", |r| r["visit"] == sent).await;
    assert_eq!(
        counted,
        json!({"customer": "c1", "visit": sent, "aggregateName": "activity"})
    );
}

async fn an_unknown_event_type_does_not_block_later_events(backends: Backends) {
    let host = Host::start_on(backends, &manifest(&[DEFAULT, ACTIVITY]));

    post(
        &host,
        &json!({"customer": "c1", "type": "frobnicate", "name": "ignored"}),
    )
    .await
    .expect(200);
    post(
        &host,
        &json!({"customer": "c1", "type": "create", "name": "Ada"}),
    )
    .await
    .expect(200);
    // The default projection has no rule for it: the record is as `create` made it.
    let record = wait_for(&host, "/es/c1", |_| true).await;
    assert_eq!(
        record,
        json!({"customer": "c1", "name": "Ada", "aggregateName": "default"})
    );
    let counted = wait_for(&host, "/es/activity/c1", |r| r["create"] == 1).await;
    assert_eq!(
        counted,
        json!({"customer": "c1", "frobnicate": 1, "aggregateName": "activity", "create": 1})
    );
    // Nothing was delivered again.
    assert!(
        !host
            .logs()
            .iter()
            .any(|l| l["message"] == "a change failed; delivering again from it"),
        "{}",
        host.stderr()
    );
}

async fn a_second_projection_is_added_by_the_manifest_alone(backends: Backends) {
    let mut host = Host::start_on(backends, &manifest(&[DEFAULT]));

    post(
        &host,
        &json!({"customer": "c1", "type": "create", "name": "Ada"}),
    )
    .await
    .expect(200);
    post(
        &host,
        &json!({"customer": "c1", "type": "update", "age": 36}),
    )
    .await
    .expect(200);
    post(
        &host,
        &json!({"customer": "c2", "type": "create", "name": "Bo"}),
    )
    .await
    .expect(200);
    wait_for(&host, "/es/c2", |_| true).await;
    wait_for(&host, "/es/c1", |r| r["age"] == 36).await;
    // No activity projection yet: "activity" reads as a record id of `default`.
    host.get("/es/activity")
        .await
        .expect_error(404, "not_found");
    host.get("/es/activity/c1")
        .await
        .expect_error(404, "not_found");

    // The same component mounted once more with other rules, and named in the API's config.
    host.set_manifest(&manifest(&[DEFAULT, ACTIVITY]));
    host.restart();

    // It starts from the oldest retained change, so it sees the earlier events too.
    let c1 = wait_for(&host, "/es/activity/c1", |r| r["update"] == 1).await;
    assert_eq!(
        c1,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity", "update": 1})
    );
    let c2 = wait_for(&host, "/es/activity/c2", |_| true).await;
    assert_eq!(
        c2,
        json!({"customer": "c2", "create": 1, "aggregateName": "activity"})
    );
    // The default projection did not apply anything twice, and both see new events.
    post(
        &host,
        &json!({"customer": "c2", "type": "update", "name": "Bob"}),
    )
    .await
    .expect(200);
    wait_for(&host, "/es/activity/c2", |r| r["update"] == 1).await;
    let bob = wait_for(&host, "/es/c2", |r| r["name"] == "Bob").await;
    assert_eq!(
        bob,
        json!({"customer": "c2", "name": "Bob", "aggregateName": "default"})
    );
    assert_eq!(
        host.get("/es/c1").await.expect(200),
        json!({"customer": "c1", "name": "Ada", "aggregateName": "default", "age": 36})
    );
}

async fn lists_come_in_pages_of_ten_with_signed_keys(backends: Backends) {
    let host = Host::start_on(backends, &manifest(&[DEFAULT, ACTIVITY]));

    for i in 0..25 {
        post(
            &host,
            &json!({"customer": format!("c{i:02}"), "type": "create", "name": format!("N{i}")}),
        )
        .await
        .expect(200);
    }
    wait_for(&host, "/es/c24", |_| true).await;
    wait_for(&host, "/es/activity/c24", |_| true).await;

    for path in ["/es", "/es/activity"] {
        let pages = pages(&host, path).await;
        let sizes: Vec<usize> = pages.iter().map(|(records, _)| records.len()).collect();
        assert_eq!(sizes, [10, 10, 5], "{path}: {pages:?}");
        let keys: Vec<bool> = pages.iter().map(|(_, key)| key.is_some()).collect();
        assert_eq!(keys, [true, true, false], "{path}");
        let ids: Vec<&str> = pages
            .iter()
            .flat_map(|(records, _)| records)
            .map(|r| r["customer"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("c{i:02}")).collect();
        assert_eq!(ids, expected, "{path}");
    }

    let first = pages(&host, "/es").await;
    let key = first[0].1.clone().expect("a key after the first page");
    let after = get_after(&host, "/es", &key).await;
    assert_eq!(after.expect(200)[0]["customer"], "c10");

    // A changed key, a made-up one, or another projection's key: 400.
    let (payload, tag) = key.split_once('.').expect("payload.signature");
    let mut bytes = payload.as_bytes().to_vec();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{tag}", String::from_utf8(bytes).unwrap());
    let message = get_after(&host, "/es", &tampered)
        .await
        .expect_error(400, "bad_request");
    assert!(message.contains("ExclusiveStartKey"), "{message}");
    get_after(&host, "/es", "garbage")
        .await
        .expect_error(400, "bad_request");
    get_after(&host, "/es", &format!("{payload}."))
        .await
        .expect_error(400, "bad_request");
    let activity_key = pages(&host, "/es/activity").await[0]
        .1
        .clone()
        .expect("a key");
    get_after(&host, "/es", &activity_key)
        .await
        .expect_error(400, "bad_request");
    assert_eq!(
        get_after(&host, "/es/activity", &activity_key)
            .await
            .expect(200)[0]["customer"],
        "c10"
    );
}

/// The sum of the changes each host logged delivering to `component`.
fn delivered_to(hosts: &[Host], component: &str) -> u64 {
    hosts
        .iter()
        .flat_map(Host::logs)
        .filter(|l| l["message"] == "change batch" && l["component"] == component)
        .map(|l| l["delivered"].as_u64().expect("a count"))
        .sum()
}

/// Which of `hosts` read `component`'s shard of the events table.
fn readers_of(hosts: &[Host], component: &str) -> Vec<usize> {
    (0..hosts.len())
        .filter(|&i| {
            hosts[i]
                .logs()
                .iter()
                .any(|l| l["message"] == "reading a stream shard" && l["component"] == component)
        })
        .collect()
}

/// A projection added later reads the retained changes a batch at a time.
/// A hundred events of 350 KB would be 35 MB in one `handle-events` call,
/// past the component's 64 MiB once decoded, and the stream would stop at
/// that batch for good; the host hands a batch over in calls of at most
/// 6 MiB instead (Lambda's payload limit).
#[tokio::test]
async fn a_backlog_of_large_events_reaches_a_projection_added_later() {
    let mut host = Host::start(&manifest(&[DEFAULT]));
    let name = "x".repeat(350 * 1000);
    for wave in 0..15 {
        let posts = (0..10).map(|i| {
            let event = json!({"customer": format!("c{}", (wave * 10 + i) % 5), "type": "create", "name": name});
            let host = &host;
            async move { post(host, &event).await.expect(200) }
        });
        futures::future::join_all(posts).await;
    }
    post(&host, &json!({"customer": "last", "type": "create"}))
        .await
        .expect(200);
    wait_for(&host, "/es/last", |_| true).await;

    host.set_manifest(&manifest(&[DEFAULT, ACTIVITY]));
    host.restart();
    let last = wait_for(&host, "/es/activity/last", |_| true).await;
    assert_eq!(last["create"], 1, "{last}");
    let counted = wait_for(&host, "/es/activity/c0", |_| true).await;
    assert_eq!(counted["create"], 30, "{counted}");
    assert!(
        !host.stderr().contains("exceeded its memory limit"),
        "a batch outgrew the projection's memory"
    );
}

/// Three hosts on one set of tables, as three Lambda environments: the
/// events table's DynamoDB stream feeds each projection from one host at a
/// time, whichever host stored the event. The same eventId posted to all
/// three at once is stored once and applied once; every change is
/// delivered once; and when the host reading a projection's shard dies,
/// another takes it over from where it stopped.
#[tokio::test]
async fn three_hosts_store_and_project_each_event_once() {
    let first = Host::start_on(Backends::Aws, &manifest(&[DEFAULT, ACTIVITY]));
    let (second, third) = (first.peer(), first.peer());
    let mut hosts = [first, second, third];

    let posts = (0..12).map(|i| {
        let event = json!({"customer": "c1", "type": "create", "name": format!("N{i}"), "eventId": "dup-3"});
        let host = &hosts[i % 3];
        async move { post(host, &event).await.expect(200) }
    });
    let answers = futures::future::join_all(posts).await;
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    let pings = (0..30).map(|i| {
        let host = &hosts[i % 3];
        async move {
            post(host, &json!({"customer": "c1", "type": "ping"}))
                .await
                .expect(200)
        }
    });
    futures::future::join_all(pings).await;

    let counted = wait_for(&hosts[1], "/es/activity/c1", |r| r["ping"] == 30).await;
    assert_eq!(counted["create"], 1, "{counted}");
    wait_for(&hosts[2], "/es/c1", |_| true).await;
    // One create and thirty pings: 31 changes, each delivered to each projection once.
    for component in ["es-default", "es-activity"] {
        let readers = readers_of(&hosts, component);
        assert_eq!(readers.len(), 1, "{component} is read by hosts {readers:?}");
        assert_eq!(delivered_to(&hosts, component), 31, "{component}");
    }

    // The host reading the activity projection dies; another takes its shard over.
    let dead = readers_of(&hosts, "es-activity")[0];
    hosts[dead].kill();
    let alive: Vec<usize> = (0..3).filter(|&i| i != dead).collect();
    for i in 0..5 {
        post(
            &hosts[alive[i % 2]],
            &json!({"customer": "c1", "type": "ping"}),
        )
        .await
        .expect(200);
    }
    let counted = wait_for(&hosts[alive[0]], "/es/activity/c1", |r| r["ping"] == 35).await;
    assert_eq!(counted["create"], 1, "{counted}");
    let readers = readers_of(&hosts, "es-activity");
    assert_eq!(readers.len(), 2, "{readers:?}");
    // It started after the last change the dead host had handled.
    assert_eq!(delivered_to(&hosts, "es-activity"), 36);
    // Peers stop before the host that owns the database and tables.
    hosts.reverse();
}

/// On Lambda the host runs no change stream: the DynamoDB stream of the
/// events table delivers the changes, as records shaped as AWS sends them.
/// The record here is built from the stored item (key `key`, the event's
/// bytes in the binary `value`, which the POST answered verbatim).
#[test]
fn a_dynamodb_stream_event_through_the_lambda_edge_updates_the_projections() {
    let mut lambda = Lambda::start(&manifest(&[DEFAULT, ACTIVITY]));

    let event = json!({"customer": "c1", "type": "create", "name": "Ada", "eventId": "evt-1"});
    let answer = lambda.http("POST", "/es", Some(&event));
    let stored_text = answer["body"].as_str().expect("a text body").to_owned();
    assert_eq!(http_json(&answer, 200), event);
    // Nothing is projected until the stream delivers the change.
    assert_eq!(lambda.http("GET", "/es/c1", None)["statusCode"], 404);

    let record = |sequence: &str, name: &str, key: &str, new: Option<&str>, old: Option<&str>| {
        let image =
            |text: &str| json!({"key": {"S": key}, "value": {"B": base64(text.as_bytes())}});
        let mut change = json!({
            "ApproximateCreationDateTime": 1_764_072_000,
            "Keys": {"key": {"S": key}},
            "SequenceNumber": sequence,
            "SizeBytes": 120,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        });
        if let Some(new) = new {
            change["NewImage"] = image(new);
        }
        if let Some(old) = old {
            change["OldImage"] = image(old);
        }
        json!({
            "eventID": format!("{sequence:0>32}")[..32].to_owned(),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-11-25T00:00:00.000"
        })
    };
    let batch = json!({"Records": [record("4421584500000000017450439091", "INSERT", "evt-1", Some(&stored_text), None)]});
    assert_eq!(lambda.invoke(&batch), json!({"batchItemFailures": []}));
    let projected = http_json(&lambda.http("GET", "/es/c1", None), 200);
    assert_eq!(
        projected,
        json!({"customer": "c1", "name": "Ada", "aggregateName": "default"})
    );
    let counted = http_json(&lambda.http("GET", "/es/activity/c1", None), 200);
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity"})
    );

    // The platform delivers a batch again after a failure: applied once. A
    // REMOVE (TTL, or a delete) and an item that is not an event change nothing.
    let update =
        json!({"customer": "c1", "type": "update", "eventId": "evt-2", "age": 36}).to_string();
    let batch = json!({"Records": [
        record("4421584500000000017450439091", "INSERT", "evt-1", Some(&stored_text), None),
        record("4421584600000000017450439092", "INSERT", "evt-2", Some(&update), None),
        record("4421584700000000017450439093", "REMOVE", "evt-1", None, Some(&stored_text)),
        record("4421584800000000017450439094", "INSERT", "junk", Some("not json"), None),
    ]});
    assert_eq!(lambda.invoke(&batch), json!({"batchItemFailures": []}));
    let projected = http_json(&lambda.http("GET", "/es/c1", None), 200);
    assert_eq!(
        projected,
        json!({"customer": "c1", "name": "Ada", "aggregateName": "default", "age": 36})
    );
    let counted = http_json(&lambda.http("GET", "/es/activity/c1", None), 200);
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity", "update": 1})
    );
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The events' real stream: the function runs on PostgreSQL and DynamoDB
/// (moto), where the events store is a table with a stream; the records
/// are read from that stream as Lambda's event source mapping reads them
/// (tests/fixtures/dynamodb_stream_records.py) and sent to the function.
#[test]
fn real_dynamodb_stream_records_through_the_lambda_edge_update_the_projections() {
    let aws = common::aws::AwsResources::create();
    let mut lambda = Lambda::start_on(&manifest(&[DEFAULT, ACTIVITY]), Some(&aws));

    let create = json!({"customer": "c1", "type": "create", "name": "Ada", "eventId": "evt-1"});
    assert_eq!(
        http_json(&lambda.http("POST", "/es", Some(&create)), 200),
        create
    );
    let repeat = json!({"customer": "c1", "type": "create", "name": "Other", "eventId": "evt-1"});
    assert_eq!(
        http_json(&lambda.http("POST", "/es", Some(&repeat)), 200),
        create
    );
    let update = json!({"customer": "c1", "type": "update", "age": 36, "eventId": "evt-2"});
    assert_eq!(
        http_json(&lambda.http("POST", "/es", Some(&update)), 200),
        update
    );
    // On Lambda the host runs no change stream of its own.
    assert_eq!(lambda.http("GET", "/es/c1", None)["statusCode"], 404);

    let table = format!("{}events", aws.prefix);
    let output = std::process::Command::new("python3")
        .arg(common::paths::workspace_root().join("tests/fixtures/dynamodb_stream_records.py"))
        .args([&aws.moto_url, &table])
        .output()
        .expect("running python3");
    assert!(
        output.status.success(),
        "reading the stream failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let batch: Value = serde_json::from_slice(&output.stdout).expect("the stream records as JSON");
    // The repeated eventId was stored once: two INSERTs, keyed by eventId.
    let records = batch["Records"].as_array().expect("records");
    let seen: Vec<(&Value, &Value, &Value)> = records
        .iter()
        .map(|r| {
            (
                &r["eventName"],
                &r["eventSource"],
                &r["dynamodb"]["Keys"]["key"]["S"],
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (&json!("INSERT"), &json!("aws:dynamodb"), &json!("evt-1")),
            (&json!("INSERT"), &json!("aws:dynamodb"), &json!("evt-2"))
        ],
        "{batch}"
    );

    assert_eq!(lambda.invoke(&batch), json!({"batchItemFailures": []}));
    let projected = http_json(&lambda.http("GET", "/es/c1", None), 200);
    assert_eq!(
        projected,
        json!({"customer": "c1", "name": "Ada", "aggregateName": "default", "age": 36})
    );
    let counted = http_json(&lambda.http("GET", "/es/activity/c1", None), 200);
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity", "update": 1})
    );

    // Delivered again, as after a failed batch: nothing is applied twice.
    assert_eq!(lambda.invoke(&batch), json!({"batchItemFailures": []}));
    let counted = http_json(&lambda.http("GET", "/es/activity/c1", None), 200);
    assert_eq!(
        counted,
        json!({"customer": "c1", "create": 1, "aggregateName": "activity", "update": 1})
    );
    drop(lambda);
    aws.remove();
}
