/** The rules of the live views: one job's stream, the all-jobs stream, and waiting for an outcome. */
import type { Deps } from '../deps'
import { InvalidInput, NotFound } from '../errors'
import { parseTimestamp } from '../http/schema'
import { isTerminal, type Job } from '../jobs/model'
import type { FeedUpdate } from './feed'
import {
  jobsByIds,
  jobsChangedSince,
  OVERLAP_MS,
  overlapped,
  type ReplayCursor,
  type StreamFilter,
  toVersion,
  type VersionedJob,
} from './sql'
import { type SseEnd, type SseOptions, sseHeadResponse, sseResponse } from './sse'

/** Reconnecting clients are told to wait this long. */
const RETRY_MS = 2000
/**
 * Unread bytes a client may leave queued before its stream is ended (it resumes
 * with Last-Event-ID). With FOREMAN_MAX_STREAMS this bounds what streams cost.
 */
export const STREAM_BUDGET_BYTES = 1024 * 1024
/** Live changes held while a replay runs; beyond it they are dropped and read again from the tables. */
const HELD_LIMIT = 1000
const REPLAY_PAGE = 500
/** A stream's record of what it sent is pruned of old entries once it holds this many. */
const SENT_PRUNE_AT = 10_000

/** An event id: the change's version and the job id, which `Last-Event-ID` hands back. */
const eventId = (v: { version: string; id: string }) => `${v.version}/${v.id}`

/** Reads `Last-Event-ID` or `since` (an event id or an RFC 3339 timestamp) into a replay cursor. */
export function parseCursor(raw: string, field: string): ReplayCursor {
  const [stamp = '', id = ''] = raw.split('/')
  if (!/^\d{4}-\d\d-\d\dT/.test(stamp) || Number.isNaN(Date.parse(stamp))) {
    throw new InvalidInput(field, 'must be an event id or an RFC 3339 timestamp')
  }
  // Out of years 0001–9999 a version would not compare (or reach Postgres) as one.
  const ms = parseTimestamp(stamp, field).getTime()
  // Our own ids carry the exact version; a plain timestamp is taken to the millisecond.
  const exact = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(stamp)
  return { version: exact ? stamp : toVersion(ms), id }
}

/**
 * HEAD /events/:id: what GET would answer before streaming (404 for an unknown
 * job), without the stream.
 */
export async function headJob(deps: Deps, id: string): Promise<Response> {
  const [job] = await jobsByIds(deps.sql, deps.tables, [id])
  if (!job) throw new NotFound(`job ${id} not found`)
  return sseHeadResponse()
}

/**
 * The stream of one job: its state at once, then one event per change, closing
 * after the terminal state. Throws NotFound (before any streaming) for an unknown id.
 */
export async function streamJob(deps: Deps, id: string, signal?: AbortSignal): Promise<Response> {
  const { feed } = deps.events
  const options = streamOptions(deps, signal)
  // Watch before the first read, so no change can fall between the two.
  const early: FeedUpdate[] = []
  let forward: ((update: FeedUpdate) => void) | undefined
  const unwatch = feed.watchJob(id, (update) => (forward ? forward(update) : early.push(update)))
  let initial: VersionedJob | undefined
  try {
    ;[initial] = await jobsByIds(deps.sql, deps.tables, [id])
  } catch (err) {
    unwatch()
    options.onEnd('aborted')
    throw err
  }
  if (!initial) {
    unwatch()
    options.onEnd('aborted')
    throw new NotFound(`job ${id} not found`)
  }
  const first = initial
  return sseResponse((channel) => {
    let last = { version: '', data: '' }
    const send = ({ job, version }: VersionedJob) => {
      const data = JSON.stringify(job)
      // Re-reads are ordered, but a duplicate hint re-reads an unchanged row.
      if (version < last.version || data === last.data) return
      last = { version, data }
      channel.sendJson('job', data, eventId({ version, id: job.id }))
      if (isTerminal(job.status)) channel.close()
    }
    forward = (update) => (update.type === 'job' ? send(update.versioned) : channel.close())
    send(first)
    for (const update of early.splice(0)) forward(update)
    return unwatch
  }, options)
}

