//! Compiled components, cached on disk by content hash and engine
//! configuration, so a restart deserializes (about a millisecond) instead
//! of compiling again.
//!
//! Loading native code from a file trusts that file completely, so an
//! artifact is loaded only when it is intact (a sha256 trailer over its
//! bytes) and wasmtime accepts it for this engine (its own version and
//! configuration check). Anything else is compiled again and replaced.
//!
//! A deployment package may carry artifacts too (`corral compile`), in a
//! read-only folder that is searched after the writable cache: a new Lambda
//! environment starts with an empty `/tmp` but the package is already on
//! disk. Packaged artifacts are named by content hash alone, so one built
//! for another engine configuration or CPU is tried, refused by wasmtime
//! with a log line, and the component is compiled instead.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Length of the integrity trailer: a sha256 of the serialized component.
const TRAILER: usize = 32;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Deserialized from the writable cache.
    Cached,
    /// Deserialized from the deployment package's artifacts.
    Packaged,
    /// Deserialized from an artifact published to the registry with a valid MAC.
    Published,
    /// Compiled from its bytes (and cached for next time).
    Compiled,
}

/// Where compiled artifacts live.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    packaged: Option<PathBuf>,
}

impl Origin {
    /// How logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cached => "cached",
            Origin::Packaged => "packaged",
            Origin::Published => "published",
            Origin::Compiled => "compiled",
        }
    }
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`.
    pub fn new(engine: &Engine, dir: PathBuf) -> ArtifactCache {
        // Artifacts of another wasmtime version or configuration get another
        // name, so they are not even tried.
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        ArtifactCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            packaged: None,
        }
    }

    /// Also searches the read-only folder `dir` of packaged artifacts, after `self`'s own.
    pub fn with_packaged(mut self, dir: Option<PathBuf>) -> ArtifactCache {
        self.packaged = dir;
        self
    }

    /// The file name of a packaged artifact: the component's sha256 alone.
    pub fn packaged_name(digest: &str) -> String {
        format!("{digest}.cwasm")
    }

    /// The artifact file of the component whose bytes hash to `digest`.
    pub fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The cached component with sha256 `digest`, when its artifact is
    /// present, intact and accepted by `engine`: from the writable cache,
    /// else from the package.
    pub fn cached(&self, engine: &Engine, digest: &str) -> Option<(Component, Origin)> {
        if let Some(component) = read_artifact(engine, &self.path(digest)) {
            return Some((component, Origin::Cached));
        }
        let packaged = self.packaged.as_ref()?.join(Self::packaged_name(digest));
        read_artifact(engine, &packaged).map(|component| (component, Origin::Packaged))
    }

    /// Keeps `component` (sha256 `digest`) in the writable cache.
    pub fn keep(&self, digest: &str, component: &Component) {
        let path = self.path(digest);
        if let Err(e) = store(&path, component) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled component");
        }
    }

    /// The component for `bytes`: from the cache when usable, else compiled
    /// and stored. Returns it with its sha256 digest and where it came from.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> anyhow::Result<(Component, String, Origin)> {
        let digest = hex::encode(Sha256::digest(bytes));
        if let Some((component, origin)) = self.cached(engine, &digest) {
            return Ok((component, digest, origin));
        }
        // Hosts sharing the folder compile a component once: the others wait
        // for the first and read its artifact. Blocks: called off the async
        // threads.
        let _compiling = self.compile_lock(&digest);
        if let Some(component) = read_artifact(engine, &self.path(&digest)) {
            return Ok((component, digest, Origin::Cached));
        }
        let component = Component::new(engine, bytes).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        self.keep(&digest, &component);
        Ok((component, digest, Origin::Compiled))
    }

    /// An exclusive lock on compiling `digest` into this folder, held until
    /// dropped; none when the folder cannot hold a lock file (then each
    /// host compiles on its own, as before).
    fn compile_lock(&self, digest: &str) -> Option<std::fs::File> {
        std::fs::create_dir_all(&self.dir).ok()?;
        let file = std::fs::File::create(self.dir.join(format!(".{digest}-{}.lock", self.engine_key))).ok()?;
        file.lock().ok()?;
        Some(file)
    }
}

/// The component in the artifact file at `path`, when it is there, intact
/// and accepted by `engine`; a refused one is logged.
fn read_artifact(engine: &Engine, path: &Path) -> Option<Component> {
    let file = std::fs::read(path).ok()?;
    match verified(&file).and_then(|code| {
        // SAFETY: the bytes are exactly what `Component::serialize` wrote
        // (the trailer checks that), and wasmtime refuses artifacts of
        // another version, engine configuration or CPU.
        unsafe { Component::deserialize(engine, code) }.map_err(|e| anyhow::anyhow!("{e:#}"))
    }) {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable compiled artifact; compiling again");
            None
        }
    }
}

/// Compiles `bytes` with `engine` (which may target another CPU) into an
/// artifact file at `path`, in the form [`ArtifactCache`] reads.
pub(crate) fn precompile(engine: &Engine, bytes: &[u8], path: &Path) -> anyhow::Result<()> {
    let code = engine.precompile_component(bytes).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    write_with_trailer(path, code)
}

/// The serialized component in `file`, if its trailer matches.
fn verified(file: &[u8]) -> anyhow::Result<&[u8]> {
    anyhow::ensure!(file.len() > TRAILER, "the artifact is truncated");
    let (code, trailer) = file.split_at(file.len() - TRAILER);
    anyhow::ensure!(
        Sha256::digest(code)[..] == *trailer,
        "the artifact's checksum does not match: it is damaged"
    );
    Ok(code)
}

/// Writes atomically: a reader never sees half an artifact.
fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    write_with_trailer(path, component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?)
}

fn write_with_trailer(path: &Path, mut bytes: Vec<u8>) -> anyhow::Result<()> {
    let dir = path.parent().expect("artifact paths have a folder");
    std::fs::create_dir_all(dir)?;
    let trailer = Sha256::digest(&bytes);
    bytes.extend_from_slice(&trailer);
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component there is: `(component)` in binary form.
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine(epochs: bool) -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(epochs);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn a_second_load_deserializes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(true);
        let cache = ArtifactCache::new(&engine, dir.path().to_owned());
        let bytes = EMPTY;
        assert_eq!(cache.load(&engine, bytes).unwrap().2, Origin::Compiled);
        assert_eq!(cache.load(&engine, bytes).unwrap().2, Origin::Cached);
    }

    #[test]
    fn damaged_artifacts_are_compiled_again_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(true);
        let cache = ArtifactCache::new(&engine, dir.path().to_owned());
        let bytes = EMPTY;
        let (_, digest, _) = cache.load(&engine, bytes).unwrap();
        let path = cache.path(&digest);
        let good = std::fs::read(&path).unwrap();

        // One flipped bit in the code.
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(cache.cached(&engine, &digest).is_none());
        assert_eq!(cache.load(&engine, bytes).unwrap().2, Origin::Compiled);
        assert_eq!(std::fs::read(&path).unwrap(), good, "the damaged artifact was replaced");

        // Cut short.
        std::fs::write(&path, &good[..good.len() / 3]).unwrap();
        assert_eq!(cache.load(&engine, bytes).unwrap().2, Origin::Compiled);
        assert_eq!(cache.load(&engine, bytes).unwrap().2, Origin::Cached);
    }

    #[test]
    fn artifacts_of_another_engine_configuration_are_compiled_again_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let ours = engine(true);
        let foreign = engine(false);
        let bytes = EMPTY;
        let ours_cache = ArtifactCache::new(&ours, dir.path().to_owned());
        let foreign_cache = ArtifactCache::new(&foreign, dir.path().to_owned());
        assert_ne!(ours_cache.path("x"), foreign_cache.path("x"), "another configuration, another name");

        // An intact artifact of the other engine, under our engine's name.
        let (_, digest, _) = foreign_cache.load(&foreign, bytes).unwrap();
        std::fs::copy(foreign_cache.path(&digest), ours_cache.path(&digest)).unwrap();
        assert!(ours_cache.cached(&ours, &digest).is_none(), "wasmtime must refuse it");
        assert_eq!(ours_cache.load(&ours, bytes).unwrap().2, Origin::Compiled);
        assert_eq!(ours_cache.load(&ours, bytes).unwrap().2, Origin::Cached);
    }

    #[test]
    fn packaged_artifacts_load_after_the_writable_cache_and_bad_ones_are_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let package = tempfile::tempdir().unwrap();
        let engine = engine(true);
        let digest = hex::encode(Sha256::digest(EMPTY));
        let packaged = package.path().join(ArtifactCache::packaged_name(&digest));
        precompile(&engine, EMPTY, &packaged).unwrap();
        let cache = ArtifactCache::new(&engine, dir.path().join("a")).with_packaged(Some(package.path().to_owned()));
        assert_eq!(cache.load(&engine, EMPTY).unwrap().2, Origin::Packaged);
        assert!(!cache.path(&digest).exists(), "a packaged artifact is not copied");

        // Damaged: compiled, and the writable cache then serves it.
        let good = std::fs::read(&packaged).unwrap();
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 1;
        std::fs::write(&packaged, &flipped).unwrap();
        assert_eq!(cache.load(&engine, EMPTY).unwrap().2, Origin::Compiled);
        assert_eq!(cache.load(&engine, EMPTY).unwrap().2, Origin::Cached);
    }

    #[test]
    fn packaged_artifacts_for_another_cpu_or_configuration_are_refused() {
        let ours = engine(true);
        let digest = hex::encode(Sha256::digest(EMPTY));
        let other_cpu = {
            let mut config = wasmtime::Config::new();
            let foreign = if cfg!(target_arch = "aarch64") {
                "x86_64-unknown-linux-gnu"
            } else {
                "aarch64-unknown-linux-gnu"
            };
            config.wasm_component_model(true).epoch_interruption(true).target(foreign).unwrap();
            Engine::new(&config).unwrap()
        };
        for foreign in [other_cpu, engine(false)] {
            let dir = tempfile::tempdir().unwrap();
            let package = tempfile::tempdir().unwrap();
            precompile(&foreign, EMPTY, &package.path().join(ArtifactCache::packaged_name(&digest))).unwrap();
            let cache = ArtifactCache::new(&ours, dir.path().to_owned()).with_packaged(Some(package.path().to_owned()));
            assert!(cache.cached(&ours, &digest).is_none(), "wasmtime must refuse it");
            assert_eq!(cache.load(&ours, EMPTY).unwrap().2, Origin::Compiled);
        }
    }
}
