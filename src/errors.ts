/**
 * The closed set of errors Foreman answers with, and their one mapping to HTTP.
 * Services throw these; `toErrorResponse` turns anything thrown into `{ error }`.
 */

/** Base of every error that Foreman answers deliberately. */
export class ForemanError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra fields merged into the JSON answer (e.g. the existing job on a duplicate). */
    readonly details: Record<string, unknown> = {},
    /** Headers the answer carries (e.g. Retry-After). */
    readonly headers?: Record<string, string>,
  ) {
    super(message)
  }
}

/** Bad input: the message names the field. */
export class InvalidInput extends ForemanError {
  override name = 'InvalidInput'
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(400, `${field}: ${message}`, { field })
  }
}

/** A well-formed id that matches nothing. */
export class NotFound extends ForemanError {
  override name = 'NotFound'
  constructor(message: string) {
    super(404, message)
  }
}

/** The request collides with what is stored (e.g. a duplicate idempotency key). */
export class Conflict extends ForemanError {
  override name = 'Conflict'
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(409, message, details)
  }
}

/** The caller does not hold the running run it tries to act on, or the run is over. */
export class NotOwned extends ForemanError {
  override name = 'NotOwned'
  constructor(message: string) {
    super(409, message)
  }
}

/** The request body is over the configured limit. */
export class PayloadTooLarge extends ForemanError {
  override name = 'PayloadTooLarge'
  constructor(limit: number) {
    super(413, `request body is larger than ${limit} bytes`)
  }
}

/** Shape of one schema violation as Elysia/TypeBox report it. */
interface SchemaIssue {
  path?: string
  message?: string
  value?: unknown
  schema?: { anyOf?: { const?: unknown; type?: string; minLength?: number; maxLength?: number }[] }
}

/**
 * Postgres SQLSTATEs that mean "the client sent something we cannot store", not a
 * server fault. The edge refuses all of these first (schemas, json-walk); this is
 * the net for whatever gets past it. The answer never quotes Postgres' message,
 * which can carry SQL text and values.
 */
const CLIENT_SQLSTATES: Record<string, string> = {
  '22P02': 'is not valid for its type',
  '22P05': 'contains a character Postgres cannot store (such as \\u0000)',
  '22021': 'contains a byte sequence that is not valid UTF-8',
  '22001': 'is too long',
  '22003': 'is out of range',
  '22008': 'is not a valid timestamp',
  '22007': 'is not a valid timestamp',
  // invalid time zone displacement: an offset past ±15:59, or a year JavaScript writes as +010000.
  '22009': 'is not a valid timestamp',
  '54000': 'is too long to index',
  // stack depth limit exceeded: jsonb nested deeper than Postgres' parser recurses.
  '54001': 'is nested too deeply',
}

/**
 * Unique indexes whose violation is the client's conflict, not a server fault,
 * by the end of their name (after the table prefix). jobs_kind_active_key_key:
 * a retry (single or bulk) would make an ended job keyed while active live again
 * while a newer job of its kind holds the key (jobs/unique.ts).
 */
const CONFLICT_INDEXES: [string, string][] = [
  [
    'jobs_kind_active_key_key',
    'a live job of this kind holds the idempotency_key (unique_while_active): it must end before this job can be retried',
  ],
]

/**
 * Failures of the connection to Postgres, not of the statement: the database is
 * down, restarting or unreachable, and the same request may work in a moment.
 * postgres.js' own codes, the socket's errnos, and the SQLSTATEs a server sends
 * as it goes away or before it accepts connections.
 */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'CONNECTION_DESTROYED',
  'QUERY_DEADLINE', // ours: the call got no answer within its deadline (db/deadline.ts)
  '57P01', // admin_shutdown: the server is stopping (or was restarted in immediate mode)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or in recovery
  '53300', // too_many_connections: the server has no slot for us yet
])

/** Seconds a client is told to wait before retrying while the database is unavailable. */
export const DATABASE_RETRY_AFTER_SEC = 2

