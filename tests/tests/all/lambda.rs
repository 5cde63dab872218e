//! The Lambda edge through a real Lambda runtime API: cargo-lambda's
//! emulator (`cargo lambda watch --only-lambda-apis`) runs the runtime API,
//! the `corral` binary serves it as a Lambda function would, and events are
//! sent with `cargo lambda invoke`. The events are AWS's published samples
//! (from the aws_lambda_events crate), adapted to the manifests they meet; see
//! tests/fixtures/lambda/README.md.

use crate::common;

use std::path::Path;

use common::lambda::{
    Lambda, failures, http_json, read_fixture, sorted_keys, v1_header, v2_header,
};
use common::registry::{create_bucket, publish, with_custom_section};
use serde_json::{Value, json};

/// The students resource (tests/manifests/students.toml), and two testbed
/// components that consume events (tests/manifests/lambda.toml).
fn manifest() -> String {
    common::manifests::manifest("students") + &common::manifests::manifest("lambda")
}

#[test]
fn rest_api_requests_with_cognito_claims_act_as_the_claims_subject() {
    let mut lambda = Lambda::start(&manifest());

    let answer = lambda.invoke_fixture("apigw-v1-post-students-cognito.json");
    // Payload 1.0 answers carry multi-value headers only.
    assert_eq!(
        sorted_keys(&answer),
        ["body", "isBase64Encoded", "multiValueHeaders", "statusCode"],
        "{answer}"
    );
    let created = http_json(&answer, 201);
    assert_eq!(
        created["creator_uid"], "7d8ca528-4931-4254-9273-ea5ee853f271",
        "{created}"
    );
    assert_eq!(
        created["last_updater_uid"], "7d8ca528-4931-4254-9273-ea5ee853f271",
        "{created}"
    );
    assert_eq!(
        (&created["name"], &created["email"], &created["major"]),
        (
            &json!("Ada Lovelace"),
            &json!("ada@example.org"),
            &json!("math")
        ),
        "{created}"
    );
    let uid = created["uid"].as_str().expect("a uid");
    assert!(common::text::is_uuid(uid), "{created}");
    assert_eq!(v1_header(&answer, "content-type"), "application/json");
    assert_eq!(v1_header(&answer, "location"), format!("/students/{uid}"));
    assert!(!v1_header(&answer, "x-request-id").is_empty());

    // It is stored: the public list shows it.
    let listed = http_json(&lambda.http("GET", "/students", None), 200);
    assert_eq!(listed["items"], json!([created]), "{listed}");

    // Multi-value query parameters reach the component in order, all of them.
    let answer = lambda.invoke_fixture("apigw-v1-echo-multi-value.json");
    let echo = http_json(&answer, 200);
    assert_eq!(
        (&echo["method"], &echo["mount"], &echo["path"]),
        (&json!("POST"), &json!("/jobs"), &json!("/testbed/echo")),
        "{echo}"
    );
    assert_eq!(
        echo["query"],
        json!([["name", "me"], ["name", "me2"]]),
        "{echo}"
    );
    assert_eq!(echo["body"], "{\r\n\t\"a\": 1\r\n}", "{echo}");
    assert_eq!(
        echo["headers"]["content-type"], "application/json",
        "{echo}"
    );
    assert_eq!(
        echo["request_id"].as_str(),
        Some(v1_header(&answer, "x-request-id")),
        "{echo}"
    );
}

