//! What can be wrong with a manifest, and the `${env:…}` references its
//! values may hold.

use std::path::PathBuf;

/// A manifest that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("manifest {path}: {message}")]
    Syntax {
        /// The manifest's path.
        path: PathBuf,
        /// The parser's message, with the line.
        message: String,
    },
    /// A value is not acceptable.
    #[error("manifest: {0}")]
    Invalid(String),
}

pub(crate) fn invalid(message: String) -> ManifestError {
    ManifestError::Invalid(message)
}

/// Replaces each `${env:NAME}` with that environment variable, and each
/// `${env:NAME:-default}` with it or, when it is unset, the default.
pub(crate) fn resolve_env(value: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 6..];
        let end = after.find('}').ok_or("unclosed \"${env:\"")?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        let value = env(name).or_else(|| default.map(str::to_owned));
        out.push_str(&value.ok_or_else(|| format!("environment variable {name} is not set"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
