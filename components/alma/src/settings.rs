//! The resolver's configuration: what every Alma component reads
//! ([`alma_api::Settings`]), and the users queue.

use std::ops::Deref;

use alma_api::settings::{number, required};
use corral_sdk::ApiError;

/// What the resolver reads from config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Alma API and the cache stores.
    pub shared: alma_api::Settings,
    /// Where a user missing from the cache is sent for a refresh.
    pub users_queue: String,
    /// How long a queued refresh keeps a user from being queued again.
    pub refresh_pending_seconds: u32,
}

impl Settings {
    /// Reads and checks the configuration.
    pub fn load() -> Result<Settings, ApiError> {
        Ok(Settings {
            shared: alma_api::Settings::load()?,
            users_queue: required("users_queue")?,
            refresh_pending_seconds: number("refresh_pending_seconds", 900, 1..=86_400)?,
        })
    }
}

impl Deref for Settings {
    type Target = alma_api::Settings;

    fn deref(&self) -> &alma_api::Settings {
        &self.shared
    }
}
