//! Outbound HTTP for components: the standard `wasi:http/outgoing-handler`,
//! sent only to the hosts the component's manifest entry grants (`hosts`),
//! only to addresses those grants may reach, and never waiting past the
//! request's own deadline.
//!
//! The host resolves a granted name once, checks every address it got, and
//! connects to the checked one, so a name cannot be re-pointed between the
//! check and the connection. Link-local addresses and cloud metadata
//! endpoints are never reachable; loopback and private ranges only through
//! a grant that names them literally (an IP literal, or `localhost`).

mod grant;
mod host;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub(crate) use grant::HostGrant;

/// How long a connection may take when the component sets no limit.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the response head may take when the component sets no limit.
pub(crate) const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the body may stall between chunks when the component sets no limit.
pub(crate) const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

/// Fixed answers for host names, `name=ip,name=ip` (as curl's `--resolve`),
/// used instead of the system resolver: for split-horizon set-ups and tests.
pub(crate) const RESOLVE_ENV: &str = "CORRAL_RESOLVE";

/// What a component may send: its `hosts` grants and its cap on requests
/// in flight at once (`max_outbound`), shared by all its instances.
pub struct OutboundGrant {
    /// The component's manifest name, for logs.
    pub component: String,
    /// The hosts it may reach.
    pub hosts: Vec<HostGrant>,
    /// One permit per request that may be in flight.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// The number of permits, for logs.
    pub max_outbound: u32,
}

impl OutboundGrant {
    /// The grant of `component`, with `max_outbound` requests in flight.
    pub fn new(component: String, hosts: Vec<HostGrant>, max_outbound: u32) -> OutboundGrant {
        OutboundGrant {
            component,
            hosts,
            in_flight: Arc::new(tokio::sync::Semaphore::new(max_outbound as usize)),
            max_outbound,
        }
    }
}

/// The `wasi:http` hooks of one store: the grant check and the timeouts.
pub(crate) struct Outbound {
    grant: Arc<OutboundGrant>,
    request_id: String,
}

type Io = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Io), Error>> + Send>;

impl Outbound {
    /// Hooks for one call under `grant`.
    pub(crate) fn new(grant: Arc<OutboundGrant>, request_id: String) -> Outbound {
        Outbound { grant, request_id }
    }

    /// The grant that allows the request's scheme, host and port.
    fn grant_for(&self, uri: &http::Uri) -> Option<HostGrant> {
        let (scheme, host) = (uri.scheme_str()?, uri.host()?);
        self.grant.hosts.iter().find(|g| g.allows(scheme, host, uri.port_u16())).cloned()
    }

    fn refuse(&self, target: &str, why: &'static str) {
        tracing::warn!(
            component = %self.grant.component,
            request_id = %self.request_id,
            kind = "host",
            name = %target,
            reason = why,
            "refused a call outside the component's grants"
        );
    }
}

/// Which grants may reach an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// None: link-local, cloud metadata, unspecified, multicast, broadcast.
    Never,
    /// Only a grant that names it literally: loopback and private ranges.
    Literal,
    /// Any grant of a name that resolves to it.
    Public,
}

/// The cloud metadata endpoint of AWS over IPv6 (over IPv4 it is
/// 169.254.169.254, inside the link-local range).
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Who may reach `ip`.
pub(crate) fn reach(ip: IpAddr) -> Reach {
    match ip.to_canonical() {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6 == METADATA_V6 || v6.is_unspecified() || v6.is_multicast() || (first & 0xffc0) == 0xfe80 {
                Reach::Never
            } else if v6.is_loopback() || (first & 0xfe00) == 0xfc00 {
                Reach::Literal
            } else {
                Reach::Public
            }
        }
    }
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, ..] = ip.octets();
    if ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 {
        Reach::Never
    } else if ip.is_loopback() || ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // 100.64.0.0/10 is carrier-grade NAT space: private to the network too.
        Reach::Literal
    } else {
        Reach::Public
    }
}

/// Whether `grant` may reach `ip`, which its host resolved to.
pub(crate) fn may_reach(grant: &HostGrant, ip: IpAddr) -> bool {
    match reach(ip) {
        Reach::Never => false,
        Reach::Public => true,
        Reach::Literal => {
            let named = grant.host.trim_start_matches('[').trim_end_matches(']');
            match named.parse::<IpAddr>() {
                Ok(literal) => literal.to_canonical() == ip.to_canonical(),
                Err(_) => (named == "localhost" || named.ends_with(".localhost")) && ip.to_canonical().is_loopback(),
            }
        }
    }
}

static FIXED: LazyLock<Vec<(String, IpAddr)>> = LazyLock::new(|| {
    let text = std::env::var(RESOLVE_ENV).unwrap_or_default();
    text.split(',')
        .filter(|e| !e.trim().is_empty())
        .filter_map(|entry| {
            let parsed = entry
                .split_once('=')
                .and_then(|(name, ip)| Some((name.trim().to_ascii_lowercase(), ip.trim().parse().ok()?)));
            if parsed.is_none() {
                tracing::warn!(entry, "ignored an entry of {RESOLVE_ENV}: expected name=ip");
            }
            parsed
        })
        .collect()
});

/// The addresses of `host` (an IP literal, a fixed answer or the system resolver's).
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let fixed: Vec<SocketAddr> = FIXED
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(bare))
        .map(|(_, ip)| SocketAddr::new(*ip, port))
        .collect();
    if !fixed.is_empty() {
        return Ok(fixed);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| Error::DnsError {
            rcode: None,
            info_code: None,
        })?
        .collect();
    if found.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(found)
}

