//! The subprocess harness: runs the real `corral` binary on a manifest in a
//! fresh temporary directory and talks to it over HTTP.
//!
//! Every `Host` has its own data directory (database, signing key), so tests
//! are independent and run in parallel. Compiled components are cached in
//! one artifact directory shared by all tests, so each component compiles
//! once per build.
//!
//! A host runs on one of two backend sets ([`Backends`]): the embedded ones
//! (SQLite, cache and queue in the data directory), or PostgreSQL, DynamoDB
//! and SQS ([`AwsResources`]). [`on_both_backends!`] runs a test on each.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::aws::{AwsResources, moto_env};
use super::manifests::resolve_wasm;
use super::paths::{artifact_dir, corral_bin};
use super::reply::Reply;
use super::run_async;
use super::tokens::issue_token;

/// How long a host may take to print its listening line: the first start
/// of a Python or JavaScript guest compiles it (about 18 and 13 MB) while
/// other tests wait for that artifact.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a host may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any single HTTP exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

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
pub(crate) use on_both_backends;

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

/// A running `corral serve`, its directories and what it logged.
pub struct Host {
    /// The manifest and data directory; removed with the host.
    _dir: tempfile::TempDir,
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
    /// Writes `manifest_toml` (with `{WASM}` replaced by the
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
        let text = resolve_wasm(manifest_toml);
        let dir = tempfile::Builder::new()
            .prefix("corral-e2e-")
            .tempdir()
            .expect("creating a temporary directory");
        let manifest = dir.path().join("corral.toml");
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
            _dir: dir,
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
            _dir: dir,
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
        let text = resolve_wasm(manifest_toml);
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let manifest = dir.path().join("corral.toml");
        std::fs::write(&manifest, text).expect("writing the manifest");
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
                let url = aws.database_url();
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

    /// Replaces the manifest (with `{WASM}` as in [`Host::start`]);
    /// it takes effect at the next [`Host::restart`].
    pub fn set_manifest(&mut self, manifest_toml: &str) {
        let text = resolve_wasm(manifest_toml);
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
