//! What hot swap costs, in one run (`scripts/bench swap`, or
//! `cargo bench -p corral --bench swap`):
//!
//! - for every component in `target/wasm32-wasip2/component/*.wasm`: the
//!   Cranelift compile, and the load of its cached artifact (read, checksum,
//!   deserialize), on the host's own engine configuration;
//! - a swap: publish a new version to a directory registry, reload it as an
//!   S3 notification does (fetch, compile, link, validate, swap), and take
//!   the first answer from the new version. Every version is new bytes (the
//!   testbed with a custom section appended), so every swap compiles.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral::manifest::Manifest;
use corral::registry::{Registry, StoreLocation};
use corral::runtime::{Runtime, RuntimeOptions};
use corral::{App, AppOptions};
use wasmtime::component::Component;

const COMPILES: usize = 5;
const LOADS: usize = 50;
const SWAPS: usize = 10;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `bytes` with a custom section appended: the same component, another sha256.
fn with_custom_section(bytes: &[u8], n: usize) -> Vec<u8> {
    let payload = format!("bench-{n}");
    let mut content = vec![payload.len() as u8];
    content.extend_from_slice(payload.as_bytes());
    let mut out = bytes.to_vec();
    out.extend_from_slice(&[0, content.len() as u8]);
    out.extend_from_slice(&content);
    out
}

fn components(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("target/wasm32-wasip2/component");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{} is missing: run scripts/bench", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    found.sort();
    anyhow::ensure!(!found.is_empty(), "no components in {}: run scripts/bench", dir.display());
    Ok(found)
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_owned();
    let scratch = tempfile::tempdir()?;

    // The engine the host builds for a manifest (pooling allocator, epochs).
    let manifest = Manifest::parse("", &root, |_| None)?;
    let runtime = Runtime::new(&manifest, &RuntimeOptions { concurrency: 4, artifact_dir: scratch.path().join("artifacts") })?;
    let (engine, cache) = runtime.compiler();
    println!("compile vs cached artifact, median of {COMPILES} compiles and {LOADS} loads");
    println!("{:<14} {:>10} {:>12} {:>12} {:>12} {:>8}", "component", "wasm KiB", "artifact KiB", "compile ms", "load ms", "ratio");
    for path in components(&root)? {
        let bytes = std::fs::read(&path)?;
        let compile = median(
            (0..COMPILES)
                .map(|_| {
                    let t = Instant::now();
                    Component::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e}")).map(|c| (t.elapsed(), c))
                })
                .map(|r| r.map(|(d, _)| d))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let (_, digest, _) = cache.load(&engine, &bytes)?;
        let load = median(
            (0..LOADS)
                .map(|_| {
                    let t = Instant::now();
                    cache.cached(&engine, &digest).context("the artifact loads")?;
                    Ok(t.elapsed())
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
        let artifact = std::fs::metadata(cache.path(&digest))?.len();
        println!(
            "{:<14} {:>10} {:>12} {:>12.2} {:>12.3} {:>7.0}x",
            path.file_stem().unwrap().to_string_lossy(),
            bytes.len() / 1024,
            artifact / 1024,
            ms(compile),
            ms(load),
            compile.as_secs_f64() / load.as_secs_f64()
        );
    }

    // Swaps: publish, reload, first answer.
    let testbed = std::fs::read(root.join("target/wasm32-wasip2/component/testbed.wasm")).context("testbed.wasm: run scripts/bench")?;
    let store = scratch.path().join("registry");
    let location = StoreLocation::Dir(store.clone());
    let manifest = Manifest::parse(
        &format!(
            "[backends.registry]\nstore = \"dir:{}\"\ncheck_seconds = 3600\n[components.tb]\nwasm = \"registry:tb\"\n\
             [[components.tb.routes]]\npath = \"/testbed/{{action}}\"\nmethods = [\"GET\"]\nauth = \"public\"\n",
            store.display()
        ),
        &root,
        |_| None,
    )?;
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(async {
        let registry = Registry::open(&location, None)?;
        registry.publish("tb", testbed.clone()).await?;
        let options = AppOptions { data_dir: scratch.path().join("data"), artifact_dir: None, concurrency: 4 };
        let app = App::start(&manifest, &options).await?;
        let hot_swap = app.hot_swap().context("the component is followed")?.clone();
        let ping = corral::request::Request { method: "GET".into(), path: "/testbed/ping".into(), ..Default::default() };
        let (mut upload, mut reload, mut answer, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for n in 0..SWAPS {
            let t0 = Instant::now();
            let digest = registry.publish("tb", with_custom_section(&testbed, n)).await?;
            let t1 = Instant::now();
            hot_swap.check(Some(&["tb".to_owned()]), true).await;
            let t2 = Instant::now();
            loop {
                let r = app.handle(ping.clone()).await;
                anyhow::ensure!(r.status == 200, "ping failed: {}", r.status);
                if r.headers.iter().any(|(k, v)| k == "x-corral-version" && digest.starts_with(v.as_str())) {
                    break;
                }
            }
            let t3 = Instant::now();
            upload.push(t1 - t0);
            reload.push(t2 - t1);
            answer.push(t3 - t2);
            total.push(t3 - t0);
        }
        println!("\nswap, median of {SWAPS} (directory store; every version is new, so each compiles)");
        println!(
            "upload {:.2} ms, reload (fetch, compile, link, validate, swap) {:.2} ms, first answer {:.3} ms, upload to first answer {:.2} ms",
            ms(median(upload)),
            ms(median(reload)),
            ms(median(answer)),
            ms(median(total))
        );
        anyhow::Ok(())
    })
}
