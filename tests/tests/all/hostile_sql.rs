//! A hostile tenant's SQL through the real binary, on both backend sets,
//! while a healthy tenant's traffic runs at the same time: every attack
//! gets a clear refusal (status and error body), the healthy traffic sees
//! no error, and the victim's rows are unchanged byte for byte.
//!
//! The attacker is the testbed component at `/attacker`, granted `mine` and
//! the records table `notes`; the victim, at `/victim`, owns `vault` and the
//! records table `vnotes`; the healthy tenant, at `/healthy`, writes and
//! reads `ledger` throughout.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::manifests::manifest;
use common::{Backends, Host, Reply, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends! {
    hostile_sql_is_refused_while_a_healthy_tenant_runs,
}

/// How a refused attack must fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// 500 `not_granted`: the SQL guard or the database named the grant it lacks.
    NotGranted,
    /// 400 `bad_request`: a statement kind or function components may not use,
    /// or SQL the guard cannot read.
    BadRequest,
    /// 500 `not_granted` from the database itself: the statement passed the
    /// guard, and the component's role lacks the privilege.
    ByDatabase,
}

struct Attack {
    sql: &'static str,
    rows: bool,
    refusal: Refusal,
}

const fn read(sql: &'static str, refusal: Refusal) -> Attack {
    Attack {
        sql,
        rows: true,
        refusal,
    }
}

const fn write(sql: &'static str, refusal: Refusal) -> Attack {
    Attack {
        sql,
        rows: false,
        refusal,
    }
}

use Refusal::{BadRequest, ByDatabase, NotGranted};

/// Attacks whose SQL both databases read alike.
const COMMON: &[Attack] = &[
    read("SELECT * FROM vault", NotGranted),
    read(
        "WITH mine AS (SELECT * FROM vault) SELECT * FROM mine",
        NotGranted,
    ),
    read("SELECT * FROM mine, (SELECT * FROM vault) v", NotGranted),
    read(
        "SELECT * FROM mine WHERE EXISTS (SELECT 1 FROM vnotes)",
        NotGranted,
    ),
    read("SELECT (SELECT secret FROM vault LIMIT 1)", NotGranted),
    write("UPDATE vault SET secret = 'owned'", NotGranted),
    write("DELETE FROM vnotes", NotGranted),
    write(
        "INSERT INTO vault (id, secret) VALUES (99, 'planted')",
        NotGranted,
    ),
    write(
        "INSERT INTO mine (body) SELECT secret FROM vault",
        NotGranted,
    ),
    write("DROP TABLE vault", NotGranted),
    write("ALTER TABLE vault RENAME TO mine_now", NotGranted),
    write("CREATE TABLE stolen AS SELECT * FROM vault", NotGranted),
    write("CREATE TABLE mine_copy AS SELECT * FROM vault", NotGranted),
    write("CREATE INDEX mine_spy ON vault (secret)", NotGranted),
    write(
        "CREATE TEMP TABLE vault (id INTEGER, secret TEXT)",
        NotGranted,
    ),
    write("ATTACH DATABASE 'x.db' AS x", BadRequest),
    // The host's marks of which version's init ran: a tenant that could
    // write them would skip another's init or claim its own had run.
    read("SELECT * FROM corral_init", NotGranted),
    write(
        "INSERT INTO corral_init (component, fingerprint, ran_at) VALUES ('attacker', 'forged', 'x')",
        NotGranted,
    ),
    write("UPDATE corral_init SET fingerprint = 'forged'", NotGranted),
    write("DELETE FROM corral_init", NotGranted),
    write("DROP TABLE corral_init", NotGranted),
];

