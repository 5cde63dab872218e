//! A hostile component against the database, through the real binary, on
//! both backend sets. Each attack runs while a healthy tenant (`victim`)
//! keeps reading and writing; each attack gets its clear error, the healthy
//! traffic sees no error at all, and the victim's rows are unchanged byte
//! for byte.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::manifests::manifest;
use common::{Backends, Host, Reply, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    a_transaction_held_open_is_rolled_back_at_its_bound,
    a_billion_rows_stop_at_the_result_cap,
    sql_with_a_nul_byte_is_refused,
    audit_fields_cannot_be_forged_through_the_records_api,
    a_component_without_grants_cannot_hold_the_database,
}

mod embedded_only {
    #[tokio::test]
    async fn audit_columns_cannot_be_forged_through_sql() {
        super::audit_columns_cannot_be_forged_through_sql().await
    }

    #[tokio::test]
    async fn a_granted_component_cannot_starve_the_pool_or_the_write_lock() {
        super::a_granted_component_cannot_starve_the_pool_or_the_write_lock().await
    }
}

async fn sql(host: &Host, component: &str, sql: &str, params: Value, query: bool) -> Reply {
    let body = json!({ "sql": sql, "params": params, "query": query });
    host.json(Method::POST, &format!("/{component}/sql"), None, &body)
        .await
}

async fn records(host: &Host, component: &str, body: Value) -> Reply {
    host.json(Method::POST, &format!("/{component}/records"), None, &body)
        .await
}

async fn tx(host: &Host, component: &str, statements: &[&str], hold_ms: u64) -> Reply {
    let statements: Vec<Value> = statements.iter().map(|s| json!({ "sql": s })).collect();
    let body = json!({ "statements": statements, "commit": true, "hold_ms": hold_ms });
    host.json(Method::POST, &format!("/{component}/tx"), None, &body)
        .await
}

/// The victim's tables and records, set up before the attack.
async fn victim_data(host: &Host) {
    for statement in [
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL)",
        "CREATE TABLE ledger (note TEXT NOT NULL)",
    ] {
        sql(host, "victim", statement, json!([]), false)
            .await
            .expect(200);
    }
    for (id, owner, balance) in [
        (1, "Ada", 100),
        (2, "O'Brien \"q\" \u{e9}", -5),
        (3, "Zed", 9_007_199_254_740_993_i64),
    ] {
        let insert = "INSERT INTO accounts (id, owner, balance) VALUES (?, ?, ?)";
        sql(host, "victim", insert, json!([id, owner, balance]), false)
            .await
            .expect(200);
    }
    for name in ["Grace", "Linus"] {
        let body = json!({ "op": "insert", "table": "people", "fields": { "name": name } });
        records(host, "victim", body).await.expect(200);
    }
}

/// The victim's rows and records, as the bytes the API returns.
async fn victim_snapshot(host: &Host) -> (String, String) {
    let accounts = sql(
        host,
        "victim",
        "SELECT id, owner, balance FROM accounts ORDER BY id",
        json!([]),
        true,
    )
    .await;
    accounts.expect(200);
    let people = records(host, "victim", json!({ "op": "list", "table": "people" })).await;
    people.expect(200);
    (accounts.text(), people.text())
}

