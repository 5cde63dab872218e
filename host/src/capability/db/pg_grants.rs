//! PostgreSQL roles that hold exactly one grant set each: the database
//! itself then refuses whatever a component's SQL reaches beyond its tables.
//!
//! One login role per distinct set of granted tables, named from a hash of
//! the set. Its privileges: USAGE and CREATE on the schema (components create
//! their own tables), and on each granted table SELECT, INSERT, UPDATE,
//! DELETE (with its sequences); on a records table only SELECT, DELETE and
//! `UPDATE (data)`, since records are inserted and stamped by the host.
//!
//! Tables stay owned by the host's role, because an owner bypasses column
//! privileges and can grant. A schema change runs as the component's role
//! while it owns its granted tables, and then [`reclaim`] takes them back,
//! drops whatever else the role made (functions, views, rules, triggers)
//! and grants again. Every change to roles and ownership happens in a
//! transaction under one advisory lock, so hosts sharing a database can start
//! and change the schema at the same time.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::{BackendError, map_error};

/// The advisory lock every role, grant and ownership change takes.
pub(super) const GRANTS_LOCK: i64 = 0x636f_7272_616c_6772; // "corralgr"

/// The columns of a table the records API made.
const RECORDS_LAYOUT: [&str; 6] = ["uid", "created_at", "last_updated_at", "creator_uid", "last_updater_uid", "data"];

/// The role holding exactly `tables` in `database`. Roles belong to the
/// whole cluster, so the name covers the database too: deployments sharing
/// one server never share (or race to create) a role.
pub(super) fn role_name(database: &str, tables: &BTreeSet<String>) -> String {
    let mut hash = Sha256::new();
    hash.update(database.as_bytes());
    hash.update([0]);
    for t in tables {
        hash.update(t.as_bytes());
        hash.update([0]);
    }
    format!("corral_g_{}", &hex::encode(hash.finalize())[..16])
}

/// The role's password: the same on every host that shares the database
/// (so no host breaks another's logins), and known only to holders of the
/// host's own secret.
pub(super) fn role_password(role: &str, host_secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(host_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(role.as_bytes());
    format!("corral-{}", hex::encode(mac.finalize().into_bytes()))
}

/// A quoted identifier.
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

async fn run(conn: &mut PgConnection, sql: String) -> Result<(), BackendError> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await.map_err(map_error)?;
    Ok(())
}

/// Takes away from `PUBLIC` what would reach past the grants: CREATE on the
/// schema and TEMP on the database (a temporary table could shadow a granted
/// one). Where the host's role may not, PostgreSQL warns and nothing changes;
/// that is logged.
pub(super) async fn revoke_from_public(conn: &mut PgConnection) -> Result<(), BackendError> {
    let row = sqlx::query("SELECT current_schema()::text, current_database()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?;
    let (schema, database): (String, String) = (row.get(0), row.get(1));
    for sql in [
        format!("REVOKE CREATE ON SCHEMA {} FROM PUBLIC", ident(&schema)),
        format!("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC", ident(&database)),
    ] {
        if let Err(e) = run(conn, sql.clone()).await {
            tracing::warn!(statement = %sql, error = %e, "cannot revoke from PUBLIC");
        }
    }
    Ok(())
}

/// Creates or updates `role` (inside the caller's transaction, which holds
/// [`GRANTS_LOCK`]): a login role that inherits nothing, whose login is the
/// password (or, with `iam`, an RDS auth token), and that the host's role is
/// a member of, so the host can take back the tables it creates. No other
/// component role stays a member of it (before PostgreSQL 16 a role may
/// grant itself to others).
pub(super) async fn ensure_role(conn: &mut PgConnection, role: &str, password: Option<&str>, iam: bool) -> Result<(), BackendError> {
    let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_error)?
        .is_some();
    let password = match password {
        Some(p) => literal(p),
        None => "NULL".to_owned(),
    };
    let verb = if exists { "ALTER" } else { "CREATE" };
    run(
        conn,
        format!(
            "{verb} ROLE {} LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD {password} VALID UNTIL 'infinity'",
            ident(role)
        ),
    )
    .await?;
    let members: Vec<String> = sqlx::query(
        "SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.member \
         WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND b.rolname LIKE 'corral\\_g\\_%'",
    )
    .bind(role)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?
    .iter()
    .map(|r| ident(&r.get::<String, _>(0)))
    .collect();
    if !members.is_empty() {
        tracing::warn!(role, ?members, "revoking component roles' membership in a component role");
        run(conn, format!("REVOKE {} FROM {}", ident(role), members.join(", "))).await?;
    }
    let is_member = sqlx::query("SELECT pg_has_role(current_user, $1, 'USAGE')")
        .bind(role)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?
        .get::<bool, _>(0);
    if !is_member {
        run(conn, format!("GRANT {} TO CURRENT_USER", ident(role))).await?;
    }
    if iam {
        run(conn, format!("GRANT rds_iam TO {}", ident(role))).await?;
    }
    Ok(())
}

