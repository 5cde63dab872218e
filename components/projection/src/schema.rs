//! The tables of projected records, shared by the projection component
//! (which writes them) and the events API (which reads them). Both create
//! them in `init`, so neither depends on the other starting first.

use corral_sdk::ApiError;
use corral_sdk::sql::{self, Dialect};

/// Creates the tables when missing:
/// - `es_projections`: one row per (projection, aggregate id); `record` is
///   the projected record as JSON text, NULL when there is none (never
///   created, or removed). The row stays, so appliers can lock it.
/// - `es_applied`: the events each projection has applied, so an event
///   delivered again is applied once.
pub fn create() -> Result<(), ApiError> {
    // Ids compare bytewise on both databases, so keyset pages agree.
    let id_type = match sql::dialect() {
        Dialect::Postgres => "TEXT COLLATE \"C\"",
        Dialect::Sqlite => "TEXT",
    };
    sql::execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS es_projections (projection TEXT NOT NULL, id {id_type} NOT NULL, \
             record TEXT, PRIMARY KEY (projection, id))"
        ),
        &[],
    )?;
    sql::execute(
        "CREATE TABLE IF NOT EXISTS es_applied (projection TEXT NOT NULL, event_id TEXT NOT NULL, \
         PRIMARY KEY (projection, event_id))",
        &[],
    )?;
    Ok(())
}
