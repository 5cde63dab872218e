//! A hostile tenant against the real binary: the `hostile` component runs
//! one attack per route (spins, memory bombs through its own memory and
//! through host buffers, log and outbound floods, the metadata address,
//! response-header smuggling, calls outside its grants) while a healthy
//! tenant, the testbed mounted as `victim`, serves traffic. Each attack gets
//! its clear failure, the healthy traffic sees no error, and the victim's
//! records, cache value and queue are unchanged. The attack tests run on
//! both backend sets; the path, registry and Lambda checks do not depend
//! on the backends.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::in_process::InProcess;
use common::{Backends, Host, Reply, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The manifest: `victim` (the testbed, with data to protect) and
/// `hostile`, granted a cache store of its own, the metadata addresses, a
/// loopback upstream by its literal address and the same upstream by a
/// name (`port` is the upstream's port).
fn manifest(port: u16, hostile_limits: &str) -> String {
    common::manifests::manifest_with(
        "hostile",
        &[("PORT", &port.to_string()), ("LIMITS", hostile_limits)],
    )
}

/// Fixed answers for the granted names: one a loopback address, one the
/// metadata address. Neither is written literally in its grant.
const RESOLVE: &str = "loopback-by-name=127.0.0.1,metadata-by-name=169.254.169.254";

on_both_backends! {
    attacks_fail_clearly_while_a_healthy_tenant_is_served,
    outbound_reaches_only_what_the_grants_name_literally,
    spins_on_every_worker_do_not_stall_another_tenant,
    a_component_at_its_instance_cap_gets_503_and_its_neighbour_does_not,
}

/// An upstream on loopback that answers `ok` after `delay`, counting requests.
struct Upstream {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start(delay: Duration) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Upstream { port, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// The healthy tenant's traffic: pings and record reads in a loop until
/// stopped; every answer that is not the expected 200 is kept.
struct Healthy {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Healthy {
    fn start(host: &Host) -> Healthy {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, ping, records) = (
            host.client().clone(),
            host.url("/victim/ping"),
            host.url("/victim/records"),
        );
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let (mut served, mut errors) = (0, Vec::new());
            while !stopped.load(Ordering::Relaxed) {
                let pong = client.get(&ping).send().await;
                match pong {
                    Ok(r) if r.status() == 200 => served += 1,
                    other => errors.push(format!("ping: {other:?}")),
                }
                let list = client
                    .post(&records)
                    .json(&json!({ "op": "list", "table": "notes" }))
                    .send()
                    .await;
                match list {
                    Ok(r) if r.status() == 200 => served += 1,
                    Ok(r) => errors.push(format!(
                        "records: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => errors.push(format!("records: {e}")),
                }
            }
            (served, errors)
        });
        Healthy { stop, task }
    }

    /// Stops the traffic; asserts it saw no error and was served at all.
    async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (served, errors) = self.task.await.expect("the healthy traffic task panicked");
        assert!(
            errors.is_empty(),
            "the healthy tenant saw errors: {errors:#?}"
        );
        assert!(served > 0, "the healthy tenant was never served");
    }
}

async fn victim(host: &Host, action: &str, body: Value) -> Value {
    host.json(Method::POST, &format!("/victim/{action}"), None, &body)
        .await
        .expect(200)
}

/// Records, a cache value and a queue message of the victim's.
async fn seed_victim(host: &Host) {
    for i in 0..3 {
        victim(host, "records", json!({ "op": "insert", "table": "notes", "fields": { "n": i, "text": format!("note {i}") } })).await;
    }
    victim(
        host,
        "cache",
        json!({ "op": "set", "store": "sessions", "key": "s1", "value": "victim session" }),
    )
    .await;
    victim(
        host,
        "queue",
        json!({ "op": "send", "queue": "jobs", "body": "victim job" }),
    )
    .await;
}

/// Everything of the victim's that an attack could change, as it reads it.
async fn victim_state(host: &Host) -> Value {
    json!({
        "notes": victim(host, "records", json!({ "op": "list", "table": "notes" })).await,
        "session": victim(host, "cache", json!({ "op": "get", "store": "sessions", "key": "s1" })).await,
    })
}

/// The victim's queue holds its one message and nothing forged.
async fn assert_victim_queue(host: &Host) {
    let received = victim(
        host,
        "queue",
        json!({ "op": "receive", "queue": "jobs", "max": 10, "visibility": 30 }),
    )
    .await;
    let bodies: Vec<&str> = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["victim job"], "{received}");
}

async fn attack(host: &Host, path: &str) -> Reply {
    host.get(&format!("/hostile/{path}")).await
}

/// The log lines of the request `reply` answered.
fn lines_of(host: &Host, reply: &Reply) -> Vec<Value> {
    let id = reply.request_id().expect("a request id");
    host.logs()
        .into_iter()
        .filter(|l| l["request_id"] == id)
        .collect()
}

async fn log_for(host: &Host, message: &str, reply: &Reply) -> Value {
    let id = reply.request_id().expect("a request id").to_owned();
    host.wait_for_log(&format!("{message:?} for request {id}"), |l| {
        l["message"] == message && l["request_id"] == id.as_str()
    })
    .await
}

fn start(backends: Backends, port: u16, hostile_limits: &str) -> Host {
    Host::start_on_with_env(
        backends,
        &manifest(port, hostile_limits),
        &[],
        &[("CORRAL_RESOLVE", RESOLVE)],
    )
}

async fn attacks_fail_clearly_while_a_healthy_tenant_is_served(backends: Backends) {
    let upstream = Upstream::start(Duration::ZERO).await;
    // Long enough for the get-many attack to store its 4.5 MB on moto.
    let host = start(backends, upstream.port, "timeout_ms = 4000");
    seed_victim(&host).await;
    let before = victim_state(&host).await;
    let healthy = Healthy::start(&host);

    // Its own memory and time.
    attack(&host, "spin").await.expect_error(504, "timeout");
    let grow = attack(&host, "grow").await;
    assert!(
        grow.expect_error(500, "internal").contains("memory limit"),
        "{grow}"
    );

    // Host buffers: a response body past `max_response_bytes`, headers past
    // the caps, a status that is none: 502, the component's fault, logged.
    for (path, why) in [
        ("big-body?bytes=2000000", "larger than 1048576 bytes"),
        ("many-headers?headers=5000", "more than 100 headers"),
        (
            "big-header?bytes=1000000",
            "headers larger than 32768 bytes",
        ),
        ("bad-status", "not an HTTP status"),
    ] {
        let reply = attack(&host, path).await;
        let message = reply.expect_error(502, "bad_gateway");
        assert!(message.contains(why), "{path}: {message}");
        let line = log_for(
            &host,
            "component returned a response the host does not pass on",
            &reply,
        )
        .await;
        assert_eq!(line["component"], "hostile", "{line}");
    }

    // A huge log line is cut; a flood is cut at `max_log_bytes` and one
    // line says how many were dropped.
    let big_log = attack(&host, "big-log?bytes=16000000").await;
    big_log.expect(200);
    let id = big_log.request_id().unwrap().to_owned();
    let line = host
        .wait_for_log("the cut line", |l| {
            l["request_id"] == id.as_str()
                && l["message"].as_str().is_some_and(|m| m.starts_with("LLLL"))
        })
        .await;
    assert!(
        line["message"].as_str().unwrap().len() <= 8 * 1024 + 3,
        "a log line was not cut"
    );
    let flood = attack(&host, "log-flood?lines=20000").await;
    assert_eq!(flood.expect(200)["logged"], 20000);
    let dropped = log_for(
        &host,
        "dropped log lines past the component's log limit",
        &flood,
    )
    .await;
    let written: usize = lines_of(&host, &flood)
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("flood"))
        })
        .map(|l| l["message"].as_str().unwrap().len())
        .sum();
    assert!(
        written <= 16384,
        "{written} bytes of log lines passed a 16384-byte limit"
    );
    assert_eq!(
        dropped["dropped_lines"].as_u64().unwrap() as usize + written / 120,
        20000,
        "every line is either written or counted: {dropped}"
    );

    // Cache values and get-many are capped: a clear 400, nothing stored.
    let value = attack(&host, "cache-value?bytes=1000000").await;
    assert!(
        value
            .expect_error(400, "bad_request")
            .contains("at most 393216 bytes"),
        "{value}"
    );
    let many = attack(&host, "get-many?keys=12&bytes=380000").await;
    assert!(
        many.expect_error(400, "bad_request")
            .contains("get-many returns at most 4194304 bytes"),
        "{many}"
    );
    assert_eq!(
        attack(&host, "get-many?keys=3&bytes=1000")
            .await
            .expect(200)["values"],
        3
    );

    // Response-header smuggling: the host frames the message itself.
    let smuggled = attack(&host, "smuggle").await;
    assert_eq!(smuggled.status, 200, "{smuggled}");
    let body = b"0\r\n\r\nGET /admin/1 HTTP/1.1\r\nhost: x\r\n\r\n";
    assert_eq!(smuggled.body, body);
    assert_eq!(
        smuggled.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    for framing in ["transfer-encoding", "keep-alive", "upgrade"] {
        assert_eq!(
            smuggled.header(framing),
            None,
            "{framing} passed through: {smuggled}"
        );
    }
    assert_ne!(smuggled.header("connection"), Some("close"));
    assert_ne!(smuggled.request_id(), Some("forged"));
    assert_eq!(smuggled.headers.get_all("content-length").iter().count(), 1);
    let dropped = log_for(
        &host,
        "dropped a response header the host sets itself",
        &smuggled,
    )
    .await;
    assert_eq!(dropped["component"], "hostile", "{dropped}");

    // Calls outside the grants: the victim's table, store and queue; its
    // config (and so its secrets) is not even visible.
    for (path, what) in [
        ("table", "table \"notes\""),
        ("store", "cache \"sessions\""),
        ("queue", "queue \"jobs\""),
    ] {
        let reply = attack(&host, path).await;
        assert!(
            reply.expect_error(500, "not_granted").contains(what),
            "{path}: {reply}"
        );
    }
    assert_eq!(
        attack(&host, "secret?key=greeting").await.expect(200),
        json!({ "key": "greeting", "value": null })
    );
    let ungranted = attack(
        &host,
        &format!("fetch?url=http://127.0.0.1:{}/", upstream.port + 1),
    )
    .await;
    assert!(
        ungranted
            .expect_error(500, "not_granted")
            .contains("does not grant the host"),
        "{ungranted}"
    );

    healthy.finish().await;
    assert_eq!(
        victim_state(&host).await,
        before,
        "an attack changed the victim's data"
    );
    assert_victim_queue(&host).await;
    assert_eq!(attack(&host, "ping").await.text(), "pong");
}

