/** The rules of the worker side: claim, heartbeat, complete, fail, and run reads. */
import { afterCommit, type Effects } from '../after-commit'
import type { Deps } from '../deps'
import { InvalidInput, NotFound, NotOwned } from '../errors'
import { until } from '../events/service'
import { pageSize } from '../http/schema'
import { newRunId } from '../ids'
import type { Job, Run } from '../jobs/model'
import { jobNextDueIn } from '../jobs/sql'
import { recordClaimed, recordJobTerminal, recordRunEnded } from '../metrics/record'
import type {
  ClaimBody,
  Claimed,
  CompleteBody,
  CompleteManyBody,
  CompleteManyResult,
  FailBody,
  HeartbeatBody,
  HeartbeatResult,
  RunListQuery,
  RunTarget,
} from './model'
import { type ClaimParams, runClaim } from './sql/claim'
import { runCompleteMany, runCompleteManyAndClaim } from './sql/complete-many'
import { type RunEnded, runComplete, runFail, runHeartbeat, type TargetSeen } from './sql/held'
import { runGet, runList } from './sql/reads'

/**
 * Claims up to `count` eligible jobs for a worker now (best first, possibly none);
 * announces and counts each.
 */
export function claimJobs(deps: Deps, body: ClaimBody, count: number): Promise<Claimed[]> {
  return afterCommit(deps, async (effects) => {
    const claimed = await runClaim(deps.sql, deps.tables, claimParams(deps, body, body.worker_id, count))
    claimEffects(effects, claimed)
    return claimed
  })
}

/** What a claim of `count` jobs for `workerId` sends: the request's filters, the default lease, fresh run ids. */
function claimParams(
  { config }: Deps,
  claim: Pick<ClaimBody, 'kinds' | 'queues' | 'lease_seconds'>,
  workerId: string,
  count: number,
): ClaimParams {
  return {
    kinds: claim.kinds,
    queues: claim.queues,
    workerId,
    leaseSec: claim.lease_seconds ?? config.defaultLeaseSec,
    runIds: Array.from({ length: count }, () => newRunId()),
  }
}

/** A claim's effects: each claimed job announced (now active) and counted. */
function claimEffects(effects: Effects, claimed: Claimed[]): void {
  effects.announce(claimed.map((c) => c.job))
  effects.count((m) => {
    for (const c of claimed) recordClaimed(m, c.job, c.run)
  })
}

/** Claims the best eligible job for a worker now, or null when nothing is claimable. */
export async function claimJob(deps: Deps, body: ClaimBody): Promise<Claimed | null> {
  const [claimed] = await claimJobs(deps, body, 1)
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
  const [claimed] = await claimJobsWaiting(deps, body, 1, clientSignal)
  return claimed ?? null
}

/**
 * Claims up to `count` jobs like claimJobs; with `wait_seconds`, when none is
 * claimable, waits as claimJobWaiting does and answers whatever the first
 * successful attempt took. Empty at the deadline or when the client goes away.
 */
export async function claimJobsWaiting(
  deps: Deps,
  body: ClaimBody,
  count: number,
  clientSignal?: AbortSignal,
): Promise<Claimed[]> {
  const waitMs = (body.wait_seconds ?? 0) * 1000
  if (waitMs <= 0) return claimJobs(deps, body, count)
  const signal = until(deps, clientSignal)
  const deadline = performance.now() + waitMs
  // Join the line before the first attempt: a hint during the attempt is not lost.
  const waiter = deps.events.waiters.register(body.kinds, body.queues)
  try {
    for (let attempt = 0; ; attempt++) {
      const claimed = await claimJobs(deps, body, count)
      const [first] = claimed
      if (first) {
        if (attempt > 0) deps.events.waiters.claimedOne(first.job)
        return claimed
      }
      const left = deadline - performance.now()
      if (left <= 0 || signal.aborted) return []
      const dueInMs = await jobNextDueIn(deps.sql, deps.tables, body.kinds, body.queues)
      await waiter.next(dueInMs === null ? left : Math.min(left, dueInMs), signal)
    }
  } finally {
    waiter.release()
  }
}

/** Extends the lease and records progress; answers the run and cancel_requested. */
export function heartbeat(deps: Deps, target: RunTarget, body: HeartbeatBody): Promise<HeartbeatResult> {
  return afterCommit(deps, async (effects) => {
    const row = await runHeartbeat(deps.sql, deps.tables, target, {
      workerId: body.worker_id,
      leaseSec: body.lease_seconds ?? deps.config.defaultLeaseSec,
      progressCurrent: body.progress_current,
      progressTotal: body.progress_total,
      progressMessage: body.progress_message,
    })
    const { job_kind, job_queue, ...run } = acted(row, target, body.worker_id)
    if (run.job_id && job_kind !== undefined && job_queue !== undefined) {
      effects.announce([{ id: run.job_id, status: 'active', kind: job_kind, queue: job_queue }])
      effects.count((m) => m.heartbeats.inc({ kind: job_kind }))
    }
    return run as HeartbeatResult
  })
}

