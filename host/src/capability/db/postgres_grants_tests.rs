//! PostgreSQL itself enforces a component's grants: statements sent straight
//! to the scoped handle, past the SQL guard, are refused by the database
//! when they reach anything but the granted tables.
//!
//! The host logs in as a role like an RDS master user (CREATEROLE, owner of
//! the database and its schema, not a superuser), in a fresh database.
//! Needs `CORRAL_TEST_PG_URL` (a superuser URL); `scripts/test` starts a
//! throwaway cluster and sets it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::capability::backend::BackendError;
use crate::capability::db::{Database, Postgres, PostgresOptions, Stamp, StoredRecord, Value};
use sqlx::{AssertSqlSafe, PgPool, Row};

fn admin_url() -> String {
    std::env::var("CORRAL_TEST_PG_URL").expect("CORRAL_TEST_PG_URL is not set: run scripts/test, which starts PostgreSQL")
}

/// A database owned by a fresh master-like role; its URL and a superuser
/// pool on it.
struct Fixture {
    url: String,
    admin: PgPool,
    database: String,
}

async fn fixture() -> Fixture {
    let cluster = PgPool::connect(&admin_url()).await.expect("the test cluster is up");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (master, database) = (format!("master_{id}"), format!("grants_{id}"));
    for sql in [
        format!("CREATE ROLE {master} LOGIN PASSWORD 'master-secret' CREATEROLE CREATEDB"),
        format!("CREATE DATABASE {database} OWNER {master}"),
    ] {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&cluster).await.unwrap();
    }
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_path(&database);
    let admin = PgPool::connect(url.as_str()).await.unwrap();
    // What the other components and the host hold: a plain table, a
    // partitioned one, both owned by the master role.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE victim (id int PRIMARY KEY, secret text NOT NULL);
         INSERT INTO victim VALUES (1, 'the victim''s secret'), (2, 'another');
         CREATE TABLE victim_parts (id int) PARTITION BY RANGE (id);
         ALTER TABLE victim OWNER TO {master}; ALTER TABLE victim_parts OWNER TO {master};
         ANALYZE victim;"
    )))
    .execute(&admin)
    .await
    .unwrap();
    url.set_username(&master).unwrap();
    url.set_password(Some("master-secret")).unwrap();
    Fixture {
        url: url.to_string(),
        admin,
        database,
    }
}

async fn connect(url: &str) -> Arc<Postgres> {
    connect_with(url, 4).await
}

/// With `max_connections` 2, a component role's pool holds one connection.
async fn connect_with(url: &str, max_connections: u32) -> Arc<Postgres> {
    Arc::new(
        Postgres::connect(PostgresOptions {
            url: url.to_owned(),
            password_source: None,
            max_connections,
            statement_timeout: Duration::from_secs(5),
        })
        .await
        .expect("the master role connects"),
    )
}

