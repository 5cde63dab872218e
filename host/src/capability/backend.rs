//! The error every backend (database, cache, queue) reports, whatever
//! serves it, and how it reaches a component.

use std::collections::BTreeMap;

use serde::Deserialize;

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
    /// The database refused the statement for reaching outside the
    /// component's grants (beneath the SQL guard, which names it first).
    #[error("{0}")]
    NotGranted(String),
}

/// How a store or queue name that components use becomes the name of the
/// AWS resource behind it (a DynamoDB table, an SQS queue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameMap {
    /// Put before a name that has no explicit entry.
    pub prefix: String,
    /// Explicit resource names, by the name components use.
    pub names: BTreeMap<String, String>,
}

impl From<&AwsNames> for NameMap {
    fn from(names: &AwsNames) -> NameMap {
        NameMap {
            prefix: names.prefix.clone(),
            names: names.names.clone(),
        }
    }
}

impl NameMap {
    /// The resource name for `name`: its explicit entry, else the prefix
    /// followed by `name`.
    pub fn resolve(&self, name: &str) -> String {
        match self.names.get(name) {
            Some(explicit) => explicit.clone(),
            None => format!("{}{name}", self.prefix),
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
pub(crate) async fn with_deadline<F: Future>(deadline: std::time::Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline of the component call this task serves, if any.
pub(crate) fn deadline() -> Option<std::time::Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Maps a store or queue name to the AWS resource name: an entry in
/// `names`, else `prefix` + the name (stage-specific names, as `-prod`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsNames {
    /// Put before every name without an entry in `names`.
    #[serde(default)]
    pub prefix: String,
    /// Explicit names.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// Create missing tables or queues at start (local emulators, development).
    #[serde(default)]
    pub create_missing: bool,
}

/// Resolves `${env:NAME}` in one value of a backend section, naming the
/// value in its error.
pub(crate) type Resolve<'a> = dyn FnMut(&str, &mut String) -> Result<(), String> + 'a;
