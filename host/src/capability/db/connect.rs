//! Connects the database `[backends.db]` names: SQLite in the data
//! directory, or PostgreSQL (with RDS IAM auth when asked).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::SdkConfig;

use super::iam::{RDS_TOKEN_LIFETIME, RdsIamAuth, RdsTarget};
use super::{Database, DbSpec, Postgres, PostgresOptions, SqlDialect};
use crate::capability::embedded::EmbeddedFile;

/// The database, and the dialect it speaks. `statement_timeout` is the
/// longest a PostgreSQL statement may run: the longest component timeout.
pub(crate) async fn connect(
    spec: &DbSpec,
    file: &mut EmbeddedFile,
    aws: Option<&SdkConfig>,
    statement_timeout: Duration,
) -> anyhow::Result<(Arc<dyn Database>, SqlDialect)> {
    let DbSpec::Postgres {
        url,
        iam,
        region,
        max_connections,
    } = spec
    else {
        return Ok((Arc::new(file.sqlite().await?), SqlDialect::Sqlite));
    };
    let mut url = url.clone();
    let password_source = if *iam {
        let sdk = aws.expect("IAM auth loads the AWS configuration");
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
    let pg = Postgres::connect(PostgresOptions {
        url,
        password_source,
        max_connections: *max_connections,
        statement_timeout,
    })
    .await?;
    tracing::info!(iam = *iam, "database: PostgreSQL");
    Ok((Arc::new(pg), SqlDialect::Postgres))
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