/** True when `code` (a postgres.js error's) says the database could not be reached, not that it refused the statement. */
export function isConnectionFailure(code: unknown): boolean {
  // SQLSTATE class 08: connection exception.
  return typeof code === 'string' && (CONNECTION_CODES.has(code) || (code.length === 5 && code.startsWith('08')))
}

/** What an error becomes on the wire. */
export interface ErrorResponse {
  status: number
  body: { error: string } & Record<string, unknown>
  /** Headers the answer carries (Retry-After on a 503). */
  headers?: Record<string, string>
  /** How loudly to log it: a server fault, or a database refusal the edge should have caught. */
  log?: 'error' | 'warn'
}

/**
 * Maps anything thrown while serving a request to a status and an `{ error }` body.
 * `code` is Elysia's error code when Elysia raised it.
 */
export function toErrorResponse(error: unknown, code?: string | number): ErrorResponse {
  // Elysia wraps errors thrown in onParse as PARSE; the original is the cause.
  const cause = error instanceof Error && error.cause instanceof ForemanError ? error.cause : error
  if (cause instanceof ForemanError) {
    return { status: cause.status, body: { error: cause.message, ...cause.details }, headers: cause.headers }
  }
  if (code === 'VALIDATION' && (error as { type?: string }).type !== 'response') {
    return { status: 400, body: validationBody(error) }
  }
  if (code === 'NOT_FOUND') return { status: 404, body: { error: 'route not found' } }
  if (code === 'PARSE') return { status: 400, body: { error: 'body: is not valid JSON' } }
  const sqlState = (error as { code?: unknown } | null)?.code
  if (sqlState === '23505') {
    const index = (error as { constraint_name?: unknown }).constraint_name
    const conflict = CONFLICT_INDEXES.find(([name]) => typeof index === 'string' && index.endsWith(name))
    if (conflict) return { status: 409, body: { error: conflict[1] } }
  }
  if (typeof sqlState === 'string' && Object.hasOwn(CLIENT_SQLSTATES, sqlState)) {
    return { status: 400, body: { error: `a value ${CLIENT_SQLSTATES[sqlState]}` }, log: 'warn' }
  }
  if (isConnectionFailure(sqlState)) {
    // Never the driver's message: it names the host and port.
    return {
      status: 503,
      body: { error: 'database unavailable' },
      headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SEC) },
      log: 'warn',
    }
  }
  return { status: 500, body: { error: 'internal server error' }, log: 'error' }
}

function validationBody(error: unknown): ErrorResponse['body'] {
  const e = error as { type?: string; all?: SchemaIssue[] }
  const where = e.type === 'query' ? 'query' : e.type === 'params' ? 'path' : 'body'
  const first = e.all?.[0]
  if (!first) return { error: `${where}: is invalid` }
  const field = (first.path ?? '').replace(/^\//, '').replaceAll('/', '.') || where
  return { error: `${field}: ${describeIssue(first, field !== where)}`, field }
}

/** Words for one schema violation; unions (enums, coerced numbers) get a plain reading. */
function describeIssue(issue: SchemaIssue, named: boolean): string {
  if (issue.value === undefined && named) return 'is required'
  const options = issue.schema?.anyOf ?? []
  const allowed = options.map((s) => s.const)
  if (allowed.length > 0 && allowed.every((v) => typeof v === 'string')) return `must be one of: ${allowed.join(', ')}`
  if (options.some((s) => s.type === 'integer')) return 'must be an integer'
  if (options.some((s) => s.type === 'number')) return 'must be a number'
  const text = options.find((s) => s.type === 'string')
  if (text && options.some((s) => s.type === 'null')) return `must be ${lengthWords(text)} or null`
  return lowerFirst(issue.message ?? 'is invalid')
}

/** "a string of 1–200 characters", as far as the schema bounds it. */
function lengthWords({ minLength, maxLength }: { minLength?: number; maxLength?: number }): string {
  if (minLength !== undefined && maxLength !== undefined) return `a string of ${minLength}–${maxLength} characters`
  if (maxLength !== undefined) return `a string of at most ${maxLength} characters`
  if (minLength !== undefined) return `a string of at least ${minLength} characters`
  return 'a string'
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1)
}
