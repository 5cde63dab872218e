"""Routing inside a component: methods and path templates matched against the
path below the mount point, read exactly as the host reads it.

A path that could be read two ways (an empty segment, `.` or `..` even
encoded, an encoded `/` or `\\`, a segment that is not UTF-8 once decoded)
gets 400, so the handler that runs is the one whose access rule the host
checked. Literal segments win over `{name}` segments.
"""

from urllib.parse import unquote

from .errors import ApiError


def path_segments(path: str):
    """The decoded segments of a request path; ApiError 400 when refused."""
    if not path.startswith("/"):
        raise ApiError.bad_request("the path must start with '/'")
    rest = path[1:]
    if rest.endswith("/"):
        rest = rest[:-1]
    if not rest:
        return []
    segments = []
    for segment in rest.split("/"):
        if not segment:
            raise ApiError.bad_request('the path has an empty segment ("//")')
        try:
            decoded = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            raise ApiError.bad_request(f'the path segment "{segment}" is not UTF-8 once decoded') from None
        if decoded in (".", ".."):
            raise ApiError.bad_request(f'the path segment "{segment}" is a relative step')
        if "/" in decoded or "\\" in decoded:
            raise ApiError.bad_request(f'the path segment "{segment}" holds a slash or backslash')
        segments.append(decoded)
    return segments


class Router:
    """The routes of a component: `router.get("/notes/{id}", handler)`."""

    def __init__(self):
        self._routes = []

    def route(self, method: str, path: str, handler) -> "Router":
        segments = [s for s in path.split("/") if s]
        parsed = [
            ("param", s[1:-1]) if s.startswith("{") and s.endswith("}") else ("literal", s)
            for s in segments
        ]
        self._routes.append((method.upper(), parsed, handler))
        return self

    def get(self, path, handler):
        return self.route("GET", path, handler)

    def post(self, path, handler):
        return self.route("POST", path, handler)

    def put(self, path, handler):
        return self.route("PUT", path, handler)

    def patch(self, path, handler):
        return self.route("PATCH", path, handler)

    def delete(self, path, handler):
        return self.route("DELETE", path, handler)

    def find(self, method: str, path: str):
        """(handler, params) for the request; raises 404, 405 (with the
        allowed methods in `allow`) or 400."""
        parts = path_segments(path)
        matching = []
        for route_method, segments, handler in self._routes:
            params = _bind(segments, parts)
            if params is not None:
                matching.append((route_method, segments, handler, params))
        wanted = "GET" if method.upper() == "HEAD" else method.upper()
        candidates = [m for m in matching if m[0] == wanted]
        if candidates:
            best = min(candidates, key=lambda m: [kind == "param" for kind, _ in m[1]])
            return best[2], best[3]
        if not matching:
            raise ApiError.not_found(f"No route for {method} {path}")
        error = ApiError.method_not_allowed(f"{method} is not allowed on {path}")
        error.allow = ", ".join(sorted({m[0] for m in matching}))
        raise error


def _bind(segments, parts):
    if len(segments) != len(parts):
        return None
    params = {}
    for (kind, value), part in zip(segments, parts):
        if kind == "literal":
            if value != part:
                return None
        else:
            params[value] = part
    return params
