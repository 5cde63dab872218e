//! The in-process harness: a `corral::App` started on a manifest in a fresh
//! temporary directory and called directly, with no server, socket or
//! subprocess in between. For cases on the embedded backends that need no
//! restart, signal or log line.

use std::path::{Path, PathBuf};

use corral::{App, AppOptions, Manifest, Request};

use super::manifests::resolve_wasm;
use super::paths::artifact_dir;
use super::reply::Reply;
use super::tokens::issue_token;

/// An `App` on the embedded backends, with its manifest and data directory
/// in a temporary directory that goes with it.
pub struct InProcess {
    // Declared first so that it is dropped before its directory.
    app: App,
    dir: tempfile::TempDir,
}

impl InProcess {
    /// Writes `manifest_toml` (with `{WASM}` filled in) into a fresh
    /// directory and starts an `App` on it, as `corral serve` would.
    pub async fn start(manifest_toml: &str) -> InProcess {
        let (dir, app) = start(manifest_toml).await;
        let app = app.unwrap_or_else(|e| {
            panic!("the app did not start: {e:#}\n--- manifest ---\n{manifest_toml}")
        });
        InProcess { app, dir }
    }

    /// Starts an `App` on a manifest it must refuse, and returns why.
    pub async fn refused(manifest_toml: &str) -> String {
        match start(manifest_toml).await.1 {
            Ok(_) => panic!("the app should have refused the manifest, but it started"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// The manifest file the app serves.
    pub fn manifest_path(&self) -> PathBuf {
        manifest_path(self.dir.path())
    }

    /// A token for `sub` in `groups`, signed with this app's key.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        issue_token(&data_dir(self.dir.path()), sub, groups)
    }

    /// Answers `request`, checked as an answer over HTTP is.
    pub async fn send(&self, request: Request) -> Reply {
        Reply::from_app(self.app.handle(request).await)
    }

    /// `GET path`, anonymous.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(request("GET", path, &[])).await
    }
}

/// `method path` (which may carry a query) with `headers`, as the local
/// server hands a request to the app.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned()))
            .collect(),
        ..Request::default()
    }
}

fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("corral.toml")
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// A fresh directory with the manifest in it, and the app started there.
async fn start(manifest_toml: &str) -> (tempfile::TempDir, anyhow::Result<App>) {
    let dir = tempfile::Builder::new()
        .prefix("corral-in-process-")
        .tempdir()
        .expect("creating a temporary directory");
    let path = manifest_path(dir.path());
    std::fs::write(&path, resolve_wasm(manifest_toml)).expect("writing the manifest");
    // What `corral serve` uses, but for the shared artifact cache.
    let options = AppOptions {
        data_dir: data_dir(dir.path()),
        artifact_dir: Some(artifact_dir()),
        packaged_artifacts: None,
        concurrency: 32,
        local_stream: true,
    };
    let app = match Manifest::load(&path, |name| std::env::var(name).ok()) {
        Ok(manifest) => App::start(&manifest, &options).await,
        Err(e) => Err(e.into()),
    };
    (dir, app)
}
