//! What only `corral serve` runs, in place of what AWS does for a deployed
//! host: queue and change-stream delivery to consumers, and `--watch`.

pub mod change_log;
pub mod queue_consumers;
pub mod table_streams;
pub mod watch;
