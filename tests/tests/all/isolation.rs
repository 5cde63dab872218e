//! The testbed component through the real binary: limits and failures stay
//! inside one request, grants fence every host call, and the database,
//! cache, queue, config and identity interfaces behave as the WIT contract
//! says. Every test runs on both backend sets (`<test>::embedded`: SQLite
//! and the embedded cache and queue; `<test>::aws`: PostgreSQL, DynamoDB and
//! SQS). Where a backend differs by design (its catalog, its statements, the
//! documented SQS differences) each side is asserted explicitly.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::in_process::InProcess;
use common::manifests::manifest;
use common::text::is_uuid;
use common::{Backends, Host, Reply, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    a_failing_component_fails_only_its_request,
    hostile_requests_do_not_disturb_concurrent_ones,
    no_instance_serves_two_requests,
    a_reused_instance_serves_one_component_and_never_after_a_failure,
    a_request_in_flight_is_answered_before_the_host_stops,
    calls_outside_the_grants_are_refused,
    sql_cannot_reach_another_components_tables,
    sql_functions_cannot_reach_beyond_the_grants,
    a_timed_out_transaction_releases_the_database,
    sql_statements_and_transactions,
    records_api,
    concurrent_updates_lose_no_field,
    records_tables_come_back_after_a_drop,
    cache_values_expire,
    queue_messages_are_redelivered_until_deleted,
    queue_and_cache_survive_a_restart,
    identity_and_the_request_as_the_component_sees_it,
}

/// `POST /testbed/<action>` with a JSON body.
async fn post(host: &Host, action: &str, body: Value) -> Reply {
    host.json(Method::POST, &format!("/testbed/{action}"), None, &body)
        .await
}

/// Runs one SQL statement that returns rows.
async fn query(host: &Host, sql: &str, params: Value) -> Reply {
    post(
        host,
        "sql",
        json!({ "sql": sql, "params": params, "query": true }),
    )
    .await
}

/// Runs one SQL statement that changes rows.
async fn execute(host: &Host, sql: &str, params: Value) -> Reply {
    post(host, "sql", json!({ "sql": sql, "params": params })).await
}

async fn records(host: &Host, body: Value) -> Value {
    post(host, "records", body).await.expect(200)
}

async fn cache(host: &Host, body: Value) -> Value {
    post(host, "cache", body).await.expect(200)
}

async fn queue(host: &Host, body: Value) -> Value {
    post(host, "queue", body).await.expect(200)
}

async fn assert_pong(host: &Host) {
    let reply = host.get("/testbed/ping").await;
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "pong"),
        "{reply}"
    );
}

/// The log line with this message for this request.
async fn log_for(host: &Host, message: &str, reply: &Reply) -> Value {
    let id = reply.request_id().expect("a request id").to_owned();
    host.wait_for_log(&format!("{message:?} for request {id}"), |l| {
        l["message"] == message && l["request_id"] == id.as_str()
    })
    .await
}

async fn a_failing_component_fails_only_its_request(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    assert_pong(&host).await;

    let trap = host.get("/testbed/trap").await;
    let message = trap.expect_error(500, "internal");
    assert!(
        !message.contains("wasm") && !message.contains("panic"),
        "internal details reach the client: {message}"
    );
    let line = log_for(&host, "component failed", &trap).await;
    assert_eq!(line["component"], "testbed", "{line}");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        line["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unreachable"),
        "the log does not say why: {line}"
    );
    assert_pong(&host).await;

    let spin = host.get("/testbed/loop").await;
    let message = spin.expect_error(504, "timeout");
    assert!(message.contains("1000 ms"), "{message}");
    let line = log_for(&host, "component ran past its time limit", &spin).await;
    assert_eq!(line["limit_ms"], 1000, "{line}");
    assert_pong(&host).await;

    let grow = host.get("/testbed/grow").await;
    let message = grow.expect_error(500, "internal");
    assert!(
        message.contains("memory limit"),
        "the message does not name the memory limit: {message}"
    );
    let line = log_for(&host, "component exceeded its memory limit", &grow).await;
    assert_eq!(line["limit_mb"], 32, "{line}");
    assert_pong(&host).await;

    // Every request got its access-log line with its status.
    for (reply, status) in [(&trap, 500), (&spin, 504), (&grow, 500)] {
        let line = log_for(&host, "request", reply).await;
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["route"], "/testbed/{action}", "{line}");
    }
}

async fn hostile_requests_do_not_disturb_concurrent_ones(backends: Backends) {
    let host = Arc::new(Host::start_on(backends, &manifest("isolation")));
    let mut tasks = tokio::task::JoinSet::new();
    let actions = std::iter::repeat_n("loop", 4)
        .chain(std::iter::repeat_n("trap", 4))
        .chain(std::iter::repeat_n("grow", 4))
        .chain(std::iter::repeat_n("ping", 40));
    for action in actions {
        let host = host.clone();
        tasks.spawn(async move { (action, host.get(&format!("/testbed/{action}")).await) });
    }
    let mut ids: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    while let Some(done) = tasks.join_next().await {
        let (action, reply) = done.expect("a request task panicked");
        match action {
            "ping" => assert_eq!(
                (reply.status, reply.text().as_str()),
                (200, "pong"),
                "{reply}"
            ),
            "loop" => drop(reply.expect_error(504, "timeout")),
            "trap" => drop(reply.expect_error(500, "internal")),
            "grow" => assert!(
                reply.expect_error(500, "internal").contains("memory limit"),
                "{reply}"
            ),
            _ => unreachable!(),
        }
        ids.entry(action)
            .or_default()
            .push(reply.request_id().unwrap().to_owned());
    }
    assert_eq!(ids["ping"].len(), 40);

    // Each failure is logged once, for its own request.
    for (action, message) in [
        ("loop", "component ran past its time limit"),
        ("trap", "component failed"),
        ("grow", "component exceeded its memory limit"),
    ] {
        let expected: BTreeSet<&str> = ids[action].iter().map(String::as_str).collect();
        host.wait_for_logs(&format!("{message:?} for each {action} request"), |logs| {
            let logged: Vec<&str> = logs
                .iter()
                .filter(|l| l["message"] == message)
                .filter_map(|l| l["request_id"].as_str())
                .collect();
            logged.len() == expected.len() && logged.iter().all(|id| expected.contains(id))
        })
        .await;
    }
    assert_pong(&host).await;
}

