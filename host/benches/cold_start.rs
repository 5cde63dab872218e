//! Cold start: from starting the function's process to the answer of its
//! first invocation, under cargo-lambda's Lambda runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`), in one run. `scripts/bench`
//! runs it; it builds the release binaries it measures first.
//!
//! Measured, `RUNS` times each, interleaved:
//! - `native`: `bench/hello-lambda`, a lambda_runtime function answering
//!   `{"hello": "world"}`.
//! - `corral compile`: the release `corral` on the example manifest
//!   (`corral.toml`) with an empty artifact directory: it compiles every
//!   component before serving.
//! - `corral cached`: the same with the compiled components already in the
//!   artifact directory (as when they ship in the deployment package): it
//!   deserializes them.
//! - `corral packaged`: an empty artifact directory, as in a new Lambda
//!   environment, and the components precompiled by `corral compile` in a
//!   read-only folder, as the deployment package carries them
//!   (`CORRAL_PACKAGED_ARTIFACTS`).
//! - `corral packaged pg`: the same on PostgreSQL (`CORRAL_TEST_PG_URL`,
//!   which `scripts/bench` starts), one database for every run: a new
//!   Lambda environment meets a database that earlier ones already set up.
//!
//! For the corral variants it also reports the start-up phases the host logs
//! (backends, engine and pool, each component's load and `init`; on
//! PostgreSQL each component's database role and the catalog check of its
//! role, logged at debug level) and the first request's handling, as
//! medians.
//!
//! Each run gets a fresh data directory (a new Lambda environment has an
//! empty /tmp). The first invocation is an HTTP API request,
//! `GET /students`, sent as soon as the process is started: the emulator
//! holds it until the runtime asks for work, as Lambda does.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

