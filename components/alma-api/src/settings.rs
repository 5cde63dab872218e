//! The configuration the Alma components share: the manifest's `config`
//! table, where every stage-specific name lives (the stores, the key's
//! parameter).

use corral_sdk::ApiError;
use corral_sdk::bindings::corral::host::config;

use crate::kind::Kind;

/// Alma's EU API, used when `alma_base_url` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api-eu.hosted.exlibrisgroup.com/almaws/v1";

/// What every Alma component reads from config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Alma's API root, without a trailing slash.
    pub base_url: String,
    /// The cache stores of users, loans, requests and fees.
    pub user_store: String,
    pub loan_store: String,
    pub request_store: String,
    pub fee_store: String,
    /// Items per Alma list page (Alma allows 1 to 100).
    pub page_size: u32,
    /// At most this many Alma requests outstanding at once.
    pub concurrency: usize,
    /// The time all Alma calls of one request may take together.
    pub upstream_budget_ms: u64,
}

impl Settings {
    /// Reads and checks the configuration (the API key is read only when
    /// Alma is called: [`api_key`]).
    pub fn load() -> Result<Settings, ApiError> {
        Ok(Settings {
            base_url: optional("alma_base_url")?
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            user_store: required("user_store")?,
            loan_store: required("loan_store")?,
            request_store: required("request_store")?,
            fee_store: required("fee_store")?,
            page_size: number("page_size", 100, 1..=100)?,
            concurrency: number("concurrency", 8, 1..=64)?,
            upstream_budget_ms: number("upstream_budget_ms", 8000, 1..=900_000)?,
        })
    }

    /// The cache store of `kind`.
    pub fn store(&self, kind: Kind) -> &str {
        match kind {
            Kind::Loan => &self.loan_store,
            Kind::Request => &self.request_store,
            Kind::Fee => &self.fee_store,
        }
    }
}

/// The Alma API key (`alma_api_key`, an `${ssm:...}` reference on AWS).
pub fn api_key() -> Result<String, ApiError> {
    required("alma_api_key")
}

pub fn optional(key: &str) -> Result<Option<String>, ApiError> {
    Ok(config::get(key)?.filter(|v| !v.is_empty()))
}

pub fn required(key: &str) -> Result<String, ApiError> {
    optional(key)?.ok_or_else(|| ApiError::internal(format!("the config key '{key}' is not set")))
}

pub fn number<T>(key: &str, default: T, range: std::ops::RangeInclusive<T>) -> Result<T, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let Some(raw) = optional(key)? else {
        return Ok(default);
    };
    raw.parse()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            ApiError::internal(format!(
                "the config key '{key}' must be a number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}
