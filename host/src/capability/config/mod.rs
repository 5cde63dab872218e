//! The `config` interface: a component reads only the keys its manifest
//! entry declares, so declaring a key is granting it. A value written as
//! `${ssm:NAME}` is a secret, read from SSM Parameter Store with decryption
//! when first asked for and cached; secrets are never logged.

mod host;
mod ssm;
#[cfg(test)]
mod ssm_tests;

pub(crate) use ssm::{Secrets, setting_value};

/// The SSM parameter a config value refers to, if it is a reference.
pub(crate) fn secret_name(value: &str) -> Option<&str> {
    value.strip_prefix("${ssm:")?.strip_suffix('}').filter(|n| !n.is_empty())
}
