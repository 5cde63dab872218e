// Type declarations of corral's JavaScript guest SDK (index.js).

/** One HTTP request, as the host hands it to the component. */
export interface Request {
  method: string;
  path: string;
  mount: string;
  route: string;
  params: [string, string][];
  query: [string, string][];
  headers: [string, string][];
  body: Uint8Array;
  requestId: string;
}

/** The HTTP response. */
export interface Response {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** The verified caller. */
export interface Identity {
  subject: string;
  username?: string;
  groups: string[];
  /** Every claim of the verified token, as a JSON object. */
  claims: string;
}

/** One event of a batch (queue message, table change or object notification). */
export interface Event {
  id: string;
  source: { tag: 'queue' | 'table' | 'objects'; val: string };
  kind: string;
  body: string;
  attributes: [string, string][];
}

/** What a typed read converts to. */
export type Kind = 'integer' | 'number' | 'boolean' | 'string' | 'object' | 'array' | 'any';

/** An HTTP error: a status, a snake_case code and a message for the client. */
export class ApiError extends Error {
  constructor(status: number, code: string, message: string);
  status: number;
  code: string;
  static badRequest(message: string): ApiError;
  static unauthorized(message: string): ApiError;
  static forbidden(message: string): ApiError;
  static notFound(message: string): ApiError;
  static methodNotAllowed(message: string): ApiError;
  static conflict(message: string): ApiError;
  static internal(message: string): ApiError;
  static unavailable(message: string): ApiError;
  static notGranted(message: string): ApiError;
}

/** `value` as `kind`; 400 naming `name` otherwise. */
export function typed(name: string, value: unknown, kind?: Kind): any;

/** The declared keys of a request's input. */
export class Fields {
  static declared(given: Record<string, unknown>, required?: string[], optional?: string[]): Fields;
  get(key: string, kind?: Kind): any;
  opt(key: string, kind?: Kind): any;
}

export function json(status: number, body: unknown, headers?: [string, string][]): Response;
export function text(status: number, body: string): Response;
export function empty(status: number): Response;

/** One request and the parameters its route bound. */
export class Ctx {
  request: Request;
  readonly requestId: string;
  header(name: string): string | undefined;
  param(name: string, kind?: Kind): any;
  query(name: string, kind?: Kind): any;
  jsonBody(): unknown;
  jsonObject(): Record<string, unknown>;
  body(): Record<string, unknown>;
  bodyKeys(required?: string[], optional?: string[]): Fields;
  queryKeys(required?: string[], optional?: string[]): Fields;
  inputKeys(required?: string[], optional?: string[]): Fields;
  caller(): Identity | undefined;
  requireCaller(): Identity;
  requireGroup(group: string): Identity;
}

export type Handler = (ctx: Ctx) => Response;

export function pathSegments(path: string): string[];

export class Router {
  route(method: string, path: string, handler: Handler): Router;
  get(path: string, handler: Handler): Router;
  post(path: string, handler: Handler): Router;
  put(path: string, handler: Handler): Router;
  patch(path: string, handler: Handler): Router;
  delete(path: string, handler: Handler): Router;
  find(method: string, path: string): [Handler, Record<string, string>];
}

export type SqlValue = null | boolean | number | bigint | string | Uint8Array;
export type Row = Record<string, unknown>;

export interface Transaction {
  query(sql: string, params?: SqlValue[]): Row[];
  queryOne(sql: string, params?: SqlValue[]): Row | undefined;
  execute(sql: string, params?: SqlValue[]): number;
  commit(): void;
}

export const sql: {
  query(sql: string, params?: SqlValue[]): Row[];
  queryOne(sql: string, params?: SqlValue[]): Row | undefined;
  execute(sql: string, params?: SqlValue[]): number;
  dialect(): 'sqlite' | 'postgres';
  /** Runs `work` in a transaction; it rolls back unless `work` commits. */
  transaction<T>(work: (tx: Transaction) => T): T;
};

export function parseRecord(text: string): Record<string, unknown>;

export const DEFAULT_PAGE_SIZE: number;
export const MAX_PAGE_SIZE: number;
export const MAX_OFFSET: number;

export interface RecordsOptions {
  required?: string[];
  optional?: string[];
  pageSize?: number;
  /** Pyverless's shapes: create answers the uid, list a bare array paged by offset and limit. */
  pyverless?: boolean;
}

export class Records {
  constructor(table: string, options?: RecordsOptions);
  list(ctx: Ctx): Response;
  create(ctx: Ctx): Response;
  get(uid: string): Record<string, unknown> | undefined;
  retrieve(ctx: Ctx, uid: string): Response;
  update(ctx: Ctx, uid: string): Response;
  delete(ctx: Ctx, uid: string): Response;
  deleteMatching(ctx: Ctx): Response;
}

export const cache: {
  get(store: string, key: string): Uint8Array | undefined;
  getText(store: string, key: string): string | undefined;
  set(store: string, key: string, value: Uint8Array | string, ttlSeconds?: number): void;
  add(store: string, key: string, value: Uint8Array | string, ttlSeconds?: number): boolean;
  setIf(store: string, key: string, value: Uint8Array | string, expected: Uint8Array | string | undefined, ttlSeconds?: number): boolean;
  delete(store: string, key: string): void;
};

export const queue: {
  send(
    name: string,
    body: string,
    options?: { attributes?: [string, string][]; groupId?: string; dedupId?: string; delaySeconds?: number },
  ): string;
};

export const config: { get(key: string): string | undefined };

export const log: {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** The time limit of a request that sets none, in milliseconds (10 s). */
export const DEFAULT_TIMEOUT_MS: number;
/** The largest response body read, in bytes (16 MiB). */
export const MAX_BODY_BYTES: number;

export interface HttpOptions {
  /** A header object or name-value pairs. */
  headers?: Record<string, string> | [string, string | Uint8Array][];
  /** The request body. */
  body?: string | Uint8Array;
  /** A value sent as JSON, with `content-type: application/json`. */
  json?: unknown;
  /** The time limit of the whole exchange; DEFAULT_TIMEOUT_MS when absent. */
  timeoutMs?: number;
}

/** An answer, read whole. */
export class HttpReply {
  readonly url: string;
  readonly status: number;
  /** Header names (lower case) and values. */
  readonly headers: [string, Uint8Array][];
  readonly body: Uint8Array;
  /** Whether the status is 2xx. */
  readonly ok: boolean;
  /** The first value of header `name` as text. */
  header(name: string): string | undefined;
  text(): string;
  /** The body as JSON; throws ApiError 502 when it is not. */
  json(): unknown;
}

/**
 * Blocking outbound HTTP, only to the hosts the manifest grants. Throws
 * ApiError: 504 `gateway_timeout` (time limit), 502 `bad_gateway`
 * (unreachable or unusable answer), 500 `not_granted` (host not granted).
 */
export const http: {
  get(url: string, options?: Omit<HttpOptions, 'body' | 'json'>): HttpReply;
  request(method: string, url: string, options?: HttpOptions): HttpReply;
};

export interface ServiceDefinition {
  routes: () => Router;
  init?: () => void;
  /** Handles a batch; returns the ids of the events that failed. */
  events?: (events: Event[]) => string[];
}

/** The `handler` export of a component. */
export function service(definition: ServiceDefinition): {
  init(): void;
  handleRequest(request: Request): Response;
  handleEvents(events: Event[]): string[];
};
