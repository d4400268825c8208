/**
 * Statement 3 of the limited claim (claim-sql.ts): with the keys' slot rows (and
 * the kind's, for a kind-wide limit) locked, count, claim within the room left,
 * and move the keys on. Why it is one statement of this shape:
 * docs/design/flow-control.md.
 */
import type { Fragment, Queryable } from '../db/client'
import { runFromJson } from '../db/rows'
import type { Tables } from '../db/tables'
import { attachDependencies } from '../dependencies/reads-sql'
import { jobColumns } from '../jobs/columns'
import type { Job, Run } from '../jobs/model'
import type { Claimed } from '../runs/model'
import { type ClaimParams, claimableQueue, claimedAndOpened, dueAt, unexpired } from '../runs/sql/claim'
import { claimsInWindow, claimsPushed, windowOpensAt } from './window-sql'

/** Why a limited claim passed work over: the limit that held it. */
export type ThrottleReason = 'max_active' | 'max_active_per_key' | 'rate' | 'rate_per_key'

/** What one limited claim did. */
export interface LimitedClaim {
  claimed: Claimed[]
  /** Keys (or the kind) with due work that a limit held back, by the limit. */
  throttled: Partial<Record<ThrottleReason, number>>
  /** When the earliest rate window that held work back opens again; null when none did. */
  reopensAt: Date | null
  /**
   * Whether keys it could not look at this time may hold claimable work: it
   * took as many slot rows as it asked for and some of them gave nothing (they
   * were at a limit or had nothing due, and go to the back of the line).
   */
  more: boolean
}

/** The kind's limits as stored (null: no limit of that sort). */
export interface KindLimits {
  max_active: number | null
  max_active_per_key: number | null
  rate_limit: number | null
  rate_seconds: number | null
  rate_per_key_limit: number | null
  rate_per_key_seconds: number | null
}

/** A row of statement 3: a claimed job (part 1) or the summary (part 2). */
type SlotClaimRow = Job & {
  part: 1 | 2
  run: unknown
  depends_on: string[] | null
  throttled: Partial<Record<ThrottleReason, number>> | null
  reopens_at: string | null
  more: boolean | null
}

/**
 * Statement 3 of claimWithinLimits. What it writes (the runs' and jobs' start,
 * the claim times of the rate windows, the turns) is stamped with `stamp`, the
 * clock read once while the statement runs, after its snapshot: any run whose end
 * freed the slot committed before that snapshot, so its finished_at (its own
 * statement's start) is earlier. now() is the transaction's start, before
 * statement 1 locked the keys (and maybe waited): runs stamped with it seemed to
 * start before the run whose slot they took. statement_timestamp() is a little
 * before the snapshot, which under load was enough for three runs of a key to
 * seem to overlap under a limit of 2. What it decides with (due times, windows)
 * reads statement_timestamp(), a little earlier, which only errs on holding back.
 */
