//! A bounded, seeded fuzz run against the real binary serving the example
//! manifest: random methods, paths (the example's routes, mutated and
//! percent-encoded), headers, query strings and bodies, sent over a raw
//! socket so that nothing is normalised on the way. It must see:
//!
//! - no panic: the host keeps answering and never logs "panicked";
//! - no 5xx that is not a component's fault: a 5xx carries the error shape
//!   and the host logged an error naming the component for that request;
//! - no write from a rejected request: the database's rows are the same
//!   before and after every 4xx or 5xx answer;
//! - every error the host or a component answers in the one error shape.
//!
//! The Alma resolver of the example is left out: it reaches the Alma API
//! over the network, which tests do not have.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Host;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sqlx::{Connection, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The run is deterministic: a failure names the seed and the request
/// number. `CORRAL_FUZZ_SEED` and `CORRAL_FUZZ_REQUESTS` run another seed,
/// or a longer run, by hand.
const SEED: u64 = 0x00c0_1a11;
const REQUESTS: usize = 2000;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {v}")),
        Err(_) => default,
    }
}

/// The example manifest as shipped, without the Alma components (the
/// resolver calls out to Alma; the webhook answers the original's error
/// bodies, not corral's), serving the built components.
fn example_manifest() -> String {
    let mut manifest = common::manifests::example_manifest();
    let components = manifest["components"].as_table_mut().unwrap();
    components.retain(|name, _| !name.starts_with("alma"));
    toml::to_string(&manifest).unwrap()
}

/// Every route of a manifest: each `path` under its component's `mount`,
/// with its methods.
fn routes(manifest: &str) -> Vec<(String, Vec<String>)> {
    let manifest: toml::Table = toml::from_str(manifest).unwrap();
    let mut routes = Vec::new();
    for entry in manifest["components"].as_table().unwrap().values() {
        let mount = entry.get("mount").and_then(|m| m.as_str()).unwrap_or("");
        for route in entry
            .get("routes")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let path = route["path"].as_str().unwrap();
            let full = if path == "/" && !mount.is_empty() {
                mount.to_owned()
            } else {
                format!("{mount}{path}")
            };
            let methods = route["methods"].as_array().unwrap();
            let methods = methods
                .iter()
                .map(|m| m.as_str().unwrap().to_owned())
                .collect();
            routes.push((full, methods));
        }
    }
    routes
}

const METHODS: &[&str] = &[
    "GET", "GET", "POST", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "get", "FUZZ",
];

/// Path parameter values: plausible ones and hostile ones, already encoded.
const PARAMS: &[&str] = &[
    "1",
    "2",
    "3",
    "0",
    "-1",
    "default",
    "activity",
    "c1",
    "9223372036854775807",
    "18446744073709551616",
    "1e400",
    "1.5",
    "NaN",
    "%2F",
    "a%2Fb",
    "%00",
    "%FF",
    "%",
    "%zz",
    "%C3%A9",
    "..",
    ".",
    "%2E%2E",
    "null",
    "true",
    "%20",
    "a%0Ab",
    "'%20OR%201=1--",
    "%22%3B%20DROP%20TABLE%20students",
];

const QUERY_KEYS: &[&str] = &[
    "limit",
    "after",
    "major",
    "year",
    "name",
    "email",
    "major_id",
    "college_id",
    "is_undergraduate",
    "student_id",
    "customer",
    "type",
    "q",
    "",
    "limit[]",
    "%FF",
];

const QUERY_VALUES: &[&str] = &[
    "10",
    "1",
    "0",
    "-1",
    "1000000",
    "99999999999999999999",
    "1e400",
    "abc",
    "",
    "%FF",
    "%zz",
    "a%00b",
    "true",
    "false",
    "null",
    "math",
    "%E2%80%AE",
    "+",
    "%2B",
    "1;2",
    "[1]",
];

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("APPLICATION/JSON"),
    Some("application/merge-patch+json"),
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=x"),
    Some("application/octet-stream"),
    Some("}{"),
    Some(""),
];

