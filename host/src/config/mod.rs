//! The `config` interface: a component reads only the keys its manifest
//! entry declares, so declaring a key is granting it.

use crate::bindings::GuestError;
use crate::bindings::corral::host::config::Host;
use crate::instance::HostState;

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, GuestError>> {
        Ok(Ok(self.component.config.get(&key).cloned()))
    }
}