/// Every request gets a fresh instance on reset memory, however the pool
/// reuses slots and resets pages: each `residue` call sees that it is its
/// instance's first, the data segment as built, and grown pages of zeros,
/// and then dirties all three for whoever comes next.
async fn no_instance_serves_two_requests(backends: Backends) {
    let host = Arc::new(Host::start_on(backends, &manifest("isolation")));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let host = host.clone();
        tasks.spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..25 {
                seen.push(host.get("/testbed/residue").await);
            }
            seen
        });
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        for reply in done.expect("a request task panicked") {
            assert_eq!(reply.status, 200, "{reply}");
            assert_eq!(
                reply.json(),
                json!({"calls": 1, "data": "pristine", "grown_dirty": false, "failed_before": false}),
                "a request saw what an earlier one left"
            );
            answered += 1;
        }
    }
    assert_eq!(answered, 200);
}

/// `requests_per_instance` lets one instance serve up to that many requests
/// of its own component, and nothing more: a component without it still gets
/// a fresh instance each time; each request on a reused instance sees its own
/// caller; and an instance whose call trapped, ran out of time or left a
/// transaction open never serves again.
async fn a_reused_instance_serves_one_component_and_never_after_a_failure(backends: Backends) {
    let host = Host::start_on(
        backends,
        &(manifest("isolation") + &manifest("isolation_reused")),
    );
    let mut most_calls = 0;
    for _ in 0..40 {
        let reused = host.get("/reused/residue").await.expect(200);
        let calls = reused["calls"].as_u64().expect("a count");
        assert!(
            (1..=4).contains(&calls),
            "an instance served past its limit: {reused}"
        );
        most_calls = most_calls.max(calls);
        assert_eq!(
            host.get("/testbed/residue").await.expect(200),
            json!({"calls": 1, "data": "pristine", "grown_dirty": false, "failed_before": false}),
            "the component that did not opt in got a used instance"
        );
    }
    assert!(
        most_calls >= 2,
        "no instance of the opted-in component served twice"
    );

    // The caller is the request's, not the one an earlier request on the
    // same instance had.
    let alice = host.token("alice", &["staff"]);
    for _ in 0..6 {
        assert_eq!(
            host.get_as("/reused/whoami", &alice).await.expect(200)["subject"],
            "alice"
        );
        assert_eq!(host.get("/reused/whoami").await.expect(200), Value::Null);
    }

    for _ in 0..3 {
        host.get("/reused/trap").await.expect_error(500, "internal");
        let after_trap = host.get("/reused/residue").await.expect(200);
        assert_eq!(
            after_trap["failed_before"], false,
            "served again after a trap: {after_trap}"
        );
        host.get("/reused/tx-leak").await.expect(200);
        let after_leak = host.get("/reused/residue").await.expect(200);
        assert_eq!(
            after_leak["failed_before"], false,
            "served again with a transaction left open: {after_leak}"
        );
    }
    host.get("/reused/loop").await.expect_error(504, "timeout");
    let after_timeout = host.get("/reused/residue").await.expect(200);
    assert_eq!(
        after_timeout["failed_before"], false,
        "served again after a timeout: {after_timeout}"
    );
}

async fn a_request_in_flight_is_answered_before_the_host_stops(backends: Backends) {
    let mut host = Host::start_on(
        backends,
        &manifest("isolation").replace("timeout_ms = 1000", "timeout_ms = 3000"),
    );
    let in_flight = tokio::spawn(host.client().get(host.url("/testbed/loop")).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.terminate();

    let response = in_flight
        .await
        .expect("the request task")
        .expect("the in-flight request was answered");
    assert_eq!(response.status().as_u16(), 504);
    let status = host.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "the host did not exit cleanly on SIGTERM: {status:?}\n{}",
        host.stderr()
    );
    assert!(
        host.logs().iter().any(|l| l["message"] == "stopped"),
        "{}",
        host.stderr()
    );
}

async fn calls_outside_the_grants_are_refused(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));

    let reply = post(
        &host,
        "records",
        json!({ "op": "insert", "table": "secrets", "fields": { "x": 1 } }),
    )
    .await;
    let message = reply.expect_error(500, "not_granted");
    assert!(
        message.contains("\"secrets\""),
        "the message does not name the table: {message}"
    );
    let line = log_for(
        &host,
        "refused a call outside the component's grants",
        &reply,
    )
    .await;
    assert_eq!(
        (line["kind"].as_str(), line["name"].as_str()),
        (Some("table"), Some("secrets")),
        "{line}"
    );
    assert_eq!(line["component"], "testbed", "{line}");

    for body in [
        json!({ "op": "get", "table": "secrets", "uid": "0189aaaa-0000-7000-8000-000000000000" }),
        json!({ "op": "list", "table": "secrets" }),
        json!({ "op": "delete", "table": "corral_cache", "uid": "x" }),
    ] {
        post(&host, "records", body)
            .await
            .expect_error(500, "not_granted");
    }

    // SQL naming a table outside the grants, however it is spelled: the
    // host's own tables, the catalog, another schema's spelling of a table.
    let catalog: &[&str] = match backends {
        Backends::Embedded => &[
            "SELECT * FROM main.secrets",
            "SELECT name FROM sqlite_master",
            "SELECT name FROM sqlite_schema",
        ],
        Backends::Aws => &[
            "SELECT * FROM public.secrets",
            "SELECT * FROM pg_catalog.pg_tables",
            "SELECT tablename FROM pg_tables",
            "SELECT * FROM information_schema.tables",
            "SELECT rolname, rolpassword FROM pg_catalog.pg_authid",
        ],
    };
    for sql in [
        "SELECT * FROM secrets",
        "SELECT * FROM notes WHERE id IN (SELECT id FROM secrets)",
        "SELECT * FROM corral_queue",
        "DELETE FROM corral_cache",
        "CREATE TABLE secrets (id INTEGER)",
    ]
    .iter()
    .chain(catalog)
    {
        let reply = query(&host, sql, json!([])).await;
        let message = reply.expect_error(500, "not_granted");
        assert!(message.contains("is not granted"), "{sql}: {message}");
    }
    let tx = post(
        &host,
        "tx",
        json!({ "statements": [{ "sql": "DELETE FROM corral_queue" }], "commit": true }),
    )
    .await;
    tx.expect_error(500, "not_granted");

    // Statements that reach beyond tables are refused outright, by the
    // host and not by the database: other databases and files, roles,
    // session settings, extensions, code. Each would run if let through
    // (`notes` exists; the files are the host's own).
    execute(
        &host,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY)",
        json!([]),
    )
    .await
    .expect(200);
    let scratch = host.data_dir().display().to_string();
    let beyond: Vec<String> = match backends {
        Backends::Embedded => vec![
            format!("ATTACH DATABASE '{scratch}/other.db' AS other"),
            "PRAGMA table_info(notes)".into(),
            "PRAGMA writable_schema = ON".into(),
            format!("VACUUM INTO '{scratch}/copy.db'"),
        ],
        Backends::Aws => vec![
            "SET ROLE postgres".into(),
            "SET statement_timeout = 0".into(),
            "RESET ALL".into(),
            "COPY notes TO STDOUT".into(),
            "COPY notes FROM '/etc/hostname'".into(),
            "CREATE EXTENSION IF NOT EXISTS plpgsql".into(),
            "DO $$BEGIN PERFORM 1; END$$".into(),
            "CREATE FUNCTION notes_planted() RETURNS integer AS 'SELECT 1' LANGUAGE sql".into(),
            "GRANT ALL ON notes TO PUBLIC".into(),
            "LISTEN notes".into(),
        ],
    };
    for sql in ["SELECT 1; SELECT 2".to_owned(), "SELEC 1".to_owned()]
        .iter()
        .chain(&beyond)
    {
        let reply = query(&host, sql, json!([])).await;
        assert_eq!(reply.status, 400, "{sql} was not refused: {reply}");
        let message = reply.expect_error(400, "bad_request");
        assert!(
            message.contains("statements are not allowed")
                || message.contains("cannot parse the SQL statement"),
            "{sql} was not refused by the host: {message}"
        );
    }

    let reply = post(
        &host,
        "cache",
        json!({ "op": "get", "store": "other", "key": "k" }),
    )
    .await;
    assert!(
        reply.expect_error(500, "not_granted").contains("\"other\""),
        "{reply}"
    );
    post(
        &host,
        "cache",
        json!({ "op": "set", "store": "other", "key": "k", "value": "v" }),
    )
    .await
    .expect_error(500, "not_granted");
    let reply = post(
        &host,
        "queue",
        json!({ "op": "send", "queue": "other", "body": "x" }),
    )
    .await;
    assert!(
        reply.expect_error(500, "not_granted").contains("\"other\""),
        "{reply}"
    );
    post(&host, "queue", json!({ "op": "receive", "queue": "other" }))
        .await
        .expect_error(500, "not_granted");

    // The granted ones work.
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "k" })
        )
        .await,
        json!({ "value": null })
    );
    query(&host, "SELECT 1 AS one", json!([])).await.expect(200);

    assert_eq!(
        host.get("/testbed/config?key=greeting").await.expect(200),
        json!({ "key": "greeting", "value": "hello" })
    );
    assert_eq!(
        host.get("/testbed/config?key=password").await.expect(200),
        json!({ "key": "password", "value": null })
    );
}

