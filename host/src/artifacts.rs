//! Compiled components, cached on disk by content hash and engine
//! configuration, so a restart deserializes (about a millisecond) instead
//! of compiling again.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled artifacts live.
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`.
    pub fn new(engine: &Engine, dir: PathBuf) -> ArtifactCache {
        // Artifacts of another wasmtime version or configuration must never
        // load: the key changes with both.
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ArtifactCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    /// The component for `bytes`: from the cache when present and loadable,
    /// else compiled and stored. Returns it with its sha256 digest.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> anyhow::Result<(Component, String)> {
        let digest = hex::encode(Sha256::digest(bytes));
        let path = self.dir.join(format!("{digest}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine
            // with the same compatibility hash, into the host's own cache directory.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, digest)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring an unloadable compiled artifact")
                }
            }
        }
        let component = Component::new(engine, bytes).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if let Err(e) = store(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled component");
        }
        Ok((component, digest))
    }
}

/// Writes atomically: a reader never sees half an artifact.
fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    let dir = path.parent().expect("artifact paths have a folder");
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
