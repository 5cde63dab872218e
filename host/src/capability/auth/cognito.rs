//! Cognito user pool tokens (RS256), checked against the pool's JWKS: the
//! signature, the issuer, the expiry, `token_use`, and the app client
//! (`aud` on ID tokens, `client_id` on access tokens). Used when no API
//! Gateway authorizer has checked the token already.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use super::{AuthError, Identity, Verifier};

/// A missing key id triggers a JWKS refresh at most this often, so forged
/// key ids cannot make the host hammer the pool's endpoint.
const MIN_REFRESH: Duration = Duration::from_secs(60);

/// Verifies the tokens of one Cognito user pool.
pub(crate) struct CognitoVerifier {
    issuer: String,
    clients: Vec<String>,
    jwks_url: String,
    http: reqwest::Client,
    keys: RwLock<(JwkSet, Option<Instant>)>,
}

impl CognitoVerifier {
    /// A verifier for the pool at `issuer`
    /// (`https://cognito-idp.REGION.amazonaws.com/POOL_ID`), accepting tokens
    /// of these app clients; the JWKS is `issuer/.well-known/jwks.json`
    /// unless `jwks_url` says otherwise.
    pub(crate) fn new(issuer: String, clients: Vec<String>, jwks_url: Option<String>) -> CognitoVerifier {
        let jwks_url = jwks_url.unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a TLS-capable HTTP client");
        CognitoVerifier {
            issuer,
            clients,
            jwks_url,
            http,
            keys: RwLock::new((JwkSet { keys: Vec::new() }, None)),
        }
    }

    /// Fetches the pool's keys now (at start, so the first request does not wait).
    pub(crate) async fn refresh(&self) -> Result<(), AuthError> {
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| AuthError::Unavailable(format!("cannot fetch the JWKS at {}: {e}", self.jwks_url)))?
            .json()
            .await
            .map_err(|e| AuthError::Unavailable(format!("the JWKS at {} is not valid: {e}", self.jwks_url)))?;
        *self.keys.write().await = (set, Some(Instant::now()));
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let find = |set: &JwkSet| set.find(kid).map(DecodingKey::from_jwk);
        let stale = {
            let keys = self.keys.read().await;
            if let Some(found) = find(&keys.0) {
                return found.map_err(|e| AuthError::Invalid(format!("unusable signing key: {e}")));
            }
            keys.1.is_none_or(|at| at.elapsed() >= MIN_REFRESH)
        };
        // Pools rotate keys: an unknown key id may be a new one.
        if stale {
            self.refresh().await?;
        }
        let keys = self.keys.read().await;
        find(&keys.0)
            .ok_or_else(|| AuthError::Invalid(format!("no key \"{kid}\" in the user pool's JWKS")))?
            .map_err(|e| AuthError::Invalid(format!("unusable signing key: {e}")))
    }
}

#[async_trait]
impl Verifier for CognitoVerifier {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid(format!(
                "tokens must be signed with RS256, not {:?}",
                header.alg
            )));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Invalid("the token names no key".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // Checked below: ID tokens carry the client in `aud`, access tokens in `client_id`.
        validation.validate_aud = false;
        // jsonwebtoken leaves `nbf` unchecked unless asked.
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        let client = match claims.get("token_use").and_then(Value::as_str) {
            Some("id") => claims.get("aud"),
            Some("access") => claims.get("client_id"),
            other => {
                return Err(AuthError::Invalid(format!("token_use must be \"id\" or \"access\", not {other:?}")));
            }
        };
        let client = client.and_then(Value::as_str).unwrap_or_default();
        if !self.clients.iter().any(|c| c == client) {
            return Err(AuthError::Invalid(format!(
                "the token is for app client \"{client}\", which is not accepted"
            )));
        }
        Identity::from_claims(claims)
    }
}
