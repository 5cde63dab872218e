//! Outbound HTTP for components: the standard `wasi:http/outgoing-handler`,
//! sent only to the hosts the component's manifest entry grants (`hosts`),
//! and never waiting past the request's own deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::instance::ComponentContext;

/// How long a connection may take when the component sets no limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the response head may take when the component sets no limit.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the body may stall between chunks when the component sets no limit.
pub const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

/// The `wasi:http` hooks of one store: the grant check and the timeouts.
pub struct Outbound {
    component: Arc<ComponentContext>,
    request_id: String,
}

type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>> + Send>;

impl Outbound {
    /// Hooks for one call of `component`.
    pub fn new(component: Arc<ComponentContext>, request_id: String) -> Outbound {
        Outbound { component, request_id }
    }

    /// Whether the manifest grants the request's scheme, host and port.
    fn granted(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        self.component.grants.hosts.iter().any(|g| g.allows(scheme, host, uri.port_u16()))
    }
}

/// The component's timeouts, or the defaults, each cut to what is left of
/// the call's deadline (when it runs under one).
pub fn timeouts(asked: Option<RequestOptions>, deadline: Option<Instant>) -> RequestOptions {
    let asked = asked.unwrap_or_default();
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let cap = |t: Option<Duration>, default: Duration| {
        let t = t.unwrap_or(default);
        Some(left.map_or(t, |left| t.min(left)))
    };
    RequestOptions {
        connect_timeout: cap(asked.connect_timeout, CONNECT_TIMEOUT),
        first_byte_timeout: cap(asked.first_byte_timeout, FIRST_BYTE_TIMEOUT),
        between_bytes_timeout: cap(asked.between_bytes_timeout, BETWEEN_BYTES_TIMEOUT),
    }
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        if !self.granted(request.uri()) {
            let target = request.uri().authority().map_or_else(String::new, |a| a.to_string());
            tracing::warn!(
                component = %self.component.name,
                request_id = %self.request_id,
                kind = "host",
                name = %target,
                scheme = request.uri().scheme_str().unwrap_or_default(),
                "refused a call outside the component's grants"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // The deadline is a task-local of the call; the send itself runs on
        // a task of its own, so it is read here.
        let options = timeouts(options, crate::backend::deadline());
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_default_and_never_pass_the_deadline() {
        let none = timeouts(None, None);
        assert_eq!(none.connect_timeout, Some(CONNECT_TIMEOUT));
        assert_eq!(none.first_byte_timeout, Some(FIRST_BYTE_TIMEOUT));
        assert_eq!(none.between_bytes_timeout, Some(BETWEEN_BYTES_TIMEOUT));

        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_millis(100)),
            first_byte_timeout: Some(Duration::from_secs(600)),
            between_bytes_timeout: None,
        };
        let cut = timeouts(Some(asked), Some(Instant::now() + Duration::from_secs(2)));
        assert_eq!(cut.connect_timeout, Some(Duration::from_millis(100)));
        assert!(cut.first_byte_timeout.unwrap() <= Duration::from_secs(2));
        assert!(cut.between_bytes_timeout.unwrap() <= Duration::from_secs(2));

        let past = timeouts(None, Some(Instant::now() - Duration::from_secs(1)));
        assert_eq!(past.connect_timeout, Some(Duration::ZERO));
    }
}
