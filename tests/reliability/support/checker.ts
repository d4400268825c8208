/**
 * The one checker of the fault suite. From the recorded operations and the
 * final tables it checks issue 10's invariants: every enqueued job terminal
 * exactly once; none lost; none unexpected; no two runs of one job overlapping
 * under a live lease; attempts only increasing; every succeeded job's handler
 * ran to completion at least once; and every answer agrees with what the
 * database kept (a 200 changed the run, a 409 changed nothing).
 */
import { GIVEN_BACK } from '../../../src/runs/sql/give-back'
import type { DbJob, DbRun, DbState } from './db-state'
import type { Answer, Rec, Recorder } from './record'

/** What the checker found. */
export interface CheckResult {
  jobs: number
  runs: number
  byStatus: Record<string, number>
  lost: string[]
  unexpected: string[]
  /** Jobs made twice for one key, or that reached a terminal state more than once. */
  duplicated: string[]
  /** Jobs whose handler started more than once (at-least-once delivery at work). */
  rerun: number
  /** Completes answered 409 (late, after the lease was lost). */
  refusedCompletes: number
  /** Answers in the 5xx range, and requests that got no answer, seen by the suite's clients. */
  fivexx: number
  /** Of those, 503s (the database-unavailable answer during an outage). */
  unavailable: number
  noAnswer: number
  violations: string[]
}

/** Options of a check. */
export interface CheckOptions {
  /** Jobs in the tables that nobody enqueued but are expected (a schedule's). */
  extra?: (job: DbJob) => boolean
  /** Workers that record their completes (the recording loop; not the Worker class). */
  recordsCompletes?: (worker: string) => boolean
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled'])
/** A run the server gave back (see src/runs/sql/give-back.ts): not an attempt. */
const givenBack = (run: DbRun) => run.status === 'abandoned' && run.error === GIVEN_BACK
const ambiguous = (a: Answer) => a === 'error' || a >= 500
const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : Number.NaN)

/** Checks `state` against `recorder`'s history. */
export function check(recorder: Recorder, state: DbState, options: CheckOptions = {}): CheckResult {
  const violations: string[] = []
  const v = (job: string, what: string) => violations.push(`${job}: ${what}`)
  const byJob = new Map<string, Rec[]>()
  for (const r of recorder.recs) {
    if ('job' in r) byJob.set(r.job, [...(byJob.get(r.job) ?? []), r])
  }
  const runsOf = new Map<string, DbRun[]>()
  for (const run of state.runs) runsOf.set(run.job_id, [...(runsOf.get(run.job_id) ?? []), run])
  const runById = new Map(state.runs.map((r) => [r.id, r]))
  const jobById = new Map(state.jobs.map((j) => [j.id, j]))

  // Enqueued: one job per key, each stored and terminal.
  const enqueued = new Set<string>()
  const keyJobs = new Map<string, Set<string>>()
  for (const e of recorder.of('enqueue')) {
    enqueued.add(e.job)
    keyJobs.set(e.key, (keyJobs.get(e.key) ?? new Set()).add(e.job))
  }
  const duplicated = new Set<string>()
  for (const [key, ids] of keyJobs) if (ids.size > 1) duplicated.add(`${key} → ${[...ids].join(', ')}`)
  const lost = [...enqueued].filter((id) => !TERMINAL.has(jobById.get(id)?.status ?? 'missing'))
  for (const id of lost) v(id, `lost: ${jobById.get(id)?.status ?? 'not in the table'} at the end`)
  const unexpected = state.jobs.filter((j) => !enqueued.has(j.id) && !options.extra?.(j)).map((j) => j.id)
  for (const id of unexpected) v(id, 'in the table, but nobody enqueued it')

  const leases = checkAnswers(recorder, runById, runsOf, v)
  for (const job of state.jobs) {
    const runs = runsOf.get(job.id) ?? []
    const recs = byJob.get(job.id) ?? []
    checkRuns(job, runs, leases, v, duplicated)
    checkOutcome(job, runs, recs, v, options)
  }

  const byStatus: Record<string, number> = {}
  for (const j of state.jobs) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1
  const starts = new Map<string, number>()
  for (const s of recorder.of('start')) starts.set(s.job, (starts.get(s.job) ?? 0) + 1)
  const answers = recorder.recs.flatMap((r) => ('answer' in r ? [r.answer] : []))
  return {
    jobs: state.jobs.length,
    runs: state.runs.length,
    byStatus,
    lost,
    unexpected,
    duplicated: [...duplicated],
    rerun: [...starts.values()].filter((n) => n > 1).length,
    refusedCompletes: recorder.of('complete').filter((c) => c.answer === 409).length,
    fivexx: answers.filter((a) => a !== 'error' && a >= 500).length,
    unavailable: answers.filter((a) => a === 503).length,
    noAnswer: answers.filter((a) => a === 'error').length,
    violations,
  }
}

