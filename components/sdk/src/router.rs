//! Routing inside a component: a table of methods and path templates that
//! reads like the seed's route table, matched against the path below the
//! component's mount point, so the component does not care where it is
//! mounted.
//!
//! A path is read exactly as the host's router reads it: split on `/`
//! after the leading one, a single trailing `/` ignored, each segment
//! percent-decoded before it is compared or bound. A path that could be
//! read two ways (an empty segment, `.` or `..` even encoded, `%2F` or `%5C`,
//! a segment that is not UTF-8 once decoded) gets 400, so the handler that
//! runs is the one whose access rule the host checked.

use crate::bindings::exports::corral::host::handler::{Request, Response};
use crate::{ApiError, Ctx, ResponseExt};

/// A request handler: every failure is an [`ApiError`] with its status.
pub type Handler = fn(&Ctx) -> Result<Response, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

struct Route {
    method: String,
    segments: Vec<Segment>,
    handler: Handler,
}

/// The routes of a component.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// The segments of a route template: `/a/b/` and `/a/b` are the same.
fn template_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// The decoded segments of a request path, or why it is refused.
pub fn path_segments(path: &str) -> Result<Vec<String>, String> {
    let rest = path
        .strip_prefix('/')
        .ok_or("the path must start with '/'")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|segment| {
            if segment.is_empty() {
                return Err("the path has an empty segment (\"//\")".to_owned());
            }
            let decoded = percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map_err(|_| format!("the path segment \"{segment}\" is not UTF-8 once decoded"))?;
            if decoded == "." || decoded == ".." {
                return Err(format!("the path segment \"{segment}\" is a relative step"));
            }
            if decoded.contains(['/', '\\']) {
                return Err(format!(
                    "the path segment \"{segment}\" holds a slash or backslash"
                ));
            }
            Ok(decoded.into_owned())
        })
        .collect()
}

impl Router {
    /// An empty route table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `method` on `path` to `handler`. A `{name}` segment matches any
    /// one segment and is read with [`Ctx::param`].
    pub fn route(mut self, method: &str, path: &str, handler: Handler) -> Self {
        let segments = template_segments(path)
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Literal(segment.to_owned()),
                },
            )
            .collect();
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            segments,
            handler,
        });
        self
    }

    /// Routes GET.
    pub fn get(self, path: &str, handler: Handler) -> Self {
        self.route("GET", path, handler)
    }

    /// Routes POST.
    pub fn post(self, path: &str, handler: Handler) -> Self {
        self.route("POST", path, handler)
    }

    /// Routes PUT.
    pub fn put(self, path: &str, handler: Handler) -> Self {
        self.route("PUT", path, handler)
    }

    /// Routes PATCH.
    pub fn patch(self, path: &str, handler: Handler) -> Self {
        self.route("PATCH", path, handler)
    }

    /// Routes DELETE.
    pub fn delete(self, path: &str, handler: Handler) -> Self {
        self.route("DELETE", path, handler)
    }

    /// Answers `request`: the matching handler's response, or the JSON error
    /// it returned; 404 when no route has the path, 405 (with `allow`) when
    /// routes have the path but not the method.
    pub fn handle(&self, request: Request) -> Response {
        let outcome = match self.find(&request.method, &request.path) {
            Found::Route(route, params) => (route.handler)(&Ctx::new(&request, params)),
            Found::OtherMethods(allow) => {
                let message = format!("{} is not allowed on {}", request.method, request.path);
                return ApiError::method_not_allowed(message)
                    .to_response(&request.request_id)
                    .with_header("allow", allow.join(", "));
            }
            Found::Nothing => Err(ApiError::not_found(format!(
                "No route for {} {}",
                request.method, request.path
            ))),
            Found::BadPath(why) => Err(ApiError::bad_request(why)),
        };
        outcome.unwrap_or_else(|error| crate::error_response(&request, &error))
    }

    /// The best route for `method` on `path`: where several templates match,
    /// literal segments win over `{name}` ones, earliest segment first.
    fn find(&self, method: &str, path: &str) -> Found<'_> {
        let parts = match path_segments(path) {
            Ok(parts) => parts,
            Err(why) => return Found::BadPath(why),
        };
        let matching: Vec<(&Route, Vec<(String, String)>)> = self
            .routes
            .iter()
            .filter_map(|route| Some((route, bind(&route.segments, &parts)?)))
            .collect();
        let method = if method.eq_ignore_ascii_case("HEAD") {
            "GET"
        } else {
            method
        };
        let best = matching
            .iter()
            .filter(|(route, _)| route.method.eq_ignore_ascii_case(method))
            .min_by_key(|(route, _)| {
                route
                    .segments
                    .iter()
                    .map(|s| matches!(s, Segment::Param(_)))
                    .collect::<Vec<_>>()
            });
        match best {
            Some((route, params)) => Found::Route(route, params.clone()),
            None if matching.is_empty() => Found::Nothing,
            None => {
                let mut allow: Vec<&str> = matching
                    .iter()
                    .map(|(route, _)| route.method.as_str())
                    .collect();
                allow.sort_unstable();
                allow.dedup();
                Found::OtherMethods(allow)
            }
        }
    }
}

