// corral's guest SDK for JavaScript components, built with componentize-js
// against wit/corral.wit (world `service`). It mirrors the Rust and Python
// SDKs: a router, a request context with typed parameters and declared
// keys, ApiError, the generic record handlers, SQL rows as objects and
// transactions, the host's cache, queue, config, log and identity, and an
// outbound HTTP client (`http`).

import * as auth from 'corral:host/auth@0.1.0';
import * as hostCache from 'corral:host/cache@0.1.0';
import * as hostConfig from 'corral:host/config@0.1.0';
import * as db from 'corral:host/db@0.1.0';
import * as hostLog from 'corral:host/log@0.1.0';
import * as hostQueue from 'corral:host/queue@0.1.0';
import { now, subscribeInstant } from 'wasi:clocks/monotonic-clock@0.2.12';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import * as wasiHttp from 'wasi:http/types@0.2.12';
import { poll } from 'wasi:io/poll@0.2.12';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** An HTTP error: a status, a snake_case code and a message for the client. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  static badRequest(m) { return new ApiError(400, 'bad_request', m); }
  static unauthorized(m) { return new ApiError(401, 'unauthorized', m); }
  static forbidden(m) { return new ApiError(403, 'forbidden', m); }
  static notFound(m) { return new ApiError(404, 'not_found', m); }
  static methodNotAllowed(m) { return new ApiError(405, 'method_not_allowed', m); }
  static conflict(m) { return new ApiError(409, 'conflict', m); }
  static internal(m) { return new ApiError(500, 'internal', m); }
  static unavailable(m) { return new ApiError(503, 'unavailable', m); }
  /** The manifest lacks a grant the component needs: a deployment fault. */
  static notGranted(m) { return new ApiError(500, 'not_granted', m); }
}

const HOST_ERRORS = {
  'not-granted': ApiError.notGranted,
  'not-found': ApiError.notFound,
  'conflict': ApiError.conflict,
  'invalid': ApiError.badRequest,
  'unauthenticated': ApiError.unauthorized,
  'forbidden': ApiError.forbidden,
  'unavailable': ApiError.unavailable,
};

/** Runs a host call, throwing its error as an ApiError. */
function host(call) {
  try {
    return call();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    const variant = error?.payload ?? error;
    const make = HOST_ERRORS[variant?.tag];
    throw make ? make(String(variant.val ?? '')) : ApiError.internal(`the host failed: ${error}`);
  }
}

// ---------------------------------------------------------------- values

const TRUE = new Set(['y', 'yes', 't', 'true', 'on', '1']);
const FALSE = new Set(['n', 'no', 'f', 'false', 'off', '0']);
const NOTHING = Symbol('nothing');
const DESCRIBE = {
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean (true or false)',
  string: 'a string',
};

function fits(value, kind) {
  switch (kind) {
    case 'integer': return Number.isInteger(value) ? value : NOTHING;
    case 'number': return typeof value === 'number' ? value : NOTHING;
    case 'boolean': return typeof value === 'boolean' ? value : NOTHING;
    case 'string': return typeof value === 'string' ? value : NOTHING;
    case 'object': return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : NOTHING;
    case 'array': return Array.isArray(value) ? value : NOTHING;
    default: return value;
  }
}

function truth(value) {
  if (typeof value === 'string') {
    const lowered = value.toLowerCase();
    if (TRUE.has(lowered)) return true;
    if (FALSE.has(lowered)) return false;
  }
  if (value === 0 || value === 1) return value === 1;
  return undefined;
}

/**
 * `value` as `kind` ('integer', 'number', 'boolean', 'string', 'object',
 * 'array' or 'any'); a string holding a JSON value counts as that value, and
 * a boolean takes Python's strtobool forms. 400 naming `name` otherwise.
 */
export function typed(name, value, kind = 'any') {
  let found = fits(value, kind);
  if (found === NOTHING && typeof value === 'string') {
    try { found = fits(JSON.parse(value), kind); } catch { found = NOTHING; }
  }
  if (found === NOTHING && kind === 'boolean') {
    const flag = truth(value);
    found = flag === undefined ? NOTHING : flag;
  }
  if (found === NOTHING) {
    throw ApiError.badRequest(`'${name}' must be ${DESCRIBE[kind] ?? 'of the expected type'}`);
  }
  return found;
}

