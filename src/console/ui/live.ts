/**
 * The console's one live connection: GET /foreman/events read with fetch (an
 * EventSource cannot send the Authorization header), parsed by the client's SSE
 * parser. Every page listens here; nothing polls. When the stream drops, the
 * console says so and reconnects with Last-Event-ID, so the server replays what
 * changed meanwhile.
 *
 * Two things keep a busy Foreman from costing the browser (and the server) more
 * than the page shows: events reach the pages in batches, at most every
 * FLUSH_MS, so a burst of thousands renders a few times rather than once per
 * event; and a tab hidden for HIDDEN_CLOSE_MS closes its stream (resuming with
 * Last-Event-ID when shown again), because a browser keeps at most six HTTP/1.1
 * connections per host and a seventh console tab would otherwise wait for one.
 */
import type { DeletedJob, Job } from '../../client/client'
import { parseSse } from '../../client/sse'
import { API_BASE, askForToken, currentToken, onTokenChange } from './api'
import { createStore } from './store'

/** The stream's state, shown in the header. */
export interface Connection {
  /** `paused`: the tab is hidden and its stream closed until it is shown. */
  state: 'connecting' | 'live' | 'lost' | 'paused'
  /** Why it was lost, for the banner. */
  reason?: string
}

/** One change: a job's new state, or its removal. */
export type LiveEvent = { type: 'job'; job: Job } | { type: 'deleted'; deleted: DeletedJob }

export const connection = createStore<Connection>({ state: 'connecting' })

const listeners = new Set<(event: LiveEvent) => void>()
let lastEventId: string | undefined
/**
 * Where to resume when the stream dropped before its first event (no id yet): the
 * server's clock at the first connect (its Date header, a second earlier, since it
 * has second resolution). A replay may repeat a change; pages take a job's state
 * as it comes, so a repeat is harmless.
 */
let openedAt: string | undefined
let current: AbortController | undefined

/** How often batched events reach the pages. */
const FLUSH_MS = 100
/** How long a tab stays hidden before its stream is closed. */
const HIDDEN_CLOSE_MS = 10_000
let batch: LiveEvent[] = []
/** A flush is scheduled. */
let flushDue = false

/** Hands the batch to every listener in one task, so the pages render once for all of it. */
function flush(): void {
  flushDue = false
  const events = batch
  batch = []
  for (const event of events) for (const listener of listeners) listener(event)
}

function deliver(event: LiveEvent): void {
  batch.push(event)
  if (flushDue) return
  flushDue = true
  setTimeout(flush, FLUSH_MS)
}

/** Calls `listener` with every event; answers the unsubscribe. */
export function onLiveEvent(listener: (event: LiveEvent) => void): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      resolve()
    })
  })

/** Reads one connection until it ends; answers why it ended. */
async function readStream(signal: AbortSignal): Promise<string> {
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  const token = currentToken()
  if (token) headers.authorization = `Bearer ${token}`
  if (lastEventId) headers['last-event-id'] = lastEventId
  const since = !lastEventId && openedAt ? `?since=${encodeURIComponent(openedAt)}` : ''
  const res = await fetch(`${API_BASE}/events${since}`, { headers, signal })
  if (res.status === 401) {
    askForToken('the event stream was refused')
    return 'a token is needed'
  }
  if (!res.ok || !res.body) return `the server answered ${res.status}`
  const serverNow = Date.parse(res.headers.get('date') ?? '')
  if (!openedAt && Number.isFinite(serverNow)) openedAt = new Date(serverNow - 1000).toISOString()
  connection.set({ state: 'live' })
  for await (const message of parseSse(res.body)) {
    if (message.id) lastEventId = message.id
    const data = JSON.parse(message.data)
    const event: LiveEvent | undefined =
      message.event === 'job'
        ? { type: 'job', job: data as Job }
        : message.event === 'deleted'
          ? { type: 'deleted', deleted: data as DeletedJob }
          : undefined
    if (event) deliver(event)
  }
  return 'the server closed the stream'
}

/** Keeps one stream open for as long as the page lives; waits longer after each failure, up to 10 s. */
async function run(signal: AbortSignal): Promise<void> {
  let delayMs = 500
  while (!signal.aborted) {
    let reason: string
    try {
      reason = await readStream(signal)
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error)
    }
    if (signal.aborted) return
    // A stream that was up starts the back-off afresh.
    if (connection.get().state === 'live') delayMs = 500
    connection.set({ state: 'lost', reason })
    // A refused token waits for a new one (onTokenChange restarts the stream).
    if (reason === 'a token is needed') return
    await sleep(delayMs, signal)
    delayMs = Math.min(delayMs * 2, 10_000)
    if (!signal.aborted) connection.set({ state: 'connecting', reason })
  }
}

/** Opens the stream (again, after a token change). */
export function startLive(): void {
  current?.abort()
  current = new AbortController()
  connection.set({ state: 'connecting' })
  void run(current.signal)
}

let hiddenTimer: ReturnType<typeof setTimeout> | undefined

/** Closes the stream of a tab hidden for a while; opens it again (resuming) when the tab is shown. */
function followVisibility(): void {
  clearTimeout(hiddenTimer)
  if (document.visibilityState === 'hidden') {
    hiddenTimer = setTimeout(() => {
      current?.abort()
      connection.set({ state: 'paused', reason: 'the tab is hidden' })
    }, HIDDEN_CLOSE_MS)
  } else if (connection.get().state === 'paused') {
    startLive()
  }
}

onTokenChange(startLive)
document.addEventListener('visibilitychange', followVisibility)
