//! Cache stores kept in the LAG-Alma-Utils item layout: items written by
//! the original application (native attributes, its own key and TTL
//! attributes) read through a component, items a component writes read as
//! the original's, expiry by the TTL attribute, and `set-if` by attributes.

use crate::common;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as A, KeyType};
use common::manifests::manifest;
use common::{Backends, Host, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    layout_values_are_objects_with_key_and_expiry,
    set_if_compares_attributes,
}

fn start(backends: Backends) -> Host {
    Host::start_with_cache_settings(
        backends,
        &manifest("cache_layout"),
        &[],
        &[],
        &manifest("cache_layout_backends"),
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn cache(host: &Host, body: Value) -> Value {
    host.json(Method::POST, "/testbed/cache", None, &body)
        .await
        .expect(200)
}

/// The stored object of `key`, or null.
async fn get(host: &Host, store: &str, key: &str) -> Value {
    let got = cache(host, json!({ "op": "get", "store": store, "key": key })).await;
    match got["value"].as_str() {
        Some(text) => serde_json::from_str(text).expect("a layout value is JSON"),
        None => Value::Null,
    }
}

async fn set(host: &Host, store: &str, key: &str, value: Value, ttl: Option<u32>) {
    let body =
        json!({ "op": "set", "store": store, "key": key, "value": value.to_string(), "ttl": ttl });
    assert_eq!(cache(host, body).await, json!({ "ok": true }));
}

async fn set_if(host: &Host, key: &str, value: Value, expected: Option<&Value>) -> bool {
    let body = json!({
        "op": "set-if", "store": "alma-users", "key": key, "value": value.to_string(),
        "expected": expected.map(Value::to_string),
    });
    cache(host, body).await["stored"]
        .as_bool()
        .expect("set-if answers stored")
}

async fn layout_values_are_objects_with_key_and_expiry(backends: Backends) {
    let host = start(backends);
    set(
        &host,
        "alma-users",
        "u1",
        json!({ "loan_ids": ["l1"], "request_ids": [] }),
        Some(3600),
    )
    .await;
    let user = get(&host, "alma-users", "u1").await;
    let expiry = user["expiry_date"]
        .as_i64()
        .expect("the TTL attribute is a number");
    assert!((now() + 3599..=now() + 3601).contains(&expiry), "{user}");
    assert_eq!(
        user,
        json!({ "primary_id": "u1", "loan_ids": ["l1"], "request_ids": [], "expiry_date": expiry })
    );

    // Without a ttl, the value's own TTL attribute is the expiry; one at or
    // before now reads as absent.
    let later = now() + 600;
    set(
        &host,
        "alma-users",
        "u2",
        json!({ "loan_ids": [], "expiry_date": later }),
        None,
    )
    .await;
    assert_eq!(
        get(&host, "alma-users", "u2").await["expiry_date"],
        json!(later)
    );
    set(
        &host,
        "alma-users",
        "u3",
        json!({ "loan_ids": [], "expiry_date": now() - 5 }),
        None,
    )
    .await;
    assert_eq!(get(&host, "alma-users", "u3").await, Value::Null);
    let many = cache(
        &host,
        json!({ "op": "get-many", "store": "alma-users", "keys": ["u1", "u3", "u2"] }),
    )
    .await;
    let keys: Vec<&String> = many["values"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["u1", "u2"]);

    // A value that is not a JSON object is refused and changes nothing.
    for bad in ["[1, 2]", "\"text\"", "not json"] {
        let refused = host
            .json(
                Method::POST,
                "/testbed/cache",
                None,
                &json!({ "op": "set", "store": "alma-users", "key": "u1", "value": bad }),
            )
            .await;
        assert!(
            refused
                .expect_error(400, "bad_request")
                .contains("JSON object"),
            "{bad}"
        );
    }
    assert_eq!(get(&host, "alma-users", "u1").await, user);

    cache(
        &host,
        json!({ "op": "delete", "store": "alma-users", "key": "u1" }),
    )
    .await;
    assert_eq!(get(&host, "alma-users", "u1").await, Value::Null);
}

async fn set_if_compares_attributes(backends: Backends) {
    let host = start(backends);
    assert!(set_if(&host, "u1", json!({ "loan_ids": ["l1"] }), None).await);
    assert!(!set_if(&host, "u1", json!({ "loan_ids": ["x"] }), None).await);
    let read = get(&host, "alma-users", "u1").await;

    // Only the attributes `expected` holds are compared.
    assert!(
        !set_if(
            &host,
            "u1",
            json!({ "loan_ids": ["l9"] }),
            Some(&json!({ "loan_ids": ["l0"] }))
        )
        .await
    );
    assert!(
        !set_if(
            &host,
            "u1",
            json!({ "loan_ids": ["l9"] }),
            Some(&json!({ "fee_ids": [] }))
        )
        .await
    );
    assert!(
        set_if(
            &host,
            "u1",
            json!({ "loan_ids": ["l1", "l2"] }),
            Some(&read)
        )
        .await
    );
    assert_eq!(
        get(&host, "alma-users", "u1").await["loan_ids"],
        json!(["l1", "l2"])
    );
    // The value read before that write is stale now.
    assert!(!set_if(&host, "u1", json!({ "loan_ids": [] }), Some(&read)).await);
    assert!(
        set_if(
            &host,
            "u1",
            json!({ "loan_ids": ["l3"] }),
            Some(&json!({ "loan_ids": ["l1", "l2"] }))
        )
        .await
    );
    assert_eq!(
        get(&host, "alma-users", "u1").await["loan_ids"],
        json!(["l3"])
    );

    // An expired item counts as absent: it matches nothing, and `expected = none` wins over it.
    set(
        &host,
        "alma-users",
        "u2",
        json!({ "loan_ids": ["old"], "expiry_date": now() - 5 }),
        None,
    )
    .await;
    assert!(
        !set_if(
            &host,
            "u2",
            json!({ "loan_ids": [] }),
            Some(&json!({ "loan_ids": ["old"] }))
        )
        .await
    );
    assert!(set_if(&host, "u2", json!({ "loan_ids": ["new"] }), None).await);
    assert_eq!(
        get(&host, "alma-users", "u2").await,
        json!({ "primary_id": "u2", "loan_ids": ["new"] })
    );
}

/// A DynamoDB client on the host's emulator.
fn dynamodb(host: &Host) -> Client {
    let env: HashMap<String, String> = host.aws_env().into_iter().collect();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(&env["AWS_ENDPOINT_URL"])
        .region(aws_sdk_dynamodb::config::Region::new(
            env["AWS_REGION"].clone(),
        ))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            &env["AWS_ACCESS_KEY_ID"],
            &env["AWS_SECRET_ACCESS_KEY"],
            None,
            None,
            "moto",
        ))
        .build();
    Client::from_conf(config)
}

