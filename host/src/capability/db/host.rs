//! The `db` interface for components: grant checks, then the backend.
//!
//! Each function does its checks first and then awaits the backend through
//! an owned handle, so no borrow of the store's state is held across an await.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::limits::{BoundedTransaction, DbLimits, ResultCap, with_limits};
use super::records::{check_limit, decode_cursor, parse_object};
use super::{BackendError, Comparison, Database, Filter, Rows, SqlDialect, Stamp, StoredRecord, TransactionHandle, Value, inspect};
use crate::capability::backend::guest_try;
use crate::core::bindings::GuestError;
use crate::core::bindings::corral::host::db::{
    Comparison as WitComparison, Filter as WitFilter, Host, HostTransaction, ListQuery, Page, Rows as WitRows, SqlDialect as WitDialect,
    Value as WitValue,
};
use crate::core::instance::HostState;

type Answer<T> = wasmtime::Result<Result<T, GuestError>>;

impl HostState {
    /// The database, once `table` is known to be granted.
    fn db_for(&self, table: &str) -> Result<Arc<dyn Database>, GuestError> {
        self.check_grant("table", |g| &g.tables, table)?;
        Ok(self.db.clone())
    }

    /// Refuses SQL that is not one plain statement or reaches outside the
    /// grants, and text parameters holding the NUL character (PostgreSQL
    /// cannot take one; SQLite refuses it too, so both answer alike);
    /// returns whether it changes the schema. An index belongs to
    /// the table its name starts with (`notes_by_body` to `notes`), so a
    /// component names, and drops, only its own tables' indexes.
    fn check_sql(&self, sql: &str, params: &[Value]) -> Result<bool, GuestError> {
        super::refuse_nul(sql)?;
        if let Some(n) = params.iter().position(|p| matches!(p, Value::Text(t) if t.contains('\0'))) {
            return Err(GuestError::Invalid(format!(
                "parameter {} holds the NUL character (\\0), which the database cannot store",
                n + 1
            )));
        }
        // Without a table there is nothing for SQL to do, and a statement
        // would still hold a pooled connection.
        if self.component.grants.tables.is_empty() {
            let message = format!("component \"{}\" is granted no table, so it cannot run SQL", self.component.name);
            return Err(self.refuse("table", "", message));
        }
        let touches = inspect(sql, self.component.backends.dialect).map_err(|e| GuestError::Invalid(e.to_string()))?;
        touches
            .tables
            .iter()
            .try_for_each(|t| self.check_grant("table", |g| &g.tables, t))?;
        for index in &touches.indexes {
            let owned = self.component.grants.tables.iter().any(|t| index.starts_with(&format!("{t}_")));
            if !owned {
                let message = format!(
                    "index \"{index}\" does not start with the name of a table granted to component \"{}\" (name it <table>_...)",
                    self.component.name
                );
                return Err(self.refuse("index", index, message));
            }
        }
        Ok(touches.changes_schema)
    }

    /// The component's database limits, for [`with_limits`].
    fn db_limits(&self) -> DbLimits {
        DbLimits::of(&self.component.limits)
    }

    /// A backend answer for the component; a statement the database itself
    /// refused for reaching outside the grants is logged like the guard's
    /// refusals.
    fn answer<T>(&self, result: Result<T, BackendError>) -> Result<T, GuestError> {
        if let Err(BackendError::NotGranted(reason)) = &result {
            tracing::warn!(
                component = %self.component.name,
                request_id = %self.request_id,
                kind = "sql",
                reason = %reason,
                "the database refused a statement outside the component's grants"
            );
        }
        result.map_err(Into::into)
    }

    fn stamp(&self) -> Stamp {
        Stamp::now(self.identity.as_ref().map(|id| id.subject.clone()))
    }
}

fn filters(list: Vec<WitFilter>) -> Result<Vec<Filter>, GuestError> {
    list.into_iter()
        .map(|f| Filter::parse(&f.field, comparison(f.comparison), &f.value).map_err(GuestError::from))
        .collect()
}