/// PostgreSQL's own ways to name a table.
const POSTGRES: &[Attack] = &[
    read("SELECT * FROM public.vault", NotGranted),
    read("TABLE vault", BadRequest),
    read(
        "SELECT * FROM generate_series(1, 1) g, LATERAL (SELECT secret FROM vault) v",
        NotGranted,
    ),
    read(
        "SELECT * FROM unnest(ARRAY(SELECT secret FROM vault))",
        NotGranted,
    ),
    read(
        "SELECT query_to_xml('select * from vault', true, false, '')",
        BadRequest,
    ),
    read(r#"SELECT * FROM U&"\0076ault""#, BadRequest),
    read("SELECT rolname, rolpassword FROM pg_authid", NotGranted),
    read("SELECT passwd FROM pg_shadow", NotGranted),
    read(
        "SELECT table_name FROM information_schema.tables",
        NotGranted,
    ),
    write("CREATE TABLE mine_like (LIKE vault)", NotGranted),
    write("CREATE TABLE mine_child () INHERITS (vault)", NotGranted),
    write(
        "CREATE TABLE mine_ref (id INTEGER REFERENCES vault (id))",
        NotGranted,
    ),
    write(
        "CREATE TABLE mine_part PARTITION OF vault FOR VALUES IN (1)",
        NotGranted,
    ),
    write("SELECT * INTO mine_into FROM vault", NotGranted),
    // A temporary table under a granted name passes the guard; PostgreSQL
    // refuses it (no TEMP privilege), so it can never shadow the real one.
    write("CREATE TEMP TABLE mine (id INTEGER, body TEXT)", ByDatabase),
    write("SET ROLE postgres", BadRequest),
    write("RESET ROLE", BadRequest),
    read("SELECT set_config('role', 'postgres', false)", BadRequest),
    write("SET SESSION AUTHORIZATION postgres", BadRequest),
    write("SET statement_timeout = 0", BadRequest),
    // Audit columns of a records table: the database's column privileges.
    write("UPDATE notes SET creator_uid = 'mallory'", ByDatabase),
    write(
        "UPDATE notes SET last_updated_at = '2000-01-01T00:00:00.000Z'",
        ByDatabase,
    ),
    write(
        "INSERT INTO notes (uid, created_at, last_updated_at, creator_uid, last_updater_uid, data) \
         VALUES ('forged', 'x', 'x', 'mallory', 'mallory', '{}')",
        ByDatabase,
    ),
];

/// SQLite's own ways to name a table.
const SQLITE: &[Attack] = &[
    read("SELECT * FROM main.vault", NotGranted),
    read("SELECT sql FROM sqlite_master", NotGranted),
    read("SELECT * FROM pragma_table_info('vault')", NotGranted),
    read("SELECT load_extension('x')", BadRequest),
    write("PRAGMA writable_schema = ON", BadRequest),
    write(
        "CREATE TABLE mine_ref (id INTEGER REFERENCES vault (id))",
        NotGranted,
    ),
    // The local change log, filled by triggers on the cache's table: a
    // tenant that could write it would feed forged events to projections,
    // or stop the changes of a store from being logged.
    read("SELECT * FROM corral_changes", NotGranted),
    write(
        "INSERT INTO corral_changes (store, kind, key, value, at) VALUES ('events', 'INSERT', 'k', '{}', 0)",
        NotGranted,
    ),
    write("DELETE FROM corral_changed_stores", NotGranted),
    write("UPDATE corral_change_cursors SET seq = 0", NotGranted),
    write("DROP TRIGGER corral_changes_on_insert", BadRequest),
    write(
        "CREATE TRIGGER mine_t AFTER INSERT ON corral_cache BEGIN DELETE FROM corral_changes; END",
        BadRequest,
    ),
];

async fn post(host: &Host, path: &str, body: Value) -> Reply {
    host.json(Method::POST, path, None, &body).await
}

async fn sql(host: &Host, tenant: &str, sql: &str, rows: bool) -> Reply {
    post(
        host,
        &format!("/{tenant}/sql"),
        json!({ "sql": sql, "query": rows }),
    )
    .await
}

/// What the victim holds, as its own routes answer: compared as text.
async fn victim_snapshot(host: &Host) -> String {
    let vault = sql(
        host,
        "victim",
        "SELECT id, secret FROM vault ORDER BY id",
        true,
    )
    .await;
    let notes = post(
        host,
        "/victim/records",
        json!({ "op": "list", "table": "vnotes" }),
    )
    .await;
    format!("{}\n{}", vault.text(), notes.text())
}

/// Whether the attack failed as it must; if not, what it got.
fn refused_as_expected(attack: &Attack, reply: &Reply) -> Result<(), String> {
    let (status, code) = match attack.refusal {
        NotGranted | ByDatabase => (500, "not_granted"),
        BadRequest => (400, "bad_request"),
    };
    if reply.status != status {
        return Err(format!(
            "{:?} ({:?}): expected {status} {code}, got {reply}",
            attack.sql, attack.refusal
        ));
    }
    let message = reply.expect_error(status, code);
    let by_database = message.starts_with("the database refused the statement: permission denied");
    if by_database != (attack.refusal == ByDatabase) {
        return Err(format!(
            "{:?} ({:?}): refused by the other layer: {message}",
            attack.sql, attack.refusal
        ));
    }
    Ok(())
}

/// The healthy tenant's traffic: an insert and a read of its own table,
/// over and over, until told to stop. Returns the requests made and every
/// failure seen.
async fn healthy_traffic(host: Arc<Host>, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let (mut made, mut failures) = (0, Vec::new());
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let insert = post(
            &host,
            "/healthy/sql",
            json!({ "sql": "INSERT INTO ledger (n) VALUES (?)", "params": [n] }),
        )
        .await;
        let read = sql(&host, "healthy", "SELECT count(*) AS c FROM ledger", true).await;
        let record = post(
            &host,
            "/healthy/records",
            json!({ "op": "list", "table": "ledger_records", "limit": 1 }),
        )
        .await;
        made += 3;
        for reply in [insert, read, record] {
            if reply.status != 200 {
                failures.push(reply.to_string());
            }
        }
    }
    (made, failures)
}

