//! `[backends.db]`: which database serves the `db` interface.

use serde::Deserialize;

use crate::capability::backend::Resolve;

/// The database backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum DbSpec {
    /// SQLite in the data directory.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgres {
        /// `postgres://user[:password]@host:port/db?sslmode=...`.
        url: String,
        /// Log in with an RDS IAM auth token instead of a password.
        #[serde(default)]
        iam: bool,
        /// The database's region, for IAM tokens (default: the AWS configuration's).
        region: Option<String>,
        /// Most pooled connections (default 8).
        #[serde(default = "default_max_connections")]
        max_connections: u32,
    },
}

fn default_max_connections() -> u32 {
    8
}

impl DbSpec {
    /// Whether the database needs the AWS configuration (for IAM tokens).
    pub(crate) fn uses_aws(&self) -> bool {
        matches!(self, DbSpec::Postgres { iam: true, .. })
    }

    /// Resolves `${env:NAME}` in the URL and region.
    pub(crate) fn resolve(&mut self, fix: &mut Resolve<'_>) -> Result<(), String> {
        if let DbSpec::Postgres {
            url,
            region,
            max_connections,
            ..
        } = self
        {
            fix("db url", url)?;
            if let Some(r) = region {
                fix("db region", r)?;
            }
            if *max_connections == 0 {
                return Err("db max_connections must be at least 1".into());
            }
        }
        Ok(())
    }
}
