//! What only `corral serve` runs, in place of what AWS does for a deployed
//! host: queue and change-stream delivery to consumers, and `--watch`.

pub mod change_log;
pub mod queue_consumers;
pub mod table_streams;
pub mod watch;

use std::sync::Arc;

/// Where subscribers get the changes of the tables they subscribe to under
/// `corral serve` (on Lambda, DynamoDB streams invoke the host).
#[derive(Clone)]
pub enum ChangeFeed {
    /// The local change log of embedded cache stores.
    Local(Arc<change_log::ChangeLog>),
    /// The DynamoDB streams of the subscribed tables.
    Streams(Arc<table_streams::TableStreams>),
}
