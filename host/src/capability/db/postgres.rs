//! PostgreSQL (RDS on AWS): one pool kept for the life of the process,
//! password or IAM auth, TLS as the URL asks. With IAM auth every new
//! connection logs in with a fresh token: the token's age is checked when
//! the pool is used (a frozen Lambda runs no timers), and the pool's connect
//! options are replaced before the token gets old.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value as Json};
use sqlx::pool::PoolConnection;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnectOptions, PgPoolOptions, PgRow, PgTypeInfo, PgValueRef};
use sqlx::types::Json as SqlJson;
use sqlx::{AssertSqlSafe, Column, PgPool, Postgres as Pg, Row, TypeInfo, ValueRef};
use tokio::sync::Mutex;

use super::iam::PasswordSource;
use super::pg_grants;
use super::placeholders::number_placeholders;
use super::records_sql::{self, Param, Sql};
use super::{BackendError, Database, Filter, Rows, SqlDialect, Stamp, StoredRecord, Transaction, Value, map_error};

type Query<'q> = sqlx::query::Query<'q, Pg, PgArguments>;

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

/// A pool whose new connections log in with a fresh password when the
/// password source makes short-lived ones (RDS auth tokens).
struct LoginPool {
    pool: PgPool,
    options: PgConnectOptions,
    auth: Option<Arc<dyn PasswordSource>>,
    /// When the current password was made (none yet: a lazy pool); refreshed under this lock.
    password_made: Mutex<Option<Instant>>,
}

impl LoginPool {
    /// The pool, with connect options whose password is still fresh: a token
    /// is replaced once two thirds of its lifetime have passed, so a new
    /// connection never logs in with an expired one.
    async fn get(&self) -> Result<&PgPool, BackendError> {
        if let Some(source) = &self.auth {
            let mut made = self.password_made.lock().await;
            if made.is_none_or(|m| m.elapsed() >= source.lifetime() * 2 / 3) {
                let password = source.password().await?;
                self.pool.set_connect_options(self.options.clone().password(&password));
                *made = Some(Instant::now());
                tracing::debug!("database auth token refreshed");
            }
        }
        Ok(&self.pool)
    }
}

/// PostgreSQL behind the [`Database`] trait, as the host uses it: the
/// records API and the role and grant upkeep. Components reach it through
/// `ScopedPostgres`, which logs in as their own role.
pub struct Postgres {
    host: LoginPool,
    ensured: std::sync::Mutex<HashSet<String>>,
    /// Component roles by name, with their grant sets.
    roles: std::sync::Mutex<BTreeMap<String, Arc<GrantRole>>>,
    /// The secret role passwords derive from; none with IAM auth.
    role_secret: Option<String>,
    max_connections: u32,
    /// The database's name: roles are shared by the whole cluster, so each
    /// database gets its own.
    database: String,
    /// Whether PUBLIC's schema and database privileges were revoked.
    public_revoked: Mutex<bool>,
    /// Components loading at once check their roles in turn, on one host
    /// connection kept while others wait: each would else log in a
    /// connection of its own, which costs more than the check.
    role_check_conn: Mutex<Option<PoolConnection<Pg>>>,
    /// Role checks under way or waiting.
    role_checks_pending: AtomicUsize,
}

/// The login role and pool of one grant set.
struct GrantRole {
    name: String,
    tables: BTreeSet<String>,
    pool: LoginPool,
    /// When its grants were last brought up to date after a refusal.
    last_sync: std::sync::Mutex<Instant>,
    /// Held while a refused login sets the role up again.
    repairing: Mutex<()>,
    /// Granted tables whose privileges the start found in place (until a
    /// schema change): a records table among them needs no grant when the
    /// host first uses it.
    in_place: std::sync::Mutex<BTreeSet<String>>,
}

/// PostgreSQL's invalid_password: a login refused for its password.
const INVALID_PASSWORD: &str = "28P01";