/// Whether the host refused a statement (not granted, or not allowed); an
/// error of any other kind fails the test at once.
fn refused(reply: &Reply, sql: &str) -> bool {
    if reply.status == 200 {
        return false;
    }
    assert!(
        reply.status == 400 || reply.status == 500,
        "{sql}\n  -> {reply}"
    );
    let code = if reply.status == 500 {
        "not_granted"
    } else {
        "bad_request"
    };
    reply.expect_error(reply.status, code);
    true
}

async fn sql_cannot_reach_another_components_tables(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation_two_components"));
    let other = async |sql: &str, params: Value, rows: bool| {
        host.json(
            Method::POST,
            "/other/sql",
            None,
            &json!({ "sql": sql, "params": params, "query": rows }),
        )
        .await
    };
    other("CREATE TABLE secrets (pw TEXT)", json!([]), false)
        .await
        .expect(200);
    other(
        "INSERT INTO secrets (pw) VALUES (?)",
        json!(["hunter2"]),
        false,
    )
    .await
    .expect(200);
    other("CREATE INDEX secrets_pw ON secrets (pw)", json!([]), false)
        .await
        .expect(200);
    host.json(
        Method::POST,
        "/other/cache",
        None,
        &json!({ "op": "set", "store": "vault", "key": "k", "value": "private" }),
    )
    .await
    .expect(200);
    execute(&host, "CREATE TABLE notes (x TEXT)", json!([]))
        .await
        .expect(200);

    let mut breaches = Vec::new();
    // Reads that name an ungranted table, hidden behind a CTE of the same
    // name: the other component's table, the host's tables, the catalog.
    let hidden: &[&str] = match backends {
        Backends::Embedded => &[
            "WITH secrets AS (SELECT 1) SELECT * FROM main.secrets",
            "WITH corral_cache AS (SELECT 1) SELECT store, key, CAST(value AS TEXT) FROM main.corral_cache",
            "WITH sqlite_master AS (SELECT 1) SELECT name FROM main.sqlite_master",
        ],
        Backends::Aws => &[
            "WITH secrets AS (SELECT 1) SELECT * FROM public.secrets",
            "WITH pg_tables AS (SELECT 1) SELECT tablename FROM pg_catalog.pg_tables",
            "WITH tables AS (SELECT 1) SELECT table_name FROM information_schema.tables",
        ],
    };
    for sql in ["SELECT * FROM secrets, (WITH secrets AS (SELECT 1 AS one) SELECT * FROM secrets)"]
        .iter()
        .chain(hidden)
    {
        let reply = query(&host, sql, json!([])).await;
        if !refused(&reply, sql) {
            breaches.push(format!("{sql}\n    -> {}", reply.text()));
        }
    }
    // Changes to ungranted tables and their indexes, and a rename out of the grants.
    let schema = match backends {
        Backends::Embedded => "main",
        Backends::Aws => "public",
    };
    for sql in [
        &format!("WITH secrets AS (SELECT 1) DELETE FROM {schema}.secrets"),
        "DROP INDEX secrets_pw",
        "ALTER TABLE notes RENAME TO planted",
    ] {
        let reply = execute(&host, sql, json!([])).await;
        if !refused(&reply, sql) {
            breaches.push(format!("{sql}\n    -> {}", reply.text()));
        }
    }

    // Nothing of the other component's changed, and `notes` is still there.
    let rows = other("SELECT pw FROM secrets", json!([]), true)
        .await
        .expect(200);
    if rows["rows"] != json!([["hunter2"]]) {
        breaches.push(format!("the other component's rows changed: {rows}"));
    }
    let again = other("CREATE INDEX secrets_pw ON secrets (pw)", json!([]), false).await;
    if again.status == 200 {
        breaches.push("the other component's index was dropped".into());
    } else {
        assert!(
            again
                .expect_error(400, "bad_request")
                .contains("already exists"),
            "{again}"
        );
    }
    let vault = host
        .json(
            Method::POST,
            "/other/cache",
            None,
            &json!({ "op": "get", "store": "vault", "key": "k" }),
        )
        .await;
    assert_eq!(vault.expect(200), json!({ "value": "private" }));
    let notes = query(&host, "SELECT x FROM notes", json!([])).await;
    if notes.status != 200 {
        breaches.push(format!("`notes` is gone: {}", notes.text()));
    }
    assert!(
        breaches.is_empty(),
        "SQL reached beyond the component's grants:\n  {}",
        breaches.join("\n  ")
    );
}

