//! `[backends.registry]`: where components are published.

use std::path::Path;

use serde::Deserialize;

use super::StoreLocation;
use crate::capability::backend::Resolve;

/// The component registry (`[backends.registry]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrySpec {
    /// `s3://BUCKET/PREFIX` or `dir:PATH` (relative to the file that names it).
    pub store: String,
    /// How often the host checks for a new current version, in seconds
    /// (default 5); an S3 notification reloads at once.
    #[serde(default = "default_check_seconds")]
    pub check_seconds: u64,
    /// The key of published precompiled artifacts: `ssm:PARAMETER`, or the
    /// key itself (through `${env:NAME}`). Without it, artifacts are
    /// neither published nor loaded.
    #[serde(default)]
    pub artifact_key: Option<String>,
}

fn default_check_seconds() -> u64 {
    RegistrySpec::DEFAULT_CHECK_SECONDS
}

impl RegistrySpec {
    /// How often the registry is checked unless configured.
    pub(crate) const DEFAULT_CHECK_SECONDS: u64 = 5;

    /// Whether the store needs the AWS configuration.
    pub(crate) fn uses_aws(&self) -> bool {
        self.store.starts_with("s3://")
    }

    /// The store location (stored absolute once the manifest is read).
    pub(crate) fn location(&self) -> anyhow::Result<StoreLocation> {
        StoreLocation::parse(&self.store, Path::new(".")).map_err(|m| anyhow::anyhow!("backends: registry store {m}"))
    }
}

impl RegistrySpec {
    /// Resolves `${env:NAME}` in the store and key; a relative folder is
    /// stored absolute, so the file's folder no longer matters.
    pub(crate) fn resolve(&mut self, fix: &mut Resolve<'_>, base: &Path) -> Result<(), String> {
        fix("registry store", &mut self.store)?;
        if let Some(key) = &mut self.artifact_key {
            fix("registry artifact_key", key)?;
        }
        if let StoreLocation::Dir(path) = StoreLocation::parse(&self.store, base).map_err(|m| format!("registry store {m}"))? {
            self.store = format!("dir:{}", path.display());
        }
        if !(1..=86_400).contains(&self.check_seconds) {
            return Err("registry check_seconds must be 1 to 86400".into());
        }
        Ok(())
    }
}