/**
 * How far a run's `started_at` may precede the end of the run before it. Both are
 * `now()`, the time a statement *began*: a claim that began a moment before the
 * reaper's or a fail's commit, and only then took its snapshot, sees the job
 * pending yet carries the earlier time (0.4 ms was seen). A real overlap lasts a
 * handler's run time or a lease.
 */
const NOW_SLACK_MS = 10

/**
 * Attempts 1..n in start order; each run ended before the next began (an
 * abandoned run: its live lease ran out first); at most one success.
 */
function checkRuns(
  job: DbJob,
  runs: DbRun[],
  leases: Map<string, number>,
  v: (job: string, what: string) => void,
  duplicated: Set<string>,
) {
  // A claim given back (its client left before the answer) is not an attempt: the server
  // renumbers its run 0, -1, … and the next claim takes its number again.
  const attempts = runs.filter((r) => !givenBack(r))
  if (attempts.length !== job.attempt_count) v(job.id, `attempt_count ${job.attempt_count} but ${attempts.length} runs`)
  attempts.forEach((run, i) => {
    if (run.attempt !== i + 1) v(job.id, `attempt ${run.attempt} where ${i + 1} was due`)
  })
  // Every run, given back or not, in start order: each began only after the one before ended.
  const started = [...runs].sort((a, b) => a.started_ms - b.started_ms)
  started.forEach((run, i) => {
    const next = started[i + 1]
    if (!next) return
    if (run.status === 'running' || run.finished_ms === null) {
      v(job.id, `run ${run.id} still running under ${next.id}`)
      return
    }
    const lease = leases.get(run.id) ?? Number.POSITIVE_INFINITY
    const end = run.status === 'abandoned' ? Math.min(run.finished_ms, lease) : run.finished_ms
    if (next.started_ms < end - NOW_SLACK_MS) {
      v(job.id, `run ${next.id} started ${(end - next.started_ms).toFixed(1)} ms before ${run.id} ended (live lease)`)
    }
  })
  for (let i = 1; i < attempts.length; i++) {
    const [before, after] = [attempts[i - 1]!, attempts[i]!]
    if (after.started_ms < before.started_ms)
      v(job.id, `attempt ${after.attempt} started before attempt ${before.attempt}`)
  }
  const wins = runs.filter((r) => r.status === 'succeeded')
  if (wins.length > 1) duplicated.add(job.id)
  if (wins.length > 1) v(job.id, `${wins.length} succeeded runs: ${wins.map((r) => r.id).join(', ')}`)
}

/** The terminal state is one the history explains. */
function checkOutcome(
  job: DbJob,
  runs: DbRun[],
  recs: Rec[],
  v: (job: string, what: string) => void,
  options: CheckOptions,
) {
  const last = runs[runs.length - 1]
  const win = runs.find((r) => r.status === 'succeeded')
  if (job.status === 'succeeded') {
    if (!win || win !== last) return v(job.id, `succeeded, but its last run is ${last?.status ?? 'missing'}`)
    if ((job.result as { run?: string } | null)?.run !== win.id) {
      v(job.id, `result ${JSON.stringify(job.result)} is not the succeeded run ${win.id}'s`)
    }
    if (!recs.some((r) => r.op === 'finish' && r.run === win.id)) {
      v(job.id, `succeeded by ${win.id}, whose handler never finished`)
    }
    const completes = recs.filter((r) => r.op === 'complete' && r.run === win.id) as Extract<Rec, { op: 'complete' }>[]
    if (
      (options.recordsCompletes?.(win.worker_id) ?? true) &&
      !completes.some((c) => c.answer === 200 || ambiguous(c.answer))
    ) {
      v(job.id, `succeeded by ${win.id}, but no complete of it was accepted`)
    }
  } else if (win) {
    v(job.id, `${job.status}, yet run ${win.id} succeeded`)
  }
  if (job.status === 'cancelled' && !recs.some((r) => r.op === 'cancel' && r.answer !== 404)) {
    v(job.id, 'cancelled, but nobody cancelled it')
  }
  if (job.status === 'failed' && job.attempt_count < job.max_attempts) {
    const permanent = recs.some(
      (r) => r.op === 'fail' && r.run === last?.id && !r.retryable && (r.answer === 200 || ambiguous(r.answer)),
    )
    if (!permanent)
      v(job.id, `failed after ${job.attempt_count}/${job.max_attempts} attempts without a permanent failure`)
  }
}

