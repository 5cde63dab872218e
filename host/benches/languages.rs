//! The same notes route in Rust, Python and JavaScript guests, against a
//! native Rust baseline, in one run: `GET /notes/{id}` (one records read,
//! the record as JSON) through `App::handle` on the embedded backends, a
//! fresh instance per request. Also each component's size, its compile
//! time, and its load time from the artifact cache. `scripts/bench` runs
//! it in release mode; results go to docs/BENCHMARKS.md.
//!
//! `cargo bench --bench languages -- py` measures only the Python guest
//! beside the baselines (the native handler and the Rust guest), for a
//! profile of one language.
//!
//! The native baseline reads the same row of the same SQLite file with
//! sqlx and answers the record as JSON, as a native handler would.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::measure;

use corral::Manifest;
use corral::{App, AppOptions};
use sqlx::Row;

const WARMUP: usize = 200;
const ITERATIONS: usize = 2_000;
const PHASE_RUNS: usize = 200;

const LANGUAGES: [(&str, &str); 3] = [("rs", "notes"), ("py", "notes_py"), ("js", "notes_js")];

/// Requests one instance serves in the reusing variant of each guest.
const REUSE: u32 = 100;

/// A manifest mounting each of `languages` at `/<lang>`, with a fresh
/// instance per request, and with `reuse` the same component again at
/// `/<lang>-reuse`, serving up to [`REUSE`] requests per instance.
fn manifest_text(root: &std::path::Path, languages: &[(&str, &str)], reuse: bool) -> String {
    let mut text = String::from("[defaults]\nmemory_mb = 128\n");
    for (lang, wasm) in languages {
        let path = root.join(format!("target/wasm32-wasip2/component/{wasm}.wasm"));
        let variants: &[(String, u32)] = if reuse {
            &[(lang.to_string(), 1), (format!("{lang}-reuse"), REUSE)]
        } else {
            &[(lang.to_string(), 1)]
        };
        for (name, requests) in variants {
            text.push_str(&format!(
                "[components.notes-{name}]\nwasm = {:?}\nmount = \"/{name}\"\nrequests_per_instance = {requests}\n\
                 tables = [\"notes_{lang}\"]\ncaches = [\"notes-{lang}\"]\nqueues = [\"notes-{lang}\"]\n\
                 [components.notes-{name}.config]\ntable = \"notes_{lang}\"\ncache = \"notes-{lang}\"\nqueue = \"notes-{lang}\"\neditors_group = \"editors\"\n\
                 [[components.notes-{name}.routes]]\npath = \"/notes\"\nmethods = [\"GET\", \"POST\"]\nauth = \"public\"\n\
                 [[components.notes-{name}.routes]]\npath = \"/notes/{{id}}\"\nmethods = [\"GET\"]\nauth = \"public\"\n",
                path.display().to_string()
            ));
        }
    }
    text
}

