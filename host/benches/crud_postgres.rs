//! A CRUD cycle through the db broker on PostgreSQL, against native sqlx
//! code running the same statements, in one run. `scripts/bench` starts a
//! throwaway PostgreSQL and runs it in release mode; results go to
//! docs/BENCHMARKS.md.
//!
//! One iteration is create, read, update and delete of one student:
//! - `native`: those four operations as a careful developer writes them
//!   with sqlx on one pool: one statement each (the update merges the
//!   document in the database), parsing the request bodies and building the
//!   JSON answers.
//! - `corral`: the same four as HTTP-shaped requests through `App::handle`
//!   into the crud component (fresh instance per request), whose records
//!   API calls reach PostgreSQL through the broker.

use std::hint::black_box;

mod common;
use common::measure;

use corral::Manifest;
use corral::Request;
use corral::{App, AppOptions};
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

/// What a careful native handler does for the same four requests: parse
/// the body, one statement per request (the document in a `jsonb` column,
/// merged by the database on update), and the record as the JSON answer.
async fn native_cycle(pool: &PgPool) {
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let answer = |(uid, created_at, last_updated_at, Json(mut data)): (String, String, String, Json<Map<String, Value>>)| {
        data.insert("uid".into(), uid.into());
        data.insert("created_at".into(), created_at.into());
        data.insert("last_updated_at".into(), last_updated_at.into());
        black_box(serde_json::to_vec(&data).expect("serializes"))
    };

    let fields: Map<String, Value> = serde_json::from_slice(br#"{"name": "Ada", "email": "ada@example.edu"}"#).expect("an object");
    assert!(fields.contains_key("name") && fields.contains_key("email"));
    let (uid, stamp) = (uuid::Uuid::now_v7().to_string(), now());
    sqlx::query("INSERT INTO native_students (uid, created_at, last_updated_at, data) VALUES ($1, $2, $2, $3)")
        .bind(&uid)
        .bind(&stamp)
        .bind(Json(&fields))
        .execute(pool)
        .await
        .expect("insert");
    answer((uid.clone(), stamp.clone(), stamp, Json(fields)));

    let row = sqlx::query_as("SELECT uid, created_at, last_updated_at, data FROM native_students WHERE uid = $1")
        .bind(&uid)
        .fetch_optional(pool)
        .await
        .expect("read");
    answer(row.expect("found"));

    let changes: Map<String, Value> = serde_json::from_slice(br#"{"major": "math"}"#).expect("an object");
    let removed: Vec<&String> = changes.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k).collect();
    let row = sqlx::query_as(
        "UPDATE native_students SET last_updated_at = $1, data = (data || $2) - $3::text[] WHERE uid = $4 \
         RETURNING uid, created_at, last_updated_at, data",
    )
    .bind(now())
    .bind(Json(&changes))
    .bind(&removed)
    .bind(&uid)
    .fetch_optional(pool)
    .await
    .expect("update");
    answer(row.expect("found"));

    let deleted = sqlx::query("DELETE FROM native_students WHERE uid = $1")
        .bind(&uid)
        .execute(pool)
        .await
        .expect("delete");
    assert_eq!(deleted.rows_affected(), 1);
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
        sqlx::raw_sql(
            "DROP TABLE IF EXISTS native_students; CREATE TABLE native_students (uid TEXT PRIMARY KEY, \
             created_at TEXT NOT NULL, last_updated_at TEXT NOT NULL, data JSONB NOT NULL)",
        )
        .execute(&pool)
        .await?;
        let app = App::start(
            &manifest,
            &AppOptions {
                data_dir: data.path().to_owned(),
                artifact_dir: None,
                packaged_artifacts: None,
                concurrency: 4,
                local_stream: false,
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