#[test]
fn http_api_requests_with_a_jwt_authorizer_act_as_the_token_subject() {
    let mut lambda = Lambda::start(&manifest());

    let answer = lambda.invoke_fixture("apigw-v2-post-students-jwt.json");
    assert_eq!(
        sorted_keys(&answer),
        [
            "body",
            "cookies",
            "headers",
            "isBase64Encoded",
            "statusCode"
        ],
        "{answer}"
    );
    assert_eq!(answer["cookies"], json!([]), "{answer}");
    let created = http_json(&answer, 201);
    assert_eq!(
        created["creator_uid"], "0a1b2c3d-aaaa-bbbb-cccc-000000000002",
        "{created}"
    );
    assert_eq!(
        (&created["name"], &created["year"]),
        (&json!("Grace Hopper"), &json!(3)),
        "{created}"
    );
    assert_eq!(v2_header(&answer, "content-type"), "application/json");
    let uid = created["uid"].as_str().expect("a uid");
    assert_eq!(v2_header(&answer, "location"), format!("/students/{uid}"));

    let read = lambda.http("GET", &format!("/students/{uid}"), None);
    assert_eq!(http_json(&read, 200), created, "{read}");
    let missing = lambda.http(
        "GET",
        "/students/00000000-0000-0000-0000-000000000000",
        None,
    );
    assert_eq!(
        http_json(&missing, 404)["error"]["code"],
        "not_found",
        "{missing}"
    );
}

#[test]
fn http_api_requests_without_a_caller_get_401_on_caller_routes() {
    let mut lambda = Lambda::start(&manifest());

    let answer = lambda.invoke_fixture("apigw-v2-post-students-anonymous.json");
    assert_eq!(answer["statusCode"], 401, "{answer}");
    assert_eq!(v2_header(&answer, "content-type"), "application/json");
    let error = http_json(&answer, 401);
    assert_eq!(sorted_keys(&error), ["error"], "{error}");
    assert_eq!(
        sorted_keys(&error["error"]),
        ["code", "message", "request_id"],
        "{error}"
    );
    assert_eq!(error["error"]["code"], "unauthorized", "{error}");
    assert_eq!(
        error["error"]["request_id"].as_str(),
        Some(v2_header(&answer, "x-request-id")),
        "{error}"
    );

    // Nothing was stored.
    let listed = http_json(&lambda.http("GET", "/students", None), 200);
    assert_eq!(listed["items"], json!([]), "{listed}");
}

#[test]
fn http_api_paths_lose_a_named_stage_and_bodies_arrive_decoded() {
    let mut lambda = Lambda::start(&manifest());

    // rawPath "/prod/jobs/testbed/echo" in stage "prod", a base64 body,
    // a repeated query parameter and two cookies.
    let echo = http_json(
        &lambda.invoke_fixture("apigw-v2-echo-stage-multi-value-base64.json"),
        200,
    );
    assert_eq!(
        (&echo["method"], &echo["mount"], &echo["path"]),
        (&json!("POST"), &json!("/jobs"), &json!("/testbed/echo")),
        "{echo}"
    );
    assert_eq!(echo["params"], json!({ "action": "echo" }), "{echo}");
    assert_eq!(echo["body"], "{\r\n\t\"a\": 1\r\n}", "{echo}");
    assert_eq!(
        echo["query"],
        json!([["Parameter1", "value1"], ["Parameter1", "value2"]]),
        "{echo}"
    );
    assert_eq!(echo["headers"]["cookie"], "cookie1; cookie2", "{echo}");
    assert_eq!(echo["headers"]["header2"], "value1,value2", "{echo}");
}

#[test]
fn sqs_batches_report_exactly_the_failed_messages() {
    let mut lambda = Lambda::start(&manifest());

    // Three messages for queue "jobs"; the consumer fails the one whose body is "fail".
    let answer = lambda.invoke_fixture("sqs-jobs-batch.json");
    assert_eq!(answer, failures(&["MessageID_2"]));

    let handled = lambda.handled("/jobs", "jobs_log");
    let mut seen: Vec<(&str, &str, &str, &str)> = handled
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("no {k}: {r}"));
            (
                field("event_id"),
                field("body"),
                field("kind"),
                field("source"),
            )
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            ("MessageID_1", "first job", "message", "queue:jobs"),
            ("MessageID_3", "third job", "message", "queue:jobs"),
        ]
    );

    // Messages of a queue no component consumes are all reported as failed.
    assert_eq!(
        lambda.invoke_fixture("example-sqs-event.json"),
        failures(&["MessageID_1"])
    );
    assert_eq!(lambda.handled("/jobs", "jobs_log").len(), 2);
}

