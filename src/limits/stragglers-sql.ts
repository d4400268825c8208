/**
 * Jobs enqueued unmarked just after their kind gained limits. An instance decides
 * whether a new job is flow-controlled from its view of the limited kinds
 * (LimitedKinds), which can be up to a second behind, and an enqueue that read
 * that view may reach the database a little later still. Such a job is pending
 * and unmarked in a kind the plain claim now skips, and the limited claim cannot
 * find it: it waits until this marks it. It is never claimed past a limit.
 */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { markedWithSlots } from './enqueue-sql'

/**
 * How long after a kind gains limits its unmarked jobs are looked for: well past
 * the view's second and a database call's deadline (an enqueue that decided with
 * an older view cannot still be on its way after that).
 */
export const STRAGGLER_WINDOW_SEC = 60

/**
 * Marks the pending, unmarked jobs of kinds that gained limits in the last
 * STRAGGLER_WINDOW_SEC and makes their slot rows; answers how many. Reads each
 * such kind's pending jobs through the claim index once per call (none at all
 * outside the window); rows another statement holds are left to the next call.
 */
export async function markStragglers(sql: Sql, t: Tables): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    with recent as (
      select array(
        select kind from ${sql(t.limits)} where created_at > now() - make_interval(secs => ${STRAGGLER_WINDOW_SEC})
      ) as kinds
    ), late as (
      select j.id from ${sql(t.jobs)} j, recent
      where j.status = 'pending' and j.kind = any(recent.kinds) and not j.flow_controlled
      for update of j skip locked
    ), ${markedWithSlots(sql, t, 'late')}
    select count(*)::int as n from marked`
  return row?.n ?? 0
}
