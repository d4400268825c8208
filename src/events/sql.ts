/**
 * Reads behind the live views: changed jobs re-read in batches, and replay for
 * reconnects. Both see history too (migrations/009): a job that moved there
 * between a change and its re-read is still the job, not a deletion, and a
 * replay from an old cursor reaches jobs that finished and moved since.
 */
import type { Sql } from '../db/client'
import { literalLimit } from '../db/literal'
import { runFromJson } from '../db/rows'
import type { Tables } from '../db/tables'
import { jobColumns } from '../jobs/columns'
import { isTerminal, type Job } from '../jobs/model'
import { currentRunJoin } from '../jobs/reads-sql'

/** A job as the live views send it, with the version of its latest change. */
export interface VersionedJob {
  job: Job
  /** Latest of the job's and its running run's updated_at, to the microsecond (ISO, UTC). */
  version: string
}

/** Selects the job's columns, current_run and the change version (microseconds, so cursors never tie by rounding). */
function versionedSelect(sql: Sql, t: Tables) {
  return sql`
    select ${jobColumns(sql, 'j')}, cr.current_run,
      ${versionText(sql, "greatest(j.updated_at, (cr.current_run->>'updated_at')::timestamptz)")} as version
    from ${sql(t.jobs)} j
    ${currentRunJoin(sql, t)}`
}

/** The same columns from history: no running run, so the version is the job's own updated_at. */
function historicSelect(sql: Sql, t: Tables) {
  return sql`
    select ${jobColumns(sql, 'j')}, null::jsonb as current_run, ${versionText(sql, 'j.updated_at')} as version
    from ${sql(t.jobsHistory)} j`
}

function versioned({ version, ...row }: Job & { version: string }): VersionedJob {
  return { version, job: { ...row, current_run: runFromJson(row.current_run) } }
}

/**
 * The jobs with these ids as they stand now; ids not answered were deleted. The
 * live feed re-reads jobs that just changed, nearly always hot: history is asked
 * only for the ids the hot table lacks, so such a batch probes no partition.
 */
export async function jobsByIds(sql: Sql, t: Tables, ids: string[]): Promise<VersionedJob[]> {
  const rows = await sql<(Job & { version: string })[]>`
    with hot as (
      ${versionedSelect(sql, t)}
      where j.id = any(${ids}::text[])
    )
    select * from hot
    union all
    ${historicSelect(sql, t)}
    where j.id = any(array(select unnest(${ids}::text[]) except select id from hot))`
  return rows.map(versioned)
}

/** Filters of the all-jobs stream. */
export interface StreamFilter {
  kind?: string
  queue?: string
  status?: string
}

/** A replay position: changes after (version, id). */
export interface ReplayCursor {
  version: string
  id: string
}

/** Replays on resync reach back this far, for commits that landed out of timestamp order. */
export const OVERLAP_MS = 2000

/** Our versions are microsecond ISO strings; a millisecond one must compare the same way. */
export const toVersion = (ms: number) => `${new Date(ms).toISOString().slice(0, -1)}000Z`

/** A cursor a little before `cursor`, for replays that must not miss late commits. */
export function overlapped(cursor: ReplayCursor): ReplayCursor {
  return { version: toVersion(Date.parse(cursor.version) - OVERLAP_MS), id: '' }
}

/**
 * Up to `limit` jobs that changed after `after` (the job row itself, or its
 * running run's progress), oldest change first, matching `filter`. Page on with
 * the last answer's (version, id); fewer than `limit` rows means no more.
 *
 * Bounded by the index on (updated_at, id), not by the table: the old
 * `updated_at >= X or id in (running runs)` could not use it, so every call
 * scanned the whole table (1 s a page from an old cursor). Candidates are the
 * next `reach` jobs by updated_at plus the jobs of running runs (as many as are
 * in flight). A job's version is at least its updated_at, so every job whose
 * version sorts before the last candidate's (updated_at, id) is a candidate: the
 * page stops there, and when that cuts it short, the reach grows. History is
 * read the same way (recentBoth), and its candidates are read by primary key.
 */
