/**
 * The process's one connection to Foreman's change stream.
 *
 * Services `publish` what they changed right after it commits. Subscribers in this
 * process hear it at once; other instances hear it through one coalesced NOTIFY
 * per few-millisecond window (bench/events.ts, durable Postgres: enqueue with
 * events on was 0.89 of off with no window, 0.92 with 5 ms; each NOTIFY is a
 * transaction of its own). NOTIFY never runs inside a request's transaction, because Postgres
 * serialises the commits of notifying transactions (pg-boss's single enqueue fell
 * from 1,434 to 923 jobs/s here with it on). One LISTEN connection (postgres.js
 * `listen`, which re-listens after a reconnect) serves every subscriber; a slow
 * safety poll and each re-listen tell subscribers to resynchronise from the
 * tables, since NOTIFY is only a hint.
 */
import type { Sql } from '../db/client'
import type { Logger } from '../log'

/** What changed: enough to route a hint; consumers re-read the row for the data. */
export interface JobChange {
  id: string
  /** The job's status after the change, or `deleted` (retention). */
  status: string
  kind: string
  queue: string
}

/** The hint for a job's new state. */
export const changeOf = (job: { id: string; status: string; kind: string; queue: string }): JobChange => ({
  id: job.id,
  status: job.status,
  kind: job.kind,
  queue: job.queue,
})

/** What a subscriber hears. */
export type HubEvent = { type: 'changes'; changes: JobChange[] } | { type: 'resync'; reason: ResyncReason }

/**
 * Why subscribers resynchronise: `poll`, the safety poll's tick (a change another
 * instance failed to announce); `relisten`, the LISTEN connection came back (any
 * number of changes went unheard); `unreadable`, a notification could not be read.
 */
export type ResyncReason = 'poll' | 'relisten' | 'unreadable'

/** A subscriber callback; it must not throw (errors are logged and dropped). */
export type HubListener = (event: HubEvent) => void

/** How the hub is wired. */
export interface HubOptions {
  /** The pool whose dedicated LISTEN connection receives other instances' changes. */
  listenSql: Sql
  /** A connection of its own for NOTIFY; null keeps changes in this process. */
  notifySql: Sql | null
  channel: string
  log: Logger
  /** Safety poll: how often subscribers resynchronise even without a hint. */
  pollIntervalMs: number
  /** How long changes gather before one NOTIFY carries them (at most one NOTIFY per window). */
  notifyWindowMs: number
}

/** How long stop() waits for UNLISTEN; the connection closes with the pool either way. */
export const UNLISTEN_WAIT_MS = 2000

/**
 * UNLISTEN, waiting at most `ms`. It runs on the LISTEN connection, outside the
 * pool's deadlines: on a connection that stopped answering it would hold the
 * shutdown for good.
 */
export async function unlistenWithin(unlisten: (() => Promise<unknown>) | undefined, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([
    unlisten?.().catch(() => {}),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms)
    }),
  ])
  clearTimeout(timer)
}

/** Postgres rejects NOTIFY payloads of 8,000 bytes or more; stay clear of it. */
const MAX_PAYLOAD_BYTES = 7_500

/** Splits changes into NOTIFY payloads under the size limit: `{"o":origin,"c":[[id,status,kind,queue],…]}`. */
export function encodeChanges(origin: string, changes: JobChange[]): string[] {
  const payloads: string[] = []
  const head = `{"o":${JSON.stringify(origin)},"c":[`
  let body: string[] = []
  let size = head.length + 2
  for (const c of changes) {
    const entry = JSON.stringify([c.id, c.status, c.kind, c.queue])
    const bytes = Buffer.byteLength(entry) + 1
    if (body.length > 0 && size + bytes > MAX_PAYLOAD_BYTES) {
      payloads.push(`${head}${body.join(',')}]}`)
      body = []
      size = head.length + 2
    }
    body.push(entry)
    size += bytes
  }
  if (body.length > 0) payloads.push(`${head}${body.join(',')}]}`)
  return payloads
}