/// The healthy tenant's traffic: reads of its table, records reads, and
/// writes (which need SQLite's write lock), until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Traffic {
    fn start(host: Arc<Host>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        let task = tokio::spawn(async move {
            let (mut done, mut errors) = (0, Vec::new());
            let mut n = 0;
            while !running.load(Ordering::Relaxed) {
                n += 1;
                let replies = [
                    sql(
                        &host,
                        "victim",
                        "SELECT owner FROM accounts WHERE id = ?",
                        json!([1]),
                        true,
                    )
                    .await,
                    records(
                        &host,
                        "victim",
                        json!({ "op": "list", "table": "people", "limit": 10 }),
                    )
                    .await,
                    sql(
                        &host,
                        "victim",
                        "INSERT INTO ledger (note) VALUES (?)",
                        json!([format!("n{n}")]),
                        false,
                    )
                    .await,
                ];
                for reply in replies {
                    done += 1;
                    if reply.status != 200 {
                        errors.push(reply.to_string());
                    }
                }
            }
            (done, errors)
        });
        Traffic { stop, task }
    }

    /// Stops the traffic and asserts that every request of it succeeded.
    async fn assert_unharmed(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (done, errors) = self.task.await.expect("the traffic task panicked");
        assert!(done >= 3, "the healthy tenant made only {done} requests");
        assert!(
            errors.is_empty(),
            "{} of the healthy tenant's {done} requests failed:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
}

/// A host with the victim's data and its traffic running.
async fn under_attack(backends: Backends) -> (Arc<Host>, (String, String), Traffic) {
    let host = Arc::new(Host::start_on(backends, &manifest("hostile_db")));
    victim_data(&host).await;
    let before = victim_snapshot(&host).await;
    let traffic = Traffic::start(host.clone());
    (host, before, traffic)
}

async fn assert_victim_unchanged(host: &Host, before: (String, String), traffic: Traffic) {
    traffic.assert_unharmed().await;
    assert_eq!(
        victim_snapshot(host).await,
        before,
        "the victim's rows changed"
    );
}

async fn a_transaction_held_open_is_rolled_back_at_its_bound(backends: Backends) {
    let (host, before, traffic) = under_attack(backends).await;
    sql(
        &host,
        "mallory",
        "CREATE TABLE scratch (id INTEGER PRIMARY KEY)",
        json!([]),
        false,
    )
    .await
    .expect(200);

    // Four transactions, each holding its write three times its bound.
    let attacks = (1..=4).map(|i| {
        let host = host.clone();
        tokio::spawn(async move {
            tx(
                &host,
                "mallory",
                &[&format!("INSERT INTO scratch (id) VALUES ({i})")],
                1500,
            )
            .await
        })
    });
    for attack in attacks {
        let reply = attack.await.unwrap();
        let message = reply.expect_error(400, "bad_request");
        assert!(
            message.contains("held open longer than 500 ms (transaction_ms)"),
            "{message}"
        );
    }
    // Rolled back: nothing of them stayed.
    let count = sql(
        &host,
        "mallory",
        "SELECT count(*) AS n FROM scratch",
        json!([]),
        true,
    )
    .await
    .expect(200);
    assert_eq!(count["rows"], json!([[0]]), "{count}");
    // Within its bound a transaction commits.
    tx(
        &host,
        "mallory",
        &["INSERT INTO scratch (id) VALUES (9)"],
        0,
    )
    .await
    .expect(200);
    assert_victim_unchanged(&host, before, traffic).await;
}

async fn a_billion_rows_stop_at_the_result_cap(backends: Backends) {
    let (host, before, traffic) = under_attack(backends).await;
    // Rows that stream: PostgreSQL builds a set-returning function's whole
    // result before the first row, a recursive WITH it streams.
    let billion = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT x FROM c";
    let thousand = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c";
    let big = match backends {
        Backends::Embedded => "SELECT hex(zeroblob(600000)) AS big",
        Backends::Aws => "SELECT repeat('ab', 600000) AS big",
    };
    let message = sql(&host, "mallory", billion, json!([]), true)
        .await
        .expect_error(400, "bad_request");
    assert!(
        message.contains("cap of 1000 rows (max_result_rows)"),
        "{message}"
    );
    let message = sql(&host, "mallory", big, json!([]), true)
        .await
        .expect_error(400, "bad_request");
    assert!(
        message.contains("cap of 1048576 bytes (max_result_bytes)"),
        "{message}"
    );
    // A result at the cap comes back whole.
    let rows = sql(&host, "mallory", thousand, json!([]), true)
        .await
        .expect(200);
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(1000));
    assert_victim_unchanged(&host, before, traffic).await;
}

