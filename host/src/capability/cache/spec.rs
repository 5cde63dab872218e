//! `[backends.cache]`: which backend serves the `cache` interface.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Layouts;
use crate::capability::backend::Resolve;

/// The cache backend. `layouts` names the stores kept in an existing
/// application's item layout (see `cache::Layout`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum CacheSpec {
    /// A table in the embedded SQLite database.
    Embedded {
        /// Stores kept in an application's item layout.
        #[serde(default)]
        layouts: Layouts,
    },
    /// One DynamoDB table per store.
    Dynamodb {
        /// Put before every store name without an entry in `names`.
        #[serde(default)]
        prefix: String,
        /// Explicit table names.
        #[serde(default)]
        names: BTreeMap<String, String>,
        /// Create missing tables at start (local emulators, development).
        #[serde(default)]
        create_missing: bool,
        /// Stores kept in an application's item layout.
        #[serde(default)]
        layouts: Layouts,
    },
}

impl Default for CacheSpec {
    fn default() -> CacheSpec {
        CacheSpec::Embedded {
            layouts: Default::default(),
        }
    }
}

impl CacheSpec {
    /// Whether the cache needs the AWS configuration.
    pub(crate) fn uses_aws(&self) -> bool {
        matches!(self, CacheSpec::Dynamodb { .. })
    }

    /// The stores kept in an application's item layout.
    pub(crate) fn layouts(&self) -> &Layouts {
        match self {
            CacheSpec::Embedded { layouts } | CacheSpec::Dynamodb { layouts, .. } => layouts,
        }
    }

    /// Checks the layouts, and resolves `${env:NAME}` in the table names.
    pub(crate) fn resolve(&mut self, fix: &mut Resolve<'_>) -> Result<(), String> {
        for (store, layout) in self.layouts() {
            layout.check(store)?;
        }
        if let CacheSpec::Dynamodb { prefix, names, .. } = self {
            fix("prefix", prefix)?;
            for v in names.values_mut() {
                fix("names", v)?;
            }
        }
        Ok(())
    }
}
