//! The Lambda harness: a Lambda runtime API emulator (cargo-lambda's
//! `cargo lambda watch --only-lambda-apis`) and the `corral` binary serving
//! it as a Lambda function would; events are sent with `cargo lambda invoke`.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::aws::AwsResources;
use super::manifests::resolve_wasm;
use super::paths::{artifact_dir, corral_bin, workspace_root};

/// How long the emulator may take to listen.
pub const EMULATOR_START: Duration = Duration::from_secs(60);
/// How long one invocation may take, the function's start included.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a log or metric line may take to reach the collecting thread.
pub const OUTPUT_WAIT: Duration = Duration::from_secs(5);

/// The `[backends.auth]` table that makes the Lambda host check development tokens.
pub const DEV_AUTH: &str = "\n[backends.auth]\nkind = \"dev\"\n";

pub const INSTALL: &str = "python3 -m pip install --no-deps cargo-lambda";

/// The cargo-lambda binary (`cargo lambda ...` runs `cargo-lambda lambda ...`).
pub fn cargo_lambda() -> &'static str {
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

pub fn fixture(name: &str) -> PathBuf {
    let path = workspace_root().join("tests/fixtures/lambda").join(name);
    assert!(path.is_file(), "missing fixture {}", path.display());
    path
}

pub fn read_fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).expect("reading a fixture");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// Collects a child's output, line by line, into a shared string.
pub fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
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
pub fn read_all(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Stops a child started in its own process group: the group is killed,
/// then the child is reaped.
pub fn kill_group(child: &mut Child) {
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
pub struct Lambda {
    /// The function's folder: its manifest and data directory.
    pub dir: tempfile::TempDir,
    port: u16,
    emulator: Child,
    emulator_log: Arc<Mutex<String>>,
    pub function: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Lambda {
    /// The function on the embedded backends.
    pub fn start(manifest_toml: &str) -> Lambda {
        Lambda::start_on(manifest_toml, None)
    }

    /// The function on the embedded backends, or on PostgreSQL, DynamoDB
    /// and SQS in the emulator when `aws` is given.
    pub fn start_on(manifest_toml: &str, aws: Option<&AwsResources>) -> Lambda {
        Lambda::launch(manifest_toml, aws, &[])
    }

    /// The function on the embedded backends, with more environment (such
    /// as moto's settings, for a registry on S3).
    pub fn start_with_env(manifest_toml: &str, env: &[(String, String)]) -> Lambda {
        Lambda::launch(manifest_toml, None, env)
    }

    fn launch(manifest_toml: &str, aws: Option<&AwsResources>, env: &[(String, String)]) -> Lambda {
        let tool = cargo_lambda();
        let bin = corral_bin();
        let mut text = resolve_wasm(manifest_toml);
        let dir = tempfile::Builder::new()
            .prefix("corral-lambda-")
            .tempdir()
            .expect("creating a temporary directory");
        let manifest = dir.path().join("corral.toml");
        // The Lambda host starts only with an explicit verifier; the tests
        // sign development tokens.
        if !text.contains("[backends.auth]") {
            text.push_str(DEV_AUTH);
        }
        std::fs::write(&manifest, text).expect("writing the manifest");

        let port = free_port();
        let mut emulator = Command::new(tool)
            .args(["lambda", "watch", "--only-lambda-apis"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(workspace_root())
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
        let mut function = Command::new(&bin);
        function.env_remove("CORRAL_BACKENDS");
        if let Some(aws) = aws {
            let file = dir.path().join("backends.toml");
            std::fs::write(&file, aws.backends_file() + DEV_AUTH)
                .expect("writing the backends file");
            function.env("CORRAL_BACKENDS", file);
            aws.configure(&mut function);
        }
        let mut function = function
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("CORRAL_MANIFEST", &manifest)
            .env("CORRAL_DATA_DIR", dir.path().join("data"))
            .env("CORRAL_ARTIFACT_DIR", artifact_dir())
            .env_remove("CORRAL_LOG")
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
    pub fn invoke_file(&mut self, path: &Path) -> Value {
        match self.try_invoke_file(path) {
            Ok(answer) => answer,
            Err(failure) => panic!(
                "cargo lambda invoke {} failed: {failure}\n--- function stderr ---\n{}",
                path.display(),
                self.stderr()
            ),
        }
    }

    /// Sends `event`, which must fail the invocation; returns what the
    /// emulator reported.
    pub fn invoke_failing(&mut self, event: &Value) -> String {
        let file = self.event_file(event);
        match self.try_invoke_file(file.path()) {
            Ok(answer) => panic!("the invocation succeeded: {answer}"),
            Err(failure) => failure,
        }
    }

    /// The function's answer, or what `cargo lambda invoke` printed when the
    /// invocation failed.
    fn try_invoke_file(&mut self, path: &Path) -> Result<Value, String> {
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
        if !status.success() {
            return Err(format!(
                "({status}) {text}\n{}",
                err.join().expect("reading the errors")
            ));
        }
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "the answer to {} is not JSON ({e}): {text:?}",
                path.display()
            )
        }))
    }

    /// Sends one of the fixtures.
    pub fn invoke_fixture(&mut self, name: &str) -> Value {
        self.invoke_file(&fixture(name))
    }

    /// Sends `event` (written to a file first, as `--data-file` wants).
    pub fn invoke(&mut self, event: &Value) -> Value {
        let file = self.event_file(event);
        self.invoke_file(file.path())
    }

    fn event_file(&self, event: &Value) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new()
            .prefix("event-")
            .suffix(".json")
            .tempfile_in(self.dir.path())
            .expect("creating an event file");
        std::fs::write(file.path(), event.to_string()).expect("writing the event");
        file
    }

    /// An HTTP API (payload 2.0) request without an authorizer: the sample
    /// event with this method, path and JSON body.
    pub fn http(&mut self, method: &str, path: &str, body: Option<&Value>) -> Value {
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
    pub fn testbed(&mut self, mount: &str, action: &str, body: &Value) -> Value {
        let answer = self.http("POST", &format!("{mount}/testbed/{action}"), Some(body));
        http_json(&answer, 200)
    }

    /// The records a testbed component made of the events it handled.
    pub fn handled(&mut self, mount: &str, table: &str) -> Vec<Value> {
        let listed = self.testbed(mount, "records", &json!({ "op": "list", "table": table }));
        listed["records"]
            .as_array()
            .unwrap_or_else(|| panic!("no records array: {listed}"))
            .clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The function's log lines (stderr), each of which must be JSON.
    pub fn logs(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// The function's stdout lines, each of which must be JSON.
    pub fn stdout_lines(&self) -> Vec<Value> {
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
    pub fn logs_when(&self, what: &str, holds: impl Fn(&[Value]) -> bool) -> Vec<Value> {
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
    pub fn stdout_when(&self, count: usize) -> Vec<Value> {
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
pub fn http_json(answer: &Value, status: u64) -> Value {
    assert_eq!(answer["statusCode"], status, "unexpected answer: {answer}");
    assert_eq!(answer["isBase64Encoded"], false, "{answer}");
    let body = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("the body is not text: {answer}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {answer}"))
}

/// A payload 2.0 answer's single-valued header `name`.
pub fn v2_header<'a>(answer: &'a Value, name: &str) -> &'a str {
    answer["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} header: {answer}"))
}

/// A payload 1.0 answer's header `name`, which must have exactly one value.
pub fn v1_header<'a>(answer: &'a Value, name: &str) -> &'a str {
    match answer["multiValueHeaders"][name]
        .as_array()
        .map(Vec::as_slice)
    {
        Some([Value::String(value)]) => value,
        _ => panic!("not exactly one {name} header: {answer}"),
    }
}

pub fn sorted_keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

pub fn failures(ids: &[&str]) -> Value {
    json!({ "batchItemFailures": ids.iter().map(|id| json!({ "itemIdentifier": id })).collect::<Vec<_>>() })
}
