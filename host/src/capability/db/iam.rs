//! Passwords for new database connections. With RDS IAM authentication the
//! password is a short-lived auth token: a SigV4-presigned `connect` action
//! for the host, port and user, made from the host's own AWS credentials.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::capability::backend::BackendError;

/// RDS accepts an auth token for at most 15 minutes after signing.
pub(crate) const RDS_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Where passwords for new connections come from.
#[async_trait]
pub trait PasswordSource: Send + Sync {
    /// A password a new connection can log in with now.
    async fn password(&self) -> Result<String, BackendError>;
    /// How long a password stays valid after it is made.
    fn lifetime(&self) -> Duration;
    /// The same kind of password for another database user.
    fn for_user(&self, user: &str) -> Arc<dyn PasswordSource>;
}

/// What an RDS auth token is for.
#[derive(Debug, Clone)]
pub(crate) struct RdsTarget {
    /// The database host name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The database user.
    pub user: String,
    /// The AWS region of the database.
    pub region: String,
}

/// Signs an RDS auth token with explicit credentials at `time`.
pub(crate) fn rds_auth_token(
    target: &RdsTarget,
    credentials: Credentials,
    time: SystemTime,
    lifetime: Duration,
) -> Result<String, BackendError> {
    let identity: Identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(lifetime.min(RDS_TOKEN_LIFETIME));
    settings.signature_location = SignatureLocation::QueryParams;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name("rds-db")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| BackendError::Unavailable(format!("cannot sign the RDS auth token: {e}")))?;
    let host_port = format!("{}:{}", target.host, target.port);
    let action = format!(
        "Action=connect&DBUser={}",
        url::form_urlencoded::byte_serialize(target.user.as_bytes()).collect::<String>()
    );
    let unsigned = format!("https://{host_port}/?{action}");
    let request = SignableRequest::new("GET", &unsigned, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| BackendError::Unavailable(format!("cannot sign the RDS auth token: {e}")))?;
    let (instructions, _) = sign(request, &params.into())
        .map_err(|e| BackendError::Unavailable(format!("cannot sign the RDS auth token: {e}")))?
        .into_parts();
    let mut url = url::Url::parse(&unsigned).map_err(|e| BackendError::Invalid(format!("bad database host: {e}")))?;
    for (name, value) in instructions.params() {
        url.query_pairs_mut().append_pair(name, value);
    }
    // The token is the presigned URL without its scheme.
    Ok(url.as_str().trim_start_matches("https://").to_owned())
}

/// Fresh RDS auth tokens from the host's credential chain.
pub(crate) struct RdsIamAuth {
    target: RdsTarget,
    credentials: SharedCredentialsProvider,
    lifetime: Duration,
}

impl RdsIamAuth {
    /// Tokens for `target`, signed with `credentials`, valid for `lifetime`
    /// (at most 15 minutes).
    pub(crate) fn new(target: RdsTarget, credentials: SharedCredentialsProvider, lifetime: Duration) -> RdsIamAuth {
        RdsIamAuth {
            target,
            credentials,
            lifetime: lifetime.min(RDS_TOKEN_LIFETIME),
        }
    }
}

#[async_trait]
impl PasswordSource for RdsIamAuth {
    async fn password(&self) -> Result<String, BackendError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| BackendError::Unavailable(format!("no AWS credentials for the RDS auth token: {e}")))?;
        rds_auth_token(&self.target, credentials, SystemTime::now(), self.lifetime)
    }

    fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Tokens for a component role: `GRANT rds_iam` lets it log in with them,
    /// and the host's IAM policy covers `dbuser:<resource-id>/corral_g_*`.
    fn for_user(&self, user: &str) -> Arc<dyn PasswordSource> {
        Arc::new(RdsIamAuth {
            target: RdsTarget {
                user: user.to_owned(),
                ..self.target.clone()
            },
            credentials: self.credentials.clone(),
            lifetime: self.lifetime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_component_role_gets_a_token_of_its_own() {
        let target = RdsTarget {
            host: "db.example.eu-west-1.rds.amazonaws.com".into(),
            port: 5432,
            user: "corral_app".into(),
            region: "eu-west-1".into(),
        };
        let credentials = SharedCredentialsProvider::new(Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"));
        let host = RdsIamAuth::new(target, credentials, RDS_TOKEN_LIFETIME);
        let role = host.for_user("corral_g_0123456789abcdef");
        let (own, roles) = (host.password().await.unwrap(), role.password().await.unwrap());
        assert!(own.contains("DBUser=corral_app&"), "{own}");
        assert!(roles.contains("DBUser=corral_g_0123456789abcdef&"), "{roles}");
        assert!(
            roles.starts_with("db.example.eu-west-1.rds.amazonaws.com:5432/?Action=connect&"),
            "{roles}"
        );
        assert_eq!(role.lifetime(), RDS_TOKEN_LIFETIME);
    }

    /// The expected token comes from botocore's `generate_db_auth_token` for
    /// the same inputs: `python3 tests/fixtures/rds_auth_token.py` prints it.
    #[test]
    fn matches_botocore() {
        let target = RdsTarget {
            host: "db.example.eu-west-1.rds.amazonaws.com".into(),
            port: 5432,
            user: "corral_app".into(),
            region: "eu-west-1".into(),
        };
        let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_593_600); // 2026-11-25T08:00:00Z
        let token = rds_auth_token(&target, credentials, at, RDS_TOKEN_LIFETIME).unwrap();
        assert_eq!(
            token,
            "db.example.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=corral_app\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261125%2Feu-west-1%2Frds-db%2Faws4_request\
             &X-Amz-Date=20261125T080000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=9974544546855d5a91537e411e28e0418b9e894cee94996757b445cc92544f07"
        );
    }
}
