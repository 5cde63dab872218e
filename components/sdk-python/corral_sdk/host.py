"""The host's cache, queue, config and log, with host errors raised as
ApiError (not granted 500, invalid 400, unavailable 503, ...)."""

from wit_world.imports import cache as _cache
from wit_world.imports import config as _config
from wit_world.imports import log as _log
from wit_world.imports import queue as _queue

from .errors import host_call


class cache:
    """Named key-value stores (DynamoDB on AWS); values are bytes."""

    @staticmethod
    def get(store: str, key: str):
        return host_call(_cache.get, store, key)

    @staticmethod
    def get_many(store: str, keys) -> dict:
        return dict(host_call(_cache.get_many, store, list(keys)))

    @staticmethod
    def set(store: str, key: str, value: bytes, ttl_seconds=None):
        host_call(_cache.set, store, key, value, ttl_seconds)

    @staticmethod
    def add(store: str, key: str, value: bytes, ttl_seconds=None) -> bool:
        return host_call(_cache.add, store, key, value, ttl_seconds)

    @staticmethod
    def set_if(store: str, key: str, value: bytes, expected, ttl_seconds=None) -> bool:
        """Stores `value` only when the current value is `expected` (None:
        absent); False when another write got there first."""
        return host_call(_cache.set_if, store, key, value, expected, ttl_seconds)

    @staticmethod
    def delete(store: str, key: str):
        host_call(_cache.delete, store, key)


class queue:
    """Durable named queues (SQS on AWS)."""

    @staticmethod
    def send(name: str, body: str, attributes=(), group_id=None, dedup_id=None, delay_seconds=0) -> str:
        message = _queue.Message(
            body=body,
            attributes=list(attributes),
            group_id=group_id,
            dedup_id=dedup_id,
            delay_seconds=delay_seconds,
        )
        return host_call(_queue.send, name, message)


class config:
    """The component's configuration from the manifest (SSM on AWS)."""

    @staticmethod
    def get(key: str):
        return host_call(_config.get, key)


class log:
    """Lines in the host's log, with the component and request id."""

    @staticmethod
    def debug(message: str):
        _log.log(_log.Level.DEBUG, message)

    @staticmethod
    def info(message: str):
        _log.log(_log.Level.INFO, message)

    @staticmethod
    def warn(message: str):
        _log.log(_log.Level.WARN, message)

    @staticmethod
    def error(message: str):
        _log.log(_log.Level.ERROR, message)
