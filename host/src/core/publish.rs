//! The check `corral publish` runs before uploading: the component compiles,
//! fits the world and instantiates. Its `init` needs the grants and config of
//! the manifest that serves it, so the host runs that before it lets the
//! version serve.

use std::sync::Arc;

use anyhow::Context as _;

use crate::core::instance::ComponentContext;
use crate::core::manifest::Manifest;
use crate::core::runtime::{Runtime, RuntimeOptions};

/// Checks that `bytes` would be accepted as component `name`.
pub(crate) async fn check(name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    // A scratch host: embedded backends and an artifact cache that go away.
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let manifest = Manifest::parse("", scratch.path(), |_| None)?;
    let (backends, _) = crate::core::backends::connect(
        &manifest.backends,
        &manifest.components,
        manifest.statement_timeout(),
        scratch.path(),
        false,
    )
    .await?;
    let backends = Arc::new(backends);
    let runtime = Runtime::new(
        &manifest,
        &RuntimeOptions {
            concurrency: 1,
            artifact_dir: scratch.path().join("artifacts"),
            packaged_artifacts: None,
        },
    )?;
    let (component, digest, _) = runtime.compile(bytes).context("it is not a valid component")?;
    let context = Arc::new(ComponentContext::new(
        name.to_owned(),
        Default::default(),
        Default::default(),
        manifest.defaults,
        backends.db.clone().scoped(name, &Default::default()).await?,
        backends,
    ));
    let loaded = runtime.prepare(context, &component, digest)?;
    runtime.instantiates(&loaded).await.context("it does not start")
}

/// `bytes` compiled for `target` (a target triple) with the engine
/// configuration a host uses, serialized: the artifact to publish beside it.
pub(crate) fn precompile_for(bytes: &[u8], target: &str) -> anyhow::Result<Vec<u8>> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let manifest = Manifest::parse("", scratch.path(), |_| None)?;
    let engine = crate::core::runtime::engine(&manifest, 1, Some(target))?;
    engine
        .precompile_component(bytes)
        .map_err(|e| anyhow::anyhow!("cannot compile it for {target}: {e:?}"))
}
