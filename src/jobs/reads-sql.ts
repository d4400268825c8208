/**
 * Reads of jobs and their runs, live or historic. A finished job leaves the hot
 * tables for history (migrations/009, src/history/) in one statement, so at any
 * instant a job and its runs are in exactly one of the two: each read here is
 * one statement over both (`union all`), and sees every job once.
 */
import { plannedPerCall, type Sql } from '../db/client'
import { literalLimit } from '../db/literal'
import { runFromJson } from '../db/rows'
import type { Tables } from '../db/tables'
import { attachDependencies, type WithDependsOn } from '../dependencies/reads-sql'
import { jobColumns, runColumns } from './columns'
import { isTerminal, type Job, type JobListQuery, type Run } from './model'
import { type JobFilter, jobFilterWhere } from './sql'

/**
 * One job, optionally with its running run as `current_run` (a job in history
 * has none: null, as for any finished job). The hot table first: when it has the
 * job, `limit 1` stops before history is read at all; otherwise history answers
 * with one primary-key probe per day partition.
 */
export async function jobGet(sql: Sql, t: Tables, id: string, withCurrentRun: boolean): Promise<Job | null> {
  const rows = await sql<WithDependsOn<Job>[]>`
    (select ${jobColumns(sql, 'j')}, j.depends_on
       ${withCurrentRun ? sql`, cr.current_run` : sql``}
     from ${sql(t.jobs)} j
     ${withCurrentRun ? currentRunJoin(sql, t) : sql``}
     where j.id = ${id})
    union all
    (select ${jobColumns(sql, 'j')}, j.depends_on
       ${withCurrentRun ? sql`, null::jsonb as current_run` : sql``}
     from ${sql(t.jobsHistory)} j
     where j.id = ${id})
    limit 1`
  const [stored] = rows
  if (!stored) return null
  const { depends_on, ...job } = stored
  await attachDependencies(sql, t, [job], [depends_on])
  return withRunParsed(job)
}

/** The list's query, its filter parsed. */
export type JobListParams = Omit<JobListQuery, 'params'> & JobFilter & { limit: number }

/**
 * A page of jobs, newest first, keyset-paged by id. Each table gives its own
 * first page (its own index in id order, stopping at the limit: in history, that
 * is up to a page from each day partition), and the two are merged. A status
 * only live jobs have (waiting, pending, active) never reads history.
 */
export async function jobList(sql: Sql, t: Tables, q: JobListParams): Promise<Job[]> {
  const withCurrentRun = q.include === 'current_run'
  const limit = literalLimit(sql, q.limit)
  const page = (table: string, currentRun: boolean) => sql`
    select ${jobColumns(sql, 'j')}
      ${withCurrentRun ? (currentRun ? sql`, cr.current_run` : sql`, null::jsonb as current_run`) : sql``}
    from ${sql(table)} j
    ${currentRun ? currentRunJoin(sql, t) : sql``}
    where true
      ${jobFilterWhere(sql, q)}
      ${q.cursor ? sql`and j.id < ${q.cursor}` : sql``}
    order by j.id desc
    limit ${limit}`
  const hot = page(t.jobs, withCurrentRun)
  const withHistory = q.status === undefined || isTerminal(q.status)
  // Per call: a rare status or kind reads its own index, a common one walks the
  // primary key, and only the values tell which.
  const rows = await plannedPerCall(
    withHistory
      ? sql<Job[]>`
        select * from ((${hot}) union all (${page(t.jobsHistory, false)})) j
        order by j.id desc
        limit ${limit}`
      : sql<Job[]>`${hot}`,
  )
  return withCurrentRun ? rows.map(withRunParsed) : rows
}

/** Every run of a job, oldest first; null when the job does not exist. */
export async function jobRunsList(sql: Sql, t: Tables, jobId: string): Promise<Run[] | null> {
  // A job's runs move with it, in the statement that moves it: one side has them all.
  const runs = await sql<Run[]>`
    select ${runColumns(sql, 'r')} from ${sql(t.runs)} r where r.job_id = ${jobId}
    union all
    select ${runColumns(sql, 'r')} from ${sql(t.runsHistory)} r where r.job_id = ${jobId}
    order by attempt`
  if (runs.length > 0) return runs
  // A read, not a transition: the second look only tells "no runs yet" from "no job".
  const [job] = await sql`
    (select 1 from ${sql(t.jobs)} where id = ${jobId})
    union all
    (select 1 from ${sql(t.jobsHistory)} where id = ${jobId})
    limit 1`
  return job ? [] : null
}

/** Joins each job `j` to its running run as `cr.current_run` (jsonb, or null). Hot jobs only: history has no running run. */
export function currentRunJoin(sql: Sql, t: Tables) {
  return sql`
    left join lateral (
      select to_jsonb(r) as current_run from ${sql(t.runs)} r
      -- A lease means running (table check); the one-running index is keyed on it.
      where r.job_id = j.id and r.lease_expires_at is not null
    ) cr on true`
}

function withRunParsed(row: Job): Job {
  return row.current_run === undefined ? row : { ...row, current_run: runFromJson(row.current_run) }
}
