//! The Alma resolver (components/alma) against a fake Alma API served by the
//! test on loopback: the seven routes and their JSON shapes, the resolution
//! order over the cache stores, the users queue, paging, and Alma missing,
//! down, slow or not granted. A testbed component in the same manifest,
//! granted the same stores and queue, writes cache entries and reads the
//! queue. Every test runs on both backend sets.

use crate::common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::alma::*;
use common::{Backends, Host, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    a_cold_cache_reads_every_page_from_alma_and_queues_the_user_once,
    a_warm_cache_answers_every_route_without_alma,
    a_partial_cache_fetches_only_the_missing_items,
    a_failed_queue_send_is_logged_and_tried_again,
    expired_entries_are_read_again_from_alma,
    unknown_users_and_items_are_404,
    alma_down_is_502_and_cached_data_still_answers,
    alma_slow_is_504_within_the_budget,
    a_host_outside_the_grant_is_refused,
}

/// Ada: 3 loans, 2 requests, 1 fee.
fn ada() -> AlmaUser {
    AlmaUser {
        loans: (1..=3)
            .map(|i| {
                loan(
                    "ada",
                    &format!("L{i}"),
                    &format!("Loan {i}"),
                    "2099-06-30T22:59:00Z",
                )
            })
            .collect(),
        requests: (1..=2)
            .map(|i| request("ada", &format!("R{i}"), &format!("Request {i}")))
            .collect(),
        fees: vec![fee("ada", "F1", 2.5)],
    }
}

/// Bob: 205 loans (three Alma pages of at most 100), nothing else.
fn bob() -> AlmaUser {
    AlmaUser {
        loans: (0..205)
            .map(|i| {
                loan(
                    "bob",
                    &format!("BL{i:03}"),
                    &format!("Book {i}"),
                    "2099-01-01T00:00:00Z",
                )
            })
            .collect(),
        ..AlmaUser::default()
    }
}

// ---------------------------------------------------------------------------
// The host.

/// The resolver at `/alma` talking to `base_url`, granted `host`, with a
/// testbed granted the same stores and queue.
fn manifest(base_url: &str, host: &str, extra_config: &str) -> String {
    manifest_with_queue(base_url, host, "users", extra_config)
}

fn manifest_with_queue(
    base_url: &str,
    host: &str,
    users_queue: &str,
    extra_config: &str,
) -> String {
    common::manifests::manifest_with(
        "alma",
        &[
            ("BASE_URL", base_url),
            ("HOST", host),
            ("API_KEY", API_KEY),
            ("USERS_QUEUE", users_queue),
            ("EXTRA_CONFIG", extra_config),
        ],
    )
}

fn start(backends: Backends, alma: &FakeAlma) -> Host {
    Host::start_on(
        backends,
        &manifest(&alma.base_url(), &alma.addr.to_string(), ""),
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Stores `value` (JSON) under `key` in `store`, through the testbed.
async fn cache_set(host: &Host, store: &str, key: &str, value: &Value) {
    host.json(
        Method::POST,
        "/testbed/cache",
        None,
        &json!({"op": "set", "store": store, "key": key, "value": value.to_string()}),
    )
    .await
    .expect(200);
}

/// The bodies of the messages waiting on the users queue (taken off it).
async fn queued_users(host: &Host) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let reply = host
            .json(
                Method::POST,
                "/testbed/queue",
                None,
                &json!({"op": "receive", "queue": "users", "max": 10, "visibility": 300}),
            )
            .await
            .expect(200);
        let messages = reply["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            return bodies;
        }
        bodies.extend(
            messages
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned()),
        );
    }
}

/// A cached user record as the refresh service writes it.
fn cached_user(
    id: &str,
    loans: &[&str],
    requests: Option<&[&str]>,
    fees: Option<&[&str]>,
    expiry: i64,
) -> Value {
    let mut user = json!({"primary_id": id, "loan_ids": loans, "expiry_date": expiry});
    if let Some(r) = requests {
        user["request_ids"] = json!(r);
    }
    if let Some(f) = fees {
        user["fee_ids"] = json!(f);
    }
    user
}