async fn hostile_sql_is_refused_while_a_healthy_tenant_runs(backends: Backends) {
    let manifest = manifest("hostile_sql").replace(
        r#"tables = ["ledger"]"#,
        r#"tables = ["ledger", "ledger_records"]"#,
    );
    let host = Arc::new(Host::start_on(backends, &manifest));

    // The victim's data, the attacker's own table and record, the healthy
    // tenant's table.
    for statement in [
        "CREATE TABLE vault (id INTEGER PRIMARY KEY, secret TEXT NOT NULL)",
        "INSERT INTO vault (id, secret) VALUES (1, 'the victim''s secret'), (2, 'another')",
    ] {
        sql(&host, "victim", statement, false).await.expect(200);
    }
    post(
        &host,
        "/victim/records",
        json!({ "op": "insert", "table": "vnotes", "fields": { "title": "private" } }),
    )
    .await
    .expect(200);
    sql(
        &host,
        "attacker",
        "CREATE TABLE mine (id INTEGER PRIMARY KEY, body TEXT)",
        false,
    )
    .await
    .expect(200);
    let created = post(
        &host,
        "/attacker/records",
        json!({ "op": "insert", "table": "notes", "fields": { "n": 1 } }),
    )
    .await
    .expect(200)["record"]
        .clone();
    sql(
        &host,
        "healthy",
        "CREATE TABLE ledger (n INTEGER NOT NULL)",
        false,
    )
    .await
    .expect(200);
    post(
        &host,
        "/healthy/records",
        json!({ "op": "insert", "table": "ledger_records", "fields": { "ok": true } }),
    )
    .await
    .expect(200);
    let before = victim_snapshot(&host).await;
    assert!(
        before.contains("the victim's secret") && before.contains("private"),
        "{before}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(healthy_traffic(host.clone(), stop.clone()));

    let own: &[Attack] = match backends {
        Backends::Embedded => SQLITE,
        Backends::Aws => POSTGRES,
    };
    let mut wrong = Vec::new();
    for attack in COMMON.iter().chain(own) {
        let reply = sql(&host, "attacker", attack.sql, attack.rows).await;
        wrong.extend(refused_as_expected(attack, &reply).err());
        // The same statement inside a transaction fails the same way.
        let in_tx = post(
            &host,
            "/attacker/tx",
            json!({ "statements": [{ "sql": attack.sql }], "commit": true }),
        )
        .await;
        wrong.extend(
            refused_as_expected(attack, &in_tx)
                .err()
                .map(|e| format!("in a transaction: {e}")),
        );
    }
    assert!(
        wrong.is_empty(),
        "{} attacks were not refused as expected:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Audit fields sent through the records API are ignored.
    let forged = post(
        &host,
        "/attacker/records",
        json!({ "op": "update", "table": "notes", "uid": created["uid"], "fields": { "creator_uid": "mallory", "uid": "forged", "n": 2 } }),
    )
    .await
    .expect(200)["record"]
        .clone();
    assert_eq!(
        (&forged["uid"], &forged["creator_uid"], &forged["n"]),
        (&created["uid"], &created["creator_uid"], &json!(2))
    );

    stop.store(true, Ordering::SeqCst);
    let (made, failures) = traffic.await.expect("the healthy traffic task panicked");
    assert!(
        made >= 3,
        "the healthy tenant made requests during the attacks"
    );
    assert!(
        failures.is_empty(),
        "the healthy tenant saw {} errors: {failures:#?}",
        failures.len()
    );
    assert_eq!(
        victim_snapshot(&host).await,
        before,
        "the victim's rows changed"
    );
    if backends == Backends::Aws {
        // The database's refusals are logged as refusals, with the component.
        let line = host
            .wait_for_log("the database's refusal", |l| {
                l["message"] == "the database refused a statement outside the component's grants"
            })
            .await;
        assert_eq!(line["component"], "attacker", "{line}");
        assert_eq!(line["level"], "WARN", "{line}");
    }
    // The attacker's own table still works.
    sql(
        &host,
        "attacker",
        "INSERT INTO mine (id, body) VALUES (1, 'fine')",
        false,
    )
    .await
    .expect(200);
}