/**
 * Takes a stream slot (throws StreamsFull at FOREMAN_MAX_STREAMS) and answers the
 * stream's settings; their `onEnd` gives the slot back and must run however the
 * request ends, also when it fails before streaming.
 */
function streamOptions(deps: Deps, signal: AbortSignal | undefined): SseOptions & { onEnd: (why: SseEnd) => void } {
  const { events, metrics, log } = deps
  let release: () => void
  try {
    release = events.streams.take(deps.config.maxStreams)
  } catch (err) {
    metrics.eventStreamsShed.inc({ reason: 'at_capacity' })
    throw err
  }
  metrics.eventStreamsOpen.set(events.streams.open)
  return {
    keepAliveMs: deps.config.sseKeepAliveSec * 1000,
    retryMs: RETRY_MS,
    budgetBytes: STREAM_BUDGET_BYTES,
    signal: until(deps, signal),
    onEnd(why) {
      release()
      metrics.eventStreamsOpen.set(events.streams.open)
      if (why !== 'over-budget') return
      metrics.eventStreamsShed.inc({ reason: 'over_budget' })
      log.warn({ budgetBytes: STREAM_BUDGET_BYTES }, 'event stream ended: the client left more than its budget unread')
    },
  }
}

/** Ends with the client, or with the process shutting down. */
export function until(deps: Deps, signal?: AbortSignal): AbortSignal {
  return signal ? AbortSignal.any([signal, deps.events.closing]) : deps.events.closing
}

/**
 * The stream of every job matching `filter`. With a cursor (Last-Event-ID or
 * since) it first replays what changed after it (from a little before an event
 * id: commits can land out of timestamp order), as far as the tables still hold it; on each resync it
 * replays again from a little before its last event, so a lost NOTIFY costs
 * latency, not events. Delivery is at least once: every event is a full state, so
 * a repeat is harmless.
 */
