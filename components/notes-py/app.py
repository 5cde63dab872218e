"""The notes resource in Python: the same routes, answers and side effects
as components/notes (Rust). Records in the table `table`; a raw-SQL count; a
summary read through the cache store `cache`; sharing through the queue
`queue`; deletion only for callers in the group `editors_group`; publishing
to the URL `webhook`."""

import json

from corral_sdk import ApiError, Records, Router, Service, cache, config, http, json_response, queue, sql

# How long a summary stays in the cache.
SUMMARY_TTL_SECONDS = 300


def setting(key: str) -> str:
    """A config value the component cannot run without."""
    value = config.get(key)
    if not value:
        raise ApiError.internal(f"config key '{key}' is not set")
    return value


def notes() -> Records:
    return Records(setting("table"), required=["title"], optional=["body", "tags"])


def delete(ctx):
    """DELETE /notes/{id}: only for the editors group."""
    ctx.require_group(setting("editors_group"))
    return notes().delete(ctx, ctx.param("id"))


def summary(ctx):
    """GET /notes/{id}/summary: the title and the body's word count, read
    through the cache (`x-cache: hit` or `miss`)."""
    note_id = ctx.param("id")
    store = setting("cache")
    key = f"summary:{note_id}"
    cached = cache.get(store, key)
    if cached is not None:
        return json_response(200, json.loads(cached), [("x-cache", "hit")])
    found = stored(note_id)
    body = found.get("body")
    words = len(body.split()) if isinstance(body, str) else 0
    result = {"uid": note_id, "title": found.get("title"), "words": words}
    cache.set(store, key, json.dumps(result).encode(), SUMMARY_TTL_SECONDS)
    return json_response(200, result, [("x-cache", "miss")])


def stored(note_id: str) -> dict:
    """The note's record; 404 when there is none."""
    record = notes().get(note_id)
    if record is None:
        raise ApiError.not_found(f"No note {note_id}")
    return record


def share(ctx):
    """POST /notes/{id}/share {"to": "..."}: queues the note for `to`; 202."""
    note_id = ctx.param("id")
    caller = ctx.require_caller()
    to = ctx.body_keys(["to"]).get("to", str)
    stored(note_id)
    queue.send(setting("queue"), json.dumps({"note": note_id, "to": to, "by": caller.subject}))
    return json_response(202, {"shared": note_id, "to": to})


def publish(ctx):
    """POST /notes/{id}/publish: sends the note as JSON to the URL in config
    `webhook`; 200 with the upstream's status. Unreachable: 502; the host not
    granted: 500."""
    note_id = ctx.param("id")
    note = stored(note_id)
    reply = http.request("POST", setting("webhook"), json=note)
    return json_response(200, {"published": note_id, "status": reply.status})


def stats(ctx):
    """GET /stats: the number of notes, by raw SQL over the records table."""
    row = sql.query_one(f"SELECT COUNT(*) AS notes FROM {setting('table')}")
    return json_response(200, {"notes": row["notes"]})


class Notes(Service):
    def routes(self):
        return (
            Router()
            .get("/notes", lambda ctx: notes().list(ctx))
            .post("/notes", lambda ctx: notes().create(ctx))
            .get("/notes/{id}", lambda ctx: notes().retrieve(ctx, ctx.param("id")))
            .patch("/notes/{id}", lambda ctx: notes().update(ctx, ctx.param("id")))
            .delete("/notes/{id}", delete)
            .get("/notes/{id}/summary", summary)
            .post("/notes/{id}/share", share)
            .post("/notes/{id}/publish", publish)
            .get("/stats", stats)
        )


Handler = Notes.handler()
