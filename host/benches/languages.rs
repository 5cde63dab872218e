//! The same notes route in Rust, Python and JavaScript guests, against a
//! native Rust baseline, in one run: `GET /notes/{id}` (one records read,
//! the record as JSON) through `App::handle` on the embedded backends, a
//! fresh instance per request. Also each component's size, its compile
//! time, and its load time from the artifact cache. `scripts/bench` runs
//! it in release mode; results go to docs/BENCHMARKS.md.
//!
//! The native baseline reads the same row of the same SQLite file with
//! sqlx and answers the record as JSON, as a native handler would.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

mod common;
use common::measure;

use corral::app::{App, AppOptions};
use corral::manifest::Manifest;
use sqlx::Row;

const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;
const PHASE_RUNS: usize = 200;

const LANGUAGES: [(&str, &str); 3] = [("rs", "notes"), ("py", "notes_py"), ("js", "notes_js")];

/// A manifest mounting each of `languages` at `/<lang>`.
fn manifest_text(root: &std::path::Path, languages: &[(&str, &str)]) -> String {
    let mut text = String::from("[defaults]\nmemory_mb = 128\n");
    for (lang, wasm) in languages {
        let path = root.join(format!("target/wasm32-wasip2/component/{wasm}.wasm"));
        text.push_str(&format!(
            "[components.notes-{lang}]\nwasm = {:?}\nmount = \"/{lang}\"\ntables = [\"notes_{lang}\"]\ncaches = [\"notes-{lang}\"]\nqueues = [\"notes-{lang}\"]\n\
             [components.notes-{lang}.config]\ntable = \"notes_{lang}\"\ncache = \"notes-{lang}\"\nqueue = \"notes-{lang}\"\neditors_group = \"editors\"\n\
             [[components.notes-{lang}.routes]]\npath = \"/notes\"\nmethods = [\"GET\", \"POST\"]\nauth = \"public\"\n\
             [[components.notes-{lang}.routes]]\npath = \"/notes/{{id}}\"\nmethods = [\"GET\"]\nauth = \"public\"\n",
            path.display().to_string()
        ));
    }
    text
}