/// The component's timeouts, or the defaults, each cut to what is left of
/// the call's deadline (when it runs under one).
pub(crate) fn timeouts(asked: Option<RequestOptions>, deadline: Option<Instant>) -> RequestOptions {
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
        let target = request.uri().authority().map_or_else(String::new, |a| a.to_string());
        let Some(grant) = self.grant_for(request.uri()) else {
            self.refuse(&target, "the host is not granted");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        let Ok(permit) = self.grant.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                component = %self.grant.component,
                request_id = %self.request_id,
                max_outbound = self.grant.max_outbound,
                "refused an outbound request past the component's limit"
            );
            return Box::new(async { Err(Error::ConnectionLimitReached) });
        };
        // The deadline is a task-local of the call; the send itself runs on
        // a task of its own, so it is read here.
        let options = timeouts(options, crate::capability::backend::deadline());
        let (component, request_id) = (self.grant.component.clone(), self.request_id.clone());
        Box::new(async move {
            let uri = request.uri().clone();
            let tls = uri.scheme_str() == Some("https");
            let host = uri.host().unwrap_or_default().to_owned();
            let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
            let addresses = resolve(&host, port).await?;
            let Some(address) = addresses.iter().copied().find(|a| may_reach(&grant, a.ip())) else {
                tracing::warn!(
                    component = %component,
                    request_id = %request_id,
                    kind = "host",
                    name = %target,
                    addresses = ?addresses,
                    reason = "the host resolves to an address its grant may not reach",
                    "refused a call outside the component's grants"
                );
                return Err(Error::DestinationIpProhibited);
            };
            send(request, address, &host, tls, options, permit).await
        })
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Sends `request` over a connection to `address` (TLS for `host` when
/// `tls`), as wasmtime-wasi-http's default sender does with a name. The
/// outbound permit lives as long as the connection.
async fn send(
    mut request: http::Request<WasiBody>,
    address: SocketAddr,
    host: &str,
    tls: bool,
    options: RequestOptions,
    permit: OwnedSemaphorePermit,
) -> Result<(http::Response<WasiBody>, Io), Error> {
    let connect_timeout = options.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(FIRST_BYTE_TIMEOUT);
    // Tokio panics on a zero interval.
    let between_bytes_timeout = options
        .between_bytes_timeout
        .unwrap_or(BETWEEN_BYTES_TIMEOUT)
        .max(Duration::from_nanos(1));
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(address)).await {
        Ok(stream) => stream.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let stream: Box<dyn Stream> = if tls {
        let roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = tokio_rustls::rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_owned())
            .map_err(Error::InvalidDnsNameError)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        match tokio::time::timeout(connect_timeout, connector.connect(name, tcp)).await {
            Ok(stream) => Box::new(stream.map_err(Error::Tls)?),
            Err(_) => return Err(Error::ConnectionTimeout),
        }
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries only the path: scheme and authority go to proxies.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut conn = Some(conn);
    let mut response = std::pin::pin!(async {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    });
    // Wait for the response head while driving the connection's I/O.
    let head = std::future::poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(driving) = conn.as_mut() else {
                return Poll::Pending;
            };
            let finished = ready!(Pin::new(driving).poll(cx));
            conn = None;
            match finished {
                Ok(()) => response.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(Error::from(e))),
            }
        }
    })
    .await?;
    let mut timer = tokio::time::interval(between_bytes_timeout);
    timer.reset();
    let response = head.map(|incoming| Timed { incoming, timer }.boxed_unsync());
    let io = async move {
        let _permit = permit;
        match conn {
            Some(conn) => conn
                .await
                .map_err(|e| if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() }),
            None => Ok(()),
        }
    };
    Ok((response, Box::new(io) as Io))
}

/// A response body that fails when it stalls longer than its timer.
struct Timed {
    incoming: hyper::body::Incoming,
    timer: tokio::time::Interval,
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timer.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timer.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
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

    fn grant(entry: &str) -> HostGrant {
        HostGrant::parse(entry).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn metadata_and_link_local_are_never_reachable() {
        for never in [
            "169.254.169.254",
            "169.254.1.1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "::",
        ] {
            assert_eq!(reach(ip(never)), Reach::Never, "{never}");
            assert!(!may_reach(&grant(&format!("http://{}", bracket(never))), ip(never)), "{never}");
        }
        assert!(!may_reach(&grant("metadata.example"), ip("169.254.169.254")));
    }

    fn bracket(ip: &str) -> String {
        if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() }
    }

    #[test]
    fn loopback_and_private_need_a_literal_grant() {
        for internal in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.1",
            "192.168.1.1",
            "::1",
            "fc00::1",
            "fd12::1",
            "100.64.0.1",
        ] {
            assert_eq!(reach(ip(internal)), Reach::Literal, "{internal}");
            assert!(
                may_reach(&grant(&format!("http://{}:8080", bracket(internal))), ip(internal)),
                "{internal}"
            );
            assert!(!may_reach(&grant("api.example.com"), ip(internal)), "{internal}");
        }
        assert!(may_reach(&grant("localhost:8080"), ip("127.0.0.1")));
        assert!(may_reach(&grant("svc.localhost"), ip("::1")));
        assert!(!may_reach(&grant("localhost"), ip("10.0.0.1")));
        assert!(!may_reach(&grant("http://127.0.0.1"), ip("127.0.0.2")));
        assert!(!may_reach(&grant("vm"), ip("127.0.0.1")));
    }

    #[test]
    fn public_addresses_are_reachable_by_name() {
        for public in ["93.184.216.34", "172.32.0.1", "2606:4700::1111", "100.128.0.1"] {
            assert_eq!(reach(ip(public)), Reach::Public, "{public}");
            assert!(may_reach(&grant("api.example.com"), ip(public)), "{public}");
        }
    }
}
