//! The manifest (`corral.toml`): which components run, where their bytes
//! live, the routes they own, what they are granted and their limits.
//!
//! Pure data and validation: loading a manifest touches no engine and no
//! backend, so every mistake in it is reported before anything starts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A manifest that parsed and passed validation.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Which backend serves each capability.
    pub backends: BackendsSpec,
    /// Limits that apply where a component sets none.
    pub defaults: Limits,
    /// Cross-origin access for browsers, when set.
    pub cors: Option<CorsSpec>,
    /// The OpenAPI document of the hosted routes, when set.
    pub openapi: Option<OpenApiSpec>,
    /// The components, by name.
    pub components: BTreeMap<String, ComponentSpec>,
}

/// `[openapi]`: the document `corral openapi` prints, and whether the host
/// serves it at `GET /openapi.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiSpec {
    /// Serve the document at `GET /openapi.json`, to anyone.
    #[serde(default)]
    pub serve: bool,
    /// The document's title (default "corral").
    pub title: Option<String>,
    /// The API's version (default "1").
    pub version: Option<String>,
}

/// Per-component resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap, in MiB.
    pub memory_mb: u32,
    /// Wall-clock budget for one request or event batch, in milliseconds.
    pub timeout_ms: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a database transaction, or one statement outside a
    /// transaction, may hold the database, in milliseconds.
    pub transaction_ms: u64,
    /// Most rows one SQL query may return.
    pub max_result_rows: usize,
    /// Most bytes of values one SQL query or records page may return.
    pub max_result_bytes: usize,
    /// Largest response body the component may return, in bytes.
    pub max_response_bytes: usize,
    /// Instances of the component that may run at once; a request past it
    /// waits briefly for one to finish, then gets 503.
    pub max_instances: u32,
    /// Bytes of log messages one request may write; later lines are dropped
    /// and counted.
    pub max_log_bytes: usize,
    /// Outbound HTTP requests one instance may have in flight at once.
    pub max_outbound: u32,
    /// Requests (or event batches) one instance may serve. 1, the default,
    /// is a fresh instance for each; more lets a large guest skip its
    /// start-up, at the cost of state carried from one request to the next.
    pub requests_per_instance: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: 64,
            timeout_ms: 10_000,
            max_body_bytes: 1024 * 1024,
            transaction_ms: 2_000,
            max_result_rows: 10_000,
            max_result_bytes: 16 * 1024 * 1024,
            // What a Lambda function may answer.
            max_response_bytes: 6 * 1024 * 1024,
            max_instances: 16,
            max_log_bytes: 64 * 1024,
            max_outbound: 8,
            requests_per_instance: 1,
        }
    }
}

/// One component as the manifest declares it.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// The component's name (its key in the manifest).
    pub name: String,
    /// Where the component's bytes come from.
    pub wasm: WasmSource,
    /// Path prefix for all its routes (`""` for none).
    pub mount: String,
    /// Its routes, relative to the mount.
    pub routes: Vec<RouteSpec>,
    /// What it may reach.
    pub grants: Grants,
    /// Its config values, by key, with `${env:NAME}` already resolved.
    pub config: BTreeMap<String, String>,
    /// The event sources it consumes.
    pub events: Vec<EventSpec>,
    /// Its limits (the defaults where it sets none).
    pub limits: Limits,
    /// The file that declares its request and response schemas for the
    /// OpenAPI document, resolved against the manifest's folder.
    pub schemas: Option<PathBuf>,
    /// The folder of its source, which `corral build` builds into `wasm`,
    /// resolved against the manifest's folder.
    pub source: Option<PathBuf>,
}

/// Where a component's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmSource {
    /// A `.wasm` file, resolved against the manifest's folder.
    File(PathBuf),
    /// The registry (`wasm = "registry:NAME"`): the current version of `name`,
    /// followed as it changes, or the version pinned by a sha256 prefix.
    Registry {
        /// The name it is published under.
        name: String,
        /// A sha256 prefix that fixes the version.
        pin: Option<String>,
    },
}

/// The tables, cache stores and queues a component may use. Anything not
/// listed is refused with `not-granted`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Database tables, for the records API and SQL alike.
    pub tables: BTreeSet<String>,
    /// Cache stores.
    pub caches: BTreeSet<String>,
    /// Queues.
    pub queues: BTreeSet<String>,
    /// Hosts reachable through `wasi:http/outgoing-handler`.
    pub hosts: Vec<HostGrant>,
}

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

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anyone; the caller identity is still passed on when a valid token is sent.
    Public,
    /// Only a verified caller (and, with `groups`, one in any of them).
    #[default]
    Caller,
}

/// One route of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The template relative to the mount, e.g. `/students/{id}`.
    pub path: String,
    /// Upper-case HTTP methods.
    pub methods: Vec<String>,
    /// Who may call it.
    pub access: Access,
    /// With `Access::Caller`: the caller must be in one of these (if any).
    pub groups: Vec<String>,
}

