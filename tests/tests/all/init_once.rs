//! A component's `init` runs once per version and database: a restart on the
//! same bytes, grants and config skips it, and a new version, or new config,
//! runs it again. The testbed's `init` inserts one record into the table
//! its `init_log` config names each time it runs, so the count of records
//! is how often it ran.

use crate::common;

use common::manifests::WASM_PLACEHOLDER;
use common::paths::wasm;
use common::registry::with_custom_section;
use common::{Backends, Host, on_both_backends};

/// The testbed as `boot` from the component file `wasm`, with more config.
fn manifest(wasm: &str, extra_config: &str) -> String {
    common::manifests::manifest_with(
        "init_once",
        &[("COMPONENT_FILE", wasm), ("EXTRA_CONFIG", extra_config)],
    )
}

on_both_backends! {
    init_runs_once_per_version,
}

/// How many times `init` ran: the records it inserted.
fn init_runs(host: &Host) -> i64 {
    host.sql_integers("SELECT count(*) FROM boots")[0][0]
}

/// How many start-up log lines say `init` was skipped for `boot`.
fn skipped(host: &Host) -> usize {
    host.logs()
        .iter()
        .filter(|l| {
            l["message"] == "init already ran for this version; skipped" && l["component"] == "boot"
        })
        .count()
}

async fn serves(host: &Host) -> String {
    let reply = host.get("/boot/ping").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "pong");
    reply
        .header("x-corral-version")
        .expect("a version header")
        .to_owned()
}

async fn init_runs_once_per_version(backends: Backends) {
    let v1 = format!("{WASM_PLACEHOLDER}/testbed.wasm");
    let mut host = Host::start_on(backends, &manifest(&v1, ""));
    let first = serves(&host).await;
    assert_eq!(init_runs(&host), 1, "the first start runs init");
    assert_eq!(skipped(&host), 0);

    // The same version, grants and config against the same database.
    host.restart();
    assert_eq!(serves(&host).await, first);
    assert_eq!(
        init_runs(&host),
        1,
        "a restart on the same version must not run init again"
    );
    assert_eq!(
        skipped(&host),
        1,
        "the host says it skipped init:\n{}",
        host.stderr()
    );

    // A new version: the same component with another sha256.
    let folder = tempfile::tempdir().unwrap();
    let v2 = folder.path().join("testbed-v2.wasm");
    std::fs::write(
        &v2,
        with_custom_section(&std::fs::read(wasm("testbed")).unwrap(), "v2"),
    )
    .unwrap();
    host.set_manifest(&manifest(&v2.display().to_string(), ""));
    host.restart();
    let second = serves(&host).await;
    assert_ne!(second, first, "the new version serves");
    assert_eq!(init_runs(&host), 2, "a new version runs init");
    assert_eq!(skipped(&host), 1);

    // The same version with other config: init sees it, so it runs.
    host.set_manifest(&manifest(&v2.display().to_string(), "greeting = \"hello\""));
    host.restart();
    assert_eq!(serves(&host).await, second);
    assert_eq!(init_runs(&host), 3, "new config runs init");

    // And once more unchanged: skipped again.
    host.restart();
    serves(&host).await;
    assert_eq!(init_runs(&host), 3);
    assert_eq!(skipped(&host), 2);

    // Back to the first version: it runs its init again, as the latest
    // init that ran was another version's.
    host.set_manifest(&manifest(&v1, ""));
    host.restart();
    assert_eq!(serves(&host).await, first);
    assert_eq!(
        init_runs(&host),
        4,
        "going back to an earlier version runs its init again"
    );
}
