//! The error every backend (database, cache, queue) reports, whatever
//! serves it, and how it reaches a component.

use crate::bindings::GuestError;

/// Why a backend call failed, in terms a component can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// A unique or foreign key constraint refused the change.
    #[error("{0}")]
    Conflict(String),
    /// The statement, arguments or stored data are not valid.
    #[error("{0}")]
    Invalid(String),
    /// The backend failed or could not be reached; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
}

impl From<BackendError> for GuestError {
    fn from(e: BackendError) -> GuestError {
        match e {
            BackendError::Conflict(m) => GuestError::Conflict(m),
            BackendError::Invalid(m) => GuestError::Invalid(m),
            BackendError::Unavailable(m) => GuestError::Unavailable(m),
        }
    }
}

/// Inside a host function: the value, or return the error to the component.
macro_rules! guest_try {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e.into())),
        }
    };
}
pub(crate) use guest_try;

tokio::task_local! {
    static DEADLINE: std::time::Instant;
}

/// Runs `work` with `deadline` as the time limit of every backend statement
/// it issues, so a component's query cannot outlive its request.
pub async fn with_deadline<F: Future>(deadline: std::time::Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline of the component call this task serves, if any.
pub fn deadline() -> Option<std::time::Instant> {
    DEADLINE.try_with(|d| *d).ok()
}
