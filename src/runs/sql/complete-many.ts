/**
 * Batch complete, and the hand-off (complete a batch and claim the next in the
 * same statement): the Worker sends every completion this way.
 */
import type { Sql } from '../../db/client'
import { nextStamp, runFromJson } from '../../db/rows'
import type { Tables } from '../../db/tables'
import { attachDependencies } from '../../dependencies/reads-sql'
import { jobColumns } from '../../jobs/columns'
import type { Job, Run } from '../../jobs/model'
import type { Claimed } from '../model'
import { type ClaimParams, claimCtes } from './claim'
import type { RunEnded, TargetSeen, WithDependents } from './held'

/** One run of a batch complete, as the statement answers it (in input order). */
export type CompletedRow = TargetSeen & Partial<Job> & RunEnded & WithDependents & { input_run_id: string }

/**
 * Completes every listed run that is running and held by `workerId`, and its job,
 * in one statement: the same transition as runComplete, over the whole batch.
 * One row per input item, in input order; `id` is null where nothing happened
 * (`target_*` then say why). Run ids must be distinct.
 */
export async function runCompleteMany(sql: Sql, t: Tables, p: CompleteManyParams): Promise<CompletedRow[]> {
  const rows = await sql<(CompletedRow & { ended_run_id?: string })[]>`
    with ${completeManyCtes(sql, t, p)}
    ${completedRows(sql)}`
  return rows.map(withoutEndedRunId)
}

/**
 * runCompleteMany and runClaim in one statement (one commit): a worker hands its
 * finished runs back and takes the next jobs in the same round trip. The answer
 * holds both as rows: part 1 the completions in input order, part 2 the claimed
 * jobs best first, each with its run (jsonb). Jobs come back as columns, not as
 * one jsonb document: building and parsing that was most of the statement's cost
 * for a batch of 50.
 */
export async function runCompleteManyAndClaim(
  sql: Sql,
  t: Tables,
  p: CompleteManyParams,
  claim: ClaimParams,
): Promise<{ completed: CompletedRow[]; claimed: Claimed[] }> {
  const rows = await sql<HandOffRow[]>`
    with ${completeManyCtes(sql, t, p)}, ${claimCtes(sql, t, claim)}
    select * from (
      select 1 as part, target.ord, target.input_run_id, target.target_run_id, target.target_status,
             target.target_worker_id, job.*, null::jsonb as run, null::text[] as depends_on
      from target left join job on job.ended_run_id = target.input_run_id
      union all
      select 2, row_number() over (order by c.priority desc, coalesce(c.scheduled_at, c.enqueued_at), c.id),
             null::text, null::text, null::text, null::text, ${jobColumns(sql, 'c')}, null::text[], null::text,
             null::timestamptz, null::timestamptz,
             -- Runs by job id from a jsonb object built once (an uncorrelated InitPlan):
             -- joined instead, the two CTEs were planned as a nested loop (2,500 row
             -- visits for a batch of 50).
             (select jsonb_object_agg(o.job_id, to_jsonb(o)) from opened o) -> c.id, c.depends_on
      from claimed c
    ) answer
    order by part, ord`
  const completed: CompletedRow[] = []
  const claimed: Claimed[] = []
  const dependsOn: (string[] | null)[] = []
  for (const { part, ord: _, run, depends_on, ...row } of rows) {
    if (part === 1) completed.push(withoutEndedRunId(row))
    else {
      const { input_run_id, target_run_id, target_status, target_worker_id, ended_run_id, ...job } = row
      const { run_started_at, run_finished_at, dependents, ...stored } = job
      claimed.push({ job: stored as Job, run: runFromJson(run) as Run })
      dependsOn.push(depends_on)
    }
  }
  await attachDependencies(
    sql,
    t,
    claimed.map((c) => c.job),
    dependsOn,
  )
  return { completed, claimed }
}

/** A row of runCompleteManyAndClaim's answer: a completion (part 1) or a claimed job (part 2). */
type HandOffRow = CompletedRow & {
  part: 1 | 2
  ord: number
  ended_run_id?: string | null
  run: unknown
  depends_on: string[] | null
}

/** Which runs a batch complete addresses, and for whom. */
export interface CompleteManyParams {
  workerId: string
  runs: { run_id: string; result?: unknown }[]
}

/**
 * The batch complete as CTEs (`input`, `target`, `finished`, `job`). Runs are
 * found by primary key: planned as a plain join, the planner took
 * the jsonb input for 100 rows and hashed the whole runs table (a scan that grew
 * with every job ever run); `id = any(ids)` is an index condition whatever it thinks.
 */
function completeManyCtes(sql: Sql, t: Tables, p: CompleteManyParams) {
  const runIds = p.runs.map((r) => r.run_id)
  // One run (the Worker's hand-off at concurrency 1) compares with a plain value, so
  // the generic plan costs as a custom one would and Postgres stops re-planning.
  const idIn = runIds.length === 1 ? sql`id = ${runIds[0] ?? ''}` : sql`id = any(${runIds}::text[])`
  // An omitted result is SQL null; an explicit JSON null stays jsonb null, as in runComplete.
  return sql`
    input as (
      select e.item->>'run_id' as run_id,
             case when e.item ? 'result' then e.item->'result' end as result,
             e.ord
      from jsonb_array_elements(${sql.json(p.runs as never)}::jsonb) with ordinality as e(item, ord)
    ), target as (
      select i.ord, i.run_id as input_run_id, r.id as target_run_id, r.status as target_status,
             r.worker_id as target_worker_id
      from input i
      left join (select id, status, worker_id from ${sql(t.runs)} where ${idIn}) r
        on r.id = i.run_id
    ), finished as (
      update ${sql(t.runs)} r set
        status = 'succeeded', result = i.result, lease_expires_at = null,
        finished_at = now(), updated_at = ${nextStamp(sql, 'r.updated_at')}
      from input i
      where ${idIn} and r.id = i.run_id
        and r.status = 'running' and r.worker_id = ${p.workerId}
      returning r.id as run_id, r.job_id, r.result, r.updated_at, r.started_at, r.finished_at
    ), job as (
      update ${sql(t.jobs)} j set
        status = 'succeeded', result = finished.result, completed_at = now(), updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, finished.updated_at)
      from finished where j.id = finished.job_id
      returning ${jobColumns(sql, 'j')}, j.dependents, finished.run_id as ended_run_id,
                finished.started_at as run_started_at, finished.finished_at as run_finished_at
    )`
}

/**
 * One row per input item of completeManyCtes, in input order (plus `extra`
 * columns). `job` carries its run's id and times, so this is one join: joining
 * `finished` and then `job` was planned as a nested loop over both (2,500 row
 * visits for a batch of 50).
 */
function completedRows(sql: Sql, extra = sql``) {
  return sql`
    select target.input_run_id, target.target_run_id, target.target_status, target.target_worker_id,
           job.* ${extra}
    from target
    left join job on job.ended_run_id = target.input_run_id
    order by target.ord`
}

/** Drops the join key completedRows used. */
function withoutEndedRunId<T extends { ended_run_id?: unknown }>({ ended_run_id: _, ...row }: T) {
  return row
}
