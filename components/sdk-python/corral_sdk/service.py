"""The shape of a component: its `init`, its routes and its events, exported
to the host as the `handler` interface.

    class Notes(Service):
        def routes(self):
            return Router().get("/notes", lambda ctx: notes().list(ctx))

    Handler = Notes.handler()   # in the app module: what componentize-py exports
"""

import json
import traceback

from wit_world import exports
from wit_world.exports.handler import Request

from .context import Ctx
from .errors import ApiError
from .host import log
from .responses import json_response


class Service:
    """A corral component. Only `routes` is required."""

    def init(self):
        """Runs once when the host loads this version, before any request."""

    def routes(self):
        raise NotImplementedError

    def events(self, events) -> list:
        """Handles a batch; returns the ids of the events that failed. By default
        every event fails (and is logged), so none is silently dropped."""
        ids = [event.id for event in events]
        log.warn(f"this component handles no events; failing {len(ids)}: {', '.join(ids)}")
        return ids

    @classmethod
    def handler(cls):
        """The class componentize-py exports for this service."""
        service = cls()
        warm_up(service)

        class Handler(exports.Handler):
            def init(self) -> None:
                service.init()

            def handle_request(self, request):
                return answer(service, request)

            def handle_events(self, events):
                return service.events(events)

        return Handler


def answer(service, request):
    """The handler's response, or the error it raised as the JSON error shape.
    An exception that is not an ApiError is a 500; its traceback goes to the
    log only."""
    try:
        handler, params = service.routes().find(request.method, request.path)
        return handler(Ctx(request, params))
    except ApiError as error:
        return error_response(request, error)
    except Exception:
        log.error(f"unhandled exception in {request.method} {request.path}:\n{traceback.format_exc()}")
        return error_response(request, ApiError.internal("The component failed while handling the request"))


def error_response(request, error: ApiError):
    if error.status >= 500:
        log.error(f"{error.status} {error.code}: {error.message}")
    headers = [("allow", error.allow)] if getattr(error, "allow", None) else []
    return json_response(error.status, {"error": {"code": error.code, "message": error.message, "request_id": request.request_id}}, headers)


# How often `warm_up` runs each step: enough for the interpreter to
# specialize the bytecode it runs.
WARM_UP_ROUNDS = 8


def warm_up(service):
    """Runs the pure-Python steps of a request while componentize-py
    pre-initializes the component (this module is imported at build time),
    so the snapshot every instance starts from already holds what they load,
    cache and specialize on first use: each route matched, a context built
    and read, a JSON record parsed and answered, an error answered. Nothing
    here calls the host, which is not there at build time."""
    try:
        router = service.routes()
    except Exception:
        return
    record = {"uid": "warm", "created_at": "2026-01-01T00:00:00Z", "title": "warm", "tags": ["a"], "n": 1, "x": None}
    for _ in range(WARM_UP_ROUNDS):
        for method, segments, _handler in getattr(router, "_routes", ()):
            params = {value: "warm" for kind, value in segments if kind == "param"}
            path = "/" + "/".join("warm" if kind == "param" else value for kind, value in segments)
            request = Request(method, path, "", path, list(params.items()), [("limit", "5")], [], b"{}", "warm-up")
            try:
                router.find(method, path)
                ctx = Ctx(request, params)
                for name in params:
                    ctx.param(name)
                ctx.query("limit", int)
                ctx.body()
            except Exception:
                pass
        json_response(200, json.loads(json.dumps(record)), [("x-cache", "hit")])
        error_response(request, ApiError.not_found("warm"))
