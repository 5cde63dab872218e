//! The request path shared by every edge: route, authenticate, run the
//! component, and answer in one shape, with one log line per request.

mod load;
pub(crate) mod versions;

use std::sync::Arc;
use std::time::Instant;

use crate::capability::auth::{AuthError, Identity, Verifier, bearer};
use crate::core::bindings::handler;
use crate::core::cors::CorsSpec;
use crate::core::error::ApiError;
use crate::core::hotswap::HotSwap;
use crate::core::manifest::{Access, EventSourceSpec, EventSpec};
use crate::core::request::{Request, Response};
use crate::core::router::{Match, Router};
use crate::core::runtime::{CallError, Hosted, Loaded, Runtime};
use crate::serve::ChangeFeed;

/// What a route leads to.
pub(crate) struct Target {
    /// The component that serves it (whichever version is current).
    pub component: Arc<Hosted>,
    /// The component's mount point.
    pub mount: String,
    /// How many path segments the mount point has.
    pub mount_depth: usize,
    /// The template relative to the mount.
    pub route: String,
    /// Who may call it.
    pub access: Access,
    /// Groups of which the caller must be in one (when non-empty).
    pub groups: Vec<String>,
    /// The component's largest accepted body.
    pub max_body_bytes: usize,
}

/// An event source as an edge names it: the deployed queue or table name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DeployedSource<'a> {
    /// An SQS queue (or embedded queue) name.
    Queue(&'a str),
    /// A DynamoDB table (or embedded store) name.
    Table(&'a str),
    /// An S3 bucket, named as it is deployed.
    Bucket(&'a str),
}

/// The host: routes, components and the token verifier.
pub struct App {
    router: Router<Target>,
    cors: Option<CorsSpec>,
    runtime: Arc<Runtime>,
    consumers: Vec<(Arc<Hosted>, EventSpec)>,
    verifier: Arc<dyn Verifier>,
    max_body_bytes: usize,
    /// Every cache store some component is granted: a stream record of one
    /// of their tables is a cache-store change.
    cache_stores: std::collections::BTreeSet<String>,
    /// The cache stores kept in an application's item layout.
    cache_layouts: crate::capability::cache::Layouts,
    /// Where subscribers get store changes, when the host delivers them.
    changes: Option<ChangeFeed>,
    hot_swap: Option<Arc<HotSwap>>,
    /// The OpenAPI document, when the manifest has the host serve it.
    openapi: Option<Vec<u8>>,
}

/// Where the host keeps its state and how much it runs at once.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The data directory: the embedded database, the dev signing key, compiled artifacts.
    pub data_dir: std::path::PathBuf,
    /// Compiled-artifact cache (default: `<data_dir>/artifacts`).
    pub artifact_dir: Option<std::path::PathBuf>,
    /// Read-only precompiled artifacts from the deployment package, searched after `artifact_dir`.
    pub packaged_artifacts: Option<std::path::PathBuf>,
    /// Instances that may run at once.
    pub concurrency: u32,
    /// Deliver writes to subscribed cache stores through the local change
    /// stream (`corral serve`); off on Lambda, where DynamoDB streams do it.
    pub local_stream: bool,
}

impl App {
    /// What follows the registry, when components come from it unpinned.
    pub fn hot_swap(&self) -> Option<&Arc<HotSwap>> {
        self.hot_swap.as_ref()
    }

    /// Every route, for printing: methods, full path, component, access.
    pub(crate) fn routes(&self) -> impl Iterator<Item = (String, &str, &str, Access)> {
        self.router.routes().iter().map(|r| {
            (
                r.methods.join(","),
                r.template.as_str(),
                r.target.component.context.name.as_str(),
                r.target.access,
            )
        })
    }

    /// The largest body any route accepts; edges stop reading past it.
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The runtime, for the event path and benchmarks.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The runtime, shared, for tasks that outlive a borrow (`--watch`).
    pub(crate) fn runtime_handle(&self) -> Arc<Runtime> {
        self.runtime.clone()
    }

    /// The components consuming `source`, given by its deployed name (an SQS
    /// queue or DynamoDB table name), with the logical name they know it by.
    pub(crate) fn consumers_of(&self, source: &DeployedSource<'_>) -> Vec<(Arc<Loaded>, EventSourceSpec)> {
        self.consumers
            .iter()
            .filter(|(component, spec)| {
                let names = &component.context.backends;
                match (&spec.source, source) {
                    (EventSourceSpec::Queue(q), DeployedSource::Queue(deployed)) => names.queue_names.resolve(q) == *deployed,
                    (EventSourceSpec::Table(t), DeployedSource::Table(deployed)) => names.table_names.resolve(t) == *deployed,
                    (EventSourceSpec::Bucket(b), DeployedSource::Bucket(deployed)) => b == deployed,
                    _ => false,
                }
            })
            .map(|(component, spec)| (component.current(), spec.source.clone()))
            .collect()
    }

    /// Whether `store` is a cache store of some component.
    pub(crate) fn is_cache_store(&self, store: &str) -> bool {
        self.cache_stores.contains(store)
    }

    /// The item layout of cache store `store`, when it has one.
    pub(crate) fn cache_layout(&self, store: &str) -> Option<&crate::capability::cache::Layout> {
        self.cache_layouts.get(store)
    }

    /// Starts delivering queue messages, and the changes of subscribed
    /// tables, to the components that consume them (the manifest's
    /// `events`). Needs a Tokio runtime.
    pub(crate) fn start_event_consumers(&self) {
        crate::serve::queue_consumers::spawn_consumers(self.runtime.clone(), self.consumers.clone());
        match &self.changes {
            Some(ChangeFeed::Local(log)) => {
                crate::serve::change_log::spawn_consumers(self.runtime.clone(), log.clone(), self.consumers.clone())
            }
            Some(ChangeFeed::Streams(streams)) => {
                let shapes = crate::serve::table_streams::StoreShapes {
                    cache_stores: self.cache_stores.clone(),
                    layouts: self.cache_layouts.clone(),
                };
                streams.spawn(self.runtime.clone(), &self.consumers, shapes);
            }
            None => {}
        }
    }

    /// Gives up what the event consumers hold across hosts (the stream
    /// leases), so that other hosts take it over at once.
    pub(crate) async fn stop_event_consumers(&self) {
        if let Some(ChangeFeed::Streams(streams)) = &self.changes {
            streams.release().await;
        }
    }

    /// Answers one request. Never fails: every error becomes a JSON error response.
    pub async fn handle(&self, request: Request) -> Response {
        let started = Instant::now();
        let request_id = request_id(&request);
        let mut served_by = None;
        let result = match self.preflight(&request) {
            Some(answer) => answer,
            None => self.dispatch(&request, &request_id, &mut served_by).await,
        };
        self.finish(&request, &request_id, started, served_by.as_ref(), result)
    }

    fn finish(
        &self,
        request: &Request,
        request_id: &str,
        started: Instant,
        served_by: Option<&ServedBy<'_>>,
        result: Result<Response, ApiError>,
    ) -> Response {
        finish_response(self.cors.as_ref(), request, request_id, started, served_by, result)
    }

    /// A browser's CORS preflight, answered by the host when `[cors]` is set.
    fn preflight(&self, request: &Request) -> Option<Result<Response, ApiError>> {
        let cors = self.cors.as_ref()?;
        let origin = request.header("origin")?;
        if request.method != "OPTIONS" || request.header("access-control-request-method").is_none() {
            return None;
        }
        let methods = self.router.methods_at(&request.path);
        if methods.is_empty() {
            return Some(Err(ApiError::not_found(format!("no route for {}", request.path))));
        }
        Some(Ok(crate::core::cors::preflight(cors, origin, &methods)))
    }

    /// Answers a request the edge refused before it could be handled (a body
    /// larger than any route accepts), with the same id and log line as any other.
    pub(crate) fn refuse(&self, request: &Request, error: ApiError) -> Response {
        self.finish(request, &request_id(request), Instant::now(), None, Err(error))
    }

    async fn dispatch<'a>(
        &'a self,
        request: &Request,
        request_id: &str,
        served_by: &mut Option<ServedBy<'a>>,
    ) -> Result<Response, ApiError> {
        if let Some(document) = &self.openapi
            && request.method == "GET"
            && request.path == crate::core::openapi::SERVED_AT
        {
            return Ok(Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: document.clone(),
            });
        }
        let (route, params) = match self.router.find(&request.method, &request.path) {
            Match::Found(route, params) => (route, params),
            Match::NotFound => {
                return Err(ApiError::not_found(format!("no route for {} {}", request.method, request.path)));
            }
            Match::BadPath(why) => {
                tracing::warn!(request_id, path = %request.path, reason = %why, "refused a path that can be read more than one way");
                return Err(ApiError::bad_request(format!(
                    "{why}; send the path without empty, '.' or '..' segments and without encoded slashes"
                )));
            }
            Match::MethodNotAllowed(allowed) => {
                let mut r = ApiError::method_not_allowed(format!("{} is not allowed here; use {}", request.method, allowed.join(", ")))
                    .into_response(request_id);
                r.headers.push(("allow".into(), allowed.join(", ")));
                return Ok(r);
            }
        };
        let target = &route.target;
        // This request stays on this version, whatever is swapped in meanwhile.
        let component = target.component.current();
        *served_by = Some(ServedBy {
            component: target.component.context.name.as_str(),
            route: route.template.as_str(),
            version: component.clone(),
        });
        if request.body.len() > target.max_body_bytes {
            return Err(ApiError::payload_too_large(format!(
                "the body is larger than {} bytes",
                target.max_body_bytes
            )));
        }
        let identity = self.authenticate(request, target).await?;
        check_json(request)?;
        let wit_request = handler::Request {
            method: request.method.clone(),
            path: crate::core::router::below(&request.path, target.mount_depth),
            mount: target.mount.clone(),
            route: target.route.clone(),
            params,
            query: form_urlencoded::parse(request.query.as_bytes()).into_owned().collect(),
            headers: request.headers.iter().filter(|(k, _)| k != "authorization").cloned().collect(),
            body: request.body.to_vec(),
            request_id: request_id.to_owned(),
        };
        let name = &target.component.context.name;
        match self.runtime.handle_request(&component, wit_request, identity).await {
            Ok(r) => response_from(r, name, request_id, &target.component.context.limits),
            Err(CallError::Busy(max)) => {
                tracing::warn!(component = %name, request_id, max_instances = max, "component is at its instance limit");
                Err(ApiError::unavailable(format!(
                    "the component is busy: {max} instances already run; try again shortly"
                )))
            }
            Err(CallError::Timeout(ms)) => {
                tracing::warn!(component = %name, request_id, limit_ms = ms, "component ran past its time limit");
                Err(ApiError::timeout(format!("the component did not answer within {ms} ms")))
            }
            Err(CallError::MemoryLimit(mb)) => {
                tracing::error!(component = %name, request_id, limit_mb = mb, "component exceeded its memory limit");
                Err(ApiError::internal("the component exceeded its memory limit"))
            }
            Err(e) => {
                tracing::error!(component = %name, request_id, error = %e, "component failed");
                Err(ApiError::internal("the component failed while handling the request"))
            }
        }
    }

    async fn authenticate(&self, request: &Request, target: &Target) -> Result<Option<Arc<Identity>>, ApiError> {
        // Two credentials are ambiguous: a proxy may check one and the host the other.
        if request.verified_caller.is_none() && request.headers.iter().filter(|(k, _)| k == "authorization").count() > 1 {
            return Err(ApiError::unauthorized("send one authorization header, not several"));
        }
        let identity = match request.header("authorization") {
            _ if request.verified_caller.is_some() => request.verified_caller.clone().map(Arc::new),
            None => None,
            Some(value) => match self.verify(value).await {
                Ok(verified) => Some(Arc::new(verified)),
                // A public route serves anonymous callers anyway, and old
                // clients send a header that is no bearer token on every call.
                Err(refusal) if target.access == Access::Public && refusal.status == 401 => {
                    tracing::info!(reason = %refusal.message, "credentials not valid on a public route; the caller is anonymous");
                    None
                }
                Err(refusal) => return Err(refusal),
            },
        };
        if target.access == Access::Caller {
            let Some(id) = &identity else {
                return Err(ApiError::unauthorized("this route needs a bearer token"));
            };
            if !target.groups.is_empty() && !target.groups.iter().any(|g| id.in_group(g)) {
                return Err(ApiError::forbidden(format!(
                    "this route needs membership in one of: {}",
                    target.groups.join(", ")
                )));
            }
        }
        Ok(identity)
    }

    /// The caller named by an `authorization` header value: 401 when it is
    /// not a valid bearer token, 503 when tokens cannot be checked.
    async fn verify(&self, header: &str) -> Result<Identity, ApiError> {
        let token = bearer(header).ok_or_else(|| ApiError::unauthorized("the authorization header must be \"Bearer <token>\""))?;
        self.verifier.verify(token).await.map_err(|e| match e {
            AuthError::Invalid(_) => ApiError::unauthorized(e.to_string()),
            AuthError::Unavailable(_) => {
                tracing::error!(error = %e, "cannot check tokens");
                ApiError::unavailable("tokens cannot be checked right now")
            }
        })
    }
}