/// `record` as a cache entry written at `at` (unix seconds): requests and
/// fees are valid for two weeks from then.
fn cached_at(mut record: Value, at: i64) -> Value {
    record["cached_at"] = json!(at);
    record
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// The tests.

async fn a_cold_cache_reads_every_page_from_alma_and_queues_the_user_once(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada()), ("bob", bob())]);
    let host = start(backends, &alma);

    let body = host.get("/alma/users/ada").await.expect(200);
    assert_eq!(
        keys(&body),
        ["primary_id", "loans", "requests", "fees"],
        "{body}"
    );
    assert_eq!(body["primary_id"], "ada");
    let expected_loans: Vec<Value> = ada().loans.iter().map(|l| kept(l, LOAN_FIELDS)).collect();
    assert_eq!(body["loans"], json!(expected_loans));
    let expected_requests: Vec<Value> = ada()
        .requests
        .iter()
        .map(|r| kept(r, REQUEST_FIELDS))
        .collect();
    assert_eq!(body["requests"], json!(expected_requests));
    assert_eq!(body["fees"], json!([kept(&ada().fees[0], FEE_FIELDS)]));
    // Dropped: Alma's extra fields; omitted: the kept fields Alma did not send.
    let first = &body["loans"][0];
    assert!(
        first.get("user_id").is_none()
            && first.get("library").is_none()
            && first.get("description").is_none(),
        "{first}"
    );
    assert_eq!(first["renewable"], true);
    assert_eq!(
        body["fees"][0]["type"],
        json!({"value": "OVERDUEFINE", "desc": "Overdue fine"})
    );

    // One list call per kind, with the key and format=json (the fake refuses anything else).
    let mut hits = alma.hits();
    hits.sort();
    assert_eq!(
        hits,
        [
            "/almaws/v1/users/ada/fees?limit=100&offset=0&format=json",
            "/almaws/v1/users/ada/loans?limit=100&offset=0&format=json",
            "/almaws/v1/users/ada/requests?limit=100&offset=0&format=json",
        ]
    );
    assert_eq!(queued_users(&host).await, ["ada"]);

    // Missing again while the refresh is pending: Alma again, but no second message.
    let loans = host.get("/alma/users/ada/loans").await.expect(200);
    assert_eq!(loans, json!(expected_loans));
    assert_eq!(alma.hits().len(), 4);
    assert_eq!(queued_users(&host).await, Vec::<String>::new());

    // A list longer than one page is read to its end: three pages of 100, 100 and 5.
    let before = alma.hits().len();
    let loans = host.get("/alma/users/bob/loans").await.expect(200);
    let ids: Vec<&str> = loans
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["loan_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..205).map(|i| format!("BL{i:03}")).collect();
    assert_eq!(ids, expected);
    let mut pages: Vec<String> = alma.hits()[before..].to_vec();
    pages.sort();
    assert_eq!(
        pages,
        [
            "/almaws/v1/users/bob/loans?limit=100&offset=0&format=json",
            "/almaws/v1/users/bob/loans?limit=100&offset=100&format=json",
            "/almaws/v1/users/bob/loans?limit=100&offset=200&format=json",
        ]
    );
    let bob_all = host.get("/alma/users/bob").await.expect(200);
    assert_eq!(bob_all["loans"].as_array().unwrap().len(), 205);
    assert_eq!(
        (bob_all["requests"].clone(), bob_all["fees"].clone()),
        (json!([]), json!([]))
    );
    assert_eq!(queued_users(&host).await, ["bob"]);
}

async fn a_warm_cache_answers_every_route_without_alma(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    let host = start(backends, &alma);
    let day = now() + 86_400;
    let data = ada();
    // No fee list in the cached user: a missing list is an empty one.
    cache_set(
        &host,
        "users",
        "ada",
        &cached_user("ada", &["L1", "L2"], Some(&["R2"]), None, day),
    )
    .await;
    cache_set(&host, "loans", "L1", &data.loans[0]).await;
    cache_set(&host, "loans", "L2", &data.loans[1]).await;
    cache_set(
        &host,
        "requests",
        "R2",
        &cached_at(data.requests[1].clone(), now()),
    )
    .await;
    cache_set(
        &host,
        "fees",
        "F1",
        &cached_at(data.fees[0].clone(), now() - 13 * 86_400),
    )
    .await;

    let body = host.get("/alma/users/ada").await.expect(200);
    let loans = json!([
        kept(&data.loans[0], LOAN_FIELDS),
        kept(&data.loans[1], LOAN_FIELDS)
    ]);
    let requests = json!([kept(&data.requests[1], REQUEST_FIELDS)]);
    assert_eq!(
        body,
        json!({"primary_id": "ada", "loans": loans, "requests": requests, "fees": []})
    );
    assert_eq!(host.get("/alma/users/ada/loans").await.expect(200), loans);
    assert_eq!(
        host.get("/alma/users/ada/requests").await.expect(200),
        requests
    );
    assert_eq!(
        host.get("/alma/users/ada/fees").await.expect(200),
        json!([])
    );
    assert_eq!(
        host.get("/alma/users/ada/loans/L2").await.expect(200),
        kept(&data.loans[1], LOAN_FIELDS)
    );
    // The cache's own `cached_at` is dropped; the request's `expiry_date` is Alma's.
    assert_eq!(
        host.get("/alma/users/ada/requests/R2").await.expect(200),
        kept(&data.requests[1], REQUEST_FIELDS)
    );
    assert_eq!(
        host.get("/alma/users/ada/fees/F1").await.expect(200),
        kept(&data.fees[0], FEE_FIELDS)
    );

    assert_eq!(
        alma.hits(),
        Vec::<String>::new(),
        "a warm cache called Alma"
    );
    assert_eq!(queued_users(&host).await, Vec::<String>::new());
}

