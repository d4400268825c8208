/** The claim: pending jobs of some kinds become active, each with a running run, in one statement. */
import type { Fragment, Queryable, Sql } from '../../db/client'
import { literalLimit } from '../../db/literal'
import { nextStamp, runFromJson } from '../../db/rows'
import type { Tables } from '../../db/tables'
import { attachDependencies, type WithDependsOn } from '../../dependencies/reads-sql'
import { jobColumns } from '../../jobs/columns'
import type { Job, Run } from '../../jobs/model'
import type { Claimed } from '../model'

/** What runClaim needs. */
export interface ClaimParams {
  kinds: string[]
  queues?: string[]
  workerId: string
  leaseSec: number
  /** One fresh run id per job to claim; its length is the batch size. */
  runIds: string[]
}

/**
 * Claims up to runIds.length pending, due jobs of `kinds` (highest priority, then
 * the one due longest) and opens a running run for each, in one statement. SKIP
 * LOCKED lets concurrent claimers pass each other instead of queueing on a row.
 */
export async function runClaim(sql: Sql, t: Tables, p: ClaimParams): Promise<Claimed[]> {
  const rows = await sql<WithDependsOn<Job & { run: unknown }>[]>`
    with ${claimCtes(sql, t, p)}
    select c.*, to_jsonb(o) as run
    from claimed c join opened o on o.job_id = c.id
    order by c.priority desc, coalesce(c.scheduled_at, c.enqueued_at), c.id`
  const dependsOn = rows.map((r) => r.depends_on)
  const claimed = rows.map(({ run, depends_on, ...job }) => ({ job: job as Job, run: runFromJson(run) as Run }))
  await attachDependencies(
    sql,
    t,
    claimed.map((c) => c.job),
    dependsOn,
  )
  return claimed
}

/**
 * The claim as CTEs (`picked`, `claimed`, `opened`), so a statement
 * that also completes runs can claim in the same transaction.
 *
 * Each kind is its own ordered, limited branch of the claim index, merged after:
 * with `kind = any(...)` the index cannot give the order, so Postgres read and
 * sorted every pending row of those kinds before the LIMIT (293 ms a claim with
 * 200k pending, against 0.6 ms for one kind). A branch may lock a few rows the
 * merge then drops; they are free again when the statement ends.
 */
export function claimCtes(sql: Sql, t: Tables, p: ClaimParams) {
  // The batch size is part of the text (see literalLimit), so a generic plan knows
  // the scan stops after it.
  const limit = literalLimit(sql, p.runIds.length)
  // One kind and one job, the commonest claim, is spelled with plain values: then
  // Postgres costs the generic plan as it does a custom one, settles on it after a
  // few calls and stops planning each claim (arrays of unknown length kept it
  // planning every time: 0.4 ms a claim, about a third of its database time).
  const [onlyKind] = p.kinds
  const kinds =
    p.kinds.length === 1 && onlyKind !== undefined
      ? sql`(select ${onlyKind}::text as kind) as k`
      : sql`unnest(${p.kinds}::text[]) as k(kind)`
  return sql`
    picked as (
      select branch.id from ${kinds}
      cross join lateral (
        select j.id, j.priority, ${dueAt(sql)} as due
        from ${sql(t.jobs)} j
        where j.status = 'pending' and j.kind = k.kind and ${dueAt(sql)} <= now()
          and ${unexpired(sql, sql`now()`)}
          and ${claimableQueue(sql, t, p.queues)}
          -- A kind with limits is claimed by claimWithinLimits (limits/claim-sql.ts),
          -- whatever this instance believes: a one-time probe per kind, before its scan.
          and not exists (select 1 from ${sql(t.limits)} l where l.kind = k.kind)
        order by j.priority desc, ${dueAt(sql)}, j.id
        limit ${limit}
        for update skip locked
      ) branch
      order by branch.priority desc, branch.due, branch.id
      limit ${limit}
    ), ${claimedAndOpened(sql, t, p)}`
}

/**
 * The CTEs `claimed` and `opened` after a CTE `picked (id)`: each picked job made
 * active with one more attempt, and a running run opened for it with a fresh id
 * from `p.runIds` (the plain claim's and the limited claim's common end). The
 * plain claim, a transaction of one statement, stamps them with now(); the
 * limited claim passes `limited.at`, a time read after its snapshot (see
 * slot-claim-sql.ts).
 */