async fn sql_with_a_nul_byte_is_refused(backends: Backends) {
    let (host, before, traffic) = under_attack(backends).await;
    sql(
        &host,
        "mallory",
        "CREATE TABLE scratch (id INTEGER PRIMARY KEY)",
        json!([]),
        false,
    )
    .await
    .expect(200);
    for (text, query) in [
        ("SELECT 1\u{0}; DELETE FROM accounts", true),
        ("INSERT INTO scratch (id) VALUES (1)\u{0}", false),
    ] {
        let message = sql(&host, "mallory", text, json!([]), query)
            .await
            .expect_error(400, "bad_request");
        assert!(message.contains("NUL"), "{message}");
    }
    let message = tx(
        &host,
        "mallory",
        &["INSERT INTO scratch (id) VALUES (2)\u{0}"],
        0,
    )
    .await
    .expect_error(400, "bad_request");
    assert!(message.contains("NUL"), "{message}");
    // In a text parameter too: PostgreSQL cannot take one, and SQLite refuses it alike.
    for query in [true, false] {
        let message = sql(
            &host,
            "mallory",
            "INSERT INTO scratch (id) SELECT length(?)",
            json!(["a\u{0}b"]),
            query,
        )
        .await
        .expect_error(400, "bad_request");
        assert!(
            message.contains("parameter 1 holds the NUL character"),
            "{message}"
        );
    }
    // Nothing ran, and mallory's next statement is served.
    let count = sql(
        &host,
        "mallory",
        "SELECT count(*) AS n FROM scratch",
        json!([]),
        true,
    )
    .await
    .expect(200);
    assert_eq!(count["rows"], json!([[0]]), "{count}");
    assert_victim_unchanged(&host, before, traffic).await;
}

async fn audit_fields_cannot_be_forged_through_the_records_api(backends: Backends) {
    let (host, before, traffic) = under_attack(backends).await;
    let forged = json!({
        "uid": "0189aaaa-0000-7000-8000-000000000000",
        "created_at": "2000-01-01T00:00:00.000Z",
        "last_updated_at": "2000-01-01T00:00:00.000Z",
        "creator_uid": "someone-else",
        "last_updater_uid": "someone-else",
        "name": "x",
    });
    let inserted = records(
        &host,
        "mallory",
        json!({ "op": "insert", "table": "mine", "fields": forged }),
    )
    .await
    .expect(200);
    let record = &inserted["record"];
    let uid = record["uid"].as_str().unwrap().to_owned();
    assert_ne!(uid, forged["uid"].as_str().unwrap());
    assert_ne!(record["created_at"], forged["created_at"]);
    assert_eq!(
        (&record["creator_uid"], &record["last_updater_uid"]),
        (&Value::Null, &Value::Null),
        "{record}"
    );
    let body = json!({ "op": "update", "table": "mine", "uid": uid, "fields": forged });
    let updated = records(&host, "mallory", body).await.expect(200);
    let stored = records(
        &host,
        "mallory",
        json!({ "op": "get", "table": "mine", "uid": uid }),
    )
    .await
    .expect(200);
    for seen in [&updated["record"], &stored["record"]] {
        assert_eq!(seen["uid"], uid.as_str(), "{seen}");
        assert_eq!(seen["created_at"], record["created_at"], "{seen}");
        assert_eq!(
            (&seen["creator_uid"], &seen["last_updater_uid"]),
            (&Value::Null, &Value::Null),
            "{seen}"
        );
        assert_ne!(seen["last_updated_at"], forged["last_updated_at"], "{seen}");
    }
    assert_victim_unchanged(&host, before, traffic).await;
}