fn comparison(c: WitComparison) -> Comparison {
    match c {
        WitComparison::Eq => Comparison::Eq,
        WitComparison::Ne => Comparison::Ne,
        WitComparison::Lt => Comparison::Lt,
        WitComparison::Le => Comparison::Le,
        WitComparison::Gt => Comparison::Gt,
        WitComparison::Ge => Comparison::Ge,
    }
}

/// A component's parameters as the backends take them (moved, not copied).
fn values(params: Vec<WitValue>) -> Vec<Value> {
    params
        .into_iter()
        .map(|v| match v {
            WitValue::Null => Value::Null,
            WitValue::Boolean(b) => Value::Boolean(b),
            WitValue::Integer(i) => Value::Integer(i),
            WitValue::Float(f) => Value::Float(f),
            WitValue::Text(t) => Value::Text(t),
            WitValue::Blob(b) => Value::Blob(b),
        })
        .collect()
}

/// A backend's rows as the component receives them (moved, not copied).
fn wit_rows(rows: Rows) -> WitRows {
    let value = |v| match v {
        Value::Null => WitValue::Null,
        Value::Boolean(b) => WitValue::Boolean(b),
        Value::Integer(i) => WitValue::Integer(i),
        Value::Float(f) => WitValue::Float(f),
        Value::Text(t) => WitValue::Text(t),
        Value::Blob(b) => WitValue::Blob(b),
    };
    WitRows {
        columns: rows.columns,
        rows: rows.rows.into_iter().map(|row| row.into_iter().map(value).collect()).collect(),
    }
}

fn json_text(record: &StoredRecord) -> String {
    record.to_json().to_string()
}

impl Host for HostState {
    async fn insert(&mut self, table: String, fields: String) -> Answer<String> {
        let db = guest_try!(self.db_for(&table));
        let record = StoredRecord::new(guest_try!(parse_object(&fields, "the record")), &self.stamp());
        let done = with_limits(self.db_limits(), db.insert(&table, &record)).await;
        Ok(self.answer(done.map(|()| json_text(&record))))
    }

    async fn get(&mut self, table: String, uid: String) -> Answer<Option<String>> {
        let db = guest_try!(self.db_for(&table));
        let found = with_limits(self.db_limits(), db.get(&table, &uid)).await;
        Ok(self.answer(found.map(|r| r.as_ref().map(json_text))))
    }

    async fn update(&mut self, table: String, uid: String, changes: String) -> Answer<Option<String>> {
        let db = guest_try!(self.db_for(&table));
        let changes = guest_try!(parse_object(&changes, "the changes"));
        let stamp = self.stamp();
        let updated = with_limits(self.db_limits(), db.update(&table, &uid, &changes, &stamp)).await;
        Ok(self.answer(updated.map(|r| r.as_ref().map(json_text))))
    }

    async fn delete(&mut self, table: String, uid: String) -> Answer<bool> {
        let db = guest_try!(self.db_for(&table));
        let deleted = with_limits(self.db_limits(), db.delete(&table, &uid)).await;
        Ok(self.answer(deleted))
    }

    async fn delete_where(&mut self, table: String, filter_list: Vec<WitFilter>) -> Answer<u64> {
        let db = guest_try!(self.db_for(&table));
        let filters = guest_try!(filters(filter_list));
        if filters.is_empty() {
            return Ok(Err(GuestError::Invalid("delete-where needs at least one filter".into())));
        }
        let deleted = with_limits(self.db_limits(), db.delete_where(&table, &filters)).await;
        Ok(self.answer(deleted))
    }

    async fn list(&mut self, table: String, query: ListQuery) -> Answer<Page> {
        let db = guest_try!(self.db_for(&table));
        let limit = guest_try!(check_limit(query.limit));
        let filters = guest_try!(filters(query.filters));
        let after = guest_try!(query.after.as_deref().map(decode_cursor).transpose());
        // One extra record tells whether another page follows.
        let limits = self.db_limits();
        let found = with_limits(limits, db.list(&table, &filters, limit + 1, after.as_deref())).await;
        let mut found = guest_try!(self.answer(found));
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let next = if more { found.last().map(|r| r.uid.clone()) } else { None };
        let records: Vec<String> = found.iter().map(json_text).collect();
        // A page holds at most 1000 records, but each can be large.
        let bytes = records.iter().map(String::len).sum();
        guest_try!(with_limits(limits, async { ResultCap::new().add_bytes(bytes) }).await);
        Ok(Ok(Page { records, next }))
    }