#[test]
fn dynamodb_stream_batches_report_the_first_failed_sequence_number() {
    let mut lambda = Lambda::start(&manifest());

    // The consumer keeps one record per item: a unique index on the item's
    // keys makes a second change to the same item fail.
    let listed = lambda.handled("/changes", "changes_log");
    assert_eq!(listed, Vec::<Value>::new());
    let index = "CREATE UNIQUE INDEX changes_log_item ON changes_log \
                 (json_extract(json_extract(data, '$.body'), '$.keys'))";
    lambda.testbed("/changes", "sql", &json!({ "sql": index }));

    // An INSERT (…832), a second INSERT of the same item (…833) and a REMOVE
    // of it (…834): the last two fail, and the first of them is reported.
    let answer = lambda.invoke_fixture("dynamodb-events-stream.json");
    assert_eq!(answer, failures(&["1405400000000002063282833"]));

    let handled = lambda.handled("/changes", "changes_log");
    assert_eq!(handled.len(), 1, "{handled:?}");
    let record = &handled[0];
    assert_eq!(
        (&record["event_id"], &record["kind"], &record["source"]),
        (
            &json!("1405400000000002063282832"),
            &json!("INSERT"),
            &json!("table:events")
        ),
        "{record}"
    );
    let change: Value =
        serde_json::from_str(record["body"].as_str().expect("a text body")).expect("a JSON body");
    assert_eq!(
        change,
        json!({
            "keys": { "val": "data", "key": "binary" },
            "new_image": {
                "val": "data",
                "asdf1": "AAEqQQ==",
                "asdf2": ["AAEqQQ==", "QSoBAA=="],
                "key": "binary"
            },
            "old_image": null
        })
    );

    // Records of a table no component consumes fail from the first one on.
    assert_eq!(
        lambda.invoke_fixture("example-dynamodb-event.json"),
        failures(&["1405400000000002063282832"])
    );
    assert_eq!(lambda.handled("/changes", "changes_log").len(), 1);
}

#[test]
fn dynamodb_stream_batches_that_succeed_report_no_failure() {
    let mut lambda = Lambda::start(&manifest());

    // Without the unique index every change is recorded.
    let answer = lambda.invoke_fixture("dynamodb-events-stream.json");
    assert_eq!(answer, json!({ "batchItemFailures": [] }));
    let handled = lambda.handled("/changes", "changes_log");
    let mut seen: Vec<(&str, &str)> = handled
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().expect("an id"),
                r["kind"].as_str().expect("a kind"),
            )
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            ("1405400000000002063282832", "INSERT"),
            ("1405400000000002063282833", "INSERT"),
            ("1405400000000002063282834", "REMOVE"),
        ]
    );
    let removed = handled
        .iter()
        .find(|r| r["kind"] == "REMOVE")
        .expect("the REMOVE record");
    let change: Value =
        serde_json::from_str(removed["body"].as_str().expect("a text body")).expect("a JSON body");
    assert_eq!(change["new_image"], Value::Null, "{change}");
    assert_eq!(change["old_image"]["key"], "binary", "{change}");
}

#[test]
fn warm_up_pings_run_no_component() {
    let mut lambda = Lambda::start(&manifest());

    assert_eq!(
        lambda.invoke_fixture("warmup-serverless-plugin.json"),
        json!({ "warmed": true })
    );
    assert_eq!(
        lambda.invoke_fixture("example-eventbridge-schedule.json"),
        json!({ "warmed": true })
    );
    // Then one request, whose log line comes after anything the pings logged.
    let listed = http_json(&lambda.http("GET", "/students", None), 200);
    assert_eq!(listed["items"], json!([]), "{listed}");

    let logs = lambda.logs_when("for the GET request", |logs| {
        logs.iter().any(|l| l["target"] == "corral::request")
    });
    let requests: Vec<&Value> = logs
        .iter()
        .filter(|l| l["target"] == "corral::request")
        .collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (&requests[0]["method"], &requests[0]["path"]),
        (&json!("GET"), &json!("/students"))
    );
    let pings = logs
        .iter()
        .filter(|l| l["message"] == "warm-up ping")
        .count();
    assert_eq!(pings, 2, "{}", lambda.stderr());
    assert!(
        !logs
            .iter()
            .any(|l| l["target"] == "corral::component" || l["message"] == "event batch"),
        "a component ran: {}",
        lambda.stderr()
    );
    // One metric line: the GET's.
    let metrics = lambda.stdout_when(1);
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert_eq!(metrics[0]["component"], "students", "{metrics:?}");
}

