//! `wasi:http/outgoing-handler` for a component: the standard WASI HTTP
//! host, with [`Outbound`] as its hooks.

use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::Outbound;
use crate::core::instance::HostState;

/// Outbound HTTP goes through [`crate::capability::outbound::Outbound`], which sends only
/// to the hosts the manifest grants.
impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let outbound = self
            .outbound
            .get_or_insert_with(|| Outbound::new(self.component.outbound.clone(), self.request_id.clone()));
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: outbound,
        }
    }
}
