//! The Alma resolver (seed LAG-api-gateway): a user's loans, requests and
//! fees, read from the cache stores the Alma webhook and refresh services
//! keep, and from the Alma API where the cache has nothing valid. A user
//! missing from the cache is queued (message body: the user id) so those
//! services refresh it.
//!
//! Routes (below the mount): `/users/{user_id}`, `/users/{user_id}/loans`,
//! `/requests`, `/fees`, and one item of each by its id. See
//! `components/alma/README.md` for config and decisions.

mod kind;
mod resolve;
mod settings;
mod upstream;

use corral_sdk::prelude::*;

use crate::kind::Kind;
use crate::settings::Settings;
use crate::upstream::Alma;

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