/// A request as bytes on the wire, and what it was, for failure messages.
struct Sent {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target: String = self.target.chars().take(300).collect();
        write!(f, "{} {target}", self.method)?;
        for (k, v) in &self.headers {
            let v = String::from_utf8_lossy(v);
            write!(f, "\n  {k}: {}", v.chars().take(120).collect::<String>())?;
        }
        let body = String::from_utf8_lossy(&self.body);
        write!(
            f,
            "\n  body ({} bytes): {}",
            self.body.len(),
            body.chars().take(200).collect::<String>()
        )
    }
}

/// What came back over the socket.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fuzzer {
    rng: StdRng,
    routes: Vec<(String, Vec<String>)>,
    advisor: String,
    outsider: String,
    /// Ids the host handed out (record uids), to aim later requests at.
    seen_ids: Vec<String>,
}

impl Fuzzer {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        items.choose(&mut self.rng).expect("a non-empty list")
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn param(&mut self) -> String {
        if !self.seen_ids.is_empty() && self.chance(0.3) {
            let ids = self.seen_ids.clone();
            return self.pick(&ids).clone();
        }
        match self.rng.random_range(0..10) {
            0 => "x".repeat(self.rng.random_range(100..5000)),
            1 => format!("{}", self.rng.random::<u64>()),
            _ => (*self.pick(PARAMS)).to_owned(),
        }
    }

    /// A method and a path: mostly a method the route serves, on the
    /// route's shape with hostile parameters, sometimes mutated.
    fn method_and_path(&mut self) -> (String, String) {
        let routes = self.routes.clone();
        let (template, methods) = self.pick(&routes).clone();
        let method = if self.chance(0.7) {
            self.pick(&methods).clone()
        } else {
            (*self.pick(METHODS)).to_owned()
        };
        let mut segments: Vec<String> = template
            .split('/')
            .skip(1)
            .map(|s| {
                if s.starts_with('{') {
                    self.param()
                } else {
                    s.to_owned()
                }
            })
            .collect();
        // Mutations of the route's shape.
        match self.rng.random_range(0..24) {
            0 => segments.push(self.param()),
            1 => {
                segments.pop();
            }
            2 => segments.insert(self.rng.random_range(0..=segments.len()), String::new()),
            3 => segments.insert(self.rng.random_range(0..=segments.len()), ".".into()),
            4 => segments.insert(self.rng.random_range(0..=segments.len()), "..".into()),
            5 => segments.push(String::new()),
            6 => {
                // A literal segment, percent-encoded or in upper case.
                if let Some(s) = segments
                    .iter_mut()
                    .find(|s| s.chars().all(|c| c.is_ascii_lowercase()))
                {
                    *s = if s.len() % 2 == 0 {
                        s.bytes().map(|b| format!("%{b:02X}")).collect()
                    } else {
                        s.to_uppercase()
                    };
                }
            }
            7 => segments.insert(0, "%2E%2E".into()),
            _ => {}
        }
        let mut path = format!("/{}", segments.join("/"));
        if self.chance(0.01) {
            path = "*".into();
        }
        (method, path)
    }

    fn query(&mut self) -> String {
        let pairs = match self.rng.random_range(0..10) {
            0..5 => 0,
            5..8 => 1,
            _ => self.rng.random_range(2..6),
        };
        let mut parts = Vec::new();
        for _ in 0..pairs {
            let key = *self.pick(QUERY_KEYS);
            let value = if self.chance(0.05) {
                "9".repeat(5000)
            } else {
                (*self.pick(QUERY_VALUES)).to_owned()
            };
            parts.push(match self.rng.random_range(0..10) {
                0 => key.to_owned(),
                _ => format!("{key}={value}"),
            });
        }
        if self.chance(0.03) {
            parts.push("&&=&=".into());
        }
        parts.join("&")
    }

