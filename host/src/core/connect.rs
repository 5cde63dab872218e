//! Connects the backends a manifest's `[backends]` names: the embedded ones
//! in the data directory, or PostgreSQL, DynamoDB, SQS and SSM through the
//! standard AWS configuration (credential chain, region, and endpoint
//! overrides such as `AWS_ENDPOINT_URL`, so a local emulator works too).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::{BehaviorVersion, SdkConfig};
use sqlx::SqlitePool;

use crate::capability::backend::AwsNames;
use crate::capability::backend::NameMap;
use crate::capability::cache::CacheSpec;
use crate::capability::cache::{Cache, DynamoCache, EmbeddedCache, LayoutCache};
use crate::capability::config::{Secrets, secret_name};
use crate::capability::db::DbSpec;
use crate::capability::db::iam::{RDS_TOKEN_LIFETIME, RdsIamAuth, RdsTarget};
use crate::capability::db::{Database, Postgres, PostgresOptions, SqlDialect, Sqlite};
use crate::capability::queue::QueueSpec;
use crate::capability::queue::{EmbeddedQueue, Queue, SqsQueue};
use crate::core::instance::Backends;
use crate::core::manifest::{EventSourceSpec, Manifest};
use crate::serve::ChangeFeed;
use crate::serve::change_log::ChangeLog;
use crate::serve::table_streams::{self, TableStreams};

/// Connects every backend `manifest` asks for. With `local_stream` (the
/// host delivers store changes itself, under `corral serve`), writes to
/// embedded cache stores that components subscribe to are also appended to
/// the local change stream, and DynamoDB streams get a lease table.
pub async fn connect(manifest: &Manifest, data_dir: &Path, local_stream: bool) -> anyhow::Result<(Backends, Option<ChangeFeed>)> {
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
    let mut local = LocalDb {
        path: data_dir.join("corral.db"),
        pool: None,
    };

    let (db, dialect): (Arc<dyn Database>, _) = match &spec.db {
        DbSpec::Sqlite => (Arc::new(local.sqlite().await?), SqlDialect::Sqlite),
        DbSpec::Postgres {
            url,
            iam,
            region,
            max_connections,
        } => {
            let mut url = url.clone();
            let password_source = if *iam {
                let sdk = aws.as_ref().expect("IAM auth loads the AWS configuration");
                // RDS refuses IAM logins without TLS.
                if !url.contains("sslmode=") {
                    url.push_str(if url.contains('?') {
                        "&sslmode=require"
                    } else {
                        "?sslmode=require"
                    });
                }
                Some(Arc::new(rds_auth(&url, region.as_deref(), sdk)?) as _)
            } else {
                None
            };
            let statement_timeout = Duration::from_millis(
                manifest
                    .components
                    .values()
                    .map(|c| c.limits.timeout_ms)
                    .max()
                    .unwrap_or(manifest.defaults.timeout_ms),
            );
            let pg = Postgres::connect(PostgresOptions {
                url,
                password_source,
                max_connections: *max_connections,
                statement_timeout,
            })
            .await?;
            tracing::info!(iam = *iam, "database: PostgreSQL");
            (Arc::new(pg), SqlDialect::Postgres)
        }
    };

    let subscribed = subscribed_stores(manifest);
    let table_names = spec.cache.dynamodb_names().map(|n| name_map(&n)).unwrap_or_default();
    // Under `corral serve`, subscribers read the changes of an embedded store
    // from the local change log, and those of a DynamoDB table from its
    // stream, as Lambda does.
    let mut local_log = None;
    let mut cache: Arc<dyn Cache> = match &spec.cache {
        CacheSpec::Embedded { .. } => {
            let pool = local.pool().await?;
            let mut embedded = EmbeddedCache::open(pool.clone()).await?;
            // Opened without subscribers too, so that it stops logging.
            let logged = match local_stream {
                true => subscribed.iter().map(|s| s.to_string()).collect(),
                false => BTreeSet::new(),
            };
            let written = embedded.watch(&logged);
            let log = ChangeLog::open(pool, logged, written)
                .await
                .context("opening the local change stream")?;
            local_log = Some(Arc::new(log));
            Arc::new(embedded)
        }
        CacheSpec::Dynamodb { .. } => {
            let names = spec.cache.dynamodb_names().expect("a DynamoDB cache has table names");
            let cache = DynamoCache::new(
                aws.as_ref().expect("DynamoDB loads the AWS configuration"),
                name_map(&names),
                spec.cache.layouts().clone(),
            );
            if names.create_missing {
                let stores: BTreeSet<&str> = manifest
                    .components
                    .values()
                    .flat_map(|c| c.grants.caches.iter().map(String::as_str))
                    .collect();
                cache
                    .create_missing_tables(stores, &subscribed)
                    .await
                    .context("creating the cache tables")?;
            }
            tracing::info!("cache: DynamoDB");
            Arc::new(cache)
        }
    };

    let changes = match &spec.cache {
        _ if !local_stream || subscribed.is_empty() => None,
        CacheSpec::Embedded { .. } => local_log.map(ChangeFeed::Local),
        CacheSpec::Dynamodb { create_missing, .. } => {
            let leases = table_names.resolve(table_streams::LEASES);
            let stores = manifest
                .components
                .values()
                .flat_map(|c| c.grants.caches.iter().map(String::as_str));
            if let Some(store) = stores.chain(subscribed.iter().copied()).find(|s| table_names.resolve(s) == leases) {
                anyhow::bail!(
                    "cache store \"{store}\" would be table {leases}, where the host keeps its stream leases: rename the store or map it to another table"
                );
            }
            let sdk = aws.as_ref().expect("DynamoDB loads the AWS configuration");
            ensure_lease_table(sdk, &leases, *create_missing).await?;
            Some(ChangeFeed::Streams(Arc::new(TableStreams::new(sdk, table_names.clone(), leases))))
        }
    };
    if !spec.cache.layouts().is_empty() {
        // Outside the local stream, so it logs the objects as stored.
        let compares_attributes = matches!(spec.cache, CacheSpec::Dynamodb { .. });
        cache = Arc::new(LayoutCache::new(cache, spec.cache.layouts().clone(), compares_attributes));
    }

    let queue: Arc<dyn Queue> = match &spec.queue {
        QueueSpec::Embedded => Arc::new(EmbeddedQueue::open(local.pool().await?).await?),
        QueueSpec::Sqs(names) => {
            let queue = SqsQueue::new(aws.as_ref().expect("SQS loads the AWS configuration"), name_map(names));
            if names.create_missing {
                let queues: BTreeSet<&str> = manifest
                    .components
                    .values()
                    .flat_map(|c| {
                        let consumed = c.events.iter().flat_map(|e| match &e.source {
                            EventSourceSpec::Queue(q) => vec![Some(q.as_str()), e.dead_letter.as_deref()],
                            EventSourceSpec::Table(_) | EventSourceSpec::Bucket(_) => vec![],
                        });
                        let consumed = consumed.flatten();
                        c.grants.queues.iter().map(String::as_str).chain(consumed)
                    })
                    .collect();
                queue.create_missing_queues(queues).await.context("creating the queues")?;
            }
            tracing::info!("queue: SQS");
            Arc::new(queue)
        }
    };

    let secrets = aws.as_ref().map(|sdk| {
        Arc::new(Secrets::new(
            aws_sdk_ssm::Client::new(sdk),
            Duration::from_secs(spec.secrets_ttl_seconds),
        ))
    });
    let queue_names = match &spec.queue {
        QueueSpec::Sqs(names) => name_map(names),
        QueueSpec::Embedded => NameMap::default(),
    };
    let backends = Backends {
        db,
        dialect,
        cache,
        queue,
        secrets,
        queue_names,
        table_names,
        aws,
    };
    Ok((backends, changes))
}

