//! Rows as the API shows them. Each SELECT lists the columns in the order
//! the contract gives the fields; booleans come back from SQLite as 0/1 and
//! are turned into JSON booleans here, so both databases answer alike.

use corral_sdk::prelude::*;

/// A row: column names to values, in SELECT order.
pub type Row = Map<String, Value>;

pub const ADVISOR: &str = "id, name, email, is_undergraduate, major_id";
pub const COLLEGE: &str = "id, name, email_tld";
pub const MAJOR: &str = "id, name, college_id";
pub const FAQ: &str = "id, question, answer";
pub const STUDENT: &str = "id, name, student_identifier, email, is_undergraduate, major_id";
pub const QUEUER: &str = "id, major_id, is_undergraduate, student_id, position";

/// The integer column `name` of `row`.
pub fn integer(row: &Row, name: &str) -> Option<i64> {
    row.get(name).and_then(Value::as_i64)
}

/// A row as JSON, with `is_undergraduate` a boolean when the row has it.
pub fn shown(mut row: Row) -> Value {
    if row.contains_key("is_undergraduate") {
        let flag = sql::boolean(&row, "is_undergraduate");
        row.insert("is_undergraduate".into(), Value::Bool(flag));
    }
    Value::Object(row)
}

/// Every row as JSON.
pub fn all_shown(rows: Vec<Row>) -> Vec<Value> {
    rows.into_iter().map(shown).collect()
}

/// The rows of a lookup by id; 404 naming `what` and `id` when there are none.
pub fn found(rows: Vec<Row>, what: &str, id: i64) -> Result<Vec<Value>, ApiError> {
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no {what} with id {id}")));
    }
    Ok(all_shown(rows))
}

/// A WHERE clause from optional equality conditions: the conditions present,
/// and their parameters in the same order.
#[derive(Default)]
pub struct Conditions {
    sql: Vec<String>,
    params: Vec<sql::Value>,
}

impl Conditions {
    /// Adds `column = value` when `value` is given.
    pub fn eq(mut self, column: &str, value: Option<impl Into<sql::Value>>) -> Self {
        if let Some(value) = value {
            self.sql.push(format!("{column} = ?"));
            self.params.push(value.into());
        }
        self
    }

    /// ` WHERE a = ? AND b = ?`, or nothing without conditions; and the parameters.
    pub fn build(self) -> (String, Vec<sql::Value>) {
        let clause = if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        };
        (clause, self.params)
    }
}
