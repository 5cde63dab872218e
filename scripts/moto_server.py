"""moto's server, with DynamoDB's conditional writes made atomic.

DynamoDB applies a conditional write (PutItem with attribute_not_exists, UpdateItem with a
condition, TransactWriteItems) atomically: of two racing writers exactly one succeeds. moto's
threaded server checks the condition and writes the item in two steps without a lock, so two
concurrent requests can both pass the check. corral relies on the real behaviour (an event id is
stored once, one host takes a stream lease), so the tests run moto with its write path behind
one lock. Everything else is moto's own `moto_server`.
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_WRITES = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _WRITES:
            return method(*args, **kwargs)

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _atomic(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
