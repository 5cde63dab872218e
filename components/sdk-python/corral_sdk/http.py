"""A small blocking HTTP client over `wasi:http/outgoing-handler`, the same
as the Rust SDK's `http` module.

The host sends a request only to a host the component's manifest entry
grants (`hosts = [...]`). Errors are ApiErrors: the time limit passed 504
`gateway_timeout`, the upstream unreachable or its answer unusable 502
`bad_gateway`, the host not granted 500 `not_granted`.

    from corral_sdk import http
    reply = http.get("https://api.example.com/v1/things", headers={"authorization": "apikey s"})
    things = reply.json()        # not JSON: 502
"""

import json as _json

from componentize_py_types import Err
from wit_world.imports import monotonic_clock, outgoing_handler, poll
from wit_world.imports import streams
from wit_world.imports import wasi_http_types as t

from .errors import ApiError

# The time limit of a request that sets none, in milliseconds.
DEFAULT_TIMEOUT_MS = 10_000
# The largest response body read, in bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024

_METHODS = {
    "GET": t.Method_Get,
    "HEAD": t.Method_Head,
    "POST": t.Method_Post,
    "PUT": t.Method_Put,
    "DELETE": t.Method_Delete,
    "PATCH": t.Method_Patch,
    "OPTIONS": t.Method_Options,
}

_TIMEOUTS = (t.ErrorCode_ConnectionTimeout, t.ErrorCode_ConnectionReadTimeout, t.ErrorCode_HttpResponseTimeout, t.ErrorCode_DnsTimeout)


class Reply:
    """An answer, read whole: `status`, `headers` (lower-case names, bytes
    values) and `body` bytes."""

    def __init__(self, url: str, status: int, headers, body: bytes):
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str):
        """The first value of header `name` as text, or None."""
        lowered = name.lower()
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == lowered), None)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body as JSON; a body that is not is a bad answer (502)."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise _failed(f"{_host_of(self.url)} answered {self.status} with a body that is not the expected JSON: {e}") from None


def get(url: str, headers=None, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Reply:
    """A GET of `url` (`http://` or `https://`)."""
    return request("GET", url, headers=headers, timeout_ms=timeout_ms)


def request(method: str, url: str, body=None, headers=None, json=None, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Reply:
    """Sends a request and reads the whole answer, whatever its status.
    `body` is bytes or text; `json` a value sent as JSON with
    `content-type: application/json`. `headers` is a dict or pairs."""
    pairs = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])
    if json is not None:
        body = _json.dumps(json, separators=(",", ":"))
        pairs.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    deadline = monotonic_clock.now() + timeout_ms * 1_000_000
    scheme, authority, path = _split_url(url)

    def bad(what):
        return _failed(f"cannot build the request to {url}: {what}")

    try:
        fields = t.Fields.from_list([(k, v.encode() if isinstance(v, str) else v) for k, v in pairs])
    except Err as e:
        raise bad(f"header: {e.value!r}") from None
    outgoing = t.OutgoingRequest(fields)
    method = method.upper()
    for setter, value, what in (
        (outgoing.set_method, _METHODS[method]() if method in _METHODS else t.Method_Other(method), "method"),
        (outgoing.set_scheme, scheme, "scheme"),
        (outgoing.set_authority, authority, "host"),
        (outgoing.set_path_with_query, path, "path"),
    ):
        try:
            setter(value)
        except Err:
            raise bad(what) from None
    options = t.RequestOptions()
    limit = timeout_ms * 1_000_000
    # The host also cuts these to what is left of the component's own time.
    options.set_connect_timeout(limit)
    options.set_first_byte_timeout(limit)
    options.set_between_bytes_timeout(limit)
    outgoing_body = outgoing.body()
    try:
        future = outgoing_handler.handle(outgoing, options)
    except Err as e:
        raise _error(url, e.value) from None
    with future:
        _send_body(url, future, deadline, outgoing_body, body or b"")
        response = _wait(url, future, deadline)
    with response:
        status, response_headers = response.status(), response.headers().entries()
        return Reply(url, status, response_headers, _read(url, response, deadline))


