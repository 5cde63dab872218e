//! Grants for raw SQL: every statement is parsed, and the tables it names
//! must all be granted. A statement that cannot be parsed, or of a kind that
//! reaches beyond tables (ATTACH, PRAGMA, SET...), is refused.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterTableOperation, Expr, Ident, ObjectName, ObjectNamePart, ObjectType, RenameTableNameKind, SetExpr, Statement, Visit, Visitor,
};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// Why a statement was refused before reaching the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GuardError {
    /// Not one statement the parser understands.
    #[error("cannot parse the SQL statement: {0}")]
    Syntax(String),
    /// A statement kind components may not run.
    #[error("{0} statements are not allowed")]
    Kind(String),
    /// A function that reaches past the tables (files, settings, other
    /// tables through a query string, the server's own state).
    #[error("the function {0} is not allowed")]
    Function(String),
}

/// Table-valued functions that read only their arguments.
const PURE_TABLE_FUNCTIONS: &[&str] = &[
    "json_each",
    "json_tree",
    "jsonb_each",
    "jsonb_array_elements",
    "unnest",
    "generate_series",
];

/// Whether a function may reach what the table check cannot see: a query
/// or table name passed as a string (`query_to_xml`), files, settings, large
/// objects, other databases, or the server's own functions (`pg_*`). A
/// schema-qualified call is refused too, since it can name any of these.
fn refused_function(name: &str) -> bool {
    let name = name.to_lowercase();
    name.contains('.')
        || name.starts_with("pg_")
        || name.starts_with("lo_")
        || name.starts_with("dblink")
        || name.contains("to_xml")
        || matches!(
            name.as_str(),
            "set_config"
                | "current_setting"
                | "nextval"
                | "setval"
                | "currval"
                | "load_extension"
                | "readfile"
                | "writefile"
                | "edit"
                | "fts3_tokenizer"
        )
}

/// Schemas that are just the default schema spelled out (the name is still
/// a real table, never a WITH result).
const DEFAULT_SCHEMAS: &[&str] = &["main", "public"];

/// The SQL dialect a backend speaks.
#[derive(Debug, Clone, Copy)]
pub enum SqlDialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What one statement reaches, for the grant check.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Touches {
    /// Tables it names, lower-cased. A name with a non-default schema comes
    /// back qualified (`other.t`), so it never matches a grant.
    pub tables: BTreeSet<String>,
    /// Indexes it creates or drops by name, lower-cased.
    pub indexes: BTreeSet<String>,
    /// Whether it creates, alters or drops something.
    pub changes_schema: bool,
}

/// What `sql` reaches, if it is exactly one statement of an allowed kind.
pub(crate) fn inspect(sql: &str, dialect: SqlDialect) -> Result<Touches, GuardError> {
    let d: &dyn Dialect = match dialect {
        SqlDialect::Sqlite => &SQLiteDialect {},
        SqlDialect::Postgres => &PostgreSqlDialect {},
    };
    // The statement is checked as the backend will run it: PostgreSQL gets `$n`.
    let sql = match dialect {
        SqlDialect::Sqlite => std::borrow::Cow::Borrowed(sql),
        SqlDialect::Postgres => std::borrow::Cow::Owned(super::placeholders::number_placeholders(sql)),
    };
    let mut statements = Parser::parse_sql(d, &sql).map_err(|e| GuardError::Syntax(e.to_string()))?;
    let statement = match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => s,
        (None, _) => return Err(GuardError::Syntax("no statement".into())),
        (Some(_), false) => return Err(GuardError::Syntax("only one statement at a time".into())),
    };
    let mut names = Names::default();
    let mut touches = Touches::default();
    match &statement {
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {}
        Statement::CreateTable(_) => touches.changes_schema = true,
        Statement::CreateIndex(ci) => {
            names.add(&ci.table_name);
            touches.indexes.extend(ci.name.as_ref().map(last_part));
            touches.changes_schema = true;
        }
        Statement::AlterTable(at) => {
            names.add(&at.name);
            for op in &at.operations {
                if let AlterTableOperation::RenameTable {
                    table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                } = op
                {
                    names.add(n);
                }
            }
            touches.changes_schema = true;
        }
        Statement::Drop {
            names: dropped,
            object_type,
            ..
        } => {
            match object_type {
                ObjectType::Table => dropped.iter().for_each(|n| names.add(n)),
                ObjectType::Index => touches.indexes.extend(dropped.iter().map(last_part)),
                other => return Err(GuardError::Kind(format!("DROP {other}"))),
            }
            touches.changes_schema = true;
        }
        other => {
            let text = other.to_string();
            let kind = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            return Err(GuardError::Kind(kind));
        }
    }
    let _ = statement.visit(&mut names);
    if let Some(f) = names.functions.iter().find(|f| refused_function(f)) {
        return Err(GuardError::Function(f.clone()));
    }
    // A WITH at the top of a read-only query names a result in scope for the
    // whole statement, so an unqualified use of that name is not a table.
    // Nowhere else (nested WITH, a WITH before DML) is a name excused.
    let ctes: BTreeSet<String> = match &statement {
        Statement::Query(q)
            if matches!(
                *q.body,
                SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::SetOperation { .. } | SetExpr::Values(_)
            ) =>
        {
            q.with
                .iter()
                .flat_map(|w| w.cte_tables.iter().map(|c| cte_key(&c.alias.name, dialect)))
                .collect()
        }
        _ => BTreeSet::new(),
    };
    touches.tables = names
        .relations
        .into_iter()
        .filter(|(name, qualified)| *qualified || !(ctes.contains(name) || PURE_TABLE_FUNCTIONS.contains(&name.as_str())))
        .map(|(name, _)| name)
        .collect();
    // Inside a WITH's own query only the results defined before it are in
    // scope (all of them under RECURSIVE): `WITH t AS (SELECT * FROM t)`
    // reads the table `t`.
    if let Statement::Query(q) = &statement
        && let Some(with) = &q.with
    {
        for (i, cte) in with.cte_tables.iter().enumerate() {
            let in_scope: BTreeSet<String> = if with.recursive {
                &with.cte_tables[..]
            } else {
                &with.cte_tables[..i]
            }
            .iter()
            .map(|c| cte_key(&c.alias.name, dialect))
            .collect();
            let mut inner = Names::default();
            let _ = cte.query.visit(&mut inner);
            touches.tables.extend(
                inner
                    .relations
                    .into_iter()
                    .filter(|(name, qualified)| !*qualified && ctes.contains(name) && !in_scope.contains(name))
                    .map(|(name, _)| name),
            );
        }
    }
    Ok(touches)
}

