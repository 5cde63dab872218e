"""Parameterized SQL through the host, with rows as dicts.

    rows = sql.query("SELECT id, name FROM advisors WHERE id = ?", [advisor_id])
    with sql.transaction() as tx:
        tx.execute("UPDATE ...", [...])
        tx.commit()    # leaving the block without commit rolls back
"""

import json

from wit_world.imports import db

from .errors import ApiError, host_call


def to_db_value(value):
    """The SQL value for a Python scalar; 400 for lists and dicts."""
    if value is None:
        return db.Value_Null()
    if isinstance(value, bool):
        return db.Value_Boolean(value)
    if isinstance(value, int):
        return db.Value_Integer(value)
    if isinstance(value, float):
        return db.Value_Float(value)
    if isinstance(value, str):
        return db.Value_Text(value)
    if isinstance(value, (bytes, bytearray)):
        return db.Value_Blob(bytes(value))
    raise ApiError.bad_request("A SQL parameter must be null, a boolean, a number or a string")


def from_db_value(value):
    """The Python value of a SQL value: a blob becomes a list of byte values."""
    if isinstance(value, db.Value_Null):
        return None
    if isinstance(value, db.Value_Blob):
        return list(value.value)
    return value.value


def _rows(rows) -> list:
    return [dict(zip(rows.columns, map(from_db_value, row))) for row in rows.rows]


def _params(params):
    return [to_db_value(p) for p in params]


def query(statement: str, params=()) -> list:
    """The rows of a statement, each a dict keyed by column name in column order."""
    return _rows(host_call(db.query, statement, _params(params)))


def query_one(statement: str, params=()):
    """The first row of a statement, or None."""
    rows = query(statement, params)
    return rows[0] if rows else None


def execute(statement: str, params=()) -> int:
    """Runs a statement; the number of rows it changed."""
    return host_call(db.execute, statement, _params(params))


def dialect() -> str:
    """`sqlite` or `postgres`."""
    return "sqlite" if db.dialect() == db.SqlDialect.SQLITE else "postgres"


class Transaction:
    """A transaction; leaving its `with` block without `commit` rolls it back."""

    def __init__(self):
        self._tx = host_call(db.begin)

    def query(self, statement: str, params=()) -> list:
        return _rows(host_call(self._tx.query, statement, _params(params)))

    def query_one(self, statement: str, params=()):
        rows = self.query(statement, params)
        return rows[0] if rows else None

    def execute(self, statement: str, params=()) -> int:
        return host_call(self._tx.execute, statement, _params(params))

    def commit(self):
        tx, self._tx = self._tx, None
        host_call(db.Transaction.commit, tx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._tx is not None:
            tx, self._tx = self._tx, None
            host_call(db.Transaction.rollback, tx)
        return False


def transaction() -> Transaction:
    return Transaction()


def parse_record(text: str) -> dict:
    """A record as the host returns it; a host fault (500) when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError.internal("The host returned a record that is not valid JSON") from None