/// An event source a component consumes through `handle-events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// Where the events come from.
    pub source: EventSourceSpec,
    /// Messages per batch for queues consumed locally (1 to 10, default 10),
    /// changes per batch for tables (1 to 1000, default 100).
    pub batch_size: u32,
    /// How long a delivered batch stays hidden before a failed message is
    /// delivered again, for queues consumed locally.
    pub visibility_seconds: u32,
    /// A queue message delivered this many times without success goes to
    /// `dead_letter`, for queues consumed locally (SQS's redrive policy does
    /// it on AWS).
    pub max_receives: u32,
    /// Where a queue message goes after `max_receives` failed deliveries;
    /// without one it is delivered again until it succeeds.
    pub dead_letter: Option<String>,
}

/// The logical name of what a component consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSourceSpec {
    /// Messages sent to this queue.
    Queue(String),
    /// Changes to this table (a DynamoDB stream on AWS).
    Table(String),
    /// Object notifications of this S3 bucket (on Lambda): what changed,
    /// never the object itself.
    Bucket(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    queue: Option<String>,
    table: Option<String>,
    bucket: Option<String>,
    batch_size: Option<u32>,
    #[serde(default = "default_visibility")]
    visibility_seconds: u32,
    #[serde(default = "default_max_receives")]
    max_receives: u32,
    dead_letter: Option<String>,
}

fn default_max_receives() -> u32 {
    5
}

fn default_visibility() -> u32 {
    30
}

/// Which backend serves each capability. The `[backends]` table of the
/// manifest, or a file of its own (`corral serve --backends`), so one
/// manifest runs on the embedded backends locally and on AWS when deployed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendsSpec {
    /// The database.
    #[serde(default)]
    pub db: DbSpec,
    /// The cache stores.
    #[serde(default)]
    pub cache: CacheSpec,
    /// The queues.
    #[serde(default)]
    pub queue: QueueSpec,
    /// Who issues the bearer tokens the host checks. Unset, `corral serve`
    /// checks development tokens and `corral lambda` refuses to start.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// How long an SSM secret is cached, in seconds (default 300).
    #[serde(default = "default_secrets_ttl")]
    pub secrets_ttl_seconds: u64,
    /// Where `registry:` components are published.
    pub registry: Option<RegistrySpec>,
}

/// The component registry (`[backends.registry]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    /// `s3://BUCKET/PREFIX` or `dir:PATH` (relative to the file that names it).
    pub store: String,
    /// How often the host checks for a new current version, in seconds
    /// (default 5); an S3 notification reloads at once.
    #[serde(default = "default_check_seconds")]
    pub check_seconds: u64,
    /// The key of published precompiled artifacts: `ssm:PARAMETER`, or the
    /// key itself (through `${env:NAME}`). Without it, artifacts are
    /// neither published nor loaded.
    #[serde(default)]
    pub artifact_key: Option<String>,
}

fn default_check_seconds() -> u64 {
    RegistrySpec::DEFAULT_CHECK_SECONDS
}

impl RegistrySpec {
    /// How often the registry is checked unless configured.
    pub const DEFAULT_CHECK_SECONDS: u64 = 5;

    /// The store location, with a relative folder taken from `base`.
    pub fn location(&self, base: &Path) -> Result<crate::core::registry::StoreLocation, ManifestError> {
        crate::core::registry::StoreLocation::parse(&self.store, base).map_err(|m| invalid(format!("backends: registry store {m}")))
    }
}

fn default_secrets_ttl() -> u64 {
    300
}

/// Which browser origins may call the API (the `[cors]` table). The host
/// answers preflight requests itself and adds the headers to every response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    /// Allowed origins (`https://app.example.com`), or `"*"` for any.
    pub allow_origins: Vec<String>,
    /// Request headers a browser may send (default: authorization, content-type).
    #[serde(default = "default_cors_headers")]
    pub allow_headers: Vec<String>,
    /// Response headers a browser script may read (default: x-request-id).
    #[serde(default = "default_cors_expose")]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer (default 600 s).
    #[serde(default = "default_cors_max_age")]
    pub max_age_seconds: u32,
    /// Whether browsers may send cookies or credentials (not with `"*"`).
    #[serde(default)]
    pub allow_credentials: bool,
}

fn default_cors_headers() -> Vec<String> {
    vec!["authorization".into(), "content-type".into()]
}

fn default_cors_expose() -> Vec<String> {
    vec!["x-request-id".into()]
}

fn default_cors_max_age() -> u32 {
    600
}

/// Who issues bearer tokens. (On Lambda, claims an API Gateway authorizer
/// already checked are used as they are.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthSpec {
    /// HS256 development tokens (`corral token`), signed with `signing_key`
    /// when it is set, so that every host given the same key accepts the
    /// same tokens; otherwise with a key kept in the host's data directory.
    Dev {
        /// `ssm:PARAMETER` (a SecureString) or the key itself, usually
        /// through `${env:NAME}`: at least 32 characters.
        #[serde(default)]
        signing_key: Option<String>,
    },
    /// A Cognito user pool: RS256 tokens checked against its JWKS.
    Cognito {
        /// `https://cognito-idp.REGION.amazonaws.com/POOL_ID`.
        issuer: String,
        /// The app client ids whose tokens are accepted.
        clients: Vec<String>,
        /// Where the keys are (default: the issuer's `/.well-known/jwks.json`).
        jwks_url: Option<String>,
    },
}

