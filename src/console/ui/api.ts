/**
 * The console's only way to Foreman: the public HTTP API, with the operator's
 * token. The TS client (src/client) covers the original routes; the routes of
 * issue 11 are called here by the contract until the client carries them. A 401
 * from any call asks the operator for a token again.
 */
import type { EnqueueBody, Job, Run, Schedule, ScheduleBody } from '../../client/client'
import { ForemanClient } from '../../client/client'
import { ForemanError } from '../../client/errors'
import { createStore } from './store'

export type { Job, Run, Schedule, ScheduleBody }

/** Foreman's API root, as the page is served under it (`/foreman/ui`). */
export const API_BASE = '/foreman'
const TOKEN_KEY = 'foreman.console.token'

/** Why the console needs a token: null while it has none to ask for, else the message to show. */
export const tokenPrompt = createStore<string | null>(null)

let token: string | undefined = sessionStorage.getItem(TOKEN_KEY) ?? undefined
let client = makeClient()
const tokenListeners = new Set<() => void>()

function makeClient() {
  return new ForemanClient({ baseUrl: `${location.origin}${API_BASE}`, token, retries: 1 })
}

/** The token to send (undefined when none was given). */
export const currentToken = () => token

/** Keeps `value` for this browser session and retries what needed it. */
export function setToken(value: string): void {
  token = value.trim() || undefined
  if (token) sessionStorage.setItem(TOKEN_KEY, token)
  else sessionStorage.removeItem(TOKEN_KEY)
  client = makeClient()
  tokenPrompt.set(null)
  for (const listener of tokenListeners) listener()
}

/** Runs `listener` after the token changes (the event stream reconnects, pages reload). */
export function onTokenChange(listener: () => void): () => void {
  tokenListeners.add(listener)
  return () => tokenListeners.delete(listener)
}

/** Shows the token prompt for a 401 answer. */
export function askForToken(message: string): void {
  tokenPrompt.set(token ? `The token was not accepted (${message}).` : 'This Foreman needs an API token.')
}

async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    if (error instanceof ForemanError && error.status === 401) askForToken(error.message)
    throw error
  }
}

/** A call to a route the TS client does not have yet; errors as ForemanError, like the client's. */
async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${API_BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  let parsed: unknown = null
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {}
  if (!res.ok) {
    const message = (parsed as { error?: unknown } | null)?.error
    throw new ForemanError(res.status, typeof message === 'string' ? message : text || `HTTP ${res.status}`, parsed)
  }
  return parsed as T
}

/** GET /queues, one row: counts now and in the last minute and hour, per kind too. */
export interface QueueSummary {
  queue: string
  paused: boolean
  paused_at: string | null
  pending: number
  scheduled: number
  active: number
  oldest_pending_age_seconds: number | null
  succeeded_last_minute: number
  failed_last_minute: number
  succeeded_last_hour: number
  failed_last_hour: number
  kinds: {
    kind: string
    pending: number
    scheduled: number
    active: number
    succeeded_last_hour: number
    failed_last_hour: number
  }[]
}

/** GET /workers, one row. */
export interface WorkerSummary {
  worker_id: string
  running: {
    run_id: string
    job_id: string
    kind: string
    queue: string
    attempt: number
    started_at: string
    lease_expires_at: string | null
    progress_current: number | null
    progress_total: number | null
    progress_message: string | null
  }[]
  last_heartbeat_at: string | null
  finished_last_hour: number
  succeeded_last_hour: number
  failed_last_hour: number
}

/** GET /stats: per minute and kind, only minutes with activity. */
export interface Throughput {
  from: string
  to: string
  bucket_seconds: number
  rows: { minute: string; kind: string; enqueued: number; succeeded: number; failed: number; retried: number }[]
}

/** GET /database: what Foreman measures of its tables, and plain-words warnings. */
export interface DatabaseHealth {
  tables: {
    table: string
    live_tuples: number
    dead_tuples: number
    last_autovacuum: string | null
    last_autoanalyze: string | null
  }[]
  oldest_transaction_age_seconds: number | null
  warnings: string[]
}

/** The filter of GET /jobs and of bulk actions. */
export interface JobFilter {
  status?: string
  kind?: string
  queue?: string
  service?: string
  /** JSON object the params must contain. */
  params?: Record<string, unknown>
}

/** What a bulk action does. */
export type BulkAction = 'cancel' | 'retry' | 'delete'

/** POST /jobs/bulk: exactly one of `filter` and `ids`. */
export interface BulkBody {
  action: BulkAction
  filter?: JobFilter
  ids?: string[]
  limit?: number
  dry_run?: boolean
}

/** POST /jobs/bulk's answer. */
export interface BulkResult {
  matched: number
  changed: number
  more: boolean
}

const enc = encodeURIComponent

/** Every call the console makes. */
export const api = {
  listJobs: (filter: JobFilter, cursor?: string, limit = 50) =>
    guarded(() => request<Job[]>('GET', `/jobs?${jobQuery(filter, cursor, limit)}`)),
  getJob: (id: string) => guarded(() => client.getJob(id, { includeRun: true })),
  listJobRuns: (id: string) => guarded(() => client.listJobRuns(id)),
  cancel: (id: string) => guarded(() => client.cancel(id)),
  enqueue: (body: EnqueueBody) => guarded(() => client.enqueue(body)),
  retry: (id: string) => guarded(() => request<Job>('POST', `/jobs/${enc(id)}/retry`)),
  deleteJob: (id: string) => guarded(() => request<{ id: string }>('DELETE', `/jobs/${enc(id)}`)),
  bulk: (body: BulkBody) => guarded(() => request<BulkResult>('POST', '/jobs/bulk', body)),
  listQueues: () => guarded(() => request<QueueSummary[]>('GET', '/queues')),
  pauseQueue: (queue: string) => guarded(() => request<QueueSummary>('POST', `/queues/${enc(queue)}/pause`)),
  resumeQueue: (queue: string) => guarded(() => request<QueueSummary>('POST', `/queues/${enc(queue)}/resume`)),
  listWorkers: () => guarded(() => request<WorkerSummary[]>('GET', '/workers')),
  stats: (window = '1h') => guarded(() => request<Throughput>('GET', `/stats?window=${enc(window)}`)),
  databaseHealth: () => guarded(() => request<DatabaseHealth>('GET', '/database')),
  listSchedules: () => guarded(() => client.listSchedules({ limit: 200 })),
  createSchedule: (body: ScheduleBody) => guarded(() => client.createSchedule(body)),
  replaceSchedule: (id: string, body: ScheduleBody) => guarded(() => client.replaceSchedule(id, body)),
  deleteSchedule: (id: string) => guarded(() => client.deleteSchedule(id)),
  fireSchedule: (id: string) => guarded(() => client.fireSchedule(id)),
}

/** GET /jobs's query string; `params` goes as JSON text. */
function jobQuery(filter: JobFilter, cursor: string | undefined, limit: number): string {
  const { params, ...rest } = filter
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(rest)) if (value) query.set(key, value)
  if (params) query.set('params', JSON.stringify(params))
  if (cursor) query.set('cursor', cursor)
  query.set('limit', String(limit))
  return query.toString()
}

/** The message to show for a failed call. */
export function problem(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
