//! The embedded database: one SQLite file in the data directory. Its pool
//! also backs the embedded cache and queue.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use serde_json::{Map, Value as Json};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Column, Row, SqlSafeStr, SqlitePool, TypeInfo, ValueRef};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::authorizer::{self, Catalog, Scope, Session};
use super::limits::{self, ResultCap};
use super::records_sql::{self, Param, Sql};
use super::{BackendError, Database, Filter, Rows, SqlDialect, Stamp, StoredRecord, Transaction, Value, map_error};

/// Connections in the pool shared by components, the cache and the queue.
const POOL_CONNECTIONS: u32 = 8;

/// Connections one component may hold at once: the rest stay free for
/// other components and the host, whatever one component does.
const CONNECTIONS_PER_COMPONENT: usize = POOL_CONNECTIONS as usize / 2;

/// SQLite behind the [`Database`] trait.
pub struct Sqlite {
    pool: SqlitePool,
    /// Record tables known to exist, so `CREATE TABLE IF NOT EXISTS` runs once each.
    ensured: Mutex<HashSet<String>>,
    /// The tables, and which have the records layout, for the authorizer;
    /// `None` after a schema change.
    catalog: Mutex<Option<Arc<Catalog>>>,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>;

impl Sqlite {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Sqlite, sqlx::Error> {
        Sqlite::open_with(path, POOL_CONNECTIONS).await
    }

    async fn open_with(path: &Path, connections: u32) -> Result<Sqlite, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(async move { wait_briefly_when_busy(conn).await.and(bound_statements(conn).await) }))
            // One trip to the connection's worker thread on each side: the
            // pool keeps only the connections `reusable` passed on release.
            .before_acquire(|conn, _| Box::pin(async move { bound_statements(conn).await.map(|()| true) }))
            .after_release(|conn, _| Box::pin(reusable(conn)))
            .connect_with(options)
            .await?;
        Ok(Sqlite {
            pool,
            ensured: Mutex::new(HashSet::new()),
            catalog: Mutex::new(None),
        })
    }

    /// The connection pool, shared with the embedded cache and queue.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn ensure_records_table(&self, table: &str) -> Result<(), BackendError> {
        if self.ensured.lock().expect("not poisoned").contains(table) {
            return Ok(());
        }
        let ddl = records_sql::create_table(SqlDialect::Sqlite, table);
        sqlx::query(AssertSqlSafe(ddl)).execute(&self.pool).await.map_err(map_error)?;
        self.ensured.lock().expect("not poisoned").insert(table.to_owned());
        let known = self.catalog.lock().expect("not poisoned").clone();
        if known.is_some_and(|k| !k.records.contains(&table.to_ascii_lowercase())) {
            *self.catalog.lock().expect("not poisoned") = None;
        }
        Ok(())
    }

    /// The catalog for the authorizer, read on `conn` when not known.
    async fn catalog(&self, conn: &mut sqlx::SqliteConnection) -> Result<Arc<Catalog>, BackendError> {
        if let Some(known) = self.catalog.lock().expect("not poisoned").clone() {
            return Ok(known);
        }
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT lower(m.name), (SELECT count(*) FROM pragma_table_info(m.name) AS c \
             WHERE c.name IN ('creator_uid', 'last_updater_uid')) = 2 FROM sqlite_schema AS m WHERE m.type IN ('table', 'view')",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
        let catalog = Arc::new(Catalog {
            records: rows.iter().filter(|(_, records)| *records).map(|(name, _)| name.clone()).collect(),
            tables: rows.into_iter().map(|(name, _)| name).collect(),
        });
        *self.catalog.lock().expect("not poisoned") = Some(catalog.clone());
        Ok(catalog)
    }
}

/// How long a statement waits for another connection's write lock.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// The first pause of a waiting statement before it looks at the lock again,
/// doubling up to [`BUSY_POLL_MAX`]. SQLite's own busy handler sleeps up to
/// 100 ms between looks, far longer than a write holds the lock here, so
/// under concurrent writes most of a request's time went to sleeping past a
/// lock already free.
const BUSY_POLL: Duration = Duration::from_micros(50);
const BUSY_POLL_MAX: Duration = Duration::from_millis(1);

