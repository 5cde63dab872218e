//! The SmartAdvising component (seed 001) as the example manifest mounts it
//! at /advising, through the real binary: the contract's routes, envelopes,
//! field order and statuses, its errors, and queues whose positions stay
//! 1..n under concurrent enqueues and dequeues. Every test runs on both
//! backend sets.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::text::enc;
use common::{Backends, Host, Reply, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

/// The advising component's entry of the example manifest (`corral.toml`)
/// as shipped, serving the built component; it loads example data.
fn example_manifest() -> String {
    let advising = common::manifests::example_manifest()["components"]["advising"].clone();
    assert_eq!(
        advising["config"]["example_data"].as_str(),
        Some("true"),
        "the example manifest mounts advising with example data"
    );
    let components = toml::Table::from_iter([("advising".to_owned(), advising)]);
    toml::to_string(&toml::Table::from_iter([(
        "components".to_owned(),
        components.into(),
    )]))
    .unwrap()
}

on_both_backends! {
    catalog_reads,
    faqs_are_created_changed_and_deleted,
    students_are_validated_filtered_changed_and_deleted,
    queues_keep_their_order_and_close_gaps,
    concurrent_enqueues_and_dequeues_keep_positions_1_to_n,
    example_data_is_loaded_once,
    the_app_token_lets_old_clients_write_when_configured,
}

/// A host serving the example manifest, with or without example data.
fn start(backends: Backends, example_data: bool) -> Host {
    let manifest = example_manifest();
    if example_data {
        Host::start_on(backends, &manifest)
    } else {
        Host::start_on(
            backends,
            &manifest.replace("example_data = \"true\"", "example_data = \"false\""),
        )
    }
}

/// The keys of a JSON object, in order.
fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

async fn send(host: &Host, method: Method, path: &str, token: &str, body: Value) -> Reply {
    host.json(method, &format!("/advising{path}"), Some(token), &body)
        .await
}

async fn get(host: &Host, path: &str) -> Reply {
    host.get(&format!("/advising{path}")).await
}

/// Creates a student and returns its id.
async fn new_student(host: &Host, token: &str, n: usize, major: i64, undergraduate: bool) -> i64 {
    let body = json!({
        "email": format!("student{n}@example.edu"),
        "student_identifier": format!("ID{n:04}"),
        "is_undergraduate": undergraduate,
        "major_id": major,
    });
    let reply = send(host, Method::POST, "/students", token, body)
        .await
        .expect(201);
    assert_eq!(keys(&reply), ["student_id"], "{reply}");
    reply["student_id"].as_i64().expect("an integer student_id")
}

/// Enqueues a student and returns the queuer.
async fn enqueue(host: &Host, token: &str, student: i64) -> Value {
    let reply = send(
        host,
        Method::POST,
        "/queuers",
        token,
        json!({ "student_id": student }),
    )
    .await
    .expect(201);
    reply["queuer"].clone()
}

/// The queue (major, undergraduate) as (student_id, position) pairs, by position.
async fn queue(host: &Host, major: i64, undergraduate: bool) -> Vec<(i64, i64)> {
    let reply = get(
        host,
        &format!("/queues?major_id={major}&is_undergraduate={undergraduate}"),
    )
    .await
    .expect(200);
    reply["queue"]
        .as_array()
        .expect("a queue array")
        .iter()
        .map(|q| {
            assert_eq!(
                (q["major_id"].as_i64(), q["is_undergraduate"].as_bool()),
                (Some(major), Some(undergraduate)),
                "{q}"
            );
            (
                q["student_id"].as_i64().unwrap(),
                q["position"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// (student, position) pairs for students in order, at positions 1..n.
fn in_order(students: &[i64]) -> Vec<(i64, i64)> {
    students.iter().zip(1..).map(|(s, p)| (*s, p)).collect()
}

async fn catalog_reads(backends: Backends) {
    let host = start(backends, true);

    let colleges = get(&host, "/colleges").await.expect(200);
    assert_eq!(
        colleges,
        json!({"colleges": [
            {"id": 1, "name": "College of Engineering", "email_tld": "eng.example.edu"},
            {"id": 2, "name": "College of Arts and Sciences", "email_tld": "cas.example.edu"},
        ]})
    );
    assert_eq!(keys(&colleges), ["colleges"]);
    assert_eq!(keys(&colleges["colleges"][0]), ["id", "name", "email_tld"]);
    let one = get(&host, "/colleges/2").await.expect(200);
    assert_eq!(one, json!({"colleges": [colleges["colleges"][1].clone()]}));

    let advisors = get(&host, "/advisors").await.expect(200);
    let list = advisors["advisors"].as_array().expect("an advisors array");
    assert_eq!(list.len(), 3, "{advisors}");
    for advisor in list {
        assert_eq!(
            keys(advisor),
            ["id", "name", "email", "is_undergraduate", "major_id"]
        );
        assert!(advisor["is_undergraduate"].is_boolean(), "{advisor}");
    }
    assert_eq!(
        get(&host, "/advisors/2").await.expect(200),
        json!({"advisors": [{"id": 2, "name": "Sam Okafor", "email": "sokafor@eng.example.edu", "is_undergraduate": false, "major_id": 1}]})
    );

    let majors = get(&host, "/colleges/1/majors").await.expect(200);
    assert_eq!(
        majors,
        json!({"majors": [
            {"id": 1, "name": "Computer Science", "college_id": 1},
            {"id": 2, "name": "Mechanical Engineering", "college_id": 1},
        ]})
    );
    assert_eq!(keys(&majors["majors"][0]), ["id", "name", "college_id"]);
    assert_eq!(
        get(&host, "/colleges/2/majors/3").await.expect(200),
        json!({"majors": [{"id": 3, "name": "Mathematics", "college_id": 2}]})
    );

    // Not found is 404, not the original's 400; a major of another college is not found.
    for path in [
        "/advisors/99",
        "/colleges/99",
        "/colleges/99/majors",
        "/colleges/1/majors/3",
        "/faqs/99",
        "/students/99",
    ] {
        get(&host, path).await.expect_error(404, "not_found");
    }
    // A mistyped id is 400 naming it.
    for (path, name) in [
        ("/advisors/abc", "advisor_id"),
        ("/colleges/x/majors", "college_id"),
        ("/colleges/1/majors/1.5", "major_id"),
    ] {
        let message = get(&host, path).await.expect_error(400, "bad_request");
        assert!(message.contains(name), "{path}: {message}");
    }
    // Reads are public; every write needs a caller (corral's auth replaces
    // the original's shared app_token).
    for (method, path) in [
        (Method::POST, "/advising/faqs"),
        (Method::PATCH, "/advising/faqs/1"),
        (Method::DELETE, "/advising/faqs/1"),
        (Method::POST, "/advising/students"),
        (Method::PATCH, "/advising/students/1"),
        (Method::DELETE, "/advising/students/1"),
        (Method::POST, "/advising/queuers"),
        (Method::DELETE, "/advising/queuers/1"),
    ] {
        host.call(method, path, None)
            .await
            .expect_error(401, "unauthorized");
    }
    assert_eq!(
        get(&host, "/students/1").await.expect(200)["students"][0]["email"],
        "akim@eng.example.edu"
    );
    // Writes to the catalog do not exist.
    host.call(Method::POST, "/advising/colleges", None)
        .await
        .expect_error(405, "method_not_allowed");
}

async fn faqs_are_created_changed_and_deleted(backends: Backends) {
    let host = start(backends, false);
    let token = host.token("advisor", &[]);
    assert_eq!(get(&host, "/faqs").await.expect(200), json!({"faqs": []}));

    // Writes need a caller.
    host.json(
        Method::POST,
        "/advising/faqs",
        None,
        &json!({"question": "q", "answer": "a"}),
    )
    .await
    .expect_error(401, "unauthorized");
    // Missing and mistyped keys are named; a malformed body is refused.
    let message = send(
        &host,
        Method::POST,
        "/faqs",
        &token,
        json!({"question": "Where?"}),
    )
    .await
    .expect_error(400, "bad_request");
    assert!(message.contains("answer"), "{message}");
    let message = send(
        &host,
        Method::POST,
        "/faqs",
        &token,
        json!({"question": 7, "answer": "x"}),
    )
    .await
    .expect_error(400, "bad_request");
    assert!(message.contains("question"), "{message}");
    let malformed = host
        .send(
            host.client()
                .post(host.url("/advising/faqs"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{\"question\": "),
        )
        .await;
    malformed.expect_error(400, "bad_request");
    assert_eq!(
        get(&host, "/faqs").await.expect(200),
        json!({"faqs": []}),
        "a refused write changed nothing"
    );

    let created = send(
        &host,
        Method::POST,
        "/faqs",
        &token,
        json!({"question": "Where?", "answer": "Room 12"}),
    )
    .await
    .expect(201);
    let id = created["faq_id"].as_i64().expect("an integer faq_id");
    assert_eq!(created, json!({"faq_id": id}));
    let faq = get(&host, &format!("/faqs/{id}")).await.expect(200);
    assert_eq!(
        faq,
        json!({"faqs": [{"id": id, "question": "Where?", "answer": "Room 12"}]})
    );
    assert_eq!(keys(&faq["faqs"][0]), ["id", "question", "answer"]);

    let changed = send(
        &host,
        Method::PATCH,
        &format!("/faqs/{id}"),
        &token,
        json!({"answer": "Room 14"}),
    )
    .await
    .expect(200);
    assert_eq!(
        changed,
        json!({"faqs": [{"id": id, "question": "Where?", "answer": "Room 14"}]})
    );
    assert_eq!(get(&host, "/faqs").await.expect(200), changed);
    // The fields may come in the query string, as the original read them.
    let changed = host
        .call(
            Method::PATCH,
            &format!("/advising/faqs/{id}?question=Which%20room%3F"),
            Some(&token),
        )
        .await
        .expect(200);
    assert_eq!(
        changed,
        json!({"faqs": [{"id": id, "question": "Which room?", "answer": "Room 14"}]})
    );
    send(
        &host,
        Method::PATCH,
        "/faqs/999",
        &token,
        json!({"answer": "x"}),
    )
    .await
    .expect_error(404, "not_found");
    send(
        &host,
        Method::PATCH,
        &format!("/faqs/{id}"),
        &token,
        json!({}),
    )
    .await
    .expect_error(400, "bad_request");

    let deleted = send(
        &host,
        Method::DELETE,
        &format!("/faqs/{id}"),
        &token,
        json!({}),
    )
    .await;
    // A 202 carries the original's body: JSON `null`.
    assert_eq!(deleted.expect(202), Value::Null, "{deleted}");
    assert_eq!(deleted.header("content-type"), Some("application/json"));
    get(&host, &format!("/faqs/{id}"))
        .await
        .expect_error(404, "not_found");
    send(
        &host,
        Method::DELETE,
        &format!("/faqs/{id}"),
        &token,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn students_are_validated_filtered_changed_and_deleted(backends: Backends) {
    let host = start(backends, true);
    let token = host.token("advisor", &[]);
    let valid = json!({"email": "ada@example.edu", "student_identifier": "A100", "is_undergraduate": "false", "major_id": 3});

    // Each required key missing, then each mistyped, is named; nothing is stored.
    for key in [
        "email",
        "student_identifier",
        "is_undergraduate",
        "major_id",
    ] {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        let message = send(&host, Method::POST, "/students", &token, body)
            .await
            .expect_error(400, "bad_request");
        assert!(
            message.contains("Missing") && message.contains(key),
            "{key}: {message}"
        );
    }
    for (key, wrong) in [
        ("email", json!(5)),
        ("student_identifier", json!(["A"])),
        ("is_undergraduate", json!("maybe")),
        ("major_id", json!("three")),
    ] {
        let mut body = valid.clone();
        body[key] = wrong;
        let message = send(&host, Method::POST, "/students", &token, body)
            .await
            .expect_error(400, "bad_request");
        assert!(message.contains(key), "{key}: {message}");
    }
    let mut unknown_major = valid.clone();
    unknown_major["major_id"] = json!(99);
    // A major that does not exist is not found (the original: 400).
    let message = send(&host, Method::POST, "/students", &token, unknown_major)
        .await
        .expect_error(404, "not_found");
    assert!(message.contains("major_id"), "{message}");
    assert_eq!(
        get(&host, "/students?email=ada%40example.edu")
            .await
            .expect(200),
        json!({"students": []})
    );

    // "false" as a string is false; the name is optional and null without one.
    let id = send(&host, Method::POST, "/students", &token, valid.clone())
        .await
        .expect(201)["student_id"]
        .as_i64()
        .unwrap();
    let student = get(&host, &format!("/students/{id}")).await.expect(200);
    assert_eq!(
        student,
        json!({"students": [{"id": id, "name": null, "student_identifier": "A100", "email": "ada@example.edu", "is_undergraduate": false, "major_id": 3}]})
    );
    assert_eq!(
        keys(&student["students"][0]),
        [
            "id",
            "name",
            "student_identifier",
            "email",
            "is_undergraduate",
            "major_id"
        ]
    );

    // A taken email is 409 (the original: 500).
    let mut again = valid.clone();
    again["student_identifier"] = json!("A101");
    send(&host, Method::POST, "/students", &token, again)
        .await
        .expect_error(409, "conflict");

    // Filters, alone and together; a mistyped filter is named.
    let all = get(&host, "/students").await.expect(200);
    assert_eq!(
        all["students"].as_array().unwrap().len(),
        4,
        "three example students and one new: {all}"
    );
    let by_email = get(
        &host,
        &format!("/students?email={}", enc("ada@example.edu")),
    )
    .await
    .expect(200);
    assert_eq!(by_email, student);
    let by_major = get(&host, "/students?major_id=1").await.expect(200);
    let emails: Vec<&str> = by_major["students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["akim@eng.example.edu", "tbrooks@eng.example.edu"]);
    assert_eq!(
        get(&host, "/students?student_identifier=A100&major_id=3")
            .await
            .expect(200),
        student
    );
    assert_eq!(
        get(&host, "/students?student_identifier=A100&major_id=1")
            .await
            .expect(200),
        json!({"students": []})
    );
    let message = get(&host, "/students?major_id=x")
        .await
        .expect_error(400, "bad_request");
    assert!(message.contains("major_id"), "{message}");

    // PATCH through the query string, then through the body. Booleans take
    // the original's strtobool forms.
    let patched = host
        .call(
            Method::PATCH,
            &format!("/advising/students/{id}?major_id=4&is_undergraduate=Yes"),
            Some(&token),
        )
        .await;
    assert_eq!(patched.expect(202), Value::Null, "{patched}");
    let now = &get(&host, &format!("/students/{id}")).await.expect(200)["students"][0];
    assert_eq!(
        (now["major_id"].clone(), now["is_undergraduate"].clone()),
        (json!(4), json!(true))
    );
    let patched = send(
        &host,
        Method::PATCH,
        &format!("/students/{id}"),
        &token,
        json!({"is_undergraduate": false}),
    )
    .await;
    assert_eq!(patched.status, 202, "{patched}");
    let now = &get(&host, &format!("/students/{id}")).await.expect(200)["students"][0];
    assert_eq!(
        (now["major_id"].clone(), now["is_undergraduate"].clone()),
        (json!(4), json!(false))
    );
    let message = send(
        &host,
        Method::PATCH,
        &format!("/students/{id}"),
        &token,
        json!({"major_id": "four"}),
    )
    .await
    .expect_error(400, "bad_request");
    assert!(message.contains("major_id"), "{message}");
    send(
        &host,
        Method::PATCH,
        "/students/999",
        &token,
        json!({"major_id": 1}),
    )
    .await
    .expect_error(404, "not_found");

    // DELETE works (the original always failed).
    let deleted = send(
        &host,
        Method::DELETE,
        &format!("/students/{id}"),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(deleted.status, 202, "{deleted}");
    get(&host, &format!("/students/{id}"))
        .await
        .expect_error(404, "not_found");
    send(
        &host,
        Method::DELETE,
        &format!("/students/{id}"),
        &token,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
}

async fn queues_keep_their_order_and_close_gaps(backends: Backends) {
    let host = start(backends, true);
    let token = host.token("advisor", &[]);
    let a = new_student(&host, &token, 1, 1, true).await;
    let b = new_student(&host, &token, 2, 1, true).await;
    let c = new_student(&host, &token, 3, 1, true).await;
    let d = new_student(&host, &token, 4, 1, true).await;
    let grad = new_student(&host, &token, 5, 1, false).await;

    // The first is at position 1; the name is saved on the student.
    let reply = send(
        &host,
        Method::POST,
        "/queuers",
        &token,
        json!({"student_id": a, "name": "Ada"}),
    )
    .await
    .expect(201);
    assert_eq!(keys(&reply), ["queuer"]);
    let first = &reply["queuer"];
    assert_eq!(
        keys(first),
        [
            "id",
            "major_id",
            "is_undergraduate",
            "student_id",
            "position"
        ]
    );
    assert_eq!(
        first,
        &json!({"id": first["id"], "major_id": 1, "is_undergraduate": true, "student_id": a, "position": 1})
    );
    assert_eq!(
        get(&host, &format!("/students/{a}")).await.expect(200)["students"][0]["name"],
        "Ada"
    );
    let qb = enqueue(&host, &token, b).await;
    let qc = enqueue(&host, &token, c).await;
    assert_eq!(
        (qb["position"].as_i64(), qc["position"].as_i64()),
        (Some(2), Some(3))
    );
    // Graduates of the same major wait in a queue of their own.
    assert_eq!(enqueue(&host, &token, grad).await["position"], 1);
    assert_eq!(queue(&host, 1, true).await, in_order(&[a, b, c]));

    // Already queued: 409 naming the student (the original: 400), and the queue is unchanged.
    let message = send(
        &host,
        Method::POST,
        "/queuers",
        &token,
        json!({"student_id": a, "name": "Someone Else"}),
    )
    .await
    .expect_error(409, "conflict");
    assert!(
        message.contains("Ada") && message.contains(&a.to_string()),
        "{message}"
    );
    assert_eq!(
        get(&host, &format!("/students/{a}")).await.expect(200)["students"][0]["name"],
        "Ada",
        "the refused enqueue saved nothing"
    );
    // Missing, mistyped and unknown students.
    let message = send(
        &host,
        Method::POST,
        "/queuers",
        &token,
        json!({"name": "x"}),
    )
    .await
    .expect_error(400, "bad_request");
    assert!(message.contains("student_id"), "{message}");
    let message = send(
        &host,
        Method::POST,
        "/queuers",
        &token,
        json!({"student_id": "abc"}),
    )
    .await
    .expect_error(400, "bad_request");
    assert!(message.contains("student_id"), "{message}");
    send(
        &host,
        Method::POST,
        "/queuers",
        &token,
        json!({"student_id": 999}),
    )
    .await
    .expect_error(404, "not_found");

    // Leaving from the middle closes the gap.
    let left = send(
        &host,
        Method::DELETE,
        &format!("/queuers/{}", qb["id"]),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(left.status, 202, "{left}");
    assert_eq!(queue(&host, 1, true).await, in_order(&[a, c]));
    send(
        &host,
        Method::DELETE,
        &format!("/queuers/{}", qb["id"]),
        &token,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(enqueue(&host, &token, d).await["position"], 3);
    assert_eq!(enqueue(&host, &token, b).await["position"], 4);
    assert_eq!(queue(&host, 1, true).await, in_order(&[a, c, d, b]));

    // Changing the major leaves the queue; the student may join the new one.
    let patched = send(
        &host,
        Method::PATCH,
        &format!("/students/{c}"),
        &token,
        json!({"major_id": 2}),
    )
    .await;
    assert_eq!(patched.status, 202, "{patched}");
    assert_eq!(queue(&host, 1, true).await, in_order(&[a, d, b]));
    assert_eq!(enqueue(&host, &token, c).await["position"], 1);
    assert_eq!(queue(&host, 2, true).await, in_order(&[c]));
    // So does changing the level, through the query string.
    let patched = host
        .call(
            Method::PATCH,
            &format!("/advising/students/{a}?is_undergraduate=false"),
            Some(&token),
        )
        .await;
    assert_eq!(patched.status, 202, "{patched}");
    assert_eq!(queue(&host, 1, true).await, in_order(&[d, b]));

    // Deleting a queued student takes them out first.
    let deleted = send(
        &host,
        Method::DELETE,
        &format!("/students/{d}"),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(deleted.status, 202, "{deleted}");
    assert_eq!(queue(&host, 1, true).await, in_order(&[b]));

    // GET /queues without filters: every queue, by position; one filter alone.
    let everything = get(&host, "/queues").await.expect(200);
    let positions: Vec<i64> = everything["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 1, 1], "{everything}");
    let grads = get(&host, "/queues?is_undergraduate=false")
        .await
        .expect(200);
    assert_eq!(grads["queue"].as_array().unwrap().len(), 1, "{grads}");
    assert_eq!(grads["queue"][0]["student_id"], grad);
    for form in ["False", "no", "0", "OFF"] {
        assert_eq!(
            get(&host, &format!("/queues?is_undergraduate={form}"))
                .await
                .expect(200),
            grads,
            "is_undergraduate={form}"
        );
    }
    let message = get(&host, "/queues?is_undergraduate=perhaps")
        .await
        .expect_error(400, "bad_request");
    assert!(message.contains("is_undergraduate"), "{message}");
}

/// 50 requests at once on four queues: enqueues of new students, dequeues,
/// PATCHes and DELETEs of queued students, and repeated enqueues that must
/// be refused. Afterwards every queue holds positions exactly 1..n, no
/// student twice, the survivors in their old order and nobody lost.
async fn concurrent_enqueues_and_dequeues_keep_positions_1_to_n(backends: Backends) {
    let host = start(backends, true);
    let token = host.token("advisor", &[]);
    positions_stay_1_to_n(&[&host], &token).await;
}

/// The signing key the hosts of [`three_hosts_on_one_database_keep_positions_1_to_n`] share.
const SHARED_KEY: &str = "the advising hosts' shared development signing key";

/// Three hosts on one database, tables and queues, as three Lambda
/// environments of one function, each with its own data directory and the
/// same signing key: the example data is loaded once, not three times, and
/// the concurrent changes above, spread across the hosts, keep every queue
/// at positions 1..n. (The embedded backends belong to one process.)
#[tokio::test]
async fn three_hosts_on_one_database_keep_positions_1_to_n() {
    let auth = format!("[backends.auth]\nkind = \"dev\"\nsigning_key = \"{SHARED_KEY}\"\n");
    let first =
        Host::start_with_cache_settings(Backends::Aws, &example_manifest(), &[], &[], &auth);
    let second = first.peer();
    let third = first.peer();
    let token = common::tokens::issue_token_with_key(SHARED_KEY, "advisor", &[]);
    for host in [&first, &second, &third] {
        let faqs = get(host, "/faqs").await.expect(200);
        assert_eq!(faqs["faqs"].as_array().unwrap().len(), 3, "{faqs}");
    }
    positions_stay_1_to_n(&[&first, &second, &third], &token).await;
}

/// 50 requests at once, spread across `hosts` (as the first test
/// describes), then the queues checked through every host and in the
/// database.
async fn positions_stay_1_to_n(hosts: &[&Host], token: &str) {
    let host = hosts[0];
    let token = token.to_owned();
    // Student n waits in queue (major 1 or 2, undergraduate or not).
    let queue_of = |n: usize| (1 + (n % 2) as i64, n % 4 < 2);
    let mut ids = BTreeMap::new();
    for n in 1..=50 {
        let (major, undergraduate) = queue_of(n);
        ids.insert(n, new_student(host, &token, n, major, undergraduate).await);
    }
    let mut queuers = BTreeMap::new();
    for n in 1..=30 {
        queuers.insert(
            n,
            enqueue(host, &token, ids[&n]).await["id"].as_i64().unwrap(),
        );
    }

    // 1–15 leave the queue, 16–20 change major, 21–25 are deleted,
    // 26–30 try to enqueue again (409), 31–50 join.
    let mut requests = Vec::new();
    for n in 1..=50 {
        let (method, path, body) = match n {
            1..=15 => (
                Method::DELETE,
                format!("/advising/queuers/{}", queuers[&n]),
                json!({}),
            ),
            16..=20 => (
                Method::PATCH,
                format!("/advising/students/{}", ids[&n]),
                json!({"major_id": 3}),
            ),
            21..=25 => (
                Method::DELETE,
                format!("/advising/students/{}", ids[&n]),
                json!({}),
            ),
            _ => (
                Method::POST,
                "/advising/queuers".to_owned(),
                json!({"student_id": ids[&n]}),
            ),
        };
        let via = hosts[n % hosts.len()];
        let request = via
            .client()
            .request(method, via.url(&path))
            .bearer_auth(&token)
            .json(&body);
        requests.push(tokio::spawn(async move {
            let response = request.send().await.expect("the host answers");
            let status = response.status().as_u16();
            (n, status, response.text().await.unwrap_or_default())
        }));
    }
    for request in requests {
        let (n, status, body) = request.await.expect("the request task ran");
        let expected = match n {
            1..=25 => 202,
            26..=30 => 409,
            _ => 201,
        };
        assert_eq!(status, expected, "request for student {n}: {body}");
    }

    // Through the API: each queue is 1..n, survivors first in their old
    // order, then the newcomers in some order.
    let mut seen = BTreeSet::new();
    for (major, undergraduate) in [(1, true), (1, false), (2, true), (2, false)] {
        let got = queue(host, major, undergraduate).await;
        for other in &hosts[1..] {
            assert_eq!(
                queue(other, major, undergraduate).await,
                got,
                "the hosts disagree"
            );
        }
        let positions: Vec<i64> = got.iter().map(|(_, p)| *p).collect();
        assert_eq!(
            positions,
            (1..=got.len() as i64).collect::<Vec<_>>(),
            "queue ({major}, {undergraduate}): {got:?}"
        );
        let survivors: Vec<i64> = (26..=30)
            .filter(|n| queue_of(*n) == (major, undergraduate))
            .map(|n| ids[&n])
            .collect();
        let newcomers: BTreeSet<i64> = (31..=50)
            .filter(|n| queue_of(*n) == (major, undergraduate))
            .map(|n| ids[&n])
            .collect();
        let students: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            students[..survivors.len()],
            survivors[..],
            "queue ({major}, {undergraduate})"
        );
        assert_eq!(
            students[survivors.len()..]
                .iter()
                .copied()
                .collect::<BTreeSet<_>>(),
            newcomers,
            "queue ({major}, {undergraduate})"
        );
        for s in students {
            assert!(seen.insert(s), "student {s} is queued twice");
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(
        queue(host, 3, true).await,
        vec![],
        "a PATCHed student is not moved into the new queue"
    );

    // In the database itself: the same rows, nothing else.
    let rows = host.sql_integers(
        "SELECT major_id, CAST(CASE WHEN is_undergraduate THEN 1 ELSE 0 END AS BIGINT), student_id, position \
         FROM advising_queuers ORDER BY major_id, is_undergraduate, position",
    );
    assert_eq!(rows.len(), 25, "{rows:?}");
    let mut by_queue: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for row in &rows {
        by_queue.entry((row[0], row[1])).or_default().push(row[3]);
    }
    for (queue, positions) in by_queue {
        assert_eq!(
            positions,
            (1..=positions.len() as i64).collect::<Vec<_>>(),
            "queue {queue:?} in the database"
        );
    }
    assert_eq!(rows.iter().map(|r| r[2]).collect::<BTreeSet<_>>(), seen);
}

async fn example_data_is_loaded_once(backends: Backends) {
    let mut host = start(backends, true);
    let faqs = get(&host, "/faqs").await.expect(200);
    assert_eq!(faqs["faqs"].as_array().unwrap().len(), 3, "{faqs}");
    let token = host.token("advisor", &[]);
    let id = send(&host, Method::DELETE, "/faqs/1", &token, json!({})).await;
    assert_eq!(id.status, 202, "{id}");
    // init runs again on restart: the data is neither duplicated nor restored.
    host.restart();
    let after = get(&host, "/faqs").await.expect(200);
    assert_eq!(after["faqs"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(
        get(&host, "/colleges").await.expect(200)["colleges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        get(&host, "/students").await.expect(200)["students"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let empty = start(backends, false);
    for (path, key) in [
        ("/advisors", "advisors"),
        ("/colleges", "colleges"),
        ("/faqs", "faqs"),
        ("/students", "students"),
        ("/queues", "queue"),
    ] {
        assert_eq!(
            get(&empty, path).await.expect(200),
            json!({ key: [] }),
            "{path}"
        );
    }
}

/// The original's shared `app_token`, re-enabled by config for old clients
/// on write routes the manifest makes public; without the config value a
/// public write route still needs a caller.
async fn the_app_token_lets_old_clients_write_when_configured(backends: Backends) {
    let public_writes = example_manifest()
        .replace("example_data = \"true\"", "example_data = \"false\"")
        .replace("auth = \"caller\"", "auth = \"public\"");
    let manifest = public_writes.replace(
        "[components.advising.config]\n",
        "[components.advising.config]\napp_token = \"old-shared-token\"\n",
    );
    assert!(manifest.contains("app_token"), "{manifest}");
    let host = Host::start_on(backends, &manifest);
    let faq =
        json!({"question": "Open?", "answer": "Nine to five", "app_token": "old-shared-token"});
    let created = host
        .json(Method::POST, "/advising/faqs", None, &faq)
        .await
        .expect(201);
    let id = created["faq_id"].as_i64().expect("an integer faq_id");
    // PATCH and DELETE carry it in the query string, as the original's clients did.
    let changed = host
        .call(
            Method::PATCH,
            &format!("/advising/faqs/{id}?answer=Ten%20to%20four&app_token=old-shared-token"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(changed["faqs"][0]["answer"], "Ten to four", "{changed}");
    // A wrong or missing token is 401 and changes nothing; a caller needs none.
    let wrong = host
        .call(
            Method::DELETE,
            &format!("/advising/faqs/{id}?app_token=old-shared-tokem"),
            None,
        )
        .await;
    assert_eq!(
        wrong.expect_error(401, "unauthorized"),
        "Invalid authentication token"
    );
    host.call(Method::DELETE, &format!("/advising/faqs/{id}"), None)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(
        get(&host, &format!("/faqs/{id}")).await.expect(200)["faqs"][0]["answer"],
        "Ten to four"
    );
    let token = host.token("advisor", &[]);
    let deleted = host
        .call(
            Method::DELETE,
            &format!("/advising/faqs/{id}"),
            Some(&token),
        )
        .await;
    assert_eq!(deleted.expect(202), Value::Null);
    drop(host);

    // Public write routes without the config value: a token is no caller.
    let host = Host::start_on(backends, &public_writes);
    host.json(Method::POST, "/advising/faqs", None, &faq)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(get(&host, "/faqs").await.expect(200), json!({"faqs": []}));
}
