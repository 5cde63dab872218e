//! The crud component serving the example manifest's students resource,
//! through the real binary: what a REST client sees and what is stored.
//! Every test runs on both backend sets (`<test>::embedded`, `<test>::aws`),
//! and one compares the two answer for answer.

use crate::common;

use std::collections::BTreeSet;

use common::manifests::manifest;
use common::text::{enc, is_timestamp, is_uuid};
use common::tokens::foreign_token;
use common::{Backends, Host, Reply, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const AUDIT: [&str; 5] = [
    "uid",
    "created_at",
    "last_updated_at",
    "creator_uid",
    "last_updater_uid",
];

fn student(n: usize, major: &str) -> Value {
    json!({ "name": format!("Student {n}"), "email": format!("s{n}@example.org"), "major": major, "year": n })
}

async fn create(host: &Host, token: &str, body: &Value) -> Value {
    host.json(Method::POST, "/students", Some(token), body)
        .await
        .expect(201)
}

fn uid(record: &Value) -> &str {
    record["uid"]
        .as_str()
        .unwrap_or_else(|| panic!("a record without a uid: {record}"))
}

/// Every page of `GET /students?<query>` (with `limit`), following `next`.
async fn pages(host: &Host, query: &str, limit: u32) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/students?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(cursor) = &after {
            path.push_str(&format!("&after={}", enc(cursor)));
        }
        let page = host.get(&path).await.expect(200);
        let items = page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items array: {page}"))
            .clone();
        out.push(items);
        assert!(out.len() <= 100, "paging does not end");
        match &page["next"] {
            Value::Null => return out,
            Value::String(next) => after = Some(next.clone()),
            other => panic!("next is neither null nor a string: {other}"),
        }
    }
}

fn uids(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| uid(r).to_owned()).collect()
}

on_both_backends! {
    lifecycle_create_read_list_patch_delete,
    audit_fields_cannot_be_forged,
    bad_bodies_are_refused,
    body_limit_is_enforced_at_the_boundary,
    an_oversized_body_is_answered_like_any_other_request,
    routing_errors,
    callers_are_authenticated_and_grouped,
    list_filters_cursors_and_bulk_delete,
    errors_carry_the_request_id,
    records_survive_a_restart,
    pyverless_shapes_keep_its_clients_working,
}

async fn lifecycle_create_read_list_patch_delete(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let bob = host.token("bob", &[]);

    // Create.
    let body =
        json!({ "name": "Ada Lovelace", "email": "ada@example.org", "major": "math", "year": 2 });
    let reply = host
        .json(Method::POST, "/students", Some(&alice), &body)
        .await;
    let created = reply.expect(201);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{reply}"
    );
    let id = uid(&created).to_owned();
    assert!(is_uuid(&id), "uid is not a UUID: {created}");
    assert_eq!(
        &id[14..15],
        "7",
        "uid is not a time-ordered (v7) UUID: {created}"
    );
    assert!(
        is_timestamp(created["created_at"].as_str().unwrap_or_default()),
        "{created}"
    );
    assert_eq!(
        created["last_updated_at"], created["created_at"],
        "{created}"
    );
    assert_eq!(created["creator_uid"], "alice");
    assert_eq!(created["last_updater_uid"], "alice");
    for (k, v) in body.as_object().unwrap() {
        assert_eq!(&created[k], v, "field {k}: {created}");
    }
    let keys: BTreeSet<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = AUDIT
        .into_iter()
        .chain(["name", "email", "major", "year"])
        .collect();
    assert_eq!(keys, expected, "{created}");
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("no location header: {reply}"));
    assert!(
        location.ends_with(&format!("/students/{id}")),
        "location {location:?} does not name the record {id}"
    );

    // Read it back, anonymously (the item GET is public).
    let fetched = host.get(&format!("/students/{id}")).await.expect(200);
    assert_eq!(fetched, created);

    // Four more, then page through all five two at a time.
    let mut order = vec![id.clone()];
    for n in 2..=5 {
        order.push(uid(&create(&host, &alice, &student(n, "history")).await).to_owned());
    }
    let pages = pages(&host, "", 2).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1], "page sizes");
    let listed = uids(&pages.concat());
    assert_eq!(
        listed, order,
        "pages list every record once, in creation order"
    );
    let all = host.get("/students").await.expect(200);
    assert_eq!(uids(all["items"].as_array().unwrap()), order, "{all}");
    assert_eq!(all["next"], Value::Null, "{all}");
    assert_eq!(
        all["items"][0], created,
        "a listed record equals the stored one"
    );

    // Patch by another caller; the timestamps have millisecond resolution.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let patched = host
        .json(
            Method::PATCH,
            &format!("/students/{id}"),
            Some(&bob),
            &json!({ "major": "physics" }),
        )
        .await
        .expect(200);
    assert_eq!(patched["major"], "physics");
    assert_eq!(patched["name"], "Ada Lovelace", "other fields are kept");
    assert_eq!(patched["year"], 2);
    assert_eq!(patched["uid"], id.as_str());
    assert_eq!(patched["creator_uid"], "alice");
    assert_eq!(patched["last_updater_uid"], "bob");
    assert_eq!(patched["created_at"], created["created_at"]);
    let (before, after) = (
        created["last_updated_at"].as_str().unwrap(),
        patched["last_updated_at"].as_str().unwrap(),
    );
    assert!(is_timestamp(after), "{patched}");
    assert!(
        after > before,
        "last_updated_at did not move forward: {before} -> {after}"
    );
    assert_eq!(
        host.get(&format!("/students/{id}")).await.expect(200),
        patched,
        "the patch is stored"
    );

    // Delete.
    let gone = host
        .call(Method::DELETE, &format!("/students/{id}"), Some(&alice))
        .await;
    assert_eq!(gone.status, 204, "{gone}");
    assert!(gone.body.is_empty(), "a 204 with a body: {gone}");
    host.get(&format!("/students/{id}"))
        .await
        .expect_error(404, "not_found");
    host.call(Method::DELETE, &format!("/students/{id}"), Some(&alice))
        .await
        .expect_error(404, "not_found");
    host.json(
        Method::PATCH,
        &format!("/students/{id}"),
        Some(&bob),
        &json!({ "major": "art" }),
    )
    .await
    .expect_error(404, "not_found");
    let rest = host.get("/students").await.expect(200);
    assert_eq!(
        uids(rest["items"].as_array().unwrap()),
        order[1..],
        "{rest}"
    );
}