fn s(text: &str) -> A {
    A::S(text.into())
}

fn n(number: impl ToString) -> A {
    A::N(number.to_string())
}

fn map(entries: &[(&str, A)]) -> A {
    A::M(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
    )
}

async fn put(db: &Client, table: &str, entries: &[(&str, A)]) {
    let item = entries
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    db.put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutItem into {table}: {e:?}"));
}

#[tokio::test]
async fn original_items_and_corral_items_share_the_tables() {
    let host = start(Backends::Aws);
    let db = dynamodb(&host);
    let table = |store: &str| format!("{}{store}", host.aws_prefix());

    // The tables corral created have the original key and TTL attributes.
    for (store, key, ttl) in [
        ("alma-users", "primary_id", "expiry_date"),
        ("alma-requests", "request_id", "record_expiry_date"),
        ("alma-fees", "id", "expiry_date"),
    ] {
        let described = db
            .describe_table()
            .table_name(table(store))
            .send()
            .await
            .unwrap();
        let schema = described.table().unwrap().key_schema();
        assert_eq!(schema.len(), 1);
        assert_eq!(
            (schema[0].attribute_name(), schema[0].key_type()),
            (key, &KeyType::Hash)
        );
        let ttl_spec = db
            .describe_time_to_live()
            .table_name(table(store))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ttl_spec
                .time_to_live_description()
                .and_then(|d| d.attribute_name()),
            Some(ttl)
        );
    }

    // Items exactly as the original application writes them.
    let expiry = now() + 7200;
    put(
        &db,
        &table("alma-users"),
        &[
            ("primary_id", s("u1")),
            ("loan_ids", A::L(vec![s("l1"), s("l2")])),
            ("request_ids", A::L(vec![])),
            ("fee_ids", A::L(vec![s("f1")])),
            ("expiry_date", n(expiry)),
        ],
    )
    .await;
    put(
        &db,
        &table("alma-users"),
        &[
            ("primary_id", s("gone")),
            ("loan_ids", A::L(vec![])),
            ("expiry_date", n(now() - 60)),
        ],
    )
    .await;
    put(
        &db,
        &table("alma-loans"),
        &[
            ("loan_id", s("l1")),
            ("user_id", s("u1")),
            ("renewable", A::Bool(true)),
            ("title", s("A book")),
            ("due_date", s("2030-01-01T00:00:00Z")),
            ("expiry_date", n(1_893_456_000)),
        ],
    )
    .await;
    put(
        &db,
        &table("alma-requests"),
        &[
            ("request_id", s("r1")),
            ("user_primary_id", s("u1")),
            (
                "request_sub_type",
                map(&[
                    ("value", s("PATRON_PHYSICAL")),
                    ("desc", s("Patron physical item request")),
                ]),
            ),
            ("place_in_queue", s("1")),
            ("record_expiry_date", n(expiry)),
        ],
    )
    .await;
    put(
        &db,
        &table("alma-fees"),
        &[
            ("id", s("f1")),
            (
                "user_primary_id",
                map(&[("value", s("u1")), ("link", s("https://alma/u1"))]),
            ),
            ("balance", n("12.5")),
            ("transactions", A::L(vec![s("{\"amount\":1}")])),
            ("expiry_date", n(expiry)),
        ],
    )
    .await;

    assert_eq!(
        get(&host, "alma-users", "u1").await,
        json!({ "primary_id": "u1", "loan_ids": ["l1", "l2"], "request_ids": [], "fee_ids": ["f1"], "expiry_date": expiry })
    );
    assert_eq!(get(&host, "alma-users", "gone").await, Value::Null);
    assert_eq!(
        get(&host, "alma-loans", "l1").await,
        json!({ "loan_id": "l1", "user_id": "u1", "renewable": true, "title": "A book",
                "due_date": "2030-01-01T00:00:00Z", "expiry_date": 1_893_456_000 })
    );
    assert_eq!(
        get(&host, "alma-requests", "r1").await,
        json!({ "request_id": "r1", "user_primary_id": "u1", "place_in_queue": "1", "record_expiry_date": expiry,
                "request_sub_type": { "value": "PATRON_PHYSICAL", "desc": "Patron physical item request" } })
    );
    assert_eq!(
        get(&host, "alma-fees", "f1").await,
        json!({ "id": "f1", "user_primary_id": { "value": "u1", "link": "https://alma/u1" }, "balance": 12.5,
                "transactions": ["{\"amount\":1}"], "expiry_date": expiry })
    );
    let many = cache(
        &host,
        json!({ "op": "get-many", "store": "alma-users", "keys": ["gone", "u1"] }),
    )
    .await;
    let keys: Vec<&String> = many["values"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["u1"]);

    // The other way round: what a component writes is the original item.
    let value = json!({
        "user_primary_id": "u1",
        "request_sub_type": { "value": "PATRON_PHYSICAL", "desc": "Patron physical item request" },
        "place_in_queue": "2",
        "resource_sharing": null,
        "renewable": false,
        "ids": ["a", 1],
    });
    set(&host, "alma-requests", "r2", value, Some(1_209_600)).await;
    let item = db
        .get_item()
        .table_name(table("alma-requests"))
        .key("request_id", s("r2"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the item corral wrote");
    let written = item["record_expiry_date"]
        .as_n()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert!(
        (now() + 1_209_599..=now() + 1_209_601).contains(&written),
        "{written}"
    );
    let expected: HashMap<String, A> = [
        ("request_id", s("r2")),
        ("user_primary_id", s("u1")),
        (
            "request_sub_type",
            map(&[
                ("value", s("PATRON_PHYSICAL")),
                ("desc", s("Patron physical item request")),
            ]),
        ),
        ("place_in_queue", s("2")),
        ("resource_sharing", A::Null(true)),
        ("renewable", A::Bool(false)),
        ("ids", A::L(vec![s("a"), n(1)])),
        ("record_expiry_date", n(written)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(item, expected);

    // set-if by attributes sees the original application's items.
    let read = get(&host, "alma-users", "u1").await;
    assert!(
        set_if(
            &host,
            "u1",
            json!({ "loan_ids": ["l2"], "expiry_date": expiry }),
            Some(&read)
        )
        .await
    );
    assert!(!set_if(&host, "u1", json!({ "loan_ids": [] }), Some(&read)).await);
    let user = db
        .get_item()
        .table_name(table("alma-users"))
        .key("primary_id", s("u1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(user["loan_ids"], A::L(vec![s("l2")]));
    assert_eq!(user["expiry_date"], n(expiry));
    assert!(
        !user.contains_key("fee_ids"),
        "a write replaces the whole item, as the original's Put does"
    );

    cache(
        &host,
        json!({ "op": "delete", "store": "alma-requests", "key": "r1" }),
    )
    .await;
    let deleted = db
        .get_item()
        .table_name(table("alma-requests"))
        .key("request_id", s("r1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(deleted.item.is_none());
}
