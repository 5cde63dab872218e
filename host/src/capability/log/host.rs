//! The `log` interface: a component's lines land in the host's log with
//! the component and request id, within the request's log budget.

use crate::core::bindings::corral::host::log::{Host, Level};
use crate::core::instance::HostState;

/// The longest log line a component may write; longer ones are cut.
const MAX_LINE: usize = 8 * 1024;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        // Past the request's log budget, lines are only counted: one line
        // says how many when the call ends (see `HostState`'s `Drop`).
        let cost = message.len().min(MAX_LINE);
        if self.log_bytes + cost > self.component.limits.max_log_bytes {
            self.log_dropped += 1;
            return Ok(());
        }
        self.log_bytes += cost;
        let mut message = message;
        if message.len() > MAX_LINE {
            let cut = (0..=MAX_LINE).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let (component, request_id) = (self.component.name.as_str(), self.request_id.as_str());
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "corral::component", component, request_id, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error => emit!(error),
        }
        Ok(())
    }
}
