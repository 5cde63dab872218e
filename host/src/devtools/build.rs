//! `corral build [NAME…]`: builds each component that names its `source`
//! folder in the manifest into the file its `wasm` names, whatever its
//! language. The language is read from the folder: `Cargo.toml` is Rust
//! (cargo, for wasm32-wasip2), `app.py` Python (componentize-py), `app.js`
//! JavaScript (rolldown, then componentize-js). The WIT and the Python and
//! JavaScript SDKs come from the corral checkout ([`home`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::core::manifest::{ComponentSpec, Manifest, WasmSource};

/// The language of a component's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    /// A cdylib crate on the Rust SDK.
    Rust,
    /// An `app.py` on the Python SDK.
    Python,
    /// An `app.js` on the JavaScript SDK.
    JavaScript,
}

impl Language {
    /// The language of the source in `dir`.
    pub(crate) fn of(dir: &Path) -> anyhow::Result<Language> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Language::Rust)
        } else if dir.join("app.py").is_file() {
            Ok(Language::Python)
        } else if dir.join("app.js").is_file() {
            Ok(Language::JavaScript)
        } else {
            bail!("{} holds no Cargo.toml, app.py or app.js", dir.display())
        }
    }
}

/// The corral checkout whose WIT and SDKs components build against:
/// `CORRAL_HOME`, else the one this binary was built from.
pub(crate) fn home() -> PathBuf {
    std::env::var_os("CORRAL_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// The versions the test command installs (scripts/lib.sh).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
const JS_TOOLS: &str = "@bytecodealliance/componentize-js@0.23.0 rolldown@1.3.3";

/// Builds the components named in `names` (all that have a `source`, when
/// empty), printing progress to stderr.
pub(crate) fn build(manifest: &Manifest, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        let spec = manifest
            .components
            .get(name)
            .with_context(|| format!("the manifest has no component \"{name}\""))?;
        if spec.source.is_none() {
            bail!("component \"{name}\" names no source folder: add source = \"components/{name}\" to its manifest entry");
        }
    }
    let chosen: Vec<&ComponentSpec> = manifest
        .components
        .values()
        .filter(|c| c.source.is_some() && (names.is_empty() || names.contains(&c.name)))
        .collect();
    if chosen.is_empty() {
        eprintln!("no component names a source folder (source = \"components/NAME\"): nothing to build");
    }
    for spec in chosen {
        build_one(spec)?;
    }
    Ok(())
}

/// Builds one component into its `wasm` file.
pub(crate) fn build_one(spec: &ComponentSpec) -> anyhow::Result<()> {
    let name = &spec.name;
    let source = spec.source.as_ref().context("no source folder")?;
    let WasmSource::File(out) = &spec.wasm else {
        bail!("component \"{name}\" comes from the registry: build it and `corral publish` the file");
    };
    let language = Language::of(source).with_context(|| format!("component \"{name}\""))?;
    let home = home();
    let sdk = home.join("components").join(match language {
        Language::Rust => "sdk",
        Language::Python => "sdk-python",
        Language::JavaScript => "sdk-js",
    });
    let built = std::fs::metadata(out).and_then(|m| m.modified()).ok();
    let changed = newest([source.as_path(), &sdk, &home.join("wit")]);
    if let (Some(built), Some(changed)) = (built, changed)
        && built > changed
    {
        eprintln!("{name} is up to date ({})", out.display());
        return Ok(());
    }
    let started = Instant::now();
    eprintln!("building {name} ({language:?}) from {}", source.display());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let built = match language {
        Language::Rust => rust(source, out),
        Language::Python => python(source, out),
        Language::JavaScript => javascript(source, out),
    };
    built.with_context(|| format!("component \"{name}\" did not build"))?;
    eprintln!("built {name} into {} in {:.1} s", out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// The newest modification time of the files under `dirs`, build output
/// and caches left out.
pub(crate) fn newest<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Option<std::time::SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || ["target", "node_modules", "__pycache__"].contains(&name.as_ref()) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&entry.path(), newest);
            } else if let Ok(modified) = meta.modified() {
                *newest = (*newest).max(Some(modified));
            }
        }
    }
    let mut found = None;
    for dir in dirs {
        walk(dir, &mut found);
    }
    found
}

/// Runs `command`, its output shown; fails with `what` when it fails.
fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn rust(source: &Path, out: &Path) -> anyhow::Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if installed.is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "wasm32-wasip2")) {
        bail!("the Rust target wasm32-wasip2 is missing: rustup target add wasm32-wasip2");
    }
    let output = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(source.join("Cargo.toml"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo: install Rust from https://rustup.rs")?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    // The .wasm cargo reports for the crate itself (the last artifact).
    let wasm = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm: the crate needs [lib] crate-type = [\"cdylib\"]")?;
    std::fs::copy(&wasm, out).with_context(|| format!("copying {} to {}", wasm.display(), out.display()))?;
    Ok(())
}

fn python(source: &Path, out: &Path) -> anyhow::Result<()> {
    if !have("componentize-py", "--version") {
        bail!("componentize-py is missing: python3 -m pip install {COMPONENTIZE_PY}");
    }
    let home = home();
    let mut command = Command::new("componentize-py");
    command
        .arg("-d")
        .arg(home.join("wit"))
        .args(["-w", "service-with-http", "componentize", "-p"])
        .arg(source)
        .arg("-p")
        .arg(home.join("components/sdk-python"))
        .arg("app")
        .arg("-o")
        .arg(out)
        .stdout(Stdio::null());
    run(command, "componentize-py")
}

fn javascript(source: &Path, out: &Path) -> anyhow::Result<()> {
    let home = home();
    let tools = js_tools()?;
    let bin = tools.join("node_modules/.bin");
    let bundle = out.with_extension("bundle.js");
    let mut rolldown = Command::new(bin.join("rolldown"));
    rolldown
        .arg("-c")
        .arg(home.join("components/sdk-js/rolldown.config.mjs"))
        .env("CORRAL_JS_ENTRY", source.join("app.js"))
        .env("CORRAL_JS_BUNDLE", &bundle)
        .stdout(Stdio::null());
    run(rolldown, "rolldown")?;
    let mut componentize = Command::new(bin.join("componentize-js"));
    componentize
        .arg("--wit")
        .arg(home.join("wit"))
        .args(["--world-name", "service-with-http", "--out"])
        .arg(out)
        .arg(&bundle)
        .stdout(Stdio::null());
    run(componentize, "componentize-js")
}

/// Where componentize-js and rolldown are: the checkout's `target/js-tools`
/// when the test command installed them there, else installed from npm
/// into the user's cache.
fn js_tools() -> anyhow::Result<PathBuf> {
    let checkout = home().join("target/js-tools");
    if checkout.join("node_modules/.bin/componentize-js").exists() {
        return Ok(checkout);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .context("neither XDG_CACHE_HOME nor HOME is set")?
        .join("corral/js-tools");
    if cache.join("node_modules/.bin/componentize-js").exists() {
        return Ok(cache);
    }
    if !have("npm", "--version") {
        bail!("npm is missing: JavaScript components need Node.js and npm (Debian: apt-get install nodejs npm)");
    }
    eprintln!("installing {JS_TOOLS} from npm into {}", cache.display());
    std::fs::create_dir_all(&cache)?;
    let mut npm = Command::new("npm");
    npm.args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
        .arg(&cache)
        .args(JS_TOOLS.split(' '));
    run(npm, "npm install")?;
    Ok(cache)
}
