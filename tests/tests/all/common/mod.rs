//! The end-to-end harness: runs the real `corral` binary on a manifest in a
//! fresh temporary directory and talks to it over HTTP.
//!
//! Every `Host` has its own data directory (database, signing key), so tests
//! are independent and run in parallel. Compiled components are cached in
//! one artifact directory shared by all tests, so each component compiles
//! once per build.
//!
//! A host runs on one of two backend sets ([`Backends`]): the embedded ones
//! (SQLite, cache and queue in the data directory), or PostgreSQL, DynamoDB
//! and SQS. For the second, every host gets a database of its own on the
//! cluster `CORRAL_TEST_PG_URL` names and its own prefix for the DynamoDB
//! tables and SQS queues of the emulator at `CORRAL_TEST_MOTO_URL`
//! (`scripts/test` starts both). [`on_both_backends!`] runs a test on each.

#![allow(dead_code)]

pub mod alma;
pub mod lambda;
pub mod registry;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;

/// How long a host may take to print its listening line: the first start
/// of a Python or JavaScript guest compiles it (about 18 and 13 MB) while
/// other tests wait for that artifact.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a host may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any single HTTP exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// What a manifest writes in front of a component file name; it becomes the
/// absolute path of the built components.
pub const WASM_PLACEHOLDER: &str = "{WASM}";

/// What a test run needs for the AWS backends.
const START_SERVICES: &str = "run scripts/test, which starts PostgreSQL and moto";

const BUILD_EVERYTHING: &str = "scripts/test, or: cargo build -p corral && \
     bash -c 'source scripts/lib.sh && build_components'";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The workspace target directory: `CARGO_TARGET_DIR` when set (at run or
/// build time), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    let configured = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from));
    match configured {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The `corral` binary, built from the current host sources.
///
/// `cargo test` compiles the host's `main.rs` only as a unit-test harness,
/// never into `target/debug/corral`, so without this the tests could run an
/// old binary or none. The first call in each test process runs
/// `cargo build -p corral` (a no-op when it is up to date; cargo does not
/// hold its build lock while tests run).
pub fn corral_bin() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(build_host) {
        panic!(
            "cannot build the corral binary with `cargo build -p corral` ({BUILD_EVERYTHING}):\n{e}"
        );
    }
    let bin = target_dir().join("debug").join("corral");
    assert!(
        bin.is_file(),
        "the corral binary {} is missing; build it with `cargo build -p corral` ({BUILD_EVERYTHING})",
        bin.display()
    );
    bin
}

fn build_host() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "corral"])
        .current_dir(workspace_root());
    without_test_cargo_env(&mut build);
    let out = build
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Clears, for a cargo run inside a test, the variables cargo gives this
/// test process as the tests package's (CARGO_MANIFEST_DIR,
/// CARGO_PKG_NAME...). Build scripts that read them would see other values
/// than in the outer build, so both builds would recompile them and
/// everything above them, every run.
pub fn without_test_cargo_env(command: &mut Command) {
    const SET_FOR_TESTS: [&str; 8] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if SET_FOR_TESTS.iter().any(|prefix| name.starts_with(prefix)) {
            command.env_remove(&*name);
        }
    }
}

/// The folder holding the built components.
pub fn wasm_dir() -> PathBuf {
    target_dir().join("wasm32-wasip2").join("component")
}

/// The path of the built component `name` (`crud`, `testbed`), which must exist.
pub fn wasm(name: &str) -> PathBuf {
    let path = wasm_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "the component {} is missing; build the components with {BUILD_EVERYTHING}",
        path.display()
    );
    path
}

/// The compiled-artifact cache shared by every test host.
pub fn artifact_dir() -> PathBuf {
    target_dir().join("corral-test-artifacts")
}

/// The backend set a host serves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    /// SQLite, and the cache and queue tables in it, in the data directory.
    Embedded,
    /// PostgreSQL (a fresh database), DynamoDB and SQS (in moto, under a
    /// fresh name prefix).
    Aws,
}

/// Turns each `async fn name(backends: Backends)` into a module `name`
/// with two tests, `name::embedded` and `name::aws`.
#[allow(unused_macros)] // each test file includes this module; not all use it
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn embedded() {
                    super::$name($crate::common::Backends::Embedded).await
                }

                #[tokio::test]
                async fn aws() {
                    super::$name($crate::common::Backends::Aws).await
                }
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_backends;

