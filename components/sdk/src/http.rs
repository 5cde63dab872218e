//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! The host sends a request only to a host the component's manifest entry
//! grants (`hosts = [...]`); anything else fails with [`HttpError::Denied`].
//! Every request has a total time limit; [`get_all`] runs several at once,
//! at most `max_in_flight` of them outstanding, by waiting on their pollables.
//! [`request`] sends any method, with a body.
//!
//! ```no_run
//! use corral_sdk::http;
//! # fn f() -> Result<(), corral_sdk::ApiError> {
//! let reply = http::get("https://api.example.com/v1/things?format=json")
//!     .header("authorization", "apikey secret")
//!     .timeout_ms(3000)
//!     .send()?;                          // transport failure: 502, time limit: 504
//! let thing: serde_json::Value = reply.json()?;   // not JSON: 502
//! # Ok(()) }
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::poll;
use wasip2::io::streams::{InputStream, StreamError};

use crate::ApiError;

/// The time limit of a request that sets none, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The largest response body read, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The time limit passed first (504).
    Timeout(String),
    /// The upstream could not be reached or answered something unusable (502).
    Failed(String),
    /// The manifest does not grant the host (500 `not_granted`).
    Denied(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Timeout(m) | HttpError::Failed(m) | HttpError::Denied(m) => f.write_str(m),
        }
    }
}

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> ApiError {
        match e {
            HttpError::Timeout(m) => ApiError::new(504, "gateway_timeout", m),
            HttpError::Failed(m) => ApiError::new(502, "bad_gateway", m),
            HttpError::Denied(m) => ApiError::not_granted(m),
        }
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout_ms: u64,
}

/// A GET request to send.
pub type Get = Request;

/// A GET of `url` (`http://` or `https://`), with the default time limit.
pub fn get(url: impl Into<String>) -> Request {
    request("GET", url)
}