async fn outbound_reaches_only_what_the_grants_name_literally(backends: Backends) {
    let upstream = Upstream::start(Duration::from_millis(300)).await;
    let host = start(backends, upstream.port, "timeout_ms = 5000");
    let healthy = Healthy::start(&host);

    // The metadata endpoints are never reached, even granted; nor a granted
    // name that resolves to one, or to loopback without naming it literally.
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://metadata-by-name/latest/meta-data/".to_owned(),
        format!("http://loopback-by-name:{}/", upstream.port),
    ] {
        let reply = attack(&host, &format!("fetch?url={}", common::text::enc(&url))).await;
        let message = reply.expect_error(500, "not_granted");
        assert!(message.contains("may not reach"), "{url}: {message}");
        let line = log_for(
            &host,
            "refused a call outside the component's grants",
            &reply,
        )
        .await;
        assert_eq!(
            line["reason"], "the host resolves to an address its grant may not reach",
            "{line}"
        );
    }
    assert_eq!(
        upstream.requests(),
        0,
        "a refused request reached the upstream"
    );

    // The same upstream through a grant that names its address.
    let direct = attack(
        &host,
        &format!("fetch?url=http://127.0.0.1:{}/ok", upstream.port),
    )
    .await;
    assert_eq!(direct.expect(200), json!({ "status": 200, "body": "ok" }));
    assert_eq!(upstream.requests(), 1);

    // A flood: at most `max_outbound` (4) in flight, the rest refused at once.
    let flood = attack(
        &host,
        &format!(
            "outbound-flood?requests=16&url=http://127.0.0.1:{}/",
            upstream.port
        ),
    )
    .await;
    let outcome = flood.expect(200);
    assert_eq!(outcome["answered"], 4, "{outcome}");
    let refused = outcome["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 12, "{outcome}");
    assert!(
        refused
            .iter()
            .all(|r| r.as_str().unwrap().contains("as many requests in flight")),
        "{outcome}"
    );
    assert_eq!(upstream.requests(), 5);
    log_for(
        &host,
        "refused an outbound request past the component's limit",
        &flood,
    )
    .await;

    healthy.finish().await;
}

