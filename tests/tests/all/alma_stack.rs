//! The whole Alma caching loop, on both backend sets, against the fake Alma
//! of `common::alma`: `/alma` misses and queues the user, the refresh
//! component (components/alma-refresh) fills the cache from every page,
//! signed events posted to the webhook (components/alma-webhook) travel
//! through the events queue to the refresh component, and `/alma` answers
//! what they changed.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::alma::*;
use common::{Backends, Host, Reply, on_both_backends};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

on_both_backends! {
    the_webhook_checks_what_alma_sends,
    events_and_refreshes_keep_alma_answers_current,
}

const SECRET: &str = "webhook-secret";

/// `/alma` reading Alma a page of 2 at a time, the webhook at
/// `/alma-webhook`, four refresh consumers competing for the events queue
/// (so list edits race), and a testbed granted the stores and queues.
fn manifest(alma: &FakeAlma) -> String {
    let base_url = alma.base_url();
    let host = alma.addr.to_string();
    let values = [
        ("BASE_URL", base_url.as_str()),
        ("HOST", host.as_str()),
        ("API_KEY", API_KEY),
    ];
    let refresh = |name: &str| {
        let mut values = values.to_vec();
        values.push(("NAME", name));
        common::manifests::manifest_with("alma_stack_refresh", &values)
    };
    let mut values = values.to_vec();
    values.push(("SECRET", SECRET));
    common::manifests::manifest_with("alma_stack", &values)
        + &[
            "alma-refresh",
            "alma-refresh-b",
            "alma-refresh-c",
            "alma-refresh-d",
        ]
        .map(refresh)
        .concat()
}

/// An event time `seconds` from now, as Alma writes it: events describe
/// what happens after the user was first read.
fn at(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A webhook body as Alma sends it.
fn event(kind: &str, time: &str, item: Value) -> Value {
    let (action, field) = if kind.starts_with("LOAN") {
        ("LOAN", "item_loan")
    } else {
        ("REQUEST", "user_request")
    };
    let mut body = json!({
        "id": format!("{kind}-{time}"), "action": action, "institution": {"value": "44LAN_INST"},
        "time": time, "event": {"value": kind, "desc": kind.to_lowercase()},
    });
    body[field] = item;
    body
}

async fn post_event(host: &Host, body: &[u8], signature: Option<&str>) -> Reply {
    let mut request = host
        .client()
        .post(host.url("/alma-webhook"))
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Exl-Signature", signature);
    }
    host.send(request).await
}

async fn post_signed(host: &Host, event: &Value) {
    let body = event.to_string().into_bytes();
    let reply = post_event(host, &body, Some(&sign(&body))).await;
    assert_eq!(
        (reply.status, reply.text()),
        (200, "Data successfully published to topic".to_owned())
    );
}

async fn testbed(host: &Host, action: &str, body: Value) -> Value {
    host.json(Method::POST, &format!("/testbed/{action}"), None, &body)
        .await
        .expect(200)
}

