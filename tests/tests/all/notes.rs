//! One contract, three languages: the notes resource written in Rust
//! (components/notes), Python (components/notes-py) and JavaScript
//! (components/notes-js) answers the same requests with the same
//! statuses, bodies and side effects (records, cache, queue, an outbound
//! HTTP request), and refuses the same bad input alike. Every test runs for
//! every language on both backend sets.

use crate::common;

use common::lambda::free_port;
use common::webhook::Webhook;
use common::{Backends, Host, Reply};
use reqwest::Method;
use serde_json::{Value, json};

/// A guest language and the component that implements the notes resource in it.
#[derive(Debug, Clone, Copy)]
enum Language {
    Rust,
    Python,
    JavaScript,
}

impl Language {
    fn name(self) -> &'static str {
        match self {
            Language::Rust => "rs",
            Language::Python => "py",
            Language::JavaScript => "js",
        }
    }

    fn wasm(self) -> &'static str {
        match self {
            Language::Rust => "notes",
            Language::Python => "notes_py",
            Language::JavaScript => "notes_js",
        }
    }
}

macro_rules! in_every_language {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use super::{Backends, Language};

                #[tokio::test]
                async fn rust_embedded() {
                    super::$name(Backends::Embedded, Language::Rust).await
                }

                #[tokio::test]
                async fn rust_aws() {
                    super::$name(Backends::Aws, Language::Rust).await
                }

                #[tokio::test]
                async fn python_embedded() {
                    super::$name(Backends::Embedded, Language::Python).await
                }

                #[tokio::test]
                async fn python_aws() {
                    super::$name(Backends::Aws, Language::Python).await
                }

                #[tokio::test]
                async fn javascript_embedded() {
                    super::$name(Backends::Embedded, Language::JavaScript).await
                }

                #[tokio::test]
                async fn javascript_aws() {
                    super::$name(Backends::Aws, Language::JavaScript).await
                }
            }
        )+
    };
}

in_every_language!(
    the_notes_contract_holds,
    bad_input_is_refused_alike,
    publishing_sends_the_note_to_the_granted_webhook_only
);

/// The component in `language` at `/notes-api`, with its own table, cache
/// store and queue, and a testbed granted the same queue to read it.
fn manifest(language: Language) -> String {
    common::manifests::manifest_with("notes", &[("COMPONENT", language.wasm())])
}

fn start(backends: Backends, language: Language) -> Host {
    eprintln!("notes in {}", language.name());
    Host::start_on(backends, &manifest(language))
}

async fn send(host: &Host, method: Method, path: &str, token: Option<&str>, body: &Value) -> Reply {
    host.json(method, &format!("/notes-api{path}"), token, body)
        .await
}

async fn get(host: &Host, path: &str) -> Reply {
    host.get(&format!("/notes-api{path}")).await
}

