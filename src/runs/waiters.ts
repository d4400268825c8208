/**
 * Long-poll claimers waiting for work. A hint that a job of kind K became pending
 * wakes ONE waiter for K (oldest first), not all of them, so a thousand idle
 * claimers cost one claim query per new job, not a thousand. A waiter whose claim
 * then succeeds wakes the next one (there may be more work than hints, e.g. after
 * a missed NOTIFY); one whose claim finds nothing goes back to sleep. The safety
 * poll wakes one waiter per kind. For a kind with limits, a run that ends (its job
 * leaves `active`) also wakes one: it may have freed the slot a waiter needs.
 */
import type { EventHub, HubEvent, JobChange } from '../events/hub'

/** One claimer's place in line. */
export interface Waiter {
  /** Resolves when woken, after `ms`, or on abort; at once if woken since the last call. */
  next(ms: number, signal?: AbortSignal): Promise<void>
  /** Leaves the line. */
  release(): void
}

interface Entry {
  kinds: Set<string>
  queues: Set<string> | null
  woken: boolean
  wake: (() => void) | null
}

/** The line of waiting claimers in this process. */
export class ClaimWaiters {
  private line: Entry[] = []
  private readonly unsubscribe: () => void

  constructor(
    hub: EventHub,
    private readonly limited: { has(kind: string): boolean },
  ) {
    this.unsubscribe = hub.subscribe((event) => this.heard(event))
  }

  /** Joins the line for these kinds (and queues). Register before the first claim attempt so no hint falls between. */
  register(kinds: string[], queues?: string[]): Waiter {
    const entry: Entry = { kinds: new Set(kinds), queues: queues ? new Set(queues) : null, woken: false, wake: null }
    this.line.push(entry)
    return {
      next: (ms, signal) => this.sleep(entry, ms, signal),
      release: () => {
        this.line = this.line.filter((e) => e !== entry)
        entry.wake?.()
      },
    }
  }

  /** A waiter claimed a job of this kind: more may be waiting, so pass the turn on. */
  claimedOne(job: { kind: string; queue: string }): void {
    this.wakeOne(job)
  }

  /**
   * A waiter left its line without claiming (its client went) after a wake that
   * may have been a hint: one other waiter per kind tries instead, so the hint
   * is not lost with it.
   */
  passOn(kinds: string[]): void {
    for (const kind of kinds) this.wakeOne({ kind, queue: null })
  }

  /** How many claimers are in line (for tests and metrics). */
  stats(): { waiting: number; sleeping: number } {
    return { waiting: this.line.length, sleeping: this.line.filter((e) => e.wake !== null).length }
  }

  /** Stops listening to the hub. */
  close(): void {
    this.unsubscribe()
  }

  private heard(event: HubEvent): void {
    if (event.type === 'resync') {
      const kinds = new Set(this.line.flatMap((e) => [...e.kinds]))
      for (const kind of kinds) this.wakeOne({ kind, queue: null })
      return
    }
    for (const change of event.changes) {
      if (change.status === 'pending' || (change.status !== 'active' && this.limited.has(change.kind))) {
        this.wakeOne(change)
      }
    }
  }

  /** Wakes the first sleeping waiter that wants this work, else marks the first busy one to retry. */
  private wakeOne(work: Pick<JobChange, 'kind'> & { queue: string | null }): void {
    const wants = (e: Entry) => e.kinds.has(work.kind) && (!e.queues || work.queue === null || e.queues.has(work.queue))
    const entry = this.line.find((e) => e.wake !== null && wants(e)) ?? this.line.find((e) => !e.woken && wants(e))
    if (!entry) return
    entry.woken = true
    // To the back of the line: the next hint goes to someone else.
    this.line = this.line.filter((e) => e !== entry)
    this.line.push(entry)
    entry.wake?.()
  }

  private sleep(entry: Entry, ms: number, signal?: AbortSignal): Promise<void> {
    if (entry.woken || ms <= 0 || signal?.aborted) {
      entry.woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        entry.wake = null
        entry.woken = false
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      entry.wake = done
    })
  }
}
