//! What only `corral serve` runs, in place of what AWS does for a deployed
//! host: queue and change-stream delivery to consumers, and `--watch`.

pub(crate) mod change_log;
pub(crate) mod queue_consumers;
pub(crate) mod table_streams;
pub(crate) mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context as _;
use aws_config::SdkConfig;

use crate::capability::backend::NameMap;
use crate::capability::cache::{CacheSpec, Connected, DynamoCache};

/// Where subscribers get the changes of the tables they subscribe to under
/// `corral serve` (on Lambda, DynamoDB streams invoke the host).
#[derive(Clone)]
pub(crate) enum ChangeFeed {
    /// The local change log of embedded cache stores.
    Local(Arc<change_log::ChangeLog>),
    /// The DynamoDB streams of the subscribed tables.
    Streams(Arc<table_streams::TableStreams>),
}

/// Where the subscribers of the `logged` stores get their changes under
/// `corral serve`: the local change log of the embedded cache, or the
/// DynamoDB streams of the tables, read with leases kept in a table of their
/// own. `stores` are every store some component is granted. With no
/// `logged` store (on Lambda, the streams invoke the host) there is none,
/// but the embedded log is opened all the same, so that it stops logging.
pub(crate) async fn change_feed(
    spec: &CacheSpec,
    cache: &Connected,
    logged: BTreeSet<String>,
    aws: Option<&SdkConfig>,
    stores: &BTreeSet<&str>,
) -> anyhow::Result<Option<ChangeFeed>> {
    if let Some((pool, written)) = &cache.embedded {
        let log = change_log::ChangeLog::open(pool.clone(), logged.clone(), written.clone())
            .await
            .context("opening the local change stream")?;
        return Ok((!logged.is_empty()).then(|| ChangeFeed::Local(Arc::new(log))));
    }
    let CacheSpec::Dynamodb { create_missing, .. } = spec else {
        return Ok(None);
    };
    if logged.is_empty() {
        return Ok(None);
    }
    let table_names = &cache.table_names;
    let leases = table_names.resolve(table_streams::LEASES);
    if let Some(store) = stores
        .iter()
        .copied()
        .chain(logged.iter().map(String::as_str))
        .find(|s| table_names.resolve(s) == leases)
    {
        anyhow::bail!(
            "cache store \"{store}\" would be table {leases}, where the host keeps its stream leases: rename the store or map it to another table"
        );
    }
    let sdk = aws.expect("DynamoDB loads the AWS configuration");
    ensure_lease_table(sdk, &leases, *create_missing).await?;
    let streams = table_streams::TableStreams::new(sdk, table_names.clone(), leases);
    Ok(Some(ChangeFeed::Streams(Arc::new(streams))))
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
