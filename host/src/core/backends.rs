//! Where the capabilities are registered: the `[backends]` table (one
//! section per capability, each a type its capability owns), the connected
//! backends every component shares, and `connect`, which has each
//! capability connect its own backend: the embedded ones in the data
//! directory, or PostgreSQL, DynamoDB, SQS and SSM through the standard AWS
//! configuration (credential chain, region, and endpoint overrides such as
//! `AWS_ENDPOINT_URL`, so a local emulator works too).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use serde::Deserialize;

use crate::capability::auth::AuthSpec;
use crate::capability::backend::NameMap;
use crate::capability::cache::{Cache, CacheSpec};
use crate::capability::config::{Secrets, secret_name};
use crate::capability::db::{Database, DbSpec, SqlDialect};
use crate::capability::embedded::EmbeddedFile;
use crate::capability::queue::{Queue, QueueSpec};
use crate::capability::{cache, db, queue};
use crate::core::manifest::component::{ComponentSpec, EventSourceSpec};
use crate::core::manifest::error::{ManifestError, invalid, resolve_env};
use crate::core::registry::RegistrySpec;
use crate::serve::ChangeFeed;

/// Connects every backend `spec` names, for `components`. With
/// `local_stream` (the host delivers store changes itself, under `corral
/// serve`), subscribers get the changes of their stores from the local
/// change log or from the DynamoDB streams. `statement_timeout` is the
/// longest a database statement may run.
pub(crate) async fn connect(
    spec: &BackendsSpec,
    components: &BTreeMap<String, ComponentSpec>,
    statement_timeout: Duration,
    data_dir: &Path,
    local_stream: bool,
) -> anyhow::Result<(Backends, Option<ChangeFeed>)> {
    let uses_secrets = components
        .values()
        .flat_map(|c| c.config.values())
        .any(|v| secret_name(v).is_some());
    let aws = if spec.uses_aws() || uses_secrets {
        Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
    } else {
        None
    };
    let mut file = EmbeddedFile::new(data_dir.join("corral.db"));

    let (db, dialect) = db::connect(&spec.db, &mut file, aws.as_ref(), statement_timeout).await?;

    let stores = components
        .values()
        .flat_map(|c| c.grants.caches.iter().map(String::as_str))
        .collect();
    let subscribed = subscribed_stores(components);
    let logged = match local_stream {
        true => subscribed.iter().map(|s| s.to_string()).collect(),
        false => BTreeSet::new(),
    };
    let cache = cache::connect(&spec.cache, &mut file, aws.as_ref(), &stores, &subscribed, &logged).await?;
    let changes = crate::serve::change_feed(&spec.cache, &cache, logged, aws.as_ref(), &stores).await?;

    let (queue, queue_names) = queue::connect(&spec.queue, &mut file, aws.as_ref(), used_queues(components)).await?;
    let secrets = aws
        .as_ref()
        .map(|sdk| Secrets::connect(sdk, Duration::from_secs(spec.secrets_ttl_seconds)));
    let backends = Backends {
        db,
        dialect,
        cache: cache.cache,
        queue,
        secrets,
        queue_names,
        table_names: cache.table_names,
        aws,
    };
    Ok((backends, changes))
}

/// The tables (cache stores) some component consumes the changes of.
fn subscribed_stores(components: &BTreeMap<String, ComponentSpec>) -> BTreeSet<&str> {
    components
        .values()
        .flat_map(|c| &c.events)
        .filter_map(|e| match &e.source {
            EventSourceSpec::Table(t) => Some(t.as_str()),
            EventSourceSpec::Queue(_) | EventSourceSpec::Bucket(_) => None,
        })
        .collect()
}

/// Every queue some component sends to, consumes, or sends its failures to.
fn used_queues(components: &BTreeMap<String, ComponentSpec>) -> BTreeSet<&str> {
    components
        .values()
        .flat_map(|c| {
            let consumed = c.events.iter().flat_map(|e| match &e.source {
                EventSourceSpec::Queue(q) => vec![Some(q.as_str()), e.dead_letter.as_deref()],
                EventSourceSpec::Table(_) | EventSourceSpec::Bucket(_) => vec![],
            });
            c.grants.queues.iter().map(String::as_str).chain(consumed.flatten())
        })
        .collect()
}

/// The backends behind the host interfaces, shared by every component.
pub struct Backends {
    /// The database.
    pub db: Arc<dyn Database>,
    /// The SQL dialect the database speaks, for the SQL grant check.
    pub dialect: SqlDialect,
    /// The cache stores.
    pub cache: Arc<dyn Cache>,
    /// The queues.
    pub queue: Arc<dyn Queue>,
    /// SSM secrets, when the host has an AWS configuration.
    pub secrets: Option<Arc<crate::capability::config::Secrets>>,
    /// How queue names become deployed queue names (SQS); identity when embedded.
    pub queue_names: NameMap,
    /// How cache store names become deployed table names (DynamoDB); identity when embedded.
    pub table_names: NameMap,
    /// The AWS configuration, when anything needed it (the S3 registry too).
    pub aws: Option<aws_config::SdkConfig>,
}

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
        self.registry.as_ref().is_some_and(RegistrySpec::uses_aws) || self.db.uses_aws() || self.cache.uses_aws() || self.queue.uses_aws()
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
