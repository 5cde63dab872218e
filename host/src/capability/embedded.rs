//! The embedded SQLite file in the data directory, opened once for
//! whichever embedded backends (database, cache, queue) use it.

use std::path::PathBuf;

use anyhow::Context as _;
use sqlx::SqlitePool;

use crate::capability::db::Sqlite;

/// The data directory's `corral.db`, opened on first use.
pub(crate) struct EmbeddedFile {
    path: PathBuf,
    pool: Option<SqlitePool>,
}

impl EmbeddedFile {
    /// The file at `path`, not opened yet.
    pub(crate) fn new(path: PathBuf) -> EmbeddedFile {
        EmbeddedFile { path, pool: None }
    }

    /// The database backend on the file.
    pub(crate) async fn sqlite(&mut self) -> anyhow::Result<Sqlite> {
        let db = Sqlite::open(&self.path)
            .await
            .with_context(|| format!("opening {}", self.path.display()))?;
        self.pool = Some(db.pool().clone());
        Ok(db)
    }

    /// The file's connection pool, for the cache and queue tables.
    pub(crate) async fn pool(&mut self) -> anyhow::Result<SqlitePool> {
        match &self.pool {
            Some(p) => Ok(p.clone()),
            None => Ok(self.sqlite().await?.pool().clone()),
        }
    }
}