/// Makes sure the table of stream leases exists: creates it when the cache
/// creates missing tables, and otherwise says how to.
async fn ensure_lease_table(sdk: &SdkConfig, table: &str, create_missing: bool) -> anyhow::Result<()> {
    if create_missing {
        let creator = DynamoCache::new(sdk, NameMap::default(), Default::default());
        return creator
            .create_missing_table(table, table_streams::LEASE_KEY, false)
            .await
            .with_context(|| format!("creating the stream lease table {table}"));
    }
    let client = aws_sdk_dynamodb::Client::new(sdk);
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => anyhow::bail!(
            "the hosts read the streams of subscribed tables with leases kept in DynamoDB table {table}, which does not exist: \
             create it (partition key \"{}\", a string) or set create_missing = true in [backends.cache]",
            table_streams::LEASE_KEY
        ),
        Err(e) => Err(anyhow::anyhow!(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))
            .with_context(|| format!("checking the stream lease table {table}")),
    }
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

/// The embedded SQLite file, opened once for whichever backends use it.
struct LocalDb {
    path: std::path::PathBuf,
    pool: Option<SqlitePool>,
}

impl LocalDb {
    async fn sqlite(&mut self) -> anyhow::Result<Sqlite> {
        let db = Sqlite::open(&self.path)
            .await
            .with_context(|| format!("opening {}", self.path.display()))?;
        self.pool = Some(db.pool().clone());
        Ok(db)
    }

    async fn pool(&mut self) -> anyhow::Result<SqlitePool> {
        match &self.pool {
            Some(p) => Ok(p.clone()),
            None => Ok(self.sqlite().await?.pool().clone()),
        }
    }
}

fn name_map(names: &AwsNames) -> NameMap {
    NameMap {
        prefix: names.prefix.clone(),
        names: names.names.clone(),
    }
}

/// RDS IAM auth for the host, port and user in `url`.
fn rds_auth(url: &str, region: Option<&str>, sdk: &SdkConfig) -> anyhow::Result<RdsIamAuth> {
    let parsed = url::Url::parse(url).context("bad database URL")?;
    let region = region
        .map(str::to_owned)
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .context("IAM database auth needs a region: set backends.db.region or AWS_REGION")?;
    let target = RdsTarget {
        host: parsed.host_str().context("the database URL has no host")?.to_owned(),
        port: parsed.port().unwrap_or(5432),
        user: parsed.username().to_owned(),
        region,
    };
    anyhow::ensure!(!target.user.is_empty(), "the database URL has no user name");
    let credentials = sdk.credentials_provider().context("IAM database auth needs AWS credentials")?;
    Ok(RdsIamAuth::new(target, credentials, RDS_TOKEN_LIFETIME))
}
