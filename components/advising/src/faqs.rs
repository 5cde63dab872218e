//! Frequently asked questions: read by anyone, written by callers.

use corral_sdk::prelude::*;

use crate::access;
use crate::input;
use crate::rows::{self, FAQ};

/// GET /faqs
pub fn list(_ctx: &Ctx) -> Result<Response, ApiError> {
    let found = sql::query(&format!("SELECT {FAQ} FROM advising_faqs ORDER BY id"), &[])?;
    Ok(json(200, &json!({ "faqs": rows::all_shown(found) })))
}

/// GET /faqs/{faq_id}: a list of one.
pub fn one(ctx: &Ctx) -> Result<Response, ApiError> {
    let id: i64 = ctx.param("faq_id")?;
    let found = sql::query(
        &format!("SELECT {FAQ} FROM advising_faqs WHERE id = ?"),
        &[id.into()],
    )?;
    Ok(json(
        200,
        &json!({ "faqs": rows::found(found, "faq", id)? }),
    ))
}

/// POST /faqs: 201 `{"faq_id": n}`.
pub fn create(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let fields = ctx.body_keys(&["question", "answer"], &[])?;
    let question = input::text(&fields, "question")?;
    let answer = input::text(&fields, "answer")?;
    let created = sql::query(
        "INSERT INTO advising_faqs (question, answer) VALUES (?, ?) RETURNING id",
        &[question.into(), answer.into()],
    )?;
    let id = created.first().and_then(|row| rows::integer(row, "id"));
    Ok(json(201, &json!({ "faq_id": id })))
}

/// PATCH /faqs/{faq_id}: changes the question, the answer or both, from the
/// query string (as the original read them) or the JSON body; 200 with the
/// FAQ as it is now.
pub fn update(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let id: i64 = ctx.param("faq_id")?;
    let fields = ctx.input_keys(&[], &["question", "answer"])?;
    let question = input::opt_text(&fields, "question")?;
    let answer = input::opt_text(&fields, "answer")?;
    let mut sets = Vec::new();
    let mut params: Vec<sql::Value> = Vec::new();
    for (column, value) in [("question", question), ("answer", answer)] {
        if let Some(value) = value {
            sets.push(format!("{column} = ?"));
            params.push(value.into());
        }
    }
    if sets.is_empty() {
        return Err(ApiError::bad_request("Missing key(s): question or answer"));
    }
    params.push(id.into());
    let updated = sql::query(
        &format!(
            "UPDATE advising_faqs SET {} WHERE id = ? RETURNING {FAQ}",
            sets.join(", ")
        ),
        &params,
    )?;
    Ok(json(
        200,
        &json!({ "faqs": rows::found(updated, "faq", id)? }),
    ))
}

/// DELETE /faqs/{faq_id}: 202.
pub fn delete(ctx: &Ctx) -> Result<Response, ApiError> {
    access::writer(ctx)?;
    let id: i64 = ctx.param("faq_id")?;
    if sql::execute("DELETE FROM advising_faqs WHERE id = ?", &[id.into()])? == 0 {
        return Err(ApiError::not_found(format!("no faq with id {id}")));
    }
    Ok(access::accepted())
}