/// The database backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DbSpec {
    /// SQLite in the data directory.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgres {
        /// `postgres://user[:password]@host:port/db?sslmode=...`.
        url: String,
        /// Log in with an RDS IAM auth token instead of a password.
        #[serde(default)]
        iam: bool,
        /// The database's region, for IAM tokens (default: the AWS configuration's).
        region: Option<String>,
        /// Most pooled connections (default 8).
        #[serde(default = "default_max_connections")]
        max_connections: u32,
    },
}

fn default_max_connections() -> u32 {
    8
}

/// Maps a store or queue name to the AWS resource name: an entry in
/// `names`, else `prefix` + the name (stage-specific names, as `-prod`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsNames {
    /// Put before every name without an entry in `names`.
    #[serde(default)]
    pub prefix: String,
    /// Explicit names.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// Create missing tables or queues at start (local emulators, development).
    #[serde(default)]
    pub create_missing: bool,
}

/// The cache backend. `layouts` names the stores kept in an existing
/// application's item layout (see `cache::Layout`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CacheSpec {
    /// A table in the embedded SQLite database.
    Embedded {
        /// Stores kept in an application's item layout.
        #[serde(default)]
        layouts: crate::capability::cache::Layouts,
    },
    /// One DynamoDB table per store.
    Dynamodb {
        /// Put before every store name without an entry in `names`.
        #[serde(default)]
        prefix: String,
        /// Explicit table names.
        #[serde(default)]
        names: BTreeMap<String, String>,
        /// Create missing tables at start (local emulators, development).
        #[serde(default)]
        create_missing: bool,
        /// Stores kept in an application's item layout.
        #[serde(default)]
        layouts: crate::capability::cache::Layouts,
    },
}

impl Default for CacheSpec {
    fn default() -> CacheSpec {
        CacheSpec::Embedded {
            layouts: Default::default(),
        }
    }
}

impl CacheSpec {
    /// The stores kept in an application's item layout.
    pub fn layouts(&self) -> &crate::capability::cache::Layouts {
        match self {
            CacheSpec::Embedded { layouts } | CacheSpec::Dynamodb { layouts, .. } => layouts,
        }
    }

    /// The DynamoDB table names, when the cache is DynamoDB.
    pub fn dynamodb_names(&self) -> Option<AwsNames> {
        match self {
            CacheSpec::Dynamodb {
                prefix,
                names,
                create_missing,
                ..
            } => Some(AwsNames {
                prefix: prefix.clone(),
                names: names.clone(),
                create_missing: *create_missing,
            }),
            CacheSpec::Embedded { .. } => None,
        }
    }
}

/// The queue backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum QueueSpec {
    /// A table in the embedded SQLite database.
    #[default]
    Embedded,
    /// One SQS queue per queue name.
    Sqs(AwsNames),
}

impl BackendsSpec {
    /// Reads a backends file: a `[backends]` table written as in a manifest.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<BackendsSpec, ManifestError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            #[serde(default)]
            backends: BackendsSpec,
        }
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: File = toml::from_str(&text).map_err(|e| ManifestError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        file.backends.resolve(&env, path.parent().unwrap_or(Path::new(".")))
    }

    /// Whether any backend or secret needs an AWS configuration.
    pub fn uses_aws(&self) -> bool {
        self.registry.as_ref().is_some_and(|r| r.store.starts_with("s3://"))
            || matches!(self.db, DbSpec::Postgres { iam: true, .. })
            || matches!(self.cache, CacheSpec::Dynamodb { .. })
            || matches!(self.queue, QueueSpec::Sqs(_))
    }

    /// Resolves `${env:NAME}` in the values that may hold deployment details.
    fn resolve(mut self, env: &impl Fn(&str) -> Option<String>, base: &Path) -> Result<BackendsSpec, ManifestError> {
        let fix = |what: &str, v: &mut String| -> Result<(), ManifestError> {
            *v = resolve_env(v, env).map_err(|m| invalid(format!("backends: {what}: {m}")))?;
            Ok(())
        };
        if let Some(registry) = &mut self.registry {
            fix("registry store", &mut registry.store)?;
            if let Some(key) = &mut registry.artifact_key {
                fix("registry artifact_key", key)?;
            }
            // Stored absolute, so the file's folder no longer matters.
            if let crate::core::registry::StoreLocation::Dir(path) = registry.location(base)? {
                registry.store = format!("dir:{}", path.display());
            }
            if !(1..=86_400).contains(&registry.check_seconds) {
                return Err(invalid("backends: registry check_seconds must be 1 to 86400".into()));
            }
        }
        if let DbSpec::Postgres {
            url,
            region,
            max_connections,
            ..
        } = &mut self.db
        {
            fix("db url", url)?;
            if let Some(r) = region {
                fix("db region", r)?;
            }
            if *max_connections == 0 {
                return Err(invalid("backends: db max_connections must be at least 1".into()));
            }
        }
        if let Some(AuthSpec::Dev { signing_key: Some(key) }) = &mut self.auth {
            fix("auth signing_key", key)?;
        }
        if let Some(AuthSpec::Cognito { issuer, clients, jwks_url }) = &mut self.auth {
            fix("auth issuer", issuer)?;
            for c in clients.iter_mut() {
                fix("auth clients", c)?;
            }
            if let Some(url) = jwks_url {
                fix("auth jwks_url", url)?;
            }
            if clients.is_empty() {
                return Err(invalid("backends: auth clients must name at least one app client".into()));
            }
        }
        for (store, layout) in self.cache.layouts() {
            layout.check(store).map_err(|m| invalid(format!("backends: {m}")))?;
        }
        if let CacheSpec::Dynamodb { prefix, names, .. } = &mut self.cache {
            fix("prefix", prefix)?;
            for v in names.values_mut() {
                fix("names", v)?;
            }
        }
        if let QueueSpec::Sqs(names) = &mut self.queue {
            fix("prefix", &mut names.prefix)?;
            for v in names.names.values_mut() {
                fix("names", v)?;
            }
        }
        Ok(self)
    }
}

