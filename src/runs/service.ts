/** The rules of the worker side: claim, heartbeat, complete, fail, and run reads. */
import type { Deps } from '../deps'
import { NotFound, NotOwned } from '../errors'
import { changeOf } from '../events/hub'
import { until } from '../events/service'
import { pageSize } from '../http/schema'
import { newRunId } from '../ids'
import type { Job, Run } from '../jobs/model'
import { jobNextDueIn } from '../jobs/sql'
import { recordClaimed, recordJobTerminal, recordRunEnded } from '../metrics/record'
import type { ClaimBody, Claimed, CompleteBody, FailBody, HeartbeatBody, HeartbeatResult, RunListQuery } from './model'
import {
  type RunEnded,
  type RunTarget,
  runClaim,
  runComplete,
  runFail,
  runGet,
  runHeartbeat,
  runList,
  type TargetSeen,
} from './sql'

/** Claims the best eligible job for a worker now, or null when nothing is claimable. */
export async function claimJob(
  { sql, tables, config, events, metrics }: Deps,
  body: ClaimBody,
): Promise<Claimed | null> {
  const [claimed] = await runClaim(sql, tables, {
    kinds: body.kinds,
    queues: body.queues,
    workerId: body.worker_id,
    leaseSec: body.lease_seconds ?? config.defaultLeaseSec,
    runIds: [newRunId()],
  })
  if (claimed) {
    events.hub.publish([changeOf(claimed.job)])
    recordClaimed(metrics, claimed.job, claimed.run)
  }
  return claimed ?? null
}

/**
 * Claims, and with `wait_seconds` waits for work when there is none: woken by a
 * hint that a job of these kinds became pending, or when the earliest not-yet-due
 * job (a scheduled job, a retry in backoff) comes due. Null at the deadline or
 * when the client goes away.
 */
export async function claimJobWaiting(
  deps: Deps,
  body: ClaimBody,
  clientSignal?: AbortSignal,
): Promise<Claimed | null> {
  const waitMs = (body.wait_seconds ?? 0) * 1000
  if (waitMs <= 0) return claimJob(deps, body)
  const signal = until(deps, clientSignal)
  const deadline = performance.now() + waitMs
  // Join the line before the first attempt: a hint during the attempt is not lost.
  const waiter = deps.events.waiters.register(body.kinds, body.queues)
  try {
    for (let attempt = 0; ; attempt++) {
      const claimed = await claimJob(deps, body)
      if (claimed) {
        if (attempt > 0) deps.events.waiters.claimedOne(claimed.job)
        return claimed
      }
      const left = deadline - performance.now()
      if (left <= 0 || signal.aborted) return null
      const dueInMs = await jobNextDueIn(deps.sql, deps.tables, body.kinds, body.queues)
      await waiter.next(dueInMs === null ? left : Math.min(left, dueInMs), signal)
    }
  } finally {
    waiter.release()
  }
}

/** Extends the lease and records progress; answers the run and cancel_requested. */
export async function heartbeat(deps: Deps, target: RunTarget, body: HeartbeatBody): Promise<HeartbeatResult> {
  const row = await runHeartbeat(deps.sql, deps.tables, target, {
    workerId: body.worker_id,
    leaseSec: body.lease_seconds ?? deps.config.defaultLeaseSec,
    progressCurrent: body.progress_current,
    progressTotal: body.progress_total,
    progressMessage: body.progress_message,
  })
  const { job_kind, job_queue, ...run } = acted(row, target, body.worker_id)
  if (run.job_id && job_kind !== undefined && job_queue !== undefined) {
    deps.events.hub.publish([{ id: run.job_id, status: 'active', kind: job_kind, queue: job_queue }])
    deps.metrics.heartbeats.inc({ kind: job_kind })
  }
  return run as HeartbeatResult
}

/** Completes the held run; answers the job, now succeeded. */
export async function complete(deps: Deps, target: RunTarget, body: CompleteBody): Promise<Job> {
  const row = await runComplete(deps.sql, deps.tables, target, { workerId: body.worker_id, result: body.result })
  return ended(deps, acted(row, target, body.worker_id), 'succeeded')
}

/** Fails the held run; answers the job as the retry rules left it. */
export async function fail(deps: Deps, target: RunTarget, body: FailBody): Promise<Job> {
  const row = await runFail(deps.sql, deps.tables, target, {
    workerId: body.worker_id,
    error: body.error ?? null,
    retryable: body.retryable ?? false,
    // Omitted means the documented default: some clients drop zero values, so only
    // an explicit number (0 included) overrides the exponential backoff.
    backoffSec: body.backoff_seconds ?? null,
    result: body.result,
  })
  return ended(deps, acted(row, target, body.worker_id), 'failed')
}

/** One run; 404 when unknown. */
export async function getRun({ sql, tables }: Deps, id: string): Promise<Run> {
  const run = await runGet(sql, tables, id)
  if (!run) throw new NotFound(`run ${id} not found`)
  return run
}

/** A page of runs across jobs, newest first. */
export function listRuns({ sql, tables }: Deps, q: RunListQuery): Promise<Run[]> {
  return runList(sql, tables, {
    status: q.status,
    workerId: q.worker_id,
    jobId: q.job_id,
    kind: q.kind,
    cursor: q.cursor,
    limit: pageSize(q.limit),
  })
}

/**
 * Turns a worker-side statement's answer into the acted-on row (without the
 * `target_*` columns), or the error that says why nothing happened: unknown id →
 * 404; no running run, a finished run, or another worker's run → 409.
 */
function acted<T extends { id?: string | null }>(
  row: (TargetSeen & T) | null,
  target: RunTarget,
  workerId: string,
): Omit<T, keyof TargetSeen> {
  const what = 'runId' in target ? `run ${target.runId}` : `job ${target.jobId}`
  if (!row) throw new NotFound(`${what} not found`)
  const { target_run_id, target_status, target_worker_id, ...acted } = row
  if (acted.id) return acted
  if (!target_run_id) throw new NotOwned(`${what} has no running run`)
  if (target_status !== 'running') throw new NotOwned(`${what}: run is ${target_status}, not running`)
  if (target_worker_id !== workerId) {
    throw new NotOwned(
      `${what}: run is held by worker ${JSON.stringify(target_worker_id)}, not ${JSON.stringify(workerId)}`,
    )
  }
  // The run was ours a moment ago; a reaper or racing call finished it first.
  throw new NotOwned(`${what}: run is no longer running`)
}

/** Announces and counts a run that complete or fail just ended; answers the job without the run's times. */
function ended(deps: Deps, row: Partial<Job> & RunEnded, runStatus: 'succeeded' | 'failed'): Job {
  const { run_started_at, run_finished_at, ...rest } = row
  const job = rest as Job
  deps.events.hub.publish([changeOf(job)])
  if (run_started_at) {
    recordRunEnded(deps.metrics, {
      kind: job.kind,
      status: runStatus,
      started_at: run_started_at,
      finished_at: run_finished_at ?? null,
    })
  }
  recordJobTerminal(deps.metrics, job)
  return job
}
