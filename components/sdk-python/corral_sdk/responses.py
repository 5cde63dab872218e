"""Response builders."""

import json

from wit_world.exports.handler import Response


def json_response(status: int, body, headers=()) -> Response:
    """A JSON response."""
    return Response(
        status=status,
        headers=[("content-type", "application/json"), *headers],
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
    )


def text(status: int, body: str) -> Response:
    """A plain-text UTF-8 response."""
    return Response(status=status, headers=[("content-type", "text/plain; charset=utf-8")], body=body.encode())


def empty(status: int) -> Response:
    """A response with no body."""
    return Response(status=status, headers=[], body=b"")


def no_content() -> Response:
    """204 with no body."""
    return empty(204)