export async function streamAll(
  deps: Deps,
  filter: StreamFilter,
  since: ReplayCursor | undefined,
  signal?: AbortSignal,
): Promise<Response> {
  const { sql, tables, log, events } = deps
  const options = streamOptions(deps, signal)
  let cursor: ReplayCursor
  try {
    cursor = since ?? (await databaseNow(deps))
  } catch (err) {
    options.onEnd('aborted')
    throw err
  }
  return sseResponse((channel) => {
    // Per job: the version and a hash of the state last sent. A version can repeat
    // with new content (a cancel does not move past the running run's stamp).
    const sent = new Map<string, { version: string; hash: number | bigint }>()
    let prunedAt = 0
    let held: FeedUpdate[] = []
    let replaying = false
    let replayAgain = false
    // The oldest version among changes dropped from `held`. The next replay starts
    // there, not at the cursor: a change can commit well after its version's time
    // (a slow transaction, a database restart), behind rows the cursor has passed.
    let droppedFrom: string | undefined

    const deliver = ({ job, version }: VersionedJob) => {
      const data = JSON.stringify(job)
      const hash = Bun.hash(data)
      const previous = sent.get(job.id)
      if (previous && (previous.version > version || (previous.version === version && previous.hash === hash))) return
      sent.set(job.id, { version, hash })
      if (version > cursor.version || (version === cursor.version && job.id > cursor.id)) {
        cursor = { version, id: job.id }
      }
      channel.sendJson('job', data, eventId({ version, id: job.id }))
      // Live streams no longer replay on every poll tick, so the map is kept small here too.
      if (sent.size >= SENT_PRUNE_AT && performance.now() - prunedAt > 1000) {
        prunedAt = performance.now()
        forgetOld()
      }
    }
    const handle = (update: FeedUpdate) => {
      if (update.type === 'job') return deliver(update.versioned)
      const { id, kind, queue } = update.change
      channel.send('deleted', { id, kind, queue }, eventId(cursor))
    }
    const forgetOld = () => {
      if (sent.size < SENT_PRUNE_AT) return
      const horizon = toVersion(Date.parse(cursor.version) - OVERLAP_MS * 2)
      for (const [id, seen] of sent) if (seen.version < horizon) sent.delete(id)
    }
    const replay = async (from: ReplayCursor) => {
      if (replaying) {
        replayAgain = true
        return
      }
      replaying = true
      const dropped = droppedFrom
      droppedFrom = undefined
      try {
        let after = dropped !== undefined && dropped < from.version ? overlapped({ version: dropped, id: '' }) : from
        for (;;) {
          const page = await jobsChangedSince(sql, tables, after, filter, REPLAY_PAGE)
          for (const row of page) {
            // A replay goes at the pace the client reads, so it never ends the stream
            // for being over budget however long the backlog.
            await channel.room()
            if (channel.closed) return
            deliver(row)
          }
          const last = page.at(-1)
          if (!last || page.length < REPLAY_PAGE) break
          after = { version: last.version, id: last.job.id }
        }
      } catch (err) {
        // The next replay must still reach back to what was dropped.
        droppedFrom = earlier(droppedFrom, dropped)
        log.warn({ err }, 'event replay failed; will retry on the next resync')
      } finally {
        replaying = false
        for (const update of held.splice(0)) handle(update)
        forgetOld()
        if (replayAgain && !channel.closed) {
          replayAgain = false
          void replay(overlapped(cursor))
        }
      }
    }

    const hold = (update: FeedUpdate) => {
      if (held.push(update) <= HELD_LIMIT) return
      // Changes pile up behind a replay: the next replay reads them from the
      // tables instead, from the oldest dropped version on. If the replay is
      // waiting on a client that is not reading, the client is too far behind:
      // end its stream as for a full budget.
      for (const dropped of held)
        if (dropped.type === 'job') droppedFrom = earlier(droppedFrom, dropped.versioned.version)
      // Deletions are not in the tables any more to be read again; they are few.
      held = held.filter((kept) => kept.type === 'deleted')
      replayAgain = true
      if (!channel.hasRoom) channel.shed()
    }
    const unwatch = events.feed.watchAll({
      filter,
      from: cursor,
      deliver: (update) => (replaying ? hold(update) : handle(update)),
      resync: () => void replay(overlapped(cursor)),
    })
    // After an event id, commits can land out of timestamp order across jobs, so
    // reach back a little; a plain timestamp (no job id) is taken as given.
    if (since) void replay(since.id ? overlapped(since) : since)
    return unwatch
  }, options)
}

/** The earlier of two versions, either possibly absent. */
function earlier(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b
  return b === undefined || a < b ? a : b
}

/** The database's clock as a cursor: streams compare against database timestamps. */
async function databaseNow({ sql }: Deps): Promise<ReplayCursor> {
  const [row] = await sql<{ version: string }[]>`
    select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as version`
  return { version: row?.version ?? toVersion(Date.now()), id: '' }
}

/**
 * Waits until a job is terminal, `ms` pass, or the signal aborts; answers the job
 * as it then stands (with current_run).
 */
export function waitForTerminal(deps: Deps, job: Job, ms: number, clientSignal?: AbortSignal): Promise<Job> {
  if (isTerminal(job.status) || ms <= 0) return Promise.resolve(job)
  const signal = until(deps, clientSignal)
  return new Promise((resolve) => {
    let latest: VersionedJob = { job, version: '' }
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      signal.removeEventListener('abort', finish)
      unwatch()
      resolve(latest.job)
    }
    const seen = (current: VersionedJob) => {
      // Two re-reads may answer out of order; keep the newer state.
      if (current.version < latest.version) return
      latest = current
      if (isTerminal(current.job.status)) finish()
    }
    const unwatch = deps.events.feed.watchJob(job.id, (update) => {
      if (update.type === 'job') seen(update.versioned)
      else finish()
    })
    const timer = setTimeout(finish, ms)
    if (signal.aborted) return finish()
    signal.addEventListener('abort', finish, { once: true })
    // It may have finished before the watch began.
    jobsByIds(deps.sql, deps.tables, [job.id]).then(
      ([current]) => current && !done && seen(current),
      () => {},
    )
  })
}