/// A request of any method to `url`, with the default time limit and no body.
pub fn request(method: &str, url: impl Into<String>) -> Request {
    Request {
        method: method.to_ascii_uppercase(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout_ms: DEFAULT_TIMEOUT_MS,
    }
}

impl Request {
    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, with `content-type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Request {
        let body = serde_json::to_vec(value).expect("a JSON value serializes");
        self.header("content-type", "application/json").body(body)
    }

    /// Sets the time limit of the whole exchange, body included.
    pub fn timeout_ms(mut self, ms: u64) -> Request {
        self.timeout_ms = ms;
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request and reads the whole answer, whatever its status.
    pub fn send(self) -> Result<Reply, HttpError> {
        get_all(vec![self], 1)
            .pop()
            .expect("one result per request")
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
    /// The URL asked, for messages.
    pub url: String,
}

impl Reply {
    /// The body as JSON of type `T`; a body that is not is a bad answer.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::Failed(format!(
                "{} answered {} with a body that is not the expected JSON: {e}",
                host_of(&self.url),
                self.status
            ))
        })
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends every request, at most `max_in_flight` outstanding at once, and
/// returns one result per request, in order.
pub fn get_all(requests: Vec<Request>, max_in_flight: usize) -> Vec<Result<Reply, HttpError>> {
    let max_in_flight = max_in_flight.max(1);
    let mut results: Vec<Option<Result<Reply, HttpError>>> =
        requests.iter().map(|_| None).collect();
    let mut waiting = requests.into_iter().enumerate();
    let mut in_flight: Vec<InFlight> = Vec::new();
    loop {
        while in_flight.len() < max_in_flight {
            let Some((index, request)) = waiting.next() else {
                break;
            };
            match InFlight::start(index, request) {
                Ok(started) => in_flight.push(started),
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        if in_flight.is_empty() {
            break;
        }
        // Wait until one of them can move, or the earliest time limit.
        {
            let nearest = in_flight
                .iter()
                .map(|r| r.deadline)
                .min()
                .expect("not empty");
            let timer = monotonic_clock::subscribe_instant(nearest);
            let pollables: Vec<_> = in_flight.iter().map(InFlight::subscribe).collect();
            let mut all: Vec<&poll::Pollable> = pollables.iter().collect();
            all.push(&timer);
            poll::poll(&all);
        }
        let mut still = Vec::with_capacity(in_flight.len());
        for mut request in in_flight {
            match request.advance() {
                Some(done) => results[request.index] = Some(done),
                None => still.push(request),
            }
        }
        in_flight = still;
    }
    results
        .into_iter()
        .map(|r| r.expect("every request finished"))
        .collect()
}

/// Percent-encodes `s` for a path segment or query value (everything but
/// unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One request on its way. Fields are dropped in order: the stream before
/// its body, the body before its response (WASI child resources first).
struct InFlight {
    index: usize,
    url: String,
    deadline: monotonic_clock::Instant,
    stage: Stage,
}

enum Stage {
    Waiting(FutureIncomingResponse),
    Reading {
        stream: InputStream,
        _body: IncomingBody,
        response: IncomingResponse,
        buffer: Vec<u8>,
    },
}

impl InFlight {
    fn start(index: usize, request: Request) -> Result<InFlight, HttpError> {
        let deadline =
            monotonic_clock::now().saturating_add(request.timeout_ms.saturating_mul(1_000_000));
        let (scheme, authority, path) = split_url(&request.url)?;
        let bad = |what: &str| {
            HttpError::Failed(format!(
                "cannot build the request to {}: {what}",
                request.url
            ))
        };
        let headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        let fields = Fields::from_list(&headers).map_err(|e| bad(&format!("header: {e:?}")))?;
        let outgoing = OutgoingRequest::new(fields);
        outgoing
            .set_method(&method(&request.method))
            .map_err(|()| bad("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        outgoing
            .set_authority(Some(authority))
            .map_err(|()| bad("host"))?;
        outgoing
            .set_path_with_query(Some(path))
            .map_err(|()| bad("path"))?;
        let options = RequestOptions::new();
        let limit = request.timeout_ms.saturating_mul(1_000_000);
        // The host also cuts these to what is left of the component's own time.
        let _ = options.set_connect_timeout(Some(limit));
        let _ = options.set_first_byte_timeout(Some(limit));
        let _ = options.set_between_bytes_timeout(Some(limit));
        let body = outgoing.body().map_err(|()| bad("body"))?;
        let future = outgoing_handler::handle(outgoing, Some(options))
            .map_err(|e| error(&request.url, e))?;
        if let Err(why) = send_body(body, &request.body) {
            // A refused or failed request closes its body early: its own error says why.
            return Err(match failure_of(&future, deadline) {
                Some(code) => error(&request.url, code),
                None => HttpError::Failed(format!(
                    "{} could not be sent the request body: {why}",
                    host_of(&request.url)
                )),
            });
        }
        Ok(InFlight {
            index,
            url: request.url,
            deadline,
            stage: Stage::Waiting(future),
        })
    }

    fn subscribe(&self) -> poll::Pollable {
        match &self.stage {
            Stage::Waiting(future) => future.subscribe(),
            Stage::Reading { stream, .. } => stream.subscribe(),
        }
    }

    /// Moves on without blocking; the result once there is one.
    fn advance(&mut self) -> Option<Result<Reply, HttpError>> {
        let outcome = self.step();
        if outcome.is_none() && monotonic_clock::now() >= self.deadline {
            return Some(Err(HttpError::Timeout(format!(
                "{} did not answer in time",
                host_of(&self.url)
            ))));
        }
        outcome
    }

    fn step(&mut self) -> Option<Result<Reply, HttpError>> {
        if let Stage::Waiting(future) = &self.stage {
            let response = match future.get()? {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => return Some(Err(error(&self.url, e))),
                Err(()) => {
                    return Some(Err(HttpError::Failed(
                        "the response was already taken".into(),
                    )));
                }
            };
            let Ok(body) = response.consume() else {
                return Some(Err(HttpError::Failed(
                    "the response body was already taken".into(),
                )));
            };
            let Ok(stream) = body.stream() else {
                return Some(Err(HttpError::Failed(
                    "the response body stream was already taken".into(),
                )));
            };
            self.stage = Stage::Reading {
                stream,
                _body: body,
                response,
                buffer: Vec::new(),
            };
        }
        let Stage::Reading {
            stream,
            response,
            buffer,
            ..
        } = &mut self.stage
        else {
            unreachable!("the response arrived above")
        };
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => return None,
                Ok(chunk) => {
                    buffer.extend_from_slice(&chunk);
                    if buffer.len() > MAX_BODY_BYTES {
                        return Some(Err(HttpError::Failed(format!(
                            "{} answered more than {MAX_BODY_BYTES} bytes",
                            host_of(&self.url)
                        ))));
                    }
                }
                Err(StreamError::Closed) => {
                    return Some(Ok(Reply {
                        status: response.status(),
                        headers: response.headers().entries(),
                        body: std::mem::take(buffer),
                        url: self.url.clone(),
                    }));
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    let why = wasip2::http::types::http_error_code(&e)
                        .map_or_else(|| e.to_debug_string(), |code| format!("{code:?}"));
                    let timed_out = why.contains("Timeout");
                    let message = format!(
                        "{} failed while sending its answer: {why}",
                        host_of(&self.url)
                    );
                    return Some(Err(if timed_out {
                        HttpError::Timeout(message)
                    } else {
                        HttpError::Failed(message)
                    }));
                }
            }
        }
    }
}

/// The error `future` ends with, waiting for it at most until `deadline`.
fn failure_of(
    future: &FutureIncomingResponse,
    deadline: monotonic_clock::Instant,
) -> Option<ErrorCode> {
    let timer = monotonic_clock::subscribe_instant(deadline);
    let ready = future.subscribe();
    poll::poll(&[&ready, &timer]);
    match future.get() {
        Some(Ok(Err(code))) => Some(code),
        _ => None,
    }
}

/// Writes the whole request body, then ends it.
fn send_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    {
        let stream = body
            .write()
            .map_err(|()| "the body stream was already taken")?;
        // `blocking-write-and-flush` takes at most 4096 bytes at a time.
        for chunk in bytes.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    }
}

fn error(url: &str, code: ErrorCode) -> HttpError {
    let host = host_of(url);
    match code {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => HttpError::Timeout(format!("{host} did not answer in time")),
        ErrorCode::HttpRequestDenied => {
            HttpError::Denied(format!("the manifest does not grant the host {host}"))
        }
        ErrorCode::DestinationIpProhibited => HttpError::Denied(format!(
            "the host {host} resolves to an address the component may not reach"
        )),
        ErrorCode::ConnectionLimitReached => HttpError::Failed(format!(
            "{host} was not asked: the component has as many requests in flight as it may"
        )),
        other => HttpError::Failed(format!("{host} could not be reached: {other:?}")),
    }
}

fn split_url(url: &str) -> Result<(Scheme, &str, &str), HttpError> {
    let bad = || HttpError::Failed(format!("not an http(s) URL: {url}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest.split_at(i),
        Some(_) => return Err(bad()),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad());
    }
    Ok((scheme, authority, path))
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_host_and_path() {
        let (s, a, p) = split_url("https://api.example.com/v1/x?format=json").unwrap();
        assert!(matches!(s, Scheme::Https));
        assert_eq!((a, p), ("api.example.com", "/v1/x?format=json"));
        let (s, a, p) = split_url("http://127.0.0.1:4321").unwrap();
        assert!(matches!(s, Scheme::Http));
        assert_eq!((a, p), ("127.0.0.1:4321", "/"));
        assert!(split_url("ftp://x/y").is_err());
        assert!(split_url("https:///y").is_err());
        assert_eq!(host_of("https://h:1/p?q"), "h:1");
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn errors_map_to_gateway_statuses() {
        assert_eq!(ApiError::from(HttpError::Timeout("t".into())).status, 504);
        assert_eq!(ApiError::from(HttpError::Failed("t".into())).status, 502);
        assert_eq!(ApiError::from(HttpError::Denied("t".into())).status, 500);
    }
}
