/** Reads behind the live views: changed jobs re-read in batches, and replay for reconnects. */
import type { Sql } from '../db/client'
import { runFromJson } from '../db/rows'
import type { Tables } from '../db/tables'
import type { Job } from '../jobs/model'
import { currentRunJoin } from '../jobs/sql'

/** A job as the live views send it, with the version of its latest change. */
export interface VersionedJob {
  job: Job
  /** Latest of the job's and its running run's updated_at, to the microsecond (ISO, UTC). */
  version: string
}

/** Selects `j.*`, current_run and the change version (microseconds, so cursors never tie by rounding). */
function versionedSelect(sql: Sql, t: Tables) {
  return sql`
    select j.*, cr.current_run,
      to_char(greatest(j.updated_at, (cr.current_run->>'updated_at')::timestamptz) at time zone 'UTC',
              'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as version
    from ${sql(t.jobs)} j
    ${currentRunJoin(sql, t)}`
}

function versioned({ version, ...row }: Job & { version: string }): VersionedJob {
  return { version, job: { ...row, current_run: runFromJson(row.current_run) } }
}

/** The jobs with these ids as they stand now; ids not answered were deleted. */
export async function jobsByIds(sql: Sql, t: Tables, ids: string[]): Promise<VersionedJob[]> {
  const rows = await sql<(Job & { version: string })[]>`
    ${versionedSelect(sql, t)}
    where j.id = any(${ids}::text[])`
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

/**
 * Up to `limit` jobs that changed after `after` (the job row itself, or its
 * running run's progress), oldest change first, matching `filter`. Page on with
 * the last answer's (version, id).
 */
export async function jobsChangedSince(
  sql: Sql,
  t: Tables,
  after: ReplayCursor,
  filter: StreamFilter,
  limit: number,
): Promise<VersionedJob[]> {
  const rows = await sql<(Job & { version: string })[]>`
    select * from (
      ${versionedSelect(sql, t)}
      where (
          j.updated_at >= ${after.version}::timestamptz
          or j.id in (
            select job_id from ${sql(t.runs)}
            where status = 'running' and updated_at >= ${after.version}::timestamptz
          )
        )
        ${filter.kind !== undefined ? sql`and j.kind = ${filter.kind}` : sql``}
        ${filter.queue !== undefined ? sql`and j.queue = ${filter.queue}` : sql``}
        ${filter.status !== undefined ? sql`and j.status = ${filter.status}` : sql``}
    ) changed
    -- Fixed-format ISO text: byte order is time order (C collation, whatever the database's).
    where version collate "C" > ${after.version} or (version = ${after.version} and id collate "C" > ${after.id})
    order by version collate "C", id collate "C"
    limit ${limit}`
  return rows.map(versioned)
}