/** The declared keys of a request's input. */
export class Fields {
  constructor(values) { this.values = values; }

  /** Keeps the declared keys; 400 "Missing key(s): a, b" for absent or null required ones. */
  static declared(given, required = [], optional = []) {
    const missing = required.filter((k) => given[k] === undefined || given[k] === null);
    if (missing.length) throw ApiError.badRequest(`Missing key(s): ${missing.join(', ')}`);
    const kept = {};
    for (const k of [...required, ...optional]) if (Object.hasOwn(given, k)) kept[k] = given[k];
    return new Fields(kept);
  }

  /** The value of `key` as `kind`; 400 naming it when absent, null or of another type. */
  get(key, kind = 'any') {
    const value = this.values[key];
    if (value === undefined || value === null) throw ApiError.badRequest(`Missing key(s): ${key}`);
    return typed(key, value, kind);
  }

  /** The value of `key` as `kind`, or undefined when absent or null. */
  opt(key, kind = 'any') {
    const value = this.values[key];
    return value === undefined || value === null ? undefined : typed(key, value, kind);
  }
}

// ---------------------------------------------------------------- responses

/** A JSON response. */
export function json(status, body, headers = []) {
  return { status, headers: [['content-type', 'application/json'], ...headers], body: encoder.encode(JSON.stringify(body)) };
}

/** A plain-text UTF-8 response. */
export function text(status, body) {
  return { status, headers: [['content-type', 'text/plain; charset=utf-8']], body: encoder.encode(body) };
}

/** A response with no body. */
export function empty(status) {
  return { status, headers: [], body: new Uint8Array() };
}

// ---------------------------------------------------------------- context

/** One request and the parameters its route bound. */
export class Ctx {
  constructor(request, params) {
    this.request = request;
    this.params = Object.fromEntries(request.params);
    Object.assign(this.params, params);
  }

  get requestId() { return this.request.requestId; }

  /** The first header called `name`, case-insensitively. */
  header(name) {
    const lowered = name.toLowerCase();
    return this.request.headers.find(([k]) => k.toLowerCase() === lowered)?.[1];
  }

  /** The route's `{name}` segment as `kind`; 400 naming it when it does not parse. */
  param(name, kind = 'string') {
    if (!Object.hasOwn(this.params, name)) throw ApiError.internal(`the route has no parameter '${name}'`);
    const raw = this.params[name];
    if (kind === 'string') return raw;
    try {
      return typed(name, raw, kind);
    } catch {
      throw ApiError.badRequest(`Invalid '${name}': ${JSON.stringify(raw)}`);
    }
  }

  /** The first query parameter `name` as `kind`, or undefined. */
  query(name, kind = 'string') {
    const raw = this.request.query.find(([k]) => k === name)?.[1];
    return raw === undefined ? undefined : typed(name, raw, kind);
  }

  /** The body parsed as JSON; 400 "Malformed body" when it is not JSON. */
  jsonBody() {
    try {
      return JSON.parse(decoder.decode(this.request.body));
    } catch {
      throw ApiError.badRequest('Malformed body');
    }
  }

  /** The body as a JSON object; 400 when it is not one. */
  jsonObject() {
    const body = this.jsonBody();
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw ApiError.badRequest('The body must be a JSON object');
    }
    return body;
  }

  /** The body as a JSON object; an empty body is an empty object. */
  body() {
    if (this.request.body.every((b) => b === 32 || (b >= 9 && b <= 13))) return {};
    return this.jsonObject();
  }

  bodyKeys(required = [], optional = []) { return Fields.declared(this.body(), required, optional); }
  queryKeys(required = [], optional = []) { return Fields.declared(this.queryMap(), required, optional); }
  /** The declared keys from the query string and the body; the body wins. */
  inputKeys(required = [], optional = []) {
    return Fields.declared({ ...this.queryMap(), ...this.body() }, required, optional);
  }

  queryMap() {
    const given = {};
    for (const [k, v] of this.request.query) if (!Object.hasOwn(given, k)) given[k] = v;
    return given;
  }

  /** The verified caller ({subject, username, groups, claims}), or undefined. */
  caller() { return auth.caller() ?? undefined; }

  /** The verified caller; 401 without one. */
  requireCaller() {
    const caller = this.caller();
    if (!caller) throw ApiError.unauthorized('This request needs a signed-in caller');
    return caller;
  }

  /** The caller when in `group`; 401 without a caller, 403 outside the group. */
  requireGroup(group) { return host(() => auth.requireGroup(group)); }
}

