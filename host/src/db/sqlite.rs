//! The embedded database: one SQLite file in the data directory. Its pool
//! also backs the embedded cache and queue.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value as Json};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Column, Row, SqlitePool, TypeInfo, ValueRef};

use super::records::{Condition, JsonKind};
use super::{BackendError, Database, Filter, Rows, Stamp, StoredRecord, Transaction, Value, map_error};

/// SQLite behind the [`Database`] trait.
pub struct Sqlite {
    pool: SqlitePool,
    /// Record tables known to exist, so `CREATE TABLE IF NOT EXISTS` runs once each.
    ensured: Mutex<HashSet<String>>,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>;

const RECORD_COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data";

impl Sqlite {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Sqlite, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(bound_statements(conn)))
            .before_acquire(|conn, _| Box::pin(async move { bound_statements(conn).await.map(|()| true) }))
            .connect_with(options)
            .await?;
        Ok(Sqlite {
            pool,
            ensured: Mutex::new(HashSet::new()),
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
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (uid TEXT PRIMARY KEY, created_at TEXT NOT NULL, \
             last_updated_at TEXT NOT NULL, creator_uid TEXT, last_updater_uid TEXT, data TEXT NOT NULL)"
        );
        sqlx::query(AssertSqlSafe(ddl)).execute(&self.pool).await.map_err(map_error)?;
        self.ensured.lock().expect("not poisoned").insert(table.to_owned());
        Ok(())
    }
}

/// Makes the connection stop any statement still running at the deadline of
/// the component call that acquired it. SQLite runs a statement to its end
/// even when nobody waits for it any more, holding its locks all the while;
/// the progress handler is how it can be interrupted.
async fn bound_statements(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    match crate::backend::deadline() {
        Some(deadline) => handle.set_progress_handler(1000, move || std::time::Instant::now() < deadline),
        None => handle.remove_progress_handler(),
    }
    Ok(())
}

