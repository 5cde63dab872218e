//! The `auth` interface: the verified caller, as the host established it.

use crate::core::bindings::GuestError;
use crate::core::bindings::corral::host::auth::{Host, Identity as WitIdentity};
use crate::core::instance::HostState;

use super::Identity;

fn to_wit(id: &Identity) -> WitIdentity {
    WitIdentity {
        subject: id.subject.clone(),
        username: id.username.clone(),
        groups: id.groups.clone(),
        claims: serde_json::Value::Object(id.claims.clone()).to_string(),
    }
}

impl Host for HostState {
    async fn caller(&mut self) -> wasmtime::Result<Option<WitIdentity>> {
        Ok(self.identity.as_deref().map(to_wit))
    }

    async fn require_group(&mut self, group: String) -> wasmtime::Result<Result<WitIdentity, GuestError>> {
        Ok(match self.identity.as_deref() {
            None => Err(GuestError::Unauthenticated("this needs a signed-in caller".into())),
            Some(id) if id.in_group(&group) => Ok(to_wit(id)),
            Some(_) => Err(GuestError::Forbidden(format!("the caller is not in group \"{group}\""))),
        })
    }
}