/// A manifest that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("manifest {path}: {message}")]
    Syntax {
        /// The manifest's path.
        path: PathBuf,
        /// The parser's message, with the line.
        message: String,
    },
    /// A value is not acceptable.
    #[error("manifest: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    backends: BackendsSpec,
    cors: Option<CorsSpec>,
    openapi: Option<OpenApiSpec>,
    #[serde(default)]
    defaults: RawLimits,
    #[serde(default)]
    components: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory_mb: Option<u32>,
    timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    transaction_ms: Option<u64>,
    max_result_rows: Option<usize>,
    max_result_bytes: Option<usize>,
    max_response_bytes: Option<usize>,
    max_instances: Option<u32>,
    max_log_bytes: Option<usize>,
    max_outbound: Option<u32>,
    requests_per_instance: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    wasm: String,
    version: Option<String>,
    #[serde(default)]
    mount: String,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    caches: Vec<String>,
    #[serde(default)]
    queues: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    events: Vec<RawEvent>,
    schemas: Option<String>,
    source: Option<String>,
    #[serde(flatten)]
    limits: RawLimits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    methods: Vec<String>,
    #[serde(default)]
    auth: Access,
    #[serde(default)]
    groups: Vec<String>,
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl Manifest {
    /// Reads and validates the manifest at `path`; relative `wasm` paths are
    /// taken from the manifest's folder, `${env:NAME}` from `env`.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Manifest::parse(&text, base, env).map_err(|e| match e {
            ManifestError::Syntax { message, .. } => ManifestError::Syntax {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses manifest text; see [`Manifest::load`].
    pub fn parse(text: &str, base: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| ManifestError::Syntax {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let defaults = raw.defaults.over(Limits::default());
        check_limits(&defaults, "defaults")?;
        let mut components = BTreeMap::new();
        for (name, c) in raw.components {
            check_name(&name, "component")?;
            let limits = c.limits.over(defaults);
            check_limits(&limits, &format!("component \"{name}\""))?;
            let mount = normalize_mount(&c.mount).ok_or_else(|| {
                invalid(format!(
                    "component \"{name}\": mount \"{}\" must start with '/' and not end with one",
                    c.mount
                ))
            })?;
            let routes = c.routes.into_iter().map(|r| check_route(&name, r)).collect::<Result<Vec<_>, _>>()?;
            let grants = Grants {
                tables: check_grants(&name, "table", c.tables)?,
                caches: check_grants(&name, "cache", c.caches)?,
                queues: check_grants(&name, "queue", c.queues)?,
                hosts: c
                    .hosts
                    .iter()
                    .map(|h| HostGrant::parse(h).map_err(|m| invalid(format!("component \"{name}\": {m}"))))
                    .collect::<Result<_, _>>()?,
            };
            let config = c
                .config
                .into_iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        resolve_env(&v, &env).map_err(|m| invalid(format!("component \"{name}\": config key \"{k}\": {m}")))?,
                    ))
                })
                .collect::<Result<_, ManifestError>>()?;
            let events = c.events.into_iter().map(|e| check_event(&name, e)).collect::<Result<Vec<_>, _>>()?;
            let wasm = wasm_source(&name, &c.wasm, c.version, base)?;
            components.insert(
                name.clone(),
                ComponentSpec {
                    name,
                    wasm,
                    mount,
                    routes,
                    grants,
                    config,
                    events,
                    limits,
                    schemas: c.schemas.map(|p| base.join(p)),
                    source: c.source.map(|p| base.join(p)),
                },
            );
        }
        let backends = raw.backends.resolve(&env, base)?;
        if let Some(cors) = &raw.cors {
            if cors.allow_origins.is_empty() {
                return Err(invalid("cors: allow_origins must name at least one origin, or \"*\"".into()));
            }
            if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
                return Err(invalid("cors: allow_credentials cannot be used with the origin \"*\"".into()));
            }
        }
        Ok(Manifest {
            backends,
            defaults,
            cors: raw.cors,
            openapi: raw.openapi,
            components,
        })
    }

    /// Whether any component comes from the registry.
    pub fn uses_registry(&self) -> bool {
        self.components.values().any(|c| matches!(c.wasm, WasmSource::Registry { .. }))
    }

    /// The largest memory cap of any component, in bytes.
    pub fn max_memory_bytes(&self) -> usize {
        let mb = self
            .components
            .values()
            .map(|c| c.limits.memory_mb)
            .max()
            .unwrap_or(self.defaults.memory_mb);
        mb as usize * 1024 * 1024
    }

    /// The largest request body any component accepts.
    pub fn max_body_bytes(&self) -> usize {
        self.components
            .values()
            .map(|c| c.limits.max_body_bytes)
            .max()
            .unwrap_or(self.defaults.max_body_bytes)
    }
}

