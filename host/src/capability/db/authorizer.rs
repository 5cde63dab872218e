//! SQLite's authorizer, the wall beneath the SQL guard on the embedded
//! database. While a component's statement is prepared, SQLite reports every
//! table, column, function and statement kind the statement touches, however
//! its text is spelled, and this module refuses whatever the component's
//! grants do not cover.
//!
//! The authorizer is installed on a connection only while it runs a
//! component's statements, and cleared before the connection goes back to
//! the pool (explicitly, and again in the pool's `after_release` and
//! `before_acquire`), so the host's own statements never run under it.
//! Installing it expires the connection's prepared statements, so a cached
//! statement is prepared again, and authorized, before it runs for a component.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::records::AUDIT_FIELDS;

/// What one component may reach.
#[derive(Debug)]
pub(super) struct Scope {
    /// The component's name, for messages.
    pub component: String,
    /// Its granted tables, lowercase (SQLite names are case-insensitive).
    pub tables: HashSet<String>,
}

impl Scope {
    /// The scope of `component` granted `tables`.
    pub(super) fn new<'a>(component: &str, tables: impl IntoIterator<Item = &'a String>) -> Scope {
        Scope {
            component: component.to_owned(),
            tables: tables.into_iter().map(|t| t.to_ascii_lowercase()).collect(),
        }
    }

    fn granted(&self, table: &str) -> bool {
        self.tables.contains(&table.to_ascii_lowercase())
    }
}

/// One stretch of a component's statements on one connection.
#[derive(Debug)]
pub(super) struct Session {
    scope: Arc<Scope>,
    /// What the database holds.
    catalog: Arc<Catalog>,
    /// A granted schema change is being prepared: SQLite's own statements
    /// that record it in the catalog may read the catalog.
    changing_schema: AtomicBool,
    /// The host is ending the transaction: its COMMIT or ROLLBACK may run.
    ending: AtomicBool,
    /// Why the last statement was refused, for the component's error.
    refusal: Mutex<Option<String>>,
}

impl Session {
    /// A session for `scope`.
    pub(super) fn new(scope: Arc<Scope>, catalog: Arc<Catalog>) -> Arc<Session> {
        Arc::new(Session {
            scope,
            catalog,
            changing_schema: AtomicBool::new(false),
            ending: AtomicBool::new(false),
            refusal: Mutex::new(None),
        })
    }

    /// Lets the host's COMMIT or ROLLBACK through (also when a dropped
    /// transaction rolls back).
    pub(super) fn end(&self) {
        self.ending.store(true, Ordering::Release);
    }

    /// A component's call starts: what an earlier statement allowed is over.
    pub(super) fn next_call(&self) {
        self.changing_schema.store(false, Ordering::Release);
    }