/** Completes the held run; answers the job, now succeeded. */
export function complete(deps: Deps, target: RunTarget, body: CompleteBody): Promise<Job> {
  return afterCommit(deps, async (effects) => {
    const row = await runComplete(deps.sql, deps.tables, target, { workerId: body.worker_id, result: body.result })
    return ended(effects, acted(row, target, body.worker_id), 'succeeded')
  })
}

/**
 * Completes several held runs in one statement; answers each run's outcome in
 * input order (200 with the job, or 404/409 with the reason, as complete would).
 */
export async function completeMany(deps: Deps, body: CompleteManyBody): Promise<CompleteManyResult> {
  const ids = body.runs.map((r) => r.run_id)
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i)
  if (repeated) throw new InvalidInput('runs', `run ${repeated} is listed more than once`)
  const completing = { workerId: body.worker_id, runs: body.runs }
  const claim = body.claim && body.claim.max_jobs > 0 ? body.claim : undefined
  return afterCommit(deps, async (effects) => {
    const { completed: rows, claimed } = claim
      ? await runCompleteManyAndClaim(
          deps.sql,
          deps.tables,
          completing,
          claimParams(deps, claim, body.worker_id, claim.max_jobs),
        )
      : { completed: await runCompleteMany(deps.sql, deps.tables, completing), claimed: [] }
    claimEffects(effects, claimed)
    const results = rows.map(({ input_run_id, ...row }) => {
      const target = { runId: input_run_id }
      const refused = refusal(row.target_run_id ? row : null, target, body.worker_id)
      if (refused) return { run_id: input_run_id, status: refused.status as 404 | 409, error: refused.message }
      return {
        run_id: input_run_id,
        status: 200 as const,
        job: ended(effects, acted(row, target, body.worker_id), 'succeeded'),
      }
    })
    return body.claim ? { results, claimed } : { results }
  })
}

/** Fails the held run; answers the job as the retry rules left it. */
export function fail(deps: Deps, target: RunTarget, body: FailBody): Promise<Job> {
  return afterCommit(deps, async (effects) => {
    const row = await runFail(deps.sql, deps.tables, target, {
      workerId: body.worker_id,
      error: body.error ?? null,
      retryable: body.retryable ?? false,
      // Omitted means the documented default: some clients drop zero values, so only
      // an explicit number (0 included) overrides the exponential backoff.
      backoffSec: body.backoff_seconds ?? null,
      result: body.result,
    })
    return ended(effects, acted(row, target, body.worker_id), 'failed')
  })
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
  const refused = refusal(row, target, workerId)
  if (refused) throw refused
  // No refusal means a row that acted.
  const { target_run_id, target_status, target_worker_id, ...acted } = row as TargetSeen & T
  return acted
}

/** Why a worker-side statement did nothing (see acted), or null when it acted. */
function refusal(
  row: (TargetSeen & { id?: string | null }) | null,
  target: RunTarget,
  workerId: string,
): NotFound | NotOwned | null {
  const what = 'runId' in target ? `run ${target.runId}` : `job ${target.jobId}`
  if (!row) return new NotFound(`${what} not found`)
  if (row.id) return null
  const { target_run_id, target_status, target_worker_id } = row
  if (!target_run_id) return new NotOwned(`${what} has no running run`)
  if (target_status !== 'running') return new NotOwned(`${what}: run is ${target_status}, not running`)
  if (target_worker_id !== workerId) {
    return new NotOwned(
      `${what}: run is held by worker ${JSON.stringify(target_worker_id)}, not ${JSON.stringify(workerId)}`,
    )
  }
  // The run was ours a moment ago; a reaper or racing call finished it first.
  return new NotOwned(`${what}: run is no longer running`)
}

/** The effects of a run that complete or fail just ended (job announced, run and job counted); answers the job without the run's times. */
function ended(effects: Effects, row: Partial<Job> & RunEnded, runStatus: 'succeeded' | 'failed'): Job {
  const { run_started_at, run_finished_at, ...rest } = row
  const job = rest as Job
  effects.announce([job])
  effects.count((m) => {
    if (run_started_at) {
      recordRunEnded(m, {
        kind: job.kind,
        status: runStatus,
        started_at: run_started_at,
        finished_at: run_finished_at ?? null,
      })
    }
    recordJobTerminal(m, job)
  })
  return job
}