/// The SQL condition and its bound values for `filters`.
fn where_clause(filters: &[Filter]) -> (String, Vec<Value>) {
    let mut sql = String::from("1=1");
    let mut params = Vec::new();
    for f in filters {
        let param = match &f.value {
            Json::Bool(b) => Value::Integer(*b as i64),
            Json::Number(n) => n
                .as_i64()
                .map(Value::Integer)
                .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
            Json::String(s) => Value::Text(s.clone()),
            Json::Null | Json::Array(_) | Json::Object(_) => Value::Null,
        };
        if f.is_audit_field() {
            match f.condition() {
                Condition::Null { negated } => sql.push_str(&format!(" AND {} IS {}NULL", f.field, if negated { "NOT " } else { "" })),
                _ => {
                    sql.push_str(&format!(" AND {} {} ?", f.field, f.operator()));
                    params.push(param);
                }
            }
            continue;
        }
        let value = format!("json_extract(data, '$.{}')", f.field);
        let kind = format!("json_type(data, '$.{}')", f.field);
        let same_kind = match f.kind() {
            JsonKind::String => format!("{kind} = 'text'"),
            JsonKind::Number => format!("{kind} IN ('integer', 'real')"),
            JsonKind::Boolean => format!("{kind} IN ('true', 'false')"),
        };
        match f.condition() {
            Condition::Null { negated } => sql.push_str(&format!(" AND {value} IS {}NULL", if negated { "NOT " } else { "" })),
            Condition::Compare { operator } => {
                sql.push_str(&format!(" AND ({same_kind} AND {value} {operator} ?)"));
                params.push(param);
            }
            Condition::NotEqual => {
                sql.push_str(&format!(" AND ({kind} IS NOT NULL AND NOT ({same_kind} AND {value} = ?))"));
                params.push(param);
            }
        }
    }
    (sql, params)
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

/// Runs a query on one connection; with no rows, the column names come from
/// the prepared statement instead.
async fn query_rows(conn: &mut sqlx::SqliteConnection, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
    let rows = bind(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
    let columns = match rows.first() {
        Some(r) => r.columns().iter().map(|c| c.name().to_owned()).collect(),
        None => {
            let statement = sqlx::Executor::prepare(&mut *conn, sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(sql.to_owned())))
                .await
                .map_err(map_error)?;
            sqlx::Statement::columns(&statement).iter().map(|c| c.name().to_owned()).collect()
        }
    };
    let rows = rows
        .iter()
        .map(|row| (0..row.len()).map(|i| column_value(row, i)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    Ok(Rows { columns, rows })
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
    async fn scoped(self: std::sync::Arc<Self>, _component: &str, _tables: &std::collections::BTreeSet<String>) -> Result<std::sync::Arc<dyn Database>, BackendError> {
        Ok(self)
    }

    async fn insert(&self, table: &str, r: &StoredRecord) -> Result<(), BackendError> {
        self.ensure_records_table(table).await?;
        let sql = format!("INSERT INTO \"{table}\" ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)");
        sqlx::query(AssertSqlSafe(sql))
            .bind(&r.uid)
            .bind(&r.created_at)
            .bind(&r.last_updated_at)
            .bind(&r.creator_uid)
            .bind(&r.last_updater_uid)
            .bind(Json::Object(r.data.clone()).to_string())
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError> {
        self.ensure_records_table(table).await?;
        let sql = format!("SELECT {RECORD_COLUMNS} FROM \"{table}\" WHERE uid = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(uid)
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
        let select = format!("SELECT {RECORD_COLUMNS} FROM \"{table}\" WHERE uid = ?");
        let Some(row) = sqlx::query(AssertSqlSafe(select))
            .bind(uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        let mut record = record_from_row(&row)?;
        record.apply(changes, stamp);
        let update = format!("UPDATE \"{table}\" SET last_updated_at = ?, last_updater_uid = ?, data = ? WHERE uid = ?");
        sqlx::query(AssertSqlSafe(update))
            .bind(&record.last_updated_at)
            .bind(&record.last_updater_uid)
            .bind(Json::Object(record.data.clone()).to_string())
            .bind(uid)
            .execute(&mut *tx)
            .await
            .map_err(map_error)?;
        tx.commit().await.map_err(map_error)?;
        Ok(Some(record))
    }

    async fn delete(&self, table: &str, uid: &str) -> Result<bool, BackendError> {
        self.ensure_records_table(table).await?;
        let sql = format!("DELETE FROM \"{table}\" WHERE uid = ?");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(uid)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError> {
        self.ensure_records_table(table).await?;
        let (cond, params) = where_clause(filters);
        let sql = format!("DELETE FROM \"{table}\" WHERE {cond}");
        let done = bind(sqlx::query(AssertSqlSafe(sql)), &params)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError> {
        self.ensure_records_table(table).await?;
        let (mut cond, mut params) = where_clause(filters);
        if let Some(after) = after {
            cond.push_str(" AND uid > ?");
            params.push(Value::Text(after.to_owned()));
        }
        params.push(Value::Integer(limit as i64));
        let sql = format!("SELECT {RECORD_COLUMNS} FROM \"{table}\" WHERE {cond} ORDER BY uid LIMIT ?");
        let rows = bind(sqlx::query(AssertSqlSafe(sql)), &params)
            .fetch_all(&self.pool)
            .await
            .map_err(map_error)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let mut conn = self.pool.acquire().await.map_err(map_error)?;
        query_rows(&mut conn, sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let done = bind(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .execute(&self.pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    fn schema_changed(&self) {
        self.ensured.lock().expect("not poisoned").clear();
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, BackendError> {
        // IMMEDIATE: a deferred transaction that later writes can fail with
        // SQLITE_BUSY instead of waiting for the lock.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_error)?;
        Ok(Box::new(SqliteTransaction(tx)))
    }
}

struct SqliteTransaction(sqlx::Transaction<'static, sqlx::Sqlite>);

#[async_trait]
impl Transaction for SqliteTransaction {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        query_rows(&mut self.0, sql, params).await
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let done = bind(sqlx::query(AssertSqlSafe(sql.to_owned())), params)
            .execute(&mut *self.0)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn commit(self: Box<Self>) -> Result<(), BackendError> {
        self.0.commit().await.map_err(map_error)
    }

    async fn rollback(self: Box<Self>) -> Result<(), BackendError> {
        self.0.rollback().await.map_err(map_error)
    }
}
