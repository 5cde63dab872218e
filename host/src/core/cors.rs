//! Cross-origin access for browsers, from the manifest's `[cors]` table:
//! the host answers preflight requests itself (no component runs, no token
//! is needed) and marks every response for an allowed origin.

use crate::core::request::Response;
use serde::Deserialize;

/// The `access-control-allow-origin` value for `origin`, if it is allowed.
fn allowed_origin(spec: &CorsSpec, origin: &str) -> Option<String> {
    if spec.allow_origins.iter().any(|o| o == origin) {
        Some(origin.to_owned())
    } else if spec.allow_origins.iter().any(|o| o == "*") {
        Some("*".into())
    } else {
        None
    }
}

/// The answer to a preflight from `origin` for a path that serves `methods`.
pub(crate) fn preflight(spec: &CorsSpec, origin: &str, methods: &[String]) -> Response {
    let mut response = Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    };
    if allowed_origin(spec, origin).is_some() {
        let mut allowed = methods.to_vec();
        allowed.push("OPTIONS".into());
        allowed.dedup();
        response.headers.push(("access-control-allow-methods".into(), allowed.join(", ")));
        response
            .headers
            .push(("access-control-allow-headers".into(), spec.allow_headers.join(", ")));
        response
            .headers
            .push(("access-control-max-age".into(), spec.max_age_seconds.to_string()));
    }
    decorate(spec, origin, &mut response);
    response
}

/// Adds the headers that let a browser script from `origin` read `response`.
pub(crate) fn decorate(spec: &CorsSpec, origin: &str, response: &mut Response) {
    let Some(allowed) = allowed_origin(spec, origin) else {
        return;
    };
    if allowed != "*" {
        // The answer differs by origin: caches must keep them apart.
        response.headers.push(("vary".into(), "origin".into()));
    }
    response.headers.push(("access-control-allow-origin".into(), allowed));
    if !spec.expose_headers.is_empty() {
        response
            .headers
            .push(("access-control-expose-headers".into(), spec.expose_headers.join(", ")));
    }
    if spec.allow_credentials {
        response.headers.push(("access-control-allow-credentials".into(), "true".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(origins: &[&str]) -> CorsSpec {
        CorsSpec {
            allow_origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_headers: vec!["authorization".into(), "content-type".into()],
            expose_headers: vec!["x-request-id".into()],
            max_age_seconds: 600,
            allow_credentials: false,
        }
    }

    #[test]
    fn preflights_name_the_paths_methods_for_allowed_origins_only() {
        let r = preflight(
            &spec(&["https://app.example"]),
            "https://app.example",
            &["GET".into(), "POST".into()],
        );
        assert_eq!(r.status, 204);
        assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
        assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST, OPTIONS"));
        assert_eq!(r.header("vary"), Some("origin"));
        let refused = preflight(&spec(&["https://app.example"]), "https://evil.example", &["GET".into()]);
        assert_eq!(refused.header("access-control-allow-origin"), None);
        let mut any = Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        };
        decorate(&spec(&["*"]), "https://anyone.example", &mut any);
        assert_eq!((any.header("access-control-allow-origin"), any.header("vary")), (Some("*"), None));
    }
}

/// Which browser origins may call the API (the `[cors]` table). The host
/// answers preflight requests itself and adds the headers to every response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CorsSpec {
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
