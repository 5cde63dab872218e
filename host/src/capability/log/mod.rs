//! Logs: the host's tracing set-up, and the `log` interface that lands a
//! component's lines in it with the component and request id.

mod host;

/// Installs the global subscriber: `RUST_LOG`-style filtering (default
/// `info`), as JSON lines when `json` is set. Colours only on a terminal: a
/// log file or CloudWatch would keep the escape codes.
pub fn init(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
