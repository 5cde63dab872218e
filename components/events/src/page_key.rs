//! Page keys: where a list stopped, opaque to clients and tamper-evident.
//! A key is `base64url(payload).base64url(HMAC-SHA256(secret, payload))`,
//! the payload naming the projection and the last aggregate id of the page,
//! so a key that was changed, forged or made for another projection is
//! refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

fn mac(secret: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(payload);
    mac
}

/// The key of a page of `projection` that ended at aggregate `id`.
pub fn sign(secret: &[u8], projection: &str, id: &str) -> String {
    let payload = json!({ "p": projection, "id": id }).to_string();
    let tag = mac(secret, payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The aggregate id a valid key of `projection` stopped at; none for any
/// other text.
pub fn verify(secret: &[u8], projection: &str, key: &str) -> Option<String> {
    let (payload, tag) = key.trim().split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    mac(secret, &payload).verify_slice(&tag).ok()?;
    let payload: Value = serde_json::from_slice(&payload).ok()?;
    if payload["p"] != projection {
        return None;
    }
    payload["id"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_only_untouched_and_for_their_projection() {
        let key = sign(b"secret", "default", "c10");
        assert_eq!(verify(b"secret", "default", &key).as_deref(), Some("c10"));
        assert_eq!(verify(b"other", "default", &key), None);
        assert_eq!(verify(b"secret", "activity", &key), None);
        let (payload, tag) = key.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"p":"default","id":"c99"}"#);
        assert_eq!(
            verify(b"secret", "default", &format!("{forged}.{tag}")),
            None
        );
        assert_eq!(
            verify(b"secret", "default", &format!("{payload}.{tag}x")),
            None
        );
        assert_eq!(verify(b"secret", "default", "garbage"), None);
    }
}
