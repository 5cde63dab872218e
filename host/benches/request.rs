//! Per-request cost of running a component, against the same handler as a
//! native Rust function, in one run. `scripts/bench` runs it in release mode;
//! results go to docs/BENCHMARKS.md.
//!
//! Measured per iteration:
//! - `native`: the trivial `ping` handler as a plain Rust function.
//! - `component`: the testbed component's `ping` through
//!   `Runtime::handle_request`: an instance from the ready set (made ahead,
//!   used once), `handle-request`, and a spawned task that drops the store
//!   and makes the next instance after the answer.
//! - `app`: the whole in-process request path (route, auth, instance, call,
//!   JSON error shape, log line filtered out), through `App::handle`.
//!
//! Then the component path split into its phases (mean of each): new store,
//! instantiate, first call, a second call into the same instance (what a
//! reused instance would cost), and drop.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::measure;

use corral::Manifest;
use corral::bench::handler::{Request, Response};
use corral::{App, AppOptions};

const WARMUP: usize = 2_000;
const ITERATIONS: usize = 20_000;

fn native_ping(request: Request) -> Response {
    let action = request.params.iter().find(|(k, _)| k == "action").map(|(_, v)| v.as_str());
    if action == Some("ping") {
        Response {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"pong".to_vec(),
        }
    } else {
        Response {
            status: 404,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

fn ping_request() -> Request {
    Request {
        method: "GET".into(),
        path: "/testbed/ping".into(),
        mount: String::new(),
        route: "/testbed/{action}".into(),
        params: vec![("action".into(), "ping".into())],
        query: Vec::new(),
        headers: vec![("accept".into(), "*/*".into())],
        body: Vec::new(),
        request_id: "bench".into(),
    }
}

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned();
    let wasm = root.join("target/wasm32-wasip2/component/testbed.wasm");
    anyhow::ensure!(wasm.exists(), "{} is missing: run scripts/bench", wasm.display());
    let manifest = Manifest::parse(
        &format!(
            "[components.testbed]\nwasm = {:?}\n[[components.testbed.routes]]\npath = \"/testbed/{{action}}\"\nmethods = [\"GET\"]\nauth = \"public\"\n",
            wasm.display().to_string()
        ),
        &root,
        |_| None,
    )?;
    let data = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let options = AppOptions {
            data_dir: data.path().to_owned(),
            artifact_dir: None,
            packaged_artifacts: None,
            concurrency: 4,
            local_stream: false,
        };
        let app = Arc::new(App::start(&manifest, &options).await?);
        let component = app.runtime().component("testbed").expect("loaded").current();

        let native = measure(WARMUP, ITERATIONS, async || {
            black_box(native_ping(black_box(ping_request())));
        })
        .await;
        let wasm = measure(WARMUP, ITERATIONS, async || {
            let r = app
                .runtime()
                .handle_request(&component, ping_request(), None)
                .await
                .expect("ping answers");
            assert_eq!(r.status, 200);
            black_box(r);
        })
        .await;
        let http_request = corral::Request {
            method: "GET".into(),
            path: "/testbed/ping".into(),
            ..Default::default()
        };
        let full = measure(WARMUP, ITERATIONS, async || {
            let r = app.handle(http_request.clone()).await;
            assert_eq!(r.status, 200);
            black_box(r);
        })
        .await;

        let phases = phases(&app, &component).await;

        println!("per-request cost, {ITERATIONS} iterations after {WARMUP} warm-up");
        println!(
            "{:<10} {:>10} {:>10} {:>10} {:>10} {:>12}",
            "path", "p50", "p90", "p99", "mean", "p50 ratio"
        );
        for (name, s) in [("native", &native), ("component", &wasm), ("app", &full)] {
            println!(
                "{name:<10} {:>10.2?} {:>10.2?} {:>10.2?} {:>10.2?} {:>11.0}x",
                s.p50,
                s.p90,
                s.p99,
                s.mean,
                s.p50.as_secs_f64() / native.p50.as_secs_f64()
            );
        }
        let names = ["new store", "instantiate", "first call", "second call", "drop"];
        println!(
            "\ncomponent phases (mean): {}",
            names
                .iter()
                .zip(phases)
                .map(|(n, d)| format!("{n} {d:.2?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        anyhow::Ok(())
    })
}

/// Mean time of each phase of one fresh-instance call.
async fn phases(app: &App, component: &corral::bench::Loaded) -> [Duration; 5] {
    let runtime = app.runtime();
    let mut total = [Duration::ZERO; 5];
    for i in 0..WARMUP + ITERATIONS {
        let t0 = Instant::now();
        let mut store = runtime.new_store(component, "bench".into(), None);
        let t1 = Instant::now();
        let instance = runtime.instantiate(component, &mut store).await.expect("instantiates");
        let t2 = Instant::now();
        let handler = instance.corral_host_handler();
        black_box(handler.call_handle_request(&mut store, &ping_request()).await.expect("first call"));
        let t3 = Instant::now();
        black_box(handler.call_handle_request(&mut store, &ping_request()).await.expect("second call"));
        let t4 = Instant::now();
        drop(store);
        let t5 = Instant::now();
        if i >= WARMUP {
            for (slot, d) in total.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]) {
                *slot += d;
            }
        }
    }
    total.map(|d| d / ITERATIONS as u32)
}