/// SQL functions that reach what a statement's tables do not name: another
/// component's table through SQL given as text, files on the server, the
/// settings of a pooled connection. Each must fail, and nothing of the
/// other component's may come back.
async fn sql_functions_cannot_reach_beyond_the_grants(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation_two_components"));
    for sql in [
        "CREATE TABLE secrets (pw TEXT)",
        "INSERT INTO secrets (pw) VALUES ('hunter2')",
    ] {
        host.json(Method::POST, "/other/sql", None, &json!({ "sql": sql }))
            .await
            .expect(200);
    }
    execute(&host, "CREATE TABLE notes (x TEXT)", json!([]))
        .await
        .expect(200);

    let probes: &[(&str, &str)] = match backends {
        Backends::Embedded => &[
            (
                "SELECT load_extension('/nonexistent/planted')",
                "loads native code",
            ),
            ("SELECT readfile('/etc/hostname')", "reads a file"),
            (
                "SELECT writefile('/tmp/corral-planted', 'x')",
                "writes a file",
            ),
        ],
        Backends::Aws => &[
            (
                "SELECT query_to_xml('SELECT pw FROM secrets', true, false, '')::text",
                "runs SQL given as text, on another component's table",
            ),
            (
                "SELECT query_to_xml_and_xmlschema('SELECT pw FROM secrets', true, false, '')::text",
                "runs SQL given as text, on another component's table",
            ),
            (
                "SELECT table_to_xml('secrets', true, false, '')::text",
                "reads another component's table by name",
            ),
            (
                "SELECT schema_to_xml('public', true, false, '')::text",
                "reads every table of the schema",
            ),
            (
                "SELECT pg_read_file('/etc/hostname')",
                "reads a file on the server",
            ),
            (
                "SELECT set_config('statement_timeout', '0', false)",
                "turns off the statement time limit of a pooled connection",
            ),
        ],
    };
    let mut breaches = Vec::new();
    for (sql, what) in probes {
        let reply = query(&host, sql, json!([])).await;
        if reply.status == 200 || reply.text().contains("hunter2") {
            breaches.push(format!("{sql} ({what})\n    -> {}", reply.text()));
        } else {
            assert!(
                reply.status == 400 || reply.status == 500,
                "{sql}\n  -> {reply}"
            );
        }
    }
    assert!(
        breaches.is_empty(),
        "SQL functions reached beyond the component's grants:\n  {}",
        breaches.join("\n  ")
    );
}

async fn a_timed_out_transaction_releases_the_database(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    execute(
        &host,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY)",
        json!([]),
    )
    .await
    .expect(200);

    // A statement that runs far longer than the component's 1000 ms, inside
    // a transaction: the request times out and its transaction is abandoned.
    let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c";
    let tx = json!({ "statements": [{ "sql": "INSERT INTO notes (id) VALUES (1)" }, { "sql": slow }], "commit": true });
    post(&host, "tx", tx).await.expect_error(504, "timeout");

    // Writes by later requests, to the database and to the cache, go through,
    // and nothing of the abandoned transaction stays.
    let mut stuck = Vec::new();
    let insert = execute(&host, "INSERT INTO notes (id) VALUES (2)", json!([])).await;
    if insert.status != 200 {
        stuck.push(format!("INSERT INTO notes -> {insert}"));
    }
    let set = post(
        &host,
        "cache",
        json!({ "op": "set", "store": "sessions", "key": "k", "value": "v" }),
    )
    .await;
    if set.status != 200 {
        stuck.push(format!("cache set -> {set}"));
    }
    let rows = query(&host, "SELECT id FROM notes ORDER BY id", json!([]))
        .await
        .expect(200);
    if rows["rows"] != json!([[2]]) {
        stuck.push(format!("the rows of notes are {}, not [[2]]", rows["rows"]));
    }
    // The key the abandoned transaction wrote is free again: no row lock of
    // it is left (on PostgreSQL the insert would wait on it, then time out).
    let again = execute(&host, "INSERT INTO notes (id) VALUES (1)", json!([])).await;
    if again.status != 200 {
        stuck.push(format!("INSERT INTO notes (id) VALUES (1) -> {again}"));
    }
    assert!(
        stuck.is_empty(),
        "after a transaction timed out, writes are blocked:\n  {}",
        stuck.join("\n  ")
    );
}

