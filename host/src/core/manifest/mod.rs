//! The manifest (`corral.toml`): which components run, where their bytes
//! live, the routes they own, what they are granted and their limits.
//!
//! Pure data and validation: loading a manifest touches no engine and no
//! backend, so every mistake in it is reported before anything starts.

pub(crate) mod component;
pub(crate) mod error;
mod limits;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub(crate) use component::{Access, ComponentSpec, EventSourceSpec, EventSpec, Grants, RouteSpec, WasmSource, check_name};
pub(crate) use limits::Limits;

use component::RawComponent;
use limits::RawLimits;

pub use error::ManifestError;
use error::{invalid, resolve_env};

use crate::core::backends::BackendsSpec;
use crate::core::cors::CorsSpec;

/// A manifest that parsed and passed validation.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Which backend serves each capability.
    pub(crate) backends: BackendsSpec,
    /// Limits that apply where a component sets none.
    pub(crate) defaults: Limits,
    /// Cross-origin access for browsers, when set.
    pub(crate) cors: Option<CorsSpec>,
    /// The OpenAPI document of the hosted routes, when set.
    pub(crate) openapi: Option<OpenApiSpec>,
    /// The components, by name.
    pub(crate) components: BTreeMap<String, ComponentSpec>,
}

/// `[openapi]`: the document `corral openapi` prints, and whether the host
/// serves it at `GET /openapi.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenApiSpec {
    /// Serve the document at `GET /openapi.json`, to anyone.
    #[serde(default)]
    pub serve: bool,
    /// The document's title (default "corral").
    pub title: Option<String>,
    /// The API's version (default "1").
    pub version: Option<String>,
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
        defaults.check("defaults")?;
        let mut components = BTreeMap::new();
        for (name, c) in raw.components {
            check_name(&name, "component")?;
            let spec = c.check(name.clone(), defaults, base, &env)?;
            components.insert(name, spec);
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
    pub(crate) fn uses_registry(&self) -> bool {
        self.components.values().any(|c| matches!(c.wasm, WasmSource::Registry { .. }))
    }

    /// The longest a database statement may run: the longest timeout of
    /// any component.
    pub(crate) fn statement_timeout(&self) -> std::time::Duration {
        let ms = self
            .components
            .values()
            .map(|c| c.limits.timeout_ms)
            .max()
            .unwrap_or(self.defaults.timeout_ms);
        std::time::Duration::from_millis(ms)
    }

    /// The largest memory cap of any component, in bytes.
    pub(crate) fn max_memory_bytes(&self) -> usize {
        let mb = self
            .components
            .values()
            .map(|c| c.limits.memory_mb)
            .max()
            .unwrap_or(self.defaults.memory_mb);
        mb as usize * 1024 * 1024
    }

    /// The largest request body any component accepts.
    pub(crate) fn max_body_bytes(&self) -> usize {
        self.components
            .values()
            .map(|c| c.limits.max_body_bytes)
            .max()
            .unwrap_or(self.defaults.max_body_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::auth::AuthSpec;
    use crate::capability::cache::CacheSpec;
    use crate::capability::db::DbSpec;
    use crate::capability::outbound::HostGrant;
    use crate::capability::queue::QueueSpec;
    use crate::core::registry::RegistrySpec;

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
