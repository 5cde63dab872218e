//! How the host starts: connect the backends, build the engine, load
//! every component (running its `init`), build the router and follow the
//! registry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::versions::initial_version;
use super::{App, AppOptions, Target};
use crate::capability::auth::AuthSpec;
use crate::capability::auth::{CognitoVerifier, DevKeys, Verifier};
use crate::core::artifacts::Origin;
use crate::core::backends::Backends;
use crate::core::hotswap::HotSwap;
use crate::core::init_marks::InitMarks;
use crate::core::instance::ComponentContext;
use crate::core::manifest::{ComponentSpec, EventSourceSpec, Manifest};
use crate::core::registry::Registry;
use crate::core::router::{Route, Router, Template};
use crate::core::runtime::{Loaded, Runtime, RuntimeOptions};
use crate::serve::ChangeFeed;

impl App {
    /// Connects the backends the manifest names and loads every component.
    pub async fn start(manifest: &Manifest, options: &AppOptions) -> anyhow::Result<App> {
        refuse_registry_bucket_events(manifest)?;
        std::fs::create_dir_all(&options.data_dir)?;
        // The engine and its instance pool are built on a blocking thread
        // while the backends connect.
        let engine = {
            let (manifest, runtime_options) = (manifest.clone(), runtime_options(options));
            tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let runtime = Runtime::new(&manifest, &runtime_options);
                log_phase("engine", None, Some("backends"), started);
                runtime
            })
        };
        let started = Instant::now();
        let (backends, changes) = crate::core::backends::connect(
            &manifest.backends,
            &manifest.components,
            manifest.statement_timeout(),
            &options.data_dir,
            options.local_stream,
        )
        .await?;
        let verifier: Arc<dyn Verifier> = match manifest.backends.auth.as_ref().unwrap_or(&AuthSpec::Dev { signing_key: None }) {
            AuthSpec::Dev { signing_key: None } => Arc::new(DevKeys::load_or_create(&options.data_dir)?),
            AuthSpec::Dev { signing_key: Some(value) } => {
                let key = crate::capability::config::setting_value(value, backends.aws.as_ref(), "the dev signing key").await?;
                Arc::new(DevKeys::from_configured(&key)?)
            }
            AuthSpec::Cognito { issuer, clients, jwks_url } => {
                let verifier = CognitoVerifier::new(issuer.clone(), clients.clone(), jwks_url.clone());
                // Fetched now so the first request does not wait; a failure here
                // is retried when a token arrives.
                if let Err(e) = verifier.refresh().await {
                    tracing::warn!(error = %e, "cannot fetch the user pool's keys yet");
                }
                Arc::new(verifier)
            }
        };
        let runtime = engine.await.context("the engine task failed")??;
        log_phase("backends", None, None, started);
        App::with_runtime(manifest, Arc::new(backends), changes, verifier, runtime).await
    }

    /// Loads every component of the manifest over the connected backends:
    /// from its file, or from the registry (then followed as new versions
    /// are published, unless pinned).
    async fn with_runtime(
        manifest: &Manifest,
        backends: Arc<Backends>,
        changes: Option<ChangeFeed>,
        verifier: Arc<dyn Verifier>,
        mut runtime: Runtime,
    ) -> anyhow::Result<App> {
        // Built whether served or not, so a bad schema file stops the start.
        let document = crate::core::openapi::document(manifest).map_err(anyhow::Error::msg)?;
        let openapi = manifest
            .openapi
            .as_ref()
            .is_some_and(|o| o.serve)
            .then(|| serde_json::to_vec(&document).expect("a JSON value serializes"));
        let registry = match &manifest.backends.registry {
            Some(spec) if manifest.uses_registry() => {
                let key = match &spec.artifact_key {
                    Some(value) => crate::core::registry::artifact::resolve_key(value, backends.aws.as_ref())
                        .await
                        .map_err(|e| tracing::warn!(error = %format!("{e:#}"), "no artifact key; published artifacts are not loaded"))
                        .ok(),
                    None => None,
                };
                let registry = Registry::open(&spec.location()?, backends.aws.as_ref())?.with_artifact_key(key);
                Some(Arc::new(registry))
            }
            _ if manifest.uses_registry() => {
                anyhow::bail!(
                    "manifest: components come from the registry, but no store is set: add [backends.registry] store = \"s3://BUCKET/PREFIX\" or \"dir:PATH\", or pass --store"
                )
            }
            _ => None,
        };
        let started = Instant::now();
        let marks = Arc::new(InitMarks::open(backends.db.clone(), backends.dialect).await?);
        log_phase("init marks", None, None, started);
        // Every component at once: artifacts are read and deserialized on
        // blocking threads while the database roles are set up and the other
        // components' `init`s run.
        let started = Instant::now();
        let loads = manifest
            .components
            .iter()
            .map(|(name, spec)| load_component(&runtime, registry.as_deref(), &backends, &marks, name, spec));
        let loaded = futures_util::future::join_all(loads).await;
        log_phase("components", None, None, started);
        let mut followed = Vec::new();
        // The first failure in manifest order, whichever finished first.
        for result in loaded {
            let (loaded, follow) = result?;
            let hosted = runtime.add(loaded);
            if let Some((published_as, tag)) = follow {
                followed.push((hosted, published_as, tag));
            }
        }
        let mut routes = Vec::new();
        for (name, spec) in &manifest.components {
            let component = runtime.component(name).expect("every manifest component is loaded").clone();
            for r in &spec.routes {
                let full = if r.path == "/" && !spec.mount.is_empty() {
                    spec.mount.clone()
                } else {
                    format!("{}{}", spec.mount, r.path)
                };
                let template = Template::parse(&full).map_err(|e| anyhow::anyhow!("component \"{name}\": route \"{full}\": {e}"))?;
                routes.push(Route {
                    template,
                    methods: r.methods.clone(),
                    target: Target {
                        component: component.clone(),
                        mount: spec.mount.clone(),
                        mount_depth: spec.mount.split('/').filter(|s| !s.is_empty()).count(),
                        route: r.path.clone(),
                        access: r.access,
                        groups: r.groups.clone(),
                        max_body_bytes: spec.limits.max_body_bytes,
                    },
                });
            }
        }
        let router = Router::new(routes).map_err(|e| anyhow::anyhow!("manifest: {e}"))?;
        let consumers = manifest
            .components
            .iter()
            .flat_map(|(name, spec)| {
                let component = runtime.component(name).expect("every manifest component is loaded").clone();
                spec.events.iter().map(move |e| (component.clone(), e.clone()))
            })
            .collect();
        let runtime = Arc::new(runtime);
        let hot_swap = match (registry, &manifest.backends.registry) {
            (Some(registry), Some(spec)) if !followed.is_empty() => {
                let hot_swap = Arc::new(HotSwap::new(
                    runtime.clone(),
                    registry,
                    marks,
                    followed,
                    Duration::from_secs(spec.check_seconds),
                ));
                hot_swap.spawn();
                Some(hot_swap)
            }
            _ => None,
        };
        Ok(App {
            router,
            cors: manifest.cors.clone(),
            runtime,
            consumers,
            verifier,
            max_body_bytes: manifest.max_body_bytes(),
            cache_stores: manifest.components.values().flat_map(|c| c.grants.caches.iter().cloned()).collect(),
            cache_layouts: manifest.backends.cache.layouts().clone(),
            changes,
            hot_swap,
            openapi,
        })
    }
}

