/**
 * The claim undone: runs claimed for a client that went away before the answer
 * reached it go back at once, instead of holding their jobs until the lease ends.
 */
import type { Sql } from '../../db/client'
import { nextStamp } from '../../db/rows'
import type { Tables } from '../../db/tables'
import { jobColumns } from '../../jobs/columns'
import type { Job } from '../../jobs/model'

/** The error a given-back run ends with. */
export const GIVEN_BACK = 'given back: the client went away before the claim was answered'

/** Which runs to give back, and whose they must be. */
export interface GiveBackParams {
  workerId: string
  runIds: string[]
}

/**
 * Gives back runs just claimed for `workerId`, in one statement: each run that is
 * still running becomes abandoned (error GIVEN_BACK) and its job returns to
 * pending (cancelled, if a cancel was requested meanwhile) with the attempt not
 * used: attempt_count goes back down, and started_at too when this was the first.
 * Answers the jobs as they now stand.
 *
 * The run leaves the 1-based attempt numbers (0, then -1, … for each give-back of
 * the job): `(job_id, attempt)` is unique and the job's next claim takes this
 * run's number again.
 */
export async function runGiveBack(sql: Sql, t: Tables, p: GiveBackParams): Promise<Omit<Job, 'current_run'>[]> {
  return sql<Omit<Job, 'current_run'>[]>`
    with returned as (
      update ${sql(t.runs)} r set
        status = 'abandoned', error = ${GIVEN_BACK}, lease_expires_at = null, finished_at = now(),
        attempt = (select least(0, min(o.attempt) - 1) from ${sql(t.runs)} o where o.job_id = r.job_id),
        updated_at = ${nextStamp(sql, 'r.updated_at')}
      where r.id = any(${p.runIds}::text[]) and r.status = 'running' and r.worker_id = ${p.workerId}
      returning r.job_id, r.updated_at
    )
    update ${sql(t.jobs)} j set
      status = case when j.cancel_requested then 'cancelled' else 'pending' end,
      completed_at = case when j.cancel_requested then now() end,
      attempt_count = j.attempt_count - 1,
      started_at = case when j.attempt_count > 1 then j.started_at end,
      updated_at = greatest(${nextStamp(sql, 'j.updated_at')}, returned.updated_at)
    from returned
    where j.id = returned.job_id and j.status = 'active'
    returning ${jobColumns(sql, 'j')}`
}
