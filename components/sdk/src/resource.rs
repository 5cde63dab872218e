//! Generic handlers for a resource kept in one records table: the
//! class-based create / retrieve / update / delete / list handlers of
//! Pyverless, as a builder.
//!
//! ```ignore
//! let students = Records::new("students").required(&["name", "email"]).optional(&["major"]);
//! Router::new().get("/", |ctx| students().list(ctx)) ...
//! ```
//!
//! Statuses: create 201 (the stored record, with `location`), retrieve and
//! update 200, delete 204 without a body, list 200 `{"items", "next"}`;
//! unknown uid 404; undeclared or missing keys 400. With
//! [`Records::pyverless`], create and list answer in Pyverless's own shapes,
//! so an API built on it moves without changing its clients.

use serde_json::{Value, json};

use crate::bindings::corral::host::db::{self, Filter, ListQuery};
use crate::bindings::exports::corral::host::handler::Response;
use crate::{
    ApiError, Ctx, Keys, RequestExt, ResponseExt, eq_filter, is_audit_field, json, no_content,
    parse_record,
};

/// The page size when neither the request nor the resource sets one.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest page a request may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The largest `offset` a Pyverless-shaped list takes: the records before it
/// are read and skipped, so it is bounded.
pub const MAX_OFFSET: u32 = 10_000;
/// Records read per call while skipping to an `offset` (the host's cap).
const SKIP_BATCH: u32 = 1000;

/// A resource over one records table.
#[derive(Debug, Clone)]
pub struct Records {
    table: String,
    keys: Keys,
    page_size: u32,
    pyverless: bool,
}

