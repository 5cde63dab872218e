//! The read-only catalog: advisors, colleges and the majors of a college.

use corral_sdk::prelude::*;

use crate::rows::{self, ADVISOR, COLLEGE, MAJOR};

/// GET /advisors
pub fn advisors(_ctx: &Ctx) -> Result<Response, ApiError> {
    let found = sql::query(
        &format!("SELECT {ADVISOR} FROM advising_advisors ORDER BY id"),
        &[],
    )?;
    Ok(json(200, &json!({ "advisors": rows::all_shown(found) })))
}

/// GET /advisors/{advisor_id}: a list of one.
pub fn advisor(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: i64 = ctx.param("advisor_id")?;
    let found = sql::query(
        &format!("SELECT {ADVISOR} FROM advising_advisors WHERE id = ?"),
        &[id.into()],
    )?;
    Ok(json(
        200,
        &json!({ "advisors": rows::found(found, "advisor", id)? }),
    ))
}

/// GET /colleges
pub fn colleges(_ctx: &Ctx) -> Result<Response, ApiError> {
    let found = sql::query(
        &format!("SELECT {COLLEGE} FROM advising_colleges ORDER BY id"),
        &[],
    )?;
    Ok(json(200, &json!({ "colleges": rows::all_shown(found) })))
}

/// GET /colleges/{college_id}: a list of one.
pub fn college(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: i64 = ctx.param("college_id")?;
    Ok(json(200, &json!({ "colleges": find_college(id)? })))
}

fn find_college(id: i64) -> Result<Vec<serde_json::Value>, ApiError> {
    let found = sql::query(
        &format!("SELECT {COLLEGE} FROM advising_colleges WHERE id = ?"),
        &[id.into()],
    )?;
    rows::found(found, "college", id)
}

/// GET /colleges/{college_id}/majors: 404 when the college does not exist.
pub fn majors(ctx: &Ctx) -> Result<Response, ApiError> {
    let college: i64 = ctx.param("college_id")?;
    find_college(college)?;
    let found = sql::query(
        &format!("SELECT {MAJOR} FROM advising_majors WHERE college_id = ? ORDER BY id"),
        &[college.into()],
    )?;
    Ok(json(200, &json!({ "majors": rows::all_shown(found) })))
}

/// GET /colleges/{college_id}/majors/{major_id}: a list of one, when the
/// major belongs to that college.
pub fn major(ctx: &Ctx) -> Result<Response, ApiError> {
    let college: i64 = ctx.param("college_id")?;
    let id: i64 = ctx.param("major_id")?;
    find_college(college)?;
    let found = sql::query(
        &format!("SELECT {MAJOR} FROM advising_majors WHERE college_id = ? AND id = ?"),
        &[college.into(), id.into()],
    )?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "college {college} has no major with id {id}"
        )));
    }
    Ok(json(200, &json!({ "majors": rows::all_shown(found) })))
}

/// 404 naming `major_id` unless a major has this id.
pub fn check_major(id: i64) -> Result<(), ApiError> {
    let found = sql::query("SELECT id FROM advising_majors WHERE id = ?", &[id.into()])?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "major_id: no major with id {id}"
        )));
    }
    Ok(())
}