/// How long a role's idle connections stay open.
const ROLE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Grants are brought up to date after a refusal (a table another host
/// made since) at most this often per role.
const GRANT_SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// Undoes what a component's statements may have left on its session (an
/// open transaction, settings, cursors, LISTEN, advisory locks, temporary
/// objects, SQL-level prepared statements) and lists the prepared
/// statements to deallocate. Not `DISCARD ALL`: it would drop the
/// statements sqlx has cached too. Outside a transaction, `ROLLBACK` only
/// warns, and the connections do not report warnings (`client_min_messages`).
const RESET_SESSION: &str = "ROLLBACK; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); RESET ALL; DISCARD TEMP; DISCARD SEQUENCES; \
    SELECT name FROM pg_prepared_statements WHERE from_sql";

async fn reset_session(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    // The one text column among the rows is the list of statement names.
    let names: Vec<String> = sqlx::raw_sql(RESET_SESSION)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .filter_map(|row| row.try_get::<String, _>(0).ok())
        .collect();
    for name in names {
        sqlx::raw_sql(AssertSqlSafe(format!("DEALLOCATE {}", pg_grants::ident(&name))))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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
                // The session reset's `ROLLBACK` warns when no transaction is
                // open, which is most of the time: without this, sqlx would log
                // that warning for a good part of all requests. (`RESET ALL`
                // keeps it: a startup option is the session's default.)
                ("client_min_messages", "error"),
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
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .map_err(map_error)?;
        // Role passwords derive from the host's own password, or from the
        // whole URL when it carries none.
        let role_secret = match &options.password_source {
            Some(_) => None,
            None => Some(
                url::Url::parse(&options.url)
                    .ok()
                    .and_then(|u| u.password().map(str::to_owned))
                    .unwrap_or_else(|| options.url.clone()),
            ),
        };
        Ok(Postgres {
            host: LoginPool {
                pool,
                options: base_options,
                auth: options.password_source,
                password_made: Mutex::new(Some(Instant::now())),
            },
            ensured: std::sync::Mutex::new(HashSet::new()),
            roles: std::sync::Mutex::new(BTreeMap::new()),
            role_secret,
            max_connections: options.max_connections,
            database,
            public_revoked: Mutex::new(false),
            role_check_conn: Mutex::new(None),
            role_checks_pending: AtomicUsize::new(0),
        })
    }

    async fn pool(&self) -> Result<&PgPool, BackendError> {
        self.host.get().await
    }

    async fn ensure_records_table(&self, table: &str) -> Result<&PgPool, BackendError> {
        let pool = self.pool().await?;
        if self.ensured.lock().expect("not poisoned").contains(table) {
            return Ok(pool);
        }
        let ddl = records_sql::create_table(SqlDialect::Postgres, table);
        // Two connections creating the same table at once can collide in the
        // catalog; the second attempt then finds it.
        if let Err(e) = sqlx::query(AssertSqlSafe(ddl.clone())).execute(pool).await {
            tracing::debug!(table, error = %e, "retrying table creation");
            sqlx::query(AssertSqlSafe(ddl)).execute(pool).await.map_err(map_error)?;
        }
        // The roles whose grant sets include the table get their privileges
        // on it, unless the start found them in place.
        let roles: Vec<Arc<GrantRole>> = self
            .roles
            .lock()
            .expect("not poisoned")
            .values()
            .filter(|r| r.tables.contains(table) && !r.in_place.lock().expect("not poisoned").contains(table))
            .cloned()
            .collect();
        if !roles.is_empty() {
            let mut tx = pool.begin().await.map_err(map_error)?;
            pg_grants::lock(&mut tx).await?;
            for role in roles {
                pg_grants::grant(&mut tx, &role.name, &role.tables).await?;
            }
            tx.commit().await.map_err(map_error)?;
        }
        self.ensured.lock().expect("not poisoned").insert(table.to_owned());
        Ok(pool)
    }

    /// The role for `tables` and its (lazy) pool. When the catalog shows the
    /// role and its privileges already as they should be, nothing changes and
    /// no lock is taken; else, under the lock, the role is set up and takes
    /// exactly its grants.
    async fn grant_role(&self, tables: &BTreeSet<String>) -> Result<Arc<GrantRole>, BackendError> {
        let name = pg_grants::role_name(&self.database, tables);
        if let Some(role) = self.roles.lock().expect("not poisoned").get(&name) {
            return Ok(role.clone());
        }
        let pool = self.pool().await?;
        let password = self.role_secret.as_deref().map(|secret| pg_grants::role_password(&name, secret));
        let iam = self.host.auth.is_some();
        // A database that earlier starts set up needs no lock and no change:
        // the catalog says whether everything is already in place.
        let checked = Instant::now();
        self.role_checks_pending.fetch_add(1, Ordering::SeqCst);
        let mut kept = self.role_check_conn.lock().await;
        let turn_us = checked.elapsed().as_micros() as u64;
        let result = async {
            let mut conn = match kept.take() {
                Some(conn) => conn,
                None => pool.acquire().await.map_err(map_error)?,
            };
            let state = pg_grants::role_state(&mut conn, &name, tables, iam).await?;
            Ok::<_, BackendError>((conn, state))
        }
        .await;
        let others_waiting = self.role_checks_pending.fetch_sub(1, Ordering::SeqCst) > 1;
        let (conn, state) = result?;
        if others_waiting {
            *kept = Some(conn);
        }
        drop(kept);
        let check_ms = checked.elapsed().as_secs_f64() * 1000.0;
        let in_place = match state {
            pg_grants::RoleState::InPlace(in_place) => {
                tracing::debug!(role = %name, turn_us, check_ms, "component role already in place");
                in_place
            }
            pg_grants::RoleState::Differs(difference) => {
                tracing::info!(role = %name, %difference, check_ms, "setting up a component role");
                {
                    let mut revoked = self.public_revoked.lock().await;
                    if !*revoked {
                        pg_grants::revoke_from_public(&mut *pool.acquire().await.map_err(map_error)?).await?;
                        *revoked = true;
                    }
                }
                let mut tx = pool.begin().await.map_err(map_error)?;
                let waited = Instant::now();
                pg_grants::lock(&mut tx).await?;
                let lock_wait_ms = waited.elapsed().as_secs_f64() * 1000.0;
                pg_grants::ensure_role(&mut tx, &name, password.as_deref(), iam).await?;
                // Whatever else the role owns or holds (a table handed to it,
                // a privilege granted by hand) is taken back before it gets
                // exactly its grants.
                pg_grants::reclaim(&mut tx, &name, tables, &self.known_roles()).await?;
                tx.commit().await.map_err(map_error)?;
                tracing::debug!(role = %name, lock_wait_ms, total_ms = checked.elapsed().as_secs_f64() * 1000.0, "component role set up");
                // Records tables get their grants again when first used.
                BTreeSet::new()
            }
        };

        let mut options = self.host.options.clone().username(&name);
        if let Some(p) = &password {
            options = options.password(p);
        }
        let pool = PgPoolOptions::new()
            .max_connections((self.max_connections / 2).max(1))
            .min_connections(0)
            .idle_timeout(ROLE_IDLE_TIMEOUT)
            .acquire_timeout(Duration::from_secs(10))
            // A component's next request never sees what its last one set.
            .after_release(|conn, _| {
                Box::pin(async move {
                    match reset_session(conn).await {
                        Ok(()) => Ok(true),
                        Err(e) => {
                            tracing::warn!(error = %e, "closing a database connection that could not be reset");
                            Ok(false)
                        }
                    }
                })
            })
            .connect_lazy_with(options.clone());
        let role = Arc::new(GrantRole {
            name: name.clone(),
            tables: tables.clone(),
            pool: LoginPool {
                pool,
                options,
                auth: self.host.auth.as_ref().map(|a| a.for_user(&name)),
                password_made: Mutex::new(None),
            },
            last_sync: std::sync::Mutex::new(Instant::now()),
            repairing: Mutex::new(()),
            in_place: std::sync::Mutex::new(in_place),
        });
        Ok(self.roles.lock().expect("not poisoned").entry(name).or_insert(role).clone())
    }

    /// After the database refused a login of `role` for its password (set
    /// by hand, or by a host with another secret): the role is set up again
    /// under the lock, once per refusal.
    async fn repair_login(&self, role: &GrantRole) -> Result<(), BackendError> {
        let password = self
            .role_secret
            .as_deref()
            .map(|secret| pg_grants::role_password(&role.name, secret));
        let mut tx = self.pool().await?.begin().await.map_err(map_error)?;
        pg_grants::lock(&mut tx).await?;
        pg_grants::ensure_role(&mut tx, &role.name, password.as_deref(), self.host.auth.is_some()).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(())
    }

    /// Every role this host knows, with its grant set.
    fn known_roles(&self) -> Vec<(String, BTreeSet<String>)> {
        self.roles
            .lock()
            .expect("not poisoned")
            .values()
            .map(|r| (r.name.clone(), r.tables.clone()))
            .collect()
    }

    /// Runs a schema change on `conn`, a session of `role`: under the grants
    /// lock (held on a host session for the whole change), the role owns its
    /// granted tables while the statement runs, and the host takes them back
    /// afterwards.
    async fn change_schema(
        &self,
        role: &GrantRole,
        conn: &mut sqlx::PgConnection,
        statement: Statement<'_>,
    ) -> Result<Outcome, BackendError> {
        let mut host = self.pool().await?.acquire().await.map_err(map_error)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(pg_grants::GRANTS_LOCK)
            .execute(&mut *host)
            .await
            .map_err(map_error)?;
        let result = async {
            let mut tx = sqlx::Connection::begin(&mut *host).await.map_err(map_error)?;
            let with_records = !pg_grants::may_alter_columns(&number_placeholders(statement.sql));
            pg_grants::hand_over(&mut tx, &role.name, &role.tables, with_records).await?;
            tx.commit().await.map_err(map_error)?;
            let outcome = statement.run(conn).await;
            self.reclaim_on(&mut host, role).await?;
            outcome
        }
        .await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(pg_grants::GRANTS_LOCK)
            .execute(&mut *host)
            .await;
        if unlocked.is_err() {
            // A session that may still hold the lock must not go back to the pool.
            host.detach();
        }
        result
    }

    async fn reclaim_on(&self, host: &mut sqlx::PgConnection, role: &GrantRole) -> Result<(), BackendError> {
        let mut tx = sqlx::Connection::begin(&mut *host).await.map_err(map_error)?;
        pg_grants::reclaim(&mut tx, &role.name, &role.tables, &self.known_roles()).await?;
        tx.commit().await.map_err(map_error)?;
        self.schema_changed();
        Ok(())
    }

    /// After a transaction that changed the schema: take back what it made.
    async fn reclaim(&self, role: &GrantRole) -> Result<(), BackendError> {
        let mut host = self.pool().await?.acquire().await.map_err(map_error)?;
        let mut tx = sqlx::Connection::begin(&mut *host).await.map_err(map_error)?;
        pg_grants::lock(&mut tx).await?;
        pg_grants::reclaim(&mut tx, &role.name, &role.tables, &self.known_roles()).await?;
        tx.commit().await.map_err(map_error)?;
        self.schema_changed();
        Ok(())
    }

    /// After the database refused a statement: the role's grants are applied
    /// again (a granted table may have appeared since, made by another host),
    /// at most every [`GRANT_SYNC_INTERVAL`]. True when they were.
    async fn resync(&self, role: &GrantRole) -> Result<bool, BackendError> {
        {
            let mut last = role.last_sync.lock().expect("not poisoned");
            if last.elapsed() < GRANT_SYNC_INTERVAL {
                return Ok(false);
            }
            *last = Instant::now();
        }
        let mut tx = self.pool().await?.begin().await.map_err(map_error)?;
        pg_grants::lock(&mut tx).await?;
        pg_grants::grant(&mut tx, &role.name, &role.tables).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(true)
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

/// A records statement with its parameters bound.
fn records_query(sql: Sql) -> Query<'static> {
    let mut q = sqlx::query(AssertSqlSafe(sql.text));
    for p in sql.params {
        q = match p {
            Param::Text(s) => q.bind(s),
            Param::Integer(i) => q.bind(i),
            Param::Float(f) => q.bind(f),
            Param::Json(j) => q.bind(SqlJson(j)),
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
    use futures_util::TryStreamExt;
    let sql = number_placeholders(sql);
    // Rows are counted as they arrive and the result stops at the cap.
    let mut cap = super::limits::ResultCap::new();
    let mut columns = None;
    let mut rows = Vec::new();
    {
        let mut stream = bind(sqlx::query(AssertSqlSafe(sql.clone())), params).fetch(&mut *conn);
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
            let statement = sqlx::Executor::prepare(&mut *conn, sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(sql)))
                .await
                .map_err(map_error)?;
            sqlx::Statement::columns(&statement).iter().map(|c| c.name().to_owned()).collect()
        }
    };
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
    fn for_request(self: Arc<Self>) -> Arc<dyn Database> {
        self
    }

    async fn scoped(self: Arc<Self>, component: &str, tables: &BTreeSet<String>) -> Result<Arc<dyn Database>, BackendError> {
        let started = Instant::now();
        let role = self.grant_role(tables).await?;
        let us = started.elapsed().as_micros() as u64;
        tracing::debug!(component, role = %role.name, us, "component database role ready");
        Ok(Arc::new(ScopedPostgres {
            host: self,
            component: component.to_owned(),
            role,
            held: None,
        }))
    }

    async fn insert(&self, table: &str, r: &StoredRecord) -> Result<(), BackendError> {
        let pool = self.ensure_records_table(table).await?;
        records_query(records_sql::insert(SqlDialect::Postgres, table, r))
            .execute(pool)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let row = records_query(records_sql::get(SqlDialect::Postgres, table, uid))
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
        // One statement that merges the changes itself: see records_sql::update.
        let row = records_query(records_sql::update(SqlDialect::Postgres, table, uid, stamp, changes))
            .fetch_optional(pool)
            .await
            .map_err(map_error)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn delete(&self, table: &str, uid: &str) -> Result<bool, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let done = records_query(records_sql::delete(SqlDialect::Postgres, table, uid))
            .execute(pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let done = records_query(records_sql::delete_where(SqlDialect::Postgres, table, filters))
            .execute(pool)
            .await
            .map_err(map_error)?;
        Ok(done.rows_affected())
    }

    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError> {
        let pool = self.ensure_records_table(table).await?;
        let rows = records_query(records_sql::list(SqlDialect::Postgres, table, filters, limit, after))
            .fetch_all(pool)
            .await
            .map_err(map_error)?;
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
        // A table may have been dropped and made again.
        for role in self.roles.lock().expect("not poisoned").values() {
            role.in_place.lock().expect("not poisoned").clear();
        }
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

/// The database as one component reaches it: its SQL runs on its grant
/// set's role, so PostgreSQL refuses whatever reaches past the grants; the
/// records API runs on the host's pool, after the host's grant check.
///
/// The handle made at load time takes a role connection per statement. The
/// one each request gets ([`Database::for_request`]) keeps the connection
/// its first statement took until the request ends, so the session reset
/// runs once per request, when the connection goes back to the pool, and
/// never while the request waits.
pub(crate) struct ScopedPostgres {
    host: Arc<Postgres>,
    component: String,
    role: Arc<GrantRole>,
    /// The request's own connection; none on the handle shared by requests.
    held: Option<Arc<HeldConnection>>,
}

/// The role connection one request holds between its statements. It is
/// taken out while a statement or transaction uses it, so it is never used
/// twice at once; what is not put back goes to the pool and its reset.
#[derive(Default)]
struct HeldConnection(std::sync::Mutex<Option<PoolConnection<Pg>>>);

impl HeldConnection {
    fn take(&self) -> Option<PoolConnection<Pg>> {
        self.0.lock().expect("not poisoned").take()
    }

    /// Keeps `conn` for the request's next statement, unless it already
    /// holds one (a statement that ran beside a transaction).
    fn keep(&self, conn: PoolConnection<Pg>) {
        let mut held = self.0.lock().expect("not poisoned");
        if held.is_none() {
            *held = Some(conn);
        }
    }
}

impl ScopedPostgres {
    /// Logs a refusal by the database; the component gets it as not granted.
    fn checked<T>(&self, result: Result<T, BackendError>) -> Result<T, BackendError> {
        if let Err(BackendError::NotGranted(refusal)) = &result {
            tracing::warn!(component = %self.component, role = %self.role.name, %refusal, "the database refused a statement outside the component's grants");
        }
        result
    }

    /// A session of the role: the one the request holds, when it is free,
    /// else a new one from the role's pool.
    async fn connection(&self) -> Result<PoolConnection<Pg>, BackendError> {
        if let Some(conn) = self.held.as_ref().and_then(|held| held.take()) {
            return Ok(conn);
        }
        match self.role.pool.get().await?.acquire().await {
            // The start-up check cannot read the password; a refused login
            // sets the role up again, once (logins refused meanwhile wait for
            // it and try again first).
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(INVALID_PASSWORD) => {
                let _repairing = self.role.repairing.lock().await;
                match self.role.pool.get().await?.acquire().await {
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(INVALID_PASSWORD) => {
                        tracing::warn!(component = %self.component, role = %self.role.name, "the database refused the role's password; setting the role up again");
                        self.host.repair_login(&self.role).await?;
                        self.role.pool.get().await?.acquire().await.map_err(map_error)
                    }
                    result => result.map_err(map_error),
                }
            }
            result => result.map_err(map_error),
        }
    }

    /// Runs one statement as the component's role: a schema change under
    /// the grants lock (see [`Postgres::change_schema`]); a refused statement
    /// once more after the grants are brought up to date.
    async fn run(&self, statement: Statement<'_>) -> Result<Outcome, BackendError> {
        let mut conn = self.connection().await?;
        let result = if pg_grants::may_change_schema(&number_placeholders(statement.sql)) {
            self.host.change_schema(&self.role, &mut conn, statement).await
        } else {
            match statement.run(&mut conn).await {
                Err(BackendError::NotGranted(_)) if self.host.resync(&self.role).await? => statement.run(&mut conn).await,
                result => result,
            }
        };
        // A session that failed for other reasons than the statement's own
        // (lost, stopped at the deadline) goes back to the pool, whose
        // release checks it.
        if let Some(held) = &self.held
            && !matches!(result, Err(BackendError::Unavailable(_)))
        {
            held.keep(conn);
        }
        self.checked(result)
    }
}

/// One statement of a component's.
#[derive(Clone, Copy)]
struct Statement<'a> {
    sql: &'a str,
    params: &'a [Value],
    returns_rows: bool,
}

/// What a statement gave back.
enum Outcome {
    Rows(Rows),
    Changed(u64),
}

impl Statement<'_> {
    async fn run(self, conn: &mut sqlx::PgConnection) -> Result<Outcome, BackendError> {
        if self.returns_rows {
            return query_rows(conn, self.sql, self.params).await.map(Outcome::Rows);
        }
        let done = bind(sqlx::query(AssertSqlSafe(number_placeholders(self.sql))), self.params)
            .execute(&mut *conn)
            .await
            .map_err(map_error)?;
        Ok(Outcome::Changed(done.rows_affected()))
    }
}

#[async_trait]
impl Database for ScopedPostgres {
    async fn scoped(self: Arc<Self>, component: &str, tables: &BTreeSet<String>) -> Result<Arc<dyn Database>, BackendError> {
        self.host.clone().scoped(component, tables).await
    }

    async fn insert(&self, table: &str, record: &StoredRecord) -> Result<(), BackendError> {
        self.host.insert(table, record).await
    }

    async fn get(&self, table: &str, uid: &str) -> Result<Option<StoredRecord>, BackendError> {
        self.host.get(table, uid).await
    }

    async fn update(
        &self,
        table: &str,
        uid: &str,
        changes: &Map<String, Json>,
        stamp: &Stamp,
    ) -> Result<Option<StoredRecord>, BackendError> {
        self.host.update(table, uid, changes, stamp).await
    }

    async fn delete(&self, table: &str, uid: &str) -> Result<bool, BackendError> {
        self.host.delete(table, uid).await
    }

    async fn delete_where(&self, table: &str, filters: &[Filter]) -> Result<u64, BackendError> {
        self.host.delete_where(table, filters).await
    }

    async fn list(&self, table: &str, filters: &[Filter], limit: u32, after: Option<&str>) -> Result<Vec<StoredRecord>, BackendError> {
        self.host.list(table, filters, limit, after).await
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let statement = Statement {
            sql,
            params,
            returns_rows: true,
        };
        match self.run(statement).await? {
            Outcome::Rows(rows) => Ok(rows),
            Outcome::Changed(_) => unreachable!("a query returns rows"),
        }
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let statement = Statement {
            sql,
            params,
            returns_rows: false,
        };
        match self.run(statement).await? {
            Outcome::Changed(n) => Ok(n),
            Outcome::Rows(_) => unreachable!("an execute returns a count"),
        }
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, BackendError> {
        let mut conn = self.connection().await?;
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await.map_err(map_error)?;
        Ok(Box::new(ScopedTransaction {
            conn: Some(conn),
            held: self.held.as_ref().map(Arc::downgrade),
            changed_schema: false,
            host: self.host.clone(),
            role: self.role.clone(),
            component: self.component.clone(),
        }))
    }

    fn for_request(self: Arc<Self>) -> Arc<dyn Database> {
        Arc::new(ScopedPostgres {
            host: self.host.clone(),
            component: self.component.clone(),
            role: self.role.clone(),
            held: Some(Arc::default()),
        })
    }

    fn schema_changed(&self) {
        self.host.schema_changed();
    }
}

/// A component's transaction, on a session of its role (the request's
/// own, when free). A schema change inside it runs without owning the
/// granted tables; whatever it creates is taken back by the host when it
/// commits. Once it ends, the session serves the request again; dropped
/// while open, the session goes back to the pool, whose reset rolls it
/// back.
struct ScopedTransaction {
    /// None once committed or rolled back.
    conn: Option<PoolConnection<Pg>>,
    held: Option<Weak<HeldConnection>>,
    changed_schema: bool,
    host: Arc<Postgres>,
    role: Arc<GrantRole>,
    component: String,
}

impl ScopedTransaction {
    fn conn(&mut self) -> Result<&mut sqlx::PgConnection, BackendError> {
        self.conn
            .as_deref_mut()
            .ok_or_else(|| BackendError::Invalid("the transaction has ended".into()))
    }

    fn checked<T>(&mut self, sql: &str, result: Result<T, BackendError>) -> Result<T, BackendError> {
        self.changed_schema |= pg_grants::may_change_schema(&number_placeholders(sql));
        if let Err(BackendError::NotGranted(refusal)) = &result {
            tracing::warn!(component = %self.component, role = %self.role.name, %refusal, "the database refused a statement outside the component's grants");
        }
        result
    }

    /// Sends `COMMIT` or `ROLLBACK`; once it succeeded, the session goes
    /// back to the request.
    async fn end(&mut self, statement: &'static str) -> Result<(), BackendError> {
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| BackendError::Invalid("the transaction has ended".into()))?;
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .map_err(map_error)?;
        if let Some(held) = self.held.as_ref().and_then(Weak::upgrade) {
            held.keep(conn);
        }
        Ok(())
    }
}

#[async_trait]
impl Transaction for ScopedTransaction {
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows, BackendError> {
        let result = match self.conn() {
            Ok(conn) => query_rows(conn, sql, params).await,
            Err(e) => Err(e),
        };
        self.checked(sql, result)
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, BackendError> {
        let result = match self.conn() {
            Ok(conn) => bind(sqlx::query(AssertSqlSafe(number_placeholders(sql))), params)
                .execute(conn)
                .await
                .map(|done| done.rows_affected())
                .map_err(map_error),
            Err(e) => Err(e),
        };
        self.checked(sql, result)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), BackendError> {
        self.end("COMMIT").await?;
        if self.changed_schema {
            self.host.reclaim(&self.role).await?;
        }
        Ok(())
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), BackendError> {
        self.end("ROLLBACK").await
    }
}
