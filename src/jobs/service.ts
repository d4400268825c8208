/** The rules of the producer side: enqueue, read, list, cancel. */
import { afterCommit, type Effects } from '../after-commit'
import { readYourWrite } from '../db/replica'
import { dependentsMoved, withoutDependents } from '../dependencies/effects'
import { enqueueGraph, type GraphNode } from '../dependencies/enqueue'
import type { Deps } from '../deps'
import { Conflict, InvalidInput, NotFound } from '../errors'
import { historyJobForCancel } from '../history/actions-sql'
import { hotThenHistory } from '../history/hot-then-history'
import { findUnstorable } from '../http/json-walk'
import { pageSize, parseTimestamp } from '../http/schema'
import { newJobId } from '../ids'
import { recordEnqueued, recordJobTerminal } from '../metrics/record'
import { type JobInsertItem, jobInsertMany } from './insert-sql'
import type { EnqueueBatchItem, EnqueueBatchResult, EnqueueBody, Job, JobListQuery, Run } from './model'
import { jobGet, jobList, jobRunsList } from './reads-sql'
import { type JobInsert, jobCancel, jobInsert } from './sql'
import { enqueueBatchWhileActive, enqueueUniqueJob, isKeyedWhileActive } from './unique'

/** The outcome of an enqueue: a new job, or the one that already holds the key. */
export interface Enqueued {
  created: boolean
  /** True when debounce_seconds moved the live job holding the key (jobs/unique.ts). */
  debounced?: boolean
  job: Job
}

/** Retries of a batch's unresolved keys before giving up (each needs a concurrent insert to lose to). */
const MAX_INSERT_ATTEMPTS = 5

/**
 * Enqueues a job. A duplicate (kind, idempotency_key) creates nothing and answers
 * the stored job with created = false.
 *
 * Not a batch of one through jobInsertMany: that cost single enqueues about a third
 * (bench/claim-complete.ts 2000 16, 8 interleaved runs: median ~2,100 → ~1,370 jobs/s;
 * at the statement alone, 16 callers: 6,000–7,300 → 4,500–5,100 rows/s), as the
 * jsonb expansion, window and union have no work to amortise over one row.
 */
export async function enqueueJob(deps: Deps, body: EnqueueBody): Promise<Enqueued> {
  // With dependencies (unique_while_active included), through the graph; keyed
  // while active, through its own statements; every other job, today's.
  if (body.depends_on !== undefined) {
    const limited = await deps.events.limitedKinds.among([body.kind])
    const { answers } = await enqueueGraph(deps, [body], [graphNodeOf(body, '', limited.length > 0)], () => '')
    return answers[0] as Enqueued
  }
  if (isKeyedWhileActive(body)) return enqueueUniqueJob(deps, body)
  const { sql, tables } = deps
  const limited = await deps.events.limitedKinds.among([body.kind])
  const insert = insertOf(body, '', limited.length > 0)
  // The only way to come back empty is losing a race to a concurrent insert of the
  // same key that committed after our snapshot; the next attempt sees its row.
  for (let attempt = 0; attempt < MAX_INSERT_ATTEMPTS; attempt++) {
    const outcome = await afterCommit(deps, async (effects) => {
      const outcome = await jobInsert(sql, tables, insert)
      if (outcome) enqueueEffects(effects, [outcome])
      return outcome
    })
    if (outcome) return outcome
  }
  throw new Error(`enqueue of ${insert.kind}/${insert.idempotencyKey} found neither a new nor an existing job`)
}

/** An enqueue's effects: new jobs announced, every answer counted (created or deduped). */
function enqueueEffects(effects: Effects, answers: Enqueued[]): void {
  effects.announce(answers.filter((a) => a.created).map((a) => a.job))
  effects.count((m) => {
    for (const a of answers) recordEnqueued(m, a.job, a.created)
  })
}

/**
 * Enqueues a batch in one statement; answers in input order. Per job the rules of
 * enqueueJob hold, and a key repeated within the batch (same kind) answers the
 * first item's job with created = false. Items whose key lost a race to a
 * concurrent insert are re-sent alone (see jobInsertMany); the rest are not
 * written twice.
 */
export async function enqueueJobs(deps: Deps, bodies: EnqueueBatchItem[]): Promise<EnqueueBatchResult> {
  const { sql, tables } = deps
  const answers: (Enqueued | undefined)[] = new Array(bodies.length)
  const limited = new Set(await deps.events.limitedKinds.among([...new Set(bodies.map((b) => b.kind))]))
  if (bodies.some((b) => b.ref !== undefined || b.depends_on !== undefined)) {
    const nodes = bodies.map((b, i) => graphNodeOf(b, `jobs.${i}.`, limited.has(b.kind)))
    const { answers, refs } = await enqueueGraph(deps, bodies, nodes, (i) => `jobs.${i}.`)
    return { jobs: answers, refs }
  }
  if (bodies.some(isKeyedWhileActive)) return { jobs: await enqueueBatchWhileActive(deps, bodies) }
  let unresolved: JobInsertItem[] = bodies.map((body, ord) => ({
    ord,
    ...insertOf(body, `jobs.${ord}.`, limited.has(body.kind)),
  }))
  for (let attempt = 0; attempt < MAX_INSERT_ATTEMPTS && unresolved.length > 0; attempt++) {
    // Each statement commits on its own, so each one's jobs are announced as it does.
    await afterCommit(deps, async (effects) => {
      const rows = await jobInsertMany(sql, tables, unresolved)
      for (const { ord, created, job } of rows) answers[ord] = { created, job }
      enqueueEffects(effects, rows)
    })
    unresolved = unresolved.filter((item) => answers[item.ord] === undefined)
  }
  const resolved = answers.filter((a): a is Enqueued => a !== undefined)
  if (unresolved.length > 0) {
    const [first] = unresolved
    throw new Error(`batch enqueue of ${first?.kind}/${first?.idempotencyKey} found neither a new nor an existing job`)
  }
  return { jobs: resolved }
}