async fn audit_fields_cannot_be_forged(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let bob = host.token("bob", &[]);
    let forged_uid = "01890000-0000-7000-8000-000000000001";
    let old = "2000-01-01T00:00:00.000Z";

    let created = create(
        &host,
        &alice,
        &json!({
            "name": "Mallory", "email": "m@example.org",
            "uid": forged_uid, "creator_uid": "mallory", "last_updater_uid": "mallory",
            "created_at": old, "last_updated_at": old,
        }),
    )
    .await;
    let id = uid(&created).to_owned();
    assert!(
        is_uuid(&id) && id != forged_uid,
        "the sent uid was used: {created}"
    );
    assert_eq!(created["creator_uid"], "alice");
    assert_eq!(created["last_updater_uid"], "alice");
    assert_ne!(created["created_at"], old);
    assert_ne!(created["last_updated_at"], old);
    host.get(&format!("/students/{forged_uid}"))
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        host.get(&format!("/students/{id}")).await.expect(200),
        created,
        "what is stored is the host's stamp"
    );

    let patched = host
        .json(
            Method::PATCH,
            &format!("/students/{id}"),
            Some(&bob),
            &json!({ "name": "Mallory B.", "creator_uid": "mallory", "created_at": old, "uid": forged_uid }),
        )
        .await
        .expect(200);
    assert_eq!(patched["name"], "Mallory B.");
    assert_eq!(patched["uid"], id.as_str());
    assert_eq!(patched["creator_uid"], "alice");
    assert_eq!(patched["last_updater_uid"], "bob");
    assert_eq!(patched["created_at"], created["created_at"]);

    // A patch made only of audit fields changes nothing.
    host.json(
        Method::PATCH,
        &format!("/students/{id}"),
        Some(&bob),
        &json!({ "creator_uid": "mallory" }),
    )
    .await
    .expect_error(400, "bad_request");
    let stored = host.get(&format!("/students/{id}")).await.expect(200);
    assert_eq!(stored, patched, "the stored record is the host's");
}