enum Found<'a> {
    Route(&'a Route, Vec<(String, String)>),
    OtherMethods(Vec<&'a str>),
    Nothing,
    BadPath(String),
}

/// The `{name}` values when `segments` match the decoded `parts`.
fn bind(segments: &[Segment], parts: &[String]) -> Option<Vec<(String, String)>> {
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(literal) if literal == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => params.push((name.clone(), part.clone())),
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn named(ctx: &Ctx) -> Result<Response, ApiError> {
        Ok(json(
            200,
            &serde_json::json!({"route": "named", "id": ctx.param::<String>("id")?}),
        ))
    }

    fn literal(_: &Ctx) -> Result<Response, ApiError> {
        Ok(json(200, &serde_json::json!({"route": "literal"})))
    }

    fn failing(_: &Ctx) -> Result<Response, ApiError> {
        Err(ApiError::conflict("taken"))
    }

    fn request(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            mount: "/m".into(),
            route: String::new(),
            params: Vec::new(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            request_id: "r".into(),
        }
    }

    fn router() -> Router {
        Router::new()
            .get("/items/{id}", named)
            .get("/items/special", literal)
            .post("/items", failing)
            .delete("/items/{id}", named)
    }

    fn body(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn literal_segments_win_and_params_are_decoded() {
        let router = router();
        assert_eq!(
            body(&router.handle(request("GET", "/items/special")))["route"],
            "literal"
        );
        let named = router.handle(request("GET", "/items/a%20b/"));
        assert_eq!(
            body(&named),
            serde_json::json!({"route": "named", "id": "a b"})
        );
    }

    #[test]
    fn reads_a_path_as_the_host_does() {
        let router = router();
        for crossing in [
            "/items/..%2Fspecial",
            "/items/%2e%2e",
            "/items/./special",
            "/items//special",
            "/items/a%2Fb",
            "/items/a%5Cb",
            "/items/%ff",
        ] {
            let refused = router.handle(request("GET", crossing));
            assert_eq!(
                (refused.status, body(&refused)["error"]["code"].as_str()),
                (400, Some("bad_request")),
                "{crossing}"
            );
        }
        assert_eq!(
            body(&router.handle(request("GET", "/items/%73pecial")))["route"],
            "literal"
        );
    }

    #[test]
    fn unknown_paths_and_methods() {
        let router = router();
        let missing = router.handle(request("GET", "/nothing"));
        assert_eq!(missing.status, 404);
        let wrong = router.handle(request("PUT", "/items/1"));
        assert_eq!(wrong.status, 405);
        assert!(
            wrong
                .headers
                .contains(&("allow".into(), "DELETE, GET".into()))
        );
        let failed = router.handle(request("POST", "/items"));
        assert_eq!(
            (failed.status, body(&failed)["error"]["code"].as_str()),
            (409, Some("conflict"))
        );
    }
}
