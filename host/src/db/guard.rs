//! Grants for raw SQL: every statement is parsed, and the tables it names
//! must all be granted. A statement that cannot be parsed, or of a kind that
//! reaches beyond tables (ATTACH, PRAGMA, SET...), is refused.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, ObjectNamePart, Query, Statement, Visit, Visitor};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// Why a statement was refused before reaching the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Not one statement the parser understands.
    #[error("cannot parse the SQL statement: {0}")]
    Syntax(String),
    /// A statement kind components may not run.
    #[error("{0} statements are not allowed")]
    Kind(String),
}

/// Table-valued functions that read only their arguments.
const PURE_TABLE_FUNCTIONS: &[&str] = &["json_each", "json_tree", "jsonb_each", "jsonb_array_elements", "unnest", "generate_series"];

/// Schemas that are just the default schema spelled out.
const DEFAULT_SCHEMAS: &[&str] = &["main", "public"];

/// The SQL dialect a backend speaks.
#[derive(Debug, Clone, Copy)]
pub enum SqlDialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The tables `sql` names (lower-cased), if it is exactly one allowed statement.
/// A name with a non-default schema comes back qualified (`other.t`), so it
/// never matches a grant.
pub fn tables_in(sql: &str, dialect: SqlDialect) -> Result<BTreeSet<String>, GuardError> {
    let d: &dyn Dialect = match dialect {
        SqlDialect::Sqlite => &SQLiteDialect {},
        SqlDialect::Postgres => &PostgreSqlDialect {},
    };
    let mut statements = Parser::parse_sql(d, sql).map_err(|e| GuardError::Syntax(e.to_string()))?;
    let statement = match (statements.pop(), statements.is_empty()) {
        (Some(s), true) => s,
        (None, _) => return Err(GuardError::Syntax("no statement".into())),
        (Some(_), false) => return Err(GuardError::Syntax("only one statement at a time".into())),
    };
    let mut names = Names::default();
    match &statement {
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) | Statement::CreateTable(_) => {}
        Statement::CreateIndex(ci) => names.add(&ci.table_name),
        Statement::AlterTable(at) => names.add(&at.name),
        Statement::Drop { names: dropped, object_type, .. } => {
            use sqlparser::ast::ObjectType;
            if !matches!(object_type, ObjectType::Table | ObjectType::Index) {
                return Err(GuardError::Kind(format!("DROP {object_type}")));
            }
            if *object_type == ObjectType::Table {
                dropped.iter().for_each(|n| names.add(n));
            }
        }
        other => {
            let text = other.to_string();
            let kind = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            return Err(GuardError::Kind(kind));
        }
    }
    let _ = statement.visit(&mut names);
    let mut tables = names.relations;
    tables.retain(|t| !names.ctes.contains(t) && !PURE_TABLE_FUNCTIONS.contains(&t.as_str()));
    Ok(tables)
}

#[derive(Default)]
struct Names {
    relations: BTreeSet<String>,
    ctes: BTreeSet<String>,
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
        let name = match parts.as_slice() {
            [table] => table.clone(),
            [schema, table] if DEFAULT_SCHEMAS.contains(&schema.as_str()) => table.clone(),
            _ => parts.join("."),
        };
        self.relations.insert(name);
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.add(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes.extend(with.cte_tables.iter().map(|c| c.alias.name.value.to_lowercase()));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sql: &str) -> Vec<String> {
        tables_in(sql, SqlDialect::Sqlite).unwrap().into_iter().collect()
    }

    #[test]
    fn finds_every_table_a_statement_touches() {
        assert_eq!(tables("SELECT * FROM notes n JOIN tags t ON t.id = n.tag WHERE n.id IN (SELECT id FROM secrets)"), ["notes", "secrets", "tags"]);
        assert_eq!(tables("INSERT INTO notes (body) SELECT body FROM drafts"), ["drafts", "notes"]);
        assert_eq!(tables("UPDATE notes SET body = ? WHERE id = ?"), ["notes"]);
        assert_eq!(tables("DELETE FROM main.notes WHERE id = ?"), ["notes"]);
        assert_eq!(tables("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"), ["notes"]);
        assert_eq!(tables("CREATE INDEX notes_body ON notes (body)"), ["notes"]);
        assert_eq!(tables("DROP TABLE notes"), ["notes"]);
        assert_eq!(tables("WITH recent AS (SELECT * FROM notes) SELECT * FROM recent"), ["notes"]);
        assert_eq!(tables("SELECT value FROM notes, json_each(notes.tags)"), ["notes"]);
        assert_eq!(tables("SELECT * FROM other.notes"), ["other.notes"]);
        assert_eq!(tables("SELECT name FROM sqlite_master"), ["sqlite_master"]);
        assert_eq!(tables("SELECT 1"), Vec::<String>::new());
    }

    #[test]
    fn refuses_what_is_not_one_plain_statement() {
        for sql in ["ATTACH DATABASE 'x.db' AS x", "PRAGMA table_info(notes)", "SELECT 1; DROP TABLE notes", "SELEC 1", "", "DROP VIEW v"] {
            assert!(tables_in(sql, SqlDialect::Sqlite).is_err(), "{sql}");
        }
    }
}