async fn sql_statements_and_transactions(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    let tricky = "O'Brien said \"hi\"; DROP TABLE notes; -- \u{e9}\u{1F600}";

    // Types both databases take: BIGINT holds 2^53 + 1, DOUBLE PRECISION
    // is a float on both (REAL is only four bytes on PostgreSQL).
    execute(&host, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, score DOUBLE PRECISION, n BIGINT, extra TEXT)", json!([]))
        .await
        .expect(200);
    let insert = "INSERT INTO notes (id, body, score, n, extra) VALUES (?, ?, ?, ?, ?)";
    let changed = execute(
        &host,
        insert,
        json!([1, tricky, 2.5, 9007199254740993_i64, null]),
    )
    .await
    .expect(200);
    assert_eq!(changed, json!({ "changed": 1 }));
    execute(&host, insert, json!([2, "plain", -0.125, -7, "x"]))
        .await
        .expect(200);

    let rows = query(
        &host,
        "SELECT id, body, score, n, extra FROM notes ORDER BY id",
        json!([]),
    )
    .await
    .expect(200);
    assert_eq!(
        rows,
        json!({
            "columns": ["id", "body", "score", "n", "extra"],
            "rows": [[1, tricky, 2.5, 9007199254740993_i64, null], [2, "plain", -0.125, -7, "x"]],
        })
    );
    let found = query(
        &host,
        "SELECT id FROM notes WHERE body = ?",
        json!([tricky]),
    )
    .await
    .expect(200);
    assert_eq!(
        found["rows"],
        json!([[1]]),
        "a parameter with quotes matches exactly"
    );
    let counted = query(
        &host,
        "SELECT count(*) AS c, sum(score) AS s FROM notes WHERE n > ?",
        json!([-100]),
    )
    .await
    .expect(200);
    assert_eq!(
        counted,
        json!({ "columns": ["c", "s"], "rows": [[2, 2.375]] })
    );
    let updated = execute(
        &host,
        "UPDATE notes SET extra = ? WHERE id >= ?",
        json!(["y", 1]),
    )
    .await
    .expect(200);
    assert_eq!(updated, json!({ "changed": 2 }));

    let ids = async |host: &Host| -> Vec<i64> {
        let rows = query(host, "SELECT id FROM notes ORDER BY id", json!([]))
            .await
            .expect(200);
        rows["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect()
    };

    // Committed: visible.
    let tx = json!({ "statements": [
        { "sql": "INSERT INTO notes (id, body) VALUES (?, ?)", "params": [10, "ten"] },
        { "sql": "UPDATE notes SET body = ? WHERE id = ?", "params": ["TEN", 10] },
        { "sql": "INSERT INTO notes (id, body) VALUES (?, ?)", "params": [11, "eleven"] },
    ], "commit": true });
    assert_eq!(
        post(&host, "tx", tx).await.expect(200),
        json!({ "committed": true })
    );
    assert_eq!(ids(&host).await, [1, 2, 10, 11]);
    let ten = query(&host, "SELECT body FROM notes WHERE id = 10", json!([]))
        .await
        .expect(200);
    assert_eq!(
        ten["rows"],
        json!([["TEN"]]),
        "statements in a transaction see each other"
    );

    // Rolled back: absent.
    let tx = json!({ "statements": [
        { "sql": "INSERT INTO notes (id, body) VALUES (?, ?)", "params": [20, "twenty"] },
        { "sql": "DELETE FROM notes WHERE id = ?", "params": [1] },
    ], "commit": false });
    assert_eq!(
        post(&host, "tx", tx).await.expect(200),
        json!({ "committed": false })
    );
    assert_eq!(ids(&host).await, [1, 2, 10, 11]);

    // A failing statement: an error, and nothing of the transaction stays.
    let tx = json!({ "statements": [
        { "sql": "INSERT INTO notes (id, body) VALUES (?, ?)", "params": [30, "thirty"] },
        { "sql": "DELETE FROM notes WHERE id = ?", "params": [2] },
        { "sql": "INSERT INTO notes (nope) VALUES (1)" },
    ], "commit": true });
    post(&host, "tx", tx).await.expect_error(400, "bad_request");
    assert_eq!(ids(&host).await, [1, 2, 10, 11]);
    // The abandoned transaction holds no lock: the next write goes through at once.
    execute(
        &host,
        "INSERT INTO notes (id, body) VALUES (?, ?)",
        json!([31, "thirty-one"]),
    )
    .await
    .expect(200);
    assert_eq!(ids(&host).await, [1, 2, 10, 11, 31]);

    // Unique keys: a clash is a conflict, in or out of a transaction.
    let message = execute(
        &host,
        "INSERT INTO notes (id, body) VALUES (?, ?)",
        json!([1, "again"]),
    )
    .await
    .expect_error(409, "conflict");
    assert!(message.to_lowercase().contains("unique"), "{message}");
    execute(
        &host,
        "CREATE UNIQUE INDEX notes_body ON notes (body)",
        json!([]),
    )
    .await
    .expect(200);
    execute(
        &host,
        "INSERT INTO notes (id, body) VALUES (?, ?)",
        json!([40, "plain"]),
    )
    .await
    .expect_error(409, "conflict");
    let tx = json!({ "statements": [
        { "sql": "INSERT INTO notes (id, body) VALUES (?, ?)", "params": [41, "forty-one"] },
        { "sql": "INSERT INTO notes (id, body) VALUES (?, ?)", "params": [42, "TEN"] },
    ], "commit": true });
    post(&host, "tx", tx).await.expect_error(409, "conflict");
    assert_eq!(ids(&host).await, [1, 2, 10, 11, 31]);

    // Other statement errors are the caller's: 400.
    execute(&host, "INSERT INTO notes (id) VALUES (?)", json!([50]))
        .await
        .expect_error(400, "bad_request");
    query(&host, "SELECT missing_column FROM notes", json!([]))
        .await
        .expect_error(400, "bad_request");
}

async fn records_api(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    let alice = host.token("alice", &[]);
    let insert_as = async |token: Option<&str>, fields: Value| -> Value {
        let body = json!({ "op": "insert", "table": "notes", "fields": fields });
        let reply = host
            .json(Method::POST, "/testbed/records", token, &body)
            .await
            .expect(200);
        reply["record"].clone()
    };

    // The host stamps every record and ignores stamps the component sends.
    let first = insert_as(Some(&alice), json!({ "title": "a", "n": 1, "uid": "forged", "creator_uid": "mallory", "created_at": "then" })).await;
    let first_uid = first["uid"].as_str().unwrap().to_owned();
    assert!(is_uuid(&first_uid), "{first}");
    assert_eq!(first["creator_uid"], "alice");
    assert_eq!(first["last_updater_uid"], "alice");
    assert_ne!(first["created_at"], "then");
    assert_eq!(
        first.as_object().unwrap().len(),
        7,
        "five stamps and two fields: {first}"
    );
    let anonymous = insert_as(None, json!({ "title": "b", "n": 2 })).await;
    assert_eq!(anonymous["creator_uid"], Value::Null, "{anonymous}");
    let mut all = vec![first.clone(), anonymous.clone()];
    for (title, n) in [("c", 3), ("d", 4), ("e", 5)] {
        all.push(
            insert_as(
                Some(&alice),
                json!({ "title": title, "n": n, "tags": ["x", n] }),
            )
            .await,
        );
    }
    let uid_of = |r: &Value| r["uid"].as_str().unwrap().to_owned();

    // get
    let got = records(
        &host,
        json!({ "op": "get", "table": "notes", "uid": first_uid }),
    )
    .await;
    assert_eq!(got["record"], first);
    let missing = "0189aaaa-0000-7000-8000-000000000000";
    assert_eq!(
        records(
            &host,
            json!({ "op": "get", "table": "notes", "uid": missing })
        )
        .await,
        json!({ "record": null })
    );

    // update: merge, a null removes a field, stamps are the host's
    let changes = json!({ "title": "A", "n": null, "extra": true, "creator_uid": "mallory" });
    let updated = records(
        &host,
        json!({ "op": "update", "table": "notes", "uid": first_uid, "fields": changes }),
    )
    .await["record"]
        .clone();
    assert_eq!(updated["title"], "A");
    assert!(
        updated.get("n").is_none(),
        "a null did not remove the field: {updated}"
    );
    assert_eq!(updated["extra"], true);
    assert_eq!(updated["creator_uid"], "alice");
    assert_eq!(
        updated["last_updater_uid"],
        Value::Null,
        "the anonymous updater is stamped: {updated}"
    );
    assert_eq!(
        records(
            &host,
            json!({ "op": "get", "table": "notes", "uid": first_uid })
        )
        .await["record"],
        updated
    );
    let none = records(
        &host,
        json!({ "op": "update", "table": "notes", "uid": missing, "fields": { "title": "z" } }),
    )
    .await;
    assert_eq!(none, json!({ "record": null }));
    all[0] = updated.clone();

    // list with filters
    let list = async |filters: Value, limit: Option<u32>, after: Option<&str>| -> Value {
        let mut body = json!({ "op": "list", "table": "notes", "filters": filters });
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        if let Some(after) = after {
            body["after"] = json!(after);
        }
        records(&host, body).await
    };
    let uids = |page: &Value| -> Vec<String> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(uid_of)
            .collect()
    };
    let every = list(json!([]), None, None).await;
    assert_eq!(
        every["records"],
        Value::Array(all.clone()),
        "all records, oldest first"
    );
    assert_eq!(every["next"], Value::Null);
    let cases = [
        (
            json!([{ "field": "title", "op": "eq", "value": "c" }]),
            vec![2],
        ),
        (
            json!([{ "field": "n", "op": "gt", "value": 3 }]),
            vec![3, 4],
        ),
        (
            json!([{ "field": "n", "op": "ge", "value": 2 }, { "field": "n", "op": "lt", "value": 5 }]),
            vec![1, 2, 3],
        ),
        (
            json!([{ "field": "title", "op": "ne", "value": "c" }]),
            vec![0, 1, 3, 4],
        ),
        (
            json!([{ "field": "n", "op": "eq", "value": null }]),
            vec![0],
        ),
        (
            json!([{ "field": "creator_uid", "op": "eq", "value": null }]),
            vec![1],
        ),
        (
            json!([{ "field": "creator_uid", "op": "eq", "value": "alice" }, { "field": "n", "op": "le", "value": 4 }]),
            vec![2, 3],
        ),
        (
            json!([{ "field": "extra", "op": "eq", "value": true }]),
            vec![0],
        ),
        (
            json!([{ "field": "uid", "op": "gt", "value": uid_of(&all[2]) }]),
            vec![3, 4],
        ),
    ];
    for (filters, expected) in cases {
        let page = list(filters.clone(), None, None).await;
        let want: Vec<String> = expected.iter().map(|i| uid_of(&all[*i])).collect();
        assert_eq!(uids(&page), want, "filters {filters}");
    }

    // paging
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = list(json!([]), Some(2), after.as_deref()).await;
        sizes.push(page["records"].as_array().unwrap().len());
        seen.extend(uids(&page));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, all.iter().map(uid_of).collect::<Vec<_>>());

    // refused arguments
    for body in [
        json!({ "op": "list", "table": "notes", "limit": 0 }),
        json!({ "op": "list", "table": "notes", "limit": 1001 }),
        json!({ "op": "list", "table": "notes", "after": "bogus" }),
        json!({ "op": "list", "table": "notes", "filters": [{ "field": "n; DROP TABLE notes", "op": "eq", "value": 1 }] }),
        json!({ "op": "list", "table": "notes", "filters": [{ "field": "n", "op": "gt", "value": null }] }),
        json!({ "op": "list", "table": "notes", "filters": [{ "field": "n", "op": "eq", "value": [1] }] }),
    ] {
        post(&host, "records", body.clone())
            .await
            .expect_error(400, "bad_request");
    }

    // delete
    assert_eq!(
        records(
            &host,
            json!({ "op": "delete", "table": "notes", "uid": first_uid })
        )
        .await,
        json!({ "deleted": true })
    );
    assert_eq!(
        records(
            &host,
            json!({ "op": "delete", "table": "notes", "uid": first_uid })
        )
        .await,
        json!({ "deleted": false })
    );
    assert_eq!(
        records(
            &host,
            json!({ "op": "get", "table": "notes", "uid": first_uid })
        )
        .await,
        json!({ "record": null })
    );
    assert_eq!(
        uids(&list(json!([]), None, None).await),
        all[1..].iter().map(uid_of).collect::<Vec<_>>()
    );
}

