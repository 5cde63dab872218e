//! What hot swap costs, in one run (`scripts/bench swap`, or
//! `cargo bench -p corral --bench swap`):
//!
//! - for every component in `target/wasm32-wasip2/component/*.wasm`: the
//!   Cranelift compile, and the load of its cached artifact (read, checksum,
//!   deserialize), on the host's own engine configuration;
//! - a swap: publish a new version to a registry (a folder, and S3 in moto
//!   when `CORRAL_TEST_MOTO_URL` is set), then take the first answer from the
//!   new version, either after a forced check (what an S3 notification or
//!   SIGHUP runs: fetch, compile, link, validate, swap) or by waiting for the
//!   background check (every second here). Every version is new bytes (the
//!   testbed with a custom section appended), so every swap compiles.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral::Manifest;
use corral::bench::{Registry, Runtime, RuntimeOptions, StoreLocation};
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned();
    let scratch = tempfile::tempdir()?;

    // The engine the host builds for a manifest (pooling allocator, epochs).
    let manifest = Manifest::parse("", &root, |_| None)?;
    let runtime = Runtime::new(
        &manifest,
        &RuntimeOptions {
            concurrency: 4,
            artifact_dir: scratch.path().join("artifacts"),
            packaged_artifacts: None,
        },
    )?;
    let (engine, cache) = runtime.compiler();
    println!("compile vs cached artifact, median of {COMPILES} compiles and {LOADS} loads");
    println!(
        "{:<14} {:>10} {:>12} {:>12} {:>12} {:>8}",
        "component", "wasm KiB", "artifact KiB", "compile ms", "load ms", "ratio"
    );
    for path in components(&root)? {
        let bytes = std::fs::read(&path)?;
        let compile = median(
            (0..COMPILES)
                .map(|_| {
                    let t = Instant::now();
                    Component::new(&engine, &bytes)
                        .map_err(|e| anyhow::anyhow!("{e}"))
                        .map(|c| (t.elapsed(), c))
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

    // Swaps: publish, then the first answer from the new version.
    let testbed = std::fs::read(root.join("target/wasm32-wasip2/component/testbed.wasm")).context("testbed.wasm: run scripts/bench")?;
    let mut stores = vec![("directory", format!("dir:{}", scratch.path().join("registry").display()))];
    if let Ok(moto) = std::env::var("CORRAL_TEST_MOTO_URL") {
        // SAFETY: set before any other thread of this process starts.
        unsafe {
            for (k, v) in [
                ("AWS_ENDPOINT_URL", moto.as_str()),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
            ] {
                std::env::set_var(k, v);
            }
        }
        stores.push((
            "S3 (moto)",
            format!("s3://corral-bench-{}/components", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        ));
    } else {
        println!("\n(CORRAL_TEST_MOTO_URL is not set: the S3 rows are skipped; scripts/bench starts moto)");
    }
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    println!("\nswap, median of {SWAPS}: every version is new bytes, so each one compiles");
    println!(
        "{:<12} {:<22} {:>10} {:>12} {:>14} {:>22}",
        "store", "trigger", "upload ms", "reload ms", "1st answer ms", "upload to answer ms"
    );
    for (label, store) in stores {
        for (trigger, check_seconds) in [("notice (forced check)", 3600), ("polling every 1 s", 1)] {
            let [upload, reload, answer, total] = tokio.block_on(swaps(
                &root,
                &scratch.path().join(format!("{label}-{check_seconds}")),
                &store,
                check_seconds,
                &testbed,
            ))?;
            println!(
                "{label:<12} {trigger:<22} {:>10.2} {:>12.2} {:>14.3} {:>22.2}",
                ms(upload),
                ms(reload),
                ms(answer),
                ms(total)
            );
        }
    }
    Ok(())
}

/// Medians of upload, reload (forced check, or the wait for the poll),
/// first answer and the whole, over `SWAPS` publishes of new versions.
async fn swaps(root: &Path, data: &Path, store: &str, check_seconds: u64, testbed: &[u8]) -> anyhow::Result<[Duration; 4]> {
    let location = StoreLocation::parse(store, root).map_err(|e| anyhow::anyhow!(e))?;
    let manifest = Manifest::parse(
        &format!(
            "[backends.registry]\nstore = \"{store}\"\ncheck_seconds = {check_seconds}\n[components.tb]\nwasm = \"registry:tb\"\n\
             [[components.tb.routes]]\npath = \"/testbed/{{action}}\"\nmethods = [\"GET\"]\nauth = \"public\"\n"
        ),
        root,
        |_| None,
    )?;
    let aws = match &location {
        StoreLocation::S3 { bucket, .. } => {
            let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
            let endpoint = sdk.endpoint_url().context("an endpoint for moto")?.to_owned();
            let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await?;
            anyhow::ensure!(
                created.status().is_success() || created.status().as_u16() == 409,
                "creating the bucket: {}",
                created.status()
            );
            Some(sdk)
        }
        StoreLocation::Dir(_) => None,
    };
    let registry = Registry::open(&location, aws.as_ref())?;
    registry.publish("tb", testbed.to_vec()).await?;
    let options = AppOptions {
        data_dir: data.to_owned(),
        artifact_dir: None,
        packaged_artifacts: None,
        concurrency: 4,
        local_stream: false,
    };
    let app = App::start(&manifest, &options).await?;
    let hot_swap = app.hot_swap().context("the component is followed")?.clone();
    let ping = corral::Request {
        method: "GET".into(),
        path: "/testbed/ping".into(),
        ..Default::default()
    };
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for n in 0..SWAPS {
        let t0 = Instant::now();
        let digest = registry
            .publish("tb", with_custom_section(testbed, n + 1000 * check_seconds as usize))
            .await?;
        let t1 = Instant::now();
        if check_seconds == 3600 {
            hot_swap.check(Some(&["tb".to_owned()]), true).await;
        }
        let mut t2 = Instant::now();
        loop {
            let r = app.handle(ping.clone()).await;
            anyhow::ensure!(r.status == 200, "ping failed: {}", r.status);
            if r.headers
                .iter()
                .any(|(k, v)| k == "x-corral-version" && digest.starts_with(v.as_str()))
            {
                break;
            }
            // Polling: the wait counts as reload time, up to the last miss.
            tokio::time::sleep(Duration::from_millis(2)).await;
            t2 = Instant::now();
        }
        let t3 = Instant::now();
        for (i, d) in [t1 - t0, t2 - t1, t3 - t2, t3 - t0].into_iter().enumerate() {
            samples[i].push(d);
        }
    }
    Ok(samples.map(median))
}