/// The PostgreSQL database and AWS name prefix of one host; the database is
/// dropped with the host.
#[derive(Clone)]
pub struct AwsResources {
    /// The superuser URL of the test cluster.
    admin_url: String,
    /// The host's own database.
    database: String,
    /// Put before every DynamoDB table and SQS queue name.
    pub prefix: String,
    /// The moto endpoint.
    pub moto_url: String,
}

/// A required environment variable of the AWS-side tests.
fn service_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{name} is not set: {START_SERVICES}"),
    }
}

/// Runs `future` to completion on a runtime of its own, on a thread of its
/// own: `Host` is synchronous, and the tests calling it already run inside
/// a runtime.
fn run_async<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a runtime")
            .block_on(future)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Every column of every row, read as an integer.
fn integers<R: sqlx::Row>(rows: &[R]) -> Vec<Vec<i64>>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|row| (0..row.len()).map(|i| row.get::<i64, _>(i)).collect())
        .collect()
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .unwrap_or_else(|| panic!("CORRAL_TEST_PG_URL is not a URL: {url}"))
        + 3;
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn admin_connection(admin_url: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to CORRAL_TEST_PG_URL ({e}); is the cluster up? {START_SERVICES}"
            )
        })
}

impl AwsResources {
    /// A fresh database and name prefix.
    pub fn create() -> AwsResources {
        let admin_url = service_env("CORRAL_TEST_PG_URL");
        let moto_url = service_env("CORRAL_TEST_MOTO_URL");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("t_{id}");
        let prefix = format!("t{}-", &id[..16]);
        let (url, name) = (admin_url.clone(), database.clone());
        run_async(async move {
            let mut admin = admin_connection(&url).await;
            sqlx::Executor::execute(
                &mut admin,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")),
            )
            .await
            .unwrap_or_else(|e| panic!("cannot create the database {name}: {e}"));
        });
        AwsResources {
            admin_url,
            database,
            prefix,
            moto_url,
        }
    }

    /// The backends file for this database and prefix.
    pub fn backends_file(&self) -> String {
        let url = with_database(&self.admin_url, &self.database);
        let prefix = &self.prefix;
        format!(
            "[backends.db]\nkind = \"postgres\"\nurl = \"{url}\"\n\n\
             [backends.cache]\nkind = \"dynamodb\"\nprefix = \"{prefix}\"\ncreate_missing = true\n\n\
             [backends.queue]\nkind = \"sqs\"\nprefix = \"{prefix}\"\ncreate_missing = true\n"
        )
    }

    /// Gives `command` the emulator's AWS settings and nothing from the
    /// caller's AWS configuration (profiles, tokens, per-service endpoints).
    pub fn configure(&self, command: &mut Command) {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command.envs(moto_env(&self.moto_url));
    }

    /// Drops the database. The emulator's tables and queues stay: their
    /// names are unique, and the emulator lives only as long as the run.
    pub fn remove(&self) {
        let (url, name) = (self.admin_url.clone(), self.database.clone());
        let dropped = run_async(async move {
            let mut admin = admin_connection(&url).await;
            sqlx::Executor::execute(
                &mut admin,
                sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")),
            )
            .await
            .map(drop)
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.database);
        }
    }
}

/// A running `corral serve`, its directories and what it logged.
pub struct Host {
    dir: tempfile::TempDir,
    manifest: PathBuf,
    data_dir: PathBuf,
    backends: Backends,
    /// The AWS-side resources of an [`Backends::Aws`] host.
    aws: Option<AwsResources>,
    /// Whether they go with this host (its peers share them).
    owns_aws: bool,
    /// `corral serve` arguments beyond the harness's own, kept for restarts.
    extra_args: Vec<String>,
    /// Environment variables for `corral serve`, kept for restarts.
    env: Vec<(String, String)>,
    /// How many times `corral serve` was started on this directory.
    starts: usize,
    base: String,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    client: reqwest::Client,
}

impl Host {
    /// Writes `manifest_toml` (with [`WASM_PLACEHOLDER`] replaced by the
    /// components' folder) into a fresh directory and serves it on a free
    /// port, with JSON logs, until the `Host` is dropped.
    pub fn start(manifest_toml: &str) -> Host {
        Host::start_with(manifest_toml, &[])
    }

