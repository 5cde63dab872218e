//! PostgreSQL (RDS on AWS): one pool kept for the life of the process,
//! password or IAM auth, TLS as the URL asks. With IAM auth every new
//! connection logs in with a fresh token: the token's age is checked when
//! the pool is used (a frozen Lambda runs no timers), and the pool's connect
//! options are replaced before the token gets old.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value as Json};
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnectOptions, PgPoolOptions, PgRow, PgTypeInfo, PgValueRef};
use sqlx::types::Json as SqlJson;
use sqlx::{AssertSqlSafe, Column, PgPool, Postgres as Pg, Row, TypeInfo, ValueRef};
use tokio::sync::Mutex;

use super::iam::PasswordSource;
use super::placeholders::number_placeholders;
use super::records::{Condition, JsonKind};
use super::{BackendError, Database, Filter, Rows, Stamp, StoredRecord, Transaction, Value, map_error};

type Query<'q> = sqlx::query::Query<'q, Pg, PgArguments>;

const RECORD_COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data";

/// Records are read with their document as text: `json` keeps the text as
/// written (field order, `-0.0`), which `jsonb` would normalize.
const SELECT_COLUMNS: &str = "uid, created_at, last_updated_at, creator_uid, last_updater_uid, data::text AS data";

/// How to reach the database.
pub struct PostgresOptions {
    /// A `postgres://user[:password]@host:port/db?sslmode=...` URL.
    pub url: String,
    /// Where passwords come from when the URL has none (RDS IAM auth).
    pub password_source: Option<Arc<dyn PasswordSource>>,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// The longest any statement, or an idle open transaction, may take:
    /// the longest time limit of any component.
    pub statement_timeout: Duration,
}

/// PostgreSQL behind the [`Database`] trait.
pub struct Postgres {
    pool: PgPool,
    base_options: PgConnectOptions,
    auth: Option<Arc<dyn PasswordSource>>,
    /// When the current password was made; refreshed under this lock.
    password_made: Mutex<Instant>,
    ensured: std::sync::Mutex<HashSet<String>>,
}

