//! Parameterized SQL, directly and in transactions.

use corral_sdk::bindings::corral::host::db::{self, Rows, Transaction, Value as DbValue};
use corral_sdk::{ApiError, Request, RequestExt, Response, from_db_value, json, to_db_value};
use serde::Deserialize;
use serde_json::{Value, json};

/// One SQL statement with its parameters.
#[derive(Deserialize)]
struct Statement {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

#[derive(Deserialize)]
struct SqlBody {
    #[serde(flatten)]
    statement: Statement,
    /// Whether the statement returns rows.
    #[serde(default)]
    query: bool,
}

#[derive(Deserialize)]
struct TxBody {
    statements: Vec<Statement>,
    commit: bool,
    /// Milliseconds to hold the transaction open after the statements.
    #[serde(default)]
    hold_ms: u64,
}

/// Runs one statement: `db::query` when the body's `query` is true, else
/// `db::execute`.
pub fn run(request: &Request) -> Result<Response, ApiError> {
    let body: SqlBody = request.json_as()?;
    let params = db_params(&body.statement.params)?;
    if body.query {
        let rows = db::query(&body.statement.sql, &params)?;
        Ok(json(200, &rows_json(&rows)))
    } else {
        let changed = db::execute(&body.statement.sql, &params)?;
        Ok(json(200, &json!({ "changed": changed })))
    }
}

/// Runs the statements in one transaction, then commits or rolls back as
/// the body asks. A failing statement drops the transaction, which rolls
/// it back.
pub fn transaction(request: &Request) -> Result<Response, ApiError> {
    let body: TxBody = request.json_as()?;
    // Convert every parameter first, so a bad body never opens a transaction.
    let statements = body
        .statements
        .iter()
        .map(|statement| Ok((statement.sql.as_str(), db_params(&statement.params)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let transaction = db::begin()?;
    for (sql, params) in &statements {
        transaction.execute(sql, params)?;
    }
    std::thread::sleep(std::time::Duration::from_millis(body.hold_ms));
    if body.commit {
        Transaction::commit(transaction)?;
    } else {
        Transaction::rollback(transaction)?;
    }
    Ok(json(200, &json!({ "committed": body.commit })))
}

/// Opens a transaction and leaves it open: the handle is never committed,
/// rolled back or dropped, so the host still holds it when the call ends.
pub fn leak_transaction() -> Result<Response, ApiError> {
    let transaction = db::begin()?;
    crate::misc::FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
    std::mem::forget(transaction);
    Ok(json(200, &json!({ "left_open": true })))
}

fn db_params(params: &[Value]) -> Result<Vec<DbValue>, ApiError> {
    params.iter().map(to_db_value).collect()
}

fn rows_json(rows: &Rows) -> Value {
    let values: Vec<Vec<Value>> = rows
        .rows
        .iter()
        .map(|row| row.iter().map(from_db_value).collect())
        .collect();
    json!({ "columns": rows.columns, "rows": values })
}