    async fn query(&mut self, sql: String, params: Vec<WitValue>) -> Answer<WitRows> {
        let params = values(params);
        let changes_schema = guest_try!(self.check_sql(&sql, &params));
        let db = self.db.clone();
        let result = with_limits(self.db_limits(), db.query(&sql, &params)).await.map(wit_rows);
        if changes_schema {
            db.schema_changed();
        }
        Ok(self.answer(result))
    }

    async fn execute(&mut self, sql: String, params: Vec<WitValue>) -> Answer<u64> {
        let params = values(params);
        let changes_schema = guest_try!(self.check_sql(&sql, &params));
        let db = self.db.clone();
        let result = with_limits(self.db_limits(), db.execute(&sql, &params)).await;
        if changes_schema {
            db.schema_changed();
        }
        Ok(self.answer(result))
    }

    async fn dialect(&mut self) -> wasmtime::Result<WitDialect> {
        Ok(match self.component.backends.dialect {
            SqlDialect::Sqlite => WitDialect::Sqlite,
            SqlDialect::Postgres => WitDialect::Postgres,
        })
    }

    /// A transaction takes locks (on SQLite, the one write lock), so it
    /// needs a table grant, and it is rolled back once held past the
    /// component's `transaction_ms`.
    async fn begin(&mut self) -> Answer<Resource<TransactionHandle>> {
        if self.component.grants.tables.is_empty() {
            let message = format!(
                "component \"{}\" is granted no table, so it cannot open a transaction",
                self.component.name
            );
            return Ok(Err(self.refuse("table", "", message)));
        }
        let db = self.db.clone();
        let limits = self.db_limits();
        let begun = with_limits(limits, db.begin()).await;
        let tx = guest_try!(self.answer(begun));
        let tx = BoundedTransaction::new(tx, limits.transaction, &self.component.name);
        Ok(Ok(self.table().push(TransactionHandle(Box::new(tx)))?))
    }
}

impl HostTransaction for HostState {
    async fn query(&mut self, tx: Resource<TransactionHandle>, sql: String, params: Vec<WitValue>) -> Answer<WitRows> {
        let params = values(params);
        let changes_schema = guest_try!(self.check_sql(&sql, &params));
        let db = self.db.clone();
        let limits = self.db_limits();
        let handle = self.table().get_mut(&tx)?;
        let result = with_limits(limits, handle.0.query(&sql, &params)).await.map(wit_rows);
        if changes_schema {
            db.schema_changed();
        }
        Ok(self.answer(result))
    }

    async fn execute(&mut self, tx: Resource<TransactionHandle>, sql: String, params: Vec<WitValue>) -> Answer<u64> {
        let params = values(params);
        let changes_schema = guest_try!(self.check_sql(&sql, &params));
        let db = self.db.clone();
        let limits = self.db_limits();
        let handle = self.table().get_mut(&tx)?;
        let result = with_limits(limits, handle.0.execute(&sql, &params)).await;
        if changes_schema {
            db.schema_changed();
        }
        Ok(self.answer(result))
    }

    async fn commit(&mut self, tx: Resource<TransactionHandle>) -> Answer<()> {
        let handle = self.table().delete(tx)?;
        let done = handle.0.commit().await;
        Ok(self.answer(done))
    }

    async fn rollback(&mut self, tx: Resource<TransactionHandle>) -> Answer<()> {
        let handle = self.table().delete(tx)?;
        let done = handle.0.rollback().await;
        Ok(self.answer(done))
    }

    async fn drop(&mut self, tx: Resource<TransactionHandle>) -> wasmtime::Result<()> {
        // Dropping the backend transaction rolls it back.
        self.table().delete(tx)?;
        Ok(())
    }
}
