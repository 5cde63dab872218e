//! The waiting-room queues. A queue is the pair (major_id, is_undergraduate)
//! of the students in it; its queuers hold positions 1..n.
//!
//! Every change to a queue happens in one transaction that first takes the
//! queue's lock ([`locks::queue`]), so changes to one queue take turns and
//! always see the positions the previous change left.

use corral_sdk::prelude::*;

use crate::access;
use crate::input;
use crate::locks;
use crate::rows::{self, Conditions, QUEUER, Row};

/// GET /queues: the queuers of every queue, or of those matching `major_id`
/// and `is_undergraduate`, by position.
pub fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    let major: Option<i64> = ctx.query("major_id")?;
    let undergraduate: Option<bool> = ctx.query("is_undergraduate")?;
    let (filter, params) = Conditions::default()
        .eq("major_id", major)
        .eq("is_undergraduate", undergraduate)
        .build();
    let found = sql::query(
        &format!(
            "SELECT {QUEUER} FROM advising_queuers{filter} ORDER BY position, major_id, is_undergraduate"
        ),
        &params,
    )?;
    Ok(json(200, &json!({ "queue": rows::all_shown(found) })))
}

/// POST /queuers: puts the student at the tail of their queue, saving the
/// optional `name` on the student; 201 `{"queuer": {...}}`.
pub fn enqueue(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let fields = ctx.body_keys(&["student_id"], &["name"])?;
    let student_id = input::integer(&fields, "student_id")?;
    let name = input::opt_text(&fields, "name")?;

    let tx = sql::Tx::begin()?;
    // The student's row first: a concurrent PATCH or DELETE of the student
    // waits for this enqueue, or this for it.
    locks::student(&tx, student_id)?;
    let student = one(tx.query(
        "SELECT name, major_id, is_undergraduate FROM advising_students WHERE id = ?",
        &[student_id.into()],
    )?)?;
    let queued = tx.query(
        "SELECT id FROM advising_queuers WHERE student_id = ?",
        &[student_id.into()],
    )?;
    if !queued.is_empty() {
        let who = match student.get("name").and_then(|n| n.as_str()) {
            Some(name) => format!("Student {name} (id {student_id})"),
            None => format!("Student with id {student_id}"),
        };
        return Err(ApiError::conflict(format!(
            "{who} cannot be queued as they are already in a queue"
        )));
    }
    let Some(major) = rows::integer(&student, "major_id") else {
        return Err(ApiError::bad_request(format!(
            "student {student_id} has no major_id, so no queue to join"
        )));
    };
    if let Some(name) = name {
        tx.execute(
            "UPDATE advising_students SET name = ? WHERE id = ?",
            &[name.into(), student_id.into()],
        )?;
    }
    let undergraduate = sql::boolean(&student, "is_undergraduate");

    locks::queue(&tx, major, undergraduate)?;
    let tail = one(tx.query(
        "SELECT COALESCE(MAX(position), 0) + 1 AS position FROM advising_queuers WHERE major_id = ? AND is_undergraduate = ?",
        &[major.into(), undergraduate.into()],
    )?)?;
    let position = rows::integer(&tail, "position").unwrap_or(1);
    let queuer = one(tx.query(
        &format!(
            "INSERT INTO advising_queuers (major_id, is_undergraduate, student_id, position) VALUES (?, ?, ?, ?) RETURNING {QUEUER}"
        ),
        &[major.into(), undergraduate.into(), student_id.into(), position.into()],
    )?)?;
    tx.commit()?;
    Ok(json(201, &json!({ "queuer": rows::shown(queuer) })))
}

/// DELETE /queuers/{queuer_id}: takes the queuer out and closes the gap; 202.
pub fn dequeue(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let id: i64 = ctx.param("queuer_id")?;
    let tx = sql::Tx::begin()?;
    let found = tx.query(
        "SELECT major_id, is_undergraduate FROM advising_queuers WHERE id = ?",
        &[id.into()],
    )?;
    let Some(queuer) = found.into_iter().next() else {
        return Err(ApiError::not_found(format!("no queuer with id {id}")));
    };
    let major = rows::integer(&queuer, "major_id").unwrap_or_default();
    locks::queue(&tx, major, sql::boolean(&queuer, "is_undergraduate"))?;
    // Another transaction may have removed it while this one waited.
    if !remove(&tx, id)? {
        return Err(ApiError::not_found(format!("no queuer with id {id}")));
    }
    tx.commit()?;
    Ok(access::accepted())
}

/// Takes `student_id` out of every queue, closing the gaps. The caller holds
/// the student's row lock, so no enqueue of this student runs meanwhile.
pub fn leave(tx: &sql::Tx, student_id: i64) -> Result<(), ApiError> {
    let queued = tx.query(
        "SELECT id, major_id, is_undergraduate FROM advising_queuers WHERE student_id = ?",
        &[student_id.into()],
    )?;
    for queuer in queued {
        let major = rows::integer(&queuer, "major_id").unwrap_or_default();
        locks::queue(tx, major, sql::boolean(&queuer, "is_undergraduate"))?;
        remove(tx, rows::integer(&queuer, "id").unwrap_or_default())?;
    }
    Ok(())
}

/// Deletes queuer `id` and moves everyone behind it one place up; false when
/// it is not there. The caller holds the queue's lock.
fn remove(tx: &sql::Tx, id: i64) -> Result<bool, ApiError> {
    let found = tx.query(
        "SELECT major_id, is_undergraduate, position FROM advising_queuers WHERE id = ?",
        &[id.into()],
    )?;
    let Some(queuer) = found.into_iter().next() else {
        return Ok(false);
    };
    let major = rows::integer(&queuer, "major_id").unwrap_or_default();
    let undergraduate = sql::boolean(&queuer, "is_undergraduate");
    let position = rows::integer(&queuer, "position").unwrap_or_default();
    tx.execute("DELETE FROM advising_queuers WHERE id = ?", &[id.into()])?;
    // Positions are unique within a queue, and both databases check that row
    // by row, so `position - 1` could collide halfway through. The rows
    // behind step aside to negative positions first, then come back one up.
    tx.execute(
        "UPDATE advising_queuers SET position = -position WHERE major_id = ? AND is_undergraduate = ? AND position > ?",
        &[major.into(), undergraduate.into(), position.into()],
    )?;
    tx.execute(
        "UPDATE advising_queuers SET position = -position - 1 WHERE major_id = ? AND is_undergraduate = ? AND position < 0",
        &[major.into(), undergraduate.into()],
    )?;
    Ok(true)
}

/// The one row a statement returns.
fn one(rows: Vec<Row>) -> Result<Row, ApiError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("the statement returned no row"))
}