// ---------------------------------------------------------------- routing

/** The decoded segments of a request path, read as the host reads it; 400 when it could be read two ways. */
export function pathSegments(path) {
  if (!path.startsWith('/')) throw ApiError.badRequest("the path must start with '/'");
  let rest = path.slice(1);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (!rest) return [];
  return rest.split('/').map((segment) => {
    if (!segment) throw ApiError.badRequest('the path has an empty segment ("//")');
    let decoded;
    try {
      decoded = decodeSegment(segment);
    } catch {
      throw ApiError.badRequest(`the path segment "${segment}" is not UTF-8 once decoded`);
    }
    if (decoded === '.' || decoded === '..') throw ApiError.badRequest(`the path segment "${segment}" is a relative step`);
    if (decoded.includes('/') || decoded.includes('\\')) {
      throw ApiError.badRequest(`the path segment "${segment}" holds a slash or backslash`);
    }
    return decoded;
  });
}

/** Percent-decodes strictly as UTF-8; a `%` not followed by two hex digits stays as it is. */
function decodeSegment(segment) {
  const bytes = [];
  for (let i = 0; i < segment.length; i++) {
    const hex = segment.slice(i + 1, i + 3);
    if (segment[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...encoder.encode(segment[i]));
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** The routes of a component; literal segments win over `{name}` segments. */
export class Router {
  constructor() { this.routes = []; }

  route(method, path, handler) {
    const segments = path.split('/').filter(Boolean).map((s) =>
      s.startsWith('{') && s.endsWith('}') ? { param: s.slice(1, -1) } : { literal: s });
    this.routes.push({ method: method.toUpperCase(), segments, handler });
    return this;
  }
  get(path, handler) { return this.route('GET', path, handler); }
  post(path, handler) { return this.route('POST', path, handler); }
  put(path, handler) { return this.route('PUT', path, handler); }
  patch(path, handler) { return this.route('PATCH', path, handler); }
  delete(path, handler) { return this.route('DELETE', path, handler); }

  /** [handler, params]; throws 404, 405 (with `allow`) or 400. */
  find(method, path) {
    const parts = pathSegments(path);
    const matching = [];
    for (const route of this.routes) {
      const params = bind(route.segments, parts);
      if (params) matching.push({ route, params });
    }
    const wanted = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
    const candidates = matching.filter((m) => m.route.method === wanted);
    if (candidates.length) {
      const rank = (m) => m.route.segments.map((s) => (s.param === undefined ? '0' : '1')).join('');
      candidates.sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0));
      return [candidates[0].route.handler, candidates[0].params];
    }
    if (!matching.length) throw ApiError.notFound(`No route for ${method} ${path}`);
    const error = ApiError.methodNotAllowed(`${method} is not allowed on ${path}`);
    error.allow = [...new Set(matching.map((m) => m.route.method))].sort().join(', ');
    throw error;
  }
}

function bind(segments, parts) {
  if (segments.length !== parts.length) return undefined;
  const params = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment.literal !== undefined) {
      if (segment.literal !== parts[i]) return undefined;
    } else {
      params[segment.param] = parts[i];
    }
  }
  return params;
}

// ---------------------------------------------------------------- SQL

function toDbValue(value) {
  if (value === null || value === undefined) return { tag: 'null' };
  if (typeof value === 'boolean') return { tag: 'boolean', val: value };
  if (typeof value === 'bigint') return { tag: 'integer', val: value };
  if (Number.isInteger(value)) return { tag: 'integer', val: BigInt(value) };
  if (typeof value === 'number') return { tag: 'float', val: value };
  if (typeof value === 'string') return { tag: 'text', val: value };
  if (value instanceof Uint8Array) return { tag: 'blob', val: value };
  throw ApiError.badRequest('A SQL parameter must be null, a boolean, a number or a string');
}

function fromDbValue(value) {
  switch (value.tag) {
    case 'null': return null;
    case 'integer': return Number(value.val);
    case 'blob': return [...value.val];
    default: return value.val;
  }
}

