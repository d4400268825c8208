/**
 * The console's only way to Foreman: the public HTTP API through the TS client
 * (src/client, fetch only), with the operator's token. A 401 from any call asks
 * the operator for a token again.
 */
import type {
  BulkBody,
  BulkResult,
  DatabaseHealth,
  Dependency,
  EnqueueBody,
  Job,
  QueueSummary,
  Run,
  Schedule,
  ScheduleBody,
  Stats,
  WorkerSummary,
} from '../../client/client'
import { ForemanClient } from '../../client/client'
import { ForemanError } from '../../client/errors'
import { createStore } from './store'

export type {
  BulkBody,
  BulkResult,
  DatabaseHealth,
  Dependency,
  Job,
  QueueSummary,
  Run,
  Schedule,
  ScheduleBody,
  Stats,
  WorkerSummary,
}
/** The filter of GET /jobs and of bulk actions. */
export type JobFilter = NonNullable<BulkBody['filter']>
/** What a bulk action does. */
export type BulkAction = BulkBody['action']

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

/** Every call the console makes. */
/** How old an overview answer (queues, workers, stats) may be: the same live feel, one read for many consoles. */
const SHARED_AGE_SECONDS = 2

export const api = {
  listJobs: (filter: JobFilter, cursor?: string, limit = 50) =>
    guarded(() => client.listJobs({ ...filter, cursor, limit })),
  getJob: (id: string) => guarded(() => client.getJob(id, { includeRun: true })),
  listJobRuns: (id: string) => guarded(() => client.listJobRuns(id)),
  cancel: (id: string) => guarded(() => client.cancel(id)),
  enqueue: (body: EnqueueBody) => guarded(() => client.enqueue(body)),
  retry: (id: string) => guarded(() => client.retry(id)),
  deleteJob: (id: string) => guarded(() => client.deleteJob(id)),
  bulk: (body: BulkBody) => guarded(() => client.bulk(body)),
  // The aggregate views accept an answer another console read a moment ago
  // (max_age_seconds), so open consoles share one read of each.
  listQueues: () => guarded(() => client.listQueues({ maxAgeSeconds: SHARED_AGE_SECONDS })),
  pauseQueue: (queue: string) => guarded(() => client.pauseQueue(queue)),
  resumeQueue: (queue: string) => guarded(() => client.resumeQueue(queue)),
  listWorkers: () => guarded(() => client.listWorkers({ maxAgeSeconds: SHARED_AGE_SECONDS })),
  stats: () => guarded(() => client.stats('1h', { maxAgeSeconds: SHARED_AGE_SECONDS })),
  databaseHealth: () => guarded(() => client.databaseHealth()),
  listSchedules: () => guarded(() => client.listSchedules({ limit: 200 })),
  createSchedule: (body: ScheduleBody) => guarded(() => client.createSchedule(body)),
  replaceSchedule: (id: string, body: ScheduleBody) => guarded(() => client.replaceSchedule(id, body)),
  deleteSchedule: (id: string) => guarded(() => client.deleteSchedule(id)),
  fireSchedule: (id: string) => guarded(() => client.fireSchedule(id)),
}

/** The message to show for a failed call. */
export function problem(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
