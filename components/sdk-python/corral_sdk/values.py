"""Typed reading of request values, as the Rust SDK reads them.

A string holding a JSON value (`"5"`, `"true"`) counts as that value, since
query strings and form-minded clients send text. A boolean also takes
Python's `strtobool` forms and the numbers 0 and 1.
"""

import json

from .errors import ApiError

_TRUE = {"y", "yes", "t", "true", "on", "1"}
_FALSE = {"n", "no", "f", "false", "off", "0"}
_NOTHING = object()


def _describe(kind) -> str:
    return {
        int: "an integer",
        float: "a number",
        bool: "a boolean (true or false)",
        str: "a string",
    }.get(kind, "of the expected type")


def _fits(value, kind):
    """The value as `kind`, or _NOTHING when it is not one."""
    if kind is None or kind is object:
        return value
    if kind is bool:
        return value if isinstance(value, bool) else _NOTHING
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NOTHING
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return _NOTHING
    return value if isinstance(value, kind) else _NOTHING


def truth(value):
    """The boolean that strtobool reads in `value`, or None."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return None


def typed(name: str, value, kind):
    """`value` as `kind` (int, float, bool, str, dict, list or object); 400
    naming `name` when it is not one."""
    found = _fits(value, kind)
    if found is _NOTHING and isinstance(value, str):
        try:
            found = _fits(json.loads(value), kind)
        except ValueError:
            found = _NOTHING
    if found is _NOTHING and kind is bool:
        flag = truth(value)
        found = _NOTHING if flag is None else flag
    if found is _NOTHING:
        raise ApiError.bad_request(f"'{name}' must be {_describe(kind)}")
    return found


class Fields:
    """The declared keys of a request's input."""

    def __init__(self, values: dict):
        self._values = values

    @classmethod
    def declared(cls, given: dict, required, optional) -> "Fields":
        """Keeps the declared keys; 400 "Missing key(s): a, b" (in declared
        order) when required keys are absent or null."""
        missing = [k for k in required if given.get(k) is None]
        if missing:
            raise ApiError.bad_request("Missing key(s): " + ", ".join(missing))
        return cls({k: given[k] for k in [*required, *optional] if k in given})

    def get(self, key: str, kind=object):
        """The value of `key` as `kind`; 400 naming it when absent, null or of another type."""
        value = self._values.get(key)
        if value is None:
            raise ApiError.bad_request(f"Missing key(s): {key}")
        return typed(key, value, kind)

    def opt(self, key: str, kind=object):
        """The value of `key` as `kind`, or None when absent or null."""
        value = self._values.get(key)
        return None if value is None else typed(key, value, kind)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def as_dict(self) -> dict:
        return dict(self._values)
