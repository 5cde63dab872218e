//! Shared by the end-to-end tests, by concern: where things are (`paths`),
//! the manifests (`manifests`), the `corral serve` subprocess (`host`) and
//! its AWS side (`aws`), the app in process (`in_process`), tokens, the
//! HTTP reply, and the fakes some areas need (Alma, a webhook, the Lambda
//! emulator, the registry).

pub mod alma;
pub mod aws;
pub mod host;
pub mod in_process;
pub mod lambda;
pub mod manifests;
pub mod paths;
pub mod registry;
pub mod reply;
pub mod text;
pub mod tokens;
pub mod webhook;

pub(crate) use host::on_both_backends;
pub use host::{Backends, Host};
pub use reply::Reply;

/// Runs `future` to completion on a runtime of its own, on a thread of its
/// own: `Host` is synchronous, and the tests calling it already run inside
/// a runtime.
fn run_async<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a runtime")
            .block_on(future)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