/// The registry bucket's notifications reload components; a component
/// may not take them as its own object events.
fn refuse_registry_bucket_events(manifest: &Manifest) -> anyhow::Result<()> {
    let Some(spec) = &manifest.backends.registry else {
        return Ok(());
    };
    let location = spec.location()?;
    for (name, component) in &manifest.components {
        for event in &component.events {
            if let EventSourceSpec::Bucket(bucket) = &event.source
                && location.bucket() == Some(bucket.as_str())
            {
                anyhow::bail!(
                    "component \"{name}\": events: bucket \"{bucket}\" holds the component registry; its notifications reload components"
                );
            }
        }
    }
    Ok(())
}

/// One line per start-up phase, for the cold-start benchmark and for
/// reading a slow start in the logs. A phase that runs at the same time as
/// others names the phase it lies `within`.
fn log_phase(phase: &str, component: Option<(&str, Origin)>, within: Option<&str>, started: Instant) {
    let us = started.elapsed().as_micros() as u64;
    match component {
        Some((name, origin)) => tracing::info!(phase, component = name, origin = origin.as_str(), within, us, "start-up phase"),
        None => tracing::info!(phase, within, us, "start-up phase"),
    }
}

/// The runtime settings of `options`.
fn runtime_options(options: &AppOptions) -> RuntimeOptions {
    RuntimeOptions {
        concurrency: options.concurrency,
        artifact_dir: options.artifact_dir.clone().unwrap_or_else(|| options.data_dir.join("artifacts")),
        packaged_artifacts: options.packaged_artifacts.clone(),
    }
}

/// One manifest component, linked and started: its database handle, its
/// version (deserialized or compiled), and its `init`, unless that very
/// `init` already ran against this database. A component whose `init` fails
/// stops the start.
async fn load_component(
    runtime: &Runtime,
    registry: Option<&Registry>,
    backends: &Arc<Backends>,
    marks: &InitMarks,
    name: &str,
    spec: &ComponentSpec,
) -> anyhow::Result<(Loaded, Option<(String, Option<String>)>)> {
    let started = Instant::now();
    let (db, version) = tokio::join!(
        backends.db.clone().scoped(name, &spec.grants.tables),
        initial_version(runtime, registry, name, &spec.wasm)
    );
    let context = Arc::new(ComponentContext::new(
        name.to_owned(),
        spec.grants.clone(),
        spec.config.clone(),
        spec.limits,
        db?,
        backends.clone(),
    ));
    let (component, digest, origin, follow) = version?;
    log_phase("load", Some((name, origin)), Some("components"), started);
    let loaded = runtime.prepare(context, &component, digest)?;
    let init_started = Instant::now();
    let fingerprint = InitMarks::fingerprint(&loaded.context, &loaded.digest);
    if marks.already_ran(name, &fingerprint) {
        // Its `init` ran against this database with the same bytes, grants
        // and config; what is left to check is that it instantiates.
        runtime
            .instantiates(&loaded)
            .await
            .map_err(|e| anyhow::anyhow!("component \"{name}\" refused to start: {e}"))?;
        tracing::info!(component = %name, digest = loaded.version(), "init already ran for this version; skipped");
        log_phase("init skipped", Some((name, origin)), Some("components"), init_started);
    } else {
        runtime
            .validate(&loaded)
            .await
            .map_err(|e| anyhow::anyhow!("component \"{name}\" refused to start: {e}"))?;
        if let Err(e) = marks.mark(name, &fingerprint).await {
            tracing::warn!(component = %name, error = %format!("{e:#}"), "could not mark the init as done; the next start runs it again");
        }
        log_phase("init", Some((name, origin)), Some("components"), init_started);
    }
    tracing::info!(
        component = %name,
        digest = loaded.version(),
        origin = origin.as_str(),
        ms = started.elapsed().as_millis() as u64,
        "component ready"
    );
    Ok((loaded, follow))
}