async fn a_partial_cache_fetches_only_the_missing_items(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    // Five items to fetch, each answered slowly, at most two at a time.
    alma.set_delay(Duration::from_millis(150));
    let host = Host::start_on(
        backends,
        &manifest(
            &alma.base_url(),
            &alma.addr.to_string(),
            "concurrency = \"2\"",
        ),
    );
    let day = now() + 86_400;
    let data = ada();
    // L9 is in the cached user but no longer in Alma (returned since): left out.
    cache_set(
        &host,
        "users",
        "ada",
        &cached_user(
            "ada",
            &["L1", "L2", "L3", "L9"],
            Some(&["R1", "R2"]),
            Some(&["F1"]),
            day,
        ),
    )
    .await;
    cache_set(&host, "loans", "L2", &data.loans[1]).await;
    cache_set(
        &host,
        "requests",
        "R1",
        &cached_at(data.requests[0].clone(), now()),
    )
    .await;

    let body = host.get("/alma/users/ada").await.expect(200);
    let loans: Vec<Value> = data.loans.iter().map(|l| kept(l, LOAN_FIELDS)).collect();
    assert_eq!(body["loans"], json!(loans));
    assert_eq!(body["requests"].as_array().unwrap().len(), 2);
    assert_eq!(body["requests"][1], kept(&data.requests[1], REQUEST_FIELDS));
    assert_eq!(body["fees"], json!([kept(&data.fees[0], FEE_FIELDS)]));

    let mut hits = alma.hits();
    hits.sort();
    assert_eq!(
        hits,
        [
            "/almaws/v1/users/ada/fees/F1?format=json",
            "/almaws/v1/users/ada/loans/L1?format=json",
            "/almaws/v1/users/ada/loans/L3?format=json",
            "/almaws/v1/users/ada/loans/L9?format=json",
            "/almaws/v1/users/ada/requests/R2?format=json",
        ]
    );
    assert_eq!(
        alma.max_in_flight(),
        2,
        "the item fetches did not overlap, or exceeded the bound"
    );
    // The user was cached: nothing queued.
    assert_eq!(queued_users(&host).await, Vec::<String>::new());
}

async fn a_failed_queue_send_is_logged_and_tried_again(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    // The configured queue is not granted, so every send fails.
    let host = Host::start_on(
        backends,
        &manifest_with_queue(&alma.base_url(), &alma.addr.to_string(), "refresh", ""),
    );
    for attempt in 1..=2 {
        let reply = host.get("/alma/users/ada/fees").await;
        assert_eq!(reply.expect(200), json!([kept(&ada().fees[0], FEE_FIELDS)]));
        let id = reply.request_id().unwrap().to_owned();
        let line = host
            .wait_for_log("about the failed send", |l| {
                l["request_id"] == id.as_str()
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("cannot queue user 'ada'"))
            })
            .await;
        assert_eq!(
            (line["level"].as_str(), line["component"].as_str()),
            (Some("ERROR"), Some("alma")),
            "attempt {attempt}: {line}"
        );
    }
}

async fn expired_entries_are_read_again_from_alma(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    let host = start(backends, &alma);
    let past = now() - 60;
    let data = ada();
    // An expired user: a miss, so the lists come from Alma and the user is queued.
    cache_set(
        &host,
        "users",
        "ada",
        &cached_user("ada", &["L1"], Some(&[]), Some(&[]), past),
    )
    .await;
    // A loan past its due date and a fee cached over two weeks ago, each stale.
    let mut stale_loan = loan("ada", "L1", "Stale title", "2020-01-01T00:00:00Z");
    stale_loan["due_date"] = json!("2020-01-01T00:00:00Z");
    cache_set(&host, "loans", "L1", &stale_loan).await;
    let mut stale_fee = cached_at(data.fees[0].clone(), now() - 15 * 86_400);
    stale_fee["balance"] = json!(99.0);
    cache_set(&host, "fees", "F1", &stale_fee).await;

    let body = host.get("/alma/users/ada").await.expect(200);
    assert_eq!(body["loans"].as_array().unwrap().len(), 3);
    assert_eq!(body["loans"][0]["title"], "Loan 1");
    assert_eq!(body["fees"][0]["balance"], 2.5);
    assert_eq!(alma.hits().len(), 3);
    assert_eq!(queued_users(&host).await, ["ada"]);

    assert_eq!(
        host.get("/alma/users/ada/loans/L1").await.expect(200)["title"],
        "Loan 1"
    );
    assert_eq!(
        host.get("/alma/users/ada/fees/F1").await.expect(200)["balance"],
        2.5
    );
    assert!(
        alma.hits()[3..]
            .iter()
            .all(|h| h.contains("/loans/L1?") || h.contains("/fees/F1?")),
        "{:?}",
        alma.hits()
    );
    assert_eq!(alma.hits().len(), 5);
}

