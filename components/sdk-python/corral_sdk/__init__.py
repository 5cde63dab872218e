"""corral's guest SDK for Python components, built with componentize-py
against wit/corral.wit (world `service`). It mirrors the Rust SDK: a router,
a request context with typed parameters and declared keys, `ApiError`, the
generic record handlers, SQL rows as dicts and transactions as context
managers, the host's cache, queue, config, log and identity, and an outbound
HTTP client (`http`)."""

from .context import Ctx
from .errors import ApiError
from .host import cache, config, log, queue
from .records import Records, split_list
from .responses import empty, json_response, no_content, text
from .router import Router
from .service import Service
from .values import Fields
from . import http, sql

__all__ = [
    "ApiError",
    "Ctx",
    "Fields",
    "Records",
    "Router",
    "Service",
    "cache",
    "config",
    "empty",
    "http",
    "json_response",
    "log",
    "no_content",
    "queue",
    "split_list",
    "sql",
    "text",
]