thread_local! {
    /// When the wait of this connection's worker thread began.
    static BUSY_SINCE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// SQLite's busy handler: called on the connection's worker thread with the
/// number of earlier calls in this wait; 0 gives up (`SQLITE_BUSY`).
unsafe extern "C" fn busy(_: *mut std::ffi::c_void, calls: std::ffi::c_int) -> std::ffi::c_int {
    let now = std::time::Instant::now();
    if calls == 0 {
        BUSY_SINCE.set(Some(now));
    }
    let since = BUSY_SINCE.get().unwrap_or(now);
    if now.duration_since(since) >= BUSY_WAIT {
        return 0;
    }
    let pause = BUSY_POLL.saturating_mul(1 << calls.clamp(0, 10)).min(BUSY_POLL_MAX);
    std::thread::sleep(pause);
    1
}

async fn wait_briefly_when_busy(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is locked out of the worker thread; `busy` keeps its
    // state per worker thread, and a connection has one.
    unsafe { libsqlite3_sys::sqlite3_busy_handler(handle.as_raw_handle().as_ptr(), Some(busy), std::ptr::null_mut()) };
    Ok(())
}

/// Makes the connection stop any statement still running at the deadline of
/// the component call that acquired it. SQLite runs a statement to its end
/// even when nobody waits for it any more, holding its locks all the while;
/// the progress handler is how it can be interrupted.
/// Clears any component's authorizer too: the host's statements run
/// unrestricted.
async fn bound_statements(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    authorizer::clear(&mut handle);
    match crate::capability::backend::deadline() {
        Some(deadline) => handle.set_progress_handler(1000, move || std::time::Instant::now() < deadline),
        None => handle.remove_progress_handler(),
    }
    Ok(())
}

/// Whether a connection may serve again: outside any transaction, and
/// without a component's authorizer (cleared here). SQLite rolls back a
/// write interrupted inside a transaction by itself, leaving the driver's
/// count of open transactions off, so such a connection is closed instead.
async fn reusable(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    let counted = sqlx::Connection::is_in_transaction(conn);
    let mut handle = conn.lock_handle().await?;
    authorizer::clear(&mut handle);
    // SAFETY: the handle is locked out of the worker thread.
    let open = unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } == 0;
    Ok(!counted && !open)
}

/// A records statement with its parameters bound.
fn records_query(sql: Sql) -> Query<'static> {
    let mut q = sqlx::query(AssertSqlSafe(sql.text));
    for p in sql.params {
        q = match p {
            Param::Text(s) => q.bind(s),
            Param::Integer(i) => q.bind(i),
            Param::Float(f) => q.bind(f),
            // SQLite keeps JSON as text.
            Param::Json(j) => q.bind(j.to_string()),
        };
    }
    q
}

fn bind<'q>(mut q: Query<'q>, params: &[Value]) -> Query<'q> {
    for p in params {
        q = match p.clone() {
            Value::Null => q.bind(None::<i64>),
            Value::Boolean(b) => q.bind(b),
            Value::Integer(i) => q.bind(i),
            Value::Float(f) => q.bind(f),
            Value::Text(s) => q.bind(s),
            Value::Blob(b) => q.bind(b),
        };
    }
    q
}

fn record_from_row(row: &SqliteRow) -> Result<StoredRecord, BackendError> {
    let get = |name: &str| row.try_get::<Option<String>, _>(name).map_err(map_error);
    let data: String = row.try_get("data").map_err(map_error)?;
    let data: Map<String, Json> =
        serde_json::from_str(&data).map_err(|e| BackendError::Invalid(format!("stored record is not a JSON object: {e}")))?;
    Ok(StoredRecord {
        uid: get("uid")?.unwrap_or_default(),
        created_at: get("created_at")?.unwrap_or_default(),
        last_updated_at: get("last_updated_at")?.unwrap_or_default(),
        creator_uid: get("creator_uid")?,
        last_updater_uid: get("last_updater_uid")?,
        data,
    })
}

/// Runs a query on one connection, stopping at the result cap; with no
/// rows, the column names come from the prepared statement instead.
/// A component's statements are not kept in the statement cache.
async fn query_rows(conn: &mut sqlx::SqliteConnection, sql: &str, params: &[Value], persistent: bool) -> Result<Rows, BackendError> {
    let mut cap = ResultCap::new();
    let mut columns = None;
    let mut rows = Vec::new();
    {
        let query = bind(sqlx::query(AssertSqlSafe(sql.to_owned())).persistent(persistent), params);
        let mut stream = query.fetch(&mut *conn);
        while let Some(row) = stream.try_next().await.map_err(map_error)? {
            if columns.is_none() {
                columns = Some(row.columns().iter().map(|c| c.name().to_owned()).collect());
            }
            let values = (0..row.len()).map(|i| column_value(&row, i)).collect::<Result<Vec<_>, _>>()?;
            cap.add(&values)?;
            rows.push(values);
        }
    }
    let columns = match columns {
        Some(columns) => columns,
        None => {
            let statement = sqlx::Executor::prepare(&mut *conn, AssertSqlSafe(sql.to_owned()).into_sql_str())
                .await
                .map_err(map_error)?;
            sqlx::Statement::columns(&statement).iter().map(|c| c.name().to_owned()).collect()
        }
    };
    Ok(Rows { columns, rows })
}

