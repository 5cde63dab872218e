//! The component's configuration, read from the host per request.

use corral_sdk::bindings::corral::host::config;
use corral_sdk::resource::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Records};
use corral_sdk::{ApiError, Keys};

/// What the manifest configures for one resource.
pub struct Settings {
    /// The records table.
    pub table: String,
    /// The body keys the resource accepts.
    pub keys: Keys,
    /// The page size when the request sets no `limit`.
    pub page_size: u32,
    /// Whether create and list answer in Pyverless's shapes (`shapes =
    /// "pyverless"`).
    pub pyverless: bool,
}

impl Settings {
    /// Reads the settings; a missing or bad value is a deployment fault,
    /// hence 500.
    pub fn load() -> Result<Self, ApiError> {
        let table = config::get("table")?
            .filter(|table| !table.is_empty())
            .ok_or_else(|| ApiError::internal("config key 'table' is not set"))?;
        let required = config::get("required")?.unwrap_or_default();
        let optional = config::get("optional")?.unwrap_or_default();
        let page_size = match config::get("page_size")? {
            None => DEFAULT_PAGE_SIZE,
            Some(value) => value
                .trim()
                .parse()
                .ok()
                .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                .ok_or_else(|| {
                    ApiError::internal(format!(
                        "config key 'page_size' must be an integer from 1 to {MAX_PAGE_SIZE}"
                    ))
                })?,
        };
        let pyverless = match config::get("shapes")?.as_deref() {
            None | Some("corral") => false,
            Some("pyverless") => true,
            Some(other) => {
                return Err(ApiError::internal(format!(
                    "config key 'shapes' must be \"corral\" or \"pyverless\", not \"{other}\""
                )));
            }
        };
        Ok(Self {
            table,
            keys: Keys::from_lists(&required, &optional),
            page_size,
            pyverless,
        })
    }

    /// The generic record handlers these settings describe.
    pub fn records(self) -> Records {
        let records = Records::new(self.table)
            .keys(self.keys)
            .page_size(self.page_size);
        if self.pyverless {
            records.pyverless()
        } else {
            records
        }
    }
}
