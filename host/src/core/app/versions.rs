//! Which version of a component runs and where its compiled code comes
//! from: a file, or the registry (its current or pinned version), through
//! the artifact cache, a published artifact, or a compile.

use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Component;

use crate::core::artifacts::Origin;
use crate::core::manifest::WasmSource;
use crate::core::registry::Registry;
use crate::core::runtime::Runtime;

/// The longest a registry read may take before it is abandoned (a hot swap
/// check tries again on its next tick).
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// Version `digest` of `published_as`: from the artifact cache or package,
/// else from its published artifact, else compiled from its bytes.
pub(crate) async fn registry_version(
    runtime: &Runtime,
    registry: &Registry,
    published_as: &str,
    digest: &str,
) -> anyhow::Result<(Component, Origin)> {
    if let Some(found) = runtime.cached(digest) {
        return Ok(found);
    }
    let published = within(async { Ok(registry.precompiled(published_as, digest, runtime.engine()).await) });
    if let Some(component) = published.await? {
        runtime.keep(digest, &component);
        return Ok((component, Origin::Published));
    }
    let bytes = within(registry.bytes(published_as, digest)).await?;
    let (engine, cache) = runtime.compiler();
    let (component, _, origin) = tokio::task::spawn_blocking(move || cache.load(&engine, &bytes))
        .await
        .context("the compile task failed")?
        .with_context(|| format!("version {} of {published_as} is not a valid component", &digest[..12]))?;
    Ok((component, origin))
}

/// The version a component starts with, compiled (or from the artifact
/// cache), with its sha256, where it came from and, when it follows the
/// registry, its published name and the pointer's entity tag it was read at.
pub(super) async fn initial_version(
    runtime: &Runtime,
    registry: Option<&Registry>,
    name: &str,
    source: &WasmSource,
) -> anyhow::Result<(Component, String, Origin, Option<(String, Option<String>)>)> {
    match source {
        WasmSource::File(path) => {
            let (engine, cache) = runtime.compiler();
            let (path, name_owned) = (path.clone(), name.to_owned());
            let (component, digest, origin) = tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&path).with_context(|| format!("component \"{name_owned}\": cannot read {}", path.display()))?;
                cache
                    .load(&engine, &bytes)
                    .with_context(|| format!("component \"{name_owned}\": {} is not a valid component", path.display()))
            })
            .await
            .context("the load task failed")??;
            Ok((component, digest, origin, None))
        }
        WasmSource::Registry { name: published_as, pin } => {
            let registry = registry.expect("opened when a component uses it");
            let (doc, tag) = registry
                .versions(published_as)
                .await
                .with_context(|| format!("component \"{name}\": reading {published_as} in {}", registry.location()))?;
            let digest = match pin {
                Some(pin) => doc
                    .find(pin)
                    .with_context(|| format!("component \"{name}\": {published_as} in {}", registry.location()))?
                    .sha256
                    .clone(),
                None => doc.current.clone().with_context(|| {
                    format!(
                        "component \"{name}\": nothing is published as {published_as} in {}",
                        registry.location()
                    )
                })?,
            };
            let (component, origin) = registry_version(runtime, registry, published_as, &digest)
                .await
                .with_context(|| format!("component \"{name}\""))?;
            Ok((component, digest, origin, pin.is_none().then(|| (published_as.clone(), tag))))
        }
    }
}

/// `work` (a registry read), or an error once the registry has taken longer
/// than [`STORE_TIMEOUT`].
pub(crate) async fn within<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(STORE_TIMEOUT, work)
        .await
        .map_err(|_| anyhow::anyhow!("the registry did not answer within {STORE_TIMEOUT:?}"))?
}