function rowsOf(rows) {
  return rows.rows.map((row) => Object.fromEntries(rows.columns.map((c, i) => [c, fromDbValue(row[i])])));
}

/** A transaction; `end()` without `commit()` rolls it back. */
class Transaction {
  constructor() { this.tx = host(() => db.begin()); }
  query(statement, params = []) { return rowsOf(host(() => this.tx.query(statement, params.map(toDbValue)))); }
  queryOne(statement, params = []) { return this.query(statement, params)[0]; }
  execute(statement, params = []) { return Number(host(() => this.tx.execute(statement, params.map(toDbValue)))); }
  commit() {
    const tx = this.tx;
    this.tx = undefined;
    host(() => db.Transaction.commit(tx));
  }
  end() {
    if (this.tx) {
      const tx = this.tx;
      this.tx = undefined;
      host(() => db.Transaction.rollback(tx));
    }
  }
}

/** Parameterized SQL through the host, with rows as objects. */
export const sql = {
  query: (statement, params = []) => rowsOf(host(() => db.query(statement, params.map(toDbValue)))),
  queryOne: (statement, params = []) => sql.query(statement, params)[0],
  execute: (statement, params = []) => Number(host(() => db.execute(statement, params.map(toDbValue)))),
  dialect: () => db.dialect(),
  /** Runs `work(tx)` in a transaction; it commits when `work` calls `tx.commit()`, else rolls back. */
  transaction(work) {
    const tx = new Transaction();
    try {
      return work(tx);
    } finally {
      tx.end();
    }
  },
};

/** A record as the host returns it; a host fault (500) when it is not JSON. */
export function parseRecord(textValue) {
  try {
    return JSON.parse(textValue);
  } catch {
    throw ApiError.internal('The host returned a record that is not valid JSON');
  }
}

// ---------------------------------------------------------------- records

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;
export const MAX_OFFSET = 10_000;
const SKIP_BATCH = 1000;
const AUDIT_FIELDS = ['uid', 'created_at', 'last_updated_at', 'creator_uid', 'last_updater_uid'];

/**
 * Generic handlers for a resource kept in one records table: create 201
 * (the stored record, with `location`), retrieve and update 200, delete 204,
 * list 200 `{"items", "next"}`. With `pyverless: true`, create answers the
 * new uid and list a bare array paged by `offset` and `limit`.
 */
export class Records {
  constructor(table, { required = [], optional = [], pageSize = DEFAULT_PAGE_SIZE, pyverless = false } = {}) {
    this.table = table;
    this.required = required;
    this.optional = optional;
    this.pageSize = Math.max(1, Math.min(pageSize, MAX_PAGE_SIZE));
    this.pyverless = pyverless;
  }

  declares(key) { return this.required.includes(key) || this.optional.includes(key); }

  list(ctx) {
    const limit = this.limit(ctx);
    if (this.pyverless) return this.listFromOffset(ctx, limit);
    const after = ctx.query('after', 'string');
    const page = host(() => db.list(this.table, { filters: this.filters(ctx, ['limit', 'after']), limit, after }));
    return json(200, { items: page.records.map(parseRecord), next: page.next ?? null });
  }

  create(ctx) {
    const fields = this.check(ctx.jsonObject());
    const record = parseRecord(host(() => db.insert(this.table, JSON.stringify(fields))));
    if (typeof record.uid !== 'string') throw ApiError.internal('The host returned a record without a uid');
    const { mount, path } = ctx.request;
    const location = `${mount}${path.replace(/\/+$/, '')}/${record.uid}`;
    return json(201, this.pyverless ? record.uid : record, [['location', location]]);
  }

  /** The record `uid`, or undefined. */
  get(uid) {
    const record = host(() => db.get(this.table, uid));
    return record === undefined || record === null ? undefined : parseRecord(record);
  }

  retrieve(ctx, uid) {
    const record = this.get(uid);
    if (record === undefined) throw this.missing(uid);
    return json(200, record);
  }

  update(ctx, uid) {
    const changes = this.checkPartial(ctx.jsonObject());
    if (!Object.keys(changes).length) throw ApiError.badRequest('No changes');
    const record = host(() => db.update(this.table, uid, JSON.stringify(changes)));
    if (record === undefined || record === null) throw this.missing(uid);
    return json(200, parseRecord(record));
  }