/// The worker threads of `corral serve`: Tokio's default, one per CPU.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn spins_on_every_worker_do_not_stall_another_tenant(backends: Backends) {
    // Spins far longer than the healthy requests take even on a busy
    // machine: they must be answered while every spin still runs.
    let host = Arc::new(start(backends, 9, "timeout_ms = 60000\nmax_instances = 64"));
    seed_victim(&host).await;
    // Twice as many spinning instances as worker threads, all at once.
    let spins = workers() * 2;
    let mut spinning = tokio::task::JoinSet::new();
    for _ in 0..spins {
        let host = host.clone();
        spinning.spawn(async move { attack(&host, "spin").await });
    }
    // Until the hostile instances are all running: each has taken its slot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let pong = host.get("/victim/ping").await;
        assert_eq!((pong.status, pong.text().as_str()), (200, "pong"), "{pong}");
        let notes = victim(&host, "records", json!({ "op": "list", "table": "notes" })).await;
        assert_eq!(
            notes["records"].as_array().map(Vec::len),
            Some(3),
            "{notes}"
        );
    }
    // The healthy requests were all answered while every spin still ran.
    if let Some(ended) = spinning.try_join_next() {
        panic!(
            "a spin ended before the healthy requests were answered: {}",
            ended.expect("a spin task panicked")
        );
    }
    assert_eq!(spinning.len(), spins);
    // (The attack test checks that a spin ends with 504; here the host is
    // stopped with the spins still running.)
    spinning.abort_all();
}

