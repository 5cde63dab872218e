//! Precompiled components on a fresh host (an empty artifact directory, as
//! in a new Lambda environment): the package's artifacts from
//! `corral compile`, and artifacts published beside a registry component
//! with `corral publish --artifact-target`, sealed with the artifact key.
//! The arm64 package under qemu is `scripts/test-package`.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::registry::{corral_ok, publish, with_custom_section};
use serde_json::Value;

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OTHER_KEY: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The crud component as `students` from a file and as `courses` from the registry.
fn manifest(dir: &Path, registry: &Path) -> std::path::PathBuf {
    let text = common::manifests::manifest_with(
        "precompiled",
        &[("REGISTRY", &registry.display().to_string())],
    );
    let path = dir.join("corral.toml");
    std::fs::write(&path, common::manifests::resolve_wasm(&text)).unwrap();
    path
}

/// A `corral serve` with an empty artifact directory, killed on drop.
struct Fresh {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Fresh {
    fn start(manifest: &Path, data: &Path, packaged: &Path, key: &str) -> Fresh {
        let mut child = Command::new(common::paths::corral_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-json",
                "--manifest",
            ])
            .arg(manifest)
            .arg("--data-dir")
            .arg(data.join("data"))
            .arg("--artifact-dir")
            .arg(data.join("artifacts"))
            .arg("--packaged-artifacts")
            .arg(packaged)
            .env("CORRAL_ARTIFACT_KEY", key)
            .env_remove("CORRAL_BACKENDS")
            .env_remove("CORRAL_STORE")
            .env_remove("CORRAL_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running corral serve");
        let stderr = common::lambda::collect(child.stderr.take().unwrap());
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut line = String::new();
        let base = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 || Instant::now() > deadline {
                let _ = child.kill();
                panic!("corral serve did not start:\n{}", stderr.lock().unwrap());
            }
            if let Some(url) = line.trim().strip_prefix("corral listening on ") {
                break url.to_owned();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Fresh {
            child,
            base,
            stderr,
        }
    }

    fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = runtime.block_on(async move {
            reqwest::get(url)
                .await?
                .error_for_status()?
                .json::<Value>()
                .await
        });
        response.unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.stderr.lock().unwrap()))
    }

    fn logs(&self) -> Vec<Value> {
        self.stderr
            .lock()
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Where each component came from, by the `component ready` lines.
    fn origins(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .logs()
            .iter()
            .filter(|l| l["message"] == "component ready")
            .map(|l| {
                (
                    l["component"].as_str().unwrap().to_owned(),
                    l["origin"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn a_fresh_host_compiles_nothing_with_packaged_and_published_artifacts_and_refuses_a_foreign_key() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let manifest = manifest(dir.path(), &registry);
    let packaged = dir.path().join("package-artifacts");
    corral_ok(
        &[
            "compile",
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            packaged.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        std::fs::read_dir(&packaged).unwrap().count(),
        1,
        "one artifact: the registry component is not packaged"
    );

    let courses = dir.path().join("courses.wasm");
    std::fs::write(
        &courses,
        with_custom_section(
            &std::fs::read(common::paths::wasm("crud")).unwrap(),
            "courses",
        ),
    )
    .unwrap();
    let store = format!("dir:{}", registry.display());
    let env = [("CORRAL_ARTIFACT_KEY".to_owned(), KEY.to_owned())];
    let sha = publish(
        &courses,
        "courses",
        &store,
        &env,
        &["--artifact-target", &target()],
    );
    let artifact = registry.join(format!("courses/{sha}.{}.cwasm", target()));
    assert!(
        artifact.is_file(),
        "the artifact is published beside the .wasm"
    );

    // The right key: every component deserialized, none compiled.
    let host = Fresh::start(&manifest, &dir.path().join("first"), &packaged, KEY);
    assert_eq!(host.get("/students")["items"], serde_json::json!([]));
    assert_eq!(host.get("/courses")["items"], serde_json::json!([]));
    assert_eq!(
        host.origins(),
        [pair("courses", "published"), pair("students", "packaged")]
    );
    drop(host);

    // Another key: the published artifact is refused and logged, the component compiled.
    let host = Fresh::start(
        &manifest,
        &dir.path().join("other-key"),
        &packaged,
        OTHER_KEY,
    );
    assert_eq!(host.get("/courses")["items"], serde_json::json!([]));
    assert_eq!(
        host.origins(),
        [pair("courses", "compiled"), pair("students", "packaged")]
    );
    assert!(
        host.logs().iter().any(|l| l["message"]
            == "refused the published artifact; compiling instead"
            && l["error"].as_str().unwrap().contains("MAC")),
        "no log line refusing the artifact"
    );
    drop(host);

    // A changed artifact, even with the right key, and a damaged packaged one.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&artifact, bytes).unwrap();
    let packaged_file = std::fs::read_dir(&packaged)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&packaged_file).unwrap();
    let at = middle.min(bytes.len() - 40);
    bytes[at] ^= 1;
    std::fs::write(&packaged_file, bytes).unwrap();
    let host = Fresh::start(&manifest, &dir.path().join("changed"), &packaged, KEY);
    assert_eq!(host.get("/students")["items"], serde_json::json!([]));
    assert_eq!(
        host.origins(),
        [pair("courses", "compiled"), pair("students", "compiled")]
    );
    let warnings = host
        .logs()
        .iter()
        .filter(|l| l["level"] == "WARN" && l["message"].as_str().unwrap().contains("artifact"))
        .count();
    assert_eq!(
        warnings,
        2,
        "one line per refused artifact:\n{}",
        host.stderr.lock().unwrap()
    );
}

#[test]
fn publishing_an_artifact_without_the_key_is_refused_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("dir:{}", dir.path().display());
    let out = common::registry::corral(
        &[
            "publish",
            common::paths::wasm("crud").to_str().unwrap(),
            "--component",
            "courses",
            "--store",
            &store,
            "--artifact-target",
            &target(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("artifact key"), "{stderr}");
    assert!(
        !dir.path().join("courses/versions.json").exists(),
        "nothing was published"
    );
}
