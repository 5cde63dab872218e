//! Route matching: from a request path and method to the route that serves
//! it and its path parameters. Pure code, no engine or server.
//!
//! A path is read one way only, here and in the SDK's router
//! (`components/sdk/src/router.rs`): split on `/` after the leading one, a
//! single trailing `/` ignored, each segment percent-decoded before it is
//! compared or bound. A path that could be read two ways is refused: an
//! empty segment (`//`), a segment that is or decodes to `.` or `..`, a
//! segment holding `/` or `\` once decoded (`%2F`, `%5C`), or one that is
//! not UTF-8 once decoded. So the route whose access rule the host checks
//! is the route whose handler runs.

use percent_encoding::percent_decode_str;

/// A parsed route template such as `/students/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}` at the end: one or more segments, as API Gateway's greedy `{proxy+}`.
    Rest(String),
}

impl Template {
    /// Parses a template: `/`-separated literal segments, `{name}` parameters,
    /// and a greedy `{name+}` as the last segment.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        if !text.starts_with('/') {
            return Err("must start with '/'".into());
        }
        let mut segments = Vec::new();
        let mut names = Vec::new();
        let parts = split(text);
        for (i, &seg) in parts.iter().enumerate() {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                if i + 1 != parts.len() {
                    return Err(format!("the greedy parameter \"{{{name}+}}\" must be the last segment"));
                }
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || names.contains(&name) {
                    return Err(format!("bad parameter \"{{{name}+}}\""));
                }
                names.push(name);
                segments.push(Segment::Rest(name.to_owned()));
            } else if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad parameter \"{{{name}}}\": use letters, digits and '_'"));
                }
                if names.contains(&name) {
                    return Err(format!("parameter \"{name}\" appears twice"));
                }
                names.push(name);
                segments.push(Segment::Param(name.to_owned()));
            } else if seg.contains(['{', '}']) {
                return Err(format!("segment \"{seg}\" mixes text and a parameter"));
            } else {
                segments.push(Segment::Literal(seg.to_owned()));
            }
        }
        Ok(Template {
            text: text.to_owned(),
            segments,
        })
    }

    /// The template as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The parameters when the decoded `path_segments` match.
    fn matches(&self, path_segments: &[String]) -> Option<Vec<(String, String)>> {
        let greedy = matches!(self.segments.last(), Some(Segment::Rest(_)));
        let fits = if greedy {
            path_segments.len() >= self.segments.len()
        } else {
            path_segments.len() == self.segments.len()
        };
        if !fits {
            return None;
        }
        let mut params = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            let part = &path_segments[i];
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), part.clone())),
                Segment::Rest(name) => params.push((name.clone(), path_segments[i..].join("/"))),
            }
        }
        Some(params)
    }

    /// Literal segments win over parameters, and parameters over a greedy
    /// tail, earlier segments first.
    fn specificity(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Param(_) => 1,
                Segment::Rest(_) => 0,
            })
            .collect()
    }
}

/// Splits a template into segments; a trailing `/` is ignored.
fn split(path: &str) -> Vec<&str> {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

/// The raw (still percent-encoded) segments of a request path, or why the
/// path is refused (see the module documentation).
pub(crate) fn raw_segments(path: &str) -> Result<Vec<&str>, String> {
    let rest = path.strip_prefix('/').ok_or("the path must start with '/'")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<&str> = rest.split('/').collect();
    for segment in &raw {
        decode(segment)?;
    }
    Ok(raw)
}

fn decode(segment: &str) -> Result<String, String> {
    if segment.is_empty() {
        return Err("the path has an empty segment (\"//\")".into());
    }
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| format!("the path segment \"{segment}\" is not UTF-8 once decoded"))?;
    if decoded == "." || decoded == ".." {
        return Err(format!("the path segment \"{segment}\" is a relative step"));
    }
    if decoded.contains(['/', '\\']) {
        return Err(format!("the path segment \"{segment}\" holds a slash or backslash"));
    }
    Ok(decoded.into_owned())
}