export function claimedAndOpened(
  sql: Queryable,
  t: Tables,
  p: Pick<ClaimParams, 'runIds' | 'workerId' | 'leaseSec'>,
  limited?: { at: Fragment },
) {
  const [onlyRunId] = p.runIds
  const at = limited ? limited.at : sql`now()`
  const opened =
    p.runIds.length === 1 && onlyRunId !== undefined
      ? sql`
      insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, created_at, started_at, lease_expires_at)
      select ${onlyRunId}, c.id, c.attempt_count, ${p.workerId}, 'running', ${at}, ${at},
             ${at} + make_interval(secs => ${p.leaseSec})
      from claimed c`
      : sql`
      insert into ${sql(t.runs)} (id, job_id, attempt, worker_id, status, created_at, started_at, lease_expires_at)
      select ids.run_id, numbered.job_id, numbered.attempt_count, ${p.workerId}, 'running', ${at}, ${at},
             ${at} + make_interval(secs => ${p.leaseSec})
      from (select c.id as job_id, c.attempt_count, row_number() over (order by c.id) as n from claimed c) numbered
      join unnest(${p.runIds}::text[]) with ordinality as ids(run_id, n) using (n)`
  return sql`
    claimed as (
      update ${sql(t.jobs)} j set
        status = 'active',
        attempt_count = j.attempt_count + 1,
        started_at = coalesce(j.started_at, ${at}),
        updated_at = ${nextStamp(sql, 'j.updated_at')}
      ${
        !limited
          ? sql`from picked where j.id = picked.id`
          : // The limited claim picks without row locks (see slot-claim-sql.ts): the status
            // is checked again on the row as locked. By primary key: joined to
            // picked, with that check, Postgres chose a bitmap over the claim index.
            sql`where j.id = any(array(select id from picked)) and j.status = 'pending'`
      }
      returning ${jobColumns(sql, 'j')}, j.depends_on
    ), opened as (${opened}
      returning *
    )`
}

/**
 * The paused queues (migrations/005) as one array, read once per statement: an
 * uncorrelated subquery is an InitPlan, so the claim reads the small table once
 * and then checks each candidate row against the array it already holds, on the
 * same claim-index scan as before (tests/hot-plans.test.ts). With nothing paused
 * the array is empty and no row is ever passed over.
 *
 * Spelled `not (array[j.queue] <@ paused)`, not `j.queue <> all(paused)`: for an
 * array it cannot see, Postgres takes `<> all` as ten `<>` tests, each as
 * selective as the queue column's statistics make `=` unlikely; with one queue in
 * use that came to "no row passes", the ordered scan looked endless, and every
 * claim became a bitmap scan and a sort of all of the kind's due jobs (757 rows
 * for 1 in the plan test). `<@` on an unseen array is estimated at 0.5%, so its
 * negation passes 99.5% and the plan stays the same.
 *
 * What a pause costs the queues that are not paused: the claim index is ordered
 * by kind, not queue, so a paused queue's due jobs of a kind that other queues
 * also carry sit in the same index range, and a claim of that kind passes over
 * each of them that sorts ahead of the first claimable row (its priority and due
 * time), one heap visit apiece. A claim that names `queues` already does the same
 * for the queues it leaves out. Measured (tests/queues-plan.test.ts, EXPLAIN
 * ANALYZE): 10,000 paused jobs of kind `a` due ahead of the head cost a claim of
 * `a` 10,000 rows passed over, 3.7 ms against 0.3 ms; 100,000 cost 41 ms (about
 * 0.4 µs a row). Paused jobs due after the head cost nothing, nor do they cost a
 * claim of any other kind. Nothing cheap bounds it within this index (the filter
 * needs the heap row, and a claim's row lock rules out an index-only scan);
 * bounding it takes an index keyed (kind, queue, …) with a branch per queue, or
 * moving paused jobs out of the claim index, each a write on every enqueue or
 * pause. A kind that may stay paused behind a deep backlog wants a queue of its own.
 */
function pausedQueues(sql: Queryable, t: Tables) {
  return sql`array(select queue from ${sql(t.pausedQueues)})`
}

/** A candidate row `j`'s queue is one a claim may take from: not paused, and among `queues` when given. */
export function claimableQueue(sql: Queryable, t: Tables, queues: string[] | undefined) {
  return sql`not (array[j.queue] <@ ${pausedQueues(sql, t)})
    ${queues ? sql`and j.queue = any(${queues}::text[])` : sql``}`
}

/**
 * A candidate row `j` is not past its time to live (expires_in_seconds) as of
 * `now`. Checked on the row the claim scan already visits, so a job is never
 * claimed after its expiry even before the sweep (runs/sql/expiry.ts) cancels it.
 * A job claimed once before it expired (attempt_count > 0) was "claimed by then":
 * its retries stay claimable, and the sweep leaves it alone too.
 */
export function unexpired(sql: Queryable, now: Fragment) {
  return sql`(j.expires_at is null or j.expires_at > ${now} or j.attempt_count > 0)`
}

/**
 * When a pending job becomes claimable: its scheduled_at (a scheduled job, a retry
 * after its backoff) or else when it was enqueued. The claim index is built on
 * this very expression (migrations/004), so it must be spelled the same way.
 */
export function dueAt(sql: Queryable) {
  return sql`coalesce(j.scheduled_at, j.enqueued_at)`
}