    fn json_body(&mut self) -> Vec<u8> {
        let n = self.rng.random_range(0..1000);
        let bodies = [
            format!(r#"{{"name": "Fuzz {n}", "email": "f{n}@example.org"}}"#),
            format!(
                r#"{{"name": "Fuzz {n}", "email": "f{n}@example.org", "major": "math", "year": {n}}}"#
            ),
            r#"{"major": "physics"}"#.to_owned(),
            format!(
                r#"{{"name": "Fuzz", "email": "f@example.org", "uid": "forged", "creator_uid": "mallory", "created_at": "1970-01-01T00:00:00.000Z", "n": {n}}}"#
            ),
            r#"{"name": 1e400, "email": 18446744073709551616}"#.to_owned(),
            r#"{"name": "x", "email": "y", "year": -9223372036854775809}"#.to_owned(),
            r#"{"name": "x", "email": "y", "year": 1.7976931348623157e309}"#.to_owned(),
            r#"{"student_id": 1, "name": "Alex"}"#.to_owned(),
            format!(
                r#"{{"student_id": {}, "name": "Alex"}}"#,
                self.rng.random::<i64>()
            ),
            r#"{"student_id": "1", "name": null}"#.to_owned(),
            r#"{"question": "Why?", "answer": "Because."}"#.to_owned(),
            format!(
                r#"{{"first_name": "F", "last_name": "Z", "email": "z{n}@example.edu", "major_id": 1, "is_undergraduate": true}}"#
            ),
            format!(r#"{{"type": "create", "customer": "c{n}", "name": "Fuzz"}}"#),
            r#"{"type": "update", "customer": "c1", "data": {"a": 1}}"#.to_owned(),
            r#"{"type": "", "customer": ""}"#.to_owned(),
            r#"{"type": "delete", "customer": 1e400}"#.to_owned(),
            "null".into(),
            "[]".into(),
            "\"text\"".into(),
            "{}".into(),
            "1e400".into(),
            "18446744073709551616".into(),
            r#"{"a": 1, "a": 2}"#.into(),
            "{\"name\": \"\u{0}\", \"email\": \"\u{202e}\"}".into(),
            "\u{feff}{}".into(),
            r#"{"name": "unterminated"#.into(),
        ];
        self.pick(&bodies).clone().into_bytes()
    }

    fn body(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..20) {
            0..3 => Vec::new(),
            3 => b"\xff\xfe\x00garbage\xc3\x28".to_vec(),
            4 => "[".repeat(100_000).into_bytes(),
            5 => format!("{}1{}", "{\"a\":".repeat(20_000), "}".repeat(20_000)).into_bytes(),
            6 => format!(
                "{{\"name\": \"{}\", \"email\": \"e@example.org\"}}",
                "n".repeat(self.rng.random_range(1000..300_000))
            )
            .into_bytes(),
            7 => vec![b'x'; 1_100_000],
            8 => b"name=Ada&email=ada%40example.edu".to_vec(),
            _ => self.json_body(),
        }
    }

    fn request(&mut self) -> Sent {
        let (method, path) = self.method_and_path();
        let query = self.query();
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        let authorization: Option<Vec<u8>> = match self.rng.random_range(0..12) {
            0..4 => None,
            4..8 => Some(format!("Bearer {}", self.advisor).into_bytes()),
            8 => Some(format!("Bearer {}", self.outsider).into_bytes()),
            9 => Some(b"Bearer garbage.garbage.garbage".to_vec()),
            10 => Some(format!("Basic {}", "A".repeat(8000)).into_bytes()),
            _ => Some(b"Bearer \xff\xfe".to_vec()),
        };
        if let Some(value) = authorization {
            headers.push(("authorization".into(), value));
        }
        // Half the writes are well-formed JSON, so that the components run
        // and later requests aim at the records they made.
        let well_formed = matches!(method.as_str(), "POST" | "PATCH") && self.chance(0.5);
        let content_type = if well_formed {
            Some("application/json")
        } else {
            *self.pick(CONTENT_TYPES)
        };
        if let Some(ct) = content_type {
            headers.push(("content-type".into(), ct.as_bytes().to_vec()));
        }
        match self.rng.random_range(0..20) {
            0 => headers.push(("x-request-id".into(), "r".repeat(500).into_bytes())),
            1 => headers.push(("x-request-id".into(), b"../../etc".to_vec())),
            2 => headers.push(("x-fuzz".into(), "v".repeat(60_000).into_bytes())),
            3 => headers.push(("origin".into(), b"https://evil.example".to_vec())),
            4 => headers.push(("accept".into(), b"\x80\x81".to_vec())),
            5 => headers.push(("cookie".into(), b"a=1; b=\"2\"".to_vec())),
            _ => {}
        }
        let body = if well_formed {
            self.json_body()
        } else if matches!(method.as_str(), "GET" | "HEAD") && self.chance(0.8) {
            Vec::new()
        } else {
            self.body()
        };
        Sent {
            method,
            target,
            headers,
            body,
        }
    }
}

/// Sends `sent` on a fresh connection and reads the whole answer.
async fn exchange(address: &str, sent: &Sent) -> Result<Answer, String> {
    let mut wire = format!(
        "{} {} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n",
        sent.method, sent.target
    )
    .into_bytes();
    for (k, v) in &sent.headers {
        wire.extend_from_slice(k.as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(v);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(format!("content-length: {}\r\n\r\n", sent.body.len()).as_bytes());
    wire.extend_from_slice(&sent.body);
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let io = async {
        // The server may answer (413) and close before the whole body is read.
        let _ = stream.write_all(&wire).await;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map(|_| raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(60), io)
        .await
        .map_err(|_| "no answer within 60 s".to_owned())?
        .map_err(|e| format!("reading the answer: {e}"))?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Answer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no complete head in {} bytes: {:?}",
                raw.len(),
                String::from_utf8_lossy(raw)
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("a bad status line: {status_line}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("a bad chunk size {size_text:?}: {e}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(raw.get(..size).ok_or("a truncated chunk")?);
        raw = raw.get(size + 2..).ok_or("a truncated chunk")?;
    }
}

/// Tables whose rows change without a request: background consumers and
/// the change stream's own bookkeeping. The projections are derived from
/// the events store, which is compared.
fn changes_in_background(table: &str) -> bool {
    table.starts_with("sqlite_")
        || matches!(
            table,
            "corral_changes"
                | "corral_change_cursors"
                | "corral_queue"
                | "es_projections"
                | "es_applied"
        )
}

/// Every row of every table that only requests change, as text. A table
/// with no rows reads the same as no table.
async fn rows(conn: &mut sqlx::SqliteConnection) -> BTreeMap<String, Vec<String>> {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut *conn)
            .await
            .expect("listing the tables");
    let mut out = BTreeMap::new();
    for table in tables.into_iter().filter(|t| !changes_in_background(t)) {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(&mut *conn)
            .await
            .expect("reading a table's columns");
        let row = columns
            .iter()
            .map(|c| format!("quote(\"{}\")", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let sql = format!(
            "SELECT {row} FROM \"{}\" ORDER BY 1",
            table.replace('"', "\"\"")
        );
        let mut values: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await
            .expect("reading a table")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
        values.sort();
        if !values.is_empty() {
            out.insert(table, values);
        }
    }
    out
}

/// What differs between two snapshots, for the failure message.
fn difference(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    for table in before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (b, a) = (
            before.get(table).unwrap_or(&empty),
            after.get(table).unwrap_or(&empty),
        );
        for row in a.iter().filter(|r| !b.contains(r)) {
            out.push_str(&format!(
                "\n  + {table}: {}",
                row.chars().take(300).collect::<String>()
            ));
        }
        for row in b.iter().filter(|r| !a.contains(r)) {
            out.push_str(&format!(
                "\n  - {table}: {}",
                row.chars().take(300).collect::<String>()
            ));
        }
    }
    out
}

/// The one error shape, with the answer's request id.
fn error_shape(answer: &Answer) -> Result<(), String> {
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("the error body is not JSON: {e}"))?;
    let error = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"))
        .and_then(Value::as_object)
        .ok_or("the body is not {\"error\": {...}}")?;
    let text = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if text("code").is_none() || text("message").is_none() {
        return Err("the error has no code or message".into());
    }
    if text("request_id") != answer.header("x-request-id") {
        return Err("the error's request_id differs from x-request-id".into());
    }
    Ok(())
}

#[tokio::test]
async fn a_seeded_fuzz_run_finds_no_panic_no_host_fault_and_no_write_from_a_refused_request() {
    let (seed, requests) = (
        setting("CORRAL_FUZZ_SEED", SEED),
        setting("CORRAL_FUZZ_REQUESTS", REQUESTS),
    );
    let manifest = example_manifest();
    let host = Host::start(&manifest);
    let address = host.url("").trim_start_matches("http://").to_owned();
    let routes = routes(&manifest);
    assert!(routes.len() >= 20, "the example's routes: {routes:?}");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(host.data_dir().join("corral.db"))
        .read_only(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("opening the host's database");
    let mut fuzzer = Fuzzer {
        rng: StdRng::seed_from_u64(seed),
        routes,
        advisor: host.token("fuzzer", &["advisors"]),
        outsider: host.token("outsider", &[]),
        seen_ids: Vec::new(),
    };
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for n in 0..requests {
        let sent = fuzzer.request();
        let before = rows(&mut db).await;
        let answer = match exchange(&address, &sent).await {
            Ok(answer) => answer,
            Err(e) => panic!(
                "request {n} (seed {seed:#x}) got no answer: {e}\n{sent}\nhost log:\n{}",
                host.stderr()
            ),
        };
        *statuses.entry(answer.status).or_default() += 1;
        let mut problems = Vec::new();
        if answer.status >= 400 {
            let after = rows(&mut db).await;
            if after != before {
                problems.push(format!(
                    "a refused request changed the database:{}",
                    difference(&before, &after)
                ));
            }
            // The host answers every routed request itself; hyper alone
            // answers what it cannot parse (no request id then).
            if answer.header("x-request-id").is_some()
                && sent.method != "HEAD"
                && let Err(e) = error_shape(&answer)
            {
                problems.push(e);
            }
        }
        if answer.status >= 500 {
            let id = answer.header("x-request-id").unwrap_or_default().to_owned();
            let blames = |l: &Value| {
                l["request_id"] == id.as_str()
                    && l["level"] == "ERROR"
                    && l["component"]
                        .as_str()
                        .is_some_and(|c| !c.is_empty() && c != "-")
            };
            // The log is read by another thread, a little after the answer.
            let mut blamed = false;
            for _ in 0..50 {
                blamed = host.logs().iter().any(blames);
                if blamed {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            if !blamed {
                problems.push("a 5xx that no log line blames on a component".into());
            }
        }
        if answer.status == 201
            && let Ok(created) = serde_json::from_slice::<Value>(&answer.body)
        {
            for key in ["uid", "id"] {
                match &created[key] {
                    Value::String(s) => fuzzer.seen_ids.push(s.clone()),
                    Value::Number(v) => fuzzer.seen_ids.push(v.to_string()),
                    _ => {}
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "request {n}: {}\n{sent}\n=> {} {}",
                problems.join("; "),
                answer.status,
                String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(400)
                    .collect::<String>()
            ));
        }
    }
    let stderr = host.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the host panicked (seed {seed:#x}):\n{stderr}"
    );
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed (seed {seed:#x}, statuses {statuses:?}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    // Still serving, and the run reached the components, not only the router.
    host.get("/students").await.expect(200);
    for status in [200, 201, 400, 401, 404, 405, 413] {
        assert!(
            statuses.contains_key(&status),
            "no {status} in {requests} requests: {statuses:?}"
        );
    }
    eprintln!("statuses: {statuses:?}");
}
