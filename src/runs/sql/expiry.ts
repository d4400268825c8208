/** The expiry sweep's transition: jobs not claimed before their time to live ran out are cancelled. */
import type { Sql } from '../../db/client'
import { literalLimit } from '../../db/literal'
import { nextStamp } from '../../db/rows'
import type { Tables } from '../../db/tables'
import type { JobTimes } from '../../metrics/record'
import { unexpired } from './claim'

/** A job the expiry sweep cancelled: enough for its change hint and its terminal count. */
export interface ExpiredJob extends JobTimes {
  id: string
  queue: string
}

/**
 * Cancels up to `batch` waiting or pending jobs past their `expires_at` that were
 * never claimed, with error "expired", in one statement. The claim already passes
 * such jobs over (claim.ts, `unexpired`); this makes them terminal, so they stop
 * costing the claim scan a heap visit each and their waiters hear the outcome.
 *
 * Read through jobs_expires_at_idx in expiry order, locked with SKIP LOCKED (a
 * claim or cancel holding one wins; the next sweep looks again), and re-checked
 * on the locked row, which may have been claimed or cancelled since the snapshot.
 * The jobs it cancels cancel their dependents in the same statement (the trigger
 * of migrations/008); the answer carries their `dependents` for the announcements.
 */
export async function jobExpireMany(
  sql: Sql,
  t: Tables,
  batch: number,
): Promise<(ExpiredJob & { dependents: string[] | null })[]> {
  // "Not claimed by then": a job with an attempt behind it is not this sweep's.
  // Checked in `due` as well, so the batch's LIMIT counts only jobs it may end.
  const stillExpired = sql`j.status in ('waiting', 'pending') and not ${unexpired(sql, sql`now()`)}`
  return sql<(ExpiredJob & { dependents: string[] | null })[]>`
    with due as (
      select j.id from ${sql(t.jobs)} j
      where j.expires_at is not null and j.status in ('waiting', 'pending') and j.expires_at <= now()
        and ${stillExpired}
      order by j.expires_at
      limit ${literalLimit(sql, batch)}
      for update skip locked
    ), ended as (
      update ${sql(t.jobs)} j set
        status = 'cancelled', error = 'expired', completed_at = now(),
        updated_at = ${nextStamp(sql, 'j.updated_at')}
      from due
      where j.id = due.id and ${stillExpired}
      returning j.id, j.kind, j.queue, j.status, j.enqueued_at, j.completed_at, j.dependents
    )
    select e.id, e.kind, e.queue, e.status, e.enqueued_at, e.completed_at, e.dependents from ended e`
}
