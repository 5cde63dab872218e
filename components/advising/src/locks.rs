//! The row locks that make changes to students and queues take turns. A
//! change that needs both takes the student's lock first and the queue's
//! second, in that order everywhere, so two transactions never wait on each
//! other in a cycle.

use corral_sdk::prelude::*;

/// Takes the student's row lock for the rest of `tx` (a write that changes
/// nothing); 404 when there is no such student.
pub fn student(tx: &sql::Tx, id: i64) -> Result<(), ApiError> {
    if tx.execute(
        "UPDATE advising_students SET name = name WHERE id = ?",
        &[id.into()],
    )? == 0
    {
        return Err(ApiError::not_found(format!("no student with id {id}")));
    }
    Ok(())
}

/// Takes the lock of queue (major, undergraduate) until `tx` ends: an UPDATE
/// of the queue's head row, which is a row lock on PostgreSQL (SQLite's
/// transactions already hold the database's write lock).
pub fn queue(tx: &sql::Tx, major: i64, undergraduate: bool) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO advising_queue_heads (major_id, is_undergraduate) VALUES (?, ?) ON CONFLICT DO NOTHING",
        &[major.into(), undergraduate.into()],
    )?;
    tx.execute(
        "UPDATE advising_queue_heads SET changes = changes + 1 WHERE major_id = ? AND is_undergraduate = ?",
        &[major.into(), undergraduate.into()],
    )?;
    Ok(())
}