    /// Why the last statement was refused, once.
    pub(super) fn take_refusal(&self) -> Option<String> {
        self.refusal.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether SQLite may go ahead with `action`; the reason when not.
    pub(super) fn decide(&self, action: c_int, arg1: Option<&str>, arg2: Option<&str>, database: Option<&str>) -> Result<(), String> {
        let scope = &self.scope;
        let not_granted = |table: &str| format!("table \"{table}\" is not granted to component \"{}\"", scope.component);
        // A table of the main database that is granted.
        let table = |name: Option<&str>| -> Result<(), String> {
            let name = name.unwrap_or_default();
            if database != Some("main") {
                return Err(format!(
                    "component \"{}\" may reach only tables of the main database, not \"{}.{name}\"",
                    scope.component,
                    database.unwrap_or_default()
                ));
            }
            if scope.granted(name) { Ok(()) } else { Err(not_granted(name)) }
        };
        let records = |name: Option<&str>| self.catalog.records.contains(&name.unwrap_or_default().to_ascii_lowercase());
        let schema_change = |result: Result<(), String>| {
            if result.is_ok() {
                self.changing_schema.store(true, Ordering::Release);
            }
            result
        };
        match action {
            ffi::SQLITE_SELECT | ffi::SQLITE_RECURSIVE => Ok(()),
            // SQLite's own statements that record a granted schema change.
            ffi::SQLITE_READ | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE
                if (is_schema_table(arg1) || arg1.is_some_and(|t| t.eq_ignore_ascii_case("sqlite_sequence")))
                    && matches!(database, Some("main" | "temp"))
                    && self.changing_schema.load(Ordering::Acquire) =>
            {
                Ok(())
            }
            ffi::SQLITE_READ => match (arg1, arg2) {
                // Table-valued functions that read only their arguments.
                (Some(t), _) if ["json_each", "json_tree", "jsonb_each", "jsonb_tree"].contains(&t) => Ok(()),
                // A table of which no column is read (`count(*)`), named as
                // written: a WITH name unless it names a real table.
                (Some(t), Some("")) if database.is_none() => {
                    let lower = t.to_ascii_lowercase();
                    let real = self.catalog.tables.contains(&lower) || lower.starts_with("pragma_") || lower.starts_with("sqlite_");
                    if real && !scope.granted(t) { Err(not_granted(t)) } else { Ok(()) }
                }
                // A column of a subquery or WITH result: its tables are checked.
                (_, Some(_)) if database.is_none() => Ok(()),
                _ => table(arg1),
            },
            ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE if is_schema_table(arg1) && database == Some("main") => {
                // The catalog row a granted CREATE or DROP writes; the
                // statement itself is authorized by its own action, and
                // SQLite refuses direct writes to the catalog.
                Ok(())
            }
            ffi::SQLITE_UPDATE => {
                table(arg1)?;
                match arg2 {
                    Some(column) if records(arg1) && AUDIT_FIELDS.iter().any(|a| column.eq_ignore_ascii_case(a)) => Err(format!(
                        "the column \"{column}\" of records table \"{}\" is stamped by the host and cannot be written",
                        arg1.unwrap_or_default()
                    )),
                    _ => Ok(()),
                }
            }
            ffi::SQLITE_INSERT => {
                table(arg1)?;
                if records(arg1) {
                    return Err(format!(
                        "rows of records table \"{}\" are inserted through the records API, which stamps them",
                        arg1.unwrap_or_default()
                    ));
                }
                Ok(())
            }
            ffi::SQLITE_DELETE => table(arg1),
            ffi::SQLITE_CREATE_TABLE | ffi::SQLITE_DROP_TABLE | ffi::SQLITE_CREATE_VIEW | ffi::SQLITE_DROP_VIEW => {
                schema_change(table(arg1))
            }
            ffi::SQLITE_ALTER_TABLE => {
                // arg1 is the database, arg2 the table.
                if arg1 != Some("main") || !scope.granted(arg2.unwrap_or_default()) {
                    return Err(not_granted(arg2.unwrap_or_default()));
                }
                if records(arg2) {
                    return Err(format!(
                        "the layout of records table \"{}\" belongs to the host",
                        arg2.unwrap_or_default()
                    ));
                }
                schema_change(Ok(()))
            }
            // arg1 is the index, arg2 the table it indexes.
            ffi::SQLITE_CREATE_INDEX | ffi::SQLITE_DROP_INDEX => schema_change(table(arg2)),
            ffi::SQLITE_FUNCTION => match arg2 {
                Some(f) if REFUSED_FUNCTIONS.iter().any(|r| f.eq_ignore_ascii_case(r)) => Err(format!("the function {f} is not allowed")),
                _ => Ok(()),
            },
            // Building the index of a granted CREATE INDEX.
            ffi::SQLITE_REINDEX if self.changing_schema.load(Ordering::Acquire) => Ok(()),
            ffi::SQLITE_TRANSACTION if self.ending.load(Ordering::Acquire) => Ok(()),
            // A dropped transaction's rollback; refusing it would leave the
            // connection inside a transaction.
            ffi::SQLITE_TRANSACTION if arg1 == Some("ROLLBACK") => Ok(()),
            _ => Err(format!(
                "{} statements are not allowed",
                action_name(action, arg1).unwrap_or("these")
            )),
        }
    }
}

/// The tables of the main database, read by the host before a component's
/// statement runs and again after each schema change.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    /// Every table and view, lowercase.
    pub tables: HashSet<String>,
    /// Tables with the records layout, lowercase: rows go in through the
    /// records API only, and their audit columns are the host's.
    pub records: HashSet<String>,
}