impl Postgres {
    /// Connects (one connection up front, so a wrong URL or password fails at start).
    pub async fn connect(options: PostgresOptions) -> Result<Postgres, BackendError> {
        let timeout_ms = options.statement_timeout.as_millis().to_string();
        // The server stops what nobody waits for any more: dropping a query
        // future does not cancel it there.
        let base_options = PgConnectOptions::from_str(&options.url)
            .map_err(|e| BackendError::Invalid(format!("bad database URL: {e}")))?
            .options([
                ("statement_timeout", timeout_ms.as_str()),
                ("idle_in_transaction_session_timeout", timeout_ms.as_str()),
            ]);
        let mut connect = base_options.clone();
        if let Some(source) = &options.password_source {
            connect = connect.password(&source.password().await?);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await
            .map_err(|e| BackendError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(Postgres {
            pool,
            base_options,
            auth: options.password_source,
            password_made: Mutex::new(Instant::now()),
            ensured: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// The pool, with connect options whose password is still fresh: a token
    /// is replaced once two thirds of its lifetime have passed, so a new
    /// connection never logs in with an expired one.
    async fn pool(&self) -> Result<&PgPool, BackendError> {
        if let Some(source) = &self.auth {
            let mut made = self.password_made.lock().await;
            if made.elapsed() >= source.lifetime() * 2 / 3 {
                let password = source.password().await?;
                self.pool.set_connect_options(self.base_options.clone().password(&password));
                *made = Instant::now();
                tracing::debug!("database auth token refreshed");
            }
        }
        Ok(&self.pool)
    }

    async fn ensure_records_table(&self, table: &str) -> Result<&PgPool, BackendError> {
        let pool = self.pool().await?;
        if self.ensured.lock().expect("not poisoned").contains(table) {
            return Ok(pool);
        }
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (uid TEXT PRIMARY KEY, created_at TEXT NOT NULL, \
             last_updated_at TEXT NOT NULL, creator_uid TEXT, last_updater_uid TEXT, data JSON NOT NULL)"
        );
        // Two connections creating the same table at once can collide in the
        // catalog; the second attempt then finds it.
        if let Err(e) = sqlx::query(AssertSqlSafe(ddl.clone())).execute(pool).await {
            tracing::debug!(table, error = %e, "retrying table creation");
            sqlx::query(AssertSqlSafe(ddl)).execute(pool).await.map_err(map_error)?;
        }
        self.ensured.lock().expect("not poisoned").insert(table.to_owned());
        Ok(pool)
    }
}

/// A NULL parameter of no declared type: the server infers it from where it
/// is used, as it would for a literal NULL.
struct UntypedNull;

impl sqlx::Type<Pg> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(0))
    }
}

impl sqlx::Encode<'_, Pg> for UntypedNull {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn bind<'q>(mut q: Query<'q>, params: &[Value]) -> Query<'q> {
    for p in params {
        q = match p.clone() {
            Value::Null => q.bind(UntypedNull),
            Value::Boolean(b) => q.bind(b),
            Value::Integer(i) => q.bind(i),
            Value::Float(f) => q.bind(f),
            Value::Text(s) => q.bind(s),
            Value::Blob(b) => q.bind(b),
        };
    }
    q
}

/// The condition for `filters`, numbering parameters from `$first`.
fn where_clause(filters: &[Filter], first: usize) -> (String, Vec<FilterParam>) {
    let mut sql = String::from("TRUE");
    let mut params = Vec::new();
    for f in filters {
        let n = first + params.len();
        if f.is_audit_field() {
            match f.condition() {
                Condition::Null { negated } => sql.push_str(&format!(" AND {} IS {}NULL", f.field, if negated { "NOT " } else { "" })),
                _ => {
                    sql.push_str(&format!(" AND {} {} ${n}", f.field, f.operator()));
                    // Audit columns are text; compare with the value as text.
                    params.push(FilterParam::Text(
                        f.value.as_str().map(str::to_owned).unwrap_or_else(|| f.value.to_string()),
                    ));
                }
            }
            continue;
        }
        let value = format!("(data->'{}')::jsonb", f.field);
        let same_kind = match f.kind() {
            JsonKind::String => format!("jsonb_typeof({value}) = 'string'"),
            JsonKind::Number => format!("jsonb_typeof({value}) = 'number'"),
            JsonKind::Boolean => format!("jsonb_typeof({value}) = 'boolean'"),
        };
        match f.condition() {
            Condition::Null { negated } => sql.push_str(&format!(" AND {value} IS {}NULL", if negated { "NOT " } else { "" })),
            Condition::Compare { operator } => {
                sql.push_str(&format!(" AND ({same_kind} AND {value} {operator} ${n})"));
                params.push(FilterParam::Json(f.value.clone()));
            }
            Condition::NotEqual => {
                sql.push_str(&format!(" AND ({value} IS NOT NULL AND NOT ({same_kind} AND {value} = ${n}))"));
                params.push(FilterParam::Json(f.value.clone()));
            }
        }
    }
    (sql, params)
}

enum FilterParam {
    Text(String),
    Json(Json),
}

fn bind_filters<'q>(mut q: Query<'q>, params: Vec<FilterParam>) -> Query<'q> {
    for p in params {
        q = match p {
            FilterParam::Text(s) => q.bind(s),
            FilterParam::Json(j) => q.bind(SqlJson(j)),
        };
    }
    q
}

fn record_from_row(row: &PgRow) -> Result<StoredRecord, BackendError> {
    let data: String = row.try_get("data").map_err(map_error)?;
    let data: Map<String, Json> =
        serde_json::from_str(&data).map_err(|e| BackendError::Invalid(format!("stored record is not a JSON object: {e}")))?;
    Ok(StoredRecord {
        uid: row.try_get("uid").map_err(map_error)?,
        created_at: row.try_get("created_at").map_err(map_error)?,
        last_updated_at: row.try_get("last_updated_at").map_err(map_error)?,
        creator_uid: row.try_get("creator_uid").map_err(map_error)?,
        last_updater_uid: row.try_get("last_updater_uid").map_err(map_error)?,
        data,
    })
}

