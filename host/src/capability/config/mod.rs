//! The `config` interface: a component reads only the keys its manifest
//! entry declares, so declaring a key is granting it. A value written as
//! `${ssm:NAME}` is a secret, read from SSM Parameter Store with decryption
//! when first asked for and cached; secrets are never logged.

mod ssm;

pub use ssm::{Secrets, setting_value};

use crate::capability::backend::guest_try;
use crate::core::bindings::GuestError;
use crate::core::bindings::corral::host::config::Host;
use crate::core::instance::HostState;

/// The SSM parameter a config value refers to, if it is a reference.
pub fn secret_name(value: &str) -> Option<&str> {
    value.strip_prefix("${ssm:")?.strip_suffix('}').filter(|n| !n.is_empty())
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, GuestError>> {
        let Some(value) = self.component.config.get(&key) else {
            return Ok(Ok(None));
        };
        let Some(name) = secret_name(value) else {
            return Ok(Ok(Some(value.clone())));
        };
        let name = name.to_owned();
        let secrets = guest_try!(self.component.backends.secrets.clone().ok_or_else(|| {
            GuestError::Unavailable(format!(
                "config key \"{key}\" is an SSM parameter, but the host has no AWS configuration"
            ))
        }));
        Ok(secrets.get(&name).await.map(Some).map_err(Into::into))
    }
}