impl RawLimits {
    fn over(&self, base: Limits) -> Limits {
        Limits {
            memory_mb: self.memory_mb.unwrap_or(base.memory_mb),
            timeout_ms: self.timeout_ms.unwrap_or(base.timeout_ms),
            max_body_bytes: self.max_body_bytes.unwrap_or(base.max_body_bytes),
            transaction_ms: self.transaction_ms.unwrap_or(base.transaction_ms),
            max_result_rows: self.max_result_rows.unwrap_or(base.max_result_rows),
            max_result_bytes: self.max_result_bytes.unwrap_or(base.max_result_bytes),
            max_response_bytes: self.max_response_bytes.unwrap_or(base.max_response_bytes),
            max_instances: self.max_instances.unwrap_or(base.max_instances),
            max_log_bytes: self.max_log_bytes.unwrap_or(base.max_log_bytes),
            max_outbound: self.max_outbound.unwrap_or(base.max_outbound),
            requests_per_instance: self.requests_per_instance.unwrap_or(base.requests_per_instance),
        }
    }
}

fn invalid(message: String) -> ManifestError {
    ManifestError::Invalid(message)
}

fn check_limits(l: &Limits, what: &str) -> Result<(), ManifestError> {
    if !(1..=4096).contains(&l.memory_mb) {
        return Err(invalid(format!("{what}: memory_mb must be 1 to 4096, not {}", l.memory_mb)));
    }
    if !(1..=900_000).contains(&l.timeout_ms) {
        return Err(invalid(format!("{what}: timeout_ms must be 1 to 900000, not {}", l.timeout_ms)));
    }
    if l.max_body_bytes == 0 || l.max_body_bytes > 64 * 1024 * 1024 {
        return Err(invalid(format!(
            "{what}: max_body_bytes must be 1 to 67108864, not {}",
            l.max_body_bytes
        )));
    }
    if !(1..=60_000).contains(&l.transaction_ms) {
        return Err(invalid(format!(
            "{what}: transaction_ms must be 1 to 60000, not {}",
            l.transaction_ms
        )));
    }
    if !(1..=1_000_000).contains(&l.max_result_rows) {
        return Err(invalid(format!(
            "{what}: max_result_rows must be 1 to 1000000, not {}",
            l.max_result_rows
        )));
    }
    if l.max_result_bytes == 0 || l.max_result_bytes > 256 * 1024 * 1024 {
        return Err(invalid(format!(
            "{what}: max_result_bytes must be 1 to 268435456, not {}",
            l.max_result_bytes
        )));
    }
    if l.max_response_bytes == 0 || l.max_response_bytes > 64 * 1024 * 1024 {
        return Err(invalid(format!(
            "{what}: max_response_bytes must be 1 to 67108864, not {}",
            l.max_response_bytes
        )));
    }
    if !(1..=1024).contains(&l.max_instances) {
        return Err(invalid(format!("{what}: max_instances must be 1 to 1024, not {}", l.max_instances)));
    }
    if l.max_log_bytes > 64 * 1024 * 1024 {
        return Err(invalid(format!(
            "{what}: max_log_bytes must be 0 to 67108864, not {}",
            l.max_log_bytes
        )));
    }
    if l.max_outbound > 256 {
        return Err(invalid(format!("{what}: max_outbound must be 0 to 256, not {}", l.max_outbound)));
    }
    if !(1..=10_000).contains(&l.requests_per_instance) {
        return Err(invalid(format!(
            "{what}: requests_per_instance must be 1 to 10000, not {}",
            l.requests_per_instance
        )));
    }
    Ok(())
}

/// Names of components, tables, stores and queues: they end up in SQL,
/// table names and logs, so keep them to a safe alphabet.
pub fn check_name(name: &str, what: &str) -> Result<(), ManifestError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} name \"{name}\" must be 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter"
        )))
    }
}

/// An S3 bucket name: 3 to 63 of a-z, 0-9, '.' and '-', starting and
/// ending with a letter or digit.
fn check_bucket(name: &str) -> Result<(), String> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bucket name \"{name}\" must be 3 to 63 of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
        ))
    }
}

