//! Which version's `init` last ran against this database, per component, so
//! a restart on the same version does not run it again.
//!
//! The mark is a row in the host's own table `corral_init`: names starting
//! `corral_` are never granted to a component (`core/manifest`), the SQL guard
//! refuses every table a component was not granted, and the database refuses
//! it too (SQLite's authorizer on a component's handle; on PostgreSQL the
//! component roles hold no privilege on it). Only the host writes a mark,
//! and only after that `init` succeeded.
//!
//! A mark is a fingerprint of everything that makes `init`'s effect differ:
//! the component's name, the sha256 of its bytes, its grants and its config
//! as the manifest gives them. Any change to one of them runs `init` again.
//! Each component keeps one mark, the latest, so going back to an earlier
//! version runs that version's `init` again too.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::capability::db::{Database, SqlDialect, Value};
use crate::core::instance::ComponentContext;

/// The marks of one database, read once at start.
pub struct InitMarks {
    db: Arc<dyn Database>,
    /// Component name to the fingerprint of the `init` that last ran.
    ran: BTreeMap<String, String>,
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS corral_init (component TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, ran_at TEXT NOT NULL)";

/// Every mark; on PostgreSQL only while the table is the host's own (a
/// table some other role made under that name is not trusted).
fn select(dialect: SqlDialect) -> &'static str {
    match dialect {
        SqlDialect::Sqlite => "SELECT component, fingerprint FROM corral_init",
        SqlDialect::Postgres => {
            "SELECT component, fingerprint FROM corral_init WHERE (SELECT tableowner FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename = 'corral_init') = current_user"
        }
    }
}

const UPSERT: &str = "INSERT INTO corral_init (component, fingerprint, ran_at) VALUES (?, ?, ?) \
     ON CONFLICT (component) DO UPDATE SET fingerprint = excluded.fingerprint, ran_at = excluded.ran_at";

impl InitMarks {
    /// Creates the table when missing and reads every mark, through the
    /// host's own (unscoped) handle.
    pub async fn open(db: Arc<dyn Database>, dialect: SqlDialect) -> anyhow::Result<InitMarks> {
        if let Err(first) = db.execute(CREATE, &[]).await {
            // Two hosts creating it at once on PostgreSQL can collide in the
            // catalog; the second attempt finds the table.
            db.execute(CREATE, &[])
                .await
                .with_context(|| format!("creating the table of init marks (first attempt: {first})"))?;
        }
        let rows = db.query(select(dialect), &[]).await.context("reading the init marks")?;
        let ran = rows
            .rows
            .into_iter()
            .filter_map(|row| match <[Value; 2]>::try_from(row) {
                Ok([Value::Text(component), Value::Text(fingerprint)]) => Some((component, fingerprint)),
                _ => None,
            })
            .collect();
        Ok(InitMarks { db, ran })
    }

    /// The fingerprint of `init` of the version `digest` of the component
    /// `context` describes.
    pub fn fingerprint(context: &ComponentContext, digest: &str) -> String {
        let mut h = Sha256::new();
        // Every field is length-prefixed, so no two inputs hash alike.
        let mut field = |label: &str, value: &str| {
            for part in [label, value] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        };
        field("name", &context.name);
        field("digest", digest);
        let grants = &context.grants;
        for (kind, names) in [("table", &grants.tables), ("cache", &grants.caches), ("queue", &grants.queues)] {
            names.iter().for_each(|n| field(kind, n));
        }
        for host in &grants.hosts {
            let port = host.port.map(|p| p.to_string()).unwrap_or_default();
            field("host", &format!("{}|{}|{port}", host.scheme.as_deref().unwrap_or(""), host.host));
        }
        for (key, value) in &context.config {
            field("config-key", key);
            field("config-value", value);
        }
        hex::encode(h.finalize())
    }

    /// Whether `init` with this fingerprint is the last one that ran for `component`.
    pub fn already_ran(&self, component: &str, fingerprint: &str) -> bool {
        self.ran.get(component).is_some_and(|f| f == fingerprint)
    }

    /// Marks `init` with this fingerprint as the last one that ran for `component`.
    pub async fn mark(&self, component: &str, fingerprint: &str) -> anyhow::Result<()> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let params = [
            Value::Text(component.to_owned()),
            Value::Text(fingerprint.to_owned()),
            Value::Text(now),
        ];
        self.db
            .execute(UPSERT, &params)
            .await
            .with_context(|| format!("marking the init of component \"{component}\" as done"))?;
        Ok(())
    }
}
