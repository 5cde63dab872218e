//! One component as the manifest declares it: where its bytes come from,
//! its routes, grants, config, events and limits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::limits::{Limits, RawLimits};
use super::{ManifestError, invalid, resolve_env};
use crate::capability::outbound::HostGrant;

/// One component as the manifest declares it.
#[derive(Debug, Clone)]
pub(crate) struct ComponentSpec {
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
pub(crate) enum WasmSource {
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

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Access {
    /// Anyone; the caller identity is still passed on when a valid token is sent.
    Public,
    /// Only a verified caller (and, with `groups`, one in any of them).
    #[default]
    Caller,
}

/// One route of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteSpec {
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
pub(crate) struct EventSpec {
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
pub(crate) enum EventSourceSpec {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawComponent {
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

impl RawComponent {
    /// The component `name` as declared, checked; its unset limits are
    /// taken from `defaults`, relative paths from `base`.
    pub(super) fn check(
        self,
        name: String,
        defaults: Limits,
        base: &Path,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<ComponentSpec, ManifestError> {
        let c = self;
        let limits = c.limits.over(defaults);
        limits.check(&format!("component \"{name}\""))?;
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
                    resolve_env(&v, env).map_err(|m| invalid(format!("component \"{name}\": config key \"{k}\": {m}")))?,
                ))
            })
            .collect::<Result<_, ManifestError>>()?;
        let events = c.events.into_iter().map(|e| check_event(&name, e)).collect::<Result<Vec<_>, _>>()?;
        let wasm = wasm_source(&name, &c.wasm, c.version, base)?;
        Ok(ComponentSpec {
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
        })
    }
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

/// Names of components, tables, stores and queues: they end up in SQL,
/// table names and logs, so keep them to a safe alphabet.
pub(crate) fn check_name(name: &str, what: &str) -> Result<(), ManifestError> {
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

fn normalize_mount(mount: &str) -> Option<String> {
    if mount.is_empty() || mount == "/" {
        return Some(String::new());
    }
    (mount.starts_with('/') && !mount.ends_with('/')).then(|| mount.to_owned())
}