impl Records {
    /// A resource over `table` accepting no body keys yet.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            keys: Keys::default(),
            page_size: DEFAULT_PAGE_SIZE,
            pyverless: false,
        }
    }

    /// Keys a new record must have, in the order errors name them.
    pub fn required(mut self, keys: &[&str]) -> Self {
        self.keys.required = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }

    /// Keys a record may have.
    pub fn optional(mut self, keys: &[&str]) -> Self {
        self.keys.optional = keys.iter().map(|k| (*k).to_owned()).collect();
        self
    }

    /// Both key lists at once.
    pub fn keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self
    }

    /// The page size when the request sets no `limit` (1 to [`MAX_PAGE_SIZE`]).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// Pyverless's shapes: create answers 201 with the new record's uid as
    /// a JSON string, and list answers a bare JSON array, paged by `offset`
    /// (0 to [`MAX_OFFSET`]) and `limit` instead of `after`.
    pub fn pyverless(mut self) -> Self {
        self.pyverless = true;
        self
    }

    /// GET on the collection: a page of records matching the query's
    /// equality filters, `limit` and `after` (the previous page's `next`).
    pub fn list(&self, ctx: &Ctx) -> Result<Response, ApiError> {
        let limit = match ctx.query::<u32>("limit") {
            Ok(None) => self.page_size,
            Ok(Some(limit)) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be an integer from 1 to {MAX_PAGE_SIZE}"
                )));
            }
        };
        if self.pyverless {
            return self.list_from_offset(ctx, limit);
        }
        let query = ListQuery {
            filters: self.filters(ctx, &["limit", "after"])?,
            limit,
            after: ctx.query::<String>("after")?,
        };
        let page = db::list(&self.table, &query)?;
        Ok(json(
            200,
            &json!({ "items": parsed(&page.records)?, "next": page.next }),
        ))
    }

    /// A bare array of `limit` records after the first `offset`.
    fn list_from_offset(&self, ctx: &Ctx, limit: u32) -> Result<Response, ApiError> {
        let offset = match ctx.query::<u32>("offset") {
            Ok(None) => 0,
            Ok(Some(offset)) if offset <= MAX_OFFSET => offset,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "offset must be an integer from 0 to {MAX_OFFSET}"
                )));
            }
        };
        let filters = self.filters(ctx, &["limit", "offset"])?;
        let mut after = None;
        let mut to_skip = offset;
        while to_skip > 0 {
            let batch = to_skip.min(SKIP_BATCH);
            let query = ListQuery {
                filters: filters.clone(),
                limit: batch,
                after: after.take(),
            };
            let page = db::list(&self.table, &query)?;
            match page.next {
                Some(next) if page.records.len() as u32 == batch => after = Some(next),
                // The table ends before the offset.
                _ => return Ok(json(200, &json!([]))),
            }
            to_skip -= batch;
        }
        let query = ListQuery {
            filters,
            limit,
            after,
        };
        let page = db::list(&self.table, &query)?;
        Ok(json(200, &Value::Array(parsed(&page.records)?)))
    }

    /// POST on the collection: stores the body's declared keys.
    pub fn create(&self, ctx: &Ctx) -> Result<Response, ApiError> {
        let fields = self.keys.check(ctx.request().json_object()?)?;
        let record = parse_record(&db::insert(
            &self.table,
            &Value::Object(fields).to_string(),
        )?)?;
        let uid = record
            .get("uid")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::internal("The host returned a record without a uid"))?;
        let request = ctx.request();
        let location = format!(
            "{}{}/{uid}",
            request.mount,
            request.path.trim_end_matches('/')
        );
        let body = if self.pyverless {
            Value::String(uid.to_owned())
        } else {
            record
        };
        Ok(json(201, &body).with_header("location", location))
    }

    /// GET on an item.
    pub fn retrieve(&self, _ctx: &Ctx, uid: &str) -> Result<Response, ApiError> {
        match db::get(&self.table, uid)? {
            Some(record) => Ok(json(200, &parse_record(&record)?)),
            None => Err(self.missing(uid)),
        }
    }

    /// PATCH on an item: merges the body's declared keys.
    pub fn update(&self, ctx: &Ctx, uid: &str) -> Result<Response, ApiError> {
        let changes = self.keys.check_partial(ctx.request().json_object()?)?;
        if changes.is_empty() {
            return Err(ApiError::bad_request("No changes"));
        }
        match db::update(&self.table, uid, &Value::Object(changes).to_string())? {
            Some(record) => Ok(json(200, &parse_record(&record)?)),
            None => Err(self.missing(uid)),
        }
    }

    /// DELETE on an item: 204 without a body.
    pub fn delete(&self, _ctx: &Ctx, uid: &str) -> Result<Response, ApiError> {
        match db::delete(&self.table, uid)? {
            true => Ok(no_content()),
            false => Err(self.missing(uid)),
        }
    }

    /// DELETE on the collection: removes the records matching the query's
    /// filters (at least one) and answers how many.
    pub fn delete_matching(&self, ctx: &Ctx) -> Result<Response, ApiError> {
        let filters = self.filters(ctx, &[])?;
        if filters.is_empty() {
            return Err(ApiError::bad_request(
                "DELETE on the collection needs at least one filter",
            ));
        }
        let deleted = db::delete_where(&self.table, &filters)?;
        Ok(json(200, &json!({ "deleted": deleted })))
    }

    fn missing(&self, uid: &str) -> ApiError {
        ApiError::not_found(format!("No {} record with uid {uid}", self.table))
    }

    /// An equality filter for each query parameter naming a declared key or
    /// an audit field; parameters in `reserved` are skipped, others are 400.
    fn filters(&self, ctx: &Ctx, reserved: &[&str]) -> Result<Vec<Filter>, ApiError> {
        let mut filters = Vec::new();
        let mut unknown: Vec<&str> = Vec::new();
        for (name, raw) in &ctx.request().query {
            if reserved.contains(&name.as_str()) {
                continue;
            }
            if self.keys.declares(name) || is_audit_field(name) {
                // `?age=3` matches numbers and `?name=ada` needs no quotes.
                let value =
                    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
                filters.push(eq_filter(name.as_str(), &value));
            } else if !unknown.contains(&name.as_str()) {
                unknown.push(name);
            }
        }
        if unknown.is_empty() {
            Ok(filters)
        } else {
            Err(ApiError::bad_request(format!(
                "Unknown query parameter(s): {}",
                unknown.join(", ")
            )))
        }
    }
}

/// Records as the host returns them, parsed.
fn parsed(records: &[String]) -> Result<Vec<Value>, ApiError> {
    records.iter().map(|r| parse_record(r)).collect()
}