/// The role, its memberships, PUBLIC's reach, and whatever the role owns or
/// holds privileges on beyond the schema, the granted tables and their
/// sequences.
const ROLE_STATE: &str = "\
WITH granted AS (SELECT c.oid FROM pg_class c \
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($2)), \
  sequences AS (SELECT s.oid FROM pg_depend d JOIN granted g ON g.oid = d.refobjid JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) \
SELECT r.oid, \
  r.rolcanlogin AND NOT r.rolinherit AND NOT r.rolcreatedb AND NOT r.rolcreaterole AND NOT r.rolsuper \
    AND NOT r.rolbypassrls AND NOT r.rolreplication AND r.rolvaliduntil = 'infinity', \
  pg_has_role(current_user, r.oid, 'USAGE'), \
  ARRAY(SELECT m.roleid::regrole::text FROM pg_auth_members m WHERE m.member = r.oid), \
  ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.member \
    WHERE m.roleid = r.oid AND b.rolname LIKE 'corral\\_g\\_%'), \
  has_schema_privilege('public', current_schema(), 'CREATE') OR has_database_privilege('public', current_database(), 'TEMPORARY'), \
  ARRAY(SELECT a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END \
    FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.oid = current_schema()::regnamespace AND a.grantee = r.oid), \
  ARRAY(SELECT d.deptype::text || ' ' || coalesce(pg_describe_object(d.classid, d.objid, d.objsubid), d.classid::regclass::text) FROM pg_shdepend d \
    WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid \
      AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())) \
      AND NOT (d.deptype = 'a' AND ((d.classid = 'pg_namespace'::regclass AND d.objid = current_schema()::regnamespace) \
        OR (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM granted UNION ALL SELECT oid FROM sequences))))) \
FROM pg_roles r WHERE r.rolname = $1";

/// Each existing granted table: whether the host owns it and its
/// sequences, its columns, and the role's privileges on it, its columns
/// and its sequences (a `*` marks a grant option).
const TABLE_STATE: &str = "\
SELECT c.relname::text, \
  c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND NOT EXISTS ( \
    SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid \
      AND d.deptype IN ('a', 'i') AND s.relowner <> c.relowner), \
  ARRAY(SELECT t.attname::text FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attnum > 0 AND NOT t.attisdropped ORDER BY t.attnum), \
  ARRAY(SELECT a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END FROM aclexplode(c.relacl) a WHERE a.grantee = $2), \
  ARRAY(SELECT t.attname || ' ' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END \
    FROM pg_attribute t, aclexplode(t.attacl) a WHERE t.attrelid = c.oid AND t.attnum > 0 AND a.grantee = $2), \
  ARRAY(SELECT coalesce((SELECT string_agg(a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END, ',' ORDER BY a.privilege_type) \
      FROM aclexplode(s.relacl) a WHERE a.grantee = $2), '') \
    FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.deptype IN ('a', 'i')) \
FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)";

fn sorted(mut list: Vec<String>) -> Vec<String> {
    list.sort();
    list
}

/// What the catalog says of a role, read without a lock.
pub(super) enum RoleState {
    /// As [`ensure_role`], [`grant`] and [`revoke_from_public`] would leave
    /// it, with its privileges on these existing granted tables.
    InPlace(BTreeSet<String>),
    /// What differs.
    Differs(String),
}