async fn concurrent_updates_lose_no_field(backends: Backends) {
    // The updates wait on one another's row lock: a time limit that a
    // loaded machine cannot reach, since this test is about lost fields.
    let manifest = manifest("isolation").replace("timeout_ms = 1000", "timeout_ms = 20000");
    let host = Arc::new(Host::start_on(backends, &manifest));
    let created = records(
        &host,
        json!({ "op": "insert", "table": "notes", "fields": { "base": 0 } }),
    )
    .await;
    let uid = created["record"]["uid"].as_str().unwrap().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (host, uid) = (host.clone(), uid.clone());
        tasks.spawn(async move {
            let changes = json!({ format!("f{i}"): i });
            records(
                &host,
                json!({ "op": "update", "table": "notes", "uid": uid, "fields": changes }),
            )
            .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.expect("an update task panicked")["record"].is_object());
    }
    let record =
        records(&host, json!({ "op": "get", "table": "notes", "uid": uid })).await["record"]
            .clone();
    for i in 0..16 {
        assert_eq!(record[format!("f{i}")], i, "field f{i} was lost: {record}");
    }
    assert_eq!(record["base"], 0);
}

async fn records_tables_come_back_after_a_drop(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    records(
        &host,
        json!({ "op": "insert", "table": "notes", "fields": { "n": 1 } }),
    )
    .await;
    execute(&host, "DROP TABLE notes", json!([]))
        .await
        .expect(200);

    let reply = post(
        &host,
        "records",
        json!({ "op": "insert", "table": "notes", "fields": { "n": 2 } }),
    )
    .await;
    let record = reply.expect(200)["record"].clone();
    let listed = records(&host, json!({ "op": "list", "table": "notes" })).await;
    assert_eq!(listed["records"], json!([record]), "{listed}");
}