/// Which component, route and version a request reached.
struct ServedBy<'a> {
    component: &'a str,
    route: &'a str,
    version: Arc<Loaded>,
}

/// The response for `result`, with its request id, and the request's log line.
fn finish_response(
    cors: Option<&CorsSpec>,
    request: &Request,
    request_id: &str,
    started: Instant,
    served_by: Option<&ServedBy<'_>>,
    result: Result<Response, ApiError>,
) -> Response {
    let mut response = result.unwrap_or_else(|e| e.into_response(request_id));
    response.headers.push(("x-request-id".into(), request_id.to_owned()));
    if let Some(served_by) = served_by {
        response
            .headers
            .push(("x-corral-version".into(), served_by.version.version().to_owned()));
    }
    if let (Some(cors), Some(origin)) = (cors, request.header("origin")) {
        crate::core::cors::decorate(cors, origin, &mut response);
    }
    let (component, route) = served_by.map_or(("-", "-"), |s| (s.component, s.route));
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    crate::core::metrics::record_request(component, response.status, duration_ms);
    tracing::info!(
        target: "corral::request",
        request_id,
        method = %request.method,
        path = %request.path,
        route,
        component,
        status = response.status,
        duration_ms,
        "request"
    );
    response
}

/// The id from the edge, a valid `x-request-id` from the client, or a new one.
fn request_id(request: &Request) -> String {
    let valid = |s: &&str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    request
        .request_id
        .as_deref()
        .filter(valid)
        .or_else(|| request.header("x-request-id").filter(valid))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// A body that says it is JSON must be JSON, whatever the component does.
fn check_json(request: &Request) -> Result<(), ApiError> {
    let is_json = request
        .header("content-type")
        .map(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if is_json && !request.body.is_empty() {
        serde_json::from_slice::<serde::de::IgnoredAny>(&request.body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    }
    Ok(())
}

/// Most headers a component's response may carry.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 100;
/// Most bytes (names and values) of a component's response headers.
pub(crate) const MAX_RESPONSE_HEADER_BYTES: usize = 32 * 1024;

/// Headers that describe the connection or the message framing rather than
/// the resource: the edge sets them, a component's values never reach a client.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "x-request-id",
];

/// Checks what a component returned before it reaches a client: a valid
/// status, a body and headers within the caps (else 502, the component's
/// fault), and no header that frames the message or names the connection.
fn response_from(
    r: handler::Response,
    component: &str,
    request_id: &str,
    limits: &crate::core::manifest::Limits,
) -> Result<Response, ApiError> {
    let refuse = |why: String| {
        tracing::error!(component, request_id, reason = %why, "component returned a response the host does not pass on");
        Err(ApiError::bad_gateway(format!("the component returned an invalid response: {why}")))
    };
    if !(100..=599).contains(&r.status) {
        return refuse(format!("status {} is not an HTTP status", r.status));
    }
    if r.body.len() > limits.max_response_bytes {
        return refuse(format!("the body is larger than {} bytes", limits.max_response_bytes));
    }
    if r.headers.len() > MAX_RESPONSE_HEADERS {
        return refuse(format!("more than {MAX_RESPONSE_HEADERS} headers"));
    }
    let header_bytes: usize = r.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if header_bytes > MAX_RESPONSE_HEADER_BYTES {
        return refuse(format!("headers larger than {MAX_RESPONSE_HEADER_BYTES} bytes"));
    }
    let mut headers = Vec::with_capacity(r.headers.len());
    for (k, v) in r.headers {
        let k = k.to_ascii_lowercase();
        let valid = axum::http::HeaderName::from_bytes(k.as_bytes()).is_ok() && axum::http::HeaderValue::from_str(&v).is_ok();
        if !valid {
            tracing::warn!(component, request_id, header = %k, "dropped an invalid response header");
        } else if HOP_BY_HOP.contains(&k.as_str()) {
            tracing::warn!(component, request_id, header = %k, "dropped a response header the host sets itself");
        } else {
            headers.push((k, v));
        }
    }
    Ok(Response {
        status: r.status,
        headers,
        body: r.body,
    })
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("routes", &self.router.routes().len()).finish()
    }
}