/// Compares the database with what [`ensure_role`], [`grant`] and
/// [`revoke_from_public`] would make of it. The role's password cannot be
/// read: a login refused for it is handled where the role logs in.
pub(super) async fn role_state(
    conn: &mut PgConnection,
    role: &str,
    tables: &BTreeSet<String>,
    iam: bool,
) -> Result<RoleState, BackendError> {
    Ok(match difference(conn, role, tables, iam).await? {
        Ok(in_place) => RoleState::InPlace(in_place),
        Err(difference) => RoleState::Differs(difference),
    })
}

async fn difference(
    conn: &mut PgConnection,
    role: &str,
    tables: &BTreeSet<String>,
    iam: bool,
) -> Result<Result<BTreeSet<String>, String>, BackendError> {
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let Some(row) = sqlx::query(ROLE_STATE)
        .bind(role)
        .bind(&names)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_error)?
    else {
        return Ok(Err("the role does not exist".into()));
    };
    let oid: sqlx::postgres::types::Oid = row.get(0);
    let member_of: Vec<String> = row.get(3);
    let component_members: Vec<String> = row.get(4);
    let schema_privileges = sorted(row.get(6));
    let stray: Vec<String> = row.get(7);
    let expected_member_of: Vec<String> = if iam { vec!["rds_iam".into()] } else { vec![] };
    let differs = if !row.get::<bool, _>(1) {
        Some("its attributes differ".to_owned())
    } else if !row.get::<bool, _>(2) {
        Some("the host's role is not a member".to_owned())
    } else if member_of != expected_member_of {
        Some(format!("it is a member of {member_of:?}"))
    } else if !component_members.is_empty() {
        Some(format!("component roles are members of it: {component_members:?}"))
    } else if row.get::<bool, _>(5) {
        Some("PUBLIC may create in the schema or make temporary tables".to_owned())
    } else if schema_privileges != ["CREATE", "USAGE"] {
        Some(format!("its privileges on the schema are {schema_privileges:?}"))
    } else if !stray.is_empty() {
        Some(format!("it owns or holds privileges on {stray:?}"))
    } else {
        None
    };
    if let Some(differs) = differs {
        return Ok(Err(differs));
    }
    let rows = sqlx::query(TABLE_STATE)
        .bind(&names)
        .bind(oid)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
    let mut in_place = BTreeSet::new();
    for row in rows {
        let name: String = row.get(0);
        let columns: Vec<String> = row.get(2);
        let records = columns == RECORDS_LAYOUT;
        let privileges = sorted(row.get(3));
        let column_privileges = sorted(row.get(4));
        let sequence_privileges: Vec<String> = row.get(5);
        let (expected, expected_columns, expected_sequences): (&[&str], &[&str], &str) = if records {
            (&["DELETE", "SELECT"], &["data UPDATE"], "")
        } else {
            (&["DELETE", "INSERT", "SELECT", "UPDATE"], &[], "SELECT,USAGE")
        };
        let differs = if !row.get::<bool, _>(1) {
            Some("the host's role does not own it or its sequences")
        } else if privileges != expected {
            Some("its table privileges differ")
        } else if column_privileges != expected_columns {
            Some("its column privileges differ")
        } else if sequence_privileges.iter().any(|p| p != expected_sequences) {
            Some("its sequence privileges differ")
        } else {
            None
        };
        if let Some(what) = differs {
            return Ok(Err(format!(
                "table {name}: {what} (table {privileges:?}, columns {column_privileges:?}, sequences {sequence_privileges:?})"
            )));
        }
        in_place.insert(name);
    }
    Ok(Ok(in_place))
}

/// One granted table as the catalog has it.
struct TableInfo {
    name: String,
    records: bool,
    sequences: Vec<String>,
}