def _send_body(url: str, future, deadline: int, outgoing_body, body: bytes):
    try:
        with outgoing_body.write() as stream:
            # `blocking-write-and-flush` takes at most 4096 bytes at a time.
            for start in range(0, len(body), 4096):
                stream.blocking_write_and_flush(body[start : start + 4096])
        t.OutgoingBody.finish(outgoing_body, None)
    except Err as e:
        # A refused or failed request closes its body early: its own error says why.
        with future.subscribe() as ready, monotonic_clock.subscribe_instant(deadline) as timer:
            poll.poll([ready, timer])
        outcome = future.get()
        if outcome is not None and not isinstance(outcome, Err) and isinstance(outcome.value, Err):
            raise _error(url, outcome.value.value) from None
        raise _failed(f"{_host_of(url)} could not be sent the request body: {e.value!r}") from None


def _block(pollable, deadline: int, url: str):
    """Waits until `pollable` is ready; 504 when the deadline comes first."""
    with monotonic_clock.subscribe_instant(deadline) as timer:
        poll.poll([pollable, timer])
    if not pollable.ready():
        raise ApiError(504, "gateway_timeout", f"{_host_of(url)} did not answer in time")


def _wait(url: str, future, deadline: int):
    with future.subscribe() as pollable:
        _block(pollable, deadline, url)
    outcome = future.get()
    if outcome is None:
        raise ApiError(504, "gateway_timeout", f"{_host_of(url)} did not answer in time")
    if isinstance(outcome, Err):
        raise _failed("the response was already taken")
    if isinstance(outcome.value, Err):
        raise _error(url, outcome.value.value)
    return outcome.value.value


def _read(url: str, response, deadline: int) -> bytes:
    body = response.consume()
    buffer = bytearray()
    with body, body.stream() as stream:
        while True:
            try:
                chunk = stream.read(64 * 1024)
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    return bytes(buffer)
                why = repr(t.http_error_code(e.value.value) or e.value.value.to_debug_string())
                message = f"{_host_of(url)} failed while sending its answer: {why}"
                if "Timeout" in why:
                    raise ApiError(504, "gateway_timeout", message) from None
                raise _failed(message) from None
            if chunk:
                buffer += chunk
                if len(buffer) > MAX_BODY_BYTES:
                    raise _failed(f"{_host_of(url)} answered more than {MAX_BODY_BYTES} bytes")
            else:
                with stream.subscribe() as pollable:
                    _block(pollable, deadline, url)


def _error(url: str, code) -> ApiError:
    host = _host_of(url)
    if isinstance(code, _TIMEOUTS):
        return ApiError(504, "gateway_timeout", f"{host} did not answer in time")
    if isinstance(code, t.ErrorCode_HttpRequestDenied):
        return ApiError.not_granted(f"the manifest does not grant the host {host}")
    if isinstance(code, t.ErrorCode_DestinationIpProhibited):
        return ApiError.not_granted(f"the host {host} resolves to an address the component may not reach")
    if isinstance(code, t.ErrorCode_ConnectionLimitReached):
        return _failed(f"{host} was not asked: the component has as many requests in flight as it may")
    return _failed(f"{host} could not be reached: {_name(code)}")


def _name(code) -> str:
    """The error code as the Rust SDK prints it, e.g. `ErrorCode::ConnectionRefused`."""
    name = "ErrorCode::" + type(code).__name__.removeprefix("ErrorCode_")
    value = getattr(code, "value", None)
    return name if value is None else f"{name}({value!r})"


def _failed(message: str) -> ApiError:
    return ApiError(502, "bad_gateway", message)


def _split_url(url: str):
    scheme, sep, rest = url.partition("://")
    schemes = {"https": t.Scheme_Https(), "http": t.Scheme_Http()}
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:] or "/"
    if not sep or scheme not in schemes or not authority or path.startswith("?"):
        raise _failed(f"not an http(s) URL: {url}")
    return schemes[scheme], authority, path


def _host_of(url: str) -> str:
    rest = url.partition("://")[2] or url
    for cut in "/?":
        rest = rest.split(cut, 1)[0]
    return rest