#[test]
fn s3_object_notifications_reach_the_component_of_their_bucket() {
    let manifest = manifest() + &common::manifests::manifest("lambda_uploads");
    let mut lambda = Lambda::start(&manifest);

    // A notification of the subscribed bucket: the component gets what
    // changed (never the object), with the key decoded.
    let mut notice = read_fixture("example-s3-event.json");
    notice["Records"][0]["s3"]["bucket"]["name"] = json!("uploads-bucket");
    assert_eq!(lambda.invoke(&notice), json!({ "acknowledged": 1 }));
    let handled = lambda.handled("/uploads", "uploads_log");
    assert_eq!(handled.len(), 1, "{handled:?}");
    assert_eq!(handled[0]["kind"], "ObjectCreated:Put", "{handled:?}");
    assert_eq!(handled[0]["source"], "objects:uploads-bucket");
    let body: Value = serde_json::from_str(handled[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (
            &body["bucket"],
            &body["key"],
            &body["size"],
            &body["event_name"]
        ),
        (
            &json!("uploads-bucket"),
            &json!("Happy Face.jpg"),
            &json!(1024),
            &json!("ObjectCreated:Put")
        ),
        "{body}"
    );

    // A bucket no component takes fails the invocation, so Lambda retries
    // it and then hands it to the failure destination: nothing is lost.
    let failure = lambda.invoke_failing(&read_fixture("example-s3-event.json"));
    assert!(failure.contains("object event(s) failed"), "{failure}");
    lambda.logs_when("about the unconsumed bucket", |logs| {
        logs.iter().any(|l| {
            l["level"] == "ERROR"
                && l["message"]
                    == "no component consumes these records; they are reported as failed"
        })
    });
    assert_eq!(lambda.handled("/uploads", "uploads_log").len(), 1);

    // An SNS notification: corral is not wired to SNS.
    assert_eq!(
        lambda.invoke_fixture("example-sns-event.json"),
        json!({ "error": "unrecognized event" })
    );
    lambda.logs_when("about the unrecognized event", |logs| {
        logs.iter()
            .any(|l| l["level"] == "ERROR" && l["message"] == "unrecognized event; nothing was run")
    });

    // The function keeps serving.
    let listed = http_json(&lambda.http("GET", "/students", None), 200);
    assert_eq!(listed["items"], json!([]), "{listed}");
    assert!(
        lambda
            .function
            .try_wait()
            .expect("checking the function")
            .is_none()
    );
}

#[test]
fn http_invocations_write_metric_lines_and_json_logs_with_the_lambda_request_id() {
    let mut lambda = Lambda::start(&manifest());

    // The first invocation of the process is the cold start.
    assert_eq!(
        lambda.invoke_fixture("warmup-serverless-plugin.json"),
        json!({ "warmed": true })
    );
    let answers = [
        lambda.http("GET", "/students", None),
        lambda.http("GET", "/jobs/testbed/trap", None),
        lambda.http("GET", "/nowhere", None),
    ];
    let statuses: Vec<&Value> = answers.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(statuses, [&json!(200), &json!(500), &json!(404)]);

    // One embedded-metric-format line per request, on stdout.
    let metrics = lambda.stdout_when(3);
    assert_eq!(metrics.len(), 3, "{metrics:?}");
    let expected = [("students", 200, 0), ("jobs", 500, 1), ("-", 404, 0)];
    for (line, (component, status, errors)) in metrics.iter().zip(expected) {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "corral", "{line}");
        assert_eq!(directive["Dimensions"], json!([["component"]]), "{line}");
        let names: Vec<&Value> = directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| &m["Name"])
            .collect();
        assert_eq!(
            names,
            [&json!("Requests"), &json!("Errors"), &json!("Duration")],
            "{line}"
        );
        assert!(
            line["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 0),
            "{line}"
        );
        assert_eq!(
            (
                &line["component"],
                &line["status"],
                &line["Requests"],
                &line["Errors"]
            ),
            (&json!(component), &json!(status), &json!(1), &json!(errors)),
            "{line}"
        );
        assert!(
            line["Duration"].as_f64().is_some_and(|d| d >= 0.0),
            "{line}"
        );
    }

    // Every log line is JSON (`logs` panics otherwise). The ping's line
    // carries the invocation's Lambda request id and the cold start.
    let logs = lambda.logs_when("for all three requests", |logs| {
        logs.iter()
            .filter(|l| l["target"] == "corral::request")
            .count()
            == 3
    });
    let ping = logs
        .iter()
        .find(|l| l["message"] == "warm-up ping")
        .expect("the ping's line");
    assert_eq!(ping["span"]["cold_start"], true, "{ping}");
    let ping_id = ping["span"]["lambda_request_id"]
        .as_str()
        .unwrap_or_default();
    assert!(!ping_id.is_empty(), "{ping}");

    // Each request's line: the request id is the Lambda request id (also
    // in x-request-id), and the line carries the invocation's fields.
    let requests: Vec<&Value> = logs
        .iter()
        .filter(|l| l["target"] == "corral::request")
        .collect();
    for (line, answer) in requests.iter().zip(&answers) {
        let id = v2_header(answer, "x-request-id");
        assert_ne!(id, ping_id);
        assert_eq!(line["request_id"], id, "{line}");
        assert_eq!(line["status"], answer["statusCode"], "{line}");
        assert_eq!(
            line["span"]["lambda_request_id"], id,
            "the request's log line lacks the invocation's lambda_request_id: {line}"
        );
        assert_eq!(line["span"]["cold_start"], false, "{line}");
    }
    // A component's own log lines carry the request id too.
    let trap_id = v2_header(&answers[1], "x-request-id");
    assert!(
        logs.iter()
            .any(|l| l["request_id"] == trap_id && l["target"] != "corral::request"),
        "no other line for the trapped request {trap_id}: {}",
        lambda.stderr()
    );
}