export async function claimFromSlots(
  tx: Queryable,
  t: Tables,
  kind: string,
  p: ClaimParams,
  l: KindLimits,
  keys: string[],
): Promise<LimitedClaim> {
  const sql: Queryable = tx
  const want = p.runIds.length
  const activeOf = (key: Fragment) => sql`
    from ${sql(t.jobs)} a
    where a.kind = ${kind} and coalesce(a.concurrency_key, '') = ${key} and a.status = 'active' and a.flow_controlled`
  // dueOnly: claimable now, so due and not expired; a key whose pending jobs have
  // all expired is neither offered nor counted as held back, only kept (not
  // empty) until the expiry sweep cancels them.
  const pendingOf = (key: Fragment, dueOnly: boolean) => sql`
    from ${sql(t.jobs)} j
    where j.status = 'pending' and j.flow_controlled and j.kind = ${kind} and coalesce(j.concurrency_key, '') = ${key}
      ${dueOnly ? sql`and ${dueAt(sql)} <= statement_timestamp() and ${unexpired(sql, sql`statement_timestamp()`)}` : sql``}`
  // Whether a row exists, as a scalar subquery with a LIMIT: an EXISTS here was
  // planned as a hashed subplan that read every running job of every kind.
  const probe = (from: Fragment) => sql`((select 1 ${from} limit 1) is not null)`
  const now = sql`statement_timestamp()`
  const stamp = sql`(select at from stamp)`
  const inWindow = (claims: Fragment, seconds: number) => claimsInWindow(sql, claims, seconds, now)
  const perKeyActive =
    l.max_active_per_key === null
      ? sql`null::int`
      : sql`(select count(*)::int from (select 1 ${activeOf(sql`c.key`)} limit ${l.max_active_per_key}) x)`
  const perKeyRecent =
    l.rate_per_key_limit === null || l.rate_per_key_seconds === null
      ? sql`null::int`
      : inWindow(sql`c.recent_claims`, l.rate_per_key_seconds)
  const kindActive =
    l.max_active === null
      ? sql`null::int`
      : sql`(select count(*)::int from (select 1 from ${sql(t.jobs)} a
          where a.kind = ${kind} and a.status = 'active' and a.flow_controlled limit ${l.max_active}) x)`
  // Read in this statement's snapshot, after statement 2 locked the row.
  const kindRecent = sql`(select l.recent_claims from ${sql(t.limits)} l where l.kind = ${kind})`
  const kindRecentCount =
    l.rate_limit === null || l.rate_seconds === null ? sql`null::int` : inWindow(kindRecent, l.rate_seconds)
  const pushClaims = (claims: Fragment, count: Fragment, limit: number) =>
    claimsPushed(sql, claims, count, limit, stamp)
  const rows = await sql<SlotClaimRow[]>`
    with stamp as materialized (
      select clock_timestamp() as at
    ), cand as (
      select c.key, c.ord, s.recent_claims
      from unnest(${keys}::text[]) with ordinality as c(key, ord)
      join ${sql(t.flowSlots)} s on s.kind = ${kind} and s.key = c.key
    ), counted as materialized (
      -- Materialized: room reads each count twice, and inlined, each read ran its subquery.
      select c.key, c.ord, c.recent_claims, ${perKeyActive} as active, ${perKeyRecent} as recent from cand c
    ), room as (
      select c.*,
        case when c.active >= ${l.max_active_per_key}::int then 'max_active_per_key'
             when c.recent >= ${l.rate_per_key_limit}::int then 'rate_per_key' end as held_by,
        -- least() passes over nulls: a limit the kind does not have leaves no bound.
        greatest(least(${want}::int, ${l.max_active_per_key}::int - c.active, ${l.rate_per_key_limit}::int - c.recent), 0)
          as room
      from counted c
    ), kind_room as (
      select k.active, k.recent,
        case when k.active >= ${l.max_active}::int then 'max_active'
             when k.recent >= ${l.rate_limit}::int then 'rate' end as held_by,
        greatest(least(${want}::int, ${l.max_active}::int - k.active, ${l.rate_limit}::int - k.recent), 0) as room
      from (select ${kindActive} as active, ${kindRecentCount} as recent) k
    ), offered as (
      -- No row locks here: no other claim takes a job of a key whose slot row this
      -- one holds, and the claim's update re-checks that each job is still pending
      -- (a cancel or delete may have got there first). Locking every offered job
      -- wrote a row lock for each of a batch's spare candidates.
      select r.key, r.ord, o.id, o.priority, o.due,
        row_number() over (partition by r.key order by o.priority desc, o.due, o.id) as turn
      from room r
      cross join lateral (
        select j.id, j.priority, ${dueAt(sql)} as due
        ${pendingOf(sql`r.key`, true)}
          and ${claimableQueue(sql, t, p.queues)}
        order by j.priority desc, ${dueAt(sql)}, j.id
        limit r.room
      ) o
    ), picked as (
      -- One job per key per round, rounds in turn order, up to what the kind allows.
      select id, key from offered order by turn, ord limit (select room from kind_room)
    ), ${claimedAndOpened(sql, t, p, { at: stamp })},
    served as (
      select coalesce(concurrency_key, '') as key, count(*)::int as n from claimed group by 1
    ), outcome as (
      select r.key, r.held_by, coalesce(s.n, 0) as served,
        exists (select 1 from offered o where o.key = r.key) as offered,
        r.held_by is not null and ${probe(pendingOf(sql`r.key`, true))} as throttled,
        r.recent_claims
      from room r left join served s using (key)
    ), judged as (
      select o.*,
        not o.offered and o.served = 0
          and not ${probe(activeOf(sql`o.key`))}
          and not ${probe(pendingOf(sql`o.key`, false))} as empty
      from outcome o
    ), emptied as (
      delete from ${sql(t.flowSlots)} s using judged o where s.kind = ${kind} and s.key = o.key and o.empty
    ), turned as (
      -- A key served, or one that could give nothing, goes to the back of the line;
      -- one that was offered but not reached (the batch was full) keeps its turn.
      update ${sql(t.flowSlots)} s set
        last_served_at = ${stamp},
        recent_claims = ${
          l.rate_per_key_limit === null
            ? sql`s.recent_claims`
            : sql`case when o.served = 0 then s.recent_claims
                else ${pushClaims(sql`s.recent_claims`, sql`o.served`, l.rate_per_key_limit)} end`
        }
      from judged o
      where s.kind = ${kind} and s.key = o.key and not o.empty and (o.served > 0 or not o.offered)
    ), kind_turned as (
      update ${sql(t.limits)} l set recent_claims = ${
        l.rate_limit === null
          ? sql`'{}'`
          : pushClaims(sql`l.recent_claims`, sql`(select count(*)::int from claimed)`, l.rate_limit)
      }
      where l.kind = ${kind} and ${l.rate_limit !== null} and exists (select 1 from claimed)
    )
    select 1 as part, c.*, to_jsonb(o) as run, null::jsonb as throttled, null::timestamptz as reopens_at,
           null::boolean as more
    from claimed c join opened o on o.job_id = c.id
    union all
    -- The summary: a row of null job columns (in the answer's order) and what was held back.
    select 2, ${jobColumns(sql, 'n')}, null::text[], null,
      (select jsonb_object_agg(reason, n) from (
         select held_by as reason, count(*)::int as n from judged where throttled group by held_by
         union all
         select k.held_by, 1 from kind_room k where k.held_by is not null and exists (select 1 from room where room > 0)
       ) held),
      least(
        (select min(${windowOpensAt(sql, sql`o.recent_claims`, sql`${l.rate_per_key_limit ?? 1}::int`, sql`${l.rate_per_key_seconds ?? 0}::int`)})
         from judged o where o.throttled and o.held_by = 'rate_per_key'),
        (select ${windowOpensAt(sql, kindRecent, sql`${l.rate_limit ?? 1}::int`, sql`${l.rate_seconds ?? 0}::int`)}
         from kind_room k where k.held_by = 'rate')),
      exists (select 1 from judged o where not o.offered)
    from (select (null::${sql(t.jobs)}).*) n
    order by part`
  const claimed: Claimed[] = []
  const dependsOn: (string[] | null)[] = []
  let summary: SlotClaimRow | undefined
  for (const row of rows) {
    if (row.part === 2) {
      summary = row
      continue
    }
    const { part: _, run, throttled: _t, reopens_at: _r, more: _m, depends_on, ...job } = row
    claimed.push({ job: job as Job, run: runFromJson(run) as Run })
    dependsOn.push(depends_on ?? null)
  }
  await attachDependencies(
    sql,
    t,
    claimed.map((c) => c.job),
    dependsOn,
  )
  claimed.sort(
    (a, b) =>
      b.job.priority - a.job.priority ||
      dueMs(a.job) - dueMs(b.job) ||
      (a.job.id < b.job.id ? -1 : a.job.id > b.job.id ? 1 : 0),
  )
  return {
    claimed,
    throttled: summary?.throttled ?? {},
    reopensAt: summary?.reopens_at ? new Date(summary.reopens_at) : null,
    more: summary?.more ?? false,
  }
}

const dueMs = (job: Job) => Date.parse(job.scheduled_at ?? job.enqueued_at)
