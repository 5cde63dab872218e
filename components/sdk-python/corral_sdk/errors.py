"""The error every handler raises, and its HTTP form.

An `ApiError` answers as `{"error": {"code", "message", "request_id"}}`
with its status, the same shape and statuses as the Rust SDK's.
"""

import json

from componentize_py_types import Err


class ApiError(Exception):
    """An HTTP error: a status, a snake_case code and a message for the client."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def bad_request(cls, message: str) -> "ApiError":
        return cls(400, "bad_request", message)

    @classmethod
    def unauthorized(cls, message: str) -> "ApiError":
        return cls(401, "unauthorized", message)

    @classmethod
    def forbidden(cls, message: str) -> "ApiError":
        return cls(403, "forbidden", message)

    @classmethod
    def not_found(cls, message: str) -> "ApiError":
        return cls(404, "not_found", message)

    @classmethod
    def method_not_allowed(cls, message: str) -> "ApiError":
        return cls(405, "method_not_allowed", message)

    @classmethod
    def conflict(cls, message: str) -> "ApiError":
        return cls(409, "conflict", message)

    @classmethod
    def internal(cls, message: str) -> "ApiError":
        return cls(500, "internal", message)

    @classmethod
    def unavailable(cls, message: str) -> "ApiError":
        return cls(503, "unavailable", message)

    @classmethod
    def not_granted(cls, message: str) -> "ApiError":
        """The manifest lacks a grant the component needs: a deployment fault."""
        return cls(500, "not_granted", message)

    def body(self, request_id: str) -> bytes:
        return json.dumps(
            {"error": {"code": self.code, "message": self.message, "request_id": request_id}}
        ).encode()


# The host's error variants (wit `types.error`) and what they answer.
_HOST_ERRORS = {
    "Error_NotGranted": ApiError.not_granted,
    "Error_NotFound": ApiError.not_found,
    "Error_Conflict": ApiError.conflict,
    "Error_Invalid": ApiError.bad_request,
    "Error_Unauthenticated": ApiError.unauthorized,
    "Error_Forbidden": ApiError.forbidden,
    "Error_Unavailable": ApiError.unavailable,
}


def from_host(error) -> ApiError:
    """The ApiError for a host error raised by a binding (`Err(variant)`)."""
    variant = getattr(error, "value", error)
    make = _HOST_ERRORS.get(type(variant).__name__)
    if make is None:
        return ApiError.internal(f"the host failed: {variant!r}")
    return make(str(getattr(variant, "value", "")))


def host_call(call, *args):
    """Runs a host call, raising its error as an ApiError."""
    try:
        return call(*args)
    except Err as error:
        raise from_host(error) from None
