//! Properties of the API Gateway adapters on generated events: any JSON
//! never panics, and a well-formed event becomes a request whose method,
//! path, query, headers and body are the event's.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{STANDARD, from_v1, from_v2};
use base64::Engine as _;

fn config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..Default::default()
    }
}

/// Any JSON value, a few levels deep, with the adapters' field names among the keys.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        proptest::sample::select(vec![
            "httpMethod",
            "path",
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "body",
            "isBase64Encoded",
            "requestContext",
            "http",
            "method",
            "rawPath",
            "rawQueryString",
            "cookies",
            "stage",
            "authorizer",
            "claims",
            "jwt",
            "sub",
            "version",
        ])
        .prop_map(str::to_owned),
        ".{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn header_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9-]{0,12}"
}

/// Header names that differ after lower-casing, with any text values.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::btree_map(header_name().prop_map(|n| n.to_ascii_lowercase()), ".{0,20}", 0..6)
        .prop_map(|m| m.into_iter().collect())
}

fn body() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        ".{0,40}".prop_map(|s| (s.into_bytes(), false)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| (b, true)),
    ]
}

fn method() -> impl Strategy<Value = String> {
    proptest::sample::select(vec!["GET", "post", "Patch", "DELETE", "OPTIONS", "brew"]).prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_json_never_panics(event in any_json()) {
        let _ = from_v1(&event);
        let _ = from_v2(&event);
    }

    #[test]
    fn a_rest_api_event_becomes_its_request(
        method in method(),
        path in "/.{0,30}",
        headers in headers(),
        query in proptest::collection::btree_map(".{1,8}", ".{0,8}", 0..5),
        (body, base64) in body(),
    ) {
        let event = json!({
            "httpMethod": method,
            "path": path,
            "headers": headers.iter().map(|(k, v)| (k.to_uppercase(), json!(v))).collect::<Map<_, _>>(),
            "queryStringParameters": query,
            "body": if base64 { STANDARD.encode(&body) } else { String::from_utf8(body.clone()).unwrap() },
            "isBase64Encoded": base64,
            "requestContext": {"stage": "prod"},
        });
        let request = from_v1(&event).map_err(TestCaseError::fail)?;
        prop_assert_eq!(request.method, method.to_ascii_uppercase());
        prop_assert_eq!(request.path, path);
        prop_assert_eq!(request.headers, headers);
        let parsed: std::collections::BTreeMap<String, String> = form_urlencoded::parse(request.query.as_bytes()).into_owned().collect();
        prop_assert_eq!(parsed, query);
        prop_assert_eq!(&request.body[..], &body[..]);
        prop_assert!(request.verified_caller.is_none());
    }

    #[test]
    fn an_http_api_event_becomes_its_request(
        method in method(),
        stage in proptest::option::of(prop_oneof![Just("$default".to_owned()), "[a-z]{1,6}"]),
        path in "(/[a-z%0-9.]{0,6}){0,4}",
        query in "[a-z0-9=&%+]{0,30}",
        headers in headers(),
        cookies in proptest::collection::vec("[a-z]{1,4}=[a-z0-9]{0,4}", 0..3),
        (body, base64) in body(),
    ) {
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let raw_path = match stage.as_deref() {
            Some(s) if s != "$default" => format!("/{s}{}", if path == "/" { "" } else { &path }),
            _ => path.clone(),
        };
        let headers: Vec<(String, String)> = headers.into_iter().filter(|(k, _)| k != "cookie").collect();
        let event = json!({
            "version": "2.0",
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
            "cookies": cookies,
            "body": if base64 { STANDARD.encode(&body) } else { String::from_utf8(body.clone()).unwrap() },
            "isBase64Encoded": base64,
            "requestContext": {"stage": stage, "http": {"method": method}},
        });
        let request = from_v2(&event).map_err(TestCaseError::fail)?;
        prop_assert_eq!(request.method, method.to_ascii_uppercase());
        prop_assert_eq!(&request.path, &path, "raw path {}", raw_path);
        prop_assert_eq!(request.query, query);
        let mut expected = headers.clone();
        if !cookies.is_empty() {
            expected.push(("cookie".into(), cookies.join("; ")));
        }
        prop_assert_eq!(request.headers, expected);
        prop_assert_eq!(&request.body[..], &body[..]);
    }

    #[test]
    fn a_body_that_is_not_base64_is_refused(text in "[^A-Za-z0-9+/=]{1,10}") {
        let event = json!({"httpMethod": "POST", "path": "/", "body": text, "isBase64Encoded": true, "requestContext": {}});
        prop_assert!(from_v1(&event).is_err());
    }
}