export async function jobsChangedSince(
  sql: Sql,
  t: Tables,
  after: ReplayCursor,
  filter: StreamFilter,
  limit: number,
): Promise<VersionedJob[]> {
  for (let reach = limit; ; reach *= 4) {
    const rows = await changedPage(sql, t, after, filter, limit, reach)
    if (rows.length === limit) return rows.map(versioned)
    const [more] = await sql<{ full: boolean }[]>`
      select count(*) = ${literalLimit(sql, reach)} as full from (
        select 1 from (${recentBoth(sql, t, after, filter, reach)}) r
        limit ${literalLimit(sql, reach)}
      ) recent`
    if (!more?.full) return rows.map(versioned)
  }
}

/**
 * Jobs `j` changed at or after the cursor (by updated_at): up to `reach` from
 * each table, first by (updated_at, id), each from its (updated_at, id) index (in
 * history, one per day partition: a day before the cursor answers nothing
 * after one descent), flagged by where they are. A status only live jobs have
 * never reads history.
 */
function recentBoth(sql: Sql, t: Tables, after: ReplayCursor, filter: StreamFilter, reach: number) {
  const from = (table: string, historic: boolean) => sql`
    select j.id, j.updated_at, ${sql.unsafe(String(historic))} as historic from ${sql(table)} j
    where j.updated_at >= ${after.version}::timestamptz ${filtered(sql, filter)}
    order by j.updated_at, j.id
    limit ${literalLimit(sql, reach)}`
  if (filter.status !== undefined && !isTerminal(filter.status)) return from(t.jobs, false)
  return sql`(${from(t.jobs, false)}) union all (${from(t.jobsHistory, true)})`
}

function changedPage(sql: Sql, t: Tables, after: ReplayCursor, filter: StreamFilter, limit: number, reach: number) {
  return sql<(Job & { version: string })[]>`
    with recent as (
      select id, updated_at, historic from (${recentBoth(sql, t, after, filter, reach)}) r
      order by updated_at, id
      limit ${literalLimit(sql, reach)}
    ), boundary as (
      -- Only a full reach has a boundary: short of it, every changed job is a candidate.
      select ${versionText(sql, 'b.updated_at')} as version, b.id from (
        select updated_at, id from recent order by updated_at desc, id desc limit 1
      ) b
      where (select count(*) from recent) = ${literalLimit(sql, reach)}
    ), candidates as (
      select id from recent where not historic
      union
      select job_id from ${sql(t.runs)}
      where lease_expires_at is not null and updated_at >= ${after.version}::timestamptz
    )
    select * from (
      ${versionedSelect(sql, t)}
      -- An array, not a join: the jobs are then read by primary key whatever the
      -- plan thinks of the candidates (a generic plan hashed the whole table).
      where j.id = any(array(select id from candidates)) ${filtered(sql, filter)}
      union all
      -- History's candidates are its recent rows alone (a running run is hot).
      ${historicSelect(sql, t)}
      where j.id = any(array(select id from recent where historic)) ${filtered(sql, filter)}
    ) changed
    -- Fixed-format ISO text: byte order is time order (C collation, whatever the database's).
    where (version collate "C" > ${after.version} or (version = ${after.version} and id collate "C" > ${after.id}))
      and not exists (
        select 1 from boundary
        where changed.version collate "C" > boundary.version
           or (changed.version = boundary.version and changed.id collate "C" > boundary.id collate "C")
      )
    order by version collate "C", id collate "C"
    limit ${literalLimit(sql, limit)}`
}

/** The stream's filters on the job row `j`. */
function filtered(sql: Sql, filter: StreamFilter) {
  return sql`
    ${filter.kind !== undefined ? sql`and j.kind = ${filter.kind}` : sql``}
    ${filter.queue !== undefined ? sql`and j.queue = ${filter.queue}` : sql``}
    ${filter.status !== undefined ? sql`and j.status = ${filter.status}` : sql``}`
}

/** A timestamp as version text: ISO, UTC, to the microsecond. */
function versionText(sql: Sql, column: string) {
  return sql`to_char(${sql.unsafe(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
}
