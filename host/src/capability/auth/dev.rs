//! Development tokens: HS256 JWTs signed with a key kept in the data
//! directory, so `corral token` and `corral serve` agree without setup, or
//! with a key the deployment gives every host (`[backends.auth] signing_key`).

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

use super::{AuthError, Identity, Verifier};

/// The issuer claim of development tokens.
const ISSUER: &str = "corral-dev";

/// The shortest signing key accepted from configuration.
const MIN_CONFIGURED_KEY: usize = 32;

/// The development signing key.
pub(crate) struct DevKeys {
    secret: Vec<u8>,
    validation: Validation,
}

impl DevKeys {
    /// Loads the key from `dir/dev-signing-key`, creating it (readable by the
    /// owner only) on first use.
    pub(crate) fn load_or_create(dir: &Path) -> std::io::Result<DevKeys> {
        let path = dir.join("dev-signing-key");
        let hex_key = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                let key = hex::encode(rand::random::<[u8; 32]>());
                write_private(&path, &key)?;
                key
            }
            Err(e) => return Err(e),
        };
        let secret =
            hex::decode(&hex_key).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
        Ok(DevKeys::from_secret(secret))
    }

    /// Keys from a configured signing key: its text, at least 32 characters.
    pub(crate) fn from_configured(text: &str) -> anyhow::Result<DevKeys> {
        let text = text.trim();
        anyhow::ensure!(
            text.len() >= MIN_CONFIGURED_KEY,
            "the dev signing key must be at least {MIN_CONFIGURED_KEY} characters (openssl rand -hex 32 makes one)"
        );
        Ok(DevKeys::from_secret(text.as_bytes().to_vec()))
    }

    /// Keys from a raw secret.
    pub(crate) fn from_secret(secret: Vec<u8>) -> DevKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.validate_aud = false;
        // jsonwebtoken leaves `nbf` unchecked unless asked.
        validation.validate_nbf = true;
        validation.leeway = 5;
        DevKeys { secret, validation }
    }

    /// Signs a token for `subject` with these groups, valid for `ttl_seconds`.
    pub(crate) fn issue(&self, subject: &str, username: Option<&str>, groups: &[String], ttl_seconds: u64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": subject,
            "iss": ISSUER,
            "iat": now,
            "exp": now + ttl_seconds as i64,
            "groups": groups,
        });
        if let Some(name) = username {
            claims["username"] = json!(name);
        }
        sign(&self.secret, &claims)
    }
}

fn sign(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).expect("HS256 signing cannot fail")
}

#[async_trait::async_trait]
impl Verifier for DevKeys {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(&self.secret), &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Identity::from_claims(data.claims)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn issued_tokens_verify_and_others_do_not() {
        let keys = DevKeys::from_secret(b"k1".to_vec());
        let token = keys.issue("alice", Some("Alice"), &["advisors".into()], 60);
        let id = keys.verify(&token).await.unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.username.as_deref(), Some("Alice"));
        assert!(id.in_group("advisors"));
        assert!(DevKeys::from_secret(b"k2".to_vec()).verify(&token).await.is_err());
        assert!(keys.verify("not.a.token").await.is_err());
        let past = chrono::Utc::now().timestamp() - 100;
        let expired = sign(b"k1", &json!({"sub": "bob", "iss": ISSUER, "exp": past}));
        assert!(matches!(keys.verify(&expired).await, Err(AuthError::Invalid(_))));
        let no_issuer = sign(b"k1", &json!({"sub": "bob", "exp": past + 1000}));
        assert!(keys.verify(&no_issuer).await.is_err());
    }
}
