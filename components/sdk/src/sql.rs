//! Parameterized SQL through the host, with rows as JSON objects.
//!
//! ```ignore
//! let rows = sql::query("SELECT id, name FROM advisors WHERE id = ?", sql::params![id])?;
//! ```

use serde_json::{Map, Value as Json};

use crate::ApiError;
use crate::bindings::corral::host::db;
pub use crate::bindings::corral::host::db::{SqlDialect as Dialect, Value};
use crate::values::from_db_value;

/// Builds a parameter list: `params![id, "text", Some(3)]`.
#[macro_export]
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::Value::from($value)),*]
    };
}
pub use params;

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(value: $t) -> Self {
                Value::Integer(i64::from(value))
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, u8, u16, u32);

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Boolean(value)
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Float(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Value::Text(value.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// A JSON scalar as its SQL value; arrays and objects are stored as JSON text.
impl From<&Json> for Value {
    fn from(value: &Json) -> Self {
        crate::values::to_db_value(value).unwrap_or_else(|_| Value::Text(value.to_string()))
    }
}

fn objects(rows: db::Rows) -> Vec<Map<String, Json>> {
    rows.rows
        .iter()
        .map(|row| {
            rows.columns
                .iter()
                .cloned()
                .zip(row.iter().map(from_db_value))
                .collect()
        })
        .collect()
}

/// The rows of a statement, each as a JSON object keyed by column name in
/// column order.
pub fn query(sql: &str, params: &[Value]) -> Result<Vec<Map<String, Json>>, ApiError> {
    Ok(objects(db::query(sql, params)?))
}

/// The first row of a statement, if any.
pub fn query_one(sql: &str, params: &[Value]) -> Result<Option<Map<String, Json>>, ApiError> {
    Ok(query(sql, params)?.into_iter().next())
}

/// Runs a statement; the number of rows it changed.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, ApiError> {
    Ok(db::execute(sql, params)?)
}

/// The dialect of the host's database.
pub fn dialect() -> Dialect {
    db::dialect()
}

/// A column read as a boolean: SQLite keeps booleans as 0 and 1.
pub fn boolean(row: &Map<String, Json>, column: &str) -> bool {
    match row.get(column) {
        Some(Json::Bool(flag)) => *flag,
        Some(Json::Number(n)) => n.as_i64() != Some(0),
        _ => false,
    }
}

/// A transaction: dropping it without [`Tx::commit`] rolls it back.
pub struct Tx(Option<db::Transaction>);

impl Tx {
    /// Starts a transaction.
    pub fn begin() -> Result<Self, ApiError> {
        Ok(Self(Some(db::begin()?)))
    }

    fn inner(&self) -> &db::Transaction {
        self.0
            .as_ref()
            .expect("a transaction is used only until commit")
    }

    /// Like [`query`], inside the transaction.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Map<String, Json>>, ApiError> {
        Ok(objects(self.inner().query(sql, params)?))
    }

    /// Like [`query_one`], inside the transaction.
    pub fn query_one(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<Option<Map<String, Json>>, ApiError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Like [`execute`], inside the transaction.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, ApiError> {
        Ok(self.inner().execute(sql, params)?)
    }

    /// Makes the changes durable and visible.
    pub fn commit(mut self) -> Result<(), ApiError> {
        let tx = self.0.take().expect("a transaction is committed once");
        Ok(db::Transaction::commit(tx)?)
    }
}
