//! Who is calling: the host verifies bearer tokens and hands components the
//! identity, never the token.

mod cognito;
#[cfg(test)]
mod cognito_tests;
mod dev;
mod host;
#[cfg(test)]
mod matrix;
mod spec;

pub(crate) use spec::AuthSpec;

pub(crate) use cognito::CognitoVerifier;
pub(crate) use dev::DevKeys;

use serde_json::{Map, Value};

/// A verified caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The token's subject: a stable user id.
    pub subject: String,
    /// A display name, when the token has one.
    pub username: Option<String>,
    /// The groups the caller belongs to.
    pub groups: Vec<String>,
    /// Every claim of the token.
    pub claims: Map<String, Value>,
}

impl Identity {
    /// Reads the identity from verified claims. Cognito's names
    /// (`cognito:username`, `cognito:groups`) and plain ones are both understood.
    pub fn from_claims(claims: Map<String, Value>) -> Result<Identity, AuthError> {
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::Invalid("the token has no subject".into()))?
            .to_owned();
        let username = ["username", "cognito:username"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        let groups = ["groups", "cognito:groups"]
            .iter()
            .find_map(|k| claims.get(*k))
            .map(|v| match v {
                Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                // API Gateway hands list claims over as text: "a,b" (REST) or "[a b]" (HTTP API).
                Value::String(s) => s
                    .trim_matches(['[', ']'])
                    .split([' ', ','])
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            })
            .unwrap_or_default();
        Ok(Identity {
            subject,
            username,
            groups,
            claims,
        })
    }

    /// Whether the caller is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// The token is malformed, badly signed, expired or lacks a claim.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched, so no token can be checked.
    #[error("cannot check tokens now: {0}")]
    Unavailable(String),
}

/// Checks bearer tokens. One implementation per kind of issuer.
#[async_trait::async_trait]
pub(crate) trait Verifier: Send + Sync {
    /// The identity in `token`, if the token is valid now.
    async fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}

/// The bearer token of an `authorization` header value, if it is one.
pub(crate) fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