/**
 * Each answer matches the tables: claims name real runs; 200s changed them; 409s
 * did not; live leases held. Answers each run's last live lease (epoch ms).
 */
function checkAnswers(
  recorder: Recorder,
  runById: Map<string, DbRun>,
  runsOf: Map<string, DbRun[]>,
  v: (job: string, what: string) => void,
): Map<string, number> {
  const liveLease = new Map<string, number>()
  const seenAttempt = new Map<string, { attempt: number; t: number }>()
  const unclear = new Set<string>()
  const claims = recorder.of('claim').sort((a, b) => a.t - b.t || a.attempt - b.attempt)
  for (const c of claims) {
    const run = runById.get(c.run)
    if (!run || run.job_id !== c.job || run.attempt !== c.attempt || run.worker_id !== c.worker) {
      v(c.job, `claim of ${c.run} (attempt ${c.attempt}) by ${c.worker} does not match the table`)
    }
    const before = seenAttempt.get(c.job)
    if (before && before.attempt >= c.attempt) {
      v(c.job, `attempt ${c.attempt} claimed at ${c.t} after attempt ${before.attempt} at ${before.t}`)
    }
    seenAttempt.set(c.job, { attempt: c.attempt, t: c.t })
    liveLease.set(c.run, Math.max(liveLease.get(c.run) ?? 0, ms(c.lease)))
  }
  for (const r of recorder.recs) {
    if (r.op !== 'heartbeat' && r.op !== 'complete' && r.op !== 'fail') continue
    const run = runById.get(r.run)
    if (!run) {
      v(r.job, `${r.op} on ${r.run}, which is not in the table`)
      continue
    }
    const next = (runsOf.get(run.job_id) ?? []).find((r) => r.attempt === run.attempt + 1)
    if (r.op === 'heartbeat' && r.answer === 200) {
      liveLease.set(r.run, Math.max(liveLease.get(r.run) ?? 0, ms(r.lease)))
      if (next && ms(r.st) > next.started_ms) v(r.job, `heartbeat of ${r.run} accepted after ${next.id} started`)
    }
    if (r.op === 'complete' || r.op === 'fail') {
      const done = r.op === 'complete' ? 'succeeded' : 'failed'
      if (r.answer === 200 && run.status !== done) v(r.job, `${r.op} of ${r.run} answered 200, run is ${run.status}`)
      if (r.answer === 409 && run.status === done && !unclear.has(r.run)) {
        v(r.job, `${r.op} of ${r.run} answered 409, yet the run is ${run.status}`)
      }
      if (ambiguous(r.answer)) unclear.add(r.run)
    }
  }
  for (const [runId, lease] of liveLease) {
    const run = runById.get(runId)
    if (run?.status === 'abandoned' && run.finished_ms !== null && run.finished_ms < lease) {
      v(run.job_id, `run ${runId} abandoned ${(lease - run.finished_ms).toFixed(0)} ms before its lease ran out`)
    }
  }
  for (const runs of runsOf.values()) {
    for (const run of runs) {
      if (!liveLease.has(run.id) && run.status !== 'abandoned') {
        v(run.job_id, `run ${run.id} (${run.status}) was never handed to a recorded worker`)
      }
    }
  }
  return liveLease
}

/** A job's recorded history and runs, for a failure message or a finding. */
export function history(recorder: Recorder, state: DbState, jobId: string): string {
  const job = state.jobs.find((j) => j.id === jobId)
  const lines = [`job ${jobId}: ${JSON.stringify(job)}`]
  for (const run of state.runs.filter((r) => r.job_id === jobId)) lines.push(`  run ${JSON.stringify(run)}`)
  for (const r of recorder.recs) if ('job' in r && r.job === jobId) lines.push(`  rec ${JSON.stringify(r)}`)
  return lines.join('\n')
}