  delete(ctx, uid) {
    if (!host(() => db.delete(this.table, uid))) throw this.missing(uid);
    return empty(204);
  }

  deleteMatching(ctx) {
    const filters = this.filters(ctx, []);
    if (!filters.length) throw ApiError.badRequest('DELETE on the collection needs at least one filter');
    return json(200, { deleted: Number(host(() => db.deleteWhere(this.table, filters))) });
  }

  limit(ctx) {
    let limit;
    try { limit = ctx.query('limit', 'integer'); } catch { limit = 0; }
    if (limit === undefined) return this.pageSize;
    if (!(limit >= 1 && limit <= MAX_PAGE_SIZE)) {
      throw ApiError.badRequest(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}`);
    }
    return limit;
  }

  listFromOffset(ctx, limit) {
    let offset;
    try { offset = ctx.query('offset', 'integer'); } catch { offset = -1; }
    if (offset === undefined) offset = 0;
    if (!(offset >= 0 && offset <= MAX_OFFSET)) {
      throw ApiError.badRequest(`offset must be an integer from 0 to ${MAX_OFFSET}`);
    }
    const filters = this.filters(ctx, ['limit', 'offset']);
    let after;
    for (let toSkip = offset; toSkip > 0;) {
      const batch = Math.min(toSkip, SKIP_BATCH);
      const page = host(() => db.list(this.table, { filters, limit: batch, after }));
      if (page.next === undefined || page.next === null || page.records.length !== batch) return json(200, []);
      after = page.next;
      toSkip -= batch;
    }
    const page = host(() => db.list(this.table, { filters, limit, after }));
    return json(200, page.records.map(parseRecord));
  }

  filters(ctx, reserved) {
    const filters = [];
    const unknown = [];
    for (const [name, raw] of ctx.request.query) {
      if (reserved.includes(name)) continue;
      if (this.declares(name) || AUDIT_FIELDS.includes(name)) {
        let value;
        try { value = JSON.parse(raw); } catch { value = raw; }
        filters.push({ field: name, comparison: 'eq', value: JSON.stringify(value) });
      } else if (!unknown.includes(name)) {
        unknown.push(name);
      }
    }
    if (unknown.length) throw ApiError.badRequest(`Unknown query parameter(s): ${unknown.join(', ')}`);
    return filters;
  }

  known(body) {
    const kept = Object.fromEntries(Object.entries(body).filter(([k]) => !AUDIT_FIELDS.includes(k)));
    const unknown = Object.keys(kept).filter((k) => !this.declares(k)).sort();
    if (unknown.length) throw ApiError.badRequest(`Unknown key(s): ${unknown.join(', ')}`);
    return kept;
  }

  check(body) {
    const kept = this.known(body);
    const missing = this.required.filter((k) => kept[k] === undefined || kept[k] === null);
    if (missing.length) throw ApiError.badRequest(`Missing key(s): ${missing.join(', ')}`);
    return kept;
  }

  checkPartial(body) {
    const kept = this.known(body);
    const nulled = this.required.filter((k) => Object.hasOwn(kept, k) && kept[k] === null);
    if (nulled.length) throw ApiError.badRequest(`Required key(s) cannot be null: ${nulled.join(', ')}`);
    return kept;
  }

  missing(uid) { return ApiError.notFound(`No ${this.table} record with uid ${uid}`); }
}

// ---------------------------------------------------------------- host services

/** Named key-value stores (DynamoDB on AWS); values are bytes or text. */
export const cache = {
  get: (store, key) => host(() => hostCache.get(store, key)) ?? undefined,
  getText: (store, key) => {
    const value = cache.get(store, key);
    return value === undefined ? undefined : new TextDecoder().decode(value);
  },
  set: (store, key, value, ttlSeconds) =>
    host(() => hostCache.set(store, key, typeof value === 'string' ? encoder.encode(value) : value, ttlSeconds)),
  add: (store, key, value, ttlSeconds) =>
    host(() => hostCache.add(store, key, typeof value === 'string' ? encoder.encode(value) : value, ttlSeconds)),
  /** Stores `value` only when the current value is `expected` (undefined: absent); false when another write got there first. */
  setIf: (store, key, value, expected, ttlSeconds) =>
    host(() =>
      hostCache.setIf(
        store,
        key,
        typeof value === 'string' ? encoder.encode(value) : value,
        typeof expected === 'string' ? encoder.encode(expected) : expected,
        ttlSeconds,
      )),
  delete: (store, key) => host(() => hostCache.delete(store, key)),
};

/** Durable named queues (SQS on AWS). */
export const queue = {
  send: (name, body, { attributes = [], groupId, dedupId, delaySeconds = 0 } = {}) =>
    host(() => hostQueue.send(name, { body, attributes, groupId, dedupId, delaySeconds })),
};

/** The component's configuration from the manifest (SSM on AWS). */
export const config = {
  get: (key) => host(() => hostConfig.get(key)) ?? undefined,
};

/** Lines in the host's log, with the component and request id. */
export const log = {
  debug: (m) => hostLog.log('debug', m),
  info: (m) => hostLog.log('info', m),
  warn: (m) => hostLog.log('warn', m),
  error: (m) => hostLog.log('error', m),
};

// ---------------------------------------------------------------- outbound HTTP

/** The time limit of a request that sets none, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** The largest response body read, in bytes. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** An answer, read whole: `status`, `headers` (lower-case names, byte values) and `body` bytes. */
export class HttpReply {
  constructor(url, status, headers, body) {
    this.url = url;
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  get ok() { return this.status >= 200 && this.status < 300; }
  /** The first value of header `name` as text, or undefined. */
  header(name) {
    const value = this.headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
    return value === undefined ? undefined : new TextDecoder().decode(value);
  }
  text() { return new TextDecoder().decode(this.body); }
  /** The body as JSON; a body that is not is a bad answer (502). */
  json() {
    try {
      return JSON.parse(this.text());
    } catch (error) {
      throw badGateway(`${hostOf(this.url)} answered ${this.status} with a body that is not the expected JSON: ${error.message}`);
    }
  }
}

const badGateway = (m) => new ApiError(502, 'bad_gateway', m);
const gatewayTimeout = (url) => new ApiError(504, 'gateway_timeout', `${hostOf(url)} did not answer in time`);
const hostOf = (url) => (url.split('://')[1] ?? url).split(/[/?]/)[0];
const TIMEOUTS = ['connection-timeout', 'connection-read-timeout', 'HTTP-response-timeout', 'DNS-timeout'];
const METHODS = ['get', 'head', 'post', 'put', 'delete', 'patch', 'options'];
const drop = (...resources) => resources.forEach((r) => r?.[Symbol.dispose]?.());

/**
 * A small blocking HTTP client over `wasi:http/outgoing-handler`, the same
 * as the Rust and Python SDKs'. The host sends only to the hosts the
 * manifest grants (`hosts = [...]`). Errors are ApiErrors: time limit 504
 * `gateway_timeout`, upstream unreachable or answer unusable 502
 * `bad_gateway`, host not granted 500 `not_granted`.
 */
export const http = {
  get: (url, options = {}) => http.request('GET', url, options),

  /**
   * Sends a request and reads the whole answer, whatever its status. `body`
   * is text or bytes; `json` a value sent as JSON with `content-type:
   * application/json`; `headers` an object or pairs.
   */
  request(method, url, { body, headers = {}, json: value, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
    const pairs = Array.isArray(headers) ? [...headers] : Object.entries(headers);
    if (value !== undefined) {
      body = JSON.stringify(value);
      pairs.push(['content-type', 'application/json']);
    }
    const bytes = typeof body === 'string' ? encoder.encode(body) : (body ?? new Uint8Array());
    const deadline = now() + BigInt(timeoutMs) * 1_000_000n;
    const [scheme, authority, path] = splitUrl(url);
    const bad = (what) => badGateway(`cannot build the request to ${url}: ${what}`);
    let request;
    try {
      request = new wasiHttp.OutgoingRequest(wasiHttp.Fields.fromList(pairs.map(([k, v]) => [k, typeof v === 'string' ? encoder.encode(v) : v])));
    } catch (error) {
      throw bad(`header: ${error?.payload?.tag ?? error}`);
    }
    const upper = method.toUpperCase();
    const steps = [
      ['method', () => request.setMethod(METHODS.includes(upper.toLowerCase()) ? { tag: upper.toLowerCase() } : { tag: 'other', val: upper })],
      ['scheme', () => request.setScheme(scheme)],
      ['host', () => request.setAuthority(authority)],
      ['path', () => request.setPathWithQuery(path)],
    ];
    for (const [what, step] of steps) {
      try { step(); } catch { throw bad(what); }
    }
    const options = new wasiHttp.RequestOptions();
    // The host also cuts these to what is left of the component's own time.
    const limit = BigInt(timeoutMs) * 1_000_000n;
    options.setConnectTimeout(limit);
    options.setFirstByteTimeout(limit);
    options.setBetweenBytesTimeout(limit);
    const outgoingBody = request.body();
    let future;
    try {
      future = handle(request, options);
    } catch (error) {
      throw failure(url, error?.payload ?? error);
    }
    try {
      sendBody(url, future, deadline, outgoingBody, bytes);
      const response = waitFor(url, future, deadline);
      try {
        return new HttpReply(url, response.status(), response.headers().entries(), readBody(url, response, deadline));
      } finally {
        drop(response);
      }
    } finally {
      drop(future);
    }
  },
};

function splitUrl(url) {
  const [, scheme, authority, path] = /^(https?):\/\/([^/?]+)(\/.*)?$/.exec(url) ?? [];
  if (!scheme) throw badGateway(`not an http(s) URL: ${url}`);
  return [{ tag: scheme === 'https' ? 'HTTPS' : 'HTTP' }, authority, path ?? '/'];
}

/** Waits until `pollable` is ready; 504 when the deadline comes first. */
function block(url, pollable, deadline) {
  const timer = subscribeInstant(deadline);
  poll([pollable, timer]);
  drop(timer);
  const ready = pollable.ready();
  drop(pollable);
  if (!ready) throw gatewayTimeout(url);
}

function sendBody(url, future, deadline, outgoingBody, bytes) {
  try {
    const stream = outgoingBody.write();
    // `blocking-write-and-flush` takes at most 4096 bytes at a time.
    for (let at = 0; at < bytes.length; at += 4096) stream.blockingWriteAndFlush(bytes.subarray(at, at + 4096));
    drop(stream);
    wasiHttp.OutgoingBody.finish(outgoingBody, undefined);
  } catch (error) {
    // A refused or failed request closes its body early: its own error says why.
    const timer = subscribeInstant(deadline);
    const ready = future.subscribe();
    poll([ready, timer]);
    drop(timer, ready);
    const outcome = future.get();
    if (outcome?.tag === 'ok' && outcome.val.tag === 'err') throw failure(url, outcome.val.val);
    throw badGateway(`${hostOf(url)} could not be sent the request body: ${error?.payload?.tag ?? error}`);
  }
}

function waitFor(url, future, deadline) {
  block(url, future.subscribe(), deadline);
  const outcome = future.get();
  if (outcome === undefined) throw gatewayTimeout(url);
  if (outcome.tag === 'err') throw badGateway('the response was already taken');
  if (outcome.val.tag === 'err') throw failure(url, outcome.val.val);
  return outcome.val.val;
}

function readBody(url, response, deadline) {
  const body = response.consume();
  const stream = body.stream();
  const chunks = [];
  let size = 0;
  try {
    for (;;) {
      let chunk;
      try {
        chunk = stream.read(65536n);
      } catch (error) {
        const problem = error?.payload ?? error;
        if (problem?.tag === 'closed') break;
        const code = problem?.tag === 'last-operation-failed' ? wasiHttp.httpErrorCode(problem.val) : undefined;
        const why = code?.tag ?? problem?.val?.toDebugString?.() ?? String(error);
        const message = `${hostOf(url)} failed while sending its answer: ${why}`;
        throw /timeout/i.test(why) ? new ApiError(504, 'gateway_timeout', message) : badGateway(message);
      }
      if (!chunk.length) {
        block(url, stream.subscribe(), deadline);
        continue;
      }
      size += chunk.length;
      if (size > MAX_BODY_BYTES) throw badGateway(`${hostOf(url)} answered more than ${MAX_BODY_BYTES} bytes`);
      chunks.push(chunk);
    }
  } finally {
    drop(stream, body);
  }
  const whole = new Uint8Array(size);
  chunks.reduce((at, chunk) => (whole.set(chunk, at), at + chunk.length), 0);
  return whole;
}

/** The ApiError for a wasi:http error code. */
function failure(url, code) {
  const host = hostOf(url);
  const tag = code?.tag;
  if (TIMEOUTS.includes(tag)) return gatewayTimeout(url);
  if (tag === 'HTTP-request-denied') return ApiError.notGranted(`the manifest does not grant the host ${host}`);
  if (tag === 'destination-IP-prohibited') {
    return ApiError.notGranted(`the host ${host} resolves to an address the component may not reach`);
  }
  if (tag === 'connection-limit-reached') {
    return badGateway(`${host} was not asked: the component has as many requests in flight as it may`);
  }
  return badGateway(`${host} could not be reached: ${errorName(code)}`);
}

/** The error code as the Rust SDK prints it, e.g. `ErrorCode::ConnectionRefused`. */
function errorName(code) {
  const name = 'ErrorCode::' + String(code?.tag ?? code)
    .split('-')
    .map((w) => w[0].toUpperCase() + w.slice(1).toLowerCase())
    .join('');
  return code?.val === undefined ? name : `${name}(${JSON.stringify(code.val, (k, v) => (typeof v === 'bigint' ? Number(v) : v))})`;
}

// ---------------------------------------------------------------- service

/**
 * The `handler` export for a service `{ routes, init?, events? }`:
 * `export const handler = service({ routes: () => new Router().get(...) })`.
 * A thrown ApiError answers with its status; any other throw is a 500 with
 * the error shape, and its stack goes to the log only.
 */
export function service({ routes, init = () => {}, events }) {
  warmUp(routes);
  return {
    init() {
      try {
        init();
      } catch (error) {
        throw String(error?.message ?? error);
      }
    },
    handleRequest(request) {
      try {
        const [handler, params] = routes().find(request.method, request.path);
        return handler(new Ctx(request, params));
      } catch (error) {
        if (!(error instanceof ApiError)) {
          log.error(`unhandled exception in ${request.method} ${request.path}: ${error}\n${error?.stack ?? ''}`);
          return errorResponse(request, ApiError.internal('The component failed while handling the request'));
        }
        return errorResponse(request, error);
      }
    },
    handleEvents(batch) {
      if (events) return events(batch);
      const ids = batch.map((e) => e.id);
      log.warn(`this component handles no events; failing ${ids.length}: ${ids.join(', ')}`);
      return ids;
    },
  };
}

/** How often `warmUp` runs each step. */
const WARM_UP_ROUNDS = 8;

/**
 * Runs the pure-JavaScript steps of a request while componentize-js
 * pre-initializes the component (the module is evaluated at build time), so
 * the snapshot every instance starts from already holds the functions they
 * compile and the shapes they settle on first use: each route matched, a
 * context built and read, a JSON record parsed and answered, an error
 * answered. Nothing here calls the host, which is not there at build time.
 */
function warmUp(routes) {
  let router;
  try {
    router = routes();
  } catch {
    return;
  }
  const record = { uid: 'warm', created_at: '2026-01-01T00:00:00Z', title: 'warm', tags: ['a'], n: 1, x: null };
  const request = { method: 'GET', path: '/', mount: '', route: '/', params: [], query: [['limit', '5']], headers: [], body: encoder.encode('{}'), requestId: 'warm-up' };
  for (let round = 0; round < WARM_UP_ROUNDS; round++) {
    for (const route of router.routes ?? []) {
      const params = {};
      const path = '/' + route.segments.map((s) => (s.param === undefined ? s.literal : (params[s.param] = 'warm'))).join('/');
      try {
        router.find(route.method, path);
        const ctx = new Ctx({ ...request, method: route.method, path, route: path, params: Object.entries(params) }, params);
        for (const name of Object.keys(params)) ctx.param(name);
        ctx.query('limit', 'integer');
        ctx.body();
      } catch {
        // A route the sample request does not fit is still warmed up to the failure.
      }
    }
    json(200, JSON.parse(JSON.stringify(record)), [['x-cache', 'hit']]);
    errorResponse(request, ApiError.notFound('warm'));
  }
}

function errorResponse(request, error) {
  if (error.status >= 500) log.error(`${error.status} ${error.code}: ${error.message}`);
  const headers = error.allow ? [['allow', error.allow]] : [];
  return json(error.status, { error: { code: error.code, message: error.message, request_id: request.requestId } }, headers);
}
