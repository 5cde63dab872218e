//! The Lambda edge through a real Lambda runtime API: cargo-lambda's
//! emulator (`cargo lambda watch --only-lambda-apis`) runs the runtime API,
//! the `corral` binary serves it as a Lambda function would, and events are
//! sent with `cargo lambda invoke`. The events are AWS's published samples
//! (from the aws_lambda_events crate), adapted to this file's manifest; see
//! tests/fixtures/lambda/README.md.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The students resource of the example manifest, and two testbed
/// components that consume events: `jobs` the SQS queue `jobs`, `changes`
/// the DynamoDB stream of table `events`. Each records what it handled in
/// its own table and serves the testbed actions under its mount.
const MANIFEST: &str = r#"
[defaults]
memory_mb = 64
timeout_ms = 10000

[components.students]
wasm = "{WASM}/crud.wasm"
tables = ["students"]

[components.students.config]
table = "students"
required = "name,email"
optional = "major,year"

[[components.students.routes]]
path = "/students"
methods = ["GET"]
auth = "public"

[[components.students.routes]]
path = "/students"
methods = ["POST"]
auth = "caller"

[[components.students.routes]]
path = "/students/{id}"
methods = ["GET"]
auth = "public"

[components.jobs]
wasm = "{WASM}/testbed.wasm"
mount = "/jobs"
tables = ["jobs_log"]

[components.jobs.config]
events_table = "jobs_log"

[[components.jobs.events]]
queue = "jobs"

[[components.jobs.routes]]
path = "/testbed/{action}"
methods = ["GET", "POST"]
auth = "public"

[components.changes]
wasm = "{WASM}/testbed.wasm"
mount = "/changes"
tables = ["changes_log"]

[components.changes.config]
events_table = "changes_log"

[[components.changes.events]]
table = "events"

[[components.changes.routes]]
path = "/testbed/{action}"
methods = ["GET", "POST"]
auth = "public"
"#;

/// How long the emulator may take to listen.
const EMULATOR_START: Duration = Duration::from_secs(60);
/// How long one invocation may take, the function's start included.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a log or metric line may take to reach the collecting thread.
const OUTPUT_WAIT: Duration = Duration::from_secs(5);

const INSTALL: &str = "python3 -m pip install --no-deps cargo-lambda";

/// The cargo-lambda binary (`cargo lambda ...` runs `cargo-lambda lambda ...`).
fn cargo_lambda() -> &'static str {
    match Command::new("cargo-lambda")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => "cargo-lambda",
        outcome => panic!(
            "cargo-lambda is not on PATH ({outcome:?}); install it with `{INSTALL}` \
             (scripts/test does)"
        ),
    }
}

fn fixture(name: &str) -> PathBuf {
    let path = common::workspace_root()
        .join("tests/fixtures/lambda")
        .join(name);
    assert!(path.is_file(), "missing fixture {}", path.display());
    path
}

fn read_fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).expect("reading a fixture");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// Collects a child's output, line by line, into a shared string.
fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let sink = Arc::new(Mutex::new(String::new()));
    let shared = sink.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => shared
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&line)),
            }
        }
    });
    sink
}