async fn bad_bodies_are_refused(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let post = |body: &'static str, content_type: &'static str| {
        host.client()
            .post(host.url("/students"))
            .bearer_auth(&alice)
            .header("content-type", content_type)
            .body(body)
    };

    // A body that says it is JSON is checked by the host before the component runs.
    let reply = host
        .send(post(r#"{"name": "Ada", "#, "application/json"))
        .await;
    let message = reply.expect_error(400, "bad_request");
    assert!(
        message.contains("not valid JSON"),
        "not the host's JSON check: {message}"
    );
    let reply = host
        .send(post(r#"{"name": "#, "application/merge-patch+json"))
        .await;
    reply.expect_error(400, "bad_request");

    // Without a JSON content type the component parses it.
    let reply = host
        .send(post(
            "name=Ada&email=a@example.org",
            "application/x-www-form-urlencoded",
        ))
        .await;
    assert_eq!(reply.expect_error(400, "bad_request"), "Malformed body");
    let reply = host
        .send(
            host.client()
                .post(host.url("/students"))
                .bearer_auth(&alice),
        )
        .await;
    assert_eq!(
        reply.expect_error(400, "bad_request"),
        "Malformed body",
        "an empty body"
    );

    let cases = [
        (json!({ "major": "math" }), "Missing key(s): name, email"),
        (json!({ "email": "a@example.org" }), "Missing key(s): name"),
        (
            json!({ "name": "Ada", "email": null }),
            "Missing key(s): email",
        ),
        (
            json!({ "name": "Ada", "email": "a@example.org", "nickname": "A", "age": 3 }),
            "Unknown key(s): age, nickname",
        ),
        (
            json!(["Ada", "a@example.org"]),
            "The body must be a JSON object",
        ),
    ];
    for (body, expected) in cases {
        let reply = host
            .json(Method::POST, "/students", Some(&alice), &body)
            .await;
        assert_eq!(
            reply.expect_error(400, "bad_request"),
            expected,
            "body {body}"
        );
    }

    let created = create(&host, &alice, &student(1, "math")).await;
    let item = format!("/students/{}", uid(&created));
    let reply = host
        .json(Method::PATCH, &item, Some(&alice), &json!({ "name": null }))
        .await;
    assert_eq!(
        reply.expect_error(400, "bad_request"),
        "Required key(s) cannot be null: name"
    );
    let reply = host
        .json(
            Method::PATCH,
            &item,
            Some(&alice),
            &json!({ "shoe_size": 42 }),
        )
        .await;
    assert_eq!(
        reply.expect_error(400, "bad_request"),
        "Unknown key(s): shoe_size"
    );

    // A null optional key removes the field.
    let patched = host
        .json(
            Method::PATCH,
            &item,
            Some(&alice),
            &json!({ "major": null }),
        )
        .await
        .expect(200);
    assert!(
        patched.get("major").is_none(),
        "major was not removed: {patched}"
    );

    // Nothing but the one valid record was stored.
    let all = host.get("/students").await.expect(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
}

async fn body_limit_is_enforced_at_the_boundary(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let frame = r#"{"name":"","email":"a@example.org"}"#;
    let body_of = |len: usize| {
        let text = format!(
            r#"{{"name":"{}","email":"a@example.org"}}"#,
            "x".repeat(len - frame.len())
        );
        assert_eq!(text.len(), len);
        text
    };
    let post = |text: String| {
        host.client()
            .post(host.url("/students"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(text)
    };

    let at_limit = host.send(post(body_of(1024))).await.expect(201);
    assert_eq!(at_limit["name"].as_str().unwrap().len(), 1024 - frame.len());
    let over = host.send(post(body_of(1025))).await;
    let message = over.expect_error(413, "payload_too_large");
    assert!(
        message.contains("1024"),
        "the message does not state the limit: {message}"
    );
    host.send(post(body_of(16 * 1024)))
        .await
        .expect_error(413, "payload_too_large");

    let all = host.get("/students").await.expect(200);
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        1,
        "only the body within the limit was stored: {all}"
    );
}

async fn an_oversized_body_is_answered_like_any_other_request(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let reply = host
        .send(
            host.client()
                .post(host.url("/students"))
                .bearer_auth(&alice)
                .header("x-request-id", "too-big-1")
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"name":"{}","email":"a@example.org"}}"#,
                    "x".repeat(2048)
                )),
        )
        .await;
    reply.expect_error(413, "payload_too_large");
    let mut wrong = Vec::new();
    if reply.request_id() != Some("too-big-1") {
        wrong.push(format!(
            "the client's x-request-id was replaced by {:?}",
            reply.request_id().unwrap_or_default()
        ));
    }
    // Like every request, it gets one access-log line with its status.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let logged = loop {
        let found = host
            .logs()
            .into_iter()
            .any(|l| l["message"] == "request" && l["status"] == 413);
        if found || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    if !logged {
        wrong.push("no access-log line (message \"request\", status 413) was written".into());
    }
    assert!(
        wrong.is_empty(),
        "a 413 is answered unlike other requests:\n  {}\n{reply}",
        wrong.join("\n  ")
    );
}

async fn routing_errors(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);

    let message = host.get("/nope").await.expect_error(404, "not_found");
    assert!(message.contains("/nope"), "{message}");
    host.get("/students/some-id/extra")
        .await
        .expect_error(404, "not_found");

    let methods = |reply: &Reply| -> BTreeSet<String> {
        let allow = reply
            .header("allow")
            .unwrap_or_else(|| panic!("no allow header: {reply}"));
        allow.split(',').map(|m| m.trim().to_owned()).collect()
    };
    let reply = host
        .json(Method::PUT, "/students", Some(&alice), &student(1, "math"))
        .await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(
        methods(&reply),
        BTreeSet::from(["DELETE".into(), "GET".into(), "POST".into()]),
        "{reply}"
    );
    let reply = host
        .call(Method::PUT, "/students/some-id", Some(&alice))
        .await;
    reply.expect_error(405, "method_not_allowed");
    assert_eq!(
        methods(&reply),
        BTreeSet::from(["DELETE".into(), "GET".into(), "PATCH".into()]),
        "{reply}"
    );

    // A trailing slash names the same route.
    host.get("/students/").await.expect(200);
}

async fn callers_are_authenticated_and_grouped(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let body = student(1, "math");

    let message = host
        .json(Method::POST, "/students", None, &body)
        .await
        .expect_error(401, "unauthorized");
    assert!(!message.is_empty());
    let garbage = host
        .send(
            host.client()
                .post(host.url("/students"))
                .bearer_auth("not-a-token")
                .json(&body),
        )
        .await;
    garbage.expect_error(401, "unauthorized");
    let forged = host
        .json(
            Method::POST,
            "/students",
            Some(&foreign_token("alice")),
            &body,
        )
        .await;
    forged.expect_error(401, "unauthorized");
    let basic = host
        .send(
            host.client()
                .post(host.url("/students"))
                .header("authorization", "Basic YWxpY2U6cHc=")
                .json(&body),
        )
        .await;
    basic.expect_error(401, "unauthorized");
    // On a public route a bad token is no caller: the read is anonymous.
    let anonymous = host
        .get_as("/students", &foreign_token("alice"))
        .await
        .expect(200);
    assert_eq!(anonymous["items"], json!([]), "{anonymous}");
    let all = host.get("/students").await.expect(200);
    assert_eq!(
        all["items"],
        json!([]),
        "a refused caller stored something: {all}"
    );

    // The bulk delete needs the advisors group.
    let alice = host.token("alice", &[]);
    let advisor = host.token("carol", &["staff", "advisors"]);
    create(&host, &alice, &body).await;
    let reply = host
        .call(Method::DELETE, "/students?major=math", Some(&alice))
        .await;
    let message = reply.expect_error(403, "forbidden");
    assert!(message.contains("advisors"), "{message}");
    host.call(Method::DELETE, "/students?major=math", None)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(
        host.get("/students").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a forbidden delete deleted"
    );
    let done = host
        .call(Method::DELETE, "/students?major=math", Some(&advisor))
        .await
        .expect(200);
    assert_eq!(done, json!({ "deleted": 1 }));
}

async fn list_filters_cursors_and_bulk_delete(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let bob = host.token("bob", &[]);
    let advisor = host.token("carol", &["advisors"]);
    let mut math = Vec::new();
    let mut history = Vec::new();
    for n in 1..=6 {
        let (token, major) = if n % 2 == 0 {
            (&bob, "history")
        } else {
            (&alice, "math")
        };
        let record = create(&host, token, &student(n, major)).await;
        if major == "math" {
            math.push(uid(&record).to_owned())
        } else {
            history.push(uid(&record).to_owned())
        }
    }

    let only_math = pages(&host, "major=math", 2).await;
    assert_eq!(uids(&only_math.concat()), math, "?major=math");
    assert_eq!(only_math.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
    let year = host.get("/students?year=4").await.expect(200);
    assert_eq!(
        uids(year["items"].as_array().unwrap()),
        [history[1].clone()],
        "a numeric filter: {year}"
    );
    let by_bob = host.get("/students?creator_uid=bob").await.expect(200);
    assert_eq!(
        uids(by_bob["items"].as_array().unwrap()),
        history,
        "an audit-field filter: {by_bob}"
    );
    let both = host.get("/students?major=math&year=3").await.expect(200);
    assert_eq!(
        uids(both["items"].as_array().unwrap()),
        [math[1].clone()],
        "two filters: {both}"
    );
    let none = host
        .get(&format!("/students?name={}", enc("Nobody")))
        .await
        .expect(200);
    assert_eq!(none, json!({ "items": [], "next": null }));
    let spaced = host
        .get(&format!("/students?name={}", enc("Student 5")))
        .await
        .expect(200);
    assert_eq!(
        uids(spaced["items"].as_array().unwrap()),
        [math[2].clone()],
        "a decoded query value: {spaced}"
    );

    host.get("/students?after=not-a-cursor")
        .await
        .expect_error(400, "bad_request");
    // A cursor is the uid of the last record seen: a page starts after it.
    let after = host
        .get(&format!("/students?after={}", history[0]))
        .await
        .expect(200);
    assert_eq!(
        uids(after["items"].as_array().unwrap()),
        [math[1].as_str(), &history[1], &math[2], &history[2]],
        "{after}"
    );
    host.get("/students?limit=0")
        .await
        .expect_error(400, "bad_request");
    host.get("/students?limit=101")
        .await
        .expect_error(400, "bad_request");
    host.get("/students?limit=two")
        .await
        .expect_error(400, "bad_request");
    let message = host
        .get("/students?colour=red")
        .await
        .expect_error(400, "bad_request");
    assert_eq!(message, "Unknown query parameter(s): colour");

    let message = host
        .call(Method::DELETE, "/students", Some(&advisor))
        .await
        .expect_error(400, "bad_request");
    assert!(message.contains("filter"), "{message}");
    let deleted = host
        .call(Method::DELETE, "/students?major=math", Some(&advisor))
        .await
        .expect(200);
    assert_eq!(deleted, json!({ "deleted": 3 }));
    for id in &math {
        host.get(&format!("/students/{id}"))
            .await
            .expect_error(404, "not_found");
    }
    let left = host.get("/students").await.expect(200);
    assert_eq!(
        uids(left["items"].as_array().unwrap()),
        history,
        "only the matching records were deleted: {left}"
    );
    let again = host
        .call(Method::DELETE, "/students?major=math", Some(&advisor))
        .await
        .expect(200);
    assert_eq!(again, json!({ "deleted": 0 }));
}

async fn errors_carry_the_request_id(backends: Backends) {
    let host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);

    // Errors from the router, the auth check, the host's JSON check and the component.
    let errors = [
        host.get("/nope").await,
        host.call(Method::PUT, "/students", None).await,
        host.json(Method::POST, "/students", None, &student(1, "math"))
            .await,
        host.send(
            host.client()
                .post(host.url("/students"))
                .bearer_auth(&alice)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await,
        host.json(Method::POST, "/students", Some(&alice), &json!({}))
            .await,
        host.get("/students/0189aaaa-0000-7000-8000-000000000000")
            .await,
    ];
    let mut seen = BTreeSet::new();
    for (reply, (status, code)) in errors.iter().zip([
        (404, "not_found"),
        (405, "method_not_allowed"),
        (401, "unauthorized"),
        (400, "bad_request"),
        (400, "bad_request"),
        (404, "not_found"),
    ]) {
        reply.expect_error(status, code);
        assert!(
            seen.insert(reply.request_id().unwrap().to_owned()),
            "a request id was reused: {reply}"
        );
    }

    // A valid client id is used as is, on errors and successes, and logged.
    let sent = host
        .send(
            host.client()
                .get(host.url("/nope"))
                .header("x-request-id", "client-req_42"),
        )
        .await;
    sent.expect_error(404, "not_found");
    assert_eq!(sent.request_id(), Some("client-req_42"));
    let ok = host
        .send(
            host.client()
                .get(host.url("/students"))
                .header("x-request-id", "client-req_43"),
        )
        .await;
    assert_eq!(ok.status, 200, "{ok}");
    assert_eq!(ok.request_id(), Some("client-req_43"));
    let line = host
        .wait_for_log("for request client-req_43", |l| {
            l["message"] == "request" && l["request_id"] == "client-req_43"
        })
        .await;
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["path"], "/students", "{line}");

    // An id that is not safe to echo is replaced.
    for bad in ["has spaces", &"x".repeat(129), "semi;colon"] {
        let reply = host
            .send(
                host.client()
                    .get(host.url("/nope"))
                    .header("x-request-id", bad),
            )
            .await;
        reply.expect_error(404, "not_found");
        let id = reply.request_id().unwrap();
        assert_ne!(id, bad);
        assert!(
            is_uuid(id),
            "a replaced request id is not a fresh UUID: {id}"
        );
    }
}

async fn records_survive_a_restart(backends: Backends) {
    let mut host = Host::start_on(backends, &manifest("students"));
    let alice = host.token("alice", &[]);
    let created = create(&host, &alice, &student(1, "math")).await;
    let id = uid(&created).to_owned();

    host.restart();

    assert_eq!(
        host.get(&format!("/students/{id}")).await.expect(200),
        created
    );
    let all = host.get("/students").await.expect(200);
    assert_eq!(all["items"], json!([created]));
    // The signing key is kept too: a token issued before the restart still works.
    let patched = host
        .json(
            Method::PATCH,
            &format!("/students/{id}"),
            Some(&alice),
            &json!({ "year": 3 }),
        )
        .await
        .expect(200);
    assert_eq!(patched["year"], 3);
    assert_eq!(patched["creator_uid"], "alice");
}

/// One run of [`same_requests`] on one host: each step's answer, with what
/// differs from run to run by design (uids, cursors, timestamps, request
/// ids) masked, everything else kept as sent (field order, number forms).
struct Transcript {
    host: Host,
    /// The uid of each record the script created, with its name in the script.
    uids: Vec<(String, String)>,
    /// Page cursors in the order first seen.
    cursors: Vec<String>,
    /// Each step and its masked answer.
    steps: Vec<Step>,
}

/// One request of the script and its masked answer.
struct Step {
    /// What was asked.
    request: String,
    /// Status, headers and body as text, fields in the order they came.
    answer: String,
    /// The same with every object's fields sorted by name, for a
    /// comparison that ignores field order but not number forms.
    sorted: String,
}

/// `value` as text with the fields of every object sorted by name.
fn sorted_fields(value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let mut names: Vec<&String> = fields.keys().collect();
            names.sort();
            Value::Object(
                names
                    .into_iter()
                    .map(|k| (k.clone(), sorted_fields(&fields[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_fields).collect()),
        other => other.clone(),
    }
}

impl Transcript {
    fn new(backends: Backends) -> Transcript {
        Transcript {
            host: Host::start_on(backends, &manifest("students")),
            uids: Vec::new(),
            cursors: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// The uid of the record the script named `name`.
    fn uid(&self, name: &str) -> String {
        self.uids
            .iter()
            .find(|(_, n)| n == name)
            .map(|(uid, _)| uid.clone())
            // A record one backend did not create: a uid that finds nothing.
            .unwrap_or_else(|| "0189aaaa-0000-7000-8000-000000000000".into())
    }

    /// A string with every uid and cursor in it replaced by a stable name.
    fn mask_text(&mut self, text: &str) -> String {
        let mut out = text.to_owned();
        for (uid, name) in &self.uids {
            out = out.replace(uid, &format!("<uid of {name}>"));
        }
        if is_uuid(&out) {
            return "<unknown uid>".into();
        }
        out
    }

    fn mask(&mut self, key: Option<&str>, value: &Value) -> Value {
        match (key, value) {
            (Some("created_at" | "last_updated_at"), Value::String(s)) if is_timestamp(s) => {
                json!("<timestamp>")
            }
            (Some("request_id"), Value::String(s)) if !s.is_empty() => json!("<request id>"),
            (Some("next"), Value::String(cursor)) => {
                let n = match self.cursors.iter().position(|c| c == cursor) {
                    Some(n) => n,
                    None => {
                        self.cursors.push(cursor.clone());
                        self.cursors.len() - 1
                    }
                };
                json!(format!("<cursor {n}>"))
            }
            (_, Value::String(s)) => Value::String(self.mask_text(s)),
            (_, Value::Array(items)) => {
                Value::Array(items.iter().map(|v| self.mask(None, v)).collect())
            }
            (_, Value::Object(fields)) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), self.mask(Some(k), v)))
                    .collect(),
            ),
            (_, other) => other.clone(),
        }
    }

    /// Sends `request`, records the masked answer under `step`, and returns
    /// the answer as it came.
    async fn step(&mut self, step: &str, request: reqwest::RequestBuilder) -> Reply {
        let reply = self.host.send(request).await;
        self.record(step, &reply);
        reply
    }

    fn record(&mut self, step: &str, reply: &Reply) {
        let body = match serde_json::from_slice::<Value>(&reply.body) {
            Ok(json) => self.mask(None, &json),
            Err(_) => Value::String(self.mask_text(&reply.text())),
        };
        let location = reply.header("location").map(|l| self.mask_text(l));
        let content_type = reply.header("content-type");
        // Serialised again with its fields in the order they came.
        let answer = format!(
            "{} content-type={content_type:?} location={location:?} {body}",
            reply.status
        );
        let sorted =
            sorted_fields(&json!([reply.status, content_type, location, body])).to_string();
        self.steps.push(Step {
            request: step.to_owned(),
            answer,
            sorted,
        });
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.host.client().request(method, self.host.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /students` with `body` as written (so number forms are the
    /// script's), naming the record `name` when it is created.
    async fn create(&mut self, name: &str, token: &str, body: &str) {
        let request = self
            .request(Method::POST, "/students", Some(token))
            .header("content-type", "application/json")
            .body(body.to_owned());
        let reply = self.host.send(request).await;
        if reply.status == 201 {
            let uid = uid(&reply.json()).to_owned();
            self.uids.push((uid, name.to_owned()));
        }
        self.record(&format!("create {name}: {body}"), &reply);
    }

    async fn get(&mut self, path: &str) {
        let request = self.request(Method::GET, path, None);
        self.step(&format!("GET {path}"), request).await;
    }

    async fn get_record(&mut self, name: &str) {
        let path = format!("/students/{}", self.uid(name));
        let request = self.request(Method::GET, &path, None);
        self.step(&format!("GET {name}"), request).await;
    }

    async fn patch(&mut self, name: &str, token: &str, body: &str) {
        let path = format!("/students/{}", self.uid(name));
        let request = self
            .request(Method::PATCH, &path, Some(token))
            .header("content-type", "application/json")
            .body(body.to_owned());
        self.step(&format!("PATCH {name}: {body}"), request).await;
    }

    async fn delete_record(&mut self, name: &str, token: &str) {
        let path = format!("/students/{}", self.uid(name));
        let request = self.request(Method::DELETE, &path, Some(token));
        self.step(&format!("DELETE {name}"), request).await;
    }

    async fn delete_where(&mut self, query: &str, token: &str) {
        let path = format!("/students?{query}");
        let request = self.request(Method::DELETE, &path, Some(token));
        self.step(&format!("DELETE {path}"), request).await;
    }

    /// Every page of `GET /students?limit=<limit>`, following `next`.
    async fn pages(&mut self, limit: u32) {
        let mut after: Option<String> = None;
        for page in 0.. {
            assert!(page < 50, "paging does not end");
            let mut path = format!("/students?limit={limit}");
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={}", enc(cursor)));
            }
            let request = self.request(Method::GET, &path, None);
            let reply = self
                .step(
                    &format!("GET /students?limit={limit}, page {page}"),
                    request,
                )
                .await;
            match reply.json().get("next") {
                Some(Value::String(next)) => after = Some(next.clone()),
                _ => return,
            }
        }
    }
}

/// The script [`records_are_the_same_on_both_backends`] runs on each host:
/// records of every JSON type and number form, reads, pages, filters,
/// patches, deletes and errors.
async fn same_requests(backends: Backends) -> Vec<Step> {
    let mut t = Transcript::new(backends);
    let alice = t.host.token("alice", &[]);
    let bob = t.host.token("bob", &[]);
    let advisor = t.host.token("carol", &["advisors"]);

    let records = [
        (
            "ada",
            r#"{"name":"Ada Lovelace","email":"ada@example.org","major":"math","year":2}"#,
        ),
        // Keys in another order than the configuration's.
        (
            "grace",
            r#"{"year":3.5,"email":"grace@example.org","name":"Grace Hopper","major":"cs"}"#,
        ),
        // Escapes, non-ASCII text, a nested document, an integer past 2^53.
        (
            "emile",
            r#"{"name":"\u00c9mile \"\u00c9\" Borel \u2603 \ud835\udd18 \\ / \t","email":"e@example.org","major":{"primary":"math","minor":["art",1,true,null,{"zeta":1,"alpha":[]}]},"year":9007199254740993}"#,
        ),
        (
            "zed",
            r#"{"name":"Zed","email":"z@example.org","major":"","year":-0.0}"#,
        ),
        (
            "big",
            r#"{"name":"Big","email":"b@example.org","major":"cs","year":1e300}"#,
        ),
        (
            "tiny",
            r#"{"name":"Tiny","email":"t@example.org","year":1E-7}"#,
        ),
        (
            "one",
            r#"{"name":"One","email":"one@example.org","major":"cs","year":1}"#,
        ),
        (
            "yes",
            r#"{"name":"Yes","email":"yes@example.org","major":"physics","year":true}"#,
        ),
        (
            "five",
            r#"{"name":"Five","email":"five@example.org","major":"history","year":5.0}"#,
        ),
        (
            "u64",
            r#"{"name":"Max","email":"max@example.org","year":18446744073709551615}"#,
        ),
        (
            "nul",
            r#"{"name":"Nul \u0000 byte","email":"nul@example.org","major":"history"}"#,
        ),
    ];
    for (i, (name, body)) in records.iter().enumerate() {
        let token = if i % 3 == 2 { &bob } else { &alice };
        t.create(name, token, body).await;
    }
    for (name, _) in &records {
        t.get_record(name).await;
    }
    t.get("/students").await;
    t.pages(4).await;

    for query in [
        "major=cs",
        "major=",
        "major=%22%22",
        "year=1",
        "year=true",
        "year=2",
        "year=2.0",
        "year=3.5",
        "year=5",
        "year=0",
        "year=9007199254740993",
        "year=18446744073709551615",
        "year=null",
        "name=Zed&major=",
        "creator_uid=bob",
        "major=cs&limit=1",
    ] {
        t.get(&format!("/students?{query}")).await;
    }

    t.patch("ada", &bob, r#"{"major":"physics","year":null}"#)
        .await;
    t.patch(
        "emile",
        &alice,
        r#"{"major":{"second":2,"first":1},"year":2.50}"#,
    )
    .await;
    t.patch("zed", &bob, r#"{"creator_uid":"mallory"}"#).await;
    t.patch("zed", &bob, r#"{"shoe_size":42}"#).await;
    t.patch("gone", &bob, r#"{"major":"art"}"#).await;
    for name in ["ada", "emile", "zed"] {
        t.get_record(name).await;
    }

    t.delete_record("grace", &alice).await;
    t.get_record("grace").await;
    t.delete_record("grace", &alice).await;
    t.delete_where("year=true", &advisor).await;
    t.delete_where("major=cs", &advisor).await;
    t.delete_where("major=cs", &advisor).await;

    let bad_create = t
        .request(Method::POST, "/students", Some(&alice))
        .json(&json!({ "major": "art" }));
    t.step("create without required keys", bad_create).await;
    for path in [
        "/students?after=not-a-cursor",
        "/students?limit=0",
        "/students?colour=red",
    ] {
        t.get(path).await;
    }
    t.get("/students").await;
    t.steps
}

/// Clients cannot tell the backends apart: the same requests get the same
/// answers, byte for byte once uids, cursors, timestamps and request ids are
/// masked (status, content type, field order, number forms, errors).
#[tokio::test]
async fn records_are_the_same_on_both_backends() {
    let embedded = same_requests(Backends::Embedded).await;
    let aws = same_requests(Backends::Aws).await;
    assert_eq!(embedded.len(), aws.len(), "the script ran differently");
    // Answers that differ only in the order of fields are listed apart, so
    // that other differences stand out.
    let mut order_only = Vec::new();
    let mut differences = Vec::new();
    for (e, a) in embedded.iter().zip(&aws) {
        if e.answer == a.answer {
            continue;
        }
        let detail = format!(
            "{}\n    embedded: {}\n    aws:      {}",
            e.request, e.answer, a.answer
        );
        if e.sorted == a.sorted {
            order_only.push(detail);
        } else {
            differences.push(detail);
        }
    }
    assert!(
        order_only.is_empty() && differences.is_empty(),
        "{} of {} answers differ between the backends.\n\
         {} in their values:\n  {}\n\
         {} only in the order of fields:\n  {}",
        order_only.len() + differences.len(),
        embedded.len(),
        differences.len(),
        differences.join("\n  "),
        order_only.len(),
        order_only.join("\n  ")
    );
}

/// With `shapes = "pyverless"`, create answers the new uid as a JSON string
/// and list a bare array paged by `offset` and `limit`, as Pyverless did.
async fn pyverless_shapes_keep_its_clients_working(backends: Backends) {
    let manifest = manifest("students").replace(
        "optional = \"major,year\"\n",
        "optional = \"major,year\"\nshapes = \"pyverless\"\n",
    );
    assert!(manifest.contains("pyverless"));
    let host = Host::start_on(backends, &manifest);
    let alice = host.token("alice", &[]);
    let mut uids = Vec::new();
    for n in 0..5 {
        let body = json!({"name": format!("S{n}"), "email": format!("s{n}@example.org")});
        let created = host
            .json(Method::POST, "/students", Some(&alice), &body)
            .await;
        let uid = created.expect(201);
        let uid = uid
            .as_str()
            .unwrap_or_else(|| panic!("the uid as a JSON string: {created}"));
        assert!(is_uuid(uid), "{uid}");
        assert_eq!(
            created.header("location"),
            Some(format!("/students/{uid}").as_str())
        );
        // It landed: the item route reads it back whole.
        let stored = host.get(&format!("/students/{uid}")).await.expect(200);
        assert_eq!(stored["name"], format!("S{n}"));
        uids.push(uid.to_owned());
    }
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap_or_else(|| panic!("a bare array: {list}"))
            .iter()
            .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        names(&host.get("/students").await.expect(200)),
        ["S0", "S1", "S2", "S3", "S4"]
    );
    assert_eq!(
        names(&host.get("/students?offset=1&limit=2").await.expect(200)),
        ["S1", "S2"]
    );
    assert_eq!(
        names(&host.get("/students?offset=3").await.expect(200)),
        ["S3", "S4"]
    );
    assert_eq!(
        names(&host.get("/students?offset=2&name=S3").await.expect(200)),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&host.get("/students?offset=0&name=S3").await.expect(200)),
        ["S3"]
    );
    assert_eq!(host.get("/students?offset=5").await.expect(200), json!([]));
    for bad in [
        "offset=-1",
        "offset=x",
        "offset=10001",
        "limit=0",
        "after=abc",
    ] {
        let message = host
            .get(&format!("/students?{bad}"))
            .await
            .expect_error(400, "bad_request");
        let name = bad.split('=').next().unwrap();
        assert!(message.contains(name), "{bad}: {message}");
    }
}
