/**
 * What every statement that makes a job pending (enqueue, batch enqueue, a
 * schedule's fire, a manual or bulk retry) adds for flow control, as fragments:
 * the job's `flow_controlled` flag, and the (kind, key) slot row that lets the
 * limited claim find it (docs/design/flow-control.md).
 */
import type { Fragment, Queryable } from '../db/client'
import type { Tables } from '../db/tables'

/**
 * Whether a job of the kind in `kindColumn` (a column, or `${value}`) goes through
 * the limited claim: its kind has limits now. Read in the inserting statement's
 * own snapshot; PUT /limits marks the jobs that statement could not see (see
 * limitsUpsert), so no live job of a limited kind is left unmarked.
 */
export function flowControlled(sql: Queryable, t: Tables, kind: Fragment) {
  return sql`exists (select 1 from ${sql(t.limits)} l where l.kind = ${kind})`
}

/**
 * A CTE body that makes sure each flow-controlled job in `rows` (a CTE with kind,
 * concurrency_key and flow_controlled; `every`: all its rows are, and it need not
 * have flow_controlled) has its slot row. Jobs without a key share
 * the key ''.
 *
 * On conflict it locks the existing row without writing it (`do update … where
 * false` still locks): a limited claim that holds the row and is about to delete
 * it as empty then finishes first, and this insert, retried after the delete,
 * creates the row again. `do nothing` would take no lock, and the claim, blind to
 * the uncommitted job, could delete the row the job needs.
 */
export function flowSlotsEnsured(sql: Queryable, t: Tables, rows: string, every = false) {
  return sql`
    insert into ${sql(t.flowSlots)} (kind, key)
    select distinct r.kind, coalesce(r.concurrency_key, '') from ${sql(rows)} r
    where ${every ? sql`true` : sql`r.flow_controlled`}
    order by 1, 2
    on conflict (kind, key) do update set kind = excluded.kind where false`
}

/**
 * The CTEs `marked` and `slotted` after a CTE `ids (id)`: each of those jobs that
 * is still pending or active becomes flow-controlled and gets its slot row. What
 * a kind's first limits (marking-sql.ts) and the straggler sweep
 * (stragglers-sql.ts) do to jobs enqueued before their kind had limits.
 */
export function markedWithSlots(sql: Queryable, t: Tables, ids: string) {
  return sql`
    marked as (
      update ${sql(t.jobs)} j set flow_controlled = true
      from ${sql(ids)} m where j.id = m.id and j.status in ('pending', 'active')
      returning j.kind, j.concurrency_key
    ), slotted as (${flowSlotsEnsured(sql, t, 'marked', true)})`
}
