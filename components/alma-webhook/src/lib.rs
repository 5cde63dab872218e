//! The Alma webhook (seed alma-webhook-handler), mounted at the stage root
//! of its own path.
//!
//! - `GET ?challenge=X` answers `{"challenge": "X"}`; without one, 400
//!   `{"error": {"message": "Missing challenge parameter"}}`.
//! - `POST` checks `X-Exl-Signature`, base64(HMAC-SHA256(secret, raw body)),
//!   then that the body is JSON naming one of the eight supported event
//!   types, and sends the body unchanged to the events queue: 200, text
//!   `Data successfully published to topic`. A missing or wrong signature is
//!   401 `{"message": "An invalid message signature was sent"}` (missing:
//!   "... was not sent"), not JSON 400, an unsupported type 422, a body over
//!   SQS's 256 KiB 413, a failed send 500 `{"message": "Internal server error"}`.
//!
//! Config: `webhook_secret` (`${ssm:NAME}` on AWS; the host caches it) and
//! `events_queue`.
//!
//! Unlike the original, the header is matched case-insensitively (the host
//! hands headers over lower-cased), a missing header is a 401 rather than a
//! crash, and the signature is compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use corral_sdk::bindings::corral::host::log::{Level, log};
use corral_sdk::bindings::corral::host::{config, queue};
use corral_sdk::prelude::*;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header Alma signs with.
const SIGNATURE_HEADER: &str = "x-exl-signature";

/// The largest body a queue message can carry (SQS's limit).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The event types Alma sends that the cache follows.
pub const EVENT_TYPES: [&str; 8] = [
    "LOAN_CREATED",
    "LOAN_DUE_DATE",
    "LOAN_RENEWED",
    "LOAN_RETURNED",
    "REQUEST_CREATED",
    "REQUEST_CLOSED",
    "REQUEST_CANCELED",
    "REQUEST_PLACED_ON_SHELF",
];

struct Webhook;

impl Service for Webhook {
    fn init() -> Result<(), String> {
        for key in ["webhook_secret", "events_queue"] {
            if config::get(key)
                .map_err(|e| format!("reading config '{key}': {e:?}"))?
                .is_none()
            {
                return Err(format!("the config key '{key}' is not set"));
            }
        }
        Ok(())
    }

    fn routes() -> Router {
        Router::new().get("/", challenge).post("/", receive)
    }
}

fn message(status: u16, text: &str) -> Response {
    json(status, &json!({ "message": text }))
}

fn internal_error(why: &str) -> Response {
    log(Level::Error, why);
    message(500, "Internal server error")
}

/// Alma's check that the URL is its webhook: echo the challenge.
fn challenge(ctx: &Ctx) -> Result<Response, ApiError> {
    Ok(match ctx.query::<String>("challenge").ok().flatten() {
        Some(challenge) => json(200, &json!({ "challenge": challenge })),
        None => json(
            400,
            &json!({ "error": { "message": "Missing challenge parameter" } }),
        ),
    })
}

fn receive(ctx: &Ctx) -> Result<Response, ApiError> {
    let body = &ctx.request().body;
    if body.len() > MAX_BODY_BYTES {
        return Ok(message(413, "The event body is larger than 256 KiB"));
    }
    let secret = match config::get("webhook_secret") {
        Ok(Some(secret)) if !secret.is_empty() => secret,
        Ok(_) => return Ok(internal_error("the config key 'webhook_secret' is not set")),
        Err(e) => {
            return Ok(internal_error(&format!(
                "cannot read the webhook secret: {e:?}"
            )));
        }
    };
    let Some(signature) = ctx.header(SIGNATURE_HEADER) else {
        return Ok(message(401, "The message signature was not sent"));
    };
    if !signed(secret.as_bytes(), body, signature) {
        return Ok(message(401, "An invalid message signature was sent"));
    }
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return Ok(message(400, "Event body is not valid JSON"));
    };
    let kind = event.pointer("/event/value").and_then(Value::as_str);
    match kind {
        Some(kind) if EVENT_TYPES.contains(&kind) => {}
        Some(kind) => return Ok(message(422, &format!("Event type {kind} is not supported"))),
        None => return Ok(message(422, "The event names no type (event.value)")),
    }
    let queue_name = match config::get("events_queue") {
        Ok(Some(name)) => name,
        Ok(None) => return Ok(internal_error("the config key 'events_queue' is not set")),
        Err(e) => {
            return Ok(internal_error(&format!(
                "cannot read config 'events_queue': {e:?}"
            )));
        }
    };
    let outgoing = queue::Message {
        // Valid JSON is valid UTF-8.
        body: String::from_utf8_lossy(body).into_owned(),
        attributes: Vec::new(),
        group_id: None,
        dedup_id: None,
        delay_seconds: 0,
    };
    match queue::send(&queue_name, &outgoing) {
        Ok(_) => Ok(text(200, "Data successfully published to topic")),
        Err(e) => Ok(internal_error(&format!(
            "cannot queue a {} event on '{queue_name}': {e:?}",
            kind.unwrap_or_default()
        ))),
    }
}

/// Whether `signature` is base64(HMAC-SHA256(secret, body)), compared in
/// constant time.
fn signed(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(tag) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

corral_sdk::service!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn only_the_exact_signature_of_the_body_passes() {
        let body = br#"{"event":{"value":"LOAN_CREATED"}}"#;
        let good = sign(b"s3cret", body);
        assert!(signed(b"s3cret", body, &good));
        assert!(!signed(b"other", body, &good));
        assert!(!signed(b"s3cret", b"{}", &good));
        assert!(!signed(b"s3cret", body, "not base64!"));
        assert!(!signed(b"s3cret", body, ""));
        assert!(!signed(b"s3cret", body, &good[..good.len() - 4]));
    }
}