fn request(method: &str, path: &str, body: &[u8]) -> corral::request::Request {
    corral::request::Request {
        method: method.into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_vec().into(),
        ..Default::default()
    }
}

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned();
    for (_, wasm) in LANGUAGES {
        let path = root.join(format!("target/wasm32-wasip2/component/{wasm}.wasm"));
        anyhow::ensure!(path.exists(), "{} is missing: run scripts/bench", path.display());
    }
    let manifest = Manifest::parse(&manifest_text(&root, &LANGUAGES), &root, |_| None)?;
    let data = tempfile::tempdir()?;
    let artifacts = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let options = AppOptions {
            data_dir: data.path().to_owned(),
            artifact_dir: Some(artifacts.path().to_owned()),
            packaged_artifacts: None,
            concurrency: 4,
            local_stream: false,
        };
        // The first start compiles every component into the artifact
        // directory; the second loads them from it.
        let started = Instant::now();
        drop(App::start(&manifest, &options).await?);
        let compile_all = started.elapsed();
        let mut load = Vec::new();
        for (lang, wasm) in LANGUAGES {
            let one = Manifest::parse(&manifest_text(&root, &[(lang, wasm)]), &root, |_| None)?;
            let started = Instant::now();
            drop(App::start(&one, &options).await?);
            load.push((lang, started.elapsed()));
        }
        let app = Arc::new(App::start(&manifest, &options).await?);

        let mut uids = Vec::new();
        for (lang, _) in LANGUAGES {
            let created = app
                .handle(request(
                    "POST",
                    &format!("/{lang}/notes"),
                    br#"{"title": "Groceries", "body": "milk eggs"}"#,
                ))
                .await;
            anyhow::ensure!(created.status == 201, "{lang}: create answered {}", created.status);
            let record: serde_json::Value = serde_json::from_slice(&created.body)?;
            uids.push(record["uid"].as_str().expect("a uid").to_owned());
        }

        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.path().join("corral.db").display())).await?;
        let native = measure(WARMUP, ITERATIONS, async || {
            let row =
                sqlx::query("SELECT uid, created_at, last_updated_at, creator_uid, last_updater_uid, data FROM notes_rs WHERE uid = ?")
                    .bind(&uids[0])
                    .fetch_one(&pool)
                    .await
                    .expect("the note");
            let mut record: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(row.get::<&str, _>("data")).expect("a JSON document");
            for field in ["uid", "created_at", "last_updated_at", "creator_uid", "last_updater_uid"] {
                record.insert(field.into(), row.get::<Option<String>, _>(field).into());
            }
            black_box(serde_json::to_vec(&record).expect("serializes"));
        })
        .await;
        let mut guests = Vec::new();
        for ((lang, _), uid) in LANGUAGES.iter().zip(&uids) {
            let path = format!("/{lang}/notes/{uid}");
            let stats = measure(WARMUP, ITERATIONS, async || {
                let r = app.handle(request("GET", &path, b"")).await;
                assert_eq!(r.status, 200);
                black_box(r);
            })
            .await;
            guests.push((*lang, stats));
        }

        println!("GET /notes/{{id}} on the embedded backends, {ITERATIONS} requests after {WARMUP} warm-up");
        println!(
            "{:<8} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "path", "p50", "p99", "mean", "vs native", "vs Rust guest"
        );
        let rust = guests[0].1.p50.as_secs_f64();
        println!(
            "{:<8} {:>10.2?} {:>10.2?} {:>10.2?} {:>10} {:>12}",
            "native", native.p50, native.p99, native.mean, "1x", ""
        );
        for (lang, s) in &guests {
            println!(
                "{lang:<8} {:>10.2?} {:>10.2?} {:>10.2?} {:>9.1}x {:>11.1}x",
                s.p50,
                s.p99,
                s.mean,
                s.p50.as_secs_f64() / native.p50.as_secs_f64(),
                s.p50.as_secs_f64() / rust
            );
        }
        println!("\nwhere one fresh-instance request goes (mean of {PHASE_RUNS}): instantiate, the call, a second call into the same instance, drop");
        for ((lang, _), uid) in LANGUAGES.iter().zip(&uids) {
            let component = app.runtime().component(&format!("notes-{lang}")).expect("loaded").current();
            let [instantiate, first, second, dropped] = phases(&app, &component, &format!("/notes/{uid}"), uid).await;
            println!("{lang:<4} {instantiate:>10.2?} {first:>10.2?} {second:>10.2?} {dropped:>10.2?}");
        }
        println!("\ncompile all three (empty artifact directory): {compile_all:.2?}");
        for ((lang, wasm), (_, loaded)) in LANGUAGES.iter().zip(&load) {
            let size = std::fs::metadata(root.join(format!("target/wasm32-wasip2/component/{wasm}.wasm")))?.len();
            println!(
                "{lang}: {:.1} MB, start with it alone from the artifact cache {loaded:.2?}",
                size as f64 / 1e6
            );
        }
        anyhow::Ok(())
    })
}

/// Mean time of each phase of a fresh-instance `GET path`: instantiate
/// (with a new store), the call, a second call into the same instance (what
/// reusing it would cost), and drop.
async fn phases(app: &App, component: &corral::runtime::Loaded, path: &str, uid: &str) -> [std::time::Duration; 4] {
    let request = corral::bindings::handler::Request {
        method: "GET".into(),
        path: path.into(),
        mount: String::new(),
        route: "/notes/{id}".into(),
        params: vec![("id".into(), uid.into())],
        query: Vec::new(),
        headers: Vec::new(),
        body: Vec::new(),
        request_id: "bench".into(),
    };
    let runtime = app.runtime();
    let mut total = [std::time::Duration::ZERO; 4];
    for _ in 0..PHASE_RUNS {
        let t0 = Instant::now();
        let mut store = runtime.new_store(component, "bench".into(), None);
        let instance = runtime.instantiate(component, &mut store).await.expect("instantiates");
        let t1 = Instant::now();
        let handler = instance.corral_host_handler();
        let first = handler.call_handle_request(&mut store, &request).await.expect("first call");
        assert_eq!(first.status, 200);
        let t2 = Instant::now();
        black_box(handler.call_handle_request(&mut store, &request).await.expect("second call"));
        let t3 = Instant::now();
        drop(store);
        let t4 = Instant::now();
        for (slot, d) in total.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            *slot += d;
        }
    }
    total.map(|d| d / PHASE_RUNS as u32)
}
