//! `corral serve --watch`: a component whose `source` folder changes is
//! rebuilt (`corral build`), and a component file that changes on disk (a
//! build wrote it) is compiled, linked and validated, then swapped in the
//! way a version published to the registry is. A build that fails is
//! printed, and nothing is swapped. Requests never wait; those in
//! flight finish on the version they started with, and a file that fails
//! is refused with its reason while the last good version keeps serving.
//!
//! The manifest is watched too. Routes, grants, config and backends are
//! read once at start, so a changed manifest is checked and the output says
//! whether it is valid and that a restart applies it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use sha2::Digest as _;

use crate::core::manifest::{ComponentSpec, Manifest, WasmSource};
use crate::core::runtime::{Hosted, Runtime};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(250);

/// A file's size and modification time: it changed when these do.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Starts watching the manifest at `manifest_path` and the component files
/// it names (those not from the registry).
pub(crate) fn spawn(runtime: Arc<Runtime>, manifest_path: PathBuf, manifest: &Manifest) {
    let files: Vec<(Arc<Hosted>, PathBuf)> = manifest
        .components
        .values()
        .filter_map(|spec| match &spec.wasm {
            WasmSource::File(path) => Some((runtime.component(&spec.name)?.clone(), path.clone())),
            WasmSource::Registry { .. } => None,
        })
        .collect();
    for (hosted, path) in &files {
        tracing::info!(component = %hosted.context.name, file = %path.display(), "watching the component file");
    }
    let sources: Vec<ComponentSpec> = manifest.components.values().filter(|c| c.source.is_some()).cloned().collect();
    for spec in &sources {
        let source = spec.source.as_deref().expect("filtered on it");
        tracing::info!(component = %spec.name, source = %source.display(), "watching the component's source");
    }
    tokio::spawn(async move {
        let mut stamps: Vec<Stamp> = files.iter().map(|(_, path)| stamp(path)).collect();
        let mut edited: Vec<Option<SystemTime>> = sources.iter().map(source_stamp).collect();
        let mut manifest_stamp = stamp(&manifest_path);
        loop {
            tokio::time::sleep(POLL).await;
            for (i, spec) in sources.iter().enumerate() {
                let now = source_stamp(spec);
                if now == edited[i] {
                    continue;
                }
                edited[i] = now;
                let spec = spec.clone();
                let name = spec.name.clone();
                // The new file, if any, is swapped in by the file watch below.
                match tokio::task::spawn_blocking(move || crate::devtools::build::build_one(&spec)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(component = %name, reason = %format!("{e:#}"), "the build failed; the last good version keeps serving")
                    }
                    Err(e) => tracing::error!(component = %name, error = %e, "the build task failed"),
                }
            }
            for (i, (hosted, path)) in files.iter().enumerate() {
                let now = stamp(path);
                if now == stamps[i] || now.is_none() {
                    continue;
                }
                // Read once the writer is done: the file holds still for a poll.
                tokio::time::sleep(POLL).await;
                if stamp(path) != now {
                    continue;
                }
                stamps[i] = now;
                reload(&runtime, hosted, path).await;
            }
            let now = stamp(&manifest_path);
            if now != manifest_stamp {
                manifest_stamp = now;
                match Manifest::load(&manifest_path, |k| std::env::var(k).ok()) {
                    Ok(_) => tracing::warn!(
                        manifest = %manifest_path.display(),
                        "the manifest changed; restart corral serve to apply it (routes, grants, config and backends are read at start)"
                    ),
                    Err(e) => {
                        tracing::error!(manifest = %manifest_path.display(), error = %e, "the manifest changed and is not valid; the running one keeps serving")
                    }
                }
            }
        }
    });
}

fn source_stamp(spec: &ComponentSpec) -> Option<SystemTime> {
    crate::devtools::build::newest(spec.source.as_deref())
}

/// Compiles, links and validates the component file at `path` and swaps it
/// in; a file that fails leaves the serving version in place.
async fn reload(runtime: &Runtime, hosted: &Hosted, path: &Path) {
    let name = hosted.context.name.as_str();
    let serving = hosted.current();
    let started = Instant::now();
    let loaded = async {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        if digest == serving.digest {
            return Ok(None);
        }
        let (engine, cache) = runtime.compiler();
        let (component, digest, _) = tokio::task::spawn_blocking(move || cache.load(&engine, &bytes))
            .await
            .context("the compile task failed")?
            .context("it is not a valid component")?;
        let loaded = runtime.prepare(hosted.context.clone(), &component, digest)?;
        runtime.validate(&loaded).await.context("it does not start")?;
        anyhow::Ok(Some(loaded))
    };
    match loaded.await {
        Ok(None) => {}
        Ok(Some(loaded)) => {
            let to = loaded.version().to_owned();
            let old = hosted.swap(Arc::new(loaded));
            tracing::info!(
                component = name,
                from = old.version(),
                to = %to,
                ms = started.elapsed().as_millis() as u64,
                "swapped in a new version"
            );
        }
        Err(e) => tracing::error!(
            component = name,
            file = %path.display(),
            serving = serving.version(),
            reason = %format!("{e:#}"),
            "refused a new version; the current one keeps serving"
        ),
    }
}