fn check_grants(component: &str, what: &str, names: Vec<String>) -> Result<BTreeSet<String>, ManifestError> {
    let mut set = BTreeSet::new();
    for n in names {
        check_name(&n, what).map_err(|e| invalid(format!("component \"{component}\": {e}")))?;
        if what == "table" && (n.contains('-') || n.starts_with("corral_") || n.starts_with("sqlite_")) {
            return Err(invalid(format!(
                "component \"{component}\": table \"{n}\" may not contain '-' or start with \"corral_\" or \"sqlite_\""
            )));
        }
        set.insert(n);
    }
    Ok(set)
}

fn check_route(component: &str, r: RawRoute) -> Result<RouteSpec, ManifestError> {
    let bad = |m: String| invalid(format!("component \"{component}\": route \"{}\": {m}", r.path));
    crate::core::router::Template::parse(&r.path).map_err(bad)?;
    if r.methods.is_empty() {
        return Err(bad("needs at least one method".into()));
    }
    let mut methods = Vec::new();
    for m in &r.methods {
        let up = m.to_ascii_uppercase();
        if !METHODS.contains(&up.as_str()) {
            return Err(bad(format!("unknown method \"{m}\"")));
        }
        methods.push(up);
    }
    if r.auth == Access::Public && !r.groups.is_empty() {
        return Err(bad("a public route cannot require groups".into()));
    }
    Ok(RouteSpec {
        path: r.path.clone(),
        methods,
        access: r.auth,
        groups: r.groups,
    })
}

fn check_event(component: &str, e: RawEvent) -> Result<EventSpec, ManifestError> {
    let bad = |m: String| invalid(format!("component \"{component}\": events: {m}"));
    let source = match (e.queue, e.table, e.bucket) {
        (Some(q), None, None) => {
            check_name(&q, "queue").map_err(|err| bad(err.to_string()))?;
            EventSourceSpec::Queue(q)
        }
        (None, Some(t), None) => {
            check_name(&t, "table").map_err(|err| bad(err.to_string()))?;
            EventSourceSpec::Table(t)
        }
        (None, None, Some(b)) => {
            check_bucket(&b).map_err(bad)?;
            EventSourceSpec::Bucket(b)
        }
        _ => return Err(bad("each entry names exactly one of queue, table or bucket".into())),
    };
    // As on Lambda: SQS hands out at most 10 messages at once, a stream batch
    // is 100 changes unless set (a DynamoDB stream read gives at most 1000).
    let (default_batch, max_batch) = match &source {
        EventSourceSpec::Queue(_) => (10, 10),
        EventSourceSpec::Table(_) | EventSourceSpec::Bucket(_) => (100, 1000),
    };
    let batch_size = e.batch_size.unwrap_or(default_batch);
    if !(1..=max_batch).contains(&batch_size) {
        return Err(bad(format!("batch_size must be 1 to {max_batch} for this source")));
    }
    if !(1..=43_200).contains(&e.visibility_seconds) {
        return Err(bad("visibility_seconds must be 1 to 43200".into()));
    }
    // SQS's redrive policy takes 1 to 1000 receives.
    if !(1..=1000).contains(&e.max_receives) {
        return Err(bad("max_receives must be 1 to 1000".into()));
    }
    if let Some(dead_letter) = &e.dead_letter {
        check_name(dead_letter, "queue").map_err(|err| bad(err.to_string()))?;
        match &source {
            EventSourceSpec::Queue(q) if q == dead_letter => {
                return Err(bad(format!("the dead_letter queue \"{dead_letter}\" is the queue it drains")));
            }
            EventSourceSpec::Queue(_) => {}
            EventSourceSpec::Table(_) | EventSourceSpec::Bucket(_) => {
                return Err(bad("dead_letter applies to a queue, not a table or bucket".into()));
            }
        }
    }
    Ok(EventSpec {
        source,
        batch_size,
        visibility_seconds: e.visibility_seconds,
        max_receives: e.max_receives,
        dead_letter: e.dead_letter,
    })
}

fn wasm_source(component: &str, wasm: &str, version: Option<String>, base: &Path) -> Result<WasmSource, ManifestError> {
    let Some(name) = wasm.strip_prefix("registry:") else {
        if version.is_some() {
            return Err(invalid(format!(
                "component \"{component}\": version pins a registry version; it needs wasm = \"registry:NAME\""
            )));
        }
        let path = Path::new(wasm);
        return Ok(WasmSource::File(if path.is_absolute() { path.to_owned() } else { base.join(path) }));
    };
    check_name(name, "registry component").map_err(|e| invalid(format!("component \"{component}\": {e}")))?;
    if let Some(pin) = &version
        && (!(4..=64).contains(&pin.len()) || !pin.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(invalid(format!(
            "component \"{component}\": version \"{pin}\" must be 4 to 64 hex digits of a sha256"
        )));
    }
    Ok(WasmSource::Registry {
        name: name.to_owned(),
        pin: version.map(|v| v.to_ascii_lowercase()),
    })
}