async fn cache_values_expire(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    let ok = json!({ "ok": true });

    assert_eq!(
        cache(
            &host,
            json!({ "op": "set", "store": "sessions", "key": "k1", "value": "v1" })
        )
        .await,
        ok
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "k1" })
        )
        .await,
        json!({ "value": "v1" })
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "set", "store": "sessions", "key": "k1", "value": "v1b" })
        )
        .await,
        ok
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "k1" })
        )
        .await,
        json!({ "value": "v1b" }),
        "set replaces"
    );
    cache(
        &host,
        json!({ "op": "set", "store": "sessions", "key": "k2", "value": "v2" }),
    )
    .await;
    cache(
        &host,
        json!({ "op": "set", "store": "sessions", "key": "short", "value": "soon gone", "ttl": 1 }),
    )
    .await;
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "short" })
        )
        .await,
        json!({ "value": "soon gone" })
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "absent" })
        )
        .await,
        json!({ "value": null })
    );

    let many = cache(
        &host,
        json!({ "op": "get-many", "store": "sessions", "keys": ["k2", "absent", "short", "k1"] }),
    )
    .await;
    let keys: Vec<&str> = many["values"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["k2", "short", "k1"],
        "only present keys, in the order asked: {many}"
    );
    assert_eq!(
        many["values"],
        json!({ "k2": "v2", "short": "soon gone", "k1": "v1b" })
    );

    // `add` stores only where nothing unexpired is.
    let add = |key: &str, value: &str| json!({ "op": "add", "store": "sessions", "key": key, "value": value });
    assert_eq!(
        cache(&host, add("k2", "other")).await,
        json!({ "stored": false })
    );
    assert_eq!(
        cache(&host, add("fresh", "first")).await,
        json!({ "stored": true })
    );
    assert_eq!(
        cache(&host, add("fresh", "second")).await,
        json!({ "stored": false })
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "fresh" })
        )
        .await,
        json!({ "value": "first" }),
        "the first add wins"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "short" })
        )
        .await,
        json!({ "value": null }),
        "expired"
    );
    let many = cache(
        &host,
        json!({ "op": "get-many", "store": "sessions", "keys": ["short", "k1"] }),
    )
    .await;
    assert_eq!(many, json!({ "values": { "k1": "v1b" } }));
    assert_eq!(
        cache(&host, add("short", "again")).await,
        json!({ "stored": true }),
        "an expired value counts as absent"
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "short" })
        )
        .await,
        json!({ "value": "again" })
    );

    assert_eq!(
        cache(
            &host,
            json!({ "op": "delete", "store": "sessions", "key": "k1" })
        )
        .await,
        ok
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "k1" })
        )
        .await,
        json!({ "value": null })
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "delete", "store": "sessions", "key": "k1" })
        )
        .await,
        ok,
        "deleting an absent key"
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "k2" })
        )
        .await,
        json!({ "value": "v2" })
    );

    let too_many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    post(
        &host,
        "cache",
        json!({ "op": "get-many", "store": "sessions", "keys": too_many }),
    )
    .await
    .expect_error(400, "bad_request");
}

/// Receives from `jobs`, returning the messages.
async fn receive(host: &Host, max: u32, visibility: u32) -> Vec<Value> {
    let got = queue(
        host,
        json!({ "op": "receive", "queue": "jobs", "max": max, "visibility": visibility }),
    )
    .await;
    got["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages array: {got}"))
        .clone()
}