/// Reads a child's whole output on a thread; joining it gives the text.
fn read_all(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Stops a child started in its own process group: the group is killed,
/// then the child is reaped.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--"])
        .arg(format!("-{}", child.id()))
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A Lambda runtime API emulator on a free port and the `corral` binary
/// serving it, both stopped on drop.
struct Lambda {
    dir: tempfile::TempDir,
    port: u16,
    emulator: Child,
    emulator_log: Arc<Mutex<String>>,
    function: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Lambda {
    fn start(manifest_toml: &str) -> Lambda {
        Lambda::start_with_env(manifest_toml, &[])
    }

    /// Like [`Lambda::start`], with more environment for the function.
    fn start_with_env(manifest_toml: &str, env: &[(String, String)]) -> Lambda {
        let tool = cargo_lambda();
        let bin = common::corral_bin();
        common::wasm("crud");
        common::wasm("testbed");
        let dir = tempfile::Builder::new()
            .prefix("corral-lambda-")
            .tempdir()
            .expect("creating a temporary directory");
        let manifest = dir.path().join("corral.toml");
        let text = manifest_toml.replace(
            common::WASM_PLACEHOLDER,
            &common::wasm_dir().display().to_string(),
        );
        std::fs::write(&manifest, text).expect("writing the manifest");

        let port = free_port();
        let mut emulator = Command::new(tool)
            .args(["lambda", "watch", "--only-lambda-apis"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(common::workspace_root())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        let emulator_log = collect(emulator.stderr.take().expect("piped"));
        let emulator_out = emulator.stdout.take().expect("piped");
        std::thread::spawn(move || {
            std::io::copy(&mut BufReader::new(emulator_out), &mut std::io::sink())
        });
        let deadline = Instant::now() + EMULATOR_START;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = emulator.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                kill_group(&mut emulator);
                panic!(
                    "the Lambda emulator did not listen on port {port} (exit: {exited:?}):\n{}",
                    emulator_log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        // No subcommand: the Lambda runtime's environment selects `lambda`.
        let mut function = Command::new(&bin)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("CORRAL_MANIFEST", &manifest)
            .env("CORRAL_DATA_DIR", dir.path().join("data"))
            .env("CORRAL_ARTIFACT_DIR", common::artifact_dir())
            .env_remove("CORRAL_BACKENDS")
            .env_remove("CORRAL_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let stdout = collect(function.stdout.take().expect("piped"));
        let stderr = collect(function.stderr.take().expect("piped"));
        Lambda {
            dir,
            port,
            emulator,
            emulator_log,
            function,
            stdout,
            stderr,
        }
    }

    /// Sends the event in `path` with `cargo lambda invoke` and returns what
    /// the function answered.
    fn invoke_file(&mut self, path: &Path) -> Value {
        let mut invoke = Command::new(cargo_lambda())
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .args(["--output-format", "json", "--data-file"])
            .arg(path)
            .arg("_")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running cargo lambda invoke");
        let out = read_all(invoke.stdout.take().expect("piped"));
        let err = read_all(invoke.stderr.take().expect("piped"));
        let deadline = Instant::now() + INVOKE_TIMEOUT;
        let status = loop {
            if let Some(status) = invoke.try_wait().expect("waiting for cargo lambda invoke") {
                break status;
            }
            let function_exit = self.function.try_wait().ok().flatten();
            if function_exit.is_some() || Instant::now() > deadline {
                kill_group(&mut invoke);
                panic!(
                    "no answer to {} (function exit: {function_exit:?});\n--- function stderr ---\n{}\n--- emulator ---\n{}",
                    path.display(),
                    self.stderr(),
                    self.emulator_log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = out.join().expect("reading the answer");
        assert!(
            status.success(),
            "cargo lambda invoke {} failed ({status}): {text}\n{}\n--- function stderr ---\n{}",
            path.display(),
            err.join().expect("reading the errors"),
            self.stderr()
        );
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "the answer to {} is not JSON ({e}): {text:?}",
                path.display()
            )
        })
    }

    /// Sends one of the fixtures.
    fn invoke_fixture(&mut self, name: &str) -> Value {
        self.invoke_file(&fixture(name))
    }

    /// Sends `event` (written to a file first, as `--data-file` wants).
    fn invoke(&mut self, event: &Value) -> Value {
        let file = tempfile::Builder::new()
            .prefix("event-")
            .suffix(".json")
            .tempfile_in(self.dir.path())
            .expect("creating an event file");
        std::fs::write(file.path(), event.to_string()).expect("writing the event");
        self.invoke_file(file.path())
    }

    /// An HTTP API (payload 2.0) request without an authorizer: the sample
    /// event with this method, path and JSON body.
    fn http(&mut self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let mut event = read_fixture("apigw-v2-post-students-anonymous.json");
        event["routeKey"] = json!(format!("{method} {path}"));
        event["rawPath"] = json!(path);
        event["requestContext"]["routeKey"] = event["routeKey"].clone();
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(path);
        let headers = event["headers"].as_object_mut().expect("headers");
        match body {
            Some(body) => {
                let text = body.to_string();
                headers.insert("content-length".into(), json!(text.len().to_string()));
                event["body"] = json!(text);
            }
            None => {
                headers.remove("content-type");
                headers.insert("content-length".into(), json!("0"));
                event.as_object_mut().expect("an object").remove("body");
            }
        }
        self.invoke(&event)
    }

    /// A testbed action of the component mounted at `mount`.
    fn testbed(&mut self, mount: &str, action: &str, body: &Value) -> Value {
        let answer = self.http("POST", &format!("{mount}/testbed/{action}"), Some(body));
        http_json(&answer, 200)
    }

    /// The records a testbed component made of the events it handled.
    fn handled(&mut self, mount: &str, table: &str) -> Vec<Value> {
        let listed = self.testbed(mount, "records", &json!({ "op": "list", "table": table }));
        listed["records"]
            .as_array()
            .unwrap_or_else(|| panic!("no records array: {listed}"))
            .clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The function's log lines (stderr), each of which must be JSON.
    fn logs(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The function's stdout lines, each of which must be JSON.
    fn stdout_lines(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a stdout line that is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Waits until `holds` is true of the log lines, and returns them.
    fn logs_when(&self, what: &str, holds: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + OUTPUT_WAIT;
        loop {
            let logs = self.logs();
            if holds(&logs) {
                return logs;
            }
            if Instant::now() > deadline {
                panic!(
                    "no log lines {what}; the function logged:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until stdout holds `count` lines, and returns them.
    fn stdout_when(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + OUTPUT_WAIT;
        loop {
            let lines = self.stdout_lines();
            if lines.len() >= count {
                return lines;
            }
            if Instant::now() > deadline {
                panic!(
                    "{count} stdout lines expected, {} came:\n{}",
                    lines.len(),
                    self.stdout.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Lambda {
    fn drop(&mut self) {
        kill_group(&mut self.function);
        kill_group(&mut self.emulator);
    }
}

/// An API Gateway answer's status and JSON body, checked against `status`.
fn http_json(answer: &Value, status: u64) -> Value {
    assert_eq!(answer["statusCode"], status, "unexpected answer: {answer}");
    assert_eq!(answer["isBase64Encoded"], false, "{answer}");
    let body = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("the body is not text: {answer}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {answer}"))
}

/// A payload 2.0 answer's single-valued header `name`.
fn v2_header<'a>(answer: &'a Value, name: &str) -> &'a str {
    answer["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} header: {answer}"))
}

/// A payload 1.0 answer's header `name`, which must have exactly one value.
fn v1_header<'a>(answer: &'a Value, name: &str) -> &'a str {
    match answer["multiValueHeaders"][name]
        .as_array()
        .map(Vec::as_slice)
    {
        Some([Value::String(value)]) => value,
        _ => panic!("not exactly one {name} header: {answer}"),
    }
}

fn sorted_keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn failures(ids: &[&str]) -> Value {
    json!({ "batchItemFailures": ids.iter().map(|id| json!({ "itemIdentifier": id })).collect::<Vec<_>>() })
}

#[test]
fn rest_api_requests_with_cognito_claims_act_as_the_claims_subject() {
    let mut lambda = Lambda::start(MANIFEST);

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
    assert!(common::is_uuid(uid), "{created}");
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
    let mut lambda = Lambda::start(MANIFEST);

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
    let mut lambda = Lambda::start(MANIFEST);

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
    let mut lambda = Lambda::start(MANIFEST);

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
    let mut lambda = Lambda::start(MANIFEST);

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
    let mut lambda = Lambda::start(MANIFEST);

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
    let mut lambda = Lambda::start(MANIFEST);

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
    let mut lambda = Lambda::start(MANIFEST);

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
fn s3_notices_are_acknowledged_and_unknown_events_get_an_error() {
    let mut lambda = Lambda::start(MANIFEST);

    assert_eq!(
        lambda.invoke_fixture("example-s3-event.json"),
        json!({ "acknowledged": 1 })
    );
    lambda.logs_when("about the S3 notice", |logs| {
        logs.iter().any(|l| {
            l["message"] == "components bucket changed"
                && l["bucket"] == "sourcebucket"
                && l["key"] == "Happy%20Face.jpg"
                && l["event"] == "ObjectCreated:Put"
        })
    });

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
    let mut lambda = Lambda::start(MANIFEST);

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
    let moto = common::moto_url();
    let env = common::moto_env(&moto);
    let bucket = format!(
        "corral-lambda-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let created = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{moto}/{bucket}")])
        .status()
        .expect("running curl");
    assert!(
        created.success(),
        "creating bucket {bucket} in moto at {moto}"
    );
    let store = format!("s3://{bucket}/components");
    let publish = |file: &Path| -> String {
        let out = Command::new(common::corral_bin())
            .args([
                "publish",
                &file.display().to_string(),
                "--component",
                "tb",
                "--store",
                &store,
            ])
            .env_remove("CORRAL_STORE")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("running corral publish");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let v1 = publish(&common::wasm("testbed"));
    let manifest = format!(
        r#"
[backends.registry]
store = "{store}"
check_seconds = 3600

[components.tb]
wasm = "registry:tb"
mount = "/tb"

[[components.tb.routes]]
path = "/testbed/{{action}}"
methods = ["GET"]
auth = "public"
"#
    );
    let mut lambda = Lambda::start_with_env(&manifest, &env);
    let answer = lambda.http("GET", "/tb/testbed/ping", None);
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(v2_header(&answer, "x-corral-version"), &v1[..12]);

    // v2: the testbed with a custom section appended (another digest).
    let mut bytes = std::fs::read(common::wasm("testbed")).unwrap();
    bytes.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']);
    let v2_file = lambda.dir.path().join("v2.wasm");
    std::fs::write(&v2_file, bytes).unwrap();
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
