//! The host side of the WIT contract in `wit/`, generated once for every
//! capability module to implement.

#![allow(missing_docs)] // generated; the WIT carries the documentation

wasmtime::component::bindgen!({
    path: "../wit",
    world: "service",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "corral:host/db.transaction": crate::capability::db::TransactionHandle,
    },
});

pub(crate) use self::corral::host::types::Error as GuestError;
pub use self::exports::corral::host::handler;

use crate::capability::backend::BackendError;

impl From<BackendError> for GuestError {
    fn from(e: BackendError) -> GuestError {
        match e {
            BackendError::Conflict(m) => GuestError::Conflict(m),
            BackendError::Invalid(m) => GuestError::Invalid(m),
            BackendError::Unavailable(m) => GuestError::Unavailable(m),
            BackendError::NotGranted(m) => GuestError::NotGranted(m),
        }
    }
}