/// Functions that reach files, extensions or SQLite's internals.
const REFUSED_FUNCTIONS: &[&str] = &["load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_offset"];

fn is_schema_table(name: Option<&str>) -> bool {
    name.is_some_and(|n| {
        ["sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"]
            .iter()
            .any(|t| n.eq_ignore_ascii_case(t))
    })
}

fn action_name(action: c_int, arg1: Option<&str>) -> Option<&'static str> {
    Some(match action {
        ffi::SQLITE_ATTACH => "ATTACH",
        ffi::SQLITE_DETACH => "DETACH",
        ffi::SQLITE_PRAGMA => "PRAGMA",
        ffi::SQLITE_TRANSACTION if arg1 == Some("BEGIN") => "BEGIN",
        ffi::SQLITE_TRANSACTION => "COMMIT",
        ffi::SQLITE_SAVEPOINT => "SAVEPOINT",
        ffi::SQLITE_ANALYZE => "ANALYZE",
        ffi::SQLITE_REINDEX => "REINDEX",
        ffi::SQLITE_CREATE_TRIGGER | ffi::SQLITE_DROP_TRIGGER => "trigger",
        ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW
        | ffi::SQLITE_DROP_TEMP_TABLE
        | ffi::SQLITE_DROP_TEMP_INDEX
        | ffi::SQLITE_DROP_TEMP_TRIGGER
        | ffi::SQLITE_DROP_TEMP_VIEW => "temporary table, index, trigger and view",
        ffi::SQLITE_CREATE_VTABLE | ffi::SQLITE_DROP_VTABLE => "virtual table",
        _ => return None,
    })
}

/// Sessions installed on connections, by connection handle: keeps each
/// session alive for as long as SQLite may call back with its pointer.
static INSTALLED: LazyLock<Mutex<HashMap<usize, Arc<Session>>>> = LazyLock::new(Default::default);

fn installed() -> std::sync::MutexGuard<'static, HashMap<usize, Arc<Session>>> {
    INSTALLED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts `session`'s authorizer on the connection.
pub(super) fn install(handle: &mut LockedSqliteHandle<'_>, session: &Arc<Session>) {
    let db = handle.as_raw_handle().as_ptr();
    installed().insert(db as usize, session.clone());
    // SAFETY: the handle is locked out of the worker thread; the session
    // stays in INSTALLED, alive, until `clear` removes the callback.
    unsafe { ffi::sqlite3_set_authorizer(db, Some(authorize), Arc::as_ptr(session) as *mut c_void) };
}

/// Removes any authorizer from the connection: the host's statements run
/// unrestricted.
pub(super) fn clear(handle: &mut LockedSqliteHandle<'_>) {
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: as in `install`; after this call SQLite holds no session pointer.
    unsafe { ffi::sqlite3_set_authorizer(db, None, std::ptr::null_mut()) };
    installed().remove(&(db as usize));
}

/// The callback SQLite calls while preparing a statement.
unsafe extern "C" fn authorize(
    data: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    database: *const c_char,
    _trigger_or_view: *const c_char,
) -> c_int {
    // SAFETY: `data` is the session `install` registered, kept alive in
    // INSTALLED until the callback is removed; the strings are SQLite's,
    // NUL-terminated or null, valid for this call.
    let session = unsafe { &*(data as *const Session) };
    let text = |p: *const c_char| (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("\u{fffd}"));
    match session.decide(action, text(arg1), text(arg2), text(database)) {
        Ok(()) => ffi::SQLITE_OK,
        Err(reason) => {
            *session.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
            ffi::SQLITE_DENY
        }
    }
}
