"""Generic handlers for a resource kept in one records table: Pyverless's
create / retrieve / update / delete / list handlers, as a builder.

Statuses: create 201 (the stored record, with `location`), retrieve and
update 200, delete 204 without a body, list 200 `{"items", "next"}`;
unknown uid 404; undeclared or missing keys 400. With `pyverless=True`,
create answers the new uid and list a bare array paged by `offset` and
`limit`, as Pyverless did.
"""

import json

from wit_world.imports import db

from .errors import ApiError, host_call
from .responses import json_response, no_content
from .sql import parse_record

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000
_SKIP_BATCH = 1000

AUDIT_FIELDS = ("uid", "created_at", "last_updated_at", "creator_uid", "last_updater_uid")


def split_list(text: str) -> list:
    """A comma-separated list, items trimmed, empty ones skipped."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


class Records:
    """A resource over one records table."""

    def __init__(self, table: str, required=(), optional=(), page_size=DEFAULT_PAGE_SIZE, pyverless=False):
        self.table = table
        self.required = list(required)
        self.optional = list(optional)
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.pyverless = pyverless

    def declares(self, key: str) -> bool:
        return key in self.required or key in self.optional

    def list(self, ctx):
        """GET on the collection: records matching the query's equality filters."""
        limit = self._limit(ctx)
        if self.pyverless:
            return self._list_from_offset(ctx, limit)
        query = db.ListQuery(filters=self._filters(ctx, ("limit", "after")), limit=limit, after=ctx.query("after", str))
        page = host_call(db.list, self.table, query)
        return json_response(200, {"items": [parse_record(r) for r in page.records], "next": page.next})

    def create(self, ctx):
        """POST on the collection: stores the body's declared keys."""
        fields = self._check(ctx.json_object())
        record = parse_record(host_call(db.insert, self.table, json.dumps(fields)))
        uid = record.get("uid")
        if not isinstance(uid, str):
            raise ApiError.internal("The host returned a record without a uid")
        request = ctx.request
        location = f"{request.mount}{request.path.rstrip('/')}/{uid}"
        body = uid if self.pyverless else record
        return json_response(201, body, [("location", location)])

    def get(self, uid: str):
        """The record `uid` as a dict, or None."""
        record = host_call(db.get, self.table, uid)
        return None if record is None else parse_record(record)

    def retrieve(self, ctx, uid: str):
        """GET on an item."""
        record = host_call(db.get, self.table, uid)
        if record is None:
            raise self._missing(uid)
        return json_response(200, parse_record(record))

    def update(self, ctx, uid: str):
        """PATCH on an item: merges the body's declared keys."""
        changes = self._check_partial(ctx.json_object())
        if not changes:
            raise ApiError.bad_request("No changes")
        record = host_call(db.update, self.table, uid, json.dumps(changes))
        if record is None:
            raise self._missing(uid)
        return json_response(200, parse_record(record))

    def delete(self, ctx, uid: str):
        """DELETE on an item: 204 without a body."""
        if not host_call(db.delete, self.table, uid):
            raise self._missing(uid)
        return no_content()

    def delete_matching(self, ctx):
        """DELETE on the collection: removes the records matching the query's
        filters (at least one) and answers how many."""
        filters = self._filters(ctx, ())
        if not filters:
            raise ApiError.bad_request("DELETE on the collection needs at least one filter")
        return json_response(200, {"deleted": host_call(db.delete_where, self.table, filters)})

    def _limit(self, ctx) -> int:
        try:
            limit = ctx.query("limit", int)
        except ApiError:
            limit = 0
        if limit is None:
            return self.page_size
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ApiError.bad_request(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
        return limit

    def _list_from_offset(self, ctx, limit: int):
        try:
            offset = ctx.query("offset", int)
        except ApiError:
            offset = -1
        if offset is None:
            offset = 0
        if not 0 <= offset <= MAX_OFFSET:
            raise ApiError.bad_request(f"offset must be an integer from 0 to {MAX_OFFSET}")
        filters = self._filters(ctx, ("limit", "offset"))
        after, to_skip = None, offset
        while to_skip > 0:
            batch = min(to_skip, _SKIP_BATCH)
            page = host_call(db.list, self.table, db.ListQuery(filters=filters, limit=batch, after=after))
            if page.next is None or len(page.records) != batch:
                return json_response(200, [])
            after, to_skip = page.next, to_skip - batch
        page = host_call(db.list, self.table, db.ListQuery(filters=filters, limit=limit, after=after))
        return json_response(200, [parse_record(r) for r in page.records])

    def _filters(self, ctx, reserved) -> list:
        """An equality filter for each query parameter naming a declared key or
        an audit field; parameters in `reserved` are skipped, others are 400."""
        filters, unknown = [], []
        for name, raw in ctx.query_pairs():
            if name in reserved:
                continue
            if self.declares(name) or name in AUDIT_FIELDS:
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
                filters.append(db.Filter(field=name, comparison=db.Comparison.EQ, value=json.dumps(value)))
            elif name not in unknown:
                unknown.append(name)
        if unknown:
            raise ApiError.bad_request("Unknown query parameter(s): " + ", ".join(unknown))
        return filters

    def _known(self, body: dict) -> dict:
        body = {k: v for k, v in body.items() if k not in AUDIT_FIELDS}
        unknown = sorted(k for k in body if not self.declares(k))
        if unknown:
            raise ApiError.bad_request("Unknown key(s): " + ", ".join(unknown))
        return body

    def _check(self, body: dict) -> dict:
        body = self._known(body)
        missing = [k for k in self.required if body.get(k) is None]
        if missing:
            raise ApiError.bad_request("Missing key(s): " + ", ".join(missing))
        return body

    def _check_partial(self, body: dict) -> dict:
        body = self._known(body)
        nulled = [k for k in self.required if k in body and body[k] is None]
        if nulled:
            raise ApiError.bad_request("Required key(s) cannot be null: " + ", ".join(nulled))
        return body

    def _missing(self, uid: str) -> ApiError:
        return ApiError.not_found(f"No {self.table} record with uid {uid}")