/** The row of a job enqueued with dependencies (or as a node of a batch graph). */
function graphNodeOf(body: EnqueueBatchItem, at: string, flowControlled: boolean): GraphNode {
  return {
    ...insertOf(body, at, flowControlled),
    dependsOn: body.depends_on ?? [],
    uniqueWhileActive: body.unique_while_active === true,
    onDependencyFailure: body.on_dependency_failure === 'run' ? 'run' : null,
  }
}

/**
 * The row an enqueue stores: the body with the documented defaults and a fresh id.
 * `at` prefixes the field a refusal names (`jobs.3.` in a batch). scheduled_at goes
 * to Postgres as UTC ISO text: the batch carries it inside jsonb, where Postgres
 * parses the caller's text itself (it refused offsets past ±15:59 that the single
 * route, through the client's Date serializer, accepted). `flowControlled`: the
 * kind has limits (see JobInsert).
 */
export function insertOf(body: EnqueueBatchItem, at: string, flowControlled: boolean): JobInsert {
  return {
    flowControlled,
    id: newJobId(),
    kind: body.kind,
    queue: body.queue ?? 'default',
    service: body.service ?? '',
    idempotencyKey: body.idempotency_key ?? null,
    concurrencyKey: body.concurrency_key ?? null,
    params: body.params ?? {},
    priority: body.priority ?? 0,
    maxAttempts: body.max_attempts ?? 1,
    scheduledAt:
      body.scheduled_at == null ? null : parseTimestamp(body.scheduled_at, `${at}scheduled_at`).toISOString(),
    expiresInSeconds: body.expires_in_seconds ?? null,
    timeoutSeconds: body.timeout_seconds ?? null,
  }
}

/**
 * The 409 a duplicate enqueue answers with, carrying the existing job. An error
 * body is not shaped by the route's schema, so the row's internal column
 * (`flow_controlled`, the claim's business) is left out here.
 */
export function duplicateError(job: Job & { flow_controlled?: boolean }): Conflict {
  const { flow_controlled: _, ...shown } = job
  return new Conflict(`a ${job.kind} job with idempotency_key ${JSON.stringify(job.idempotency_key)} already exists`, {
    job: shown,
  })
}

/** One job; 404 when unknown (on the replica, then the primary: db/replica.ts). */
export async function getJob(deps: Deps, id: string, withCurrentRun: boolean): Promise<Job> {
  const job = await readYourWrite(deps, (sql) => jobGet(sql, deps.tables, id, withCurrentRun))
  if (!job) throw new NotFound(`job ${id} not found`)
  return job
}

/** A page of jobs, newest first (from the replica, when there is one). */
export function listJobs({ readSql, tables }: Deps, query: JobListQuery): Promise<Job[]> {
  const params = query.params === undefined ? undefined : paramsFilter(query.params)
  return jobList(readSql, tables, { ...query, params, limit: pageSize(query.limit) })
}

/**
 * `?params=` read as the JSON object a job's params must contain, or a 400 naming
 * `params`: containment of a scalar or an array would match differently shaped
 * params than the caller pictures (`[1]` is contained in `[1, 2]`).
 */
export function paramsFilter(text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new InvalidInput('params', 'is not valid JSON (expected an object such as {"customer":42})')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInput('params', 'must be a JSON object such as {"customer":42}')
  }
  const problem = findUnstorable(value)
  if (problem) throw new InvalidInput(problem.field ? `params.${problem.field}` : 'params', problem.reason)
  return value as Record<string, unknown>
}

/** Cancels a job (see jobCancel for the rules); 404 when unknown. */
export function cancelJob(deps: Deps, id: string): Promise<Job> {
  return afterCommit(deps, async (effects) => {
    // A finished job may be in history: answered as it stands there, unchanged.
    const row = await hotThenHistory(
      () => jobCancel(deps.sql, deps.tables, id),
      () => historyJobForCancel(deps.sql, deps.tables, id),
    )
    if (!row) throw new NotFound(`job ${id} not found`)
    const { prior_status, ...rest } = row
    const job = withoutDependents(rest)
    // Only the call that moved a waiting or pending job to cancelled counts it as terminal.
    if (prior_status === 'pending' || prior_status === 'waiting') effects.count((m) => recordJobTerminal(m, job))
    effects.announce([job])
    await dependentsMoved(deps.sql, deps.tables, effects, [row])
    return job
  })
}

/** Every attempt at a job, oldest first; 404 when the job is unknown (replica, then primary). */
export async function listJobRuns(deps: Deps, id: string): Promise<Run[]> {
  const runs = await readYourWrite(deps, (sql) => jobRunsList(sql, deps.tables, id))
  if (!runs) throw new NotFound(`job ${id} not found`)
  return runs
}
