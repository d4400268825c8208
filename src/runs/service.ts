/** The rules of the worker side on held runs: heartbeat, complete (with the hand-off), fail, and run reads. */
import { afterCommit, type Effects } from '../after-commit'
import { readYourWrite } from '../db/replica'
import { dependentsMoved } from '../dependencies/effects'
import type { Deps } from '../deps'
import { InvalidInput, NotFound, NotOwned } from '../errors'
import { historyTargetSeen } from '../history/held-sql'
import { pageSize } from '../http/schema'
import type { Job, Run } from '../jobs/model'
import { recordHeartbeat, recordJobTerminal, recordRunEnded } from '../metrics/record'
import { claimLimited, claimParams, handOver } from './claiming'
import type {
  CompleteBody,
  CompleteManyBody,
  CompleteManyResult,
  FailBody,
  HeartbeatBody,
  HeartbeatResult,
  RunListQuery,
  RunTarget,
} from './model'
import { runCompleteMany, runCompleteManyAndClaim } from './sql/complete-many'
import { type RunEnded, runComplete, runFail, runHeartbeat, type TargetSeen } from './sql/held'
import { runGet, runList } from './sql/reads'

/** Extends the lease and records progress; answers the run and cancel_requested. */
export function heartbeat(deps: Deps, target: RunTarget, body: HeartbeatBody): Promise<HeartbeatResult> {
  return afterCommit(deps, async (effects) => {
    const row = await orInHistory(
      deps,
      target,
      body.worker_id,
      await runHeartbeat(deps.sql, deps.tables, target, {
        workerId: body.worker_id,
        leaseSec: body.lease_seconds ?? deps.config.defaultLeaseSec,
        progressCurrent: body.progress_current,
        progressTotal: body.progress_total,
        progressMessage: body.progress_message,
      }),
    )
    const { job_kind, job_queue, ...run } = acted(row, target, body.worker_id)
    if (run.job_id && job_kind !== undefined && job_queue !== undefined) {
      effects.announce([{ id: run.job_id, status: 'active', kind: job_kind, queue: job_queue }])
      effects.count((m) => recordHeartbeat(m, job_kind))
    }
    return run as HeartbeatResult
  })
}

/** Completes the held run; answers the job, now succeeded. */
export function complete(deps: Deps, target: RunTarget, body: CompleteBody): Promise<Job> {
  return afterCommit(deps, async (effects) => {
    const row = await runComplete(deps.sql, deps.tables, target, { workerId: body.worker_id, result: body.result })
    const job = ended(
      effects,
      acted(await orInHistory(deps, target, body.worker_id, row), target, body.worker_id),
      'succeeded',
    )
    await dependentsMoved(deps.sql, deps.tables, effects, [row])
    return job
  })
}

/**
 * Completes several held runs in one statement; answers each run's outcome in
 * input order (200 with the job, or 404/409 with the reason, as complete would).
 */
export async function completeMany(
  deps: Deps,
  body: CompleteManyBody,
  clientSignal?: AbortSignal,
): Promise<CompleteManyResult> {
  const ids = body.runs.map((r) => r.run_id)
  const repeated = ids.find((id, i) => ids.indexOf(id) !== i)
  if (repeated) throw new InvalidInput('runs', `run ${repeated} is listed more than once`)
  const completing = { workerId: body.worker_id, runs: body.runs }
  const claim = body.claim && body.claim.max_jobs > 0 ? body.claim : undefined
  return afterCommit(deps, async (effects) => {
    const claiming = claim && claimParams(deps, claim, body.worker_id, claim.max_jobs)
    const { completed: rows, claimed } = claiming
      ? await runCompleteManyAndClaim(deps.sql, deps.tables, completing, claiming)
      : { completed: await runCompleteMany(deps.sql, deps.tables, completing), claimed: [] }
    // The statement's claim skips kinds with limits; they are claimed after it,
    // once the completions (which may free their slots) have committed.
    if (claiming && claimed.length < claiming.runIds.length) {
      claimed.push(
        ...(await claimLimited(deps, effects, { ...claiming, runIds: claiming.runIds.slice(claimed.length) })),
      )
    }
    await dependentsMoved(deps.sql, deps.tables, effects, rows)
    // The completions stand either way; the jobs it claimed go back if the client has gone.
    const handed = await handOver(deps, effects, claimed, body.worker_id, clientSignal)
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
    return body.claim ? { results, claimed: handed } : { results }
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
    const job = ended(
      effects,
      acted(await orInHistory(deps, target, body.worker_id, row), target, body.worker_id),
      'failed',
    )
    await dependentsMoved(deps.sql, deps.tables, effects, [row])
    return job
  })
}

/** One run; 404 when unknown (replica, then primary). */
export async function getRun(deps: Deps, id: string): Promise<Run> {
  const run = await readYourWrite(deps, (sql) => runGet(sql, deps.tables, id))
  if (!run) throw new NotFound(`run ${id} not found`)
  return run
}

/** A page of runs across jobs, newest first (from the replica, when there is one). */
export function listRuns({ readSql, tables }: Deps, q: RunListQuery): Promise<Run[]> {
  return runList(readSql, tables, {
    status: q.status,
    workerId: q.worker_id,
    jobId: q.job_id,
    kind: q.kind,
    cursor: q.cursor,
    limit: pageSize(q.limit),
  })
}

/**
 * A worker-side statement's answer, or, when it found no such run or job (a
 * 404), what history holds of it: a run that finished and moved there is
 * refused as not running (409), as it was before it moved.
 */
async function orInHistory<T>(deps: Deps, target: RunTarget, workerId: string, row: T | null): Promise<T | null> {
  if (row) return row
  const seen = await historyTargetSeen(deps.sql, deps.tables, target)
  const refused = seen && refusal(seen, target, workerId)
  if (refused) throw refused
  return null
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
function ended(
  effects: Effects,
  row: Partial<Job> & RunEnded & { dependents?: unknown },
  runStatus: 'succeeded' | 'failed',
): Job {
  const { run_started_at, run_finished_at, dependents, ...rest } = row
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
