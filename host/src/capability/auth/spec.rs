//! `[backends.auth]`: who issues the bearer tokens the host checks.

use serde::Deserialize;

use crate::capability::backend::Resolve;

/// Who issues bearer tokens. (On Lambda, claims an API Gateway authorizer
/// already checked are used as they are.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum AuthSpec {
    /// HS256 development tokens (`corral token`), signed with `signing_key`
    /// when it is set, so that every host given the same key accepts the
    /// same tokens; otherwise with a key kept in the host's data directory.
    Dev {
        /// `ssm:PARAMETER` (a SecureString) or the key itself, usually
        /// through `${env:NAME}`: at least 32 characters.
        #[serde(default)]
        signing_key: Option<String>,
    },
    /// A Cognito user pool: RS256 tokens checked against its JWKS.
    Cognito {
        /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID`.
        issuer: String,
        /// The app client ids whose tokens are accepted.
        clients: Vec<String>,
        /// Where the keys are (default: the issuer's `/.well-known/jwks.json`).
        jwks_url: Option<String>,
    },
}

impl AuthSpec {
    /// Resolves `${env:NAME}` in the key, issuer, clients and key URL.
    pub(crate) fn resolve(&mut self, fix: &mut Resolve<'_>) -> Result<(), String> {
        match self {
            AuthSpec::Dev { signing_key: Some(key) } => fix("auth signing_key", key)?,
            AuthSpec::Dev { signing_key: None } => {}
            AuthSpec::Cognito { issuer, clients, jwks_url } => {
                fix("auth issuer", issuer)?;
                for c in clients.iter_mut() {
                    fix("auth clients", c)?;
                }
                if let Some(url) = jwks_url {
                    fix("auth jwks_url", url)?;
                }
                if clients.is_empty() {
                    return Err("auth clients must name at least one app client".into());
                }
            }
        }
        Ok(())
    }
}
