/**
 * Small helpers the services call when something happens, so the rules about
 * what counts (and the arithmetic on timestamps) live in one place.
 */
import { isTerminal } from '../jobs/model'
import { primeKind, primeKindQueue } from './known-labels'
import type { Metrics } from './registry'

/** Seconds from one RFC 3339 stamp to another; both come from the database clock. */
const secondsBetween = (from: string, to: string) => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000)

/** The job fields that terminal accounting needs. */
export interface JobTimes {
  kind: string
  status: string
  enqueued_at: string
  completed_at: string | null
}

/** The fields of an ended run that run accounting needs, with its job's kind. */
export interface RunTimes {
  kind: string
  status: string
  started_at: string
  finished_at: string | null
}

/** Counts an enqueue: a new job, or a duplicate key that created nothing. */
export function recordEnqueued(m: Metrics, job: { kind: string; queue: string }, created: boolean): void {
  primeKindQueue(m, job.kind, job.queue)
  m.jobsEnqueued.inc({ kind: job.kind, queue: job.queue, outcome: created ? 'created' : 'deduped' })
}

/**
 * Counts a claim; on the first attempt also the wait from when the job became
 * claimable (enqueue, or scheduled_at when later) to the claim.
 */
export function recordClaimed(
  m: Metrics,
  job: { kind: string; queue: string; enqueued_at: string; scheduled_at: string | null },
  run: { attempt: number; started_at: string },
): void {
  primeKindQueue(m, job.kind, job.queue)
  m.jobsClaimed.inc({ kind: job.kind, queue: job.queue })
  if (run.attempt !== 1) return
  const due = job.scheduled_at && job.scheduled_at > job.enqueued_at ? job.scheduled_at : job.enqueued_at
  m.claimWait.observe({ kind: job.kind }, secondsBetween(due, run.started_at))
}

/** Counts a job that just became terminal and observes its lifetime; other statuses are ignored. */
export function recordJobTerminal(m: Metrics, job: JobTimes): void {
  if (!isTerminal(job.status) || !job.completed_at) return
  primeKind(m, job.kind)
  m.jobsTerminal.inc({ kind: job.kind, status: job.status })
  m.jobLifetime.observe({ kind: job.kind, status: job.status }, secondsBetween(job.enqueued_at, job.completed_at))
}

/** Counts a run that just ended and observes its duration. */
export function recordRunEnded(m: Metrics, run: RunTimes): void {
  primeKind(m, run.kind)
  m.runsTerminal.inc({ kind: run.kind, status: run.status })
  if (run.finished_at) {
    m.runDuration.observe({ kind: run.kind, status: run.status }, secondsBetween(run.started_at, run.finished_at))
  }
}

/** Counts an accepted heartbeat. */
export function recordHeartbeat(m: Metrics, kind: string): void {
  primeKind(m, kind)
  m.heartbeats.inc({ kind })
}

/** What a limited claim passed over, by the limit that held it. */
export function recordThrottled(m: Metrics, kind: string, throttled: Partial<Record<string, number>>): void {
  for (const [reason, n] of Object.entries(throttled)) if (n) m.jobsThrottled.inc({ kind, reason }, n)
}
