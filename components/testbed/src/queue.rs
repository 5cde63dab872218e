//! The queue interface, one operation per request.

use corral_sdk::bindings::corral::host::queue::{self, Message};
use corral_sdk::{ApiError, Request, RequestExt, Response, json};
use serde::Deserialize;
use serde_json::{Value, json};

/// How many messages `receive` takes when the body sets no `max`.
const DEFAULT_MAX: u32 = 1;
/// How long received messages stay hidden when the body sets no
/// `visibility`, in seconds.
const DEFAULT_VISIBILITY: u32 = 30;

#[derive(Deserialize)]
struct Body {
    op: String,
    queue: String,
    body: Option<String>,
    #[serde(default)]
    bodies: Vec<String>,
    max: Option<u32>,
    visibility: Option<u32>,
    receipt: Option<String>,
}

/// Runs the operation the body names.
pub fn run(request: &Request) -> Result<Response, ApiError> {
    let body: Body = request.json_as()?;
    let name = body.queue.as_str();
    let result = match body.op.as_str() {
        "send" => {
            let text = body
                .body
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("'send' needs 'body'"))?;
            json!({ "id": queue::send(name, &message(text))? })
        }
        "send-batch" => {
            let messages: Vec<Message> = body.bodies.iter().map(|text| message(text)).collect();
            let results: Vec<Value> = queue::send_batch(name, &messages)?
                .into_iter()
                .map(|result| match result {
                    Ok(id) => json!({ "id": id }),
                    Err(error) => {
                        let error = ApiError::from(error);
                        json!({ "error": { "code": error.code, "message": error.message } })
                    }
                })
                .collect();
            json!({ "results": results })
        }
        "receive" => {
            let max = body.max.unwrap_or(DEFAULT_MAX);
            let visibility = body.visibility.unwrap_or(DEFAULT_VISIBILITY);
            let messages: Vec<Value> = queue::receive(name, max, visibility)?
                .into_iter()
                .map(|received| {
                    json!({
                        "id": received.id,
                        "receipt": received.receipt,
                        "body": received.body,
                        "receive_count": received.receive_count,
                    })
                })
                .collect();
            json!({ "messages": messages })
        }
        "delete" => {
            let receipt = body
                .receipt
                .as_deref()
                .ok_or_else(|| ApiError::bad_request("'delete' needs 'receipt'"))?;
            queue::delete(name, receipt)?;
            json!({ "ok": true })
        }
        op => return Err(ApiError::bad_request(format!("Unknown op '{op}'"))),
    };
    Ok(json(200, &result))
}

fn message(body: &str) -> Message {
    Message {
        body: body.to_string(),
        attributes: Vec::new(),
        group_id: None,
        dedup_id: None,
        delay_seconds: 0,
    }
}