fn tables(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn victim_rows(admin: &PgPool) -> Vec<(i32, String)> {
    sqlx::query("SELECT id, secret FROM victim ORDER BY id")
        .fetch_all(admin)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn assert_refused<T: std::fmt::Debug>(sql: &str, result: Result<T, BackendError>) {
    match result {
        Err(BackendError::NotGranted(message)) => {
            assert!(message.starts_with("the database refused the statement"), "{sql}: {message}")
        }
        other => panic!("the database must refuse {sql:?}, got {other:?}"),
    }
}

fn ints(rows: &crate::capability::db::Rows) -> Vec<i64> {
    rows.rows
        .iter()
        .map(|r| match &r[0] {
            Value::Integer(i) => *i,
            other => panic!("not an integer: {other:?}"),
        })
        .collect()
}

fn text(rows: &crate::capability::db::Rows) -> Vec<String> {
    rows.rows
        .iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn the_database_refuses_what_the_grants_do_not_name() {
    let f = fixture().await;
    let host = connect(&f.url).await;
    let db = host.clone().scoped("attacker", &tables(&["mine", "notes"])).await.unwrap();
    let before = victim_rows(&f.admin).await;

    // The component's own table, made through SQL, works as usual.
    db.execute("CREATE TABLE mine (id serial PRIMARY KEY, body text)", &[])
        .await
        .unwrap();
    db.execute("CREATE INDEX mine_by_body ON mine (body)", &[]).await.unwrap();
    db.execute("INSERT INTO mine (body) VALUES ($1)", &[Value::Text("hello".into())])
        .await
        .unwrap();
    assert_eq!(text(&db.query("SELECT body FROM mine", &[]).await.unwrap()), ["hello"]);

    let reads = [
        "SELECT * FROM victim",
        "SELECT * FROM public.victim",
        "TABLE victim",
        "WITH mine AS (SELECT * FROM victim) SELECT * FROM mine",
        "SELECT * FROM generate_series(1, 1) g, LATERAL (SELECT secret FROM victim) v",
        "SELECT * FROM unnest(ARRAY(SELECT secret FROM victim))",
        "SELECT * FROM json_populate_recordset(NULL::victim, (SELECT json_agg(v) FROM victim v))",
        "SELECT query_to_xml('select * from victim', true, false, '')",
        r#"SELECT * FROM U&"\0076ictim""#,
        "SELECT * FROM pg_authid",
        "SELECT passwd FROM pg_shadow",
        "SELECT * FROM mine, victim",
    ];
    for sql in reads {
        assert_refused(sql, db.query(sql, &[]).await);
    }
    let writes = [
        "UPDATE victim SET secret = 'owned'",
        "DELETE FROM victim",
        "INSERT INTO victim VALUES (3, 'planted')",
        "CREATE TABLE stolen (LIKE victim)",
        "CREATE TABLE child () INHERITS (victim)",
        "CREATE TABLE pointer (id int REFERENCES victim (id))",
        "CREATE TABLE piece PARTITION OF victim_parts FOR VALUES FROM (1) TO (2)",
        "SELECT * INTO copied FROM victim",
        "CREATE TABLE copied AS SELECT * FROM victim",
        "CREATE TEMP TABLE mine (id int)",
        "SET ROLE postgres",
        "SELECT set_config('role', 'postgres', false)",
        "SET SESSION AUTHORIZATION postgres",
        "ALTER TABLE victim ADD COLUMN planted int",
        "DROP TABLE victim",
    ];
    for sql in writes {
        assert_refused(sql, db.execute(sql, &[]).await);
    }
    // RESET ROLE gives back nothing: the login role is the component's.
    db.execute("RESET ROLE", &[]).await.unwrap();
    assert_refused("after RESET ROLE", db.query("SELECT * FROM victim", &[]).await);
    // Inside a transaction too.
    let mut tx = db.begin().await.unwrap();
    tx.execute("INSERT INTO mine (body) VALUES ('in a transaction')", &[])
        .await
        .unwrap();
    assert_refused("in a transaction", tx.query("SELECT * FROM victim", &[]).await);
    drop(tx);

    // The catalog still shows other tables' names, by design; their data
    // (statistics, columns through information_schema) stays hidden.
    let stats = db
        .query("SELECT attname::text FROM pg_stats WHERE tablename = 'victim'", &[])
        .await
        .unwrap();
    assert!(stats.rows.is_empty(), "no statistics of an ungranted table: {stats:?}");
    let columns = db
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'victim'",
            &[],
        )
        .await
        .unwrap();
    assert!(columns.rows.is_empty(), "information_schema hides ungranted tables: {columns:?}");

    assert_eq!(victim_rows(&f.admin).await, before, "the victim's rows are unchanged");
    let leftovers: Vec<String> =
        sqlx::query("SELECT relname::text FROM pg_class WHERE relname IN ('stolen', 'child', 'pointer', 'piece', 'copied')")
            .fetch_all(&f.admin)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert!(leftovers.is_empty(), "no refused statement created anything: {leftovers:?}");
}

#[tokio::test]
async fn tables_a_component_makes_end_up_owned_by_the_host() {
    let f = fixture().await;
    let host = connect(&f.url).await;
    let db = host.clone().scoped("builder", &tables(&["built", "shared"])).await.unwrap();
    let reader = host.clone().scoped("reader", &tables(&["shared"])).await.unwrap();

    db.execute("CREATE TABLE built (id int)", &[]).await.unwrap();
    // A name outside the grants, a function and a trigger: the database lets
    // the role make them, and the host drops them right after.
    db.execute("CREATE TABLE ungranted (id int)", &[]).await.unwrap();
    db.execute(
        "CREATE FUNCTION planted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        &[],
    )
    .await
    .unwrap();
    db.execute("CREATE TABLE shared (id int)", &[]).await.unwrap();
    let master: String = sqlx::query("SELECT relowner::regrole::text FROM pg_class WHERE relname = 'victim'")
        .fetch_one(&f.admin)
        .await
        .unwrap()
        .get(0);
    let owners: Vec<(String, String)> = sqlx::query(
        "SELECT relname::text, relowner::regrole::text FROM pg_class WHERE relname IN ('built', 'shared', 'ungranted') ORDER BY 1",
    )
    .fetch_all(&f.admin)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(owners, [("built".into(), master.clone()), ("shared".into(), master.clone())]);
    let functions: i64 = sqlx::query("SELECT count(*) FROM pg_proc WHERE proname = 'planted'")
        .fetch_one(&f.admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(functions, 0, "the role's function is gone");
    // The other grant set that includes the new table got its privileges.
    reader.execute("INSERT INTO shared VALUES (1)", &[]).await.unwrap();
    assert_eq!(ints(&reader.query("SELECT id::int8 FROM shared", &[]).await.unwrap()), [1]);
    // The role owns the table only while its statement runs: what it
    // grants then is revoked when the host takes the table back.
    db.execute("GRANT ALL ON built TO PUBLIC", &[]).await.unwrap();
    let public_grants: i64 =
        sqlx::query("SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.relname = 'built' AND a.grantee = 0")
            .fetch_one(&f.admin)
            .await
            .unwrap()
            .get(0);
    assert_eq!(public_grants, 0, "PUBLIC holds nothing on the table");
    // Its indexes and drops still work through the brief ownership.
    db.execute("CREATE INDEX built_by_id ON built (id)", &[]).await.unwrap();
    db.execute("DROP TABLE built", &[]).await.unwrap();
}

#[tokio::test]
async fn records_audit_fields_cannot_be_forged_from_sql() {
    let f = fixture().await;
    let host = connect(&f.url).await;
    let db = host.clone().scoped("writer", &tables(&["notes"])).await.unwrap();
    let stamp = Stamp::now(Some("alice".into()));
    let record = StoredRecord::new(serde_json::from_str(r#"{"title": "first"}"#).unwrap(), &stamp);
    db.insert("notes", &record).await.unwrap();

    for sql in [
        "UPDATE notes SET creator_uid = 'mallory'",
        "UPDATE notes SET last_updated_at = '2000-01-01T00:00:00.000Z', last_updater_uid = 'mallory'",
        "UPDATE notes SET uid = 'forged'",
        "ALTER TABLE notes ALTER COLUMN creator_uid TYPE text USING 'mallory'",
        "ALTER TABLE notes RENAME COLUMN creator_uid TO planted",
        "INSERT INTO notes (uid, created_at, last_updated_at, creator_uid, last_updater_uid, data) \
         VALUES ('x', 'now', 'now', 'mallory', 'mallory', '{}')",
    ] {
        assert_refused(sql, db.execute(sql, &[]).await);
    }
    // The document may change, but keys named like audit fields in it never
    // override the stamped values.
    db.execute(
        r#"UPDATE notes SET data = '{"title": "changed", "creator_uid": "mallory", "uid": "forged"}'"#,
        &[],
    )
    .await
    .unwrap();
    let stored = db.get("notes", &record.uid).await.unwrap().expect("still there");
    let shown = stored.to_json();
    assert_eq!(shown["creator_uid"], "alice");
    assert_eq!(shown["uid"], record.uid.as_str());
    assert_eq!(shown["title"], "changed");
    assert_eq!(db.execute("DELETE FROM notes", &[]).await.unwrap(), 1);
    // The component may still drop its records table; the records API makes it again.
    db.execute("DROP TABLE notes", &[]).await.unwrap();
    db.schema_changed();
    db.insert("notes", &record).await.unwrap();
    assert_refused("after the drop", db.execute("UPDATE notes SET creator_uid = 'mallory'", &[]).await);
}

#[tokio::test]
async fn an_update_merges_in_the_database_as_the_shared_merge_does() {
    let f = fixture().await;
    let db = connect(&f.url).await;
    let object = |text: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).unwrap();
    let cases = [
        (
            r#"{"b": 1, "a": -0.0, "c": "x", "d": {"z": 1, "y": [2]}}"#,
            r#"{"a": 2, "c": null, "new": [1], "uid": "forged"}"#,
        ),
        (r#"{"only": true}"#, r#"{"only": null}"#),
        (r#"{}"#, r#"{"z": "last", "a": "first", "creator_uid": "mallory"}"#),
        (r#"{"kept": "\u00e9\"q\""}"#, r#"{}"#),
    ];
    for (fields, changes) in cases {
        let record = StoredRecord::new(object(fields), &Stamp::now(Some("alice".into())));
        db.insert("merged", &record).await.unwrap();
        let stamp = Stamp::now(Some("bob".into()));
        let mut expected = record.clone();
        expected.apply(&object(changes), &stamp);
        let updated = db.update("merged", &record.uid, &object(changes), &stamp).await.unwrap();
        // Field order too: the answers are compared as text.
        let shown = updated.as_ref().map(|r| r.to_json().to_string());
        assert_eq!(shown, Some(expected.to_json().to_string()), "{fields} with {changes}");
        let stored = db.get("merged", &record.uid).await.unwrap().map(|r| r.to_json().to_string());
        assert_eq!(stored, shown);
    }
    let absent = db.update("merged", "no-such-uid", &object(r#"{"a": 1}"#), &Stamp::now(None)).await;
    assert_eq!(absent.unwrap(), None);
}

#[tokio::test]
async fn session_state_never_reaches_the_next_checkout() {
    let f = fixture().await;
    let host = connect_with(&f.url, 2).await;
    let db = host.clone().scoped("stateful", &tables(&["kept"])).await.unwrap();
    db.execute("CREATE TABLE kept (id int)", &[]).await.unwrap();

    let setting = |db: Arc<dyn Database>| async move { text(&db.query("SELECT current_setting('application_name')", &[]).await.unwrap()) };
    let pid = |db: Arc<dyn Database>| async move { ints(&db.query("SELECT pg_backend_pid()::int8", &[]).await.unwrap()) };
    let first = pid(db.clone()).await;
    db.execute("SET application_name = 'leaked'", &[]).await.unwrap();
    db.query("SELECT set_config('application_name', 'leaked too', false)", &[])
        .await
        .unwrap();
    db.execute("PREPARE leaked AS SELECT 1", &[]).await.unwrap();
    db.execute("LISTEN leaked", &[]).await.unwrap();
    db.query("SELECT pg_advisory_lock(4242)::text", &[]).await.unwrap();
    db.execute("DECLARE leaked CURSOR WITH HOLD FOR SELECT 1", &[]).await.unwrap();

    // The same session serves the next checkout, with none of it left.
    assert_eq!(pid(db.clone()).await, first, "the connection is reused, so the test sees its state");
    assert_eq!(setting(db.clone()).await, [""]);
    assert!(
        matches!(db.execute("EXECUTE leaked", &[]).await, Err(BackendError::Invalid(_))),
        "the prepared statement is gone"
    );
    assert!(
        matches!(db.execute("FETCH leaked", &[]).await, Err(BackendError::Invalid(_))),
        "the cursor is gone"
    );
    let listening = db.query("SELECT count(*)::int8 FROM pg_listening_channels()", &[]).await.unwrap();
    assert_eq!(ints(&listening), [0]);
    let locks: i64 = sqlx::query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242")
        .fetch_one(&f.admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "the advisory lock was released");
    // sqlx's own prepared statements survive the reset.
    for i in 0..3 {
        let rows = db.query("SELECT $1::int8 + 1", &[Value::Integer(i)]).await.unwrap();
        assert_eq!(ints(&rows), [i + 1]);
    }
    assert_eq!(pid(db.clone()).await, first);
}

#[tokio::test]
async fn a_request_keeps_one_session_and_the_next_request_sees_none_of_its_state() {
    let f = fixture().await;
    // The role's pool holds one connection, so both requests get the same one.
    let host = connect_with(&f.url, 2).await;
    let component = host.clone().scoped("stateful", &tables(&["kept"])).await.unwrap();
    component.execute("CREATE TABLE kept (id int)", &[]).await.unwrap();
    let pid = async |db: &Arc<dyn Database>| ints(&db.query("SELECT pg_backend_pid()::int8", &[]).await.unwrap());
    let search_path = async |db: &Arc<dyn Database>| text(&db.query("SHOW search_path", &[]).await.unwrap());

    let first = component.clone().for_request();
    let session = pid(&first).await;
    first.execute("SET search_path TO pg_temp, public", &[]).await.unwrap();
    // Roles may not make temporary tables; a held cursor lives on the session the same way.
    first.execute("INSERT INTO kept VALUES (1)", &[]).await.unwrap();
    first
        .execute("DECLARE scratch CURSOR WITH HOLD FOR SELECT id::int8 FROM kept", &[])
        .await
        .unwrap();
    first.execute("PREPARE mine AS SELECT 41 + 1", &[]).await.unwrap();
    first.query("SELECT pg_advisory_lock(4343)::text", &[]).await.unwrap();
    // Every statement of the request runs on the session its first one took.
    assert_eq!(search_path(&first).await, ["pg_temp, public"]);
    assert_eq!(ints(&first.query("FETCH scratch", &[]).await.unwrap()), [1]);
    assert_eq!(ints(&first.query("EXECUTE mine", &[]).await.unwrap()), [42]);
    assert_eq!(ints(&first.query("SELECT $1::int8 + 1", &[Value::Integer(1)]).await.unwrap()), [2]);
    let tx = first.begin().await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        pid(&first).await,
        session,
        "the request keeps its session, also after a transaction"
    );
    drop(first);

    let second = component.clone().for_request();
    assert_eq!(pid(&second).await, session, "the connection is reused, so the test sees its state");
    assert_eq!(search_path(&second).await, ["\"$user\", public"]);
    assert!(
        matches!(second.query("FETCH scratch", &[]).await, Err(BackendError::Invalid(_))),
        "the cursor is gone"
    );
    assert!(
        matches!(second.query("EXECUTE mine", &[]).await, Err(BackendError::Invalid(_))),
        "the prepared statement is gone"
    );
    // What sqlx prepared and cached on the session outlives the request.
    let cached = "SELECT count(*)::int8 FROM pg_prepared_statements WHERE NOT from_sql AND statement = 'SELECT $1::int8 + 1'";
    assert_eq!(ints(&second.query(cached, &[]).await.unwrap()), [1]);
    let locks: i64 = sqlx::query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4343")
        .fetch_one(&f.admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "the advisory lock was released");
}

#[tokio::test]
async fn a_transaction_a_request_leaves_open_is_rolled_back_when_the_request_ends() {
    let f = fixture().await;
    let host = connect_with(&f.url, 2).await;
    let component = host.clone().scoped("forgetful", &tables(&["ledger"])).await.unwrap();
    component.execute("CREATE TABLE ledger (id int)", &[]).await.unwrap();

    let first = component.clone().for_request();
    let mut tx = first.begin().await.unwrap();
    tx.execute("INSERT INTO ledger VALUES (1)", &[]).await.unwrap();
    drop(tx);
    drop(first);

    let second = component.clone().for_request();
    assert_eq!(ints(&second.query("SELECT count(*) FROM ledger", &[]).await.unwrap()), [0]);
    second.execute("INSERT INTO ledger VALUES (2)", &[]).await.unwrap();
    drop(second);
    let rows: Vec<i32> = sqlx::query_scalar("SELECT id FROM ledger").fetch_all(&f.admin).await.unwrap();
    assert_eq!(rows, [2], "only the statement outside the dropped transaction landed");
}

#[tokio::test]
async fn requests_running_at_once_never_share_a_session() {
    let f = fixture().await;
    let host = connect_with(&f.url, 8).await;
    let component = host.clone().scoped("busy", &tables(&["busy"])).await.unwrap();
    component.execute("CREATE TABLE busy (id int)", &[]).await.unwrap();
    let requests: Vec<Arc<dyn Database>> = (0..4).map(|_| component.clone().for_request()).collect();
    let mut sessions = BTreeSet::new();
    for request in &requests {
        sessions.insert(ints(&request.query("SELECT pg_backend_pid()::int8", &[]).await.unwrap())[0]);
    }
    assert_eq!(sessions.len(), 4, "each request holds its own session");
    // The component's share is half the pool: a fifth request waits for a
    // session until one of the four ends.
    let fifth = component.clone().for_request();
    let waiting = tokio::time::timeout(Duration::from_millis(300), fifth.query("SELECT 1", &[])).await;
    assert!(waiting.is_err(), "a fifth session was handed out beyond the component's share");
    drop(requests);
    assert_eq!(ints(&fifth.query("SELECT 1::int8", &[]).await.unwrap()), [1]);
}

#[tokio::test]
async fn hosts_sharing_a_database_start_together() {
    let f = fixture().await;
    let grants = tables(&["together"]);
    let starts = (0..4).map(|_| {
        let url = f.url.clone();
        let grants = grants.clone();
        tokio::spawn(async move {
            let host = connect(&url).await;
            let db = host.scoped("same", &grants).await.unwrap();
            db.execute("CREATE TABLE IF NOT EXISTS together (id int)", &[]).await.unwrap();
            db.execute("INSERT INTO together VALUES (1)", &[]).await.unwrap();
        })
    });
    for start in starts {
        start.await.expect("every host starts and logs in with the same role password");
    }
    let count: i64 = sqlx::query("SELECT count(*) FROM together")
        .fetch_one(&f.admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 4);
}

/// The advisory lock every role and grant change takes (`pg_grants::GRANTS_LOCK`).
const GRANTS_LOCK: i64 = 0x636f_7272_616c_6772;

/// The role a component's SQL runs as.
async fn role_of(db: &Arc<dyn Database>) -> String {
    text(&db.query("SELECT current_user::text", &[]).await.unwrap()).remove(0)
}

/// The catalog rows a role or grant change rewrites, each as `kind name
/// version (xmin) state`: the role (its password hash and attributes), its
/// memberships, and the privileges on the schema, the database and the
/// tables and sequences of the schema, with their owners.
async fn catalog_state(admin: &PgPool, role: &str) -> Vec<String> {
    const ACL: &str = "array_to_string(ARRAY(SELECT coalesce(nullif(a.grantee::regrole::text, '-'), 'PUBLIC') || '=' || a.privilege_type \
        || CASE WHEN a.is_grantable THEN '*' ELSE '' END FROM aclexplode(acl) a ORDER BY 1), ',')";
    let sql = format!(
        "SELECT 'role ' || rolname || ' ' || xmin || ' ' || coalesce(rolpassword, '') || ' ' \
           || concat_ws(',', rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolvaliduntil) \
           FROM pg_authid WHERE rolname = $1 \
         UNION ALL SELECT 'member ' || roleid::regrole || ' ' || member::regrole FROM pg_auth_members \
           WHERE roleid = $1::regrole OR member = $1::regrole \
         UNION ALL SELECT 'schema ' || nspname || ' ' || xmin || ' ' || {} FROM pg_namespace WHERE nspname = 'public' \
         UNION ALL SELECT 'database ' || datname || ' ' || xmin || ' ' || {} FROM pg_database WHERE datname = current_database() \
         UNION ALL SELECT 'relation ' || relname || ' ' || xmin || ' ' || relowner::regrole || ' ' || {} \
           FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S') \
         UNION ALL SELECT 'column ' || attrelid::regclass || '.' || attname || ' ' || {} FROM pg_attribute \
           WHERE attacl IS NOT NULL AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) \
         ORDER BY 1",
        // No ACL stands for the default one.
        ACL.replace("acl)", "coalesce(nspacl, acldefault('n', nspowner)))"),
        ACL.replace("acl)", "coalesce(datacl, acldefault('d', datdba)))"),
        ACL.replace(
            "acl)",
            "coalesce(relacl, acldefault(CASE relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", relowner)))"
        ),
        ACL.replace("acl)", "attacl)"),
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(role)
        .fetch_all(admin)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// [`catalog_state`] without the row versions and the password hash, which
/// setting a role up again changes.
fn privileges(state: &[String]) -> Vec<String> {
    state
        .iter()
        .map(|row| {
            let mut words: Vec<&str> = row.split(' ').collect();
            match words[0] {
                "role" => drop(words.drain(2..4)),
                "schema" | "database" | "relation" => drop(words.remove(2)),
                _ => {}
            }
            words.join(" ")
        })
        .collect()
}

/// A component's grant set in place as a first start leaves it: a plain
/// table with a sequence and a records table, both with rows.
async fn first_start(f: &Fixture) -> (Arc<dyn Database>, String) {
    let host = connect(&f.url).await;
    let db = host.clone().scoped("notes", &tables(&["notes", "docs"])).await.unwrap();
    db.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)", &[])
        .await
        .unwrap();
    db.execute("INSERT INTO notes (body) VALUES ('first')", &[]).await.unwrap();
    host.insert("docs", &record("d1")).await.unwrap();
    let role = role_of(&db).await;
    (db, role)
}

fn record(uid: &str) -> StoredRecord {
    StoredRecord {
        uid: uid.to_owned(),
        created_at: "2026-01-01T00:00:00Z".into(),
        last_updated_at: "2026-01-01T00:00:00Z".into(),
        creator_uid: Some("alice".into()),
        last_updater_uid: Some("alice".into()),
        data: serde_json::from_str(r#"{"title": "a"}"#).unwrap(),
    }
}

/// Starts a new host on `f` while another session holds the grants lock,
/// and reads a record of `docs` (the records API's first use of the table).
/// The component's handle, or `None` when either waited for the lock.
async fn start_while_locked(f: &Fixture, grants: &BTreeSet<String>) -> Option<Arc<dyn Database>> {
    let mut locker = f.admin.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(GRANTS_LOCK)
        .execute(&mut *locker)
        .await
        .unwrap();
    let host = connect(&f.url).await;
    let started = tokio::time::timeout(Duration::from_secs(3), async {
        let db = host.scoped("notes", grants).await.unwrap();
        let record = db.get("docs", "d1").await.unwrap().expect("the record is there");
        assert_eq!(record.creator_uid.as_deref(), Some("alice"));
        db
    })
    .await;
    locker.rollback().await.unwrap();
    started.ok()
}

/// What the role can do on the grant set, as the component sees it.
async fn works_as_granted(db: &Arc<dyn Database>) {
    db.execute("INSERT INTO notes (body) VALUES ('again')", &[]).await.unwrap();
    assert_eq!(
        text(&db.query("SELECT body FROM notes ORDER BY id", &[]).await.unwrap()),
        ["first", "again"]
    );
    assert_eq!(text(&db.query("SELECT uid FROM docs", &[]).await.unwrap()), ["d1"]);
    db.execute("UPDATE docs SET data = '{\"title\": \"b\"}'", &[]).await.unwrap();
    assert_refused(
        "UPDATE docs SET creator_uid",
        db.execute("UPDATE docs SET creator_uid = 'mallory'", &[]).await,
    );
    assert_refused("SELECT victim", db.query("SELECT * FROM victim", &[]).await);
}

#[tokio::test]
async fn a_start_on_a_database_already_set_up_changes_nothing_and_takes_no_lock() {
    let f = fixture().await;
    let (_first, role) = first_start(&f).await;
    let before = catalog_state(&f.admin, &role).await;
    assert!(before.iter().any(|row| row.starts_with("relation notes_id_seq ")), "{before:#?}");

    let db = start_while_locked(&f, &tables(&["notes", "docs"]))
        .await
        .expect("the start did not wait for the grants lock");
    assert_eq!(catalog_state(&f.admin, &role).await, before, "the start changed the catalog");
    // The role's pool logs in with the password the first start set.
    works_as_granted(&db).await;
    assert_eq!(catalog_state(&f.admin, &role).await, before);
}

#[tokio::test]
async fn privileges_added_by_hand_are_taken_back_on_the_next_start() {
    let f = fixture().await;
    let (_first, role) = first_start(&f).await;
    let before = catalog_state(&f.admin, &role).await;
    let changes = [
        format!("GRANT TRUNCATE, REFERENCES ON notes TO {role}"),
        format!("GRANT SELECT ON notes TO {role} WITH GRANT OPTION"),
        format!("GRANT UPDATE (creator_uid) ON docs TO {role}"),
        format!("GRANT UPDATE ON notes_id_seq TO {role}"),
        format!("GRANT USAGE ON SCHEMA public TO {role} WITH GRANT OPTION"),
        format!("GRANT SELECT ON victim TO {role}"),
        format!("ALTER TABLE notes OWNER TO {role}"),
        format!("ALTER ROLE {role} CREATEDB"),
        format!("ALTER ROLE {role} INHERIT"),
        format!("GRANT TEMPORARY ON DATABASE {} TO PUBLIC", f.database),
    ];
    for change in changes {
        sqlx::raw_sql(AssertSqlSafe(change.clone())).execute(&f.admin).await.unwrap();
        assert_ne!(
            privileges(&catalog_state(&f.admin, &role).await),
            privileges(&before),
            "{change} changed nothing"
        );
        let host = connect(&f.url).await;
        let db = host.scoped("notes", &tables(&["notes", "docs"])).await.unwrap();
        assert_eq!(
            privileges(&catalog_state(&f.admin, &role).await),
            privileges(&before),
            "{change} was not taken back"
        );
        assert_eq!(
            text(&db.query("SELECT body FROM notes ORDER BY id", &[]).await.unwrap()),
            ["first"],
            "{change}"
        );
    }
    // Taken back, everything is in place again: the next start takes no lock.
    let db = start_while_locked(&f, &tables(&["notes", "docs"])).await.expect("no lock");
    works_as_granted(&db).await;
}

#[tokio::test]
async fn a_component_role_made_a_member_of_another_is_removed_from_it_on_the_next_start() {
    let f = fixture().await;
    let (_first, role) = first_start(&f).await;
    let host = connect(&f.url).await;
    let other = host.scoped("other", &tables(&["other"])).await.unwrap();
    let other_role = role_of(&other).await;
    sqlx::raw_sql(AssertSqlSafe(format!("GRANT {role} TO {other_role}")))
        .execute(&f.admin)
        .await
        .unwrap();

    let host = connect(&f.url).await;
    host.scoped("notes", &tables(&["notes", "docs"])).await.unwrap();
    let members: i64 = sqlx::query("SELECT count(*) FROM pg_auth_members WHERE roleid = $1::regrole AND member = $2::regrole")
        .bind(&role)
        .bind(&other_role)
        .fetch_one(&f.admin)
        .await
        .unwrap()
        .get(0);
    assert_eq!(members, 0, "the other component role is still a member");
    assert_refused("SET ROLE", other.execute(&format!("SET ROLE {role}"), &[]).await);
}

#[tokio::test]
async fn a_role_whose_password_was_changed_logs_in_again_after_a_refusal() {
    let f = fixture().await;
    let (_first, role) = first_start(&f).await;
    sqlx::raw_sql(AssertSqlSafe(format!("ALTER ROLE {role} PASSWORD 'changed by hand'")))
        .execute(&f.admin)
        .await
        .unwrap();
    let changed = catalog_state(&f.admin, &role).await;

    // The start cannot see the password and takes the fast path; the first
    // login is refused, the role's password is set again and it logs in.
    let db = start_while_locked(&f, &tables(&["notes", "docs"])).await.expect("no lock");
    assert_eq!(catalog_state(&f.admin, &role).await, changed);
    works_as_granted(&db).await;
    assert_ne!(catalog_state(&f.admin, &role).await, changed, "the password was set again");
    let login = url::Url::parse(&f.url).map(|mut u| {
        u.set_username(&role).unwrap();
        u.set_password(Some("changed by hand")).unwrap();
        u
    });
    assert!(
        PgPool::connect(login.unwrap().as_str()).await.is_err(),
        "the hand-set password still logs in"
    );
}
