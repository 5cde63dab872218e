//! Connects the cache stores `[backends.cache]` names: a table in the
//! embedded file, or a DynamoDB table per store, kept in an application's
//! item layout where the section says so.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use aws_config::SdkConfig;
use sqlx::SqlitePool;
use tokio::sync::Notify;

use super::{Cache, CacheSpec, DynamoCache, EmbeddedCache, LayoutCache};
use crate::capability::backend::NameMap;
use crate::capability::embedded::EmbeddedFile;

/// The connected cache.
pub(crate) struct Connected {
    /// The stores, as components reach them.
    pub cache: Arc<dyn Cache>,
    /// How store names become DynamoDB table names; identity when embedded.
    pub table_names: NameMap,
    /// For the embedded cache: its file, and what wakes when a `logged`
    /// store is written.
    pub embedded: Option<(SqlitePool, Arc<Notify>)>,
}

/// The cache. `stores` are every store some component is granted and
/// `subscribed` those some component consumes the changes of: on DynamoDB
/// they are created when missing if the section asks for it (with a stream
/// for the subscribed ones). On the embedded cache, writes to `logged`
/// stores go to the local change log.
pub(crate) async fn connect(
    spec: &CacheSpec,
    file: &mut EmbeddedFile,
    aws: Option<&SdkConfig>,
    stores: &BTreeSet<&str>,
    subscribed: &BTreeSet<&str>,
    logged: &BTreeSet<String>,
) -> anyhow::Result<Connected> {
    let mut connected = match spec {
        CacheSpec::Embedded { .. } => {
            let pool = file.pool().await?;
            let mut embedded = EmbeddedCache::open(pool.clone()).await?;
            let written = embedded.watch(logged);
            Connected {
                cache: Arc::new(embedded),
                table_names: NameMap::default(),
                embedded: Some((pool, written)),
            }
        }
        CacheSpec::Dynamodb {
            prefix,
            names,
            create_missing,
            layouts,
        } => {
            let table_names = NameMap {
                prefix: prefix.clone(),
                names: names.clone(),
            };
            let cache = DynamoCache::new(
                aws.expect("DynamoDB loads the AWS configuration"),
                table_names.clone(),
                layouts.clone(),
            );
            if *create_missing {
                cache
                    .create_missing_tables(stores.iter().copied(), subscribed)
                    .await
                    .context("creating the cache tables")?;
            }
            tracing::info!("cache: DynamoDB");
            Connected {
                cache: Arc::new(cache),
                table_names,
                embedded: None,
            }
        }
    };
    if !spec.layouts().is_empty() {
        let compares_attributes = matches!(spec, CacheSpec::Dynamodb { .. });
        connected.cache = Arc::new(LayoutCache::new(connected.cache, spec.layouts().clone(), compares_attributes));
    }
    Ok(connected)
}