/// The decoded segments of a request path, or why it is refused.
pub(crate) fn segments(path: &str) -> Result<Vec<String>, String> {
    raw_segments(path)?.into_iter().map(decode).collect()
}

/// The path below the first `depth` segments, as the component gets it:
/// the raw segments, a leading `/`, no trailing one.
pub(crate) fn below(path: &str, depth: usize) -> String {
    let raw = raw_segments(path).unwrap_or_default();
    format!("/{}", raw.get(depth..).unwrap_or_default().join("/"))
}

/// One routable entry: a full template (mount included) with its methods.
#[derive(Debug, Clone)]
pub(crate) struct Route<T> {
    /// The full template, mount included.
    pub template: Template,
    /// Upper-case methods it answers.
    pub methods: Vec<String>,
    /// What the caller attaches (which component, access rules...).
    pub target: T,
}

/// The result of matching a request.
#[derive(Debug)]
pub(crate) enum Match<'a, T> {
    /// The route and the path parameters.
    Found(&'a Route<T>, Vec<(String, String)>),
    /// The path exists but not for this method; the methods it allows.
    MethodNotAllowed(Vec<String>),
    /// No route has this path.
    NotFound,
    /// The path can be read more than one way; why.
    BadPath(String),
}

/// All routes of all components.
#[derive(Debug, Clone)]
pub(crate) struct Router<T> {
    routes: Vec<Route<T>>,
}