async fn unknown_users_and_items_are_404(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    let host = start(backends, &alma);
    for path in [
        "/alma/users/nobody",
        "/alma/users/nobody/loans",
        "/alma/users/nobody/requests",
        "/alma/users/nobody/fees",
    ] {
        let message = host.get(path).await.expect_error(404, "not_found");
        assert!(message.contains("nobody"), "{path}: {message}");
    }
    for path in [
        "/alma/users/ada/loans/L404",
        "/alma/users/ada/requests/R404",
        "/alma/users/ada/fees/F404",
        "/alma/users/nobody/fees/F1",
    ] {
        host.get(path).await.expect_error(404, "not_found");
    }
    // Ids that need encoding reach Alma encoded, and are still just unknown.
    host.get("/alma/users/no%20body%3F/loans")
        .await
        .expect_error(404, "not_found");
    assert!(
        alma.hits()
            .iter()
            .any(|h| h.starts_with("/almaws/v1/users/no%20body%3F/loans?")),
        "{:?}",
        alma.hits()
    );
    // Routes the resolver does not serve.
    host.get("/alma/users/ada/books")
        .await
        .expect_error(404, "not_found");
    // Unknown ids are never queued for a refresh.
    assert_eq!(queued_users(&host).await, Vec::<String>::new());
}

async fn alma_down_is_502_and_cached_data_still_answers(backends: Backends) {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = Host::start_on(
        backends,
        &manifest(
            &format!("http://{closed}/almaws/v1"),
            &closed.to_string(),
            "",
        ),
    );
    let message = host
        .get("/alma/users/ada")
        .await
        .expect_error(502, "bad_gateway");
    assert!(message.contains(&closed.to_string()), "{message}");
    host.get("/alma/users/ada/fees/F1")
        .await
        .expect_error(502, "bad_gateway");

    let day = now() + 86_400;
    cache_set(
        &host,
        "users",
        "ada",
        &cached_user("ada", &["L1"], None, None, day),
    )
    .await;
    cache_set(&host, "loans", "L1", &ada().loans[0]).await;
    let body = host.get("/alma/users/ada").await.expect(200);
    assert_eq!(body["loans"], json!([kept(&ada().loans[0], LOAN_FIELDS)]));
    // A cached user whose item is not cached needs Alma.
    cache_set(
        &host,
        "users",
        "cyd",
        &cached_user("cyd", &["L7"], None, None, day),
    )
    .await;
    host.get("/alma/users/cyd/loans")
        .await
        .expect_error(502, "bad_gateway");
}

async fn alma_slow_is_504_within_the_budget(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    alma.set_delay(Duration::from_secs(20));
    let host = start(backends, &alma);
    for path in ["/alma/users/ada", "/alma/users/ada/loans/L1"] {
        let started = Instant::now();
        let message = host.get(path).await.expect_error(504, "gateway_timeout");
        // The budget is 1.5 s; the component's own limit (5 s) is never reached.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            started.elapsed()
        );
        assert!(message.contains("in time"), "{message}");
    }
}

async fn a_host_outside_the_grant_is_refused(backends: Backends) {
    let alma = FakeAlma::start(&[("ada", ada())]);
    // Granted another port of the same address only.
    let other = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = Host::start_on(
        backends,
        &manifest(&alma.base_url(), &other.to_string(), ""),
    );
    let reply = host.get("/alma/users/ada").await;
    let message = reply.expect_error(500, "not_granted");
    assert!(message.contains(&alma.addr.to_string()), "{message}");
    let id = reply.request_id().unwrap().to_owned();
    let line = host
        .wait_for_log("refusing the host", |l| {
            l["message"] == "refused a call outside the component's grants"
                && l["request_id"] == id.as_str()
        })
        .await;
    assert_eq!(
        (line["component"].as_str(), line["kind"].as_str()),
        (Some("alma"), Some("host")),
        "{line}"
    );
    assert_eq!(line["name"], alma.addr.to_string(), "{line}");
    assert_eq!(
        alma.hits(),
        Vec::<String>::new(),
        "a refused request reached Alma"
    );

    // HTTPS is granted by a bare host name, plain HTTP is not (loopback aside).
    let https_only = Host::start_on(
        backends,
        &manifest(
            "http://localhost.example:80/almaws/v1",
            "localhost.example",
            "",
        ),
    );
    https_only
        .get("/alma/users/ada")
        .await
        .expect_error(500, "not_granted");
}