fn request(method: &str, path: &str, body: &[u8]) -> corral::Request {
    corral::Request {
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
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let languages: Vec<(&str, &str)> = LANGUAGES
        .into_iter()
        .filter(|(lang, _)| *lang == "rs" || wanted.is_empty() || wanted.iter().any(|w| w == lang))
        .collect();
    for (_, wasm) in &languages {
        let path = root.join(format!("target/wasm32-wasip2/component/{wasm}.wasm"));
        anyhow::ensure!(path.exists(), "{} is missing: run scripts/bench", path.display());
    }
    let manifest = Manifest::parse(&manifest_text(&root, &languages, true), &root, |_| None)?;
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
        for &(lang, wasm) in &languages {
            let one = Manifest::parse(&manifest_text(&root, &[(lang, wasm)], false), &root, |_| None)?;
            let started = Instant::now();
            drop(App::start(&one, &options).await?);
            load.push((lang, started.elapsed()));
        }
        let app = Arc::new(App::start(&manifest, &options).await?);

        let mut uids = Vec::new();
        for (lang, _) in &languages {
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
        for ((lang, _), uid) in languages.iter().zip(&uids) {
            for mount in [lang.to_string(), format!("{lang}-reuse")] {
                let path = format!("/{mount}/notes/{uid}");
                let stats = measure(WARMUP, ITERATIONS, async || {
                    let r = app.handle(request("GET", &path, b"")).await;
                    assert_eq!(r.status, 200);
                    black_box(r);
                })
                .await;
                guests.push((mount, stats));
            }
        }

        println!(
            "GET /notes/{{id}} on the embedded backends, {ITERATIONS} requests after {WARMUP} warm-up; \
             <lang>-reuse serves {REUSE} requests per instance"
        );
        println!(
            "{:<9} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "path", "p50", "p99", "mean", "vs native", "vs Rust guest"
        );
        let rust = guests[0].1.p50.as_secs_f64();
        println!(
            "{:<9} {:>10.2?} {:>10.2?} {:>10.2?} {:>10} {:>12}",
            "native", native.p50, native.p99, native.mean, "1x", ""
        );
        for (lang, s) in &guests {
            println!(
                "{lang:<9} {:>10.2?} {:>10.2?} {:>10.2?} {:>9.1}x {:>11.1}x",
                s.p50,
                s.p99,
                s.mean,
                s.p50.as_secs_f64() / native.p50.as_secs_f64(),
                s.p50.as_secs_f64() / rust
            );
        }
        println!("\nwhere one fresh-instance request goes (mean of {PHASE_RUNS}): instantiate, the call, a second call into the same instance, drop");
        for ((lang, _), uid) in languages.iter().zip(&uids) {
            let component = app.runtime().component(&format!("notes-{lang}")).expect("loaded").current();
            let ([instantiate, first, second, dropped], faults) = phases(&app, &component, &format!("/notes/{uid}"), uid).await;
            println!(
                "{lang:<4} {instantiate:>10.2?} {first:>10.2?} {second:>10.2?} {dropped:>10.2?}   page faults {} / {} / {} / {}",
                faults[0], faults[1], faults[2], faults[3]
            );
        }
        println!("\ncompile every guest (empty artifact directory): {compile_all:.2?}");
        for ((lang, wasm), (_, loaded)) in languages.iter().zip(&load) {
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
/// reusing it would cost), and drop; then, in runs of their own so that
/// reading them does not skew the times, the mean minor page faults of each.
async fn phases(app: &App, component: &corral::bench::Loaded, path: &str, uid: &str) -> ([Duration; 4], [u64; 4]) {
    let mut times = [Duration::ZERO; 4];
    let mut faults = [0; 4];
    for _ in 0..PHASE_RUNS {
        let marks = one_request_in_phases(app, component, path, uid, Instant::now).await;
        for (slot, pair) in times.iter_mut().zip(marks.windows(2)) {
            *slot += pair[1] - pair[0];
        }
        let marks = one_request_in_phases(app, component, path, uid, common::minor_faults).await;
        for (slot, pair) in faults.iter_mut().zip(marks.windows(2)) {
            *slot += pair[1] - pair[0];
        }
    }
    (times.map(|d| d / PHASE_RUNS as u32), faults.map(|f| f / PHASE_RUNS as u64))
}

/// One fresh-instance request, with `mark` read before and after each phase.
async fn one_request_in_phases<M>(app: &App, component: &corral::bench::Loaded, path: &str, uid: &str, mark: impl Fn() -> M) -> [M; 5] {
    let request = corral::bench::handler::Request {
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
    let m0 = mark();
    let mut store = runtime.new_store(component, "bench".into(), None);
    let instance = runtime.instantiate(component, &mut store).await.expect("instantiates");
    let m1 = mark();
    let handler = instance.corral_host_handler();
    let first = handler.call_handle_request(&mut store, &request).await.expect("first call");
    assert_eq!(first.status, 200);
    let m2 = mark();
    black_box(handler.call_handle_request(&mut store, &request).await.expect("second call"));
    let m3 = mark();
    drop(store);
    [m0, m1, m2, m3, mark()]
}
