//! What the Alma components share: the Alma users API (`upstream`), the
//! three kinds of item and their cached form (`kind`), and the config that
//! names the Alma API and the cache stores (`settings`).

pub mod kind;
pub mod settings;
pub mod upstream;

pub use kind::Kind;
pub use settings::Settings;
pub use upstream::{Alma, Item};