const RUNS: usize = 10;
/// How long one cold start may take before the run is abandoned.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// `CARGO_TARGET_DIR` when set (at run or build time), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    let configured = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from));
    match configured {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// The release binaries: corral, and the native function.
fn build_release() -> anyhow::Result<(PathBuf, PathBuf)> {
    // corral is the binary `cargo bench` built beside this benchmark, with
    // the same features: building it again here would recompile half the
    // dependency tree under other features.
    let corral = PathBuf::from(env!("CARGO_BIN_EXE_corral"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "hello-lambda"])
        .current_dir(root())
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build --release -p hello-lambda failed");
    Ok((corral, target_dir().join("release").join("hello-lambda")))
}

/// The manifest's components precompiled for this machine into `out`, as
/// `scripts/package` does for the deployment package.
fn precompile(corral: &Path, manifest: &Path, out: &Path) -> anyhow::Result<()> {
    let status = Command::new(corral)
        .args(["compile", "--target", &format!("{}-unknown-linux-gnu", std::env::consts::ARCH)])
        .arg("--manifest")
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .env("ES_PAGE_SECRET", "cold-start-page-secret")
        .status()
        .context("running corral compile")?;
    ensure!(status.success(), "corral compile failed");
    Ok(())
}

/// The example manifest, its component paths made absolute for this target directory.
fn example_manifest(dir: &Path) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(root().join("corral.toml")).context("reading corral.toml")?;
    let components = target_dir().join("wasm32-wasip2/component");
    let text = text.replace("\"target/wasm32-wasip2/component/", &format!("\"{}/", components.display()));
    for line in text.lines().filter(|l| l.trim_start().starts_with("wasm")) {
        let path = line.split('"').nth(1).context("a wasm line without a quoted path")?;
        ensure!(
            Path::new(path).is_file(),
            "{path} is missing: run scripts/bench (it builds the components)"
        );
    }
    // A Lambda host starts only with an explicit verifier; the benchmark
    // takes the development one.
    let text = format!("{text}\n[backends.auth]\nkind = \"dev\"\n");
    let path = dir.join("corral.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child in its own process group, killed (group and all) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// cargo-lambda's runtime API emulator on a free port.
fn start_emulator() -> anyhow::Result<(Process, u16)> {
    let port = free_port()?;
    let child = Command::new("cargo-lambda")
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .current_dir(root())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run cargo-lambda; install it with `python3 -m pip install --no-deps cargo-lambda` (scripts/bench does)")?;
    let mut emulator = Process(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = emulator.0.try_wait()? {
            bail!("the emulator exited: {status}");
        }
        ensure!(Instant::now() < deadline, "the emulator did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((emulator, port))
}

/// What one kind of function is started with, and what it must answer.
struct Variant {
    name: &'static str,
    bin: PathBuf,
    /// A fixed artifact directory (kept warm), or none for a fresh empty one per run.
    artifacts: Option<PathBuf>,
    /// A read-only folder of packaged artifacts.
    packaged: Option<PathBuf>,
    /// A backends file (else the manifest's embedded backends, in the fresh data directory).
    backends: Option<PathBuf>,
    expect: fn(&Value) -> bool,
}

fn http_api_get_students() -> Value {
    json!({
        "version": "2.0",
        "routeKey": "GET /students",
        "rawPath": "/students",
        "rawQueryString": "",
        "headers": { "accept": "application/json", "host": "bench.execute-api.us-east-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "http": { "method": "GET", "path": "/students", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": "bench", "routeKey": "GET /students", "stage": "$default", "time": "25/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
}

/// One cold start: the time to the first answer, and the phases the host logged.
struct Sample {
    total: Duration,
    phases: Vec<(String, Duration)>,
}

/// The start-up phases and the first request's duration, from the host's JSON log lines.
fn phases(log: &str) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        match v["message"].as_str() {
            Some("start-up phase") => {
                let name = match v["component"].as_str() {
                    Some(c) => format!(
                        "{} {c} ({})",
                        v["phase"].as_str().unwrap_or("?"),
                        v["origin"].as_str().unwrap_or("?")
                    ),
                    None => v["phase"].as_str().unwrap_or("?").to_owned(),
                };
                // A phase that overlaps others is shown within the one it names.
                let name = match v["within"].as_str() {
                    Some(within) => format!("{within} > {name}"),
                    None => name,
                };
                out.push((name, Duration::from_micros(v["us"].as_u64().unwrap_or(0))));
            }
            // Within a component's load on PostgreSQL (logged at debug).
            Some("component database role ready") => {
                let name = format!("components > database role {}", v["component"].as_str().unwrap_or("?"));
                out.push((name, Duration::from_micros(v["us"].as_u64().unwrap_or(0))));
            }
            Some("component role already in place") => {
                out.push((
                    "components > role check, its turn".into(),
                    Duration::from_micros(v["turn_us"].as_u64().unwrap_or(0)),
                ));
                out.push((
                    "components > role check, whole".into(),
                    Duration::from_secs_f64(v["check_ms"].as_f64().unwrap_or(0.0) / 1000.0),
                ));
            }
            Some("request") if !out.iter().any(|(n, _)| n == "first request") => {
                out.push((
                    "first request".into(),
                    Duration::from_secs_f64(v["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0),
                ));
            }
            _ => {}
        }
    }
    out
}

/// Starts `variant` and times process start to the first answered invocation.
async fn cold_start(client: &reqwest::Client, port: u16, manifest: &Path, variant: &Variant, event: &Value) -> anyhow::Result<Sample> {
    let scratch = tempfile::tempdir()?;
    let artifacts = variant.artifacts.clone().unwrap_or_else(|| scratch.path().join("artifacts"));
    let mut command = Command::new(&variant.bin);
    command
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("CORRAL_MANIFEST", manifest)
        .env("ES_PAGE_SECRET", "cold-start-page-secret")
        .env("CORRAL_DATA_DIR", scratch.path().join("data"))
        .env("CORRAL_ARTIFACT_DIR", &artifacts)
        .env_remove("CORRAL_PACKAGED_ARTIFACTS")
        .env_remove("CORRAL_BACKENDS")
        // The database role's set-up is timed at debug level.
        .env("CORRAL_LOG", "info,corral::capability::db::postgres=debug")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(packaged) = &variant.packaged {
        command.env("CORRAL_PACKAGED_ARTIFACTS", packaged);
    }
    if let Some(backends) = &variant.backends {
        command.env("CORRAL_BACKENDS", backends);
    }
    let started = Instant::now();
    let mut function = Process(command.spawn().with_context(|| format!("running {}", variant.bin.display()))?);
    let answer = client
        .post(format!("http://127.0.0.1:{port}/2015-03-31/functions/_/invocations"))
        .json(event)
        .send()
        .await;
    let elapsed = started.elapsed();
    let answer = match answer {
        Ok(response) => response.json::<Value>().await.context("the answer is not JSON")?,
        Err(e) => {
            let _ = function.0.kill();
            let mut log = String::new();
            if let Some(stderr) = function.0.stderr.take() {
                for line in BufReader::new(stderr).lines().map_while(Result::ok).take(40) {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
            bail!("{}: no answer ({e}); it logged:\n{log}", variant.name);
        }
    };
    ensure!((variant.expect)(&answer), "{}: unexpected answer {answer}", variant.name);
    // Killed, so its log ends and can be read whole.
    let stderr = function.0.stderr.take();
    drop(function);
    let mut log = String::new();
    if let Some(mut stderr) = stderr {
        std::io::Read::read_to_string(&mut stderr, &mut log)?;
    }
    Ok(Sample {
        total: elapsed,
        phases: phases(&log),
    })
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    }
}

fn main() -> anyhow::Result<()> {
    let (corral, hello) = build_release()?;
    let dir = tempfile::tempdir()?;
    let manifest = example_manifest(dir.path())?;
    let warm_artifacts = dir.path().join("artifacts");
    let packaged = dir.path().join("packaged");
    precompile(&corral, &manifest, &packaged)?;
    let packaged_dir = packaged.clone();
    // Read-only, as the deployment package is on Lambda.
    std::fs::set_permissions(&packaged, std::os::unix::fs::PermissionsExt::from_mode(0o555))?;
    let admin_url = std::env::var("CORRAL_TEST_PG_URL").map_err(|_| anyhow::anyhow!("CORRAL_TEST_PG_URL is not set: run scripts/bench"))?;
    let database = format!("cold_start_{}", uuid::Uuid::new_v4().simple());
    let backends = dir.path().join("backends.toml");
    std::fs::write(
        &backends,
        // It replaces the manifest's [backends], so it names the verifier too.
        format!(
            "[backends.db]\nkind = \"postgres\"\nurl = \"{}\"\n\n[backends.auth]\nkind = \"dev\"\n",
            with_database(&admin_url, &database)?
        ),
    )?;
    let (_emulator, port) = start_emulator()?;
    let event = http_api_get_students();

    let corral_ok: fn(&Value) -> bool = |a| a["statusCode"] == 200;
    let variants = [
        Variant {
            name: "native",
            bin: hello,
            artifacts: None,
            packaged: None,
            backends: None,
            expect: |a| *a == json!({ "hello": "world" }),
        },
        Variant {
            name: "corral compile",
            bin: corral.clone(),
            artifacts: None,
            packaged: None,
            backends: None,
            expect: corral_ok,
        },
        Variant {
            name: "corral cached",
            bin: corral.clone(),
            artifacts: Some(warm_artifacts),
            packaged: None,
            backends: None,
            expect: corral_ok,
        },
        Variant {
            name: "corral packaged",
            bin: corral.clone(),
            artifacts: None,
            packaged: Some(packaged.clone()),
            backends: None,
            expect: corral_ok,
        },
        Variant {
            name: "corral packaged pg",
            bin: corral,
            artifacts: None,
            packaged: Some(packaged),
            backends: Some(backends),
            expect: corral_ok,
        },
    ];

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _database = runtime.block_on(Database::create(&admin_url, &database))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(INVOKE_TIMEOUT).build()?;
        // One unmeasured start of each: fills the page cache, and the warm artifact directory.
        for variant in &variants {
            cold_start(&client, port, &manifest, variant, &event).await?;
        }
        let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(RUNS); variants.len()];
        let mut logged: Vec<Vec<Vec<(String, Duration)>>> = vec![Vec::with_capacity(RUNS); variants.len()];
        for _ in 0..RUNS {
            for ((variant, times), phases) in variants.iter().zip(&mut samples).zip(&mut logged) {
                let sample = cold_start(&client, port, &manifest, variant, &event).await?;
                times.push(sample.total);
                phases.push(sample.phases);
            }
        }

        println!("cold start: process start to the answer of the first invocation (GET /students as an HTTP API event)");
        println!("under cargo-lambda's runtime API emulator, {RUNS} runs each, release builds");
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>14}",
            "function", "median", "min", "max", "median ratio"
        );
        let mut medians = Vec::new();
        for times in &mut samples {
            medians.push(median(times));
        }
        for ((variant, times), m) in variants.iter().zip(&samples).zip(&medians) {
            println!(
                "{:<16} {:>10.1?} {:>10.1?} {:>10.1?} {:>13.1}x",
                variant.name,
                m,
                times.first().expect("sorted samples"),
                times.last().expect("sorted samples"),
                m.as_secs_f64() / medians[0].as_secs_f64()
            );
        }
        for ((variant, runs), total) in variants.iter().zip(&logged).zip(&medians) {
            print_phases(variant.name, runs, *total);
        }
        anyhow::Ok(())
    })?;
    // Writable again, so the temporary directory can be removed.
    std::fs::set_permissions(&packaged_dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

/// The median of each phase over the runs, by name, in the order they were
/// first logged. Phases that overlap others (components load at the same
/// time, the engine is built while the backends connect) are shown indented
/// under the one they lie within; the rest is what the top-level phases
/// leave of the total.
fn print_phases(variant: &str, runs: &[Vec<(String, Duration)>], total: Duration) {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in runs.iter().flatten() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return;
    }
    println!();
    println!("{variant}: phases (median of {RUNS}); the rest is process start, runtime API and emulator");
    let median_of = |name: &str| {
        let mut times: Vec<Duration> = runs.iter().flatten().filter(|(n, _)| n == name).map(|(_, d)| *d).collect();
        median(&mut times)
    };
    let mut top_level = Duration::ZERO;
    for parent in names.iter().filter(|n| !n.contains(" > ")) {
        let m = median_of(parent);
        top_level += m;
        println!("  {parent:<40} {:>10.2?}", m);
        for nested in names
            .iter()
            .filter_map(|n| n.strip_prefix(&format!("{parent} > ")).map(|inner| (n, inner)))
        {
            println!("    {:<38} {:>10.2?}", nested.1, median_of(nested.0));
        }
    }
    println!("  {:<40} {:>10.2?}", "rest", total.saturating_sub(top_level));
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url).context("CORRAL_TEST_PG_URL is not a URL")?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// A database of the benchmark's own on the PostgreSQL cluster, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    async fn create(admin_url: &str, name: &str) -> anyhow::Result<Database> {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .context("connecting to CORRAL_TEST_PG_URL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await?;
        Ok(Database {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                use sqlx::Connection as _;
                let mut admin = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                    .execute(&mut admin)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the benchmark database {}", self.name);
        }
    }
}