/// The tables of `tables` that exist in the current schema.
async fn existing(conn: &mut PgConnection, tables: &BTreeSet<String>) -> Result<Vec<TableInfo>, BackendError> {
    let names: Vec<&str> = tables.iter().map(String::as_str).collect();
    let rows = sqlx::query(
        "SELECT c.relname::text, \
           ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
           ARRAY(SELECT s.relname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.deptype IN ('a', 'i')) \
         FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    Ok(rows
        .iter()
        .map(|r| {
            let columns: Vec<String> = r.get(1);
            TableInfo {
                name: r.get(0),
                records: columns == RECORDS_LAYOUT,
                sequences: r.get(2),
            }
        })
        .collect())
}

/// Gives `role` exactly its privileges on `tables` (those that exist) and on
/// the schema, replacing what it had on them.
pub(super) async fn grant(conn: &mut PgConnection, role: &str, tables: &BTreeSet<String>) -> Result<(), BackendError> {
    let r = ident(role);
    let schema: String = sqlx::query("SELECT current_schema()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(map_error)?
        .get(0);
    let schema = ident(&schema);
    // Revoked first, so a grant option someone added goes too.
    let mut sql = format!("REVOKE ALL ON SCHEMA {schema} FROM {r};\nGRANT USAGE, CREATE ON SCHEMA {schema} TO {r};\n");
    for t in existing(conn, tables).await? {
        let name = ident(&t.name);
        sql.push_str(&format!("REVOKE ALL ON TABLE {name} FROM {r};\n"));
        if t.records {
            // Rows come from the host's records API, which stamps them; SQL may
            // read, delete and change only the document.
            sql.push_str(&format!("GRANT SELECT, DELETE, UPDATE (data) ON TABLE {name} TO {r};\n"));
        } else {
            sql.push_str(&format!("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {name} TO {r};\n"));
            for s in &t.sequences {
                let s = ident(s);
                sql.push_str(&format!(
                    "REVOKE ALL ON SEQUENCE {s} FROM {r};\nGRANT USAGE, SELECT ON SEQUENCE {s} TO {r};\n"
                ));
            }
        }
    }
    run(conn, sql).await
}

/// Before a schema change by `role`: it becomes the owner of its granted
/// tables, so it can index, alter and drop them; of records tables only when
/// the statement cannot alter their columns (an owner could rewrite the
/// audit columns with `ALTER COLUMN ... USING`).
pub(super) async fn hand_over(
    conn: &mut PgConnection,
    role: &str,
    tables: &BTreeSet<String>,
    with_records: bool,
) -> Result<(), BackendError> {
    let mut sql = String::new();
    let owned_by_host: Vec<String> = sqlx::query(
        "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
         AND c.relkind IN ('r', 'p') AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND c.relname = ANY($1)",
    )
    .bind(tables.iter().map(String::as_str).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?
    .iter()
    .map(|r| r.get(0))
    .collect();
    for t in existing(conn, tables).await? {
        if (with_records || !t.records) && owned_by_host.contains(&t.name) {
            sql.push_str(&format!("ALTER TABLE {} OWNER TO {};\n", ident(&t.name), ident(role)));
        }
    }
    if sql.is_empty() { Ok(()) } else { run(conn, sql).await }
}

/// After a schema change by `role`: the host takes back the granted tables
/// the role owns, strips from them what would run with the host's privileges
/// (triggers, rules, row security policies), drops every other object the
/// role owns, and grants again: the role's own privileges and those of every
/// role in `others` (grant sets that may include a table it just made).
pub(super) async fn reclaim(
    conn: &mut PgConnection,
    role: &str,
    tables: &BTreeSet<String>,
    others: &[(String, BTreeSet<String>)],
) -> Result<(), BackendError> {
    let owned: Vec<String> = sqlx::query(
        "SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
         AND c.relkind IN ('r', 'p') AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = $1) AND c.relname = ANY($2)",
    )
    .bind(role)
    .bind(tables.iter().map(String::as_str).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?
    .iter()
    .map(|r| r.get(0))
    .collect();
    // What the role granted while it owned a table is revoked from every
    // component role (and PUBLIC); each then gets its own grants again.
    let grantees: Vec<String> = sqlx::query("SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'corral\\_g\\_%'")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?
        .iter()
        .map(|r| ident(&r.get::<String, _>(0)))
        .chain(["PUBLIC".to_owned()])
        .collect();
    let mut sql = String::new();
    for t in &owned {
        let name = ident(t);
        sql.push_str(&format!(
            "ALTER TABLE {name} OWNER TO CURRENT_USER;\nREVOKE ALL ON TABLE {name} FROM {};\n\
             ALTER TABLE {name} DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY;\n",
            grantees.join(", ")
        ));
        let extras = sqlx::query(
            "SELECT 'TRIGGER', tgname::text FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal \
             UNION ALL SELECT 'RULE', rulename::text FROM pg_rewrite WHERE ev_class = $1::regclass AND rulename <> '_RETURN' \
             UNION ALL SELECT 'POLICY', polname::text FROM pg_policy WHERE polrelid = $1::regclass",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
        for row in extras {
            let (kind, extra): (String, String) = (row.get(0), row.get(1));
            sql.push_str(&format!("DROP {kind} IF EXISTS {} ON {name};\n", ident(&extra)));
        }
    }
    sql.push_str(&format!("DROP OWNED BY {} CASCADE;\n", ident(role)));
    run(conn, sql).await?;
    grant(conn, role, tables).await?;
    for (other, its_tables) in others {
        if other != role {
            grant(conn, other, its_tables).await?;
        }
    }
    if !owned.is_empty() {
        tracing::info!(role, tables = ?owned, "took back the tables a component's schema change made");
    }
    Ok(())
}

/// Takes [`GRANTS_LOCK`] for the rest of the transaction.
pub(super) async fn lock(conn: &mut PgConnection) -> Result<(), BackendError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(GRANTS_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    Ok(())
}

/// Whether a statement may create, alter or drop something: anything but a
/// plain query (without INTO) or DML. Text that does not parse counts.
pub(super) fn may_change_schema(sql: &str) -> bool {
    use sqlparser::ast::{SetExpr, Statement};
    let Ok(statements) = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql) else {
        return true;
    };
    !statements.iter().all(|s| match s {
        Statement::Query(q) => !matches!(&*q.body, SetExpr::Select(select) if select.into.is_some()),
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => true,
        _ => false,
    })
}

/// Whether a statement may alter a table's columns: ALTER TABLE, or text
/// that does not parse.
pub(super) fn may_alter_columns(sql: &str) -> bool {
    use sqlparser::ast::Statement;
    match sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql) {
        Ok(statements) => statements
            .iter()
            .any(|s| !matches!(s, Statement::CreateTable(_) | Statement::CreateIndex(_) | Statement::Drop { .. })),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_role_per_grant_set_with_a_stable_password() {
        let a: BTreeSet<String> = ["notes".to_owned(), "tags".to_owned()].into();
        let b: BTreeSet<String> = ["notes".to_owned()].into();
        assert_eq!(role_name("db", &a), role_name("db", &a.clone()));
        assert_ne!(role_name("db", &a), role_name("db", &b));
        assert_ne!(role_name("db", &a), role_name("other", &a));
        assert!(role_name("db", &a).starts_with("corral_g_") && role_name("db", &a).len() == 25);
        assert_eq!(role_password("r", "secret"), role_password("r", "secret"));
        assert_ne!(role_password("r", "secret"), role_password("r", "other"));
    }

    #[test]
    fn finds_statements_that_may_change_the_schema() {
        assert!(!may_change_schema("SELECT * FROM notes WHERE id = $1"));
        assert!(!may_change_schema("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(!may_change_schema("UPDATE notes SET body = 'x'"));
        let numbered = super::super::placeholders::number_placeholders("INSERT INTO notes (n) VALUES (?)");
        assert!(!may_change_schema(&numbered), "{numbered}");
        assert!(may_change_schema("SELECT * INTO copy FROM notes"));
        assert!(may_change_schema("CREATE TABLE t (id int)"));
        assert!(may_change_schema("CREATE INDEX notes_x ON notes (x)"));
        assert!(may_change_schema("not sql at all"));
        assert!(may_alter_columns("ALTER TABLE notes ALTER COLUMN creator_uid TYPE text USING 'x'"));
        assert!(may_alter_columns("GRANT ALL ON notes TO PUBLIC"));
        assert!(!may_alter_columns("DROP TABLE notes"));
        assert!(!may_alter_columns("CREATE INDEX notes_by_x ON notes ((data->>'x'))"));
    }
}