/** Parses a NOTIFY payload; null when it is not ours. */
export function decodeChanges(payload: string): { origin: string; changes: JobChange[] } | null {
  try {
    const parsed = JSON.parse(payload) as { o?: unknown; c?: unknown }
    if (typeof parsed.o !== 'string' || !Array.isArray(parsed.c)) return null
    const changes = (parsed.c as unknown[][]).map(([id, status, kind, queue]) => ({
      id: String(id),
      status: String(status),
      kind: String(kind),
      queue: String(queue),
    }))
    return { origin: parsed.o, changes }
  } catch {
    return null
  }
}

/** Counters for tests and metrics. */
export interface HubStats {
  subscribers: number
  listening: boolean
  published: number
  notifies: number
  received: number
  queued: number
}

/** Fan-out of job changes within a process and across instances. */
export class EventHub {
  readonly origin = crypto.randomUUID()
  private readonly listeners = new Set<HubListener>()
  private queued: JobChange[] = []
  private flushing: Promise<void> | undefined
  private pollTimer: ReturnType<typeof setInterval> | undefined
  private unlisten: (() => Promise<unknown>) | undefined
  private listens = 0
  private readonly counts = { published: 0, notifies: 0, received: 0 }

  constructor(private readonly options: HubOptions) {}

  /** Starts listening and the safety poll. */
  async start(): Promise<void> {
    const { listenSql, channel, pollIntervalMs } = this.options
    const handle = await listenSql.listen(
      channel,
      (payload) => this.received(payload),
      // Called on every (re)listen: after a reconnect, changes may have been missed.
      () => {
        if (this.listens++ > 0) this.emit({ type: 'resync', reason: 'relisten' })
      },
    )
    this.unlisten = handle.unlisten
    this.pollTimer = setInterval(() => this.emit({ type: 'resync', reason: 'poll' }), pollIntervalMs)
  }

  /** Stops polling, sends what is queued, and stops listening. */
  async stop(): Promise<void> {
    clearInterval(this.pollTimer)
    this.pollTimer = undefined
    await this.flushing
    await unlistenWithin(this.unlisten, UNLISTEN_WAIT_MS)
    this.unlisten = undefined
  }

  /** Adds a subscriber; answers the function that removes it. */
  subscribe(listener: HubListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Announces committed changes: to this process now, to other instances in the next NOTIFY. */
  publish(changes: JobChange[]): void {
    if (changes.length === 0) return
    this.counts.published += changes.length
    this.emit({ type: 'changes', changes })
    if (!this.options.notifySql) return
    this.queued.push(...changes)
    this.flushing ??= this.flush()
  }

  /** Current counters. */
  stats(): HubStats {
    return {
      subscribers: this.listeners.size,
      listening: this.unlisten !== undefined,
      ...this.counts,
      queued: this.queued.length,
    }
  }

  private async flush(): Promise<void> {
    const { notifySql, channel, log } = this.options
    try {
      while (this.queued.length > 0 && notifySql) {
        await Bun.sleep(this.options.notifyWindowMs)
        const batch = this.queued
        this.queued = []
        const payloads = encodeChanges(this.origin, batch)
        try {
          await notifySql`select pg_notify(${channel}, p) from unnest(${payloads}::text[]) as p`
          this.counts.notifies += payloads.length
        } catch (err) {
          // Other instances catch up on their safety poll; this one already knows.
          log.warn({ err, changes: batch.length }, 'NOTIFY failed; other instances will resync on their poll')
        }
      }
    } finally {
      this.flushing = undefined
    }
  }

  private received(payload: string): void {
    const decoded = decodeChanges(payload)
    if (!decoded) {
      this.options.log.warn({ payload: payload.slice(0, 200) }, 'unreadable change notification; resyncing')
      this.emit({ type: 'resync', reason: 'unreadable' })
      return
    }
    if (decoded.origin === this.origin) return
    this.counts.received += decoded.changes.length
    this.emit({ type: 'changes', changes: decoded.changes })
  }

  private emit(event: HubEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch (err) {
        this.options.log.error({ err }, 'event subscriber failed')
      }
    }
  }
}
