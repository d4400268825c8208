/**
 * Turns change hints into job states for the live views. Hints for watched jobs
 * are collected and re-read in one query per batch of up to 250 (however many
 * streams watch), so NOTIFY stays a hint and every state sent comes from the
 * table. Re-reads run one at a time, so each watcher sees a job's states in order.
 *
 * The safety poll's catch-up is shared the same way: one read of what changed
 * since a little before the newest state the feed has read, handed to every
 * stream (each drops what it already sent). Each stream replaying from its own
 * cursor instead cost a read of the last two seconds' changes per stream per
 * tick: with 10 consoles open under load, three times the database CPU per job
 * (bench/console-cost.ts). A re-listen or an unreadable notification, after which
 * any number of changes may have gone unheard, still has each stream replay.
 */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'
import type { Logger } from '../log'
import type { EventHub, HubEvent, JobChange } from './hub'
import { jobsByIds, jobsChangedSince, overlapped, type ReplayCursor, type StreamFilter, type VersionedJob } from './sql'

/** What a watcher receives: the job as it now stands, or word that it was deleted. */
export type FeedUpdate = { type: 'job'; versioned: VersionedJob } | { type: 'deleted'; change: JobChange }

/**
 * Most jobs one re-read fetches. Each batch reaches a stream as one burst of
 * writes, which its byte budget lets through whole (see sse.ts), so this bounds how
 * far past the budget a burst can go: 250 jobs of 8 KiB are about 2 MiB.
 */
const REREAD_BATCH = 250
/** Jobs per page of a poll catch-up. */
const CATCH_UP_PAGE = 500

/** One job's watcher. */
export type JobWatcher = (update: FeedUpdate) => void

/** A watcher of every job matching a filter (the all-jobs stream). */
export interface StreamWatcher {
  filter: StreamFilter
  /** Where the stream starts (its cursor when it began watching): the feed's catch-ups reach back at least there. */
  from: ReplayCursor
  deliver: (update: FeedUpdate) => void
  /** The feed may have missed any number of changes (a re-listen): catch up from the tables. */
  resync: () => void
}

/** Counters for tests and metrics. */
export interface FeedStats {
  watchedJobs: number
  jobWatchers: number
  streams: number
  pending: number
}

/** True when a job (or a hint about it) passes a stream's filter. */
export function matchesFilter(filter: StreamFilter, job: { kind: string; queue: string; status: string }): boolean {
  return (
    (filter.kind === undefined || filter.kind === job.kind) &&
    (filter.queue === undefined || filter.queue === job.queue) &&
    (filter.status === undefined || filter.status === job.status)
  )
}

/** Batches hints into re-reads and hands the states to watchers. */
export class JobFeed {
  private readonly byJob = new Map<string, Set<JobWatcher>>()
  private readonly streams = new Set<StreamWatcher>()
  /** Hints waiting for the next re-read, by job id (the latest hint wins). */
  private pending = new Map<string, JobChange | null>()
  private reading: Promise<void> | undefined
  /** The newest state the feed has read while streams watched; a poll catch-up starts a little before it. */
  private cursor: ReplayCursor | undefined
  private catchingUp = false
  private readonly unsubscribe: () => void

  constructor(
    hub: EventHub,
    private readonly sql: Sql,
    private readonly tables: Tables,
    private readonly log: Logger,
  ) {
    this.unsubscribe = hub.subscribe((event) => this.heard(event))
  }

  /** Watches one job; answers the function that stops watching. */
  watchJob(id: string, watcher: JobWatcher): () => void {
    const watchers = this.byJob.get(id) ?? new Set<JobWatcher>()
    this.byJob.set(id, watchers)
    watchers.add(watcher)
    return () => {
      watchers.delete(watcher)
      if (watchers.size === 0 && this.byJob.get(id) === watchers) this.byJob.delete(id)
    }
  }

  /** Watches every job matching a filter; answers the function that stops watching. */
  watchAll(stream: StreamWatcher): () => void {
    this.streams.add(stream)
    if (!this.cursor || stream.from.version < this.cursor.version) this.cursor = stream.from
    return () => {
      this.streams.delete(stream)
      // With no stream left nothing needs catching up; the next stream sets the start.
      if (this.streams.size === 0) this.cursor = undefined
    }
  }

  /** Current counters. */
  stats(): FeedStats {
    let jobWatchers = 0
    for (const set of this.byJob.values()) jobWatchers += set.size
    return { watchedJobs: this.byJob.size, jobWatchers, streams: this.streams.size, pending: this.pending.size }
  }

  /** Stops listening to the hub. */
  close(): void {
    this.unsubscribe()
  }