async fn a_component_at_its_instance_cap_gets_503_and_its_neighbour_does_not(backends: Backends) {
    let host = Arc::new(start(backends, 9, "timeout_ms = 4000\nmax_instances = 2"));
    let mut spinning = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let host = host.clone();
        spinning.spawn(async move { attack(&host, "spin").await });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = attack(&host, "ping").await;
    assert!(
        busy.expect_error(503, "unavailable")
            .contains("2 instances"),
        "{busy}"
    );
    log_for(&host, "component is at its instance limit", &busy).await;
    let pong = host.get("/victim/ping").await;
    assert_eq!((pong.status, pong.text().as_str()), (200, "pong"), "{pong}");
    while let Some(spin) = spinning.join_next().await {
        spin.expect("a spin task panicked")
            .expect_error(504, "timeout");
    }
    assert_eq!(attack(&host, "ping").await.text(), "pong");
}

/// Sends `path` as it is written, without a client's normalization (which
/// would resolve `..` and `%2e%2e` before sending), and returns the status
/// and body.
async fn raw_get(host: &Host, path: &str, token: Option<&str>) -> (u16, Value) {
    let address = host.url("").trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {address}\r\n{auth}connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

#[tokio::test]
async fn a_path_passes_the_access_check_of_the_route_whose_handler_runs() {
    let host = start(Backends::Embedded, 9, "");
    let admin = host.token("ada", &["admin"]);
    let student = host.token("bob", &[]);

    // Paths that a reader keeping empty segments, or resolving `..`, or
    // decoding `%2F`, would route to the public `/{kind}/{id}/{field}` while
    // the other reader runs the admin-only handler.
    for crossing in [
        "/hostile//admin/1",
        "/hostile/x/%2e%2e/admin",
        "/hostile/x/../admin",
        "/hostile/x/./admin",
        "/hostile/x/..%2Fadmin%2F1/y",
        "/hostile/admin%2F1/x/y",
        "/hostile/x/%5C/admin",
    ] {
        let (status, body) = raw_get(&host, crossing, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_request")),
            "{crossing}: {body}"
        );
    }
    // Literal segments are read decoded by both routers: `%61dmin` is the
    // admin route, and its access rule holds.
    assert_eq!(raw_get(&host, "/hostile/%61dmin/1", None).await.0, 401);
    assert_eq!(
        raw_get(&host, "/hostile/%61dmin/1", Some(&student)).await.0,
        403
    );
    let (status, body) = raw_get(&host, "/hostile/%61dmin/1", Some(&admin)).await;
    assert_eq!(
        (status, body),
        (200, json!({ "route": "admin", "id": "1" }))
    );
    // A trailing slash is the same path to both.
    let (status, body) = raw_get(&host, "/hostile/a/b/c/", None).await;
    assert_eq!(
        (status, body),
        (200, json!({ "route": "field", "kind": "a" }))
    );
    let (status, body) = raw_get(&host, "/hostile/admin/1/", None).await;
    assert_eq!(status, 401, "{body}");
    let line = host
        .wait_for_log("a refused path", |l| {
            l["message"] == "refused a path that can be read more than one way"
        })
        .await;
    assert!(
        line["reason"].as_str().unwrap().contains("empty segment"),
        "{line}"
    );
}

#[tokio::test]
async fn a_registry_version_that_is_not_a_digest_is_refused_and_the_current_one_keeps_serving() {
    let work = tempfile::tempdir().unwrap();
    let registry = work.path().join("registry");
    let store = format!("dir:{}", registry.display());
    let v1 = common::registry::publish(&common::paths::wasm("testbed"), "tb", &store, &[], &[]);
    let host = Host::start_with(
        &common::manifests::manifest("registry_tb"),
        &["--store", &store, "--registry-check-seconds", "3600"],
    );
    let pointer = registry.join("tb/versions.json");
    let valid: Value = serde_json::from_slice(&std::fs::read(&pointer).unwrap()).unwrap();
    for (i, hostile) in [
        "../../x",
        "abc",
        "../../../../etc/passwd",
        &v1.to_ascii_uppercase(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut doc = valid.clone();
        doc["current"] = hostile.into();
        std::fs::write(&pointer, doc.to_string()).unwrap();
        host.hangup();
        host.wait_for_logs(&format!("a refusal of {hostile:?}"), |logs| {
            logs.iter()
                .filter(|l| {
                    l["message"] == "refused a registry document: a version is not a sha256 digest"
                })
                .count()
                > i
        })
        .await;
        let ping = host.get("/tb/testbed/ping").await;
        assert_eq!((ping.status, ping.text().as_str()), (200, "pong"), "{ping}");
        assert_eq!(ping.header("x-corral-version"), Some(&v1[..12]));
    }
    let refused = host
        .wait_for_log("the check's failure", |l| {
            l["message"] == "cannot check the registry; trying again later"
        })
        .await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not a sha256 digest"),
        "{refused}"
    );
}

#[test]
fn the_lambda_host_refuses_to_start_without_an_explicit_token_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("corral.toml");
    let text = format!(
        "[components.tb]\nwasm = \"{}\"\n\n[[components.tb.routes]]\npath = \"/{{action}}\"\nmethods = [\"GET\"]\nauth = \"public\"\n",
        common::paths::wasm("testbed").display()
    );
    std::fs::write(&manifest, text).unwrap();
    let output = std::process::Command::new(common::paths::corral_bin())
        .arg("lambda")
        .env("CORRAL_MANIFEST", &manifest)
        .env("CORRAL_DATA_DIR", dir.path().join("data"))
        .env("CORRAL_ARTIFACT_DIR", common::paths::artifact_dir())
        .env_remove("CORRAL_BACKENDS")
        // Nothing listens here: the host must stop before it asks.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running corral lambda");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the Lambda host started: {stderr}"
    );
    assert!(
        stderr.contains("the Lambda host needs [backends.auth]")
            && stderr.contains("kind = \"dev\""),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "the host wrote its data folder before refusing"
    );
}

