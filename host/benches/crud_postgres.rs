//! A CRUD cycle through the db broker on PostgreSQL, against native sqlx
//! code running the same statements, in one run. `scripts/bench` starts a
//! throwaway PostgreSQL and runs it in release mode; results go to
//! docs/BENCHMARKS.md.
//!
//! One iteration is create, read, update and delete of one student:
//! - `native`: those four operations with sqlx on one pool: the INSERT, the
//!   SELECT by uid, the UPDATE read-modify-write under `FOR UPDATE` in a
//!   transaction, and the DELETE — the statements the records API runs —
//!   building and parsing the same JSON.
//! - `corral`: the same four as HTTP-shaped requests through `App::handle`
//!   into the crud component (fresh instance per request), whose records
//!   API calls reach PostgreSQL through the broker.

use std::hint::black_box;

mod common;
use common::measure;

use corral::app::{App, AppOptions};
use corral::manifest::Manifest;
use corral::request::Request;
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use sqlx::types::Json;

const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;

fn manifest(root: &std::path::Path, url: &str) -> anyhow::Result<Manifest> {
    let wasm = root.join("target/wasm32-wasip2/component/crud.wasm");
    anyhow::ensure!(wasm.exists(), "{} is missing: run scripts/bench", wasm.display());
    let text = format!(
        r#"
        [backends.db]
        kind = "postgres"
        url = "{url}"
        [components.students]
        wasm = {wasm:?}
        tables = ["bench_students"]
        config = {{ table = "bench_students", required = "name,email", optional = "major" }}
        [[components.students.routes]]
        path = "/students"
        methods = ["POST"]
        auth = "public"
        [[components.students.routes]]
        path = "/students/{{id}}"
        methods = ["GET", "PATCH", "DELETE"]
        auth = "public"
        "#,
        wasm = wasm.display().to_string()
    );
    Ok(Manifest::parse(&text, root, |_| None)?)
}

fn request(method: &str, path: &str, body: Option<&Value>) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.map(|b| serde_json::to_vec(b).expect("serializes").into()).unwrap_or_default(),
        ..Default::default()
    }
}

async fn corral_cycle(app: &App) {
    let created = app
        .handle(request(
            "POST",
            "/students",
            Some(&json!({"name": "Ada", "email": "ada@example.edu"})),
        ))
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let record: Value = serde_json::from_slice(&created.body).expect("a JSON record");
    let path = format!("/students/{}", record["uid"].as_str().expect("a uid"));
    assert_eq!(app.handle(request("GET", &path, None)).await.status, 200);
    assert_eq!(
        app.handle(request("PATCH", &path, Some(&json!({"major": "math"})))).await.status,
        200
    );
    assert_eq!(app.handle(request("DELETE", &path, None)).await.status, 204);
}

const COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data";

async fn native_cycle(pool: &PgPool) {
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let uid = uuid::Uuid::now_v7().to_string();
    let fields: Map<String, Value> = serde_json::from_value(json!({"name": "Ada", "email": "ada@example.edu"})).expect("an object");
    let stamp = now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO native_students ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    )))
    .bind(&uid)
    .bind(&stamp)
    .bind(&stamp)
    .bind(None::<String>)
    .bind(None::<String>)
    .bind(Json(&fields))
    .execute(pool)
    .await
    .expect("insert");
    let row: (String, Json<Map<String, Value>>) = sqlx::query_as("SELECT uid, data FROM native_students WHERE uid = $1")
        .bind(&uid)
        .fetch_one(pool)
        .await
        .expect("read");
    black_box(serde_json::to_vec(&row.1.0).expect("serializes"));
    let mut tx = pool.begin().await.expect("begin");
    let (mut data,): (Json<Map<String, Value>>,) = sqlx::query_as("SELECT data FROM native_students WHERE uid = $1 FOR UPDATE")
        .bind(&uid)
        .fetch_one(&mut *tx)
        .await
        .expect("lock");
    data.0.insert("major".into(), "math".into());
    sqlx::query("UPDATE native_students SET last_updated_at = $1, last_updater_uid = $2, data = $3 WHERE uid = $4")
        .bind(now())
        .bind(None::<String>)
        .bind(&data)
        .bind(&uid)
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.commit().await.expect("commit");
    sqlx::query("DELETE FROM native_students WHERE uid = $1")
        .bind(&uid)
        .execute(pool)
        .await
        .expect("delete");
}

fn main() -> anyhow::Result<()> {
    let url = std::env::var("CORRAL_TEST_PG_URL").map_err(|_| anyhow::anyhow!("CORRAL_TEST_PG_URL is not set: run scripts/bench"))?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned();
    let manifest = manifest(&root, &url)?;
    let data = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let pool = PgPool::connect(&url).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS native_students (uid TEXT PRIMARY KEY, created_at TEXT NOT NULL, \
             last_updated_at TEXT NOT NULL, creator_uid TEXT, last_updater_uid TEXT, data JSONB NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let app = App::start(
            &manifest,
            &AppOptions {
                data_dir: data.path().to_owned(),
                artifact_dir: None,
                concurrency: 4,
            },
        )
        .await?;

        let native = measure(WARMUP, ITERATIONS, async || native_cycle(&pool).await).await;
        let corral = measure(WARMUP, ITERATIONS, async || corral_cycle(&app).await).await;

        println!("create + read + update + delete on PostgreSQL, {ITERATIONS} cycles after {WARMUP} warm-up");
        println!("{:<8} {:>10} {:>10} {:>10} {:>10}", "path", "p50", "p90", "p99", "p50 ratio");
        for (name, s) in [("native", &native), ("corral", &corral)] {
            println!(
                "{name:<8} {:>10.2?} {:>10.2?} {:>10.2?} {:>9.2}x",
                s.p50,
                s.p90,
                s.p99,
                s.p50.as_secs_f64() / native.p50.as_secs_f64()
            );
        }
        anyhow::Ok(())
    })
}