/// `field` of each message, as a list to compare: in the order received on
/// the embedded queue, which delivers oldest first; sorted on SQS, whose
/// standard queues promise no order.
fn in_delivery_order(backends: Backends, messages: &[Value], field: &str) -> Vec<String> {
    let values = messages
        .iter()
        .map(|m| {
            m[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {m}"))
                .to_owned()
        })
        .collect();
    as_delivered(backends, values)
}

/// What a receive is expected to give, in the order [`in_delivery_order`] lists it.
fn as_delivered(backends: Backends, mut values: Vec<String>) -> Vec<String> {
    if backends == Backends::Aws {
        values.sort();
    }
    values
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

async fn queue_messages_are_redelivered_until_deleted(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    let mut sent = Vec::new();
    for body in ["one", "two", "three"] {
        let id = queue(
            &host,
            json!({ "op": "send", "queue": "jobs", "body": body }),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        sent.push(id);
    }
    assert_eq!(
        sent.iter().collect::<BTreeSet<_>>().len(),
        3,
        "ids are distinct: {sent:?}"
    );

    let first = receive(&host, 10, 1).await;
    assert_eq!(
        in_delivery_order(backends, &first, "body"),
        as_delivered(backends, strings(&["one", "two", "three"])),
        "{first:?}"
    );
    assert_eq!(
        in_delivery_order(backends, &first, "id"),
        as_delivered(backends, sent.clone()),
        "{first:?}"
    );
    if backends == Backends::Embedded {
        let pairs: Vec<(&str, &str)> = first
            .iter()
            .map(|m| (m["id"].as_str().unwrap(), m["body"].as_str().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            sent.iter()
                .map(String::as_str)
                .zip(["one", "two", "three"])
                .collect::<Vec<_>>(),
            "each id names its own message"
        );
    }
    assert!(first.iter().all(|m| m["receive_count"] == 1), "{first:?}");
    assert!(
        receive(&host, 10, 1).await.is_empty(),
        "received messages are hidden"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = receive(&host, 10, 1).await;
    assert_eq!(
        in_delivery_order(backends, &second, "body"),
        as_delivered(backends, strings(&["one", "two", "three"])),
        "nothing is lost when the visibility timeout passes: {second:?}"
    );
    assert!(second.iter().all(|m| m["receive_count"] == 2), "{second:?}");
    for a in &first {
        let b = second
            .iter()
            .find(|b| b["id"] == a["id"])
            .unwrap_or_else(|| panic!("{a} was not delivered again: {second:?}"));
        assert_eq!(a["body"], b["body"], "the same id, another body");
        assert_ne!(
            a["receipt"], b["receipt"],
            "a new delivery has a new receipt"
        );
    }

    // An old receipt no longer deletes on the embedded queue; SQS usually
    // accepts one (a documented difference).
    let stale = post(
        &host,
        "queue",
        json!({ "op": "delete", "queue": "jobs", "receipt": first[0]["receipt"] }),
    )
    .await;
    match backends {
        Backends::Embedded => drop(stale.expect_error(400, "bad_request")),
        Backends::Aws => assert_eq!(stale.expect(200), json!({ "ok": true })),
    }
    // The current receipts delete.
    for m in &second {
        assert_eq!(
            queue(
                &host,
                json!({ "op": "delete", "queue": "jobs", "receipt": m["receipt"] })
            )
            .await,
            json!({ "ok": true })
        );
    }
    // A receipt whose message is gone: refused on the embedded queue,
    // accepted on SQS.
    let gone = post(
        &host,
        "queue",
        json!({ "op": "delete", "queue": "jobs", "receipt": second[0]["receipt"] }),
    )
    .await;
    match backends {
        Backends::Embedded => drop(gone.expect_error(400, "bad_request")),
        Backends::Aws => assert_eq!(gone.expect(200), json!({ "ok": true })),
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        receive(&host, 10, 1).await.is_empty(),
        "deleted messages came back"
    );

    // A batch: one id per message, all delivered (in order on the embedded
    // queue); max is honoured.
    let batch = queue(
        &host,
        json!({ "op": "send-batch", "queue": "jobs", "bodies": ["b1", "b2", "b3"] }),
    )
    .await;
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{batch}");
    let ids: BTreeSet<&str> = results
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_else(|| panic!("{batch}")))
        .collect();
    assert_eq!(ids.len(), 3, "{batch}");
    let two = receive(&host, 2, 30).await;
    assert_eq!(two.len(), 2, "max is honoured: {two:?}");
    let rest = receive(&host, 10, 30).await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    if backends == Backends::Embedded {
        assert_eq!(in_delivery_order(backends, &two, "body"), ["b1", "b2"]);
        assert_eq!(in_delivery_order(backends, &rest, "body"), ["b3"]);
    }
    let all: Vec<Value> = two.iter().chain(&rest).cloned().collect();
    assert_eq!(
        in_delivery_order(backends, &all, "body"),
        as_delivered(backends, strings(&["b1", "b2", "b3"])),
        "{all:?}"
    );
    let mut delivered: Vec<&str> = all.iter().map(|m| m["id"].as_str().unwrap()).collect();
    delivered.sort_unstable();
    assert_eq!(
        delivered,
        ids.iter().copied().collect::<Vec<_>>(),
        "the batch's ids are the delivered ones"
    );

    for max in [0, 11] {
        post(
            &host,
            "queue",
            json!({ "op": "receive", "queue": "jobs", "max": max }),
        )
        .await
        .expect_error(400, "bad_request");
    }
    post(
        &host,
        "queue",
        json!({ "op": "send-batch", "queue": "jobs", "bodies": [] }),
    )
    .await
    .expect_error(400, "bad_request");
}

async fn queue_and_cache_survive_a_restart(backends: Backends) {
    let mut host = Host::start_on(backends, &manifest("isolation"));
    let id = queue(
        &host,
        json!({ "op": "send", "queue": "jobs", "body": "durable" }),
    )
    .await["id"]
        .clone();
    cache(
        &host,
        json!({ "op": "set", "store": "sessions", "key": "s", "value": "kept" }),
    )
    .await;

    host.restart();

    let got = receive(&host, 10, 30).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (&got[0]["id"], &got[0]["body"], &got[0]["receive_count"]),
        (&id, &json!("durable"), &json!(1))
    );
    assert_eq!(
        cache(
            &host,
            json!({ "op": "get", "store": "sessions", "key": "s" })
        )
        .await,
        json!({ "value": "kept" })
    );
}

async fn identity_and_the_request_as_the_component_sees_it(backends: Backends) {
    let host = Host::start_on(backends, &manifest("isolation"));
    let alice = host.token("alice", &["advisors", "staff"]);
    let bob = host.token("bob", &[]);

    assert_eq!(host.get("/testbed/whoami").await.expect(200), Value::Null);
    let me = host.get_as("/testbed/whoami", &alice).await.expect(200);
    assert_eq!(me["subject"], "alice", "{me}");
    assert_eq!(me["groups"], json!(["advisors", "staff"]), "{me}");
    assert_eq!(me["claims"]["sub"], "alice", "{me}");
    assert_eq!(me["claims"]["iss"], "corral-dev", "{me}");
    // On a public route a token that does not verify is no caller: the
    // component sees an anonymous request.
    assert_eq!(
        host.get_as("/testbed/whoami", "not-a-token")
            .await
            .expect(200),
        Value::Null
    );

    assert_eq!(
        host.get_as("/testbed/require-group?group=advisors", &alice)
            .await
            .expect(200)["subject"],
        "alice"
    );
    host.get_as("/testbed/require-group?group=advisors", &bob)
        .await
        .expect_error(403, "forbidden");
    host.get("/testbed/require-group?group=advisors")
        .await
        .expect_error(401, "unauthorized");

    let reply = host
        .send(
            host.client()
                .post(host.url("/testbed/echo?a=1&b=x%20y&a=2&c=p%2Bq+r&empty="))
                .bearer_auth(&alice)
                .header("X-Custom-Header", "Some Value")
                .header("content-type", "text/plain")
                .body("hello body"),
        )
        .await;
    let echo = reply.expect(200);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["mount"], "/testbed");
    assert_eq!(echo["route"], "/{action}");
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["params"], json!({ "action": "echo" }));
    assert_eq!(
        echo["query"],
        json!([
            ["a", "1"],
            ["b", "x y"],
            ["a", "2"],
            ["c", "p+q r"],
            ["empty", ""]
        ])
    );
    assert_eq!(echo["body"], "hello body");
    assert_eq!(echo["request_id"].as_str(), reply.request_id());
    let headers = echo["headers"].as_object().unwrap();
    assert!(
        !headers.contains_key("authorization"),
        "the token reached the component: {echo}"
    );
    assert!(
        !headers
            .values()
            .any(|v| v.as_str().is_some_and(|v| v.contains(&alice))),
        "the token reached the component: {echo}"
    );
    assert_eq!(
        headers.get("x-custom-header"),
        Some(&json!("Some Value")),
        "{echo}"
    );
    assert_eq!(
        headers.get("content-type"),
        Some(&json!("text/plain")),
        "{echo}"
    );
    // The component gets lower-case names, as the host received them.
    for name in headers.keys() {
        assert_eq!(name, &name.to_ascii_lowercase());
    }

    // A percent-encoded path parameter arrives decoded.
    let decoded = host.get("/testbed/ech%6F").await.expect(200);
    assert_eq!(decoded["params"], json!({ "action": "echo" }));

    // Component log lines land in the host's log with the request id.
    let logged = host
        .get("/testbed/log?message=hello%20from%20the%20guest")
        .await;
    assert_eq!(logged.expect(200), json!({ "logged": true }));
    let line = log_for(&host, "hello from the guest", &logged).await;
    assert_eq!(line["component"], "testbed", "{line}");
    assert_eq!(line["target"], "corral::component", "{line}");
}

/// A component whose `init` fails keeps the host from starting, and the
/// reason names the component and carries its message.
#[tokio::test]
async fn a_component_whose_init_fails_is_refused() {
    let manifest = manifest("isolation").replace(
        r#"config = { greeting = "hello" }"#,
        r#"config = { init_error = "the schema is missing" }"#,
    );
    let refusal = InProcess::refused(&manifest).await;
    assert!(
        refusal.contains(r#"component \"testbed\" refused to start: the schema is missing"#)
            || refusal.contains(r#"component "testbed" refused to start: the schema is missing"#),
        "{refusal}"
    );
}
