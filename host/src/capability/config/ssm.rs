//! Secrets from SSM Parameter Store, cached for a while so a hot Lambda does
//! not call SSM on every request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_ssm::Client;
use tokio::sync::Mutex;

use crate::capability::backend::BackendError;

/// SSM parameters, decrypted and cached.
pub struct Secrets {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, String)>>,
}

impl Secrets {
    /// Secrets read through `client`, each cached for `ttl`.
    pub fn new(client: Client, ttl: Duration) -> Secrets {
        Secrets {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Secrets read through the SSM API of `sdk`'s configuration.
    pub(crate) fn connect(sdk: &aws_config::SdkConfig, ttl: Duration) -> std::sync::Arc<Secrets> {
        std::sync::Arc::new(Secrets::new(Client::new(sdk), ttl))
    }

    /// The decrypted value of parameter `name`.
    pub async fn get(&self, name: &str) -> Result<String, BackendError> {
        if let Some((at, value)) = self.cache.lock().await.get(name)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let out = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_parameter_not_found() {
                    BackendError::Invalid(format!("SSM parameter {name} does not exist"))
                } else {
                    // The message names the parameter, never its value.
                    BackendError::Unavailable(format!("cannot read SSM parameter {name}: {}", e.meta().code().unwrap_or("error")))
                }
            })?;
        let value = out
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| BackendError::Unavailable(format!("SSM parameter {name} has no value")))?;
        self.cache.lock().await.insert(name.to_owned(), (Instant::now(), value.clone()));
        Ok(value)
    }
}

/// A deployment setting that may live in SSM: `ssm:PARAMETER` (a SecureString,
/// read with decryption) is that parameter's value; anything else is the
/// value itself. `what` names the setting in errors.
pub(crate) async fn setting_value(value: &str, aws: Option<&aws_config::SdkConfig>, what: &str) -> anyhow::Result<String> {
    let Some(parameter) = value.strip_prefix("ssm:") else {
        return Ok(value.to_owned());
    };
    let sdk = aws.ok_or_else(|| anyhow::anyhow!("reading {what} from SSM needs the AWS configuration"))?;
    let out = Client::new(sdk)
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {what} from SSM parameter {parameter}: {}", e.into_service_error()))?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| anyhow::anyhow!("SSM parameter {parameter} ({what}) has no value"))
}
