//! The request path shared by every edge: route, authenticate, run the
//! component, and answer in one shape, with one log line per request.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::{AuthError, CognitoVerifier, DevKeys, Identity, Verifier, bearer};
use crate::bindings::handler;
use crate::error::ApiError;
use crate::instance::Backends;
use crate::manifest::{Access, AuthSpec, CorsSpec, EventSourceSpec, EventSpec, Manifest};
use crate::request::{Request, Response};
use crate::router::{Match, Route, Router, Template};
use crate::runtime::{CallError, Loaded, Runtime, RuntimeOptions};

/// What a route leads to.
pub struct Target {
    /// The component that serves it.
    pub component: Arc<Loaded>,
    /// The component's mount point.
    pub mount: String,
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
pub enum DeployedSource<'a> {
    /// An SQS queue (or embedded queue) name.
    Queue(&'a str),
    /// A DynamoDB table (or embedded store) name.
    Table(&'a str),
}

/// The host: routes, components and the token verifier.
pub struct App {
    router: Router<Target>,
    cors: Option<CorsSpec>,
    runtime: Arc<Runtime>,
    consumers: Vec<(Arc<Loaded>, EventSpec)>,
    verifier: Arc<dyn Verifier>,
    max_body_bytes: usize,
    /// Every cache store some component is granted: a stream record of one
    /// of their tables is a cache-store change.
    cache_stores: std::collections::BTreeSet<String>,
}

/// Where the host keeps its state and how much it runs at once.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The data directory: the embedded database, the dev signing key, compiled artifacts.
    pub data_dir: std::path::PathBuf,
    /// Compiled-artifact cache (default: `<data_dir>/artifacts`).
    pub artifact_dir: Option<std::path::PathBuf>,
    /// Instances that may run at once.
    pub concurrency: u32,
    /// Deliver writes to subscribed cache stores through the local change
    /// stream (`corral serve`); off on Lambda, where DynamoDB streams do it.
    pub local_stream: bool,
}

impl App {
    /// Connects the backends the manifest names, loads every component and
    /// runs its `init`.
    pub async fn start(manifest: &Manifest, options: &AppOptions) -> anyhow::Result<App> {
        std::fs::create_dir_all(&options.data_dir)?;
        let backends = crate::connect::connect(manifest, &options.data_dir, options.local_stream).await?;
        let verifier: Arc<dyn Verifier> = match &manifest.backends.auth {
            AuthSpec::Dev => Arc::new(DevKeys::load_or_create(&options.data_dir)?),
            AuthSpec::Cognito { issuer, clients, jwks_url } => {
                let verifier = CognitoVerifier::new(issuer.clone(), clients.clone(), jwks_url.clone());
                // Fetched now so the first request does not wait; a failure here
                // is retried when a token arrives.
                if let Err(e) = verifier.refresh().await {
                    tracing::warn!(error = %e, "cannot fetch the user pool's keys yet");
                }
                Arc::new(verifier)
            }
        };
        let app = App::new(manifest, Arc::new(backends), verifier, options)?;
        app.runtime().init_all().await?;
        Ok(app)
    }

    /// Loads every component of the manifest over the given backends (without
    /// running `init`: [`App::start`] does).
    pub fn new(manifest: &Manifest, backends: Arc<Backends>, verifier: Arc<dyn Verifier>, options: &AppOptions) -> anyhow::Result<App> {
        let runtime_options = RuntimeOptions {
            concurrency: options.concurrency,
            artifact_dir: options.artifact_dir.clone().unwrap_or_else(|| options.data_dir.join("artifacts")),
        };
        let runtime = Runtime::new(manifest, backends, &runtime_options)?;
        let mut routes = Vec::new();
        for (name, spec) in &manifest.components {
            let component = runtime.component(name).expect("every manifest component is loaded").clone();
            for r in &spec.routes {
                let full = if r.path == "/" && !spec.mount.is_empty() {
                    spec.mount.clone()
                } else {
                    format!("{}{}", spec.mount, r.path)
                };
                let template = Template::parse(&full).map_err(|e| anyhow::anyhow!("component \"{name}\": route \"{full}\": {e}"))?;
                routes.push(Route {
                    template,
                    methods: r.methods.clone(),
                    target: Target {
                        component: component.clone(),
                        mount: spec.mount.clone(),
                        route: r.path.clone(),
                        access: r.access,
                        groups: r.groups.clone(),
                        max_body_bytes: spec.limits.max_body_bytes,
                    },
                });
            }
        }
        let router = Router::new(routes).map_err(|e| anyhow::anyhow!("manifest: {e}"))?;
        let consumers = manifest
            .components
            .iter()
            .flat_map(|(name, spec)| {
                let component = runtime.component(name).expect("every manifest component is loaded").clone();
                spec.events.iter().map(move |e| (component.clone(), e.clone()))
            })
            .collect();
        Ok(App {
            router,
            cors: manifest.cors.clone(),
            runtime: Arc::new(runtime),
            consumers,
            verifier,
            max_body_bytes: manifest.max_body_bytes(),
            cache_stores: manifest.components.values().flat_map(|c| c.grants.caches.iter().cloned()).collect(),
        })
    }