async fn execute_on(conn: &mut sqlx::SqliteConnection, sql: &str, params: &[Value], persistent: bool) -> Result<u64, BackendError> {
    let done = bind(sqlx::query(AssertSqlSafe(sql.to_owned())).persistent(persistent), params)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(done.rows_affected())
}

fn column_value(row: &SqliteRow, i: usize) -> Result<Value, BackendError> {
    let raw = row.try_get_raw(i).map_err(map_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "INTEGER" | "INT" | "BIGINT" => Value::Integer(row.try_get(i).map_err(map_error)?),
        "BOOLEAN" | "BOOL" => Value::Boolean(row.try_get(i).map_err(map_error)?),
        "REAL" | "FLOAT" | "DOUBLE" => Value::Float(row.try_get(i).map_err(map_error)?),
        "BLOB" => Value::Blob(row.try_get(i).map_err(map_error)?),
        _ => match row.try_get::<String, _>(i) {
            Ok(s) => Value::Text(s),
            Err(_) => match row.try_get::<i64, _>(i) {
                Ok(n) => Value::Integer(n),
                Err(_) => Value::Float(row.try_get(i).map_err(map_error)?),
            },
        },
    })
}

#[async_trait]
impl Database for Sqlite {
    fn for_request(self: Arc<Self>) -> Arc<dyn Database> {
        self
    }

    async fn scoped(self: Arc<Self>, component: &str, tables: &BTreeSet<String>) -> Result<Arc<dyn Database>, BackendError> {
        Ok(Arc::new(ScopedSqlite {
            scope: Arc::new(Scope::new(component, tables)),
            connections: Arc::new(Semaphore::new(CONNECTIONS_PER_COMPONENT)),
            db: self,
        }))
    }

