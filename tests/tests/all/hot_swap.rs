//! Hot swap: a component published to the registry (an S3 bucket in moto,
//! or a folder) replaces the running version without a restart, under
//! continuous load and without a failed request; a broken version is
//! refused and the old one keeps serving; `corral rollback` goes back.
//!
//! Versions are told apart by the `x-corral-version` header (the first 12
//! hex digits of the serving version's sha256). v2 is the testbed with a
//! custom section appended, so it behaves the same with another digest.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::manifests::{WASM_PLACEHOLDER, manifest, manifest_with};
use common::registry::{corral, corral_ok, create_bucket, publish, with_custom_section};
use common::{Backends, Host};

/// Client tasks hammering the host while versions change.
const LOAD_TASKS: usize = 4;
/// How long a swap may take beyond the check interval before the test fails.
const SWAP_SLACK: Duration = Duration::from_secs(15);

/// The smallest component there is: it compiles, but exports nothing, so it
/// does not fit the world.
const WRONG_WORLD: &[u8] = b"\0asm\x0d\0\x01\0";

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("running sha256sum");
    String::from_utf8(out.stdout).expect("text")[..64].to_owned()
}

/// What the load saw: every answer's status and version, per task, in order.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(u16, String)>>>,
}

impl Load {
    fn start(host: &Host) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..LOAD_TASKS)
            .map(|_| {
                let (client, url, stop) = (
                    host.client().clone(),
                    host.url("/tb/testbed/ping"),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match client.get(&url).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let version = r
                                    .headers()
                                    .get("x-corral-version")
                                    .map(|v| v.to_str().unwrap().to_owned())
                                    .unwrap_or_default();
                                let body = r.text().await.unwrap_or_default();
                                let ok = status == 200 && body == "pong";
                                seen.push((if ok { status } else { 599 }, version));
                            }
                            Err(e) => {
                                eprintln!("request failed: {e}");
                                seen.push((0, String::new()));
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the load; asserts no request failed and each task saw the
    /// versions in `order` (each at most once as a run, some possibly not at all).
    async fn finish(self, order: &[&str]) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for task in self.tasks {
            let seen = task.await.expect("a load task");
            total += seen.len();
            let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
            assert!(
                failed.is_empty(),
                "{} of {} requests failed: {:?}",
                failed.len(),
                seen.len(),
                &failed[..failed.len().min(5)]
            );
            let mut runs: Vec<&str> = Vec::new();
            for (_, v) in &seen {
                if runs.last() != Some(&v.as_str()) {
                    runs.push(v);
                }
            }
            let mut expected = order.iter();
            for run in &runs {
                assert!(
                    expected.any(|v| v == run),
                    "versions seen out of order: {runs:?}, expected a subsequence of {order:?}"
                );
            }
        }
        total
    }
}

/// Waits until `/tb/testbed/ping` answers from `version`; returns how long that took.
async fn wait_for_version(host: &Host, version: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = host.get("/tb/testbed/ping").await;
        assert_eq!(reply.status, 200, "{reply}");
        if reply.header("x-corral-version") == Some(version) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still answering from {:?}, not {version}, after {within:?}; host log:\n{}",
            reply.header("x-corral-version"),
            host.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_published_versions_swap_under_load_broken_ones_are_refused_and_rollback_goes_back() {
    let moto = common::aws::moto_url();
    let env = common::aws::moto_env(&moto);
    let bucket = create_bucket(&moto);
    let store = format!("s3://{bucket}/components");
    let work = tempfile::tempdir().unwrap();
    let v1_file = common::paths::wasm("testbed");
    let v2_file = work.path().join("v2.wasm");
    std::fs::write(
        &v2_file,
        with_custom_section(&std::fs::read(&v1_file).unwrap(), "v2"),
    )
    .unwrap();
    let v3_file = work.path().join("v3.wasm");
    std::fs::write(&v3_file, WRONG_WORLD).unwrap();

    let v1 = publish(&v1_file, "tb", &store, &env, &[]);
    assert_eq!(
        v1,
        sha256_of(&v1_file),
        "the version is the sha256 of the bytes"
    );
    let check_seconds = 2;
    let host = Host::start_on_with(
        Backends::Aws,
        &manifest("registry_tb"),
        &[
            "--store",
            &store,
            "--registry-check-seconds",
            &check_seconds.to_string(),
        ],
    );
    let first = host.get("/tb/testbed/ping").await;
    assert_eq!(first.status, 200, "{first}");
    assert_eq!(first.text(), "pong");
    assert_eq!(first.header("x-corral-version"), Some(&v1[..12]));

    let load = Load::start(&host);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // v2: the answers switch within the check interval.
    let v2 = publish(&v2_file, "tb", &store, &env, &[]);
    assert_ne!(v1, v2);
    wait_for_version(
        &host,
        &v2[..12],
        Duration::from_secs(check_seconds) + SWAP_SLACK,
    )
    .await;
    host.wait_for_log("about the swap to v2", |l| {
        l["message"] == "swapped in a new version" && l["to"] == v2[..12]
    })
    .await;

    // v3 does not fit the world: publish refuses it and uploads nothing...
    let refused = corral(
        &[
            "publish",
            &v3_file.display().to_string(),
            "--component",
            "tb",
            "--store",
            &store,
        ],
        &env,
    );
    assert!(
        !refused.status.success(),
        "publish accepted a component of the wrong world"
    );
    let listed = corral_ok(&["versions", "tb", "--store", &store], &env);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    // ...and uploaded anyway (as another tool might), the host refuses it and v2 keeps serving.
    let v3 = publish(&v3_file, "tb", &store, &env, &["--no-validate"]);
    let log = host
        .wait_for_log("refusing v3", |l| {
            l["message"] == "refused a new version; the current one keeps serving"
                && l["version"] == v3[..12]
        })
        .await;
    assert_eq!(log["serving"], v2[..12], "{log}");
    for _ in 0..5 {
        let reply = host.get("/tb/testbed/ping").await;
        assert_eq!(reply.header("x-corral-version"), Some(&v2[..12]), "{reply}");
    }

    // Rollback: from v3 to v2 (already serving), then to v1 by its prefix.
    assert_eq!(corral_ok(&["rollback", "tb", "--store", &store], &env), v2);
    assert_eq!(
        corral_ok(
            &["rollback", "tb", "--to", &v1[..10], "--store", &store],
            &env
        ),
        v1
    );
    wait_for_version(
        &host,
        &v1[..12],
        Duration::from_secs(check_seconds) + SWAP_SLACK,
    )
    .await;
    let listed = corral_ok(&["versions", "tb", "--store", &store], &env);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].starts_with(&format!("* {v1}")), "{listed}");
    assert!(
        lines[1].starts_with(&format!("  {v2}")) && lines[2].starts_with(&format!("  {v3}")),
        "{listed}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = load.finish(&[&v1[..12], &v2[..12], &v1[..12]]).await;
    assert!(total > 100, "only {total} requests ran");
}

/// Three hosts on one registry, as three Lambda environments of one
/// function: a version published while all three serve under load reaches
/// every one of them within the check interval, with no failed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_published_version_reaches_every_host_under_load() {
    let moto = common::aws::moto_url();
    let env = common::aws::moto_env(&moto);
    let bucket = create_bucket(&moto);
    let store = format!("s3://{bucket}/components");
    let work = tempfile::tempdir().unwrap();
    let v1_file = common::paths::wasm("testbed");
    let v2_file = work.path().join("v2.wasm");
    std::fs::write(
        &v2_file,
        with_custom_section(&std::fs::read(&v1_file).unwrap(), "v2"),
    )
    .unwrap();
    let v1 = publish(&v1_file, "tb", &store, &env, &[]);
    let check_seconds = 2;
    let first = Host::start_on_with(
        Backends::Aws,
        &manifest("registry_tb"),
        &[
            "--store",
            &store,
            "--registry-check-seconds",
            &check_seconds.to_string(),
        ],
    );
    let hosts = [&first, &first.peer(), &first.peer()];
    for host in hosts {
        let reply = host.get("/tb/testbed/ping").await;
        assert_eq!(reply.header("x-corral-version"), Some(&v1[..12]), "{reply}");
    }
    let loads: Vec<Load> = hosts.iter().map(|host| Load::start(host)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let v2 = publish(&v2_file, "tb", &store, &env, &[]);
    for host in hosts {
        wait_for_version(
            host,
            &v2[..12],
            Duration::from_secs(check_seconds) + SWAP_SLACK,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for load in loads {
        let total = load.finish(&[&v1[..12], &v2[..12]]).await;
        assert!(total > 20, "only {total} requests ran on one host");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_signal_swaps_at_once_without_waiting_for_the_check_interval() {
    let moto = common::aws::moto_url();
    let env = common::aws::moto_env(&moto);
    let bucket = create_bucket(&moto);
    let store = format!("s3://{bucket}");
    let work = tempfile::tempdir().unwrap();
    let v1_file = common::paths::wasm("testbed");
    let v2_file = work.path().join("v2.wasm");
    std::fs::write(
        &v2_file,
        with_custom_section(&std::fs::read(&v1_file).unwrap(), "signal"),
    )
    .unwrap();
    let v1 = publish(&v1_file, "tb", &store, &env, &[]);
    // An hour between checks: only the signal can explain a swap.
    let host = Host::start_on_with(
        Backends::Aws,
        &manifest("registry_tb"),
        &["--store", &store, "--registry-check-seconds", "3600"],
    );
    assert_eq!(
        host.get("/tb/testbed/ping")
            .await
            .header("x-corral-version"),
        Some(&v1[..12])
    );

    let load = Load::start(&host);
    let v2 = publish(&v2_file, "tb", &store, &env, &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        host.get("/tb/testbed/ping")
            .await
            .header("x-corral-version"),
        Some(&v1[..12]),
        "swapped before the signal"
    );
    host.hangup();
    wait_for_version(&host, &v2[..12], SWAP_SLACK).await;
    load.finish(&[&v1[..12], &v2[..12]]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_store_swaps_followed_components_and_keeps_pinned_ones() {
    let work = tempfile::tempdir().unwrap();
    let registry = work.path().join("registry");
    let store = format!("dir:{}", registry.display());
    let v1_file = common::paths::wasm("testbed");
    let v2_file = work.path().join("v2.wasm");
    std::fs::write(
        &v2_file,
        with_custom_section(&std::fs::read(&v1_file).unwrap(), "dir"),
    )
    .unwrap();
    let v1 = publish(&v1_file, "tb", &store, &[], &[]);

    let pinned = manifest_with(
        "hot_swap_pinned",
        &[("VERSION", &v1[..8]), ("STORE", &store)],
    );
    assert!(!pinned.contains(WASM_PLACEHOLDER));
    let host = Host::start(&(manifest("registry_tb") + &pinned));
    assert_eq!(
        host.get("/tb/testbed/ping")
            .await
            .header("x-corral-version"),
        Some(&v1[..12])
    );

    let load = Load::start(&host);
    let v2 = publish(&v2_file, "tb", &store, &[], &[]);
    wait_for_version(&host, &v2[..12], Duration::from_secs(1) + SWAP_SLACK).await;
    load.finish(&[&v1[..12], &v2[..12]]).await;

    // The pinned component stays on its version.
    let reply = host.get("/pinned/testbed/ping").await;
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("x-corral-version"), Some(&v1[..12]), "{reply}");

    // The pointer document is plain JSON with the history, oldest first.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(registry.join("tb/versions.json")).unwrap()).unwrap();
    assert_eq!(doc["current"], v2.as_str(), "{doc}");
    let history: Vec<&str> = doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(history, [v1.as_str(), v2.as_str()]);
    assert!(registry.join(format!("tb/{v2}.wasm")).is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_to_s3_lose_no_version() {
    let moto = common::aws::moto_url();
    let env = common::aws::moto_env(&moto);
    let bucket = create_bucket(&moto);
    let store = format!("s3://{bucket}/c");
    let work = tempfile::tempdir().unwrap();
    let testbed = std::fs::read(common::paths::wasm("testbed")).unwrap();
    let files: Vec<_> = (0..6)
        .map(|i| {
            let path = work.path().join(format!("v{i}.wasm"));
            std::fs::write(&path, with_custom_section(&testbed, &format!("p{i}"))).unwrap();
            path
        })
        .collect();
    // All at once: each rewrites versions.json only if nobody did since it read it.
    let publishers: Vec<_> = files
        .iter()
        .map(|file| {
            let (file, store, env) = (file.clone(), store.clone(), env.clone());
            std::thread::spawn(move || publish(&file, "tb", &store, &env, &["--no-validate"]))
        })
        .collect();
    let published: Vec<String> = publishers
        .into_iter()
        .map(|p| p.join().expect("a publisher"))
        .collect();
    let listed = corral_ok(&["versions", "tb", "--store", &store], &env);
    assert_eq!(listed.lines().count(), files.len(), "{listed}");
    for sha in &published {
        assert!(listed.contains(sha.as_str()), "{sha} is missing:\n{listed}");
    }
    // The current one is one of them, marked once.
    assert_eq!(
        listed.lines().filter(|l| l.starts_with('*')).count(),
        1,
        "{listed}"
    );
}

/// `corral serve --watch`: the component file rewritten on disk (as a build
/// writes it) is swapped in under load without a failed request; a file
/// that is not a component is refused and the last good version keeps
/// serving; a changed manifest is reported as needing a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_swaps_a_rewritten_component_file_under_load() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("tb.wasm");
    let v1_bytes = std::fs::read(common::paths::wasm("testbed")).unwrap();
    let v2_bytes = with_custom_section(&v1_bytes, "watch");
    std::fs::write(&file, &v1_bytes).unwrap();
    let (v1, v2) = (sha256_of(&file), {
        let v2_file = work.path().join("v2.wasm");
        std::fs::write(&v2_file, &v2_bytes).unwrap();
        sha256_of(&v2_file)
    });
    let mut host = Host::start_with(
        &manifest("registry_tb").replace("registry:tb", &file.display().to_string()),
        &["--watch"],
    );
    assert_eq!(
        host.get("/tb/testbed/ping")
            .await
            .header("x-corral-version"),
        Some(&v1[..12])
    );

    let load = Load::start(&host);
    std::fs::write(&file, &v2_bytes).unwrap();
    let took = wait_for_version(&host, &v2[..12], SWAP_SLACK).await;
    eprintln!("saved to first answer from the new version: {took:?}");

    // Not a component: refused, and v2 keeps serving.
    std::fs::write(&file, WRONG_WORLD).unwrap();
    host.wait_for_log("about the refused file", |l| {
        l["message"] == "refused a new version; the current one keeps serving"
            && l["serving"] == v2[..12]
    })
    .await;
    assert_eq!(
        host.get("/tb/testbed/ping")
            .await
            .header("x-corral-version"),
        Some(&v2[..12])
    );

    std::fs::write(&file, &v1_bytes).unwrap();
    wait_for_version(&host, &v1[..12], SWAP_SLACK).await;
    load.finish(&[&v1[..12], &v2[..12], &v1[..12]]).await;

    // A manifest change is checked and reported, not applied.
    let path = host.manifest_path().to_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("/testbed/{action}", "/other/{action}")).unwrap();
    host.wait_for_log("about the manifest change", |l| {
        l["message"]
            == "the manifest changed; restart corral serve to apply it (routes, grants, config and backends are read at start)"
    })
    .await;
    std::fs::write(&path, "not toml [").unwrap();
    host.wait_for_log("about the broken manifest", |l| {
        l["message"] == "the manifest changed and is not valid; the running one keeps serving"
    })
    .await;
    assert_eq!(
        host.get("/tb/testbed/ping")
            .await
            .header("x-corral-version"),
        Some(&v1[..12])
    );
    std::fs::write(&path, text).unwrap();
    host.stop();
}