/// The messages on `queue`, taken off it.
async fn drain(host: &Host, queue: &str) -> Vec<String> {
    let got = testbed(
        host,
        "queue",
        json!({"op": "receive", "queue": queue, "max": 10, "visibility": 300}),
    )
    .await;
    got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `holds` is true of `/alma/users/{user}/loans`, and returns it.
async fn loans_until(
    host: &Host,
    user: &str,
    what: &str,
    holds: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let loans = host
            .get(&format!("/alma/users/{user}/loans"))
            .await
            .expect(200);
        let loans = loans.as_array().unwrap().clone();
        if holds(&loans) {
            return loans;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the loans are {loans:?}; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many batches of the events queue the consumers finished, successful or not.
fn event_batches(host: &Host) -> usize {
    host.logs()
        .iter()
        .filter(|l| l["message"] == "event batch" && l["queue"] == "alma-events")
        .count()
}

/// The components that handled batches of the events queue.
fn host_logs_components(host: &Host) -> std::collections::BTreeSet<&'static str> {
    host.logs()
        .iter()
        .filter(|l| l["message"] == "event batch" && l["queue"] == "alma-events")
        .filter_map(|l| l["component"].as_str())
        .map(|c| &*c.to_owned().leak())
        .collect()
}

/// The loan ids, sorted.
fn sorted_ids(loans: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = loan_ids(loans).into_iter().map(str::to_owned).collect();
    ids.sort_unstable();
    ids
}

fn loan_ids(loans: &[Value]) -> Vec<&str> {
    loans
        .iter()
        .map(|l| l["loan_id"].as_str().unwrap())
        .collect()
}

async fn the_webhook_checks_what_alma_sends(backends: Backends) {
    let alma = FakeAlma::start(&[]);
    let host = Host::start_on(backends, &manifest(&alma));

    // Alma's challenge.
    let reply = host.get("/alma-webhook?challenge=abc%20d").await;
    assert_eq!(reply.expect(200), json!({"challenge": "abc d"}));
    assert_eq!(
        host.get("/alma-webhook").await.expect(400),
        json!({"error": {"message": "Missing challenge parameter"}})
    );

    let good = event(
        "LOAN_CREATED",
        "2026-01-05T10:00:00.000Z",
        loan("ada", "L1", "T", "2099-01-01T00:00:00Z"),
    );
    let body = good.to_string().into_bytes();
    let invalid = json!({"message": "An invalid message signature was sent"});
    // Missing, wrong, not base64, and signed by another secret: 401, nothing queued.
    assert_eq!(
        post_event(&host, &body, None).await.expect(401),
        json!({"message": "The message signature was not sent"})
    );
    let mut other = Hmac::<Sha256>::new_from_slice(b"another secret").unwrap();
    other.update(&body);
    let foreign = STANDARD.encode(other.finalize().into_bytes());
    let tampered = {
        let mut b = body.clone();
        b[2] ^= 1;
        sign(&b)
    };
    for signature in ["", "not base64!", foreign.as_str(), tampered.as_str()] {
        assert_eq!(
            post_event(&host, &body, Some(signature)).await.expect(401),
            invalid,
            "{signature:?}"
        );
    }
    // Signed, but not JSON, or not an event type the cache follows.
    assert_eq!(
        post_event(&host, b"{not json", Some(&sign(b"{not json")))
            .await
            .expect(400),
        json!({"message": "Event body is not valid JSON"})
    );
    let lost = event("LOAN_LOST", "2026-01-05T10:00:00Z", json!({}));
    let lost = lost.to_string().into_bytes();
    assert_eq!(
        post_event(&host, &lost, Some(&sign(&lost)))
            .await
            .expect(422),
        json!({"message": "Event type LOAN_LOST is not supported"})
    );
    // Larger than a queue message holds.
    let mut big = good.clone();
    big["padding"] = json!("x".repeat(300 * 1024));
    let big = big.to_string().into_bytes();
    let reply = post_event(&host, &big, Some(&sign(&big))).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(reply.json()["message"].is_string(), "{}", reply.text());
    assert_eq!(drain(&host, "alma-events-dlq").await, Vec::<String>::new());

    // The signed event is accepted and lands unchanged on the events queue
    // (the refresh consumes it: seen through its delivery log).
    let reply = post_event(&host, &body, Some(&sign(&body))).await;
    assert_eq!(
        (reply.status, reply.text()),
        (200, "Data successfully published to topic".to_owned())
    );
    let delivered = host
        .wait_for_log("delivering the event", |l| {
            l["message"] == "event batch" && l["queue"] == "alma-events" && l["delivered"] == 1
        })
        .await;
    assert_eq!(delivered["failed"], 0, "{delivered}");
    let refreshed: Vec<Value> = host
        .logs()
        .into_iter()
        .filter(|l| l["message"] == "event batch" && l["queue"] == "alma-events")
        .collect();
    assert_eq!(
        refreshed.len(),
        1,
        "only the accepted event was queued: {refreshed:?}"
    );
}

async fn events_and_refreshes_keep_alma_answers_current(backends: Backends) {
    let due = "2099-06-30T22:59:00Z";
    let ada = AlmaUser {
        loans: (1..=5)
            .map(|i| loan("ada", &format!("L{i}"), &format!("Loan {i}"), due))
            .collect(),
        requests: (1..=3)
            .map(|i| request("ada", &format!("R{i}"), &format!("Request {i}")))
            .collect(),
        fees: vec![fee("ada", "F1", 2.5)],
    };
    let alma = FakeAlma::start(&[("ada", ada.clone())]);
    let host = Host::start_on(backends, &manifest(&alma));
    let all_loans: Vec<Value> = ada.loans.iter().map(|l| kept(l, LOAN_FIELDS)).collect();

    // (1) A miss answers from Alma and queues the user.
    let body = host.get("/alma/users/ada").await.expect(200);
    assert_eq!(body["loans"], json!(all_loans));
    host.wait_for_log("the users queue delivering ada", |l| {
        l["message"] == "event batch" && l["queue"] == "users" && l["failed"] == 0
    })
    .await;

    // (2) The refresh fills the cache from every page (pages of 2: 3 of loans, 2 of requests).
    let deadline = Instant::now() + Duration::from_secs(30);
    let user = loop {
        let got = testbed(
            &host,
            "cache",
            json!({"op": "get", "store": "users", "key": "ada"}),
        )
        .await;
        if let Some(text) = got["value"].as_str() {
            break serde_json::from_str::<Value>(text).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "ada was never cached; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        user["loan_ids"],
        json!(["L1", "L2", "L3", "L4", "L5"]),
        "{user}"
    );
    assert_eq!(user["request_ids"], json!(["R1", "R2", "R3"]));
    assert_eq!(user["fee_ids"], json!(["F1"]));
    for offset in [0, 2, 4] {
        assert!(
            alma.hits().iter().any(
                |h| h.contains("/users/ada/loans?") && h.contains(&format!("offset={offset}&"))
            ),
            "loans page at {offset}: {:?}",
            alma.hits()
        );
    }

    // (3) The next read is served without Alma.
    alma.clear_hits();
    let body = host.get("/alma/users/ada").await.expect(200);
    assert_eq!(body["loans"], json!(all_loans));
    assert_eq!(
        body["requests"],
        json!(
            ada.requests
                .iter()
                .map(|r| kept(r, REQUEST_FIELDS))
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(body["fees"], json!([kept(&ada.fees[0], FEE_FIELDS)]));
    assert_eq!(alma.hits(), Vec::<String>::new());

    // (4) A new loan, its renewal and a return change what /alma answers.
    post_signed(
        &host,
        &event("LOAN_CREATED", &at(100), loan("ada", "L6", "Loan 6", due)),
    )
    .await;
    loans_until(&host, "ada", "the new loan", |l| {
        loan_ids(l).contains(&"L6")
    })
    .await;
    let renewed_due = "2099-09-30T22:59:00Z";
    post_signed(
        &host,
        &event(
            "LOAN_RENEWED",
            &at(200),
            loan("ada", "L6", "Loan 6", renewed_due),
        ),
    )
    .await;
    loans_until(&host, "ada", "the renewal", |l| {
        l.iter()
            .any(|x| x["loan_id"] == "L6" && x["due_date"] == renewed_due)
    })
    .await;
    post_signed(
        &host,
        &event("LOAN_RETURNED", &at(300), loan("ada", "L1", "Loan 1", due)),
    )
    .await;
    let loans = loans_until(&host, "ada", "the return", |l| !loan_ids(l).contains(&"L1")).await;
    assert_eq!(loan_ids(&loans), ["L2", "L3", "L4", "L5", "L6"]);
    assert_eq!(
        alma.hits(),
        Vec::<String>::new(),
        "events are applied without Alma"
    );

    // Requests likewise: one placed, one canceled.
    post_signed(
        &host,
        &event(
            "REQUEST_CREATED",
            &at(310),
            request("ada", "R4", "Request 4"),
        ),
    )
    .await;
    post_signed(
        &host,
        &event(
            "REQUEST_CANCELED",
            &at(320),
            request("ada", "R1", "Request 1"),
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let requests = host.get("/alma/users/ada/requests").await.expect(200);
        let ids: Vec<&str> = requests
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["request_id"].as_str().unwrap())
            .collect();
        if ids == ["R2", "R3", "R4"] {
            assert_eq!(
                requests[2],
                kept(&request("ada", "R4", "Request 4"), REQUEST_FIELDS)
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the requests are {ids:?}; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        alma.hits(),
        Vec::<String>::new(),
        "request events are applied without Alma"
    );

    // (5) A badly signed return changes nothing.
    let forged = event("LOAN_RETURNED", &at(400), loan("ada", "L2", "Loan 2", due)).to_string();
    let reply = post_event(&host, forged.as_bytes(), Some(&sign(b"something else"))).await;
    assert_eq!(
        reply.expect(401),
        json!({"message": "An invalid message signature was sent"})
    );

    // (6) Concurrent list edits for one user all survive (two consumers race on them).
    let posts = (7..=40).map(|i| {
        let host = &host;
        let created = event(
            "LOAN_CREATED",
            &at(500 + i),
            loan("ada", &format!("L{i}"), "New", due),
        );
        async move { post_signed(host, &created).await }
    });
    futures::future::join_all(posts).await;
    // Every event handled (3 before these), then the list holds every loan.
    let deadline = Instant::now() + Duration::from_secs(60);
    while event_batches(&host) < 3 + 34 {
        assert!(
            Instant::now() < deadline,
            "the events were not all handled; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // An event whose edit lost every compare-and-set retry fails and comes
    // back after its visibility timeout (1 s), so wait for its redelivery.
    let mut expected: Vec<String> = (2..=40).map(|i| format!("L{i}")).collect();
    expected.sort_unstable();
    let loans = loans_until(
        &host,
        "ada",
        "every concurrent list edit survives",
        |loans| sorted_ids(loans) == expected,
    )
    .await;
    assert_eq!(
        sorted_ids(&loans),
        expected,
        "every concurrent list edit survives"
    );
    let consumers: std::collections::BTreeSet<&str> = host_logs_components(&host);
    assert!(
        consumers.len() > 1,
        "the consumers shared the events: {consumers:?}"
    );

    // (7) A return, then a renewal from before it, arriving late: the loan stays gone.
    post_signed(
        &host,
        &event("LOAN_RETURNED", &at(700), loan("ada", "L3", "Loan 3", due)),
    )
    .await;
    loans_until(&host, "ada", "the return of L3", |l| {
        !loan_ids(l).contains(&"L3")
    })
    .await;
    post_signed(
        &host,
        &event(
            "LOAN_RENEWED",
            &at(650),
            loan("ada", "L3", "Loan 3", renewed_due),
        ),
    )
    .await;
    host.wait_for_log("the stale renewal ignored", |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("LOAN_RENEWED for loans 'L3'") && m.ends_with("ignored"))
    })
    .await;
    let loans = loans_until(&host, "ada", "after the stale renewal", |_| true).await;
    assert!(!loan_ids(&loans).contains(&"L3"), "{loans:?}");
    let user = testbed(
        &host,
        "cache",
        json!({"op": "get", "store": "users", "key": "ada"}),
    )
    .await;
    assert!(
        !user["value"].as_str().unwrap().contains("\"L3\""),
        "{user}"
    );
    // The badly signed return of (5) never arrived: L2 is still there.
    assert!(loan_ids(&loans).contains(&"L2"));

    // A signed event that carries a request where its type says loan fails alone,
    // ends in the dead-letter queue, and writes nothing.
    let mut mixed = event("LOAN_CREATED", &at(800), json!(null));
    mixed.as_object_mut().unwrap().remove("item_loan");
    mixed["user_request"] = request("ada", "R9", "Forged");
    post_signed(&host, &mixed).await;
    post_signed(
        &host,
        &event("LOAN_CREATED", &at(801), loan("ada", "L13", "After", due)),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let dead = drain(&host, "alma-events-dlq").await;
        if !dead.is_empty() {
            break dead;
        }
        assert!(
            Instant::now() < deadline,
            "nothing dead-lettered; the host logged:\n{}",
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead, [mixed.to_string()]);
    loans_until(&host, "ada", "the event after the bad one", |l| {
        loan_ids(l).contains(&"L13")
    })
    .await;
    let requests = host.get("/alma/users/ada/requests").await.expect(200);
    assert_eq!(requests.as_array().unwrap().len(), 3, "{requests}");
    let forged = testbed(
        &host,
        "cache",
        json!({"op": "get", "store": "loans", "key": "R9"}),
    )
    .await;
    assert_eq!(forged, json!({"value": null}));
}
