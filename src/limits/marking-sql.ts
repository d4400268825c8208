/**
 * What setting limits on a kind that had none does to its live jobs: each is
 * marked flow-controlled and gets its slot row, so the limited claim can find it
 * and count it (docs/design/flow-control.md).
 *
 * Most of the marking runs before the limits exist, in batches that lock nothing
 * but their rows: while the kind has no limits the plain claim still takes its
 * jobs, marked or not, and a marked job is only counted, never held back. Then one
 * short transaction locks the jobs table against writes (SHARE ROW EXCLUSIVE:
 * reads go on, every write in flight finishes first), marks the few jobs that
 * arrived meanwhile, and stores the limits. An enqueue either committed before
 * that lock, and the catch-up sees its job, or runs after the commit and marks its
 * own job, seeing the limits row. Without the lock, an enqueue that began just
 * before the commit would leave an unmarked job that the plain claim no longer
 * takes and the limited claim cannot find.
 *
 * Measured with 100,000 pending jobs over 1,000 keys: marking everything under the
 * lock held every write for 2.9 s; see the README for the figures of this way.
 */
import type { Queryable, Sql } from '../db/client'
import { literalLimit } from '../db/literal'
import type { Tables } from '../db/tables'
import { markedWithSlots } from './enqueue-sql'

/** Jobs marked per statement outside the lock. */
const BATCH = 5000

/** Marks the kind's live jobs in batches, outside any lock (step one of the above). */
export async function markLiveJobsAhead(sql: Sql, t: Tables, kind: string): Promise<void> {
  let after = ''
  for (;;) {
    const [row] = await sql<{ last: string | null }[]>`
      with batch as (
        select id from ${sql(t.jobs)}
        where kind = ${kind} and id > ${after} and status in ('pending', 'active') and not flow_controlled
        order by id limit ${literalLimit(sql, BATCH)}
      ), ${markedWithSlots(sql, t, 'batch')}
      select max(id) as last from batch`
    if (!row?.last) return
    after = row.last
  }
}

/**
 * Inside the transaction that stores new limits: takes the lock, then marks the
 * live jobs still unmarked (those that arrived during markLiveJobsAhead). Pending
 * and active are read apart, so each is found through an index on live jobs (the
 * claim index, the status index) and not through the kind's whole history.
 */
export async function markLiveJobsLocked(tx: Queryable, t: Tables, kind: string): Promise<void> {
  await tx`lock table ${tx(t.jobs)} in share row exclusive mode`
  await tx`
    with late as (
      select id from ${tx(t.jobs)} where status = 'pending' and kind = ${kind} and not flow_controlled
      union all
      select id from ${tx(t.jobs)} where status = 'active' and kind = ${kind} and not flow_controlled
    ), ${markedWithSlots(tx, t, 'late')}
    select count(*) from marked`
}
