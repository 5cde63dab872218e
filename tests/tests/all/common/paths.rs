//! Where things are: the workspace, its target directory, the `corral`
//! binary (built on first use) and the built components.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How to build what the tests run.
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
