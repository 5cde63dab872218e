//! The Alma resolver (seed LAG-api-gateway): a user's loans, requests and
//! fees, read from the cache stores that the Alma webhook and refresh
//! services keep, and from the Alma API where the cache has nothing valid.
//!
//! Routes below the mount, all GET: `/users/{user_id}` answers
//! `{"primary_id", "loans", "requests", "fees"}`; `/users/{user_id}/loans`,
//! `/requests` and `/fees` answer an array; `/users/{user_id}/loans/{id}`,
//! `/requests/{id}` and `/fees/{id}` answer one item. Only the contract's
//! fields are kept, absent ones omitted (`kind.rs`).
//!
//! Config (the manifest's `config` table; stage-specific names live here):
//! `user_store`, `loan_store`, `request_store`, `fee_store` (cache stores),
//! `users_queue`, `alma_api_key` (`${ssm:NAME}` on AWS), `alma_base_url`
//! (default Alma EU), and optionally `page_size` (100), `concurrency` (8
//! Alma requests at once), `upstream_budget_ms` (8000: all Alma calls of one
//! request together) and `refresh_pending_seconds` (900). The manifest must
//! grant the Alma host in `hosts`.
//!
//! Decisions:
//! - Unknown users and items are 404 (Alma's 404, or its 400 with a
//!   not-found error); any other Alma failure is 502, a slow Alma 504 once
//!   the budget is spent.
//! - A user missing from the cache is queued (body: the user id) once Alma
//!   confirms it, and only when `cache.add` of a `refresh-pending:{id}`
//!   marker succeeds, so it is not queued again while the refresh is
//!   pending. A failed send is logged and its marker removed.
//! - A list answer from Alma already carries its items, so on a user miss
//!   no item costs a second call (a valid cached item still wins).
//! - Nothing from Alma is written back to the cache (see `resolve.rs`).

mod resolve;
mod settings;

use corral_sdk::prelude::*;

use crate::settings::Settings;
use alma_api::Alma;
use alma_api::Kind;

struct Resolver;

impl Service for Resolver {
    /// A mistake in the config refuses the version before it serves.
    fn init() -> Result<(), String> {
        Settings::load().map(drop).map_err(|e| e.message)
    }

    fn routes() -> Router {
        Router::new()
            .get("/users/{user_id}", user)
            .get("/users/{user_id}/loans", |ctx| list(ctx, Kind::Loan))
            .get("/users/{user_id}/requests", |ctx| list(ctx, Kind::Request))
            .get("/users/{user_id}/fees", |ctx| list(ctx, Kind::Fee))
            .get("/users/{user_id}/loans/{item_id}", |ctx| {
                one(ctx, Kind::Loan)
            })
            .get("/users/{user_id}/requests/{item_id}", |ctx| {
                one(ctx, Kind::Request)
            })
            .get("/users/{user_id}/fees/{item_id}", |ctx| one(ctx, Kind::Fee))
    }
}

/// `{"primary_id", "loans", "requests", "fees"}`.
fn user(ctx: &Ctx) -> Result<Response, ApiError> {
    let user: String = ctx.param("user_id")?;
    let settings = Settings::load()?;
    let mut lists =
        resolve::user_items(&settings, &Alma::new(&settings), &user, &Kind::ALL)?.into_iter();
    let mut next = || Value::Array(lists.next().unwrap_or_default());
    Ok(json(
        200,
        &json!({ "primary_id": user, "loans": next(), "requests": next(), "fees": next() }),
    ))
}

/// The array of the user's items of one kind.
fn list(ctx: &Ctx, kind: Kind) -> Result<Response, ApiError> {
    let user: String = ctx.param("user_id")?;
    let settings = Settings::load()?;
    let items = resolve::user_items(&settings, &Alma::new(&settings), &user, &[kind])?
        .pop()
        .unwrap_or_default();
    Ok(json(200, &Value::Array(items)))
}

/// One item.
fn one(ctx: &Ctx, kind: Kind) -> Result<Response, ApiError> {
    let user: String = ctx.param("user_id")?;
    let id: String = ctx.param("item_id")?;
    let settings = Settings::load()?;
    Ok(json(
        200,
        &resolve::user_item(&settings, &Alma::new(&settings), &user, kind, &id)?,
    ))
}

corral_sdk::service!(Resolver);
