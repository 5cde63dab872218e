//! `[backends]`: which backend serves each capability, from the manifest
//! or a backends file of its own. Each capability owns its section's type.

use std::path::Path;

use serde::Deserialize;

use super::{ManifestError, invalid, resolve_env};
use crate::capability::auth::AuthSpec;
use crate::capability::cache::CacheSpec;
use crate::capability::db::DbSpec;
use crate::capability::queue::QueueSpec;
use crate::core::registry::RegistrySpec;

/// Which backend serves each capability. The `[backends]` table of the
/// manifest, or a file of its own (`corral serve --backends`), so one
/// manifest runs on the embedded backends locally and on AWS when deployed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendsSpec {
    /// The database.
    #[serde(default)]
    pub db: DbSpec,
    /// The cache stores.
    #[serde(default)]
    pub cache: CacheSpec,
    /// The queues.
    #[serde(default)]
    pub queue: QueueSpec,
    /// Who issues the bearer tokens the host checks. Unset, `corral serve`
    /// checks development tokens and `corral lambda` refuses to start.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// How long an SSM secret is cached, in seconds (default 300).
    #[serde(default = "default_secrets_ttl")]
    pub secrets_ttl_seconds: u64,
    /// Where `registry:` components are published.
    pub registry: Option<RegistrySpec>,
}

fn default_secrets_ttl() -> u64 {
    300
}

impl BackendsSpec {
    /// Reads a backends file: a `[backends]` table written as in a manifest.
    pub(crate) fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<BackendsSpec, ManifestError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            backends: BackendsSpec,
        }
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: File = toml::from_str(&text).map_err(|e| ManifestError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        file.backends.resolve(&env, path.parent().unwrap_or(Path::new(".")))
    }

    /// Whether any backend or secret needs an AWS configuration.
    pub(crate) fn uses_aws(&self) -> bool {
        self.registry.as_ref().is_some_and(|r| r.store.starts_with("s3://"))
            || matches!(self.db, DbSpec::Postgres { iam: true, .. })
            || matches!(self.cache, CacheSpec::Dynamodb { .. })
            || matches!(self.queue, QueueSpec::Sqs(_))
    }

    /// Resolves `${env:NAME}` in the values that may hold deployment
    /// details, and checks what each section says.
    pub(super) fn resolve(mut self, env: &impl Fn(&str) -> Option<String>, base: &Path) -> Result<BackendsSpec, ManifestError> {
        let mut fix = |what: &str, v: &mut String| -> Result<(), String> {
            *v = resolve_env(v, env).map_err(|m| format!("{what}: {m}"))?;
            Ok(())
        };
        let section = |m: String| invalid(format!("backends: {m}"));
        if let Some(registry) = &mut self.registry {
            registry.resolve(&mut fix, base).map_err(section)?;
        }
        self.db.resolve(&mut fix).map_err(section)?;
        if let Some(auth) = &mut self.auth {
            auth.resolve(&mut fix).map_err(section)?;
        }
        self.cache.resolve(&mut fix).map_err(section)?;
        self.queue.resolve(&mut fix).map_err(section)?;
        Ok(self)
    }
}