async fn audit_columns_cannot_be_forged_through_sql() {
    let (host, before, traffic) = under_attack(Backends::Embedded).await;
    let inserted = records(
        &host,
        "mallory",
        json!({ "op": "insert", "table": "mine", "fields": { "name": "x" } }),
    )
    .await
    .expect(200);
    let record = inserted["record"].clone();
    let uid = record["uid"].as_str().unwrap().to_owned();
    // The guard lets these through (`mine` is granted); the authorizer refuses them.
    for statement in [
        "UPDATE mine SET creator_uid = 'someone-else'",
        "UPDATE mine SET created_at = '2000-01-01T00:00:00.000Z', data = '{}'",
        "INSERT INTO mine (uid, created_at, last_updated_at, creator_uid, last_updater_uid, data) \
         VALUES ('0189aaaa-0000-7000-8000-000000000000', 'a', 'a', 'someone-else', 'someone-else', '{}')",
    ] {
        let reply = sql(&host, "mallory", statement, json!([]), false).await;
        let message = reply.expect_error(500, "not_granted");
        assert!(
            message.contains("stamped by the host") || message.contains("through the records API"),
            "{message}"
        );
    }
    // Keys named like audit fields inside the data never override the stamps.
    let json_set = "UPDATE mine SET data = json_set(data, '$.creator_uid', 'someone-else', '$.uid', 'x', '$.age', 3)";
    sql(&host, "mallory", json_set, json!([]), false)
        .await
        .expect(200);
    let stored = records(
        &host,
        "mallory",
        json!({ "op": "get", "table": "mine", "uid": uid }),
    )
    .await
    .expect(200);
    let seen = &stored["record"];
    assert_eq!(
        (
            &seen["uid"],
            &seen["creator_uid"],
            &seen["created_at"],
            &seen["age"]
        ),
        (&json!(uid), &Value::Null, &record["created_at"], &json!(3)),
        "{seen}"
    );
    assert_victim_unchanged(&host, before, traffic).await;
}

async fn a_component_without_grants_cannot_hold_the_database(backends: Backends) {
    let (host, before, traffic) = under_attack(backends).await;
    let slow =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    // Twice as many as the pool has connections, each trying to hold one
    // (a statement that never ends) or the write lock (a transaction).
    let attacks = (0..16).map(|i| {
        let host = host.clone();
        tokio::spawn(async move {
            if i % 2 == 0 {
                sql(&host, "nobody", slow, json!([]), true).await
            } else {
                tx(&host, "nobody", &["SELECT 1"], 4000).await
            }
        })
    });
    for attack in attacks {
        let message = attack.await.unwrap().expect_error(500, "not_granted");
        assert!(message.contains("is granted no table"), "{message}");
    }
    assert_victim_unchanged(&host, before, traffic).await;
}

async fn a_granted_component_cannot_starve_the_pool_or_the_write_lock() {
    let (host, before, traffic) = under_attack(Backends::Embedded).await;
    sql(
        &host,
        "mallory",
        "CREATE TABLE scratch (id INTEGER PRIMARY KEY)",
        json!([]),
        false,
    )
    .await
    .expect(200);
    let ids: Vec<u32> = (1..=1000).collect();
    let fill = "INSERT INTO scratch (id) SELECT value FROM json_each(?)";
    let ids = serde_json::to_string(&ids).unwrap();
    sql(&host, "mallory", fill, json!([ids]), false)
        .await
        .expect(200);
    // A billion-row join: as a read it holds a connection, as an update
    // it holds SQLite's one write lock.
    let endless_read = "SELECT count(*) FROM scratch AS a, scratch AS b, scratch AS c";
    let endless_write = "UPDATE scratch SET id = id + 1000000 WHERE id IN (SELECT a.id FROM scratch AS a, scratch AS b, scratch AS c)";
    let attacks = (0..12).map(|i| {
        let host = host.clone();
        tokio::spawn(async move {
            match i % 3 {
                0 => sql(&host, "mallory", endless_read, json!([]), true).await,
                1 => sql(&host, "mallory", endless_write, json!([]), false).await,
                _ => tx(&host, "mallory", &[endless_write], 0).await,
            }
        })
    });
    for attack in attacks {
        let message = attack.await.unwrap().expect_error(400, "bad_request");
        assert!(
            message.contains("longer than 500 ms (transaction_ms)"),
            "{message}"
        );
    }
    let rows = sql(
        &host,
        "mallory",
        "SELECT count(*), max(id) FROM scratch",
        json!([]),
        true,
    )
    .await
    .expect(200);
    assert_eq!(
        rows["rows"],
        json!([[1000, 1000]]),
        "the stopped updates changed rows: {rows}"
    );
    assert_victim_unchanged(&host, before, traffic).await;
}