fn normalize_mount(mount: &str) -> Option<String> {
    if mount.is_empty() || mount == "/" {
        return Some(String::new());
    }
    (mount.starts_with('/') && !mount.ends_with('/')).then(|| mount.to_owned())
}

/// Replaces each `${env:NAME}` with that environment variable, and each
/// `${env:NAME:-default}` with it or, when it is unset, the default.
fn resolve_env(value: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 6..];
        let end = after.find('}').ok_or("unclosed \"${env:\"")?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        let value = env(name).or_else(|| default.map(str::to_owned));
        out.push_str(&value.ok_or_else(|| format!("environment variable {name} is not set"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("/app"), |k| (k == "HOME_DIR").then(|| "/home/x".to_owned()))
    }

    #[test]
    fn reads_a_component_with_defaults_and_env_config() {
        let m = parse(
            r#"
            [defaults]
            timeout_ms = 500
            [components.students]
            wasm = "crud.wasm"
            tables = ["students"]
            memory_mb = 32
            config = { table = "students", home = "${env:HOME_DIR}/data", mode = "${env:NOPE:-dev}", dir = "${env:HOME_DIR:-/tmp}" }
            [[components.students.routes]]
            path = "/students/{id}"
            methods = ["get", "PATCH"]
            auth = "public"
            "#,
        )
        .unwrap();
        let c = &m.components["students"];
        assert_eq!(c.wasm, WasmSource::File("/app/crud.wasm".into()));
        assert_eq!(
            c.limits,
            Limits {
                memory_mb: 32,
                timeout_ms: 500,
                max_body_bytes: 1024 * 1024,
                ..Limits::default()
            }
        );
        assert_eq!(c.config["home"], "/home/x/data");
        assert_eq!(c.config["mode"], "dev", "the default when unset");
        assert_eq!(c.config["dir"], "/home/x", "the variable when set");
        assert_eq!(c.routes[0].methods, ["GET", "PATCH"]);
        assert_eq!(c.routes[0].access, Access::Public);
        assert!(c.grants.tables.contains("students"));
    }

    #[test]
    fn reads_backends() {
        let m = parse(
            r#"
            [backends.db]
            kind = "postgres"
            url = "postgres://app@${env:HOME_DIR}:5432/db"
            iam = true
            [backends.cache]
            kind = "dynamodb"
            prefix = "corral-"
            names = { users = "alma-users-prod" }
            "#,
        )
        .unwrap();
        assert!(m.backends.uses_aws());
        assert!(matches!(&m.backends.db, DbSpec::Postgres { url, iam: true, .. } if url == "postgres://app@/home/x:5432/db"));
        assert!(
            matches!(&m.backends.cache, CacheSpec::Dynamodb { prefix, names, .. } if prefix == "corral-" && names["users"] == "alma-users-prod")
        );
        assert_eq!(m.backends.queue, QueueSpec::Embedded);
        assert!(parse("[backends.db]\nkind = 'mysql'").is_err());
        assert!(!parse("").unwrap().backends.uses_aws());
    }

    #[test]
    fn reads_cache_layouts_and_refuses_bad_ones() {
        let m = parse(
            r#"
            [backends.cache]
            kind = "dynamodb"
            [backends.cache.layouts.alma-requests]
            key = "request_id"
            ttl = "record_expiry_date"
            "#,
        )
        .unwrap();
        assert_eq!(m.backends.cache.layouts()["alma-requests"].ttl, "record_expiry_date");
        let m = parse("[backends.cache]\nkind = 'embedded'\nlayouts = { users = { key = 'primary_id', ttl = 'expiry_date' } }").unwrap();
        assert_eq!(m.backends.cache.layouts()["users"].key, "primary_id");
        for bad in [
            "{ users = { key = 'id', ttl = 'id' } }",
            "{ users = { key = '', ttl = 'expiry_date' } }",
            "{ users = { key = 'id', ttl = '' } }",
            "{ '' = { key = 'id', ttl = 'expiry_date' } }",
            "{ users = { key = 'id' } }",
        ] {
            let err = parse(&format!("[backends.cache]\nkind = 'dynamodb'\nlayouts = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("layout") || err.contains("ttl"), "{bad}: {err}");
        }
    }

    #[test]
    fn host_grants_allow_https_by_default_and_http_on_loopback() {
        let alma = HostGrant::parse("API-eu.hosted.exlibrisgroup.com").unwrap();
        assert!(alma.allows("https", "api-eu.hosted.exlibrisgroup.com", None));
        assert!(alma.allows("https", "api-eu.hosted.exlibrisgroup.com", Some(443)));
        assert!(!alma.allows("https", "api-eu.hosted.exlibrisgroup.com", Some(8443)));
        assert!(!alma.allows("http", "api-eu.hosted.exlibrisgroup.com", None));
        assert!(!alma.allows("https", "api-na.hosted.exlibrisgroup.com", None));
        assert!(!alma.allows("https", "hosted.exlibrisgroup.com", None));

        let local = HostGrant::parse("127.0.0.1:4321").unwrap();
        assert!(local.allows("http", "127.0.0.1", Some(4321)));
        assert!(local.allows("https", "127.0.0.1", Some(4321)));
        assert!(!local.allows("http", "127.0.0.1", None));
        assert!(!local.allows("http", "127.0.0.1", Some(4322)));

        let plain = HostGrant::parse("http://legacy.example.edu").unwrap();
        assert!(plain.allows("http", "legacy.example.edu", Some(80)));
        assert!(!plain.allows("https", "legacy.example.edu", None));
        assert!(HostGrant::parse("[::1]:80").unwrap().allows("http", "[::1]", None));
        assert!(!HostGrant::parse("10.0.0.1").unwrap().allows("http", "10.0.0.1", None));

        for bad in ["", "ftp://x.org", "x.org/path", "user@x.org", "*.x.org", "x.org:99999"] {
            assert!(HostGrant::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn reads_registry_sources() {
        let m = parse(
            r#"
            [backends.registry]
            store = "dir:published"
            [components.a]
            wasm = "registry:notes"
            [components.b]
            wasm = "registry:notes"
            version = "ABCDEF12"
            "#,
        )
        .unwrap();
        assert_eq!(
            m.components["a"].wasm,
            WasmSource::Registry {
                name: "notes".into(),
                pin: None
            }
        );
        assert_eq!(
            m.components["b"].wasm,
            WasmSource::Registry {
                name: "notes".into(),
                pin: Some("abcdef12".into())
            }
        );
        let registry = m.backends.registry.clone().unwrap();
        assert_eq!(
            registry,
            RegistrySpec {
                store: "dir:/app/published".into(),
                check_seconds: 5,
                artifact_key: None,
            }
        );
        assert!(m.uses_registry() && !m.backends.uses_aws());
        let s3 = parse("[backends.registry]\nstore = 's3://b/p'\ncheck_seconds = 2").unwrap();
        assert!(s3.backends.uses_aws());
    }

    #[test]
    fn a_dev_signing_key_comes_from_the_environment() {
        let m = parse("[backends.auth]\nkind = 'dev'\nsigning_key = '${env:HOME_DIR}/key'").unwrap();
        assert_eq!(
            m.backends.auth,
            Some(AuthSpec::Dev {
                signing_key: Some("/home/x/key".into())
            })
        );
        assert_eq!(
            parse("[backends.auth]\nkind = 'dev'").unwrap().backends.auth,
            Some(AuthSpec::Dev { signing_key: None })
        );
        let missing = parse("[backends.auth]\nkind = 'dev'\nsigning_key = '${env:NOPE}'").unwrap_err();
        assert!(missing.to_string().contains("NOPE"), "{missing}");
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        for (text, needle) in [
            ("[components.a]\nwasm='a'\nbogus=1", "unknown field"),
            ("[components.A]\nwasm='a'", "component name"),
            ("[components.a]\nwasm='a'\ntables=['corral_queue']", "corral_"),
            ("[components.a]\nwasm='a'\nconfig={k='${env:NOPE}'}", "NOPE is not set"),
            ("[components.a]\nwasm='a'\nmount='/x/'", "mount"),
            (
                "[components.a]\nwasm='a'\n[[components.a.routes]]\npath='/x'\nmethods=['FETCH']",
                "unknown method",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.routes]]\npath='x'\nmethods=['GET']",
                "start with '/'",
            ),
            ("[defaults]\nmemory_mb=0", "memory_mb"),
            (
                "[components.a]\nwasm='a'\nrequests_per_instance=0",
                "requests_per_instance must be 1 to 10000",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\nqueue='jobs'\nbatch_size=11",
                "batch_size",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\nqueue='jobs'\ntable='events'",
                "exactly one",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\nbucket='b'\ntable='events'",
                "exactly one",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\nbucket='Up_Loads'",
                "bucket name",
            ),
            ("[components.a]\nwasm='a'\n[[components.a.events]]\nbucket='a..b'", "bucket name"),
            ("[components.a]\nwasm='a'\n[[components.a.events]]\nbucket='-ab'", "bucket name"),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\nqueue='jobs'\nmax_receives=0",
                "max_receives",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\nqueue='jobs'\ndead_letter='jobs'",
                "the queue it drains",
            ),
            (
                "[components.a]\nwasm='a'\n[[components.a.events]]\ntable='t'\ndead_letter='dlq'",
                "not a table",
            ),
            ("[components.a]\nwasm='a'\nhosts=['x.org/api']", "host \"x.org/api\""),
            ("[components.a]\nwasm='a'\nversion='abcd'", "needs wasm = \"registry:NAME\""),
            ("[components.a]\nwasm='registry:Bad'", "registry component name"),
            ("[components.a]\nwasm='registry:a'\nversion='xyz1'", "hex digits"),
            ("[backends.registry]\nstore='/abs'", "s3://BUCKET/PREFIX or dir:PATH"),
            ("[backends.registry]\nstore='dir:r'\ncheck_seconds=0", "check_seconds"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