    /// Like [`Host::start`], with extra `corral serve` arguments.
    pub fn start_with(manifest_toml: &str, extra_args: &[&str]) -> Host {
        Host::start_on_with(Backends::Embedded, manifest_toml, extra_args)
    }

    /// Like [`Host::start`], on the given backend set. An AWS host gets a
    /// fresh PostgreSQL database and name prefix, and the AWS settings for
    /// moto in its environment.
    pub fn start_on(backends: Backends, manifest_toml: &str) -> Host {
        Host::start_on_with(backends, manifest_toml, &[])
    }

    /// Like [`Host::start_on`], with extra `corral serve` arguments.
    pub fn start_on_with(backends: Backends, manifest_toml: &str, extra_args: &[&str]) -> Host {
        Host::start_on_with_env(backends, manifest_toml, extra_args, &[])
    }

    /// Like [`Host::start_on_with`], with environment variables for `corral serve`.
    pub fn start_on_with_env(
        backends: Backends,
        manifest_toml: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Host {
        Host::start_with_cache_settings(backends, manifest_toml, extra_args, env, "")
    }

    /// Like [`Host::start_on_with_env`], with `cache_toml` (tables under
    /// `[backends.cache]`, such as `layouts`, or other `[backends.*]`
    /// tables) added to the backends file; an embedded host then gets a
    /// backends file too.
    pub fn start_with_cache_settings(
        backends: Backends,
        manifest_toml: &str,
        extra_args: &[&str],
        env: &[(&str, &str)],
        cache_toml: &str,
    ) -> Host {
        let bin = corral_bin();
        for name in component_names(manifest_toml) {
            wasm(&name);
        }
        let dir = tempfile::Builder::new()
            .prefix("corral-e2e-")
            .tempdir()
            .expect("creating a temporary directory");
        let manifest = dir.path().join("corral.toml");
        let text = manifest_toml.replace(WASM_PLACEHOLDER, &wasm_dir().display().to_string());
        std::fs::write(&manifest, text).expect("writing the manifest");
        let data_dir = dir.path().join("data");
        let mut extra_args: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
        let file = dir.path().join("backends.toml");
        let aws = match backends {
            Backends::Embedded if cache_toml.is_empty() => None,
            Backends::Embedded => {
                let text = format!("[backends.cache]\nkind = \"embedded\"\n\n{cache_toml}");
                std::fs::write(&file, text).expect("writing the backends file");
                extra_args.push("--backends".into());
                extra_args.push(file.display().to_string());
                None
            }
            Backends::Aws => {
                let aws = AwsResources::create();
                let text = format!("{}\n{cache_toml}", aws.backends_file());
                std::fs::write(&file, text).expect("writing the backends file");
                extra_args.push("--backends".into());
                extra_args.push(file.display().to_string());
                Some(aws)
            }
        };
        let mut host = Host {
            dir,
            manifest,
            data_dir,
            backends,
            aws,
            owns_aws: true,
            extra_args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            starts: 0,
            base: String::new(),
            child: None,
            stderr: Arc::new(Mutex::new(String::new())),
            client: http_client(),
        };
        host.spawn(&bin);
        host
    }

    /// Another `corral serve` on this host's manifest, backends and
    /// environment, so on the same database, tables and queues, with a data
    /// directory of its own: another Lambda environment of the same function.
    /// It reads this host's files, so start it after this host and drop it
    /// before.
    pub fn peer(&self) -> Host {
        let dir = tempfile::Builder::new()
            .prefix("corral-e2e-peer-")
            .tempdir()
            .expect("creating a temporary directory");
        let data_dir = dir.path().join("data");
        let mut peer = Host {
            dir,
            manifest: self.manifest.clone(),
            data_dir,
            backends: self.backends,
            aws: self.aws.clone(),
            owns_aws: false,
            extra_args: self.extra_args.clone(),
            env: self.env.clone(),
            starts: 0,
            base: String::new(),
            child: None,
            stderr: Arc::new(Mutex::new(String::new())),
            client: http_client(),
        };
        peer.spawn(&corral_bin());
        peer
    }

    /// Runs `corral serve` on a manifest the host must refuse, and returns
    /// what it printed on stderr; panics if it starts serving.
    pub fn refused(manifest_toml: &str) -> String {
        let bin = corral_bin();
        for name in component_names(manifest_toml) {
            wasm(&name);
        }
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let manifest = dir.path().join("corral.toml");
        std::fs::write(
            &manifest,
            manifest_toml.replace(WASM_PLACEHOLDER, &wasm_dir().display().to_string()),
        )
        .expect("writing the manifest");
        let output = Command::new(bin)
            .arg("serve")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--artifact-dir")
            .arg(artifact_dir())
            .env_remove("CORRAL_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("running corral");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "the host should have refused the manifest, but it ran: {stderr}"
        );
        stderr
    }

    fn spawn(&mut self, bin: &Path) {
        self.starts += 1;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--manifest")
            .arg(&self.manifest)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--artifact-dir")
            .arg(artifact_dir())
            .arg("--log-json")
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("CORRAL_LOG");
        if let Some(aws) = &self.aws {
            aws.configure(&mut command);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));

        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = self.stderr.clone();
        let stderr_done = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&line)),
                }
            }
        });

        // The first line names the address; the route table follows. The
        // rest of stdout is drained so the server never blocks writing it.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut seen = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Err(seen));
                        return;
                    }
                    Ok(_) => {
                        seen.push_str(&line);
                        if let Some(url) = line.trim().strip_prefix("corral listening on ") {
                            let _ = tx.send(Ok(url.trim_end_matches('/').to_owned()));
                            break;
                        }
                    }
                }
            }
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });

        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => {
                self.base = url;
                self.child = Some(child);
                self.check_backends();
            }
            outcome => {
                let _ = child.kill();
                let status = child.wait().ok();
                let _ = stderr_done.join();
                let stdout = match outcome {
                    Ok(Err(seen)) => seen,
                    _ => format!("(no listening line within {START_TIMEOUT:?})"),
                };
                panic!(
                    "corral serve ({:?} backends) did not start (exit: {status:?})\n--- manifest ---\n{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
                    self.backends,
                    std::fs::read_to_string(&self.manifest).unwrap_or_default(),
                    self.stderr()
                );
            }
        }
    }

    /// Panics unless the host says it connected the backends asked for, so
    /// that an AWS test never passes on the embedded backends.
    fn check_backends(&self) {
        let aws_lines = ["database: PostgreSQL", "cache: DynamoDB", "queue: SQS"];
        // The log spans restarts: each start logs its own lines.
        let starts = self.starts;
        let logged = |logs: &[Value], line: &str| {
            logs.iter().filter(|l| l["message"] == line).count() >= starts
        };
        match self.backends {
            Backends::Aws => {
                // The lines come before the listening line, but stderr is
                // read by another thread.
                let deadline = Instant::now() + Duration::from_secs(5);
                while !aws_lines.iter().all(|line| logged(&self.logs(), line)) {
                    assert!(
                        Instant::now() < deadline,
                        "the host did not log {aws_lines:?}: it does not serve from the AWS backends\n{}",
                        self.stderr()
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Backends::Embedded => {
                let logs = self.logs();
                let wrong: Vec<&str> = aws_lines
                    .into_iter()
                    .filter(|line| logs.iter().any(|l| l["message"] == *line))
                    .collect();
                assert!(
                    wrong.is_empty(),
                    "an embedded host logged {wrong:?}\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// The full URL of `path` (which starts with `/` and may carry a query).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The HTTP client for this host.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The backend set it serves from.
    pub fn backends(&self) -> Backends {
        self.backends
    }

    /// The data directory (database, signing key).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs `sql` directly on the host's database (its SQLite file, or its
    /// PostgreSQL database) and returns every row, each column read as an
    /// integer: a test's look at what really landed there.
    pub fn sql_integers(&self, sql: &str) -> Vec<Vec<i64>> {
        use sqlx::Connection as _;
        let sql = sql.to_owned();
        match &self.aws {
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.data_dir.join("corral.db"))
                    .read_only(true);
                run_async(async move {
                    let mut conn = sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .expect("opening the host's SQLite file");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .expect("the test's SQL runs");
                    integers(&rows)
                })
            }
            Some(aws) => {
                let url = with_database(&aws.admin_url, &aws.database);
                run_async(async move {
                    let mut conn = sqlx::PgConnection::connect(&url)
                        .await
                        .expect("connecting to the host's database");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .expect("the test's SQL runs");
                    integers(&rows)
                })
            }
        }
    }

    /// The manifest file the host serves.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest
    }

    /// A token for `sub` in `groups`, signed with this host's key.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        issue_token(&self.data_dir, sub, groups)
    }

    /// Everything the host has written to stderr so far (across restarts).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The host's log lines, parsed (it runs with `--log-json`).
    pub fn logs(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits up to five seconds for a log line that satisfies `matches`
    /// (stderr is collected by a thread, a little after the response), and
    /// returns it; panics with the whole log when none comes.
    pub async fn wait_for_log(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let mut found = None;
        self.wait_for_logs(what, |logs| {
            found = logs.iter().find(|l| matches(l)).cloned();
            found.is_some()
        })
        .await;
        found.expect("the condition held")
    }

    /// Waits up to five seconds until the log lines so far satisfy `holds`;
    /// panics with the whole log when they do not.
    pub async fn wait_for_logs(&self, what: &str, mut holds: impl FnMut(&[Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if holds(&self.logs()) {
                return;
            }
            if Instant::now() > deadline {
                panic!("no log line {what}; the host logged:\n{}", self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGHUP to the host: it checks the component registry at once.
    pub fn hangup(&self) {
        let child = self.child.as_ref().expect("the host is running");
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(child.id().to_string())
            .status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "kill -HUP {} failed: {status:?}",
            child.id()
        );
    }

    /// The environment the host's AWS clients get (moto's), for running
    /// other `corral` commands against the same emulator.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        let aws = self.aws.as_ref().expect("an AWS host");
        moto_env(&aws.moto_url)
    }

    /// The name prefix of an AWS host's tables and queues.
    pub fn aws_prefix(&self) -> &str {
        &self.aws.as_ref().expect("an AWS host").prefix
    }

    /// Sends SIGTERM to the host without waiting for it to exit.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            assert!(
                status.as_ref().is_ok_and(|s| s.success()),
                "kill -TERM {} failed: {status:?}",
                child.id()
            );
        }
    }

    /// Stops the host with SIGTERM and returns how it exited; kills it when
    /// it does not exit in time.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// Replaces the manifest (with [`WASM_PLACEHOLDER`] as in [`Host::start`]);
    /// it takes effect at the next [`Host::restart`].
    pub fn set_manifest(&mut self, manifest_toml: &str) {
        for name in component_names(manifest_toml) {
            wasm(&name);
        }
        let text = manifest_toml.replace(WASM_PLACEHOLDER, &wasm_dir().display().to_string());
        std::fs::write(&self.manifest, text).expect("writing the manifest");
    }

    /// Kills `corral serve` with SIGKILL, as a Lambda environment dies:
    /// nothing in flight is finished, answered or given back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 corral serve");
            let _ = child.wait();
        }
    }

    /// Stops the host (it must exit cleanly on SIGTERM) and starts it again
    /// on the same manifest, data directory, arguments and backends (the
    /// same PostgreSQL database and AWS names); the port changes.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "corral serve did not exit cleanly on SIGTERM within {STOP_TIMEOUT:?} (exit: {status:?}); stderr:\n{}",
            self.stderr()
        );
        self.spawn(&corral_bin());
    }

    /// Sends a request built from this host's client and collects the reply.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        Reply::collect(request.send().await.expect("the host answers")).await
    }

    /// `GET path`, anonymous.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// `GET path` with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> Reply {
        self.send(self.client.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// `method path` with a JSON body and, when given, a bearer token.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// `method path` with no body and, when given, a bearer token.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
        if let Some(aws) = self.aws.as_ref().filter(|_| self.owns_aws) {
            aws.remove();
        }
    }
}