/// The name a WITH result is found by, compared with lower-cased names:
/// PostgreSQL folds only unquoted names (`"SECRETS"` is not `secrets`),
/// SQLite matches names without regard to case.
fn cte_key(name: &Ident, dialect: SqlDialect) -> String {
    match (dialect, name.quote_style) {
        (SqlDialect::Postgres, Some(_)) => name.value.clone(),
        _ => name.value.to_lowercase(),
    }
}

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| p.to_string().trim_matches('"').to_lowercase())
        .unwrap_or_default()
}

/// Every relation a statement names (and whether it was schema-qualified),
/// and every function it calls.
#[derive(Default)]
struct Names {
    relations: BTreeSet<(String, bool)>,
    functions: BTreeSet<String>,
}

impl Names {
    fn add(&mut self, name: &ObjectName) {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => i.value.to_lowercase(),
                ObjectNamePart::Function(f) => format!("{}()", f.name.value.to_lowercase()),
            })
            .collect();
        let entry = match parts.as_slice() {
            [table] => (table.clone(), false),
            [schema, table] if DEFAULT_SCHEMAS.contains(&schema.as_str()) => (table.clone(), true),
            _ => (parts.join("."), true),
        };
        self.relations.insert(entry);
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.add(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            self.functions.insert(f.name.to_string().replace('"', ""));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sql: &str) -> Vec<String> {
        inspect(sql, SqlDialect::Sqlite).unwrap().tables.into_iter().collect()
    }

    #[test]
    fn finds_every_table_a_statement_touches() {
        assert_eq!(
            tables("SELECT * FROM notes n JOIN tags t ON t.id = n.tag WHERE n.id IN (SELECT id FROM secrets)"),
            ["notes", "secrets", "tags"]
        );
        assert_eq!(tables("INSERT INTO notes (body) SELECT body FROM drafts"), ["drafts", "notes"]);
        assert_eq!(tables("UPDATE notes SET body = ? WHERE id = ?"), ["notes"]);
        assert_eq!(tables("DELETE FROM main.notes WHERE id = ?"), ["notes"]);
        assert_eq!(
            tables("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"),
            ["notes"]
        );
        assert_eq!(tables("CREATE INDEX notes_body ON notes (body)"), ["notes"]);
        assert_eq!(tables("DROP TABLE notes"), ["notes"]);
        assert_eq!(tables("WITH recent AS (SELECT * FROM notes) SELECT * FROM recent"), ["notes"]);
        assert_eq!(tables("SELECT value FROM notes, json_each(notes.tags)"), ["notes"]);
        assert_eq!(tables("SELECT * FROM other.notes"), ["other.notes"]);
        assert_eq!(tables("SELECT name FROM sqlite_master"), ["sqlite_master"]);
        assert_eq!(tables("SELECT 1"), Vec::<String>::new());
        assert_eq!(tables("ALTER TABLE notes RENAME TO planted"), ["notes", "planted"]);
    }

    #[test]
    fn a_with_name_never_hides_a_real_table() {
        // Qualified names are tables whatever a WITH calls itself.
        assert_eq!(tables("WITH secrets AS (SELECT 1) SELECT * FROM main.secrets"), ["secrets"]);
        // A nested WITH is not in scope outside its subquery.
        assert_eq!(
            tables("SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets), secrets"),
            ["secrets"]
        );
        // A DELETE target is a table even when a WITH shares its name.
        assert_eq!(tables("WITH secrets AS (SELECT 1) DELETE FROM secrets"), ["secrets"]);
        assert_eq!(
            tables("WITH t AS (SELECT 1) SELECT * FROM json_each('[1]'), main.json_each"),
            ["json_each"]
        );
    }

    #[test]
    fn a_with_query_reads_the_table_of_its_own_name() {
        for dialect in [SqlDialect::Sqlite, SqlDialect::Postgres] {
            let t = inspect("WITH secrets AS (SELECT * FROM secrets) SELECT * FROM notes", dialect).unwrap();
            assert_eq!(t.tables.into_iter().collect::<Vec<_>>(), ["notes", "secrets"]);
            let t = inspect("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b", dialect).unwrap();
            assert!(t.tables.is_empty(), "{:?}", t.tables);
            let t = inspect("WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b", dialect).unwrap();
            assert_eq!(t.tables.into_iter().collect::<Vec<_>>(), ["a"]);
            let t = inspect(
                "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT * FROM n",
                dialect,
            )
            .unwrap();
            assert!(t.tables.is_empty(), "{:?}", t.tables);
        }
        // PostgreSQL folds only unquoted names: `"SECRETS"` is not `secrets`.
        let t = inspect(r#"WITH "SECRETS" AS (SELECT 1) SELECT * FROM secrets"#, SqlDialect::Postgres).unwrap();
        assert_eq!(t.tables.into_iter().collect::<Vec<_>>(), ["secrets"]);
    }

    #[test]
    fn reads_postgres_with_either_placeholder() {
        let t = inspect("INSERT INTO notes (body) VALUES (?)", SqlDialect::Postgres).unwrap();
        assert_eq!(t.tables.into_iter().collect::<Vec<_>>(), ["notes"]);
        assert!(inspect("SELECT * FROM notes WHERE id = $1", SqlDialect::Postgres).is_ok());
    }

    #[test]
    fn refuses_functions_that_reach_past_the_tables() {
        for sql in [
            "SELECT query_to_xml('SELECT pw FROM secrets', true, false, '')::text",
            "SELECT table_to_xml('secrets', true, false, '')",
            "SELECT pg_read_file('/etc/hostname')",
            "SELECT set_config('statement_timeout', '0', false)",
            "SELECT pg_catalog.lower('x')",
            "SELECT lo_import('/etc/passwd')",
            "SELECT * FROM notes WHERE body = (SELECT current_setting('is_superuser'))",
        ] {
            assert!(matches!(inspect(sql, SqlDialect::Postgres), Err(GuardError::Function(_))), "{sql}");
        }
        assert!(matches!(
            inspect("SELECT load_extension('x')", SqlDialect::Sqlite),
            Err(GuardError::Function(_))
        ));
        assert!(inspect("SELECT count(*), lower(body), coalesce(n, 0) FROM notes", SqlDialect::Postgres).is_ok());
    }

    #[test]
    fn reports_indexes_and_schema_changes() {
        let t = inspect("CREATE INDEX notes_body ON notes (body)", SqlDialect::Sqlite).unwrap();
        assert_eq!(
            (t.indexes.into_iter().collect::<Vec<_>>(), t.changes_schema),
            (vec!["notes_body".to_string()], true)
        );
        let t = inspect("DROP INDEX secrets_pw", SqlDialect::Sqlite).unwrap();
        assert_eq!(
            (t.tables.len(), t.indexes.into_iter().collect::<Vec<_>>()),
            (0, vec!["secrets_pw".to_string()])
        );
        assert!(!inspect("SELECT * FROM notes", SqlDialect::Sqlite).unwrap().changes_schema);
    }

    #[test]
    fn refuses_what_is_not_one_plain_statement() {
        for sql in [
            "ATTACH DATABASE 'x.db' AS x",
            "PRAGMA table_info(notes)",
            "SELECT 1; DROP TABLE notes",
            "SELEC 1",
            "",
            "DROP VIEW v",
        ] {
            assert!(inspect(sql, SqlDialect::Sqlite).is_err(), "{sql}");
        }
    }
}
