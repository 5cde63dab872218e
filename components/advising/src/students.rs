//! Students: the people waiting to see an advisor.

use corral_sdk::prelude::*;

use crate::access;
use crate::catalog::check_major;
use crate::input;
use crate::locks;
use crate::queues;
use crate::rows::{self, Conditions, STUDENT};

/// GET /students, optionally filtered by `email`, `major_id` and
/// `student_identifier`.
pub fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    let email = input::query_text(ctx, "email")?;
    let major: Option<i64> = ctx.query("major_id")?;
    let identifier = input::query_text(ctx, "student_identifier")?;
    let (filter, params) = Conditions::default()
        .eq("email", email)
        .eq("major_id", major)
        .eq("student_identifier", identifier)
        .build();
    let found = sql::query(
        &format!("SELECT {STUDENT} FROM advising_students{filter} ORDER BY id"),
        &params,
    )?;
    Ok(json(200, &json!({ "students": rows::all_shown(found) })))
}

/// GET /students/{student_id}: a list of one.
pub fn one(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: i64 = ctx.param("student_id")?;
    let found = sql::query(
        &format!("SELECT {STUDENT} FROM advising_students WHERE id = ?"),
        &[id.into()],
    )?;
    Ok(json(
        200,
        &json!({ "students": rows::found(found, "student", id)? }),
    ))
}

/// POST /students: 201 `{"student_id": n}`; 409 when the email is taken.
pub fn create(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let fields = ctx.body_keys(
        &[
            "email",
            "student_identifier",
            "is_undergraduate",
            "major_id",
        ],
        &["name"],
    )?;
    let email = input::text(&fields, "email")?;
    let identifier = input::text(&fields, "student_identifier")?;
    let undergraduate = input::flag(&fields, "is_undergraduate")?;
    let major = input::integer(&fields, "major_id")?;
    let name = input::opt_text(&fields, "name")?;
    check_major(major)?;
    let created = sql::query(
        "INSERT INTO advising_students (name, student_identifier, email, is_undergraduate, major_id) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
        &[name.into(), identifier.into(), email.clone().into(), undergraduate.into(), major.into()],
    )
    .map_err(|e| taken(e, &email))?;
    let id = created.first().and_then(|row| rows::integer(row, "id"));
    Ok(json(201, &json!({ "student_id": id })))
}

/// PATCH /students/{student_id}: `major_id` and `is_undergraduate`, from the
/// query string or the JSON body; 202. Giving either takes the student out
/// of their queue first, as the original API did: the queue they wait in is
/// defined by these two fields.
pub fn update(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let id: i64 = ctx.param("student_id")?;
    let fields = ctx.input_keys(&[], &["major_id", "is_undergraduate"])?;
    let major = input::opt_integer(&fields, "major_id")?;
    let undergraduate = input::opt_flag(&fields, "is_undergraduate")?;
    if let Some(major) = major {
        check_major(major)?;
    }
    let tx = sql::Tx::begin()?;
    locks::student(&tx, id)?;
    if major.is_some() || undergraduate.is_some() {
        queues::leave(&tx, id)?;
        let mut sets = Vec::new();
        let mut params: Vec<sql::Value> = Vec::new();
        if let Some(major) = major {
            sets.push("major_id = ?");
            params.push(major.into());
        }
        if let Some(undergraduate) = undergraduate {
            sets.push("is_undergraduate = ?");
            params.push(undergraduate.into());
        }
        params.push(id.into());
        tx.execute(
            &format!(
                "UPDATE advising_students SET {} WHERE id = ?",
                sets.join(", ")
            ),
            &params,
        )?;
    }
    tx.commit()?;
    Ok(access::accepted())
}

/// DELETE /students/{student_id}: leaves every queue, then goes; 202.
pub fn delete(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let id: i64 = ctx.param("student_id")?;
    let tx = sql::Tx::begin()?;
    locks::student(&tx, id)?;
    queues::leave(&tx, id)?;
    tx.execute("DELETE FROM advising_students WHERE id = ?", &[id.into()])?;
    tx.commit()?;
    Ok(access::accepted())
}

/// A unique violation on insert can only be the email.
fn taken(error: ApiError, email: &str) -> ApiError {
    if error.status == 409 {
        ApiError::conflict(format!("a student with email {email} already exists"))
    } else {
        error
    }
}
