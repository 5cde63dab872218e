//! What every component gets without a grant: WASI, which Rust's standard
//! library imports (it grants no files, sockets or environment), and the
//! shared `types` interface.

use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::core::instance::HostState;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The shared `types` interface has no functions.
impl crate::core::bindings::corral::host::types::Host for HostState {}