/// The registry bucket's notifications announce new component versions; a
/// component that asks for them as its object events is refused at start.
#[tokio::test]
async fn a_component_cannot_take_the_registry_buckets_notifications() {
    let refusal = InProcess::refused(
        r#"
[backends.registry]
store = "s3://corral-components/prod"

[components.spy]
wasm = "{WASM}/testbed.wasm"

[[components.spy.events]]
bucket = "corral-components"
"#,
    )
    .await;
    assert!(
        refusal.contains(
            "component \"spy\": events: bucket \"corral-components\" holds the component registry"
        ),
        "{refusal}"
    );
}

/// Under `corral serve` on DynamoDB the stream leases sit in a table of
/// their own. A component granted a store that is that table could take or
/// give up other subscribers' leases, so such a manifest is refused.
#[test]
fn a_component_cannot_be_granted_the_stream_lease_table() {
    let stderr = Host::refused(
        r#"
[backends.cache]
kind = "dynamodb"
prefix = "spy-"

[components.spy]
wasm = "{WASM}/testbed.wasm"
caches = ["corral-leases"]

[[components.spy.events]]
table = "notes"
"#,
    );
    assert!(
        stderr.contains("cache store \"corral-leases\" would be table spy-corral-leases, where the host keeps its stream leases"),
        "{stderr}"
    );
}