/// The tests' HTTP client.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        // A fresh connection per request: no reuse of a connection the
        // server closed (after a refused body, or across a restart).
        .pool_max_idle_per_host(0)
        .build()
        .expect("building the HTTP client")
}

/// The AWS settings that point a `corral` process at moto, and nowhere else.
pub fn moto_env(moto_url: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The moto endpoint of the AWS-side tests; panics when it is not set.
pub fn moto_url() -> String {
    service_env("CORRAL_TEST_MOTO_URL")
}

/// A development token for `sub` signed with `key`, as hosts given
/// `[backends.auth] signing_key = key` accept.
pub fn issue_token_with_key(key: &str, sub: &str, groups: &[&str]) -> String {
    run_corral_token(&["--signing-key", key], sub, groups)
}

/// Runs `corral token` against `data_dir`'s signing key.
pub fn issue_token(data_dir: &Path, sub: &str, groups: &[&str]) -> String {
    run_corral_token(
        &["--data-dir", data_dir.to_str().expect("a UTF-8 path")],
        sub,
        groups,
    )
}

/// Runs `corral token` with the signing key `key_args` name, and returns
/// the JWT it prints.
fn run_corral_token(key_args: &[&str], sub: &str, groups: &[&str]) -> String {
    let mut command = Command::new(corral_bin());
    command
        .args(["token", "--sub", sub])
        .args(key_args)
        .env_remove("CORRAL_DEV_SIGNING_KEY");
    for g in groups {
        command.arg("--group").arg(g);
    }
    let out = command.output().expect("running corral token");
    assert!(
        out.status.success(),
        "corral token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("the token is UTF-8")
        .trim()
        .to_owned();
    assert_eq!(
        token.split('.').count(),
        3,
        "corral token printed something that is not a JWT: {token:?}"
    );
    token
}

/// A token for `sub` signed with a key no test host uses.
pub fn foreign_token(sub: &str) -> String {
    let other = tempfile::tempdir().expect("creating a temporary directory");
    issue_token(other.path(), sub, &[])
}

/// The example manifest (`corral.toml`) as a test host serves it: the
/// components from the build, the schema files from the checkout.
pub fn example_manifest() -> toml::Table {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join("corral.toml")).expect("reading corral.toml");
    let mut manifest: toml::Table = toml::from_str(&text).expect("corral.toml parses");
    for (_, entry) in manifest["components"].as_table_mut().unwrap().iter_mut() {
        let entry = entry.as_table_mut().unwrap();
        let file = entry["wasm"].as_str().unwrap().rsplit('/').next().unwrap();
        let wasm = format!("{WASM_PLACEHOLDER}/{file}");
        entry.insert("wasm".into(), wasm.into());
        if let Some(schemas) = entry.get("schemas").and_then(|s| s.as_str()) {
            let schemas = root.join(schemas).display().to_string();
            entry.insert("schemas".into(), schemas.into());
        }
    }
    manifest
}

/// The component names a manifest uses through [`WASM_PLACEHOLDER`].
pub fn component_names(manifest: &str) -> Vec<String> {
    let prefix = format!("{WASM_PLACEHOLDER}/");
    manifest
        .match_indices(&prefix)
        .filter_map(|(i, _)| {
            let rest = &manifest[i + prefix.len()..];
            rest.split_once(".wasm").map(|(name, _)| name.to_owned())
        })
        .collect()
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    async fn collect(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("reading the body").to_vec();
        let reply = Reply {
            status,
            headers,
            body,
        };
        // Every answer, success or error, carries its request id.
        assert!(
            reply.request_id().is_some_and(|id| !id.is_empty()),
            "a response without an x-request-id header: {reply}"
        );
        reply
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a text header"))
    }

    /// The `x-request-id` header.
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {self}"))
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status: {self}");
        self.json()
    }

    /// Asserts an error response: the status, the one error shape
    /// `{"error": {"code", "message", "request_id"}}` with exactly those keys,
    /// a JSON content type, and a request id equal to the `x-request-id`
    /// header. Returns the message.
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "unexpected status: {self}");
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "an error that is not JSON: {self}"
        );
        let body = self.json();
        let outer = body
            .as_object()
            .unwrap_or_else(|| panic!("the error body is not an object: {self}"));
        assert_eq!(
            outer.keys().collect::<Vec<_>>(),
            ["error"],
            "the error body has other keys: {self}"
        );
        let error = outer["error"]
            .as_object()
            .unwrap_or_else(|| panic!("`error` is not an object: {self}"));
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["code", "message", "request_id"],
            "the error has other keys: {self}"
        );
        assert_eq!(error["code"], code, "unexpected error code: {self}");
        let request_id = error["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("request_id is not a string: {self}"));
        assert_eq!(
            Some(request_id),
            self.request_id(),
            "the body's request_id differs from x-request-id: {self}"
        );
        let message = error["message"]
            .as_str()
            .unwrap_or_else(|| panic!("message is not a string: {self}"));
        assert!(!message.is_empty(), "an empty error message: {self}");
        message.to_owned()
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} {}", self.status, self.headers, self.text())
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether `s` is a UUID in its hyphenated lower-case form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// Whether `s` is an RFC 3339 UTC timestamp with milliseconds, e.g.
/// `2030-01-31T12:00:00.000Z`.
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}