/// The messages waiting on the shared queue (taken off it).
async fn shared(host: &Host) -> Vec<Value> {
    let reply = host
        .json(
            Method::POST,
            "/testbed/queue",
            None,
            &json!({"op": "receive", "queue": "notes-shared", "max": 10, "visibility": 300}),
        )
        .await
        .expect(200);
    reply["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m["body"].as_str().unwrap()).unwrap())
        .collect()
}

async fn the_notes_contract_holds(backends: Backends, language: Language) {
    let host = start(backends, language);
    let ada = host.token("ada", &[]);
    let editor = host.token("eve", &["editors"]);

    // Records: create, read, list, update.
    let created = send(
        &host,
        Method::POST,
        "/notes",
        Some(&ada),
        &json!({"title": "Groceries", "body": "milk eggs bread", "uid": "forged"}),
    )
    .await;
    let note = created.expect(201);
    let uid = note["uid"].as_str().expect("a uid").to_owned();
    assert_ne!(uid, "forged", "an audit field was taken from the body");
    assert_eq!(
        created.header("location"),
        Some(format!("/notes-api/notes/{uid}").as_str())
    );
    assert_eq!(
        (&note["title"], &note["body"], &note["creator_uid"]),
        (
            &json!("Groceries"),
            &json!("milk eggs bread"),
            &json!("ada")
        )
    );
    assert_eq!(get(&host, &format!("/notes/{uid}")).await.expect(200), note);
    let second = send(
        &host,
        Method::POST,
        "/notes",
        Some(&ada),
        &json!({"title": "Ideas"}),
    )
    .await
    .expect(201);
    let listed = get(&host, "/notes?limit=1").await.expect(200);
    assert_eq!(listed["items"], json!([note]), "{listed}");
    let next = listed["next"].as_str().expect("a next cursor");
    let rest = get(&host, &format!("/notes?limit=1&after={next}"))
        .await
        .expect(200);
    assert_eq!(rest, json!({"items": [second], "next": null}));
    let filtered = get(&host, "/notes?title=Ideas").await.expect(200);
    assert_eq!(filtered["items"], json!([second]));
    let changed = send(
        &host,
        Method::PATCH,
        &format!("/notes/{uid}"),
        Some(&ada),
        &json!({"body": "milk eggs bread butter"}),
    )
    .await
    .expect(200);
    assert_eq!(changed["body"], "milk eggs bread butter");
    assert_eq!(changed["last_updater_uid"], "ada");

    // Raw SQL over the records table.
    assert_eq!(get(&host, "/stats").await.expect(200), json!({"notes": 2}));

    // Read through the cache: a miss stores the summary, a hit serves it
    // from the store even after the note changes.
    let miss = get(&host, &format!("/notes/{uid}/summary")).await;
    let summary = json!({"uid": uid, "title": "Groceries", "words": 4});
    assert_eq!(miss.expect(200), summary);
    assert_eq!(miss.header("x-cache"), Some("miss"));
    let cached = host
        .json(
            Method::POST,
            "/testbed/cache",
            None,
            &json!({"op": "get", "store": "notes-summaries", "key": format!("summary:{uid}")}),
        )
        .await
        .expect(200);
    let stored: Value =
        serde_json::from_str(cached["value"].as_str().expect("a cached value")).unwrap();
    assert_eq!(stored, summary);
    send(
        &host,
        Method::PATCH,
        &format!("/notes/{uid}"),
        Some(&ada),
        &json!({"body": "milk"}),
    )
    .await
    .expect(200);
    let hit = get(&host, &format!("/notes/{uid}/summary")).await;
    assert_eq!(hit.expect(200), summary);
    assert_eq!(hit.header("x-cache"), Some("hit"));
    get(&host, "/notes/nope/summary")
        .await
        .expect_error(404, "not_found");

    // A queue send, with the caller's subject.
    let accepted = send(
        &host,
        Method::POST,
        &format!("/notes/{uid}/share"),
        Some(&ada),
        &json!({"to": "bob"}),
    )
    .await
    .expect(202);
    assert_eq!(accepted, json!({"shared": uid, "to": "bob"}));
    assert_eq!(
        shared(&host).await,
        [json!({"note": uid, "to": "bob", "by": "ada"})]
    );
    send(
        &host,
        Method::POST,
        "/notes/nope/share",
        Some(&ada),
        &json!({"to": "bob"}),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(
        shared(&host).await,
        Vec::<Value>::new(),
        "a refused share was queued"
    );

    // Deleting needs the editors group: 401, 403, then 204 with no body.
    host.call(Method::DELETE, &format!("/notes-api/notes/{uid}"), None)
        .await
        .expect_error(401, "unauthorized");
    let refused = host
        .call(
            Method::DELETE,
            &format!("/notes-api/notes/{uid}"),
            Some(&ada),
        )
        .await;
    refused.expect_error(403, "forbidden");
    assert_eq!(get(&host, "/stats").await.expect(200), json!({"notes": 2}));
    let deleted = host
        .call(
            Method::DELETE,
            &format!("/notes-api/notes/{uid}"),
            Some(&editor),
        )
        .await;
    assert_eq!(deleted.status, 204, "{deleted}");
    assert!(deleted.body.is_empty(), "{deleted}");
    get(&host, &format!("/notes/{uid}"))
        .await
        .expect_error(404, "not_found");
    assert_eq!(get(&host, "/stats").await.expect(200), json!({"notes": 1}));
}

async fn bad_input_is_refused_alike(backends: Backends, language: Language) {
    let host = start(backends, language);
    let ada = host.token("ada", &[]);
    let refusals: Vec<(Reply, u16, &str, &str)> = vec![
        (
            send(
                &host,
                Method::POST,
                "/notes",
                Some(&ada),
                &json!({"body": "x"}),
            )
            .await,
            400,
            "bad_request",
            "Missing key(s): title",
        ),
        (
            send(
                &host,
                Method::POST,
                "/notes",
                Some(&ada),
                &json!({"title": "t", "color": 1, "age": 2}),
            )
            .await,
            400,
            "bad_request",
            "Unknown key(s): age, color",
        ),
        (
            send(&host, Method::POST, "/notes", Some(&ada), &json!([1])).await,
            400,
            "bad_request",
            "The body must be a JSON object",
        ),
        (
            host.send(
                host.client()
                    .post(host.url("/notes-api/notes"))
                    .bearer_auth(&ada)
                    .body("{\"title\": "),
            )
            .await,
            400,
            "bad_request",
            "Malformed body",
        ),
        (
            send(&host, Method::PATCH, "/notes/x", Some(&ada), &json!({})).await,
            400,
            "bad_request",
            "No changes",
        ),
        (
            send(
                &host,
                Method::PATCH,
                "/notes/x",
                Some(&ada),
                &json!({"title": null}),
            )
            .await,
            400,
            "bad_request",
            "Required key(s) cannot be null: title",
        ),
        (
            send(
                &host,
                Method::PATCH,
                "/notes/x",
                Some(&ada),
                &json!({"body": "b"}),
            )
            .await,
            404,
            "not_found",
            "No notes record with uid x",
        ),
        (
            get(&host, "/notes?limit=0").await,
            400,
            "bad_request",
            "limit must be an integer from 1 to 100",
        ),
        (
            get(&host, "/notes?color=red").await,
            400,
            "bad_request",
            "Unknown query parameter(s): color",
        ),
        (
            send(
                &host,
                Method::POST,
                "/notes/x/share",
                Some(&ada),
                &json!({"to": 5}),
            )
            .await,
            400,
            "bad_request",
            "'to' must be a string",
        ),
        (
            send(
                &host,
                Method::POST,
                "/notes/x/share",
                Some(&ada),
                &json!({}),
            )
            .await,
            400,
            "bad_request",
            "Missing key(s): to",
        ),
    ];
    for (reply, status, code, message) in refusals {
        assert_eq!(reply.expect_error(status, code), message, "{reply}");
    }
    // Nothing was stored by a refused request.
    assert_eq!(get(&host, "/stats").await.expect(200), json!({"notes": 0}));
    assert_eq!(shared(&host).await, Vec::<Value>::new());

    // A handler that fails on what it did not expect (a cached summary that
    // is not JSON): 500 in the error shape, the details in the log only.
    host.json(
        Method::POST,
        "/testbed/cache",
        None,
        &json!({"op": "set", "store": "notes-summaries", "key": "summary:broken", "value": "{not json"}),
    )
    .await
    .expect(200);
    let failed = get(&host, "/notes/broken/summary").await;
    failed.expect_error(500, "internal");
    let shown = failed.text();
    for detail in [
        "Traceback",
        "SyntaxError",
        "JSONDecodeError",
        "line ",
        ".py",
        ".js",
    ] {
        assert!(
            !shown.contains(detail),
            "the answer shows {detail:?}: {shown}"
        );
    }
    let logged = match language {
        Language::Rust => "a cached summary is not JSON",
        Language::Python => "Traceback (most recent call last)",
        Language::JavaScript => "SyntaxError",
    };
    host.wait_for_log("the failure's details", |l| {
        l["level"] == "ERROR" && l["message"].as_str().is_some_and(|m| m.contains(logged))
    })
    .await;
}

/// The component in `language` mounted once per `(mount, webhook, hosts)`,
/// each with its own table; a mount without a webhook has none configured.
fn publishing_manifest(language: Language, mounts: &[(&str, Option<String>, &str)]) -> String {
    let wasm = language.wasm();
    let mut text = String::from("[defaults]\nmemory_mb = 128\ntimeout_ms = 20000\n");
    for (mount, webhook, hosts) in mounts {
        let name = mount.trim_start_matches('/');
        let webhook = webhook
            .as_ref()
            .map_or_else(String::new, |url| format!("webhook = \"{url}\"\n"));
        text.push_str(&format!(
            r#"
[components.{name}]
wasm = "{{WASM}}/{wasm}.wasm"
mount = "{mount}"
tables = ["notes_{name}"]
hosts = {hosts}

[components.{name}.config]
table = "notes_{name}"
{webhook}
[[components.{name}.routes]]
path = "/notes"
methods = ["POST"]
auth = "caller"

[[components.{name}.routes]]
path = "/notes/{{id}}"
methods = ["GET"]
auth = "public"

[[components.{name}.routes]]
path = "/notes/{{id}}/publish"
methods = ["POST"]
auth = "caller"
"#
        ));
    }
    text
}

async fn publishing_sends_the_note_to_the_granted_webhook_only(
    backends: Backends,
    language: Language,
) {
    let webhook = Webhook::start();
    let closed = free_port();
    let granted = format!(r#"["http://127.0.0.1:{}"]"#, webhook.port);
    let host = Host::start_on(
        backends,
        &publishing_manifest(
            language,
            &[
                (
                    "/granted",
                    Some(format!("http://127.0.0.1:{}/hooks/notes?v=1", webhook.port)),
                    &granted,
                ),
                // The same webhook under a name the manifest does not grant.
                (
                    "/elsewhere",
                    Some(format!("http://localhost:{}/hooks/notes", webhook.port)),
                    &granted,
                ),
                // A granted port nothing listens on.
                (
                    "/closed",
                    Some(format!("http://127.0.0.1:{closed}/hooks/notes")),
                    &format!(r#"["http://127.0.0.1:{closed}"]"#),
                ),
                ("/unset", None, &granted),
            ],
        ),
    );
    let ada = host.token("ada", &[]);
    let create = |mount: &'static str| {
        let (host, ada) = (&host, &ada);
        async move {
            let note = host
                .json(
                    Method::POST,
                    &format!("{mount}/notes"),
                    Some(ada),
                    &json!({"title": "Launch", "body": "at noon", "tags": ["a", "b"]}),
                )
                .await
                .expect(201);
            note["uid"].as_str().expect("a uid").to_owned()
        }
    };
    let publish = |mount: &'static str, uid: String| {
        let (host, ada) = (&host, &ada);
        async move {
            host.json(
                Method::POST,
                &format!("{mount}/notes/{uid}/publish"),
                Some(ada),
                &json!({}),
            )
            .await
        }
    };

    // The note's record, as JSON, to the webhook; the answer carries its status.
    let uid = create("/granted").await;
    let note = host.get(&format!("/granted/notes/{uid}")).await.expect(200);
    let published = publish("/granted", uid.clone()).await.expect(200);
    assert_eq!(published, json!({"published": uid, "status": 202}));
    let received = webhook.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let sent = &received[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/hooks/notes?v=1")
    );
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&sent.body).expect("the webhook got JSON");
    assert_eq!(body, note);

    // A missing note: 404, and nothing sent.
    let missing = publish("/granted", "nope".into()).await;
    assert_eq!(missing.expect_error(404, "not_found"), "No note nope");

    // A host the manifest does not grant: refused by the host, nothing sent.
    let uid = create("/elsewhere").await;
    let refused = publish("/elsewhere", uid).await;
    assert_eq!(
        refused.expect_error(500, "not_granted"),
        format!(
            "the manifest does not grant the host localhost:{}",
            webhook.port
        )
    );

    // A granted host that cannot be reached: 502.
    let uid = create("/closed").await;
    let unreachable = publish("/closed", uid).await;
    assert_eq!(
        unreachable.expect_error(502, "bad_gateway"),
        format!("127.0.0.1:{closed} could not be reached: ErrorCode::ConnectionRefused")
    );

    // No webhook configured: a clear 500.
    let uid = create("/unset").await;
    let unset = publish("/unset", uid).await;
    assert_eq!(
        unset.expect_error(500, "internal"),
        "config key 'webhook' is not set"
    );

    assert_eq!(
        webhook.received().len(),
        1,
        "a refused publish reached the webhook"
    );
}