/// A registry component on S3: an S3 notification about its objects
/// reloads it within that invocation, long before the hourly check.
#[test]
fn s3_notices_about_a_published_component_swap_it_at_once() {
    let moto = common::aws::moto_url();
    let env = common::aws::moto_env(&moto);
    let bucket = create_bucket(&moto);
    let store = format!("s3://{bucket}/components");
    let publish = |file: &Path| publish(file, "tb", &store, &env, &[]);
    let v1 = publish(&common::paths::wasm("testbed"));
    let manifest = format!(
        r#"{}
[backends.registry]
store = "{store}"
check_seconds = 3600

[backends.auth]
kind = "dev"
"#,
        common::manifests::manifest("registry_tb")
    );
    let mut lambda = Lambda::start_with_env(&manifest, &env);
    let answer = lambda.http("GET", "/tb/testbed/ping", None);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(v2_header(&answer, "x-corral-version"), &v1[..12]);

    // v2: the testbed with a custom section appended (another digest).
    let bytes = std::fs::read(common::paths::wasm("testbed")).unwrap();
    let v2_file = lambda.dir.path().join("v2.wasm");
    std::fs::write(&v2_file, with_custom_section(&bytes, "v2")).unwrap();
    let v2 = publish(&v2_file);
    let answer = lambda.http("GET", "/tb/testbed/ping", None);
    assert_eq!(
        v2_header(&answer, "x-corral-version"),
        &v1[..12],
        "swapped without a notice"
    );

    let mut notice = read_fixture("example-s3-event.json");
    notice["Records"][0]["s3"]["bucket"]["name"] = json!(bucket);
    notice["Records"][0]["s3"]["object"]["key"] = json!("components/tb/versions.json");
    assert_eq!(lambda.invoke(&notice), json!({ "acknowledged": 1 }));
    let answer = lambda.http("GET", "/tb/testbed/ping", None);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(
        v2_header(&answer, "x-corral-version"),
        &v2[..12],
        "{}",
        lambda.stderr()
    );
}
