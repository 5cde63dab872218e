//! `[backends.queue]`: which backend serves the `queue` interface.

use serde::Deserialize;

use crate::capability::backend::{AwsNames, Resolve};

/// The queue backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum QueueSpec {
    /// A table in the embedded SQLite database.
    #[default]
    Embedded,
    /// One SQS queue per queue name.
    Sqs(AwsNames),
}

impl QueueSpec {
    /// Whether the queues need the AWS configuration.
    pub(crate) fn uses_aws(&self) -> bool {
        matches!(self, QueueSpec::Sqs(_))
    }

    /// Resolves `${env:NAME}` in the queue names.
    pub(crate) fn resolve(&mut self, fix: &mut Resolve<'_>) -> Result<(), String> {
        if let QueueSpec::Sqs(names) = self {
            fix("prefix", &mut names.prefix)?;
            for v in names.names.values_mut() {
                fix("names", v)?;
            }
        }
        Ok(())
    }
}