    async fn insert(&self, table: &str, r: &StoredRecord) -> Result<(), BackendError> {
        self.ensure_records_table(table).await?;
        records_query(records_sql::insert(SqlDialect::Sqlite, table, r))
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError> {
        self.ensure_records_table(table).await?;
        let row = records_query(records_sql::get(SqlDialect::Sqlite, table, uid))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn update(
        &self,
        table: &str,
        uid: &str,
        changes: &Map<String, Json>,
        stamp: &Stamp,
    ) -> Result<Option<StoredRecord>, BackendError> {
        self.ensure_records_table(table).await?;
        // IMMEDIATE takes the write lock up front, so the read below cannot go stale.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_error)?;
        let Some(row) = records_query(records_sql::get(SqlDialect::Sqlite, table, uid))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        let mut record = record_from_row(&row)?;
        record.apply(changes, stamp);
        records_query(records_sql::update(SqlDialect::Sqlite, table, uid, stamp, &record.data))
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(Some(record))
    }

    async fn delete(&self, table: &str, uid: &str) -> Result<bool, BackendError> {
        self.ensure_records_table(table).await?;
        let done = records_query(records_sql::delete(SqlDialect::Sqlite, table, uid))
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError> {
        self.ensure_records_table(table).await?;
        let done = records_query(records_sql::delete_where(SqlDialect::Sqlite, table, filters))
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError> {
        self.ensure_records_table(table).await?;
        let rows = records_query(records_sql::list(SqlDialect::Sqlite, table, filters, limit, after))
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let mut conn = self.pool.acquire().await.map_err(map_error)?;
        query_rows(&mut conn, sql, params, true).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let mut conn = self.pool.acquire().await.map_err(map_error)?;
        execute_on(&mut conn, sql, params, true).await
    }

    fn schema_changed(&self) {
        self.ensured.lock().expect("not poisoned").clear();
        *self.catalog.lock().expect("not poisoned") = None;
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, BackendError> {
        // IMMEDIATE: a deferred transaction that later writes can fail with
        // SQLITE_BUSY instead of waiting for the lock.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_error)?;
        Ok(Box::new(SqliteTransaction {
            tx: Some(tx),
            guarded: None,
            _permit: None,
        }))
    }
}

/// The database as one component reaches it: records calls only on its
/// granted tables, and SQL only under the authorizer of its grants, on at
/// most [`CONNECTIONS_PER_COMPONENT`] connections, each statement (or
/// transaction) holding the database no longer than the component's
/// `transaction_ms`.
struct ScopedSqlite {
    db: Arc<Sqlite>,
    scope: Arc<Scope>,
    connections: Arc<Semaphore>,
}

/// What guards a component's connection: its authorizer session, and when
/// its statements are interrupted.
struct Guarded {
    session: Arc<Session>,
    hold_until: Instant,
    limit: Duration,
}

impl Guarded {
    /// The error the component gets: the authorizer's reason when it
    /// refused the statement, a clear one when the hold limit stopped it.
    fn fail(&self, error: BackendError) -> BackendError {
        if let Some(reason) = self.session.take_refusal() {
            return BackendError::NotGranted(reason);
        }
        let request_over = crate::capability::backend::deadline().is_some_and(|d| d <= self.hold_until);
        match error {
            BackendError::Unavailable(_) if Instant::now() >= self.hold_until && !request_over => BackendError::Invalid(format!(
                "the statement held the database longer than {} ms (transaction_ms) and was stopped",
                self.limit.as_millis()
            )),
            other => other,
        }
    }
}

impl ScopedSqlite {
    fn check_table(&self, table: &str) -> Result<(), BackendError> {
        if self.scope.tables.contains(&table.to_ascii_lowercase()) {
            Ok(())
        } else {
            Err(BackendError::NotGranted(format!(
                "table \"{table}\" is not granted to component \"{}\"",
                self.scope.component
            )))
        }
    }

    /// SQL needs a table grant: a component without one has no business
    /// holding a connection or the write lock.
    fn check_sql(&self, sql: Option<&str>) -> Result<(), BackendError> {
        if let Some(sql) = sql {
            super::refuse_nul(sql)?;
        }
        if self.scope.tables.is_empty() {
            return Err(BackendError::NotGranted(format!(
                "component \"{}\" is granted no table, so it cannot run SQL or open a transaction",
                self.scope.component
            )));
        }
        Ok(())
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, BackendError> {
        self.connections
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BackendError::Unavailable("the database is closing".into()))
    }

    /// A pooled connection whose statements stop at the hold limit.
    async fn connection(&self) -> Result<(PoolConnection<sqlx::Sqlite>, Guarded), BackendError> {
        let mut conn = self.db.pool.acquire().await.map_err(map_error)?;
        let catalog = self.db.catalog(&mut conn).await?;
        let limit = limits::current().transaction;
        let hold_until = limits::current().hold_deadline();
        let mut handle = conn.lock_handle().await.map_err(map_error)?;
        handle.set_progress_handler(1000, move || Instant::now() < hold_until);
        drop(handle);
        let session = Session::new(self.scope.clone(), catalog);
        Ok((
            conn,
            Guarded {
                session,
                hold_until,
                limit,
            },
        ))
    }

    async fn install(conn: &mut sqlx::SqliteConnection, guarded: &Guarded) -> Result<(), BackendError> {
        let mut handle = conn.lock_handle().await.map_err(map_error)?;
        authorizer::install(&mut handle, &guarded.session);
        Ok(())
    }

    /// Clears the authorizer as soon as the component's statement is done
    /// (the pool clears it again on release, also when this never runs).
    async fn uninstall(conn: &mut sqlx::SqliteConnection) {
        if let Ok(mut handle) = conn.lock_handle().await {
            authorizer::clear(&mut handle);
        }
    }
}

#[async_trait]
impl Database for ScopedSqlite {
    async fn insert(&self, table: &str, record: &StoredRecord) -> Result<(), BackendError> {
        self.check_table(table)?;
        let _permit = self.permit().await?;
        self.db.insert(table, record).await
    }

    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError> {
        self.check_table(table)?;
        let _permit = self.permit().await?;
        self.db.get(table, uid).await
    }

    async fn update(
        &self,
        table: &str,
        uid: &str,
        changes: &Map<String, Json>,
        stamp: &Stamp,
    ) -> Result<Option<StoredRecord>, BackendError> {
        self.check_table(table)?;
        let _permit = self.permit().await?;
        self.db.update(table, uid, changes, stamp).await
    }

    async fn delete(&self, table: &str, uid: &str) -> Result<bool, BackendError> {
        self.check_table(table)?;
        let _permit = self.permit().await?;
        self.db.delete(table, uid).await
    }

    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError> {
        self.check_table(table)?;
        let _permit = self.permit().await?;
        self.db.delete_where(table, filters).await
    }

    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError> {
        self.check_table(table)?;
        let _permit = self.permit().await?;
        self.db.list(table, filters, limit, after).await
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        self.check_sql(Some(sql))?;
        let _permit = self.permit().await?;
        let (mut conn, guarded) = self.connection().await?;
        Self::install(&mut conn, &guarded).await?;
        let result = query_rows(&mut conn, sql, params, false).await;
        Self::uninstall(&mut conn).await;
        result.map_err(|e| guarded.fail(e))
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        self.check_sql(Some(sql))?;
        let _permit = self.permit().await?;
        let (mut conn, guarded) = self.connection().await?;
        Self::install(&mut conn, &guarded).await?;
        let result = execute_on(&mut conn, sql, params, false).await;
        Self::uninstall(&mut conn).await;
        result.map_err(|e| guarded.fail(e))
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, BackendError> {
        self.check_sql(None)?;
        let permit = self.permit().await?;
        let (conn, guarded) = self.connection().await?;
        // BEGIN runs before the authorizer, which refuses it to components.
        let mut tx = sqlx::Transaction::begin(conn, Some(AssertSqlSafe("BEGIN IMMEDIATE").into_sql_str()))
            .await
            .map_err(map_error)
            .map_err(|e| guarded.fail(e))?;
        Self::install(&mut tx, &guarded).await?;
        Ok(Box::new(SqliteTransaction {
            tx: Some(tx),
            guarded: Some(guarded),
            _permit: Some(permit),
        }))
    }

    fn schema_changed(&self) {
        self.db.schema_changed();
    }

    fn for_request(self: Arc<Self>) -> Arc<dyn Database> {
        self
    }

    async fn scoped(self: Arc<Self>, component: &str, tables: &BTreeSet<String>) -> Result<Arc<dyn Database>, BackendError> {
        self.db.clone().scoped(component, tables).await
    }
}

/// A transaction on one pooled connection; a component's carries its
/// authorizer until the connection goes back to the pool.
struct SqliteTransaction {
    tx: Option<sqlx::Transaction<'static, sqlx::Sqlite>>,
    guarded: Option<Guarded>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl SqliteTransaction {
    /// Checks one statement's text and readies the authorizer for it;
    /// returns whether its prepared form may be cached (only when no
    /// authorizer judges it).
    fn start_statement(&self, sql: &str) -> Result<bool, BackendError> {
        super::refuse_nul(sql)?;
        if let Some(g) = &self.guarded {
            g.session.next_call();
        }
        Ok(self.guarded.is_none())
    }

    fn tx(&mut self) -> &mut sqlx::SqliteConnection {
        self.tx.as_mut().expect("present until commit or rollback")
    }

    fn fail(&self, error: BackendError) -> BackendError {
        match &self.guarded {
            Some(g) => g.fail(error),
            None => error,
        }
    }

    /// Lets the host's COMMIT or ROLLBACK through the authorizer.
    fn end(&mut self) -> sqlx::Transaction<'static, sqlx::Sqlite> {
        if let Some(g) = &self.guarded {
            g.session.end();
        }
        self.tx.take().expect("present until commit or rollback")
    }
}

impl Drop for SqliteTransaction {
    fn drop(&mut self) {
        // Dropping the sqlx transaction rolls back, under the authorizer.
        if let Some(g) = &self.guarded {
            g.session.end();
        }
    }
}

#[async_trait]
impl Transaction for SqliteTransaction {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let persistent = self.start_statement(sql)?;
        let result = query_rows(self.tx(), sql, params, persistent).await;
        result.map_err(|e| self.fail(e))
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let persistent = self.start_statement(sql)?;
        let result = execute_on(self.tx(), sql, params, persistent).await;
        result.map_err(|e| self.fail(e))
    }

    async fn commit(mut self: Box<Self>) -> Result<(), BackendError> {
        let result = self.end().commit().await.map_err(map_error);
        result.map_err(|e| self.fail(e))
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), BackendError> {
        let result = self.end().rollback().await.map_err(map_error);
        result.map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    //! The authorizer at the database layer, beneath the SQL guard: each
    //! statement goes to the scoped handle directly.

    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;

    use super::Sqlite;
    use crate::capability::cache::{Cache, EmbeddedCache};
    use crate::capability::db::{BackendError, Database, Stamp, StoredRecord, Value};
    use crate::capability::queue::{EmbeddedQueue, OutgoingMessage, Queue};

    struct Fixture {
        _dir: tempfile::TempDir,
        host: Arc<Sqlite>,
        component: Arc<dyn Database>,
        cache: EmbeddedCache,
        queue: EmbeddedQueue,
    }

    /// One pooled connection, so the host's statements run on the very
    /// connection the component's refused statement ran on.
    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let host = Arc::new(Sqlite::open_with(&dir.path().join("db.sqlite"), 1).await.unwrap());
        let cache = EmbeddedCache::open(host.pool().clone()).await.unwrap();
        let queue = EmbeddedQueue::open(host.pool().clone()).await.unwrap();
        for sql in [
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
            "CREATE TABLE secrets (id INTEGER PRIMARY KEY, body TEXT)",
            "INSERT INTO secrets VALUES (1, 'hidden')",
            "CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT)",
        ] {
            host.execute(sql, &[]).await.unwrap();
        }
        let tables: BTreeSet<String> = ["notes", "people", "kids"].map(String::from).into();
        let component = host.clone().scoped("mallory", &tables).await.unwrap();
        Fixture {
            _dir: dir,
            host,
            component,
            cache,
            queue,
        }
    }

    /// Rows as JSON, to compare.
    fn plain(rows: Vec<Vec<Value>>) -> serde_json::Value {
        rows.into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        Value::Integer(i) => json!(i),
                        Value::Text(s) => json!(s),
                        Value::Null => json!(null),
                        other => json!(format!("{other:?}")),
                    })
                    .collect::<serde_json::Value>()
            })
            .collect()
    }

    async fn refused(db: &dyn Database, sql: &str) -> String {
        match db.execute(sql, &[]).await {
            Err(BackendError::NotGranted(m)) => m,
            other => panic!("{sql}: expected not-granted, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_authorizer_refuses_what_is_not_granted() {
        let f = fixture().await;
        let db = f.component.as_ref();
        let cases = [
            ("SELECT * FROM secrets", "\"secrets\" is not granted"),
            ("SELECT count(*) FROM secrets", "\"secrets\" is not granted"),
            ("WITH c AS (SELECT 1) SELECT count(*) FROM secrets, c", "\"secrets\" is not granted"),
            ("SELECT count(*) FROM pragma_table_list", "not granted"),
            ("SELECT count(*) FROM sqlite_master", "not granted"),
            ("SELECT * FROM main.secrets", "\"secrets\" is not granted"),
            (
                "SELECT * FROM notes WHERE id IN (SELECT id FROM secrets)",
                "\"secrets\" is not granted",
            ),
            ("UPDATE notes SET body = (SELECT body FROM secrets)", "\"secrets\" is not granted"),
            ("DELETE FROM secrets", "\"secrets\" is not granted"),
            ("DROP TABLE secrets", "\"secrets\" is not granted"),
            ("CREATE INDEX notes_sneaky ON secrets (body)", "\"secrets\" is not granted"),
            ("ALTER TABLE secrets ADD COLUMN x TEXT", "\"secrets\" is not granted"),
            ("SELECT name FROM sqlite_master", "\"sqlite_master\" is not granted"),
            ("SELECT name FROM sqlite_schema", "\"sqlite_master\" is not granted"),
            ("SELECT name FROM sqlite_temp_master", "not \"temp.sqlite_temp_master\""),
            ("SELECT * FROM corral_cache", "\"corral_cache\" is not granted"),
            ("DELETE FROM corral_queue", "\"corral_queue\" is not granted"),
            ("SELECT * FROM pragma_table_list", "not granted"),
            (
                "ATTACH DATABASE '/tmp/corral-attack.db' AS other",
                "ATTACH statements are not allowed",
            ),
            ("DETACH DATABASE other", "DETACH statements are not allowed"),
            ("PRAGMA foreign_keys = OFF", "PRAGMA statements are not allowed"),
            ("PRAGMA writable_schema = ON", "PRAGMA statements are not allowed"),
            ("PRAGMA table_info(secrets)", "PRAGMA statements are not allowed"),
            ("SELECT load_extension('/tmp/evil.so')", "load_extension is not allowed"),
            ("CREATE TEMP TABLE notes (id INTEGER)", "not \"temp."),
            ("CREATE TEMP VIEW notes AS SELECT 1", "not \"temp."),
            (
                "CREATE TEMP TRIGGER notes_t AFTER INSERT ON notes BEGIN SELECT 1; END",
                "temporary table",
            ),
            ("UPDATE sqlite_sequence SET seq = 0", "\"sqlite_sequence\" is not granted"),
            (
                "CREATE TRIGGER notes_t AFTER INSERT ON notes BEGIN DELETE FROM secrets; END",
                "trigger",
            ),
            ("BEGIN", "BEGIN statements are not allowed"),
            ("COMMIT", "COMMIT statements are not allowed"),
            ("SAVEPOINT s", "SAVEPOINT statements are not allowed"),
            ("ANALYZE", "ANALYZE statements are not allowed"),
        ];
        let mut wrong = Vec::new();
        for (sql, expected) in cases {
            match db.execute(sql, &[]).await {
                Err(BackendError::NotGranted(m)) if m.contains(expected) => {}
                other => wrong.push(format!("{sql}: {other:?}")),
            }
        }
        // SQLite itself refuses writes to its catalog.
        for sql in [
            "INSERT INTO sqlite_master VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x (y)')",
            "UPDATE sqlite_master SET sql = 'x'",
            "DELETE FROM sqlite_schema",
        ] {
            match db.execute(sql, &[]).await {
                Err(BackendError::Invalid(m)) if m.contains("may not be modified") => {}
                other => wrong.push(format!("{sql}: {other:?}")),
            }
        }
        assert!(wrong.is_empty(), "not refused as expected:\n  {}", wrong.join("\n  "));
        // Nothing of the victim changed, and no temp table shadows a grant.
        let rows = f.host.query("SELECT id, body FROM secrets", &[]).await.unwrap().rows;
        assert_eq!(plain(rows), json!([[1, "hidden"]]));
        let temp = f.host.query("SELECT count(*) FROM sqlite_temp_master", &[]).await.unwrap().rows;
        assert_eq!(plain(temp), json!([[0]]));
    }

    #[tokio::test]
    async fn granted_statements_run() {
        let f = fixture().await;
        let db = f.component.as_ref();
        for sql in [
            "CREATE TABLE kids (id INTEGER PRIMARY KEY AUTOINCREMENT, note INTEGER REFERENCES notes (id), name TEXT)",
            "INSERT INTO notes (id, body) VALUES (1, 'a'), (2, 'b')",
            "INSERT INTO kids (note, name) VALUES (1, 'x')",
            "UPDATE notes SET body = upper(body) WHERE id = 1",
            "CREATE INDEX notes_by_body ON notes (body)",
            "DROP INDEX notes_by_body",
            "ALTER TABLE notes ADD COLUMN extra TEXT",
            "ALTER TABLE notes RENAME COLUMN extra TO more",
            "ALTER TABLE notes DROP COLUMN more",
            "CREATE TABLE people AS SELECT id, body FROM notes",
            "DROP TABLE people",
            "ALTER TABLE kids RENAME TO people",
            "ALTER TABLE people RENAME TO kids",
            "CREATE VIEW people AS SELECT id FROM notes",
            "DROP VIEW people",
            "INSERT INTO notes (id) WITH RECURSIVE c(x) AS (SELECT 10 UNION ALL SELECT x + 1 FROM c WHERE x < 12) SELECT x FROM c",
            "DELETE FROM notes WHERE id >= 2",
            "DROP TABLE kids",
        ] {
            db.execute(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        let rows = db
            .query(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) \
                 SELECT (SELECT group_concat(x) FROM c), (SELECT count(*) FROM json_each('[1,2]')), body FROM notes",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(plain(rows.rows), json!([["1,2,3", 2, "A"]]));
    }

    #[tokio::test]
    async fn references_to_an_ungranted_table_are_refused() {
        let f = fixture().await;
        let db = f.component.as_ref();
        db.execute(
            "CREATE TABLE kids (id INTEGER PRIMARY KEY, secret INTEGER REFERENCES secrets (id))",
            &[],
        )
        .await
        .unwrap();
        // SQLite checks a foreign key by reading its parent table.
        let message = refused(db, "INSERT INTO kids (id, secret) VALUES (1, 1)").await;
        assert!(message.contains("\"secrets\" is not granted"), "{message}");
        let message = refused(db, "DELETE FROM kids").await;
        assert!(message.contains("\"secrets\" is not granted"), "{message}");
    }

    #[tokio::test]
    async fn audit_columns_of_records_tables_cannot_be_written_by_sql() {
        let f = fixture().await;
        let stamp = Stamp::now(Some("alice".into()));
        let record = StoredRecord::new(json!({"name": "Ada"}).as_object().unwrap().clone(), &stamp);
        f.component.insert("people", &record).await.unwrap();
        let db = f.component.as_ref();
        for (sql, expected) in [
            (
                "UPDATE people SET creator_uid = 'mallory'",
                "\"creator_uid\" of records table \"people\"",
            ),
            ("UPDATE people SET created_at = '2000-01-01T00:00:00.000Z'", "\"created_at\""),
            (
                "UPDATE people SET last_updater_uid = 'mallory', data = '{}'",
                "\"last_updater_uid\"",
            ),
            ("UPDATE people SET uid = 'x'", "\"uid\""),
            (
                "INSERT INTO people VALUES ('0189aaaa-0000-7000-8000-000000000000', 'a', 'b', 'mallory', 'mallory', '{}')",
                "inserted through the records API",
            ),
            (
                "INSERT INTO people (uid, created_at, last_updated_at, data) SELECT uid || 'x', created_at, last_updated_at, data FROM people",
                "inserted through the records API",
            ),
            ("ALTER TABLE people RENAME COLUMN creator_uid TO c", "belongs to the host"),
        ] {
            let message = refused(db, sql).await;
            assert!(message.contains(expected), "{sql}: {message}");
        }
        // The data column stays the component's; keys named like audit
        // fields inside it never override the stamps.
        db.execute(
            "UPDATE people SET data = json_set(data, '$.creator_uid', 'mallory', '$.uid', 'x', '$.age', 3)",
            &[],
        )
        .await
        .unwrap();
        let stored = f.component.get("people", &record.uid).await.unwrap().unwrap();
        let seen = stored.to_json();
        assert_eq!(
            (&seen["uid"], &seen["creator_uid"], &seen["created_at"], &seen["age"]),
            (&json!(record.uid), &json!("alice"), &json!(record.created_at), &json!(3))
        );
    }

    #[tokio::test]
    async fn host_statements_work_right_after_a_refused_one_on_the_same_connection() {
        let f = fixture().await;
        refused(f.component.as_ref(), "SELECT * FROM corral_cache").await;
        // The cache, the queue, the records API and the host's own SQL.
        f.cache.set("s", "k", b"v", None).await.unwrap();
        assert_eq!(f.cache.get("s", "k").await.unwrap().as_deref(), Some(&b"v"[..]));
        let sent = f
            .queue
            .send(
                "q",
                &[OutgoingMessage {
                    body: "m".into(),
                    attributes: Vec::new(),
                    group_id: None,
                    dedup_id: None,
                    delay_seconds: 0,
                }],
            )
            .await
            .unwrap();
        assert!(sent[0].is_ok(), "{sent:?}");
        let record = StoredRecord::new(Default::default(), &Stamp::now(None));
        f.host.insert("secrets_log", &record).await.unwrap();
        f.host.execute("INSERT INTO secrets VALUES (2, 'x')", &[]).await.unwrap();

        // A component statement cut off mid-way (its future dropped), and
        // a component transaction dropped: the host is unrestricted after.
        let slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
        let cut = tokio::time::timeout(Duration::from_millis(100), f.component.query(slow, &[])).await;
        assert!(cut.is_err(), "the slow statement ended: {cut:?}");
        let mut tx = f.component.begin().await.unwrap();
        tx.execute("CREATE TABLE notes2 (id INTEGER)", &[]).await.unwrap_err();
        tx.execute("INSERT INTO notes (id) VALUES (9)", &[]).await.unwrap();
        drop(tx);
        let rows = f.host.query("SELECT count(*) FROM corral_cache", &[]).await.unwrap().rows;
        assert_eq!(plain(rows), json!([[1]]));
        let rows = f.host.query("SELECT count(*) FROM notes", &[]).await.unwrap().rows;
        assert_eq!(plain(rows), json!([[0]]), "the dropped transaction rolled back");
        // The host can open its own transaction: no component transaction is left open.
        let updated = f
            .host
            .update("secrets_log", &record.uid, &Default::default(), &Stamp::now(None))
            .await
            .unwrap();
        assert!(updated.is_some());
    }

    #[tokio::test]
    async fn nul_bytes_and_components_without_tables_are_refused_before_sqlite() {
        let f = fixture().await;
        match f.component.query("SELECT 1\0; DELETE FROM notes", &[]).await {
            Err(BackendError::Invalid(m)) => assert!(m.contains("NUL"), "{m}"),
            other => panic!("{other:?}"),
        }
        let none = f.host.clone().scoped("idle", &BTreeSet::new()).await.unwrap();
        for result in [none.execute("SELECT 1", &[]).await.map(|_| ()), none.begin().await.map(|_| ())] {
            match result {
                Err(BackendError::NotGranted(m)) => assert!(m.contains("granted no table"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
