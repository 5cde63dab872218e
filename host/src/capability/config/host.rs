//! The `config` interface: a declared key's value, and a secret read from
//! SSM when the value refers to one.

use super::secret_name;
use crate::capability::backend::guest_try;
use crate::core::bindings::GuestError;
use crate::core::bindings::corral::host::config::Host;
use crate::core::instance::HostState;

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