impl<T> Router<T> {
    /// Builds a router; two routes with the same template and a shared method
    /// are an error, since one of them could never be reached.
    pub(crate) fn new(mut routes: Vec<Route<T>>) -> Result<Router<T>, String> {
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                let same_shape = a.template.segments.len() == b.template.segments.len()
                    && a.template.segments.iter().zip(&b.template.segments).all(|(x, y)| match (x, y) {
                        (Segment::Literal(p), Segment::Literal(q)) => p == q,
                        (Segment::Param(_), Segment::Param(_)) | (Segment::Rest(_), Segment::Rest(_)) => true,
                        _ => false,
                    });
                if let Some(m) = a.methods.iter().find(|m| b.methods.contains(m)).filter(|_| same_shape) {
                    return Err(format!("routes \"{}\" and \"{}\" both serve {m}", a.template.text, b.template.text));
                }
            }
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        Ok(Router { routes })
    }

    /// Every route, most specific first.
    pub(crate) fn routes(&self) -> &[Route<T>] {
        &self.routes
    }

    /// Every method some route serves at `path`, sorted.
    pub(crate) fn methods_at(&self, path: &str) -> Vec<String> {
        let Ok(segments) = segments(path) else {
            return Vec::new();
        };
        let mut methods: Vec<String> = self
            .routes
            .iter()
            .filter(|r| r.template.matches(&segments).is_some())
            .flat_map(|r| r.methods.iter().cloned())
            .collect();
        methods.sort();
        methods.dedup();
        methods
    }

    /// Finds the route for `method` and `path` (the path without its query).
    pub(crate) fn find(&self, method: &str, path: &str) -> Match<'_, T> {
        let segments = match segments(path) {
            Ok(segments) => segments,
            Err(why) => return Match::BadPath(why),
        };
        let mut allowed: Vec<String> = Vec::new();
        for route in &self.routes {
            if let Some(params) = route.template.matches(&segments) {
                if route.methods.iter().any(|m| m == method) {
                    return Match::Found(route, params);
                }
                allowed.extend(route.methods.iter().cloned());
            }
        }
        if allowed.is_empty() {
            Match::NotFound
        } else {
            allowed.sort();
            allowed.dedup();
            Match::MethodNotAllowed(allowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(t: &str, methods: &[&str], target: u8) -> Route<u8> {
        Route {
            template: Template::parse(t).unwrap(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            target,
        }
    }

    fn router() -> Router<u8> {
        Router::new(vec![
            route("/students/{id}", &["GET", "PATCH"], 1),
            route("/students", &["GET", "POST"], 2),
            route("/students/search", &["GET"], 3),
            route("/", &["GET"], 4),
        ])
        .unwrap()
    }

    #[test]
    fn literal_segments_win_and_params_are_decoded() {
        let r = router();
        match r.find("GET", "/students/search") {
            Match::Found(route, params) => assert_eq!((route.target, params.len()), (3, 0)),
            other => panic!("{other:?}"),
        }
        match r.find("PATCH", "/students/a%20b/") {
            Match::Found(route, params) => {
                assert_eq!(route.target, 1);
                assert_eq!(params, [("id".to_string(), "a b".to_string())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.find("GET", "/"), Match::Found(Route { target: 4, .. }, _)));
    }

    #[test]
    fn a_greedy_tail_takes_the_rest_of_the_path_last() {
        let r = Router::new(vec![
            route("/files/{path+}", &["GET"], 1),
            route("/files/{id}", &["GET"], 2),
            route("/{proxy+}", &["GET"], 3),
        ])
        .unwrap();
        match r.find("GET", "/files/a/b%20c/d") {
            Match::Found(route, params) => assert_eq!((route.target, params), (1, vec![("path".to_string(), "a/b c/d".to_string())])),
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.find("GET", "/files/one"), Match::Found(Route { target: 2, .. }, _)));
        assert!(matches!(r.find("GET", "/anything/else"), Match::Found(Route { target: 3, .. }, _)));
        assert!(matches!(r.find("GET", "/"), Match::NotFound));
        assert!(Template::parse("/a/{rest+}/b").is_err());
    }

    #[test]
    fn tells_not_found_from_wrong_method() {
        let r = router();
        assert!(matches!(r.find("GET", "/teachers"), Match::NotFound));
        assert!(matches!(r.find("GET", "/students/1/extra"), Match::NotFound));
        match r.find("DELETE", "/students/1") {
            Match::MethodNotAllowed(m) => assert_eq!(m, ["GET", "PATCH"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_a_path_one_way_or_refuses_it() {
        let r = Router::new(vec![
            route("/admin/{id}", &["GET"], 1),
            route("/public/{id}", &["GET"], 2),
            route("/public/{id}/admin", &["GET"], 3),
            route("/files/{path+}", &["GET"], 4),
        ])
        .unwrap();
        for crossing in [
            "/public/..%2Fadmin/1",
            "/public/%2e%2e/admin/1",
            "/public/../admin/1",
            "/public/./x",
            "/public//admin",
            "/public/x%2Fy",
            "/public/x%5cy",
            "/public/x\\y",
            "/files/a/%2E%2E/b",
            "/files/a//b",
            "/public/%ff",
            "public/1",
        ] {
            assert!(matches!(r.find("GET", crossing), Match::BadPath(_)), "{crossing}");
            assert!(r.methods_at(crossing).is_empty(), "{crossing}");
        }
        // Literal segments match once decoded, the same as the SDK reads them.
        assert!(matches!(r.find("GET", "/%61dmin/1"), Match::Found(Route { target: 1, .. }, _)));
        assert!(matches!(
            r.find("GET", "/public/1/admin/"),
            Match::Found(Route { target: 3, .. }, _)
        ));
        assert_eq!(below("/public/a%20b/admin/", 1), "/a%20b/admin");
        assert_eq!(below("/public", 1), "/");
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn refuses_overlapping_routes_and_bad_templates() {
        assert!(Router::new(vec![route("/a/{x}", &["GET"], 1), route("/a/{y}", &["GET"], 2)]).is_err());
        assert!(Router::new(vec![route("/a/{x}", &["GET"], 1), route("/a/{y}", &["POST"], 2)]).is_ok());
        assert!(Template::parse("/a/{x}/{x}").is_err());
        assert!(Template::parse("/a/b{x}").is_err());
        assert!(Template::parse("a").is_err());
    }
}
