// The notes resource in JavaScript: the same routes, answers and side
// effects as components/notes (Rust) and components/notes-py (Python).
// Records in the table `table`; a raw-SQL count; a summary read through the
// cache store `cache`; sharing through the queue `queue`; deletion only for
// callers in the group `editors_group`; publishing to the URL `webhook`.

import { ApiError, Records, Router, cache, config, http, json, queue, service, sql } from '../sdk-js/index.js';

// How long a summary stays in the cache.
const SUMMARY_TTL_SECONDS = 300;

/** A config value the component cannot run without. */
function setting(key) {
  const value = config.get(key);
  if (!value) throw ApiError.internal(`config key '${key}' is not set`);
  return value;
}

const notes = () => new Records(setting('table'), { required: ['title'], optional: ['body', 'tags'] });

/** The note's record; 404 when there is none. */
function stored(id) {
  const record = notes().get(id);
  if (record === undefined) throw ApiError.notFound(`No note ${id}`);
  return record;
}

/** DELETE /notes/{id}: only for the editors group. */
function remove(ctx) {
  ctx.requireGroup(setting('editors_group'));
  return notes().delete(ctx, ctx.param('id'));
}

/** GET /notes/{id}/summary: the title and the body's word count, read through the cache. */
function summary(ctx) {
  const id = ctx.param('id');
  const store = setting('cache');
  const key = `summary:${id}`;
  const cached = cache.getText(store, key);
  if (cached !== undefined) return json(200, JSON.parse(cached), [['x-cache', 'hit']]);
  const note = stored(id);
  const words = typeof note.body === 'string' ? note.body.split(/\s+/).filter(Boolean).length : 0;
  const result = { uid: id, title: note.title, words };
  cache.set(store, key, JSON.stringify(result), SUMMARY_TTL_SECONDS);
  return json(200, result, [['x-cache', 'miss']]);
}

/** POST /notes/{id}/share {"to": "..."}: queues the note for `to`; 202. */
function share(ctx) {
  const id = ctx.param('id');
  const caller = ctx.requireCaller();
  const to = ctx.bodyKeys(['to']).get('to', 'string');
  stored(id);
  queue.send(setting('queue'), JSON.stringify({ note: id, to, by: caller.subject }));
  return json(202, { shared: id, to });
}

/**
 * POST /notes/{id}/publish: sends the note as JSON to the URL in config
 * `webhook`; 200 with the upstream's status. Unreachable: 502; the host not
 * granted: 500.
 */
function publish(ctx) {
  const id = ctx.param('id');
  const note = stored(id);
  const reply = http.request('POST', setting('webhook'), { json: note });
  return json(200, { published: id, status: reply.status });
}

/** GET /stats: the number of notes, by raw SQL over the records table. */
function stats() {
  const row = sql.queryOne(`SELECT COUNT(*) AS notes FROM ${setting('table')}`);
  return json(200, { notes: row.notes });
}

export const handler = service({
  routes: () =>
    new Router()
      .get('/notes', (ctx) => notes().list(ctx))
      .post('/notes', (ctx) => notes().create(ctx))
      .get('/notes/{id}', (ctx) => notes().retrieve(ctx, ctx.param('id')))
      .patch('/notes/{id}', (ctx) => notes().update(ctx, ctx.param('id')))
      .delete('/notes/{id}', remove)
      .get('/notes/{id}/summary', summary)
      .post('/notes/{id}/share', share)
      .post('/notes/{id}/publish', publish)
      .get('/stats', stats),
});
