//! Hot swap: components published to the registry replace the running
//! version without a restart.
//!
//! Each followed component (`wasm = "registry:NAME"` without a pinned
//! version) is checked in the background: the entity tag of its pointer
//! document every `check_seconds`, and at once when an S3 notification or
//! a reload signal arrives. A new current version is fetched (or taken from
//! the artifact cache), compiled on a blocking thread, linked against the
//! world and validated, and only then swapped in. Requests never wait for
//! any of this; a version that fails is refused with a logged reason, and
//! the old one keeps serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::core::app::versions::{registry_version, within};
use crate::core::init_marks::InitMarks;
use crate::core::registry::{Registry, StoreLocation};
use crate::core::runtime::{Hosted, Loaded, Runtime};

/// A component whose current version is followed.
struct Followed {
    hosted: Arc<Hosted>,
    /// Its name in the registry.
    published_as: String,
    /// The pointer document's entity tag at the last check; one check at a
    /// time per component.
    seen: tokio::sync::Mutex<Option<String>>,
}

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The current version is the one serving.
    Unchanged,
    /// A new version serves new requests (its digest).
    Swapped(String),
    /// The current version was refused; the old one keeps serving.
    Refused(String),
}

/// Follows the registry for the components that come from it.
pub struct HotSwap {
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    /// Where a validated version's `init` is marked as the last that ran.
    marks: Arc<InitMarks>,
    followed: Vec<Followed>,
    interval: Duration,
    wake: tokio::sync::Notify,
}

impl HotSwap {
    /// Follows `components` (each with its registry name and the pointer tag
    /// it was loaded at) in `registry`, checking every `interval`.
    pub fn new(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        marks: Arc<InitMarks>,
        components: Vec<(Arc<Hosted>, String, Option<String>)>,
        interval: Duration,
    ) -> HotSwap {
        let followed = components
            .into_iter()
            .map(|(hosted, published_as, tag)| Followed {
                hosted,
                published_as,
                seen: tokio::sync::Mutex::new(tag),
            })
            .collect();
        HotSwap {
            runtime,
            registry,
            marks,
            followed,
            interval,
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Where the registry lives.
    pub fn location(&self) -> &StoreLocation {
        self.registry.location()
    }

    /// Starts the background checks. Under Lambda the process is frozen
    /// between invocations; a tick that came due meanwhile runs on thaw,
    /// alongside the invocation, never in front of it.
    pub fn spawn(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(this.interval) => {}
                    _ = this.wake.notified() => {}
                }
                this.check(None, false).await;
            }
        });
    }

    /// Asks the background task for a check now, without waiting for it.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Checks the followed components published as `names` (all when
    /// `None`) and swaps in new current versions. With `force`, the pointer
    /// document is read even when its tag did not change, and a version
    /// refused before is tried again.
    pub async fn check(&self, names: Option<&[String]>, force: bool) -> Vec<(String, Outcome)> {
        let mut outcomes = Vec::new();
        for followed in self.followed.iter().filter(|f| names.is_none_or(|n| n.contains(&f.published_as))) {
            let name = followed.hosted.context.name.clone();
            match self.check_one(followed, force).await {
                Ok(outcome) => outcomes.push((name, outcome)),
                Err(e) => {
                    tracing::warn!(component = %name, registry = %self.registry.location(), error = %format!("{e:#}"), "cannot check the registry; trying again later");
                }
            }
        }
        outcomes
    }

    async fn check_one(&self, followed: &Followed, force: bool) -> anyhow::Result<Outcome> {
        let name = &followed.published_as;
        let mut seen = followed.seen.lock().await;
        if !force {
            let tag = within(self.registry.pointer_tag(name)).await?;
            if tag == *seen {
                return Ok(Outcome::Unchanged);
            }
        }
        let (doc, tag) = within(self.registry.versions(name)).await?;
        let serving = followed.hosted.current();
        let outcome = match doc.current {
            Some(digest) if digest != serving.digest => match self.load(followed, &digest).await {
                Ok(loaded) => {
                    let old = followed.hosted.swap(loaded);
                    tracing::info!(component = %followed.hosted.context.name, from = old.version(), to = &digest[..12], "swapped in a new version");
                    Outcome::Swapped(digest)
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    tracing::error!(
                        component = %followed.hosted.context.name,
                        version = &digest[..12],
                        serving = serving.version(),
                        reason = %reason,
                        "refused a new version; the current one keeps serving"
                    );
                    Outcome::Refused(reason)
                }
            },
            _ => Outcome::Unchanged,
        };
        // Seen even when refused: the same broken version is not compiled on
        // every tick, only when the pointer changes again (or on a forced check).
        *seen = tag;
        Ok(outcome)
    }

    /// Fetches, compiles, links and validates version `digest`.
    async fn load(&self, followed: &Followed, digest: &str) -> anyhow::Result<Arc<Loaded>> {
        let started = Instant::now();
        let (component, _) = registry_version(&self.runtime, &self.registry, &followed.published_as, digest)
            .await
            .context("it is not a valid component")?;
        let loaded = self
            .runtime
            .prepare(followed.hosted.context.clone(), &component, digest.to_owned())?;
        self.runtime.validate(&loaded).await.context("it does not start")?;
        // Its `init` ran last: a restart on this version need not run it again.
        let name = &followed.hosted.context.name;
        if let Err(e) = self.marks.mark(name, &InitMarks::fingerprint(&loaded.context, digest)).await {
            tracing::warn!(component = %name, error = %format!("{e:#}"), "could not mark the init as done; the next start runs it again");
        }
        tracing::debug!(component = %followed.hosted.context.name, ms = started.elapsed().as_millis() as u64, "new version ready");
        Ok(Arc::new(loaded))
    }
}