/// Runs a query on one connection; with no rows, the column names come from
/// the prepared statement instead.
async fn query_rows(conn: &mut sqlx::PgConnection, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
    let sql = number_placeholders(sql);
    let rows = bind(sqlx::query(AssertSqlSafe(sql.clone())), params)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
    let columns = match rows.first() {
        Some(r) => r.columns().iter().map(|c| c.name().to_owned()).collect(),
        None => {
            let statement = sqlx::Executor::prepare(&mut *conn, sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(sql)))
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

fn column_value(row: &PgRow, i: usize) -> Result<Value, BackendError> {
    let raw: PgValueRef<'_> = row.try_get_raw(i).map_err(map_error)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_owned();
    let get = |e: sqlx::Error| map_error(e);
    Ok(match kind.as_str() {
        "BOOL" => Value::Boolean(row.try_get(i).map_err(get)?),
        "INT2" => Value::Integer(row.try_get::<i16, _>(i).map_err(get)?.into()),
        "INT4" => Value::Integer(row.try_get::<i32, _>(i).map_err(get)?.into()),
        "INT8" => Value::Integer(row.try_get(i).map_err(get)?),
        "FLOAT4" => Value::Float(row.try_get::<f32, _>(i).map_err(get)?.into()),
        "FLOAT8" => Value::Float(row.try_get(i).map_err(get)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => Value::Text(row.try_get(i).map_err(get)?),
        "BYTEA" => Value::Blob(row.try_get(i).map_err(get)?),
        "JSON" | "JSONB" => Value::Text(row.try_get::<SqlJson<Json>, _>(i).map_err(get)?.0.to_string()),
        "UUID" => Value::Text(row.try_get::<uuid::Uuid, _>(i).map_err(get)?.to_string()),
        "TIMESTAMPTZ" => Value::Text(
            row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)
                .map_err(get)?
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        ),
        "TIMESTAMP" => Value::Text(
            row.try_get::<chrono::NaiveDateTime, _>(i)
                .map_err(get)?
                .format("%Y-%m-%dT%H:%M:%S%.f")
                .to_string(),
        ),
        "DATE" => Value::Text(row.try_get::<chrono::NaiveDate, _>(i).map_err(get)?.to_string()),
        other => {
            return Err(BackendError::Invalid(format!(
                "column \"{}\" has type {other}, which corral does not read; cast it to text or float8",
                row.columns()[i].name()
            )));
        }
    })
}

#[async_trait]
impl Database for Postgres {
    async fn scoped(
        self: std::sync::Arc<Self>,
        _component: &str,
        _tables: &std::collections::BTreeSet<String>,
    ) -> Result<std::sync::Arc<dyn Database>, BackendError> {
        Ok(self)
    }

    async fn insert(&self, table: &str, r: &StoredRecord) -> Result<(), BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let sql = format!("INSERT INTO \"{table}\" ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6::json)");
        sqlx::query(AssertSqlSafe(sql))
            .bind(&r.uid)
            .bind(&r.created_at)
            .bind(&r.last_updated_at)
            .bind(&r.creator_uid)
            .bind(&r.last_updater_uid)
            .bind(Json::Object(r.data.clone()).to_string())
            .execute(pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let sql = format!("SELECT {SELECT_COLUMNS} FROM \"{table}\" WHERE uid = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(uid)
            .fetch_optional(pool)
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
        let pool = self.ensure_records_table(table).await?;
        let mut tx = pool.begin().await.map_err(map_error)?;
        // The row lock keeps a concurrent update from interleaving with this read-modify-write.
        let select = format!("SELECT {SELECT_COLUMNS} FROM \"{table}\" WHERE uid = $1 FOR UPDATE");
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
        let update = format!("UPDATE \"{table}\" SET last_updated_at = $1, last_updater_uid = $2, data = $3::json WHERE uid = $4");
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
        let pool = self.ensure_records_table(table).await?;
        let sql = format!("DELETE FROM \"{table}\" WHERE uid = $1");
        let done = sqlx::query(AssertSqlSafe(sql)).bind(uid).execute(pool).await.map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let (cond, params) = where_clause(filters, 1);
        let sql = format!("DELETE FROM \"{table}\" WHERE {cond}");
        let done = bind_filters(sqlx::query(AssertSqlSafe(sql)), params)
            .execute(pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let (mut cond, params) = where_clause(filters, 1);
        let mut next = params.len() + 1;
        if after.is_some() {
            cond.push_str(&format!(" AND uid > ${next}"));
            next += 1;
        }
        let sql = format!("SELECT {SELECT_COLUMNS} FROM \"{table}\" WHERE {cond} ORDER BY uid LIMIT ${next}");
        let mut q = bind_filters(sqlx::query(AssertSqlSafe(sql)), params);
        if let Some(after) = after {
            q = q.bind(after.to_owned());
        }
        let rows = q.bind(limit as i64).fetch_all(pool).await.map_err(map_error)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let mut conn = self.pool().await?.acquire().await.map_err(map_error)?;
        query_rows(&mut conn, sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let pool = self.pool().await?;
        let done = bind(sqlx::query(AssertSqlSafe(number_placeholders(sql))), params)
            .execute(pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, BackendError> {
        let tx = self.pool().await?.begin().await.map_err(map_error)?;
        Ok(Box::new(PgTransaction(tx)))
    }

    fn schema_changed(&self) {
        self.ensured.lock().expect("not poisoned").clear();
    }
}

struct PgTransaction(sqlx::Transaction<'static, Pg>);

#[async_trait]
impl Transaction for PgTransaction {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        query_rows(&mut self.0, sql, params).await
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let done = bind(sqlx::query(AssertSqlSafe(number_placeholders(sql))), params)
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
