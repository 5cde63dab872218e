//! One `hosts` grant of a component's manifest entry.

/// One `hosts` entry: `[http://|https://]host[:port]`.
///
/// Without a scheme only HTTPS is allowed, except to a loopback host
/// (`localhost`, `127.x.x.x`, `[::1]`), where plain HTTP never leaves the
/// machine; `http://` allows plain HTTP to any host explicitly. Without a
/// port, only the scheme's default port (443, 80) is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    /// `http` or `https` when the entry names one.
    pub scheme: Option<String>,
    /// The lower-case host name or IP literal (IPv6 in brackets).
    pub host: String,
    /// The one port allowed, when the entry names one.
    pub port: Option<u16>,
}

impl HostGrant {
    /// Parses a `hosts` entry.
    pub fn parse(entry: &str) -> Result<HostGrant, String> {
        let bad = |why: &str| format!("host \"{entry}\" {why}");
        let (scheme, rest) = match entry.split_once("://") {
            Some((s @ ("http" | "https"), rest)) => (Some(s.to_owned()), rest),
            Some(_) => return Err(bad("may only use the scheme http or https")),
            None => (None, entry),
        };
        let authority: http::uri::Authority = rest.parse().map_err(|_| bad("is not a host name with an optional port"))?;
        if authority.as_str() != rest || rest.contains('@') || rest.contains('*') {
            return Err(bad("must be a plain host[:port], without path, user or wildcard"));
        }
        // `Authority` reads a port past 65535 as none; refuse it instead.
        let port = match rest.rsplit_once(':').filter(|(_, p)| !p.contains(']')) {
            Some((_, p)) => Some(p.parse::<u16>().map_err(|_| bad("has a port that is not 0 to 65535"))?),
            None => None,
        };
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("names no host"));
        }
        Ok(HostGrant { scheme, host, port })
    }

    /// Whether a request with this scheme, host and port (none: the
    /// scheme's default) is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return false,
        };
        let scheme_ok = match &self.scheme {
            Some(s) => s == scheme,
            None => scheme == "https" || is_loopback(&self.host),
        };
        scheme_ok && self.host.eq_ignore_ascii_case(host) && port.unwrap_or(default_port) == self.port.unwrap_or(default_port)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}
