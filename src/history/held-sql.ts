/**
 * A worker's call on a run (heartbeat, complete, fail) addressed to a run or a
 * job that has moved to history: it finished a while ago, so the call is
 * refused as it was while the job was hot (409: not running), not answered as
 * unknown (404). Read only after the hot statement found nothing, so the calls
 * on live runs run exactly the statements they did.
 */
import type { Queryable } from '../db/client'
import type { Tables } from '../db/tables'
import type { RunTarget } from '../runs/model'
import type { TargetSeen } from '../runs/sql/held'

/**
 * What the held-run statements' `target` CTE would have seen of the addressed
 * run in history (a job there has no running run: target_run_id null), with
 * `id` null (nothing acted); null when history does not hold it either.
 */
export async function historyTargetSeen(
  sql: Queryable,
  t: Tables,
  target: RunTarget,
): Promise<(TargetSeen & { id: null }) | null> {
  const [row] =
    'runId' in target
      ? await sql<(TargetSeen & { id: null })[]>`
          select null as id, r.id as target_run_id, r.status as target_status, r.worker_id as target_worker_id
          from ${sql(t.runsHistory)} r where r.id = ${target.runId}`
      : await sql<(TargetSeen & { id: null })[]>`
          select null as id, null as target_run_id, null as target_status, null as target_worker_id
          from ${sql(t.jobsHistory)} j where j.id = ${target.jobId}`
  return row ?? null
}