  private heard(event: HubEvent): void {
    if (event.type === 'resync') {
      for (const id of this.byJob.keys()) if (!this.pending.has(id)) this.pending.set(id, null)
      if (event.reason === 'poll') void this.catchUp()
      else for (const stream of this.streams) stream.resync()
    } else {
      for (const change of event.changes) {
        if (this.byJob.has(change.id) || this.wantedByStream(change)) this.pending.set(change.id, change)
      }
    }
    if (this.pending.size > 0) this.reading ??= this.readPending()
  }

  private wantedByStream(change: JobChange): boolean {
    // The status filter is applied to the re-read state, not the hint.
    for (const s of this.streams) if (matchesFilter({ ...s.filter, status: undefined }, change)) return true
    return false
  }

  private async readPending(): Promise<void> {
    try {
      while (this.pending.size > 0) {
        const batch = this.takeBatch()
        let found: VersionedJob[]
        try {
          found = await jobsByIds(this.sql, this.tables, [...batch.keys()])
        } catch (err) {
          // Keep the batch for the next hint or poll tick rather than spin on a sick
          // database. Dropping it would lose those changes for good: a stream's resync
          // replays from its cursor, which later events move past these jobs. A newer
          // hint for a job, heard meanwhile, wins.
          for (const [id, change] of batch) if (!this.pending.has(id)) this.pending.set(id, change)
          this.log.warn({ err, jobs: batch.size }, 'live re-read failed; will retry on the next change or poll')
          return
        }
        for (const versioned of found) {
          this.advance(versioned)
          this.dispatch(versioned.job.id, { type: 'job', versioned }, versioned.job)
          batch.delete(versioned.job.id)
        }
        // What was hinted but is gone was deleted (retention).
        for (const [id, change] of batch) {
          if (change) this.dispatch(id, { type: 'deleted', change }, change)
        }
      }
    } finally {
      this.reading = undefined
    }
  }

  /** Moves the catch-up cursor to a state read, when it is newer (and streams watch). */
  private advance({ version, job }: VersionedJob): void {
    const c = this.cursor
    if (c && (version > c.version || (version === c.version && job.id > c.id))) this.cursor = { version, id: job.id }
  }

  /**
   * The poll's catch-up: everything that changed since a little before the
   * cursor, read once and handed to every stream that matches. A failed read
   * falls back to each stream replaying on its own, so nothing is lost to it.
   */
  private async catchUp(): Promise<void> {
    if (this.catchingUp || !this.cursor || this.streams.size === 0) return
    this.catchingUp = true
    try {
      let after = overlapped(this.cursor)
      for (;;) {
        const page = await jobsChangedSince(this.sql, this.tables, after, {}, CATCH_UP_PAGE)
        for (const versioned of page) {
          this.advance(versioned)
          this.dispatchToStreams({ type: 'job', versioned }, versioned.job)
        }
        const last = page.at(-1)
        if (!last || page.length < CATCH_UP_PAGE) return
        after = { version: last.version, id: last.job.id }
      }
    } catch (err) {
      this.log.warn({ err }, 'live catch-up failed; each stream replays on its own')
      for (const stream of this.streams) stream.resync()
    } finally {
      this.catchingUp = false
    }
  }

  /** The oldest REREAD_BATCH hints; the rest wait for the next re-read. */
  private takeBatch(): Map<string, JobChange | null> {
    if (this.pending.size <= REREAD_BATCH) {
      const all = this.pending
      this.pending = new Map()
      return all
    }
    const batch = new Map<string, JobChange | null>()
    for (const [id, change] of this.pending) {
      batch.set(id, change)
      this.pending.delete(id)
      if (batch.size === REREAD_BATCH) break
    }
    return batch
  }

  private dispatch(id: string, update: FeedUpdate, subject: { kind: string; queue: string; status: string }): void {
    for (const watcher of this.byJob.get(id) ?? []) this.deliver(watcher, update)
    this.dispatchToStreams(update, subject)
  }

  private dispatchToStreams(update: FeedUpdate, subject: { kind: string; queue: string; status: string }): void {
    for (const stream of this.streams) {
      if (
        update.type === 'deleted'
          ? matchesFilter({ ...stream.filter, status: undefined }, subject)
          : matchesFilter(stream.filter, subject)
      ) {
        this.deliver(stream.deliver, update)
      }
    }
  }

  private deliver(fn: (u: FeedUpdate) => void, update: FeedUpdate): void {
    try {
      fn(update)
    } catch (err) {
      this.log.error({ err }, 'live watcher failed')
    }
  }
}