    /// Every route, for printing: methods, full path, component, access.
    pub fn routes(&self) -> impl Iterator<Item = (String, &str, &str, Access)> {
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
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The runtime, for the event path and benchmarks.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The components consuming `source`, given by its deployed name (an SQS
    /// queue or DynamoDB table name), with the logical name they know it by.
    pub fn consumers_of(&self, source: &DeployedSource<'_>) -> Vec<(Arc<Loaded>, EventSourceSpec)> {
        let names = |c: &Loaded| match source {
            DeployedSource::Queue(_) => c.context.backends.queue_names.clone(),
            DeployedSource::Table(_) => c.context.backends.table_names.clone(),
        };
        self.consumers
            .iter()
            .filter(|(component, spec)| match (&spec.source, source) {
                (EventSourceSpec::Queue(q), DeployedSource::Queue(deployed)) => names(component).resolve(q) == *deployed,
                (EventSourceSpec::Table(t), DeployedSource::Table(deployed)) => names(component).resolve(t) == *deployed,
                _ => false,
            })
            .map(|(component, spec)| (component.clone(), spec.source.clone()))
            .collect()
    }

    /// Whether `store` is a cache store of some component.
    pub fn is_cache_store(&self, store: &str) -> bool {
        self.cache_stores.contains(store)
    }

    /// Starts delivering queue messages, and the local change stream of
    /// subscribed cache stores, to the components that consume them (the
    /// manifest's `events`). Needs a Tokio runtime.
    pub fn start_event_consumers(&self) {
        crate::events::spawn_consumers(self.runtime.clone(), self.consumers.clone());
        if let Some(log) = self.runtime.change_log() {
            crate::stream::spawn_consumers(self.runtime.clone(), log, self.consumers.clone());
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
        self.finish(&request, &request_id, started, served_by, result)
    }

    fn finish(
        &self,
        request: &Request,
        request_id: &str,
        started: Instant,
        served_by: Option<(&str, &str)>,
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
        Some(Ok(crate::cors::preflight(cors, origin, &methods)))
    }

    /// Answers a request the edge refused before it could be handled (a body
    /// larger than any route accepts), with the same id and log line as any other.
    pub fn refuse(&self, request: &Request, error: ApiError) -> Response {
        self.finish(request, &request_id(request), Instant::now(), None, Err(error))
    }

    async fn dispatch<'a>(
        &'a self,
        request: &Request,
        request_id: &str,
        served_by: &mut Option<(&'a str, &'a str)>,
    ) -> Result<Response, ApiError> {
        let (route, params) = match self.router.find(&request.method, &request.path) {
            Match::Found(route, params) => (route, params),
            Match::NotFound => {
                return Err(ApiError::not_found(format!("no route for {} {}", request.method, request.path)));
            }
            Match::MethodNotAllowed(allowed) => {
                let mut r = ApiError::method_not_allowed(format!("{} is not allowed here; use {}", request.method, allowed.join(", ")))
                    .into_response(request_id);
                r.headers.push(("allow".into(), allowed.join(", ")));
                return Ok(r);
            }
        };
        let target = &route.target;
        *served_by = Some((target.component.context.name.as_str(), route.template.as_str()));
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
            path: below_mount(&request.path, &target.mount),
            mount: target.mount.clone(),
            route: target.route.clone(),
            params,
            query: form_urlencoded::parse(request.query.as_bytes()).into_owned().collect(),
            headers: request.headers.iter().filter(|(k, _)| k != "authorization").cloned().collect(),
            body: request.body.to_vec(),
            request_id: request_id.to_owned(),
        };
        let name = &target.component.context.name;
        match self.runtime.handle_request(&target.component, wit_request, identity).await {
            Ok(r) => response_from(r, name),
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
        let identity = match request.header("authorization") {
            _ if request.verified_caller.is_some() => request.verified_caller.clone().map(Arc::new),
            None => None,
            Some(value) => {
                let token = bearer(value).ok_or_else(|| ApiError::unauthorized("the authorization header must be \"Bearer <token>\""))?;
                let verified = self.verifier.verify(token).await.map_err(|e| match e {
                    AuthError::Invalid(_) => ApiError::unauthorized(e.to_string()),
                    AuthError::Unavailable(_) => {
                        tracing::error!(error = %e, "cannot check tokens");
                        ApiError::unavailable("tokens cannot be checked right now")
                    }
                })?;
                Some(Arc::new(verified))
            }
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
}

/// The response for `result`, with its request id, and the request's log line.
fn finish_response(
    cors: Option<&CorsSpec>,
    request: &Request,
    request_id: &str,
    started: Instant,
    served_by: Option<(&str, &str)>,
    result: Result<Response, ApiError>,
) -> Response {
    let mut response = result.unwrap_or_else(|e| e.into_response(request_id));
    response.headers.push(("x-request-id".into(), request_id.to_owned()));
    if let (Some(cors), Some(origin)) = (cors, request.header("origin")) {
        crate::cors::decorate(cors, origin, &mut response);
    }
    let (component, route) = served_by.unwrap_or(("-", "-"));
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    crate::metrics::record_request(component, response.status, duration_ms);
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

fn below_mount(path: &str, mount: &str) -> String {
    let rest = path.strip_prefix(mount).unwrap_or(path);
    if rest.is_empty() { "/".into() } else { rest.into() }
}

/// Checks what a component returned before it reaches a client.
fn response_from(r: handler::Response, component: &str) -> Result<Response, ApiError> {
    if !(100..=599).contains(&r.status) {
        tracing::error!(component, status = r.status, "component returned an invalid status");
        return Err(ApiError::internal("the component returned an invalid response"));
    }
    let headers = r
        .headers
        .into_iter()
        .filter(|(k, v)| {
            let ok = axum::http::HeaderName::from_bytes(k.as_bytes()).is_ok() && axum::http::HeaderValue::from_str(v).is_ok();
            if !ok {
                tracing::warn!(component, header = %k, "dropped an invalid response header");
            }
            ok && k != "x-request-id"
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
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
