//! The shape of a component: its `init`, its route table and its event
//! handler, exported to the host with [`service!`](crate::service).

use crate::Router;
use crate::bindings::corral::host::log::{Level, log};
use crate::bindings::exports::corral::host::handler::Event;

/// A corral component. Only [`Service::routes`] is required.
pub trait Service {
    /// Runs once when the host loads this version, before any request:
    /// create tables, load example data, check config. An error refuses the
    /// version.
    fn init() -> Result<(), String> {
        Ok(())
    }

    /// The route table.
    fn routes() -> Router;

    /// Handles a batch of events; returns the ids of those that failed. By
    /// default every event fails (and is logged), so events sent to a
    /// component that does not expect them are kept for redelivery, never
    /// silently dropped.
    fn events(events: Vec<Event>) -> Vec<String> {
        fail_unexpected_events(events)
    }
}

/// Fails (and logs) every event of a batch sent to a component that
/// consumes none: a manifest mistake, kept for redelivery rather than lost.
pub fn fail_unexpected_events(events: Vec<Event>) -> Vec<String> {
    let ids: Vec<String> = events.into_iter().map(|event| event.id).collect();
    log(
        Level::Warn,
        &format!(
            "this component handles no events; failing {}: {}",
            ids.len(),
            ids.join(", ")
        ),
    );
    ids
}

/// Exports a [`Service`] as the component's handler:
/// `corral_sdk::service!(MyService);`
#[macro_export]
macro_rules! service {
    ($service:ident) => {
        impl $crate::Guest for $service {
            fn init() -> ::core::result::Result<(), ::std::string::String> {
                <$service as $crate::Service>::init()
            }

            fn handle_request(request: $crate::Request) -> $crate::Response {
                <$service as $crate::Service>::routes().handle(request)
            }

            fn handle_events(
                events: ::std::vec::Vec<$crate::Event>,
            ) -> ::std::vec::Vec<::std::string::String> {
                <$service as $crate::Service>::events(events)
            }
        }

        $crate::export!($service);
    };
}
