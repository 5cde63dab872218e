"""What a handler sees of its request: typed path and query parameters, the
body and its declared keys, and the verified caller."""

import json

from wit_world.imports import auth

from .errors import ApiError, host_call
from .values import Fields, typed


class Ctx:
    """One request and the parameters its route bound."""

    def __init__(self, request, params):
        self.request = request
        self._params = dict(request.params)
        self._params.update(params)

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def method(self) -> str:
        return self.request.method

    def header(self, name: str):
        """The first header called `name`, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.request.headers if k.lower() == lowered), None)

    def param(self, name: str, kind=str):
        """The route's `{name}` segment as `kind`; 400 naming it when it does not parse."""
        if name not in self._params:
            raise ApiError.internal(f"the route has no parameter '{name}'")
        raw = self._params[name]
        if kind is str:
            return raw
        try:
            return typed(name, raw, kind)
        except ApiError:
            raise ApiError.bad_request(f"Invalid '{name}': {json.dumps(raw)}") from None

    def query(self, name: str, kind=str):
        """The first query parameter `name` as `kind`, or None when absent."""
        raw = next((v for k, v in self.request.query if k == name), None)
        return None if raw is None else typed(name, raw, kind)

    def query_pairs(self):
        """Every query parameter, in order."""
        return list(self.request.query)

    def json_body(self):
        """The body parsed as JSON; 400 "Malformed body" when it is not JSON."""
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError.bad_request("Malformed body") from None

    def json_object(self) -> dict:
        """The body as a JSON object; 400 when it is not one."""
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError.bad_request("The body must be a JSON object")
        return body

    def body(self) -> dict:
        """The body as a JSON object; an empty body is an empty object."""
        if not self.request.body.strip():
            return {}
        return self.json_object()

    def body_keys(self, required=(), optional=()) -> Fields:
        """The body's declared keys: missing ones are 400 "Missing key(s): a, b"."""
        return Fields.declared(self.body(), required, optional)

    def query_keys(self, required=(), optional=()) -> Fields:
        """The query string's declared keys (the first value of each)."""
        return Fields.declared(self._query_map(), required, optional)

    def input_keys(self, required=(), optional=()) -> Fields:
        """The declared keys from the query string and the body; the body wins."""
        given = self._query_map()
        given.update(self.body())
        return Fields.declared(given, required, optional)

    def _query_map(self) -> dict:
        given = {}
        for name, value in self.request.query:
            given.setdefault(name, value)
        return given

    def caller(self):
        """The verified caller (subject, username, groups, claims), or None."""
        return auth.caller()

    def require_caller(self):
        """The verified caller; 401 without one."""
        caller = self.caller()
        if caller is None:
            raise ApiError.unauthorized("This request needs a signed-in caller")
        return caller

    def require_group(self, group: str):
        """The caller when in `group`; 401 without a caller, 403 outside the group."""
        return host_call(auth.require_group, group)
