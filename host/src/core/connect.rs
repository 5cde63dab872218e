//! Connects the backends a manifest's `[backends]` names: the embedded ones
//! in the data directory, or PostgreSQL, DynamoDB, SQS and SSM through the
//! standard AWS configuration (credential chain, region, and endpoint
//! overrides such as `AWS_ENDPOINT_URL`, so a local emulator works too).
//! Each capability connects its own backend; this module gives each what
//! it needs to know of the manifest.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use aws_config::BehaviorVersion;

use crate::capability::config::{Secrets, secret_name};
use crate::capability::embedded::EmbeddedFile;
use crate::capability::{cache, db, queue};
use crate::core::instance::Backends;
use crate::core::manifest::{EventSourceSpec, Manifest};
use crate::serve::ChangeFeed;

/// Connects every backend `manifest` asks for. With `local_stream` (the
/// host delivers store changes itself, under `corral serve`), subscribers
/// get the changes of their stores from the local change log or from the
/// DynamoDB streams.
pub(crate) async fn connect(manifest: &Manifest, data_dir: &Path, local_stream: bool) -> anyhow::Result<(Backends, Option<ChangeFeed>)> {
    let spec = &manifest.backends;
    let uses_secrets = manifest
        .components
        .values()
        .flat_map(|c| c.config.values())
        .any(|v| secret_name(v).is_some());
    let aws = if spec.uses_aws() || uses_secrets {
        Some(aws_config::defaults(BehaviorVersion::latest()).load().await)
    } else {
        None
    };
    let mut file = EmbeddedFile::new(data_dir.join("corral.db"));

    let statement_timeout = manifest
        .components
        .values()
        .map(|c| c.limits.timeout_ms)
        .max()
        .unwrap_or(manifest.defaults.timeout_ms);
    let (db, dialect) = db::connect(&spec.db, &mut file, aws.as_ref(), Duration::from_millis(statement_timeout)).await?;

    let stores = manifest
        .components
        .values()
        .flat_map(|c| c.grants.caches.iter().map(String::as_str))
        .collect();
    let subscribed = subscribed_stores(manifest);
    let logged = match local_stream {
        true => subscribed.iter().map(|s| s.to_string()).collect(),
        false => BTreeSet::new(),
    };
    let cache = cache::connect(&spec.cache, &mut file, aws.as_ref(), &stores, &subscribed, &logged).await?;
    let changes = crate::serve::change_feed(&spec.cache, &cache, logged, aws.as_ref(), &stores).await?;

    let (queue, queue_names) = queue::connect(&spec.queue, &mut file, aws.as_ref(), used_queues(manifest)).await?;
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
fn subscribed_stores(manifest: &Manifest) -> BTreeSet<&str> {
    manifest
        .components
        .values()
        .flat_map(|c| &c.events)
        .filter_map(|e| match &e.source {
            EventSourceSpec::Table(t) => Some(t.as_str()),
            EventSourceSpec::Queue(_) | EventSourceSpec::Bucket(_) => None,
        })
        .collect()
}

/// Every queue some component sends to, consumes, or sends its failures to.
fn used_queues(manifest: &Manifest) -> BTreeSet<&str> {
    manifest
        .components
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
