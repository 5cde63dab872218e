//! The records API, one operation per request.

use corral_sdk::bindings::corral::host::db::{self, Filter, ListQuery};
use corral_sdk::{
    ApiError, Request, RequestExt, Response, filter, json, parse_comparison, parse_record,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The page size of `list` when the body sets no `limit`.
const DEFAULT_LIMIT: u32 = 100;

#[derive(Deserialize)]
struct Body {
    op: String,
    table: String,
    fields: Option<Map<String, Value>>,
    uid: Option<String>,
    #[serde(default)]
    filters: Vec<FilterBody>,
    limit: Option<u32>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct FilterBody {
    field: String,
    op: String,
    value: Value,
}

/// Runs the operation the body names.
pub fn run(request: &Request) -> Result<Response, ApiError> {
    let body: Body = request.json_as()?;
    let table = body.table.as_str();
    let result = match body.op.as_str() {
        "insert" => json!({ "record": parse_record(&db::insert(table, &fields(&body)?)?)? }),
        "get" => json!({ "record": optional_record(db::get(table, uid(&body)?)?)? }),
        "update" => {
            json!({ "record": optional_record(db::update(table, uid(&body)?, &fields(&body)?)?)? })
        }
        "delete" => json!({ "deleted": db::delete(table, uid(&body)?)? }),
        "list" => list(table, &body)?,
        op => return Err(ApiError::bad_request(format!("Unknown op '{op}'"))),
    };
    Ok(json(200, &result))
}

fn list(table: &str, body: &Body) -> Result<Value, ApiError> {
    let filters = body
        .filters
        .iter()
        .map(to_filter)
        .collect::<Result<Vec<Filter>, _>>()?;
    let query = ListQuery {
        filters,
        limit: body.limit.unwrap_or(DEFAULT_LIMIT),
        after: body.after.clone(),
    };
    let page = db::list(table, &query)?;
    let records = page
        .records
        .iter()
        .map(|record| parse_record(record))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "records": records, "next": page.next }))
}

fn to_filter(body: &FilterBody) -> Result<Filter, ApiError> {
    let comparison = parse_comparison(&body.op)
        .ok_or_else(|| ApiError::bad_request(format!("Unknown filter op '{}'", body.op)))?;
    Ok(filter(body.field.as_str(), comparison, &body.value))
}

fn optional_record(record: Option<String>) -> Result<Value, ApiError> {
    record.map_or(Ok(Value::Null), |record| parse_record(&record))
}

fn fields(body: &Body) -> Result<String, ApiError> {
    body.fields
        .as_ref()
        .map(|fields| Value::Object(fields.clone()).to_string())
        .ok_or_else(|| ApiError::bad_request("This op needs 'fields'"))
}

fn uid(body: &Body) -> Result<&str, ApiError> {
    body.uid
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("This op needs 'uid'"))
}
